/*
 * The tile products of tile_gemm.h. Each (nv, A layout) pair is one
 * function, compiled for AVX-512, AVX2 and the baseline (OC_SIMD_CLONES),
 * with one fully unrolled loop per row count: the sums of a tile stay in
 * registers for the whole k loop, each step loading nv vectors of B and
 * broadcasting one value of A per row.
 */
/* Multiply-adds as fused multiply-adds (-std=c11 turns contraction off):
 * twice the throughput, and one rounding instead of two. GCC contracts only
 * when it optimizes: an unoptimized (Debug, sanitizer) build compiles this
 * file at -O2 too, so that its products round as a Release build's (the
 * tests compare runs that take different paths to the same sums). */
#if !defined(__OPTIMIZE__)
#pragma GCC optimize("O2")
#endif
#pragma GCC optimize("fp-contract=fast")

#include "tile_gemm.h"

#include "simd.h"

enum { TILE_MAX_ROWS = 14 };

/* Vector |v| of row |i| of C as stored (accumulate): the sums start from it,
 * so that a product split over k rounds as the whole one. */
OC_VINLINE oc_v16f tile_load_part(const oc_tile_t *t, int i, int v) {
  const float *row = t->c + i * t->rs;
  int n = t->cols - 16 * v;
  if (n <= 0) return oc_v16_set(0.0f);
  if (t->cs == 1 && n >= 16) return oc_v16_load(row + 16 * v);
  float old[16] = {0};
  for (int j = 0; j < n && j < 16; j++) old[j] = row[(16 * v + j) * t->cs];
  return oc_v16_load(old);
}

/* Row |i| of a finished tile: epilogue, store. */
OC_VINLINE void tile_store_row(const oc_tile_t *t, int nv, int i, oc_v16f s0, oc_v16f s1) {
  oc_v16f s[2] = {s0, s1};
  float *row = t->c + i * t->rs;
  const int full = t->cs == 1 && t->cols == 16 * nv;
  for (int v = 0; v < nv; v++) {
    oc_v16f r = s[v];
    int n = t->cols - 16 * v; /* columns of this vector to store */
    if (n <= 0) break;
    if (n > 16) n = 16;
    if (t->epilogue) {
      if (t->bias_row) r += oc_v16_set(t->bias_row[i]);
      if (t->bias_col) r += n == 16 ? oc_v16_load(t->bias_col + 16 * v)
                                    : oc_v16_load_n(t->bias_col + 16 * v, n);
      if (t->act == 1) {
        const oc_v16f zero = oc_v16_set(0.0f);
        r = oc_v16_select(r < zero, zero, r);
      } else if (t->act == 2) {
        const oc_v16f lo = oc_v16_set(t->lo), hi = oc_v16_set(t->hi);
        r = oc_v16_select(r < lo, lo, oc_v16_select(r > hi, hi, r));
      }
    }
    if (full) {
      oc_v16_store(row + 16 * v, r);
    } else {
      float out[16];
      oc_v16_store(out, r);
      for (int j = 0; j < n; j++) row[(16 * v + j) * t->cs] = out[j];
    }
  }
}

/* One tile of MR rows, NV vectors, A layout KM (tile_gemm.h). */
#define TILE_BODY(MR, NV, KM)                                                          \
  do {                                                                                 \
    const oc_v16f zero_ = oc_v16_set(0.0f);                                           \
    oc_v16f acc[MR][NV];                                                               \
    _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++)                              \
      _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++)                             \
        acc[i][v] = t->accumulate ? tile_load_part(t, i, v) : zero_;                     \
    const float *a_ = t->a, *b_ = t->b;                                                \
    const int64_t lda_ = t->lda, ldb_ = t->ldb, K_ = t->K;                             \
    for (int64_t k = 0; k < K_; k++, b_ += ldb_) {                                     \
      oc_v16f bv[NV];                                                                  \
      _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++) bv[v] = oc_v16_load(b_ + 16 * v); \
      _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) {                          \
        const oc_v16f av = oc_v16_set(KM ? a_[k * lda_ + i] : a_[i * lda_ + k]);       \
        _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++) acc[i][v] += av * bv[v];  \
      }                                                                                \
    }                                                                                  \
    _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++)                              \
      tile_store_row(t, NV, i, acc[i][0], NV > 1 ? acc[i][NV > 1 ? 1 : 0] : zero_);    \
  } while (0)

#define TILE_CASES(NV, KM)                  \
  switch (t->rows) {                        \
    case 1: TILE_BODY(1, NV, KM); break;    \
    case 2: TILE_BODY(2, NV, KM); break;    \
    case 3: TILE_BODY(3, NV, KM); break;    \
    case 4: TILE_BODY(4, NV, KM); break;    \
    case 5: TILE_BODY(5, NV, KM); break;    \
    case 6: TILE_BODY(6, NV, KM); break;    \
    case 7: TILE_BODY(7, NV, KM); break;    \
    case 8: TILE_BODY(8, NV, KM); break;    \
    case 9: TILE_BODY(9, NV, KM); break;    \
    case 10: TILE_BODY(10, NV, KM); break;  \
    case 11: TILE_BODY(11, NV, KM); break;  \
    case 12: TILE_BODY(12, NV, KM); break;  \
    case 13: TILE_BODY(13, NV, KM); break;  \
    default: TILE_BODY(14, NV, KM); break;  \
  }

OC_SIMD_CLONES static void tile_1_rows(const oc_tile_t *t) { TILE_CASES(1, 0) }
OC_SIMD_CLONES static void tile_1_kmajor(const oc_tile_t *t) { TILE_CASES(1, 1) }
OC_SIMD_CLONES static void tile_2_rows(const oc_tile_t *t) { TILE_CASES(2, 0) }
OC_SIMD_CLONES static void tile_2_kmajor(const oc_tile_t *t) { TILE_CASES(2, 1) }

/* Whether the AVX-512 clones run (target_clones picks arch=x86-64-v4 when
 * the CPU has these). */
static int tile_wide(void) {
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(ONNXC_NO_TARGET_CLONES) && !defined(__SANITIZE_THREAD__)
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#else
  return 0;
#endif
}

int oc_tile_rows(int nv) {
  if (tile_wide()) return TILE_MAX_ROWS;
  return nv == 1 ? 6 : 3; /* 16 AVX2 registers: 2 per vector of 16 */
}

void oc_tile_run(const oc_tile_t *t, int nv) {
  if (nv == 1)
    t->a_kmajor ? tile_1_kmajor(t) : tile_1_rows(t);
  else
    t->a_kmajor ? tile_2_kmajor(t) : tile_2_rows(t);
}
