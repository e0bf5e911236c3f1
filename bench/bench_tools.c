/*
 * Small timers of the speed benchmark (bench/run.sh), on the public API.
 *
 *   bench_tools sgemm THREADS REPEAT   OpenBLAS sgemm, 2048^3, with OpenBLAS's own
 *                                      THREADS threads: prints gflops (the median
 *                                      of REPEAT runs after a warm-up)
 *   bench_tools open PLAN REPEAT [0]   oc_plan_open_file (default options: the
 *                                      weights' checksum is verified; 0: not) +
 *                                      release; prints median_ms, min_ms, max_ms
 *   bench_tools flops PLAN ENTRY       multiply-add FLOPs (2 per multiply-add) of
 *                                      the entry point's products as the plan
 *                                      writes them: Conv, MatMul, Gemm, their
 *                                      gradients and Attention's two products
 *                                      (direct-convolution counts, whatever
 *                                      algorithm the kernels use)
 *
 * flops reads the plan's instructions through the runtime's internal view
 * (plan_internal.h): link the in-tree runtime library.
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "plan_internal.h"

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int sgemm(int threads, int repeat) {
  const int n = 2048;
  float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n);
  float *c = malloc(sizeof(float) * n * n);
  double *ms = malloc(sizeof(double) * (size_t)repeat);
  if (!a || !b || !c || !ms) return 1;
  for (long i = 0; i < (long)n * n; i++) {
    a[i] = (float)(i % 7) * 0.25f;
    b[i] = (float)(i % 5) * 0.5f;
  }
  openblas_set_num_threads(threads);
  for (int k = -1; k < repeat; k++) {
    double t0 = now_ms();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    if (k >= 0) ms[k] = now_ms() - t0;
  }
  double med = median(ms, repeat);
  printf("gflops: %.1f\n", 2.0 * n * n * (double)n / (med * 1e6));
  free(a);
  free(b);
  free(c);
  free(ms);
  return 0;
}

static int open_plan(const char *path, int repeat, int verify) {
  double *ms = malloc(sizeof(double) * (size_t)repeat);
  if (!ms) return 1;
  oc_plan_options_t o;
  oc_plan_options_init(&o);
  o.verify_weights = verify;
  for (int k = -1; k < repeat; k++) {
    oc_plan_t *plan = NULL;
    double t0 = now_ms();
    oc_status_t s = oc_plan_open_file(path, &o, &plan);
    oc_plan_release(plan);
    double t = now_ms() - t0;
    if (s) {
      fprintf(stderr, "bench_tools: %s\n", oc_status_message(s));
      oc_status_free(s);
      return 1;
    }
    if (k >= 0) ms[k] = t;
  }
  double med = median(ms, repeat);
  printf("median_ms: %.4f\nmin_ms: %.4f\nmax_ms: %.4f\n", med, ms[0], ms[repeat - 1]);
  free(ms);
  return 0;
}

static int64_t numel(const oc_plan_tensor_t *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++) n *= t->dims[i];
  return n;
}

static int flops(const char *path, const char *entry_name) {
  oc_plan_t *plan = NULL;
  int entry;
  oc_status_t s = oc_plan_open_file(path, NULL, &plan);
  if (!s) s = oc_plan_find_entry(plan, entry_name, &entry);
  if (s) {
    fprintf(stderr, "bench_tools: %s\n", oc_status_message(s));
    return 1;
  }
  const oc_plan_entry_t *e = &plan->entries[entry];
  double total = 0;
  for (int i = 0; i < e->n_instrs; i++) {
    const oc_plan_instr_t *ins = &e->instrs[i];
    const oc_plan_tensor_t *t0 = ins->n_in > 0 && ins->in[0] >= 0 ? &plan->tensors[ins->in[0]] : NULL;
    const oc_plan_tensor_t *t1 = ins->n_in > 1 && ins->in[1] >= 0 ? &plan->tensors[ins->in[1]] : NULL;
    const oc_plan_tensor_t *y = ins->n_out > 0 ? &plan->tensors[ins->out[0]] : NULL;
    if (!t0 || !t1 || !y) continue;
    switch (ins->op) {
      case OC_OP_CONV: /* y (N, M, ...) from w (M, C/g, k...) */
        total += 2.0 * (double)numel(y) * (double)(numel(t1) / t1->dims[0]);
        break;
      case OC_OP_CONV_BWD_DATA: /* dy (N, M, ...), w (M, C/g, k...): as the forward */
        total += 2.0 * (double)numel(t0) * (double)(numel(t1) / t1->dims[0]);
        break;
      case OC_OP_CONV_BWD_FILTER: /* x, dy -> dw (M, C/g, k...) */
        total += 2.0 * (double)numel(t1) * (double)(numel(y) / y->dims[0]);
        break;
      case OC_OP_MATMUL:
        total += 2.0 * (double)numel(y) * (double)t0->dims[t0->rank - 1];
        break;
      case OC_OP_GEMM: /* y (m, n), A (m, k) or (k, m) */
        total += 2.0 * (double)numel(y) * (double)(ins->ints[0] ? t0->dims[0] : t0->dims[1]);
        break;
      case OC_OP_MATMUL_BWD: /* dy (.., m, n); da = dy b^T (b: k, n), db = a^T dy (a: m, k) */
        if (t1->rank >= 2)
          total += 2.0 * (double)numel(t0) *
                   (double)(ins->ints[0] == 0 ? t1->dims[t1->rank - 2] : t1->dims[t1->rank - 1]);
        break;
      case OC_OP_ATTENTION: { /* y holds batch x tq x dv; ints [nb, 5 per batch dim, tq, tk, dk, dv, ...] */
        const int64_t *p = ins->ints + 1 + 5 * ins->ints[0];
        total += 2.0 * (double)numel(y) / (double)p[3] * (double)p[1] * (double)(p[2] + p[3]);
        break;
      }
      default: break;
    }
  }
  printf("%.0f\n", total);
  oc_plan_release(plan);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && !strcmp(argv[1], "sgemm")) return sgemm(atoi(argv[2]), atoi(argv[3]));
  if ((argc == 4 || argc == 5) && !strcmp(argv[1], "open"))
    return open_plan(argv[2], atoi(argv[3]), argc == 5 ? atoi(argv[4]) : 1);
  if (argc == 4 && !strcmp(argv[1], "flops")) return flops(argv[2], argv[3]);
  fprintf(stderr,
          "usage: bench_tools sgemm THREADS REPEAT | open PLAN REPEAT [0] | flops PLAN ENTRY\n");
  return 2;
}
