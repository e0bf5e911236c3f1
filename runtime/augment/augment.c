/* Augmentations for contrastive training (include/onnxc/augment.h): a seeded
 * xoshiro256** generator, SimCLR's transforms on CHW float images, and the
 * per-batch pipeline that samples and applies them.
 *
 * Conventions: images are C x H x W floats, planes contiguous. Coordinates
 * follow torchvision/PyTorch (pixel centres at integers, align_corners=False).
 * Arithmetic on pixel values is in float like torchvision; coordinates and
 * random parameters are in double. */
#include "onnxc/augment.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "oc_base.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* ------------------------------------------------------------------------ */
/* Random numbers                                                           */
/* ------------------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void oc_rng_seed(oc_rng_t *rng, uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; ++i) rng->s[i] = splitmix64(&x);
  /* SplitMix64 is a bijection of distinct counters: the four words cannot
   * all be zero, but keep the invariant explicit. */
  if (!(rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3])) rng->s[0] = 1;
}

static inline uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t rng_next(oc_rng_t *r) {
  uint64_t *s = r->s;
  const uint64_t result = rotl64(s[1] * 5, 7) * 9;
  const uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl64(s[3], 45);
  return result;
}

static inline double rng_uniform(oc_rng_t *r) {
  return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* A uniform double in (0, 1), for logarithms. */
static inline double rng_open01(oc_rng_t *r) {
  return ((double)(rng_next(r) >> 11) + 0.5) * 0x1.0p-53;
}

/* Standard normals by Marsaglia and Tsang's ziggurat (128 layers), with the
 * layer index and the 32-bit abscissa taken from disjoint bits of one draw.
 * The tables are computed once (pthread_once). */
#define ZIG_R 3.442619855899
static uint32_t zig_k[128];
static double zig_w[128], zig_f[128];
static pthread_once_t zig_once = PTHREAD_ONCE_INIT;

static void zig_init(void) {
  const double m1 = 2147483648.0, vn = 9.91256303526217e-3;
  double dn = ZIG_R, tn = dn;
  const double q = vn / exp(-0.5 * dn * dn);
  zig_k[0] = (uint32_t)((dn / q) * m1);
  zig_k[1] = 0;
  zig_w[0] = q / m1;
  zig_w[127] = dn / m1;
  zig_f[0] = 1.0;
  zig_f[127] = exp(-0.5 * dn * dn);
  for (int i = 126; i >= 1; --i) {
    dn = sqrt(-2.0 * log(vn / dn + exp(-0.5 * dn * dn)));
    zig_k[i + 1] = (uint32_t)((dn / tn) * m1);
    tn = dn;
    zig_f[i] = exp(-0.5 * dn * dn);
    zig_w[i] = dn / m1;
  }
}

static double zig_slow(oc_rng_t *r, int32_t hz, int iz) {
  for (;;) {
    const double x = (double)hz * zig_w[iz];
    if (iz == 0) { /* the tail beyond R */
      double t, y;
      do {
        t = -log(rng_open01(r)) * (1.0 / ZIG_R);
        y = -log(rng_open01(r));
      } while (y + y < t * t);
      return hz > 0 ? ZIG_R + t : -ZIG_R - t;
    }
    if (zig_f[iz] + rng_uniform(r) * (zig_f[iz - 1] - zig_f[iz]) < exp(-0.5 * x * x)) return x;
    const uint64_t b = rng_next(r);
    hz = (int32_t)(uint32_t)(b >> 32);
    iz = (int)(b & 127);
    const uint32_t a = hz < 0 ? 0u - (uint32_t)hz : (uint32_t)hz;
    if (a < zig_k[iz]) return (double)hz * zig_w[iz];
  }
}

/* One standard normal; zig_init must have run. */
static inline double rng_normal_fast(oc_rng_t *r) {
  const uint64_t b = rng_next(r);
  const int32_t hz = (int32_t)(uint32_t)(b >> 32);
  const int iz = (int)(b & 127);
  const uint32_t a = hz < 0 ? 0u - (uint32_t)hz : (uint32_t)hz;
  if (a < zig_k[iz]) return (double)hz * zig_w[iz];
  return zig_slow(r, hz, iz);
}

uint64_t oc_rng_next(oc_rng_t *rng) { return rng_next(rng); }

double oc_rng_uniform(oc_rng_t *rng) { return rng_uniform(rng); }

double oc_rng_normal(oc_rng_t *rng) {
  pthread_once(&zig_once, zig_init);
  return rng_normal_fast(rng);
}

/* Uniform in [a, b) (a when a == b). */
static inline double rng_range(oc_rng_t *r, double a, double b) {
  return a + (b - a) * rng_uniform(r);
}

/* Uniform integer in [0, n), n >= 1. */
static inline int64_t rng_below(oc_rng_t *r, int64_t n) {
  int64_t k = (int64_t)(rng_uniform(r) * (double)n);
  return k < n ? k : n - 1;
}

/* ------------------------------------------------------------------------ */
/* Argument checks                                                          */
/* ------------------------------------------------------------------------ */

/* The largest side and channel count accepted: keeps every index product
 * far from overflow and every coordinate exact in double. */
#define AUG_MAX_DIM ((int64_t)1 << 24)

static oc_status_t check_image(const char *fn, const void *in, const void *out, int64_t c,
                               int64_t h, int64_t w, size_t *out_count) {
  if (!in || !out) return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s: NULL image", fn);
  if (c < 1 || h < 1 || w < 1 || c > AUG_MAX_DIM || h > AUG_MAX_DIM || w > AUG_MAX_DIM)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "%s: bad image size %lld x %lld x %lld (each in 1..%lld)", fn,
                          (long long)c, (long long)h, (long long)w, (long long)AUG_MAX_DIM);
  uint64_t n;
  if (oc_mul_overflows((uint64_t)c, (uint64_t)h, &n) || oc_mul_overflows(n, (uint64_t)w, &n) ||
      n > SIZE_MAX / sizeof(float))
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s: image of %lld x %lld x %lld is too big",
                          fn, (long long)c, (long long)h, (long long)w);
  if (out_count) *out_count = (size_t)n;
  return OC_OK;
}

static oc_status_t check_out_size(const char *fn, int64_t c, int64_t oh, int64_t ow,
                                  size_t *out_count) {
  static const float dummy;
  return check_image(fn, &dummy, &dummy, c, oh, ow, out_count);
}

/* x in [lo, hi] (false for NaN). */
static inline bool in_range(double x, double lo, double hi) { return x >= lo && x <= hi; }

/* ------------------------------------------------------------------------ */
/* Geometry: crop + affine + flip, one bilinear resampling                  */
/* ------------------------------------------------------------------------ */

typedef struct {
  double m[6]; /* centred output coords -> centred coords of the crop grid */
} affine_inv_t;

/* torchvision's _get_inverse_affine_matrix with centre (0, 0) (F.affine on
 * tensors), horizontal shear only. */
static void affine_inverse(double angle_deg, double shear_deg, double tx, double ty,
                           double scale, affine_inv_t *a) {
  const double rot = angle_deg * (M_PI / 180.0);
  const double sx = shear_deg * (M_PI / 180.0);
  const double sy = 0.0;
  const double ma = cos(rot - sy) / cos(sy);
  const double mb = -cos(rot - sy) * tan(sx) / cos(sy) - sin(rot);
  const double mc = sin(rot - sy) / cos(sy);
  const double md = -sin(rot - sy) * tan(sx) / cos(sy) + cos(rot);
  double *m = a->m;
  m[0] = md / scale;
  m[1] = -mb / scale;
  m[2] = 0.0;
  m[3] = -mc / scale;
  m[4] = ma / scale;
  m[5] = 0.0;
  m[2] += m[0] * (-tx) + m[1] * (-ty);
  m[5] += m[3] * (-tx) + m[4] * (-ty);
}

/* Source pixel of the crop box for crop-grid coordinate |u| (PyTorch's
 * area_pixel_compute_source_index, align_corners=False), as two neighbours
 * and the weight of the second. Coordinates past the box clamp to its edge. */
typedef struct {
  int64_t i0, i1;
  float l1;
} tap_t;

static inline tap_t crop_tap(double u, double ratio, int64_t len) {
  double s = (u + 0.5) * ratio - 0.5;
  if (s < 0) s = 0;
  tap_t t;
  if (s >= (double)(len - 1)) {
    t.i0 = t.i1 = len - 1;
    t.l1 = 0.0f;
    return t;
  }
  t.i0 = (int64_t)s;
  t.i1 = t.i0 + 1;
  t.l1 = (float)(s - (double)t.i0);
  return t;
}

/* The weight of the zero padding around an n-pixel grid under bilinear
 * sampling at |u| (grid_sample, padding "zeros"): 1 inside [0, n-1], falling
 * linearly to 0 at -1 and n. */
static inline double pad_weight(double u, int64_t n) {
  if (u >= 0.0 && u <= (double)(n - 1)) return 1.0;
  double d = u < 0.0 ? -u : u - (double)(n - 1);
  return d >= 1.0 ? 0.0 : 1.0 - d;
}

#if defined(__GNUC__)
#define AUG_INLINE static inline __attribute__((always_inline))
#else
#define AUG_INLINE static inline
#endif

AUG_INLINE float load_px(const void *in, bool u8, size_t i) {
  if (u8) return (float)((const uint8_t *)in)[i] * (1.0f / 255.0f);
  return ((const float *)in)[i];
}

/* Bilinear blend of the four taps of every channel into out[k * out_plane + o]
 * (times |fw|, the zero-padding weight, when |padded|). */
AUG_INLINE void blend_px(const void *in, bool u8, int64_t c, size_t in_plane, size_t r0,
                         size_t r1, tap_t tx, float h1, float *out, size_t out_plane, size_t o,
                         bool padded, float fw) {
  const float w1 = tx.l1, w0 = 1.0f - w1, h0 = 1.0f - h1;
  for (int64_t k = 0; k < c; ++k) {
    const size_t p = (size_t)k * in_plane;
    const float a = load_px(in, u8, p + r0 + (size_t)tx.i0);
    const float b = load_px(in, u8, p + r0 + (size_t)tx.i1);
    const float d = load_px(in, u8, p + r1 + (size_t)tx.i0);
    const float e = load_px(in, u8, p + r1 + (size_t)tx.i1);
    const float v = h0 * (w0 * a + w1 * b) + h1 * (w0 * d + w1 * e);
    out[(size_t)k * out_plane + o] = padded ? fw * v : v;
  }
}

/* Column taps cached per call for outputs up to this width. */
#define AUG_TAP_CACHE 512

/* out (c x oh x ow) = flip(affine(resize(crop(in)))), with |aff| NULL for no
 * affine. The box lies inside the h x w image. */
AUG_INLINE void geometry_impl(const void *in, bool u8, int64_t c, int64_t h, int64_t w,
                              int64_t top, int64_t left, int64_t ch, int64_t cw, float *out,
                              int64_t oh, int64_t ow, const affine_inv_t *aff, bool flip) {
  const double ry = (double)ch / (double)oh, rx = (double)cw / (double)ow;
  const size_t in_plane = (size_t)h * (size_t)w, out_plane = (size_t)oh * (size_t)ow;
  if (!aff) {
    tap_t cache[AUG_TAP_CACHE];
    const bool cached = ow <= AUG_TAP_CACHE;
    if (cached)
      for (int64_t x = 0; x < ow; ++x) cache[x] = crop_tap((double)(flip ? ow - 1 - x : x), rx, cw);
    for (int64_t y = 0; y < oh; ++y) {
      const tap_t ty = crop_tap((double)y, ry, ch);
      const size_t r0 = (size_t)(top + ty.i0) * (size_t)w + (size_t)left;
      const size_t r1 = (size_t)(top + ty.i1) * (size_t)w + (size_t)left;
      const size_t o = (size_t)y * (size_t)ow;
      for (int64_t x = 0; x < ow; ++x) {
        const tap_t tx =
            cached ? cache[x] : crop_tap((double)(flip ? ow - 1 - x : x), rx, cw);
        blend_px(in, u8, c, in_plane, r0, r1, tx, ty.l1, out, out_plane, o + (size_t)x, false,
                 1.0f);
      }
    }
    return;
  }
  /* Output (x, y) -> crop-grid (u, v), linear along a row: with the flip,
   * x' = ow - 1 - x, so xc = cx - x. */
  const double cx = 0.5 * (double)(ow - 1), cy = 0.5 * (double)(oh - 1);
  const double *m = aff->m;
  const double du = flip ? -m[0] : m[0], dv = flip ? -m[3] : m[3];
  const double xc0 = flip ? cx : -cx;
  const double umax = (double)ow, vmax = (double)oh;
  for (int64_t y = 0; y < oh; ++y) {
    const double yc = (double)y - cy;
    const double u0 = m[0] * xc0 + m[1] * yc + m[2] + cx;
    const double v0 = m[3] * xc0 + m[4] * yc + m[5] + cy;
    const size_t orow = (size_t)y * (size_t)ow;
    for (int64_t x = 0; x < ow; ++x) {
      const double u = u0 + du * (double)x, v = v0 + dv * (double)x;
      const size_t o = orow + (size_t)x;
      if (!(u > -1.0 && u < umax && v > -1.0 && v < vmax)) {
        for (int64_t k = 0; k < c; ++k) out[(size_t)k * out_plane + o] = 0.0f;
        continue;
      }
      const double pw = pad_weight(u, ow) * pad_weight(v, oh);
      const tap_t tx = crop_tap(u, rx, cw), ty = crop_tap(v, ry, ch);
      const size_t r0 = (size_t)(top + ty.i0) * (size_t)w + (size_t)left;
      const size_t r1 = (size_t)(top + ty.i1) * (size_t)w + (size_t)left;
      blend_px(in, u8, c, in_plane, r0, r1, tx, ty.l1, out, out_plane, o, pw != 1.0, (float)pw);
    }
  }
}

static void geometry_f32(const float *in, int64_t c, int64_t h, int64_t w, int64_t top,
                         int64_t left, int64_t ch, int64_t cw, float *out, int64_t oh, int64_t ow,
                         const affine_inv_t *aff, bool flip) {
  if (c == 1) /* the digits case, with the channel loop unrolled */
    geometry_impl(in, false, 1, h, w, top, left, ch, cw, out, oh, ow, aff, flip);
  else
    geometry_impl(in, false, c, h, w, top, left, ch, cw, out, oh, ow, aff, flip);
}

static void geometry_u8(const uint8_t *in, int64_t c, int64_t h, int64_t w, int64_t top,
                        int64_t left, int64_t ch, int64_t cw, float *out, int64_t oh, int64_t ow,
                        const affine_inv_t *aff, bool flip) {
  if (c == 1) /* the digits case, with the channel loop unrolled */
    geometry_impl(in, true, 1, h, w, top, left, ch, cw, out, oh, ow, aff, flip);
  else
    geometry_impl(in, true, c, h, w, top, left, ch, cw, out, oh, ow, aff, flip);
}

static void geometry(const void *in, bool u8, int64_t c, int64_t h, int64_t w, int64_t top,
                     int64_t left, int64_t ch, int64_t cw, float *out, int64_t oh, int64_t ow,
                     const affine_inv_t *aff, bool flip) {
  if (u8)
    geometry_u8(in, c, h, w, top, left, ch, cw, out, oh, ow, aff, flip);
  else
    geometry_f32(in, c, h, w, top, left, ch, cw, out, oh, ow, aff, flip);
}

static void hflip_inplace(float *x, int64_t c, int64_t h, int64_t w) {
  for (int64_t r = 0; r < c * h; ++r) {
    float *row = x + (size_t)r * (size_t)w;
    for (int64_t i = 0, j = w - 1; i < j; ++i, --j) {
      float t = row[i];
      row[i] = row[j];
      row[j] = t;
    }
  }
}

/* ------------------------------------------------------------------------ */
/* Colour                                                                   */
/* ------------------------------------------------------------------------ */

/* max then min: compiles to maxss/minss, so loops of it vectorise. */
static inline float clamp01(float v) {
  v = v > 0.0f ? v : 0.0f;
  return v < 1.0f ? v : 1.0f;
}

/* Sum of n floats in double, through 8 float lanes per block of 1024. */
static double sum_floats(const float *x, size_t n) {
  double total = 0.0;
  size_t i = 0;
  while (i < n) {
    const size_t end = n - i > 1024 ? i + 1024 : n;
    float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (; i + 8 <= end; i += 8)
      for (int j = 0; j < 8; ++j) lane[j] += x[i + j];
    for (; i < end; ++i) lane[0] += x[i];
    double blk = 0.0;
    for (int j = 0; j < 8; ++j) blk += lane[j];
    total += blk;
  }
  return total;
}

static inline float luma(float r, float g, float b) {
  return 0.2989f * r + 0.587f * g + 0.114f * b;
}

static void brightness_inplace(float *x, size_t n, float f) {
  for (size_t i = 0; i < n; ++i) x[i] = clamp01(f * x[i]);
}

static void contrast_inplace(float *x, int64_t c, size_t plane, float f) {
  double sum = 0.0;
  size_t n = (size_t)c * plane;
  if (c == 3) {
    for (size_t i = 0; i < plane; ++i) sum += luma(x[i], x[plane + i], x[2 * plane + i]);
    sum /= (double)plane;
  } else {
    sum = sum_floats(x, n) / (double)n;
  }
  const float m = (float)sum, g = 1.0f - f;
  for (size_t i = 0; i < n; ++i) x[i] = clamp01(f * x[i] + g * m);
}

static void saturation_inplace(float *x, size_t plane, float f) {
  const float g = 1.0f - f;
  float *r = x, *gr = x + plane, *b = x + 2 * plane;
  for (size_t i = 0; i < plane; ++i) {
    const float l = luma(r[i], gr[i], b[i]);
    r[i] = clamp01(f * r[i] + g * l);
    gr[i] = clamp01(f * gr[i] + g * l);
    b[i] = clamp01(f * b[i] + g * l);
  }
}

static void grayscale_inplace(float *x, size_t plane) {
  for (size_t i = 0; i < plane; ++i) {
    const float l = luma(x[i], x[plane + i], x[2 * plane + i]);
    x[i] = x[plane + i] = x[2 * plane + i] = l;
  }
}

/* torchvision's _rgb2hsv, hue shift, _hsv2rgb, in float with the same
 * formulas (the fmod and remainder by 1 are written for the ranges that
 * occur, where they are exact). */
static void hue_inplace(float *x, size_t plane, float shift) {
  float *pr = x, *pg = x + plane, *pb = x + 2 * plane;
  for (size_t i = 0; i < plane; ++i) {
    const float r = pr[i], g = pg[i], b = pb[i];
    const float mx0 = r > g ? r : g, maxc = mx0 > b ? mx0 : b;
    const float mn0 = r < g ? r : g, minc = mn0 < b ? mn0 : b;
    const bool eqc = maxc == minc;
    const float cr = maxc - minc;
    const float s = cr / (eqc ? 1.0f : maxc);
    const float div = eqc ? 1.0f : cr;
    float hh;
    if (maxc == r)
      hh = (maxc - b) / div - (maxc - g) / div;
    else if (maxc == g)
      hh = 2.0f + (maxc - r) / div - (maxc - b) / div;
    else
      hh = 4.0f + (maxc - g) / div - (maxc - r) / div;
    hh = hh / 6.0f + 1.0f; /* in [5/6, 11/6]: fmod(hh, 1) */
    if (hh >= 1.0f) hh -= 1.0f;
    hh += shift; /* in [-0.5, 1.5): remainder(hh, 1), which may round to 1 */
    if (hh < 0.0f)
      hh += 1.0f;
    else if (hh >= 1.0f)
      hh -= 1.0f;
    const float v = maxc;
    const float h6 = hh * 6.0f; /* in [0, 6] */
    const int fi = (int)h6;
    const float f = h6 - (float)fi;
    const int sector = fi % 6;
    const float p = clamp01(v * (1.0f - s));
    const float q = clamp01(v * (1.0f - s * f));
    const float t = clamp01(v * (1.0f - s * (1.0f - f)));
    float ro, go, bo;
    switch (sector) {
      case 0: ro = v; go = t; bo = p; break;
      case 1: ro = q; go = v; bo = p; break;
      case 2: ro = p; go = v; bo = t; break;
      case 3: ro = p; go = q; bo = v; break;
      case 4: ro = t; go = p; bo = v; break;
      default: ro = v; go = p; bo = q; break;
    }
    pr[i] = ro;
    pg[i] = go;
    pb[i] = bo;
  }
}

/* ------------------------------------------------------------------------ */
/* Gaussian blur                                                            */
/* ------------------------------------------------------------------------ */

/* Floats of the stack buffer; larger needs allocate once per call. */
#define AUG_STACK_FLOATS 6144
/* Columns blurred together by the vertical pass. */
#define AUG_COL_BLOCK 16

/* Index j of an n-sample line extended by half-sample symmetric reflection
 * (period 2n). */
static inline int64_t mirror(int64_t j, int64_t n) {
  const int64_t p = 2 * n;
  int64_t r = j % p;
  if (r < 0) r += p;
  return r < n ? r : p - 1 - r;
}

/* Floats of scratch the blur needs for an h x w plane and kernel ksize. */
static size_t blur_scratch_floats(int64_t h, int64_t w, int64_t ksize) {
  const size_t rad = (size_t)(ksize - 1) / 2;
  size_t row = (size_t)w + 2 * rad;
  size_t tile = ((size_t)h + 2 * rad) * AUG_COL_BLOCK;
  return (size_t)ksize + (row > tile ? row : tile);
}

static void gaussian_kernel(float *k, int64_t ksize, double sigma) {
  const double half = 0.5 * (double)(ksize - 1);
  double sum = 0.0;
  for (int64_t i = 0; i < ksize; ++i) {
    const double x = ((double)i - half) / sigma;
    const float v = (float)exp(-0.5 * x * x);
    k[i] = v;
    sum += v;
  }
  for (int64_t i = 0; i < ksize; ++i) k[i] = (float)(k[i] / sum);
}

/* Blurs c planes of h x w in place; |scratch| holds blur_scratch_floats(). */
static void blur_inplace(float *x, int64_t c, int64_t h, int64_t w, double sigma, int64_t ksize,
                         float *scratch) {
  if (ksize <= 1) return;
  float *ker = scratch;
  float *line = scratch + ksize;
  const int64_t rad = (ksize - 1) / 2;
  gaussian_kernel(ker, ksize, sigma);
  const size_t plane = (size_t)h * (size_t)w;
  for (int64_t k = 0; k < c; ++k) {
    float *img = x + (size_t)k * plane;
    /* Horizontal: each row through the padded line buffer. */
    for (int64_t y = 0; y < h; ++y) {
      float *row = img + (size_t)y * (size_t)w;
      if (rad < w) {
        for (int64_t j = 0; j < rad; ++j) {
          line[j] = row[mirror(j - rad, w)];
          line[w + rad + j] = row[mirror(w + j, w)];
        }
        memcpy(line + rad, row, (size_t)w * sizeof(float));
      } else {
        for (int64_t j = 0; j < w + 2 * rad; ++j) line[j] = row[mirror(j - rad, w)];
      }
      for (int64_t i = 0; i < w; ++i) row[i] = ker[0] * line[i];
      for (int64_t t = 1; t < ksize; ++t) {
        const float kt = ker[t];
        const float *src = line + t;
        for (int64_t i = 0; i < w; ++i) row[i] += kt * src[i];
      }
    }
    /* Vertical: blocks of columns, gathered into a (h + 2 rad) x B tile. */
    for (int64_t x0 = 0; x0 < w; x0 += AUG_COL_BLOCK) {
      const int64_t bw = w - x0 < AUG_COL_BLOCK ? w - x0 : AUG_COL_BLOCK;
      for (int64_t j = 0; j < h + 2 * rad; ++j) {
        const float *src = img + (size_t)mirror(j - rad, h) * (size_t)w + (size_t)x0;
        float *dst = line + (size_t)j * AUG_COL_BLOCK;
        for (int64_t b = 0; b < bw; ++b) dst[b] = src[b];
        for (int64_t b = bw; b < AUG_COL_BLOCK; ++b) dst[b] = 0.0f;
      }
      for (int64_t i = 0; i < h; ++i) {
        float acc[AUG_COL_BLOCK];
        const float *src = line + (size_t)i * AUG_COL_BLOCK;
        for (int64_t b = 0; b < AUG_COL_BLOCK; ++b) acc[b] = ker[0] * src[b];
        for (int64_t t = 1; t < ksize; ++t) {
          const float kt = ker[t];
          const float *s2 = src + (size_t)t * AUG_COL_BLOCK;
          for (int64_t b = 0; b < AUG_COL_BLOCK; ++b) acc[b] += kt * s2[b];
        }
        float *dst = img + (size_t)i * (size_t)w + (size_t)x0;
        for (int64_t b = 0; b < bw; ++b) dst[b] = acc[b];
      }
    }
  }
}

/* ------------------------------------------------------------------------ */
/* Noise                                                                    */
/* ------------------------------------------------------------------------ */

static void noise_inplace(float *x, size_t n, double std, oc_rng_t *rng) {
  if (std == 0.0) return;
  pthread_once(&zig_once, zig_init);
  oc_rng_t r = *rng;
  const float fs = (float)std;
  for (size_t i = 0; i < n; ++i) x[i] += fs * (float)rng_normal_fast(&r);
  *rng = r;
}

/* ------------------------------------------------------------------------ */
/* Single transforms (public)                                               */
/* ------------------------------------------------------------------------ */

oc_status_t oc_aug_resized_crop(const float *in, int64_t c, int64_t h, int64_t w, int64_t top,
                                int64_t left, int64_t crop_h, int64_t crop_w, float *out,
                                int64_t out_h, int64_t out_w) {
  OC_RETURN_IF_ERROR(check_image("oc_aug_resized_crop", in, out, c, h, w, NULL));
  OC_RETURN_IF_ERROR(check_out_size("oc_aug_resized_crop", c, out_h, out_w, NULL));
  if (top < 0 || left < 0 || crop_h < 1 || crop_w < 1 || crop_h > h - top || crop_w > w - left)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "oc_aug_resized_crop: box (top %lld, left %lld, %lld x %lld) is not "
                          "inside the %lld x %lld image",
                          (long long)top, (long long)left, (long long)crop_h, (long long)crop_w,
                          (long long)h, (long long)w);
  if ((const void *)out == (const void *)in)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "oc_aug_resized_crop: out is in");
  geometry(in, false, c, h, w, top, left, crop_h, crop_w, out, out_h, out_w, NULL, false);
  return OC_OK;
}

/* Copies in to out unless they are the same buffer. */
static void copy_if_needed(const float *in, float *out, size_t n) {
  if (in != out) memmove(out, in, n * sizeof(float));
}

oc_status_t oc_aug_hflip(const float *in, int64_t c, int64_t h, int64_t w, float *out) {
  size_t n;
  OC_RETURN_IF_ERROR(check_image("oc_aug_hflip", in, out, c, h, w, &n));
  copy_if_needed(in, out, n);
  hflip_inplace(out, c, h, w);
  return OC_OK;
}

static oc_status_t check_factor(const char *fn, double f) {
  if (!in_range(f, 0.0, 1e30))
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s: factor %g is not >= 0", fn, f);
  return OC_OK;
}

oc_status_t oc_aug_adjust_brightness(const float *in, int64_t c, int64_t h, int64_t w,
                                     double factor, float *out) {
  size_t n;
  OC_RETURN_IF_ERROR(check_image("oc_aug_adjust_brightness", in, out, c, h, w, &n));
  OC_RETURN_IF_ERROR(check_factor("oc_aug_adjust_brightness", factor));
  copy_if_needed(in, out, n);
  brightness_inplace(out, n, (float)factor);
  return OC_OK;
}

oc_status_t oc_aug_adjust_contrast(const float *in, int64_t c, int64_t h, int64_t w,
                                   double factor, float *out) {
  size_t n;
  OC_RETURN_IF_ERROR(check_image("oc_aug_adjust_contrast", in, out, c, h, w, &n));
  OC_RETURN_IF_ERROR(check_factor("oc_aug_adjust_contrast", factor));
  copy_if_needed(in, out, n);
  contrast_inplace(out, c, (size_t)h * (size_t)w, (float)factor);
  return OC_OK;
}

static oc_status_t check_rgb(const char *fn, int64_t c, bool allow_one) {
  if (c == 3 || (allow_one && c == 1)) return OC_OK;
  return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s: %lld channels (needs %s)", fn,
                        (long long)c, allow_one ? "1 or 3" : "3");
}

oc_status_t oc_aug_adjust_saturation(const float *in, int64_t c, int64_t h, int64_t w,
                                     double factor, float *out) {
  size_t n;
  OC_RETURN_IF_ERROR(check_image("oc_aug_adjust_saturation", in, out, c, h, w, &n));
  OC_RETURN_IF_ERROR(check_factor("oc_aug_adjust_saturation", factor));
  OC_RETURN_IF_ERROR(check_rgb("oc_aug_adjust_saturation", c, true));
  copy_if_needed(in, out, n);
  if (c == 3) saturation_inplace(out, (size_t)h * (size_t)w, (float)factor);
  return OC_OK;
}

oc_status_t oc_aug_adjust_hue(const float *in, int64_t c, int64_t h, int64_t w, double shift,
                              float *out) {
  size_t n;
  OC_RETURN_IF_ERROR(check_image("oc_aug_adjust_hue", in, out, c, h, w, &n));
  if (!in_range(shift, -0.5, 0.5))
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "oc_aug_adjust_hue: shift %g is not in [-0.5, 0.5]", shift);
  OC_RETURN_IF_ERROR(check_rgb("oc_aug_adjust_hue", c, true));
  copy_if_needed(in, out, n);
  if (c == 3) hue_inplace(out, (size_t)h * (size_t)w, (float)shift);
  return OC_OK;
}

oc_status_t oc_aug_grayscale(const float *in, int64_t c, int64_t h, int64_t w, float *out) {
  size_t n;
  OC_RETURN_IF_ERROR(check_image("oc_aug_grayscale", in, out, c, h, w, &n));
  OC_RETURN_IF_ERROR(check_rgb("oc_aug_grayscale", c, false));
  copy_if_needed(in, out, n);
  grayscale_inplace(out, (size_t)h * (size_t)w);
  return OC_OK;
}

static oc_status_t check_blur(const char *fn, double sigma, int64_t ksize) {
  if (ksize < 1 || ksize % 2 == 0 || ksize > AUG_MAX_DIM)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "%s: kernel size %lld is not odd and positive", fn, (long long)ksize);
  if (!in_range(sigma, 1e-30, 1e30))
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s: sigma %g is not > 0", fn, sigma);
  return OC_OK;
}

/* A scratch buffer: the caller's stack array when big enough, else malloc. */
static oc_status_t scratch_get(const char *fn, size_t need, float *stack, float **out) {
  if (need <= AUG_STACK_FLOATS) {
    *out = stack;
    return OC_OK;
  }
  *out = need > SIZE_MAX / sizeof(float) ? NULL : malloc(need * sizeof(float));
  if (!*out)
    return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "%s: cannot allocate %zu floats of scratch",
                          fn, need);
  return OC_OK;
}

static void scratch_put(float *stack, float *buf) {
  if (buf != stack) free(buf);
}

oc_status_t oc_aug_gaussian_blur(const float *in, int64_t c, int64_t h, int64_t w, double sigma,
                                 int64_t ksize, float *out) {
  size_t n;
  OC_RETURN_IF_ERROR(check_image("oc_aug_gaussian_blur", in, out, c, h, w, &n));
  OC_RETURN_IF_ERROR(check_blur("oc_aug_gaussian_blur", sigma, ksize));
  float stack[AUG_STACK_FLOATS], *scratch;
  OC_RETURN_IF_ERROR(
      scratch_get("oc_aug_gaussian_blur", blur_scratch_floats(h, w, ksize), stack, &scratch));
  copy_if_needed(in, out, n);
  blur_inplace(out, c, h, w, sigma, ksize, scratch);
  scratch_put(stack, scratch);
  return OC_OK;
}

static oc_status_t check_affine(const char *fn, double angle, double shear, double tx,
                                double ty, double scale) {
  if (!in_range(angle, -1e9, 1e9) || !in_range(tx, -1e9, 1e9) || !in_range(ty, -1e9, 1e9))
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s: angle or translation not finite", fn);
  if (!(shear > -90.0 && shear < 90.0))
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s: shear %g is not in (-90, 90)", fn,
                          shear);
  if (!in_range(scale, 1e-9, 1e9))
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s: scale %g is not > 0", fn, scale);
  return OC_OK;
}

oc_status_t oc_aug_affine(const float *in, int64_t c, int64_t h, int64_t w, double angle,
                          double shear, double translate_x, double translate_y, double scale,
                          float *out) {
  OC_RETURN_IF_ERROR(check_image("oc_aug_affine", in, out, c, h, w, NULL));
  OC_RETURN_IF_ERROR(
      check_affine("oc_aug_affine", angle, shear, translate_x, translate_y, scale));
  if ((const void *)out == (const void *)in)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "oc_aug_affine: out is in");
  affine_inv_t a;
  affine_inverse(angle, shear, translate_x, translate_y, scale, &a);
  geometry(in, false, c, h, w, 0, 0, h, w, out, h, w, &a, false);
  return OC_OK;
}

oc_status_t oc_aug_noise(const float *in, int64_t c, int64_t h, int64_t w, double std,
                         oc_rng_t *rng, float *out) {
  size_t n;
  OC_RETURN_IF_ERROR(check_image("oc_aug_noise", in, out, c, h, w, &n));
  if (!rng) return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "oc_aug_noise: NULL rng");
  if (!in_range(std, 0.0, 1e30))
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "oc_aug_noise: std %g is not >= 0", std);
  copy_if_needed(in, out, n);
  noise_inplace(out, n, std, rng);
  return OC_OK;
}

/* ------------------------------------------------------------------------ */
/* Options                                                                  */
/* ------------------------------------------------------------------------ */

void oc_augment_options_init(oc_augment_options_t *o) {
  memset(o, 0, sizeof(*o));
  o->crop_p = 1.0;
  o->crop_scale_min = 0.08;
  o->crop_scale_max = 1.0;
  o->crop_ratio_min = 3.0 / 4.0;
  o->crop_ratio_max = 4.0 / 3.0;
  o->affine_p = 0.0;
  o->affine_degrees = 0.0;
  o->affine_shear = 0.0;
  o->affine_translate = 0.0;
  o->affine_scale_min = 1.0;
  o->affine_scale_max = 1.0;
  o->hflip_p = 0.5;
  o->jitter_p = 0.8;
  o->brightness = 0.4;
  o->contrast = 0.4;
  o->saturation = 0.4;
  o->hue = 0.1;
  o->grayscale_p = 0.2;
  o->blur_p = 0.5;
  o->blur_kernel_size = 0;
  o->blur_sigma_min = 0.1;
  o->blur_sigma_max = 2.0;
  o->noise_p = 0.0;
  o->noise_std = 0.0;
  o->clamp = 1;
}

void oc_augment_options_init_digits(oc_augment_options_t *o) {
  oc_augment_options_init(o);
  o->crop_scale_min = 0.5;
  o->affine_p = 0.8;
  o->affine_degrees = 15.0;
  o->affine_shear = 10.0;
  o->hflip_p = 0.0;
  o->saturation = 0.0;
  o->hue = 0.0;
  o->grayscale_p = 0.0;
  o->blur_p = 0.2;
  o->blur_sigma_max = 1.0;
  o->noise_p = 0.5;
  o->noise_std = 0.1;
}

#define CHECK_OPT(cond, ...)                                                         \
  do {                                                                               \
    if (!(cond)) return oc_make_status(OC_STATUS_INVALID_ARGUMENT, __VA_ARGS__);     \
  } while (0)

static oc_status_t check_options(const oc_augment_options_t *o) {
  const char *fn = "oc_augment options";
  const double ps[] = {o->crop_p, o->affine_p, o->hflip_p, o->jitter_p,
                       o->grayscale_p, o->blur_p, o->noise_p};
  static const char *const names[] = {"crop_p", "affine_p", "hflip_p", "jitter_p",
                                      "grayscale_p", "blur_p", "noise_p"};
  for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); ++i)
    CHECK_OPT(in_range(ps[i], 0.0, 1.0), "%s: %s = %g is not in [0, 1]", fn, names[i], ps[i]);
  if (o->crop_p > 0) {
    CHECK_OPT(in_range(o->crop_scale_min, 1e-12, 1e12) &&
                  in_range(o->crop_scale_max, o->crop_scale_min, 1e12),
              "%s: crop scale [%g, %g] is not 0 < min <= max", fn, o->crop_scale_min,
              o->crop_scale_max);
    CHECK_OPT(in_range(o->crop_ratio_min, 1e-12, 1e12) &&
                  in_range(o->crop_ratio_max, o->crop_ratio_min, 1e12),
              "%s: crop ratio [%g, %g] is not 0 < min <= max", fn, o->crop_ratio_min,
              o->crop_ratio_max);
  }
  if (o->affine_p > 0) {
    CHECK_OPT(in_range(o->affine_degrees, 0.0, 1e6), "%s: affine_degrees %g is not >= 0", fn,
              o->affine_degrees);
    CHECK_OPT(o->affine_shear >= 0.0 && o->affine_shear < 90.0,
              "%s: affine_shear %g is not in [0, 90)", fn, o->affine_shear);
    CHECK_OPT(in_range(o->affine_translate, 0.0, 1.0), "%s: affine_translate %g is not in [0, 1]",
              fn, o->affine_translate);
    CHECK_OPT(in_range(o->affine_scale_min, 1e-6, 1e6) &&
                  in_range(o->affine_scale_max, o->affine_scale_min, 1e6),
              "%s: affine scale [%g, %g] is not 0 < min <= max", fn, o->affine_scale_min,
              o->affine_scale_max);
  }
  if (o->jitter_p > 0) {
    CHECK_OPT(in_range(o->brightness, 0.0, 1e6) && in_range(o->contrast, 0.0, 1e6) &&
                  in_range(o->saturation, 0.0, 1e6),
              "%s: brightness, contrast and saturation must be >= 0", fn);
    CHECK_OPT(in_range(o->hue, 0.0, 0.5), "%s: hue %g is not in [0, 0.5]", fn, o->hue);
  }
  if (o->blur_p > 0) {
    CHECK_OPT(o->blur_kernel_size == 0 ||
                  (o->blur_kernel_size > 0 && o->blur_kernel_size % 2 == 1 &&
                   o->blur_kernel_size <= AUG_MAX_DIM),
              "%s: blur_kernel_size %lld is not 0 or odd and positive", fn,
              (long long)o->blur_kernel_size);
    CHECK_OPT(in_range(o->blur_sigma_min, 1e-12, 1e12) &&
                  in_range(o->blur_sigma_max, o->blur_sigma_min, 1e12),
              "%s: blur sigma [%g, %g] is not 0 < min <= max", fn, o->blur_sigma_min,
              o->blur_sigma_max);
  }
  if (o->noise_p > 0)
    CHECK_OPT(in_range(o->noise_std, 0.0, 1e12), "%s: noise_std %g is not >= 0", fn,
              o->noise_std);
  return OC_OK;
}

/* SimCLR's kernel size for a side of |size| pixels: 2 * ((size / 10) / 2) + 1,
 * at least 3. */
static int64_t auto_kernel_size(int64_t size) {
  int64_t k = 2 * ((size / 10) / 2) + 1;
  return k < 3 ? 3 : k;
}

/* ------------------------------------------------------------------------ */
/* Sampling                                                                 */
/* ------------------------------------------------------------------------ */

/* The generator of step |step| of one view, derived from the view's draw. */
static void step_rng(oc_rng_t *r, uint64_t base, uint64_t step) {
  oc_rng_seed(r, base ^ (step * 0xd1b54a32d192ed03ull));
}

/* torchvision RandomResizedCrop.get_params. */
static void sample_crop(const oc_augment_options_t *o, oc_rng_t *r, int64_t h, int64_t w,
                        oc_augment_params_t *p) {
  const double area = (double)h * (double)w;
  const double lr0 = log(o->crop_ratio_min), lr1 = log(o->crop_ratio_max);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * rng_range(r, o->crop_scale_min, o->crop_scale_max);
    const double ar = exp(rng_range(r, lr0, lr1));
    const double cwd = nearbyint(sqrt(target * ar)), chd = nearbyint(sqrt(target / ar));
    if (cwd > 0 && cwd <= (double)w && chd > 0 && chd <= (double)h) {
      const int64_t cw = (int64_t)cwd, ch = (int64_t)chd;
      p->crop_top = rng_below(r, h - ch + 1);
      p->crop_left = rng_below(r, w - cw + 1);
      p->crop_height = ch;
      p->crop_width = cw;
      return;
    }
  }
  /* Fallback: the central crop with the ratio clamped into range. */
  const double in_ratio = (double)w / (double)h;
  int64_t cw = w, ch = h;
  if (in_ratio < o->crop_ratio_min) {
    ch = (int64_t)nearbyint((double)w / o->crop_ratio_min);
  } else if (in_ratio > o->crop_ratio_max) {
    cw = (int64_t)nearbyint((double)h * o->crop_ratio_max);
  }
  if (ch < 1) ch = 1;
  if (ch > h) ch = h;
  if (cw < 1) cw = 1;
  if (cw > w) cw = w;
  p->crop_top = (h - ch) / 2;
  p->crop_left = (w - cw) / 2;
  p->crop_height = ch;
  p->crop_width = cw;
}

static oc_status_t check_sizes(const char *fn, int64_t c, int64_t h, int64_t w, int64_t oh,
                               int64_t ow) {
  static const float dummy;
  OC_RETURN_IF_ERROR(check_image(fn, &dummy, &dummy, c, h, w, NULL));
  return check_out_size(fn, c, oh, ow, NULL);
}

/* oc_augment_sample() on checked arguments. */
static void sample_checked(const oc_augment_options_t *o, oc_rng_t *rng, int64_t c, int64_t h,
                           int64_t w, int64_t out_h, int64_t out_w, oc_augment_params_t *p) {
  memset(p, 0, sizeof(*p));
  const uint64_t base = rng_next(rng);
  oc_rng_t r;

  step_rng(&r, base, 1);
  p->crop_height = h;
  p->crop_width = w;
  if (rng_uniform(&r) < o->crop_p) sample_crop(o, &r, h, w, p);

  step_rng(&r, base, 2);
  p->scale = 1.0;
  if (rng_uniform(&r) < o->affine_p) {
    p->affine = 1;
    p->angle = rng_range(&r, -o->affine_degrees, o->affine_degrees);
    const double mx = o->affine_translate * (double)out_w, my = o->affine_translate * (double)out_h;
    p->translate_x = nearbyint(rng_range(&r, -mx, mx));
    p->translate_y = nearbyint(rng_range(&r, -my, my));
    p->scale = rng_range(&r, o->affine_scale_min, o->affine_scale_max);
    p->shear = rng_range(&r, -o->affine_shear, o->affine_shear);
  }

  step_rng(&r, base, 3);
  p->hflip = rng_uniform(&r) < o->hflip_p;

  step_rng(&r, base, 4);
  for (int i = 0; i < 4; ++i) p->jitter_order[i] = i;
  p->brightness = p->contrast = p->saturation = 1.0;
  p->hue = 0.0;
  if (rng_uniform(&r) < o->jitter_p) {
    p->jitter = 1;
    for (int i = 3; i > 0; --i) { /* Fisher-Yates */
      const int j = (int)rng_below(&r, i + 1);
      const int t = p->jitter_order[i];
      p->jitter_order[i] = p->jitter_order[j];
      p->jitter_order[j] = t;
    }
    const double b = o->brightness, ct = o->contrast, s = o->saturation, hu = o->hue;
    if (b > 0) p->brightness = rng_range(&r, fmax(0.0, 1.0 - b), 1.0 + b);
    if (ct > 0) p->contrast = rng_range(&r, fmax(0.0, 1.0 - ct), 1.0 + ct);
    if (c == 3 && s > 0) p->saturation = rng_range(&r, fmax(0.0, 1.0 - s), 1.0 + s);
    if (c == 3 && hu > 0) p->hue = rng_range(&r, -hu, hu);
  }

  step_rng(&r, base, 5);
  p->grayscale = c == 3 && rng_uniform(&r) < o->grayscale_p;

  step_rng(&r, base, 6);
  p->blur_kernel_size = 1;
  p->blur_sigma = 1.0;
  if (rng_uniform(&r) < o->blur_p) {
    p->blur = 1;
    p->blur_kernel_size = o->blur_kernel_size ? o->blur_kernel_size
                                              : auto_kernel_size(out_h < out_w ? out_h : out_w);
    p->blur_sigma = rng_range(&r, o->blur_sigma_min, o->blur_sigma_max);
  }

  step_rng(&r, base, 7);
  if (rng_uniform(&r) < o->noise_p && o->noise_std > 0) {
    p->noise = 1;
    p->noise_std = o->noise_std;
    p->noise_seed = rng_next(&r);
  }
  p->clamp = o->clamp != 0;
}

oc_status_t oc_augment_sample(const oc_augment_options_t *o, oc_rng_t *rng, int64_t c,
                              int64_t h, int64_t w, int64_t out_h, int64_t out_w,
                              oc_augment_params_t *out_params) {
  if (!o || !rng || !out_params)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "oc_augment_sample: NULL argument");
  OC_RETURN_IF_ERROR(check_sizes("oc_augment_sample", c, h, w, out_h, out_w));
  OC_RETURN_IF_ERROR(check_options(o));
  sample_checked(o, rng, c, h, w, out_h, out_w, out_params);
  return OC_OK;
}

/* ------------------------------------------------------------------------ */
/* Applying                                                                 */
/* ------------------------------------------------------------------------ */

static oc_status_t check_params(const oc_augment_params_t *p, int64_t h, int64_t w) {
  const char *fn = "oc_augment_apply";
  if (p->crop_top < 0 || p->crop_left < 0 || p->crop_height < 1 || p->crop_width < 1 ||
      p->crop_height > h - p->crop_top || p->crop_width > w - p->crop_left)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "%s: crop box (top %lld, left %lld, %lld x %lld) is not inside the "
                          "%lld x %lld image",
                          fn, (long long)p->crop_top, (long long)p->crop_left,
                          (long long)p->crop_height, (long long)p->crop_width, (long long)h,
                          (long long)w);
  if (p->affine)
    OC_RETURN_IF_ERROR(
        check_affine(fn, p->angle, p->shear, p->translate_x, p->translate_y, p->scale));
  if (p->jitter) {
    int seen = 0;
    for (int i = 0; i < 4; ++i)
      if (p->jitter_order[i] >= 0 && p->jitter_order[i] < 4) seen |= 1 << p->jitter_order[i];
    CHECK_OPT(seen == 15, "%s: jitter_order is not a permutation of 0..3", fn);
    CHECK_OPT(in_range(p->brightness, 0.0, 1e30) && in_range(p->contrast, 0.0, 1e30) &&
                  in_range(p->saturation, 0.0, 1e30),
              "%s: jitter factors must be >= 0", fn);
    CHECK_OPT(in_range(p->hue, -0.5, 0.5), "%s: hue %g is not in [-0.5, 0.5]", fn, p->hue);
  }
  if (p->blur) OC_RETURN_IF_ERROR(check_blur(fn, p->blur_sigma, p->blur_kernel_size));
  if (p->noise)
    CHECK_OPT(in_range(p->noise_std, 0.0, 1e30), "%s: noise_std %g is not >= 0", fn,
              p->noise_std);
  return OC_OK;
}

/* Applies checked |p|; |scratch| holds the blur's needs (when p->blur). */
static void apply_checked(const oc_augment_params_t *p, const void *in, bool u8, int64_t c,
                          int64_t h, int64_t w, float *out, int64_t oh, int64_t ow,
                          float *scratch) {
  affine_inv_t a;
  if (p->affine) affine_inverse(p->angle, p->shear, p->translate_x, p->translate_y, p->scale, &a);
  geometry(in, u8, c, h, w, p->crop_top, p->crop_left, p->crop_height, p->crop_width, out, oh, ow,
           p->affine ? &a : NULL, p->hflip != 0);
  const size_t plane = (size_t)oh * (size_t)ow, n = (size_t)c * plane;
  if (p->jitter) {
    for (int i = 0; i < 4; ++i) {
      switch (p->jitter_order[i]) {
        case 0:
          if (p->brightness != 1.0) brightness_inplace(out, n, (float)p->brightness);
          break;
        case 1:
          if (p->contrast != 1.0) contrast_inplace(out, c, plane, (float)p->contrast);
          break;
        case 2:
          if (c == 3 && p->saturation != 1.0) saturation_inplace(out, plane, (float)p->saturation);
          break;
        default:
          if (c == 3 && p->hue != 0.0) hue_inplace(out, plane, (float)p->hue);
          break;
      }
    }
  }
  if (p->grayscale && c == 3) grayscale_inplace(out, plane);
  if (p->blur) blur_inplace(out, c, oh, ow, p->blur_sigma, p->blur_kernel_size, scratch);
  if (p->noise && p->noise_std > 0) {
    oc_rng_t r;
    oc_rng_seed(&r, p->noise_seed);
    noise_inplace(out, n, p->noise_std, &r);
  }
  if (p->clamp)
    for (size_t i = 0; i < n; ++i) out[i] = clamp01(out[i]);
}

static oc_status_t apply_common(const char *fn, const oc_augment_params_t *p, const void *in,
                                bool u8, int64_t c, int64_t h, int64_t w, float *out,
                                int64_t out_h, int64_t out_w) {
  if (!p) return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s: NULL params", fn);
  OC_RETURN_IF_ERROR(check_image(fn, in, out, c, h, w, NULL));
  OC_RETURN_IF_ERROR(check_out_size(fn, c, out_h, out_w, NULL));
  if ((const void *)out == in)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s: out is in", fn);
  OC_RETURN_IF_ERROR(check_params(p, h, w));
  float stack[AUG_STACK_FLOATS], *scratch = stack;
  if (p->blur)
    OC_RETURN_IF_ERROR(
        scratch_get(fn, blur_scratch_floats(out_h, out_w, p->blur_kernel_size), stack, &scratch));
  apply_checked(p, in, u8, c, h, w, out, out_h, out_w, scratch);
  scratch_put(stack, scratch);
  return OC_OK;
}

oc_status_t oc_augment_apply(const oc_augment_params_t *p, const float *in, int64_t c, int64_t h,
                             int64_t w, float *out, int64_t out_h, int64_t out_w) {
  return apply_common("oc_augment_apply", p, in, false, c, h, w, out, out_h, out_w);
}

oc_status_t oc_augment_apply_u8(const oc_augment_params_t *p, const uint8_t *in, int64_t c,
                                int64_t h, int64_t w, float *out, int64_t out_h, int64_t out_w) {
  return apply_common("oc_augment_apply_u8", p, in, true, c, h, w, out, out_h, out_w);
}

static oc_status_t batch_common(const char *fn, const oc_augment_options_t *o, oc_rng_t *rng,
                                const void *in, bool u8, int64_t n, int64_t c, int64_t h,
                                int64_t w, float *out, int64_t out_h, int64_t out_w) {
  if (!o || !rng || !in || !out)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s: NULL argument", fn);
  if (n < 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s: batch size %lld < 0", fn,
                          (long long)n);
  size_t in_count, out_count;
  OC_RETURN_IF_ERROR(check_image(fn, in, out, c, h, w, &in_count));
  OC_RETURN_IF_ERROR(check_out_size(fn, c, out_h, out_w, &out_count));
  uint64_t total;
  const size_t esz = u8 ? 1 : sizeof(float);
  if (oc_mul_overflows((uint64_t)n, (uint64_t)in_count, &total) || total > SIZE_MAX / esz ||
      oc_mul_overflows((uint64_t)n, (uint64_t)out_count, &total) ||
      total > SIZE_MAX / sizeof(float))
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s: a batch of %lld images is too big", fn,
                          (long long)n);
  if ((const void *)out == in)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s: out is in", fn);
  OC_RETURN_IF_ERROR(check_options(o));
  float stack[AUG_STACK_FLOATS], *scratch = stack;
  if (o->blur_p > 0) {
    const int64_t ks = o->blur_kernel_size ? o->blur_kernel_size
                                           : auto_kernel_size(out_h < out_w ? out_h : out_w);
    OC_RETURN_IF_ERROR(scratch_get(fn, blur_scratch_floats(out_h, out_w, ks), stack, &scratch));
  }
  for (int64_t i = 0; i < n; ++i) {
    oc_augment_params_t p;
    sample_checked(o, rng, c, h, w, out_h, out_w, &p);
    const void *src = (const char *)in + (size_t)i * in_count * esz;
    apply_checked(&p, src, u8, c, h, w, out + (size_t)i * out_count, out_h, out_w, scratch);
  }
  scratch_put(stack, scratch);
  return OC_OK;
}

oc_status_t oc_augment_batch(const oc_augment_options_t *o, oc_rng_t *rng, const float *in,
                             int64_t n, int64_t c, int64_t h, int64_t w, float *out,
                             int64_t out_h, int64_t out_w) {
  return batch_common("oc_augment_batch", o, rng, in, false, n, c, h, w, out, out_h, out_w);
}

oc_status_t oc_augment_batch_u8(const oc_augment_options_t *o, oc_rng_t *rng, const uint8_t *in,
                                int64_t n, int64_t c, int64_t h, int64_t w, float *out,
                                int64_t out_h, int64_t out_w) {
  return batch_common("oc_augment_batch_u8", o, rng, in, true, n, c, h, w, out, out_h, out_w);
}
