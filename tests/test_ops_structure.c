/*
 * Tests of the structure and normalization ops: BatchNormalization training
 * mode (runtime/ops/batchnorm.c), Pad, DepthToSpace / SpaceToDepth, Resize,
 * InstanceNormalization, LpNormalization, LpPool, ConvTranspose and Dropout.
 * Shape rules, kernels against naive double-precision references written
 * here (different algorithms from the kernels where possible), and hostile
 * attributes, which infer must refuse and never crash on.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oc_ops.h"

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
static unsigned urand(void) {
  rng_state = rng_state * 1103515245u + 12345u;
  return rng_state >> 8;
}
static float frand(void) { return (float)(urand() & 0xffff) / 32768.0f - 1.0f; }
static int64_t irand(int64_t lo, int64_t hi) { return lo + (int64_t)(urand() % (unsigned)(hi - lo + 1)); }
static void fill_rand(oc_tensor_t *t) {
  float *p = t->data;
  int64_t n = oc_tensor_numel(t);
  for (int64_t i = 0; i < n; i++) p[i] = frand();
}

/* Runs infer, then (do_run) allocates the outputs and the workspace and runs.
 * Returns the infer status; a run error fails the test. */
static oc_status_t call_n(int op, oc_tensor_t **in, int n_in, oc_tensor_t **out, int n_out,
                          const int64_t *ints, int n_ints, const float *floats, int n_floats,
                          int do_run, size_t *ws_out) {
  oc_op_call_t c = {.ints = ints, .n_ints = n_ints, .floats = floats, .n_floats = n_floats,
                    .n_in = n_in, .in = in, .n_out = n_out, .out = out};
  size_t ws = 0;
  oc_status_t s = oc_op_infer(op, &c, &ws);
  if (ws_out) *ws_out = ws;
  if (s || !do_run) return s;
  for (int i = 0; i < n_out; i++) {
    size_t bytes = oc_tensor_bytes(out[i]);
    out[i]->data = malloc(bytes ? bytes : 1);
  }
  void *w = ws ? malloc(ws) : NULL;
  c.workspace = w;
  c.workspace_bytes = ws;
  oc_status_t rs = oc_op_get(op)->run(&c);
  ck_assert_msg(rs == OC_OK, "run failed: %s", oc_status_message(rs));
  free(w);
  return OC_OK;
}

static oc_status_t call1(int op, oc_tensor_t **in, int n_in, oc_tensor_t *out,
                         const int64_t *ints, int n_ints, const float *floats, int n_floats,
                         int do_run) {
  oc_tensor_t *outs[1] = {out};
  return call_n(op, in, n_in, outs, 1, ints, n_ints, floats, n_floats, do_run, NULL);
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

static void expect_dims(const oc_tensor_t *t, int rank, const int64_t *dims) {
  ck_assert_int_eq(t->rank, rank);
  for (int i = 0; i < rank; i++)
    ck_assert_msg(t->dims[i] == dims[i], "dim %d: got %lld want %lld", i, (long long)t->dims[i],
                  (long long)dims[i]);
}

static void unravel(int64_t i, int n, const int64_t *dims, int64_t *coord) {
  for (int a = n - 1; a >= 0; a--) {
    coord[a] = i % dims[a];
    i /= dims[a];
  }
}

static int64_t ravel(int n, const int64_t *dims, const int64_t *coord) {
  int64_t i = 0;
  for (int a = 0; a < n; a++) i = i * dims[a] + coord[a];
  return i;
}

/* === BatchNormalization (training) ====================================== */

/* y, rmean, rvar, smean, svar for x (N, C, S) in double. */
static void ref_bn_train(const float *x, const float *sc, const float *b, const float *m,
                         const float *v, int64_t N, int64_t C, int64_t S, double eps, double mom,
                         int unbiased, double *y, double *rm, double *rv, double *smean,
                         double *svar) {
  for (int64_t c = 0; c < C; c++) {
    double n = (double)(N * S), sum = 0, sq = 0;
    for (int64_t i = 0; i < N; i++)
      for (int64_t s = 0; s < S; s++) sum += x[(i * C + c) * S + s];
    double mean = sum / n;
    for (int64_t i = 0; i < N; i++)
      for (int64_t s = 0; s < S; s++) sq += pow(x[(i * C + c) * S + s] - mean, 2);
    double var = sq / n;
    for (int64_t i = 0; i < N; i++)
      for (int64_t s = 0; s < S; s++) {
        int64_t k = (i * C + c) * S + s;
        y[k] = sc[c] * (x[k] - mean) / sqrt(var + eps) + b[c];
      }
    rm[c] = mom * m[c] + (1 - mom) * mean;
    rv[c] = mom * v[c] + (1 - mom) * (unbiased && n > 1 ? var * n / (n - 1) : var);
    smean[c] = mean;
    svar[c] = var;
  }
}

START_TEST(bn_training_forward) {
  /* 4-D (N, C, H, W) and 3-D (N, C, L) (BatchNorm1d), each unbiased 0 and 1 */
  const int64_t shapes[3][4] = {{3, 4, 5, 6}, {8, 3, 7, 0}, {1, 2, 1, 1}};
  const int ranks[3] = {4, 3, 4};
  for (int sh = 0; sh < 3; sh++)
    for (int unbiased = 0; unbiased < 2; unbiased++) {
      int64_t C = shapes[sh][1];
      oc_tensor_t x = mk_data(OC_DTYPE_FLOAT32, ranks[sh], shapes[sh]);
      fill_rand(&x);
      oc_tensor_t p[4];
      for (int i = 0; i < 4; i++) {
        p[i] = mk_data(OC_DTYPE_FLOAT32, 1, &C);
        fill_rand(&p[i]);
      }
      for (int64_t c = 0; c < C; c++) ((float *)p[3].data)[c] = 0.5f + fabsf(((float *)p[3].data)[c]);
      oc_tensor_t *in[5] = {&x, &p[0], &p[1], &p[2], &p[3]};
      oc_tensor_t o[5];
      oc_tensor_t *outs[5];
      for (int i = 0; i < 5; i++) {
        o[i] = mk(0, 0, NULL);
        outs[i] = &o[i];
      }
      int64_t ints[2] = {1, unbiased};
      float fl[2] = {1e-3f, 0.8f};
      size_t ws;
      expect_ok(call_n(OC_OP_BATCHNORM, in, 5, outs, 5, ints, 2, fl, 2, 1, &ws));
      ck_assert_uint_eq(ws, (size_t)(2 * C) * sizeof(double));
      int64_t N = x.dims[0], S = 1;
      for (int i = 2; i < x.rank; i++) S *= x.dims[i];
      int64_t n = oc_tensor_numel(&x);
      double *y = calloc((size_t)n + 1, sizeof(double)), st[4][8];
      ref_bn_train(x.data, p[0].data, p[1].data, p[2].data, p[3].data, N, C, S, 1e-3, 0.8,
                   unbiased, y, st[0], st[1], st[2], st[3]);
      expect_dims(&o[0], x.rank, x.dims);
      expect_close(o[0].data, y, n, 1e-5);
      for (int k = 0; k < 4; k++) {
        expect_dims(&o[1 + k], 1, &C);
        expect_close(o[1 + k].data, st[k], C, 1e-5);
      }
      /* fewer outputs: Y alone, then Y + running stats */
      for (int n_out = 1; n_out <= 3; n_out += 2) {
        oc_tensor_t q[3];
        oc_tensor_t *qo[3] = {&q[0], &q[1], &q[2]};
        for (int i = 0; i < 3; i++) q[i] = mk(0, 0, NULL);
        expect_ok(call_n(OC_OP_BATCHNORM, in, 5, qo, n_out, ints, 2, fl, 2, 1, NULL));
        expect_close(q[0].data, y, n, 1e-5);
        if (n_out == 3) expect_close(q[2].data, st[1], C, 1e-5);
        for (int i = 0; i < n_out; i++) free(q[i].data);
      }
      free(y);
      free(x.data);
      for (int i = 0; i < 4; i++) free(p[i].data);
      for (int i = 0; i < 5; i++) free(o[i].data);
    }
}
END_TEST

START_TEST(bn_training_values) {
  /* one channel, x = {1, 2, 3, 4}: mean 2.5, biased var 1.25, unbiased 5/3 */
  int64_t xd[3] = {2, 1, 2}, cd = 1;
  oc_tensor_t x = mk_data(OC_DTYPE_FLOAT32, 3, xd);
  float xv[4] = {1, 2, 3, 4};
  memcpy(x.data, xv, sizeof xv);
  float one = 1, zero = 0, rm = 10, rv = 20;
  oc_tensor_t s = mk(OC_DTYPE_FLOAT32, 1, &cd), b = s, m = s, v = s;
  s.data = &one;
  b.data = &zero;
  m.data = &rm;
  v.data = &rv;
  oc_tensor_t *in[5] = {&x, &s, &b, &m, &v};
  oc_tensor_t o[5];
  oc_tensor_t *outs[5] = {&o[0], &o[1], &o[2], &o[3], &o[4]};
  int64_t ints[2] = {1, 1};
  float fl[2] = {0.0f, 0.9f};
  expect_ok(call_n(OC_OP_BATCHNORM, in, 5, outs, 5, ints, 2, fl, 2, 1, NULL));
  const float *y = o[0].data;
  ck_assert_float_eq_tol(y[0], (float)(-1.5 / sqrt(1.25)), 1e-6f);
  ck_assert_float_eq_tol(*(float *)o[1].data, 0.9f * 10 + 0.1f * 2.5f, 1e-5f);
  ck_assert_float_eq_tol(*(float *)o[2].data, 0.9f * 20 + 0.1f * (5.0f / 3.0f), 1e-5f);
  ck_assert_float_eq_tol(*(float *)o[3].data, 2.5f, 1e-6f);
  ck_assert_float_eq_tol(*(float *)o[4].data, 1.25f, 1e-6f);
  free(x.data);
  for (int i = 0; i < 5; i++) free(o[i].data);
}
END_TEST

/* Empty tensors: nothing to compute, and no loop over the non-empty axes
 * (those may be huge when another axis is 0). */
START_TEST(empty_tensors) {
  int64_t xd[3] = {0, 2, 5}, cd = 2, two = 2;
  oc_tensor_t x = mk_data(OC_DTYPE_FLOAT32, 3, xd), p = mk_data(OC_DTYPE_FLOAT32, 1, &cd);
  oc_tensor_t *in[5] = {&x, &p, &p, &p, &p};
  oc_tensor_t o[3];
  oc_tensor_t *outs[3] = {&o[0], &o[1], &o[2]};
  int64_t ints[2] = {1, 1};
  float fl[2] = {1e-5f, 0.9f};
  expect_ok(call_n(OC_OP_BATCHNORM, in, 5, outs, 3, ints, 2, fl, 2, 1, NULL));
  ck_assert(isnan(((float *)o[1].data)[0]) && isnan(((float *)o[2].data)[1]));
  for (int i = 0; i < 3; i++) free(o[i].data);
  /* Large other dims (their product, 2^38 bytes, is within the 2^40 that
   * oc_check_type allows an empty tensor). */
  int64_t hd[3] = {1LL << 18, 0, 1LL << 18};
  oc_tensor_t h = mk(OC_DTYPE_FLOAT32, 3, hd), y = mk(0, 0, NULL);
  oc_tensor_t *hin[1] = {&h};
  int64_t ax[2] = {1, 2};
  expect_ok(call1(OC_OP_LPNORM, hin, 1, &y, ax, 2, NULL, 0, 1));
  free(y.data);
  oc_tensor_t st = mk_data(OC_DTYPE_INT64, 1, &two);
  oc_tensor_t *din[2] = {&h, &st};
  float r = 0.5f;
  expect_ok(call1(OC_OP_DROPOUT, din, 2, &y, NULL, 0, &r, 1, 1));
  ck_assert_int_eq(((int64_t *)st.data)[1], 1);
  free(y.data);
  int64_t pads[7] = {1, 0, 0, 0, 0, 0, 0};
  expect_ok(call1(OC_OP_PAD, hin, 1, &y, pads, 7, NULL, 0, 1)); /* reflect, nothing grows */
  free(y.data);
  free(st.data);
  free(x.data);
  free(p.data);
}
END_TEST

START_TEST(bn_training_errors) {
  int64_t xd[4] = {2, 3, 4, 5}, cd = 3;
  oc_tensor_t x = mk(OC_DTYPE_FLOAT32, 4, xd), p = mk(OC_DTYPE_FLOAT32, 1, &cd);
  oc_tensor_t o[6];
  oc_tensor_t *outs[6] = {&o[0], &o[1], &o[2], &o[3], &o[4], &o[5]};
  oc_tensor_t *in[5] = {&x, &p, &p, &p, &p};
  float fl[2] = {1e-5f, 0.9f};
  int64_t ok[2] = {1, 0};
  expect_ok(call_n(OC_OP_BATCHNORM, in, 5, outs, 5, ok, 2, fl, 2, 0, NULL));
  const int64_t hostile[] = {-1, 2, INT64_MIN, INT64_MAX};
  for (size_t h = 0; h < 4; h++) {
    int64_t bad[2] = {1, hostile[h]};
    expect_fail(call_n(OC_OP_BATCHNORM, in, 5, outs, 3, bad, 2, fl, 2, 0, NULL), "unbiased");
    int64_t badm[2] = {hostile[h], 0};
    expect_fail(call_n(OC_OP_BATCHNORM, in, 5, outs, 3, badm, 2, fl, 2, 0, NULL), "mode");
  }
  expect_fail(call_n(OC_OP_BATCHNORM, in, 5, outs, 3, ok, 1, fl, 2, 0, NULL), "1 int");
  expect_fail(call_n(OC_OP_BATCHNORM, in, 5, outs, 3, ok, 2, fl, 1, 0, NULL), "1 float");
  expect_fail(call_n(OC_OP_BATCHNORM, in, 5, outs, 6, ok, 2, fl, 2, 0, NULL), "6 outputs");
  int64_t inf0 = 0;
  expect_fail(call_n(OC_OP_BATCHNORM, in, 5, outs, 3, &inf0, 1, fl, 1, 0, NULL),
              "inference with 3 outputs");
  oc_tensor_t x1 = mk(OC_DTYPE_FLOAT32, 1, &cd);
  oc_tensor_t *in1[5] = {&x1, &p, &p, &p, &p};
  expect_fail(call_n(OC_OP_BATCHNORM, in1, 5, outs, 1, ok, 2, fl, 2, 0, NULL), "rank 1 training");
}
END_TEST

/* === Pad ================================================================== */

/* numpy's reflect by repeated mirroring (not the kernel's modular form). */
static int64_t ref_reflect(int64_t i, int64_t n) {
  if (n == 1) return 0;
  while (i < 0 || i >= n) {
    if (i < 0) i = -i;
    if (i >= n) i = 2 * (n - 1) - i;
  }
  return i;
}

START_TEST(pad_forward) {
  rng_state = 99;
  for (int iter = 0; iter < 300; iter++) {
    int r = (int)irand(1, 4), mode = (int)irand(0, 2);
    int dtype = iter % 3 == 0 ? OC_DTYPE_INT32 : iter % 3 == 1 ? OC_DTYPE_FLOAT32 : OC_DTYPE_INT8;
    int64_t dims[4], ints[9], od[4];
    ints[0] = mode;
    int ok = 1;
    for (int i = 0; i < r; i++) {
      dims[i] = irand(mode ? 1 : 0, 4);
      ints[1 + i] = irand(-2, 5);
      ints[1 + r + i] = irand(-2, 5);
      od[i] = dims[i] + ints[1 + i] + ints[1 + r + i];
      if (od[i] < 0) ok = 0;
    }
    oc_tensor_t x = mk_data(dtype, r, dims), y = mk(0, 0, NULL);
    int64_t n = oc_tensor_numel(&x);
    for (int64_t i = 0; i < n; i++) {
      if (dtype == OC_DTYPE_INT32) ((int32_t *)x.data)[i] = (int32_t)irand(-100, 100);
      if (dtype == OC_DTYPE_INT8) ((int8_t *)x.data)[i] = (int8_t)irand(-100, 100);
      if (dtype == OC_DTYPE_FLOAT32) ((float *)x.data)[i] = frand();
    }
    int with_value = mode == 0 && iter % 2;
    oc_tensor_t v = mk_data(dtype, 0, NULL);
    if (dtype == OC_DTYPE_INT32) *(int32_t *)v.data = 7;
    if (dtype == OC_DTYPE_INT8) *(int8_t *)v.data = -7;
    if (dtype == OC_DTYPE_FLOAT32) *(float *)v.data = 7.5f;
    oc_tensor_t *in[2] = {&x, &v};
    oc_status_t s = call1(OC_OP_PAD, in, with_value ? 2 : 1, &y, ints, 1 + 2 * r, NULL, 0, 1);
    if (!ok) {
      expect_fail(s, "crop past the start");
      free(x.data);
      free(v.data);
      continue;
    }
    expect_ok(s);
    expect_dims(&y, r, od);
    int64_t m = oc_tensor_numel(&y);
    size_t es = oc_dtype_size(dtype);
    for (int64_t k = 0; k < m; k++) {
      int64_t oc[4], ic[4];
      unravel(k, r, od, oc);
      int outside = 0;
      for (int a = 0; a < r; a++) {
        int64_t i = oc[a] - ints[1 + a];
        if (i < 0 || i >= dims[a]) {
          if (mode == 0) outside = 1;
          else if (mode == 2) i = i < 0 ? 0 : dims[a] - 1;
          else i = ref_reflect(i, dims[a]);
        }
        ic[a] = i;
      }
      const char *want;
      static const char zero[8];
      if (outside)
        want = with_value ? v.data : zero;
      else
        want = (const char *)x.data + (size_t)ravel(r, dims, ic) * es;
      ck_assert_msg(memcmp((char *)y.data + (size_t)k * es, want, es) == 0,
                    "iter %d mode %d element %lld differs", iter, mode, (long long)k);
    }
    free(x.data);
    free(v.data);
    free(y.data);
  }
}
END_TEST

START_TEST(pad_shape) {
  int64_t xd[3] = {2, 3, 4};
  oc_tensor_t x = mk(OC_DTYPE_FLOAT32, 3, xd), y = mk(0, 0, NULL);
  oc_tensor_t *in[1] = {&x};
  int64_t ints[7] = {0, 1, 0, -2, 2, -3, 0};
  expect_ok(call1(OC_OP_PAD, in, 1, &y, ints, 7, NULL, 0, 0));
  int64_t want[3] = {5, 0, 2};
  expect_dims(&y, 3, want);
  /* edge cropping elsewhere while an empty axis stays empty is fine; growing
   * an empty axis is not */
  int64_t ed[2] = {0, 3};
  oc_tensor_t e = mk(OC_DTYPE_BOOL, 2, ed);
  oc_tensor_t *ein[1] = {&e};
  int64_t ok_e[5] = {2, 0, -1, 0, 0};
  expect_ok(call1(OC_OP_PAD, ein, 1, &y, ok_e, 5, NULL, 0, 0));
  int64_t bad_e[5] = {2, 1, 0, 0, 0};
  expect_fail(call1(OC_OP_PAD, ein, 1, &y, bad_e, 5, NULL, 0, 0), "edge from an empty axis");
  bad_e[0] = 0;
  expect_ok(call1(OC_OP_PAD, ein, 1, &y, bad_e, 5, NULL, 0, 0)); /* constant is fine */
  /* scalar input: nothing to pad */
  oc_tensor_t s = mk(OC_DTYPE_INT64, 0, NULL);
  oc_tensor_t *sin[1] = {&s};
  int64_t m0 = 0;
  expect_ok(call1(OC_OP_PAD, sin, 1, &y, &m0, 1, NULL, 0, 0));
  ck_assert_int_eq(y.rank, 0);
}
END_TEST

START_TEST(pad_errors) {
  int64_t xd[2] = {3, 4};
  oc_tensor_t x = mk(OC_DTYPE_FLOAT32, 2, xd), y = mk(0, 0, NULL);
  oc_tensor_t *in[2] = {&x, NULL};
  const int64_t hostile[] = {INT64_MIN, INT64_MAX, -(1LL << 41), 1LL << 41, -5};
  for (size_t h = 0; h < 5; h++)
    for (int k = 0; k < 4; k++) {
      int64_t ints[5] = {0, 0, 0, 0, 0};
      ints[1 + k] = hostile[h];
      expect_fail(call1(OC_OP_PAD, in, 1, &y, ints, 5, NULL, 0, 0), "hostile pad");
    }
  int64_t modes[] = {-1, 3, INT64_MAX};
  for (int i = 0; i < 3; i++) {
    int64_t ints[5] = {modes[i], 0, 0, 0, 0};
    expect_fail(call1(OC_OP_PAD, in, 1, &y, ints, 5, NULL, 0, 0), "mode");
  }
  int64_t ints[5] = {0, 1, 1, 1, 1};
  expect_fail(call1(OC_OP_PAD, in, 1, &y, ints, 4, NULL, 0, 0), "too few pads");
  float f = 1;
  expect_fail(call1(OC_OP_PAD, in, 1, &y, ints, 5, &f, 1, 0), "floats");
  oc_tensor_t vi = mk(OC_DTYPE_INT32, 0, NULL), v2 = mk(OC_DTYPE_FLOAT32, 1, xd);
  in[1] = &vi;
  expect_fail(call1(OC_OP_PAD, in, 2, &y, ints, 5, NULL, 0, 0), "value dtype");
  in[1] = &v2;
  expect_fail(call1(OC_OP_PAD, in, 2, &y, ints, 5, NULL, 0, 0), "value of 3 elements");
  oc_tensor_t v1 = mk(OC_DTYPE_FLOAT32, 0, NULL);
  in[1] = &v1;
  int64_t refl[5] = {1, 1, 1, 1, 1};
  expect_fail(call1(OC_OP_PAD, in, 2, &y, refl, 5, NULL, 0, 0), "value in reflect mode");
}
END_TEST

/* === DepthToSpace / SpaceToDepth ======================================== */

START_TEST(space_depth_forward) {
  int64_t N = 2, C = 3, H = 2, W = 3;
  for (int64_t b = 1; b <= 3; b++)
    for (int crd = 0; crd < 2; crd++) {
      int64_t xd[4] = {N, C * b * b, H, W};
      oc_tensor_t x = mk_data(OC_DTYPE_INT64, 4, xd), y = mk(0, 0, NULL);
      int64_t n = oc_tensor_numel(&x);
      for (int64_t i = 0; i < n; i++) ((int64_t *)x.data)[i] = i * 7 + 3;
      oc_tensor_t *in[1] = {&x};
      int64_t ints[2] = {b, crd};
      expect_ok(call1(OC_OP_DEPTH_TO_SPACE, in, 1, &y, ints, 2, NULL, 0, 1));
      int64_t yd[4] = {N, C, H * b, W * b};
      expect_dims(&y, 4, yd);
      /* the spec's reshape + transpose: DCR views x as (N, b, b, C, H, W) and
       * permutes to (N, C, H, b, W, b); CRD views it as (N, C, b, b, H, W) */
      for (int64_t nn = 0; nn < N; nn++)
        for (int64_t c = 0; c < C; c++)
          for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < b; i++)
              for (int64_t w = 0; w < W; w++)
                for (int64_t j = 0; j < b; j++) {
                  int64_t src = crd ? ((((nn * C + c) * b + i) * b + j) * H + h) * W + w
                                    : ((((nn * b + i) * b + j) * C + c) * H + h) * W + w;
                  int64_t dst = ((nn * C + c) * (H * b) + h * b + i) * (W * b) + w * b + j;
                  ck_assert_int_eq(((int64_t *)y.data)[dst], ((int64_t *)x.data)[src]);
                }
      if (!crd) { /* SpaceToDepth inverts DCR */
        oc_tensor_t z = mk(0, 0, NULL);
        oc_tensor_t *yin[1] = {&y};
        expect_ok(call1(OC_OP_SPACE_TO_DEPTH, yin, 1, &z, &b, 1, NULL, 0, 1));
        expect_dims(&z, 4, xd);
        ck_assert(memcmp(z.data, x.data, (size_t)n * 8) == 0);
        free(z.data);
      }
      free(x.data);
      free(y.data);
    }
}
END_TEST

START_TEST(space_depth_errors) {
  int64_t xd[4] = {1, 8, 4, 6}, x3d[3] = {1, 8, 4};
  oc_tensor_t x = mk(OC_DTYPE_FLOAT32, 4, xd), y = mk(0, 0, NULL), x3 = mk(OC_DTYPE_FLOAT32, 3, x3d);
  oc_tensor_t *in[1] = {&x}, *in3[1] = {&x3};
  const int64_t hostile[] = {0, -1, 3, INT64_MAX, INT64_MIN, 1LL << 32};
  for (size_t h = 0; h < 6; h++) {
    int64_t ints[2] = {hostile[h], 0};
    expect_fail(call1(OC_OP_DEPTH_TO_SPACE, in, 1, &y, ints, 2, NULL, 0, 0), "d2s blocksize");
    expect_fail(call1(OC_OP_SPACE_TO_DEPTH, in, 1, &y, ints, 1, NULL, 0, 0), "s2d blocksize");
  }
  int64_t modes[2] = {2, 2};
  expect_fail(call1(OC_OP_DEPTH_TO_SPACE, in, 1, &y, modes, 2, NULL, 0, 0), "d2s mode");
  int64_t b2[2] = {2, 0};
  expect_fail(call1(OC_OP_DEPTH_TO_SPACE, in, 1, &y, b2, 1, NULL, 0, 0), "d2s 1 int");
  expect_fail(call1(OC_OP_DEPTH_TO_SPACE, in3, 1, &y, b2, 2, NULL, 0, 0), "d2s rank 3");
  expect_ok(call1(OC_OP_SPACE_TO_DEPTH, in, 1, &y, b2, 1, NULL, 0, 0));
  int64_t want[4] = {1, 32, 2, 3};
  expect_dims(&y, 4, want);
  int64_t b4 = 4;
  expect_fail(call1(OC_OP_SPACE_TO_DEPTH, in, 1, &y, &b4, 1, NULL, 0, 0), "s2d 6 % 4");
  int64_t big[4] = {1, 1, 1LL << 39, 1};
  oc_tensor_t xb = mk(OC_DTYPE_UINT8, 4, big);
  oc_tensor_t *inb[1] = {&xb};
  int64_t b1k[2] = {1024, 0};
  expect_fail(call1(OC_OP_DEPTH_TO_SPACE, inb, 1, &y, b1k, 2, NULL, 0, 0), "d2s overflow");
}
END_TEST

/* === Resize =============================================================== */

typedef struct rs_ref_s {
  int mode, coord, nearest, from_sizes;
  const float *scales;
} rs_ref_t;

/* ONNX's reference formulation: nested 1-D interpolation, outermost axis last. */
static double ref_rs_1d(const double *vals, int64_t n, int64_t m, double s, double len, int64_t o,
                        const rs_ref_t *p) {
  double xi;
  switch (p->coord) {
    case 1: xi = o / s; break;
    case 2: xi = m > 1 ? (o + 0.5) / s - 0.5 : 0.0; break;
    case 3: xi = len > 1 ? o * (double)(n - 1) / (len - 1) : 0.0; break;
    case 4: xi = (o + 0.5) / s; break;
    default: xi = (o + 0.5) / s - 0.5;
  }
  if (p->mode == 0) {
    double f = floor(xi), frac = xi - f, r;
    switch (p->nearest) {
      case 1: r = frac >= 0.5 ? f + 1 : f; break;
      case 2: r = f; break;
      case 3: r = ceil(xi); break;
      case 4: r = s < 1 ? ceil(xi) : trunc(xi); break;
      default: r = frac > 0.5 ? f + 1 : f;
    }
    if (r < 0) r = 0;
    if (r > n - 1) r = (double)(n - 1);
    return vals[(int64_t)r];
  }
  if (xi < 0) xi = 0;
  if (xi > n - 1) xi = (double)(n - 1);
  int64_t i0 = (int64_t)floor(xi), i1 = i0 + 1 < n ? i0 + 1 : n - 1;
  double w = xi - (double)i0;
  return (1 - w) * vals[i0] + w * vals[i1];
}

static double ref_rs(const float *x, int r, const int64_t *in, const int64_t *out,
                     const int64_t *oc, int axis, int64_t base, const rs_ref_t *p) {
  /* base: the flat offset of the fixed leading axes in x (for axis > 0) */
  int64_t n = in[axis], m = out[axis];
  double s = p->from_sizes ? (double)m / (double)n : p->scales[axis];
  double len = p->from_sizes ? (double)m : s * (double)n;
  double *vals = malloc(sizeof(double) * (size_t)n);
  for (int64_t i = 0; i < n; i++) {
    int64_t b = base * n + i;
    vals[i] = axis == r - 1 ? x[b] : ref_rs(x, r, in, out, oc, axis + 1, b, p);
  }
  double v = ref_rs_1d(vals, n, m, s, len, oc[axis], p);
  free(vals);
  return v;
}

START_TEST(resize_forward) {
  rng_state = 4242;
  for (int iter = 0; iter < 400; iter++) {
    rs_ref_t p = {.mode = (int)irand(0, 1), .coord = (int)irand(0, 4), .nearest = (int)irand(0, 4),
                  .from_sizes = (int)irand(0, 1)};
    int r = (int)irand(1, 4);
    int64_t in[4], out[4];
    float scales[4];
    for (int a = 0; a < r; a++) {
      in[a] = irand(1, 5);
      if (p.from_sizes) {
        out[a] = irand(1, 9);
      } else {
        static const float choices[] = {1.0f, 2.0f, 0.5f, 0.6f, 1.5f, 3.0f, 0.8f, 2.5f};
        scales[a] = choices[irand(0, 7)];
        out[a] = (int64_t)floor((double)in[a] * (double)scales[a]);
      }
    }
    p.scales = scales;
    oc_tensor_t x = mk_data(OC_DTYPE_FLOAT32, r, in), y = mk(0, 0, NULL);
    fill_rand(&x);
    oc_tensor_t *xin[1] = {&x};
    int64_t ints[4 + 4] = {p.mode, p.coord, p.nearest, p.from_sizes};
    for (int a = 0; a < r; a++) ints[4 + a] = out[a];
    expect_ok(call1(OC_OP_RESIZE, xin, 1, &y, ints, 4 + r, scales, p.from_sizes ? 0 : r, 1));
    expect_dims(&y, r, out);
    int64_t m = oc_tensor_numel(&y);
    for (int64_t k = 0; k < m; k++) {
      int64_t oc[4];
      unravel(k, r, out, oc);
      double want = ref_rs(x.data, r, in, out, oc, 0, 0, &p);
      double got = ((float *)y.data)[k];
      ck_assert_msg(fabs(got - want) <= 1e-5 * (1 + fabs(want)),
                    "iter %d (mode %d coord %d nearest %d sizes %d) element %lld: got %g want %g",
                    iter, p.mode, p.coord, p.nearest, p.from_sizes, (long long)k, got, want);
    }
    free(x.data);
    free(y.data);
  }
}
END_TEST

START_TEST(resize_values) {
  /* ONNX's test_resize_upsample_scales_linear_align_corners and a nearest
   * int64 upsample (asymmetric floor: np.repeat) */
  int64_t xd[4] = {1, 1, 2, 2};
  oc_tensor_t x = mk_data(OC_DTYPE_FLOAT32, 4, xd), y = mk(0, 0, NULL);
  float xv[4] = {1, 2, 3, 4};
  memcpy(x.data, xv, sizeof xv);
  oc_tensor_t *in[1] = {&x};
  int64_t ints[8] = {1, 3, 0, 0, 1, 1, 4, 4};
  float sc[4] = {1, 1, 2, 2};
  expect_ok(call1(OC_OP_RESIZE, in, 1, &y, ints, 8, sc, 4, 1));
  const double want[16] = {1, 4.0 / 3, 5.0 / 3, 2, 5.0 / 3, 2, 7.0 / 3, 8.0 / 3,
                           7.0 / 3, 8.0 / 3, 3, 10.0 / 3, 3, 10.0 / 3, 11.0 / 3, 4};
  expect_close(y.data, want, 16, 1e-6);
  free(y.data);
  int64_t id[2] = {2, 2};
  oc_tensor_t xi = mk_data(OC_DTYPE_INT64, 2, id), yi = mk(0, 0, NULL);
  for (int i = 0; i < 4; i++) ((int64_t *)xi.data)[i] = (INT64_C(1) << 60) + i;
  oc_tensor_t *iin[1] = {&xi};
  int64_t ii[6] = {0, 1, 2, 0, 4, 6};
  float isc[2] = {2, 3};
  expect_ok(call1(OC_OP_RESIZE, iin, 1, &yi, ii, 6, isc, 2, 1));
  for (int64_t k = 0; k < 24; k++) {
    int64_t row = k / 6 / 2, col = k % 6 / 3;
    ck_assert_int_eq(((int64_t *)yi.data)[k], (INT64_C(1) << 60) + row * 2 + col);
  }
  free(x.data);
  free(xi.data);
  free(yi.data);
}
END_TEST

START_TEST(resize_errors) {
  int64_t xd[2] = {3, 4};
  oc_tensor_t x = mk(OC_DTYPE_FLOAT32, 2, xd), y = mk(0, 0, NULL);
  oc_tensor_t *in[1] = {&x};
  float sc[2] = {1, 2};
  int64_t good[6] = {1, 0, 0, 0, 3, 8};
  expect_ok(call1(OC_OP_RESIZE, in, 1, &y, good, 6, sc, 2, 0));
  const int64_t hostile[] = {-1, 5, INT64_MAX, INT64_MIN};
  for (int k = 0; k < 4; k++)
    for (size_t h = 0; h < 4; h++) {
      int64_t ints[6];
      memcpy(ints, good, sizeof ints);
      ints[k] = hostile[h];
      expect_fail(call1(OC_OP_RESIZE, in, 1, &y, ints, 6, sc, 2, 0), "resize head int");
    }
  const int64_t dims[] = {-1, (1LL << 40) + 1, INT64_MAX, INT64_MIN};
  for (size_t h = 0; h < 4; h++) {
    int64_t ints[6];
    memcpy(ints, good, sizeof ints);
    ints[5] = dims[h];
    expect_fail(call1(OC_OP_RESIZE, in, 1, &y, ints, 6, sc, 2, 0), "resize out dim");
  }
  int64_t huge[6] = {0, 0, 0, 1, 1LL << 40, 1LL << 40};
  expect_fail(call1(OC_OP_RESIZE, in, 1, &y, huge, 6, NULL, 0, 0), "resize too many bytes");
  const float bad_sc[] = {0.0f, -1.0f, NAN, INFINITY};
  for (int i = 0; i < 4; i++) {
    float s2[2] = {1, bad_sc[i]};
    expect_fail(call1(OC_OP_RESIZE, in, 1, &y, good, 6, s2, 2, 0), "resize scale");
  }
  expect_fail(call1(OC_OP_RESIZE, in, 1, &y, good, 5, sc, 2, 0), "resize ints count");
  expect_fail(call1(OC_OP_RESIZE, in, 1, &y, good, 6, sc, 1, 0), "resize floats count");
  int64_t sz[6] = {1, 0, 0, 1, 3, 8};
  expect_fail(call1(OC_OP_RESIZE, in, 1, &y, sz, 6, sc, 2, 0), "floats with from_sizes");
  int64_t ed[2] = {0, 4};
  oc_tensor_t e = mk(OC_DTYPE_FLOAT32, 2, ed);
  oc_tensor_t *ein[1] = {&e};
  expect_fail(call1(OC_OP_RESIZE, ein, 1, &y, sz, 6, NULL, 0, 0), "grow an empty axis");
  oc_tensor_t xi = mk(OC_DTYPE_INT32, 2, xd);
  oc_tensor_t *iin[1] = {&xi};
  oc_status_t s = call1(OC_OP_RESIZE, iin, 1, &y, good, 6, sc, 2, 0);
  ck_assert(s && oc_status_code(s) == OC_STATUS_UNSUPPORTED);
  oc_status_free(s);
  good[0] = 0; /* nearest on int32 is fine */
  expect_ok(call1(OC_OP_RESIZE, iin, 1, &y, good, 6, sc, 2, 0));
  oc_tensor_t sc0 = mk(OC_DTYPE_FLOAT32, 0, NULL);
  oc_tensor_t *sin[1] = {&sc0};
  expect_fail(call1(OC_OP_RESIZE, sin, 1, &y, good, 4, NULL, 0, 0), "resize scalar");
}
END_TEST

/* === InstanceNormalization, LpNormalization =============================== */

START_TEST(instancenorm_forward) {
  const int64_t shapes[3][4] = {{2, 3, 4, 5}, {1, 2, 7, 1}, {3, 1, 1, 1}};
  for (int sh = 0; sh < 3; sh++) {
    int rank = sh == 1 ? 3 : 4;
    int64_t C = shapes[sh][1];
    oc_tensor_t x = mk_data(OC_DTYPE_FLOAT32, rank, shapes[sh]), y = mk(0, 0, NULL);
    oc_tensor_t s = mk_data(OC_DTYPE_FLOAT32, 1, &C), b = mk_data(OC_DTYPE_FLOAT32, 1, &C);
    fill_rand(&x);
    fill_rand(&s);
    fill_rand(&b);
    oc_tensor_t *in[3] = {&x, &s, &b};
    float eps = 1e-2f;
    expect_ok(call1(OC_OP_INSTANCENORM, in, 3, &y, NULL, 0, &eps, 1, 1));
    int64_t N = x.dims[0], S = 1, n = oc_tensor_numel(&x);
    for (int i = 2; i < rank; i++) S *= x.dims[i];
    double *want = malloc(sizeof(double) * (size_t)n);
    const float *xp = x.data;
    for (int64_t nc = 0; nc < N * C; nc++) {
      double m = 0, v = 0;
      for (int64_t i = 0; i < S; i++) m += xp[nc * S + i] / (double)S;
      for (int64_t i = 0; i < S; i++) v += pow(xp[nc * S + i] - m, 2) / (double)S;
      for (int64_t i = 0; i < S; i++)
        want[nc * S + i] = ((float *)s.data)[nc % C] * (xp[nc * S + i] - m) / sqrt(v + 1e-2) +
                           ((float *)b.data)[nc % C];
    }
    expect_close(y.data, want, n, 1e-5);
    free(want);
    free(x.data);
    free(s.data);
    free(b.data);
    free(y.data);
  }
}
END_TEST

START_TEST(lpnorm_forward) {
  int64_t xd[3] = {2, 3, 4};
  oc_tensor_t x = mk_data(OC_DTYPE_FLOAT32, 3, xd);
  fill_rand(&x);
  for (int j = 0; j < 4; j++) ((float *)x.data)[j] = 0.0f; /* x[0, 0, :] = 0 */
  for (int64_t axis = -3; axis < 3; axis++)
    for (int64_t p = 1; p <= 2; p++) {
      oc_tensor_t y = mk(0, 0, NULL);
      oc_tensor_t *in[1] = {&x};
      int64_t ints[2] = {axis, p};
      expect_ok(call1(OC_OP_LPNORM, in, 1, &y, ints, 2, NULL, 0, 1));
      int ax = (int)(axis < 0 ? axis + 3 : axis);
      double want[24];
      for (int64_t k = 0; k < 24; k++) {
        int64_t c[3];
        unravel(k, 3, xd, c);
        double norm = 0;
        for (int64_t t = 0; t < xd[ax]; t++) {
          int64_t c2[3] = {c[0], c[1], c[2]};
          c2[ax] = t;
          double v = ((float *)x.data)[ravel(3, xd, c2)];
          norm += p == 1 ? fabs(v) : v * v;
        }
        if (p == 2) norm = sqrt(norm);
        want[k] = ((float *)x.data)[k] / norm;
      }
      expect_close(y.data, want, 24, 1e-5);
      if (ax == 2) ck_assert(isnan(((float *)y.data)[0])); /* 0 / 0 */
      free(y.data);
    }
  free(x.data);
}
END_TEST

START_TEST(norm_errors) {
  int64_t xd[4] = {2, 3, 4, 5}, c3 = 3, c4 = 4;
  oc_tensor_t x = mk(OC_DTYPE_FLOAT32, 4, xd), y = mk(0, 0, NULL);
  oc_tensor_t p = mk(OC_DTYPE_FLOAT32, 1, &c3), p4 = mk(OC_DTYPE_FLOAT32, 1, &c4);
  float eps = 1e-5f;
  oc_tensor_t *in[3] = {&x, &p, &p};
  expect_ok(call1(OC_OP_INSTANCENORM, in, 3, &y, NULL, 0, &eps, 1, 0));
  expect_fail(call1(OC_OP_INSTANCENORM, in, 3, &y, NULL, 0, NULL, 0, 0), "no eps");
  int64_t one = 1;
  expect_fail(call1(OC_OP_INSTANCENORM, in, 3, &y, &one, 1, &eps, 1, 0), "ints");
  oc_tensor_t *bad[3] = {&x, &p4, &p};
  expect_fail(call1(OC_OP_INSTANCENORM, bad, 3, &y, NULL, 0, &eps, 1, 0), "scale size");
  oc_tensor_t x1 = mk(OC_DTYPE_FLOAT32, 1, &c3);
  oc_tensor_t *in1[3] = {&x1, &p, &p};
  expect_fail(call1(OC_OP_INSTANCENORM, in1, 3, &y, NULL, 0, &eps, 1, 0), "rank 1");
  oc_tensor_t xi = mk(OC_DTYPE_INT64, 4, xd);
  oc_tensor_t *ini[3] = {&xi, &p, &p};
  expect_fail(call1(OC_OP_INSTANCENORM, ini, 3, &y, NULL, 0, &eps, 1, 0), "int64");

  oc_tensor_t *lin[1] = {&x};
  const int64_t axes[] = {4, -5, INT64_MAX, INT64_MIN};
  for (int i = 0; i < 4; i++) {
    int64_t ints[2] = {axes[i], 2};
    expect_fail(call1(OC_OP_LPNORM, lin, 1, &y, ints, 2, NULL, 0, 0), "lpnorm axis");
  }
  const int64_t ps[] = {0, 3, -1, INT64_MAX};
  for (int i = 0; i < 4; i++) {
    int64_t ints[2] = {-1, ps[i]};
    expect_fail(call1(OC_OP_LPNORM, lin, 1, &y, ints, 2, NULL, 0, 0), "lpnorm p");
  }
  int64_t ok2[2] = {-1, 2};
  expect_fail(call1(OC_OP_LPNORM, lin, 1, &y, ok2, 1, NULL, 0, 0), "lpnorm 1 int");
  oc_tensor_t s0 = mk(OC_DTYPE_FLOAT32, 0, NULL);
  oc_tensor_t *sin[1] = {&s0};
  expect_fail(call1(OC_OP_LPNORM, sin, 1, &y, ok2, 2, NULL, 0, 0), "lpnorm scalar");
}
END_TEST

/* === LpPool ================================================================ */

START_TEST(lppool_forward) {
  rng_state = 31337;
  for (int iter = 0; iter < 120; iter++) {
    int n = (int)irand(1, 3);
    int64_t xd[5] = {irand(1, 2), irand(1, 3)}, ints[5 * 3 + 1], od[5];
    for (int a = 0; a < n; a++) xd[2 + a] = irand(1, 6);
    int ok = 1;
    for (int a = 0; a < n; a++) {
      ints[a] = irand(1, 3);             /* kernel */
      ints[n + a] = irand(1, 2);         /* stride */
      ints[2 * n + a] = irand(0, 1);     /* begin */
      ints[3 * n + a] = irand(0, 1);     /* end */
      ints[4 * n + a] = irand(1, 2);     /* dilation */
      int64_t span = (ints[a] - 1) * ints[4 * n + a] + 1;
      int64_t padded = xd[2 + a] + ints[2 * n + a] + ints[3 * n + a];
      if (padded < span) ok = 0;
      else od[2 + a] = (padded - span) / ints[n + a] + 1;
    }
    ints[5 * n] = 0;
    od[0] = xd[0];
    od[1] = xd[1];
    float p = (float)irand(1, 3);
    oc_tensor_t x = mk_data(OC_DTYPE_FLOAT32, 2 + n, xd), y = mk(0, 0, NULL);
    fill_rand(&x);
    oc_tensor_t *in[1] = {&x};
    oc_status_t s = call1(OC_OP_LPPOOL, in, 1, &y, ints, 5 * n + 1, &p, 1, ok);
    if (!ok) {
      expect_fail(s, "window larger than the input");
      free(x.data);
      continue;
    }
    expect_ok(s);
    expect_dims(&y, 2 + n, od);
    int64_t m = oc_tensor_numel(&y), sp_in = 1;
    for (int a = 0; a < n; a++) sp_in *= xd[2 + a];
    for (int64_t k = 0; k < m; k++) {
      int64_t oc[5];
      unravel(k, 2 + n, od, oc);
      double sum = 0;
      int64_t kv = 1;
      for (int a = 0; a < n; a++) kv *= ints[a];
      for (int64_t t = 0; t < kv; t++) {
        int64_t tc[3], ic[5] = {oc[0], oc[1]};
        unravel(t, n, ints, tc);
        int inside = 1;
        for (int a = 0; a < n; a++) {
          ic[2 + a] = oc[2 + a] * ints[n + a] - ints[2 * n + a] + tc[a] * ints[4 * n + a];
          if (ic[2 + a] < 0 || ic[2 + a] >= xd[2 + a]) inside = 0;
        }
        if (inside) sum += pow(fabs(((float *)x.data)[ravel(2 + n, xd, ic)]), p);
      }
      double want = pow(sum, 1.0 / p), got = ((float *)y.data)[k];
      ck_assert_msg(fabs(got - want) <= 1e-5 * (1 + want), "iter %d: got %g want %g", iter, got,
                    want);
    }
    (void)sp_in;
    free(x.data);
    free(y.data);
  }
}
END_TEST

START_TEST(lppool_errors) {
  int64_t xd[4] = {1, 2, 5, 5};
  oc_tensor_t x = mk(OC_DTYPE_FLOAT32, 4, xd), y = mk(0, 0, NULL);
  oc_tensor_t *in[1] = {&x};
  int64_t ints[11] = {2, 2, 1, 1, 0, 0, 0, 0, 1, 1, 0};
  float p = 2;
  expect_ok(call1(OC_OP_LPPOOL, in, 1, &y, ints, 11, &p, 1, 0));
  const float bad_p[] = {0.0f, -1.0f, NAN, INFINITY};
  for (int i = 0; i < 4; i++)
    expect_fail(call1(OC_OP_LPPOOL, in, 1, &y, ints, 11, &bad_p[i], 1, 0), "p");
  expect_fail(call1(OC_OP_LPPOOL, in, 1, &y, ints, 11, NULL, 0, 0), "no p");
  expect_fail(call1(OC_OP_LPPOOL, in, 1, &y, ints, 12, &p, 1, 0), "12 ints");
  const int64_t hostile[] = {0, -1, INT64_MAX, INT64_MIN, 1LL << 41};
  for (int k = 0; k < 10; k++)
    for (size_t h = 0; h < 5; h++) {
      int64_t b[11];
      memcpy(b, ints, sizeof b);
      b[k] = hostile[h];
      if ((k >= 4 && k < 8) && hostile[h] == 0) continue; /* a zero pad is valid */
      expect_fail(call1(OC_OP_LPPOOL, in, 1, &y, b, 11, &p, 1, 0), "hostile window");
    }
  oc_tensor_t xi = mk(OC_DTYPE_UINT8, 4, xd);
  oc_tensor_t *iin[1] = {&xi};
  expect_fail(call1(OC_OP_LPPOOL, iin, 1, &y, ints, 11, &p, 1, 0), "uint8");
}
END_TEST

/* === ConvTranspose ======================================================== */

typedef struct ct_case_s {
  int n;
  int64_t N, C, M, G, in[3], k[3], s[3], pb[3], pe[3], d[3];
  int bias;
} ct_case_t;

/* Scatter reference: every x[n, c, i] * w[c, m, t] lands on
 * y[n, g*Mg + m, i*s - pb + t*d] when that is inside. */
static double *ref_convtranspose(const ct_case_t *k, const float *x, const float *w,
                                 const float *b, int64_t *od, int64_t *numel) {
  int n = k->n;
  int64_t Cg = k->C / k->G, Mg = k->M / k->G, P = 1, Pin = 1, KV = 1;
  for (int a = 0; a < n; a++) {
    od[a] = k->s[a] * (k->in[a] - 1) + (k->k[a] - 1) * k->d[a] + 1 - k->pb[a] - k->pe[a];
    P *= od[a];
    Pin *= k->in[a];
    KV *= k->k[a];
  }
  *numel = k->N * k->M * P;
  double *y = calloc((size_t)*numel + 1, sizeof(double));
  for (int64_t nn = 0; nn < k->N; nn++)
    for (int64_t m = 0; m < k->M; m++)
      for (int64_t q = 0; q < P; q++) y[(nn * k->M + m) * P + q] = b ? b[m] : 0.0;
  for (int64_t nn = 0; nn < k->N; nn++)
    for (int64_t c = 0; c < k->C; c++) {
      int64_t g = c / Cg;
      for (int64_t i = 0; i < Pin; i++) {
        int64_t ic[3];
        unravel(i, n, k->in, ic);
        double xv = x[(nn * k->C + c) * Pin + i];
        for (int64_t mm = 0; mm < Mg; mm++)
          for (int64_t t = 0; t < KV; t++) {
            int64_t tc[3], oc[3], inside = 1;
            unravel(t, n, k->k, tc);
            for (int a = 0; a < n; a++) {
              oc[a] = ic[a] * k->s[a] - k->pb[a] + tc[a] * k->d[a];
              if (oc[a] < 0 || oc[a] >= od[a]) inside = 0;
            }
            if (!inside) continue;
            int64_t m = g * Mg + mm;
            y[(nn * k->M + m) * P + ravel(n, od, oc)] += xv * w[(c * Mg + mm) * KV + t];
          }
      }
    }
  return y;
}

static void run_ct_case(const ct_case_t *k) {
  int n = k->n;
  int64_t xd[5] = {k->N, k->C}, wd[5] = {k->C, k->M / k->G}, bd = k->M;
  for (int a = 0; a < n; a++) {
    xd[2 + a] = k->in[a];
    wd[2 + a] = k->k[a];
  }
  oc_tensor_t x = mk_data(OC_DTYPE_FLOAT32, 2 + n, xd), w = mk_data(OC_DTYPE_FLOAT32, 2 + n, wd);
  oc_tensor_t b = mk_data(OC_DTYPE_FLOAT32, 1, &bd), y = mk(0, 0, NULL);
  fill_rand(&x);
  fill_rand(&w);
  fill_rand(&b);
  int64_t ints[13];
  ints[0] = k->G;
  for (int a = 0; a < n; a++) {
    ints[1 + a] = k->s[a];
    ints[1 + n + a] = k->pb[a];
    ints[1 + 2 * n + a] = k->pe[a];
    ints[1 + 3 * n + a] = k->d[a];
  }
  oc_tensor_t *in[3] = {&x, &w, &b};
  expect_ok(call1(OC_OP_CONVTRANSPOSE, in, k->bias ? 3 : 2, &y, ints, 1 + 4 * n, NULL, 0, 1));
  int64_t od[3], numel;
  double *want = ref_convtranspose(k, x.data, w.data, k->bias ? b.data : NULL, od, &numel);
  int64_t yd[5] = {k->N, k->M};
  for (int a = 0; a < n; a++) yd[2 + a] = od[a];
  expect_dims(&y, 2 + n, yd);
  expect_close(y.data, want, numel, 1e-5);
  free(want);
  free(x.data);
  free(w.data);
  free(b.data);
  free(y.data);
}

START_TEST(convtranspose_forward) {
  /* ONNX's test_convtranspose: all-ones 3x3 kernel over 0..8 */
  const ct_case_t fixed[] = {
      {2, 1, 1, 2, 1, {3, 3}, {3, 3}, {1, 1}, {0, 0}, {0, 0}, {1, 1}, 0},
      {2, 1, 1, 2, 1, {3, 3}, {3, 3}, {3, 2}, {1, 2}, {1, 2}, {1, 1}, 1},
      {2, 1, 1, 2, 1, {3, 3}, {3, 3}, {3, 2}, {0, 0}, {-1, -1}, {1, 1}, 0}, /* output_padding */
      {1, 2, 4, 6, 2, {5}, {3}, {2}, {1}, {0}, {2}, 1},
      {3, 1, 2, 3, 1, {2, 3, 2}, {2, 2, 3}, {2, 1, 2}, {0, 1, 0}, {1, 0, -2}, {1, 2, 1}, 1},
      {2, 2, 6, 3, 3, {4, 3}, {1, 2}, {1, 3}, {0, -2}, {0, 3}, {1, 1}, 0},
  };
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) run_ct_case(&fixed[i]);
  rng_state = 2024;
  for (int iter = 0; iter < 150; iter++) {
    ct_case_t k = {.n = (int)irand(1, 3), .N = irand(1, 2), .G = irand(1, 2), .bias = (int)irand(0, 1)};
    k.C = k.G * irand(1, 2);
    k.M = k.G * irand(1, 3);
    int ok = 1;
    for (int a = 0; a < k.n; a++) {
      k.in[a] = irand(1, 4);
      k.k[a] = irand(1, 3);
      k.s[a] = irand(1, 3);
      k.d[a] = irand(1, 2);
      k.pb[a] = irand(-1, 2);
      k.pe[a] = irand(-2, 2);
      int64_t o = k.s[a] * (k.in[a] - 1) + (k.k[a] - 1) * k.d[a] + 1 - k.pb[a] - k.pe[a];
      if (o < 1) ok = 0;
    }
    if (ok) run_ct_case(&k);
  }
}
END_TEST

START_TEST(convtranspose_errors) {
  int64_t xd[4] = {1, 2, 3, 3}, wd[4] = {2, 2, 3, 3}, bd = 2;
  oc_tensor_t x = mk(OC_DTYPE_FLOAT32, 4, xd), w = mk(OC_DTYPE_FLOAT32, 4, wd), y = mk(0, 0, NULL);
  oc_tensor_t b = mk(OC_DTYPE_FLOAT32, 1, &bd);
  oc_tensor_t *in[3] = {&x, &w, &b};
  int64_t good[9] = {1, 2, 2, 1, 1, 1, 1, 1, 1};
  size_t ws;
  oc_tensor_t *outs[1] = {&y};
  expect_ok(call_n(OC_OP_CONVTRANSPOSE, in, 3, outs, 1, good, 9, NULL, 0, 0, &ws));
  int64_t want[4] = {1, 2, 5, 5};
  expect_dims(&y, 4, want);
  ck_assert_uint_eq(ws, (size_t)(2 * 9) * 9 * sizeof(float));
  const int64_t hostile[] = {0, -1, INT64_MAX, INT64_MIN, 1LL << 41, -(1LL << 41)};
  for (int k = 0; k < 9; k++)
    for (size_t h = 0; h < 6; h++) {
      int64_t bad[9];
      memcpy(bad, good, sizeof bad);
      bad[k] = hostile[h];
      if (k >= 3 && k < 7 && (hostile[h] == 0 || hostile[h] == -1)) continue; /* valid pads */
      expect_fail(call1(OC_OP_CONVTRANSPOSE, in, 3, &y, bad, 9, NULL, 0, 0), "hostile int");
    }
  int64_t crop[9] = {1, 1, 1, 3, 3, 3, 3, 1, 1};
  expect_fail(call1(OC_OP_CONVTRANSPOSE, in, 3, &y, crop, 9, NULL, 0, 0), "pads eat the output");
  int64_t g2[9] = {2, 1, 1, 0, 0, 0, 0, 1, 1};
  expect_ok(call1(OC_OP_CONVTRANSPOSE, in, 2, &y, g2, 9, NULL, 0, 0));
  ck_assert_int_eq(y.dims[1], 4); /* M = W.dims[1] * group */
  expect_fail(call1(OC_OP_CONVTRANSPOSE, in, 3, &y, g2, 9, NULL, 0, 0), "bias of 2 for M = 4");
  int64_t g3[9] = {3, 1, 1, 0, 0, 0, 0, 1, 1};
  expect_fail(call1(OC_OP_CONVTRANSPOSE, in, 2, &y, g3, 9, NULL, 0, 0), "group 3 of 2 channels");
  expect_fail(call1(OC_OP_CONVTRANSPOSE, in, 3, &y, good, 8, NULL, 0, 0), "8 ints");
  float f = 0;
  expect_fail(call1(OC_OP_CONVTRANSPOSE, in, 3, &y, good, 9, &f, 1, 0), "floats");
  int64_t wd3[4] = {3, 2, 3, 3};
  oc_tensor_t w3 = mk(OC_DTYPE_FLOAT32, 4, wd3);
  oc_tensor_t *in3[2] = {&x, &w3};
  expect_fail(call1(OC_OP_CONVTRANSPOSE, in3, 2, &y, good, 9, NULL, 0, 0), "W dim 0 != C");
  int64_t x0d[4] = {1, 2, 0, 3};
  oc_tensor_t x0 = mk(OC_DTYPE_FLOAT32, 4, x0d);
  oc_tensor_t *in0[2] = {&x0, &w};
  expect_fail(call1(OC_OP_CONVTRANSPOSE, in0, 2, &y, good, 9, NULL, 0, 0), "empty spatial axis");
  /* empty batch: fine, and run touches nothing */
  int64_t xnd[4] = {0, 2, 3, 3};
  oc_tensor_t xn = mk(OC_DTYPE_FLOAT32, 4, xnd);
  oc_tensor_t *inn[2] = {&xn, &w};
  expect_ok(call1(OC_OP_CONVTRANSPOSE, inn, 2, &y, good, 9, NULL, 0, 1));
  free(y.data);
}
END_TEST

/* === Dropout ============================================================== */

START_TEST(dropout_forward) {
  int64_t xd[2] = {50, 80}, two = 2;
  oc_tensor_t x = mk_data(OC_DTYPE_FLOAT32, 2, xd);
  fill_rand(&x);
  ((float *)x.data)[0] = INFINITY;
  oc_tensor_t st = mk_data(OC_DTYPE_INT64, 1, &two);
  ck_assert_uint_eq(oc_op_get(OC_OP_DROPOUT)->mutates, 2u);
  const float ratios[] = {0.0f, 0.1f, 0.5f, 0.75f, 1.0f};
  for (int ri = 0; ri < 5; ri++) {
    float ratio = ratios[ri];
    int64_t *s = st.data;
    s[0] = 42;
    s[1] = 7;
    oc_tensor_t y1 = mk(0, 0, NULL), m1 = mk(0, 0, NULL), y2 = mk(0, 0, NULL), y3 = mk(0, 0, NULL);
    oc_tensor_t m3 = mk(0, 0, NULL);
    oc_tensor_t *in[2] = {&x, &st};
    oc_tensor_t *o1[2] = {&y1, &m1}, *o2[1] = {&y2}, *o3[2] = {&y3, &m3};
    expect_ok(call_n(OC_OP_DROPOUT, in, 2, o1, 2, NULL, 0, &ratio, 1, 1, NULL));
    ck_assert_int_eq(s[1], 8); /* one step per run */
    ck_assert_int_eq(m1.dtype, OC_DTYPE_BOOL);
    expect_dims(&m1, 2, xd);
    s[1] = 7; /* same key: same mask, with or without the mask output */
    expect_ok(call_n(OC_OP_DROPOUT, in, 2, o2, 1, NULL, 0, &ratio, 1, 1, NULL));
    ck_assert(memcmp(y1.data, y2.data, 4000 * sizeof(float)) == 0);
    expect_ok(call_n(OC_OP_DROPOUT, in, 2, o3, 2, NULL, 0, &ratio, 1, 1, NULL)); /* counter 8 */
    const float *xp = x.data, *yp = y1.data;
    const uint8_t *mp = m1.data, *mp3 = m3.data;
    int64_t kept = 0, same = 0;
    for (int64_t i = 0; i < 4000; i++) {
      ck_assert(mp[i] == 0 || mp[i] == 1);
      if (mp[i]) {
        double want = xp[i] / (1.0 - ratio);
        ck_assert_msg(yp[i] == (float)want || fabs(yp[i] - want) <= 1e-6 * fabs(want),
                      "kept element %lld: %g vs %g", (long long)i, yp[i], want);
        kept++;
      } else {
        ck_assert(yp[i] == 0.0f);
      }
      same += mp[i] == mp3[i];
    }
    double p = 1.0 - ratio, sd = sqrt(4000 * p * (1 - p));
    ck_assert_msg(fabs((double)kept - 4000 * p) <= 5 * sd + 1e-9, "ratio %g: kept %lld", ratio,
                  (long long)kept);
    if (ratio > 0 && ratio < 1) ck_assert_msg(same < 4000, "the next run drew the same mask");
    free(y1.data);
    free(m1.data);
    free(y2.data);
    free(y3.data);
    free(m3.data);
  }
  /* another seed, same counter: a different mask */
  int64_t *s = st.data;
  float half = 0.5f;
  oc_tensor_t ya = mk(0, 0, NULL), yb = mk(0, 0, NULL);
  oc_tensor_t *in[2] = {&x, &st};
  s[0] = 1;
  s[1] = 0;
  expect_ok(call1(OC_OP_DROPOUT, in, 2, &ya, NULL, 0, &half, 1, 1));
  s[0] = 2;
  s[1] = 0;
  expect_ok(call1(OC_OP_DROPOUT, in, 2, &yb, NULL, 0, &half, 1, 1));
  ck_assert(memcmp(ya.data, yb.data, 4000 * sizeof(float)) != 0);
  /* the counter wraps instead of overflowing */
  s[1] = INT64_MAX;
  free(ya.data);
  expect_ok(call1(OC_OP_DROPOUT, in, 2, &ya, NULL, 0, &half, 1, 1));
  ck_assert_int_eq(s[1], INT64_MIN);
  free(ya.data);
  free(yb.data);
  free(x.data);
  free(st.data);
}
END_TEST

START_TEST(dropout_errors) {
  int64_t xd[2] = {3, 4}, two = 2, three = 3;
  oc_tensor_t x = mk(OC_DTYPE_FLOAT32, 2, xd), st = mk(OC_DTYPE_INT64, 1, &two), y = mk(0, 0, NULL);
  oc_tensor_t *in[2] = {&x, &st};
  float r = 0.5f;
  expect_ok(call1(OC_OP_DROPOUT, in, 2, &y, NULL, 0, &r, 1, 0));
  const float bad[] = {-0.1f, 1.5f, NAN, INFINITY, -INFINITY};
  for (int i = 0; i < 5; i++) expect_fail(call1(OC_OP_DROPOUT, in, 2, &y, NULL, 0, &bad[i], 1, 0), "ratio");
  expect_fail(call1(OC_OP_DROPOUT, in, 2, &y, NULL, 0, NULL, 0, 0), "no ratio");
  int64_t one = 1;
  expect_fail(call1(OC_OP_DROPOUT, in, 2, &y, &one, 1, &r, 1, 0), "ints");
  oc_tensor_t s3 = mk(OC_DTYPE_INT64, 1, &three), s32 = mk(OC_DTYPE_INT32, 1, &two);
  oc_tensor_t s0 = mk(OC_DTYPE_INT64, 0, NULL);
  oc_tensor_t *b1[2] = {&x, &s3}, *b2[2] = {&x, &s32}, *b3[2] = {&x, &s0};
  expect_fail(call1(OC_OP_DROPOUT, b1, 2, &y, NULL, 0, &r, 1, 0), "state of 3");
  expect_fail(call1(OC_OP_DROPOUT, b2, 2, &y, NULL, 0, &r, 1, 0), "int32 state");
  expect_fail(call1(OC_OP_DROPOUT, b3, 2, &y, NULL, 0, &r, 1, 0), "scalar state");
  expect_fail(call1(OC_OP_DROPOUT, in, 1, &y, NULL, 0, &r, 1, 0), "no state");
  oc_tensor_t xi = mk(OC_DTYPE_INT64, 2, xd);
  oc_tensor_t *bi[2] = {&xi, &st};
  expect_fail(call1(OC_OP_DROPOUT, bi, 2, &y, NULL, 0, &r, 1, 0), "int64 data");
}
END_TEST

/* === fuzz ================================================================= */

/* Mostly a value in [lo, hi], sometimes a hostile one. */
static int64_t fz(int64_t lo, int64_t hi) {
  static const int64_t hostile[] = {-1, 0, -3, 7, 1LL << 40, INT64_MAX, INT64_MIN};
  if (urand() % 12 == 0) return hostile[urand() % 7];
  return irand(lo, hi);
}

/* Random small shapes and attributes (many invalid): whenever infer accepts,
 * run must stay inside the tensors and the workspace it asked for (ASan). */
START_TEST(fuzz_infer_run) {
  rng_state = 9001;
  int accepted[6] = {0};
  for (int iter = 0; iter < 12000; iter++) {
    int op = iter % 6;
    int r = (int)irand(3, 5);
    int64_t xd[5];
    for (int a = 0; a < 5; a++) xd[a] = irand(0, 4);
    if (op == 2 && urand() % 2) r = 4;
    int n = r - 2;
    int64_t ints[32];
    float fl[8];
    for (int i = 0; i < 8; i++) fl[i] = (float)irand(-1, 6) * 0.5f;
    oc_tensor_t x = mk_data(OC_DTYPE_FLOAT32, r, xd), y = mk(0, 0, NULL);
    fill_rand(&x);
    oc_tensor_t *in[3] = {&x, NULL, NULL};
    oc_tensor_t w = mk(0, 0, NULL);
    int opcode = 0, n_in = 1, n_ints = 0, n_fl = 0;
    switch (op) {
      case 0:
        opcode = OC_OP_PAD;
        n_ints = 1 + 2 * r;
        ints[0] = fz(0, 2);
        for (int i = 1; i < n_ints; i++) ints[i] = fz(-3, 4);
        break;
      case 1:
        opcode = OC_OP_RESIZE;
        n_ints = 4 + r;
        ints[0] = fz(0, 1);
        ints[1] = fz(0, 4);
        ints[2] = fz(0, 4);
        ints[3] = fz(0, 1);
        for (int i = 0; i < r; i++) ints[4 + i] = fz(0, 7);
        n_fl = ints[3] == 1 ? 0 : r;
        break;
      case 2:
        opcode = iter % 12 < 6 ? OC_OP_DEPTH_TO_SPACE : OC_OP_SPACE_TO_DEPTH;
        n_ints = opcode == OC_OP_DEPTH_TO_SPACE ? 2 : 1;
        ints[0] = fz(1, 3);
        ints[1] = fz(0, 1);
        break;
      case 3:
        opcode = OC_OP_LPPOOL;
        n_ints = 5 * n + 1;
        for (int a = 0; a < n; a++) {
          ints[a] = fz(1, 3);
          ints[n + a] = fz(1, 3);
          ints[2 * n + a] = fz(0, 2);
          ints[3 * n + a] = fz(0, 2);
          ints[4 * n + a] = fz(1, 2);
        }
        ints[5 * n] = fz(0, 1);
        n_fl = 1;
        break;
      case 4: {
        opcode = OC_OP_CONVTRANSPOSE;
        n_ints = 1 + 4 * n;
        int64_t wd[5] = {xd[1], irand(0, 2)};
        for (int a = 2; a < r; a++) wd[a] = irand(1, 3);
        w = mk_data(OC_DTYPE_FLOAT32, r, wd);
        fill_rand(&w);
        in[1] = &w;
        n_in = 2;
        ints[0] = fz(1, 2);
        for (int a = 0; a < n; a++) {
          ints[1 + a] = fz(1, 3);
          ints[1 + n + a] = fz(-2, 2);
          ints[1 + 2 * n + a] = fz(-2, 2);
          ints[1 + 3 * n + a] = fz(1, 3);
        }
        break;
      }
      default:
        opcode = OC_OP_LPNORM;
        n_ints = 2;
        ints[0] = fz(-r, r - 1);
        ints[1] = fz(1, 2);
        break;
    }
    oc_tensor_t *outs[1] = {&y};
    size_t ws = 0;
    oc_status_t s = call_n(opcode, in, n_in, outs, 1, ints, n_ints, fl, n_fl, 0, &ws);
    if (s) {
      oc_status_free(s);
    } else if (oc_tensor_bytes(&y) > (1u << 24) || ws > (1u << 24)) {
      /* valid but huge (a 2^40 pad): shape rule checked, too big to run here */
    } else {
      accepted[op]++;
      expect_ok(call1(opcode, in, n_in, &y, ints, n_ints, fl, n_fl, 1));
      free(y.data);
    }
    free(x.data);
    free(w.data);
  }
  for (int i = 0; i < 6; i++) ck_assert_msg(accepted[i] > 20, "op %d accepted only %d", i, accepted[i]);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("ops_structure");
  TCase *shape = tcase_create("shape");
  tcase_add_test(shape, pad_shape);
  tcase_add_test(shape, bn_training_values);
  tcase_add_test(shape, empty_tensors);
  suite_add_tcase(s, shape);
  TCase *fwd = tcase_create("forward");
  tcase_add_test(fwd, bn_training_forward);
  tcase_add_test(fwd, pad_forward);
  tcase_add_test(fwd, space_depth_forward);
  tcase_add_test(fwd, resize_forward);
  tcase_add_test(fwd, resize_values);
  tcase_add_test(fwd, instancenorm_forward);
  tcase_add_test(fwd, lpnorm_forward);
  tcase_add_test(fwd, lppool_forward);
  tcase_add_test(fwd, convtranspose_forward);
  tcase_add_test(fwd, dropout_forward);
  suite_add_tcase(s, fwd);
  TCase *err = tcase_create("errors");
  tcase_add_test(err, bn_training_errors);
  tcase_add_test(err, pad_errors);
  tcase_add_test(err, space_depth_errors);
  tcase_add_test(err, resize_errors);
  tcase_add_test(err, norm_errors);
  tcase_add_test(err, lppool_errors);
  tcase_add_test(err, convtranspose_errors);
  tcase_add_test(err, dropout_errors);
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
