/*
 * Softmax and LogSoftmax.
 *   inputs:  x float32 (any shape)
 *   outputs: y, same type as x
 *   ints:    [axis, flatten]: axis in [-rank, rank) (0 for a scalar);
 *            flatten 0: normalize over the single axis `axis` (opset >= 13);
 *            flatten 1: normalize over the block of all axes from `axis` on,
 *            as if x were reshaped to 2-D at `axis` (opset < 13).
 *   floats:  none
 * Numerically stable (the row maximum is subtracted first). Like PyTorch, a
 * row whose entries are all -inf gives NaN, and -inf entries of a row that
 * has a finite entry give exactly 0 (Softmax) or -inf (LogSoftmax).
 */
#include <math.h>

#include "oc_ops.h"

/* x viewed as (outer, n, inner), normalized over n. */
typedef struct sm_geom_s {
  int64_t outer, n, inner;
} sm_geom_t;

static oc_status_t sm_geometry(const oc_op_call_t *c, sm_geom_t *g) {
  const oc_tensor_t *x = c->in[0];
  if (c->n_ints != 2 || c->n_floats != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "needs ints [axis, flatten]");
  if (c->ints[1] != 0 && c->ints[1] != 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "flatten is %lld; must be 0 or 1",
                          (long long)c->ints[1]);
  int axis;
  OC_RETURN_IF_ERROR(oc_norm_axis(c->ints[0], x->rank, &axis));
  /* Checked: dims after a zero dim are unbounded by the tensor-size check. */
  uint64_t p[3] = {1, 1, 1};
  for (int i = 0; i < x->rank; i++) {
    int part = i < axis ? 0 : (i == axis || c->ints[1]) ? 1 : 2;
    if (oc_mul_overflows(p[part], (uint64_t)x->dims[i], &p[part]) ||
        p[part] > ((uint64_t)1 << 62))
      return oc_make_status(OC_STATUS_RESOURCE_LIMIT, "input dims are too large");
  }
  g->outer = (int64_t)p[0];
  g->n = (int64_t)p[1];
  g->inner = (int64_t)p[2];
  return OC_OK;
}

static oc_status_t softmax_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *x = c->in[0];
  OC_RETURN_IF_ERROR(oc_expect_dtype(x, OC_DTYPE_FLOAT32, "input"));
  sm_geom_t g;
  OC_RETURN_IF_ERROR(sm_geometry(c, &g));
  oc_tensor_set_type(c->out[0], x->dtype, x->rank, x->dims);
  *ws = 0;
  return OC_OK;
}

/* One row of n entries |stride| apart: x is (n), y is (n); y may alias x. */
static void softmax_row(float *y, const float *x, int64_t n, int64_t stride, int log_out) {
  if (n == 0) return;
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; i++) {
    float v = x[i * stride];
    if (v > mx) mx = v;
  }
  /* mx == -inf (every entry -inf or NaN): x - mx is NaN, so the row is NaN. */
  double sum = 0.0;
  if (log_out) {
    for (int64_t i = 0; i < n; i++) sum += expf(x[i * stride] - mx);
    float lse = (float)log(sum);
    for (int64_t i = 0; i < n; i++) y[i * stride] = (x[i * stride] - mx) - lse;
  } else {
    for (int64_t i = 0; i < n; i++) {
      float e = expf(x[i * stride] - mx);
      y[i * stride] = e;
      sum += e;
    }
    for (int64_t i = 0; i < n; i++) y[i * stride] = (float)(y[i * stride] / sum);
  }
}

/* x is (outer, n, inner), y is (outer, n, inner). */
static oc_status_t softmax_run_kind(const oc_op_call_t *c, int log_out) {
  const float *x = c->in[0]->data;
  float *y = c->out[0]->data;
  sm_geom_t g;
  OC_RETURN_IF_ERROR(sm_geometry(c, &g));
  for (int64_t o = 0; o < g.outer; o++)
    for (int64_t i = 0; i < g.inner; i++) {
      int64_t base = o * g.n * g.inner + i;
      softmax_row(y + base, x + base, g.n, g.inner, log_out);
    }
  return OC_OK;
}

static oc_status_t softmax_run(const oc_op_call_t *c) { return softmax_run_kind(c, 0); }
static oc_status_t log_softmax_run(const oc_op_call_t *c) { return softmax_run_kind(c, 1); }

const oc_op_def_t oc_op_softmax = {"Softmax", 1, 1, 1, 1, softmax_infer, softmax_run};
const oc_op_def_t oc_op_log_softmax = {"LogSoftmax", 1, 1, 1, 1, softmax_infer, log_softmax_run};
