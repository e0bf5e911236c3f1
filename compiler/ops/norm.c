/*
 * InstanceNormalization (opset 1, 6) and LpNormalization (opset 1) ->
 * runtime/ops/norm.c. float32 only.
 */
#include "lower.h"

/* InstanceNormalization: inputs input, scale, B; attribute epsilon (1e-5).
 * Opset 1's consumed_inputs is legacy bookkeeping and ignored. */
oc_status_t oc_lower_instancenorm(oc_lower_t *lw);
oc_status_t oc_lower_instancenorm(oc_lower_t *lw) {
  int in[3];
  for (int i = 0; i < 3; i++) {
    in[i] = oc_lower_in(lw, i);
    if (in[i] < 0)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                            "InstanceNormalization needs 3 inputs (input, scale, B); input %d "
                            "is missing",
                            i);
  }
  float eps;
  OC_RETURN_IF_ERROR(oc_lower_attr_float(lw, "epsilon", 1e-5f, &eps));
  if (!(eps >= 0.0f))
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "attribute 'epsilon' is %g", eps);
  int out[1] = {oc_lower_out(lw, 0)};
  return oc_lower_emit(lw, OC_OP_INSTANCENORM, 3, in, 1, out, NULL, 0, &eps, 1);
}

/* LpNormalization: attributes axis (-1) and p (2; 1 or 2). */
oc_status_t oc_lower_lpnormalization(oc_lower_t *lw);
oc_status_t oc_lower_lpnormalization(oc_lower_t *lw) {
  const oc_tensor_t *x = oc_lower_input(lw, 0);
  if (!x) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input is required");
  int64_t ints[2];
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "axis", -1, &ints[0]));
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "p", 2, &ints[1]));
  if (ints[1] != 1 && ints[1] != 2)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "attribute 'p' is %lld; LpNormalization takes 1 or 2",
                          (long long)ints[1]);
  if (ints[0] < -(int64_t)x->rank || ints[0] >= (int64_t)x->rank)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "attribute 'axis' is %lld; input has rank %d", (long long)ints[0],
                          x->rank);
  int in[1] = {oc_lower_in(lw, 0)}, out[1] = {oc_lower_out(lw, 0)};
  return oc_lower_emit(lw, OC_OP_LPNORM, 1, in, 1, out, ints, 2, NULL, 0);
}

/* --- gradients --------------------------------------------------------------- */

#include "autodiff.h"

/* InstanceNormalization: InstanceNormalizationBwd(X, scale, dY), ints [mask]
 * (1 dX, 2 dscale, 4 dB, only those wanted), floats [epsilon]: LayerNorm's
 * backward over the spatial values of every (n, c) with the batch statistics
 * (PyTorch's instance_norm). */
oc_status_t oc_grad_instancenorm(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_instancenorm(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  if (dy[0] < 0) return OC_OK;
  static const char *const names[3] = {"dx", "dscale", "dbias"};
  int64_t mask = 0;
  int out[3], which[3], n_out = 0;
  for (int i = 0; i < 3; i++) {
    if (!oc_grad_wants(gc, i)) continue;
    mask |= (int64_t)1 << i;
    out[n_out] = oc_grad_temp(gc, names[i]);
    if (out[n_out] < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
    which[n_out++] = i;
  }
  if (!n_out) return OC_OK;
  int in[3] = {fwd->in[0], fwd->in[1], dy[0]};
  OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_INSTANCENORM_BWD, 3, in, n_out, out, &mask, 1,
                                  fwd->floats, fwd->n_floats));
  for (int k = 0; k < n_out; k++) OC_RETURN_IF_ERROR(oc_grad_accumulate(gc, which[k], out[k]));
  return OC_OK;
}

/* LpNormalization: LpNormalizationBwd(X, dY) with the forward ints [axis, p]:
 * the derivative of x / ||x||_p, 0 for a zero vector. */
oc_status_t oc_grad_lpnorm(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_lpnorm(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  if (dy[0] < 0 || !oc_grad_wants(gc, 0)) return OC_OK;
  int dx = oc_grad_temp(gc, "dx");
  if (dx < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  int in[2] = {fwd->in[0], dy[0]};
  OC_RETURN_IF_ERROR(
      oc_grad_emit(gc, OC_OP_LPNORM_BWD, 2, in, 1, &dx, fwd->ints, fwd->n_ints, NULL, 0));
  return oc_grad_accumulate(gc, 0, dx);
}
