/* onnxrun: runs an entry point of a plan on tensors from a folder. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "oc_ops.h"
#include "tensor_file.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: onnxrun PLAN.bin --inputs DIR --outputs DIR [options]\n"
          "\n"
          "Runs an entry point of an onnxc plan. Inputs are read from DIR/input_K.pb (ONNX\n"
          "TensorProto) or DIR/input_K.npy, matched to the plan's inputs by the tensor's\n"
          "name when it has one, else by position K. Outputs are written as\n"
          "DIR/output_K.pb (TensorProto, .name set), or .npy with --npy.\n"
          "\n"
          "options:\n"
          "  --inputs DIR      folder with input_K.pb / input_K.npy files\n"
          "  --outputs DIR     folder for output_K files (created if missing)\n"
          "  --npy             write outputs as .npy instead of TensorProto\n"
          "  --entry NAME      entry point to run (default: embed)\n"
          "  --version         print the runtime version and the plan formats it reads\n"
          "  -h, --help        this text\n"
          "\n"
          "Exit status: 0 on success, 1 on an error (one line on stderr), 2 on bad usage.\n");
}

static int fail(oc_status_t s) {
  fprintf(stderr, "onnxrun: error: %s\n", oc_status_message(s));
  oc_status_free(s);
  return 1;
}

static int bad_usage(const char *msg, const char *arg) {
  fprintf(stderr, "onnxrun: %s%s%s (see onnxrun --help)\n", msg, arg ? ": " : "", arg ? arg : "");
  return 2;
}

#define MAX_FILES 1024

typedef struct input_file_s {
  long k;
  char path[4096];
} input_file_t;

static int by_k(const void *a, const void *b) {
  const input_file_t *x = a, *y = b;
  return (x->k > y->k) - (x->k < y->k);
}

/* Lists DIR/input_K.pb|npy sorted by K. */
static oc_status_t list_inputs(const char *dir, input_file_t *files, int *out_n) {
  DIR *d = opendir(dir);
  if (!d) return oc_make_status(OC_STATUS_IO, "%s: cannot open folder: %s", dir, strerror(errno));
  int n = 0;
  struct dirent *de;
  oc_status_t s = OC_OK;
  while ((de = readdir(d))) {
    const char *name = de->d_name;
    if (strncmp(name, "input_", 6) != 0) continue;
    char *end;
    long k = strtol(name + 6, &end, 10);
    if (end == name + 6 || k < 0 || (strcmp(end, ".pb") && strcmp(end, ".npy"))) continue;
    for (int j = 0; j < n; j++)
      if (files[j].k == k) s = oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                                              "%s: two files for input %ld", dir, k);
    if (s) break;
    if (n == MAX_FILES) {
      s = oc_make_status(OC_STATUS_RESOURCE_LIMIT, "%s: more than %d input files", dir, MAX_FILES);
      break;
    }
    files[n].k = k;
    snprintf(files[n].path, sizeof files[n].path, "%s/%s", dir, name);
    n++;
  }
  closedir(d);
  if (s) return s;
  qsort(files, (size_t)n, sizeof(input_file_t), by_k);
  *out_n = n;
  return OC_OK;
}

static const char *type_str(int dtype, int rank, const int64_t *dims, char *buf, size_t n) {
  size_t k = (size_t)snprintf(buf, n, "%s[", oc_dtype_name(dtype));
  for (int i = 0; i < rank && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, i ? ",%lld" : "%lld", (long long)dims[i]);
  if (k < n) snprintf(buf + k, n - k, "]");
  return buf;
}

static oc_status_t bind_inputs(oc_context_t *ctx, const oc_plan_t *plan, int entry,
                               const char *dir) {
  static input_file_t files[MAX_FILES];
  int n = 0;
  OC_RETURN_IF_ERROR(list_inputs(dir, files, &n));
  int n_inputs = oc_plan_input_count(plan, entry);
  char bound[MAX_FILES] = {0};
  if (n_inputs > MAX_FILES)
    return oc_make_status(OC_STATUS_RESOURCE_LIMIT, "the plan has more than %d inputs", MAX_FILES);
  if (n != n_inputs)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s holds %d input files; the plan takes %d",
                          dir, n, n_inputs);
  for (int f = 0; f < n; f++) {
    oc_host_tensor_t t;
    OC_RETURN_IF_ERROR(oc_tensor_file_read(files[f].path, &t));
    int idx = t.name && t.name[0] ? oc_plan_input_index(plan, entry, t.name) : -1;
    if (idx < 0) idx = f;
    oc_tensor_info_t info;
    oc_status_t s = oc_plan_input_info(plan, entry, idx, &info);
    if (!s && bound[idx])
      s = oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s: plan input '%s' is given twice",
                         files[f].path, info.name);
    int same = !s && (int)info.dtype == t.dtype && info.rank == t.rank;
    for (int d = 0; same && d < t.rank; d++) same = info.dims[d] == t.dims[d];
    if (!s && !same) {
      char b1[256], b2[256];
      s = oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s: input '%s' is %s but the plan expects %s",
                         files[f].path, info.name, type_str(t.dtype, t.rank, t.dims, b1, sizeof b1),
                         type_str(info.dtype, info.rank, info.dims, b2, sizeof b2));
    }
    if (!s) s = oc_context_set_input(ctx, entry, idx, t.data, t.bytes);
    oc_host_tensor_free(&t);
    if (s) return s;
    bound[idx] = 1;
  }
  return OC_OK;
}

static oc_status_t write_outputs(const oc_context_t *ctx, const oc_plan_t *plan, int entry,
                                 const char *dir, int npy) {
  if (mkdir(dir, 0777) != 0 && errno != EEXIST)
    return oc_make_status(OC_STATUS_IO, "%s: cannot create folder: %s", dir, strerror(errno));
  for (int i = 0; i < oc_plan_output_count(plan, entry); i++) {
    oc_tensor_info_t info;
    OC_RETURN_IF_ERROR(oc_plan_output_info(plan, entry, i, &info));
    const void *data;
    size_t bytes;
    OC_RETURN_IF_ERROR(oc_context_output(ctx, entry, i, &data, &bytes));
    oc_host_tensor_t t = {.name = (char *)info.name, .dtype = info.dtype, .rank = info.rank,
                          .data = (void *)data, .bytes = bytes};
    memcpy(t.dims, info.dims, sizeof(int64_t) * (size_t)info.rank);
    char path[4096];
    snprintf(path, sizeof path, "%s/output_%d.%s", dir, i, npy ? "npy" : "pb");
    OC_RETURN_IF_ERROR(npy ? oc_tensor_file_write_npy(path, &t) : oc_tensor_file_write_pb(path, &t));
  }
  return OC_OK;
}

int main(int argc, char **argv) {
  const char *plan_path = NULL, *in_dir = NULL, *out_dir = NULL, *entry_name = "embed";
  int npy = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int has_next = i + 1 < argc;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(a, "--version")) {
      uint32_t lo, hi;
      oc_plan_format_versions(&lo, &hi);
      printf("onnxrun %s (reads plan formats %u to %u)\n", ONNXC_VERSION_STRING, lo, hi);
      return 0;
    } else if (!strcmp(a, "--inputs")) {
      if (!has_next) return bad_usage("missing value for", a);
      in_dir = argv[++i];
    } else if (!strcmp(a, "--outputs")) {
      if (!has_next) return bad_usage("missing value for", a);
      out_dir = argv[++i];
    } else if (!strcmp(a, "--entry")) {
      if (!has_next) return bad_usage("missing value for", a);
      entry_name = argv[++i];
    } else if (!strcmp(a, "--npy")) {
      npy = 1;
    } else if (a[0] == '-' && a[1]) {
      return bad_usage("unknown option", a);
    } else {
      if (plan_path) return bad_usage("more than one plan given", a);
      plan_path = a;
    }
  }
  if (!plan_path) return bad_usage("no plan given", NULL);
  if (!in_dir) return bad_usage("no --inputs DIR given", NULL);
  if (!out_dir) return bad_usage("no --outputs DIR given", NULL);
  oc_plan_t *plan = NULL;
  oc_context_t *ctx = NULL;
  int entry = -1;
  oc_status_t s = oc_plan_open_file(plan_path, NULL, &plan);
  if (!s) s = oc_plan_find_entry(plan, entry_name, &entry);
  if (!s) s = oc_context_create(plan, NULL, &ctx);
  if (!s) s = bind_inputs(ctx, plan, entry, in_dir);
  if (!s) s = oc_context_run(ctx, entry);
  if (!s) s = write_outputs(ctx, plan, entry, out_dir, npy);
  oc_context_release(ctx);
  oc_plan_release(plan);
  if (s) return fail(s);
  return 0;
}
