/*
 * embed_npy: the shape of a production embedding service, on the public API
 * only (include/onnxc/onnxc.h).
 *
 *   embed_npy PLAN.bin BATCH.npy EMBEDDINGS.npy [--expect REFERENCE.npy]
 *
 * Opens a plan once, creates a context, copies a float32 batch from a .npy
 * file into the plan's input, runs the `embed` entry point and writes the
 * embeddings as .npy. With --expect it prints the largest difference from a
 * reference (for example PyTorch's output for the same batch).
 *
 * The .npy reading here is deliberately minimal (float32, C order, version
 * 1.0 headers): a service would read its own input format.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnxc/onnxc.h"

/* Reads a little-endian float32 C-order .npy file. Returns the data and
 * fills dims/rank; NULL with a message on error. */
static float *read_npy_f32(const char *path, int64_t *dims, int *rank, size_t *count) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "embed_npy: cannot open %s\n", path);
    return NULL;
  }
  unsigned char pre[10];
  char header[4096];
  float *data = NULL;
  if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0 || pre[6] != 1) {
    fprintf(stderr, "embed_npy: %s: not a version 1.0 .npy file\n", path);
    goto out;
  }
  size_t hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
  if (hlen >= sizeof header || fread(header, 1, hlen, f) != hlen) {
    fprintf(stderr, "embed_npy: %s: bad header\n", path);
    goto out;
  }
  header[hlen] = 0;
  if (!strstr(header, "'descr': '<f4'") || !strstr(header, "'fortran_order': False")) {
    fprintf(stderr, "embed_npy: %s: expected float32 ('<f4') in C order\n", path);
    goto out;
  }
  const char *p = strstr(header, "'shape': (");
  if (!p) {
    fprintf(stderr, "embed_npy: %s: no shape\n", path);
    goto out;
  }
  p += strlen("'shape': (");
  *rank = 0;
  *count = 1;
  while (*p && *p != ')' && *rank < OC_MAX_RANK) {
    char *end;
    long long d = strtoll(p, &end, 10);
    if (end == p || d < 0) break;
    dims[(*rank)++] = d;
    *count *= (size_t)d;
    p = end;
    while (*p == ',' || *p == ' ') p++;
  }
  data = malloc(*count * sizeof(float) + 1);
  if (!data || fread(data, sizeof(float), *count, f) != *count) {
    fprintf(stderr, "embed_npy: %s: truncated data\n", path);
    free(data);
    data = NULL;
  }
out:
  fclose(f);
  return data;
}

static int write_npy_f32(const char *path, const float *data, const int64_t *dims, int rank) {
  char shape[256] = "";
  size_t k = 0;
  for (int i = 0; i < rank; i++)
    k += (size_t)snprintf(shape + k, sizeof shape - k, "%lld,%s", (long long)dims[i],
                          i + 1 < rank ? " " : "");
  if (rank > 1) shape[k - 1] = 0; /* (2, 32) rather than (2, 32,) */
  char header[512];
  int n = snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }",
                   shape);
  int total = 10 + n + 1;
  int pad = (64 - total % 64) % 64;
  size_t count = 1;
  for (int i = 0; i < rank; i++) count *= (size_t)dims[i];
  /* Write next to the target, then rename: readers never see half a file. */
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "wb");
  if (!f) return -1;
  unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                           (unsigned char)((n + pad + 1) & 0xFF), (unsigned char)((n + pad + 1) >> 8)};
  int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(header, 1, (size_t)n, f) == (size_t)n;
  for (int i = 0; i < pad && ok; i++) ok = fputc(' ', f) != EOF;
  ok = ok && fputc('\n', f) != EOF && fwrite(data, sizeof(float), count, f) == count;
  ok = (fclose(f) == 0) && ok;
  if (!ok || rename(tmp, path) != 0) {
    remove(tmp);
    return -1;
  }
  return 0;
}

static int check(oc_status_t s) {
  if (s == OC_OK) return 0;
  fprintf(stderr, "embed_npy: %s\n", oc_status_message(s));
  oc_status_free(s);
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 4 && !(argc == 6 && strcmp(argv[4], "--expect") == 0)) {
    fprintf(stderr, "usage: embed_npy PLAN.bin BATCH.npy EMBEDDINGS.npy [--expect REFERENCE.npy]\n");
    return 2;
  }
  int rc = 1;
  oc_plan_t *plan = NULL;
  oc_context_t *ctx = NULL;
  float *batch = NULL, *ref = NULL;
  int64_t dims[OC_MAX_RANK];
  int rank;
  size_t count;

  /* 1. Open the plan once (mmapped, validated); share it between threads. */
  if (check(oc_plan_open_file(argv[1], NULL, &plan))) goto out;
  int embed;
  if (check(oc_plan_find_entry(plan, "embed", &embed))) goto out;
  /* 2. One context per thread: it owns the working memory. */
  if (check(oc_context_create(plan, NULL, &ctx))) goto out;

  /* 3. Bind the batch. The plan's signature says what it expects. */
  oc_tensor_info_t in;
  if (check(oc_plan_input_info(plan, embed, 0, &in))) goto out;
  if (!(batch = read_npy_f32(argv[2], dims, &rank, &count))) goto out;
  if (in.dtype != OC_DTYPE_FLOAT32 || count * sizeof(float) != in.bytes) {
    fprintf(stderr, "embed_npy: %s holds %zu floats; input '%s' takes %zu\n", argv[2], count,
            in.name, in.elements);
    goto out;
  }
  if (check(oc_context_set_input(ctx, embed, 0, batch, count * sizeof(float)))) goto out;

  /* 4. Run, and read the embeddings (borrowed until the next run). */
  if (check(oc_context_run(ctx, embed))) goto out;
  oc_tensor_info_t outinfo;
  const void *emb;
  size_t bytes;
  if (check(oc_plan_output_info(plan, embed, 0, &outinfo))) goto out;
  if (check(oc_context_output(ctx, embed, 0, &emb, &bytes))) goto out;
  if (write_npy_f32(argv[3], emb, outinfo.dims, outinfo.rank) != 0) {
    fprintf(stderr, "embed_npy: cannot write %s\n", argv[3]);
    goto out;
  }
  printf("embedded %lld inputs -> %s %s[", (long long)in.dims[0], argv[3], outinfo.name);
  for (int i = 0; i < outinfo.rank; i++) printf(i ? ",%lld" : "%lld", (long long)outinfo.dims[i]);
  printf("]\n");

  if (argc == 6) {
    int64_t rdims[OC_MAX_RANK];
    int rrank;
    size_t rcount;
    if (!(ref = read_npy_f32(argv[5], rdims, &rrank, &rcount))) goto out;
    if (rcount != outinfo.elements) {
      fprintf(stderr, "embed_npy: reference has %zu values, output %zu\n", rcount, outinfo.elements);
      goto out;
    }
    double max_err = 0, max_ref = 0;
    for (size_t i = 0; i < rcount; i++) {
      double e = fabs((double)((const float *)emb)[i] - ref[i]);
      if (e > max_err) max_err = e;
      if (fabs(ref[i]) > max_ref) max_ref = fabs(ref[i]);
    }
    printf("max |embedding - reference| = %.3g (max |reference| = %.3g)\n", max_err, max_ref);
    if (max_err > 1e-5 + 1e-4 * max_ref) {
      fprintf(stderr, "embed_npy: embeddings differ from the reference\n");
      goto out;
    }
  }
  rc = 0;
out:
  free(batch);
  free(ref);
  oc_context_release(ctx);
  oc_plan_release(plan);
  return rc;
}
