/*
 * The Reduce* family -> runtime/ops/reduce.c, ints [keepdims, axis...].
 *
 * Axes come from the `axes` attribute before the opset where they became an
 * optional input (ReduceSum: 13, the others: 18); from then on the input
 * must be a compile-time constant, except that a statically empty axes input
 * (shape [0]) needs no value. No axes means every axis, unless
 * noop_with_empty_axes=1 (an input-axes opset only), which makes the node an
 * identity (lowered to a Copy). keepdims defaults to 1.
 * Dtypes: float32; ReduceSum/Max/Min/Prod also int64 and int32 (the runtime
 * op's shape rule refuses the rest with UNSUPPORTED).
 */
#include "autodiff.h"
#include "lower.h"

static oc_status_t lower_reduce_kind(oc_lower_t *lw, int op, int64_t axes_input_from) {
  const oc_tensor_t *x = oc_lower_input(lw, 0);
  if (!x) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input 'data' is missing");
  int64_t keepdims, noop = 0;
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "keepdims", 1, &keepdims));
  if (keepdims != 0 && keepdims != 1)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "attribute 'keepdims' is %lld; must be 0 or 1",
                          (long long)keepdims);
  int64_t ints[1 + OC_MAX_RANK];
  int n_axes = 0;
  if (lw->opset < axes_input_from) {
    const int64_t *a;
    int na;
    OC_RETURN_IF_ERROR(oc_lower_attr_ints(lw, "axes", &a, &na));
    if (na > OC_MAX_RANK)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                            "attribute 'axes' has %d entries; the input has rank %d", na, x->rank);
    for (int i = 0; i < na; i++) ints[1 + i] = a[i];
    n_axes = na < 0 ? 0 : na;
  } else {
    const int64_t *a;
    int na;
    OC_RETURN_IF_ERROR(oc_lower_attr_ints(lw, "axes", &a, &na));
    if (na >= 0)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                            "attribute 'axes' is not allowed from opset %lld (axes is an input)",
                            (long long)axes_input_from);
    OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "noop_with_empty_axes", 0, &noop));
    const oc_tensor_t *t = oc_lower_input(lw, 1);
    if (t && oc_tensor_numel(t) > 0) {
      if (t->rank != 1 || oc_tensor_numel(t) > OC_MAX_RANK)
        return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                              "input 'axes' must be 1-D with at most rank(data)=%d entries",
                              x->rank);
      OC_RETURN_IF_ERROR(oc_lower_const_ints(lw, 1, ints + 1, OC_MAX_RANK, &n_axes));
    }
  }
  for (int i = 0; i < n_axes; i++)
    if (ints[1 + i] < -(int64_t)x->rank || ints[1 + i] >= (int64_t)x->rank)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                            "axes value %lld is out of range for rank %d",
                            (long long)ints[1 + i], x->rank);
  if (n_axes == 0 && noop)
    return oc_lower_reshape(lw, oc_lower_in(lw, 0), oc_lower_out(lw, 0), x->rank, x->dims);
  ints[0] = keepdims;
  int in[1] = {oc_lower_in(lw, 0)}, out[1] = {oc_lower_out(lw, 0)};
  return oc_lower_emit(lw, op, 1, in, 1, out, ints, 1 + n_axes, NULL, 0);
}

#define REDUCE(name, OP, FROM)                 \
  oc_status_t oc_lower_##name(oc_lower_t *lw); \
  oc_status_t oc_lower_##name(oc_lower_t *lw) { return lower_reduce_kind(lw, OP, FROM); }

REDUCE(reduce_sum, OC_OP_REDUCE_SUM, 13)
REDUCE(reduce_mean, OC_OP_REDUCE_MEAN, 18)
REDUCE(reduce_max, OC_OP_REDUCE_MAX, 18)
REDUCE(reduce_min, OC_OP_REDUCE_MIN, 18)
REDUCE(reduce_prod, OC_OP_REDUCE_PROD, 18)
REDUCE(reduce_l1, OC_OP_REDUCE_L1, 18)
REDUCE(reduce_l2, OC_OP_REDUCE_L2, 18)
REDUCE(reduce_sum_square, OC_OP_REDUCE_SUM_SQUARE, 18)
REDUCE(reduce_log_sum, OC_OP_REDUCE_LOG_SUM, 18)
REDUCE(reduce_log_sum_exp, OC_OP_REDUCE_LOG_SUM_EXP, 18)

/* --- gradients ---------------------------------------------------------------- */

/* Every float reduction: one ReduceBwd (runtime/ops/reduce.c has the
 * formulas) with ints [op, rank, x dims..., the forward's ints]; it reads x
 * and y only for the kinds that need them, so a ReduceSum/ReduceMean keeps
 * neither alive. Max/Min split dy evenly among tied maxima (PyTorch's
 * amax/amin), L2 gives 0 at the zero vector, Prod is exact around zeros. */
oc_status_t oc_grad_reduce(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_reduce(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  if (dy[0] < 0 || !oc_grad_wants(gc, 0)) return OC_OK;
  const oc_tensor_t x = oc_grad_graph(gc)->values[fwd->in[0]].type;
  if (x.dtype != OC_DTYPE_FLOAT32)
    return oc_grad_error(gc, OC_STATUS_UNSUPPORTED, "the input is not float32");
  int64_t ints[2 + OC_MAX_RANK + 1 + OC_MAX_RANK];
  int n = 0;
  ints[n++] = fwd->op;
  ints[n++] = x.rank;
  for (int d = 0; d < x.rank; d++) ints[n++] = x.dims[d];
  if (fwd->n_ints > 1 + OC_MAX_RANK)
    return oc_grad_error(gc, OC_STATUS_INTERNAL, "too many axes");
  for (int k = 0; k < fwd->n_ints; k++) ints[n++] = fwd->ints[k];
  int op = fwd->op;
  int need_x = op != OC_OP_REDUCE_SUM && op != OC_OP_REDUCE_MEAN;
  int need_y = op == OC_OP_REDUCE_L2 || op == OC_OP_REDUCE_LOG_SUM ||
               op == OC_OP_REDUCE_LOG_SUM_EXP || op == OC_OP_REDUCE_MAX || op == OC_OP_REDUCE_MIN;
  int in[3] = {dy[0], need_x ? fwd->in[0] : -1, need_y ? fwd->out[0] : -1};
  int n_in = need_y ? 3 : need_x ? 2 : 1;
  int dx = oc_grad_temp(gc, "dx");
  if (dx < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_REDUCE_BWD, n_in, in, 1, &dx, ints, n, NULL, 0));
  return oc_grad_accumulate(gc, 0, dx);
}
