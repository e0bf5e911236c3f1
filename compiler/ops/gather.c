/*
 * Gather (opsets 1, 11, 13) -> runtime/ops/gather.c (OC_OP_GATHER), ints
 * [axis]. Any data dtype the runtime stores; int64 or int32 indices;
 * negative indices count from the end (opset 11 semantics, applied to every
 * opset). Out-of-range indices are a run-time error (or a compile error when
 * the Gather folds). GatherElements and GatherND are different ops.
 */
#include "autodiff.h"
#include "lower.h"

oc_status_t oc_lower_gather(oc_lower_t *lw);
oc_status_t oc_lower_gather(oc_lower_t *lw) {
  const oc_tensor_t *x = oc_lower_input(lw, 0), *idx = oc_lower_input(lw, 1);
  if (!x) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input 'data' is missing");
  if (!idx) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input 'indices' is missing");
  if (idx->dtype != OC_DTYPE_INT64 && idx->dtype != OC_DTYPE_INT32)
    return oc_lower_error(lw, OC_STATUS_UNSUPPORTED,
                          "input 'indices' has dtype %s; int64 or int32 expected",
                          oc_dtype_name(idx->dtype));
  int64_t axis;
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "axis", 0, &axis));
  if (x->rank < 1)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input 'data' must have rank >= 1");
  if (axis < -(int64_t)x->rank || axis >= (int64_t)x->rank)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "attribute 'axis' is %lld; must be in [%d, %d] for rank %d",
                          (long long)axis, -x->rank, x->rank - 1, x->rank);
  int64_t ints[1] = {axis < 0 ? axis + x->rank : axis};
  int in[2] = {oc_lower_in(lw, 0), oc_lower_in(lw, 1)}, out[1] = {oc_lower_out(lw, 0)};
  return oc_lower_emit(lw, OC_OP_GATHER, 2, in, 1, out, ints, 1, NULL, 0);
}

/* --- gradients ---------------------------------------------------------------- */

/* Gather: d data = GatherBwd(indices, dy), a scatter-add into zeros of data's
 * dims (repeated indices accumulate, negative ones wrap); the indices get no
 * gradient. */
oc_status_t oc_grad_gather(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_gather(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  if (dy[0] < 0 || !oc_grad_wants(gc, 0)) return OC_OK;
  const oc_tensor_t x = oc_grad_graph(gc)->values[fwd->in[0]].type;
  if (x.dtype != OC_DTYPE_FLOAT32)
    return oc_grad_error(gc, OC_STATUS_UNSUPPORTED, "the data is not float32");
  int64_t ints[1 + OC_MAX_RANK];
  ints[0] = fwd->ints[0] < 0 ? fwd->ints[0] + x.rank : fwd->ints[0];
  for (int d = 0; d < x.rank; d++) ints[1 + d] = x.dims[d];
  int dx = oc_grad_temp(gc, "ddata");
  if (dx < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  int in[2] = {fwd->in[1], dy[0]};
  OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_GATHER_BWD, 2, in, 1, &dx, ints, 1 + x.rank, NULL, 0));
  return oc_grad_accumulate(gc, 0, dx);
}
