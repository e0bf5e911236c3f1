/*
 * Tests of the convolution / pooling / normalization ops (runtime/ops/conv.c,
 * pool.c, batchnorm.c): shape rules, kernels against naive double-precision
 * references and known ONNX values, and hostile attributes.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "oc_ops.h"
#include "parallel.h"

/* --- helpers ---------------------------------------------------------------- */

static oc_tensor_t mk(int dtype, int rank, const int64_t *dims) {
  oc_tensor_t t;
  memset(&t, 0, sizeof t);
  t.dtype = dtype;
  t.rank = rank;
  for (int i = 0; i < rank; i++) t.dims[i] = dims[i];
  return t;
}

static oc_tensor_t mk_data(int dtype, int rank, const int64_t *dims) {
  oc_tensor_t t = mk(dtype, rank, dims);
  size_t bytes = oc_tensor_bytes(&t);
  t.data = calloc(bytes ? bytes : 1, 1);
  return t;
}

static unsigned rng_state = 12345;
static float frand(void) {
  rng_state = rng_state * 1103515245u + 12345u;
  return (float)((rng_state >> 8) & 0xffff) / 32768.0f - 1.0f;
}
static void fill_rand(oc_tensor_t *t) {
  float *p = t->data;
  int64_t n = oc_tensor_numel(t);
  for (int64_t i = 0; i < n; i++) p[i] = frand();
}

/* The pool kernels run on (NULL: the calling thread). */
static oc_pool_t *test_pool;

/* Runs infer then run; returns the infer status (run errors fail the test).
 * Output data is allocated here (freed by the caller). */
static oc_status_t call_op(int op, oc_tensor_t **in, int n_in, oc_tensor_t *out,
                           const int64_t *ints, int n_ints, const float *floats, int n_floats,
                           int do_run) {
  oc_tensor_t *outs[1] = {out};
  oc_op_call_t c = {.ints = ints, .n_ints = n_ints, .floats = floats, .n_floats = n_floats,
                    .n_in = n_in, .in = in, .n_out = 1, .out = outs};
  size_t ws = 0;
  oc_status_t s = oc_op_infer(op, &c, &ws);
  if (s || !do_run) return s;
  size_t bytes = oc_tensor_bytes(out);
  out->data = malloc(bytes ? bytes : 1);
  void *w = malloc(ws ? ws : 1);
  c.workspace = w;
  c.workspace_bytes = ws;
  c.pool = test_pool;
  oc_status_t rs = oc_op_get(op)->run(&c);
  ck_assert_msg(rs == OC_OK, "run failed: %s", oc_status_message(rs));
  free(w);
  return OC_OK;
}

static void expect_fail(oc_status_t s, const char *what) {
  ck_assert_msg(s != OC_OK, "expected an error for %s", what);
  oc_status_free(s);
}

static void expect_ok(oc_status_t s) {
  ck_assert_msg(s == OC_OK, "unexpected error: %s", oc_status_message(s));
}

static void expect_close(const float *got, const double *want, int64_t n, double tol) {
  for (int64_t i = 0; i < n; i++) {
    double err = fabs((double)got[i] - want[i]);
    ck_assert_msg(err <= tol * (1.0 + fabs(want[i])) || (isnan(got[i]) && isnan(want[i])),
                  "element %lld: got %.7g want %.7g", (long long)i, got[i], want[i]);
  }
}

/* --- naive references ------------------------------------------------------ */

typedef struct spatial_s {
  int n;                      /* spatial axes */
  int64_t k[3], s[3], pb[3], pe[3], d[3];
} spatial_t;

/* Output size by the ONNX formulas, computed in double. */
static int64_t ref_out_dim(int64_t in, int64_t k, int64_t s, int64_t pb, int64_t pe, int64_t d,
                           int ceil_mode) {
  double v = (double)(in + pb + pe - ((k - 1) * d + 1)) / (double)s + 1.0;
  int64_t o = (int64_t)(ceil_mode ? ceil(v) : floor(v));
  if (ceil_mode && (o - 1) * s >= in + pb) o--;
  return o;
}

/* Converts a linear index over |dims| (|n| entries) to coordinates. */
static void unravel(int64_t i, int n, const int64_t *dims, int64_t *coord) {
  for (int a = n - 1; a >= 0; a--) {
    coord[a] = i % dims[a];
    i /= dims[a];
  }
}

/* y (N, M, out...) for x (N, C, in...), w (M, C/G, k...). */
static double *ref_conv(const oc_tensor_t *x, const oc_tensor_t *w, const float *b, int64_t G,
                        const spatial_t *sp, int64_t *out_dims, int64_t *out_numel) {
  int n = sp->n;
  int64_t N = x->dims[0], C = x->dims[1], M = w->dims[0], Cg = C / G, Mg = M / G;
  int64_t od[3], P = 1, KV = 1, Pin = 1;
  for (int a = 0; a < n; a++) {
    od[a] = ref_out_dim(x->dims[2 + a], sp->k[a], sp->s[a], sp->pb[a], sp->pe[a], sp->d[a], 0);
    P *= od[a];
    KV *= sp->k[a];
    Pin *= x->dims[2 + a];
  }
  out_dims[0] = N;
  out_dims[1] = M;
  for (int a = 0; a < n; a++) out_dims[2 + a] = od[a];
  *out_numel = N * M * P;
  double *y = calloc((size_t)(*out_numel ? *out_numel : 1), sizeof(double));
  const float *xp = x->data, *wp = w->data;
  for (int64_t nn = 0; nn < N; nn++)
    for (int64_t m = 0; m < M; m++) {
      int64_t g = m / Mg;
      for (int64_t p = 0; p < P; p++) {
        int64_t oc[3];
        unravel(p, n, od, oc);
        double acc = b ? b[m] : 0.0;
        for (int64_t cc = 0; cc < Cg; cc++)
          for (int64_t kk = 0; kk < KV; kk++) {
            int64_t kc[3];
            unravel(kk, n, sp->k, kc);
            int64_t idx = 0, ok = 1;
            for (int a = 0; a < n; a++) {
              int64_t pos = oc[a] * sp->s[a] - sp->pb[a] + kc[a] * sp->d[a];
              if (pos < 0 || pos >= x->dims[2 + a]) ok = 0;
              idx = idx * x->dims[2 + a] + pos;
            }
            if (!ok) continue;
            double xv = xp[(nn * C + g * Cg + cc) * Pin + idx];
            double wv = wp[(m * Cg + cc) * KV + kk];
            acc += xv * wv;
          }
        y[(nn * M + m) * P + p] = acc;
      }
    }
  return y;
}

/* Pool reference: avg = 0 max, 1 average. */
static double *ref_pool(const oc_tensor_t *x, int avg, const spatial_t *sp, int ceil_mode,
                        int count_include_pad, int64_t *out_dims, int64_t *out_numel) {
  int n = sp->n;
  int64_t planes = x->dims[0] * x->dims[1], od[3], P = 1, KV = 1, Pin = 1;
  for (int a = 0; a < n; a++) {
    od[a] = ref_out_dim(x->dims[2 + a], sp->k[a], sp->s[a], sp->pb[a], sp->pe[a], sp->d[a],
                        ceil_mode);
    P *= od[a];
    KV *= sp->k[a];
    Pin *= x->dims[2 + a];
  }
  out_dims[0] = x->dims[0];
  out_dims[1] = x->dims[1];
  for (int a = 0; a < n; a++) out_dims[2 + a] = od[a];
  *out_numel = planes * P;
  double *y = calloc((size_t)(*out_numel ? *out_numel : 1), sizeof(double));
  const float *xp = x->data;
  for (int64_t pl = 0; pl < planes; pl++)
    for (int64_t p = 0; p < P; p++) {
      int64_t oc[3];
      unravel(p, n, od, oc);
      double acc = avg ? 0.0 : -INFINITY;
      int64_t count = 0;
      for (int64_t kk = 0; kk < KV; kk++) {
        int64_t kc[3];
        unravel(kk, n, sp->k, kc);
        int64_t idx = 0, inside = 1, in_padded = 1;
        for (int a = 0; a < n; a++) {
          int64_t pos = oc[a] * sp->s[a] - sp->pb[a] + kc[a] * sp->d[a];
          if (pos < 0 || pos >= x->dims[2 + a]) inside = 0;
          if (pos < -sp->pb[a] || pos >= x->dims[2 + a] + sp->pe[a]) in_padded = 0;
          idx = idx * x->dims[2 + a] + pos;
        }
        if (count_include_pad ? in_padded : inside) count++;
        if (!inside) continue;
        double v = xp[pl * Pin + idx];
        if (avg) acc += v;
        else if (v > acc) acc = v;
      }
      y[pl * P + p] = avg ? (count ? acc / (double)count : NAN) : acc;
    }
  return y;
}

/* --- conv ---------------------------------------------------------------- */

typedef struct conv_case_s {
  int n;
  int64_t N, C, M, G;
  int64_t in[3];
  spatial_t sp;
  int bias;
  int act;    /* the fused activation: 0 none, 1 Relu, 2 Clip to [-0.5, 0.75] */
  int packed; /* the weights in Conv's packed layout (ints layout 1) */
} conv_case_t;

/* |wide|: the bound is relative to the largest output, not to each one:
 * Winograd's transforms add rounding errors of the size of the sums over
 * channels, whatever the size of each output. */
static void run_conv_case(const conv_case_t *cc, int wide) {
  int n = cc->n;
  int64_t xd[5] = {cc->N, cc->C}, wd[5] = {cc->M, cc->C / cc->G}, bd[1] = {cc->M};
  for (int a = 0; a < n; a++) {
    xd[2 + a] = cc->in[a];
    wd[2 + a] = cc->sp.k[a];
  }
  oc_tensor_t x = mk_data(OC_DTYPE_FLOAT32, 2 + n, xd), w = mk_data(OC_DTYPE_FLOAT32, 2 + n, wd);
  oc_tensor_t b = mk_data(OC_DTYPE_FLOAT32, 1, bd), y = mk(0, 0, NULL);
  fill_rand(&x);
  fill_rand(&w);
  fill_rand(&b);
  int64_t ints[16];
  ints[0] = cc->G;
  for (int a = 0; a < n; a++) {
    ints[1 + a] = cc->sp.s[a];
    ints[1 + n + a] = cc->sp.pb[a];
    ints[1 + 2 * n + a] = cc->sp.pe[a];
    ints[1 + 3 * n + a] = cc->sp.d[a];
  }
  oc_tensor_t wp = w;
  if (cc->packed) {
    wp = mk_data(OC_DTYPE_FLOAT32, 2 + n, wd);
    oc_conv_pack_weights(wp.data, w.data, cc->M, oc_tensor_numel(&w) / cc->M);
  }
  oc_tensor_t *in[3] = {&x, &wp, &b};
  const float clip[2] = {-0.5f, 0.75f};
  int n_ints = 1 + 4 * n;
  if (cc->act || cc->packed) ints[n_ints++] = cc->act;
  if (cc->packed) ints[n_ints++] = 1;
  expect_ok(call_op(OC_OP_CONV, in, cc->bias ? 3 : 2, &y, ints, n_ints, clip,
                    cc->act == 2 ? 2 : 0, 1));
  /* packed weights give what the same weights in ONNX's layout give (the
   * same bits where both layouts take the same algorithm: Winograd, tiles
   * over positions) */
  oc_tensor_t yu = mk(0, 0, NULL);
  if (cc->packed) {
    free(wp.data);
    in[1] = &w;
    ints[n_ints - 1] = 0;
    expect_ok(call_op(OC_OP_CONV, in, cc->bias ? 3 : 2, &yu, ints, n_ints, clip,
                      cc->act == 2 ? 2 : 0, 1));
    ck_assert_int_eq(oc_tensor_numel(&yu), oc_tensor_numel(&y));
    const float *a = y.data, *u = yu.data;
    float big = 1.0f;
    for (int64_t i = 0; i < oc_tensor_numel(&y); i++) big = fmaxf(big, fabsf(u[i]));
    for (int64_t i = 0; i < oc_tensor_numel(&y); i++)
      ck_assert_msg(fabsf(a[i] - u[i]) <= 1e-5f * big, "packed vs ONNX layout, element %lld: %.7g vs %.7g",
                    (long long)i, a[i], u[i]);
    free(yu.data);
  }
  int64_t rd[5], numel;
  double *ref = ref_conv(&x, &w, cc->bias ? b.data : NULL, cc->G, &cc->sp, rd, &numel);
  for (int64_t i = 0; i < numel && cc->act; i++)
    ref[i] = cc->act == 1 ? (ref[i] < 0 ? 0 : ref[i])
                          : (ref[i] < clip[0] ? clip[0] : ref[i] > clip[1] ? clip[1] : ref[i]);
  ck_assert_int_eq(y.rank, 2 + n);
  for (int a = 0; a < 2 + n; a++) ck_assert_int_eq(y.dims[a], rd[a]);
  double scale = 1.0;
  for (int64_t i = 0; i < numel && wide; i++) scale = fmax(scale, fabs(ref[i]));
  expect_close(y.data, ref, numel, 1e-4 * scale);
  free(ref);
  free(x.data);
  free(w.data);
  free(b.data);
  free(y.data);
}

#define SP1(k0, s0, pb0, pe0, d0) {1, {k0}, {s0}, {pb0}, {pe0}, {d0}}
#define SP2(k0, k1, s0, s1, pb0, pb1, pe0, pe1, d0, d1) \
  {2, {k0, k1}, {s0, s1}, {pb0, pb1}, {pe0, pe1}, {d0, d1}}

START_TEST(conv_forward_cases) {
  const conv_case_t cases[] = {
      /* 2-D basics */
      {2, 1, 1, 1, 1, {5, 5}, SP2(3, 3, 1, 1, 1, 1, 1, 1, 1, 1), 0},
      {2, 2, 3, 4, 1, {7, 6}, SP2(3, 3, 1, 1, 0, 0, 0, 0, 1, 1), 1},
      {2, 1, 3, 8, 1, {9, 8}, SP2(3, 2, 2, 3, 1, 0, 2, 1, 1, 1), 1},
      /* dilations */
      {2, 1, 2, 3, 1, {10, 9}, SP2(3, 2, 1, 2, 2, 1, 1, 0, 2, 3), 1},
      /* groups and depthwise (multiplier 2) */
      {2, 2, 4, 6, 2, {6, 5}, SP2(3, 3, 1, 1, 1, 1, 1, 1, 1, 1), 1},
      {2, 1, 4, 8, 4, {7, 7}, SP2(3, 3, 2, 2, 1, 1, 1, 1, 1, 1), 1},
      {2, 1, 5, 5, 5, {6, 6}, SP2(5, 5, 1, 1, 2, 2, 2, 2, 1, 1), 0},
      /* 1x1 direct, 1x1 strided, 1x1 padded */
      {2, 2, 6, 5, 1, {4, 5}, SP2(1, 1, 1, 1, 0, 0, 0, 0, 1, 1), 1},
      {2, 1, 6, 4, 2, {4, 5}, SP2(1, 1, 1, 1, 0, 0, 0, 0, 1, 1), 0},
      {2, 1, 3, 4, 1, {7, 7}, SP2(1, 1, 2, 2, 0, 0, 0, 0, 1, 1), 1},
      {2, 1, 3, 2, 1, {3, 4}, SP2(1, 1, 1, 1, 1, 0, 0, 1, 1, 1), 1},
      /* kernel covering the padded input exactly; stride larger than kernel */
      {2, 1, 1, 1, 1, {3, 3}, SP2(5, 5, 1, 1, 1, 1, 1, 1, 1, 1), 1},
      {2, 1, 2, 2, 1, {11, 10}, SP2(2, 3, 4, 5, 0, 1, 3, 2, 1, 1), 1},
      /* 1-D */
      {1, 2, 3, 4, 1, {17}, SP1(3, 2, 1, 2, 2), 1},
      {1, 1, 4, 4, 4, {9}, SP1(3, 1, 1, 1, 1), 0},
      {1, 1, 3, 2, 1, {8}, SP1(1, 1, 0, 0, 1), 1},
      /* 3-D */
      {3, 1, 2, 3, 1, {5, 6, 4}, {3, {3, 2, 3}, {1, 2, 1}, {1, 0, 1}, {1, 1, 0}, {1, 1, 2}}, 1},
      {3, 2, 2, 2, 2, {4, 4, 4}, {3, {2, 2, 2}, {2, 2, 2}, {0, 0, 0}, {0, 0, 0}, {1, 1, 1}}, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_conv_case(&cases[i], 0);
}
END_TEST

/* Wider layers: the Winograd and register-tiled product paths (channels of
 * 16 and more, panels of 32 output channels with 16 or fewer left over,
 * few and many tiles, fused activations), on the calling thread and on a
 * pool of 3 threads. */
START_TEST(conv_forward_wide) {
  const conv_case_t cases[] = {
      {2, 1, 16, 16, 1, {8, 8}, SP2(3, 3, 1, 1, 1, 1, 1, 1, 1, 1), 1, 0},
      {2, 2, 32, 48, 1, {7, 7}, SP2(3, 3, 1, 1, 1, 1, 1, 1, 1, 1), 1, 1},
      {2, 1, 24, 40, 1, {14, 13}, SP2(3, 3, 1, 1, 0, 2, 2, 0, 1, 1), 1, 2},
      {2, 3, 64, 64, 1, {9, 11}, SP2(3, 3, 1, 1, 2, 2, 2, 2, 1, 1), 0, 1},
      {2, 1, 48, 96, 1, {20, 18}, SP2(3, 3, 1, 1, 1, 1, 1, 1, 1, 1), 1, 1},
      {2, 2, 40, 64, 1, {15, 15}, SP2(3, 3, 2, 2, 1, 1, 1, 1, 1, 1), 1, 1},
      {2, 2, 64, 80, 1, {7, 7}, SP2(1, 1, 2, 2, 0, 0, 0, 0, 1, 1), 1, 0},
      {2, 1, 3, 64, 1, {30, 30}, SP2(7, 7, 2, 2, 3, 3, 3, 3, 1, 1), 0, 1},
      {2, 4, 32, 32, 1, {4, 4}, SP2(3, 3, 1, 1, 1, 1, 1, 1, 1, 1), 1, 1},
      {2, 20, 32, 48, 1, {2, 2}, SP2(3, 3, 1, 1, 1, 1, 1, 1, 1, 1), 1, 0},
      /* packed weights: Winograd, tiles over positions, tiles over channels
       * (small maps of one image; 1x1 stride 1 reads the input itself) */
      {2, 1, 32, 48, 1, {7, 7}, SP2(3, 3, 1, 1, 1, 1, 1, 1, 1, 1), 1, 1, 1},
      {2, 3, 16, 64, 1, {12, 10}, SP2(3, 3, 1, 1, 0, 1, 2, 1, 1, 1), 1, 2, 1},
      {2, 1, 3, 80, 1, {30, 30}, SP2(7, 7, 2, 2, 3, 3, 3, 3, 1, 1), 1, 1, 1},
      {2, 1, 24, 48, 1, {13, 13}, SP2(3, 3, 2, 2, 1, 1, 1, 1, 1, 1), 0, 0, 1},
      {2, 1, 40, 96, 1, {14, 14}, SP2(1, 1, 2, 2, 0, 0, 0, 0, 1, 1), 1, 1, 1},
      {2, 1, 20, 48, 1, {9, 9}, SP2(1, 1, 1, 1, 0, 0, 0, 0, 1, 1), 1, 2, 1},
      {2, 1, 20, 16, 1, {12, 11}, SP2(1, 1, 1, 1, 0, 0, 0, 0, 1, 1), 1, 0, 1},
      {2, 1, 16, 32, 1, {5, 6}, SP2(2, 2, 1, 1, 1, 0, 0, 1, 1, 1), 1, 1, 1},
      {2, 5, 32, 64, 1, {9, 9}, SP2(3, 3, 2, 2, 1, 1, 1, 1, 1, 1), 1, 1, 1},
      {2, 3, 24, 32, 1, {7, 7}, SP2(1, 1, 1, 1, 0, 0, 0, 0, 1, 1), 1, 2, 1},
      {2, 40, 16, 48, 1, {4, 4}, SP2(1, 1, 2, 2, 0, 0, 0, 0, 1, 1), 0, 0, 1},
  };
  oc_pool_t *pool = NULL;
  expect_ok(oc_pool_create(3, NULL, &pool));
  for (int threads = 0; threads < 2; threads++) {
    test_pool = threads ? pool : NULL;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_conv_case(&cases[i], 1);
  }
  test_pool = NULL;
  oc_pool_release(pool);
}
END_TEST

/* test_conv_with_strides_padding (ONNX): x = 0..34 as (1,1,7,5), w = ones. */
START_TEST(conv_forward_onnx) {
  int64_t xd[4] = {1, 1, 7, 5}, wd[4] = {1, 1, 3, 3};
  oc_tensor_t x = mk_data(OC_DTYPE_FLOAT32, 4, xd), w = mk_data(OC_DTYPE_FLOAT32, 4, wd);
  oc_tensor_t y = mk(0, 0, NULL);
  for (int i = 0; i < 35; i++) ((float *)x.data)[i] = (float)i;
  for (int i = 0; i < 9; i++) ((float *)w.data)[i] = 1.0f;
  int64_t ints[9] = {1, 2, 2, 1, 1, 1, 1, 1, 1};
  oc_tensor_t *in[2] = {&x, &w};
  expect_ok(call_op(OC_OP_CONV, in, 2, &y, ints, 9, NULL, 0, 1));
  const double want[12] = {12, 27, 24, 63, 108, 81, 123, 198, 141, 112, 177, 124};
  ck_assert_int_eq(y.dims[2], 4);
  ck_assert_int_eq(y.dims[3], 3);
  expect_close(y.data, want, 12, 1e-6);
  free(y.data);
  /* with asymmetric padding [1, 0, 1, 0] */
  int64_t ints2[9] = {1, 2, 2, 1, 0, 1, 0, 1, 1};
  y = mk(0, 0, NULL);
  expect_ok(call_op(OC_OP_CONV, in, 2, &y, ints2, 9, NULL, 0, 1));
  const double want2[8] = {21, 33, 99, 117, 189, 207, 171, 183};
  ck_assert_int_eq(y.dims[2], 4);
  ck_assert_int_eq(y.dims[3], 2);
  expect_close(y.data, want2, 8, 1e-6);
  free(y.data);
  free(x.data);
  free(w.data);
}
END_TEST

START_TEST(conv_shape) {
  int64_t xd[4] = {2, 6, 224, 224}, wd[4] = {8, 3, 7, 7};
  oc_tensor_t x = mk(OC_DTYPE_FLOAT32, 4, xd), w = mk(OC_DTYPE_FLOAT32, 4, wd), y = mk(0, 0, NULL);
  oc_tensor_t *in[2] = {&x, &w};
  int64_t ints[9] = {2, 2, 2, 3, 3, 3, 3, 1, 1};
  oc_tensor_t *outs[1] = {&y};
  oc_op_call_t c = {.ints = ints, .n_ints = 9, .n_in = 2, .in = in, .n_out = 1, .out = outs};
  size_t ws = 0;
  expect_ok(oc_op_infer(OC_OP_CONV, &c, &ws));
  ck_assert_int_eq(y.dtype, OC_DTYPE_FLOAT32);
  ck_assert_int_eq(y.rank, 4);
  ck_assert_int_eq(y.dims[0], 2);
  ck_assert_int_eq(y.dims[1], 8);
  ck_assert_int_eq(y.dims[2], 112);
  ck_assert_int_eq(y.dims[3], 112);
  ck_assert_uint_eq(ws, (size_t)3 * 49 * 112 * 112 * sizeof(float));
  /* 1x1 stride 1 without padding needs no workspace */
  int64_t wd1[4] = {8, 6, 1, 1}, ints1[9] = {1, 1, 1, 0, 0, 0, 0, 1, 1};
  w = mk(OC_DTYPE_FLOAT32, 4, wd1);
  c.ints = ints1;
  expect_ok(oc_op_infer(OC_OP_CONV, &c, &ws));
  ck_assert_uint_eq(ws, 0);
  ck_assert_int_eq(y.dims[2], 224);
  /* 1-D */
  int64_t xd1[3] = {1, 4, 10}, wd2[3] = {2, 4, 3};
  x = mk(OC_DTYPE_FLOAT32, 3, xd1);
  w = mk(OC_DTYPE_FLOAT32, 3, wd2);
  int64_t ints3[5] = {1, 3, 1, 1, 2}; /* group, stride, pad begin, pad end, dilation */
  c.ints = ints3;
  c.n_ints = 5;
  expect_ok(oc_op_infer(OC_OP_CONV, &c, &ws));
  ck_assert_int_eq(y.rank, 3);
  ck_assert_int_eq(y.dims[2], (10 + 2 - 5) / 3 + 1);
}
END_TEST

START_TEST(conv_errors) {
  int64_t xd[4] = {1, 4, 8, 8}, wd[4] = {6, 2, 3, 3}, bd[1] = {6};
  oc_tensor_t x = mk(OC_DTYPE_FLOAT32, 4, xd), w = mk(OC_DTYPE_FLOAT32, 4, wd);
  oc_tensor_t b = mk(OC_DTYPE_FLOAT32, 1, bd), y = mk(0, 0, NULL);
  oc_tensor_t *in[3] = {&x, &w, &b};
  const int64_t good[9] = {2, 1, 1, 1, 1, 1, 1, 1, 1};
  expect_ok(call_op(OC_OP_CONV, in, 3, &y, good, 9, NULL, 0, 0));
  /* one hostile int at a time */
  const int64_t hostile[] = {0, -1, -4, INT64_MIN, INT64_MAX, (int64_t)1 << 41, (int64_t)1 << 62};
  for (int pos = 0; pos < 9; pos++)
    for (size_t h = 0; h < sizeof hostile / sizeof hostile[0]; h++) {
      int64_t ints[9];
      memcpy(ints, good, sizeof ints);
      ints[pos] = hostile[h];
      /* pads may be 0 */
      if (hostile[h] == 0 && pos >= 3 && pos <= 6) continue;
      expect_fail(call_op(OC_OP_CONV, in, 3, &y, ints, 9, NULL, 0, 0), "hostile conv int");
    }
  /* group that does not match W */
  int64_t g1[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  expect_fail(call_op(OC_OP_CONV, in, 3, &y, g1, 9, NULL, 0, 0), "group mismatch");
  int64_t g3[9] = {3, 1, 1, 1, 1, 1, 1, 1, 1};
  expect_fail(call_op(OC_OP_CONV, in, 3, &y, g3, 9, NULL, 0, 0), "group does not divide");
  /* wrong int count */
  expect_fail(call_op(OC_OP_CONV, in, 3, &y, good, 8, NULL, 0, 0), "short ints");
  expect_fail(call_op(OC_OP_CONV, in, 3, &y, good, 0, NULL, 0, 0), "no ints");
  float f = 1.0f;
  expect_fail(call_op(OC_OP_CONV, in, 3, &y, good, 9, &f, 1, 0), "floats");
  /* packed weights (layout 1): not with groups, M not a multiple of 16, a
   * layout other than 0 and 1, or an algorithm that reads ONNX's layout
   * (kernel taps that read padding alone: a 3x3 kernel over a 1x1 map) */
  int64_t packed_g2[11] = {2, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1};
  expect_fail(call_op(OC_OP_CONV, in, 3, &y, packed_g2, 11, NULL, 0, 0), "packed, group 2");
  int64_t packed_l2[11] = {2, 1, 1, 1, 1, 1, 1, 1, 1, 0, 2};
  expect_fail(call_op(OC_OP_CONV, in, 3, &y, packed_l2, 11, NULL, 0, 0), "layout 2");
  {
    int64_t xpd[4] = {2, 16, 6, 6}, wpd[4] = {32, 16, 3, 3}, wpd2[4] = {40, 16, 3, 3};
    oc_tensor_t xp = mk(OC_DTYPE_FLOAT32, 4, xpd), wp = mk(OC_DTYPE_FLOAT32, 4, wpd);
    oc_tensor_t wp2 = mk(OC_DTYPE_FLOAT32, 4, wpd2);
    oc_tensor_t *inp[2] = {&xp, &wp}, *inp2[2] = {&xp, &wp2};
    int64_t packed[11] = {1, 2, 2, 1, 1, 1, 1, 1, 1, 0, 1};
    expect_ok(call_op(OC_OP_CONV, inp, 2, &y, packed, 11, NULL, 0, 0));
    xp.dims[2] = xp.dims[3] = 1;
    expect_fail(call_op(OC_OP_CONV, inp, 2, &y, packed, 11, NULL, 0, 0), "packed, trimmed");
    xp.dims[2] = xp.dims[3] = 6;
    expect_fail(call_op(OC_OP_CONV, inp2, 2, &y, packed, 11, NULL, 0, 0), "packed, M 40");
  }
  /* dilation so large the window does not fit (and would overflow) */
  int64_t big[9] = {2, 1, 1, 1, 1, 1, 1, OC_MAX_DIM, OC_MAX_DIM};
  expect_fail(call_op(OC_OP_CONV, in, 3, &y, big, 9, NULL, 0, 0), "huge dilation");
  /* kernel larger than the padded input */
  int64_t wd_big[4] = {6, 2, 11, 3};
  oc_tensor_t wb = mk(OC_DTYPE_FLOAT32, 4, wd_big);
  oc_tensor_t *in_b[2] = {&x, &wb};
  expect_fail(call_op(OC_OP_CONV, in_b, 2, &y, good, 9, NULL, 0, 0), "kernel too large");
  /* bias of the wrong size and dtype */
  int64_t bd2[1] = {5};
  oc_tensor_t b2 = mk(OC_DTYPE_FLOAT32, 1, bd2);
  oc_tensor_t *in2[3] = {&x, &w, &b2};
  expect_fail(call_op(OC_OP_CONV, in2, 3, &y, good, 9, NULL, 0, 0), "bias size");
  oc_tensor_t b3 = mk(OC_DTYPE_INT64, 1, bd);
  oc_tensor_t *in3[3] = {&x, &w, &b3};
  expect_fail(call_op(OC_OP_CONV, in3, 3, &y, good, 9, NULL, 0, 0), "bias dtype");
  /* int input, rank mismatch, rank 2, rank 6 */
  oc_tensor_t xi = mk(OC_DTYPE_INT64, 4, xd);
  oc_tensor_t *in4[2] = {&xi, &w};
  expect_fail(call_op(OC_OP_CONV, in4, 2, &y, good, 9, NULL, 0, 0), "int input");
  int64_t wd3[3] = {6, 2, 3};
  oc_tensor_t w3 = mk(OC_DTYPE_FLOAT32, 3, wd3);
  oc_tensor_t *in5[2] = {&x, &w3};
  expect_fail(call_op(OC_OP_CONV, in5, 2, &y, good, 9, NULL, 0, 0), "W rank");
  oc_tensor_t x2 = mk(OC_DTYPE_FLOAT32, 2, xd), w2 = mk(OC_DTYPE_FLOAT32, 2, wd);
  oc_tensor_t *in6[2] = {&x2, &w2};
  expect_fail(call_op(OC_OP_CONV, in6, 2, &y, good, 1, NULL, 0, 0), "rank 2");
  int64_t xd6[6] = {1, 4, 2, 2, 2, 2}, wd6[6] = {6, 2, 1, 1, 1, 1};
  oc_tensor_t x6 = mk(OC_DTYPE_FLOAT32, 6, xd6), w6 = mk(OC_DTYPE_FLOAT32, 6, wd6);
  oc_tensor_t *in7[2] = {&x6, &w6};
  int64_t ints6[17] = {2, 1, 1, 1, 1};
  for (int i = 5; i < 17; i++) ints6[i] = i >= 13 ? 1 : 0;
  expect_fail(call_op(OC_OP_CONV, in7, 2, &y, ints6, 17, NULL, 0, 0), "4 spatial axes");
  /* a zero-sized kernel axis */
  int64_t wd0[4] = {6, 2, 0, 3};
  oc_tensor_t w0 = mk(OC_DTYPE_FLOAT32, 4, wd0);
  oc_tensor_t *in8[2] = {&x, &w0};
  expect_fail(call_op(OC_OP_CONV, in8, 2, &y, good, 9, NULL, 0, 0), "empty kernel");
}
END_TEST

/* --- pooling ------------------------------------------------------------- */

typedef struct pool_case_s {
  int n;
  int64_t N, C;
  int64_t in[3];
  spatial_t sp;
  int ceil_mode, count_include_pad;
} pool_case_t;

static void run_pool_case(const pool_case_t *pc, int avg) {
  int n = pc->n;
  int64_t xd[5] = {pc->N, pc->C};
  for (int a = 0; a < n; a++) xd[2 + a] = pc->in[a];
  oc_tensor_t x = mk_data(OC_DTYPE_FLOAT32, 2 + n, xd), y = mk(0, 0, NULL);
  fill_rand(&x);
  int64_t ints[17];
  for (int a = 0; a < n; a++) {
    ints[a] = pc->sp.k[a];
    ints[n + a] = pc->sp.s[a];
    ints[2 * n + a] = pc->sp.pb[a];
    ints[3 * n + a] = pc->sp.pe[a];
    ints[4 * n + a] = pc->sp.d[a];
  }
  ints[5 * n] = pc->ceil_mode;
  ints[5 * n + 1] = pc->count_include_pad;
  oc_tensor_t *in[1] = {&x};
  expect_ok(call_op(avg ? OC_OP_AVGPOOL : OC_OP_MAXPOOL, in, 1, &y, ints, 5 * n + 1 + avg, NULL,
                    0, 1));
  int64_t rd[5], numel;
  double *ref = ref_pool(&x, avg, &pc->sp, pc->ceil_mode, avg ? pc->count_include_pad : 0, rd,
                         &numel);
  ck_assert_int_eq(y.rank, 2 + n);
  for (int a = 0; a < 2 + n; a++) ck_assert_int_eq(y.dims[a], rd[a]);
  expect_close(y.data, ref, numel, 1e-5);
  free(ref);
  free(x.data);
  free(y.data);
}

START_TEST(pool_forward_cases) {
  const pool_case_t cases[] = {
      {2, 1, 3, {8, 8}, SP2(2, 2, 1, 1, 0, 0, 0, 0, 1, 1), 0, 0},
      {2, 2, 2, {7, 9}, SP2(3, 3, 2, 2, 1, 1, 1, 1, 1, 1), 0, 0},
      {2, 2, 2, {7, 9}, SP2(3, 3, 2, 2, 1, 1, 1, 1, 1, 1), 0, 1},
      {2, 1, 2, {6, 7}, SP2(3, 2, 2, 2, 1, 0, 2, 1, 1, 1), 1, 0},
      {2, 1, 2, {6, 7}, SP2(3, 2, 2, 2, 1, 0, 2, 1, 1, 1), 1, 1},
      {2, 1, 1, {4, 4}, SP2(3, 3, 2, 2, 0, 0, 0, 0, 1, 1), 1, 0},
      {2, 1, 2, {9, 8}, SP2(2, 3, 1, 2, 1, 1, 0, 2, 2, 3), 0, 0},
      {2, 1, 2, {9, 8}, SP2(2, 3, 1, 2, 1, 1, 0, 2, 2, 3), 1, 1},
      /* ceil mode where the last window would start in the end pad */
      {2, 1, 1, {5, 5}, SP2(2, 2, 3, 3, 1, 1, 1, 1, 1, 1), 1, 1},
      {2, 1, 1, {4, 4}, SP2(1, 1, 2, 2, 0, 0, 0, 0, 1, 1), 1, 0},
      {1, 2, 3, {16}, SP1(2, 1, 0, 0, 1), 0, 0},
      {1, 1, 2, {13}, SP1(4, 3, 2, 1, 2), 1, 0},
      {1, 1, 2, {13}, SP1(4, 3, 2, 1, 2), 0, 1},
      {3, 1, 2, {5, 6, 4}, {3, {2, 3, 2}, {1, 2, 2}, {0, 1, 1}, {1, 1, 0}, {1, 1, 1}}, 1, 1},
      {3, 1, 2, {5, 6, 4}, {3, {2, 3, 2}, {1, 2, 2}, {0, 1, 1}, {1, 1, 0}, {1, 1, 1}}, 0, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    run_pool_case(&cases[i], 0);
    run_pool_case(&cases[i], 1);
  }
}
END_TEST

/* Known ONNX values: test_averagepool_2d_ceil, test_maxpool_2d_ceil,
 * test_averagepool_2d_precomputed_pads(_count_include_pad), uint8 max. */
START_TEST(pool_forward_onnx) {
  int64_t xd[4] = {1, 1, 4, 4};
  oc_tensor_t x = mk_data(OC_DTYPE_FLOAT32, 4, xd), y = mk(0, 0, NULL);
  for (int i = 0; i < 16; i++) ((float *)x.data)[i] = (float)(i + 1);
  oc_tensor_t *in[1] = {&x};
  int64_t ints[12] = {3, 3, 2, 2, 0, 0, 0, 0, 1, 1, 1, 0};
  expect_ok(call_op(OC_OP_AVGPOOL, in, 1, &y, ints, 12, NULL, 0, 1));
  const double want_avg[4] = {6, 7.5, 12, 13.5};
  expect_close(y.data, want_avg, 4, 1e-6);
  free(y.data);
  y = mk(0, 0, NULL);
  expect_ok(call_op(OC_OP_MAXPOOL, in, 1, &y, ints, 11, NULL, 0, 1));
  const double want_max[4] = {11, 12, 15, 16};
  expect_close(y.data, want_max, 4, 1e-6);
  free(y.data);
  free(x.data);

  int64_t xd5[4] = {1, 1, 5, 5};
  x = mk_data(OC_DTYPE_FLOAT32, 4, xd5);
  for (int i = 0; i < 25; i++) ((float *)x.data)[i] = (float)(i + 1);
  int64_t pads_ints[12] = {5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 0, 0};
  y = mk(0, 0, NULL);
  expect_ok(call_op(OC_OP_AVGPOOL, in, 1, &y, pads_ints, 12, NULL, 0, 1));
  const double want_p[25] = {7, 7.5, 8, 8.5, 9, 9.5, 10, 10.5, 11, 11.5, 12, 12.5, 13,
                             13.5, 14, 14.5, 15, 15.5, 16, 16.5, 17, 17.5, 18, 18.5, 19};
  expect_close(y.data, want_p, 25, 1e-6);
  free(y.data);
  pads_ints[11] = 1;
  y = mk(0, 0, NULL);
  expect_ok(call_op(OC_OP_AVGPOOL, in, 1, &y, pads_ints, 12, NULL, 0, 1));
  const double want_pc[25] = {2.5200, 3.6000, 4.8000, 4.0800, 3.2400, 4.5600, 6.4000,
                              8.4000, 7.0400, 5.5200, 7.2000, 10.0000, 13.0000, 10.8000,
                              8.4000, 6.9600, 9.6000, 12.4000, 10.2400, 7.9200, 6.1200,
                              8.4000, 10.8000, 8.8800, 6.8400};
  expect_close(y.data, want_pc, 25, 1e-5);
  free(y.data);
  free(x.data);

  /* uint8 and int8 max */
  oc_tensor_t xu = mk_data(OC_DTYPE_UINT8, 4, xd5);
  for (int i = 0; i < 25; i++) ((uint8_t *)xu.data)[i] = (uint8_t)(i + 1);
  oc_tensor_t *inu[1] = {&xu};
  y = mk(0, 0, NULL);
  expect_ok(call_op(OC_OP_MAXPOOL, inu, 1, &y, pads_ints, 11, NULL, 0, 1));
  ck_assert_int_eq(y.dtype, OC_DTYPE_UINT8);
  const uint8_t want_u[25] = {13, 14, 15, 15, 15, 18, 19, 20, 20, 20, 23, 24, 25,
                              25, 25, 23, 24, 25, 25, 25, 23, 24, 25, 25, 25};
  ck_assert_mem_eq(y.data, want_u, 25);
  free(y.data);
  xu.dtype = OC_DTYPE_INT8;
  for (int i = 0; i < 25; i++) ((int8_t *)xu.data)[i] = (int8_t)(-i - 1);
  y = mk(0, 0, NULL);
  int64_t k2[11] = {2, 2, 2, 2, 0, 0, 1, 1, 1, 1, 0};
  expect_ok(call_op(OC_OP_MAXPOOL, inu, 1, &y, k2, 11, NULL, 0, 1));
  ck_assert_int_eq(y.dims[2], 3);
  const int8_t want_i[9] = {-1, -3, -5, -11, -13, -15, -21, -23, -25};
  ck_assert_mem_eq(y.data, want_i, 9);
  free(y.data);
  free(xu.data);
}
END_TEST

START_TEST(global_pool_forward) {
  int64_t xd[5] = {2, 3, 4, 5, 2};
  for (int rank = 2; rank <= 5; rank++) {
    oc_tensor_t x = mk_data(OC_DTYPE_FLOAT32, rank, xd);
    fill_rand(&x);
    int64_t S = 1;
    for (int i = 2; i < rank; i++) S *= xd[i];
    for (int avg = 0; avg < 2; avg++) {
      oc_tensor_t y = mk(0, 0, NULL);
      oc_tensor_t *in[1] = {&x};
      expect_ok(call_op(avg ? OC_OP_GLOBAL_AVGPOOL : OC_OP_GLOBAL_MAXPOOL, in, 1, &y, NULL, 0,
                        NULL, 0, 1));
      ck_assert_int_eq(y.rank, rank);
      for (int i = 0; i < rank; i++) ck_assert_int_eq(y.dims[i], i < 2 ? xd[i] : 1);
      double want[6];
      for (int p = 0; p < 6; p++) {
        const float *xp = (const float *)x.data + p * S;
        double acc = avg ? 0.0 : -INFINITY;
        for (int64_t i = 0; i < S; i++) acc = avg ? acc + xp[i] : fmax(acc, xp[i]);
        want[p] = avg ? acc / (double)S : acc;
      }
      expect_close(y.data, want, 6, 1e-5);
      free(y.data);
    }
    free(x.data);
  }
}
END_TEST

START_TEST(pool_shape) {
  /* ResNet stem max pool: 112 -> 56 */
  int64_t xd[4] = {1, 64, 112, 112};
  oc_tensor_t x = mk(OC_DTYPE_FLOAT32, 4, xd), y = mk(0, 0, NULL);
  oc_tensor_t *in[1] = {&x};
  int64_t ints[11] = {3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0};
  expect_ok(call_op(OC_OP_MAXPOOL, in, 1, &y, ints, 11, NULL, 0, 0));
  ck_assert_int_eq(y.dims[2], 56);
  ck_assert_int_eq(y.dims[3], 56);
  /* ceil mode: 112 + 2 - 3 = 111, / 2 = 55.5 -> 56 + 1 = 57; the last window
   * starts at 112 >= 112 + 1? no -> 57 */
  ints[10] = 1;
  expect_ok(call_op(OC_OP_MAXPOOL, in, 1, &y, ints, 11, NULL, 0, 0));
  ck_assert_int_eq(y.dims[2], 57);
  /* ceil mode dropping a window that would start in the end pad:
   * in 5, k 2, s 3, pads 1/1: ceil((7 - 2) / 3) + 1 = 3, starts 0, 3, 6; 6 >= 5 + 1 -> 2 */
  int64_t xd2[4] = {1, 1, 5, 5};
  x = mk(OC_DTYPE_FLOAT32, 4, xd2);
  int64_t ints2[12] = {2, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0};
  expect_ok(call_op(OC_OP_AVGPOOL, in, 1, &y, ints2, 12, NULL, 0, 0));
  ck_assert_int_eq(y.dims[2], 2);
  /* 3-D */
  int64_t xd3[5] = {1, 3, 32, 32, 32};
  x = mk(OC_DTYPE_FLOAT32, 5, xd3);
  int64_t ints3[16] = {2, 2, 2, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0};
  expect_ok(call_op(OC_OP_MAXPOOL, in, 1, &y, ints3, 16, NULL, 0, 0));
  ck_assert_int_eq(y.rank, 5);
  ck_assert_int_eq(y.dims[4], 31);
}
END_TEST

START_TEST(pool_errors) {
  int64_t xd[4] = {1, 2, 6, 6};
  oc_tensor_t x = mk(OC_DTYPE_FLOAT32, 4, xd), y = mk(0, 0, NULL);
  oc_tensor_t *in[1] = {&x};
  const int64_t good[12] = {3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
  expect_ok(call_op(OC_OP_AVGPOOL, in, 1, &y, good, 12, NULL, 0, 0));
  expect_ok(call_op(OC_OP_MAXPOOL, in, 1, &y, good, 11, NULL, 0, 0));
  const int64_t hostile[] = {-1, 2, INT64_MIN, INT64_MAX, (int64_t)1 << 41, (int64_t)1 << 62};
  for (int pos = 0; pos < 12; pos++)
    for (size_t h = 0; h < sizeof hostile / sizeof hostile[0]; h++) {
      int64_t ints[12];
      memcpy(ints, good, sizeof ints);
      ints[pos] = hostile[h];
      if (hostile[h] == 2 && pos < 10) continue; /* 2 is a fine kernel/stride/pad/dilation */
      expect_fail(call_op(OC_OP_AVGPOOL, in, 1, &y, ints, 12, NULL, 0, 0), "hostile avgpool");
      if (pos < 11)
        expect_fail(call_op(OC_OP_MAXPOOL, in, 1, &y, ints, 11, NULL, 0, 0), "hostile maxpool");
    }
  int64_t zero_k[12] = {0, 3, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0};
  expect_fail(call_op(OC_OP_AVGPOOL, in, 1, &y, zero_k, 12, NULL, 0, 0), "kernel 0");
  int64_t zero_s[12] = {3, 3, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0};
  expect_fail(call_op(OC_OP_MAXPOOL, in, 1, &y, zero_s, 11, NULL, 0, 0), "stride 0");
  int64_t big_k[12] = {9, 3, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0};
  expect_fail(call_op(OC_OP_MAXPOOL, in, 1, &y, big_k, 11, NULL, 0, 0), "kernel > input");
  expect_fail(call_op(OC_OP_MAXPOOL, in, 1, &y, good, 12, NULL, 0, 0), "maxpool int count");
  expect_fail(call_op(OC_OP_AVGPOOL, in, 1, &y, good, 11, NULL, 0, 0), "avgpool int count");
  oc_tensor_t xi = mk(OC_DTYPE_INT64, 4, xd);
  oc_tensor_t *ini[1] = {&xi};
  expect_fail(call_op(OC_OP_MAXPOOL, ini, 1, &y, good, 11, NULL, 0, 0), "int64 maxpool");
  oc_tensor_t xu = mk(OC_DTYPE_UINT8, 4, xd);
  oc_tensor_t *inu[1] = {&xu};
  expect_fail(call_op(OC_OP_AVGPOOL, inu, 1, &y, good, 12, NULL, 0, 0), "uint8 avgpool");
  oc_tensor_t x2 = mk(OC_DTYPE_FLOAT32, 2, xd);
  oc_tensor_t *in2[1] = {&x2};
  expect_fail(call_op(OC_OP_MAXPOOL, in2, 1, &y, good, 1, NULL, 0, 0), "rank 2 maxpool");
  expect_fail(call_op(OC_OP_GLOBAL_AVGPOOL, in, 1, &y, good, 1, NULL, 0, 0), "global with ints");
  oc_tensor_t x1 = mk(OC_DTYPE_FLOAT32, 1, xd);
  oc_tensor_t *in1[1] = {&x1};
  expect_fail(call_op(OC_OP_GLOBAL_MAXPOOL, in1, 1, &y, NULL, 0, NULL, 0, 0), "rank 1 global");
  expect_fail(call_op(OC_OP_GLOBAL_MAXPOOL, ini, 1, &y, NULL, 0, NULL, 0, 0), "int64 global");
}
END_TEST

/* --- batchnorm ------------------------------------------------------------ */

/* x (N, C, S) float; test_batchnorm_example-style check against double math. */
static void run_bn(int rank, const int64_t *xd, float eps) {
  oc_tensor_t x = mk_data(OC_DTYPE_FLOAT32, rank, xd);
  int64_t C = rank >= 2 ? xd[1] : xd[0], N = rank >= 2 ? xd[0] : 1, S = 1;
  for (int i = 2; i < rank; i++) S *= xd[i];
  int64_t cd[1] = {C};
  oc_tensor_t p[4];
  for (int i = 0; i < 4; i++) {
    p[i] = mk_data(OC_DTYPE_FLOAT32, 1, cd);
    fill_rand(&p[i]);
  }
  float *var = p[3].data;
  for (int64_t ch = 0; ch < C; ch++) var[ch] = fabsf(var[ch]) + 0.1f;
  fill_rand(&x);
  oc_tensor_t y = mk(0, 0, NULL);
  oc_tensor_t *in[5] = {&x, &p[0], &p[1], &p[2], &p[3]};
  int64_t mode = 0;
  expect_ok(call_op(OC_OP_BATCHNORM, in, 5, &y, &mode, 1, &eps, 1, 1));
  ck_assert_int_eq(y.rank, rank);
  for (int i = 0; i < rank; i++) ck_assert_int_eq(y.dims[i], xd[i]);
  double *want = malloc(sizeof(double) * (size_t)(N * C * S));
  const float *xp = x.data, *sc = p[0].data, *bi = p[1].data, *mn = p[2].data;
  for (int64_t n = 0; n < N; n++)
    for (int64_t ch = 0; ch < C; ch++)
      for (int64_t i = 0; i < S; i++) {
        int64_t k = (n * C + ch) * S + i;
        want[k] = sc[ch] * (xp[k] - (double)mn[ch]) / sqrt((double)var[ch] + eps) + bi[ch];
      }
  expect_close(y.data, want, N * C * S, 1e-5);
  free(want);
  free(y.data);
  free(x.data);
  for (int i = 0; i < 4; i++) free(p[i].data);
}

START_TEST(batchnorm_forward) {
  int64_t d4[4] = {2, 3, 4, 5}, d2[2] = {4, 7}, d1[1] = {6}, d3[3] = {1, 2, 9};
  run_bn(4, d4, 1e-5f);
  run_bn(4, d4, 1e-2f);
  run_bn(2, d2, 1e-5f);
  run_bn(1, d1, 1e-5f);
  run_bn(3, d3, 0.5f);
  /* test_batchnorm_example first values: x = [[-1, 0, 1], [2, 3, 4]] (1,2,1,3),
   * s = [1, 1.5], bias = [0, 1], mean = [0, 3], var = [1, 1.5] */
  int64_t xd[4] = {1, 2, 1, 3}, cd[1] = {2};
  oc_tensor_t x = mk_data(OC_DTYPE_FLOAT32, 4, xd), y = mk(0, 0, NULL);
  const float xv[6] = {-1, 0, 1, 2, 3, 4};
  memcpy(x.data, xv, sizeof xv);
  float pv[4][2] = {{1, 1.5f}, {0, 1}, {0, 3}, {1, 1.5f}};
  oc_tensor_t p[4];
  for (int i = 0; i < 4; i++) {
    p[i] = mk(OC_DTYPE_FLOAT32, 1, cd);
    p[i].data = pv[i];
  }
  oc_tensor_t *in[5] = {&x, &p[0], &p[1], &p[2], &p[3]};
  int64_t mode = 0;
  float eps = 1e-5f;
  expect_ok(call_op(OC_OP_BATCHNORM, in, 5, &y, &mode, 1, &eps, 1, 1));
  const double want[6] = {-0.999995, 0, 0.999995, -0.22474074, 1, 2.2247407};
  expect_close(y.data, want, 6, 1e-5);
  free(y.data);
  free(x.data);
}
END_TEST

START_TEST(batchnorm_errors) {
  int64_t xd[4] = {2, 3, 4, 5}, cd[1] = {3}, cd4[1] = {4};
  oc_tensor_t x = mk(OC_DTYPE_FLOAT32, 4, xd), p = mk(OC_DTYPE_FLOAT32, 1, cd);
  oc_tensor_t p4 = mk(OC_DTYPE_FLOAT32, 1, cd4), y = mk(0, 0, NULL);
  oc_tensor_t *in[5] = {&x, &p, &p, &p, &p};
  int64_t mode = 0;
  float eps = 1e-5f;
  expect_ok(call_op(OC_OP_BATCHNORM, in, 5, &y, &mode, 1, &eps, 1, 0));
  const int64_t hostile[] = {1, -1, 2, INT64_MIN, INT64_MAX};
  for (size_t h = 0; h < sizeof hostile / sizeof hostile[0]; h++)
    expect_fail(call_op(OC_OP_BATCHNORM, in, 5, &y, &hostile[h], 1, &eps, 1, 0), "bn mode");
  expect_fail(call_op(OC_OP_BATCHNORM, in, 5, &y, NULL, 0, &eps, 1, 0), "bn no ints");
  expect_fail(call_op(OC_OP_BATCHNORM, in, 5, &y, &mode, 1, NULL, 0, 0), "bn no eps");
  for (int i = 1; i < 5; i++) {
    oc_tensor_t *bad[5] = {&x, &p, &p, &p, &p};
    bad[i] = &p4;
    expect_fail(call_op(OC_OP_BATCHNORM, bad, 5, &y, &mode, 1, &eps, 1, 0), "bn param size");
  }
  oc_tensor_t p2 = mk(OC_DTYPE_FLOAT32, 2, xd);
  oc_tensor_t *in2[5] = {&x, &p, &p, &p2, &p};
  expect_fail(call_op(OC_OP_BATCHNORM, in2, 5, &y, &mode, 1, &eps, 1, 0), "bn param rank");
  oc_tensor_t xi = mk(OC_DTYPE_INT64, 4, xd);
  oc_tensor_t *in3[5] = {&xi, &p, &p, &p, &p};
  expect_fail(call_op(OC_OP_BATCHNORM, in3, 5, &y, &mode, 1, &eps, 1, 0), "bn int input");
  oc_tensor_t x0 = mk(OC_DTYPE_FLOAT32, 0, xd);
  oc_tensor_t *in4[5] = {&x0, &p, &p, &p, &p};
  expect_fail(call_op(OC_OP_BATCHNORM, in4, 5, &y, &mode, 1, &eps, 1, 0), "bn scalar");
  expect_fail(call_op(OC_OP_BATCHNORM, in, 4, &y, &mode, 1, &eps, 1, 0), "bn 4 inputs");
}
END_TEST


/* Random small attributes (many invalid): whenever infer accepts, run must
 * stay inside the tensors and the workspace infer asked for (ASan checks). */
START_TEST(fuzz_infer_run) {
  rng_state = 777;
  int accepted[3] = {0, 0, 0};
  for (int iter = 0; iter < 20000; iter++) {
    int op = iter % 3; /* 0 conv, 1 maxpool, 2 avgpool */
    int n = 1 + (int)((rng_state >> 4) % 3);
    frand();
    int64_t xd[5] = {1 + iter % 2, 2 + (iter / 3) % 3}, wd[5] = {2, 0};
    for (int a = 0; a < n; a++) {
      frand();
      xd[2 + a] = (int64_t)((rng_state >> 9) % 6);
      frand();
      wd[2 + a] = 1 + (int64_t)((rng_state >> 9) % 4);
    }
    int64_t ints[17];
    int n_ints = op == 0 ? 1 + 4 * n : 5 * n + 1 + (op == 2);
    for (int i = 0; i < n_ints; i++) {
      frand();
      ints[i] = (int64_t)((rng_state >> 9) % 6) - 1;
    }
    if (op == 0) {
      int64_t g = ints[0] >= 1 ? ints[0] : 1;
      wd[1] = xd[1] % g == 0 ? xd[1] / g : xd[1];
    }
    oc_tensor_t x = mk_data(OC_DTYPE_FLOAT32, 2 + n, xd), w = mk_data(OC_DTYPE_FLOAT32, 2 + n, wd);
    fill_rand(&x);
    fill_rand(&w);
    oc_tensor_t y = mk(0, 0, NULL);
    oc_tensor_t *in[2] = {&x, &w};
    int kind = op == 0 ? OC_OP_CONV : op == 1 ? OC_OP_MAXPOOL : OC_OP_AVGPOOL;
    oc_tensor_t *outs[1] = {&y};
    oc_op_call_t c = {.ints = ints, .n_ints = n_ints, .n_in = op == 0 ? 2 : 1, .in = in,
                      .n_out = 1, .out = outs};
    size_t ws = 0;
    oc_status_t st = oc_op_infer(kind, &c, &ws);
    if (st) {
      oc_status_free(st);
    } else {
      accepted[op]++;
      size_t bytes = oc_tensor_bytes(&y);
      y.data = malloc(bytes ? bytes : 1);
      c.workspace = ws ? malloc(ws) : NULL;
      c.workspace_bytes = ws;
      expect_ok(oc_op_get(kind)->run(&c));
      free(c.workspace);
      free(y.data);
    }
    free(x.data);
    free(w.data);
  }
  ck_assert_int_gt(accepted[0], 20);
  ck_assert_int_gt(accepted[1], 20);
  ck_assert_int_gt(accepted[2], 20);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("ops_conv");
  TCase *shape = tcase_create("shape");
  tcase_add_test(shape, conv_shape);
  tcase_add_test(shape, pool_shape);
  suite_add_tcase(s, shape);
  TCase *fwd = tcase_create("forward");
  tcase_add_test(fwd, conv_forward_cases);
  tcase_add_test(fwd, conv_forward_onnx);
  tcase_add_test(fwd, conv_forward_wide);
  tcase_add_test(fwd, pool_forward_cases);
  tcase_add_test(fwd, pool_forward_onnx);
  tcase_add_test(fwd, global_pool_forward);
  tcase_add_test(fwd, batchnorm_forward);
  suite_add_tcase(s, fwd);
  TCase *err = tcase_create("errors");
  tcase_add_test(err, conv_errors);
  tcase_add_test(err, pool_errors);
  tcase_add_test(err, batchnorm_errors);
  tcase_add_test(err, fuzz_infer_run);
  suite_add_tcase(s, err);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
