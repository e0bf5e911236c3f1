/*
 * Pooling: windowed MaxPool, AveragePool and LpPool over 1 to 3 spatial axes,
 * and the global pools over any number of spatial axes.
 *
 * MaxPool:
 *   inputs:  x ((N, C, D1..Dn), n = 1..3; float32, uint8 or int8)
 *   outputs: y ((N, C, O1..On), dtype of x)
 *   ints:    [kernel[n], strides[n], pads[2n], dilations[n], ceil_mode]
 * AveragePool:
 *   inputs:  x (float32, (N, C, D1..Dn), n = 1..3)
 *   outputs: y (float32, (N, C, O1..On))
 *   ints:    [kernel[n], strides[n], pads[2n], dilations[n], ceil_mode,
 *             count_include_pad]
 *   floats:  none (both)
 *   pads are ONNX-ordered [begin_1..begin_n, end_1..end_n]; the compiler
 *   resolves auto_pad into explicit pads and ceil_mode 0. With span_i =
 *   (kernel_i - 1) * dilation_i + 1 and padded_i = Di + begin_i + end_i:
 *     floor mode: Oi = (padded_i - span_i) / stride_i + 1
 *     ceil mode:  Oi = ceil((padded_i - span_i) / stride_i) + 1, minus one
 *                 when the last window would start at or past Di + begin_i
 *                 (every window starts inside the input or the begin pad).
 *   Padding never takes part in a max. An average divides by the taps that
 *   fall inside the input (count_include_pad = 0) or inside the explicitly
 *   padded input (count_include_pad = 1; the overhang that ceil mode adds
 *   past the end pad is never counted). A window with no taps to count gives
 *   NaN (average) or the dtype's lowest value (-inf for float32).
 * LpPool:
 *   inputs:  x (float32, (N, C, D1..Dn), n = 1..3)
 *   outputs: y (float32, (N, C, O1..On))
 *   ints:    [kernel[n], strides[n], pads[2n], dilations[n], ceil_mode]
 *   floats:  [p] (finite, > 0)
 *   y = (sum over the window's taps inside x of |x|^p)^(1/p) in double
 *   (padding adds zeros); p = 1 and 2 take the exact sum / square root.
 * GlobalAveragePool / GlobalMaxPool:
 *   inputs:  x (float32, (N, C, D1..Dn), any n >= 0)
 *   outputs: y (float32, (N, C, 1..1)): the mean / max over D1..Dn
 *   ints, floats: none
 *
 * Internally the windowed pools are 3-D: 1-D and 2-D inputs get leading
 * spatial axes of size 1 (kernel 1, stride 1, no padding).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "oc_ops.h"

typedef struct pool_geom_s {
  int64_t planes; /* N * C */
  int64_t in[3], k[3], s[3], pb[3], pe[3], d[3], out[3];
  int count_include_pad;
} pool_geom_t;

enum { POOL_MAX = 0, POOL_AVG = 1, POOL_LP = 2 };
static const char *const pool_names[3] = {"MaxPool", "AveragePool", "LpPool"};

/* Validates |c| for a windowed pool of |kind| and fills |g|. AveragePool has
 * an extra int (count_include_pad), LpPool a float (p). */
static oc_status_t pool_geom(const oc_op_call_t *c, int kind, pool_geom_t *g) {
  const oc_tensor_t *x = c->in[0];
  char buf[160];
  int avg = kind == POOL_AVG;
  if (kind != POOL_MAX) {
    OC_RETURN_IF_ERROR(oc_expect_dtype(x, OC_DTYPE_FLOAT32, "input X"));
  } else if (x->dtype != OC_DTYPE_FLOAT32 && x->dtype != OC_DTYPE_UINT8 &&
             x->dtype != OC_DTYPE_INT8) {
    return oc_make_status(OC_STATUS_UNSUPPORTED,
                          "input X has dtype %s; MaxPool computes float32, uint8 and int8",
                          oc_dtype_name(x->dtype));
  }
  if (x->rank < 3 || x->rank > 5)
    return oc_make_status(OC_STATUS_UNSUPPORTED,
                          "input X is %s; pooling takes (N, C, D1..Dn) with 1 to 3 spatial axes",
                          oc_type_str(x, buf, sizeof buf));
  int n = x->rank - 2;
  int want = 5 * n + 1 + (avg ? 1 : 0), want_f = kind == POOL_LP ? 1 : 0;
  if (c->n_ints != want || c->n_floats != want_f)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "%s with %d spatial axes takes %d ints and %d floats, got %d and %d",
                          pool_names[kind], n, want, want_f, c->n_ints, c->n_floats);
  if (kind == POOL_LP && !(c->floats[0] > 0.0f && !isinf(c->floats[0])))
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "LpPool p is %g; must be finite and > 0",
                          c->floats[0]);
  const int64_t *kernel = c->ints, *strides = c->ints + n, *pads = c->ints + 2 * n;
  const int64_t *dil = c->ints + 4 * n;
  int64_t ceil_mode = c->ints[5 * n];
  if (ceil_mode != 0 && ceil_mode != 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "ceil_mode is %lld; expected 0 or 1",
                          (long long)ceil_mode);
  memset(g, 0, sizeof *g);
  if (avg) {
    int64_t cip = c->ints[5 * n + 1];
    if (cip != 0 && cip != 1)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "count_include_pad is %lld; expected 0 or 1", (long long)cip);
    g->count_include_pad = (int)cip;
  }
  g->planes = x->dims[0] * x->dims[1]; /* both <= 2^40 and the tensor fits: no overflow */
  for (int a = 0; a < 3; a++) {
    int i = a - (3 - n);
    if (i < 0) {
      g->in[a] = g->k[a] = g->s[a] = g->d[a] = g->out[a] = 1;
      continue;
    }
    g->in[a] = x->dims[2 + i];
    g->k[a] = kernel[i];
    g->s[a] = strides[i];
    g->pb[a] = pads[i];
    g->pe[a] = pads[n + i];
    g->d[a] = dil[i];
    if (g->k[a] < 1 || g->k[a] > OC_MAX_DIM)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "kernel size %lld is out of range",
                            (long long)g->k[a]);
    if (g->s[a] < 1 || g->s[a] > OC_MAX_DIM || g->d[a] < 1 || g->d[a] > OC_MAX_DIM)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "stride %lld / dilation %lld is out of range", (long long)g->s[a],
                            (long long)g->d[a]);
    if (g->pb[a] < 0 || g->pb[a] > OC_MAX_DIM || g->pe[a] < 0 || g->pe[a] > OC_MAX_DIM)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "pads %lld, %lld are out of range",
                            (long long)g->pb[a], (long long)g->pe[a]);
    uint64_t span;
    if (oc_mul_overflows((uint64_t)(g->k[a] - 1), (uint64_t)g->d[a], &span) ||
        span >= (uint64_t)4 * OC_MAX_DIM)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "the dilated window is too large");
    span += 1;
    uint64_t padded = (uint64_t)g->in[a] + (uint64_t)g->pb[a] + (uint64_t)g->pe[a];
    if (padded < span)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "spatial axis %d: the window (%llu) is larger than the padded input "
                            "(%llu)",
                            i, (unsigned long long)span, (unsigned long long)padded);
    uint64_t st = (uint64_t)g->s[a];
    uint64_t o = (padded - span) / st + 1;
    if (ceil_mode) {
      o = (padded - span + st - 1) / st + 1;
      /* every window starts inside the input or its begin pad */
      if ((o - 1) * st >= (uint64_t)g->in[a] + (uint64_t)g->pb[a]) o--;
    }
    g->out[a] = (int64_t)o;
  }
  return OC_OK;
}

static oc_status_t pool_infer(const oc_op_call_t *c, int kind) {
  pool_geom_t g;
  OC_RETURN_IF_ERROR(pool_geom(c, kind, &g));
  const oc_tensor_t *x = c->in[0];
  int n = x->rank - 2;
  int64_t dims[OC_MAX_RANK] = {x->dims[0], x->dims[1]};
  for (int i = 0; i < n; i++) dims[2 + i] = g.out[3 - n + i];
  oc_tensor_set_type(c->out[0], x->dtype, x->rank, dims);
  return OC_OK;
}

static oc_status_t maxpool_infer(const oc_op_call_t *c, size_t *ws) {
  *ws = 0;
  return pool_infer(c, POOL_MAX);
}
static oc_status_t avgpool_infer(const oc_op_call_t *c, size_t *ws) {
  *ws = 0;
  return pool_infer(c, POOL_AVG);
}
static oc_status_t lppool_infer(const oc_op_call_t *c, size_t *ws) {
  *ws = 0;
  return pool_infer(c, POOL_LP);
}

/* The taps t in [0, k) with 0 <= start + t * d < n: [*lo, *hi). */
static void tap_range(int64_t start, int64_t d, int64_t k, int64_t n, int64_t *lo, int64_t *hi) {
  int64_t l = start >= 0 ? 0 : (-start + d - 1) / d;
  int64_t h = n - start <= 0 ? 0 : (n - start + d - 1) / d;
  if (l > k) l = k;
  if (h > k) h = k;
  if (h < l) h = l;
  *lo = l;
  *hi = h;
}

/* Walks every output position (od, oh, ow) of one plane with the tap ranges
 * [l0,h0) x [l1,h1) x [l2,h2) of its window inside the input and the input
 * offsets s0, s1, s2 of its first tap. */
#define POOL_WINDOWS(g, ...)                                                     \
  for (int64_t od = 0; od < (g)->out[0]; od++) {                                \
    int64_t s0 = od * (g)->s[0] - (g)->pb[0], l0, h0;                           \
    tap_range(s0, (g)->d[0], (g)->k[0], (g)->in[0], &l0, &h0);                  \
    for (int64_t oh = 0; oh < (g)->out[1]; oh++) {                              \
      int64_t s1 = oh * (g)->s[1] - (g)->pb[1], l1, h1;                         \
      tap_range(s1, (g)->d[1], (g)->k[1], (g)->in[1], &l1, &h1);                \
      for (int64_t ow = 0; ow < (g)->out[2]; ow++) {                            \
        int64_t s2 = ow * (g)->s[2] - (g)->pb[2], l2, h2;                       \
        tap_range(s2, (g)->d[2], (g)->k[2], (g)->in[2], &l2, &h2);              \
        int64_t o = (od * (g)->out[1] + oh) * (g)->out[2] + ow;                 \
        __VA_ARGS__                                                             \
      }                                                                         \
    }                                                                           \
  }

/* y is (planes, oD, oH, oW), x is (planes, iD, iH, iW): the max of each
 * window's taps inside x. */
#define MAXPOOL_KERNEL(name, T, LOWEST)                                                      \
  static void name(T *y, const T *x, const pool_geom_t *g) {                                  \
    const int64_t iD = g->in[0], iH = g->in[1], iW = g->in[2];                               \
    const int64_t plane_in = iD * iH * iW, plane_out = g->out[0] * g->out[1] * g->out[2];     \
    const int64_t d0 = g->d[0], d1 = g->d[1], d2 = g->d[2];                                  \
    for (int64_t p = 0; p < g->planes; p++) {                                                \
      const T *xp = x + p * plane_in;                                                        \
      T *yp = y + p * plane_out;                                                             \
      POOL_WINDOWS(g, {                                                                      \
        T m = LOWEST;                                                                        \
        for (int64_t t0 = l0; t0 < h0; t0++)                                                 \
          for (int64_t t1 = l1; t1 < h1; t1++) {                                             \
            int64_t row = ((s0 + t0 * d0) * iH + (s1 + t1 * d1)) * iW + s2;                  \
            for (int64_t t2 = l2; t2 < h2; t2++) {                                           \
              T v = xp[row + t2 * d2];                                                       \
              if (v > m || v != v) m = v; /* NaN propagates */                               \
            }                                                                                \
          }                                                                                  \
        yp[o] = m;                                                                           \
      })                                                                                     \
    }                                                                                        \
  }

MAXPOOL_KERNEL(maxpool_f32, float, -INFINITY)
MAXPOOL_KERNEL(maxpool_u8, uint8_t, 0)
MAXPOOL_KERNEL(maxpool_i8, int8_t, INT8_MIN)

static oc_status_t maxpool_run(const oc_op_call_t *c) {
  pool_geom_t g;
  OC_RETURN_IF_ERROR(pool_geom(c, POOL_MAX, &g));
  void *y = c->out[0]->data;
  const void *x = c->in[0]->data;
  switch (c->in[0]->dtype) {
    case OC_DTYPE_FLOAT32: maxpool_f32(y, x, &g); break;
    case OC_DTYPE_UINT8: maxpool_u8(y, x, &g); break;
    case OC_DTYPE_INT8: maxpool_i8(y, x, &g); break;
    default: return oc_make_status(OC_STATUS_INTERNAL, "MaxPool: unexpected dtype");
  }
  return OC_OK;
}

/* y is (planes, oD, oH, oW), x is (planes, iD, iH, iW): the sum of each
 * window's taps inside x divided by the taps counted (see the header). */
static void avgpool_f32(float *y, const float *x, const pool_geom_t *g) {
  const int64_t iD = g->in[0], iH = g->in[1], iW = g->in[2];
  const int64_t plane_in = iD * iH * iW, plane_out = g->out[0] * g->out[1] * g->out[2];
  const int64_t d0 = g->d[0], d1 = g->d[1], d2 = g->d[2];
  const int64_t pD = iD + g->pb[0] + g->pe[0], pH = iH + g->pb[1] + g->pe[1];
  const int64_t pW = iW + g->pb[2] + g->pe[2];
  for (int64_t p = 0; p < g->planes; p++) {
    const float *xp = x + p * plane_in;
    float *yp = y + p * plane_out;
    POOL_WINDOWS(g, {
      double sum = 0.0;
      for (int64_t t0 = l0; t0 < h0; t0++)
        for (int64_t t1 = l1; t1 < h1; t1++) {
          int64_t row = ((s0 + t0 * d0) * iH + (s1 + t1 * d1)) * iW + s2;
          for (int64_t t2 = l2; t2 < h2; t2++) sum += xp[row + t2 * d2];
        }
      int64_t count;
      if (g->count_include_pad) {
        int64_t a0, b0, a1, b1, a2, b2;
        tap_range(s0 + g->pb[0], d0, g->k[0], pD, &a0, &b0);
        tap_range(s1 + g->pb[1], d1, g->k[1], pH, &a1, &b1);
        tap_range(s2 + g->pb[2], d2, g->k[2], pW, &a2, &b2);
        count = (b0 - a0) * (b1 - a1) * (b2 - a2);
      } else {
        count = (h0 - l0) * (h1 - l1) * (h2 - l2);
      }
      yp[o] = count ? (float)(sum / (double)count) : NAN;
    })
  }
}

static oc_status_t avgpool_run(const oc_op_call_t *c) {
  pool_geom_t g;
  OC_RETURN_IF_ERROR(pool_geom(c, POOL_AVG, &g));
  avgpool_f32(c->out[0]->data, c->in[0]->data, &g);
  return OC_OK;
}

/* y is (planes, oD, oH, oW), x is (planes, iD, iH, iW): the p-norm of each
 * window's taps inside x. */
static void lppool_f32(float *y, const float *x, const pool_geom_t *g, double p) {
  const int64_t iD = g->in[0], iH = g->in[1], iW = g->in[2];
  const int64_t plane_in = iD * iH * iW, plane_out = g->out[0] * g->out[1] * g->out[2];
  const int64_t d0 = g->d[0], d1 = g->d[1], d2 = g->d[2];
  for (int64_t pl = 0; pl < g->planes; pl++) {
    const float *xp = x + pl * plane_in;
    float *yp = y + pl * plane_out;
    POOL_WINDOWS(g, {
      double sum = 0.0;
      for (int64_t t0 = l0; t0 < h0; t0++)
        for (int64_t t1 = l1; t1 < h1; t1++) {
          int64_t row = ((s0 + t0 * d0) * iH + (s1 + t1 * d1)) * iW + s2;
          for (int64_t t2 = l2; t2 < h2; t2++) {
            double v = fabs((double)xp[row + t2 * d2]);
            sum += p == 1.0 ? v : p == 2.0 ? v * v : pow(v, p);
          }
        }
      yp[o] = (float)(p == 1.0 ? sum : p == 2.0 ? sqrt(sum) : pow(sum, 1.0 / p));
    })
  }
}

static oc_status_t lppool_run(const oc_op_call_t *c) {
  pool_geom_t g;
  OC_RETURN_IF_ERROR(pool_geom(c, POOL_LP, &g));
  lppool_f32(c->out[0]->data, c->in[0]->data, &g, (double)c->floats[0]);
  return OC_OK;
}

const oc_op_def_t oc_op_maxpool = {"MaxPool", 1, 1, 1, 1, maxpool_infer, maxpool_run};
const oc_op_def_t oc_op_avgpool = {"AveragePool", 1, 1, 1, 1, avgpool_infer, avgpool_run};
const oc_op_def_t oc_op_lppool = {"LpPool", 1, 1, 1, 1, lppool_infer, lppool_run};

/* --- global pools --------------------------------------------------------- */

static oc_status_t global_pool_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *x = c->in[0];
  char buf[160];
  OC_RETURN_IF_ERROR(oc_expect_dtype(x, OC_DTYPE_FLOAT32, "input X"));
  if (x->rank < 2)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "input X is %s; global pooling takes (N, C, D1..Dn)",
                          oc_type_str(x, buf, sizeof buf));
  if (c->n_ints != 0 || c->n_floats != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "global pooling takes no attributes");
  int64_t dims[OC_MAX_RANK];
  for (int i = 0; i < x->rank; i++) dims[i] = i < 2 ? x->dims[i] : 1;
  oc_tensor_set_type(c->out[0], x->dtype, x->rank, dims);
  *ws = 0;
  return OC_OK;
}

/* y is (planes), x is (planes, S): y[p] = mean or max of x[p, :]. */
static oc_status_t global_pool_run(const oc_op_call_t *c, int avg) {
  const oc_tensor_t *x = c->in[0];
  const float *xp = x->data;
  float *y = c->out[0]->data;
  int64_t planes = x->dims[0] * x->dims[1], S = 1;
  for (int i = 2; i < x->rank; i++) S *= x->dims[i];
  for (int64_t p = 0; p < planes; p++, xp += S) {
    if (avg) {
      double sum = 0.0;
      for (int64_t i = 0; i < S; i++) sum += xp[i];
      y[p] = S ? (float)(sum / (double)S) : NAN;
    } else {
      float m = -INFINITY;
      for (int64_t i = 0; i < S; i++)
        if (xp[i] > m || xp[i] != xp[i]) m = xp[i];
      y[p] = m;
    }
  }
  return OC_OK;
}

static oc_status_t global_avgpool_run(const oc_op_call_t *c) { return global_pool_run(c, 1); }
static oc_status_t global_maxpool_run(const oc_op_call_t *c) { return global_pool_run(c, 0); }

const oc_op_def_t oc_op_global_avgpool = {"GlobalAveragePool", 1, 1, 1, 1, global_pool_infer,
                                          global_avgpool_run};
const oc_op_def_t oc_op_global_maxpool = {"GlobalMaxPool", 1, 1, 1, 1, global_pool_infer,
                                          global_maxpool_run};
