/*
 * Register-blocked float32 products for the convolution kernels (conv.c,
 * winograd.c). Internal to the kernels.
 *
 * One call computes a tile of C, rows x 16 * nv columns (nv 1 or 2, rows
 * at most oc_tile_rows(nv)), entirely in vector registers:
 *     C(i, j) [+]= sum over k < K of A(i, k) * B(k, j)
 *     A(i, k) = a[i * lda + k]   (a_kmajor 0: the rows of A, broadcast)
 *             = a[k * lda + i]   (a_kmajor 1: k-major, e.g. an im2col matrix)
 *     B(k, j) = b[k * ldb + j]   (16 * nv readable floats per k: a packed
 *                                 panel, or rows of a matrix)
 * then, if |epilogue|, y = act(C + bias_row[i] + bias_col[j]) (either bias
 * may be NULL; act 0 none, 1 max(y, 0), 2 min(max(y, lo), hi)), and stores
 * C(i, j) at c[i * rs + j * cs] for i < rows and j < cols only. With
 * |accumulate| the sums start from the stored values instead of 0 (before
 * the epilogue), so that a product split into calls over ranges of k gives
 * the bits of one call over all of k.
 *
 * The products run at close to the machine's multiply-add peak when B is a
 * packed panel that stays in the L1/L2 cache across the calls of a row of
 * tiles (the kernels' callers arrange this); OpenBLAS's sgemm instead packs
 * both operands on every call, which costs as much as the product for the
 * thin products of a convolution over a small map.
 */
#ifndef ONNXC_TILE_GEMM_H
#define ONNXC_TILE_GEMM_H

#include <stdint.h>

typedef struct oc_tile_s {
  int64_t K;
  const float *a;
  int64_t lda;
  int a_kmajor;
  const float *b;
  int64_t ldb;
  float *c;
  int64_t rs, cs;
  int rows, cols;
  int accumulate, epilogue;
  const float *bias_row, *bias_col;
  int act;
  float lo, hi;
} oc_tile_t;

/* The largest row count of one tile with |nv| (1 or 2) vectors of columns:
 * 14 with AVX-512 (the 32 vector registers hold 14 x 2 sums), fewer on
 * narrower machines. */
int oc_tile_rows(int nv);

/* Computes and stores one tile (see above); t->rows in [1, oc_tile_rows(nv)],
 * t->cols in [1, 16 * nv]. */
void oc_tile_run(const oc_tile_t *t, int nv);

/* |n| items in groups of at most |max| of nearly equal size: the number of
 * groups, and (oc_tile_group) the start of group |g|. */
static inline int64_t oc_tile_groups(int64_t n, int64_t max) { return (n + max - 1) / max; }
static inline int64_t oc_tile_group(int64_t n, int64_t groups, int64_t g) {
  return n * g / groups;
}

#endif
