/*
 * Gradient rules of the convolution and pooling ops (compiler/ops/conv.c,
 * pool.c; kernels ConvBwdData, ConvBwdFilter, MaxPoolBwd, AvgPoolBwd,
 * GlobalAvgPoolBwd, GlobalMaxPoolBwd): finite differences of double-precision
 * references, tie-breaking of the max pools, hostile backward ints, and the
 * speed of a 64-channel 3x3 Conv backward.
 */
#include <check.h>
#include <time.h>

#include "gradcheck.h"

/* --- helpers ------------------------------------------------------------------ */

static float *rand_buf(int64_t n) {
  float *p = malloc(sizeof(float) * (size_t)(n + 1));
  for (int64_t i = 0; i < n; i++) p[i] = (float)gc_uniform();
  return p;
}

static gc_input_t mk_in(int rank, const int64_t *dims, const float *data, int diff) {
  gc_input_t t;
  memset(&t, 0, sizeof t);
  t.dtype = OC_DTYPE_FLOAT32;
  t.rank = rank;
  for (int i = 0; i < rank; i++) t.dims[i] = dims[i];
  t.data = data;
  t.differentiable = diff;
  return t;
}

/* The 3-D view of an n-D window op: leading axes of size 1. */
typedef struct win3_s {
  int64_t in[3], k[3], s[3], pb[3], pe[3], d[3], out[3];
} win3_t;

static void win3(win3_t *w, int n, const int64_t *in, const int64_t *k, const int64_t *s,
                 const int64_t *pads, const int64_t *d, const int64_t *out) {
  for (int a = 0; a < 3; a++) {
    int i = a - (3 - n);
    if (i < 0) {
      w->in[a] = w->k[a] = w->s[a] = w->d[a] = w->out[a] = 1;
      w->pb[a] = w->pe[a] = 0;
      continue;
    }
    w->in[a] = in[i];
    w->k[a] = k[i];
    w->s[a] = s[i];
    w->pb[a] = pads[i];
    w->pe[a] = pads[n + i];
    w->d[a] = d[i];
    w->out[a] = out[i];
  }
}

/* --- Conv ------------------------------------------------------------------- */

/* y = conv(x, w) + b with ints [group, strides[n], pads[2n], dilations[n]]
 * (|user|), in double, straight from the definition. */
static void ref_conv(const double *const *in, const gc_input_t *inputs, int n_in, double *out,
                     const oc_tensor_t *yt, const void *user) {
  const int64_t *ints = user;
  const gc_input_t *xi = &inputs[0], *wi = &inputs[1];
  int n = xi->rank - 2;
  int64_t G = ints[0], N = xi->dims[0], C = xi->dims[1], M = wi->dims[0];
  int64_t Cg = C / G, Mg = M / G;
  win3_t g;
  win3(&g, n, xi->dims + 2, wi->dims + 2, ints + 1, ints + 1 + n, ints + 1 + 3 * n, yt->dims + 2);
  const double *x = in[0], *w = in[1], *b = n_in > 2 ? in[2] : NULL;
  int64_t o = 0;
  for (int64_t bn = 0; bn < N; bn++)
    for (int64_t m = 0; m < M; m++)
      for (int64_t od = 0; od < g.out[0]; od++)
        for (int64_t oh = 0; oh < g.out[1]; oh++)
          for (int64_t ow = 0; ow < g.out[2]; ow++, o++) {
            double sum = b ? b[m] : 0.0;
            int64_t gi = m / Mg;
            for (int64_t c = 0; c < Cg; c++)
              for (int64_t kd = 0; kd < g.k[0]; kd++)
                for (int64_t kh = 0; kh < g.k[1]; kh++)
                  for (int64_t kw = 0; kw < g.k[2]; kw++) {
                    int64_t id = od * g.s[0] - g.pb[0] + kd * g.d[0];
                    int64_t ih = oh * g.s[1] - g.pb[1] + kh * g.d[1];
                    int64_t iw = ow * g.s[2] - g.pb[2] + kw * g.d[2];
                    if (id < 0 || id >= g.in[0] || ih < 0 || ih >= g.in[1] || iw < 0 ||
                        iw >= g.in[2])
                      continue;
                    double xv = x[(((bn * C + gi * Cg + c) * g.in[0] + id) * g.in[1] + ih) *
                                      g.in[2] + iw];
                    double wv = w[(((m * Cg + c) * g.k[0] + kd) * g.k[1] + kh) * g.k[2] + kw];
                    sum += xv * wv;
                  }
            out[o] = sum;
          }
}

/* Checks Conv's gradients for x (rank 2 + n, dims xd), w (dims wd), an
 * optional bias and ints [group, strides, pads, dilations]. */
static void check_conv(int n, const int64_t *xd, const int64_t *wd, int bias,
                       const int64_t *ints, int diff_x) {
  int rank = n + 2;
  int64_t nx = gc_numel(rank, xd), nw = gc_numel(rank, wd), nb = wd[0];
  float *x = rand_buf(nx), *w = rand_buf(nw), *b = rand_buf(nb);
  gc_input_t in[3] = {mk_in(rank, xd, x, diff_x), mk_in(rank, wd, w, 1),
                      mk_in(1, wd, b, 1)};
  char msg[512];
  int rc = gc_check(OC_OP_CONV, ints, 1 + 4 * n, NULL, 0, in, bias ? 3 : 2, ref_conv, ints, 1e-3,
                    msg, sizeof msg);
  free(x);
  free(w);
  free(b);
  ck_assert_msg(rc == 0, "%s", msg);
}

START_TEST(conv1d_bias) {
  int64_t xd[3] = {2, 3, 9}, wd[3] = {4, 3, 3};
  int64_t plain[5] = {1, 1, 0, 0, 1};
  check_conv(1, xd, wd, 1, plain, 1);
  int64_t strided[5] = {1, 2, 1, 2, 1}; /* stride 2, pads 1 / 2 */
  check_conv(1, xd, wd, 1, strided, 1);
  int64_t dil[5] = {1, 1, 2, 1, 2}; /* dilation 2, pads 2 / 1 */
  check_conv(1, xd, wd, 0, dil, 1);
}
END_TEST

START_TEST(conv2d_bias_stride_pad) {
  int64_t xd[4] = {2, 3, 7, 6}, wd[4] = {4, 3, 3, 3};
  int64_t plain[9] = {1, 1, 1, 0, 0, 0, 0, 1, 1};
  check_conv(2, xd, wd, 1, plain, 1);
  int64_t s2p1[9] = {1, 2, 2, 1, 1, 1, 1, 1, 1};
  check_conv(2, xd, wd, 1, s2p1, 1);
  /* asymmetric pads: begin (1, 0), end (0, 2); strides (2, 1) */
  int64_t asym[9] = {1, 2, 1, 1, 0, 0, 2, 1, 1};
  check_conv(2, xd, wd, 1, asym, 1);
  /* non-square kernel, stride that leaves a remainder */
  int64_t wd2[4] = {2, 3, 2, 3};
  int64_t s3[9] = {1, 3, 2, 0, 1, 1, 0, 1, 1};
  check_conv(2, xd, wd2, 1, s3, 1);
}
END_TEST

START_TEST(conv2d_dilation) {
  int64_t xd[4] = {1, 2, 8, 7}, wd[4] = {3, 2, 3, 2};
  int64_t d2[9] = {1, 1, 1, 0, 0, 0, 0, 2, 2};
  check_conv(2, xd, wd, 1, d2, 1);
  int64_t d2s2p[9] = {1, 2, 1, 2, 1, 1, 2, 2, 3};
  check_conv(2, xd, wd, 0, d2s2p, 1);
}
END_TEST

START_TEST(conv2d_groups) {
  /* group 2: C 4, M 6 */
  int64_t xd[4] = {2, 4, 5, 6}, wd[4] = {6, 2, 3, 3};
  int64_t g2[9] = {2, 1, 1, 1, 1, 1, 1, 1, 1};
  check_conv(2, xd, wd, 1, g2, 1);
  int64_t g2s2[9] = {2, 2, 2, 1, 0, 0, 1, 1, 1};
  check_conv(2, xd, wd, 0, g2s2, 1);
  /* depthwise: group = C = 4, M = 4 */
  int64_t wdw[4] = {4, 1, 3, 3};
  int64_t dw[9] = {4, 1, 1, 1, 1, 1, 1, 1, 1};
  check_conv(2, xd, wdw, 1, dw, 1);
  /* depthwise with multiplier 2: M = 8, stride 2 */
  int64_t wdw2[4] = {8, 1, 3, 3};
  int64_t dws2[9] = {4, 2, 2, 1, 1, 1, 1, 1, 1};
  check_conv(2, xd, wdw2, 1, dws2, 1);
}
END_TEST

START_TEST(conv_1x1) {
  /* the direct path: 1x1, stride 1, no pads */
  int64_t xd[4] = {2, 5, 4, 3}, wd[4] = {3, 5, 1, 1};
  int64_t direct[9] = {1, 1, 1, 0, 0, 0, 0, 1, 1};
  check_conv(2, xd, wd, 1, direct, 1);
  /* grouped direct path */
  int64_t xg[4] = {2, 6, 3, 3}, wg[4] = {4, 3, 1, 1};
  int64_t g2[9] = {2, 1, 1, 0, 0, 0, 0, 1, 1};
  check_conv(2, xg, wg, 1, g2, 1);
  /* 1x1 stride 2 (a ResNet shortcut): through im2col */
  int64_t s2[9] = {1, 2, 2, 0, 0, 0, 0, 1, 1};
  check_conv(2, xd, wd, 0, s2, 1);
  /* 1-D direct */
  int64_t x1[3] = {3, 4, 5}, w1[3] = {2, 4, 1};
  int64_t d1[5] = {1, 1, 0, 0, 1};
  check_conv(1, x1, w1, 1, d1, 1);
}
END_TEST

START_TEST(conv3d_small) {
  int64_t xd[5] = {1, 2, 3, 4, 3}, wd[5] = {2, 2, 2, 2, 2};
  int64_t p1[13] = {1, 1, 2, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1};
  check_conv(3, xd, wd, 1, p1, 1);
  int64_t gd[13] = {2, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 2, 1}; /* group 2, dilation */
  int64_t wg[5] = {4, 1, 2, 2, 2};
  check_conv(3, xd, wg, 0, gd, 1);
}
END_TEST

START_TEST(conv_batch_chunks) {
  /* Small outputs are multiplied a chunk of batch elements at a time (256
   * columns): P = 144 makes chunks of 2, and N = 3 leaves a partial one. */
  int64_t xd[4] = {3, 2, 12, 12}, wd[4] = {3, 2, 3, 3};
  int64_t p1[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  check_conv(2, xd, wd, 1, p1, 1);
  /* P = 1: the whole batch in one chunk; groups */
  int64_t x1[4] = {5, 4, 3, 3}, w1[4] = {6, 2, 3, 3};
  int64_t g2[9] = {2, 1, 1, 0, 0, 0, 0, 1, 1};
  check_conv(2, x1, w1, 1, g2, 1);
}
END_TEST

START_TEST(conv_weight_only) {
  /* x is not trained (the first layer): only dW and dB are emitted */
  int64_t xd[4] = {2, 3, 6, 6}, wd[4] = {4, 3, 3, 3};
  int64_t s2p1[9] = {1, 2, 2, 1, 1, 1, 1, 1, 1};
  check_conv(2, xd, wd, 1, s2p1, 0);
}
END_TEST

/* --- windowed pools ---------------------------------------------------------- */

/* ints [kernel[n], strides[n], pads[2n], dilations[n], ceil_mode(, cip)];
 * |user| points at the ints; avg selects AveragePool. */
typedef struct pool_ref_s {
  const int64_t *ints;
  int avg;
} pool_ref_t;

static void ref_pool(const double *const *in, const gc_input_t *inputs, int n_in, double *out,
                     const oc_tensor_t *yt, const void *user) {
  const pool_ref_t *pr = user;
  const int64_t *ints = pr->ints;
  const gc_input_t *xi = &inputs[0];
  int n = xi->rank - 2;
  int cip = pr->avg ? (int)ints[5 * n + 1] : 0;
  win3_t g;
  win3(&g, n, xi->dims + 2, ints, ints + n, ints + 2 * n, ints + 4 * n, yt->dims + 2);
  int64_t planes = xi->dims[0] * xi->dims[1], o = 0;
  int64_t plane = g.in[0] * g.in[1] * g.in[2];
  for (int64_t p = 0; p < planes; p++)
    for (int64_t od = 0; od < g.out[0]; od++)
      for (int64_t oh = 0; oh < g.out[1]; oh++)
        for (int64_t ow = 0; ow < g.out[2]; ow++, o++) {
          double acc = pr->avg ? 0.0 : -INFINITY;
          int64_t count = 0;
          for (int64_t kd = 0; kd < g.k[0]; kd++)
            for (int64_t kh = 0; kh < g.k[1]; kh++)
              for (int64_t kw = 0; kw < g.k[2]; kw++) {
                int64_t id = od * g.s[0] - g.pb[0] + kd * g.d[0];
                int64_t ih = oh * g.s[1] - g.pb[1] + kh * g.d[1];
                int64_t iw = ow * g.s[2] - g.pb[2] + kw * g.d[2];
                int inside = id >= 0 && id < g.in[0] && ih >= 0 && ih < g.in[1] && iw >= 0 &&
                             iw < g.in[2];
                int in_padded = id < g.in[0] + g.pe[0] && ih < g.in[1] + g.pe[1] &&
                                iw < g.in[2] + g.pe[2]; /* starts are never before the pad */
                if (inside) {
                  double v = in[0][p * plane + (id * g.in[1] + ih) * g.in[2] + iw];
                  if (pr->avg)
                    acc += v;
                  else if (v > acc)
                    acc = v;
                }
                if (inside || (cip && in_padded)) count++;
              }
          out[o] = pr->avg ? acc / (double)count : acc;
        }
}

static void check_pool(int avg, int n, const int64_t *xd, const int64_t *ints) {
  int rank = n + 2;
  int64_t nx = gc_numel(rank, xd);
  float *x = rand_buf(nx);
  gc_input_t in[1] = {mk_in(rank, xd, x, 1)};
  pool_ref_t pr = {ints, avg};
  char msg[512];
  int rc = gc_check(avg ? OC_OP_AVGPOOL : OC_OP_MAXPOOL, ints, 5 * n + 1 + avg, NULL, 0, in, 1,
                    ref_pool, &pr, 1e-3, msg, sizeof msg);
  free(x);
  ck_assert_msg(rc == 0, "%s", msg);
}

START_TEST(maxpool_grad) {
  int64_t xd[4] = {2, 2, 7, 7};
  /* overlapping windows: kernel 3, stride 2 */
  int64_t k3s2[11] = {3, 3, 2, 2, 0, 0, 0, 0, 1, 1, 0};
  check_pool(0, 2, xd, k3s2);
  /* padding 1 (ResNet's stem pool) */
  int64_t k3s2p1[11] = {3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0};
  check_pool(0, 2, xd, k3s2p1);
  /* ceil_mode with a partial last window, asymmetric pads */
  int64_t xc[4] = {1, 3, 8, 6};
  int64_t ceil[11] = {3, 2, 2, 2, 0, 1, 0, 0, 1, 1, 1};
  check_pool(0, 2, xc, ceil);
  /* dilation 2, stride 1 */
  int64_t dil[11] = {2, 2, 1, 1, 1, 0, 0, 1, 2, 2, 0};
  check_pool(0, 2, xd, dil);
  /* 1-D and 3-D */
  int64_t x1[3] = {2, 3, 9};
  int64_t p1[6] = {3, 2, 1, 1, 1, 1};
  check_pool(0, 1, x1, p1);
  int64_t x3[5] = {1, 2, 4, 5, 3};
  int64_t p3[16] = {2, 3, 2, 2, 2, 1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 0};
  check_pool(0, 3, x3, p3);
}
END_TEST

START_TEST(avgpool_grad) {
  int64_t xd[4] = {2, 2, 7, 6};
  for (int cip = 0; cip < 2; cip++) {
    int64_t plain[12] = {2, 2, 2, 2, 0, 0, 0, 0, 1, 1, 0, cip};
    check_pool(1, 2, xd, plain);
    int64_t k3s2p1[12] = {3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, cip};
    check_pool(1, 2, xd, k3s2p1);
    /* asymmetric pads, overlapping windows */
    int64_t asym[12] = {3, 2, 1, 2, 2, 0, 0, 1, 1, 1, 0, cip};
    check_pool(1, 2, xd, asym);
    /* ceil_mode: the overhang past the end pad is never counted */
    int64_t ceil[12] = {3, 3, 2, 2, 1, 0, 1, 0, 1, 1, 1, cip};
    check_pool(1, 2, xd, ceil);
    /* 1-D with dilation, 3-D */
    int64_t x1[3] = {2, 2, 10};
    int64_t p1[7] = {3, 2, 1, 2, 2, 0, cip};
    check_pool(1, 1, x1, p1);
    int64_t x3[5] = {1, 2, 3, 4, 5};
    int64_t p3[17] = {2, 2, 3, 1, 2, 2, 1, 0, 1, 0, 1, 1, 1, 1, 1, 0, cip};
    check_pool(1, 3, x3, p3);
  }
}
END_TEST

/* --- global pools ------------------------------------------------------------- */

static void ref_global(const double *const *in, const gc_input_t *inputs, int n_in, double *out,
                       const oc_tensor_t *yt, const void *user) {
  int avg = *(const int *)user;
  const gc_input_t *xi = &inputs[0];
  int64_t planes = xi->dims[0] * xi->dims[1], S = 1;
  for (int i = 2; i < xi->rank; i++) S *= xi->dims[i];
  for (int64_t p = 0; p < planes; p++) {
    double acc = avg ? 0.0 : -INFINITY;
    for (int64_t i = 0; i < S; i++) {
      double v = in[0][p * S + i];
      if (avg)
        acc += v;
      else if (v > acc)
        acc = v;
    }
    out[p] = avg ? acc / (double)S : acc;
  }
}

static void check_global(int avg, int rank, const int64_t *xd) {
  float *x = rand_buf(gc_numel(rank, xd));
  gc_input_t in[1] = {mk_in(rank, xd, x, 1)};
  char msg[512];
  int rc = gc_check(avg ? OC_OP_GLOBAL_AVGPOOL : OC_OP_GLOBAL_MAXPOOL, NULL, 0, NULL, 0, in, 1,
                    ref_global, &avg, 1e-3, msg, sizeof msg);
  free(x);
  ck_assert_msg(rc == 0, "%s", msg);
}

START_TEST(global_pool_grad) {
  int64_t d4[4] = {2, 3, 4, 5}, d3[3] = {3, 2, 7}, d5[5] = {1, 2, 2, 3, 2}, d2[2] = {3, 4};
  for (int avg = 0; avg < 2; avg++) {
    check_global(avg, 4, d4);
    check_global(avg, 3, d3);
    check_global(avg, 5, d5);
    check_global(avg, 2, d2);
  }
}
END_TEST

/* --- ties and hostile ints, straight on the kernels ------------------------------ */

/* Runs backward op |op| (infer, then run); out gets fresh data. */
static oc_status_t run_op(int op, oc_tensor_t **in, int n_in, oc_tensor_t *out,
                          const int64_t *ints, int n_ints) {
  oc_tensor_t *outs[1] = {out};
  oc_op_call_t c = {.ints = ints, .n_ints = n_ints, .n_in = n_in, .in = in, .n_out = 1,
                    .out = outs};
  size_t ws = 0;
  oc_status_t s = oc_op_infer(op, &c, &ws);
  if (s) return s;
  out->data = calloc(oc_tensor_bytes(out) + 1, 1);
  c.workspace = ws ? malloc(ws) : NULL;
  c.workspace_bytes = ws;
  s = oc_op_get(op)->run(&c);
  free(c.workspace);
  return s;
}

static oc_tensor_t mk_t(int rank, const int64_t *dims, void *data) {
  oc_tensor_t t;
  memset(&t, 0, sizeof t);
  t.dtype = OC_DTYPE_FLOAT32;
  t.rank = rank;
  for (int i = 0; i < rank; i++) t.dims[i] = dims[i];
  t.data = data;
  return t;
}

START_TEST(maxpool_ties_first_max) {
  /* 1x1x3x4, kernel 2x2 stride 1: windows overlap and every value ties. */
  float x[12];
  for (int i = 0; i < 12; i++) x[i] = 1.0f;
  x[6] = 5.0f; /* (1, 2): the max of the four windows around it */
  x[7] = 5.0f; /* (1, 3): ties with (1, 2) in the windows that hold both */
  int64_t xd[4] = {1, 1, 3, 4}, yd[4] = {1, 1, 2, 3};
  float dy[6] = {1, 2, 4, 8, 16, 32};
  oc_tensor_t tx = mk_t(4, xd, x), tdy = mk_t(4, yd, dy), tdx;
  oc_tensor_t *in[2] = {&tx, &tdy};
  int64_t ints[11] = {2, 2, 1, 1, 0, 0, 0, 0, 1, 1, 0};
  oc_status_t s = run_op(OC_OP_MAXPOOL_BWD, in, 2, &tdx, ints, 11);
  ck_assert_msg(s == OC_OK, "%s", oc_status_message(s));
  ck_assert_int_eq(tdx.rank, 4);
  ck_assert_int_eq(tdx.dims[3], 4);
  const float *dx = tdx.data;
  /* windows: (0,0) all 1 -> x[0]; (0,1) has 5 at (1,2) -> x[6]; (0,2) ties
   * (1,2)/(1,3) -> x[6]; (1,0) all 1 -> x[4]; (1,1) -> x[6]; (1,2) -> x[6]. */
  float want[12] = {1, 0, 0, 0, 8, 0, 2 + 4 + 16 + 32, 0, 0, 0, 0, 0};
  for (int i = 0; i < 12; i++)
    ck_assert_msg(dx[i] == want[i], "dx[%d] = %g, want %g", i, dx[i], want[i]);
  free(tdx.data);

  /* Padding is never selected, even when every input is below the pad's 0. */
  float xn[4] = {-3, -1, -1, -2};
  int64_t xd2[4] = {1, 1, 2, 2}, yd2[4] = {1, 1, 2, 2};
  float dy2[4] = {1, 10, 100, 1000};
  oc_tensor_t tx2 = mk_t(4, xd2, xn), tdy2 = mk_t(4, yd2, dy2);
  oc_tensor_t *in2[2] = {&tx2, &tdy2};
  int64_t ints2[11] = {2, 2, 1, 1, 1, 1, 0, 0, 1, 1, 0}; /* kernel 2, pads begin 1 */
  s = run_op(OC_OP_MAXPOOL_BWD, in2, 2, &tdx, ints2, 11);
  ck_assert_msg(s == OC_OK, "%s", oc_status_message(s));
  dx = tdx.data;
  /* window (0,0): only x[0]; (0,1): x[0], x[1] -> x[1]; (1,0): x[0], x[2] -> x[2];
   * (1,1): all, first max -1 at x[1]. */
  float want2[4] = {1, 10 + 1000, 100, 0};
  for (int i = 0; i < 4; i++)
    ck_assert_msg(dx[i] == want2[i], "padded dx[%d] = %g, want %g", i, dx[i], want2[i]);
  free(tdx.data);
}
END_TEST

START_TEST(global_maxpool_ties_first_max) {
  float x[8] = {1, 3, 3, 2, -1, -1, -1, -1};
  int64_t xd[3] = {1, 2, 4}, yd[3] = {1, 2, 1};
  float dy[2] = {5, 7};
  oc_tensor_t tx = mk_t(3, xd, x), tdy = mk_t(3, yd, dy), tdx;
  oc_tensor_t *in[2] = {&tx, &tdy};
  oc_status_t s = run_op(OC_OP_GLOBAL_MAXPOOL_BWD, in, 2, &tdx, NULL, 0);
  ck_assert_msg(s == OC_OK, "%s", oc_status_message(s));
  float want[8] = {0, 5, 0, 0, 7, 0, 0, 0};
  const float *dx = tdx.data;
  for (int i = 0; i < 8; i++)
    ck_assert_msg(dx[i] == want[i], "dx[%d] = %g, want %g", i, dx[i], want[i]);
  free(tdx.data);
}
END_TEST

static void expect_infer_fail(int op, oc_tensor_t **in, int n_in, const int64_t *ints,
                              int n_ints, const char *what) {
  oc_tensor_t out;
  memset(&out, 0, sizeof out);
  oc_tensor_t *outs[1] = {&out};
  oc_op_call_t c = {.ints = ints, .n_ints = n_ints, .n_in = n_in, .in = in, .n_out = 1,
                    .out = outs};
  size_t ws = 0;
  oc_status_t s = oc_op_infer(op, &c, &ws);
  ck_assert_msg(s != OC_OK, "expected an error for %s", what);
  oc_status_free(s);
}

START_TEST(bwd_ints_validated) {
  int64_t xd[4] = {2, 4, 6, 6}, wd[4] = {6, 2, 3, 3}, yd[4] = {2, 6, 6, 6};
  oc_tensor_t x = mk_t(4, xd, NULL), w = mk_t(4, wd, NULL), dy = mk_t(4, yd, NULL);
  oc_tensor_t *data_in[2] = {&dy, &w}, *filt_in[2] = {&x, &dy};
  /* the good ones: group 2, pads 1, input 6x6 / kernel 3x3 */
  int64_t good_d[11] = {2, 1, 1, 1, 1, 1, 1, 1, 1, 6, 6};
  int64_t good_f[11] = {2, 1, 1, 1, 1, 1, 1, 1, 1, 3, 3};
  oc_tensor_t out;
  oc_tensor_t *outs[1] = {&out};
  size_t ws;
  oc_op_call_t c = {.ints = good_d, .n_ints = 11, .n_in = 2, .in = data_in, .n_out = 1,
                    .out = outs};
  ck_assert(oc_op_infer(OC_OP_CONV_BWD_DATA, &c, &ws) == OC_OK);
  ck_assert_int_eq(out.dims[1], 4);
  ck_assert_int_eq(out.dims[3], 6);
  c.ints = good_f;
  c.in = filt_in;
  ck_assert(oc_op_infer(OC_OP_CONV_BWD_FILTER, &c, &ws) == OC_OK);
  ck_assert_int_eq(out.dims[0], 6);
  ck_assert_int_eq(out.dims[1], 2);
  ck_assert_int_eq(out.dims[2], 3);

  int64_t bad[11];
  memcpy(bad, good_d, sizeof bad);
  bad[9] = 7; /* input size inconsistent with dy */
  expect_infer_fail(OC_OP_CONV_BWD_DATA, data_in, 2, bad, 11, "input dims mismatch");
  bad[9] = -1;
  expect_infer_fail(OC_OP_CONV_BWD_DATA, data_in, 2, bad, 11, "negative input dim");
  bad[9] = (int64_t)1 << 50;
  expect_infer_fail(OC_OP_CONV_BWD_DATA, data_in, 2, bad, 11, "huge input dim");
  memcpy(bad, good_d, sizeof bad);
  bad[0] = 0;
  expect_infer_fail(OC_OP_CONV_BWD_DATA, data_in, 2, bad, 11, "group 0");
  bad[0] = INT64_MAX;
  expect_infer_fail(OC_OP_CONV_BWD_DATA, data_in, 2, bad, 11, "huge group");
  expect_infer_fail(OC_OP_CONV_BWD_DATA, data_in, 2, good_d, 9, "forward int count");
  memcpy(bad, good_f, sizeof bad);
  bad[10] = 0;
  expect_infer_fail(OC_OP_CONV_BWD_FILTER, filt_in, 2, bad, 11, "empty kernel");
  bad[10] = (int64_t)1 << 45;
  expect_infer_fail(OC_OP_CONV_BWD_FILTER, filt_in, 2, bad, 11, "huge kernel");
  bad[10] = 4;
  expect_infer_fail(OC_OP_CONV_BWD_FILTER, filt_in, 2, bad, 11, "kernel mismatch");
  memcpy(bad, good_f, sizeof bad);
  bad[0] = 3;
  expect_infer_fail(OC_OP_CONV_BWD_FILTER, filt_in, 2, bad, 11, "group not dividing C");
  bad[0] = 2;
  bad[1] = 0;
  expect_infer_fail(OC_OP_CONV_BWD_FILTER, filt_in, 2, bad, 11, "stride 0");

  /* pools */
  int64_t pxd[4] = {1, 2, 6, 6}, pyd[4] = {1, 2, 2, 2};
  oc_tensor_t px = mk_t(4, pxd, NULL), pdy = mk_t(4, pyd, NULL);
  oc_tensor_t *max_in[2] = {&px, &pdy}, *avg_in[1] = {&pdy};
  int64_t mp[11] = {3, 3, 2, 2, 0, 0, 0, 0, 1, 1, 0};
  c.ints = mp;
  c.n_ints = 11;
  c.in = max_in;
  ck_assert(oc_op_infer(OC_OP_MAXPOOL_BWD, &c, &ws) == OC_OK);
  mp[10] = 1; /* ceil mode: 3x3 output, dy mismatch */
  expect_infer_fail(OC_OP_MAXPOOL_BWD, max_in, 2, mp, 11, "maxpool dy mismatch");
  int64_t ap[14] = {3, 3, 2, 2, 0, 0, 0, 0, 1, 1, 0, 1, 6, 6};
  c.ints = ap;
  c.n_ints = 14;
  c.in = avg_in;
  c.n_in = 1;
  ck_assert(oc_op_infer(OC_OP_AVGPOOL_BWD, &c, &ws) == OC_OK);
  ck_assert_int_eq(out.dims[2], 6);
  ap[12] = 9;
  expect_infer_fail(OC_OP_AVGPOOL_BWD, avg_in, 1, ap, 14, "avgpool input dims mismatch");
  ap[12] = 6;
  ap[11] = 2;
  expect_infer_fail(OC_OP_AVGPOOL_BWD, avg_in, 1, ap, 14, "count_include_pad 2");
  ap[11] = 1;
  expect_infer_fail(OC_OP_AVGPOOL_BWD, avg_in, 1, ap, 12, "avgpool int count");
  int64_t gd[2] = {6, 6};
  expect_infer_fail(OC_OP_GLOBAL_AVGPOOL_BWD, avg_in, 1, gd, 2, "global avg: dy not 1x1");
  int64_t g1[4] = {1, 2, 1, 1};
  oc_tensor_t gdy = mk_t(4, g1, NULL);
  oc_tensor_t *gin[1] = {&gdy};
  int64_t neg[2] = {6, -6};
  expect_infer_fail(OC_OP_GLOBAL_AVGPOOL_BWD, gin, 1, neg, 2, "global avg negative dim");
  expect_infer_fail(OC_OP_GLOBAL_AVGPOOL_BWD, gin, 1, gd, 1, "global avg int count");
  oc_tensor_t *gmin[2] = {&px, &pdy};
  expect_infer_fail(OC_OP_GLOBAL_MAXPOOL_BWD, gmin, 2, NULL, 0, "global max dy not 1x1");
}
END_TEST

/* --- speed ------------------------------------------------------------------------- */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

START_TEST(conv_bwd_speed) {
  /* dX and dW of a 64 -> 64 channel 3x3 pad-1 Conv on (8, 64, 32, 32). */
  int64_t xd[4] = {8, 64, 32, 32}, wd[4] = {64, 64, 3, 3};
  int64_t nx = gc_numel(4, xd), nw = gc_numel(4, wd);
  float *x = rand_buf(nx), *w = rand_buf(nw), *dy = rand_buf(nx);
  oc_tensor_t tx = mk_t(4, xd, x), tw = mk_t(4, wd, w), tdy = mk_t(4, xd, dy), tdx, tdw;
  oc_tensor_t *din[2] = {&tdy, &tw}, *fin[2] = {&tx, &tdy};
  int64_t dints[11] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 32, 32};
  int64_t fints[11] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 3};
  double best_d = 1e9, best_f = 1e9;
  for (int rep = 0; rep < 3; rep++) {
    double t0 = now_s();
    ck_assert(run_op(OC_OP_CONV_BWD_DATA, din, 2, &tdx, dints, 11) == OC_OK);
    double t1 = now_s();
    ck_assert(run_op(OC_OP_CONV_BWD_FILTER, fin, 2, &tdw, fints, 11) == OC_OK);
    double t2 = now_s();
    if (t1 - t0 < best_d) best_d = t1 - t0;
    if (t2 - t1 < best_f) best_f = t2 - t1;
    free(tdx.data);
    free(tdw.data);
  }
  printf("conv backward (8,64,32,32) 3x3 64->64: dX %.1f ms, dW %.1f ms\n", best_d * 1e3,
         best_f * 1e3);
  free(x);
  free(w);
  free(dy);
  /* generous: sanitizer builds are slow; a release build takes tens of ms */
  ck_assert_msg(best_d + best_f < 5.0, "conv backward took %.2f s", best_d + best_f);
}
END_TEST

int main(void) {
  Suite *s = suite_create("grad_conv");
  TCase *tc = tcase_create("grad");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, conv1d_bias);
  tcase_add_test(tc, conv2d_bias_stride_pad);
  tcase_add_test(tc, conv2d_dilation);
  tcase_add_test(tc, conv2d_groups);
  tcase_add_test(tc, conv_1x1);
  tcase_add_test(tc, conv3d_small);
  tcase_add_test(tc, conv_batch_chunks);
  tcase_add_test(tc, conv_weight_only);
  tcase_add_test(tc, maxpool_grad);
  tcase_add_test(tc, avgpool_grad);
  tcase_add_test(tc, global_pool_grad);
  tcase_add_test(tc, maxpool_ties_first_max);
  tcase_add_test(tc, global_maxpool_ties_first_max);
  tcase_add_test(tc, bwd_ints_validated);
  tcase_add_test(tc, conv_bwd_speed);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
