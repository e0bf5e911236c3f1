/*
 * EinsumDiagonal: a generalized diagonal (and transpose), the one piece of
 * Einsum that the other runtime ops do not provide. An index repeated within
 * one Einsum operand ("ii->i", "...ii->...i", "iji->ij") reads the elements
 * where those axes are equal; the compiler lowers the rest of Einsum to
 * Transpose, Copy, ReduceSum, MatMul and Mul (compiler/ops/einsum.c).
 *   inputs:  x (any dtype; elements are moved by size), rank r
 *   outputs: y, same dtype, rank m
 *   ints:    [m, map_0, ..., map_{r-1}]: input axis k is indexed by output
 *            axis map_k, so y[j_0, ..., j_{m-1}] = x[j_{map_0}, ..., j_{map_{r-1}}].
 *            m in [0, r]; every map_k in [0, m); every output axis is used by
 *            at least one input axis; input axes that share an output axis
 *            have equal dims, which is that output axis's dim.
 *   floats:  none
 * Example: "ii->i" on x (n, n) is ints [1, 0, 0]; "iji->ij" on x (a, b, a) is
 * [2, 0, 1, 0]. With a permutation for map it is a transpose.
 */
#include <string.h>

#include "oc_ops.h"

/* Defined in transpose.c: dst (dims, row-major) gathers src by strides. */
void oc_strided_copy(void *dst, const void *src, int rank, const int64_t *dims,
                     const int64_t *strides, size_t esize);

/* Reads ints into the output dims; validates everything run relies on. */
static oc_status_t diag_parse(const oc_op_call_t *c, int *out_rank, int64_t *out_dims) {
  const oc_tensor_t *x = c->in[0];
  char b1[160];
  if (c->n_floats != 0 || c->n_ints != 1 + x->rank)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "needs ints [m, map_0, ..., map_%d] (%d entries), got %d, and no floats",
                          x->rank - 1, 1 + x->rank, c->n_ints);
  int64_t m = c->ints[0];
  if (m < 0 || m > x->rank)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "output rank %lld is not in [0, %d]",
                          (long long)m, x->rank);
  int used[OC_MAX_RANK] = {0};
  for (int k = 0; k < x->rank; k++) {
    int64_t j = c->ints[1 + k];
    if (j < 0 || j >= m)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "map entry %d is %lld; must be in [0, %lld)", k, (long long)j,
                            (long long)m);
    if (used[j] && out_dims[j] != x->dims[k])
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "input %s: axes mapped to output axis %lld have different dims",
                            oc_type_str(x, b1, sizeof b1), (long long)j);
    used[j] = 1;
    out_dims[j] = x->dims[k];
  }
  for (int j = 0; j < m; j++)
    if (!used[j])
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "output axis %d is not mapped", j);
  *out_rank = (int)m;
  return OC_OK;
}

static oc_status_t diag_infer(const oc_op_call_t *c, size_t *ws) {
  int m;
  int64_t dims[OC_MAX_RANK];
  OC_RETURN_IF_ERROR(diag_parse(c, &m, dims));
  oc_tensor_set_type(c->out[0], c->in[0]->dtype, m, dims);
  *ws = 0;
  return OC_OK;
}

/* x is (d_0, ..., d_{r-1}); y is (e_0, ..., e_{m-1}), e_{map_k} = d_k. The
 * stride of output axis j is the sum of the strides of the input axes that
 * it indexes: one step along j moves along all of them at once. */
static oc_status_t diag_run(const oc_op_call_t *c) {
  const oc_tensor_t *x = c->in[0];
  oc_tensor_t *y = c->out[0];
  int64_t xstride[OC_MAX_RANK], strides[OC_MAX_RANK] = {0};
  int64_t s = 1;
  for (int k = x->rank - 1; k >= 0; k--) {
    xstride[k] = s;
    s *= x->dims[k];
  }
  for (int k = 0; k < x->rank; k++) strides[c->ints[1 + k]] += xstride[k];
  oc_strided_copy(y->data, x->data, y->rank, y->dims, strides, oc_dtype_size(x->dtype));
  return OC_OK;
}

const oc_op_def_t oc_op_einsum_diagonal = {.name = "EinsumDiagonal",
                                           .min_inputs = 1, .max_inputs = 1,
                                           .min_outputs = 1, .max_outputs = 1,
                                           .infer = diag_infer, .run = diag_run};
