/*
 * Gelu: y = 0.5 * z * (1 + erf(z / sqrt(2))), z = x + bias (the exact,
 * erf-based GELU). The compiler (compiler/fuse.c) makes it from the
 * Div/Erf/Add/Mul/Mul sequence that exporters write at opsets before 20,
 * together with the bias Add of the product before it.
 *   inputs:  x float32 (rank >= 1); optional bias float32 (C), C the last
 *            dim of x, added to every row of x first
 *   outputs: y, the type of x
 *   ints:    none          floats: none
 * The same float32 steps as that sequence (z / 1.41421354f, simd.h's erf,
 * + 1, * z, * 0.5f), so the same results (erf is compute-bound either way:
 * a multiply by 1/sqrt(2) instead of the division gains nothing measurable
 * and changes the tail of GELU by an ulp of 1), vectorized, the rows split
 * over the context's threads.
 */
#include "oc_ops.h"
#include "parallel.h"
#include "simd.h"

static oc_status_t gelu_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *x = c->in[0], *b = c->n_in > 1 ? c->in[1] : NULL;
  char b1[160], b2[160];
  OC_RETURN_IF_ERROR(oc_expect_dtype(x, OC_DTYPE_FLOAT32, "Gelu input x"));
  if (c->n_ints != 0 || c->n_floats != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "Gelu takes no ints or floats");
  if (x->rank < 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "Gelu needs x of rank >= 1, got %s",
                          oc_type_str(x, b1, sizeof b1));
  if (b) {
    OC_RETURN_IF_ERROR(oc_expect_dtype(b, OC_DTYPE_FLOAT32, "Gelu input bias"));
    if (b->rank != 1 || b->dims[0] != x->dims[x->rank - 1])
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "Gelu bias %s is not the last dim of x %s",
                            oc_type_str(b, b1, sizeof b1), oc_type_str(x, b2, sizeof b2));
  }
  oc_tensor_set_type(c->out[0], x->dtype, x->rank, x->dims);
  *ws = 0;
  return OC_OK;
}

OC_VINLINE oc_v16f gelu16(oc_v16f z) {
  oc_v16f e = oc_erf16(z / 1.41421354f) + 1.0f;
  return z * e * 0.5f;
}

/* y = gelu(x + b) over n elements (b: n floats, or NULL); y may be x. */
OC_SIMD_CLONES static void gelu_span(float *y, const float *x, const float *b, int64_t n) {
  int64_t i = 0;
  for (; i + OC_V16 <= n; i += OC_V16) {
    oc_v16f z = oc_v16_load(x + i);
    if (b) z = oc_v16_load(b + i) + z;
    oc_v16_store(y + i, gelu16(z));
  }
  if (i < n) {
    oc_v16f z = oc_v16_load_n(x + i, n - i);
    if (b) z = oc_v16_load_n(b + i, n - i) + z;
    oc_v16_store_n(y + i, gelu16(z), n - i);
  }
}

typedef struct gelu_job_s {
  float *y;
  const float *x, *b;
  int64_t cols; /* elements per row (the bias's length) */
} gelu_job_t;

/* Rows [r0, r1) of (rows, cols). */
static void gelu_part(void *arg, int64_t r0, int64_t r1, int thread) {
  const gelu_job_t *j = arg;
  (void)thread;
  if (!j->b) {
    gelu_span(j->y + r0 * j->cols, j->x + r0 * j->cols, NULL, (r1 - r0) * j->cols);
    return;
  }
  for (int64_t r = r0; r < r1; r++) gelu_span(j->y + r * j->cols, j->x + r * j->cols, j->b, j->cols);
}

/* x and y are (rows, cols), b is (cols) or absent. */
static oc_status_t gelu_run(const oc_op_call_t *c) {
  const oc_tensor_t *x = c->in[0];
  int64_t cols = x->dims[x->rank - 1], n = oc_tensor_numel(x);
  if (n == 0) return OC_OK;
  gelu_job_t j = {c->out[0]->data, x->data, c->n_in > 1 && c->in[1] ? c->in[1]->data : NULL,
                  cols};
  /* erf's rational function: ~30 operations per element */
  oc_parallel_for(c->pool, n / cols, oc_grain(8 * cols), gelu_part, &j);
  return OC_OK;
}

/* In place over x: each element of y depends on that element of x alone
 * (and on the bias). */
const oc_op_def_t oc_op_gelu = {"Gelu", 1, 2, 1, 1, gelu_infer, gelu_run, 0, 1u << 0};
