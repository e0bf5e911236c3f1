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
#include <string.h>

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

/*
 * SliceBwd: the gradient of Slice. dx = zeros of x's dims with dy written at
 * the positions Slice read: dx[start_0 + i_0 * step_0, ...] = dy[i_0, ...].
 * Distinct i give distinct positions (step != 0), so this is an assignment.
 *   inputs:  dy (any dtype, moved by element size), dims (dim_0, ..., dim_{r-1})
 *   outputs: dx, same dtype as dy, dims (n_0, ..., n_{r-1})
 *   ints:    4 * r entries: Slice's 3 * r ints (start_d, step_d, dim_d) for
 *            every axis d, then the input dims n_0, ..., n_{r-1}. The same
 *            rules as Slice hold against n_d (dim_d == dy.dims[d]).
 *   floats:  none
 */
static oc_status_t slice_bwd_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *dy = c->in[0];
  int r = dy->rank;
  if (c->n_floats != 0) return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "takes no floats");
  if (c->n_ints != 4 * r)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "takes 3 ints per axis (start, step, dim) then the %d input dims "
                          "(%d ints); got %d",
                          r, 4 * r, c->n_ints);
  oc_tensor_t dx = {.dtype = dy->dtype, .rank = r};
  for (int d = 0; d < r; d++) {
    int64_t n = c->ints[3 * r + d];
    if (n < 0 || n > OC_MAX_DIM)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "axis %d: input dim %lld is out of range",
                            d, (long long)n);
    dx.dims[d] = n;
  }
  OC_RETURN_IF_ERROR(oc_check_type(&dx, "output"));
  for (int d = 0; d < r; d++) {
    int64_t start = c->ints[3 * d], step = c->ints[3 * d + 1], n = c->ints[3 * d + 2];
    if (step == 0) return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "axis %d: step is 0", d);
    if (n != dy->dims[d])
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "axis %d: slice dim %lld but the gradient has %lld", d, (long long)n,
                            (long long)dy->dims[d]);
    if (n > 0) {
      int64_t span, last;
      if (start < 0 || start >= dx.dims[d] || __builtin_mul_overflow(n - 1, step, &span) ||
          __builtin_add_overflow(start, span, &last) || last < 0 || last >= dx.dims[d])
        return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                              "axis %d: %lld elements from %lld by step %lld leave [0, %lld)", d,
                              (long long)n, (long long)start, (long long)step,
                              (long long)dx.dims[d]);
    }
  }
  oc_tensor_set_type(c->out[0], dx.dtype, dx.rank, dx.dims);
  *ws = 0;
  return OC_OK;
}

/* dy is (dim_0, ..., dim_{r-1}), dx is (n_0, ..., n_{r-1}). */
static oc_status_t slice_bwd_run(const oc_op_call_t *c) {
  const oc_tensor_t *dy = c->in[0];
  oc_tensor_t *dx = c->out[0];
  size_t esize = oc_dtype_size(dy->dtype);
  size_t bytes = oc_tensor_bytes(dx);
  if (bytes > 0) memset(dx->data, 0, bytes);
  if (oc_tensor_numel(dy) == 0) return OC_OK;
  int r = dy->rank;
  /* Element strides into dx; size-1 axes dropped, contiguous runs merged. */
  int64_t d[OC_MAX_RANK], s[OC_MAX_RANK], st = 1, base = 0, stride[OC_MAX_RANK];
  for (int k = r - 1; k >= 0; k--) {
    base += c->ints[3 * k] * st;
    /* A one-element axis may carry any step (even INT64_MAX): never used. */
    stride[k] = dy->dims[k] == 1 ? 0 : c->ints[3 * k + 1] * st;
    st *= dx->dims[k];
  }
  int m = 0;
  for (int k = 0; k < r; k++) {
    if (dy->dims[k] == 1) continue;
    if (m > 0 && s[m - 1] == stride[k] * dy->dims[k]) {
      d[m - 1] *= dy->dims[k];
      s[m - 1] = stride[k];
    } else {
      d[m] = dy->dims[k];
      s[m] = stride[k];
      m++;
    }
  }
  const char *src = dy->data;
  char *dst = (char *)dx->data + base * (int64_t)esize;
  if (m == 0) {
    memcpy(dst, src, esize);
    return OC_OK;
  }
  int64_t inner = d[m - 1], is = s[m - 1], outer = 1;
  for (int k = 0; k < m - 1; k++) outer *= d[k];
  int64_t idx[OC_MAX_RANK] = {0}, off = 0;
  for (int64_t o = 0; o < outer; o++) {
    const char *row = src + o * inner * (int64_t)esize;
    char *p = dst + off * (int64_t)esize;
    if (is == 1) {
      memcpy(p, row, (size_t)inner * esize);
    } else if (esize == 4) {
      for (int64_t i = 0; i < inner; i++) memcpy(p + i * is * 4, row + i * 4, 4);
    } else {
      for (int64_t i = 0; i < inner; i++)
        memcpy(p + i * is * (int64_t)esize, row + i * (int64_t)esize, esize);
    }
    for (int k = m - 2; k >= 0; k--) {
      idx[k]++;
      off += s[k];
      if (idx[k] < d[k]) break;
      off -= s[k] * idx[k];
      idx[k] = 0;
    }
  }
  return OC_OK;
}

const oc_op_def_t oc_op_slice_bwd = {"SliceBwd", 1, 1, 1, 1, slice_bwd_infer, slice_bwd_run};
