/*
 * Softmax and LogSoftmax -> runtime/ops/softmax.c (OC_OP_SOFTMAX,
 * OC_OP_LOG_SOFTMAX), ints [axis, flatten].
 *
 * Opsets 1 and 11: the input is coerced to 2-D at `axis` (default 1) and
 * normalized over the flattened block of axes axis..rank-1 (flatten = 1).
 * Opset 13: normalized over the single axis `axis` (default -1).
 */
#include "autodiff.h"
#include "lower.h"

static oc_status_t lower_softmax_kind(oc_lower_t *lw, int op) {
  const oc_tensor_t *x = oc_lower_input(lw, 0);
  if (!x) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input 'input' is missing");
  if (x->dtype != OC_DTYPE_FLOAT32)
    return oc_lower_error(lw, OC_STATUS_UNSUPPORTED, "input 'input' has dtype %s; float32 only",
                          oc_dtype_name(x->dtype));
  int legacy = lw->opset < 13;
  int64_t axis;
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "axis", legacy ? 1 : -1, &axis));
  int r = x->rank;
  if (r == 0 ? (axis != 0 && axis != -1) : (axis < -r || axis >= r))
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "attribute 'axis' is %lld; must be in [%d, %d] for rank %d",
                          (long long)axis, -r, r - 1, r);
  int64_t ints[2] = {r == 0 ? 0 : (axis < 0 ? axis + r : axis), legacy};
  int in[1] = {oc_lower_in(lw, 0)}, out[1] = {oc_lower_out(lw, 0)};
  return oc_lower_emit(lw, op, 1, in, 1, out, ints, 2, NULL, 0);
}

oc_status_t oc_lower_softmax(oc_lower_t *lw);
oc_status_t oc_lower_softmax(oc_lower_t *lw) { return lower_softmax_kind(lw, OC_OP_SOFTMAX); }

oc_status_t oc_lower_logsoftmax(oc_lower_t *lw);
oc_status_t oc_lower_logsoftmax(oc_lower_t *lw) {
  return lower_softmax_kind(lw, OC_OP_LOG_SOFTMAX);
}

/* --- gradients ---------------------------------------------------------------- */

/* Softmax and LogSoftmax: one SoftmaxBwd from the forward output y and dy
 * (see runtime/ops/softmax.c: masked -inf entries get exactly 0 for Softmax
 * and are left out of the row sums). */
static oc_status_t grad_softmax_kind(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy, int log) {
  if (dy[0] < 0 || !oc_grad_wants(gc, 0)) return OC_OK;
  int64_t ints[3] = {fwd->ints[0], fwd->ints[1], log};
  int dx = oc_grad_temp(gc, "dx");
  if (dx < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  int in[2] = {fwd->out[0], dy[0]};
  OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_SOFTMAX_BWD, 2, in, 1, &dx, ints, 3, NULL, 0));
  return oc_grad_accumulate(gc, 0, dx);
}

oc_status_t oc_grad_softmax(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_softmax(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  return grad_softmax_kind(gc, fwd, dy, 0);
}

oc_status_t oc_grad_log_softmax(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_log_softmax(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  return grad_softmax_kind(gc, fwd, dy, 1);
}
