/*
 * An out-of-tree consumer of the installed onnxc runtime (tests/consumer/run.sh
 * builds it against an install prefix with pkg-config and with find_package,
 * linking libonnxc.so and libonnxc.a). Uses only <onnxc/onnxc.h>.
 *
 * Usage: consumer PLAN
 * Opens PLAN, fills every input of its "embed" entry point with a fixed
 * pattern, runs it, prints the first values of output 0 and checks that all
 * of them are finite. Exit status 0 on success, 1 on any failure.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <onnxc/onnxc.h>

static int fail(oc_status_t s, const char *what) {
  fprintf(stderr, "consumer: %s: %s: %s\n", what, oc_status_code_name(oc_status_code(s)),
          oc_status_message(s));
  oc_status_free(s);
  return 1;
}

/* A deterministic pattern in [-1, 1] for float inputs; zeros otherwise. */
static void fill_input(void *data, const oc_tensor_info_t *info) {
  memset(data, 0, info->bytes);
  if (info->dtype != OC_DTYPE_FLOAT32) return;
  float *x = data;
  for (size_t i = 0; i < info->elements; i++) x[i] = (float)((int)(i % 17) - 8) / 8.0f;
}

static int run(const oc_plan_t *plan, oc_context_t *ctx) {
  int embed = -1;
  oc_status_t s = oc_plan_find_entry(plan, "embed", &embed);
  if (s) return fail(s, "find entry 'embed'");
  for (int i = 0; i < oc_plan_input_count(plan, embed); i++) {
    oc_tensor_info_t info;
    void *buf = NULL;
    size_t bytes = 0;
    if ((s = oc_plan_input_info(plan, embed, i, &info))) return fail(s, "input info");
    if ((s = oc_context_input_buffer(ctx, embed, i, &buf, &bytes))) return fail(s, "input buffer");
    if (bytes != info.bytes) {
      fprintf(stderr, "consumer: input %d: buffer of %zu bytes, info says %zu\n", i, bytes,
              info.bytes);
      return 1;
    }
    fill_input(buf, &info);
    printf("input %d: %s %s rank %d, %zu bytes\n", i, info.name, oc_dtype_name(info.dtype),
           info.rank, info.bytes);
  }
  if ((s = oc_context_run(ctx, embed))) return fail(s, "run embed");

  oc_tensor_info_t out;
  const void *data = NULL;
  size_t bytes = 0;
  if ((s = oc_plan_output_info(plan, embed, 0, &out))) return fail(s, "output info");
  if ((s = oc_context_output(ctx, embed, 0, &data, &bytes))) return fail(s, "output");
  if (out.dtype != OC_DTYPE_FLOAT32 || bytes != out.bytes || out.elements == 0) {
    fprintf(stderr, "consumer: output 0 is %s, %zu bytes: expected float32 embeddings\n",
            oc_dtype_name(out.dtype), bytes);
    return 1;
  }
  const float *y = data;
  printf("output %s:", out.name);
  for (int d = 0; d < out.rank; d++) printf("%s%lld", d ? "x" : " ", (long long)out.dims[d]);
  printf(", first values:");
  for (size_t i = 0; i < out.elements && i < 4; i++) printf(" %.6g", (double)y[i]);
  printf("\n");
  for (size_t i = 0; i < out.elements; i++)
    if (!isfinite(y[i])) {
      fprintf(stderr, "consumer: output value %zu is not finite\n", i);
      return 1;
    }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: consumer PLAN\n");
    return 1;
  }
  int major = -1, minor = -1, patch = -1;
  uint32_t lo = 0, hi = 0;
  oc_version(&major, &minor, &patch);
  oc_plan_format_versions(&lo, &hi);
  printf("onnxc library %s (headers %s), reads plan formats %u to %u\n", oc_version_string(),
         OC_VERSION_STRING, (unsigned)lo, (unsigned)hi);
  if (major != OC_VERSION_MAJOR || minor < OC_VERSION_MINOR ||
      (minor == OC_VERSION_MINOR && patch < OC_VERSION_PATCH)) {
    fprintf(stderr, "consumer: library %d.%d.%d is older than the headers %s\n", major, minor,
            patch, OC_VERSION_STRING);
    return 1;
  }

  oc_plan_options_t options;
  oc_plan_options_init(&options);
  oc_plan_t *plan = NULL;
  oc_status_t s = oc_plan_open_file(argv[1], &options, &plan);
  if (s) return fail(s, "open plan");
  oc_context_t *ctx = NULL;
  if ((s = oc_context_create(plan, NULL, &ctx))) {
    oc_plan_release(plan);
    return fail(s, "create context");
  }
  int rc = run(plan, ctx);
  oc_context_release(ctx);
  oc_plan_release(plan);
  if (rc == 0) printf("consumer: ok\n");
  return rc;
}
