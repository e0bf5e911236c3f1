/*
 * Winograd F(4x4, 3x3) (Lavin and Gray, "Fast Algorithms for Convolutional
 * Neural Networks", 2016): each 4x4 block of outputs of each output channel
 * comes from a 6x6 input tile through
 *     Y = A^T [ sum_c (G g_mc G^T) . (B^T d_c B) ] A
 * so the 36 positions of the transformed tiles are 36 independent products
 * (M x C) @ (C x tiles): 36 multiply-adds per input channel per 16 outputs
 * instead of 144.
 *
 * The input is first transposed to channel-minor order (N, H, W, C), so that
 * the transforms run on vectors of 16 channels (simd.h). Then per block of
 * tiles (whole tile rows, about 4 MiB of transformed tiles and products):
 * the input transform writes V (36, T, C16) (one parallel phase), then each
 * part of the products (a panel of 32 output channels and a part of the
 * block's tiles; another phase) transforms its panel of weights into U
 * (36, C, 32), which stays in the core's cache, computes the 36 products
 * (T, C) @ (C, 32) with the register tiles of tile_gemm.h and runs the
 * output transform (bias, activation) of its tiles and channels while the
 * products are in cache. Transforming the weights per panel, next to their
 * use, costs a few multiply-adds per weight and no memory traffic: a layer
 * of 512 channels over a 7x7 map (4 tiles per image) pays at batch 1.
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
#include "tile_gemm.h"

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t up16(int64_t v) { return (v + 15) / 16 * 16; }

/* Tiles per block: about 4 MiB of transformed inputs and products. */
static int64_t block_tiles(const oc_winograd_t *p) {
  int64_t tiles = p->N * cdiv(p->OH, 4) * cdiv(p->OW, 4);
  int64_t t = ((int64_t)1 << 20) / (36 * (up16(p->C) + up16(p->M)));
  if (t < 16) t = 16;
  return t < tiles ? t : tiles;
}

/* Output channels per panel of U: 32, the last panel what is left (its
 * columns padded to 16 or 32); the packed weights (conv.c) use the same
 * panels. */
enum { WG_PANEL = 32 };
/* Input channels per block of transformed weights: a block of a panel,
 * 36 x 64 x 32 floats, stays in the L2 cache between its transform and
 * its products. */
enum { WG_CBLOCK = 64 };
static int64_t cblock(const oc_winograd_t *p) { return p->C < WG_CBLOCK ? p->C : WG_CBLOCK; }
/* Floats from one xi's block of U (cb x wd) to the next: 16 past the
 * block's size (a power of two would put the 36 in one cache set). */
static int64_t ustride(int64_t cb, int64_t wd) { return cb * wd + 16; }
static int64_t panels(const oc_winograd_t *p) { return cdiv(p->M, WG_PANEL); }

/* Parts each block's tiles are cut into for the products (so that a layer
 * with few output channels still has parts for every thread; each part
 * transforms its panel of weights again): from the shapes alone. */
static int64_t tile_parts(const oc_winograd_t *p, int64_t block) {
  int64_t n = cdiv(4, panels(p)), most = cdiv(block, 14);
  if (n > most) n = most;
  return n < 1 ? 1 : n > 4 ? 4 : n;
}

/* The forward's and the data gradient's: enough tiles for the products
 * saved to repay transforming the weights (36 M C values per product part)
 * and the tiles. In multiply-adds per (input, output) channel pair: 9 per
 * output position directly, 36 per tile plus the transforms through
 * Winograd (about 80 for the weights). */
int oc_winograd_applies(const oc_winograd_t *p) {
  if (p->C < 16 || p->M < 16 || p->OH < 4 || p->OW < 4) return 0;
  if (p->ph < 0 || p->ph > 2 || p->pw < 0 || p->pw > 2) return 0;
  int64_t th = cdiv(p->OH, 4), tw = cdiv(p->OW, 4), tiles = p->N * th * tw;
  /* at least half of every tile's outputs are used */
  if (2 * p->OH * p->OW < th * tw * 16) return 0;
  int64_t block = block_tiles(p);
  int64_t transform = 80 * cdiv(tiles, block) * tile_parts(p, block);
  return 36 * tiles + transform < 9 * p->N * p->OH * p->OW;
}

/* The weight gradient's (its transforms of S cost more): enough tiles. */
int oc_winograd_filter_applies(const oc_winograd_t *p) {
  if (p->C < 16 || p->M < 16 || p->OH < 4 || p->OW < 4) return 0;
  if (p->ph < 0 || p->ph > 2 || p->pw < 0 || p->pw > 2) return 0;
  int64_t th = cdiv(p->OH, 4), tw = cdiv(p->OW, 4);
  int64_t tiles = p->N * th * tw;
  if (tiles < 16 || (tiles < 32 && p->C * p->M > 256 * 256)) return 0;
  return 2 * p->OH * p->OW >= th * tw * 16;
}

uint64_t oc_winograd_workspace(const oc_winograd_t *p) {
  uint64_t T = (uint64_t)block_tiles(p), C16 = (uint64_t)up16(p->C), M16 = (uint64_t)up16(p->M);
  uint64_t parts = (uint64_t)tile_parts(p, (int64_t)T), np = (uint64_t)panels(p);
  uint64_t floats = 36 * parts * np * (uint64_t)ustride(cblock(p), WG_PANEL) /* U */
                    + 36 * (T * C16 + 16)                           /* V */
                    + 36 * (T * M16 + 16 * np * parts)              /* Mo */
                    + (uint64_t)p->N * p->H * p->W * (uint64_t)p->C + 16           /* x, NHWC */
                    + (p->packed ? 0 : (uint64_t)up16(p->M) * p->C * 9);           /* packed w */
  return floats * sizeof(float);
}

typedef struct wg_job_s {
  const oc_winograd_t *p;
  float *y, *U, *V, *Mo, *xt;
  const float *x, *w, *b;
  const float *wp; /* the weights in packed panels (w itself when packed) */
  float *wpack;    /* the workspace's copy in packed panels (not packed) */
  int64_t TH, TW, T, C16, M16;
  int64_t t0, nt; /* the block: tiles [t0, t0 + nt) of N * TH * TW */
  int64_t parts;  /* of the block's tiles (tile_parts) */
  int64_t vs;     /* floats from V[xi] to V[xi + 1]: T * C16 + 16 */
} wg_job_t;

/* Columns of panel |pn|: its first output channel, its width and its
 * padded width (16 or 32). */
static void panel_cols(const oc_winograd_t *p, int64_t pn, int64_t *m0, int64_t *w,
                       int64_t *wd) {
  *m0 = pn * WG_PANEL;
  *w = p->M - *m0 < WG_PANEL ? p->M - *m0 : WG_PANEL;
  *wd = *w > 16 ? 32 : 16;
}

/* The weights in packed panels (see winograd.h) for panels [p0, p1), from
 * w (M, C, 3, 3), or (C, M, 3, 3) read transposed and flipped (flip). */
static void wg_pack(void *arg, int64_t p0, int64_t p1, int thread) {
  const wg_job_t *j = arg;
  const oc_winograd_t *p = j->p;
  for (int64_t pn = p0; pn < p1; pn++) {
    int64_t m0, w, wd;
    panel_cols(p, pn, &m0, &w, &wd);
    float *dst = j->wpack + m0 * p->C * 9;
    for (int64_t c = 0; c < p->C; c++)
      for (int64_t l = 0; l < w; l++) {
        int64_t m = m0 + l;
        float *d = dst + c * 9 * w + l;
        if (p->flip) {
          const float *src = j->w + (c * p->M + m) * 9;
          for (int tap = 0; tap < 9; tap++) d[tap * w] = src[8 - tap];
        } else {
          const float *src = j->w + (m * p->C + c) * 9;
          for (int tap = 0; tap < 9; tap++) d[tap * w] = src[tap];
        }
      }
  }
  (void)thread;
}

/* The weights of output channels [m0, m0 + w) and input channels [c0, c1)
 * transformed from the packed panel: up[xi * us + (c - c0) * wd + m - m0]
 * = (G g_mc G^T)[xi], 0 in the padding columns of a panel narrower than
 * wd; 16 output channels at a time. */
OC_SIMD_CLONES static void wg_weights_panel(const wg_job_t *j, float *up, int64_t us, int64_t m0,
                                            int64_t w, int64_t wd, int64_t c0, int64_t c1) {
  const oc_winograd_t *p = j->p;
  const float g1 = 0.25f, g2 = -1.0f / 6, g3 = 1.0f / 6, g4 = 1.0f / 24, g5 = 1.0f / 12;
  const float *panel = j->wp + m0 * p->C * 9;
  for (int64_t c = c0; c < c1; c++)
    for (int64_t h = 0; h < wd; h += 16) {
      int64_t lanes = w - h < 16 ? w - h : 16;
      const float *src = panel + c * 9 * w + h;
      float *dst = up + (c - c0) * wd + h; /* xi 0; then us floats per xi, in order */
      /* the weights stream from memory once per call: ask for them early */
      for (int64_t q = 0; q < 9 * 16; q += 16) __builtin_prefetch(src + 8 * 9 * w + q);
      oc_v16f g[3][3], t[6][3];
      for (int a = 0; a < 3; a++)
        for (int k = 0; k < 3; k++)
          g[a][k] = lanes == 16 ? oc_v16_load(src + (a * 3 + k) * w)
                                : oc_v16_load_n(src + (a * 3 + k) * w, lanes);
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
        for (int k = 0; k < 6; k++, dst += us) oc_v16_store(dst, u[k]);
      }
    }
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
          oc_v16_store(j->V + (i * 6 + k) * j->vs + tt * j->C16 + c, out[i]);
      }
    }
  }
}

static void wg_input(void *arg, int64_t a, int64_t b, int thread) {
  wg_input_tiles(arg, a, b);
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

/* Tiles [a, b) of the block, output channels [m0, m0 + w): y = act(A^T Mo
 * A + b), 16 output channels at a time; mo[xi * ms + (tile - a) * wd +
 * m - m0] holds the products. */
OC_SIMD_CLONES static void wg_output_tiles(const wg_job_t *j, const float *mo, int64_t ms,
                                           int64_t a, int64_t b, int64_t m0, int64_t w,
                                           int64_t wd) {
  const oc_winograd_t *p = j->p;
  const int64_t plane = p->OH * p->OW;
  for (int64_t tt = a; tt < b; tt++) {
    int64_t t = j->t0 + tt, n = t / (j->TH * j->TW), th = t / j->TW % j->TH, tw = t % j->TW;
    int64_t oh0 = 4 * th, ow0 = 4 * tw;
    int64_t nh = p->OH - oh0 < 4 ? p->OH - oh0 : 4, nw = p->OW - ow0 < 4 ? p->OW - ow0 : 4;
    for (int64_t h = 0; h < w; h += 16) {
      oc_v16f S[4][6];
      for (int k = 0; k < 6; k++) {
        oc_v16f col[6], out[4];
        for (int i = 0; i < 6; i++)
          col[i] = oc_v16_load(mo + (i * 6 + k) * ms + (tt - a) * wd + h);
        AT4(out, col);
        for (int r = 0; r < 4; r++) S[r][k] = out[r];
      }
      int64_t m = m0 + h, lanes = w - h < 16 ? w - h : 16;
      float bias[16] = {0};
      if (j->b) memcpy(bias, j->b + m, sizeof(float) * (size_t)lanes);
      const oc_v16f vb = oc_v16_load(bias), zero = oc_v16_set(0.0f);
      const oc_v16f lo = oc_v16_set(p->lo), hi = oc_v16_set(p->hi);
      float *ym = j->y + (n * p->M + m) * plane + oh0 * p->OW + ow0;
      for (int r = 0; r < nh; r++) {
        oc_v16f Y[4];
        AT4(Y, S[r]);
        for (int cc = 0; cc < nw; cc++) {
          oc_v16f o = Y[cc] + vb;
          if (p->act == 1) o = oc_v16_select(o < zero, zero, o);
          else if (p->act == 2) o = oc_v16_select(o < lo, lo, oc_v16_select(o > hi, hi, o));
          float v[16];
          oc_v16_store(v, o);
          for (int64_t l = 0; l < lanes; l++) ym[l * plane + r * p->OW + cc] = v[l];
        }
      }
    }
  }
}

/* Products (panel, part of the block's tiles) [i0, i1): per block of input
 * channels the panel's weights transformed and added into the 36 products
 * Mo[xi] (tiles, panel) += V[xi] (tiles, block) @ U[xi] (block, panel), in
 * tiles of rows; then the output transform of the part's tiles for the
 * panel's channels while the products are in cache. */
static void wg_products(void *arg, int64_t i0, int64_t i1, int thread) {
  const wg_job_t *j = arg;
  const oc_winograd_t *p = j->p;
  const int rows = oc_tile_rows(2);
  for (int64_t item = i0; item < i1; item++) {
    int64_t pn = item / j->parts, part = item % j->parts, m0, w, wd;
    panel_cols(p, pn, &m0, &w, &wd);
    int64_t a = oc_tile_group(j->nt, j->parts, part), b = oc_tile_group(j->nt, j->parts, part + 1);
    if (b <= a) continue;
    /* this item's U and Mo: U by (part, panel), Mo by tiles and panel;
     * each xi's matrix 16 floats past a multiple of the previous one's
     * size (power-of-two strides would put the 36 in one cache set) */
    const int64_t np = panels(p), cb = cblock(p), us = ustride(cb, wd), ms = (b - a) * wd + 16;
    float *up = j->U + 36 * ustride(cb, WG_PANEL) * (part * np + pn);
    float *mo = j->Mo + 36 * (a * j->M16 + 16 * np * part + (b - a) * m0 + 16 * pn);
    int64_t groups = oc_tile_groups(b - a, rows);
    for (int64_t c0 = 0; c0 < p->C; c0 += cb) {
      int64_t c1 = c0 + cb < p->C ? c0 + cb : p->C;
      wg_weights_panel(j, up, us, m0, w, wd, c0, c1);
      for (int xi = 0; xi < 36; xi++)
        for (int64_t gi = 0; gi < groups; gi++) {
          int64_t r0 = a + oc_tile_group(b - a, groups, gi);
          int64_t r1 = a + oc_tile_group(b - a, groups, gi + 1);
          oc_tile_t tl = {.K = c1 - c0, .a = j->V + xi * j->vs + r0 * j->C16 + c0,
                          .lda = j->C16, .b = up + xi * us, .ldb = wd,
                          .c = mo + xi * ms + (r0 - a) * wd, .rs = wd, .cs = 1,
                          .rows = (int)(r1 - r0), .cols = (int)wd, .accumulate = c0 > 0};
          oc_tile_run(&tl, (int)(wd / 16));
        }
    }
    wg_output_tiles(j, mo, ms, a, b, m0, w, wd);
  }
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
  j.parts = tile_parts(p, j.T);
  j.U = ws;
  j.vs = j.T * j.C16 + 16;
  j.V = j.U + 36 * j.parts * panels(p) * ustride(cblock(p), WG_PANEL);
  j.Mo = j.V + 36 * j.vs;
  j.xt = j.Mo + 36 * (j.T * j.M16 + 16 * panels(p) * j.parts);
  /* the last 16 floats of xt are read (and ignored) by the last channel group */
  memset(j.xt + p->N * p->H * p->W * p->C, 0, 16 * sizeof(float));
  j.wp = w;
  if (!p->packed) {
    j.wp = j.wpack = j.xt + p->N * p->H * p->W * p->C + 16;
    oc_parallel_for(pool, panels(p), oc_grain(WG_PANEL * p->C * 9), wg_pack, &j);
  }
  oc_parallel_for(pool, p->N * p->H, oc_grain(p->W * p->C * 2), wg_transpose, &j);
  int64_t tiles = p->N * j.TH * j.TW;
  for (j.t0 = 0; j.t0 < tiles; j.t0 += j.T) {
    j.nt = tiles - j.t0 < j.T ? tiles - j.t0 : j.T;
    oc_parallel_for(pool, j.nt, oc_grain(j.C16 * 30), wg_input, &j);
    oc_parallel_for(pool, panels(p) * j.parts, 1, wg_products, &j);
  }
}

/* --- the weight gradient: F(3x3, 4x4) ------------------------------------- */

uint64_t oc_winograd_filter_workspace(const oc_winograd_t *p) {
  /* S (36, M, C), the block's transformed x and dy, x and dy in
   * channel-minor order */
  uint64_t T = (uint64_t)block_tiles(p);
  uint64_t floats = 36 * (uint64_t)p->M * (uint64_t)p->C + 36 * (T * (uint64_t)up16(p->C) + 16) +
                    36 * T * (uint64_t)up16(p->M) +
                    (uint64_t)p->N * p->H * p->W * (uint64_t)p->C + 16 +
                    (uint64_t)p->N * p->OH * p->OW * (uint64_t)p->M + 16;
  return floats * sizeof(float);
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
                g->V + xi * g->vs, (blasint)g->C16, g->t0 == 0 ? 0.0f : 1.0f,
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
  g->vs = g->T * g->C16 + 16;
  g->V = j.S + 36 * p->M * p->C;
  j.D = g->V + 36 * g->vs;
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
