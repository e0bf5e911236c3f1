/*
 * Winograd F(4x4, 3x3) (Lavin and Gray, "Fast Algorithms for Convolutional
 * Neural Networks", 2016): each 4x4 block of outputs of each output channel
 * comes from a 6x6 input tile through
 *     Y = A^T [ sum_c (G g_mc G^T) . (B^T d_c B) ] A
 * so the 36 positions of the transformed tiles are 36 independent products
 * (M x C) @ (C x tiles): 36 multiply-adds per input channel per 16 outputs
 * instead of 144. The weights are transformed once per call (U, (36, M, C)),
 * the tiles in blocks of whole tile rows: V (36, C, T), products (36, M, T),
 * then the output transform adds the bias and the activation.
 *
 * The input is first transposed to channel-minor order (N, H, W, C), so that
 * the transforms run on vectors of 16 channels (simd.h): the input
 * transform reads a tile's 36 channel vectors and writes V (36, T, C16), the
 * products are (T, C) @ (C, M) per position into (36, T, M16), and the
 * output transform reads 36 vectors of 16 output channels per tile.
 *
 * Matrices (F(4x4, 3x3), points 0, +-1, +-2, inf):
 *   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0;
 *          0 2 -1 -2 1 0; 0 4 0 -5 0 1]
 *   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6;
 *          1/24 -1/12 1/6; 0 0 1]
 *   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
 */
#include "winograd.h"

#include <cblas.h>
#include <string.h>

#include "oc_ops.h"
#include "simd.h"

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t up16(int64_t v) { return (v + 15) / 16 * 16; }

/* Tiles per block: about 4 MiB of transformed inputs and products. */
static int64_t block_tiles(const oc_winograd_t *p) {
  int64_t tiles = p->N * cdiv(p->OH, 4) * cdiv(p->OW, 4);
  int64_t t = ((int64_t)1 << 20) / (36 * (up16(p->C) + up16(p->M)));
  if (t < 16) t = 16;
  return t < tiles ? t : tiles;
}

int oc_winograd_applies(const oc_winograd_t *p) {
  if (p->C < 16 || p->M < 16 || p->OH < 4 || p->OW < 4) return 0;
  if (p->ph < 0 || p->ph > 2 || p->pw < 0 || p->pw > 2) return 0;
  int64_t th = cdiv(p->OH, 4), tw = cdiv(p->OW, 4);
  /* enough tiles to repay transforming the weights (36 M C values) */
  int64_t tiles = p->N * th * tw;
  if (tiles < 16 || (tiles < 32 && p->C * p->M > 256 * 256)) return 0;
  /* at least half of every tile's outputs are used */
  return 2 * p->OH * p->OW >= th * tw * 16;
}

uint64_t oc_winograd_workspace(const oc_winograd_t *p) {
  uint64_t T = (uint64_t)block_tiles(p);
  uint64_t floats = 36 * (uint64_t)p->M * (uint64_t)p->C                       /* U */
                    + 36 * T * (uint64_t)(up16(p->C) + up16(p->M))              /* V, Mo */
                    + (uint64_t)p->N * p->H * p->W * (uint64_t)p->C + 16;       /* x, NHWC */
  return floats * sizeof(float);
}

typedef struct wg_job_s {
  const oc_winograd_t *p;
  float *y, *U, *V, *Mo, *xt;
  const float *x, *w, *b;
  int64_t TH, TW, T, C16, M16;
  int64_t t0, nt; /* the block: tiles [t0, t0 + nt) of N * TH * TW */
} wg_job_t;

/* U[xi, m, c] = (G g G^T)[xi] for output channels [m0, m1), 16 input
 * channels at a time. */
OC_SIMD_CLONES static void wg_weights_range(const wg_job_t *j, int64_t m0, int64_t m1) {
  const oc_winograd_t *p = j->p;
  const float g1 = 0.25f, g2 = -1.0f / 6, g3 = 1.0f / 6, g4 = 1.0f / 24, g5 = 1.0f / 12;
  for (int64_t m = m0; m < m1; m++)
    for (int64_t c0 = 0; c0 < p->C; c0 += 16) {
      int64_t lanes = p->C - c0 < 16 ? p->C - c0 : 16;
      float gl[9][16] = {{0}};
      for (int64_t l = 0; l < lanes; l++)
        for (int a = 0; a < 3; a++)
          for (int k = 0; k < 3; k++)
            gl[a * 3 + k][l] = p->flip ? j->w[((c0 + l) * p->M + m) * 9 + (2 - a) * 3 + (2 - k)]
                                       : j->w[(m * p->C + c0 + l) * 9 + a * 3 + k];
      oc_v16f g[3][3], t[6][3];
      for (int a = 0; a < 3; a++)
        for (int k = 0; k < 3; k++) g[a][k] = oc_v16_load(gl[a * 3 + k]);
      /* t = G g */
      for (int k = 0; k < 3; k++) {
        t[0][k] = g1 * g[0][k];
        t[1][k] = g2 * (g[0][k] + g[1][k] + g[2][k]);
        t[2][k] = g2 * (g[0][k] - g[1][k] + g[2][k]);
        t[3][k] = g4 * g[0][k] + g5 * g[1][k] + g3 * g[2][k];
        t[4][k] = g4 * g[0][k] - g5 * g[1][k] + g3 * g[2][k];
        t[5][k] = g[2][k];
      }
      /* U = t G^T, row i of t against the rows of G */
      for (int i = 0; i < 6; i++) {
        oc_v16f u[6];
        u[0] = g1 * t[i][0];
        u[1] = g2 * (t[i][0] + t[i][1] + t[i][2]);
        u[2] = g2 * (t[i][0] - t[i][1] + t[i][2]);
        u[3] = g4 * t[i][0] + g5 * t[i][1] + g3 * t[i][2];
        u[4] = g4 * t[i][0] - g5 * t[i][1] + g3 * t[i][2];
        u[5] = t[i][2];
        for (int k = 0; k < 6; k++) {
          float *dst = j->U + ((int64_t)(i * 6 + k) * p->M + m) * p->C + c0;
          if (lanes == 16) {
            oc_v16_store(dst, u[k]);
          } else {
            float v[16];
            oc_v16_store(v, u[k]);
            memcpy(dst, v, sizeof(float) * (size_t)lanes);
          }
        }
      }
    }
}

static void wg_weights(void *arg, int64_t m0, int64_t m1, int thread) {
  wg_weights_range(arg, m0, m1);
  (void)thread;
}

/* xt (N, H, W, C) = x (N, C, H, W), for image rows [r0, r1) of N * H. */
static void wg_transpose(void *arg, int64_t r0, int64_t r1, int thread) {
  const wg_job_t *j = arg;
  const oc_winograd_t *p = j->p;
  for (int64_t r = r0; r < r1; r++) {
    int64_t n = r / p->H, h = r % p->H;
    float *dst = j->xt + r * p->W * p->C;
    for (int64_t c = 0; c < p->C; c++) {
      const float *src = j->x + ((n * p->C + c) * p->H + h) * p->W;
      for (int64_t w = 0; w < p->W; w++) dst[w * p->C + c] = src[w];
    }
  }
  (void)thread;
}

/* out[i] = (B^T d)[i] on vectors. */
#define BT6(out, d)                                                   \
  do {                                                                \
    out[0] = 4.0f * d[0] - 5.0f * d[2] + d[4];                        \
    out[1] = -4.0f * d[1] - 4.0f * d[2] + d[3] + d[4];                \
    out[2] = 4.0f * d[1] - 4.0f * d[2] - d[3] + d[4];                 \
    out[3] = -2.0f * d[1] - d[2] + 2.0f * d[3] + d[4];                \
    out[4] = 2.0f * d[1] - d[2] - 2.0f * d[3] + d[4];                 \
    out[5] = 4.0f * d[1] - 5.0f * d[3] + d[5];                        \
  } while (0)

/* Tiles [a, b) of the block: V[xi, tile, c] = (B^T d B)[xi], 16 channels at a time. */
OC_SIMD_CLONES static void wg_input_tiles(const wg_job_t *j, int64_t a, int64_t b) {
  const oc_winograd_t *p = j->p;
  const oc_v16f zero = oc_v16_set(0.0f);
  for (int64_t tt = a; tt < b; tt++) {
    int64_t t = j->t0 + tt, n = t / (j->TH * j->TW), th = t / j->TW % j->TH, tw = t % j->TW;
    int64_t ih0 = 4 * th - p->ph, iw0 = 4 * tw - p->pw;
    const float *xn = j->xt + n * p->H * p->W * p->C;
    for (int64_t c = 0; c < p->C; c += 16) {
      oc_v16f R[6][6];
      for (int i = 0; i < 6; i++) {
        int64_t ih = ih0 + i;
        oc_v16f d[6];
        for (int k = 0; k < 6; k++) {
          int64_t iw = iw0 + k;
          d[k] = ih >= 0 && ih < p->H && iw >= 0 && iw < p->W
                     ? oc_v16_load(xn + (ih * p->W + iw) * p->C + c)
                     : zero;
        }
        BT6(R[i], d);
      }
      for (int k = 0; k < 6; k++) {
        oc_v16f col[6], out[6];
        for (int i = 0; i < 6; i++) col[i] = R[i][k];
        BT6(out, col);
        for (int i = 0; i < 6; i++)
          oc_v16_store(j->V + ((int64_t)(i * 6 + k) * j->T + tt) * j->C16 + c, out[i]);
      }
    }
  }
}

static void wg_input(void *arg, int64_t a, int64_t b, int thread) {
  wg_input_tiles(arg, a, b);
  (void)thread;
}

/* Positions [x0, x1) of 36: Mo[xi] (tiles, M) = V[xi] (tiles, C) @ U[xi]^T. */
static void wg_gemm(void *arg, int64_t x0, int64_t x1, int thread) {
  const wg_job_t *j = arg;
  const oc_winograd_t *p = j->p;
  for (int64_t xi = x0; xi < x1; xi++)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)j->nt, (blasint)p->M,
                (blasint)p->C, 1.0f, j->V + xi * j->T * j->C16, (blasint)j->C16,
                j->U + xi * p->M * p->C, (blasint)p->C, 0.0f, j->Mo + xi * j->T * j->M16,
                (blasint)j->M16);
  (void)thread;
}

/* out[a] = (A^T m)[a] on vectors. */
#define AT4(out, m)                                                   \
  do {                                                                \
    oc_v16f s12 = m[1] + m[2], d12 = m[1] - m[2];                     \
    oc_v16f s34 = m[3] + m[4], d34 = m[3] - m[4];                     \
    out[0] = m[0] + s12 + s34;                                        \
    out[1] = d12 + 2.0f * d34;                                        \
    out[2] = s12 + 4.0f * s34;                                        \
    out[3] = d12 + 8.0f * d34 + m[5];                                 \
  } while (0)

/* Tiles [a, b) of the block: y = act(A^T Mo A + b), 16 output channels at a time. */
OC_SIMD_CLONES static void wg_output_tiles(const wg_job_t *j, int64_t a, int64_t b) {
  const oc_winograd_t *p = j->p;
  const int64_t plane = p->OH * p->OW;
  for (int64_t tt = a; tt < b; tt++) {
    int64_t t = j->t0 + tt, n = t / (j->TH * j->TW), th = t / j->TW % j->TH, tw = t % j->TW;
    int64_t oh0 = 4 * th, ow0 = 4 * tw;
    int64_t nh = p->OH - oh0 < 4 ? p->OH - oh0 : 4, nw = p->OW - ow0 < 4 ? p->OW - ow0 : 4;
    for (int64_t m = 0; m < p->M; m += 16) {
      oc_v16f S[4][6];
      for (int k = 0; k < 6; k++) {
        oc_v16f col[6], out[4];
        for (int i = 0; i < 6; i++)
          col[i] = oc_v16_load(j->Mo + ((int64_t)(i * 6 + k) * j->T + tt) * j->M16 + m);
        AT4(out, col);
        for (int r = 0; r < 4; r++) S[r][k] = out[r];
      }
      int64_t lanes = p->M - m < 16 ? p->M - m : 16;
      float *ym = j->y + (n * p->M + m) * plane + oh0 * p->OW + ow0;
      for (int r = 0; r < nh; r++) {
        oc_v16f Y[4];
        AT4(Y, S[r]);
        for (int cc = 0; cc < nw; cc++) {
          float v[16];
          oc_v16_store(v, Y[cc]);
          for (int64_t l = 0; l < lanes; l++) {
            float o = v[l] + (j->b ? j->b[m + l] : 0.0f);
            if (p->act == 1) o = o < 0.0f ? 0.0f : o;
            else if (p->act == 2) {
              o = o < p->lo ? p->lo : o;
              o = o > p->hi ? p->hi : o;
            }
            ym[l * plane + r * p->OW + cc] = o;
          }
        }
      }
    }
  }
}

static void wg_output(void *arg, int64_t a, int64_t b, int thread) {
  wg_output_tiles(arg, a, b);
  (void)thread;
}

void oc_winograd_run(oc_pool_t *pool, const oc_winograd_t *p, float *y, const float *x,
                     const float *w, const float *b, float *ws) {
  wg_job_t j = {.p = p, .y = y, .x = x, .w = w, .b = b};
  j.TH = cdiv(p->OH, 4);
  j.TW = cdiv(p->OW, 4);
  j.C16 = up16(p->C);
  j.M16 = up16(p->M);
  j.T = block_tiles(p);
  j.U = ws;
  j.V = j.U + 36 * p->M * p->C;
  j.Mo = j.V + 36 * j.T * j.C16;
  j.xt = j.Mo + 36 * j.T * j.M16;
  /* the last 16 floats of xt are read (and ignored) by the last channel group */
  memset(j.xt + p->N * p->H * p->W * p->C, 0, 16 * sizeof(float));
  oc_parallel_for(pool, p->M, oc_grain(p->C * 20), wg_weights, &j);
  oc_parallel_for(pool, p->N * p->H, oc_grain(p->W * p->C * 2), wg_transpose, &j);
  int64_t tiles = p->N * j.TH * j.TW;
  for (j.t0 = 0; j.t0 < tiles; j.t0 += j.T) {
    j.nt = tiles - j.t0 < j.T ? tiles - j.t0 : j.T;
    oc_parallel_for(pool, j.nt, oc_grain(j.C16 * 30), wg_input, &j);
    oc_parallel_for(pool, 36, oc_grain(p->M * p->C * j.nt / 16), wg_gemm, &j);
    oc_parallel_for(pool, j.nt, oc_grain(j.M16 * 30), wg_output, &j);
  }
}

/* --- the weight gradient: F(3x3, 4x4) ------------------------------------- */

uint64_t oc_winograd_filter_workspace(const oc_winograd_t *p) {
  /* the forward's layout (S in place of U, transformed dy in place of the
   * products) plus dy in channel-minor order */
  return oc_winograd_workspace(p) +
         ((uint64_t)p->N * p->OH * p->OW * (uint64_t)p->M + 16) * sizeof(float);
}

typedef struct wgf_job_s {
  wg_job_t base; /* V, xt, TH, TW, T, C16, M16, t0, nt as the forward */
  float *S, *D, *dyt;
  const float *dy;
  float *dw;
} wgf_job_t;

/* dyt (N, OH, OW, M) = dy (N, M, OH, OW), rows [r0, r1) of N * OH. */
static void wgf_transpose_dy(void *arg, int64_t r0, int64_t r1, int thread) {
  const wgf_job_t *j = arg;
  const oc_winograd_t *p = j->base.p;
  for (int64_t r = r0; r < r1; r++) {
    int64_t n = r / p->OH, h = r % p->OH;
    float *dst = j->dyt + r * p->OW * p->M;
    for (int64_t m = 0; m < p->M; m++) {
      const float *src = j->dy + ((n * p->M + m) * p->OH + h) * p->OW;
      for (int64_t w = 0; w < p->OW; w++) dst[w * p->M + m] = src[w];
    }
  }
  (void)thread;
}

/* out[xi] = (A v)[xi] for a 4-vector v: A = (A^T)^T of the forward. */
#define A6(out, v)                                                    \
  do {                                                                \
    oc_v16f s02 = v[0] + v[2], s13 = v[1] + v[3];                     \
    oc_v16f q02 = v[0] + 4.0f * v[2], q13 = 2.0f * v[1] + 8.0f * v[3]; \
    out[0] = v[0];                                                    \
    out[1] = s02 + s13;                                               \
    out[2] = s02 - s13;                                               \
    out[3] = q02 + q13;                                               \
    out[4] = q02 - q13;                                               \
    out[5] = v[3];                                                    \
  } while (0)

/* Tiles [a, b) of the block: D[xi, tile, m] = (A dy A^T)[xi], 16 channels at a time. */
OC_SIMD_CLONES static void wgf_dy_tiles(const wgf_job_t *j, int64_t a, int64_t b) {
  const wg_job_t *g = &j->base;
  const oc_winograd_t *p = g->p;
  const oc_v16f zero = oc_v16_set(0.0f);
  for (int64_t tt = a; tt < b; tt++) {
    int64_t t = g->t0 + tt, n = t / (g->TH * g->TW), th = t / g->TW % g->TH, tw = t % g->TW;
    const float *dn = j->dyt + n * p->OH * p->OW * p->M;
    for (int64_t m = 0; m < p->M; m += 16) {
      oc_v16f R[4][6];
      for (int i = 0; i < 4; i++) {
        int64_t oh = 4 * th + i;
        oc_v16f v[4];
        for (int k = 0; k < 4; k++) {
          int64_t ow = 4 * tw + k;
          v[k] = oh < p->OH && ow < p->OW ? oc_v16_load(dn + (oh * p->OW + ow) * p->M + m) : zero;
        }
        A6(R[i], v);
      }
      for (int k = 0; k < 6; k++) {
        oc_v16f col[4], out[6];
        for (int i = 0; i < 4; i++) col[i] = R[i][k];
        A6(out, col);
        for (int i = 0; i < 6; i++)
          oc_v16_store(j->D + ((int64_t)(i * 6 + k) * g->T + tt) * g->M16 + m, out[i]);
      }
    }
  }
}

static void wgf_input(void *arg, int64_t a, int64_t b, int thread) {
  const wgf_job_t *j = arg;
  wg_input_tiles(&j->base, a, b);
  wgf_dy_tiles(j, a, b);
  (void)thread;
}

/* Positions [x0, x1): S[xi] (M, C) += D[xi]^T (M, tiles) @ V[xi] (tiles, C). */
static void wgf_gemm(void *arg, int64_t x0, int64_t x1, int thread) {
  const wgf_job_t *j = arg;
  const wg_job_t *g = &j->base;
  const oc_winograd_t *p = g->p;
  for (int64_t xi = x0; xi < x1; xi++)
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)p->M, (blasint)p->C,
                (blasint)g->nt, 1.0f, j->D + xi * g->T * g->M16, (blasint)g->M16,
                g->V + xi * g->T * g->C16, (blasint)g->C16, g->t0 == 0 ? 0.0f : 1.0f,
                j->S + xi * p->M * p->C, (blasint)p->C);
  (void)thread;
}

/* dw[m, c] = G^T S[:, m, c] G for output channels [m0, m1). */
static void wgf_output(void *arg, int64_t m0, int64_t m1, int thread) {
  const wgf_job_t *j = arg;
  const oc_winograd_t *p = j->base.p;
  const float q = 1.0f / 6, e = 1.0f / 12, f = 1.0f / 24;
  for (int64_t m = m0; m < m1; m++)
    for (int64_t c = 0; c < p->C; c++) {
      float s[6][6], r[3][6];
      for (int i = 0; i < 36; i++) s[i / 6][i % 6] = j->S[((int64_t)i * p->M + m) * p->C + c];
      for (int k = 0; k < 6; k++) { /* rows: r = G^T s */
        float s0 = s[0][k], s1 = s[1][k], s2 = s[2][k], s3 = s[3][k], s4 = s[4][k], s5 = s[5][k];
        r[0][k] = 0.25f * s0 - q * (s1 + s2) + f * (s3 + s4);
        r[1][k] = q * (s2 - s1) + e * (s3 - s4);
        r[2][k] = q * (s3 + s4 - s1 - s2) + s5;
      }
      float *d = j->dw + (m * p->C + c) * 9;
      for (int a = 0; a < 3; a++) { /* columns: r G */
        float s0 = r[a][0], s1 = r[a][1], s2 = r[a][2], s3 = r[a][3], s4 = r[a][4], s5 = r[a][5];
        d[a * 3 + 0] = 0.25f * s0 - q * (s1 + s2) + f * (s3 + s4);
        d[a * 3 + 1] = q * (s2 - s1) + e * (s3 - s4);
        d[a * 3 + 2] = q * (s3 + s4 - s1 - s2) + s5;
      }
    }
  (void)thread;
}

void oc_winograd_filter_run(oc_pool_t *pool, const oc_winograd_t *p, float *dw, const float *x,
                            const float *dy, float *ws) {
  wgf_job_t j = {.base = {.p = p, .x = x}, .dy = dy, .dw = dw};
  wg_job_t *g = &j.base;
  g->TH = cdiv(p->OH, 4);
  g->TW = cdiv(p->OW, 4);
  g->C16 = up16(p->C);
  g->M16 = up16(p->M);
  g->T = block_tiles(p);
  j.S = ws;
  g->V = j.S + 36 * p->M * p->C;
  j.D = g->V + 36 * g->T * g->C16;
  g->xt = j.D + 36 * g->T * g->M16;
  j.dyt = g->xt + p->N * p->H * p->W * p->C + 16;
  memset(g->xt + p->N * p->H * p->W * p->C, 0, 16 * sizeof(float));
  memset(j.dyt + p->N * p->OH * p->OW * p->M, 0, 16 * sizeof(float));
  oc_parallel_for(pool, p->N * p->H, oc_grain(p->W * p->C * 2), wg_transpose, g);
  oc_parallel_for(pool, p->N * p->OH, oc_grain(p->OW * p->M * 2), wgf_transpose_dy, &j);
  int64_t tiles = p->N * g->TH * g->TW;
  for (g->t0 = 0; g->t0 < tiles; g->t0 += g->T) {
    g->nt = tiles - g->t0 < g->T ? tiles - g->t0 : g->T;
    oc_parallel_for(pool, g->nt, oc_grain((g->C16 + g->M16) * 30), wgf_input, &j);
    oc_parallel_for(pool, 36, oc_grain(p->M * p->C * g->nt / 16), wgf_gemm, &j);
  }
  oc_parallel_for(pool, p->M, oc_grain(p->C * 100), wgf_output, &j);
}
