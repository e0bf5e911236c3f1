/*
 * BatchNormalization -> runtime/ops/batchnorm.c (ints [mode], floats [epsilon]).
 *
 * Inference only for now. How each opset says "training":
 *   opset 1, 6:   attribute is_test = 0 (its default)
 *   opset 7, 9:   more than the one output Y (mean, var, saved_mean, saved_var)
 *   opset 14, 15: attribute training_mode = 1
 * Opset 7 also has spatial; spatial = 0 (per-activation statistics) is refused.
 */
#include "lower.h"

oc_status_t oc_lower_batchnorm(oc_lower_t *lw);
oc_status_t oc_lower_batchnorm(oc_lower_t *lw) {
  int n_extra = 0;
  for (int i = 1; i < lw->node->n_out; i++)
    if (oc_lower_out(lw, i) >= 0) n_extra++;
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
  }
  if (training)
    return oc_lower_error(lw, OC_STATUS_UNSUPPORTED,
                          "training-mode BatchNormalization is not supported yet");
  if (lw->opset < 9) {
    int64_t spatial;
    OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "spatial", 1, &spatial));
    if (spatial != 1)
      return oc_lower_error(lw, OC_STATUS_UNSUPPORTED,
                            "attribute 'spatial'=%lld (per-activation statistics) is not supported",
                            (long long)spatial);
  }
  if (n_extra > 0)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "inference BatchNormalization has one output, Y; got %d more",
                          n_extra);
  float eps;
  OC_RETURN_IF_ERROR(oc_lower_attr_float(lw, "epsilon", 1e-5f, &eps));
  if (!(eps >= 0.0f))
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "attribute 'epsilon' is %g", eps);
  int in[5];
  for (int i = 0; i < 5; i++) {
    in[i] = oc_lower_in(lw, i);
    if (in[i] < 0)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                            "BatchNormalization needs 5 inputs (X, scale, B, mean, var); input "
                            "%d is missing",
                            i);
  }
  int out[1] = {oc_lower_out(lw, 0)};
  int64_t mode = 0; /* inference */
  return oc_lower_emit(lw, OC_OP_BATCHNORM, 5, in, 1, out, &mode, 1, &eps, 1);
}
