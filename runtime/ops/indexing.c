/*
 * Indexing and mask ops: OneHot, Trilu, Tile, GatherElements, GatherND,
 * ScatterElements, ScatterND. They move elements (any dtype the runtime
 * stores; elements are copied as bytes) under the control of int64/int32
 * index tensors or ints; the scatter reductions compute on float32, int64 and
 * int32.
 *
 * Index rule (all ops): an index into an axis of size s is valid in
 * [-s, s-1]; a negative one counts from the end. An invalid index is an
 * OC_STATUS_NUMERIC error at run time naming the value, its position and the
 * range; every index is checked before the first element is written.
 *
 * OneHot: y[..., d, ...] = (index == d) ? on : off
 *   inputs:  indices (int64, int32 or float32 -- truncated toward zero; rank r
 *            <= 7), values (any dtype, exactly 2 elements: [off, on])
 *   outputs: y, dtype of values, dims of indices with depth inserted at axis
 *   ints:    [axis, depth, negative]: axis in [-(r+1), r]; depth in
 *            [0, 2^40]; negative 1: indices in [-depth, -1] count from the
 *            end (ONNX 11), 0: they are out of range (ONNX 9). An index out
 *            of range gives an all-off row (ONNX's rule; not an error).
 * Trilu: keeps the lower (upper=0: j - i <= k) or upper (upper=1: j - i >= k)
 *        triangle of the last two dims, zeros elsewhere.
 *   inputs:  x (any dtype, rank >= 2); outputs: y (type of x)
 *   ints:    [upper, k]: upper 0 or 1, k any int64
 * Tile: y = x repeated repeats[i] times along each axis i.
 *   inputs:  x (any dtype, any rank); outputs: y, dims[i] * repeats[i]
 *   ints:    [repeats...]: one per axis of x, each in [0, 2^40]
 * GatherElements: y[p] = data[p with p[axis] replaced by indices[p]]
 *   inputs:  data (any dtype, rank r >= 1), indices (int64 or int32, rank r;
 *            dims <= data's dims except along axis)
 *   outputs: y, dtype of data, dims of indices
 *   ints:    [axis], in [-r, r)
 * GatherND: y[b..., t...] = data[b..., indices[b..., t..., :], ...]
 *   inputs:  data (any dtype, rank r >= 1), indices (int64 or int32, rank
 *            q >= 1; m = indices.dims[q-1] in [1, r - batch_dims]; the first
 *            batch_dims dims equal data's)
 *   outputs: y, dtype of data, dims indices.dims[:q-1] ++ data.dims[b+m:]
 *   ints:    [batch_dims], in [0, min(q, r))
 * ScatterElements: y = data; then y[p with p[axis] = indices[p]] (op)=
 *                  updates[p] for every p of indices, in row-major order
 *   inputs:  data (rank r >= 1), indices (int64 or int32, rank r, dims <=
 *            data's except along axis), updates (dtype of data, dims of
 *            indices)
 *   outputs: y, type of data
 *   ints:    [axis, reduction]: axis in [-r, r); reduction 0 none (any
 *            dtype; a repeated index: the last update wins), 1 add, 2 mul,
 *            3 max, 4 min (float32, int64, int32; integers wrap; max/min
 *            propagate NaN)
 * ScatterND: y = data; then y[indices[t, :], ...] (op)= updates[t, ...]
 *   inputs:  data (rank r >= 1), indices (int64 or int32, rank q >= 1,
 *            k = indices.dims[q-1] in [1, r]), updates (dtype of data, dims
 *            indices.dims[:q-1] ++ data.dims[k:])
 *   outputs: y, type of data
 *   ints:    [reduction], as for ScatterElements
 * floats: none for all. No workspace.
 */
#include <math.h>
#include <string.h>

#include "oc_ops.h"

/* --- shared helpers ------------------------------------------------------ */

static int is_index_dtype(int dt) { return dt == OC_DTYPE_INT64 || dt == OC_DTYPE_INT32; }

static oc_status_t expect_index(const oc_tensor_t *t, const char *op, const char *what) {
  if (!is_index_dtype(t->dtype))
    return oc_make_status(OC_STATUS_UNSUPPORTED, "%s %s have dtype %s; expected int64 or int32",
                          op, what, oc_dtype_name(t->dtype));
  return OC_OK;
}

static inline int64_t load_index(const oc_tensor_t *t, int64_t i) {
  if (t->dtype == OC_DTYPE_INT64) return ((const int64_t *)t->data)[i];
  return ((const int32_t *)t->data)[i];
}

/* Checks every index of |idx| against an axis of size s. */
static oc_status_t check_indices(const char *op, const oc_tensor_t *idx, int64_t n, int64_t s,
                                 int axis) {
  for (int64_t j = 0; j < n; j++) {
    int64_t k = load_index(idx, j);
    if (k < -s || k >= s)
      return oc_make_status(OC_STATUS_NUMERIC,
                            "%s index %lld (element %lld of indices) is out of range: axis %d has "
                            "size %lld, so indices must be in [%lld, %lld]",
                            op, (long long)k, (long long)j, axis, (long long)s, (long long)-s,
                            (long long)(s - 1));
  }
  return OC_OK;
}

/* Copies one element of |es| bytes; the common sizes are plain loads. */
static inline void copy_elem(void *dst, const void *src, size_t es) {
  switch (es) {
    case 1: *(uint8_t *)dst = *(const uint8_t *)src; break;
    case 4: memcpy(dst, src, 4); break;
    case 8: memcpy(dst, src, 8); break;
    default: memcpy(dst, src, es); break;
  }
}

/* Row-major element strides of dims. */
static void strides_of(int rank, const int64_t *dims, int64_t *strides) {
  int64_t s = 1;
  for (int i = rank - 1; i >= 0; i--) {
    strides[i] = s;
    s *= dims[i];
  }
}

/* --- OneHot -------------------------------------------------------------- */

static oc_status_t onehot_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *idx = c->in[0], *vals = c->in[1];
  if (c->n_ints != 3 || c->n_floats != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "OneHot needs ints [axis, depth, negative]");
  if (idx->dtype != OC_DTYPE_INT64 && idx->dtype != OC_DTYPE_INT32 &&
      idx->dtype != OC_DTYPE_FLOAT32)
    return oc_make_status(OC_STATUS_UNSUPPORTED,
                          "OneHot indices have dtype %s; expected int64, int32 or float32",
                          oc_dtype_name(idx->dtype));
  if (oc_tensor_numel(vals) != 2)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "OneHot values must hold 2 elements [off, on], not %lld",
                          (long long)oc_tensor_numel(vals));
  int r = idx->rank;
  if (r + 1 > OC_MAX_RANK)
    return oc_make_status(OC_STATUS_RESOURCE_LIMIT, "OneHot output has rank %d; the limit is %d",
                          r + 1, OC_MAX_RANK);
  int64_t axis = c->ints[0], depth = c->ints[1], neg = c->ints[2];
  if (axis < -(int64_t)(r + 1) || axis > r)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "OneHot axis %lld is out of range [%d, %d]",
                          (long long)axis, -(r + 1), r);
  if (depth < 0 || depth > OC_MAX_DIM)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "OneHot depth %lld is out of range",
                          (long long)depth);
  if (neg != 0 && neg != 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "OneHot negative flag is %lld; must be 0 or 1",
                          (long long)neg);
  int a = (int)(axis < 0 ? axis + r + 1 : axis);
  int64_t dims[OC_MAX_RANK];
  for (int i = 0, k = 0; i <= r; i++) dims[i] = i == a ? depth : idx->dims[k++];
  oc_tensor_set_type(c->out[0], vals->dtype, r + 1, dims);
  *ws = 0;
  return OC_OK;
}

/* The class of indices element i, or -1 when it selects none. */
static int64_t onehot_class(const oc_tensor_t *idx, int64_t i, int64_t depth, int neg) {
  int64_t k;
  if (idx->dtype == OC_DTYPE_FLOAT32) {
    float v = ((const float *)idx->data)[i];
    /* NaN and huge values select nothing; the rest truncate like a cast. */
    if (!(v > -4.0e18f && v < 4.0e18f)) return -1;
    k = (int64_t)v;
  } else {
    k = load_index(idx, i);
  }
  if (k < 0 && neg && k >= -depth) k += depth;
  return k >= 0 && k < depth ? k : -1;
}

/* y is (outer, depth, inner) elements of es bytes, idx is (outer, inner). */
static oc_status_t onehot_run(const oc_op_call_t *c) {
  const oc_tensor_t *idx = c->in[0];
  oc_tensor_t *y = c->out[0];
  int r = idx->rank;
  int a = (int)(c->ints[0] < 0 ? c->ints[0] + r + 1 : c->ints[0]);
  int64_t depth = c->ints[1];
  int neg = (int)c->ints[2];
  size_t es = oc_dtype_size(y->dtype);
  const uint8_t *off = c->in[1]->data, *on = off + es;
  int64_t n = oc_tensor_numel(y);
  if (n == 0) return OC_OK;
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < a; i++) outer *= idx->dims[i];
  for (int i = a; i < r; i++) inner *= idx->dims[i];
  uint8_t *py = y->data;
  for (int64_t i = 0; i < n; i++) copy_elem(py + (size_t)i * es, off, es);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      int64_t k = onehot_class(idx, o * inner + i, depth, neg);
      if (k >= 0) copy_elem(py + (size_t)((o * depth + k) * inner + i) * es, on, es);
    }
  return OC_OK;
}

const oc_op_def_t oc_op_onehot = {"OneHot", 2, 2, 1, 1, onehot_infer, onehot_run};

/* --- Trilu --------------------------------------------------------------- */

static oc_status_t trilu_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *x = c->in[0];
  char b[160];
  if (c->n_ints != 2 || c->n_floats != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "Trilu needs ints [upper, k]");
  if (c->ints[0] != 0 && c->ints[0] != 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "Trilu upper is %lld; must be 0 or 1",
                          (long long)c->ints[0]);
  if (x->rank < 2)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "Trilu input must have rank >= 2, got %s",
                          oc_type_str(x, b, sizeof b));
  oc_tensor_set_type(c->out[0], x->dtype, x->rank, x->dims);
  *ws = 0;
  return OC_OK;
}

/* x, y are (batch, n, m) elements of es bytes. Row i keeps columns
 * [lo, hi) and zeroes the rest (all-zero bytes are 0, 0.0 and false). */
static void trilu_forward(uint8_t *y, const uint8_t *x, int64_t batch, int64_t n, int64_t m,
                          int upper, int64_t k, size_t es) {
  /* |i|, |j| < 2^40: clamping k keeps i + k from overflowing and changes
   * no comparison. */
  if (k > ((int64_t)1 << 41)) k = (int64_t)1 << 41;
  if (k < -((int64_t)1 << 41)) k = -((int64_t)1 << 41);
  size_t row = (size_t)m * es;
  for (int64_t b = 0; b < batch; b++)
    for (int64_t i = 0; i < n; i++) {
      int64_t lo = upper ? i + k : 0, hi = upper ? m : i + k + 1;
      lo = lo < 0 ? 0 : lo > m ? m : lo;
      hi = hi < 0 ? 0 : hi > m ? m : hi;
      if (lo > hi) lo = hi;
      size_t off = (size_t)(b * n + i) * row;
      uint8_t *yr = y + off;
      const uint8_t *xr = x + off;
      memset(yr, 0, (size_t)lo * es);
      memmove(yr + (size_t)lo * es, xr + (size_t)lo * es, (size_t)(hi - lo) * es);
      memset(yr + (size_t)hi * es, 0, (size_t)(m - hi) * es);
    }
}

static oc_status_t trilu_run(const oc_op_call_t *c) {
  const oc_tensor_t *x = c->in[0];
  if (oc_tensor_numel(x) == 0) return OC_OK;
  int r = x->rank;
  int64_t batch = 1;
  for (int i = 0; i < r - 2; i++) batch *= x->dims[i];
  trilu_forward(c->out[0]->data, x->data, batch, x->dims[r - 2], x->dims[r - 1],
                (int)c->ints[0], c->ints[1], oc_dtype_size(x->dtype));
  return OC_OK;
}

const oc_op_def_t oc_op_trilu = {"Trilu", 1, 1, 1, 1, trilu_infer, trilu_run};

/* --- Tile ---------------------------------------------------------------- */

static oc_status_t tile_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *x = c->in[0];
  if (c->n_ints != x->rank || c->n_floats != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "Tile needs one repeat per axis: %d ints for rank %d, got %d", x->rank,
                          x->rank, c->n_ints);
  int64_t dims[OC_MAX_RANK];
  for (int i = 0; i < x->rank; i++) {
    int64_t rep = c->ints[i];
    uint64_t d;
    if (rep < 0 || rep > OC_MAX_DIM)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "Tile repeat %lld for axis %d is out of "
                            "range [0, 2^40]", (long long)rep, i);
    if (oc_mul_overflows((uint64_t)x->dims[i], (uint64_t)rep, &d) || d > (uint64_t)OC_MAX_DIM)
      return oc_make_status(OC_STATUS_RESOURCE_LIMIT,
                            "Tile output axis %d would have %lld x %lld elements; the limit is "
                            "2^40", i, (long long)x->dims[i], (long long)rep);
    dims[i] = (int64_t)d;
  }
  oc_tensor_set_type(c->out[0], x->dtype, x->rank, dims);
  *ws = 0;
  return OC_OK;
}

/* Writes the tiling of x's block at |axis| into y: the x block (dims
 * xd[axis:]) becomes the y block (dims yd[axis:]). Sub-blocks are built
 * first, then the first copy along |axis| is duplicated rep - 1 times. */
static void tile_block(uint8_t *y, const uint8_t *x, int axis, int rank, const int64_t *xd,
                       const int64_t *rep, const size_t *xbytes, const size_t *ybytes) {
  size_t once = (size_t)xd[axis] * ybytes[axis]; /* one copy of the axis, in y */
  if (axis == rank - 1) {
    memcpy(y, x, once);
  } else {
    for (int64_t i = 0; i < xd[axis]; i++)
      tile_block(y + (size_t)i * ybytes[axis], x + (size_t)i * xbytes[axis], axis + 1, rank, xd,
                 rep, xbytes, ybytes);
  }
  for (int64_t t = 1; t < rep[axis]; t++) memcpy(y + (size_t)t * once, y, once);
}

static oc_status_t tile_run(const oc_op_call_t *c) {
  const oc_tensor_t *x = c->in[0];
  oc_tensor_t *y = c->out[0];
  size_t es = oc_dtype_size(x->dtype);
  if (oc_tensor_numel(y) == 0) return OC_OK;
  if (x->rank == 0) {
    memcpy(y->data, x->data, es);
    return OC_OK;
  }
  /* Bytes of one step along each axis, in x and in y. */
  size_t xbytes[OC_MAX_RANK], ybytes[OC_MAX_RANK];
  size_t sx = es, sy = es;
  for (int i = x->rank - 1; i >= 0; i--) {
    xbytes[i] = sx;
    ybytes[i] = sy;
    sx *= (size_t)x->dims[i];
    sy *= (size_t)y->dims[i];
  }
  tile_block(y->data, x->data, 0, x->rank, x->dims, c->ints, xbytes, ybytes);
  return OC_OK;
}

const oc_op_def_t oc_op_tile = {"Tile", 1, 1, 1, 1, tile_infer, tile_run};

/* --- GatherElements / ScatterElements: shared shape rule ------------------ */

/* indices has data's rank and no dim larger than data's except along axis. */
static oc_status_t elements_shape(const char *op, const oc_tensor_t *data, const oc_tensor_t *idx,
                                  int64_t axis_in, int *out_axis) {
  char b1[160], b2[160];
  OC_RETURN_IF_ERROR(expect_index(idx, op, "indices"));
  if (data->rank < 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s data must have rank >= 1", op);
  if (idx->rank != data->rank)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s indices %s must have the rank of data %s",
                          op, oc_type_str(idx, b1, sizeof b1), oc_type_str(data, b2, sizeof b2));
  if (axis_in < -(int64_t)data->rank || axis_in >= data->rank)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s axis %lld is out of range for rank %d",
                          op, (long long)axis_in, data->rank);
  int axis = (int)(axis_in < 0 ? axis_in + data->rank : axis_in);
  for (int i = 0; i < data->rank; i++)
    if (i != axis && idx->dims[i] > data->dims[i])
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "%s indices %s are larger than data %s along axis %d", op,
                            oc_type_str(idx, b1, sizeof b1), oc_type_str(data, b2, sizeof b2), i);
  *out_axis = axis;
  return OC_OK;
}

/* Visits every element of idx in row-major order: j its offset in idx, d the
 * offset in data of the same position with the axis coordinate left at 0. */
#define ELEMENTS_WALK(idx, data, axis, BODY)                                      \
  do {                                                                            \
    int64_t dst_[OC_MAX_RANK], pos_[OC_MAX_RANK] = {0};                           \
    strides_of((data)->rank, (data)->dims, dst_);                                 \
    int64_t n_ = oc_tensor_numel(idx), d = 0;                                     \
    for (int64_t j = 0; j < n_; j++) {                                            \
      BODY;                                                                       \
      for (int i_ = (idx)->rank - 1; i_ >= 0; i_--) {                             \
        int64_t st_ = i_ == (axis) ? 0 : dst_[i_];                                \
        if (++pos_[i_] < (idx)->dims[i_]) {                                       \
          d += st_;                                                               \
          break;                                                                  \
        }                                                                         \
        d -= st_ * (pos_[i_] - 1);                                                \
        pos_[i_] = 0;                                                             \
      }                                                                           \
    }                                                                             \
  } while (0)

/* --- GatherElements ------------------------------------------------------ */

static oc_status_t gather_elements_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *data = c->in[0], *idx = c->in[1];
  if (c->n_ints != 1 || c->n_floats != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "GatherElements needs ints [axis]");
  int axis;
  OC_RETURN_IF_ERROR(elements_shape("GatherElements", data, idx, c->ints[0], &axis));
  oc_tensor_set_type(c->out[0], data->dtype, idx->rank, idx->dims);
  *ws = 0;
  return OC_OK;
}

/* y has the dims of idx; data is checked against the indices first. */
static oc_status_t gather_elements_run(const oc_op_call_t *c) {
  const oc_tensor_t *data = c->in[0], *idx = c->in[1];
  int axis = (int)(c->ints[0] < 0 ? c->ints[0] + data->rank : c->ints[0]);
  int64_t s = data->dims[axis], n = oc_tensor_numel(idx);
  OC_RETURN_IF_ERROR(check_indices("GatherElements", idx, n, s, axis));
  /* Some valid index exists, so data is not empty either (and products of
   * its dims do not overflow). */
  if (n == 0) return OC_OK;
  size_t es = oc_dtype_size(data->dtype);
  int64_t st[OC_MAX_RANK];
  strides_of(data->rank, data->dims, st);
  int64_t sa = st[axis];
  const uint8_t *px = data->data;
  uint8_t *py = c->out[0]->data;
  ELEMENTS_WALK(idx, data, axis, {
    int64_t k = load_index(idx, j);
    if (k < 0) k += s;
    copy_elem(py + (size_t)j * es, px + (size_t)(d + k * sa) * es, es);
  });
  return OC_OK;
}

const oc_op_def_t oc_op_gather_elements = {"GatherElements", 2, 2, 1, 1, gather_elements_infer,
                                           gather_elements_run};

/* --- GatherND ------------------------------------------------------------ */

static oc_status_t gather_nd_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *data = c->in[0], *idx = c->in[1];
  char b1[160], b2[160];
  if (c->n_ints != 1 || c->n_floats != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "GatherND needs ints [batch_dims]");
  OC_RETURN_IF_ERROR(expect_index(idx, "GatherND", "indices"));
  int r = data->rank, q = idx->rank;
  if (r < 1 || q < 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "GatherND data and indices must have rank >= 1");
  int64_t b = c->ints[0];
  if (b < 0 || b >= (r < q ? r : q))
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "GatherND batch_dims %lld must be in [0, %d) for data rank %d and "
                          "indices rank %d",
                          (long long)b, r < q ? r : q, r, q);
  int64_t m = idx->dims[q - 1];
  if (m < 1 || m > r - b)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "GatherND indices %s: the last dim must be in [1, %lld] for data %s and "
                          "batch_dims %lld",
                          oc_type_str(idx, b1, sizeof b1), (long long)(r - b),
                          oc_type_str(data, b2, sizeof b2), (long long)b);
  for (int i = 0; i < b; i++)
    if (idx->dims[i] != data->dims[i])
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "GatherND batch dim %d differs: indices %s, data %s", i,
                            oc_type_str(idx, b1, sizeof b1), oc_type_str(data, b2, sizeof b2));
  int rank = q - 1 + r - (int)b - (int)m;
  if (rank > OC_MAX_RANK)
    return oc_make_status(OC_STATUS_RESOURCE_LIMIT, "GatherND output has rank %d; the limit is %d",
                          rank, OC_MAX_RANK);
  int64_t dims[OC_MAX_RANK];
  int k = 0;
  for (int i = 0; i < q - 1; i++) dims[k++] = idx->dims[i];
  for (int i = (int)(b + m); i < r; i++) dims[k++] = data->dims[i];
  oc_tensor_set_type(c->out[0], data->dtype, rank, dims);
  *ws = 0;
  return OC_OK;
}

/* Checks the tuples of idx (ntup rows of m) against data's dims[b:b+m]. */
static oc_status_t nd_check(const char *op, const oc_tensor_t *idx, int64_t ntup, int64_t m,
                            const int64_t *dims) {
  for (int64_t t = 0; t < ntup; t++)
    for (int64_t j = 0; j < m; j++) {
      int64_t k = load_index(idx, t * m + j), s = dims[j];
      if (k < -s || k >= s)
        return oc_make_status(OC_STATUS_NUMERIC,
                              "%s index %lld (element %lld of indices) is out of range: its "
                              "axis has size %lld, so it must be in [%lld, %lld]",
                              op, (long long)k, (long long)(t * m + j), (long long)s,
                              (long long)-s, (long long)(s - 1));
    }
  return OC_OK;
}

/* Offset (in elements) of tuple t of idx into a block of dims[0..m) whose
 * slices are |slice| elements. */
static int64_t nd_offset(const oc_tensor_t *idx, int64_t t, int64_t m, const int64_t *dims,
                         int64_t slice) {
  int64_t off = 0;
  for (int64_t j = 0; j < m; j++) {
    int64_t k = load_index(idx, t * m + j);
    if (k < 0) k += dims[j];
    off = off * dims[j] + k;
  }
  return off * slice;
}

/* data is (batch, block), block (dims[b:b+m], slice); idx is (batch, per, m);
 * y is (batch, per, slice). */
static oc_status_t gather_nd_run(const oc_op_call_t *c) {
  const oc_tensor_t *data = c->in[0], *idx = c->in[1];
  int r = data->rank, q = idx->rank, b = (int)c->ints[0];
  int64_t m = idx->dims[q - 1];
  const int64_t *bdims = data->dims + b;
  int64_t ntup = oc_tensor_numel(idx) / m;
  OC_RETURN_IF_ERROR(nd_check("GatherND", idx, ntup, m, bdims));
  if (oc_tensor_numel(c->out[0]) == 0 || ntup == 0) return OC_OK;
  int64_t batch = 1, slice = 1, block = 1;
  for (int i = 0; i < b; i++) batch *= data->dims[i];
  for (int i = b; i < r; i++) block *= data->dims[i];
  for (int i = b + (int)m; i < r; i++) slice *= data->dims[i];
  int64_t per = ntup / batch;
  size_t es = oc_dtype_size(data->dtype), sb = (size_t)slice * es;
  const uint8_t *px = data->data;
  uint8_t *py = c->out[0]->data;
  for (int64_t bi = 0; bi < batch; bi++)
    for (int64_t t = 0; t < per; t++) {
      int64_t tup = bi * per + t;
      int64_t off = bi * block + nd_offset(idx, tup, m, bdims, slice);
      memcpy(py + (size_t)tup * sb, px + (size_t)off * es, sb);
    }
  return OC_OK;
}

const oc_op_def_t oc_op_gather_nd = {"GatherND", 2, 2, 1, 1, gather_nd_infer, gather_nd_run};

/* --- scatter reductions -------------------------------------------------- */

enum { RED_NONE = 0, RED_ADD = 1, RED_MUL = 2, RED_MAX = 3, RED_MIN = 4 };

static oc_status_t check_reduction(const char *op, int64_t red, int dtype) {
  if (red < RED_NONE || red > RED_MIN)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s reduction %lld is not 0..4", op,
                          (long long)red);
  if (red != RED_NONE && dtype != OC_DTYPE_FLOAT32 && dtype != OC_DTYPE_INT64 &&
      dtype != OC_DTYPE_INT32)
    return oc_make_status(OC_STATUS_UNSUPPORTED,
                          "%s with a reduction computes float32, int64 or int32, not %s", op,
                          oc_dtype_name(dtype));
  return OC_OK;
}

#define RED_LOOP(T, UT)                                                                  \
  do {                                                                                   \
    T *d_ = dst;                                                                         \
    const T *s_ = src;                                                                   \
    switch (red) {                                                                       \
      case RED_ADD: for (int64_t i = 0; i < n; i++) d_[i] = (T)((UT)d_[i] + (UT)s_[i]); break; \
      case RED_MUL: for (int64_t i = 0; i < n; i++) d_[i] = (T)((UT)d_[i] * (UT)s_[i]); break; \
      case RED_MAX: for (int64_t i = 0; i < n; i++) if (s_[i] > d_[i]) d_[i] = s_[i]; break; \
      case RED_MIN: for (int64_t i = 0; i < n; i++) if (s_[i] < d_[i]) d_[i] = s_[i]; break; \
    }                                                                                    \
  } while (0)

/* dst (n) (op)= src (n), elements of |dtype|. */
static void reduce_into(void *dst, const void *src, int64_t n, int red, int dtype, size_t es) {
  if (red == RED_NONE) {
    memcpy(dst, src, (size_t)n * es);
    return;
  }
  switch (dtype) {
    case OC_DTYPE_FLOAT32: {
      float *d = dst;
      const float *s = src;
      for (int64_t i = 0; i < n; i++) {
        float a = d[i], v = s[i];
        switch (red) {
          case RED_ADD: d[i] = a + v; break;
          case RED_MUL: d[i] = a * v; break;
          /* NaN on either side gives NaN (np.maximum / np.minimum). */
          case RED_MAX: d[i] = (v > a || v != v) ? v : a; break;
          case RED_MIN: d[i] = (v < a || v != v) ? v : a; break;
        }
      }
      break;
    }
    case OC_DTYPE_INT64: RED_LOOP(int64_t, uint64_t); break;
    case OC_DTYPE_INT32: RED_LOOP(int32_t, uint32_t); break;
  }
}

/* y = data, unless the planner made them share one buffer. */
static void copy_data(oc_tensor_t *y, const oc_tensor_t *data) {
  size_t bytes = oc_tensor_bytes(data);
  if (bytes && y->data != data->data) memcpy(y->data, data->data, bytes);
}

/* --- ScatterElements ----------------------------------------------------- */

static oc_status_t scatter_elements_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *data = c->in[0], *idx = c->in[1], *upd = c->in[2];
  char b1[160], b2[160];
  if (c->n_ints != 2 || c->n_floats != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "ScatterElements needs ints [axis, reduction]");
  int axis;
  OC_RETURN_IF_ERROR(elements_shape("ScatterElements", data, idx, c->ints[0], &axis));
  OC_RETURN_IF_ERROR(check_reduction("ScatterElements", c->ints[1], data->dtype));
  int same = upd->dtype == data->dtype && upd->rank == idx->rank;
  for (int i = 0; same && i < idx->rank; i++) same = upd->dims[i] == idx->dims[i];
  if (!same)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "ScatterElements updates %s must have the dtype of data and the dims of "
                          "indices %s",
                          oc_type_str(upd, b1, sizeof b1), oc_type_str(idx, b2, sizeof b2));
  oc_tensor_set_type(c->out[0], data->dtype, data->rank, data->dims);
  *ws = 0;
  return OC_OK;
}

static oc_status_t scatter_elements_run(const oc_op_call_t *c) {
  const oc_tensor_t *data = c->in[0], *idx = c->in[1], *upd = c->in[2];
  oc_tensor_t *y = c->out[0];
  int axis = (int)(c->ints[0] < 0 ? c->ints[0] + data->rank : c->ints[0]);
  int red = (int)c->ints[1];
  int64_t s = data->dims[axis], n = oc_tensor_numel(idx);
  OC_RETURN_IF_ERROR(check_indices("ScatterElements", idx, n, s, axis));
  copy_data(y, data);
  if (n == 0) return OC_OK; /* as in GatherElements: then data is not empty */
  size_t es = oc_dtype_size(data->dtype);
  int64_t st[OC_MAX_RANK];
  strides_of(data->rank, data->dims, st);
  int64_t sa = st[axis];
  const uint8_t *pu = upd->data;
  uint8_t *py = y->data;
  ELEMENTS_WALK(idx, data, axis, {
    int64_t k = load_index(idx, j);
    if (k < 0) k += s;
    uint8_t *dst = py + (size_t)(d + k * sa) * es;
    if (red == RED_NONE)
      copy_elem(dst, pu + (size_t)j * es, es);
    else
      reduce_into(dst, pu + (size_t)j * es, 1, red, data->dtype, es);
  });
  return OC_OK;
}

const oc_op_def_t oc_op_scatter_elements = {"ScatterElements", 3, 3, 1, 1, scatter_elements_infer,
                                            scatter_elements_run};

/* --- ScatterND ----------------------------------------------------------- */

static oc_status_t scatter_nd_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *data = c->in[0], *idx = c->in[1], *upd = c->in[2];
  char b1[160], b2[160], b3[160];
  if (c->n_ints != 1 || c->n_floats != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "ScatterND needs ints [reduction]");
  OC_RETURN_IF_ERROR(expect_index(idx, "ScatterND", "indices"));
  OC_RETURN_IF_ERROR(check_reduction("ScatterND", c->ints[0], data->dtype));
  int r = data->rank, q = idx->rank;
  if (r < 1 || q < 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "ScatterND data and indices must have rank >= 1");
  int64_t k = idx->dims[q - 1];
  if (k < 1 || k > r)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "ScatterND indices %s: the last dim must be in [1, %d] for data %s",
                          oc_type_str(idx, b1, sizeof b1), r, oc_type_str(data, b2, sizeof b2));
  int urank = q - 1 + r - (int)k;
  int same = upd->dtype == data->dtype && upd->rank == urank;
  for (int i = 0; same && i < q - 1; i++) same = upd->dims[i] == idx->dims[i];
  for (int i = 0; same && i < r - k; i++) same = upd->dims[q - 1 + i] == data->dims[k + i];
  if (!same)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "ScatterND updates %s must be %s with dims indices.dims[:-1] ++ "
                          "data.dims[%lld:] (indices %s, data %s)",
                          oc_type_str(upd, b1, sizeof b1), oc_dtype_name(data->dtype),
                          (long long)k, oc_type_str(idx, b2, sizeof b2),
                          oc_type_str(data, b3, sizeof b3));
  oc_tensor_set_type(c->out[0], data->dtype, data->rank, data->dims);
  *ws = 0;
  return OC_OK;
}

/* y is (block of dims[:k], slice); idx is (ntup, k); upd is (ntup, slice). */
static oc_status_t scatter_nd_run(const oc_op_call_t *c) {
  const oc_tensor_t *data = c->in[0], *idx = c->in[1], *upd = c->in[2];
  oc_tensor_t *y = c->out[0];
  int r = data->rank, q = idx->rank, red = (int)c->ints[0];
  int64_t k = idx->dims[q - 1];
  int64_t ntup = oc_tensor_numel(idx) / k;
  OC_RETURN_IF_ERROR(nd_check("ScatterND", idx, ntup, k, data->dims));
  copy_data(y, data);
  /* Products of some dims of an empty tensor may overflow. */
  if (ntup == 0 || oc_tensor_numel(data) == 0) return OC_OK;
  int64_t slice = 1;
  for (int i = (int)k; i < r; i++) slice *= data->dims[i];
  size_t es = oc_dtype_size(data->dtype);
  const uint8_t *pu = upd->data;
  uint8_t *py = y->data;
  for (int64_t t = 0; t < ntup; t++) {
    int64_t off = nd_offset(idx, t, k, data->dims, slice);
    reduce_into(py + (size_t)off * es, pu + (size_t)(t * slice) * es, slice, red, data->dtype, es);
  }
  return OC_OK;
}

const oc_op_def_t oc_op_scatter_nd = {"ScatterND", 3, 3, 1, 1, scatter_nd_infer, scatter_nd_run};

/* --- backward kernels -----------------------------------------------------
 *
 * The gradients of Tile, GatherElements and GatherND with respect to their
 * data (compiler/ops/indexing.c emits them; TopK's gradient also uses
 * GatherElementsBwd). Each writes its whole output; sums are float32, in the
 * row-major order of dy.
 *
 * TileBwd: dx = the sum of dy over the tiles.
 *   inputs:  dy float32 (the forward's y: dims x.dims[i] * repeats[i])
 *   outputs: dx float32 with x's dims
 *   ints:    [x dims...]: one per axis of dy, each in [0, 2^40]; dy.dims[i]
 *            is a multiple of it (0 when it is 0)
 * GatherElementsBwd: ddata = zeros, then ddata[p with p[axis] = indices[p]]
 *                    += dy[p] for every p of indices (repeated indices
 *                    accumulate).
 *   inputs:  indices (int64 or int32, the forward's), dy float32 (dims of
 *            indices)
 *   outputs: ddata float32 with data's dims
 *   ints:    [axis, data dims...]: data rank = n_ints - 1 >= 1; axis in
 *            [-rank, rank); indices as for GatherElements against data
 * GatherNDBwd: ddata = zeros, then ddata[b..., indices[b..., t..., :], ...]
 *              += dy[b..., t..., ...] (repeated tuples accumulate).
 *   inputs:  indices (int64 or int32, the forward's), dy float32 (the dims
 *            of GatherND's output for data and indices)
 *   outputs: ddata float32 with data's dims
 *   ints:    [batch_dims, data dims...]: data rank = n_ints - 1 >= 1;
 *            batch_dims and indices as for GatherND against data
 * Indices follow the forward rule (negative ones count from the end; one out
 * of range is an OC_STATUS_NUMERIC error before anything is written).
 * floats: none. No workspace.
 */

/* Reads ints[1:] as the dims of a float32 tensor (the forward's data). */
static oc_status_t bwd_data_type(const char *op, const oc_op_call_t *c, oc_tensor_t *x) {
  if (c->n_floats != 0 || c->n_ints < 2 || c->n_ints - 1 > OC_MAX_RANK)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "%s needs ints [attribute, data dims...] with 1 to %d dims", op,
                          OC_MAX_RANK);
  *x = (oc_tensor_t){.dtype = OC_DTYPE_FLOAT32, .rank = c->n_ints - 1};
  for (int i = 0; i < x->rank; i++) {
    if (c->ints[1 + i] < 0 || c->ints[1 + i] > OC_MAX_DIM)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s data dim %d is %lld", op, i,
                            (long long)c->ints[1 + i]);
    x->dims[i] = c->ints[1 + i];
  }
  return oc_check_type(x, op);
}

/* Requires dy to be float32 with the dims of |want|. */
static oc_status_t bwd_expect_dy(const char *op, const oc_tensor_t *dy, const oc_tensor_t *want) {
  char b1[160], b2[160];
  OC_RETURN_IF_ERROR(oc_expect_dtype(dy, OC_DTYPE_FLOAT32, "dy"));
  int same = dy->rank == want->rank;
  for (int i = 0; same && i < dy->rank; i++) same = dy->dims[i] == want->dims[i];
  if (!same)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s dy is %s; the forward output has dims %s",
                          op, oc_type_str(dy, b1, sizeof b1), oc_type_str(want, b2, sizeof b2));
  return OC_OK;
}

/* --- TileBwd --- */

static oc_status_t tile_bwd_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *dy = c->in[0];
  char b[160];
  OC_RETURN_IF_ERROR(oc_expect_dtype(dy, OC_DTYPE_FLOAT32, "TileBwd dy"));
  if (c->n_ints != dy->rank || c->n_floats != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "TileBwd needs the input dims: %d ints for dy of rank %d, got %d",
                          dy->rank, dy->rank, c->n_ints);
  oc_tensor_t x = {.dtype = OC_DTYPE_FLOAT32, .rank = dy->rank};
  for (int i = 0; i < dy->rank; i++) {
    int64_t d = c->ints[i];
    if (d < 0 || d > OC_MAX_DIM)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "TileBwd input dim %d is %lld", i,
                            (long long)d);
    if (d == 0 ? dy->dims[i] != 0 : dy->dims[i] % d != 0)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "TileBwd dy %s: dim %d is not a whole number of tiles of %lld",
                            oc_type_str(dy, b, sizeof b), i, (long long)d);
    x.dims[i] = d;
  }
  OC_RETURN_IF_ERROR(oc_check_type(&x, "TileBwd dx"));
  oc_tensor_set_type(c->out[0], OC_DTYPE_FLOAT32, x.rank, x.dims);
  *ws = 0;
  return OC_OK;
}

/* dy is (Y_0, ..., Y_{r-1}) with Y_i = rep_i * X_i; dx is (X_0, ..., X_{r-1}).
 * dy is walked row by row (rows of the last axis); xbase is the offset in dx
 * of the row's coordinates taken modulo X. */
static oc_status_t tile_bwd_run(const oc_op_call_t *c) {
  const oc_tensor_t *dy = c->in[0];
  oc_tensor_t *dx = c->out[0];
  int64_t nx = oc_tensor_numel(dx);
  if (nx == 0) return OC_OK;
  float *px = dx->data;
  memset(px, 0, sizeof(float) * (size_t)nx);
  if (oc_tensor_numel(dy) == 0) return OC_OK;
  const float *py = dy->data;
  int r = dy->rank;
  if (r == 0) {
    px[0] = py[0];
    return OC_OK;
  }
  /* dy is non-empty: every dim of dy and of dx is positive. */
  const int64_t *xd = dx->dims, *yd = dy->dims;
  int64_t xs[OC_MAX_RANK], pos[OC_MAX_RANK] = {0}, xp[OC_MAX_RANK] = {0};
  strides_of(r, xd, xs);
  int64_t X = xd[r - 1], Y = yd[r - 1], rows = oc_tensor_numel(dy) / Y, xbase = 0;
  for (int64_t row = 0; row < rows; row++) {
    const float *src = py + row * Y;
    float *dst = px + xbase;
    for (int64_t t = 0; t < Y; t += X)
      for (int64_t j = 0; j < X; j++) dst[j] += src[t + j];
    for (int i = r - 2; i >= 0; i--) {
      if (++xp[i] == xd[i]) {
        xp[i] = 0;
        xbase -= (xd[i] - 1) * xs[i];
      } else {
        xbase += xs[i];
      }
      if (++pos[i] < yd[i]) break;
      pos[i] = 0; /* yd[i] is a multiple of xd[i]: xp[i] wrapped to 0 too */
    }
  }
  return OC_OK;
}

const oc_op_def_t oc_op_tile_bwd = {"TileBwd", 1, 1, 1, 1, tile_bwd_infer, tile_bwd_run};

/* --- GatherElementsBwd --- */

static oc_status_t gather_elements_bwd_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *idx = c->in[0], *dy = c->in[1];
  oc_tensor_t x;
  int axis;
  OC_RETURN_IF_ERROR(bwd_data_type("GatherElementsBwd", c, &x));
  OC_RETURN_IF_ERROR(elements_shape("GatherElementsBwd", &x, idx, c->ints[0], &axis));
  OC_RETURN_IF_ERROR(bwd_expect_dy("GatherElementsBwd", dy, idx));
  oc_tensor_set_type(c->out[0], OC_DTYPE_FLOAT32, x.rank, x.dims);
  *ws = 0;
  return OC_OK;
}

/* dy has the dims of idx; dx has data's dims. */
static oc_status_t gather_elements_bwd_run(const oc_op_call_t *c) {
  const oc_tensor_t *idx = c->in[0], *dy = c->in[1];
  oc_tensor_t *dx = c->out[0];
  int axis = (int)(c->ints[0] < 0 ? c->ints[0] + dx->rank : c->ints[0]);
  int64_t s = dx->dims[axis], n = oc_tensor_numel(idx);
  OC_RETURN_IF_ERROR(check_indices("GatherElementsBwd", idx, n, s, axis));
  int64_t nx = oc_tensor_numel(dx);
  if (nx == 0) return OC_OK;
  float *px = dx->data;
  memset(px, 0, sizeof(float) * (size_t)nx);
  if (n == 0) return OC_OK;
  int64_t st[OC_MAX_RANK];
  strides_of(dx->rank, dx->dims, st);
  int64_t sa = st[axis];
  const float *py = dy->data;
  ELEMENTS_WALK(idx, dx, axis, {
    int64_t k = load_index(idx, j);
    if (k < 0) k += s;
    px[d + k * sa] += py[j];
  });
  return OC_OK;
}

const oc_op_def_t oc_op_gather_elements_bwd = {"GatherElementsBwd", 2, 2, 1, 1,
                                               gather_elements_bwd_infer, gather_elements_bwd_run};

/* --- GatherNDBwd --- */

static oc_status_t gather_nd_bwd_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *idx = c->in[0], *dy = c->in[1];
  oc_tensor_t x, y = {0};
  OC_RETURN_IF_ERROR(bwd_data_type("GatherNDBwd", c, &x));
  /* The forward's shape rule on (data, indices) gives dy's dims. */
  oc_tensor_t *fin[2] = {&x, (oc_tensor_t *)idx}, *fout[1] = {&y};
  oc_op_call_t fwd = {.ints = c->ints, .n_ints = 1, .n_in = 2, .in = fin, .n_out = 1, .out = fout};
  size_t fws;
  OC_RETURN_IF_ERROR(gather_nd_infer(&fwd, &fws));
  OC_RETURN_IF_ERROR(bwd_expect_dy("GatherNDBwd", dy, &y));
  oc_tensor_set_type(c->out[0], OC_DTYPE_FLOAT32, x.rank, x.dims);
  *ws = 0;
  return OC_OK;
}

/* dx is (batch, block), block (dims[b:b+m], slice); idx is (batch, per, m);
 * dy is (batch, per, slice). */
static oc_status_t gather_nd_bwd_run(const oc_op_call_t *c) {
  const oc_tensor_t *idx = c->in[0], *dy = c->in[1];
  oc_tensor_t *dx = c->out[0];
  int r = dx->rank, q = idx->rank, b = (int)c->ints[0];
  int64_t m = idx->dims[q - 1];
  const int64_t *bdims = dx->dims + b;
  int64_t ntup = oc_tensor_numel(idx) / m;
  OC_RETURN_IF_ERROR(nd_check("GatherNDBwd", idx, ntup, m, bdims));
  int64_t nx = oc_tensor_numel(dx);
  if (nx == 0) return OC_OK;
  float *px = dx->data;
  memset(px, 0, sizeof(float) * (size_t)nx);
  if (oc_tensor_numel(dy) == 0 || ntup == 0) return OC_OK;
  int64_t batch = 1, slice = 1, block = 1;
  for (int i = 0; i < b; i++) batch *= dx->dims[i];
  for (int i = b; i < r; i++) block *= dx->dims[i];
  for (int i = b + (int)m; i < r; i++) slice *= dx->dims[i];
  int64_t per = ntup / batch;
  const float *py = dy->data;
  for (int64_t bi = 0; bi < batch; bi++)
    for (int64_t t = 0; t < per; t++) {
      int64_t tup = bi * per + t;
      float *dst = px + bi * block + nd_offset(idx, tup, m, bdims, slice);
      const float *src = py + tup * slice;
      for (int64_t e = 0; e < slice; e++) dst[e] += src[e];
    }
  return OC_OK;
}

const oc_op_def_t oc_op_gather_nd_bwd = {"GatherNDBwd", 2, 2, 1, 1, gather_nd_bwd_infer,
                                         gather_nd_bwd_run};
