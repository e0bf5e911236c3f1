/*
 * Conv: N-D convolution (1, 2 or 3 spatial axes), and its gradients below.
 *
 *   inputs:  x (float32, (N, C, D1..Dn)), w (float32, (M, C/group, k1..kn)),
 *            b (optional, float32, (M))
 *   outputs: y (float32, (N, M, O1..On)) with
 *            Oi = (Di + pad_begin_i + pad_end_i - ((ki - 1) * dil_i + 1)) / stride_i + 1
 *   ints:    [group, strides[n], pads[2n], dilations[n]] or the same followed
 *            by [activation] or [activation, layout]   (n = rank(x) - 2, 1..3)
 *            pads are ONNX-ordered: [begin_1..begin_n, end_1..end_n]; the
 *            compiler resolves auto_pad into explicit pads.
 *            activation (fused by the compiler, compiler/fuse.c): 0 none,
 *            1 Relu (max(y, 0)), 2 Clip (min(max(y, lo), hi)), applied after
 *            the bias.
 *            layout of w's bytes (w keeps its dims): 0 ONNX's; 1 packed
 *            panels (oc_conv_pack_weights: the compiler packs constant
 *            weights), for group 1, M a multiple of 16 and the algorithms
 *            that read them (conv_packed_ok): Winograd and the register
 *            tiles.
 *   floats:  none, or [lo, hi] for activation 2
 *   workspace: what the algorithm below needs (conv_infer): for im2col, the
 *            column matrices of nb batch elements side by side, (C/group *
 *            k1..kn) x (nb * O1..On) floats, then (nb > 1) the product for
 *            them, (M/group) x (nb * O1..On); nb = 1 unless O1..On < 512 (then
 *            enough images for 512 columns, at most N); 0 for 1x1 stride-1
 *            unpadded convolutions with nb = 1, which multiply the input
 *            directly. Winograd: winograd.c's.
 *
 * Algorithms, chosen from the shapes alone (so infer and run agree):
 *   - Winograd F(4x4, 3x3) (winograd.c) for 2-D 3x3 stride-1 ungrouped
 *     convolutions with enough 4x4 output tiles;
 *   - a direct vector kernel for depthwise 2-D convolutions (conv_depthwise);
 *   - else im2col + GEMM (OpenBLAS, one thread per call), where kernel taps
 *     that only ever read padding are dropped first (conv_trim: a 3x3 kernel
 *     over a 1x1 map is a 1x1 convolution), small maps are laid out batch-
 *     minor (conv_bm) and tiny ones multiply per output position
 *     (conv_ts).
 * Internally every convolution is 3-D: 1-D and 2-D ones get leading spatial
 * axes of size 1 (kernel 1, stride 1, no padding). The columns of each
 * product are split over the context's threads: each thread builds its
 * columns of the im2col matrix, multiplies them, adds the bias and the
 * activation while they are in cache, and (nb > 1) moves them into y. The
 * gradients (below) use the same algorithms: Winograd for the data and weight
 * gradients of the same 3x3 convolutions, GEMMs on the batch-minor layouts
 * otherwise.
 */
#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include "oc_ops.h"
#include "parallel.h"
#include "simd.h"
#include "tile_gemm.h"
#include "winograd.h"

typedef struct conv_geom_s {
  int64_t N, C, M, G, Cg, Mg;
  int64_t in[3], k[3], s[3], pb[3], pe[3], d[3], out[3];
  int64_t K;   /* rows of the im2col matrix: Cg * k[0]*k[1]*k[2] */
  int64_t P;   /* output positions: out[0]*out[1]*out[2] */
  int64_t Pin; /* input positions: in[0]*in[1]*in[2] */
  int direct;  /* 1x1, stride 1, no padding: the input is the im2col matrix */
  int act;     /* fused activation: 0 none, 1 relu, 2 clip */
  int packed;  /* w in packed panels (ints: layout 1) */
  float lo, hi; /* clip bounds */
} conv_geom_t;

static oc_status_t bad(const char *fmt, long long v) {
  return oc_make_status(OC_STATUS_INVALID_ARGUMENT, fmt, v);
}

/* Validates the call and fills |g|. Used by infer (which checks everything)
 * and by run (which trusts infer). */
static oc_status_t conv_geom(const oc_op_call_t *c, conv_geom_t *g) {
  const oc_tensor_t *x = c->in[0], *w = c->in[1];
  const oc_tensor_t *b = c->n_in > 2 ? c->in[2] : NULL;
  char buf[160];
  OC_RETURN_IF_ERROR(oc_expect_dtype(x, OC_DTYPE_FLOAT32, "input X"));
  OC_RETURN_IF_ERROR(oc_expect_dtype(w, OC_DTYPE_FLOAT32, "input W"));
  if (b) OC_RETURN_IF_ERROR(oc_expect_dtype(b, OC_DTYPE_FLOAT32, "input B"));
  if (x->rank < 3 || x->rank > 5)
    return oc_make_status(OC_STATUS_UNSUPPORTED,
                          "input X is %s; Conv takes (N, C, D1..Dn) with 1 to 3 spatial axes",
                          oc_type_str(x, buf, sizeof buf));
  int n = x->rank - 2;
  if (c->n_ints < 1 + 4 * n || c->n_ints > 3 + 4 * n)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "Conv with %d spatial axes takes %d ints (or %d with an activation, "
                          "%d with a weight layout), got %d",
                          n, 1 + 4 * n, 2 + 4 * n, 3 + 4 * n, c->n_ints);
  int64_t act = c->n_ints >= 2 + 4 * n ? c->ints[1 + 4 * n] : 0;
  int64_t layout = c->n_ints == 3 + 4 * n ? c->ints[2 + 4 * n] : 0;
  if (act < 0 || act > 2) return bad("Conv activation %lld is not 0, 1 or 2", act);
  if (layout < 0 || layout > 1) return bad("Conv weight layout %lld is not 0 or 1", layout);
  if (c->n_floats != (act == 2 ? 2 : 0))
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "Conv with activation %d takes %d floats, got %d", (int)act,
                          act == 2 ? 2 : 0, c->n_floats);
  if (act == 2 && !(c->floats[0] <= c->floats[1]))
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "Conv clip bounds [%g, %g] are not ordered",
                          (double)c->floats[0], (double)c->floats[1]);
  if (w->rank != x->rank)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input W is %s; expected rank %d",
                          oc_type_str(w, buf, sizeof buf), x->rank);
  const int64_t *strides = c->ints + 1, *pads = c->ints + 1 + n, *dil = c->ints + 1 + 3 * n;
  memset(g, 0, sizeof *g);
  g->act = (int)act;
  g->packed = (int)layout;
  if (act == 2) {
    g->lo = c->floats[0];
    g->hi = c->floats[1];
  }
  g->N = x->dims[0];
  g->C = x->dims[1];
  g->M = w->dims[0];
  g->G = c->ints[0];
  if (g->G < 1 || g->G > OC_MAX_DIM) return bad("group is %lld; it must be positive", g->G);
  if (g->C % g->G != 0 || g->M % g->G != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "group %lld does not divide the %lld input and %lld output channels",
                          (long long)g->G, (long long)g->C, (long long)g->M);
  if (g->packed && (g->G != 1 || g->M % 16 != 0))
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "Conv weight layout 1 (packed) needs group 1 and a multiple of 16 "
                          "output channels, not group %lld and %lld",
                          (long long)g->G, (long long)g->M);
  g->Cg = g->C / g->G;
  g->Mg = g->M / g->G;
  if (w->dims[1] != g->Cg)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "input W is %s; expected %lld input channels per group (C=%lld, "
                          "group=%lld)",
                          oc_type_str(w, buf, sizeof buf), (long long)g->Cg, (long long)g->C,
                          (long long)g->G);
  if (b && (b->rank != 1 || b->dims[0] != g->M))
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input B is %s; expected float32[%lld]",
                          oc_type_str(b, buf, sizeof buf), (long long)g->M);
  g->direct = 1;
  uint64_t kvol = 1, P = 1, Pin = 1;
  for (int a = 0; a < 3; a++) {
    int i = a - (3 - n); /* ONNX spatial axis, or < 0 for a padding axis */
    if (i < 0) {
      g->in[a] = g->k[a] = g->s[a] = g->d[a] = g->out[a] = 1;
      continue;
    }
    g->in[a] = x->dims[2 + i];
    g->k[a] = w->dims[2 + i];
    g->s[a] = strides[i];
    g->pb[a] = pads[i];
    g->pe[a] = pads[n + i];
    g->d[a] = dil[i];
    if (g->k[a] < 1) return bad("the kernel has an empty axis (W dim %lld is 0)", 2 + i);
    if (g->s[a] < 1 || g->s[a] > OC_MAX_DIM) return bad("stride %lld is out of range", g->s[a]);
    if (g->d[a] < 1 || g->d[a] > OC_MAX_DIM) return bad("dilation %lld is out of range", g->d[a]);
    if (g->pb[a] < 0 || g->pb[a] > OC_MAX_DIM) return bad("pad %lld is out of range", g->pb[a]);
    if (g->pe[a] < 0 || g->pe[a] > OC_MAX_DIM) return bad("pad %lld is out of range", g->pe[a]);
    uint64_t span; /* (k - 1) * d + 1, at most 2^80: checked */
    if (oc_mul_overflows((uint64_t)(g->k[a] - 1), (uint64_t)g->d[a], &span) ||
        span >= (uint64_t)4 * OC_MAX_DIM)
      return bad("the dilated kernel is too large (kernel %lld)", g->k[a]);
    span += 1;
    uint64_t padded = (uint64_t)g->in[a] + (uint64_t)g->pb[a] + (uint64_t)g->pe[a];
    if (padded < span)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "spatial axis %d: the dilated kernel (%llu) is larger than the padded "
                            "input (%llu)",
                            i, (unsigned long long)span, (unsigned long long)padded);
    g->out[a] = (int64_t)((padded - span) / (uint64_t)g->s[a] + 1);
    if (g->k[a] != 1 || g->s[a] != 1 || g->pb[a] != 0 || g->pe[a] != 0) g->direct = 0;
  }
  for (int a = 0; a < 3; a++) {
    if (oc_mul_overflows(kvol, (uint64_t)g->k[a], &kvol) ||
        oc_mul_overflows(P, (uint64_t)g->out[a], &P) ||
        oc_mul_overflows(Pin, (uint64_t)g->in[a], &Pin))
      return bad("Conv sizes overflow (kernel axis %lld)", a);
  }
  uint64_t K;
  if (oc_mul_overflows(kvol, (uint64_t)g->Cg, &K) || K > (uint64_t)OC_MAX_DIM)
    return bad("the kernel is too large (%lld channels per group)", g->Cg);
  g->K = (int64_t)K;
  g->P = (int64_t)P;
  g->Pin = (int64_t)Pin;
  /* cblas takes int dimensions. */
  if (g->Mg > INT_MAX || g->K > INT_MAX || g->P > INT_MAX)
    return oc_make_status(OC_STATUS_RESOURCE_LIMIT,
                          "Conv GEMM of %lld x %lld x %lld exceeds the BLAS int range",
                          (long long)g->Mg, (long long)g->P, (long long)g->K);
  return OC_OK;
}

/* Images per product: enough for |target| columns when an image has fewer
 * output positions (deep layers, small images), at least 16 for images of
 * at most 64 positions, at most N. */
static int64_t conv_chunk(const conv_geom_t *g, int64_t target) {
  if (g->P >= target || g->N <= 1 || g->P == 0) return 1;
  int64_t nb = (target + g->P - 1) / g->P;
  if (g->P <= 64 && nb < 16) nb = 16;
  return nb < g->N ? nb : g->N;
}
static int64_t conv_fwd_chunk(const conv_geom_t *g) { return conv_chunk(g, 512); }

/* The layout of a chunk's column matrix. Image-major: column j*P + p (image
 * j, position p). Batch-minor (small images, whose rows are too short to
 * copy efficiently): column p*nbj + j, built from a transposed copy of the
 * chunk's input, (Cg, Pin, nbj), so that each (row, position) is one run of
 * nbj values. */
static int conv_bm(const conv_geom_t *g, int64_t nb) { return nb >= 8 && nb >= g->out[2]; }

/* Tiny outputs (the deep layers of small images: 2x2 outputs of a 3x3
 * kernel over a 2x2 input): every output position sees a few of the input
 * pixels, so the im2col matrix is mostly padding. Instead, per output
 * position p, y_p (M, images) = Wp (M, C * Pin) @ xt (C * Pin, images),
 * where Wp holds each input pixel's tap for p (0 for pixels p does not see)
 * and xt is the batch-minor transposed input: Pin instead of the kernel's
 * taps per channel. Batch-minor layout, one group, Pin < taps. */
static int conv_ts(const conv_geom_t *t, int64_t nb) {
  int64_t kvol = t->k[0] * t->k[1] * t->k[2];
  return t->G == 1 && !t->direct && conv_bm(t, nb) && t->Pin < kvol && t->P <= 16 &&
         (uint64_t)t->P * (uint64_t)t->M * (uint64_t)t->C * (uint64_t)t->Pin <= ((uint64_t)1 << 24);
}

/* The tap of |t|'s kernel that connects input pixel |i| to output position
 * |p|, as an offset into a (k0, k1, k2) kernel, or -1. */
static int64_t conv_ts_tap(const conv_geom_t *t, int64_t p, int64_t i) {
  int64_t o[3] = {p / (t->out[1] * t->out[2]), p / t->out[2] % t->out[1], p % t->out[2]};
  int64_t in[3] = {i / (t->in[1] * t->in[2]), i / t->in[2] % t->in[1], i % t->in[2]};
  int64_t tap = 0;
  for (int a = 0; a < 3; a++) {
    int64_t off = in[a] - (o[a] * t->s[a] - t->pb[a]);
    if (off < 0 || off % t->d[a]) return -1;
    off /= t->d[a];
    if (off >= t->k[a]) return -1;
    tap = tap * t->k[a] + off;
  }
  return tap;
}

/* wp (P, M, C * Pin) from w (M, C, taps) (to_w = 0), or the reverse: w +=
 * each wp entry at its tap (to_w = 1; w zeroed first by the caller). */
static void conv_ts_weights(float *wp, float *w, const conv_geom_t *t, int to_w) {
  const int64_t kvol = t->k[0] * t->k[1] * t->k[2], CP = t->C * t->Pin;
  for (int64_t p = 0; p < t->P; p++)
    for (int64_t i = 0; i < t->Pin; i++) {
      int64_t tap = conv_ts_tap(t, p, i);
      for (int64_t m = 0; m < t->M; m++) {
        float *row = wp + (p * t->M + m) * CP + i;
        float *wm = w + m * t->C * kvol + tap;
        if (to_w) {
          if (tap >= 0)
            for (int64_t c = 0; c < t->C; c++) wm[c * kvol] += row[c * t->Pin];
        } else {
          for (int64_t c = 0; c < t->C; c++) row[c * t->Pin] = tap >= 0 ? wm[c * kvol] : 0.0f;
        }
      }
    }
}

/* Workspace of the forward and backward kernels for |g| with chunks of nb
 * images (see the op comments): for the trimmed geometry t, the (t.K, nb*P)
 * column matrix unless t is direct with nb = 1, then (nb > 1) the (Mg, nb*P)
 * staged product or packed dy, then (trimmed) the (M, t.K) weight slice,
 * then (batch-minor) the chunk's transposed input or dx, (Cg, Pin, nb),
 * then (conv_ts) the per-position weights, (P, M, C * Pin). */
static oc_status_t conv_ws_bytes(const conv_geom_t *g, int64_t nb, size_t *ws);

/* The Winograd F(4x4, 3x3) form of |g| (winograd.h), for 2-D 3x3 stride-1
 * undilated ungrouped convolutions; 0 when |g| is not one or it would not
 * pay (conv_winograd: the forward; conv_winograd_filter: the weight
 * gradient, whose transforms cost more). */
static int conv_winograd_form(const conv_geom_t *g, oc_winograd_t *w) {
  if (g->G != 1 || g->in[0] != 1 || g->k[0] != 1 || g->k[1] != 3 || g->k[2] != 3 ||
      g->s[1] != 1 || g->s[2] != 1 || g->d[1] != 1 || g->d[2] != 1)
    return 0;
  *w = (oc_winograd_t){.N = g->N, .C = g->C, .M = g->M, .H = g->in[1], .W = g->in[2],
                       .OH = g->out[1], .OW = g->out[2], .ph = g->pb[1], .pw = g->pb[2],
                       .act = g->act, .lo = g->lo, .hi = g->hi, .packed = g->packed};
  return 1;
}
static int conv_winograd(const conv_geom_t *g, oc_winograd_t *w) {
  return conv_winograd_form(g, w) && oc_winograd_applies(w);
}
static int conv_winograd_filter(const conv_geom_t *g, oc_winograd_t *w) {
  return conv_winograd_form(g, w) && oc_winograd_filter_applies(w);
}

/* oc_conv_pack_weights: per panel of 32 output channels (the last one the
 * M % 32 left), the panel's (K, width) matrix, the output channel fastest:
 * the B operand of a register tile (tile_gemm.h) that runs over output
 * channels, and what Winograd transforms without a gather. */
void oc_conv_pack_weights(float *dst, const float *w, int64_t M, int64_t K) {
  for (int64_t m0 = 0; m0 < M; m0 += 32) {
    int64_t width = M - m0 < 32 ? M - m0 : 32;
    float *panel = dst + m0 * K;
    for (int64_t k = 0; k < K; k++) /* written in order; |width| rows read */
      for (int64_t l = 0; l < width; l++) panel[k * width + l] = w[(m0 + l) * K + k];
  }
}

/* Whether the algorithm run picks for |g| reads packed weights. */
static int conv_tiled(const conv_geom_t *g);
static uint64_t conv_tiled_floats(const conv_geom_t *g);
static int conv_packed_ok(const conv_geom_t *g) {
  oc_winograd_t wg;
  return conv_winograd(g, &wg) || conv_tiled(g);
}

static oc_status_t conv_infer(const oc_op_call_t *c, size_t *ws) {
  conv_geom_t g;
  OC_RETURN_IF_ERROR(conv_geom(c, &g));
  if (g.packed && !conv_packed_ok(&g))
    return oc_make_status(OC_STATUS_UNSUPPORTED,
                          "Conv weight layout 1 (packed) is read only by the Winograd and the "
                          "register-tiled kernels (group 1, no kernel taps over padding alone)");
  const oc_tensor_t *x = c->in[0];
  int n = x->rank - 2;
  int64_t dims[OC_MAX_RANK] = {g.N, g.M};
  for (int i = 0; i < n; i++) dims[2 + i] = g.out[3 - n + i];
  oc_tensor_set_type(c->out[0], OC_DTYPE_FLOAT32, x->rank, dims);
  oc_winograd_t wg;
  if (conv_winograd(&g, &wg)) {
    uint64_t bytes = oc_winograd_workspace(&wg);
    if (bytes > OC_MAX_TENSOR_BYTES)
      return oc_make_status(OC_STATUS_RESOURCE_LIMIT, "Conv Winograd workspace exceeds the limit");
    *ws = (size_t)bytes;
    return OC_OK;
  }
  if (conv_tiled(&g)) {
    uint64_t floats = conv_tiled_floats(&g);
    if (floats > OC_MAX_TENSOR_BYTES / sizeof(float))
      return oc_make_status(OC_STATUS_RESOURCE_LIMIT, "Conv workspace exceeds the limit");
    *ws = (size_t)(floats * sizeof(float));
    return OC_OK;
  }
  return conv_ws_bytes(&g, conv_fwd_chunk(&g), ws);
}

/* The outputs o in [0, n_out) whose tap o * s + off lies in [0, n_in):
 * [*lo, *hi). */
static void valid_range(int64_t off, int64_t s, int64_t n_in, int64_t n_out, int64_t *lo,
                        int64_t *hi) {
  int64_t l = off >= 0 ? 0 : (-off + s - 1) / s;
  int64_t h = n_in - off <= 0 ? 0 : (n_in - off + s - 1) / s;
  if (l > n_out) l = n_out;
  if (h > n_out) h = n_out;
  if (h < l) h = l;
  *lo = l;
  *hi = h;
}

/* Kernel taps that read only padding for every output position (a 3x3
 * kernel over a 1x1 input) multiply zeros. |t| is |g| without them: per axis
 * the box of taps [klo, klo + t->k) that read some input, with the begin pad
 * shifted so every output keeps its taps (t->K and t->direct follow). The
 * trimmed kernels use the matching slice of the weights (conv_trim_weights).
 * Returns 1 when a tap was dropped. */
static int conv_trim(const conv_geom_t *g, conv_geom_t *t, int64_t *klo) {
  *t = *g;
  klo[0] = klo[1] = klo[2] = 0;
  int trimmed = 0;
  for (int a = 0; a < 3; a++) {
    if (g->k[a] == 1 || g->k[a] > 64) continue;
    int64_t lo = -1, hi = -1;
    for (int64_t k = 0; k < g->k[a]; k++) {
      int64_t wlo, whi;
      valid_range(k * g->d[a] - g->pb[a], g->s[a], g->in[a], g->out[a], &wlo, &whi);
      if (whi > wlo) {
        if (lo < 0) lo = k;
        hi = k + 1;
      }
    }
    if (lo < 0 || (lo == 0 && hi == g->k[a])) continue; /* all padding, or nothing to drop */
    trimmed = 1;
    klo[a] = lo;
    t->k[a] = hi - lo;
    t->pb[a] = g->pb[a] - lo * g->d[a];
    t->pe[a] = g->pe[a] - (g->k[a] - hi) * g->d[a];
  }
  if (!trimmed) return 0;
  t->K = g->Cg * t->k[0] * t->k[1] * t->k[2];
  t->direct = 1;
  for (int a = 0; a < 3; a++)
    if (t->k[a] != 1 || t->s[a] != 1 || t->pb[a] != 0 || t->out[a] != t->in[a]) t->direct = 0;
  return 1;
}

/* wt (M, t->K) = the taps of w (M, g->K) that |t| keeps (to_full = 0), or
 * the reverse: w = wt at those taps, 0 elsewhere (to_full = 1). */
static void conv_trim_weights(float *wt, float *w, const conv_geom_t *g, const conv_geom_t *t,
                              const int64_t *klo, int to_full) {
  if (to_full) memset(w, 0, (size_t)(g->M * g->K) * sizeof(float));
  float *dst = wt;
  for (int64_t mc = 0; mc < g->M * g->Cg; mc++) {
    float *src = w + mc * g->k[0] * g->k[1] * g->k[2];
    for (int64_t kd = klo[0]; kd < klo[0] + t->k[0]; kd++)
      for (int64_t kh = klo[1]; kh < klo[1] + t->k[1]; kh++) {
        float *row = src + (kd * g->k[1] + kh) * g->k[2] + klo[2];
        if (to_full)
          memcpy(row, dst, (size_t)t->k[2] * sizeof(float));
        else
          memcpy(dst, row, (size_t)t->k[2] * sizeof(float));
        dst += t->k[2];
      }
  }
}

static oc_status_t conv_ws_bytes(const conv_geom_t *g, int64_t nb, size_t *ws) {
  conv_geom_t t;
  int64_t klo[3];
  int trimmed = conv_trim(g, &t, klo);
  *ws = 0;
  uint64_t floats = 0, x;
  int ok = 1;
  if (!t.direct || nb > 1) {
    uint64_t rows = (uint64_t)t.K + (nb > 1 ? (uint64_t)g->Mg : 0);
    ok = !oc_mul_overflows(rows, (uint64_t)g->P * (uint64_t)nb, &floats) &&
         (uint64_t)g->P * (uint64_t)nb <= INT_MAX;
  }
  if (ok && trimmed)
    ok = !oc_mul_overflows((uint64_t)g->M, (uint64_t)t.K, &x) &&
         !oc_add_overflows(floats, x, &floats);
  if (ok && conv_bm(g, nb)) /* the transposed input (or dx) of a chunk */
    ok = !oc_mul_overflows((uint64_t)g->Cg * (uint64_t)g->Pin, (uint64_t)nb, &x) &&
         !oc_add_overflows(floats, x, &floats);
  if (ok && conv_ts(&t, nb)) /* the per-position weights (or their gradient) */
    ok = !oc_add_overflows(floats, (uint64_t)t.P * t.M * t.C * t.Pin, &floats);
  if (!ok || oc_mul_overflows(floats, sizeof(float), &x) || x > OC_MAX_TENSOR_BYTES)
    return oc_make_status(OC_STATUS_RESOURCE_LIMIT,
                          "Conv workspace (%lld x %lld columns) exceeds the limit",
                          (long long)t.K, (long long)(g->P * nb));
  *ws = (size_t)x;
  return OC_OK;
}

/* col is (Cg*kD*kH*kW, oD*oH*oW) with rows |ld| floats apart (ld >= P); x
 * is (Cg, iD, iH, iW), one (batch, group). Row (c, kd, kh, kw) holds
 * x[c, od*sd - pd + kd*dd, oh*sh - ph + kh*dh, ow*sw - pw + kw*dw] for every
 * output position, 0 where that is padding. */
__attribute__((unused)) static void im2col(float *col, const float *x, const conv_geom_t *g,
                                           int64_t ld);

/* Copies and zero fills of short runs, inlined (a libc call per run costs
 * more than the run when images are small). */
static inline void copy_floats(float *d, const float *s, int64_t n) {
  if (n >= 64) {
    memcpy(d, s, (size_t)n * sizeof(float));
    return;
  }
  for (; n >= 8; n -= 8, d += 8, s += 8) __builtin_memcpy(d, s, 8 * sizeof(float));
  for (; n > 0; n--) *d++ = *s++;
}
static inline void zero_floats(float *d, int64_t n) {
  if (n >= 64) {
    memset(d, 0, (size_t)n * sizeof(float));
    return;
  }
  for (; n >= 8; n -= 8, d += 8) __builtin_memset(d, 0, 8 * sizeof(float));
  for (; n > 0; n--) *d++ = 0.0f;
}

/* Columns [p0, p1) of the im2col matrix of one (batch, group) (see im2col):
 * col points at the image's column 0, rows |ld| floats apart. */
static void im2col_range(float *col, const float *x, const conv_geom_t *g, int64_t ld, int64_t p0,
                         int64_t p1) {
  const int64_t iD = g->in[0], iH = g->in[1], iW = g->in[2];
  const int64_t oH = g->out[1], oW = g->out[2];
  if (p1 <= p0) return;
  const int64_t row0 = p0 / oW, ow_first = p0 % oW;
  const int64_t od0 = row0 / oH, oh0 = row0 % oH;
  float *row = col;
  for (int64_t ch = 0; ch < g->Cg; ch++) {
    const float *xc = x + ch * iD * iH * iW;
    for (int64_t kd = 0; kd < g->k[0]; kd++) {
      for (int64_t kh = 0; kh < g->k[1]; kh++) {
        for (int64_t kw = 0; kw < g->k[2]; kw++, row += ld) {
          int64_t offd = kd * g->d[0] - g->pb[0], offh = kh * g->d[1] - g->pb[1];
          int64_t offw = kw * g->d[2] - g->pb[2];
          int64_t wlo, whi;
          valid_range(offw, g->s[2], iW, oW, &wlo, &whi);
          int64_t od = od0, oh = oh0, ow0 = ow_first, p = p0;
          while (p < p1) {
            int64_t ow1 = oW - ow0 < p1 - p ? oW : ow0 + (p1 - p);
            float *dst = row + p - ow0; /* dst[ow]: position (od, oh, ow) */
            int64_t id = od * g->s[0] + offd, ih = oh * g->s[1] + offh;
            if (id < 0 || id >= iD || ih < 0 || ih >= iH) {
              zero_floats(dst + ow0, ow1 - ow0);
            } else {
              int64_t lo = wlo > ow0 ? wlo : ow0, hi = whi < ow1 ? whi : ow1;
              const float *src = xc + (id * iH + ih) * iW + offw; /* + ow * sw */
              if (hi <= lo) {
                zero_floats(dst + ow0, ow1 - ow0);
              } else {
                if (lo > ow0) zero_floats(dst + ow0, lo - ow0);
                if (g->s[2] == 1) {
                  copy_floats(dst + lo, src + lo, hi - lo);
                } else {
                  const int64_t sw = g->s[2];
                  for (int64_t ow = lo; ow < hi; ow++) dst[ow] = src[ow * sw];
                }
                if (hi < ow1) zero_floats(dst + hi, ow1 - hi);
              }
            }
            p += ow1 - ow0;
            ow0 = 0;
            if (++oh == oH) {
              oh = 0;
              od++;
            }
          }
        }
      }
    }
  }
}

static void im2col(float *col, const float *x, const conv_geom_t *g, int64_t ld) {
  im2col_range(col, x, g, ld, 0, g->P);
}

/* Channels [c0, c1) of the chunk's transposed input: xt[c, i, j] =
 * x[n0 + j, gi*Cg + c, i] (xt is (Cg, Pin, nbj)). */
static void bm_transpose_in(float *xt, const float *x, const conv_geom_t *g, int64_t gi,
                            int64_t n0, int64_t nbj, int64_t c0, int64_t c1) {
  for (int64_t c = c0; c < c1; c++) {
    float *dst = xt + c * g->Pin * nbj;
    for (int64_t j = 0; j < nbj; j++) {
      const float *src = x + ((n0 + j) * g->C + gi * g->Cg + c) * g->Pin;
      for (int64_t i = 0; i < g->Pin; i++) dst[i * nbj + j] = src[i];
    }
  }
}

/* The reverse for channels [c0, c1): x[n0 + j, gi*Cg + c, i] = xt[c, i, j]. */
static void bm_transpose_out(float *x, const float *xt, const conv_geom_t *g, int64_t gi,
                             int64_t n0, int64_t nbj, int64_t c0, int64_t c1) {
  for (int64_t c = c0; c < c1; c++) {
    const float *src = xt + c * g->Pin * nbj;
    for (int64_t j = 0; j < nbj; j++) {
      float *dst = x + ((n0 + j) * g->C + gi * g->Cg + c) * g->Pin;
      for (int64_t i = 0; i < g->Pin; i++) dst[i] = src[i * nbj + j];
    }
  }
}

/* Calls BODY for every (row r of the column matrix, position p) with the
 * input offset |in_off| of the tap (or -1 for padding): the batch-minor
 * walk shared by im2col and col2im. Positions [p0, p1) only. */
#define BM_WALK(g, rows_from, rows_to, p0, p1, ...)                                        \
  do {                                                                                      \
    const int64_t kvol_ = (g)->k[0] * (g)->k[1] * (g)->k[2];                               \
    const int64_t oH_ = (g)->out[1], oW_ = (g)->out[2];                                     \
    const int64_t od0_ = ((p0) / oW_) / oH_, oh0_ = ((p0) / oW_) % oH_, ow0_ = (p0) % oW_;  \
    for (int64_t r = (rows_from); r < (rows_to); r++) {                                     \
      int64_t t_ = r % kvol_, ch_ = r / kvol_;                                              \
      int64_t kw_ = t_ % (g)->k[2], kh_ = (t_ / (g)->k[2]) % (g)->k[1];                     \
      int64_t kd_ = t_ / ((g)->k[2] * (g)->k[1]);                                           \
      int64_t offd_ = kd_ * (g)->d[0] - (g)->pb[0], offh_ = kh_ * (g)->d[1] - (g)->pb[1];   \
      int64_t offw_ = kw_ * (g)->d[2] - (g)->pb[2];                                         \
      int64_t od_ = od0_, oh_ = oh0_, ow_ = ow0_;                                           \
      for (int64_t p = (p0); p < (p1); p++) {                                               \
        int64_t id_ = od_ * (g)->s[0] + offd_, ih_ = oh_ * (g)->s[1] + offh_;               \
        int64_t iw_ = ow_ * (g)->s[2] + offw_;                                              \
        int64_t in_off = (id_ < 0 || id_ >= (g)->in[0] || ih_ < 0 || ih_ >= (g)->in[1] ||   \
                          iw_ < 0 || iw_ >= (g)->in[2])                                     \
                             ? -1                                                           \
                             : ch_ * (g)->Pin + (id_ * (g)->in[1] + ih_) * (g)->in[2] + iw_; \
        __VA_ARGS__;                                                                        \
        if (++ow_ == oW_) {                                                                 \
          ow_ = 0;                                                                          \
          if (++oh_ == oH_) {                                                               \
            oh_ = 0;                                                                        \
            od_++;                                                                          \
          }                                                                                 \
        }                                                                                   \
      }                                                                                     \
    }                                                                                       \
  } while (0)

/* Columns [c0, c1) of the batch-minor column matrix (rows |ld| apart) from
 * the transposed input xt (Cg, Pin, nbj). */
static void im2col_bm(float *col, const float *xt, const conv_geom_t *g, int64_t ld, int64_t nbj,
                      int64_t c0, int64_t c1) {
  if (c1 <= c0) return;
  int64_t p0 = c0 / nbj, p1 = (c1 - 1) / nbj + 1;
  BM_WALK(g, 0, g->K, p0, p1, {
    int64_t j0 = p == p0 ? c0 - p * nbj : 0, j1 = p == p1 - 1 ? c1 - p * nbj : nbj;
    float *dst = col + r * ld + p * nbj + j0;
    if (in_off < 0)
      zero_floats(dst, j1 - j0);
    else
      copy_floats(dst, xt + in_off * nbj + j0, j1 - j0);
  });
}

/* Channels [c0, c1): dxt (Cg, Pin, nbj) = col2im of the batch-minor column
 * matrix (rows |ld| apart). */
static void col2im_bm(float *dxt, const float *col, const conv_geom_t *g, int64_t ld, int64_t nbj,
                      int64_t c0, int64_t c1) {
  const int64_t kvol = g->k[0] * g->k[1] * g->k[2];
  memset(dxt + c0 * g->Pin * nbj, 0, (size_t)((c1 - c0) * g->Pin * nbj) * sizeof(float));
  BM_WALK(g, c0 * kvol, c1 * kvol, 0, g->P, {
    if (in_off >= 0) {
      float *dst = dxt + in_off * nbj;
      const float *src = col + r * ld + p * nbj;
      for (int64_t j = 0; j < nbj; j++) dst[j] += src[j];
    }
  });
}

/* rows x cols block of y (rows |ld| apart), channel m0 first: y = act(y + b)
 * (Relu: v < 0 ? 0 : v, Clip: v < lo ? lo : v > hi ? hi : v; NaN stays), in
 * vectors: the pass over a product that is still in cache. */
OC_SIMD_CLONES static void conv_epilogue(float *y, int64_t ld, int64_t rows, int64_t cols,
                                         const float *b, const conv_geom_t *g) {
  const int act = g->act;
  const float lo = g->lo, hi = g->hi;
  const oc_v16f vlo = oc_v16_set(lo), vhi = oc_v16_set(hi), zero = oc_v16_set(0.0f);
  if (act == 0 && !b) return;
  for (int64_t m = 0; m < rows; m++) {
    float *r = y + m * ld, bm = b ? b[m] : 0.0f;
    const oc_v16f vb = oc_v16_set(bm);
    int64_t i = 0;
    for (; i + OC_V16 <= cols; i += OC_V16) {
      oc_v16f v = oc_v16_load(r + i) + vb;
      if (act == 1) {
        v = oc_v16_select(v < zero, zero, v);
      } else if (act == 2) {
        v = oc_v16_select(v < vlo, vlo, oc_v16_select(v > vhi, vhi, v));
      }
      oc_v16_store(r + i, v);
    }
    for (; i < cols; i++) {
      float v = r[i] + bm;
      r[i] = act == 1 ? (v < 0.0f ? 0.0f : v) : act == 2 ? (v < lo ? lo : v > hi ? hi : v) : v;
    }
  }
}

/* One forward product: nbj images from n0 of group gi, nb images per chunk. */
typedef struct conv_job_s {
  const conv_geom_t *g;
  const float *x, *w, *b;
  float *y, *col, *stage;
  int64_t gi, n0, nbj, ld; /* ld: row length of col and stage (nb * P) */
  float *xt;               /* batch-minor: the transposed input, else NULL */
} conv_job_t;

/* Columns [b0, b1) of a batch-minor staged product: column p*nbj + i ->
 * y[n0 + i, m, p], with the bias and the activation. */
static void conv_bm_store(const conv_job_t *j, int64_t b0, int64_t b1) {
  const conv_geom_t *g = j->g;
  const int64_t P = g->P, nbj = j->nbj;
  const float *bg = j->b ? j->b + j->gi * g->Mg : NULL;
  for (int64_t m = 0; m < g->Mg; m++) {
    const float *sm = j->stage + m * j->ld;
    const float bm = bg ? bg[m] : 0.0f;
    for (int64_t i = 0; i < nbj; i++) {
      /* positions p with b0 <= p*nbj + i < b1; y row written in order */
      int64_t pa = b0 - i <= 0 ? 0 : (b0 - i + nbj - 1) / nbj;
      int64_t pz = b1 - 1 - i < 0 ? -1 : (b1 - 1 - i) / nbj;
      float *yp = j->y + ((j->n0 + i) * g->M + j->gi * g->Mg + m) * P;
      const float *sp = sm + i;
      switch (g->act) {
        case 0:
          for (int64_t p = pa; p <= pz; p++) yp[p] = sp[p * nbj] + bm;
          break;
        case 1:
          for (int64_t p = pa; p <= pz; p++) {
            float v = sp[p * nbj] + bm;
            yp[p] = v < 0.0f ? 0.0f : v;
          }
          break;
        default:
          for (int64_t p = pa; p <= pz; p++) {
            float v = sp[p * nbj] + bm;
            v = v < g->lo ? g->lo : v;
            yp[p] = v > g->hi ? g->hi : v;
          }
      }
    }
  }
}

/* Columns [c0, c1) of the product (images side by side), in blocks that keep
 * their column matrix in cache: im2col, GEMM, bias and activation, and (nb >
 * 1) the move into y. */
static void conv_part(void *arg, int64_t c0, int64_t c1, int thread) {
  const conv_job_t *j = arg;
  const conv_geom_t *g = j->g;
  const int64_t P = g->P;
  const float *wg = j->w + j->gi * g->Mg * g->K;
  const float *bg = j->b ? j->b + j->gi * g->Mg : NULL;
  const int staged = j->stage != NULL;
  /* Blocks of ~1 MiB of column matrix and ~512 KiB of output, at least 64
   * columns: the epilogue then finds the product in cache. */
  int64_t blk = ((int64_t)1 << 18) / (g->K > 0 ? g->K : 1), blk_y = ((int64_t)1 << 17) / g->Mg;
  if (blk_y < blk) blk = blk_y;
  blk = blk < 64 ? 64 : (blk + 15) / 16 * 16;
  for (int64_t b0 = c0; b0 < c1; b0 += blk) {
    int64_t b1 = b0 + blk < c1 ? b0 + blk : c1;
    const float *B;
    int64_t ldb;
    if (j->xt) {
      im2col_bm(j->col, j->xt, g, j->ld, j->nbj, b0, b1);
      B = j->col + b0;
      ldb = j->ld;
    } else if (j->col) {
      for (int64_t im = b0 / P; im * P < b1; im++) {
        int64_t p0 = b0 - im * P > 0 ? b0 - im * P : 0, p1 = b1 - im * P < P ? b1 - im * P : P;
        const float *xi = j->x + ((j->n0 + im) * g->C + j->gi * g->Cg) * g->Pin;
        im2col_range(j->col + im * P, xi, g, j->ld, p0, p1);
      }
      B = j->col + b0;
      ldb = j->ld;
    } else { /* direct, one image: x is the column matrix */
      B = j->x + (j->n0 * g->C + j->gi * g->Cg) * g->Pin + b0;
      ldb = P;
    }
    float *C = staged ? j->stage + b0 : j->y + (j->n0 * g->M + j->gi * g->Mg) * P + b0;
    int64_t ldc = staged ? j->ld : P;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)g->Mg, (blasint)(b1 - b0),
                (blasint)g->K, 1.0f, wg, (blasint)g->K, B, (blasint)ldb, 0.0f, C, (blasint)ldc);
    if (!staged || !j->xt) conv_epilogue(C, ldc, g->Mg, b1 - b0, bg, g);
    if (staged && j->xt) {
      conv_bm_store(j, b0, b1);
    } else if (staged) {
      for (int64_t im = b0 / P; im * P < b1; im++) {
        int64_t p0 = b0 - im * P > 0 ? b0 - im * P : 0, p1 = b1 - im * P < P ? b1 - im * P : P;
        float *yi = j->y + ((j->n0 + im) * g->M + j->gi * g->Mg) * P;
        const float *si = j->stage + im * P;
        for (int64_t m = 0; m < g->Mg; m++)
          memcpy(yi + m * P + p0, si + m * j->ld + p0, (size_t)(p1 - p0) * sizeof(float));
      }
    }
  }
  (void)thread;
}

static void conv_bm_store_part(void *arg, int64_t b0, int64_t b1, int thread) {
  conv_bm_store(arg, b0, b1);
  (void)thread;
}

/* Channels [c0, c1) of the chunk's transposed input. */
static void bm_in_part(void *arg, int64_t c0, int64_t c1, int thread) {
  const conv_job_t *j = arg;
  bm_transpose_in(j->xt, j->x, j->g, j->gi, j->n0, j->nbj, c0, c1);
  (void)thread;
}

/* --- depthwise ----------------------------------------------------------- */

/* Depthwise 2-D convolutions (one input and one output channel per group:
 * MobileNet) are a few multiply-adds per output, far too few for a GEMM. The
 * direct kernel copies each plane into a zero-padded buffer (stride 2: split
 * into its even and odd columns), so that every tap is one contiguous run of
 * inputs per output row, and runs the taps as vector multiply-adds. */
enum { DW_BUF = 8192 }; /* floats of padded rows, on the stack (32 KiB) */

/* Floats per padded row (all its phases): each phase padded to whole groups
 * of outputs (four vectors, or one for rows of at most 16) plus one vector,
 * so that the last group of outputs may read past the row's end. */
static int64_t dw_row_floats(const conv_geom_t *g) {
  int64_t sw = g->s[2], wp = (g->out[2] - 1) * sw + g->k[2];
  int64_t wph = (wp + sw - 1) / sw, group = g->out[2] > OC_V16 ? 4 * OC_V16 : OC_V16;
  return sw * ((wph + group - 1) / group * group + OC_V16);
}

static int conv_depthwise(const conv_geom_t *g) {
  if (g->Cg != 1 || g->Mg != 1 || g->in[0] != 1 || g->k[0] != 1) return 0;
  if (g->s[1] < 1 || g->s[1] > 2 || g->s[2] < 1 || g->s[2] > 2 || g->d[1] != 1 || g->d[2] != 1)
    return 0;
  if (g->k[1] > 7 || g->k[2] > 7) return 0;
  /* at least one output row's padded input rows fit the buffer */
  return g->out[2] <= 4096 && g->k[1] * dw_row_floats(g) <= DW_BUF;
}

typedef struct dw_job_s {
  const conv_geom_t *g;
  const float *x, *w, *b;
  float *y;
} dw_job_t;

/* The fused activation; lo, hi: g's Clip bounds in every lane. */
OC_VINLINE oc_v16f dw_act(oc_v16f v, const conv_geom_t *g, oc_v16f lo, oc_v16f hi) {
  if (g->act == 1) return oc_v16_select(v < 0.0f, oc_v16_set(0.0f), v);
  if (g->act == 2) {
    v = oc_v16_select(v < lo, lo, v);
    return oc_v16_select(v > hi, hi, v);
  }
  return v;
}

/* Planes [q0, q1) (plane = image, channel), in bands of output rows whose
 * padded input rows fit the buffer. */
OC_SIMD_CLONES static void dw_planes(const dw_job_t *j, int64_t q0, int64_t q1) {
  const conv_geom_t *g = j->g;
  const int64_t iH = g->in[1], iW = g->in[2], oH = g->out[1], oW = g->out[2];
  const int64_t kh = g->k[1], kw = g->k[2], sh = g->s[1], sw = g->s[2];
  const int64_t rf = dw_row_floats(g), ld = rf / sw; /* floats per phase of a row */
  const int64_t wph = ((oW - 1) * sw + kw + sw - 1) / sw; /* values of a phase that are read */
  /* output rows per band: (R - 1) * sh + kh padded rows */
  int64_t R = (DW_BUF / rf - kh) / sh + 1;
  if (R < 1) R = 1;
  float buf[DW_BUF];
  const oc_v16f vlo = oc_v16_set(g->lo), vhi = oc_v16_set(g->hi);
  int64_t off[49]; /* tap (a, t): its input run, from the band row of the output row */
  for (int64_t k = 0; k < kh * kw; k++)
    off[k] = ((k / kw) * sw + (k % kw) % sw) * ld + (k % kw) / sw;
  for (int64_t q = q0; q < q1; q++) {
    int64_t ch = q % g->C;
    const float *xp = j->x + q * iH * iW, *wq = j->w + ch * kh * kw;
    float *yq = j->y + q * oH * oW;
    const oc_v16f vbias = oc_v16_set(j->b ? j->b[ch] : 0.0f);
    oc_v16f wv[49];
    for (int64_t k = 0; k < kh * kw; k++) wv[k] = oc_v16_set(wq[k]);
    for (int64_t o0 = 0; o0 < oH; o0 += R) {
      int64_t o1 = o0 + R < oH ? o0 + R : oH, r0 = o0 * sh, nr = (o1 - 1 - o0) * sh + kh;
      /* phase f of padded row r0 + r: buf[(r * sw + f) * ld + i] = padded[r0 + r][i * sw + f] */
      for (int64_t r = 0; r < nr; r++) {
        int64_t ih = r0 + r - g->pb[1];
        if (sw == 2 && ih >= 0 && ih < iH) { /* both phases at once, 16 pairs at a time */
          float *d0 = buf + (r * 2) * ld, *d1 = d0 + ld;
          const float *xr = xp + ih * iW;
          int64_t b = -g->pb[2], i = 0;
          for (; i < wph; i++) { /* scalar until 2i + b >= 0 */
            if (2 * i + b >= 0 && 2 * i + b + 32 <= iW) break;
            int64_t e = 2 * i + b, o = e + 1;
            d0[i] = e >= 0 && e < iW ? xr[e] : 0.0f;
            d1[i] = o >= 0 && o < iW ? xr[o] : 0.0f;
          }
          for (; i + OC_V16 <= ld && 2 * i + b + 32 <= iW; i += OC_V16) {
            oc_v16f lo = oc_v16_load(xr + 2 * i + b), hi = oc_v16_load(xr + 2 * i + b + 16);
#if defined(__clang__)
            oc_v16_store(d0 + i, __builtin_shufflevector(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18,
                                                         20, 22, 24, 26, 28, 30));
            oc_v16_store(d1 + i, __builtin_shufflevector(lo, hi, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19,
                                                         21, 23, 25, 27, 29, 31));
#else
            const oc_v16i even = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
            const oc_v16i odd = {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31};
            oc_v16_store(d0 + i, __builtin_shuffle(lo, hi, even));
            oc_v16_store(d1 + i, __builtin_shuffle(lo, hi, odd));
#endif
          }
          for (; i < wph; i++) {
            int64_t e = 2 * i + b, o = e + 1;
            d0[i] = e >= 0 && e < iW ? xr[e] : 0.0f;
            d1[i] = o >= 0 && o < iW ? xr[o] : 0.0f;
          }
          if (i < ld) {
            zero_floats(d0 + i, ld - i);
            zero_floats(d1 + i, ld - i);
          }
          continue;
        }
        for (int64_t f = 0; f < sw; f++) {
          float *dst = buf + (r * sw + f) * ld;
          if (ih < 0 || ih >= iH) {
            zero_floats(dst, ld);
            continue;
          }
          /* dst[i] = x[ih, i * sw + f - pb] inside the row, 0 outside:
           * i in [lo, hi) is inside */
          const float *xr = xp + ih * iW;
          int64_t sh0 = f - g->pb[2];
          int64_t lo = sh0 >= 0 ? 0 : (-sh0 + sw - 1) / sw;
          int64_t hi = iW - sh0 <= 0 ? 0 : (iW - sh0 + sw - 1) / sw;
          if (hi > ld) hi = ld;
          if (lo > hi) lo = hi;
          zero_floats(dst, lo);
          if (sw == 1)
            copy_floats(dst + lo, xr + lo + sh0, hi - lo);
          else
            for (int64_t i = lo; i < hi; i++) dst[i] = xr[i * sw + sh0];
          zero_floats(dst + hi, ld - hi);
        }
      }
      if (oW <= OC_V16) { /* narrow rows (deep layers): four rows at a time, independent sums */
        for (int64_t oh = o0; oh < o1; oh += 4) {
          int nr4 = o1 - oh < 4 ? (int)(o1 - oh) : 4;
          oc_v16f acc[4];
          for (int r = 0; r < 4; r++) acc[r] = vbias;
          const float *base = buf + (oh - o0) * sh * sw * ld;
          const int64_t rs = sh * sw * ld; /* floats from one output row's inputs to the next */
          if (nr4 == 4) {
            for (int64_t k = 0; k < kh * kw; k++)
              for (int r = 0; r < 4; r++) acc[r] += wv[k] * oc_v16_load(base + r * rs + off[k]);
          } else {
            for (int64_t k = 0; k < kh * kw; k++)
              for (int r = 0; r < nr4; r++) acc[r] += wv[k] * oc_v16_load(base + r * rs + off[k]);
          }
          for (int r = 0; r < nr4; r++) {
            oc_v16f res = dw_act(acc[r], g, vlo, vhi);
            float *yr = yq + (oh + r) * oW;
            if (oW == OC_V16) {
              oc_v16_store(yr, res);
            } else {
              float tail[OC_V16];
              oc_v16_store(tail, res);
              memcpy(yr, tail, sizeof(float) * (size_t)oW);
            }
          }
        }
        continue;
      }
      for (int64_t oh = o0; oh < o1; oh++) {
        float *yr = yq + oh * oW;
        const float *base = buf + (oh - o0) * sh * sw * ld;
        /* four vectors of outputs at a time: independent sums */
        for (int64_t ow = 0; ow < oW; ow += 4 * OC_V16) {
          oc_v16f acc[4];
          for (int v = 0; v < 4; v++) acc[v] = vbias;
          if (oW - ow <= OC_V16) { /* the last vector of a row */
            for (int64_t k = 0; k < kh * kw; k++)
              acc[0] += wv[k] * oc_v16_load(base + off[k] + ow);
          } else {
            for (int64_t k = 0; k < kh * kw; k++) {
              const float *src = base + off[k] + ow;
              for (int v = 0; v < 4; v++) acc[v] += wv[k] * oc_v16_load(src + v * OC_V16);
            }
          }
          for (int v = 0; v < 4 && ow + v * OC_V16 < oW; v++) {
            oc_v16f r = dw_act(acc[v], g, vlo, vhi);
            int64_t o = ow + v * OC_V16;
            if (o + OC_V16 <= oW) {
              oc_v16_store(yr + o, r);
            } else {
              float tail[OC_V16];
              oc_v16_store(tail, r);
              memcpy(yr + o, tail, sizeof(float) * (size_t)(oW - o));
            }
          }
        }
      }
    }
  }
}

static void dw_part(void *arg, int64_t q0, int64_t q1, int thread) {
  dw_planes(arg, q0, q1);
  (void)thread;
}

/* The row split of a product with few columns (one image of a deep layer):
 * the column matrix is built once, the threads share it and split the
 * output channels. */
static void conv_im2col_blocks(void *arg, int64_t b0, int64_t b1, int thread) {
  const conv_job_t *j = arg;
  const conv_geom_t *g = j->g;
  int64_t p1 = b1 * 16 < g->P ? b1 * 16 : g->P;
  im2col_range(j->col, j->x + (j->n0 * g->C + j->gi * g->Cg) * g->Pin, g, j->ld, b0 * 16, p1);
  (void)thread;
}

static void conv_epilogue_rows(void *arg, int64_t m0, int64_t m1, int thread) {
  const conv_job_t *j = arg;
  const conv_geom_t *g = j->g;
  float *yr = j->y + (j->n0 * g->M + j->gi * g->Mg + m0) * g->P;
  conv_epilogue(yr, g->P, m1 - m0, g->P, j->b ? j->b + j->gi * g->Mg + m0 : NULL, g);
  (void)thread;
}

static void conv_rows(oc_pool_t *pool, const conv_job_t *j) {
  const conv_geom_t *g = j->g;
  const float *B = j->x + (j->n0 * g->C + j->gi * g->Cg) * g->Pin;
  if (j->col) {
    oc_parallel_for(pool, (g->P + 15) / 16, oc_grain(g->K * 16), conv_im2col_blocks, (void *)j);
    B = j->col;
  }
  float *C = j->y + (j->n0 * g->M + j->gi * g->Mg) * g->P;
  oc_sgemm(pool, 0, 0, g->Mg, g->P, g->K, 1.0f, j->w + j->gi * g->Mg * g->K, g->K, B,
           j->col ? j->ld : g->P, 0.0f, C, g->P);
  if (j->b || g->act) oc_parallel_for(pool, g->Mg, oc_grain(g->P), conv_epilogue_rows, (void *)j);
}

/* oc_parallel_for over blocks of 16 columns of a conv_job_t. */
typedef struct conv_range_job_s {
  const conv_job_t *job;
  int64_t cols;
} conv_range_job_t;

static void conv_blocks_part(void *arg, int64_t b0, int64_t b1, int thread) {
  const conv_range_job_t *r = arg;
  int64_t c0 = b0 * 16, c1 = b1 * 16 < r->cols ? b1 * 16 : r->cols;
  conv_part((void *)r->job, c0, c1, thread);
}

/* --- register tiles ------------------------------------------------------- */

/* Ungrouped convolutions run on the register tiles of tile_gemm.h instead
 * of OpenBLAS, whose sgemm packs both operands again on every call:
 *   - over positions (maps of at least 512 positions, or of 64 with
 *     weights in ONNX's layout and one image): per image and panel of 32
 *     output positions, its im2col columns (K, 32) are built into the
 *     workspace, then every tile of up to 14 output channels x 32 positions
 *     multiplies the weights' rows (broadcast; either layout) by them and
 *     stores y with the bias and the activation (one parallel phase per
 *     image; the panel stays in the L1 cache);
 *   - over output channels (smaller maps, packed weights): the im2col
 *     matrix (K, nb * P) of a chunk of nb images (conv_fwd_chunk; the input
 *     itself for 1x1 stride-1 convolutions), then per panel of 32 output
 *     channels (its packed weights, (K, 32), stay in the L2 cache) tiles of
 *     up to 14 positions of one image x 32 channels, stored transposed into
 *     y. */
enum { CONV_TILE_COLS = 32, CONV_TILE_MIN_P = 64 };

static int conv_tiled_by_positions(const conv_geom_t *g) {
  return conv_fwd_chunk(g) == 1 && g->P >= CONV_TILE_MIN_P && (g->packed || !g->direct);
}

static int conv_tiled(const conv_geom_t *g) {
  conv_geom_t t;
  int64_t klo[3];
  if (g->G != 1 || g->K == 0 || conv_trim(g, &t, klo)) return 0;
  /* (unpacked 1x1 stride-1 convolutions multiply the input itself: no copy) */
  return conv_tiled_by_positions(g) || g->packed;
}

/* Workspace floats of conv_tiled_run. */
static uint64_t conv_tiled_floats(const conv_geom_t *g) {
  if (conv_tiled_by_positions(g))
    return (uint64_t)g->K * (uint64_t)((g->P + CONV_TILE_COLS - 1) / CONV_TILE_COLS * CONV_TILE_COLS);
  return g->direct ? 0 : (uint64_t)g->K * (uint64_t)g->P * (uint64_t)conv_fwd_chunk(g);
}

typedef struct conv_tile_job_s {
  const conv_geom_t *g;
  const float *x, *w, *b; /* x: the image's (by positions) or the chunk's first */
  float *y, *col;         /* y: the same image's or chunk's */
  int64_t nbj, ld;        /* by channels: the chunk's images, col's row length */
  int rows;               /* oc_tile_rows(2) */
} conv_tile_job_t;

/* Tiles over positions: panels [q0, q1) of 32 output positions. */
static void conv_tile_positions(void *arg, int64_t q0, int64_t q1, int thread) {
  const conv_tile_job_t *j = arg;
  const conv_geom_t *g = j->g;
  const int64_t K = g->K, P = g->P;
  for (int64_t q = q0; q < q1; q++) {
    int64_t p0 = q * CONV_TILE_COLS, p1 = p0 + CONV_TILE_COLS < P ? p0 + CONV_TILE_COLS : P;
    float *panel = j->col + q * K * CONV_TILE_COLS;
    im2col_range(panel - p0, j->x, g, CONV_TILE_COLS, p0, p1);
    /* rows of up to 14 output channels, not across the 32-channel panels of
     * packed weights */
    for (int64_t m0 = 0; m0 < g->M; m0 += 32) {
      int64_t width = g->M - m0 < 32 ? g->M - m0 : 32, groups = oc_tile_groups(width, j->rows);
      for (int64_t gi = 0; gi < groups; gi++) {
        int64_t r0 = m0 + oc_tile_group(width, groups, gi), r1 = m0 + oc_tile_group(width, groups, gi + 1);
        oc_tile_t t = {.K = K, .b = panel, .ldb = CONV_TILE_COLS, .c = j->y + r0 * P + p0,
                       .rs = P, .cs = 1, .rows = (int)(r1 - r0), .cols = (int)(p1 - p0),
                       .epilogue = 1, .bias_row = j->b ? j->b + r0 : NULL, .act = g->act,
                       .lo = g->lo, .hi = g->hi};
        if (g->packed) { /* panel m0: (K, width), channel fastest */
          t.a = j->w + m0 * K + (r0 - m0);
          t.lda = width;
          t.a_kmajor = 1;
        } else {
          t.a = j->w + r0 * K;
          t.lda = K;
        }
        oc_tile_run(&t, 2);
      }
    }
  }
  (void)thread;
}

/* The chunk's im2col matrix (K, nbj * P), rows of image i at columns i * P:
 * (image, input channel) pairs [b0, b1). */
static void conv_tile_im2col(void *arg, int64_t b0, int64_t b1, int thread) {
  const conv_tile_job_t *j = arg;
  const conv_geom_t *g = j->g;
  const int64_t kvol = g->k[0] * g->k[1] * g->k[2];
  conv_geom_t one = *g; /* one input channel */
  one.Cg = 1;
  for (int64_t pair = b0; pair < b1; pair++) {
    int64_t i = pair / g->C, ch = pair % g->C;
    im2col_range(j->col + ch * kvol * j->ld + i * g->P, j->x + (i * g->C + ch) * g->Pin, &one,
                 j->ld, 0, g->P);
  }
  (void)thread;
}

/* Tiles over output channels: panels [q0, q1) of 32 output channels, for
 * every image of the chunk. */
static void conv_tile_channels(void *arg, int64_t q0, int64_t q1, int thread) {
  const conv_tile_job_t *j = arg;
  const conv_geom_t *g = j->g;
  const int64_t K = g->K, P = g->P, groups = oc_tile_groups(P, j->rows);
  for (int64_t q = q0; q < q1; q++) {
    int64_t m0 = q * 32, width = g->M - m0 < 32 ? g->M - m0 : 32;
    for (int64_t i = 0; i < j->nbj; i++) {
      /* image i's (K, P) columns: its input itself when direct */
      const float *a = g->direct ? j->x + i * g->C * P : j->col + i * P;
      int64_t lda = g->direct ? P : j->ld;
      float *yi = j->y + i * g->M * P;
      for (int64_t gi = 0; gi < groups; gi++) {
        int64_t r0 = oc_tile_group(P, groups, gi), r1 = oc_tile_group(P, groups, gi + 1);
        oc_tile_t t = {.K = K, .a = a + r0, .lda = lda, .a_kmajor = 1, .b = j->w + m0 * K,
                       .ldb = width, .c = yi + m0 * P + r0, .rs = 1, .cs = P,
                       .rows = (int)(r1 - r0), .cols = (int)width, .epilogue = 1,
                       .bias_col = j->b ? j->b + m0 : NULL, .act = g->act, .lo = g->lo,
                       .hi = g->hi};
        oc_tile_run(&t, width > 16 ? 2 : 1);
      }
    }
  }
  (void)thread;
}

/* y (N, M, P) = act(w @ im2col(x) + b) on register tiles (conv_tiled). */
static void conv_tiled_run(oc_pool_t *pool, const conv_geom_t *g, const float *x, const float *w,
                           const float *b, float *y, float *ws) {
  conv_tile_job_t j = {.g = g, .w = w, .b = b, .col = ws, .rows = oc_tile_rows(2)};
  if (conv_tiled_by_positions(g)) {
    int64_t panels = (g->P + CONV_TILE_COLS - 1) / CONV_TILE_COLS;
    for (int64_t n = 0; n < g->N; n++) {
      j.x = x + n * g->C * g->Pin;
      j.y = y + n * g->M * g->P;
      oc_parallel_for(pool, panels, oc_grain(g->M * g->K * CONV_TILE_COLS / 16 + g->K * 32),
                      conv_tile_positions, &j);
    }
    return;
  }
  const int64_t nb = conv_fwd_chunk(g);
  j.ld = nb * g->P;
  for (int64_t n0 = 0; n0 < g->N; n0 += nb) {
    j.nbj = g->N - n0 < nb ? g->N - n0 : nb;
    j.x = x + n0 * g->C * g->Pin;
    j.y = y + n0 * g->M * g->P;
    if (!g->direct)
      oc_parallel_for(pool, j.nbj * g->C, oc_grain(g->K / g->C * g->P), conv_tile_im2col, &j);
    oc_parallel_for(pool, (g->M + 31) / 32, oc_grain(32 * g->K * g->P * j.nbj / 16),
                    conv_tile_channels, &j);
  }
}

/* y is (N, M, P), x is (N, C, Pin), w is (M, K), b is (M) or NULL; ws holds
 * the column matrix of nb images and their staged product (see conv_infer).
 * Per group and chunk of nb images:
 *   y[n, g*Mg:(g+1)*Mg, :] = act(w[g*Mg:(g+1)*Mg, :] @ im2col(x[n, g*Cg:(g+1)*Cg]) + b) */
static oc_status_t conv_run(const oc_op_call_t *c) {
  conv_geom_t g;
  OC_RETURN_IF_ERROR(conv_geom(c, &g));
  const float *x = c->in[0]->data, *w = c->in[1]->data;
  const float *b = c->n_in > 2 && c->in[2] ? c->in[2]->data : NULL;
  float *y = c->out[0]->data;
  if (g.N == 0 || g.Mg == 0 || g.P == 0) return OC_OK;
  if (g.K == 0) { /* no input channels: y is act(bias) */
    for (int64_t n = 0; n < g.N; n++) {
      float *yn = y + n * g.M * g.P;
      memset(yn, 0, (size_t)(g.M * g.P) * sizeof(float));
      conv_epilogue(yn, g.P, g.M, g.P, b, &g);
    }
    return OC_OK;
  }
  oc_winograd_t wg;
  if (conv_winograd(&g, &wg)) {
    oc_winograd_run(c->pool, &wg, y, x, w, b, c->workspace);
    return OC_OK;
  }
  if (conv_tiled(&g)) {
    conv_tiled_run(c->pool, &g, x, w, b, y, c->workspace);
    return OC_OK;
  }
  if (conv_depthwise(&g)) {
    dw_job_t j = {&g, x, w, b, y};
    oc_parallel_for(c->pool, g.N * g.C, oc_grain(g.P * g.k[1] * g.k[2] / 4 + g.Pin),
                    dw_part, &j);
    return OC_OK;
  }
  const int64_t nb = conv_fwd_chunk(&g), ld = nb * g.P;
  conv_geom_t t;
  int64_t klo[3];
  int trimmed = conv_trim(&g, &t, klo);
  float *ws = c->workspace;
  float *col = (!t.direct || nb > 1) ? ws : NULL;
  if (col) ws += t.K * ld;
  float *stage = nb > 1 ? ws : NULL;
  if (stage) ws += g.Mg * ld;
  if (trimmed) {
    conv_trim_weights(ws, (float *)w, &g, &t, klo, 0);
    w = ws;
    ws += g.M * t.K;
  }
  float *xt = conv_bm(&g, nb) ? ws : NULL;
  if (xt) ws += g.Cg * g.Pin * nb;
  float *wp = conv_ts(&t, nb) ? ws : NULL;
  if (wp) conv_ts_weights(wp, (float *)w, &t, 0);
  for (int64_t gi = 0; gi < g.G; gi++) {
    for (int64_t n0 = 0; n0 < g.N; n0 += nb) {
      int64_t nbj = g.N - n0 < nb ? g.N - n0 : nb;
      conv_job_t j = {&t, x, w, b, y, col, stage, gi, n0, nbj, ld, xt};
      if (xt) oc_parallel_for(c->pool, g.Cg, oc_grain(g.Pin * nbj), bm_in_part, &j);
      if (wp) { /* per output position, then the batch-minor store */
        const int64_t CP = g.C * g.Pin;
        for (int64_t p = 0; p < g.P; p++)
          oc_sgemm(c->pool, 0, 0, g.M, nbj, CP, 1.0f, wp + p * g.M * CP, CP, xt, nbj, 0.0f,
                   stage + p * nbj, ld);
        oc_parallel_for(c->pool, nbj * g.P, oc_grain(g.Mg), conv_bm_store_part, &j);
        continue;
      }
      /* Column blocks of 16 per thread part. */
      int64_t cols = nbj * g.P, blocks = (cols + 15) / 16;
      /* per block: Mg*K*16 multiply-adds and K*16 column values */
      int64_t grain = oc_grain(t.Mg * t.K + t.K * 16);
      if (nbj == 1 && !stage && cols < 256 && t.Mg >= 4 * cols &&
          oc_parallel_parts(c->pool, t.Mg / 16, oc_grain(cols * t.K)) > 1) {
        conv_rows(c->pool, &j);
      } else if (oc_parallel_parts(c->pool, blocks, grain) <= 1) {
        conv_part(&j, 0, cols, 0);
      } else {
        conv_range_job_t r = {&j, cols};
        oc_parallel_for(c->pool, blocks, grain, conv_blocks_part, &r);
      }
    }
  }
  return OC_OK;
}

const oc_op_def_t oc_op_conv = {"Conv", 2, 3, 1, 1, conv_infer, conv_run};

/* --- backward kernels ----------------------------------------------------- */

/*
 * ConvBwdData: the gradient of Conv with respect to its input x.
 *   inputs:  dy (float32, (N, M, O1..On)), w (float32, (M, C/group, k1..kn))
 *   outputs: dx (float32, (N, C, D1..Dn)), C = group * w.dims[1]
 *   ints:    [group, strides[n], pads[2n], dilations[n], D1..Dn]: the forward
 *            Conv's ints followed by x's spatial dims (the output size alone
 *            does not determine them); the forward geometry of an x of that
 *            shape must give dy's dims.
 *   floats:  none
 *   workspace: for the GEMM forms, the column matrices of nb batch elements
 *            side by side, (C/group * k1..kn) x (nb * O1..On) floats, plus dy's
 *            slices packed the same way, (M/group) x (nb * O1..On), when nb > 1;
 *            nb = 1 unless O1..On < 256 (then enough for 256 columns, at least
 *            16 for maps of at most 64 positions, at most N); 0 for the direct
 *            (1x1, stride 1, unpadded) case with nb = 1; plus the buffers of
 *            conv_ws_bytes. Winograd (3x3 stride 1): winograd.c's.
 *
 * ConvBwdFilter: the gradient of Conv with respect to its weight w.
 *   inputs:  x (float32, (N, C, D1..Dn)), dy (float32, (N, M, O1..On))
 *   outputs: dw (float32, (M, C/group, k1..kn))
 *   ints:    [group, strides[n], pads[2n], dilations[n], k1..kn]: the forward
 *            Conv's ints followed by the kernel's spatial dims.
 *   floats:  none
 *   workspace: as ConvBwdData.
 *
 * The bias gradient is a ReduceSum of dy over N and the spatial axes.
 */

/* Rebuilds the forward call (x type |xt|, w type |wt|, the first 1 + 4n ints
 * of |c|) and runs conv_geom on it, then requires |dy| to be the forward
 * output's type. */
static oc_status_t conv_bwd_geom(const oc_op_call_t *c, oc_tensor_t *xt, oc_tensor_t *wt,
                                 const oc_tensor_t *dy, conv_geom_t *g) {
  char b1[160], b2[160];
  OC_RETURN_IF_ERROR(oc_check_type(xt, "input X (from the ints)"));
  OC_RETURN_IF_ERROR(oc_check_type(wt, "input W (from the ints)"));
  oc_tensor_t *ins[2] = {xt, wt};
  int n = xt->rank - 2;
  oc_op_call_t f = {.ints = c->ints, .n_ints = 1 + 4 * n, .n_in = 2, .in = ins};
  OC_RETURN_IF_ERROR(conv_geom(&f, g));
  int ok = dy->rank == xt->rank && dy->dims[0] == g->N && dy->dims[1] == g->M;
  for (int i = 0; i < n && ok; i++) ok = dy->dims[2 + i] == g->out[3 - n + i];
  if (!ok) {
    oc_tensor_t yt = *dy;
    yt.rank = xt->rank;
    yt.dims[0] = g->N;
    yt.dims[1] = g->M;
    for (int i = 0; i < n; i++) yt.dims[2 + i] = g->out[3 - n + i];
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input dY is %s; the forward Conv gives %s",
                          oc_type_str(dy, b1, sizeof b1), oc_type_str(&yt, b2, sizeof b2));
  }
  return OC_OK;
}

/* Checks the rank of |t| (3..5) and the int count (1 + 5n); returns n. */
static oc_status_t conv_bwd_rank(const oc_op_call_t *c, const oc_tensor_t *t, const char *what,
                                 int *n) {
  char buf[160];
  if (t->rank < 3 || t->rank > 5)
    return oc_make_status(OC_STATUS_UNSUPPORTED,
                          "input %s is %s; Conv gradients take 1 to 3 spatial axes", what,
                          oc_type_str(t, buf, sizeof buf));
  *n = t->rank - 2;
  if (c->n_floats != 0) return bad("Conv gradients take no floats, got %lld", c->n_floats);
  if (c->n_ints != 1 + 5 * *n)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "Conv gradient with %d spatial axes takes %d ints, got %d", *n,
                          1 + 5 * *n, c->n_ints);
  return OC_OK;
}

/* Backward GEMMs over few output positions (deep layers: P = 1, 4, 16) are
 * thin and slow, so the backward kernels multiply a chunk of |nb| batch
 * elements at once: their column matrices side by side, (K, nb*P), and dy
 * packed alongside, (Mg, nb*P). Chunks aim at 256 columns; nb = 1 (no
 * packing) when P alone reaches that or for the direct case. */
static int64_t conv_bwd_chunk(const conv_geom_t *g) { return conv_chunk(g, 256); }

/* Workspace (conv_ws_bytes): the (K, nb*P) column matrix of the trimmed
 * geometry, (nb > 1) the packed (Mg, nb*P) dy, (trimmed) the weight slice. */
static oc_status_t conv_ws(const conv_geom_t *g, size_t *ws) {
  return conv_ws_bytes(g, conv_bwd_chunk(g), ws);
}

static void col2im_add(float *x, const float *col, const conv_geom_t *g, int64_t ld);

/* The parallel pieces of the backward kernels, for one group and one chunk
 * of nbj images from n0 (t: the trimmed geometry). */
typedef struct conv_bwd_job_s {
  const conv_geom_t *t;
  const float *x, *dy;
  float *dx, *col, *dyp;
  int64_t gi, n0, nbj, ld;
  float *xt; /* batch-minor: the transposed input (or dx) of the chunk, else NULL */
} conv_bwd_job_t;

/* Batch-minor dyp rows [m0, m1): dyp[m, p*nbj + j] = dy[n0 + j, gi*Mg + m, p]. */
static void pack_dy_bm_part(void *arg, int64_t m0, int64_t m1, int thread) {
  const conv_bwd_job_t *j = arg;
  const conv_geom_t *g = j->t;
  for (int64_t m = m0; m < m1; m++) {
    float *dst = j->dyp + m * j->ld;
    for (int64_t i = 0; i < j->nbj; i++) {
      const float *src = j->dy + ((j->n0 + i) * g->M + j->gi * g->Mg + m) * g->P;
      for (int64_t p = 0; p < g->P; p++) dst[p * j->nbj + i] = src[p];
    }
  }
  (void)thread;
}

/* Channels [c0, c1) of the chunk's transposed input. */
static void bwd_bm_in_part(void *arg, int64_t c0, int64_t c1, int thread) {
  const conv_bwd_job_t *j = arg;
  bm_transpose_in(j->xt, j->x, j->t, j->gi, j->n0, j->nbj, c0, c1);
  (void)thread;
}

/* Blocks [b0, b1) of 16 columns of the batch-minor column matrix. */
static void im2col_bm_part(void *arg, int64_t b0, int64_t b1, int thread) {
  const conv_bwd_job_t *j = arg;
  int64_t cols = j->nbj * j->t->P;
  im2col_bm(j->col, j->xt, j->t, j->ld, j->nbj, b0 * 16, b1 * 16 < cols ? b1 * 16 : cols);
  (void)thread;
}

/* Input channels [c0, c1): dx of the chunk's images = the transposed dx. */
static void bm_out_part(void *arg, int64_t c0, int64_t c1, int thread) {
  const conv_bwd_job_t *j = arg;
  bm_transpose_out(j->dx, j->xt, j->t, j->gi, j->n0, j->nbj, c0, c1);
  (void)thread;
}

/* Input channels [c0, c1): dx of the chunk's images = col2im(col), through
 * the transposed dx. */
static void col2im_bm_part(void *arg, int64_t c0, int64_t c1, int thread) {
  const conv_bwd_job_t *j = arg;
  col2im_bm(j->xt, j->col, j->t, j->ld, j->nbj, c0, c1);
  bm_transpose_out(j->dx, j->xt, j->t, j->gi, j->n0, j->nbj, c0, c1);
  (void)thread;
}

/* dyp rows [m0, m1) = dy's rows m of the chunk's images side by side. */
static void pack_dy_part(void *arg, int64_t m0, int64_t m1, int thread) {
  const conv_bwd_job_t *j = arg;
  const conv_geom_t *g = j->t;
  for (int64_t m = m0; m < m1; m++)
    for (int64_t i = 0; i < j->nbj; i++)
      memcpy(j->dyp + m * j->ld + i * g->P, j->dy + ((j->n0 + i) * g->M + j->gi * g->Mg + m) * g->P,
             (size_t)g->P * sizeof(float));
  (void)thread;
}

/* Blocks [b0, b1) of 16 columns of the chunk's column matrix. */
static void im2col_part(void *arg, int64_t b0, int64_t b1, int thread) {
  const conv_bwd_job_t *j = arg;
  const conv_geom_t *g = j->t;
  int64_t c0 = b0 * 16, c1 = b1 * 16 < j->nbj * g->P ? b1 * 16 : j->nbj * g->P;
  for (int64_t im = c0 / g->P; im * g->P < c1; im++) {
    int64_t p0 = c0 - im * g->P > 0 ? c0 - im * g->P : 0;
    int64_t p1 = c1 - im * g->P < g->P ? c1 - im * g->P : g->P;
    im2col_range(j->col + im * g->P, j->x + ((j->n0 + im) * g->C + j->gi * g->Cg) * g->Pin, g,
                 j->ld, p0, p1);
  }
  (void)thread;
}

/* Input channels [c0, c1) of the chunk's images: dx = col2im(col). */
static void col2im_part(void *arg, int64_t c0, int64_t c1, int thread) {
  const conv_bwd_job_t *j = arg;
  conv_geom_t g = *j->t;
  int64_t kvol = g.k[0] * g.k[1] * g.k[2];
  g.Cg = c1 - c0;
  for (int64_t i = 0; i < j->nbj; i++) {
    float *dxi = j->dx + ((j->n0 + i) * g.C + j->gi * j->t->Cg + c0) * g.Pin;
    memset(dxi, 0, (size_t)(g.Cg * g.Pin) * sizeof(float));
    col2im_add(dxi, j->col + c0 * kvol * j->ld + i * g.P, &g, j->ld);
  }
  (void)thread;
}

/* dyp (Mg, nb*P) = dy[n0..n0+nbj, g*Mg:(g+1)*Mg, :] side by side. */
__attribute__((unused)) static void pack_dy(float *dyp, const float *dy, const conv_geom_t *g,
                                            int64_t gi, int64_t n0, int64_t nbj, int64_t ld) {
  for (int64_t m = 0; m < g->Mg; m++)
    for (int64_t j = 0; j < nbj; j++)
      memcpy(dyp + m * ld + j * g->P, dy + ((n0 + j) * g->M + gi * g->Mg + m) * g->P,
             (size_t)g->P * sizeof(float));
}

/* Fills |g| for ConvBwdData and the type of dx in |xt|. */
static oc_status_t conv_bwd_data_geom(const oc_op_call_t *c, oc_tensor_t *xt, conv_geom_t *g) {
  const oc_tensor_t *dy = c->in[0], *w = c->in[1];
  OC_RETURN_IF_ERROR(oc_expect_dtype(dy, OC_DTYPE_FLOAT32, "input dY"));
  OC_RETURN_IF_ERROR(oc_expect_dtype(w, OC_DTYPE_FLOAT32, "input W"));
  int n = 0;
  OC_RETURN_IF_ERROR(conv_bwd_rank(c, dy, "dY", &n));
  if (w->rank != dy->rank)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input W has rank %d; expected %d",
                          w->rank, dy->rank);
  int64_t group = c->ints[0];
  if (group < 1 || group > OC_MAX_DIM) return bad("group is %lld; it must be positive", group);
  uint64_t C;
  if (oc_mul_overflows((uint64_t)group, (uint64_t)w->dims[1], &C) || C > (uint64_t)OC_MAX_DIM)
    return bad("group %lld times W's channels overflows", group);
  memset(xt, 0, sizeof *xt);
  xt->dtype = OC_DTYPE_FLOAT32;
  xt->rank = dy->rank;
  xt->dims[0] = dy->dims[0];
  xt->dims[1] = (int64_t)C;
  const int64_t *in_dims = c->ints + 1 + 4 * n;
  for (int i = 0; i < n; i++) {
    if (in_dims[i] < 0 || in_dims[i] > OC_MAX_DIM)
      return bad("input spatial dim %lld is out of range", in_dims[i]);
    xt->dims[2 + i] = in_dims[i];
  }
  oc_tensor_t wt = *w;
  return conv_bwd_geom(c, xt, &wt, dy, g);
}

/* The data gradient of a 3x3 stride-1 convolution is the 3x3 convolution of
 * dy with the weights transposed and flipped, padded by 2 - pad: Winograd
 * when it pays (conv_winograd). */
static int conv_bwd_winograd(const conv_geom_t *g, oc_winograd_t *w) {
  if (g->G != 1 || g->in[0] != 1 || g->k[0] != 1 || g->k[1] != 3 || g->k[2] != 3 ||
      g->s[1] != 1 || g->s[2] != 1 || g->d[1] != 1 || g->d[2] != 1)
    return 0;
  if (g->pb[1] > 2 || g->pb[2] > 2 || g->pe[1] > 2 || g->pe[2] > 2) return 0;
  *w = (oc_winograd_t){.N = g->N, .C = g->M, .M = g->C, .H = g->out[1], .W = g->out[2],
                       .OH = g->in[1], .OW = g->in[2], .ph = 2 - g->pb[1], .pw = 2 - g->pb[2],
                       .flip = 1};
  return oc_winograd_applies(w);
}

static oc_status_t conv_bwd_data_infer(const oc_op_call_t *c, size_t *ws) {
  conv_geom_t g;
  oc_tensor_t xt;
  OC_RETURN_IF_ERROR(conv_bwd_data_geom(c, &xt, &g));
  oc_tensor_set_type(c->out[0], OC_DTYPE_FLOAT32, xt.rank, xt.dims);
  oc_winograd_t wg;
  if (conv_bwd_winograd(&g, &wg)) {
    uint64_t bytes = oc_winograd_workspace(&wg);
    if (bytes > OC_MAX_TENSOR_BYTES)
      return oc_make_status(OC_STATUS_RESOURCE_LIMIT, "Conv Winograd workspace exceeds the limit");
    *ws = (size_t)bytes;
    return OC_OK;
  }
  return conv_ws(&g, ws);
}

/* Adds col, a (Cg*kD*kH*kW, oD*oH*oW) column matrix with rows |ld| floats
 * apart, into x, (Cg, iD, iH, iW): the adjoint of im2col (padding taps are
 * dropped). */
static void col2im_add(float *x, const float *col, const conv_geom_t *g, int64_t ld) {
  const int64_t iD = g->in[0], iH = g->in[1], iW = g->in[2];
  const int64_t oD = g->out[0], oH = g->out[1], oW = g->out[2];
  const float *row = col;
  for (int64_t ch = 0; ch < g->Cg; ch++) {
    float *xc = x + ch * iD * iH * iW;
    for (int64_t kd = 0; kd < g->k[0]; kd++) {
      for (int64_t kh = 0; kh < g->k[1]; kh++) {
        for (int64_t kw = 0; kw < g->k[2]; kw++, row += ld) {
          int64_t offd = kd * g->d[0] - g->pb[0], offh = kh * g->d[1] - g->pb[1];
          int64_t offw = kw * g->d[2] - g->pb[2];
          int64_t wlo, whi;
          valid_range(offw, g->s[2], iW, oW, &wlo, &whi);
          if (whi <= wlo) continue;
          for (int64_t od = 0; od < oD; od++) {
            int64_t id = od * g->s[0] + offd;
            if (id < 0 || id >= iD) continue;
            for (int64_t oh = 0; oh < oH; oh++) {
              int64_t ih = oh * g->s[1] + offh;
              if (ih < 0 || ih >= iH) continue;
              const float *src = row + (od * oH + oh) * oW;
              float *dst = xc + (id * iH + ih) * iW + offw; /* + ow * sw */
              if (g->s[2] == 1) {
                for (int64_t ow = wlo; ow < whi; ow++) dst[ow] += src[ow];
              } else {
                const int64_t sw = g->s[2];
                for (int64_t ow = wlo; ow < whi; ow++) dst[ow * sw] += src[ow];
              }
            }
          }
        }
      }
    }
  }
}

/* dx is (N, C, Pin), dy is (N, M, P), w is (M, K); ws holds the (K, nb*P)
 * column matrix and the packed dy (see conv_bwd_chunk). Per group and chunk
 * of nb batch elements:
 *   col = w[g*Mg:(g+1)*Mg, :]^T @ [dy[n, g*Mg:(g+1)*Mg, :] for n in chunk]
 *   dx[n, g*Cg:(g+1)*Cg] = col2im(col's block n)   (the GEMM writes dx itself
 *                                                     when direct) */
static oc_status_t conv_bwd_data_run(const oc_op_call_t *c) {
  conv_geom_t g;
  oc_tensor_t xt;
  OC_RETURN_IF_ERROR(conv_bwd_data_geom(c, &xt, &g));
  const float *dy = c->in[0]->data, *w = c->in[1]->data;
  float *dx = c->out[0]->data;
  int64_t numel = g.N * g.C * g.Pin;
  if (numel == 0) return OC_OK;
  if (g.Mg == 0 || g.P == 0 || g.K == 0) {
    memset(dx, 0, (size_t)numel * sizeof(float));
    return OC_OK;
  }
  oc_winograd_t wgd;
  if (conv_bwd_winograd(&g, &wgd)) {
    oc_winograd_run(c->pool, &wgd, dx, dy, w, NULL, c->workspace);
    return OC_OK;
  }
  const int64_t nb = conv_bwd_chunk(&g), ld = nb * g.P;
  conv_geom_t t;
  int64_t klo[3];
  int trimmed = conv_trim(&g, &t, klo);
  float *ws = c->workspace;
  float *col = (!t.direct || nb > 1) ? ws : NULL;
  if (col) ws += t.K * ld;
  float *dyp = nb > 1 ? ws : NULL;
  if (dyp) ws += g.Mg * ld;
  if (trimmed) {
    conv_trim_weights(ws, (float *)w, &g, &t, klo, 0);
    w = ws;
    ws += g.M * t.K;
  }
  float *bmx = conv_bm(&g, nb) ? ws : NULL;
  if (bmx) ws += g.Cg * g.Pin * nb;
  float *wp = conv_ts(&t, nb) ? ws : NULL;
  if (wp) conv_ts_weights(wp, (float *)w, &t, 0);
  for (int64_t gi = 0; gi < g.G; gi++) {
    const float *wg = w + gi * g.Mg * t.K;
    for (int64_t n0 = 0; n0 < g.N; n0 += nb) {
      int64_t nbj = g.N - n0 < nb ? g.N - n0 : nb;
      conv_bwd_job_t j = {&t, NULL, dy, dx, col, dyp, gi, n0, nbj, ld, bmx};
      if (wp) { /* dxt = sum over positions of Wp^T dy_p, then dx */
        const int64_t CP = g.C * g.Pin;
        oc_parallel_for(c->pool, g.Mg, oc_grain(nbj * g.P), pack_dy_bm_part, &j);
        for (int64_t p = 0; p < g.P; p++)
          oc_sgemm(c->pool, 1, 0, CP, nbj, g.M, 1.0f, wp + p * g.M * CP, CP, dyp + p * nbj, ld,
                   p ? 1.0f : 0.0f, bmx, nbj);
        oc_parallel_for(c->pool, g.Cg, oc_grain(g.Pin * nbj), bm_out_part, &j);
        continue;
      }
      if (bmx) {
        oc_parallel_for(c->pool, g.Mg, oc_grain(nbj * g.P), pack_dy_bm_part, &j);
        oc_sgemm(c->pool, 1, 0, t.K, nbj * g.P, g.Mg, 1.0f, wg, t.K, dyp, ld, 0.0f, col, ld);
        oc_parallel_for(c->pool, g.Cg, oc_grain(t.K / g.Cg * nbj * g.P), col2im_bm_part, &j);
        continue;
      }
      if (!col) { /* direct, one image: the product is dx */
        oc_sgemm(c->pool, 1, 0, t.K, g.P, g.Mg, 1.0f, wg, t.K, dy + (n0 * g.M + gi * g.Mg) * g.P,
                 g.P, 0.0f, dx + (n0 * g.C + gi * g.Cg) * g.Pin, g.P);
        continue;
      }
      const float *B = dy + (n0 * g.M + gi * g.Mg) * g.P;
      if (dyp) {
        oc_parallel_for(c->pool, g.Mg, oc_grain(nbj * g.P), pack_dy_part, &j);
        B = dyp;
      }
      oc_sgemm(c->pool, 1, 0, t.K, nbj * g.P, g.Mg, 1.0f, wg, t.K, B, ld, 0.0f, col, ld);
      oc_parallel_for(c->pool, g.Cg, oc_grain(t.K / g.Cg * nbj * g.P), col2im_part, &j);
    }
  }
  return OC_OK;
}

const oc_op_def_t oc_op_conv_bwd_data = {"ConvBwdData", 2, 2, 1, 1, conv_bwd_data_infer,
                                         conv_bwd_data_run};

/* Fills |g| for ConvBwdFilter and the type of dw in |wt|. */
static oc_status_t conv_bwd_filter_geom(const oc_op_call_t *c, oc_tensor_t *wt, conv_geom_t *g) {
  const oc_tensor_t *x = c->in[0], *dy = c->in[1];
  OC_RETURN_IF_ERROR(oc_expect_dtype(x, OC_DTYPE_FLOAT32, "input X"));
  OC_RETURN_IF_ERROR(oc_expect_dtype(dy, OC_DTYPE_FLOAT32, "input dY"));
  int n = 0;
  OC_RETURN_IF_ERROR(conv_bwd_rank(c, x, "X", &n));
  if (dy->rank != x->rank)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input dY has rank %d; expected %d",
                          dy->rank, x->rank);
  int64_t group = c->ints[0];
  if (group < 1 || group > OC_MAX_DIM) return bad("group is %lld; it must be positive", group);
  if (x->dims[1] % group != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "group %lld does not divide the %lld input channels", (long long)group,
                          (long long)x->dims[1]);
  memset(wt, 0, sizeof *wt);
  wt->dtype = OC_DTYPE_FLOAT32;
  wt->rank = x->rank;
  wt->dims[0] = dy->dims[1];
  wt->dims[1] = x->dims[1] / group;
  const int64_t *kernel = c->ints + 1 + 4 * n;
  for (int i = 0; i < n; i++) {
    if (kernel[i] < 1 || kernel[i] > OC_MAX_DIM)
      return bad("kernel dim %lld is out of range", kernel[i]);
    wt->dims[2 + i] = kernel[i];
  }
  oc_tensor_t xt = *x;
  return conv_bwd_geom(c, &xt, wt, dy, g);
}

static oc_status_t conv_bwd_filter_infer(const oc_op_call_t *c, size_t *ws) {
  conv_geom_t g;
  oc_tensor_t wt;
  OC_RETURN_IF_ERROR(conv_bwd_filter_geom(c, &wt, &g));
  oc_tensor_set_type(c->out[0], OC_DTYPE_FLOAT32, wt.rank, wt.dims);
  oc_winograd_t wg;
  if (conv_winograd_filter(&g, &wg)) {
    uint64_t bytes = oc_winograd_filter_workspace(&wg);
    if (bytes > OC_MAX_TENSOR_BYTES)
      return oc_make_status(OC_STATUS_RESOURCE_LIMIT, "Conv Winograd workspace exceeds the limit");
    *ws = (size_t)bytes;
    return OC_OK;
  }
  return conv_ws(&g, ws);
}

/* dw is (M, K), x is (N, C, Pin), dy is (N, M, P); ws holds the (K, nb*P)
 * column matrix and the packed dy (see conv_bwd_chunk). Per group:
 *   dw[g*Mg:(g+1)*Mg, :] = sum over chunks of
 *       [dy[n, g*Mg:(g+1)*Mg, :] for n in chunk] @ [im2col(x[n, g*Cg:(g+1)*Cg]) for n in chunk]^T
 * (x itself is the column matrix when direct). */
static oc_status_t conv_bwd_filter_run(const oc_op_call_t *c) {
  conv_geom_t g;
  oc_tensor_t wt;
  OC_RETURN_IF_ERROR(conv_bwd_filter_geom(c, &wt, &g));
  const float *x = c->in[0]->data, *dy = c->in[1]->data;
  float *dw = c->out[0]->data;
  int64_t numel = g.M * g.K;
  if (numel == 0) return OC_OK;
  if (g.N == 0 || g.P == 0) {
    memset(dw, 0, (size_t)numel * sizeof(float));
    return OC_OK;
  }
  oc_winograd_t wg;
  if (conv_winograd_filter(&g, &wg)) {
    oc_winograd_filter_run(c->pool, &wg, dw, x, dy, c->workspace);
    return OC_OK;
  }
  const int64_t nb = conv_bwd_chunk(&g), ld = nb * g.P;
  conv_geom_t t;
  int64_t klo[3];
  int trimmed = conv_trim(&g, &t, klo);
  float *ws = c->workspace;
  float *col = (!t.direct || nb > 1) ? ws : NULL;
  if (col) ws += t.K * ld;
  float *dyp = nb > 1 ? ws : NULL;
  if (dyp) ws += g.Mg * ld;
  float *dwt = trimmed ? ws : dw; /* the kept taps' gradient, (M, t.K) */
  if (trimmed) ws += g.M * t.K;
  float *xt = conv_bm(&g, nb) ? ws : NULL;
  if (xt) ws += g.Cg * g.Pin * nb;
  float *dwp = conv_ts(&t, nb) ? ws : NULL; /* per-position gradients, (P, M, C * Pin) */
  for (int64_t gi = 0; gi < g.G; gi++) {
    float *dwg = dwt + gi * g.Mg * t.K;
    for (int64_t n0 = 0; n0 < g.N; n0 += nb) {
      int64_t nbj = g.N - n0 < nb ? g.N - n0 : nb;
      conv_bwd_job_t j = {&t, x, dy, NULL, col, dyp, gi, n0, nbj, ld, xt};
      if (dwp) { /* dWp += dy_p xt^T */
        const int64_t CP = g.C * g.Pin;
        oc_parallel_for(c->pool, g.Cg, oc_grain(g.Pin * nbj), bwd_bm_in_part, &j);
        oc_parallel_for(c->pool, g.Mg, oc_grain(nbj * g.P), pack_dy_bm_part, &j);
        for (int64_t p = 0; p < g.P; p++)
          oc_sgemm(c->pool, 0, 1, g.M, CP, nbj, 1.0f, dyp + p * nbj, ld, xt, nbj,
                   n0 == 0 ? 0.0f : 1.0f, dwp + p * g.M * CP, CP);
        continue;
      }
      const float *A = dy + (n0 * g.M + gi * g.Mg) * g.P;
      const float *B = x + (n0 * g.C + gi * g.Cg) * g.Pin;
      if (xt) {
        oc_parallel_for(c->pool, g.Cg, oc_grain(g.Pin * nbj), bwd_bm_in_part, &j);
        oc_parallel_for(c->pool, (nbj * g.P + 15) / 16, oc_grain(t.K * 16), im2col_bm_part, &j);
        oc_parallel_for(c->pool, g.Mg, oc_grain(nbj * g.P), pack_dy_bm_part, &j);
        oc_sgemm(c->pool, 0, 1, g.Mg, t.K, nbj * g.P, 1.0f, dyp, ld, col, ld,
                 n0 == 0 ? 0.0f : 1.0f, dwg, t.K);
        continue;
      }
      if (col) {
        oc_parallel_for(c->pool, (nbj * g.P + 15) / 16, oc_grain(t.K * 16), im2col_part, &j);
        B = col;
      }
      if (dyp) {
        oc_parallel_for(c->pool, g.Mg, oc_grain(nbj * g.P), pack_dy_part, &j);
        A = dyp;
      }
      oc_sgemm(c->pool, 0, 1, g.Mg, t.K, nbj * g.P, 1.0f, A, ld, B, col ? ld : g.P,
               n0 == 0 ? 0.0f : 1.0f, dwg, t.K);
    }
  }
  if (dwp) { /* each position's gradient to its taps */
    memset(dwt, 0, (size_t)(g.M * t.K) * sizeof(float));
    conv_ts_weights(dwp, dwt, &t, 1);
  }
  if (trimmed) conv_trim_weights(dwt, dw, &g, &t, klo, 1);
  return OC_OK;
}

const oc_op_def_t oc_op_conv_bwd_filter = {"ConvBwdFilter", 2, 2, 1, 1, conv_bwd_filter_infer,
                                           conv_bwd_filter_run};
