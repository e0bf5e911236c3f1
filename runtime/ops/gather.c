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
