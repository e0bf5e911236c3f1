/*
 * BatchNormalization over axis 1.
 *
 *   inputs:  x (float32, (N, C, D1..Dn), rank >= 2; rank 1 is (C)),
 *            scale, bias, mean, var (float32, (C) each)
 *   outputs: y (float32, shape of x)
 *   ints:    [mode]     0 = inference: y = scale * (x - mean) / sqrt(var + eps) + bias
 *                       (other modes are reserved for training variants)
 *   floats:  [epsilon]
 *
 * The rank-1 case follows the ONNX reference implementation, which reshapes
 * the per-channel inputs to (C, 1, .., 1) over rank - 2 trailing axes: for a
 * rank-1 x that is a plain (C) vector matched elementwise.
 */
#include <math.h>
#include <stdio.h>

#include "oc_ops.h"

enum { BN_MODE_INFERENCE = 0 };

static oc_status_t batchnorm_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *x = c->in[0];
  static const char *const names[5] = {"X", "scale", "B", "input_mean", "input_var"};
  char buf[160];
  for (int i = 0; i < 5; i++) {
    char what[32];
    snprintf(what, sizeof what, "input %s", names[i]);
    OC_RETURN_IF_ERROR(oc_expect_dtype(c->in[i], OC_DTYPE_FLOAT32, what));
  }
  if (c->n_ints != 1 || c->n_floats != 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "BatchNormalization takes ints [mode] and floats [epsilon], got %d "
                          "ints and %d floats",
                          c->n_ints, c->n_floats);
  if (c->ints[0] != BN_MODE_INFERENCE)
    return oc_make_status(OC_STATUS_UNSUPPORTED, "BatchNormalization mode %lld is not supported",
                          (long long)c->ints[0]);
  if (c->n_out != 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "inference BatchNormalization has 1 output, got %d", c->n_out);
  if (x->rank < 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input X is a scalar; expected (N, C, ...)");
  int64_t C = x->rank >= 2 ? x->dims[1] : x->dims[0];
  for (int i = 1; i < 5; i++) {
    const oc_tensor_t *t = c->in[i];
    if (t->rank != 1 || t->dims[0] != C)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input %s is %s; expected float32[%lld]",
                            names[i], oc_type_str(t, buf, sizeof buf), (long long)C);
  }
  oc_tensor_set_type(c->out[0], x->dtype, x->rank, x->dims);
  *ws = 0;
  return OC_OK;
}

/* y and x are (N, C, S); scale, bias, mean, var are (C). */
static void batchnorm_forward(float *y, const float *x, const float *scale, const float *bias,
                              const float *mean, const float *var, float eps, int64_t N,
                              int64_t C, int64_t S) {
  for (int64_t ch = 0; ch < C; ch++) {
    float a = (float)((double)scale[ch] / sqrt((double)var[ch] + (double)eps));
    float m = mean[ch], b = bias[ch];
    for (int64_t n = 0; n < N; n++) {
      const float *xr = x + (n * C + ch) * S;
      float *yr = y + (n * C + ch) * S;
      for (int64_t i = 0; i < S; i++) yr[i] = (xr[i] - m) * a + b;
    }
  }
}

static oc_status_t batchnorm_run(const oc_op_call_t *c) {
  const oc_tensor_t *x = c->in[0];
  int64_t N = 1, C, S = 1;
  if (x->rank >= 2) {
    N = x->dims[0];
    C = x->dims[1];
    for (int i = 2; i < x->rank; i++) S *= x->dims[i];
  } else {
    C = x->dims[0];
  }
  batchnorm_forward(c->out[0]->data, x->data, c->in[1]->data, c->in[2]->data, c->in[3]->data,
                    c->in[4]->data, c->floats[0], N, C, S);
  return OC_OK;
}

const oc_op_def_t oc_op_batchnorm = {"BatchNormalization", 5, 5, 1, 5, batchnorm_infer,
                                     batchnorm_run};
