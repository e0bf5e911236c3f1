/*
 * Expand: y = x broadcast to the dims in ints (numpy rules, one direction:
 * x's dims align with the trailing dims of y and each is 1 or equal).
 *   inputs:  x (any dtype; the kernel moves elements by size)
 *   outputs: y, same dtype as x
 *   ints:    the dims of y (y.rank = n_ints >= x.rank). The compiler resolves
 *            ONNX's bidirectional broadcast of x with the `shape` input.
 *   floats:  none
 */
#include "oc_ops.h"

void oc_strided_copy(void *dst, const void *src, int rank, const int64_t *dims,
                     const int64_t *strides, size_t esize); /* transpose.c */

static oc_status_t expand_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *x = c->in[0];
  if (c->n_floats != 0) return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "takes no floats");
  if (c->n_ints < x->rank || c->n_ints > OC_MAX_RANK)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "output rank %d must be in [%d, %d] (the input's rank and the limit)",
                          c->n_ints, x->rank, OC_MAX_RANK);
  int r = c->n_ints;
  for (int i = 0; i < r; i++) {
    int64_t n = c->ints[i];
    if (n < 0 || n > OC_MAX_DIM)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "output dim %d is %lld", i, (long long)n);
    int ix = i - (r - x->rank);
    if (ix >= 0 && x->dims[ix] != 1 && x->dims[ix] != n) {
      char buf[160];
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "input %s does not broadcast to output dim %d = %lld",
                            oc_type_str(x, buf, sizeof buf), i, (long long)n);
    }
  }
  oc_tensor_set_type(c->out[0], x->dtype, r, c->ints);
  *ws = 0;
  return OC_OK;
}

/* x is (a_0, ..., a_{q-1}), y is (n_0, ..., n_{r-1}), r >= q, a_k in {1, n_{k+r-q}}. */
static oc_status_t expand_run(const oc_op_call_t *c) {
  const oc_tensor_t *x = c->in[0];
  oc_tensor_t *y = c->out[0];
  int r = y->rank;
  int64_t strides[OC_MAX_RANK], s = 1;
  for (int i = r - 1; i >= 0; i--) {
    int ix = i - (r - x->rank);
    if (ix < 0 || x->dims[ix] == 1) {
      strides[i] = 0;
    } else {
      strides[i] = s;
    }
    if (ix >= 0) s *= x->dims[ix];
  }
  oc_strided_copy(y->data, x->data, r, y->dims, strides, oc_dtype_size(x->dtype));
  return OC_OK;
}

const oc_op_def_t oc_op_expand = {"Expand", 1, 1, 1, 1, expand_infer, expand_run};
