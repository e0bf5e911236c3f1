/*
 * BatchNormalization -> runtime/ops/batchnorm.c (ints [mode(, unbiased)],
 * floats [epsilon(, momentum)]).
 *
 * How each opset says "training":
 *   opset 1, 6:   attribute is_test = 0 (its default)
 *   opset 7, 9:   more than the one output Y (mean, var, saved_mean, saved_var)
 *   opset 14, 15: attribute training_mode = 1 (outputs Y, running_mean,
 *                 running_var)
 * Training uses the batch statistics for Y and writes the updated running
 * statistics (momentum * running + (1 - momentum) * batch, the population
 * variance as ONNX defines it: unbiased = 0) to outputs 1 and 2; BN-1..9's
 * outputs 3 and 4 (saved_mean, saved_var) are the batch mean and biased
 * variance, as in ONNX's reference implementation. Outputs the node omits
 * before its last present one get compiler temporaries.
 * Opset 1..7 also have spatial; spatial = 0 (per-activation statistics) is
 * refused. Only float32 (BN-15 allows other float types for scale/B and
 * mean/var: refused by the runtime op's dtype check).
 */
#include "autodiff.h"
#include "lower.h"

oc_status_t oc_lower_batchnorm(oc_lower_t *lw);
oc_status_t oc_lower_batchnorm(oc_lower_t *lw) {
  int n_extra = 0, last = 0;
  for (int i = 1; i < lw->node->n_out; i++)
    if (oc_lower_out(lw, i) >= 0) {
      n_extra++;
      last = i;
    }
  int training;
  if (lw->opset < 7) {
    int64_t is_test;
    OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "is_test", 0, &is_test));
    training = is_test == 0;
  } else if (lw->opset < 14) {
    training = n_extra > 0;
  } else {
    int64_t training_mode;
    OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "training_mode", 0, &training_mode));
    if (training_mode != 0 && training_mode != 1)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "attribute 'training_mode' is %lld",
                            (long long)training_mode);
    training = training_mode == 1;
    if (!training && n_extra > 0)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                            "outputs running_mean/running_var are only valid with training_mode=1");
    if (last > 2)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                            "BatchNormalization-%lld has at most 3 outputs, got %d",
                            (long long)lw->opset, last + 1);
  }
  if (lw->opset < 9) {
    int64_t spatial;
    OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "spatial", 1, &spatial));
    if (spatial != 1)
      return oc_lower_error(lw, OC_STATUS_UNSUPPORTED,
                            "attribute 'spatial'=%lld (per-activation statistics) is not supported",
                            (long long)spatial);
  }
  if (!training && n_extra > 0)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "inference BatchNormalization has one output, Y; got %d more",
                          n_extra);
  if (last > 4)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "BatchNormalization has at most 5 outputs, got %d", last + 1);
  float eps, momentum;
  OC_RETURN_IF_ERROR(oc_lower_attr_float(lw, "epsilon", 1e-5f, &eps));
  if (!(eps >= 0.0f))
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "attribute 'epsilon' is %g", eps);
  OC_RETURN_IF_ERROR(oc_lower_attr_float(lw, "momentum", 0.9f, &momentum));
  int in[5];
  for (int i = 0; i < 5; i++) {
    in[i] = oc_lower_in(lw, i);
    if (in[i] < 0)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                            "BatchNormalization needs 5 inputs (X, scale, B, mean, var); input "
                            "%d is missing",
                            i);
  }
  if (!training) {
    int out[1] = {oc_lower_out(lw, 0)};
    int64_t mode = 0; /* inference */
    return oc_lower_emit(lw, OC_OP_BATCHNORM, 5, in, 1, out, &mode, 1, &eps, 1);
  }
  if (!(momentum == momentum))
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "attribute 'momentum' is NaN");
  const oc_tensor_t *x = oc_lower_input(lw, 0);
  if (x->rank < 2)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "training-mode BatchNormalization needs X of rank >= 2, got rank %d",
                          x->rank);
  static const char *const hints[5] = {"Y", "running_mean", "running_var", "saved_mean",
                                       "saved_var"};
  int out[5];
  for (int i = 0; i <= last; i++) {
    out[i] = oc_lower_out(lw, i);
    if (out[i] < 0) out[i] = oc_lower_temp(lw, hints[i]);
    if (out[i] < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  }
  int64_t ints[2] = {1, 0}; /* training; ONNX's population variance in the running update */
  float floats[2] = {eps, momentum};
  return oc_lower_emit(lw, OC_OP_BATCHNORM, 5, in, last + 1, out, ints, 2, floats, 2);
}

/* Gradient of BatchNormalization: dx (through the batch statistics in
 * training mode, as PyTorch), dscale, dbias. The running statistics get no
 * gradient (PyTorch does not differentiate through running_mean/var). */
oc_status_t oc_grad_batchnorm(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_batchnorm(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  if (dy[0] < 0) return OC_OK; /* only Y carries a gradient */
  int64_t ints[2] = {fwd->ints[0], 0};
  int out[3], n_out = 0, which[3];
  for (int i = 0; i < 3; i++) {
    if (!oc_grad_wants(gc, i)) continue;
    ints[1] |= (int64_t)1 << i;
    out[n_out] = oc_grad_temp(gc, i == 0 ? "dx" : i == 1 ? "dscale" : "dbias");
    if (out[n_out] < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
    which[n_out++] = i;
  }
  if (!n_out) return OC_OK;
  int in[5] = {fwd->in[0], fwd->in[1], dy[0], fwd->in[3], fwd->in[4]};
  float eps = fwd->floats[0];
  OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_BATCHNORM_BWD, 5, in, n_out, out, ints, 2, &eps, 1));
  for (int k = 0; k < n_out; k++) OC_RETURN_IF_ERROR(oc_grad_accumulate(gc, which[k], out[k]));
  return OC_OK;
}
