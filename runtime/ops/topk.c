/*
 * Ops along one axis: selection (ArgMax, ArgMin, TopK, Hardmax) and the
 * running sum (CumSum). Each views its input as (outer, n, inner) with n the
 * size of the axis.
 *
 * NaN: ArgMax and ArgMin return the first NaN of a row (the last with
 * select_last_index), as numpy and PyTorch do; TopK and Hardmax order NaN
 * above every number.
 *
 * ArgMax, ArgMin: the position of the largest / smallest element.
 *   inputs:  x (float32, int64 or int32; rank >= 1; the axis not empty)
 *   outputs: y int64, dims of x with the axis 1 (keepdims=1) or removed
 *   ints:    [axis, keepdims, select_last_index]: axis in [-rank, rank);
 *            keepdims 0/1; select_last_index 0/1 (ties: the last position
 *            instead of the first)
 * TopK: the k largest (largest=1) or smallest (largest=0) elements, sorted
 *       that way, ties in order of position (the lower index first).
 *   inputs:  x (float32, int64 or int32; rank >= 1)
 *   outputs: values (dtype of x), indices (int64); dims of x with the axis k
 *   ints:    [axis, k, largest]: axis in [-rank, rank); k in [0, n];
 *            largest 0/1
 *   workspace: 3n 8-byte slots (a copy of the row and two index arrays for a
 *            stable merge sort)
 * Hardmax: y = 1 at the first maximum of each row along axis, 0 elsewhere.
 *   inputs:  x float32 (rank >= 1); outputs: y float32, dims of x
 *   ints:    [axis], in [-rank, rank)
 * CumSum: y[j] = sum of x[i] for i <= j (i < j: exclusive; reverse: i >= j
 *         or i > j) along axis.
 *   inputs:  x (float32, int64 or int32; rank >= 1)
 *   outputs: y, type of x
 *   ints:    [axis, exclusive, reverse]: axis in [-rank, rank); flags 0/1
 *   workspace: one 8-byte running sum per position of the inner dims (float
 *            sums accumulate in double; integer sums wrap)
 * floats: none for all.
 */
#include <math.h>
#include <string.h>

#include "oc_ops.h"

/* --- shared -------------------------------------------------------------- */

static int is_sortable(int dt) {
  return dt == OC_DTYPE_FLOAT32 || dt == OC_DTYPE_INT64 || dt == OC_DTYPE_INT32;
}

static oc_status_t check_flag(const char *op, const char *name, int64_t v) {
  if (v != 0 && v != 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s %s is %lld; must be 0 or 1", op, name,
                          (long long)v);
  return OC_OK;
}

/* Normalizes ints[0] as an axis of x (rank >= 1). */
static oc_status_t axis_of(const char *op, const oc_tensor_t *x, int64_t axis, int *out) {
  if (x->rank < 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s input must have rank >= 1", op);
  if (axis < -(int64_t)x->rank || axis >= x->rank)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s axis %lld is out of range for rank %d",
                          op, (long long)axis, x->rank);
  *out = (int)(axis < 0 ? axis + x->rank : axis);
  return OC_OK;
}

/* x as (outer, n, inner) around |axis|. */
static void split_dims(const oc_tensor_t *x, int axis, int64_t *outer, int64_t *n,
                       int64_t *inner) {
  *outer = 1;
  *inner = 1;
  for (int i = 0; i < axis; i++) *outer *= x->dims[i];
  for (int i = axis + 1; i < x->rank; i++) *inner *= x->dims[i];
  *n = x->dims[axis];
}

/* --- ArgMax / ArgMin ------------------------------------------------------ */

static oc_status_t arg_infer(const oc_op_call_t *c, const char *op) {
  const oc_tensor_t *x = c->in[0];
  char b[160];
  if (c->n_ints != 3 || c->n_floats != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s needs ints [axis, keepdims, "
                          "select_last_index]", op);
  if (!is_sortable(x->dtype))
    return oc_make_status(OC_STATUS_UNSUPPORTED, "%s of %s is not supported (float32, int64, "
                          "int32)", op, oc_dtype_name(x->dtype));
  int axis;
  OC_RETURN_IF_ERROR(axis_of(op, x, c->ints[0], &axis));
  OC_RETURN_IF_ERROR(check_flag(op, "keepdims", c->ints[1]));
  OC_RETURN_IF_ERROR(check_flag(op, "select_last_index", c->ints[2]));
  if (x->dims[axis] == 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s of %s along the empty axis %d", op,
                          oc_type_str(x, b, sizeof b), axis);
  int64_t dims[OC_MAX_RANK];
  int r = 0;
  for (int i = 0; i < x->rank; i++) {
    if (i != axis)
      dims[r++] = x->dims[i];
    else if (c->ints[1])
      dims[r++] = 1;
  }
  oc_tensor_set_type(c->out[0], OC_DTYPE_INT64, r, dims);
  return OC_OK;
}

/* y is (outer, inner) positions into x (outer, n, inner). Rows are scanned
 * with the inner dim innermost: y holds the best position so far, and the
 * best value is read back through it. BETTER(v, b) says v replaces b. */
#define ARG_SCAN(T, BETTER)                                                       \
  do {                                                                            \
    const T *px = x;                                                              \
    for (int64_t o = 0; o < outer; o++) {                                         \
      const T *xo = px + o * n * inner;                                           \
      int64_t *yo = y + o * inner;                                                \
      for (int64_t i = 0; i < inner; i++) yo[i] = 0;                              \
      for (int64_t j = 1; j < n; j++)                                             \
        for (int64_t i = 0; i < inner; i++) {                                     \
          T v = xo[j * inner + i], b = xo[yo[i] * inner + i];                     \
          if (BETTER(v, b)) yo[i] = j;                                            \
        }                                                                         \
    }                                                                             \
  } while (0)

/* NaN wins over any number; among equals (NaN equals NaN here) the first
 * wins, or the last with select_last_index. */
#define F_GT_FIRST(v, b) ((v) > (b) || ((v) != (v) && (b) == (b)))
#define F_GT_LAST(v, b) ((v) >= (b) || ((v) != (v)))
#define F_LT_FIRST(v, b) ((v) < (b) || ((v) != (v) && (b) == (b)))
#define F_LT_LAST(v, b) ((v) <= (b) || ((v) != (v)))
#define I_GT_FIRST(v, b) ((v) > (b))
#define I_GT_LAST(v, b) ((v) >= (b))
#define I_LT_FIRST(v, b) ((v) < (b))
#define I_LT_LAST(v, b) ((v) <= (b))

static void argmax_forward(int64_t *y, const void *x, int dtype, int64_t outer, int64_t n,
                           int64_t inner, int want_max, int last) {
  switch (dtype) {
    case OC_DTYPE_FLOAT32:
      if (want_max) {
        if (last) ARG_SCAN(float, F_GT_LAST); else ARG_SCAN(float, F_GT_FIRST);
      } else {
        if (last) ARG_SCAN(float, F_LT_LAST); else ARG_SCAN(float, F_LT_FIRST);
      }
      break;
    case OC_DTYPE_INT64:
      if (want_max) {
        if (last) ARG_SCAN(int64_t, I_GT_LAST); else ARG_SCAN(int64_t, I_GT_FIRST);
      } else {
        if (last) ARG_SCAN(int64_t, I_LT_LAST); else ARG_SCAN(int64_t, I_LT_FIRST);
      }
      break;
    case OC_DTYPE_INT32:
      if (want_max) {
        if (last) ARG_SCAN(int32_t, I_GT_LAST); else ARG_SCAN(int32_t, I_GT_FIRST);
      } else {
        if (last) ARG_SCAN(int32_t, I_LT_LAST); else ARG_SCAN(int32_t, I_LT_FIRST);
      }
      break;
  }
}

static oc_status_t arg_run(const oc_op_call_t *c, int want_max) {
  const oc_tensor_t *x = c->in[0];
  int axis = (int)(c->ints[0] < 0 ? c->ints[0] + x->rank : c->ints[0]);
  int64_t outer, n, inner;
  if (oc_tensor_numel(x) == 0) return OC_OK; /* (dims products could overflow) */
  split_dims(x, axis, &outer, &n, &inner);
  argmax_forward(c->out[0]->data, x->data, x->dtype, outer, n, inner, want_max, (int)c->ints[2]);
  return OC_OK;
}

static oc_status_t argmax_infer(const oc_op_call_t *c, size_t *ws) {
  *ws = 0;
  return arg_infer(c, "ArgMax");
}
static oc_status_t argmin_infer(const oc_op_call_t *c, size_t *ws) {
  *ws = 0;
  return arg_infer(c, "ArgMin");
}
static oc_status_t argmax_run(const oc_op_call_t *c) { return arg_run(c, 1); }
static oc_status_t argmin_run(const oc_op_call_t *c) { return arg_run(c, 0); }

const oc_op_def_t oc_op_argmax = {"ArgMax", 1, 1, 1, 1, argmax_infer, argmax_run};
const oc_op_def_t oc_op_argmin = {"ArgMin", 1, 1, 1, 1, argmin_infer, argmin_run};

/* --- TopK ---------------------------------------------------------------- */

static oc_status_t topk_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *x = c->in[0];
  if (c->n_ints != 3 || c->n_floats != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "TopK needs ints [axis, k, largest]");
  if (!is_sortable(x->dtype))
    return oc_make_status(OC_STATUS_UNSUPPORTED, "TopK of %s is not supported (float32, int64, "
                          "int32)", oc_dtype_name(x->dtype));
  int axis;
  OC_RETURN_IF_ERROR(axis_of("TopK", x, c->ints[0], &axis));
  int64_t k = c->ints[1], n = x->dims[axis];
  if (k < 0 || k > n)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "TopK k is %lld; must be in [0, %lld] (the size of axis %d)",
                          (long long)k, (long long)n, axis);
  OC_RETURN_IF_ERROR(check_flag("TopK", "largest", c->ints[2]));
  int64_t dims[OC_MAX_RANK];
  memcpy(dims, x->dims, sizeof(int64_t) * (size_t)x->rank);
  dims[axis] = k;
  oc_tensor_set_type(c->out[0], x->dtype, x->rank, dims);
  if (c->n_out > 1) oc_tensor_set_type(c->out[1], OC_DTYPE_INT64, x->rank, dims);
  /* n <= 2^40, so 24n bytes fit. */
  *ws = (k > 0 && oc_tensor_numel(x) > 0) ? (size_t)n * 3 * sizeof(int64_t) : 0;
  return OC_OK;
}

/* Stable bottom-up merge sort of the positions p (n) by BEFORE(row[a],
 * row[b]) -- "a strictly precedes b"; equal elements keep position order.
 * tmp is (n). Returns the array holding the result (p or tmp). */
#define MERGE_SORT_FN(NAME, T, BEFORE)                                            \
  static int64_t *NAME(int64_t *p, int64_t *tmp, const T *row, int64_t n) {      \
    for (int64_t w = 1; w < n; w *= 2) {                                          \
      for (int64_t lo = 0; lo < n; lo += 2 * w) {                                 \
        int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n; \
        int64_t a = lo, b = mid, o = lo;                                          \
        while (a < mid && b < hi) {                                               \
          if (BEFORE(row[p[b]], row[p[a]])) tmp[o++] = p[b++];                    \
          else tmp[o++] = p[a++];                                                 \
        }                                                                         \
        while (a < mid) tmp[o++] = p[a++];                                        \
        while (b < hi) tmp[o++] = p[b++];                                         \
      }                                                                           \
      int64_t *s = p;                                                             \
      p = tmp;                                                                    \
      tmp = s;                                                                    \
    }                                                                             \
    return p;                                                                     \
  }

/* NaN sorts above every number. */
#define F_ABOVE(a, b) ((a) > (b) || ((a) != (a) && (b) == (b)))
#define F_BELOW(a, b) ((a) < (b) || ((b) != (b) && (a) == (a)))
#define I_ABOVE(a, b) ((a) > (b))
#define I_BELOW(a, b) ((a) < (b))

MERGE_SORT_FN(sort_f_desc, float, F_ABOVE)
MERGE_SORT_FN(sort_f_asc, float, F_BELOW)
MERGE_SORT_FN(sort_i64_desc, int64_t, I_ABOVE)
MERGE_SORT_FN(sort_i64_asc, int64_t, I_BELOW)
MERGE_SORT_FN(sort_i32_desc, int32_t, I_ABOVE)
MERGE_SORT_FN(sort_i32_asc, int32_t, I_BELOW)

/* values, indices are (outer, k, inner); x is (outer, n, inner); ws holds a
 * row (n slots) and two position arrays (n each). */
#define TOPK_FORWARD(T, SORT_DESC, SORT_ASC)                                      \
  do {                                                                            \
    const T *px = x;                                                              \
    T *pv = values, *row = (T *)ws;                                               \
    int64_t *p0 = (int64_t *)ws + n, *p1 = p0 + n;                                \
    for (int64_t o = 0; o < outer; o++)                                           \
      for (int64_t i = 0; i < inner; i++) {                                       \
        for (int64_t j = 0; j < n; j++) {                                         \
          row[j] = px[(o * n + j) * inner + i];                                   \
          p0[j] = j;                                                              \
        }                                                                         \
        int64_t *s = largest ? SORT_DESC(p0, p1, row, n) : SORT_ASC(p0, p1, row, n); \
        for (int64_t j = 0; j < k; j++) {                                         \
          pv[(o * k + j) * inner + i] = row[s[j]];                                \
          if (indices) indices[(o * k + j) * inner + i] = s[j];                   \
        }                                                                         \
      }                                                                           \
  } while (0)

static void topk_forward(void *values, int64_t *indices, void *ws, const void *x, int dtype,
                         int64_t outer, int64_t n, int64_t inner, int64_t k, int largest) {
  switch (dtype) {
    case OC_DTYPE_FLOAT32: TOPK_FORWARD(float, sort_f_desc, sort_f_asc); break;
    case OC_DTYPE_INT64: TOPK_FORWARD(int64_t, sort_i64_desc, sort_i64_asc); break;
    case OC_DTYPE_INT32: TOPK_FORWARD(int32_t, sort_i32_desc, sort_i32_asc); break;
  }
}

static oc_status_t topk_run(const oc_op_call_t *c) {
  const oc_tensor_t *x = c->in[0];
  int axis = (int)(c->ints[0] < 0 ? c->ints[0] + x->rank : c->ints[0]);
  int64_t outer, n, inner, k = c->ints[1];
  if (k == 0 || oc_tensor_numel(x) == 0) return OC_OK;
  split_dims(x, axis, &outer, &n, &inner);
  int64_t *indices = c->n_out > 1 ? c->out[1]->data : NULL;
  topk_forward(c->out[0]->data, indices, c->workspace, x->data, x->dtype, outer, n, inner, k,
               (int)c->ints[2]);
  return OC_OK;
}

const oc_op_def_t oc_op_topk = {"TopK", 1, 1, 1, 2, topk_infer, topk_run};

/* --- Hardmax ------------------------------------------------------------- */

static oc_status_t hardmax_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *x = c->in[0];
  if (c->n_ints != 1 || c->n_floats != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "Hardmax needs ints [axis]");
  OC_RETURN_IF_ERROR(oc_expect_dtype(x, OC_DTYPE_FLOAT32, "Hardmax input"));
  int axis;
  OC_RETURN_IF_ERROR(axis_of("Hardmax", x, c->ints[0], &axis));
  oc_tensor_set_type(c->out[0], x->dtype, x->rank, x->dims);
  *ws = 0;
  return OC_OK;
}

/* y, x are (outer, n, inner). */
static void hardmax_forward(float *y, const float *x, int64_t outer, int64_t n, int64_t inner) {
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      const float *xr = x + o * n * inner + i;
      float *yr = y + o * n * inner + i;
      int64_t best = 0;
      for (int64_t j = 1; j < n; j++)
        if (F_GT_FIRST(xr[j * inner], xr[best * inner])) best = j;
      for (int64_t j = 0; j < n; j++) yr[j * inner] = j == best ? 1.0f : 0.0f;
    }
}

static oc_status_t hardmax_run(const oc_op_call_t *c) {
  const oc_tensor_t *x = c->in[0];
  int axis = (int)(c->ints[0] < 0 ? c->ints[0] + x->rank : c->ints[0]);
  int64_t outer, n, inner;
  if (oc_tensor_numel(x) == 0) return OC_OK; /* (dims products could overflow) */
  split_dims(x, axis, &outer, &n, &inner);
  hardmax_forward(c->out[0]->data, x->data, outer, n, inner);
  return OC_OK;
}

const oc_op_def_t oc_op_hardmax = {"Hardmax", 1, 1, 1, 1, hardmax_infer, hardmax_run};

/* --- CumSum -------------------------------------------------------------- */

static oc_status_t cumsum_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *x = c->in[0];
  if (c->n_ints != 3 || c->n_floats != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "CumSum needs ints [axis, exclusive, reverse]");
  if (!is_sortable(x->dtype))
    return oc_make_status(OC_STATUS_UNSUPPORTED, "CumSum of %s is not supported (float32, int64, "
                          "int32)", oc_dtype_name(x->dtype));
  int axis;
  OC_RETURN_IF_ERROR(axis_of("CumSum", x, c->ints[0], &axis));
  OC_RETURN_IF_ERROR(check_flag("CumSum", "exclusive", c->ints[1]));
  OC_RETURN_IF_ERROR(check_flag("CumSum", "reverse", c->ints[2]));
  oc_tensor_set_type(c->out[0], x->dtype, x->rank, x->dims);
  /* Products of some dims of an empty tensor may overflow: empty needs
   * nothing. Otherwise inner <= numel(x) <= 2^40. */
  *ws = 0;
  if (oc_tensor_numel(x) > 0) {
    int64_t outer, n, inner;
    split_dims(x, axis, &outer, &n, &inner);
    *ws = (size_t)inner * 8;
  }
  return OC_OK;
}

/* y, x are (outer, n, inner); the sum runs along n, forwards or backwards,
 * with the inner dim innermost. acc is (inner) running sums. */
#define CUMSUM_FORWARD(T, ACC)                                                    \
  do {                                                                            \
    const T *px = x;                                                              \
    T *py = y;                                                                    \
    ACC *acc = ws;                                                                \
    for (int64_t o = 0; o < outer; o++) {                                         \
      for (int64_t i = 0; i < inner; i++) acc[i] = 0;                             \
      for (int64_t t = 0; t < n; t++) {                                           \
        int64_t j = reverse ? n - 1 - t : t;                                      \
        const T *xr = px + (o * n + j) * inner;                                   \
        T *yr = py + (o * n + j) * inner;                                         \
        for (int64_t i = 0; i < inner; i++) {                                     \
          ACC before = acc[i];                                                    \
          acc[i] = (ACC)(acc[i] + (ACC)xr[i]);                                    \
          yr[i] = (T)(exclusive ? before : acc[i]);                               \
        }                                                                         \
      }                                                                           \
    }                                                                             \
  } while (0)

/* Float sums accumulate in double; integer sums wrap (unsigned arithmetic). */
static void cumsum_forward(void *y, void *ws, const void *x, int dtype, int64_t outer, int64_t n,
                           int64_t inner, int exclusive, int reverse) {
  switch (dtype) {
    case OC_DTYPE_FLOAT32: CUMSUM_FORWARD(float, double); break;
    case OC_DTYPE_INT64: CUMSUM_FORWARD(int64_t, uint64_t); break;
    case OC_DTYPE_INT32: CUMSUM_FORWARD(int32_t, uint32_t); break;
  }
}

static oc_status_t cumsum_run(const oc_op_call_t *c) {
  const oc_tensor_t *x = c->in[0];
  int axis = (int)(c->ints[0] < 0 ? c->ints[0] + x->rank : c->ints[0]);
  int64_t outer, n, inner;
  if (oc_tensor_numel(x) == 0) return OC_OK; /* (dims products could overflow) */
  split_dims(x, axis, &outer, &n, &inner);
  cumsum_forward(c->out[0]->data, c->workspace, x->data, x->dtype, outer, n, inner,
                 (int)c->ints[1], (int)c->ints[2]);
  return OC_OK;
}

const oc_op_def_t oc_op_cumsum = {"CumSum", 1, 1, 1, 1, cumsum_infer, cumsum_run};
