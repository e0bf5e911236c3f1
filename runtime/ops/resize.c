/*
 * Resize: nearest-neighbour and (multi)linear resampling along every axis.
 *
 *   inputs:  x (nearest: any computed dtype; linear: float32), any rank >= 1
 *   outputs: y (dtype of x, dims out[r])
 *   ints:    [mode, coord, nearest, from_sizes, out[r]]
 *     mode:    0 nearest, 1 linear
 *     coord:   how output index o maps to input coordinate xi along an axis
 *              of n input and m output elements, scale s:
 *              0 half_pixel          xi = (o + 0.5) / s - 0.5
 *              1 asymmetric          xi = o / s
 *              2 pytorch_half_pixel  xi = m > 1 ? (o + 0.5) / s - 0.5 : 0
 *              3 align_corners       xi = L > 1 ? o * (n - 1) / (L - 1) : 0
 *              4 tf_half_pixel_for_nn xi = (o + 0.5) / s
 *              where L = s * n, the unrounded output length (ONNX's reference
 *              uses it; with from_sizes it is m)
 *     nearest: rounding of xi in nearest mode: 0 round_prefer_floor,
 *              1 round_prefer_ceil, 2 floor, 3 ceil, 4 simple (Resize-10 and
 *              Upsample: floor when s >= 1, ceil when s < 1)
 *     from_sizes: 1 = the scales are m / n per axis (ONNX's rule when sizes
 *              are given), taken in double; 0 = floats hold them
 *     out:     the output dims, each in [0, 2^40]; an empty input axis must
 *              stay empty
 *   floats:  [] when from_sizes, else [scales[r]] (each finite and > 0)
 *   workspace: per output index of every axis, the input offsets of its one
 *            (nearest) or two (linear) taps and the weight of the second:
 *            sum(out) * 24 bytes (0 for an empty output).
 * Nearest rounds xi, then clamps it into [0, n - 1]. Linear clamps xi into
 * [0, n - 1] and blends floor(xi) and floor(xi) + 1 (edge replicated), as
 * ONNX's reference does; the blend runs over the corners of the axes whose
 * weights are not all 0, accumulated in double.
 */
#include <math.h>
#include <string.h>

#include "oc_ops.h"

enum { RS_NEAREST = 0, RS_LINEAR = 1 };
enum { CT_HALF_PIXEL, CT_ASYMMETRIC, CT_PYTORCH_HALF_PIXEL, CT_ALIGN_CORNERS, CT_TF_HALF_PIXEL_NN };
enum { NR_ROUND_PREFER_FLOOR, NR_ROUND_PREFER_CEIL, NR_FLOOR, NR_CEIL, NR_SIMPLE };

#define RS_HEAD 4

static uint64_t rs_table_entries(const oc_tensor_t *y) {
  uint64_t total = 0;
  for (int i = 0; i < y->rank; i++) total += (uint64_t)y->dims[i];
  return total;
}

static oc_status_t resize_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *x = c->in[0];
  int r = x->rank;
  *ws = 0;
  if (c->n_ints < RS_HEAD)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "Resize takes ints [mode, coord, nearest, from_sizes, out...]");
  int64_t mode = c->ints[0], coord = c->ints[1], nearest = c->ints[2], from_sizes = c->ints[3];
  if (mode != RS_NEAREST && mode != RS_LINEAR)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "Resize mode %lld is not 0 or 1",
                          (long long)mode);
  if (coord < CT_HALF_PIXEL || coord > CT_TF_HALF_PIXEL_NN)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "coordinate transformation %lld is out of range", (long long)coord);
  if (nearest < NR_ROUND_PREFER_FLOOR || nearest > NR_SIMPLE)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "nearest mode %lld is out of range",
                          (long long)nearest);
  if (from_sizes != 0 && from_sizes != 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "from_sizes is %lld; expected 0 or 1",
                          (long long)from_sizes);
  if (mode == RS_LINEAR) {
    OC_RETURN_IF_ERROR(oc_expect_dtype(x, OC_DTYPE_FLOAT32, "input X of linear Resize"));
  } else if (oc_dtype_size(x->dtype) == 0) {
    return oc_make_status(OC_STATUS_UNSUPPORTED, "input X has dtype %s",
                          oc_dtype_name(x->dtype));
  }
  if (r < 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input X is a scalar; nothing to resize");
  if (c->n_ints != RS_HEAD + r || c->n_floats != (from_sizes ? 0 : r))
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "Resize of rank %d takes %d ints and %d floats, got %d and %d", r,
                          RS_HEAD + r, from_sizes ? 0 : r, c->n_ints, c->n_floats);
  const int64_t *out = c->ints + RS_HEAD;
  for (int i = 0; i < r; i++) {
    if (out[i] < 0 || out[i] > OC_MAX_DIM)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "output dim %d is %lld; out of range", i,
                            (long long)out[i]);
    if (x->dims[i] == 0 && out[i] > 0)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "axis %d is empty and cannot be resized to %lld", i,
                            (long long)out[i]);
    if (!from_sizes) {
      float s = c->floats[i];
      if (!(s > 0.0f) || isinf(s))
        return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "scale %d is %g; must be finite and > 0",
                              i, s);
    }
  }
  oc_tensor_set_type(c->out[0], x->dtype, r, out);
  OC_RETURN_IF_ERROR(oc_check_type(c->out[0], "output"));
  /* Nothing runs for an empty output; else the tables must fit the limit. */
  uint64_t bytes = rs_table_entries(c->out[0]) * 24;
  if (oc_tensor_numel(c->out[0]) == 0) bytes = 0;
  if (bytes > OC_MAX_TENSOR_BYTES)
    return oc_make_status(OC_STATUS_RESOURCE_LIMIT,
                          "Resize index tables of %llu bytes exceed the 2^40-byte limit",
                          (unsigned long long)bytes);
  *ws = (size_t)bytes;
  return OC_OK;
}

/* The input coordinate of output index o along an axis (see the header). */
static double rs_coord(int coord, double o, int64_t n, int64_t m, double s, double len) {
  switch (coord) {
    case CT_ASYMMETRIC: return o / s;
    case CT_PYTORCH_HALF_PIXEL: return m > 1 ? (o + 0.5) / s - 0.5 : 0.0;
    case CT_ALIGN_CORNERS: return len > 1.0 ? o * (double)(n - 1) / (len - 1.0) : 0.0;
    case CT_TF_HALF_PIXEL_NN: return (o + 0.5) / s;
    default: return (o + 0.5) / s - 0.5;
  }
}

static double rs_round(int nearest, double xi, double s) {
  switch (nearest) {
    case NR_ROUND_PREFER_CEIL: return floor(xi + 0.5);
    case NR_FLOOR: return floor(xi);
    case NR_CEIL: return ceil(xi);
    case NR_SIMPLE: return s < 1.0 ? ceil(xi) : trunc(xi);
    default: return ceil(xi - 0.5);
  }
}

static double rs_clamp(double v, int64_t n) {
  if (!(v > 0.0)) return 0.0; /* also NaN */
  if (v > (double)(n - 1)) return (double)(n - 1);
  return v;
}

/* Fills, for every axis a and output index o, t0/t1 = the element offsets in
 * x of its taps and w1 the weight of t1 (linear; nearest uses t0 alone).
 * active[a] says whether any w1 of axis a is non-zero. Tables of all axes lie
 * back to back. */
static void rs_tables(int64_t *t0, int64_t *t1, double *w1, int *active, const oc_op_call_t *c) {
  const oc_tensor_t *x = c->in[0], *y = c->out[0];
  int r = x->rank, mode = (int)c->ints[0], coord = (int)c->ints[1], nearest = (int)c->ints[2];
  int from_sizes = (int)c->ints[3];
  int64_t stride = 1;
  int64_t base = rs_table_entries(y);
  for (int a = r - 1; a >= 0; a--) {
    int64_t n = x->dims[a], m = y->dims[a];
    base -= m;
    double s = from_sizes ? (double)m / (double)n : (double)c->floats[a];
    double len = from_sizes ? (double)m : s * (double)n;
    active[a] = 0;
    for (int64_t o = 0; o < m; o++) {
      double xi = rs_coord(coord, (double)o, n, m, s, len);
      int64_t i0, i1;
      double w = 0.0;
      if (mode == RS_NEAREST) {
        i0 = i1 = (int64_t)rs_clamp(rs_round(nearest, xi, s), n);
      } else {
        xi = rs_clamp(xi, n);
        i0 = (int64_t)floor(xi);
        i1 = i0 + 1 < n ? i0 + 1 : n - 1;
        w = xi - (double)i0;
        if (w != 0.0) active[a] = 1;
      }
      t0[base + o] = i0 * stride;
      t1[base + o] = i1 * stride;
      w1[base + o] = w;
    }
    stride *= n;
  }
}

/* y (out dims) gathers x at the sum of the nearest tap offsets of its index;
 * es bytes per element. */
static void rs_nearest(char *y, const char *x, size_t es, int r, const int64_t *out,
                       const int64_t *t0) {
  int64_t start[OC_MAX_RANK], idx[OC_MAX_RANK] = {0}, total = 1, s = 0;
  for (int a = 0; a < r; a++) {
    start[a] = s;
    s += out[a];
    total *= out[a];
  }
  if (total == 0) return;
  const int64_t W = out[r - 1], *tw = t0 + start[r - 1];
  for (int64_t row = 0; row < total; row += W) {
    int64_t off = 0;
    for (int a = 0; a < r - 1; a++) off += t0[start[a] + idx[a]];
    char *yr = y + (size_t)row * es;
    const char *xr = x + (size_t)off * es;
    switch (es) {
      case 1:
        for (int64_t o = 0; o < W; o++) yr[o] = xr[tw[o]];
        break;
      case 4:
        for (int64_t o = 0; o < W; o++) memcpy(yr + o * 4, xr + tw[o] * 4, 4);
        break;
      case 8:
        for (int64_t o = 0; o < W; o++) memcpy(yr + o * 8, xr + tw[o] * 8, 8);
        break;
      default:
        for (int64_t o = 0; o < W; o++) memcpy(yr + (size_t)o * es, xr + (size_t)tw[o] * es, es);
    }
    for (int a = r - 2; a >= 0; a--) {
      if (++idx[a] < out[a]) break;
      idx[a] = 0;
    }
  }
}

/* y (out dims) = sum over the corners of the active axes of the product of
 * the tap weights times x at the tap offsets. */
static void rs_linear(float *y, const float *x, int r, const int64_t *out, const int64_t *t0,
                      const int64_t *t1, const double *w1, const int *active) {
  int64_t start[OC_MAX_RANK], idx[OC_MAX_RANK] = {0}, total = 1, s = 0;
  int act[OC_MAX_RANK], k = 0;
  for (int a = 0; a < r; a++) {
    start[a] = s;
    s += out[a];
    total *= out[a];
    if (active[a]) act[k++] = a;
  }
  for (int64_t i = 0; i < total; i++) {
    int64_t base = 0;
    for (int a = 0; a < r; a++)
      if (!active[a]) base += t0[start[a] + idx[a]];
    double acc = 0.0;
    for (int corner = 0; corner < (1 << k); corner++) {
      int64_t off = base;
      double w = 1.0;
      for (int j = 0; j < k; j++) {
        int64_t e = start[act[j]] + idx[act[j]];
        if (corner >> j & 1) {
          off += t1[e];
          w *= w1[e];
        } else {
          off += t0[e];
          w *= 1.0 - w1[e];
        }
      }
      if (w != 0.0) acc += w * (double)x[off];
    }
    y[i] = (float)acc;
    for (int a = r - 1; a >= 0; a--) {
      if (++idx[a] < out[a]) break;
      idx[a] = 0;
    }
  }
}

static oc_status_t resize_run(const oc_op_call_t *c) {
  const oc_tensor_t *x = c->in[0], *y = c->out[0];
  int64_t n = rs_table_entries(y);
  if (oc_tensor_numel(y) == 0) return OC_OK;
  int64_t *t0 = c->workspace, *t1 = t0 + n;
  double *w1 = (double *)(t1 + n);
  int active[OC_MAX_RANK];
  rs_tables(t0, t1, w1, active, c);
  if (c->ints[0] == RS_NEAREST)
    rs_nearest(y->data, x->data, oc_dtype_size(x->dtype), x->rank, y->dims, t0);
  else
    rs_linear(y->data, x->data, x->rank, y->dims, t0, t1, w1, active);
  return OC_OK;
}

const oc_op_def_t oc_op_resize = {"Resize", 1, 1, 1, 1, resize_infer, resize_run};

/* --- backward ------------------------------------------------------------- */

/*
 * ResizeBwd: the gradient of Resize (float32) with respect to x.
 *   inputs:  dy (float32, Resize's output type)
 *   outputs: dx (float32, dims in[r])
 *   ints:    Resize's [mode, coord, nearest, from_sizes, out[r]] followed by
 *            in[r], x's dims (each in [0, 2^40])
 *   floats:  Resize's
 *   workspace: the forward's tap tables.
 * The transpose of the forward: nearest adds dy[o] into the input element
 * output o picked; linear adds w * dy[o] into every corner tap of weight
 * w != 0 (the same taps and weights as the forward, for every coordinate
 * transformation). Accumulated in float32, as PyTorch's upsample backward.
 */

/* Rebuilds the forward call from the backward one: x of type |xt| (dims
 * from the ints), y of type |yt| (filled by the forward shape rule). */
static oc_status_t rs_bwd_forward(const oc_op_call_t *c, oc_tensor_t *xt, oc_tensor_t *yt,
                                  oc_tensor_t **pin, oc_tensor_t **pout, oc_op_call_t *f,
                                  size_t *ws) {
  const oc_tensor_t *dy = c->in[0];
  char b1[160], b2[160];
  OC_RETURN_IF_ERROR(oc_expect_dtype(dy, OC_DTYPE_FLOAT32, "input dY"));
  int r = dy->rank;
  if (r < 1 || c->n_ints != RS_HEAD + 2 * r)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "ResizeBwd of rank %d takes %d ints (the forward's and x's dims), got %d",
                          r, RS_HEAD + 2 * r, c->n_ints);
  memset(xt, 0, sizeof *xt);
  memset(yt, 0, sizeof *yt);
  const int64_t *in = c->ints + RS_HEAD + r;
  for (int i = 0; i < r; i++)
    if (in[i] < 0 || in[i] > OC_MAX_DIM)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input dim %d is %lld; out of range", i,
                            (long long)in[i]);
  oc_tensor_set_type(xt, OC_DTYPE_FLOAT32, r, in);
  OC_RETURN_IF_ERROR(oc_check_type(xt, "output dX"));
  pin[0] = xt;
  pout[0] = yt;
  *f = (oc_op_call_t){.ints = c->ints, .n_ints = RS_HEAD + r, .floats = c->floats,
                      .n_floats = c->n_floats, .n_in = 1, .in = pin, .n_out = 1, .out = pout};
  OC_RETURN_IF_ERROR(resize_infer(f, ws));
  int same = yt->rank == r;
  for (int i = 0; i < r && same; i++) same = yt->dims[i] == dy->dims[i];
  if (!same)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input dY is %s; the forward Resize gives %s",
                          oc_type_str(dy, b1, sizeof b1), oc_type_str(yt, b2, sizeof b2));
  return OC_OK;
}

static oc_status_t resize_bwd_infer(const oc_op_call_t *c, size_t *ws) {
  oc_tensor_t xt, yt, *pin[1], *pout[1];
  oc_op_call_t f;
  *ws = 0;
  OC_RETURN_IF_ERROR(rs_bwd_forward(c, &xt, &yt, pin, pout, &f, ws));
  oc_tensor_set_type(c->out[0], OC_DTYPE_FLOAT32, xt.rank, xt.dims);
  return OC_OK;
}

/* dx (in dims) += the transpose of the forward taps applied to dy (out
 * dims); dx starts at 0. */
static void rs_linear_bwd(float *dx, const float *dy, int r, const int64_t *out, const int64_t *t0,
                          const int64_t *t1, const double *w1, const int *active) {
  int64_t start[OC_MAX_RANK], idx[OC_MAX_RANK] = {0}, total = 1, s = 0;
  int act[OC_MAX_RANK], k = 0;
  for (int a = 0; a < r; a++) {
    start[a] = s;
    s += out[a];
    total *= out[a];
    if (active[a]) act[k++] = a;
  }
  for (int64_t i = 0; i < total; i++) {
    int64_t base = 0;
    for (int a = 0; a < r; a++)
      if (!active[a]) base += t0[start[a] + idx[a]];
    double g = dy[i];
    for (int corner = 0; corner < (1 << k); corner++) {
      int64_t off = base;
      double w = 1.0;
      for (int j = 0; j < k; j++) {
        int64_t e = start[act[j]] + idx[act[j]];
        if (corner >> j & 1) {
          off += t1[e];
          w *= w1[e];
        } else {
          off += t0[e];
          w *= 1.0 - w1[e];
        }
      }
      if (w != 0.0) dx[off] += (float)(w * g);
    }
    for (int a = r - 1; a >= 0; a--) {
      if (++idx[a] < out[a]) break;
      idx[a] = 0;
    }
  }
}

/* dx (in dims) += dy (out dims) at the nearest tap of every output index. */
static void rs_nearest_bwd(float *dx, const float *dy, int r, const int64_t *out,
                           const int64_t *t0) {
  int64_t start[OC_MAX_RANK], idx[OC_MAX_RANK] = {0}, total = 1, s = 0;
  for (int a = 0; a < r; a++) {
    start[a] = s;
    s += out[a];
    total *= out[a];
  }
  const int64_t W = out[r - 1], *tw = t0 + start[r - 1];
  for (int64_t row = 0; row < total; row += W) {
    int64_t off = 0;
    for (int a = 0; a < r - 1; a++) off += t0[start[a] + idx[a]];
    const float *gr = dy + row;
    float *xr = dx + off;
    for (int64_t o = 0; o < W; o++) xr[tw[o]] += gr[o];
    for (int a = r - 2; a >= 0; a--) {
      if (++idx[a] < out[a]) break;
      idx[a] = 0;
    }
  }
}

static oc_status_t resize_bwd_run(const oc_op_call_t *c) {
  oc_tensor_t xt, yt, *pin[1], *pout[1];
  oc_op_call_t f;
  size_t ws;
  OC_RETURN_IF_ERROR(rs_bwd_forward(c, &xt, &yt, pin, pout, &f, &ws));
  const oc_tensor_t *dy = c->in[0];
  float *dx = c->out[0]->data;
  int64_t nx = oc_tensor_numel(&xt);
  if (nx == 0) return OC_OK;
  memset(dx, 0, (size_t)nx * sizeof(float));
  if (oc_tensor_numel(dy) == 0) return OC_OK;
  int64_t n = rs_table_entries(&yt);
  int64_t *t0 = c->workspace, *t1 = t0 + n;
  double *w1 = (double *)(t1 + n);
  int active[OC_MAX_RANK];
  rs_tables(t0, t1, w1, active, &f);
  if (c->ints[0] == RS_NEAREST)
    rs_nearest_bwd(dx, dy->data, dy->rank, dy->dims, t0);
  else
    rs_linear_bwd(dx, dy->data, dy->rank, dy->dims, t0, t1, w1, active);
  return OC_OK;
}

const oc_op_def_t oc_op_resize_bwd = {"ResizeBwd", 1, 1, 1, 1, resize_bwd_infer, resize_bwd_run};
