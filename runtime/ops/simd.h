/*
 * Vectorized float32 loops for the elementwise and reduction kernels.
 *
 * The loops work on blocks of 16 floats through GCC's vector extensions, so
 * they are vectorized at any optimization level. On x86-64 Linux with GCC
 * every function marked OC_SIMD_CLONES is compiled three times (x86-64-v4:
 * AVX-512 F/BW/DQ/VL; x86-64-v3: AVX2 and FMA; the baseline, SSE2) and the
 * dynamic loader picks the widest one the CPU runs (target_clones, an
 * ifunc); elsewhere the portable build is used.
 * Loads and stores go through memcpy: no alignment is assumed, and an output
 * may be the same array as an input (in-place kernels), never a partial
 * overlap.
 */
#ifndef ONNXC_SIMD_H
#define ONNXC_SIMD_H

#include <stdint.h>
#include <string.h>

/* Not under ThreadSanitizer: the ifunc resolvers run during relocation,
 * before its runtime is up, and instrumented they crash. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(ONNXC_NO_TARGET_CLONES) && !defined(__SANITIZE_THREAD__)
#define OC_SIMD_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define OC_SIMD_CLONES
#endif

/* The vector types are passed by value between inlined helpers only; GCC's
 * note that their ABI differs without AVX-512 is irrelevant here. */
#pragma GCC diagnostic ignored "-Wpsabi"

/* Helpers that take or return vectors are always inlined: a call between a
 * target clone and a function compiled for the baseline would pass the
 * vectors under different ABIs (at -O0 nothing is inlined otherwise). */
#define OC_VINLINE static inline __attribute__((always_inline))

typedef float oc_v16f __attribute__((vector_size(64)));
typedef int32_t oc_v16i __attribute__((vector_size(64)));

#define OC_V16 16

OC_VINLINE oc_v16f oc_v16_load(const float *p) {
  oc_v16f v;
  memcpy(&v, p, sizeof v);
  return v;
}
OC_VINLINE void oc_v16_store(float *p, oc_v16f v) { memcpy(p, &v, sizeof v); }
/* The first |n| < 16 lanes (the tail of a loop), the rest 0; and back. */
OC_VINLINE oc_v16f oc_v16_load_n(const float *p, int64_t n) {
  float t[16] = {0};
  memcpy(t, p, sizeof(float) * (size_t)n);
  oc_v16f v;
  memcpy(&v, t, sizeof v);
  return v;
}
OC_VINLINE void oc_v16_store_n(float *p, oc_v16f v, int64_t n) {
  float t[16];
  memcpy(t, &v, sizeof v);
  memcpy(p, t, sizeof(float) * (size_t)n);
}
/* Every lane s. GCC builds a 16-element initializer through the stack (16
 * scalar stores, then a vector load that stalls on them: in a loop that
 * costs more than the loop's arithmetic); a shuffle of lane 0 is one
 * broadcast. */
OC_VINLINE oc_v16f oc_v16_set(float s) {
#if defined(__clang__)
  return (oc_v16f){s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s};
#else
  return __builtin_shuffle((oc_v16f){s}, (oc_v16i){0});
#endif
}
/* mask ? a : b, mask from a vector comparison (all ones or all zeros). */
OC_VINLINE oc_v16f oc_v16_select(oc_v16i mask, oc_v16f a, oc_v16f b) {
  return (oc_v16f)((mask & (oc_v16i)a) | (~mask & (oc_v16i)b));
}

/* erf(x) for float32: x * P(x^2) / Q(x^2) on x clamped to [-4, 4] (erf is
 * +-1 in float32 beyond), the rational approximation of Eigen and XLA;
 * within a few ulp of the exact value. NaN passes through. */
#define OC_ERF_A1 -1.60960333262415e-02f
#define OC_ERF_A3 -2.95459980854025e-03f
#define OC_ERF_A5 -7.34990630326855e-04f
#define OC_ERF_A7 -5.69250639462346e-05f
#define OC_ERF_A9 -2.10102402082508e-06f
#define OC_ERF_A11 2.77068142495902e-08f
#define OC_ERF_A13 -2.72614225801306e-10f
#define OC_ERF_B0 -1.42647390514189e-02f
#define OC_ERF_B2 -7.37332916720468e-03f
#define OC_ERF_B4 -1.68282697438203e-03f
#define OC_ERF_B6 -2.13374055278905e-04f
#define OC_ERF_B8 -1.45660718464996e-05f

static inline float oc_erf1(float x) {
  x = x < -4.0f ? -4.0f : x > 4.0f ? 4.0f : x;
  float x2 = x * x;
  float p = x2 * OC_ERF_A13 + OC_ERF_A11;
  p = x2 * p + OC_ERF_A9;
  p = x2 * p + OC_ERF_A7;
  p = x2 * p + OC_ERF_A5;
  p = x2 * p + OC_ERF_A3;
  p = x2 * p + OC_ERF_A1;
  p = x * p;
  float q = x2 * OC_ERF_B8 + OC_ERF_B6;
  q = x2 * q + OC_ERF_B4;
  q = x2 * q + OC_ERF_B2;
  q = x2 * q + OC_ERF_B0;
  return p / q;
}

OC_VINLINE oc_v16f oc_erf16(oc_v16f x) {
  oc_v16f lo = oc_v16_set(-4.0f), hi = oc_v16_set(4.0f);
  x = oc_v16_select(x < lo, lo, x);
  x = oc_v16_select(x > hi, hi, x);
  oc_v16f x2 = x * x;
  oc_v16f p = x2 * OC_ERF_A13 + OC_ERF_A11;
  p = x2 * p + OC_ERF_A9;
  p = x2 * p + OC_ERF_A7;
  p = x2 * p + OC_ERF_A5;
  p = x2 * p + OC_ERF_A3;
  p = x2 * p + OC_ERF_A1;
  p = x * p;
  oc_v16f q = x2 * OC_ERF_B8 + OC_ERF_B6;
  q = x2 * q + OC_ERF_B4;
  q = x2 * q + OC_ERF_B2;
  q = x2 * q + OC_ERF_B0;
  return p / q;
}

/* exp(x) for float32 (Cephes' expf: x = n ln2 + r, |r| <= ln2 / 2, a degree-6
 * polynomial for e^r, times 2^n), within 2 ulp of the exact value for the
 * results above the smallest normal number; 0 below it (instead of the
 * denormals), +inf above the largest finite one; NaN passes through. */
#define OC_EXP_HI 88.3762626647949f
#define OC_EXP_LO -87.3365447504f

OC_VINLINE oc_v16f oc_exp16(oc_v16f x) {
  const oc_v16f hi = oc_v16_set(OC_EXP_HI), lo = oc_v16_set(OC_EXP_LO);
  oc_v16f xc = oc_v16_select(x > hi, hi, x);
  xc = oc_v16_select(xc < lo, lo, xc);
  oc_v16f fx = xc * 1.44269504088896341f + 0.5f;
  oc_v16i n = __builtin_convertvector(fx, oc_v16i); /* toward zero */
  oc_v16f t = __builtin_convertvector(n, oc_v16f);
  n -= (oc_v16i)(t > fx) & 1; /* floor */
  t = __builtin_convertvector(n, oc_v16f);
  oc_v16f r = xc - t * 0.693359375f - t * -2.12194440e-4f;
  oc_v16f z = r * r;
  oc_v16f y = 1.9875691500E-4f * r + 1.3981999507E-3f;
  y = y * r + 8.3334519073E-3f;
  y = y * r + 4.1665795894E-2f;
  y = y * r + 1.6666665459E-1f;
  y = y * r + 5.0000001201E-1f;
  y = y * z + r + 1.0f;
  oc_v16i bits = (n + 127) << 23; /* 2^n, n in [-126, 127] after the clamp */
  y = y * (oc_v16f)bits;
  y = oc_v16_select(x < lo, oc_v16_set(0.0f), y);
  return oc_v16_select(x > hi, oc_v16_set(__builtin_inff()), y);
}

/* The same for one value (the tails of vector loops). */
static inline float oc_exp1(float x) {
  float v[OC_V16] = {x};
  oc_v16_store(v, oc_exp16(oc_v16_load(v)));
  return v[0];
}

#endif
