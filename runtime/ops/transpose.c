/*
 * Transpose: y = x with its axes permuted.
 *   inputs:  x (any dtype; the kernel moves elements by size)
 *   outputs: y, same dtype as x, y.dims[i] = x.dims[perm[i]]
 *   ints:    perm (x.rank entries, a permutation of 0..rank-1)
 *   floats:  none
 *
 * This file also defines oc_strided_copy, the gather-by-strides loop shared
 * by the data-movement kernels (Transpose, Slice, Expand).
 */
#include <string.h>

#include "oc_ops.h"
#include "parallel.h"

/* Copies a strided view of src into the contiguous dst.
 * dst is (dims[0], ..., dims[rank-1]) row-major; its element (i0, ..., ir-1)
 * comes from element sum_k(ik * strides[k]) of src. Strides are in elements
 * and may be zero (broadcast) or negative (reversed slices). */
void oc_strided_copy(void *dst, const void *src, int rank, const int64_t *dims,
                     const int64_t *strides, size_t esize);

/* Inner loop: dst[i] = src[i * stride] for i < n, elements of |esize| bytes. */
static void copy_row(char *dst, const char *src, int64_t n, int64_t stride, size_t esize) {
  if (stride == 1) {
    memcpy(dst, src, (size_t)n * esize);
    return;
  }
  switch (esize) {
    case 1: {
      uint8_t *d = (uint8_t *)dst;
      const uint8_t *s = (const uint8_t *)src;
      for (int64_t i = 0; i < n; i++) d[i] = s[i * stride];
      return;
    }
    case 4: {
      /* memcpy of fixed size compiles to plain loads/stores and avoids
       * aliasing/alignment assumptions about the buffers. */
      for (int64_t i = 0; i < n; i++) memcpy(dst + i * 4, src + i * stride * 4, 4);
      return;
    }
    case 8: {
      for (int64_t i = 0; i < n; i++) memcpy(dst + i * 8, src + i * stride * 8, 8);
      return;
    }
    default:
      for (int64_t i = 0; i < n; i++)
        memcpy(dst + i * (int64_t)esize, src + i * stride * (int64_t)esize, esize);
      return;
  }
}

void oc_strided_copy(void *dst, const void *src, int rank, const int64_t *dims,
                     const int64_t *strides, size_t esize) {
  /* Drop size-1 axes and merge an outer axis into the next inner one when
   * they are contiguous with respect to each other (S_outer == S_inner * D_inner). */
  int64_t d[OC_MAX_RANK], s[OC_MAX_RANK];
  int r = 0;
  for (int k = 0; k < rank; k++) {
    if (dims[k] == 0) return;
    if (dims[k] == 1) continue;
    if (r > 0 && s[r - 1] == strides[k] * dims[k]) {
      d[r - 1] *= dims[k];
      s[r - 1] = strides[k];
    } else {
      d[r] = dims[k];
      s[r] = strides[k];
      r++;
    }
  }
  char *out = dst;
  const char *in = src;
  if (r == 0) {
    memcpy(out, in, esize);
    return;
  }
  int64_t inner = d[r - 1], inner_stride = s[r - 1];
  int64_t outer = 1;
  for (int k = 0; k < r - 1; k++) outer *= d[k];
  int64_t idx[OC_MAX_RANK] = {0};
  int64_t off = 0; /* element offset into src of the current row */
  for (int64_t o = 0; o < outer; o++) {
    copy_row(out + o * inner * (int64_t)esize, in + off * (int64_t)esize, inner, inner_stride,
             esize);
    for (int k = r - 2; k >= 0; k--) {
      idx[k]++;
      off += s[k];
      if (idx[k] < d[k]) break;
      off -= s[k] * idx[k];
      idx[k] = 0;
    }
  }
}

static oc_status_t transpose_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *x = c->in[0];
  if (c->n_floats != 0) return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "takes no floats");
  if (c->n_ints != x->rank)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "perm has %d entries; input has rank %d",
                          c->n_ints, x->rank);
  int seen[OC_MAX_RANK] = {0};
  int64_t dims[OC_MAX_RANK];
  for (int i = 0; i < x->rank; i++) {
    int64_t p = c->ints[i];
    if (p < 0 || p >= x->rank || seen[p])
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "perm is not a permutation of 0..%d (entry %d is %lld)", x->rank - 1,
                            i, (long long)p);
    seen[p] = 1;
    dims[i] = x->dims[p];
  }
  oc_tensor_set_type(c->out[0], x->dtype, x->rank, dims);
  *ws = 0;
  return OC_OK;
}

typedef struct tr_job_s {
  const oc_tensor_t *x, *y;
  int64_t strides[OC_MAX_RANK];
  size_t esize;
} tr_job_t;

/* Output rows [i0, i1) along y's first axis (the context's threads split them). */
static void transpose_part(void *arg, int64_t i0, int64_t i1, int thread) {
  const tr_job_t *j = arg;
  int64_t dims[OC_MAX_RANK], row = 1;
  memcpy(dims, j->y->dims, sizeof dims);
  for (int k = 1; k < j->y->rank; k++) row *= dims[k];
  dims[0] = i1 - i0;
  oc_strided_copy((char *)j->y->data + i0 * row * (int64_t)j->esize,
                  (const char *)j->x->data + i0 * j->strides[0] * (int64_t)j->esize, j->y->rank,
                  dims, j->strides, j->esize);
  (void)thread;
}

/* x is (d_0, ..., d_{r-1}), y is (d_perm[0], ..., d_perm[r-1]). */
static oc_status_t transpose_run(const oc_op_call_t *c) {
  const oc_tensor_t *x = c->in[0];
  oc_tensor_t *y = c->out[0];
  tr_job_t j = {x, y, {0}, oc_dtype_size(x->dtype)};
  int64_t xstride[OC_MAX_RANK];
  int64_t s = 1;
  for (int i = x->rank - 1; i >= 0; i--) {
    xstride[i] = s;
    s *= x->dims[i];
  }
  for (int i = 0; i < x->rank; i++) j.strides[i] = xstride[c->ints[i]];
  if (y->rank == 0 || oc_tensor_numel(y) == 0) {
    oc_strided_copy(y->data, x->data, y->rank, y->dims, j.strides, j.esize);
    return OC_OK;
  }
  oc_parallel_for(c->pool, y->dims[0], oc_grain(oc_tensor_numel(y) / y->dims[0] * 2),
                  transpose_part, &j);
  return OC_OK;
}

const oc_op_def_t oc_op_transpose = {"Transpose", 1, 1, 1, 1, transpose_infer, transpose_run};
