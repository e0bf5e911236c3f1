/*
 * Pad: grows (or, with negative pads, crops) every axis of a tensor.
 *
 *   inputs:  x (any computed dtype: float32 float64 int64 int32 uint8 int8
 *            bool), value (optional, constant mode only: one element of x's
 *            dtype, any rank with 1 element; absent = 0)
 *   outputs: y (dtype of x, dims[i] = x.dims[i] + begin_i + end_i)
 *   ints:    [mode, pads[2r]]: mode 0 constant, 1 reflect, 2 edge; pads are
 *            ONNX-ordered [begin_1..begin_r, end_1..end_r], negative to crop,
 *            each in [-2^40, 2^40]
 *   floats:  none
 *
 * Output element o along an axis reads input element i = o - begin:
 *   constant: value when i is outside [0, n)
 *   edge:     i clamped to [0, n - 1]
 *   reflect:  i mirrored at 0 and n - 1 without repeating the edge (numpy's
 *             'reflect', repeating as often as needed; an axis of length 1
 *             repeats its element)
 * With negative pads the mapping refers to the whole input (as if padding
 * first and cropping after). Reflect and edge need a non-empty axis to read
 * from when anything is added.
 */
#include <string.h>

#include "oc_ops.h"

enum { PAD_CONSTANT = 0, PAD_REFLECT = 1, PAD_EDGE = 2 };

static int pad_dtype_ok(int dtype) {
  return dtype == OC_DTYPE_FLOAT32 || dtype == OC_DTYPE_FLOAT64 || dtype == OC_DTYPE_INT64 ||
         dtype == OC_DTYPE_INT32 || dtype == OC_DTYPE_UINT8 || dtype == OC_DTYPE_INT8 ||
         dtype == OC_DTYPE_BOOL;
}

static oc_status_t pad_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *x = c->in[0];
  const oc_tensor_t *v = c->n_in > 1 ? c->in[1] : NULL;
  char buf[160];
  *ws = 0;
  if (!pad_dtype_ok(x->dtype))
    return oc_make_status(OC_STATUS_UNSUPPORTED, "input data has dtype %s",
                          oc_dtype_name(x->dtype));
  int r = x->rank;
  if (c->n_ints != 1 + 2 * r || c->n_floats != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "Pad of a rank-%d tensor takes ints [mode, pads[%d]] and no floats, "
                          "got %d ints and %d floats",
                          r, 2 * r, c->n_ints, c->n_floats);
  int64_t mode = c->ints[0];
  if (mode != PAD_CONSTANT && mode != PAD_REFLECT && mode != PAD_EDGE)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "Pad mode %lld is not 0, 1 or 2",
                          (long long)mode);
  if (v) {
    if (mode != PAD_CONSTANT)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "a constant value is only taken in constant mode");
    if (v->dtype != x->dtype || oc_tensor_numel(v) != 1)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "constant_value is %s; expected one %s element",
                            oc_type_str(v, buf, sizeof buf), oc_dtype_name(x->dtype));
  }
  const int64_t *pads = c->ints + 1;
  int64_t dims[OC_MAX_RANK];
  for (int i = 0; i < r; i++) {
    int64_t b = pads[i], e = pads[r + i];
    if (b < -OC_MAX_DIM || b > OC_MAX_DIM || e < -OC_MAX_DIM || e > OC_MAX_DIM)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "axis %d: pads %lld, %lld are out of range",
                            i, (long long)b, (long long)e);
    int64_t d = x->dims[i] + b + e; /* each term within +-2^40: no overflow */
    if (d < 0)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "axis %d: pads %lld, %lld crop more than the %lld elements", i,
                            (long long)b, (long long)e, (long long)x->dims[i]);
    if (d > 0 && x->dims[i] == 0 && mode != PAD_CONSTANT)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "axis %d is empty: %s padding has nothing to copy", i,
                            mode == PAD_EDGE ? "edge" : "reflect");
    dims[i] = d;
  }
  oc_tensor_set_type(c->out[0], x->dtype, r, dims);
  return OC_OK;
}

/* The input index read by output index o (o - begin) along an axis of n >= 1
 * elements, or -1 for the constant. */
static int64_t pad_src(int64_t i, int64_t n, int mode) {
  if (i >= 0 && i < n) return i;
  if (mode == PAD_CONSTANT) return -1;
  if (mode == PAD_EDGE) return i < 0 ? 0 : n - 1;
  if (n == 1) return 0;
  int64_t period = 2 * (n - 1);
  int64_t m = i % period;
  if (m < 0) m += period;
  return m < n ? m : period - m;
}

/* y is (out dims), x is (in dims), esize bytes per element: copies row by
 * row along the last axis, with the constant |value| where nothing is read. */
static void pad_kernel(char *y, const char *x, const void *value, size_t esize, int r,
                       const int64_t *in, const int64_t *out, const int64_t *begin, int mode) {
  int64_t total = 1;
  for (int i = 0; i < r; i++) total *= out[i];
  if (total == 0) return;
  if (r == 0) {
    memcpy(y, x, esize);
    return;
  }
  int64_t in_stride[OC_MAX_RANK], s = 1;
  for (int i = r - 1; i >= 0; i--) {
    in_stride[i] = s;
    s *= in[i];
  }
  int64_t idx[OC_MAX_RANK] = {0};
  int64_t W = out[r - 1], nW = in[r - 1], bW = begin[r - 1];
  for (int64_t row = 0; row < total; row += W) {
    /* the source row, or none when an outer axis falls in a constant pad */
    int64_t off = 0;
    int outside = 0;
    for (int i = 0; i < r - 1; i++) {
      int64_t src = pad_src(idx[i] - begin[i], in[i], mode);
      if (src < 0) outside = 1;
      off += src * in_stride[i];
    }
    char *yr = y + (size_t)row * esize;
    if (outside) {
      for (int64_t o = 0; o < W; o++) memcpy(yr + (size_t)o * esize, value, esize);
    } else {
      const char *xr = x + (size_t)off * esize;
      /* the run of o whose source lies inside [0, nW) */
      int64_t lo = bW > 0 ? bW : 0, hi = nW + bW < W ? nW + bW : W;
      if (lo > W) lo = W;
      if (hi < lo) hi = lo;
      for (int64_t o = 0; o < lo; o++) {
        int64_t src = pad_src(o - bW, nW, mode);
        memcpy(yr + (size_t)o * esize, src < 0 ? value : xr + (size_t)src * esize, esize);
      }
      if (hi > lo) memcpy(yr + (size_t)lo * esize, xr + (size_t)(lo - bW) * esize,
                          (size_t)(hi - lo) * esize);
      for (int64_t o = hi; o < W; o++) {
        int64_t src = pad_src(o - bW, nW, mode);
        memcpy(yr + (size_t)o * esize, src < 0 ? value : xr + (size_t)src * esize, esize);
      }
    }
    for (int i = r - 2; i >= 0; i--) {
      if (++idx[i] < out[i]) break;
      idx[i] = 0;
    }
  }
}

static oc_status_t pad_run(const oc_op_call_t *c) {
  const oc_tensor_t *x = c->in[0];
  const oc_tensor_t *v = c->n_in > 1 ? c->in[1] : NULL;
  static const char zero[8] = {0};
  pad_kernel(c->out[0]->data, x->data, v ? v->data : zero, oc_dtype_size(x->dtype), x->rank,
             x->dims, c->out[0]->dims, c->ints + 1, (int)c->ints[0]);
  return OC_OK;
}

const oc_op_def_t oc_op_pad = {"Pad", 1, 2, 1, 1, pad_infer, pad_run};

/* --- backward ------------------------------------------------------------- */

/*
 * PadBwd: the gradient of Pad with respect to x (float32).
 *   inputs:  dy (float32, Pad's output type)
 *   outputs: dx (float32, dims[i] = dy.dims[i] - begin_i - end_i, x's dims)
 *   ints:    Pad's [mode, pads[2r]] (r = rank(dy))
 *   floats:  none
 * Every dy element adds into the x element the forward read for it (pad_src
 * along each axis): constant mode crops (the compiler emits a Pad with the
 * pads negated for it instead), edge adds the replicated borders into the
 * edge elements, reflect adds each mirrored element into its source.
 */
static oc_status_t pad_bwd_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *dy = c->in[0];
  *ws = 0;
  OC_RETURN_IF_ERROR(oc_expect_dtype(dy, OC_DTYPE_FLOAT32, "input dY"));
  int r = dy->rank;
  if (c->n_ints != 1 + 2 * r || c->n_floats != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "PadBwd of a rank-%d tensor takes ints [mode, pads[%d]] and no floats, "
                          "got %d ints and %d floats",
                          r, 2 * r, c->n_ints, c->n_floats);
  int64_t mode = c->ints[0];
  if (mode != PAD_CONSTANT && mode != PAD_REFLECT && mode != PAD_EDGE)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "Pad mode %lld is not 0, 1 or 2",
                          (long long)mode);
  const int64_t *pads = c->ints + 1;
  int64_t dims[OC_MAX_RANK];
  for (int i = 0; i < r; i++) {
    int64_t b = pads[i], e = pads[r + i];
    if (b < -OC_MAX_DIM || b > OC_MAX_DIM || e < -OC_MAX_DIM || e > OC_MAX_DIM)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "axis %d: pads %lld, %lld are out of range",
                            i, (long long)b, (long long)e);
    int64_t d = dy->dims[i] - b - e; /* each term within +-2^40: no overflow */
    if (d < 0 || d > OC_MAX_DIM)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "axis %d: dY has %lld elements; pads %lld, %lld leave %lld for x", i,
                            (long long)dy->dims[i], (long long)b, (long long)e, (long long)d);
    if (dy->dims[i] > 0 && d == 0 && mode != PAD_CONSTANT)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "axis %d is empty: %s padding has nothing to copy", i,
                            mode == PAD_EDGE ? "edge" : "reflect");
    dims[i] = d;
  }
  oc_tensor_set_type(c->out[0], OC_DTYPE_FLOAT32, r, dims);
  return oc_check_type(c->out[0], "output dX");
}

/* dx is (in dims), dy is (out dims): dx[src(o)] += dy[o] for every o whose
 * source along every axis is inside x, row by row along the last axis. */
static void pad_bwd_kernel(float *dx, const float *dy, int r, const int64_t *in,
                           const int64_t *out, const int64_t *begin, int mode) {
  int64_t total = 1, n_in = 1;
  for (int i = 0; i < r; i++) {
    total *= out[i];
    n_in *= in[i];
  }
  if (n_in == 0) return;
  memset(dx, 0, (size_t)n_in * sizeof(float));
  if (total == 0) return;
  if (r == 0) {
    dx[0] = dy[0];
    return;
  }
  int64_t in_stride[OC_MAX_RANK], s = 1;
  for (int i = r - 1; i >= 0; i--) {
    in_stride[i] = s;
    s *= in[i];
  }
  int64_t idx[OC_MAX_RANK] = {0};
  int64_t W = out[r - 1], nW = in[r - 1], bW = begin[r - 1];
  for (int64_t row = 0; row < total; row += W) {
    int64_t off = 0;
    int outside = 0;
    for (int i = 0; i < r - 1; i++) {
      int64_t src = pad_src(idx[i] - begin[i], in[i], mode);
      if (src < 0) outside = 1;
      off += src * in_stride[i];
    }
    if (!outside) {
      const float *gr = dy + row;
      float *xr = dx + off;
      for (int64_t o = 0; o < W; o++) {
        int64_t src = pad_src(o - bW, nW, mode);
        if (src >= 0) xr[src] += gr[o];
      }
    }
    for (int i = r - 2; i >= 0; i--) {
      if (++idx[i] < out[i]) break;
      idx[i] = 0;
    }
  }
}

static oc_status_t pad_bwd_run(const oc_op_call_t *c) {
  const oc_tensor_t *dy = c->in[0];
  pad_bwd_kernel(c->out[0]->data, dy->data, dy->rank, c->out[0]->dims, dy->dims, c->ints + 1,
                 (int)c->ints[0]);
  return OC_OK;
}

const oc_op_def_t oc_op_pad_bwd = {"PadBwd", 1, 1, 1, 1, pad_bwd_infer, pad_bwd_run};
