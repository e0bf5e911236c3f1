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

/*
 * EinsumDiagonalBwd: the gradient of EinsumDiagonal. Every element of y is
 * read from one element of x (distinct y elements from distinct x elements),
 * so dx is zeros with dy written back onto those positions.
 *   inputs:  dy (any dtype; float32 in practice), rank m
 *   outputs: dx, same dtype, rank r
 *   ints:    [r, map_0, ..., map_{r-1}]: the forward's map with x's rank in
 *            front, so dx[j_{map_0}, ..., j_{map_{r-1}}] = dy[j_0, ..., j_{m-1}]
 *            and dx's dim k is dy's dim map_k. r in [0, OC_MAX_RANK]; every
 *            map_k in [0, m); every axis of dy is used by at least one map_k.
 *   floats:  none
 * Example: the gradient of "ii->i" on x (n, n) is ints [2, 0, 0] on dy (n).
 */
static oc_status_t diag_bwd_parse(const oc_op_call_t *c, oc_tensor_t *dx) {
  const oc_tensor_t *dy = c->in[0];
  if (c->n_floats != 0 || c->n_ints < 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "EinsumDiagonalBwd needs ints [r, map_0, ..., map_{r-1}] and no floats");
  int64_t r = c->ints[0];
  if (r < 0 || r > OC_MAX_RANK || c->n_ints != 1 + r)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "EinsumDiagonalBwd: rank %lld must be in [0, %d] with %lld map entries "
                          "after it; got %d ints",
                          (long long)r, OC_MAX_RANK, (long long)r, c->n_ints);
  if (dy->rank > r)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "EinsumDiagonalBwd: dy has rank %d, more than the input rank %lld",
                          dy->rank, (long long)r);
  int used[OC_MAX_RANK] = {0};
  dx->dtype = dy->dtype;
  dx->rank = (int)r;
  for (int k = 0; k < (int)r; k++) {
    int64_t j = c->ints[1 + k];
    if (j < 0 || j >= dy->rank)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "EinsumDiagonalBwd: map entry %d is %lld; must be in [0, %d)", k,
                            (long long)j, dy->rank);
    used[j] = 1;
    dx->dims[k] = dy->dims[j];
  }
  for (int j = 0; j < dy->rank; j++)
    if (!used[j])
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "EinsumDiagonalBwd: axis %d of dy is not mapped", j);
  return oc_check_type(dx, "EinsumDiagonalBwd dx");
}

static oc_status_t diag_bwd_infer(const oc_op_call_t *c, size_t *ws) {
  oc_tensor_t dx;
  OC_RETURN_IF_ERROR(diag_bwd_parse(c, &dx));
  oc_tensor_set_type(c->out[0], dx.dtype, dx.rank, dx.dims);
  *ws = 0;
  return OC_OK;
}

/* dy is (e_0, ..., e_{m-1}); dx is (d_0, ..., d_{r-1}), d_k = e_{map_k}.
 * Output axis j of the forward steps through x by the sum of the strides of
 * the x axes it indexes; scatter dy along those strides into zeroed dx. */
static oc_status_t diag_bwd_run(const oc_op_call_t *c) {
  const oc_tensor_t *dy = c->in[0];
  oc_tensor_t *dx = c->out[0];
  size_t es = oc_dtype_size(dx->dtype);
  int64_t nx = oc_tensor_numel(dx), ny = oc_tensor_numel(dy);
  if (nx > 0) memset(dx->data, 0, (size_t)nx * es);
  if (ny == 0) return OC_OK;
  int64_t xstride[OC_MAX_RANK], strides[OC_MAX_RANK] = {0}, s = 1;
  for (int k = dx->rank - 1; k >= 0; k--) {
    xstride[k] = s;
    s *= dx->dims[k];
  }
  for (int k = 0; k < dx->rank; k++) strides[c->ints[1 + k]] += xstride[k];
  /* Odometer over dy's outer axes; the innermost axis is a strided row. */
  int m = dy->rank;
  int64_t inner = m > 0 ? dy->dims[m - 1] : 1, inner_stride = m > 0 ? strides[m - 1] : 0;
  int64_t idx[OC_MAX_RANK] = {0}, off = 0;
  const char *src = dy->data;
  char *dst = dx->data;
  for (int64_t row = 0; row < ny / inner; row++) {
    for (int64_t i = 0; i < inner; i++)
      memcpy(dst + (off + i * inner_stride) * (int64_t)es, src + (row * inner + i) * (int64_t)es,
             es);
    for (int a = m - 2; a >= 0; a--) {
      off += strides[a];
      if (++idx[a] < dy->dims[a]) break;
      off -= strides[a] * dy->dims[a];
      idx[a] = 0;
    }
  }
  return OC_OK;
}

const oc_op_def_t oc_op_einsum_diagonal_bwd = {.name = "EinsumDiagonalBwd",
                                               .min_inputs = 1, .max_inputs = 1,
                                               .min_outputs = 1, .max_outputs = 1,
                                               .infer = diag_bwd_infer, .run = diag_bwd_run};
