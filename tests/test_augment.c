/* Tests for the augmentation library (include/onnxc/augment.h,
 * runtime/augment/): every transform against its definition, the pipeline
 * against the transforms, determinism, probabilities and errors. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "onnxc/augment.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

static float *fmalloc(size_t n) {
  float *p = malloc((n ? n : 1) * sizeof(float));
  ck_assert_ptr_nonnull(p);
  return p;
}

static float *random_image(int64_t c, int64_t h, int64_t w, uint64_t seed) {
  size_t n = (size_t)(c * h * w);
  float *x = fmalloc(n);
  oc_rng_t r;
  oc_rng_seed(&r, seed);
  for (size_t i = 0; i < n; ++i) x[i] = (float)oc_rng_uniform(&r);
  return x;
}

static void ok(oc_status_t s) {
  if (s) {
    const char *m = oc_status_message(s);
    ck_abort_msg("unexpected error: %s", m);
  }
}

static void expect_code(oc_status_t s, oc_status_code_t code) {
  ck_assert_msg(s != OC_OK, "expected an error");
  ck_assert_int_eq(oc_status_code(s), code);
  ck_assert(strlen(oc_status_message(s)) > 0);
  oc_status_free(s);
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; ++i) {
    double d = fabs((double)a[i] - (double)b[i]);
    if (d > m || d != d) m = d != d ? INFINITY : d;
  }
  return m;
}

static double mean_of(const float *x, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += x[i];
  return s / (double)n;
}

/* All options off: every probability 0 (the identity at the same size). */
static void options_off(oc_augment_options_t *o) {
  oc_augment_options_init(o);
  o->crop_p = o->affine_p = o->hflip_p = o->jitter_p = o->grayscale_p = o->blur_p = o->noise_p =
      0.0;
}

/* Reference bilinear crop-resize (PyTorch upsample_bilinear2d,
 * align_corners=False) in double. */
static double ref_resize_at(const float *plane, int64_t w, int64_t top, int64_t left, int64_t ch,
                            int64_t cw, int64_t oh, int64_t ow, int64_t y, int64_t x) {
  double sy = ((double)y + 0.5) * (double)ch / (double)oh - 0.5;
  double sx = ((double)x + 0.5) * (double)cw / (double)ow - 0.5;
  if (sy < 0) sy = 0;
  if (sx < 0) sx = 0;
  int64_t y0 = (int64_t)sy, x0 = (int64_t)sx;
  if (y0 > ch - 1) y0 = ch - 1;
  if (x0 > cw - 1) x0 = cw - 1;
  int64_t y1 = y0 < ch - 1 ? y0 + 1 : y0, x1 = x0 < cw - 1 ? x0 + 1 : x0;
  double ly = sy - (double)y0, lx = sx - (double)x0;
  if (ly > 1) ly = 1;
  if (lx > 1) lx = 1;
#define P(yy, xx) ((double)plane[(top + (yy)) * w + left + (xx)])
  return (1 - ly) * ((1 - lx) * P(y0, x0) + lx * P(y0, x1)) +
         ly * ((1 - lx) * P(y1, x0) + lx * P(y1, x1));
#undef P
}

/* ------------------------------------------------------------------------ */
/* RNG                                                                      */
/* ------------------------------------------------------------------------ */

START_TEST(rng_repeats_and_is_uniform) {
  oc_rng_t a, b, c;
  oc_rng_seed(&a, 123);
  oc_rng_seed(&b, 123);
  oc_rng_seed(&c, 124);
  int differ = 0;
  for (int i = 0; i < 100; ++i) {
    uint64_t x = oc_rng_next(&a), y = oc_rng_next(&b), z = oc_rng_next(&c);
    ck_assert(x == y);
    differ += x != z;
  }
  ck_assert_int_ge(differ, 99);
  oc_rng_t zero;
  oc_rng_seed(&zero, 0);
  ck_assert(zero.s[0] | zero.s[1] | zero.s[2] | zero.s[3]);

  const int n = 200000;
  double s = 0, s2 = 0, ns = 0, ns2 = 0, ns4 = 0;
  int beyond1 = 0, beyond3 = 0, beyond_r = 0, draws_one = 0;
  for (int i = 0; i < n; ++i) {
    double u = oc_rng_uniform(&a);
    ck_assert(u >= 0.0 && u < 1.0);
    s += u;
    s2 += u * u;
    oc_rng_t probe = a;
    double z = oc_rng_normal(&a);
    oc_rng_next(&probe);
    draws_one += memcmp(&probe, &a, sizeof(a)) == 0;
    beyond1 += fabs(z) > 1.0;
    beyond3 += fabs(z) > 3.0;
    beyond_r += fabs(z) > 3.5; /* the ziggurat's tail */
    ns += z;
    ns2 += z * z;
    ns4 += z * z * z * z;
  }
  ck_assert_double_eq_tol(s / n, 0.5, 0.005);
  ck_assert_double_eq_tol(s2 / n - (s / n) * (s / n), 1.0 / 12.0, 0.002);
  ck_assert_double_eq_tol(ns / n, 0.0, 0.01);
  ck_assert_double_eq_tol(ns2 / n, 1.0, 0.015);
  ck_assert_double_eq_tol(ns4 / n, 3.0, 0.1); /* Gaussian kurtosis */
  /* Two-sided tail probabilities of N(0,1): 0.3173, 0.0027, 0.000465. */
  ck_assert_double_eq_tol((double)beyond1 / n, 0.31731, 0.005);
  ck_assert_double_eq_tol((double)beyond3 / n, 0.0026998, 0.0005);
  ck_assert_double_eq_tol((double)beyond_r / n, 0.00046525, 0.0002);
  ck_assert_int_gt(draws_one, n * 95 / 100);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Flip                                                                     */
/* ------------------------------------------------------------------------ */

START_TEST(hflip_definition_and_twice_is_identity) {
  for (int64_t w = 1; w <= 6; ++w) {
    const int64_t c = 3, h = 4;
    size_t n = (size_t)(c * h * w);
    float *x = random_image(c, h, w, 7 + (uint64_t)w), *y = fmalloc(n), *z = fmalloc(n);
    ok(oc_aug_hflip(x, c, h, w, y));
    for (int64_t k = 0; k < c * h; ++k)
      for (int64_t i = 0; i < w; ++i) ck_assert(y[k * w + i] == x[k * w + (w - 1 - i)]);
    ok(oc_aug_hflip(y, c, h, w, z));
    ck_assert(memcmp(x, z, n * sizeof(float)) == 0);
    /* In place. */
    memcpy(z, x, n * sizeof(float));
    ok(oc_aug_hflip(z, c, h, w, z));
    ck_assert(memcmp(y, z, n * sizeof(float)) == 0);
    ok(oc_aug_hflip(z, c, h, w, z));
    ck_assert(memcmp(x, z, n * sizeof(float)) == 0);
    free(x);
    free(y);
    free(z);
  }
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Colour                                                                   */
/* ------------------------------------------------------------------------ */

START_TEST(jitter_identity_factors) {
  const int64_t h = 9, w = 11;
  for (int64_t c = 1; c <= 3; c += 2) {
    size_t n = (size_t)(c * h * w);
    float *x = random_image(c, h, w, 11), *y = fmalloc(n);
    ok(oc_aug_adjust_brightness(x, c, h, w, 1.0, y));
    ck_assert(memcmp(x, y, n * sizeof(float)) == 0);
    ok(oc_aug_adjust_contrast(x, c, h, w, 1.0, y));
    ck_assert(memcmp(x, y, n * sizeof(float)) == 0);
    ok(oc_aug_adjust_saturation(x, c, h, w, 1.0, y));
    ck_assert(memcmp(x, y, n * sizeof(float)) == 0);
    ok(oc_aug_adjust_hue(x, c, h, w, 0.0, y)); /* RGB -> HSV -> RGB round trip */
    ck_assert_double_le(max_abs_diff(x, y, n), 2e-6);
    /* A hue shift there and back. */
    if (c == 3) {
      ok(oc_aug_adjust_hue(x, c, h, w, 0.3, y));
      ck_assert_double_gt(max_abs_diff(x, y, n), 0.05);
      ok(oc_aug_adjust_hue(y, c, h, w, -0.3, y));
      ck_assert_double_le(max_abs_diff(x, y, n), 1e-5);
    }
    free(x);
    free(y);
  }
}
END_TEST

START_TEST(brightness_and_contrast_definitions) {
  const int64_t c = 3, h = 5, w = 6;
  size_t n = (size_t)(c * h * w), plane = (size_t)(h * w);
  float *x = random_image(c, h, w, 12), *y = fmalloc(n);
  ok(oc_aug_adjust_brightness(x, c, h, w, 0.5, y));
  for (size_t i = 0; i < n; ++i) ck_assert(y[i] == 0.5f * x[i]);
  ok(oc_aug_adjust_brightness(x, c, h, w, 3.0, y));
  for (size_t i = 0; i < n; ++i) ck_assert(y[i] == fminf(1.0f, 3.0f * x[i]));
  ok(oc_aug_adjust_brightness(x, c, h, w, 0.0, y));
  for (size_t i = 0; i < n; ++i) ck_assert(y[i] == 0.0f);

  /* Contrast 0: every value becomes the mean luma; contrast f blends. */
  double m = 0;
  for (size_t i = 0; i < plane; ++i)
    m += 0.2989 * x[i] + 0.587 * x[plane + i] + 0.114 * x[2 * plane + i];
  m /= (double)plane;
  ok(oc_aug_adjust_contrast(x, c, h, w, 0.0, y));
  for (size_t i = 0; i < n; ++i) ck_assert_double_eq_tol(y[i], m, 1e-6);
  ok(oc_aug_adjust_contrast(x, c, h, w, 0.6, y));
  for (size_t i = 0; i < n; ++i) {
    double want = 0.6 * x[i] + 0.4 * m;
    ck_assert_double_eq_tol(y[i], want < 0 ? 0 : (want > 1 ? 1 : want), 1e-6);
  }
  /* One channel: the mean of all values. */
  ok(oc_aug_adjust_contrast(x, 1, h, w, 0.0, y));
  for (size_t i = 0; i < plane; ++i) ck_assert_double_eq_tol(y[i], mean_of(x, plane), 1e-6);
  free(x);
  free(y);
}
END_TEST

START_TEST(grayscale_and_saturation_definitions) {
  const int64_t c = 3, h = 7, w = 5;
  size_t n = (size_t)(c * h * w), plane = (size_t)(h * w);
  float *x = random_image(c, h, w, 13), *y = fmalloc(n), *z = fmalloc(n);
  ok(oc_aug_grayscale(x, c, h, w, y));
  for (size_t i = 0; i < plane; ++i) {
    float l = 0.2989f * x[i] + 0.587f * x[plane + i] + 0.114f * x[2 * plane + i];
    ck_assert(y[i] == y[plane + i] && y[i] == y[2 * plane + i]);
    ck_assert_double_eq_tol(y[i], l, 1e-7);
  }
  /* Saturation 0 is grayscale; saturation f blends with the luma. */
  ok(oc_aug_adjust_saturation(x, c, h, w, 0.0, z));
  ck_assert_double_le(max_abs_diff(y, z, n), 1e-7);
  ok(oc_aug_adjust_saturation(x, c, h, w, 1.5, z));
  for (size_t k = 0; k < 3; ++k)
    for (size_t i = 0; i < plane; ++i) {
      double want = 1.5 * x[k * plane + i] - 0.5 * y[i];
      want = want < 0 ? 0 : (want > 1 ? 1 : want);
      ck_assert_double_eq_tol(z[k * plane + i], want, 1e-6);
    }
  /* In place, and the channel rules. */
  memcpy(z, x, n * sizeof(float));
  ok(oc_aug_grayscale(z, c, h, w, z));
  ck_assert(memcmp(y, z, n * sizeof(float)) == 0);
  expect_code(oc_aug_grayscale(x, 1, h, w, y), OC_STATUS_INVALID_ARGUMENT);
  expect_code(oc_aug_adjust_saturation(x, 2, h, w, 0.5, y), OC_STATUS_INVALID_ARGUMENT);
  expect_code(oc_aug_adjust_hue(x, 4, h, w, 0.1, y), OC_STATUS_INVALID_ARGUMENT);
  ok(oc_aug_adjust_saturation(x, 1, h, w, 0.3, y)); /* one channel: a copy */
  ck_assert(memcmp(x, y, plane * sizeof(float)) == 0);
  free(x);
  free(y);
  free(z);
}
END_TEST

START_TEST(hue_definition) {
  /* Pixels: red, green, blue, gray, dark orange. */
  const float rgb[5][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}, {0.5f, 0.5f, 0.5f}, {0.8f, 0.4f, 0}};
  float x[15], y[15];
  for (int i = 0; i < 5; ++i)
    for (int k = 0; k < 3; ++k) x[k * 5 + i] = rgb[i][k];
  ok(oc_aug_adjust_hue(x, 3, 1, 5, 1.0 / 3.0, y));
  /* Red -> green -> blue -> red; gray stays; orange (hue 1/12) -> hue 5/12. */
  const float want[5][3] = {
      {0, 1, 0}, {0, 0, 1}, {1, 0, 0}, {0.5f, 0.5f, 0.5f}, {0, 0.8f, 0.4f}};
  for (int i = 0; i < 5; ++i)
    for (int k = 0; k < 3; ++k) ck_assert_double_eq_tol(y[k * 5 + i], want[i][k], 1e-5);
  ok(oc_aug_adjust_hue(x, 3, 1, 5, -0.5, y)); /* red -> cyan */
  ck_assert_double_eq_tol(y[0], 0, 1e-6);
  ck_assert_double_eq_tol(y[5], 1, 1e-6);
  ck_assert_double_eq_tol(y[10], 1, 1e-6);
  expect_code(oc_aug_adjust_hue(x, 3, 1, 5, 0.6, y), OC_STATUS_INVALID_ARGUMENT);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Resized crop                                                             */
/* ------------------------------------------------------------------------ */

START_TEST(resized_crop_known_values) {
  /* torch.nn.functional.interpolate([[1,2],[3,4]], (4,4), "bilinear"). */
  const float x[4] = {1, 2, 3, 4};
  const float want[16] = {1.0f, 1.25f, 1.75f, 2.0f, 1.5f, 1.75f, 2.25f, 2.5f,
                          2.5f, 2.75f, 3.25f, 3.5f, 3.0f, 3.25f, 3.75f, 4.0f};
  float y[16];
  ok(oc_aug_resized_crop(x, 1, 2, 2, 0, 0, 2, 2, y, 4, 4));
  for (int i = 0; i < 16; ++i) ck_assert_float_eq_tol(y[i], want[i], 1e-6f);
}
END_TEST

START_TEST(full_crop_is_resize_and_identity) {
  const int64_t c = 3, h = 13, w = 17;
  size_t n = (size_t)(c * h * w);
  float *x = random_image(c, h, w, 21), *y = fmalloc(n);
  /* Full box at the same size: the identity, bit for bit. */
  ok(oc_aug_resized_crop(x, c, h, w, 0, 0, h, w, y, h, w));
  ck_assert(memcmp(x, y, n * sizeof(float)) == 0);
  /* Full box at other sizes: the bilinear resize. Sub-boxes: crop, then resize. */
  const int64_t sizes[][2] = {{5, 7}, {26, 34}, {13, 9}, {1, 1}, {40, 3}};
  const int64_t boxes[][4] = {{0, 0, 13, 17}, {2, 3, 8, 11}, {12, 16, 1, 1}, {0, 5, 13, 4}};
  for (size_t s = 0; s < 5; ++s)
    for (size_t b = 0; b < 4; ++b) {
      int64_t oh = sizes[s][0], ow = sizes[s][1];
      const int64_t *bx = boxes[b];
      float *z = fmalloc((size_t)(c * oh * ow));
      ok(oc_aug_resized_crop(x, c, h, w, bx[0], bx[1], bx[2], bx[3], z, oh, ow));
      for (int64_t k = 0; k < c; ++k)
        for (int64_t yy = 0; yy < oh; ++yy)
          for (int64_t xx = 0; xx < ow; ++xx) {
            double want = ref_resize_at(x + k * h * w, w, bx[0], bx[1], bx[2], bx[3], oh, ow, yy, xx);
            ck_assert_double_eq_tol(z[(k * oh + yy) * ow + xx], want, 2e-6);
          }
      free(z);
    }
  expect_code(oc_aug_resized_crop(x, c, h, w, 1, 0, h, w, y, h, w), OC_STATUS_INVALID_ARGUMENT);
  expect_code(oc_aug_resized_crop(x, c, h, w, 0, 0, 0, w, y, h, w), OC_STATUS_INVALID_ARGUMENT);
  expect_code(oc_aug_resized_crop(x, c, h, w, -1, 0, 2, 2, y, h, w), OC_STATUS_INVALID_ARGUMENT);
  expect_code(oc_aug_resized_crop(x, c, h, w, 0, 0, h, w, y, 0, w), OC_STATUS_INVALID_ARGUMENT);
  free(x);
  free(y);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Blur                                                                     */
/* ------------------------------------------------------------------------ */

/* Direct 2-D reference with half-sample symmetric padding. */
static int64_t ref_mirror(int64_t j, int64_t n) {
  int64_t p = 2 * n, r = ((j % p) + p) % p;
  return r < n ? r : p - 1 - r;
}

static void ref_blur(const float *x, int64_t h, int64_t w, double sigma, int64_t k, double *out) {
  double ker[256], sum = 0;
  int64_t r = (k - 1) / 2;
  for (int64_t i = 0; i < k; ++i) {
    double t = (double)(i - r) / sigma;
    ker[i] = exp(-0.5 * t * t);
    sum += ker[i];
  }
  for (int64_t i = 0; i < k; ++i) ker[i] /= sum;
  for (int64_t y = 0; y < h; ++y)
    for (int64_t xx = 0; xx < w; ++xx) {
      double acc = 0;
      for (int64_t a = 0; a < k; ++a)
        for (int64_t b = 0; b < k; ++b)
          acc += ker[a] * ker[b] * x[ref_mirror(y + a - r, h) * w + ref_mirror(xx + b - r, w)];
      out[y * w + xx] = acc;
    }
}

START_TEST(blur_matches_definition_and_preserves_mean) {
  const int64_t shapes[][2] = {{28, 28}, {9, 7}, {1, 30}, {32, 5}, {3, 3}};
  const int64_t ksizes[] = {1, 3, 5, 9, 23};
  const double sigmas[] = {0.1, 0.8, 2.0};
  for (size_t s = 0; s < 5; ++s)
    for (size_t ki = 0; ki < 5; ++ki)
      for (size_t si = 0; si < 3; ++si) {
        const int64_t c = 2, h = shapes[s][0], w = shapes[s][1], k = ksizes[ki];
        size_t n = (size_t)(c * h * w), plane = (size_t)(h * w);
        float *x = random_image(c, h, w, 31 + s), *y = fmalloc(n);
        double *ref = malloc(plane * sizeof(double));
        ok(oc_aug_gaussian_blur(x, c, h, w, sigmas[si], k, y));
        for (int64_t ch = 0; ch < c; ++ch) {
          /* The mean of every channel is preserved exactly (up to rounding). */
          ck_assert_double_eq_tol(mean_of(y + ch * plane, plane), mean_of(x + ch * plane, plane),
                                  2e-6);
          ref_blur(x + ch * plane, h, w, sigmas[si], k, ref);
          for (size_t i = 0; i < plane; ++i)
            ck_assert_double_eq_tol(y[ch * plane + i], ref[i], 2e-6);
        }
        if (k == 1) ck_assert(memcmp(x, y, n * sizeof(float)) == 0);
        free(x);
        free(y);
        free(ref);
      }
  /* A constant image stays constant; in place works. */
  float cst[3 * 10 * 12];
  for (int i = 0; i < 360; ++i) cst[i] = 0.37f;
  ok(oc_aug_gaussian_blur(cst, 3, 10, 12, 1.5, 7, cst));
  for (int i = 0; i < 360; ++i) ck_assert_float_eq_tol(cst[i], 0.37f, 1e-6f);
  /* A big image (scratch beyond the stack buffer). */
  {
    const int64_t h = 5000, w = 7;
    float *x = random_image(1, h, w, 5), *y = fmalloc((size_t)(h * w));
    ok(oc_aug_gaussian_blur(x, 1, h, w, 1.0, 5, y));
    ck_assert_double_eq_tol(mean_of(y, (size_t)(h * w)), mean_of(x, (size_t)(h * w)), 1e-6);
    free(x);
    free(y);
  }
  expect_code(oc_aug_gaussian_blur(cst, 3, 10, 12, 1.0, 4, cst), OC_STATUS_INVALID_ARGUMENT);
  expect_code(oc_aug_gaussian_blur(cst, 3, 10, 12, 0.0, 3, cst), OC_STATUS_INVALID_ARGUMENT);
  expect_code(oc_aug_gaussian_blur(cst, 3, 10, 12, NAN, 3, cst), OC_STATUS_INVALID_ARGUMENT);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Affine                                                                   */
/* ------------------------------------------------------------------------ */

START_TEST(affine_definitions) {
  const int64_t c = 2, h = 7, w = 7;
  size_t n = (size_t)(c * h * w);
  float *x = random_image(c, h, w, 41), *y = fmalloc(n);
  /* Rotation 0, shear 0, no translation, scale 1: the identity. */
  ok(oc_aug_affine(x, c, h, w, 0.0, 0.0, 0.0, 0.0, 1.0, y));
  ck_assert(memcmp(x, y, n * sizeof(float)) == 0);
  /* 90 degrees clockwise: out[y][x] = in[h-1-x][y]. */
  ok(oc_aug_affine(x, c, h, w, 90.0, 0.0, 0.0, 0.0, 1.0, y));
  for (int64_t k = 0; k < c; ++k)
    for (int64_t yy = 0; yy < h; ++yy)
      for (int64_t xx = 0; xx < w; ++xx)
        ck_assert_double_eq_tol(y[(k * h + yy) * w + xx], x[(k * h + (h - 1 - xx)) * w + yy], 1e-6);
  /* Integer translation: a shift with zero fill. */
  ok(oc_aug_affine(x, c, h, w, 0.0, 0.0, 2.0, -1.0, 1.0, y));
  for (int64_t k = 0; k < c; ++k)
    for (int64_t yy = 0; yy < h; ++yy)
      for (int64_t xx = 0; xx < w; ++xx) {
        int64_t sx = xx - 2, sy = yy + 1;
        float want = (sx >= 0 && sx < w && sy >= 0 && sy < h) ? x[(k * h + sy) * w + sx] : 0.0f;
        ck_assert_float_eq_tol(y[(k * h + yy) * w + xx], want, 1e-6f);
      }
  /* Shear 45: row y (about the centre row 3) samples x + (y - 3). */
  ok(oc_aug_affine(x, c, h, w, 0.0, 45.0, 0.0, 0.0, 1.0, y));
  for (int64_t k = 0; k < c; ++k)
    for (int64_t yy = 0; yy < h; ++yy)
      for (int64_t xx = 0; xx < w; ++xx) {
        int64_t sx = xx + (yy - 3);
        float want = (sx >= 0 && sx < w) ? x[(k * h + yy) * w + sx] : 0.0f;
        ck_assert_float_eq_tol(y[(k * h + yy) * w + xx], want, 1e-6f);
      }
  /* Half-pixel translation: the average of neighbours, zero padding at the edge. */
  ok(oc_aug_affine(x, 1, h, w, 0.0, 0.0, 0.5, 0.0, 1.0, y));
  for (int64_t yy = 0; yy < h; ++yy) {
    ck_assert_float_eq_tol(y[yy * w], 0.5f * x[yy * w], 1e-6f);
    for (int64_t xx = 1; xx < w; ++xx)
      ck_assert_float_eq_tol(y[yy * w + xx], 0.5f * (x[yy * w + xx - 1] + x[yy * w + xx]), 1e-6f);
  }
  /* Scale 2 keeps the centre pixel. */
  ok(oc_aug_affine(x, 1, h, w, 0.0, 0.0, 0.0, 0.0, 2.0, y));
  ck_assert_float_eq_tol(y[3 * w + 3], x[3 * w + 3], 1e-6f);
  expect_code(oc_aug_affine(x, c, h, w, 0.0, 90.0, 0, 0, 1, y), OC_STATUS_INVALID_ARGUMENT);
  expect_code(oc_aug_affine(x, c, h, w, 0.0, 0.0, 0, 0, 0, y), OC_STATUS_INVALID_ARGUMENT);
  expect_code(oc_aug_affine(x, c, h, w, 0.0, 0.0, 0, 0, 1, x), OC_STATUS_INVALID_ARGUMENT);
  free(x);
  free(y);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Noise                                                                    */
/* ------------------------------------------------------------------------ */

START_TEST(noise_definition) {
  const int64_t c = 1, h = 300, w = 301; /* odd count: the last value of a pair */
  size_t n = (size_t)(c * h * w);
  float *x = random_image(c, h, w, 51), *y = fmalloc(n), *z = fmalloc(n);
  oc_rng_t r;
  oc_rng_seed(&r, 5);
  oc_rng_t before = r;
  ok(oc_aug_noise(x, c, h, w, 0.0, &r, y));
  ck_assert(memcmp(x, y, n * sizeof(float)) == 0);
  ck_assert(memcmp(&before, &r, sizeof(r)) == 0);
  ok(oc_aug_noise(x, c, h, w, 0.2, &r, y));
  double s = 0, s2 = 0;
  for (size_t i = 0; i < n; ++i) {
    double d = (double)y[i] - (double)x[i];
    s += d;
    s2 += d * d;
  }
  ck_assert_double_eq_tol(s / (double)n, 0.0, 0.003);
  ck_assert_double_eq_tol(sqrt(s2 / (double)n), 0.2, 0.003);
  /* Same generator state, same noise; in place. */
  r = before;
  memcpy(z, x, n * sizeof(float));
  ok(oc_aug_noise(z, c, h, w, 0.2, &r, z));
  ck_assert(memcmp(y, z, n * sizeof(float)) == 0);
  expect_code(oc_aug_noise(x, c, h, w, -1.0, &r, y), OC_STATUS_INVALID_ARGUMENT);
  expect_code(oc_aug_noise(x, c, h, w, 0.1, NULL, y), OC_STATUS_INVALID_ARGUMENT);
  free(x);
  free(y);
  free(z);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The pipeline                                                             */
/* ------------------------------------------------------------------------ */

START_TEST(pipeline_off_is_identity_and_full_crop_is_resize) {
  const int64_t n = 4, c = 3, h = 12, w = 16;
  size_t count = (size_t)(n * c * h * w);
  float *x = random_image(n * c, h, w, 61), *y = fmalloc(count);
  oc_augment_options_t o;
  options_off(&o);
  oc_rng_t r;
  oc_rng_seed(&r, 1);
  ok(oc_augment_batch(&o, &r, x, n, c, h, w, y, h, w));
  ck_assert(memcmp(x, y, count * sizeof(float)) == 0);
  /* A crop of scale 1 and the image's ratio is the full image: a resize. */
  o.crop_p = 1.0;
  o.crop_scale_min = o.crop_scale_max = 1.0;
  o.crop_ratio_min = o.crop_ratio_max = (double)w / (double)h;
  ok(oc_augment_batch(&o, &r, x, n, c, h, w, y, h, w));
  ck_assert(memcmp(x, y, count * sizeof(float)) == 0);
  const int64_t oh = 9, ow = 20;
  float *z = fmalloc((size_t)(n * c * oh * ow)), *ref = fmalloc((size_t)(c * oh * ow));
  ok(oc_augment_batch(&o, &r, x, n, c, h, w, z, oh, ow));
  for (int64_t i = 0; i < n; ++i) {
    ok(oc_aug_resized_crop(x + i * c * h * w, c, h, w, 0, 0, h, w, ref, oh, ow));
    ck_assert(memcmp(z + i * c * oh * ow, ref, (size_t)(c * oh * ow) * sizeof(float)) == 0);
  }
  free(x);
  free(y);
  free(z);
  free(ref);
}
END_TEST

/* The pipeline equals the single transforms composed in the documented order. */
static void compose_by_hand(const oc_augment_params_t *p, const float *in, int64_t c, int64_t h,
                            int64_t w, float *out, int64_t oh, int64_t ow) {
  size_t n = (size_t)(c * oh * ow);
  if (p->affine) {
    /* Only with a full-size box: the geometry is then oc_aug_affine. */
    ck_assert(p->crop_top == 0 && p->crop_left == 0 && p->crop_height == h && p->crop_width == w);
    ck_assert(oh == h && ow == w);
    ok(oc_aug_affine(in, c, h, w, p->angle, p->shear, p->translate_x, p->translate_y, p->scale,
                     out));
  } else {
    ok(oc_aug_resized_crop(in, c, h, w, p->crop_top, p->crop_left, p->crop_height, p->crop_width,
                           out, oh, ow));
  }
  if (p->hflip) ok(oc_aug_hflip(out, c, oh, ow, out));
  if (p->jitter)
    for (int i = 0; i < 4; ++i) {
      int step = p->jitter_order[i];
      if (step == 0) ok(oc_aug_adjust_brightness(out, c, oh, ow, p->brightness, out));
      if (step == 1) ok(oc_aug_adjust_contrast(out, c, oh, ow, p->contrast, out));
      if (step == 2 && c == 3) ok(oc_aug_adjust_saturation(out, c, oh, ow, p->saturation, out));
      if (step == 3 && c == 3 && p->hue != 0) ok(oc_aug_adjust_hue(out, c, oh, ow, p->hue, out));
    }
  if (p->grayscale) ok(oc_aug_grayscale(out, c, oh, ow, out));
  if (p->blur) ok(oc_aug_gaussian_blur(out, c, oh, ow, p->blur_sigma, p->blur_kernel_size, out));
  if (p->noise) {
    oc_rng_t r;
    oc_rng_seed(&r, p->noise_seed);
    ok(oc_aug_noise(out, c, oh, ow, p->noise_std, &r, out));
  }
  if (p->clamp)
    for (size_t i = 0; i < n; ++i) out[i] = out[i] < 0 ? 0 : (out[i] > 1 ? 1 : out[i]);
}

START_TEST(pipeline_equals_composed_transforms) {
  struct {
    int64_t c, h, w, oh, ow;
    int digits, affine_full;
  } cases[] = {{3, 40, 30, 24, 24, 0, 0}, {1, 28, 28, 28, 28, 1, 0}, {1, 28, 28, 28, 28, 1, 1},
               {3, 32, 32, 32, 32, 0, 1}};
  for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]); ++t) {
    const int64_t c = cases[t].c, h = cases[t].h, w = cases[t].w, oh = cases[t].oh,
                  ow = cases[t].ow;
    oc_augment_options_t o;
    if (cases[t].digits)
      oc_augment_options_init_digits(&o);
    else
      oc_augment_options_init(&o);
    if (cases[t].affine_full) {
      o.crop_p = 0.0; /* full box, so the affine path equals oc_aug_affine */
      o.affine_p = 1.0;
      o.affine_degrees = 30;
      o.affine_shear = 20;
      o.affine_translate = 0.1;
      o.affine_scale_min = 0.8;
      o.affine_scale_max = 1.2;
    } else {
      o.affine_p = 0.0;
    }
    o.noise_p = 0.5;
    o.noise_std = 0.1;
    float *x = random_image(c, h, w, 71 + t);
    size_t n = (size_t)(c * oh * ow);
    float *a = fmalloc(n), *b = fmalloc(n);
    oc_rng_t r;
    oc_rng_seed(&r, 100 + t);
    int flips = 0, jit = 0, blurs = 0, noises = 0, affs = 0;
    for (int i = 0; i < 60; ++i) {
      oc_augment_params_t p;
      ok(oc_augment_sample(&o, &r, c, h, w, oh, ow, &p));
      ok(oc_augment_apply(&p, x, c, h, w, a, oh, ow));
      compose_by_hand(&p, x, c, h, w, b, oh, ow);
      ck_assert_msg(max_abs_diff(a, b, n) == 0.0, "case %zu view %d differs by %g", t, i,
                    max_abs_diff(a, b, n));
      flips += p.hflip;
      jit += p.jitter;
      blurs += p.blur;
      noises += p.noise;
      affs += p.affine;
    }
    /* Every step happened at least once where enabled. */
    if (o.hflip_p > 0) ck_assert_int_gt(flips, 0);
    ck_assert_int_gt(jit, 0);
    ck_assert_int_gt(blurs, 0);
    ck_assert_int_gt(noises, 0);
    if (cases[t].affine_full) ck_assert_int_gt(affs, 0);
    free(x);
    free(a);
    free(b);
  }
}
END_TEST

START_TEST(pipeline_same_seed_same_views) {
  const int64_t n = 16, c = 3, h = 36, w = 30, oh = 32, ow = 32;
  size_t in_count = (size_t)(n * c * h * w), out_count = (size_t)(n * c * oh * ow);
  float *x = random_image(n * c, h, w, 81);
  uint8_t *x8 = malloc(in_count);
  float *x8f = fmalloc(in_count);
  for (size_t i = 0; i < in_count; ++i) {
    x8[i] = (uint8_t)(x[i] * 255.0f);
    x8f[i] = (float)x8[i] * (1.0f / 255.0f);
  }
  float *a = fmalloc(out_count), *b = fmalloc(out_count), *d = fmalloc(out_count);
  for (int recipe = 0; recipe < 2; ++recipe) {
    oc_augment_options_t o;
    if (recipe)
      oc_augment_options_init_digits(&o);
    else
      oc_augment_options_init(&o);
    oc_rng_t r1, r2, r3;
    oc_rng_seed(&r1, 2024);
    oc_rng_seed(&r2, 2024);
    oc_rng_seed(&r3, 2025);
    ok(oc_augment_batch(&o, &r1, x, n, c, h, w, a, oh, ow));
    ok(oc_augment_batch(&o, &r2, x, n, c, h, w, b, oh, ow));
    ck_assert(memcmp(a, b, out_count * sizeof(float)) == 0);
    ck_assert(memcmp(&r1, &r2, sizeof(r1)) == 0);
    /* The second view continues the stream: different from the first. */
    ok(oc_augment_batch(&o, &r1, x, n, c, h, w, b, oh, ow));
    ck_assert_double_gt(max_abs_diff(a, b, out_count), 0.1);
    /* A different seed gives different views, image by image. */
    ok(oc_augment_batch(&o, &r3, x, n, c, h, w, d, oh, ow));
    for (int64_t i = 0; i < n; ++i)
      ck_assert_double_gt(max_abs_diff(a + i * c * oh * ow, d + i * c * oh * ow,
                                       (size_t)(c * oh * ow)),
                          1e-3);
    /* One draw per image: the batch equals sample + apply per image. */
    oc_rng_seed(&r1, 2024);
    for (int64_t i = 0; i < n; ++i) {
      oc_augment_params_t p;
      oc_rng_t before = r1;
      ok(oc_augment_sample(&o, &r1, c, h, w, oh, ow, &p));
      oc_rng_next(&before);
      ck_assert(memcmp(&before, &r1, sizeof(r1)) == 0);
      ok(oc_augment_apply(&p, x + i * c * h * w, c, h, w, d, oh, ow));
      ck_assert(memcmp(d, a + i * c * oh * ow, (size_t)(c * oh * ow) * sizeof(float)) == 0);
    }
    /* uint8 input equals float input v / 255. */
    oc_rng_seed(&r1, 7);
    oc_rng_seed(&r2, 7);
    ok(oc_augment_batch_u8(&o, &r1, x8, n, c, h, w, a, oh, ow));
    ok(oc_augment_batch(&o, &r2, x8f, n, c, h, w, b, oh, ow));
    ck_assert(memcmp(a, b, out_count * sizeof(float)) == 0);
    {
      oc_augment_params_t p;
      oc_rng_seed(&r1, 8);
      ok(oc_augment_sample(&o, &r1, c, h, w, oh, ow, &p));
      ok(oc_augment_apply_u8(&p, x8, c, h, w, a, oh, ow));
      ok(oc_augment_apply(&p, x8f, c, h, w, b, oh, ow));
      ck_assert(memcmp(a, b, (size_t)(c * oh * ow) * sizeof(float)) == 0);
    }
  }
  free(x);
  free(x8);
  free(x8f);
  free(a);
  free(b);
  free(d);
}
END_TEST

START_TEST(pipeline_steps_are_independent_streams) {
  /* Changing one step's options leaves the other steps' parameters alone. */
  oc_augment_options_t o1, o2;
  oc_augment_options_init(&o1);
  o2 = o1;
  o2.blur_p = 0.0;
  o2.hflip_p = 1.0;
  oc_rng_t r1, r2;
  oc_rng_seed(&r1, 9);
  oc_rng_seed(&r2, 9);
  for (int i = 0; i < 50; ++i) {
    oc_augment_params_t a, b;
    ok(oc_augment_sample(&o1, &r1, 3, 64, 48, 32, 32, &a));
    ok(oc_augment_sample(&o2, &r2, 3, 64, 48, 32, 32, &b));
    ck_assert(a.crop_top == b.crop_top && a.crop_left == b.crop_left &&
              a.crop_height == b.crop_height && a.crop_width == b.crop_width);
    ck_assert(a.jitter == b.jitter && a.brightness == b.brightness && a.hue == b.hue);
    ck_assert(a.grayscale == b.grayscale);
    ck_assert(!b.blur && b.hflip);
  }
  /* The views of an image do not depend on the other images of the batch. */
  const int64_t n = 3, c = 1, h = 28, w = 28;
  float *x = random_image(n * c, h, w, 91), *y1 = fmalloc((size_t)(n * h * w)),
        *y2 = fmalloc((size_t)(n * h * w));
  oc_augment_options_init_digits(&o1);
  oc_rng_seed(&r1, 3);
  oc_rng_seed(&r2, 3);
  ok(oc_augment_batch(&o1, &r1, x, n, c, h, w, y1, h, w));
  for (int i = 0; i < h * w; ++i) x[i] = 1.0f - x[i]; /* change image 0 only */
  ok(oc_augment_batch(&o1, &r2, x, n, c, h, w, y2, h, w));
  ck_assert(memcmp(y1 + h * w, y2 + h * w, (size_t)(2 * h * w) * sizeof(float)) == 0);
  free(x);
  free(y1);
  free(y2);
}
END_TEST

START_TEST(pipeline_probabilities) {
  /* The fraction of flipped outputs is hflip_p (an image flip detects it). */
  const int64_t n = 4000, c = 1, h = 4, w = 5;
  float *x = fmalloc((size_t)(n * h * w)), *y = fmalloc((size_t)(n * h * w));
  float base[20], flipped[20];
  for (int i = 0; i < 20; ++i) base[i] = (float)i / 19.0f;
  ok(oc_aug_hflip(base, 1, h, w, flipped));
  for (int64_t i = 0; i < n; ++i) memcpy(x + i * h * w, base, sizeof(base));
  oc_augment_options_t o;
  options_off(&o);
  o.hflip_p = 0.3;
  oc_rng_t r;
  oc_rng_seed(&r, 4);
  ok(oc_augment_batch(&o, &r, x, n, c, h, w, y, h, w));
  int nflip = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float *v = y + i * h * w;
    int is_flip = memcmp(v, flipped, sizeof(base)) == 0;
    ck_assert(is_flip || memcmp(v, base, sizeof(base)) == 0);
    nflip += is_flip;
  }
  double sd = sqrt(0.3 * 0.7 / (double)n);
  ck_assert_double_eq_tol((double)nflip / (double)n, 0.3, 4 * sd);

  /* Every step's probability, from the sampled parameters. */
  oc_augment_options_init(&o);
  o.affine_p = 0.35;
  o.affine_degrees = 10;
  o.noise_p = 0.65;
  o.noise_std = 0.05;
  o.crop_p = 0.9;
  const int m = 20000;
  int cnt[7] = {0};
  oc_rng_seed(&r, 5);
  for (int i = 0; i < m; ++i) {
    oc_augment_params_t p;
    ok(oc_augment_sample(&o, &r, 3, 64, 64, 64, 64, &p));
    cnt[0] += p.crop_height != 64 || p.crop_width != 64;
    cnt[1] += p.affine;
    cnt[2] += p.hflip;
    cnt[3] += p.jitter;
    cnt[4] += p.grayscale;
    cnt[5] += p.blur;
    cnt[6] += p.noise;
    ck_assert(p.crop_top >= 0 && p.crop_left >= 0 && p.crop_top + p.crop_height <= 64 &&
              p.crop_left + p.crop_width <= 64);
    if (p.jitter) {
      ck_assert(p.brightness >= 0.6 && p.brightness <= 1.4 && p.contrast >= 0.6 &&
                p.contrast <= 1.4 && p.saturation >= 0.6 && p.saturation <= 1.4 &&
                p.hue >= -0.1 && p.hue <= 0.1);
    }
    if (p.blur) {
      ck_assert_int_eq(p.blur_kernel_size, 7); /* SimCLR's rule for 64 */
      ck_assert(p.blur_sigma >= 0.1 && p.blur_sigma <= 2.0);
    }
    if (p.affine) ck_assert(fabs(p.angle) <= 10.0);
  }
  /* A crop of scale < 1 almost never is the whole image. */
  const double want[7] = {0.9, 0.35, 0.5, 0.8, 0.2, 0.5, 0.65};
  for (int k = 0; k < 7; ++k) {
    double s = sqrt(want[k] * (1 - want[k]) / m);
    ck_assert_msg(fabs((double)cnt[k] / m - want[k]) < 4 * s + (k == 0 ? 0.01 : 0),
                  "step %d: %g vs %g", k, (double)cnt[k] / m, want[k]);
  }
  free(x);
  free(y);
}
END_TEST

START_TEST(pipeline_crop_statistics) {
  /* Crop boxes follow RandomResizedCrop: area in the scale range and ratio
   * in the ratio range (up to rounding), positions spread over the image. */
  oc_augment_options_t o;
  oc_augment_options_init(&o);
  oc_rng_t r;
  oc_rng_seed(&r, 6);
  const int64_t h = 200, w = 300;
  double left_sum = 0;
  int fallback = 0;
  for (int i = 0; i < 5000; ++i) {
    oc_augment_params_t p;
    ok(oc_augment_sample(&o, &r, 3, h, w, 224, 224, &p));
    double area = (double)(p.crop_height * p.crop_width) / (double)(h * w);
    double ratio = (double)p.crop_width / (double)p.crop_height;
    if (area > 0.999) {
      ++fallback;
      continue;
    }
    ck_assert_double_ge(area, 0.08 * 0.9);
    ck_assert_double_le(ratio, 4.0 / 3.0 * 1.15);
    ck_assert_double_ge(ratio, 3.0 / 4.0 / 1.15);
    left_sum += (double)p.crop_left / (double)(w - p.crop_width + 1);
  }
  ck_assert_int_lt(fallback, 100);
  ck_assert_double_eq_tol(left_sum / (5000 - fallback), 0.5, 0.03);
  /* The auto kernel sizes: SimCLR's rule. */
  o.blur_p = 1.0;
  const int64_t sides[][2] = {{224, 23}, {96, 9}, {32, 3}, {28, 3}, {8, 3}};
  for (int i = 0; i < 5; ++i) {
    oc_augment_params_t p;
    ok(oc_augment_sample(&o, &r, 3, 300, 300, sides[i][0], sides[i][0], &p));
    ck_assert_int_eq(p.blur_kernel_size, sides[i][1]);
  }
}
END_TEST

START_TEST(pipeline_values_stay_in_range) {
  const int64_t n = 64, h = 28, w = 28;
  for (int64_t c = 1; c <= 3; c += 2) {
    size_t cnt = (size_t)(n * c * h * w);
    float *x = random_image(n * c, h, w, 99), *y = fmalloc(cnt);
    for (int recipe = 0; recipe < 2; ++recipe) {
      oc_augment_options_t o;
      if (recipe)
        oc_augment_options_init_digits(&o);
      else
        oc_augment_options_init(&o);
      o.noise_p = 1.0;
      o.noise_std = 0.5;
      o.affine_p = 1.0;
      o.affine_degrees = 45;
      o.jitter_p = 1.0;
      o.brightness = 2.0;
      oc_rng_t r;
      oc_rng_seed(&r, 17);
      ok(oc_augment_batch(&o, &r, x, n, c, h, w, y, 20, 24));
      for (size_t i = 0; i < (size_t)(n * c * 20 * 24); ++i) ck_assert(y[i] >= 0.0f && y[i] <= 1.0f);
    }
    free(x);
    free(y);
  }
}
END_TEST

START_TEST(digits_recipe) {
  oc_augment_options_t o;
  oc_augment_options_init_digits(&o);
  ck_assert(o.hflip_p == 0.0 && o.saturation == 0.0 && o.hue == 0.0 && o.grayscale_p == 0.0);
  ck_assert(o.affine_p > 0 && o.affine_degrees > 0 && o.affine_shear > 0);
  ck_assert(o.noise_p > 0 && o.noise_std > 0 && o.crop_scale_min >= 0.3);
  /* A digit-like image stays mostly recognisable: the views correlate with it. */
  const int64_t n = 200, h = 28, w = 28;
  float *x = fmalloc((size_t)(n * h * w)), *y = fmalloc((size_t)(n * h * w));
  for (int64_t i = 0; i < n * h * w; ++i) {
    int64_t yy = (i / w) % h, xx = i % w;
    x[i] = (xx >= 12 && xx <= 15 && yy >= 4 && yy <= 23) ? 1.0f : 0.0f; /* a "1" */
  }
  oc_rng_t r;
  oc_rng_seed(&r, 1);
  ok(oc_augment_batch(&o, &r, x, n, 1, h, w, y, h, w));
  double corr_sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float *a = x + i * h * w, *b = y + i * h * w;
    double ma = mean_of(a, (size_t)(h * w)), mb = mean_of(b, (size_t)(h * w));
    double sab = 0, saa = 0, sbb = 0;
    for (int64_t k = 0; k < h * w; ++k) {
      sab += (a[k] - ma) * (b[k] - mb);
      saa += (a[k] - ma) * (a[k] - ma);
      sbb += (b[k] - mb) * (b[k] - mb);
    }
    corr_sum += sab / sqrt(saa * sbb + 1e-12);
  }
  ck_assert_double_gt(corr_sum / n, 0.4);
  free(x);
  free(y);
}
END_TEST

START_TEST(errors_are_statuses) {
  float img[3 * 8 * 8] = {0}, out[3 * 8 * 8];
  uint8_t img8[3 * 8 * 8] = {0};
  oc_augment_options_t o;
  oc_augment_options_init(&o);
  oc_rng_t r;
  oc_rng_seed(&r, 1);
  expect_code(oc_augment_batch(NULL, &r, img, 1, 3, 8, 8, out, 8, 8), OC_STATUS_INVALID_ARGUMENT);
  expect_code(oc_augment_batch(&o, NULL, img, 1, 3, 8, 8, out, 8, 8), OC_STATUS_INVALID_ARGUMENT);
  expect_code(oc_augment_batch(&o, &r, NULL, 1, 3, 8, 8, out, 8, 8), OC_STATUS_INVALID_ARGUMENT);
  expect_code(oc_augment_batch(&o, &r, img, 1, 3, 8, 8, NULL, 8, 8), OC_STATUS_INVALID_ARGUMENT);
  expect_code(oc_augment_batch(&o, &r, img, -1, 3, 8, 8, out, 8, 8), OC_STATUS_INVALID_ARGUMENT);
  expect_code(oc_augment_batch(&o, &r, img, 1, 0, 8, 8, out, 8, 8), OC_STATUS_INVALID_ARGUMENT);
  expect_code(oc_augment_batch(&o, &r, img, 1, 3, 8, 8, out, 0, 8), OC_STATUS_INVALID_ARGUMENT);
  expect_code(oc_augment_batch(&o, &r, img, 1, 3, 8, 8, img, 8, 8), OC_STATUS_INVALID_ARGUMENT);
  expect_code(oc_augment_batch(&o, &r, img, INT64_MAX / 4, 3, 8, 8, out, 8, 8),
              OC_STATUS_INVALID_ARGUMENT);
  expect_code(oc_augment_batch_u8(&o, &r, img8, 1, (int64_t)1 << 40, 8, 8, out, 8, 8),
              OC_STATUS_INVALID_ARGUMENT);
  ok(oc_augment_batch(&o, &r, img, 0, 3, 8, 8, out, 8, 8)); /* empty batch */

  oc_augment_options_t bad;
  bad = o, bad.hflip_p = 1.5;
  expect_code(oc_augment_batch(&bad, &r, img, 1, 3, 8, 8, out, 8, 8), OC_STATUS_INVALID_ARGUMENT);
  bad = o, bad.jitter_p = NAN;
  expect_code(oc_augment_batch(&bad, &r, img, 1, 3, 8, 8, out, 8, 8), OC_STATUS_INVALID_ARGUMENT);
  bad = o, bad.crop_scale_min = 0.9, bad.crop_scale_max = 0.5;
  expect_code(oc_augment_batch(&bad, &r, img, 1, 3, 8, 8, out, 8, 8), OC_STATUS_INVALID_ARGUMENT);
  bad = o, bad.hue = 0.7;
  expect_code(oc_augment_batch(&bad, &r, img, 1, 3, 8, 8, out, 8, 8), OC_STATUS_INVALID_ARGUMENT);
  bad = o, bad.blur_kernel_size = 4;
  expect_code(oc_augment_batch(&bad, &r, img, 1, 3, 8, 8, out, 8, 8), OC_STATUS_INVALID_ARGUMENT);
  bad = o, bad.affine_p = 0.5, bad.affine_shear = 95;
  expect_code(oc_augment_batch(&bad, &r, img, 1, 3, 8, 8, out, 8, 8), OC_STATUS_INVALID_ARGUMENT);
  bad = o, bad.noise_p = 0.5, bad.noise_std = -0.1;
  expect_code(oc_augment_sample(&bad, &r, 3, 8, 8, 8, 8, (oc_augment_params_t[1]){{0}}),
              OC_STATUS_INVALID_ARGUMENT);
  /* A rejected call draws nothing. */
  oc_rng_t before = r;
  expect_code(oc_augment_batch(&bad, &r, img, 1, 3, 8, 8, out, 8, 8), OC_STATUS_INVALID_ARGUMENT);
  ck_assert(memcmp(&before, &r, sizeof(r)) == 0);

  oc_augment_params_t p;
  ok(oc_augment_sample(&o, &r, 3, 8, 8, 8, 8, &p));
  oc_augment_params_t q = p;
  q.crop_left = 5, q.crop_width = 4;
  expect_code(oc_augment_apply(&q, img, 3, 8, 8, out, 8, 8), OC_STATUS_INVALID_ARGUMENT);
  q = p, q.jitter = 1, q.jitter_order[0] = q.jitter_order[1];
  expect_code(oc_augment_apply(&q, img, 3, 8, 8, out, 8, 8), OC_STATUS_INVALID_ARGUMENT);
  q = p, q.blur = 1, q.blur_kernel_size = 2;
  expect_code(oc_augment_apply(&q, img, 3, 8, 8, out, 8, 8), OC_STATUS_INVALID_ARGUMENT);
  expect_code(oc_augment_apply(NULL, img, 3, 8, 8, out, 8, 8), OC_STATUS_INVALID_ARGUMENT);
  expect_code(oc_augment_apply_u8(&p, NULL, 3, 8, 8, out, 8, 8), OC_STATUS_INVALID_ARGUMENT);
  expect_code(oc_aug_hflip(NULL, 1, 1, 1, out), OC_STATUS_INVALID_ARGUMENT);
  expect_code(oc_aug_adjust_brightness(img, 3, 8, 8, -1.0, out), OC_STATUS_INVALID_ARGUMENT);
  expect_code(oc_aug_adjust_contrast(img, 3, 8, 8, NAN, out), OC_STATUS_INVALID_ARGUMENT);
}
END_TEST

static Suite *augment_suite(void) {
  Suite *s = suite_create("augment");
  TCase *tc = tcase_create("transforms");
  tcase_add_test(tc, rng_repeats_and_is_uniform);
  tcase_add_test(tc, hflip_definition_and_twice_is_identity);
  tcase_add_test(tc, jitter_identity_factors);
  tcase_add_test(tc, brightness_and_contrast_definitions);
  tcase_add_test(tc, grayscale_and_saturation_definitions);
  tcase_add_test(tc, hue_definition);
  tcase_add_test(tc, resized_crop_known_values);
  tcase_add_test(tc, full_crop_is_resize_and_identity);
  tcase_add_test(tc, blur_matches_definition_and_preserves_mean);
  tcase_add_test(tc, affine_definitions);
  tcase_add_test(tc, noise_definition);
  suite_add_tcase(s, tc);
  TCase *tp = tcase_create("pipeline");
  tcase_add_test(tp, pipeline_off_is_identity_and_full_crop_is_resize);
  tcase_add_test(tp, pipeline_equals_composed_transforms);
  tcase_add_test(tp, pipeline_same_seed_same_views);
  tcase_add_test(tp, pipeline_steps_are_independent_streams);
  tcase_add_test(tp, pipeline_probabilities);
  tcase_add_test(tp, pipeline_crop_statistics);
  tcase_add_test(tp, pipeline_values_stay_in_range);
  tcase_add_test(tp, digits_recipe);
  tcase_add_test(tp, errors_are_statuses);
  suite_add_tcase(s, tp);
  return s;
}

int main(void) {
  Suite *s = augment_suite();
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
