/*
 * InstanceNormalization and LpNormalization.
 *
 * InstanceNormalization:
 *   inputs:  x (float32, (N, C, D1..Dn), rank >= 2), scale, bias (float32, (C))
 *   outputs: y (float32, shape of x)
 *   ints:    none          floats: [epsilon]
 *   For every (n, c), over its S = D1*..*Dn values: mean and biased variance
 *   (two passes in double), y = scale[c] * (x - mean) / sqrt(var + eps) +
 *   bias[c]. S = 0 leaves nothing to write.
 * LpNormalization:
 *   inputs:  x (float32, any rank >= 1)
 *   outputs: y (float32, shape of x)
 *   ints:    [axis, p]: axis in [-rank, rank), p 1 or 2      floats: none
 *   y = x / ||x||_p along axis (sum of |x| or the root of the sum of
 *   squares, in double). A zero vector gives 0 / 0 = NaN, as in ONNX's
 *   reference implementation.
 */
#include <math.h>

#include "oc_ops.h"

static oc_status_t instancenorm_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *x = c->in[0];
  char buf[160];
  *ws = 0;
  OC_RETURN_IF_ERROR(oc_expect_dtype(x, OC_DTYPE_FLOAT32, "input"));
  OC_RETURN_IF_ERROR(oc_expect_dtype(c->in[1], OC_DTYPE_FLOAT32, "scale"));
  OC_RETURN_IF_ERROR(oc_expect_dtype(c->in[2], OC_DTYPE_FLOAT32, "B"));
  if (c->n_ints != 0 || c->n_floats != 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "InstanceNormalization takes floats [epsilon] and no ints, got %d ints "
                          "and %d floats",
                          c->n_ints, c->n_floats);
  if (x->rank < 2)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input is %s; expected (N, C, D1..Dn)",
                          oc_type_str(x, buf, sizeof buf));
  for (int i = 1; i < 3; i++) {
    const oc_tensor_t *t = c->in[i];
    if (t->rank != 1 || t->dims[0] != x->dims[1])
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input %s is %s; expected float32[%lld]",
                            i == 1 ? "scale" : "B", oc_type_str(t, buf, sizeof buf),
                            (long long)x->dims[1]);
  }
  oc_tensor_set_type(c->out[0], x->dtype, x->rank, x->dims);
  return OC_OK;
}

/* y and x are (N, C, S); scale and bias (C). */
static void instancenorm_forward(float *y, const float *x, const float *scale, const float *bias,
                                 float eps, int64_t N, int64_t C, int64_t S) {
  for (int64_t nc = 0; nc < N * C; nc++) {
    const float *xr = x + nc * S;
    float *yr = y + nc * S;
    int64_t ch = nc % C;
    double sum = 0.0, sq = 0.0;
    for (int64_t i = 0; i < S; i++) sum += xr[i];
    double mean = sum / (double)S;
    for (int64_t i = 0; i < S; i++) {
      double d = (double)xr[i] - mean;
      sq += d * d;
    }
    double a = (double)scale[ch] / sqrt(sq / (double)S + (double)eps), b = bias[ch];
    for (int64_t i = 0; i < S; i++) yr[i] = (float)(((double)xr[i] - mean) * a + b);
  }
}

static oc_status_t instancenorm_run(const oc_op_call_t *c) {
  const oc_tensor_t *x = c->in[0];
  int64_t S = 1;
  for (int i = 2; i < x->rank; i++) S *= x->dims[i];
  if (S == 0) return OC_OK;
  instancenorm_forward(c->out[0]->data, x->data, c->in[1]->data, c->in[2]->data, c->floats[0],
                       x->dims[0], x->dims[1], S);
  return OC_OK;
}

const oc_op_def_t oc_op_instancenorm = {"InstanceNormalization", 3, 3, 1, 1, instancenorm_infer,
                                        instancenorm_run};

/* --- LpNormalization ------------------------------------------------------ */

static oc_status_t lpnorm_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *x = c->in[0];
  int axis;
  *ws = 0;
  OC_RETURN_IF_ERROR(oc_expect_dtype(x, OC_DTYPE_FLOAT32, "input"));
  if (c->n_ints != 2 || c->n_floats != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "LpNormalization takes ints [axis, p], got %d ints and %d floats",
                          c->n_ints, c->n_floats);
  if (x->rank < 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input is a scalar; it has no axis");
  OC_RETURN_IF_ERROR(oc_norm_axis(c->ints[0], x->rank, &axis));
  if (c->ints[1] != 1 && c->ints[1] != 2)
    return oc_make_status(OC_STATUS_UNSUPPORTED, "p is %lld; LpNormalization takes 1 or 2",
                          (long long)c->ints[1]);
  oc_tensor_set_type(c->out[0], x->dtype, x->rank, x->dims);
  return OC_OK;
}

/* y and x are (outer, n, inner): every x[o, :, i] divided by its p-norm. */
static void lpnorm_forward(float *y, const float *x, int64_t outer, int64_t n, int64_t inner,
                           int p) {
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      const float *xv = x + o * n * inner + i;
      float *yv = y + o * n * inner + i;
      double acc = 0.0;
      for (int64_t k = 0; k < n; k++) {
        double v = xv[k * inner];
        acc += p == 1 ? fabs(v) : v * v;
      }
      double norm = p == 1 ? acc : sqrt(acc);
      for (int64_t k = 0; k < n; k++) yv[k * inner] = (float)((double)xv[k * inner] / norm);
    }
}

static oc_status_t lpnorm_run(const oc_op_call_t *c) {
  const oc_tensor_t *x = c->in[0];
  int axis;
  OC_RETURN_IF_ERROR(oc_norm_axis(c->ints[0], x->rank, &axis));
  /* An empty tensor has nothing to write (and outer * inner alone could be
   * huge when the axis is the empty one). */
  if (oc_tensor_numel(x) == 0) return OC_OK;
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; i++) outer *= x->dims[i];
  for (int i = axis + 1; i < x->rank; i++) inner *= x->dims[i];
  lpnorm_forward(c->out[0]->data, x->data, outer, x->dims[axis], inner, (int)c->ints[1]);
  return OC_OK;
}

const oc_op_def_t oc_op_lpnorm = {"LpNormalization", 1, 1, 1, 1, lpnorm_infer, lpnorm_run};
