/*
 * Data-movement ONNX ops -> runtime/ops/{transpose,concat,slice,expand}.c:
 * Transpose, Concat, Split, Slice, Expand. Every attribute-like input (Split's
 * sizes, Slice's starts/ends/axes/steps, Expand's shape) must be a
 * compile-time constant: the lowering resolves them into explicit per-axis
 * ints, so the runtime ops never see ONNX's clamping rules.
 */
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

/* --- Transpose -------------------------------------------------------------- */

/* perm defaults to reversing the axes. A permutation that keeps the order of
 * the axes longer than 1 moves no data and lowers to a reshape. */
oc_status_t oc_lower_transpose(oc_lower_t *lw);
oc_status_t oc_lower_transpose(oc_lower_t *lw) {
  const oc_tensor_t *x;
  OC_RETURN_IF_ERROR(need_input(lw, 0, "data", &x));
  const int64_t *p;
  int n;
  OC_RETURN_IF_ERROR(oc_lower_attr_ints(lw, "perm", &p, &n));
  int64_t perm[OC_MAX_RANK];
  if (n < 0) {
    for (int i = 0; i < x->rank; i++) perm[i] = x->rank - 1 - i;
  } else {
    if (n != x->rank)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                            "attribute 'perm' has %d entries; the input has rank %d", n, x->rank);
    int seen[OC_MAX_RANK] = {0};
    for (int i = 0; i < n; i++) {
      if (p[i] < 0 || p[i] >= x->rank || seen[p[i]])
        return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                              "attribute 'perm' is not a permutation of 0..%d (entry %d is %lld)",
                              x->rank - 1, i, (long long)p[i]);
      seen[p[i]] = 1;
      perm[i] = p[i];
    }
  }
  int64_t dims[OC_MAX_RANK], last = -1;
  int moves = 0;
  for (int i = 0; i < x->rank; i++) {
    dims[i] = x->dims[perm[i]];
    if (dims[i] == 1) continue;
    if (perm[i] < last) moves = 1;
    last = perm[i];
  }
  if (!moves) return oc_lower_reshape(lw, oc_lower_in(lw, 0), oc_lower_out(lw, 0), x->rank, dims);
  int in[1] = {oc_lower_in(lw, 0)}, out[1] = {oc_lower_out(lw, 0)};
  return oc_lower_emit(lw, OC_OP_TRANSPOSE, 1, in, 1, out, perm, x->rank, NULL, 0);
}

/* --- Concat ----------------------------------------------------------------- */

/* axis: optional (default 1) in Concat-1, required from opset 4, negative
 * from 11. More than 64 inputs are joined in rounds. */
oc_status_t oc_lower_concat(oc_lower_t *lw);
oc_status_t oc_lower_concat(oc_lower_t *lw) {
  const oc_tensor_t *x0;
  OC_RETURN_IF_ERROR(need_input(lw, 0, "inputs", &x0));
  int64_t axis;
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "axis", lw->opset < 4 ? 1 : INT64_MIN, &axis));
  if (axis == INT64_MIN)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "attribute 'axis' is required");
  if (x0->rank < 1)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "cannot concatenate rank-0 tensors");
  if (axis < -(int64_t)x0->rank || axis >= x0->rank)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "attribute 'axis' is %lld; out of range for rank %d", (long long)axis,
                          x0->rank);
  if (axis < 0) axis += x0->rank;
  int n = lw->node->n_in;
  for (int i = 0; i < n; i++)
    if (oc_lower_in(lw, i) < 0)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input %d is missing", i);
  int out_v = oc_lower_out(lw, 0);
  int in[OC_MAX_OP_INPUTS];
  int done = 0, acc = -1;
  while (done < n) {
    int k = 0;
    if (acc >= 0) in[k++] = acc;
    while (k < OC_MAX_OP_INPUTS && done < n) in[k++] = oc_lower_in(lw, done++);
    int dst = done == n ? out_v : oc_lower_temp(lw, "partial");
    if (dst < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
    OC_RETURN_IF_ERROR(oc_lower_emit(lw, OC_OP_CONCAT, k, in, 1, &dst, &axis, 1, NULL, 0));
    acc = dst;
  }
  return OC_OK;
}

/* --- Split ------------------------------------------------------------------ */

/* Sizes: the `split` attribute (opset < 13; Split-1 also takes it as input
 * 1), the constant input `split` (opset >= 13), else equal parts: the dim
 * must divide evenly before opset 18; from 18 (num_outputs) the parts are
 * ceil(dim / n) and the last one takes what is left. */
oc_status_t oc_lower_split(oc_lower_t *lw);
oc_status_t oc_lower_split(oc_lower_t *lw) {
  const oc_tensor_t *x;
  OC_RETURN_IF_ERROR(need_input(lw, 0, "input", &x));
  int64_t axis;
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "axis", 0, &axis));
  if (x->rank < 1) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "cannot split a rank-0 tensor");
  if (axis < -(int64_t)x->rank || axis >= x->rank)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "attribute 'axis' is %lld; out of range for rank %d", (long long)axis,
                          x->rank);
  if (axis < 0) axis += x->rank;
  int n_out = lw->node->n_out;
  if (n_out < 1 || n_out > OC_MAX_OP_OUTPUTS)
    return oc_lower_error(lw, OC_STATUS_UNSUPPORTED, "%d outputs; onnxc splits into 1 to %d",
                          n_out, OC_MAX_OP_OUTPUTS);
  int64_t ints[1 + OC_MAX_OP_OUTPUTS];
  int64_t *sizes = ints + 1;
  int n = -1;
  if (lw->opset < 13) {
    const int64_t *a;
    OC_RETURN_IF_ERROR(oc_lower_attr_ints(lw, "split", &a, &n));
    if (n > OC_MAX_OP_OUTPUTS)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "attribute 'split' has %d entries", n);
    if (n >= 0) memcpy(sizes, a, sizeof(int64_t) * (size_t)n);
  }
  if (n < 0 && oc_lower_in(lw, 1) >= 0 && (lw->opset >= 13 || lw->opset < 2))
    OC_RETURN_IF_ERROR(oc_lower_const_ints(lw, 1, sizes, OC_MAX_OP_OUTPUTS, &n));
  if (n == 0) n = -1; /* an empty `split` means equal parts, as in onnxruntime */
  int64_t dim = x->dims[axis];
  if (n >= 0) {
    if (n != n_out)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "'split' has %d sizes for %d outputs",
                            n, n_out);
  } else {
    int64_t num = n_out;
    if (lw->opset >= 18) {
      OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "num_outputs", n_out, &num));
      if (num != n_out)
        return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                              "attribute 'num_outputs' is %lld but the node has %d outputs",
                              (long long)num, n_out);
      int64_t chunk = dim / num + (dim % num != 0);
      int64_t last = dim - chunk * (num - 1);
      if (last < 0)
        return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                              "cannot split %lld into %lld parts of %lld", (long long)dim,
                              (long long)num, (long long)chunk);
      for (int j = 0; j < n_out; j++) sizes[j] = j == n_out - 1 ? last : chunk;
    } else {
      if (dim % num != 0)
        return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                              "axis %lld has %lld elements, which do not split into %d equal parts",
                              (long long)axis, (long long)dim, n_out);
      for (int j = 0; j < n_out; j++) sizes[j] = dim / num;
    }
  }
  ints[0] = axis;
  int in[1] = {oc_lower_in(lw, 0)}, out[OC_MAX_OP_OUTPUTS];
  for (int j = 0; j < n_out; j++) {
    out[j] = oc_lower_out(lw, j);
    if (out[j] < 0) out[j] = oc_lower_temp(lw, "unused");
    if (out[j] < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  }
  return oc_lower_emit(lw, OC_OP_SPLIT, 1, in, n_out, out, ints, 1 + n_out, NULL, 0);
}

/* --- Slice ------------------------------------------------------------------ */

/* Resolves one axis of ONNX Slice: start/end negative count from the back;
 * then clamped to [0, dim] (step > 0) or start to [0, dim-1], end to
 * [-1, dim-1] (step < 0). Writes (start, step, count). */
static void slice_axis(int64_t dim, int64_t start, int64_t end, int64_t step, int64_t *out) {
  if (start < 0) start += dim; /* start >= INT64_MIN, dim >= 0: no overflow */
  if (end < 0) end += dim;
  int64_t count;
  if (dim == 0) {
    count = 0;
  } else if (step > 0) {
    start = start < 0 ? 0 : start > dim ? dim : start;
    end = end < 0 ? 0 : end > dim ? dim : end;
    /* (end - start) fits: both in [0, dim]. */
    count = end > start ? (end - start - 1) / step + 1 : 0;
  } else {
    start = start < 0 ? 0 : start > dim - 1 ? dim - 1 : start;
    end = end < -1 ? -1 : end > dim - 1 ? dim - 1 : end;
    /* -step may be 2^63 for INT64_MIN: compute in unsigned. */
    uint64_t s = 0 - (uint64_t)step;
    count = start > end ? (int64_t)((uint64_t)(start - end - 1) / s + 1) : 0;
  }
  if (count == 0) {
    start = 0;
    step = 1;
  }
  out[0] = start;
  out[1] = step;
  out[2] = count;
}

/* Slice-1..9: starts/ends/axes attributes (step 1); Slice-10+: inputs
 * starts, ends, optional axes and steps, all compile-time constants. */
oc_status_t oc_lower_slice(oc_lower_t *lw);
oc_status_t oc_lower_slice(oc_lower_t *lw) {
  const oc_tensor_t *x;
  OC_RETURN_IF_ERROR(need_input(lw, 0, "data", &x));
  int r = x->rank;
  int64_t starts[OC_MAX_RANK], ends[OC_MAX_RANK], axes[OC_MAX_RANK], steps[OC_MAX_RANK];
  int ns, ne, na = -1, nt = -1;
  if (lw->opset < 10) {
    const int64_t *a;
    const char *names[3] = {"starts", "ends", "axes"};
    int64_t *dst[3] = {starts, ends, axes};
    int *cnt[3] = {&ns, &ne, &na};
    for (int k = 0; k < 3; k++) {
      OC_RETURN_IF_ERROR(oc_lower_attr_ints(lw, names[k], &a, cnt[k]));
      if (*cnt[k] > r)
        return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                              "attribute '%s' has %d entries for rank %d", names[k], *cnt[k], r);
      if (*cnt[k] > 0) memcpy(dst[k], a, sizeof(int64_t) * (size_t)*cnt[k]);
    }
    if (ns < 0 || ne < 0)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "attributes 'starts' and 'ends' are required");
  } else {
    OC_RETURN_IF_ERROR(oc_lower_const_ints(lw, 1, starts, r, &ns));
    OC_RETURN_IF_ERROR(oc_lower_const_ints(lw, 2, ends, r, &ne));
    if (oc_lower_in(lw, 3) >= 0) OC_RETURN_IF_ERROR(oc_lower_const_ints(lw, 3, axes, r, &na));
    if (oc_lower_in(lw, 4) >= 0) OC_RETURN_IF_ERROR(oc_lower_const_ints(lw, 4, steps, r, &nt));
  }
  if (ne != ns || (na >= 0 && na != ns) || (nt >= 0 && nt != ns))
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "starts, ends, axes and steps have different lengths (%d, %d, %d, %d)",
                          ns, ne, na, nt);
  int64_t ints[3 * OC_MAX_RANK];
  for (int d = 0; d < r; d++) {
    ints[3 * d] = 0;
    ints[3 * d + 1] = 1;
    ints[3 * d + 2] = x->dims[d];
  }
  int seen[OC_MAX_RANK] = {0};
  for (int i = 0; i < ns; i++) {
    int64_t a = na >= 0 ? axes[i] : i;
    if (a < -(int64_t)r || a >= r)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "axes[%d] is %lld; out of range for rank %d",
                            i, (long long)a, r);
    if (a < 0) a += r;
    if (seen[a])
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "axis %lld is sliced twice", (long long)a);
    seen[a] = 1;
    int64_t step = nt >= 0 ? steps[i] : 1;
    if (step == 0) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "steps[%d] is 0", i);
    slice_axis(x->dims[a], starts[i], ends[i], step, &ints[3 * a]);
  }
  int identity = 1;
  for (int d = 0; d < r; d++)
    if (ints[3 * d + 2] != x->dims[d] || (x->dims[d] > 1 && (ints[3 * d] != 0 || ints[3 * d + 1] != 1)))
      identity = 0;
  if (identity)
    return oc_lower_reshape(lw, oc_lower_in(lw, 0), oc_lower_out(lw, 0), r, x->dims);
  int in[1] = {oc_lower_in(lw, 0)}, out[1] = {oc_lower_out(lw, 0)};
  return oc_lower_emit(lw, OC_OP_SLICE, 1, in, 1, out, ints, 3 * r, NULL, 0);
}

/* --- Expand ----------------------------------------------------------------- */

/* The output dims are the bidirectional (numpy) broadcast of the input's dims
 * with the constant `shape` input: a 1 in `shape` keeps the input's dim. */
oc_status_t oc_lower_expand(oc_lower_t *lw);
oc_status_t oc_lower_expand(oc_lower_t *lw) {
  const oc_tensor_t *x;
  OC_RETURN_IF_ERROR(need_input(lw, 0, "input", &x));
  int64_t shape[OC_MAX_RANK], dims[OC_MAX_RANK];
  int n;
  OC_RETURN_IF_ERROR(oc_lower_const_ints(lw, 1, shape, OC_MAX_RANK, &n));
  int r = n > x->rank ? n : x->rank;
  int same = r == x->rank;
  for (int i = 0; i < r; i++) {
    int ix = i - (r - x->rank), is = i - (r - n);
    int64_t a = ix >= 0 ? x->dims[ix] : 1, b = is >= 0 ? shape[is] : 1;
    if (b < 0)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "shape[%d] is %lld", is, (long long)b);
    if (a != b && a != 1 && b != 1) {
      char buf[160];
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                            "input %s does not broadcast with shape[%d] = %lld",
                            oc_type_str(x, buf, sizeof buf), is, (long long)b);
    }
    dims[i] = a == 1 ? b : a;
    if (dims[i] != a) same = 0;
  }
  if (same) return oc_lower_reshape(lw, oc_lower_in(lw, 0), oc_lower_out(lw, 0), r, dims);
  int in[1] = {oc_lower_in(lw, 0)}, out[1] = {oc_lower_out(lw, 0)};
  return oc_lower_emit(lw, OC_OP_EXPAND, 1, in, 1, out, dims, r, NULL, 0);
}

/* --- gradient rules ----------------------------------------------------------- */

static oc_status_t grad_oom(void) {
  return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory in autodiff");
}

/* Transpose: dx = Transpose(dy, perm^-1), inv[perm[i]] = i. */
oc_status_t oc_grad_transpose(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_transpose(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  if (!oc_grad_wants(gc, 0) || dy[0] < 0) return OC_OK;
  int r = fwd->n_ints;
  int64_t inv[OC_MAX_RANK];
  if (r > OC_MAX_RANK) return oc_grad_error(gc, OC_STATUS_INTERNAL, "rank %d", r);
  for (int i = 0; i < r; i++) inv[fwd->ints[i]] = i; /* a permutation: checked by infer */
  int dx = oc_grad_temp(gc, "dx");
  if (dx < 0) return grad_oom();
  OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_TRANSPOSE, 1, &dy[0], 1, &dx, inv, r, NULL, 0));
  return oc_grad_accumulate(gc, 0, dx);
}

/* Concat: input j's gradient is its piece of dy along the axis. When every
 * input wants one, a single Split cuts dy; otherwise one Slice per input that
 * wants a gradient. */
oc_status_t oc_grad_concat(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_concat(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  if (dy[0] < 0) return OC_OK;
  const oc_graph_t *g = oc_grad_graph(gc);
  const oc_tensor_t y_type = g->values[fwd->out[0]].type, *y = &y_type;
  int axis;
  OC_RETURN_IF_ERROR(oc_norm_axis(fwd->ints[0], y->rank, &axis));
  int n = fwd->n_in, n_want = 0;
  for (int j = 0; j < n; j++) n_want += oc_grad_wants(gc, j);
  if (n_want == 0) return OC_OK;
  if (n == 1) return oc_grad_accumulate(gc, 0, dy[0]);
  if (n_want == n && n > 1) {
    int64_t ints[1 + OC_MAX_OP_INPUTS];
    int out[OC_MAX_OP_INPUTS];
    ints[0] = axis;
    for (int j = 0; j < n; j++) {
      ints[1 + j] = g->values[fwd->in[j]].type.dims[axis];
      out[j] = oc_grad_temp(gc, "dx");
      if (out[j] < 0) return grad_oom();
    }
    OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_SPLIT, 1, &dy[0], n, out, ints, 1 + n, NULL, 0));
    for (int j = 0; j < n; j++) OC_RETURN_IF_ERROR(oc_grad_accumulate(gc, j, out[j]));
    return OC_OK;
  }
  int64_t off = 0;
  for (int j = 0; j < n; j++) {
    int64_t len = g->values[fwd->in[j]].type.dims[axis];
    if (oc_grad_wants(gc, j)) {
      int64_t ints[3 * OC_MAX_RANK];
      for (int d = 0; d < y->rank; d++) {
        ints[3 * d] = d == axis ? (len > 0 ? off : 0) : 0;
        ints[3 * d + 1] = 1;
        ints[3 * d + 2] = d == axis ? len : y->dims[d];
      }
      int dx = oc_grad_temp(gc, "dx");
      if (dx < 0) return grad_oom();
      OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_SLICE, 1, &dy[0], 1, &dx, ints, 3 * y->rank, NULL, 0));
      OC_RETURN_IF_ERROR(oc_grad_accumulate(gc, j, dx));
    }
    off += len;
  }
  return OC_OK;
}

/* Split: dx = Concat of the outputs' gradients along the axis; an output
 * without one contributes zeros, and empty pieces are left out. */
oc_status_t oc_grad_split(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_split(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  if (!oc_grad_wants(gc, 0)) return OC_OK;
  const oc_graph_t *g = oc_grad_graph(gc);
  const oc_tensor_t x_type = g->values[fwd->in[0]].type, *x = &x_type;
  int axis;
  OC_RETURN_IF_ERROR(oc_norm_axis(fwd->ints[0], x->rank, &axis));
  int in[OC_MAX_OP_OUTPUTS], n = 0;
  for (int k = 0; k < fwd->n_out; k++) {
    const oc_tensor_t yk_type = g->values[fwd->out[k]].type, *yk = &yk_type;
    if (oc_tensor_numel(yk) == 0) continue;
    int v = dy[k];
    if (v < 0) v = oc_grad_const(gc, "zero", yk->rank, yk->dims, 0.0f);
    if (v < 0) return grad_oom();
    in[n++] = v;
  }
  if (n == 0) { /* x is empty: so is its gradient */
    int z = oc_grad_const(gc, "zero", x->rank, x->dims, 0.0f);
    if (z < 0) return grad_oom();
    return oc_grad_accumulate(gc, 0, z);
  }
  if (n == 1) return oc_grad_accumulate(gc, 0, in[0]); /* the one non-empty piece is dx */
  int dx = oc_grad_temp(gc, "dx");
  if (dx < 0) return grad_oom();
  int64_t a = axis;
  OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_CONCAT, n, in, 1, &dx, &a, 1, NULL, 0));
  return oc_grad_accumulate(gc, 0, dx);
}

/* Slice: dx = zeros with dy at the sliced positions (SliceBwd: Slice's ints
 * followed by the input dims). */
oc_status_t oc_grad_slice(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_slice(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  if (!oc_grad_wants(gc, 0) || dy[0] < 0) return OC_OK;
  const oc_tensor_t x_type = oc_grad_graph(gc)->values[fwd->in[0]].type, *x = &x_type;
  int r = x->rank;
  int64_t ints[4 * OC_MAX_RANK];
  if (fwd->n_ints != 3 * r) return oc_grad_error(gc, OC_STATUS_INTERNAL, "%d ints", fwd->n_ints);
  memcpy(ints, fwd->ints, sizeof(int64_t) * (size_t)(3 * r));
  for (int d = 0; d < r; d++) ints[3 * r + d] = x->dims[d];
  int dx = oc_grad_temp(gc, "dx");
  if (dx < 0) return grad_oom();
  OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_SLICE_BWD, 1, &dy[0], 1, &dx, ints, 4 * r, NULL, 0));
  return oc_grad_accumulate(gc, 0, dx);
}

/* Expand: dx = dy summed over the broadcast axes. */
oc_status_t oc_grad_expand(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_expand(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  (void)fwd;
  if (!oc_grad_wants(gc, 0) || dy[0] < 0) return OC_OK;
  return oc_grad_accumulate_unbroadcast(gc, 0, dy[0]);
}
