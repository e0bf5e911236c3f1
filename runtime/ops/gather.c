/*
 * Gather: y = take(data, indices, axis).
 *   inputs:  data (any dtype, rank >= 1), indices int64 or int32 (any shape)
 *   outputs: y, dtype of data, dims data[:axis] ++ indices ++ data[axis+1:]
 *   ints:    [axis], axis in [-rank(data), rank(data))
 *   floats:  none
 * Negative indices count from the end. An index outside [-n, n-1] (n the
 * size of the gathered axis) is an OC_STATUS_NUMERIC error at run time that
 * names the index; nothing is written then.
 */
#include <string.h>

#include "oc_ops.h"

static oc_status_t gather_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *x = c->in[0], *idx = c->in[1];
  char b1[160];
  if (c->n_ints != 1 || c->n_floats != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "Gather needs ints [axis]");
  if (idx->dtype != OC_DTYPE_INT64 && idx->dtype != OC_DTYPE_INT32)
    return oc_make_status(OC_STATUS_UNSUPPORTED, "Gather indices have dtype %s; expected int64 or int32",
                          oc_dtype_name(idx->dtype));
  if (x->rank < 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "Gather data must have rank >= 1, got %s",
                          oc_type_str(x, b1, sizeof b1));
  int axis;
  OC_RETURN_IF_ERROR(oc_norm_axis(c->ints[0], x->rank, &axis));
  int rank = x->rank - 1 + idx->rank;
  if (rank > OC_MAX_RANK)
    return oc_make_status(OC_STATUS_RESOURCE_LIMIT, "Gather output has rank %d; the limit is %d",
                          rank, OC_MAX_RANK);
  int64_t dims[OC_MAX_RANK];
  int r = 0;
  for (int i = 0; i < axis; i++) dims[r++] = x->dims[i];
  for (int i = 0; i < idx->rank; i++) dims[r++] = idx->dims[i];
  for (int i = axis + 1; i < x->rank; i++) dims[r++] = x->dims[i];
  oc_tensor_set_type(c->out[0], x->dtype, rank, dims);
  *ws = 0;
  return OC_OK;
}

static int64_t gather_index(const oc_tensor_t *idx, int64_t i) {
  if (idx->dtype == OC_DTYPE_INT64) return ((const int64_t *)idx->data)[i];
  return ((const int32_t *)idx->data)[i];
}

/* x is (outer, n, inner) in elements of |es| bytes, idx is (m), y is
 * (outer, m, inner). Indices were checked to be in [-n, n). */
static void gather_forward(uint8_t *y, const uint8_t *x, const oc_tensor_t *idx, int64_t outer,
                           int64_t n, int64_t m, size_t inner_bytes) {
  for (int64_t o = 0; o < outer; o++) {
    const uint8_t *xo = x + (size_t)(o * n) * inner_bytes;
    uint8_t *yo = y + (size_t)(o * m) * inner_bytes;
    for (int64_t j = 0; j < m; j++) {
      int64_t k = gather_index(idx, j);
      if (k < 0) k += n;
      memcpy(yo + (size_t)j * inner_bytes, xo + (size_t)k * inner_bytes, inner_bytes);
    }
  }
}

static oc_status_t gather_run(const oc_op_call_t *c) {
  const oc_tensor_t *x = c->in[0], *idx = c->in[1];
  int axis;
  OC_RETURN_IF_ERROR(oc_norm_axis(c->ints[0], x->rank, &axis));
  int64_t n = x->dims[axis], m = oc_tensor_numel(idx);
  for (int64_t j = 0; j < m; j++) {
    int64_t k = gather_index(idx, j);
    if (k < -n || k >= n)
      return oc_make_status(OC_STATUS_NUMERIC,
                            "Gather index %lld (element %lld of indices) is out of range: axis %d "
                            "has size %lld, so indices must be in [%lld, %lld]",
                            (long long)k, (long long)j, axis, (long long)n, (long long)-n,
                            (long long)(n - 1));
  }
  if (oc_tensor_numel(c->out[0]) == 0) return OC_OK;
  /* y is non-empty, so outer and inner are bounded by its size. */
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; i++) outer *= x->dims[i];
  for (int i = axis + 1; i < x->rank; i++) inner *= x->dims[i];
  gather_forward(c->out[0]->data, x->data, idx, outer, n, m,
                 (size_t)inner * oc_dtype_size(x->dtype));
  return OC_OK;
}

const oc_op_def_t oc_op_gather = {"Gather", 2, 2, 1, 1, gather_infer, gather_run};

/* --- GatherBwd (backward of Gather with respect to data) -----------------------
 *
 * GatherBwd: d data = the slices of dy scatter-added into a zero tensor of
 * data's dims (an embedding table's gradient: repeated indices accumulate).
 *   inputs:  indices int64 or int32 (the forward's), dy float32 (the dims of
 *            the forward's y: data[:axis] ++ indices ++ data[axis+1:])
 *   outputs: ddata float32 with data's dims
 *   ints:    [axis, data dims...]: data rank = n_ints - 1 >= 1, axis in
 *            [0, rank)
 *   floats:  none
 * Negative indices count from the end, as in the forward; an index outside
 * [-n, n-1] is an OC_STATUS_NUMERIC error. Sums are float32, in index order
 * (as PyTorch's embedding backward on CPU).
 */
static oc_status_t gather_grad_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *idx = c->in[0], *dy = c->in[1];
  char b1[160], b2[160];
  if (c->n_floats != 0 || c->n_ints < 2 || c->n_ints - 1 > OC_MAX_RANK)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "GatherBwd needs ints [axis, data dims...] with 1 to %d dims",
                          OC_MAX_RANK);
  if (idx->dtype != OC_DTYPE_INT64 && idx->dtype != OC_DTYPE_INT32)
    return oc_make_status(OC_STATUS_UNSUPPORTED,
                          "GatherBwd indices have dtype %s; expected int64 or int32",
                          oc_dtype_name(idx->dtype));
  OC_RETURN_IF_ERROR(oc_expect_dtype(dy, OC_DTYPE_FLOAT32, "GatherBwd dy"));
  oc_tensor_t x = {.dtype = OC_DTYPE_FLOAT32, .rank = c->n_ints - 1};
  for (int i = 0; i < x.rank; i++) {
    if (c->ints[1 + i] < 0 || c->ints[1 + i] > OC_MAX_DIM)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "GatherBwd data dim %d is %lld", i,
                            (long long)c->ints[1 + i]);
    x.dims[i] = c->ints[1 + i];
  }
  OC_RETURN_IF_ERROR(oc_check_type(&x, "GatherBwd data"));
  int axis;
  OC_RETURN_IF_ERROR(oc_norm_axis(c->ints[0], x.rank, &axis));
  if (c->ints[0] < 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "GatherBwd axis %lld must be >= 0",
                          (long long)c->ints[0]);
  int rank = x.rank - 1 + idx->rank, same = dy->rank == rank;
  for (int i = 0; same && i < rank; i++) {
    int64_t want = i < axis ? x.dims[i]
                   : i < axis + idx->rank ? idx->dims[i - axis]
                                          : x.dims[i - idx->rank + 1];
    same = dy->dims[i] == want;
  }
  if (!same)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "GatherBwd dy is %s; Gather of %s at axis %d with indices of these "
                          "dims has other dims",
                          oc_type_str(dy, b1, sizeof b1), oc_type_str(&x, b2, sizeof b2), axis);
  oc_tensor_set_type(c->out[0], OC_DTYPE_FLOAT32, x.rank, x.dims);
  *ws = 0;
  return OC_OK;
}

/* dy is (outer, m, inner), idx is (m), dx is (outer, n, inner). */
static oc_status_t gather_grad_run(const oc_op_call_t *c) {
  const oc_tensor_t *idx = c->in[0];
  oc_tensor_t *dx = c->out[0];
  int axis = (int)c->ints[0];
  int64_t n = dx->dims[axis], m = oc_tensor_numel(idx);
  for (int64_t j = 0; j < m; j++) {
    int64_t k = gather_index(idx, j);
    if (k < -n || k >= n)
      return oc_make_status(OC_STATUS_NUMERIC,
                            "GatherBwd index %lld (element %lld of indices) is out of range: "
                            "axis %d has size %lld, so indices must be in [%lld, %lld]",
                            (long long)k, (long long)j, axis, (long long)n, (long long)-n,
                            (long long)(n - 1));
  }
  int64_t nx = oc_tensor_numel(dx);
  if (nx == 0) return OC_OK;
  float *px = dx->data;
  memset(px, 0, sizeof(float) * (size_t)nx);
  if (oc_tensor_numel(c->in[1]) == 0) return OC_OK;
  /* dx and dy are non-empty, so outer and inner are bounded by their sizes. */
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; i++) outer *= dx->dims[i];
  for (int i = axis + 1; i < dx->rank; i++) inner *= dx->dims[i];
  const float *py = c->in[1]->data;
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < m; j++) {
      int64_t k = gather_index(idx, j);
      if (k < 0) k += n;
      float *dst = px + (o * n + k) * inner;
      const float *src = py + (o * m + j) * inner;
      for (int64_t e = 0; e < inner; e++) dst[e] += src[e];
    }
  return OC_OK;
}

const oc_op_def_t oc_op_gather_bwd = {"GatherBwd", 2, 2, 1, 1, gather_grad_infer,
                                       gather_grad_run};
