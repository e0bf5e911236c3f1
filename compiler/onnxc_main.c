/* onnxc: the compiler's command line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compile.h"
#include "inspect.h"
#include "lowering.h"

#ifndef ONNXC_VERSION_STRING
#define ONNXC_VERSION_STRING "0.1.0"
#endif

static void usage(FILE *f) {
  fprintf(f,
          "usage: onnxc MODEL.onnx -o PLAN.bin [options]\n"
          "       onnxc --inspect FILE\n"
          "\n"
          "Compiles an ONNX model into a static execution plan for the onnxc runtime.\n"
          "The plan's entry point 'embed' computes the graph outputs (or the values named\n"
          "with --output) from the graph inputs; every shape is fixed at compile time.\n"
          "\n"
          "options:\n"
          "  -o, --output-plan PLAN   where to write the plan (written atomically)\n"
          "  --dim NAME=V             value of the symbolic dimension NAME (e.g. a dynamic\n"
          "                           batch axis: --dim batch=32); repeatable\n"
          "  --output NAME            compile only what the value NAME needs and return it\n"
          "                           (repeatable; default: the graph's outputs)\n"
          "  --inspect FILE           print inputs, outputs, op histogram, parameter count and\n"
          "                           sizes of a model (.onnx) or a plan\n"
          "  --list-ops               print the supported ONNX ops as a Markdown table\n"
          "  --version                print the version and the plan format version\n"
          "  -h, --help               this text\n"
          "\n"
          "Exit status: 0 on success, 1 on a compile error (one line on stderr), 2 on bad usage.\n");
}

/* The op table of docs/ops.md, generated from compiler/ops/onnx_ops.h. */
static int by_op_name(const void *a, const void *b) {
  const char *d, *na, *nb, *t;
  int s;
  oc_lower_op_info(*(const int *)a, &d, &na, &s, &t);
  oc_lower_op_info(*(const int *)b, &d, &nb, &s, &t);
  return strcmp(na, nb);
}

static void list_ops(void) {
  int n = oc_lower_op_count();
  int *order = malloc(sizeof(int) * (size_t)n);
  if (!order) return;
  for (int i = 0; i < n; i++) order[i] = i;
  qsort(order, (size_t)n, sizeof(int), by_op_name);
  printf("| op | domain | opsets | dtypes |\n|---|---|---|---|\n");
  for (int k = 0; k < n; k++) {
    const char *domain, *name, *dtypes;
    int since;
    oc_lower_op_info(order[k], &domain, &name, &since, &dtypes);
    printf("| %s | %s | %d-%d | %s |\n", name, domain[0] ? domain : "ai.onnx", since, OC_MAX_OPSET,
           dtypes);
  }
  free(order);
}

static int fail(oc_status_t s) {
  fprintf(stderr, "onnxc: error: %s\n", oc_status_message(s));
  oc_status_free(s);
  return 1;
}

static int bad_usage(const char *msg, const char *arg) {
  fprintf(stderr, "onnxc: %s%s%s (see onnxc --help)\n", msg, arg ? ": " : "", arg ? arg : "");
  return 2;
}

int main(int argc, char **argv) {
  oc_compile_options_t opts;
  oc_compile_options_init(&opts);
  const char *model = NULL, *plan_path = NULL, *inspect = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int has_next = i + 1 < argc;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(a, "--list-ops")) {
      list_ops();
      return 0;
    } else if (!strcmp(a, "--version")) {
      uint32_t lo, hi;
      oc_plan_format_versions(&lo, &hi);
      printf("onnxc %s (plan format %u)\n", ONNXC_VERSION_STRING, hi);
      return 0;
    } else if (!strcmp(a, "-o") || !strcmp(a, "--output-plan")) {
      if (!has_next) return bad_usage("missing value for", a);
      plan_path = argv[++i];
    } else if (!strcmp(a, "--inspect")) {
      if (!has_next) return bad_usage("missing value for", a);
      inspect = argv[++i];
    } else if (!strcmp(a, "--dim")) {
      if (!has_next) return bad_usage("missing value for", a);
      const char *spec = argv[++i];
      const char *eq = strchr(spec, '=');
      if (!eq || eq == spec) return bad_usage("--dim takes NAME=V", spec);
      char *end;
      errno = 0;
      long long v = strtoll(eq + 1, &end, 10);
      if (errno || *end || end == eq + 1 || v < 0) return bad_usage("--dim value is not a size", spec);
      if (opts.n_dims >= OC_COMPILE_MAX_DIMS) return bad_usage("too many --dim", NULL);
      /* argv outlives opts; cut the name at '=' in place. */
      argv[i][eq - spec] = 0;
      opts.dim_names[opts.n_dims] = argv[i];
      opts.dim_values[opts.n_dims++] = v;
    } else if (!strcmp(a, "--output")) {
      if (!has_next) return bad_usage("missing value for", a);
      if (opts.n_outputs >= OC_COMPILE_MAX_OUTPUTS) return bad_usage("too many --output", NULL);
      opts.outputs[opts.n_outputs++] = argv[++i];
    } else if (a[0] == '-' && a[1]) {
      return bad_usage("unknown option", a);
    } else {
      if (model) return bad_usage("more than one model given", a);
      model = a;
    }
  }
  if (inspect) {
    if (model || plan_path) return bad_usage("--inspect takes no other arguments", NULL);
    char *text = NULL;
    oc_status_t s = oc_inspect_file(inspect, &text);
    if (s) return fail(s);
    fputs(text, stdout);
    free(text);
    return 0;
  }
  if (!model) return bad_usage("no model given", NULL);
  if (!plan_path) return bad_usage("no output plan given (-o PLAN.bin)", NULL);
  oc_compiled_t *c = NULL;
  oc_status_t s = oc_compile_file(model, &opts, &c);
  if (s) return fail(s);
  s = oc_plan_write_file(c, plan_path);
  oc_compiled_free(c);
  if (s) return fail(s);
  return 0;
}
