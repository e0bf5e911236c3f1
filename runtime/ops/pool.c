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
#include "parallel.h"
#include "simd.h"

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
static inline void tap_range(int64_t start, int64_t d, int64_t k, int64_t n, int64_t *lo,
                             int64_t *hi) {
  if (start >= 0 && start + (k - 1) * d < n) { /* the window is inside: no division */
    *lo = 0;
    *hi = k;
    return;
  }
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

/* 2-D float32 max pooling without dilation (the common case), one plane at a
 * time: per output row the window's rows are fixed, and the columns whose
 * window lies inside the row need no bounds checks. |dx| NULL: the forward
 * (y = max); else the gradient: dx[argmax] += dy, first maximum in scan
 * order as in maxpool_bwd_planes. */
static int maxpool2d_fast(const pool_geom_t *g) {
  return g->in[0] == 1 && g->k[0] == 1 && g->d[1] == 1 && g->d[2] == 1;
}

/* maxpool2d_forward's buffer (floats): the column maxima of a row (at most
 * 2048, then 32 of -inf), then two phase buffers. */
enum { MP_PAD = 16, MP_COLMAX = 2048 + 64, MP_PHASE = 2048 + 96, MP_BUF = MP_COLMAX + 2 * MP_PHASE };

/* The forward of maxpool2d_planes, without the argmax: per output row, the
 * column maxima over the window's rows (a vector loop), then the row maxima
 * over each window's columns. Any NaN in a window gives NaN. */
OC_SIMD_CLONES static void maxpool2d_forward(float *y, const float *x, const pool_geom_t *g,
                                             float *colmax) {
  const int64_t iH = g->in[1], iW = g->in[2], oH = g->out[1], oW = g->out[2];
  const int64_t kh = g->k[1], kw = g->k[2], sh = g->s[1], sw = g->s[2];
  const int64_t pt = g->pb[1], pl = g->pb[2];
  for (int64_t p = 0; p < g->planes; p++) {
    const float *xp = x + p * iH * iW;
    for (int64_t oh = 0; oh < oH; oh++) {
      int64_t r0 = oh * sh - pt, l1, h1;
      tap_range(r0, 1, kh, iH, &l1, &h1);
      float *ym = y + (p * oH + oh) * oW;
      if (h1 <= l1) {
        for (int64_t ow = 0; ow < oW; ow++) ym[ow] = -INFINITY;
        continue;
      }
      /* colmax[i] = max over the rows of x[., i]; NaN once any is NaN */
      int64_t i = 0;
      const float *first = xp + (r0 + l1) * iW;
      for (; i + OC_V16 <= iW; i += OC_V16) {
        /* NaN lanes kept as a mask and ORed in at the end (all ones is a
         * NaN): GCC 12 turns an OR of two float comparisons feeding a
         * select into scalar code in the target clones */
        oc_v16f m = oc_v16_load(first + i);
        oc_v16i nan = m != m;
        for (int64_t t1 = l1 + 1; t1 < h1; t1++) {
          oc_v16f v = oc_v16_load(xp + (r0 + t1) * iW + i);
          m = oc_v16_select(v > m, v, m);
          nan |= v != v;
        }
        oc_v16_store(colmax + i, (oc_v16f)(nan | (oc_v16i)m));
      }
      for (; i < iW; i++) {
        float m = first[i];
        for (int64_t t1 = l1 + 1; t1 < h1; t1++) {
          float v = xp[(r0 + t1) * iW + i];
          m = (v > m || v != v) ? v : m;
        }
        colmax[i] = m;
      }
      /* Row maxima: y[ow] = max over t < kw of colmax[sw*ow - pl + t] inside
       * the row. With stride 1 or 2 the phases of colmax (stride 2: its even
       * and odd columns) go into buffers with -inf around them, ph_f[MP_PAD
       * + i] = colmax[i*sw + f], so that each tap of 16 outputs is one
       * vector at a fixed offset; other strides take the scalar loop. */
      int64_t qmin = (-pl - (sw - 1)) / sw, qmax = (kw - 1 - pl) / sw; /* floor(u / sw) */
      if ((sw == 1 || sw == 2) && kw <= 64 && -qmin <= MP_PAD &&
          MP_PAD + (oW + 15) / 16 * 16 + qmax + 16 <= MP_PHASE) {
        float *ph0 = colmax + MP_COLMAX, *ph1 = ph0 + MP_PHASE;
        const oc_v16f ninf = oc_v16_set(-INFINITY);
        oc_v16_store(colmax + iW, ninf);
        oc_v16_store(colmax + iW + 16, ninf);
        int64_t need = MP_PAD + (oW + 15) / 16 * 16 + qmax + 16;
        for (int64_t e = 0; e < need; e += 16) {
          oc_v16_store(ph0 + e, ninf);
          if (sw == 2) oc_v16_store(ph1 + e, ninf);
        }
        if (sw == 2) {
          for (int64_t e = 0; 2 * e < iW; e += 16) {
            oc_v16f lo = oc_v16_load(colmax + 2 * e), hi = oc_v16_load(colmax + 2 * e + 16);
#if defined(__clang__)
            oc_v16_store(ph0 + MP_PAD + e, __builtin_shufflevector(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14,
                                                                   16, 18, 20, 22, 24, 26, 28, 30));
            oc_v16_store(ph1 + MP_PAD + e, __builtin_shufflevector(lo, hi, 1, 3, 5, 7, 9, 11, 13, 15,
                                                                   17, 19, 21, 23, 25, 27, 29, 31));
#else
            const oc_v16i even = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
            const oc_v16i odd = {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31};
            oc_v16_store(ph0 + MP_PAD + e, __builtin_shuffle(lo, hi, even));
            oc_v16_store(ph1 + MP_PAD + e, __builtin_shuffle(lo, hi, odd));
#endif
          }
        } else {
          for (int64_t e = 0; e < iW; e += 16) oc_v16_store(ph0 + MP_PAD + e, oc_v16_load(colmax + e));
        }
        const float *tap[64];
        for (int64_t t = 0; t < kw; t++) {
          int64_t u = t - pl, q = u >= 0 ? u / sw : -((-u + sw - 1) / sw), f = u - q * sw;
          tap[t] = (f ? ph1 : ph0) + MP_PAD + q;
        }
        for (int64_t ow = 0; ow < oW; ow += 16) {
          oc_v16f m = ninf;
          oc_v16i nan = {0};
          for (int64_t t = 0; t < kw; t++) {
            oc_v16f v = oc_v16_load(tap[t] + ow);
            m = oc_v16_select(v > m, v, m);
            nan |= v != v;
          }
          m = (oc_v16f)(nan | (oc_v16i)m);
          if (ow + 16 <= oW)
            oc_v16_store(ym + ow, m);
          else
            oc_v16_store_n(ym + ow, m, oW - ow);
        }
        continue;
      }
      for (int64_t ow = 0; ow < oW; ow++) { /* other strides */
        int64_t c0 = ow * sw - pl, l2, h2;
        tap_range(c0, 1, kw, iW, &l2, &h2);
        float m = -INFINITY;
        int nan = 0;
        for (int64_t t2 = l2; t2 < h2; t2++) {
          float v = colmax[c0 + t2];
          m = v > m ? v : m;
          nan |= v != v;
        }
        ym[ow] = nan ? NAN : m;
      }
    }
  }
}

static void maxpool2d_planes(float *y, float *dx, const float *x, const float *dy,
                             const pool_geom_t *g) {
  const int64_t iH = g->in[1], iW = g->in[2], oH = g->out[1], oW = g->out[2];
  const int64_t kh = g->k[1], kw = g->k[2], sh = g->s[1], sw = g->s[2];
  const int64_t pt = g->pb[1], pl = g->pb[2];
  /* columns [ow_lo, ow_hi) have their whole window inside the row */
  int64_t ow_lo = (pl + sw - 1) / sw, ow_hi = iW + pl - kw < 0 ? 0 : (iW + pl - kw) / sw + 1;
  if (ow_hi > oW) ow_hi = oW;
  if (ow_lo > ow_hi) ow_lo = ow_hi;
  for (int64_t p = 0; p < g->planes; p++) {
    const float *xp = x + p * iH * iW;
    for (int64_t oh = 0; oh < oH; oh++) {
      int64_t r0 = oh * sh - pt, l1, h1;
      tap_range(r0, 1, kh, iH, &l1, &h1);
      for (int64_t ow = 0; ow < oW; ow++) {
        int64_t c0 = ow * sw - pl, l2 = 0, h2 = kw;
        if (ow < ow_lo || ow >= ow_hi) tap_range(c0, 1, kw, iW, &l2, &h2);
        float m = -INFINITY;
        int64_t best = -1;
        for (int64_t t1 = l1; t1 < h1; t1++) {
          int64_t at = (r0 + t1) * iW + c0 + l2; /* inside the plane */
          const float *r = xp + at;
          for (int64_t t2 = 0; t2 < h2 - l2; t2++) {
            float v = r[t2];
            int take = (v > m) | (v != v); /* branch-free: random data mispredicts */
            m = take ? v : m;
            best = take ? at + t2 : best;
          }
        }
        int64_t o = (p * oH + oh) * oW + ow;
        if (!dx) {
          y[o] = m;
        } else if (best >= 0) {
          dx[p * iH * iW + best] += dy[o];
        } else if (h1 > l1 && h2 > l2) { /* all -inf: the first tap, as the generic kernel */
          dx[p * iH * iW + (r0 + l1) * iW + c0 + l2] += dy[o];
        }
      }
    }
  }
}

/* The windowed pools and their gradients split the planes (N * C) over the
 * context's threads: every plane is independent. */
enum { PJ_MAX_F32, PJ_MAX_U8, PJ_MAX_I8, PJ_AVG, PJ_LP, PJ_MAX_BWD, PJ_AVG_BWD };

typedef struct pool_job_s {
  int kind;
  const pool_geom_t *g;
  void *out;
  const void *in0, *in1;
  double p;
} pool_job_t;

static void maxpool_bwd_planes(float *dx, const float *x, const float *dy, const pool_geom_t *g);
static void avgpool_bwd_planes(float *dx, const float *dy, const pool_geom_t *g);
static void avgpool_f32(float *y, const float *x, const pool_geom_t *g);
static void lppool_f32(float *y, const float *x, const pool_geom_t *g, double p);

static void pool_part(void *arg, int64_t p0, int64_t p1, int thread) {
  const pool_job_t *j = arg;
  pool_geom_t g = *j->g;
  g.planes = p1 - p0;
  const int64_t pin = g.in[0] * g.in[1] * g.in[2], pout = g.out[0] * g.out[1] * g.out[2];
  const float *fin0 = j->in0, *fin1 = j->in1;
  float *fout = j->out;
  switch (j->kind) {
    case PJ_MAX_F32:
      if (maxpool2d_fast(&g) && g.in[2] <= 2048) {
        float colmax[MP_BUF];
        maxpool2d_forward(fout + p0 * pout, fin0 + p0 * pin, &g, colmax);
      } else if (maxpool2d_fast(&g)) {
        maxpool2d_planes(fout + p0 * pout, NULL, fin0 + p0 * pin, NULL, &g);
      } else {
        maxpool_f32(fout + p0 * pout, fin0 + p0 * pin, &g);
      }
      break;
    case PJ_MAX_U8:
      maxpool_u8((uint8_t *)j->out + p0 * pout, (const uint8_t *)j->in0 + p0 * pin, &g);
      break;
    case PJ_MAX_I8:
      maxpool_i8((int8_t *)j->out + p0 * pout, (const int8_t *)j->in0 + p0 * pin, &g);
      break;
    case PJ_AVG: avgpool_f32(fout + p0 * pout, fin0 + p0 * pin, &g); break;
    case PJ_LP: lppool_f32(fout + p0 * pout, fin0 + p0 * pin, &g, j->p); break;
    case PJ_MAX_BWD:
      if (maxpool2d_fast(&g)) {
        memset(fout + p0 * pin, 0, (size_t)(g.planes * pin) * sizeof(float));
        maxpool2d_planes(NULL, fout + p0 * pin, fin0 + p0 * pin, fin1 + p0 * pout, &g);
      } else {
        maxpool_bwd_planes(fout + p0 * pin, fin0 + p0 * pin, fin1 + p0 * pout, &g);
      }
      break;
    case PJ_AVG_BWD: avgpool_bwd_planes(fout + p0 * pin, fin0 + p0 * pout, &g); break;
  }
  (void)thread;
}

static void pool_parallel(const oc_op_call_t *c, int kind, const pool_geom_t *g, void *out,
                          const void *in0, const void *in1, double p) {
  pool_job_t j = {kind, g, out, in0, in1, p};
  int64_t per_plane = g->out[0] * g->out[1] * g->out[2] * g->k[0] * g->k[1] * g->k[2] +
                      g->in[0] * g->in[1] * g->in[2];
  oc_parallel_for(c->pool, g->planes, oc_grain(per_plane), pool_part, &j);
}

static oc_status_t maxpool_run(const oc_op_call_t *c) {
  pool_geom_t g;
  OC_RETURN_IF_ERROR(pool_geom(c, POOL_MAX, &g));
  void *y = c->out[0]->data;
  const void *x = c->in[0]->data;
  switch (c->in[0]->dtype) {
    case OC_DTYPE_FLOAT32: pool_parallel(c, PJ_MAX_F32, &g, y, x, NULL, 0); break;
    case OC_DTYPE_UINT8: pool_parallel(c, PJ_MAX_U8, &g, y, x, NULL, 0); break;
    case OC_DTYPE_INT8: pool_parallel(c, PJ_MAX_I8, &g, y, x, NULL, 0); break;
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
  pool_parallel(c, PJ_AVG, &g, c->out[0]->data, c->in[0]->data, NULL, 0);
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
  pool_parallel(c, PJ_LP, &g, c->out[0]->data, c->in[0]->data, NULL, (double)c->floats[0]);
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

/* --- backward kernels for the windowed pools ------------------------------- */

/*
 * MaxPoolBwd: the gradient of MaxPool with respect to x.
 *   inputs:  x (float32, (N, C, D1..Dn), n = 1..3), dy (float32, MaxPool's
 *            output type)
 *   outputs: dx (float32, x's type)
 *   ints:    MaxPool's: [kernel[n], strides[n], pads[2n], dilations[n], ceil_mode]
 *   Each window's dy goes to the window's first maximum in scan order (a
 *   later tap wins only when strictly greater, or NaN: PyTorch's rule, and
 *   the forward's); padding is never selected; overlapping windows add up.
 *   The argmax is recomputed from x.
 * AvgPoolBwd: the gradient of AveragePool with respect to x.
 *   inputs:  dy (float32, AveragePool's output type)
 *   outputs: dx (float32, (N, C, D1..Dn))
 *   ints:    AveragePool's [kernel[n], strides[n], pads[2n], dilations[n],
 *            ceil_mode, count_include_pad] followed by D1..Dn (x's spatial
 *            dims, which the output size alone does not determine)
 *   Each window spreads dy / count (the forward's divisor) over its taps
 *   inside x.
 */

/* Requires |dy| to be the forward output for |x| (planes, spatial out). */
static oc_status_t pool_check_dy(const oc_tensor_t *x, const oc_tensor_t *dy,
                                 const pool_geom_t *g) {
  char b1[160], b2[160];
  OC_RETURN_IF_ERROR(oc_expect_dtype(dy, OC_DTYPE_FLOAT32, "input dY"));
  int n = x->rank - 2;
  int ok = dy->rank == x->rank && dy->dims[0] == x->dims[0] && dy->dims[1] == x->dims[1];
  for (int i = 0; i < n && ok; i++) ok = dy->dims[2 + i] == g->out[3 - n + i];
  if (!ok) {
    oc_tensor_t yt = *x;
    yt.dtype = OC_DTYPE_FLOAT32;
    for (int i = 0; i < n; i++) yt.dims[2 + i] = g->out[3 - n + i];
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input dY is %s; the forward pool gives %s",
                          oc_type_str(dy, b1, sizeof b1), oc_type_str(&yt, b2, sizeof b2));
  }
  return OC_OK;
}

static oc_status_t maxpool_bwd_infer(const oc_op_call_t *c, size_t *ws) {
  pool_geom_t g;
  *ws = 0;
  OC_RETURN_IF_ERROR(oc_expect_dtype(c->in[0], OC_DTYPE_FLOAT32, "input X"));
  OC_RETURN_IF_ERROR(pool_geom(c, POOL_MAX, &g));
  OC_RETURN_IF_ERROR(pool_check_dy(c->in[0], c->in[1], &g));
  oc_tensor_set_type(c->out[0], OC_DTYPE_FLOAT32, c->in[0]->rank, c->in[0]->dims);
  return OC_OK;
}

/* dx is (planes, iD, iH, iW), x the same, dy is (planes, oD, oH, oW):
 * dx[argmax of window o] += dy[o]. */
static void maxpool_bwd_planes(float *dx, const float *x, const float *dy, const pool_geom_t *gp) {
  const pool_geom_t g = *gp;
  const int64_t iD = g.in[0], iH = g.in[1], iW = g.in[2];
  const int64_t plane_in = iD * iH * iW, plane_out = g.out[0] * g.out[1] * g.out[2];
  const int64_t d0 = g.d[0], d1 = g.d[1], d2 = g.d[2];
  memset(dx, 0, (size_t)(g.planes * plane_in) * sizeof(float));
  for (int64_t p = 0; p < g.planes; p++) {
    const float *xp = x + p * plane_in, *dyp = dy + p * plane_out;
    float *dxp = dx + p * plane_in;
    POOL_WINDOWS(&g, {
      if (h0 > l0 && h1 > l1 && h2 > l2) {
        int64_t best = ((s0 + l0 * d0) * iH + (s1 + l1 * d1)) * iW + s2 + l2 * d2;
        float m = -INFINITY;
        for (int64_t t0 = l0; t0 < h0; t0++)
          for (int64_t t1 = l1; t1 < h1; t1++) {
            int64_t row = ((s0 + t0 * d0) * iH + (s1 + t1 * d1)) * iW + s2;
            for (int64_t t2 = l2; t2 < h2; t2++) {
              float v = xp[row + t2 * d2];
              if (v > m || v != v) {
                m = v;
                best = row + t2 * d2;
              }
            }
          }
        dxp[best] += dyp[o];
      }
    })
  }
}

static oc_status_t maxpool_bwd_run(const oc_op_call_t *c) {
  pool_geom_t g;
  OC_RETURN_IF_ERROR(pool_geom(c, POOL_MAX, &g));
  if (oc_tensor_numel(c->out[0]) == 0) return OC_OK;
  pool_parallel(c, PJ_MAX_BWD, &g, c->out[0]->data, c->in[0]->data, c->in[1]->data, 0);
  return OC_OK;
}

/* Fills |g| for AvgPoolBwd and the type of dx in |xt|. */
static oc_status_t avgpool_bwd_geom(const oc_op_call_t *c, oc_tensor_t *xt, pool_geom_t *g) {
  const oc_tensor_t *dy = c->in[0];
  char buf[160];
  OC_RETURN_IF_ERROR(oc_expect_dtype(dy, OC_DTYPE_FLOAT32, "input dY"));
  if (dy->rank < 3 || dy->rank > 5)
    return oc_make_status(OC_STATUS_UNSUPPORTED,
                          "input dY is %s; pooling takes (N, C, D1..Dn) with 1 to 3 spatial axes",
                          oc_type_str(dy, buf, sizeof buf));
  int n = dy->rank - 2;
  if (c->n_ints != 6 * n + 2 || c->n_floats != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "AvgPoolBwd with %d spatial axes takes %d ints and no floats, got %d "
                          "and %d",
                          n, 6 * n + 2, c->n_ints, c->n_floats);
  *xt = *dy;
  xt->data = NULL;
  const int64_t *in_dims = c->ints + 5 * n + 2;
  for (int i = 0; i < n; i++) {
    if (in_dims[i] < 0 || in_dims[i] > OC_MAX_DIM)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input spatial dim %lld is out of range",
                            (long long)in_dims[i]);
    xt->dims[2 + i] = in_dims[i];
  }
  OC_RETURN_IF_ERROR(oc_check_type(xt, "output dX"));
  oc_tensor_t *ins[1] = {xt};
  oc_op_call_t f = {.ints = c->ints, .n_ints = 5 * n + 2, .n_in = 1, .in = ins};
  OC_RETURN_IF_ERROR(pool_geom(&f, POOL_AVG, g));
  return pool_check_dy(xt, dy, g);
}

static oc_status_t avgpool_bwd_infer(const oc_op_call_t *c, size_t *ws) {
  pool_geom_t g;
  oc_tensor_t xt;
  *ws = 0;
  OC_RETURN_IF_ERROR(avgpool_bwd_geom(c, &xt, &g));
  oc_tensor_set_type(c->out[0], OC_DTYPE_FLOAT32, xt.rank, xt.dims);
  return OC_OK;
}

/* dx is (planes, iD, iH, iW), dy is (planes, oD, oH, oW): every tap of
 * window o inside x gets dy[o] / count (count as in the forward). */
static void avgpool_bwd_planes(float *dx, const float *dy, const pool_geom_t *gp) {
  const pool_geom_t g = *gp;
  const int64_t iD = g.in[0], iH = g.in[1], iW = g.in[2];
  const int64_t plane_in = iD * iH * iW, plane_out = g.out[0] * g.out[1] * g.out[2];
  const int64_t d0 = g.d[0], d1 = g.d[1], d2 = g.d[2];
  const int64_t pD = iD + g.pb[0] + g.pe[0], pH = iH + g.pb[1] + g.pe[1];
  const int64_t pW = iW + g.pb[2] + g.pe[2];
  memset(dx, 0, (size_t)(g.planes * plane_in) * sizeof(float));
  for (int64_t p = 0; p < g.planes; p++) {
    const float *dyp = dy + p * plane_out;
    float *dxp = dx + p * plane_in;
    POOL_WINDOWS(&g, {
      int64_t count;
      if (g.count_include_pad) {
        int64_t a0, b0, a1, b1, a2, b2;
        tap_range(s0 + g.pb[0], d0, g.k[0], pD, &a0, &b0);
        tap_range(s1 + g.pb[1], d1, g.k[1], pH, &a1, &b1);
        tap_range(s2 + g.pb[2], d2, g.k[2], pW, &a2, &b2);
        count = (b0 - a0) * (b1 - a1) * (b2 - a2);
      } else {
        count = (h0 - l0) * (h1 - l1) * (h2 - l2);
      }
      if (count > 0) {
        float gd = dyp[o] / (float)count;
        for (int64_t t0 = l0; t0 < h0; t0++)
          for (int64_t t1 = l1; t1 < h1; t1++) {
            int64_t row = ((s0 + t0 * d0) * iH + (s1 + t1 * d1)) * iW + s2;
            for (int64_t t2 = l2; t2 < h2; t2++) dxp[row + t2 * d2] += gd;
          }
      }
    })
  }
}

static oc_status_t avgpool_bwd_run(const oc_op_call_t *c) {
  pool_geom_t g;
  oc_tensor_t xt;
  OC_RETURN_IF_ERROR(avgpool_bwd_geom(c, &xt, &g));
  if (oc_tensor_numel(c->out[0]) == 0) return OC_OK;
  pool_parallel(c, PJ_AVG_BWD, &g, c->out[0]->data, c->in[0]->data, NULL, 0);
  return OC_OK;
}

const oc_op_def_t oc_op_maxpool_bwd = {"MaxPoolBwd", 2, 2, 1, 1, maxpool_bwd_infer,
                                       maxpool_bwd_run};
const oc_op_def_t oc_op_avgpool_bwd = {"AvgPoolBwd", 1, 1, 1, 1, avgpool_bwd_infer,
                                       avgpool_bwd_run};

/* --- backward kernels for the global pools ---------------------------------- */

/*
 * GlobalAvgPoolBwd: the gradient of GlobalAveragePool with respect to x.
 *   inputs:  dy (float32, (N, C, 1..1))
 *   outputs: dx (float32, (N, C, D1..Dn))
 *   ints:    [D1..Dn] (n = rank(dy) - 2 >= 0; x's spatial dims)
 *   dx[p, :] = dy[p] / (D1 * .. * Dn).
 * GlobalMaxPoolBwd: the gradient of GlobalMaxPool with respect to x.
 *   inputs:  x (float32, (N, C, D1..Dn)), dy (float32, (N, C, 1..1))
 *   outputs: dx (float32, x's type)
 *   dy[p] goes to the first maximum of x[p, :] (NaN wins, as in the forward);
 *   every other element gets 0.
 */

/* Requires |dy| to be (N, C, 1..1) for |x|. */
static oc_status_t global_check_dy(const oc_tensor_t *x, const oc_tensor_t *dy) {
  char b1[160], b2[160];
  OC_RETURN_IF_ERROR(oc_expect_dtype(dy, OC_DTYPE_FLOAT32, "input dY"));
  int ok = dy->rank == x->rank && x->rank >= 2 && dy->dims[0] == x->dims[0] &&
           dy->dims[1] == x->dims[1];
  for (int i = 2; i < x->rank && ok; i++) ok = dy->dims[i] == 1;
  if (!ok)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "input dY is %s; the forward global pool of %s gives (N, C, 1..1)",
                          oc_type_str(dy, b1, sizeof b1), oc_type_str(x, b2, sizeof b2));
  return OC_OK;
}

static oc_status_t global_avgpool_bwd_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *dy = c->in[0];
  char buf[160];
  *ws = 0;
  OC_RETURN_IF_ERROR(oc_expect_dtype(dy, OC_DTYPE_FLOAT32, "input dY"));
  if (dy->rank < 2)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input dY is %s; expected (N, C, 1..1)",
                          oc_type_str(dy, buf, sizeof buf));
  if (c->n_ints != dy->rank - 2 || c->n_floats != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "GlobalAvgPoolBwd takes %d ints (x's spatial dims) and no floats, got "
                          "%d and %d",
                          dy->rank - 2, c->n_ints, c->n_floats);
  oc_tensor_t xt = *dy;
  xt.data = NULL;
  for (int i = 0; i < c->n_ints; i++) {
    if (c->ints[i] < 0 || c->ints[i] > OC_MAX_DIM)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "spatial dim %lld is out of range",
                            (long long)c->ints[i]);
    xt.dims[2 + i] = c->ints[i];
  }
  OC_RETURN_IF_ERROR(oc_check_type(&xt, "output dX"));
  OC_RETURN_IF_ERROR(global_check_dy(&xt, dy));
  oc_tensor_set_type(c->out[0], OC_DTYPE_FLOAT32, xt.rank, xt.dims);
  return OC_OK;
}

/* dx is (planes, S), dy is (planes): dx[p, :] = dy[p] / S. */
static oc_status_t global_avgpool_bwd_run(const oc_op_call_t *c) {
  const oc_tensor_t *dxt = c->out[0];
  const float *dy = c->in[0]->data;
  float *dx = dxt->data;
  int64_t planes = dxt->dims[0] * dxt->dims[1], S = 1;
  for (int i = 2; i < dxt->rank; i++) S *= dxt->dims[i];
  if (S == 0) return OC_OK;
  for (int64_t p = 0; p < planes; p++, dx += S) {
    float v = dy[p] / (float)S;
    for (int64_t i = 0; i < S; i++) dx[i] = v;
  }
  return OC_OK;
}

static oc_status_t global_maxpool_bwd_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *x = c->in[0];
  char buf[160];
  *ws = 0;
  OC_RETURN_IF_ERROR(oc_expect_dtype(x, OC_DTYPE_FLOAT32, "input X"));
  if (x->rank < 2)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "input X is %s; global pooling takes (N, C, D1..Dn)",
                          oc_type_str(x, buf, sizeof buf));
  if (c->n_ints != 0 || c->n_floats != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "GlobalMaxPoolBwd takes no attributes");
  OC_RETURN_IF_ERROR(global_check_dy(x, c->in[1]));
  oc_tensor_set_type(c->out[0], OC_DTYPE_FLOAT32, x->rank, x->dims);
  return OC_OK;
}

/* dx and x are (planes, S), dy is (planes): dx[p, argmax x[p, :]] = dy[p]. */
static oc_status_t global_maxpool_bwd_run(const oc_op_call_t *c) {
  const oc_tensor_t *x = c->in[0];
  const float *xp = x->data, *dy = c->in[1]->data;
  float *dx = c->out[0]->data;
  int64_t planes = x->dims[0] * x->dims[1], S = 1;
  for (int i = 2; i < x->rank; i++) S *= x->dims[i];
  if (S == 0 || planes == 0) return OC_OK;
  memset(dx, 0, (size_t)(planes * S) * sizeof(float));
  for (int64_t p = 0; p < planes; p++, xp += S, dx += S) {
    float m = -INFINITY;
    int64_t best = 0;
    for (int64_t i = 0; i < S; i++)
      if (xp[i] > m || xp[i] != xp[i]) {
        m = xp[i];
        best = i;
      }
    dx[best] = dy[p];
  }
  return OC_OK;
}

const oc_op_def_t oc_op_global_avgpool_bwd = {"GlobalAvgPoolBwd", 1, 1, 1, 1,
                                              global_avgpool_bwd_infer, global_avgpool_bwd_run};
const oc_op_def_t oc_op_global_maxpool_bwd = {"GlobalMaxPoolBwd", 2, 2, 1, 1,
                                              global_maxpool_bwd_infer, global_maxpool_bwd_run};

/* --- backward kernel for LpPool ---------------------------------------------- */

/*
 * LpPoolBwd: the gradient of LpPool with respect to x.
 *   inputs:  x (float32, (N, C, D1..Dn), n = 1..3), dy (float32, LpPool's
 *            output type)
 *   outputs: dx (float32, x's type)
 *   ints:    LpPool's [kernel[n], strides[n], pads[2n], dilations[n], ceil_mode]
 *   floats:  LpPool's [p]
 * With y = (sum over the window's taps of |x|^p)^(1/p) (recomputed from x
 * in double), every tap of window o gets
 *   dy[o] * sign(x) * |x|^(p-1) / y^(p-1)
 * (p = 1: dy * sign(x); p = 2: dy * x / y); overlapping windows add up. A
 * window with y = 0, and a tap with x = 0, contribute 0 (the subgradient
 * PyTorch's p = 1 takes; no NaN for p >= 1 at 0).
 */
static oc_status_t lppool_bwd_infer(const oc_op_call_t *c, size_t *ws) {
  pool_geom_t g;
  *ws = 0;
  OC_RETURN_IF_ERROR(pool_geom(c, POOL_LP, &g));
  OC_RETURN_IF_ERROR(pool_check_dy(c->in[0], c->in[1], &g));
  oc_tensor_set_type(c->out[0], OC_DTYPE_FLOAT32, c->in[0]->rank, c->in[0]->dims);
  return OC_OK;
}

/* sign(v) * |v|^(p - 1) for v != 0, in double. */
static double lp_dpow(double v, double p) {
  if (v == 0.0) return 0.0;
  double a = fabs(v), m = p == 1.0 ? 1.0 : p == 2.0 ? a : pow(a, p - 1.0);
  return v < 0.0 ? -m : m;
}

/* dx and x are (planes, iD, iH, iW), dy is (planes, oD, oH, oW). */
static oc_status_t lppool_bwd_run(const oc_op_call_t *c) {
  pool_geom_t g;
  OC_RETURN_IF_ERROR(pool_geom(c, POOL_LP, &g));
  const float *x = c->in[0]->data, *dy = c->in[1]->data;
  float *dx = c->out[0]->data;
  const double p = (double)c->floats[0];
  const int64_t iD = g.in[0], iH = g.in[1], iW = g.in[2];
  const int64_t plane_in = iD * iH * iW, plane_out = g.out[0] * g.out[1] * g.out[2];
  const int64_t d0 = g.d[0], d1 = g.d[1], d2 = g.d[2];
  if (oc_tensor_numel(c->out[0]) == 0) return OC_OK;
  memset(dx, 0, oc_tensor_bytes(c->out[0]));
  for (int64_t pl = 0; pl < g.planes; pl++) {
    const float *xp = x + pl * plane_in, *dyp = dy + pl * plane_out;
    float *dxp = dx + pl * plane_in;
    POOL_WINDOWS(&g, {
      double sum = 0.0;
      for (int64_t t0 = l0; t0 < h0; t0++)
        for (int64_t t1 = l1; t1 < h1; t1++) {
          int64_t row = ((s0 + t0 * d0) * iH + (s1 + t1 * d1)) * iW + s2;
          for (int64_t t2 = l2; t2 < h2; t2++) {
            double v = fabs((double)xp[row + t2 * d2]);
            sum += p == 1.0 ? v : p == 2.0 ? v * v : pow(v, p);
          }
        }
      double y = p == 1.0 ? sum : p == 2.0 ? sqrt(sum) : pow(sum, 1.0 / p);
      if (y > 0.0 && !isinf(y)) {
        double k = (double)dyp[o] / (p == 1.0 ? 1.0 : p == 2.0 ? y : pow(y, p - 1.0));
        for (int64_t t0 = l0; t0 < h0; t0++)
          for (int64_t t1 = l1; t1 < h1; t1++) {
            int64_t row = ((s0 + t0 * d0) * iH + (s1 + t1 * d1)) * iW + s2;
            for (int64_t t2 = l2; t2 < h2; t2++) {
              int64_t at = row + t2 * d2;
              dxp[at] += (float)(k * lp_dpow((double)xp[at], p));
            }
          }
      }
    })
  }
  return OC_OK;
}

const oc_op_def_t oc_op_lppool_bwd = {"LpPoolBwd", 2, 2, 1, 1, lppool_bwd_infer, lppool_bwd_run};
