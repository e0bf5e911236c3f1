/*
 * Slice: y[i_0, ..., i_{r-1}] = x[start_0 + i_0 * step_0, ..., start_{r-1} + i_{r-1} * step_{r-1}].
 *   inputs:  x (any dtype; the kernel moves elements by size)
 *   outputs: y, same dtype and rank as x
 *   ints:    3 * x.rank entries: for every axis d, (start_d, step_d, dim_d)
 *            where dim_d is y.dims[d]. The compiler resolves ONNX's
 *            starts/ends/axes/steps (clamping, negative indices) into these.
 *            step_d != 0; when dim_d > 0, start_d and
 *            start_d + (dim_d - 1) * step_d must lie in [0, x.dims[d]).
 *   floats:  none
 */
#include "oc_ops.h"

void oc_strided_copy(void *dst, const void *src, int rank, const int64_t *dims,
                     const int64_t *strides, size_t esize); /* transpose.c */

static oc_status_t slice_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *x = c->in[0];
  if (c->n_floats != 0) return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "takes no floats");
  if (c->n_ints != 3 * x->rank)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "takes 3 ints per axis (start, step, dim); got %d for rank %d",
                          c->n_ints, x->rank);
  int64_t dims[OC_MAX_RANK];
  for (int d = 0; d < x->rank; d++) {
    int64_t start = c->ints[3 * d], step = c->ints[3 * d + 1], n = c->ints[3 * d + 2];
    if (step == 0) return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "axis %d: step is 0", d);
    if (n < 0 || n > OC_MAX_DIM)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "axis %d: output dim %lld is out of range",
                            d, (long long)n);
    if (n > 0) {
      int64_t span, last;
      if (start < 0 || start >= x->dims[d] || __builtin_mul_overflow(n - 1, step, &span) ||
          __builtin_add_overflow(start, span, &last) || last < 0 || last >= x->dims[d])
        return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                              "axis %d: %lld elements from %lld by step %lld leave [0, %lld)", d,
                              (long long)n, (long long)start, (long long)step,
                              (long long)x->dims[d]);
    }
    dims[d] = n;
  }
  oc_tensor_set_type(c->out[0], x->dtype, x->rank, dims);
  *ws = 0;
  return OC_OK;
}

/* x is (d_0, ..., d_{r-1}), y is (dim_0, ..., dim_{r-1}). */
static oc_status_t slice_run(const oc_op_call_t *c) {
  const oc_tensor_t *x = c->in[0];
  oc_tensor_t *y = c->out[0];
  if (oc_tensor_numel(y) == 0) return OC_OK;
  size_t esize = oc_dtype_size(x->dtype);
  int64_t strides[OC_MAX_RANK], s = 1, base = 0;
  for (int d = x->rank - 1; d >= 0; d--) {
    base += c->ints[3 * d] * s;
    /* A one-element axis may carry any step (even INT64_MAX): never used. */
    strides[d] = y->dims[d] == 1 ? 0 : c->ints[3 * d + 1] * s;
    s *= x->dims[d];
  }
  oc_strided_copy(y->data, (const char *)x->data + base * (int64_t)esize, y->rank, y->dims,
                  strides, esize);
  return OC_OK;
}

const oc_op_def_t oc_op_slice = {"Slice", 1, 1, 1, 1, slice_infer, slice_run};
