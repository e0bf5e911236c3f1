/*
 * Ops along one axis -> runtime/ops/topk.c:
 *   ArgMax, ArgMin (1, 11, 12, 13) -> OC_OP_ARGMAX / OC_OP_ARGMIN
 *                                    [axis, keepdims, select_last_index]
 *   TopK (1, 10, 11)                -> OC_OP_TOPK [axis, k, largest]
 *   Hardmax (1, 11, 13)             -> OC_OP_HARDMAX [axis] (before opset 13
 *                                    between two Copy reshapes to 2-D)
 *   CumSum (11, 14)                 -> OC_OP_CUMSUM [axis, exclusive, reverse]
 * TopK's k and CumSum's axis must be compile-time constants. TopK's
 * `sorted=0` leaves the order unspecified in ONNX; onnxc returns it sorted.
 * They compute float32, int64 and int32 (Hardmax float32); float64 is
 * storage-only in onnxc and refused here.
 * Gradient rules (at the end of the file): TopK (values) and CumSum.
 * ArgMax, ArgMin and Hardmax have none: their outputs are integer or
 * piecewise constant, so a loss flowing through them fails with "no
 * gradient rule".
 */
#include <string.h>

#include "autodiff.h"
#include "lower.h"

static oc_status_t need_x(const oc_lower_t *lw, const char *name, int float_only,
                          const oc_tensor_t **out) {
  *out = oc_lower_input(lw, 0);
  if (!*out) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input '%s' is missing", name);
  int dt = (*out)->dtype;
  int ok = dt == OC_DTYPE_FLOAT32 || (!float_only && (dt == OC_DTYPE_INT64 || dt == OC_DTYPE_INT32));
  if (!ok)
    return oc_lower_error(lw, OC_STATUS_UNSUPPORTED, "input '%s' has dtype %s; %s computes %s%s",
                          name, oc_dtype_name(dt), lw->node->op_type,
                          float_only ? "float32 only" : "float32, int64 and int32",
                          dt == OC_DTYPE_FLOAT64 ? " (float64 is stored and cast only in onnxc)"
                                                 : "");
  if ((*out)->rank < 1)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input '%s' must have rank >= 1", name);
  return OC_OK;
}

static oc_status_t attr_flag(const oc_lower_t *lw, const char *name, int64_t dflt, int64_t *out) {
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, name, dflt, out));
  if (*out != 0 && *out != 1)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "attribute '%s' is %lld; must be 0 or 1",
                          name, (long long)*out);
  return OC_OK;
}

static oc_status_t check_axis(const oc_lower_t *lw, const char *what, int64_t axis, int rank,
                              int64_t *out) {
  if (axis < -(int64_t)rank || axis >= rank)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "%s is %lld; must be in [%d, %d] for rank %d",
                          what, (long long)axis, -rank, rank - 1, rank);
  *out = axis < 0 ? axis + rank : axis;
  return OC_OK;
}

/* --- ArgMax / ArgMin ------------------------------------------------------------ */

static oc_status_t lower_arg(oc_lower_t *lw, int op) {
  const oc_tensor_t *x;
  OC_RETURN_IF_ERROR(need_x(lw, "data", 0, &x));
  int64_t ints[3] = {0, 1, 0}, axis;
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "axis", 0, &axis));
  OC_RETURN_IF_ERROR(check_axis(lw, "attribute 'axis'", axis, x->rank, &ints[0]));
  OC_RETURN_IF_ERROR(attr_flag(lw, "keepdims", 1, &ints[1]));
  if (lw->opset >= 12) OC_RETURN_IF_ERROR(attr_flag(lw, "select_last_index", 0, &ints[2]));
  if (x->dims[ints[0]] == 0)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "axis %lld of input 'data' is empty",
                          (long long)ints[0]);
  int in[1] = {oc_lower_in(lw, 0)}, out[1] = {oc_lower_out(lw, 0)};
  return oc_lower_emit(lw, op, 1, in, 1, out, ints, 3, NULL, 0);
}

oc_status_t oc_lower_argmax(oc_lower_t *lw);
oc_status_t oc_lower_argmax(oc_lower_t *lw) { return lower_arg(lw, OC_OP_ARGMAX); }
oc_status_t oc_lower_argmin(oc_lower_t *lw);
oc_status_t oc_lower_argmin(oc_lower_t *lw) { return lower_arg(lw, OC_OP_ARGMIN); }

/* --- TopK ----------------------------------------------------------------------- */

/* TopK-1 takes k as an attribute; TopK-10+ as a constant input holding one
 * int64; TopK-11 adds largest and sorted. */
oc_status_t oc_lower_topk(oc_lower_t *lw);
oc_status_t oc_lower_topk(oc_lower_t *lw) {
  const oc_tensor_t *x;
  OC_RETURN_IF_ERROR(need_x(lw, "X", 0, &x));
  int64_t ints[3] = {0, 0, 1}, axis, sorted = 1;
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "axis", -1, &axis));
  OC_RETURN_IF_ERROR(check_axis(lw, "attribute 'axis'", axis, x->rank, &ints[0]));
  if (lw->opset < 10) {
    OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "k", -1, &ints[1]));
    if (ints[1] < 0)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "attribute 'k' is required (and >= 0)");
  } else {
    int n;
    OC_RETURN_IF_ERROR(oc_lower_const_ints(lw, 1, &ints[1], 1, &n));
    if (n != 1)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input 'K' must hold one value, not %d", n);
  }
  if (ints[1] < 0 || ints[1] > x->dims[ints[0]])
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "k is %lld; must be in [0, %lld] (the size of axis %lld)",
                          (long long)ints[1], (long long)x->dims[ints[0]], (long long)ints[0]);
  if (lw->opset >= 11) {
    OC_RETURN_IF_ERROR(attr_flag(lw, "largest", 1, &ints[2]));
    OC_RETURN_IF_ERROR(attr_flag(lw, "sorted", 1, &sorted)); /* either way: sorted */
  }
  int values = oc_lower_out(lw, 0), indices = oc_lower_out(lw, 1);
  if (values < 0) values = oc_lower_temp(lw, "values");
  if (values < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  int in[1] = {oc_lower_in(lw, 0)}, out[2] = {values, indices};
  return oc_lower_emit(lw, OC_OP_TOPK, 1, in, indices >= 0 ? 2 : 1, out, ints, 3, NULL, 0);
}

/* --- Hardmax ---------------------------------------------------------------------- */

/* Hardmax-13: one axis (default -1). Hardmax-1/11: the input is coerced to
 * 2-D (dims[:axis], dims[axis:]) and the hardmax runs over the second dim
 * (axis default 1); lowered as Copy -> Hardmax(axis 1) -> Copy. */
oc_status_t oc_lower_hardmax(oc_lower_t *lw);
oc_status_t oc_lower_hardmax(oc_lower_t *lw) {
  const oc_tensor_t *x;
  OC_RETURN_IF_ERROR(need_x(lw, "input", 1, &x));
  int in[1] = {oc_lower_in(lw, 0)}, out[1] = {oc_lower_out(lw, 0)};
  int64_t axis;
  if (lw->opset >= 13) {
    OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "axis", -1, &axis));
    OC_RETURN_IF_ERROR(check_axis(lw, "attribute 'axis'", axis, x->rank, &axis));
    return oc_lower_emit(lw, OC_OP_HARDMAX, 1, in, 1, out, &axis, 1, NULL, 0);
  }
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "axis", 1, &axis));
  int r = x->rank;
  if (axis < -(int64_t)r || axis > r)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "attribute 'axis' is %lld; must be in "
                          "[%d, %d] for rank %d", (long long)axis, -r, r, r);
  if (axis < 0) axis += r;
  if (axis == r - 1) {
    /* The 2-D view's rows are the last axis: no reshape needed. */
    return oc_lower_emit(lw, OC_OP_HARDMAX, 1, in, 1, out, &axis, 1, NULL, 0);
  }
  uint64_t outer = 1, inner = 1;
  for (int i = 0; i < r; i++) {
    uint64_t *p = i < axis ? &outer : &inner;
    if (oc_mul_overflows(*p, (uint64_t)x->dims[i], p) || *p > (uint64_t)OC_MAX_DIM)
      return oc_lower_error(lw, OC_STATUS_RESOURCE_LIMIT, "the 2-D view of the input is too large");
  }
  int flat_in = oc_lower_temp(lw, "flat"), flat_out = oc_lower_temp(lw, "flat_hardmax");
  if (flat_in < 0 || flat_out < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  int64_t dims2[2] = {(int64_t)outer, (int64_t)inner}, one = 1;
  OC_RETURN_IF_ERROR(oc_lower_reshape(lw, in[0], flat_in, 2, dims2));
  int fin[1] = {flat_in}, fout[1] = {flat_out};
  OC_RETURN_IF_ERROR(oc_lower_emit(lw, OC_OP_HARDMAX, 1, fin, 1, fout, &one, 1, NULL, 0));
  return oc_lower_reshape(lw, flat_out, out[0], r, x->dims);
}

/* --- CumSum ----------------------------------------------------------------------- */

oc_status_t oc_lower_cumsum(oc_lower_t *lw);
oc_status_t oc_lower_cumsum(oc_lower_t *lw) {
  const oc_tensor_t *x;
  OC_RETURN_IF_ERROR(need_x(lw, "x", 0, &x));
  int64_t ints[3], axis;
  int n;
  OC_RETURN_IF_ERROR(oc_lower_const_ints(lw, 1, &axis, 1, &n));
  if (n != 1)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input 'axis' must hold one value, not %d", n);
  OC_RETURN_IF_ERROR(check_axis(lw, "input 'axis'", axis, x->rank, &ints[0]));
  OC_RETURN_IF_ERROR(attr_flag(lw, "exclusive", 0, &ints[1]));
  OC_RETURN_IF_ERROR(attr_flag(lw, "reverse", 0, &ints[2]));
  int in[1] = {oc_lower_in(lw, 0)}, out[1] = {oc_lower_out(lw, 0)};
  return oc_lower_emit(lw, OC_OP_CUMSUM, 1, in, 1, out, ints, 3, NULL, 0);
}

/* --- gradient rules ---------------------------------------------------------------- */

static oc_status_t grad_oom(void) {
  return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory in autodiff");
}

/* TopK [axis, k, largest]: dx = zeros with dvalues at the positions the
 * indices output names (GatherElementsBwd [axis, x dims...]; TopK's values
 * are GatherElements(x, indices) along the axis, and the indices of one row
 * are distinct). The indices output has no gradient. When the forward did
 * not keep its indices, the backward recomputes them with a second TopK.
 * Ties follow the forward's choice (the lower position first), as PyTorch's
 * topk backward follows its own indices. */
oc_status_t oc_grad_topk(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_topk(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  if (dy[0] < 0 || !oc_grad_wants(gc, 0)) return OC_OK;
  const oc_tensor_t x = oc_grad_graph(gc)->values[fwd->in[0]].type;
  if (x.dtype != OC_DTYPE_FLOAT32)
    return oc_grad_error(gc, OC_STATUS_UNSUPPORTED, "input 'X' has dtype %s; gradients flow "
                         "through float32 only", oc_dtype_name(x.dtype));
  int idx = fwd->n_out > 1 ? fwd->out[1] : -1;
  if (idx < 0) {
    int out[2] = {oc_grad_temp(gc, "values"), oc_grad_temp(gc, "indices")};
    if (out[0] < 0 || out[1] < 0) return grad_oom();
    OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_TOPK, 1, fwd->in, 2, out, fwd->ints, fwd->n_ints,
                                    NULL, 0));
    idx = out[1];
  }
  int axis;
  OC_RETURN_IF_ERROR(oc_norm_axis(fwd->ints[0], x.rank, &axis));
  int64_t ints[1 + OC_MAX_RANK];
  ints[0] = axis;
  for (int d = 0; d < x.rank; d++) ints[1 + d] = x.dims[d];
  int dx = oc_grad_temp(gc, "dx");
  if (dx < 0) return grad_oom();
  int in[2] = {idx, dy[0]};
  OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_GATHER_ELEMENTS_BWD, 2, in, 1, &dx, ints, 1 + x.rank,
                                  NULL, 0));
  return oc_grad_accumulate(gc, 0, dx);
}

/* CumSum [axis, exclusive, reverse]: y_j sums x_i over i before (or after,
 * reversed) j, so dx_i sums dy_j over j after (before) i: dx = CumSum(dy)
 * with reverse flipped and exclusive kept. */
oc_status_t oc_grad_cumsum(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_cumsum(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  if (dy[0] < 0 || !oc_grad_wants(gc, 0)) return OC_OK;
  const oc_tensor_t x_type = oc_grad_graph(gc)->values[fwd->in[0]].type, *x = &x_type;
  if (x->dtype != OC_DTYPE_FLOAT32)
    return oc_grad_error(gc, OC_STATUS_UNSUPPORTED, "input 'x' has dtype %s; gradients flow "
                         "through float32 only", oc_dtype_name(x->dtype));
  int64_t ints[3] = {fwd->ints[0], fwd->ints[1], !fwd->ints[2]};
  int dx = oc_grad_temp(gc, "dx");
  if (dx < 0) return grad_oom();
  OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_CUMSUM, 1, &dy[0], 1, &dx, ints, 3, NULL, 0));
  return oc_grad_accumulate(gc, 0, dx);
}
