/*
 * Concat and Split: joining tensors along one axis and cutting one apart.
 *
 * Concat: y = the inputs joined along axis.
 *   inputs:  x_0, ..., x_{n-1} (1 to 64, all present; same dtype and rank >= 1;
 *            equal dims except on axis; zero-size inputs are fine)
 *   outputs: y, dims of x_0 with dims[axis] = sum of the inputs' dims[axis]
 *   ints:    [axis] (in [-rank, rank))
 *   floats:  none
 *
 * Split: y_0, ..., y_{m-1} = consecutive pieces of x along axis.
 *   inputs:  x (any dtype, rank >= 1)
 *   outputs: y_0, ..., y_{m-1} (1 to 64), dims of x with dims[axis] = size_j
 *   ints:    [axis, size_0, ..., size_{m-1}] (axis in [-rank, rank); sizes
 *            >= 0 and summing to x.dims[axis])
 *   floats:  none
 *
 * Both work for any dtype by element size.
 */
#include <string.h>

#include "oc_ops.h"

/* Rows before axis ("outer") and bytes per unit of the axis ("inner"). */
static void axis_split(const oc_tensor_t *t, int axis, int64_t *outer, int64_t *inner_bytes) {
  int64_t o = 1, in = (int64_t)oc_dtype_size(t->dtype);
  for (int i = 0; i < axis; i++) o *= t->dims[i];
  for (int i = axis + 1; i < t->rank; i++) in *= t->dims[i];
  *outer = o;
  *inner_bytes = in;
}

/* --- Concat ---------------------------------------------------------------- */

static oc_status_t concat_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *x0 = c->in[0];
  char b1[160], b2[160];
  if (c->n_floats != 0 || c->n_ints != 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "takes ints [axis] and no floats");
  if (x0->rank < 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "cannot concatenate rank-0 tensors");
  int axis;
  OC_RETURN_IF_ERROR(oc_norm_axis(c->ints[0], x0->rank, &axis));
  int64_t dims[OC_MAX_RANK];
  for (int i = 0; i < x0->rank; i++) dims[i] = x0->dims[i];
  dims[axis] = 0;
  for (int j = 0; j < c->n_in; j++) {
    const oc_tensor_t *x = c->in[j];
    if (!x) return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input %d is missing", j);
    int ok = x->dtype == x0->dtype && x->rank == x0->rank;
    for (int i = 0; ok && i < x->rank; i++)
      if (i != axis && x->dims[i] != x0->dims[i]) ok = 0;
    if (!ok)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "input %d is %s; it cannot join input 0 (%s) on axis %d", j,
                            oc_type_str(x, b1, sizeof b1), oc_type_str(x0, b2, sizeof b2), axis);
    dims[axis] += x->dims[axis]; /* <= 64 * 2^40: no overflow */
  }
  oc_tensor_set_type(c->out[0], x0->dtype, x0->rank, dims);
  *ws = 0;
  return OC_OK;
}

/* x_j is (outer, n_j, inner), y is (outer, sum_j n_j, inner). */
static oc_status_t concat_run(const oc_op_call_t *c) {
  oc_tensor_t *y = c->out[0];
  int axis;
  OC_RETURN_IF_ERROR(oc_norm_axis(c->ints[0], y->rank, &axis));
  int64_t outer, inner;
  axis_split(y, axis, &outer, &inner);
  int64_t row = y->dims[axis] * inner; /* bytes of one output row */
  char *py = y->data;
  int64_t off = 0;
  for (int j = 0; j < c->n_in; j++) {
    const oc_tensor_t *x = c->in[j];
    int64_t chunk = x->dims[axis] * inner;
    const char *px = x->data;
    if (chunk > 0)
      for (int64_t o = 0; o < outer; o++) memcpy(py + o * row + off, px + o * chunk, (size_t)chunk);
    off += chunk;
  }
  return OC_OK;
}

const oc_op_def_t oc_op_concat = {"Concat", 1, OC_MAX_OP_INPUTS, 1, 1, concat_infer, concat_run};

/* --- Split ----------------------------------------------------------------- */

static oc_status_t split_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *x = c->in[0];
  if (c->n_floats != 0 || c->n_ints != 1 + c->n_out)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "takes ints [axis, one size per output] (%d) and no floats; got %d ints",
                          1 + c->n_out, c->n_ints);
  if (x->rank < 1) return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "cannot split a rank-0 tensor");
  int axis;
  OC_RETURN_IF_ERROR(oc_norm_axis(c->ints[0], x->rank, &axis));
  int64_t total = 0;
  for (int j = 0; j < c->n_out; j++) {
    int64_t n = c->ints[1 + j];
    if (n < 0 || n > x->dims[axis])
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "size %d is %lld; axis %d has %lld", j,
                            (long long)n, axis, (long long)x->dims[axis]);
    total += n; /* <= 64 * 2^40: no overflow */
  }
  if (total != x->dims[axis])
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "sizes sum to %lld; axis %d has %lld",
                          (long long)total, axis, (long long)x->dims[axis]);
  int64_t dims[OC_MAX_RANK];
  for (int i = 0; i < x->rank; i++) dims[i] = x->dims[i];
  for (int j = 0; j < c->n_out; j++) {
    dims[axis] = c->ints[1 + j];
    oc_tensor_set_type(c->out[j], x->dtype, x->rank, dims);
  }
  *ws = 0;
  return OC_OK;
}

/* x is (outer, sum_j n_j, inner), y_j is (outer, n_j, inner). */
static oc_status_t split_run(const oc_op_call_t *c) {
  const oc_tensor_t *x = c->in[0];
  int axis;
  OC_RETURN_IF_ERROR(oc_norm_axis(c->ints[0], x->rank, &axis));
  int64_t outer, inner;
  axis_split(x, axis, &outer, &inner);
  int64_t row = x->dims[axis] * inner;
  const char *px = x->data;
  int64_t off = 0;
  for (int j = 0; j < c->n_out; j++) {
    int64_t chunk = c->ints[1 + j] * inner;
    char *py = c->out[j]->data;
    if (chunk > 0)
      for (int64_t o = 0; o < outer; o++) memcpy(py + o * chunk, px + o * row + off, (size_t)chunk);
    off += chunk;
  }
  return OC_OK;
}

const oc_op_def_t oc_op_split = {"Split", 1, 1, 1, OC_MAX_OP_OUTPUTS, split_infer, split_run};
