/*
 * Indexing and mask ONNX ops -> runtime/ops/indexing.c:
 *   OneHot (9, 11)            -> OC_OP_ONEHOT [axis, depth, negative]
 *   Trilu (14)                -> OC_OP_TRILU [upper, k]
 *   Tile (6, 13)              -> OC_OP_TILE [repeats...]
 *   GatherElements (11, 13)   -> OC_OP_GATHER_ELEMENTS [axis]
 *   GatherND (11, 12, 13)     -> OC_OP_GATHER_ND [batch_dims]
 *   ScatterElements (11, 13, 16), Scatter (9, 11)
 *                             -> OC_OP_SCATTER_ELEMENTS [axis, reduction]
 *   ScatterND (11, 13, 16)    -> OC_OP_SCATTER_ND [reduction]
 *   NonZero (9, 13)           -> a compile-time constant
 * Gradient rules (at the end of the file): Tile, Trilu, GatherElements,
 * GatherND, ScatterElements and ScatterND (reductions none and add) for
 * float32 data. OneHot and NonZero have none (piecewise constant).
 * The operands that decide shapes (OneHot's depth, Trilu's k, Tile's
 * repeats) must be compile-time constants. NonZero's output shape is its
 * input's count of non-zeros, so only a constant input is supported.
 * Negative indices count from the end in every opset (a superset of the
 * opsets that forbade them); out-of-range indices are run-time errors
 * (compile errors when the op folds), except in OneHot, where ONNX defines
 * them as an all-off row.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff.h"
#include "lower.h"

static oc_status_t need_input(const oc_lower_t *lw, int i, const char *name,
                              const oc_tensor_t **out) {
  *out = oc_lower_input(lw, i);
  if (!*out) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input '%s' is missing", name);
  return OC_OK;
}

static oc_status_t need_index_dtype(const oc_lower_t *lw, const oc_tensor_t *t, const char *name) {
  if (t->dtype != OC_DTYPE_INT64 && t->dtype != OC_DTYPE_INT32)
    return oc_lower_error(lw, OC_STATUS_UNSUPPORTED, "input '%s' has dtype %s; int64 or int32 expected",
                          name, oc_dtype_name(t->dtype));
  return OC_OK;
}

/* Reads attribute |name| as an axis of |rank| (in [lo, hi] before
 * normalization) and returns it in [0, hi]. */
static oc_status_t attr_axis(const oc_lower_t *lw, const char *name, int64_t dflt, int rank,
                             int64_t *out) {
  int64_t a;
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, name, dflt, &a));
  if (a < -(int64_t)rank || a >= rank)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "attribute '%s' is %lld; must be in [%d, %d] for rank %d", name,
                          (long long)a, -rank, rank - 1, rank);
  *out = a < 0 ? a + rank : a;
  return OC_OK;
}

/* --- OneHot ----------------------------------------------------------------- */

/* OneHot-9: indices outside [0, depth) give all-off rows; OneHot-11 also
 * accepts [-depth, -1], counting from the end. Float indices and depth are
 * truncated to integers, as ONNX casts them. */
oc_status_t oc_lower_onehot(oc_lower_t *lw);
oc_status_t oc_lower_onehot(oc_lower_t *lw) {
  const oc_tensor_t *idx, *depth_t, *vals;
  OC_RETURN_IF_ERROR(need_input(lw, 0, "indices", &idx));
  OC_RETURN_IF_ERROR(need_input(lw, 1, "depth", &depth_t));
  OC_RETURN_IF_ERROR(need_input(lw, 2, "values", &vals));
  if (lw->opset < 9)
    return oc_lower_error(lw, OC_STATUS_UNSUPPORTED, "OneHot is not part of opset %lld",
                          (long long)lw->opset);
  if (idx->dtype != OC_DTYPE_INT64 && idx->dtype != OC_DTYPE_INT32 &&
      idx->dtype != OC_DTYPE_FLOAT32)
    return oc_lower_error(lw, OC_STATUS_UNSUPPORTED,
                          "input 'indices' has dtype %s; int64, int32 or float32 expected",
                          oc_dtype_name(idx->dtype));
  if (oc_tensor_numel(vals) != 2)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "input 'values' must be [off_value, on_value] (2 elements), not %lld",
                          (long long)oc_tensor_numel(vals));
  double d;
  OC_RETURN_IF_ERROR(oc_lower_const_scalar(lw, 1, &d));
  if (!(d >= 1.0 && d < 1099511627777.0))
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "input 'depth' is %g; must be a positive number of classes", d);
  int r = idx->rank;
  int64_t axis;
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "axis", -1, &axis));
  if (axis < -(int64_t)(r + 1) || axis > r)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "attribute 'axis' is %lld; must be in [%d, %d] for indices of rank %d",
                          (long long)axis, -(r + 1), r, r);
  int64_t ints[3] = {axis < 0 ? axis + r + 1 : axis, (int64_t)d, lw->opset >= 11};
  int in[2] = {oc_lower_in(lw, 0), oc_lower_in(lw, 2)}, out[1] = {oc_lower_out(lw, 0)};
  return oc_lower_emit(lw, OC_OP_ONEHOT, 2, in, 1, out, ints, 3, NULL, 0);
}

/* --- Trilu ------------------------------------------------------------------- */

oc_status_t oc_lower_trilu(oc_lower_t *lw);
oc_status_t oc_lower_trilu(oc_lower_t *lw) {
  const oc_tensor_t *x;
  OC_RETURN_IF_ERROR(need_input(lw, 0, "input", &x));
  if (lw->opset < 14)
    return oc_lower_error(lw, OC_STATUS_UNSUPPORTED, "Trilu is not part of opset %lld",
                          (long long)lw->opset);
  int64_t upper, k = 0;
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "upper", 1, &upper));
  if (upper != 0 && upper != 1)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "attribute 'upper' is %lld; must be 0 or 1",
                          (long long)upper);
  if (x->rank < 2)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input 'input' must have rank >= 2, not %d",
                          x->rank);
  if (oc_lower_in(lw, 1) >= 0) {
    int n;
    OC_RETURN_IF_ERROR(oc_lower_const_ints(lw, 1, &k, 1, &n));
    if (n != 1)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input 'k' must hold one value, not %d", n);
  }
  int64_t ints[2] = {upper, k};
  int in[1] = {oc_lower_in(lw, 0)}, out[1] = {oc_lower_out(lw, 0)};
  return oc_lower_emit(lw, OC_OP_TRILU, 1, in, 1, out, ints, 2, NULL, 0);
}

/* --- Tile -------------------------------------------------------------------- */

/* Tile-6+: repeats is a constant 1-D int64 input with one entry per axis.
 * Tile-1 (tiles and axis inputs) is refused. */
oc_status_t oc_lower_tile(oc_lower_t *lw);
oc_status_t oc_lower_tile(oc_lower_t *lw) {
  const oc_tensor_t *x;
  OC_RETURN_IF_ERROR(need_input(lw, 0, "input", &x));
  if (lw->opset < 6)
    return oc_lower_error(lw, OC_STATUS_UNSUPPORTED,
                          "Tile-1 (inputs 'tiles' and 'axis', opset %lld) is not supported; "
                          "re-export with opset 6 or later",
                          (long long)lw->opset);
  int64_t reps[OC_MAX_RANK];
  int n;
  OC_RETURN_IF_ERROR(oc_lower_const_ints(lw, 1, reps, OC_MAX_RANK, &n));
  if (n != x->rank)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "input 'repeats' has %d values; the input has rank %d", n, x->rank);
  for (int i = 0; i < n; i++)
    if (reps[i] < 0)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input 'repeats' has %lld for axis %d",
                            (long long)reps[i], i);
  int in[1] = {oc_lower_in(lw, 0)}, out[1] = {oc_lower_out(lw, 0)};
  return oc_lower_emit(lw, OC_OP_TILE, 1, in, 1, out, reps, n, NULL, 0);
}

/* --- GatherElements / GatherND ----------------------------------------------- */

oc_status_t oc_lower_gather_elements(oc_lower_t *lw);
oc_status_t oc_lower_gather_elements(oc_lower_t *lw) {
  const oc_tensor_t *x, *idx;
  OC_RETURN_IF_ERROR(need_input(lw, 0, "data", &x));
  OC_RETURN_IF_ERROR(need_input(lw, 1, "indices", &idx));
  OC_RETURN_IF_ERROR(need_index_dtype(lw, idx, "indices"));
  if (x->rank < 1)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input 'data' must have rank >= 1");
  int64_t axis;
  OC_RETURN_IF_ERROR(attr_axis(lw, "axis", 0, x->rank, &axis));
  int in[2] = {oc_lower_in(lw, 0), oc_lower_in(lw, 1)}, out[1] = {oc_lower_out(lw, 0)};
  return oc_lower_emit(lw, OC_OP_GATHER_ELEMENTS, 2, in, 1, out, &axis, 1, NULL, 0);
}

/* GatherND-11 has no batch_dims (0); GatherND-12+ reads it. */
oc_status_t oc_lower_gather_nd(oc_lower_t *lw);
oc_status_t oc_lower_gather_nd(oc_lower_t *lw) {
  const oc_tensor_t *x, *idx;
  OC_RETURN_IF_ERROR(need_input(lw, 0, "data", &x));
  OC_RETURN_IF_ERROR(need_input(lw, 1, "indices", &idx));
  OC_RETURN_IF_ERROR(need_index_dtype(lw, idx, "indices"));
  int64_t b = 0;
  if (lw->opset >= 12) OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "batch_dims", 0, &b));
  int in[2] = {oc_lower_in(lw, 0), oc_lower_in(lw, 1)}, out[1] = {oc_lower_out(lw, 0)};
  return oc_lower_emit(lw, OC_OP_GATHER_ND, 2, in, 1, out, &b, 1, NULL, 0);
}

/* --- Scatter family ------------------------------------------------------------ */

/* The `reduction` attribute (opset 16+): none add mul, and ONNX 18's max min. */
static oc_status_t read_reduction(const oc_lower_t *lw, const oc_tensor_t *data, int64_t *out) {
  const char *red;
  OC_RETURN_IF_ERROR(oc_lower_attr_string(lw, "reduction", "none", &red));
  static const char *const names[] = {"none", "add", "mul", "max", "min"};
  for (int i = 0; i < 5; i++)
    if (strcmp(red, names[i]) == 0) {
      if (i > 0 && lw->opset < 16)
        return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                              "attribute 'reduction' is not part of %s-%lld (opset 16+)",
                              lw->node->op_type, (long long)lw->opset);
      if (i > 0 && data->dtype != OC_DTYPE_FLOAT32 && data->dtype != OC_DTYPE_INT64 &&
          data->dtype != OC_DTYPE_INT32)
        return oc_lower_error(lw, OC_STATUS_UNSUPPORTED,
                              "reduction '%s' on input 'data' of dtype %s; float32, int64 or "
                              "int32 only",
                              red, oc_dtype_name(data->dtype));
      *out = i;
      return OC_OK;
    }
  return oc_lower_error(lw, OC_STATUS_UNSUPPORTED,
                        "attribute 'reduction' is '%s'; supported: none, add, mul, max, min", red);
}

static oc_status_t scatter_inputs(const oc_lower_t *lw, const oc_tensor_t **x,
                                  const oc_tensor_t **idx, const oc_tensor_t **upd) {
  OC_RETURN_IF_ERROR(need_input(lw, 0, "data", x));
  OC_RETURN_IF_ERROR(need_input(lw, 1, "indices", idx));
  OC_RETURN_IF_ERROR(need_input(lw, 2, "updates", upd));
  OC_RETURN_IF_ERROR(need_index_dtype(lw, *idx, "indices"));
  if ((*upd)->dtype != (*x)->dtype)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input 'updates' has dtype %s; 'data' has %s",
                          oc_dtype_name((*upd)->dtype), oc_dtype_name((*x)->dtype));
  return OC_OK;
}

/* ScatterElements-11/13/16 and the deprecated Scatter-9/11 (the same
 * semantics, no reduction). */
oc_status_t oc_lower_scatter_elements(oc_lower_t *lw);
oc_status_t oc_lower_scatter_elements(oc_lower_t *lw) {
  const oc_tensor_t *x, *idx, *upd;
  OC_RETURN_IF_ERROR(scatter_inputs(lw, &x, &idx, &upd));
  if (x->rank < 1)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input 'data' must have rank >= 1");
  int64_t ints[2];
  OC_RETURN_IF_ERROR(attr_axis(lw, "axis", 0, x->rank, &ints[0]));
  ints[1] = 0;
  if (strcmp(lw->node->op_type, "Scatter") != 0) OC_RETURN_IF_ERROR(read_reduction(lw, x, &ints[1]));
  int in[3] = {oc_lower_in(lw, 0), oc_lower_in(lw, 1), oc_lower_in(lw, 2)};
  int out[1] = {oc_lower_out(lw, 0)};
  return oc_lower_emit(lw, OC_OP_SCATTER_ELEMENTS, 3, in, 1, out, ints, 2, NULL, 0);
}

oc_status_t oc_lower_scatter_nd(oc_lower_t *lw);
oc_status_t oc_lower_scatter_nd(oc_lower_t *lw) {
  const oc_tensor_t *x, *idx, *upd;
  OC_RETURN_IF_ERROR(scatter_inputs(lw, &x, &idx, &upd));
  int64_t red;
  OC_RETURN_IF_ERROR(read_reduction(lw, x, &red));
  int in[3] = {oc_lower_in(lw, 0), oc_lower_in(lw, 1), oc_lower_in(lw, 2)};
  int out[1] = {oc_lower_out(lw, 0)};
  return oc_lower_emit(lw, OC_OP_SCATTER_ND, 3, in, 1, out, &red, 1, NULL, 0);
}

/* --- NonZero ------------------------------------------------------------------- */

/* Whether element i of |t| is non-zero (-0.0 is zero, NaN is not). */
static int is_nonzero(const oc_tensor_t *t, int64_t i) {
  switch (t->dtype) {
    case OC_DTYPE_FLOAT32: return ((const float *)t->data)[i] != 0.0f;
    case OC_DTYPE_FLOAT64: return ((const double *)t->data)[i] != 0.0;
    case OC_DTYPE_INT64: return ((const int64_t *)t->data)[i] != 0;
    case OC_DTYPE_INT32: return ((const int32_t *)t->data)[i] != 0;
    default: return ((const uint8_t *)t->data)[i] != 0; /* uint8, int8, bool */
  }
}

/* y = the coordinates of x's non-zeros, (rank, count) int64 in row-major
 * order. A scalar counts as one element of rank 1 (numpy's nonzero). */
oc_status_t oc_lower_nonzero(oc_lower_t *lw);
oc_status_t oc_lower_nonzero(oc_lower_t *lw) {
  const oc_tensor_t *x;
  OC_RETURN_IF_ERROR(need_input(lw, 0, "X", &x));
  if (!oc_lower_input_is_const(lw, 0))
    return oc_lower_error(lw, OC_STATUS_UNSUPPORTED,
                          "input 'X' is not a compile-time constant: NonZero's output shape "
                          "depends on run-time data");
  int64_t n = oc_tensor_numel(x), count = 0;
  for (int64_t i = 0; i < n; i++) count += is_nonzero(x, i);
  int rank = x->rank ? x->rank : 1;
  int64_t xdims[OC_MAX_RANK] = {1};
  if (x->rank) memcpy(xdims, x->dims, sizeof(int64_t) * (size_t)x->rank);
  int64_t dims[2] = {rank, count};
  uint64_t bytes;
  if (oc_mul_overflows((uint64_t)rank * sizeof(int64_t), (uint64_t)count, &bytes) ||
      bytes > lw->fold_limit_bytes)
    return oc_lower_error(lw, OC_STATUS_RESOURCE_LIMIT,
                          "NonZero output [%d, %lld] exceeds the %llu-byte folding limit (onnxc --fold-limit)", rank,
                          (long long)count, (unsigned long long)lw->fold_limit_bytes);
  int64_t *y = malloc(bytes ? (size_t)bytes : 1);
  if (!y) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  int64_t pos[OC_MAX_RANK] = {0}, c = 0;
  for (int64_t i = 0; i < n; i++) {
    if (is_nonzero(x, i)) {
      for (int d = 0; d < rank; d++) y[d * count + c] = pos[d];
      c++;
    }
    for (int d = rank - 1; d >= 0; d--) {
      if (++pos[d] < xdims[d]) break;
      pos[d] = 0;
    }
  }
  oc_status_t s = oc_lower_set_const(lw, oc_lower_out(lw, 0), OC_DTYPE_INT64, 2, dims, y);
  free(y);
  return s;
}

/* --- gradient rules --------------------------------------------------------------
 *
 * Indices carry no gradient. Scattered and gathered data is float32 (the
 * only dtype a gradient flows through). PyTorch's conventions:
 *   Tile (repeat):             dx = dy summed over the tiles (TileBwd)
 *   Trilu (tril/triu):         dx = Trilu(dy) with the same upper and k
 *   GatherElements (gather):   ddata = dy scatter-added at the indices
 *                              (GatherElementsBwd; repeats accumulate)
 *   GatherND:                  ddata = dy scatter-added (GatherNDBwd)
 *   ScatterElements (scatter / scatter_add), ScatterND (index_put):
 *     reduction none: ddata = dy with the scattered positions zeroed,
 *                     dupdates = dy gathered at the indices -- for a
 *                     repeated index every update gets the gradient of the
 *                     position, though only the last one was written (as
 *                     torch.scatter's and index_put's backward);
 *     reduction add:  ddata = dy, dupdates = dy gathered at the indices;
 *     mul, max, min:  refused.
 */

static oc_status_t grad_oom(void) {
  return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory in autodiff");
}

static const oc_tensor_t *grad_type(oc_grad_t *gc, int v) {
  return &oc_grad_graph(gc)->values[v].type;
}

/* Requires forward input |i| to be float32 (when it wants a gradient). */
static oc_status_t grad_need_float(oc_grad_t *gc, const oc_instr_t *fwd, int i, const char *what) {
  const oc_tensor_t *t = grad_type(gc, fwd->in[i]);
  if (t->dtype != OC_DTYPE_FLOAT32)
    return oc_grad_error(gc, OC_STATUS_UNSUPPORTED, "input '%s' has dtype %s; gradients flow "
                         "through float32 only", what, oc_dtype_name(t->dtype));
  return OC_OK;
}

/* Emits op(in...) into a fresh value named |hint|; -1 (with *s set) on error. */
static int grad_op(oc_grad_t *gc, oc_status_t *s, const char *hint, int op, int n_in,
                   const int *in, const int64_t *ints, int n_ints) {
  int v = oc_grad_temp(gc, hint);
  if (v < 0) {
    *s = grad_oom();
    return -1;
  }
  *s = oc_grad_emit(gc, op, n_in, in, 1, &v, ints, n_ints, NULL, 0);
  return *s ? -1 : v;
}

/* A float32 value of zeros with the dims of |t|: a scalar constant expanded
 * at run time (no large constant in the plan). */
static int grad_zeros(oc_grad_t *gc, oc_status_t *s, oc_tensor_t t) {
  /* |t| is a copy: making values may move the graph's value table. */
  int z = oc_grad_const(gc, "zero", 0, NULL, 0.0f);
  if (z < 0) {
    *s = grad_oom();
    return -1;
  }
  if (t.rank == 0) return z;
  return grad_op(gc, s, "zeros", OC_OP_EXPAND, 1, &z, t.dims, t.rank);
}

/* ints [attribute, data dims...] of the *Bwd kernels. */
static int bwd_ints(int64_t attr, const oc_tensor_t *x, int64_t *ints) {
  ints[0] = attr;
  for (int d = 0; d < x->rank; d++) ints[1 + d] = x->dims[d];
  return 1 + x->rank;
}

/* Tile: dx = TileBwd(dy), ints = x's dims. */
oc_status_t oc_grad_tile(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_tile(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  if (dy[0] < 0 || !oc_grad_wants(gc, 0)) return OC_OK;
  OC_RETURN_IF_ERROR(grad_need_float(gc, fwd, 0, "input"));
  const oc_tensor_t x = *grad_type(gc, fwd->in[0]);
  oc_status_t s = OC_OK;
  int dx = grad_op(gc, &s, "dx", OC_OP_TILE_BWD, 1, &dy[0], x.dims, x.rank);
  if (dx < 0) return s;
  return oc_grad_accumulate(gc, 0, dx);
}

/* Trilu: the mask is linear, so dx = Trilu(dy) with the same [upper, k]. */
oc_status_t oc_grad_trilu(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_trilu(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  if (dy[0] < 0 || !oc_grad_wants(gc, 0)) return OC_OK;
  OC_RETURN_IF_ERROR(grad_need_float(gc, fwd, 0, "input"));
  oc_status_t s = OC_OK;
  int dx = grad_op(gc, &s, "dx", OC_OP_TRILU, 1, &dy[0], fwd->ints, fwd->n_ints);
  if (dx < 0) return s;
  return oc_grad_accumulate(gc, 0, dx);
}

/* GatherElements: ddata = GatherElementsBwd(indices, dy) [axis, data dims]. */
oc_status_t oc_grad_gather_elements(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_gather_elements(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  if (dy[0] < 0 || !oc_grad_wants(gc, 0)) return OC_OK;
  OC_RETURN_IF_ERROR(grad_need_float(gc, fwd, 0, "data"));
  const oc_tensor_t x = *grad_type(gc, fwd->in[0]);
  int64_t ints[1 + OC_MAX_RANK];
  int n = bwd_ints(fwd->ints[0], &x, ints), in[2] = {fwd->in[1], dy[0]};
  oc_status_t s = OC_OK;
  int dx = grad_op(gc, &s, "ddata", OC_OP_GATHER_ELEMENTS_BWD, 2, in, ints, n);
  if (dx < 0) return s;
  return oc_grad_accumulate(gc, 0, dx);
}

/* GatherND: ddata = GatherNDBwd(indices, dy) [batch_dims, data dims]. */
oc_status_t oc_grad_gather_nd(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_gather_nd(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  if (dy[0] < 0 || !oc_grad_wants(gc, 0)) return OC_OK;
  OC_RETURN_IF_ERROR(grad_need_float(gc, fwd, 0, "data"));
  const oc_tensor_t x = *grad_type(gc, fwd->in[0]);
  int64_t ints[1 + OC_MAX_RANK];
  int n = bwd_ints(fwd->ints[0], &x, ints), in[2] = {fwd->in[1], dy[0]};
  oc_status_t s = OC_OK;
  int dx = grad_op(gc, &s, "ddata", OC_OP_GATHER_ND_BWD, 2, in, ints, n);
  if (dx < 0) return s;
  return oc_grad_accumulate(gc, 0, dx);
}

/* The scatter family: |red| the reduction; |gather_op|, |gather_ints| the
 * forward gather that reads dy at the indices (the updates' gradient);
 * |scatter_ints| the forward scatter's ints with reduction none (to zero the
 * scattered positions of dy). */
static oc_status_t grad_scatter(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy, int64_t red,
                                int gather_op, const int64_t *gather_ints, int n_gather_ints,
                                const int64_t *scatter_ints, int n_scatter_ints) {
  static const char *const names[] = {"none", "add", "mul", "max", "min"};
  if (dy[0] < 0) return OC_OK;
  if (red != 0 && red != 1)
    return oc_grad_error(gc, OC_STATUS_UNSUPPORTED,
                         "reduction '%s' has no gradient rule (none and add have one)",
                         red >= 0 && red <= 4 ? names[red] : "?");
  oc_status_t s = OC_OK;
  if (oc_grad_wants(gc, 2)) {
    OC_RETURN_IF_ERROR(grad_need_float(gc, fwd, 2, "updates"));
    int in[2] = {dy[0], fwd->in[1]};
    int du = grad_op(gc, &s, "dupdates", gather_op, 2, in, gather_ints, n_gather_ints);
    if (du < 0) return s;
    OC_RETURN_IF_ERROR(oc_grad_accumulate(gc, 2, du));
  }
  if (oc_grad_wants(gc, 0)) {
    OC_RETURN_IF_ERROR(grad_need_float(gc, fwd, 0, "data"));
    if (red == 1) return oc_grad_accumulate(gc, 0, dy[0]); /* add: data passes through */
    int z = grad_zeros(gc, &s, *grad_type(gc, fwd->in[2]));
    if (z < 0) return s;
    int in[3] = {dy[0], fwd->in[1], z};
    int dd = grad_op(gc, &s, "ddata", fwd->op, 3, in, scatter_ints, n_scatter_ints);
    if (dd < 0) return s;
    OC_RETURN_IF_ERROR(oc_grad_accumulate(gc, 0, dd));
  }
  return OC_OK;
}

/* ScatterElements [axis, reduction]: dupdates = GatherElements(dy) [axis];
 * ddata = ScatterElements(dy, indices, zeros) [axis, none] (or dy for add). */
oc_status_t oc_grad_scatter_elements(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_scatter_elements(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  int64_t scatter_ints[2] = {fwd->ints[0], 0};
  return grad_scatter(gc, fwd, dy, fwd->ints[1], OC_OP_GATHER_ELEMENTS, fwd->ints, 1, scatter_ints,
                      2);
}

/* ScatterND [reduction]: dupdates = GatherND(dy) [batch_dims 0];
 * ddata = ScatterND(dy, indices, zeros) [none] (or dy for add). */
oc_status_t oc_grad_scatter_nd(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_scatter_nd(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  int64_t zero = 0;
  return grad_scatter(gc, fwd, dy, fwd->ints[0], OC_OP_GATHER_ND, &zero, 1, &zero, 1);
}
