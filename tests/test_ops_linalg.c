/*
 * The linear-algebra / normalization / reduction runtime ops (MatMul, Gemm,
 * Softmax, LogSoftmax, LayerNormalization, Gather, Reduce*), called directly
 * through oc_op_infer and the op's run. Results are compared with naive
 * reference implementations in double written here, or with known values
 * from the ONNX node tests.
 *
 *   shape:  output types from infer
 *   forward: values against the references
 *   errors: hostile ints/floats and dims rejected by infer; run-time index
 *           errors
 *   lower:  the compiler side (compiler/ops/) on one-node graphs: opset
 *           differences (Softmax < 13, Reduce* axes as input from 13 / 18)
 *           and refusals; the ONNX node tests cover the rest end to end
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lower.h"
#include "oc_ops.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

static uint64_t g_rng = 88172645463325252ull;
static float frand(void) { /* uniform in [-2, 2) */
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return (float)((double)(g_rng >> 11) / 9007199254740992.0 * 4.0 - 2.0);
}

static oc_tensor_t tensor(int dtype, int rank, const int64_t *dims, void *data) {
  oc_tensor_t t;
  memset(&t, 0, sizeof t);
  t.dtype = dtype;
  t.rank = rank;
  for (int i = 0; i < rank; i++) t.dims[i] = dims[i];
  t.data = data;
  return t;
}

static float *rand_floats(int64_t n) {
  float *p = malloc(sizeof(float) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) p[i] = frand();
  return p;
}

/* Runs infer only; outputs get types, no data. */
static oc_status_t infer(int op, oc_tensor_t **in, int n_in, oc_tensor_t **out, int n_out,
                         const int64_t *ints, int n_ints, const float *floats, int n_floats,
                         size_t *ws) {
  oc_op_call_t c = {.ints = ints, .n_ints = n_ints, .floats = floats, .n_floats = n_floats,
                    .n_in = n_in, .in = in, .n_out = n_out, .out = out};
  size_t w = 0;
  oc_status_t s = oc_op_infer(op, &c, &w);
  if (ws) *ws = w;
  return s;
}

/* Infers, allocates the outputs (malloc; caller frees out[i]->data) and the
 * workspace, and runs. */
static oc_status_t run(int op, oc_tensor_t **in, int n_in, oc_tensor_t **out, int n_out,
                       const int64_t *ints, int n_ints, const float *floats, int n_floats) {
  size_t ws = 0;
  for (int i = 0; i < n_out; i++) out[i]->data = NULL;
  oc_status_t s = infer(op, in, n_in, out, n_out, ints, n_ints, floats, n_floats, &ws);
  if (s) return s;
  for (int i = 0; i < n_out; i++) {
    size_t b = oc_tensor_bytes(out[i]);
    out[i]->data = malloc(b ? b : 1);
    memset(out[i]->data, 0xA5, b); /* poison */
  }
  void *w = ws ? malloc(ws) : NULL;
  oc_op_call_t c = {.ints = ints, .n_ints = n_ints, .floats = floats, .n_floats = n_floats,
                    .n_in = n_in, .in = in, .n_out = n_out, .out = out,
                    .workspace = w, .workspace_bytes = ws};
  s = oc_op_get(op)->run(&c);
  free(w);
  return s;
}

#define ASSERT_OK(expr)                                                            \
  do {                                                                             \
    oc_status_t s_ = (expr);                                                       \
    ck_assert_msg(s_ == OC_OK, "%s: %s", #expr, oc_status_message(s_));            \
  } while (0)

/* Expects failure with |code|, and |needle| in the message when not NULL. */
static void expect_error(oc_status_t s, oc_status_code_t code, const char *needle,
                         const char *what) {
  ck_assert_msg(s != OC_OK, "%s: expected an error", what);
  ck_assert_msg(oc_status_code(s) == code, "%s: code %s, expected %s (%s)", what,
                oc_status_code_name(oc_status_code(s)), oc_status_code_name(code),
                oc_status_message(s));
  if (needle)
    ck_assert_msg(strstr(oc_status_message(s), needle) != NULL, "%s: message '%s' lacks '%s'",
                  what, oc_status_message(s), needle);
  oc_status_free(s);
}

static void expect_dims(const oc_tensor_t *t, int rank, const int64_t *dims, const char *what) {
  ck_assert_msg(t->rank == rank, "%s: rank %d, expected %d", what, t->rank, rank);
  for (int i = 0; i < rank; i++)
    ck_assert_msg(t->dims[i] == dims[i], "%s: dim %d is %lld, expected %lld", what, i,
                  (long long)t->dims[i], (long long)dims[i]);
}

static void expect_close(const float *got, const double *want, int64_t n, double rtol,
                         const char *what) {
  for (int64_t i = 0; i < n; i++) {
    double g = got[i], w = want[i];
    if (isnan(w)) {
      ck_assert_msg(isnan(g), "%s[%lld]: %g, expected NaN", what, (long long)i, g);
      continue;
    }
    if (isinf(w)) {
      ck_assert_msg(g == w, "%s[%lld]: %g, expected %g", what, (long long)i, g, w);
      continue;
    }
    ck_assert_msg(fabs(g - w) <= rtol * fabs(w) + 1e-6, "%s[%lld]: %.9g, expected %.9g", what,
                  (long long)i, g, w);
  }
}

/* Row-major strides of dims. */
static void strides_of(int rank, const int64_t *dims, int64_t *st) {
  int64_t s = 1;
  for (int i = rank - 1; i >= 0; i--) {
    st[i] = s;
    s *= dims[i];
  }
}

static int64_t numel(int rank, const int64_t *dims) {
  int64_t n = 1;
  for (int i = 0; i < rank; i++) n *= dims[i];
  return n;
}

/* ------------------------------------------------------------------------ */
/* References                                                               */
/* ------------------------------------------------------------------------ */

/* numpy matmul in double; a and b as given, y's shape from the call. */
static void ref_matmul(double *y, const oc_tensor_t *a, const oc_tensor_t *b,
                       const oc_tensor_t *yt) {
  int ra = a->rank, rb = b->rank;
  int64_t m = ra >= 2 ? a->dims[ra - 2] : 1, k = a->dims[ra - 1];
  int64_t n = rb >= 2 ? b->dims[rb - 1] : 1;
  int bra = ra > 2 ? ra - 2 : 0, brb = rb > 2 ? rb - 2 : 0;
  int br = bra > brb ? bra : brb;
  int64_t bd[OC_MAX_RANK];
  for (int i = 0; i < br; i++) {
    int ia = i - (br - bra), ib = i - (br - brb);
    int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
    bd[i] = da > db ? da : db;
  }
  int64_t batch = numel(br, bd);
  ck_assert_int_eq(numel(yt->rank, yt->dims), batch * m * n);
  const float *pa = a->data, *pb = b->data;
  for (int64_t t = 0; t < batch; t++) {
    int64_t idx[OC_MAX_RANK], r = t;
    for (int i = br - 1; i >= 0; i--) {
      idx[i] = r % bd[i];
      r /= bd[i];
    }
    int64_t oa = 0, ob = 0;
    for (int i = 0; i < bra; i++) {
      int j = i + (br - bra);
      oa = oa * a->dims[i] + (a->dims[i] == 1 ? 0 : idx[j]);
    }
    for (int i = 0; i < brb; i++) {
      int j = i + (br - brb);
      ob = ob * b->dims[i] + (b->dims[i] == 1 ? 0 : idx[j]);
    }
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) {
        double acc = 0;
        for (int64_t q = 0; q < k; q++)
          acc += (double)pa[oa * m * k + i * k + q] * pb[ob * k * n + q * n + j];
        y[t * m * n + i * n + j] = acc;
      }
  }
}

/* Naive reduction of x over mask; y in x's kept order. */
typedef enum { R_SUM, R_MEAN, R_MAX, R_MIN, R_PROD, R_L1, R_L2, R_SSQ, R_LOGSUM, R_LSE } rk_t;

static double ref_reduce_one(const float *x, int rank, const int64_t *dims, unsigned mask,
                             int64_t out_flat, rk_t k) {
  /* Fix the kept coordinates from out_flat, walk every reduced combination. */
  int64_t kept_dims[OC_MAX_RANK], kept_idx[OC_MAX_RANK], st[OC_MAX_RANK];
  int nk = 0;
  for (int i = 0; i < rank; i++)
    if (!(mask >> i & 1)) kept_dims[nk++] = dims[i];
  int64_t r = out_flat;
  for (int i = nk - 1; i >= 0; i--) {
    kept_idx[i] = r % kept_dims[i];
    r /= kept_dims[i];
  }
  strides_of(rank, dims, st);
  int64_t total = numel(rank, dims);
  double acc = k == R_PROD ? 1 : k == R_MAX ? -INFINITY : k == R_MIN ? INFINITY : 0;
  double mx = -INFINITY;
  int64_t count = 0;
  for (int pass = 0; pass < (k == R_LSE ? 2 : 1); pass++)
    for (int64_t f = 0; f < total; f++) {
      int64_t rr = f, idx[OC_MAX_RANK];
      for (int i = rank - 1; i >= 0; i--) {
        idx[i] = rr % dims[i];
        rr /= dims[i];
      }
      int match = 1, q = 0;
      for (int i = 0; i < rank; i++)
        if (!(mask >> i & 1)) match &= idx[i] == kept_idx[q++];
      if (!match) continue;
      double v = x[f];
      if (pass == 0) count++;
      switch (k) {
        case R_SUM: case R_MEAN: case R_LOGSUM: acc += v; break;
        case R_MAX: acc = v > acc || isnan(v) ? v : acc; break;
        case R_MIN: acc = v < acc || isnan(v) ? v : acc; break;
        case R_PROD: acc *= v; break;
        case R_L1: acc += fabs(v); break;
        case R_L2: case R_SSQ: acc += v * v; break;
        case R_LSE:
          if (pass == 0)
            mx = v > mx ? v : mx;
          else
            acc += exp(v - mx);
          break;
      }
    }
  switch (k) {
    case R_MEAN: return acc / (double)count;
    case R_L2: return sqrt(acc);
    case R_LOGSUM: return log(acc);
    case R_LSE: return mx + log(acc);
    default: return acc;
  }
}

/* ------------------------------------------------------------------------ */
/* shape                                                                    */
/* ------------------------------------------------------------------------ */

START_TEST(shape_matmul) {
  struct {
    int ra, rb, ry;
    int64_t a[4], b[4], y[4];
  } cases[] = {
      {3, 2, 3, {2, 3, 4}, {4, 5}, {2, 3, 5}},
      {1, 2, 1, {4}, {4, 5}, {5}},
      {2, 1, 1, {3, 4}, {4}, {3}},
      {1, 1, 0, {4}, {4}, {0}},
      {4, 3, 4, {2, 1, 3, 4}, {5, 4, 6}, {2, 5, 3, 6}},
      {1, 3, 2, {4}, {7, 4, 6}, {7, 6}},
      {3, 1, 2, {7, 3, 4}, {4}, {7, 3}},
      {2, 2, 2, {3, 0}, {0, 5}, {3, 5}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    oc_tensor_t a = tensor(OC_DTYPE_FLOAT32, cases[i].ra, cases[i].a, NULL);
    oc_tensor_t b = tensor(OC_DTYPE_FLOAT32, cases[i].rb, cases[i].b, NULL);
    oc_tensor_t y;
    oc_tensor_t *in[2] = {&a, &b}, *out[1] = {&y};
    ASSERT_OK(infer(OC_OP_MATMUL, in, 2, out, 1, NULL, 0, NULL, 0, NULL));
    ck_assert_int_eq(y.dtype, OC_DTYPE_FLOAT32);
    expect_dims(&y, cases[i].ry, cases[i].y, "matmul");
  }
}
END_TEST

START_TEST(shape_gemm) {
  int64_t ad[2] = {6, 3}, bd[2] = {4, 6}, cd[2] = {3, 1}, yd[2] = {3, 4};
  oc_tensor_t a = tensor(OC_DTYPE_FLOAT32, 2, ad, NULL), b = tensor(OC_DTYPE_FLOAT32, 2, bd, NULL);
  oc_tensor_t cc = tensor(OC_DTYPE_FLOAT32, 2, cd, NULL), y;
  oc_tensor_t *in[3] = {&a, &b, &cc}, *out[1] = {&y};
  int64_t ints[2] = {1, 1};
  float fl[2] = {1, 1};
  ASSERT_OK(infer(OC_OP_GEMM, in, 3, out, 1, ints, 2, fl, 2, NULL));
  expect_dims(&y, 2, yd, "gemm");
  ASSERT_OK(infer(OC_OP_GEMM, in, 2, out, 1, ints, 2, fl, 2, NULL));
  expect_dims(&y, 2, yd, "gemm no C");
  cc.rank = 0;
  ASSERT_OK(infer(OC_OP_GEMM, in, 3, out, 1, ints, 2, fl, 2, NULL));
  cc.rank = 1;
  cc.dims[0] = 4;
  ASSERT_OK(infer(OC_OP_GEMM, in, 3, out, 1, ints, 2, fl, 2, NULL));
}
END_TEST

START_TEST(shape_softmax_layernorm) {
  int64_t xd[3] = {2, 3, 5};
  oc_tensor_t x = tensor(OC_DTYPE_FLOAT32, 3, xd, NULL), y, mean, rstd;
  oc_tensor_t *in[3] = {&x, NULL, NULL}, *out[3] = {&y, &mean, &rstd};
  int64_t ints[2] = {-2, 0};
  ASSERT_OK(infer(OC_OP_SOFTMAX, in, 1, out, 1, ints, 2, NULL, 0, NULL));
  expect_dims(&y, 3, xd, "softmax");
  ASSERT_OK(infer(OC_OP_LOG_SOFTMAX, in, 1, out, 1, ints, 2, NULL, 0, NULL));
  expect_dims(&y, 3, xd, "log_softmax");

  int64_t sd[2] = {3, 5};
  oc_tensor_t sc = tensor(OC_DTYPE_FLOAT32, 2, sd, NULL), bi = tensor(OC_DTYPE_FLOAT32, 1, sd + 1, NULL);
  in[1] = &sc;
  in[2] = &bi;
  int64_t axis[1] = {1};
  float eps[1] = {1e-5f};
  size_t ws = 1;
  ASSERT_OK(infer(OC_OP_LAYERNORM, in, 3, out, 3, axis, 1, eps, 1, &ws));
  int64_t md[3] = {2, 1, 1};
  expect_dims(&y, 3, xd, "layernorm y");
  expect_dims(&mean, 3, md, "layernorm mean");
  expect_dims(&rstd, 3, md, "layernorm rstd");
  ck_assert_uint_eq(ws, 15 * sizeof(float)); /* bias (5) expanded to (3,5) */
}
END_TEST

START_TEST(shape_gather) {
  int64_t xd[4] = {5, 4, 3, 2}, id[2] = {2, 3};
  oc_tensor_t x = tensor(OC_DTYPE_INT64, 4, xd, NULL), idx = tensor(OC_DTYPE_INT32, 2, id, NULL), y;
  oc_tensor_t *in[2] = {&x, &idx}, *out[1] = {&y};
  int64_t axis[1] = {1};
  ASSERT_OK(infer(OC_OP_GATHER, in, 2, out, 1, axis, 1, NULL, 0, NULL));
  int64_t yd[5] = {5, 2, 3, 3, 2};
  expect_dims(&y, 5, yd, "gather");
  ck_assert_int_eq(y.dtype, OC_DTYPE_INT64);
  idx.rank = 0; /* scalar index drops the axis */
  axis[0] = -1;
  ASSERT_OK(infer(OC_OP_GATHER, in, 2, out, 1, axis, 1, NULL, 0, NULL));
  expect_dims(&y, 3, xd, "gather scalar");
}
END_TEST

START_TEST(shape_reduce) {
  int64_t xd[3] = {3, 2, 2};
  oc_tensor_t x = tensor(OC_DTYPE_FLOAT32, 3, xd, NULL), y;
  oc_tensor_t *in[1] = {&x}, *out[1] = {&y};
  int64_t k1[2] = {1, -2}, k0[2] = {0, 1}, all1[1] = {1}, all0[1] = {0};
  int64_t d1[3] = {3, 1, 2}, d0[2] = {3, 2}, da[3] = {1, 1, 1};
  ASSERT_OK(infer(OC_OP_REDUCE_MEAN, in, 1, out, 1, k1, 2, NULL, 0, NULL));
  expect_dims(&y, 3, d1, "keepdims");
  ASSERT_OK(infer(OC_OP_REDUCE_SUM, in, 1, out, 1, k0, 2, NULL, 0, NULL));
  expect_dims(&y, 2, d0, "no keepdims");
  ASSERT_OK(infer(OC_OP_REDUCE_L2, in, 1, out, 1, all1, 1, NULL, 0, NULL));
  expect_dims(&y, 3, da, "all keepdims");
  ASSERT_OK(infer(OC_OP_REDUCE_MAX, in, 1, out, 1, all0, 1, NULL, 0, NULL));
  ck_assert_int_eq(y.rank, 0);
  x.dtype = OC_DTYPE_INT64;
  ASSERT_OK(infer(OC_OP_REDUCE_PROD, in, 1, out, 1, k1, 2, NULL, 0, NULL));
  ck_assert_int_eq(y.dtype, OC_DTYPE_INT64);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* forward                                                                  */
/* ------------------------------------------------------------------------ */

static void check_matmul(int ra, const int64_t *ad, int rb, const int64_t *bd) {
  oc_tensor_t a = tensor(OC_DTYPE_FLOAT32, ra, ad, NULL), b = tensor(OC_DTYPE_FLOAT32, rb, bd, NULL);
  a.data = rand_floats(numel(ra, ad));
  b.data = rand_floats(numel(rb, bd));
  oc_tensor_t y;
  oc_tensor_t *in[2] = {&a, &b}, *out[1] = {&y};
  ASSERT_OK(run(OC_OP_MATMUL, in, 2, out, 1, NULL, 0, NULL, 0));
  int64_t n = oc_tensor_numel(&y);
  double *want = malloc(sizeof(double) * (size_t)(n + 1));
  ref_matmul(want, &a, &b, &y);
  expect_close(y.data, want, n, 1e-5, "matmul");
  free(want);
  free(a.data);
  free(b.data);
  free(y.data);
}

START_TEST(forward_matmul) {
  int64_t a1[3] = {2, 3, 4}, b1[2] = {4, 5};
  check_matmul(3, a1, 2, b1); /* collapsed into one sgemm */
  int64_t a2[4] = {2, 1, 3, 4}, b2[3] = {5, 4, 6};
  check_matmul(4, a2, 3, b2); /* broadcast both ways */
  int64_t a3[1] = {4}, b3[3] = {3, 4, 2};
  check_matmul(1, a3, 3, b3); /* 1-D @ batched */
  int64_t a4[3] = {3, 2, 4}, b4[1] = {4};
  check_matmul(3, a4, 1, b4); /* batched @ 1-D */
  int64_t a5[1] = {7}, b5[1] = {7};
  check_matmul(1, a5, 1, b5); /* dot */
  int64_t a6[2] = {3, 4}, b6[3] = {2, 4, 5};
  check_matmul(2, a6, 3, b6); /* a broadcast over b's batch */
  int64_t a7[2] = {3, 0}, b7[2] = {0, 5};
  check_matmul(2, a7, 2, b7); /* K = 0: zeros */
  int64_t a8[4] = {1, 2, 3, 4}, b8[4] = {1, 2, 4, 3};
  check_matmul(4, a8, 4, b8); /* test_matmul_4d shape */
}
END_TEST

static void check_gemm(int ta, int tb, float alpha, float beta, int crank, const int64_t *cdims) {
  int64_t m = 3, k = 5, n = 4;
  int64_t ad[2] = {ta ? k : m, ta ? m : k}, bd[2] = {tb ? n : k, tb ? k : n};
  oc_tensor_t A = tensor(OC_DTYPE_FLOAT32, 2, ad, rand_floats(m * k));
  oc_tensor_t B = tensor(OC_DTYPE_FLOAT32, 2, bd, rand_floats(k * n));
  oc_tensor_t C = tensor(OC_DTYPE_FLOAT32, crank < 0 ? 0 : crank, cdims,
                         rand_floats(crank < 0 ? 1 : numel(crank, cdims)));
  oc_tensor_t y;
  oc_tensor_t *in[3] = {&A, &B, &C}, *out[1] = {&y};
  int64_t ints[2] = {ta, tb};
  float fl[2] = {alpha, beta};
  ASSERT_OK(run(OC_OP_GEMM, in, crank < 0 ? 2 : 3, out, 1, ints, 2, fl, 2));
  double want[12];
  const float *pa = A.data, *pb = B.data, *pc = C.data;
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      double acc = 0;
      for (int64_t q = 0; q < k; q++) {
        double av = ta ? pa[q * m + i] : pa[i * k + q];
        double bv = tb ? pb[j * k + q] : pb[q * n + j];
        acc += av * bv;
      }
      double cv = 0;
      if (crank >= 0) {
        int64_t ci = 0, cj = 0;
        if (crank == 2) {
          ci = cdims[0] == 1 ? 0 : i;
          cj = cdims[1] == 1 ? 0 : j;
          cv = pc[ci * cdims[1] + cj];
        } else if (crank == 1) {
          cv = pc[cdims[0] == 1 ? 0 : j];
        } else {
          cv = pc[0];
        }
      }
      want[i * n + j] = alpha * acc + beta * cv;
    }
  expect_close(y.data, want, m * n, 1e-5, "gemm");
  free(A.data);
  free(B.data);
  free(C.data);
  free(y.data);
}

START_TEST(forward_gemm) {
  int64_t c_mn[2] = {3, 4}, c_1n[2] = {1, 4}, c_m1[2] = {3, 1}, c_n[1] = {4}, c_1[1] = {1};
  check_gemm(0, 0, 1, 1, 2, c_mn);
  check_gemm(1, 1, 0.25f, 0.35f, 2, c_1n);
  check_gemm(1, 0, 1, 0.5f, 2, c_m1);
  check_gemm(0, 1, 0.5f, 1, 1, c_n);
  check_gemm(0, 0, 1, 1, 1, c_1);
  check_gemm(0, 0, 1, 1, 0, NULL);
  check_gemm(0, 0, 2, 1, -1, NULL);
}
END_TEST

/* Softmax over (outer, n, inner) in double. */
static void ref_softmax(double *y, const float *x, int64_t outer, int64_t n, int64_t inner,
                        int log_out) {
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      double mx = -INFINITY, sum = 0;
      for (int64_t j = 0; j < n; j++) mx = fmax(mx, x[(o * n + j) * inner + i]);
      for (int64_t j = 0; j < n; j++) sum += exp(x[(o * n + j) * inner + i] - mx);
      for (int64_t j = 0; j < n; j++) {
        double v = x[(o * n + j) * inner + i] - mx;
        y[(o * n + j) * inner + i] = log_out ? v - log(sum) : exp(v) / sum;
      }
    }
}

START_TEST(forward_softmax) {
  int64_t xd[3] = {3, 4, 5};
  oc_tensor_t x = tensor(OC_DTYPE_FLOAT32, 3, xd, rand_floats(60)), y;
  oc_tensor_t *in[1] = {&x}, *out[1] = {&y};
  double want[60];
  for (int log_out = 0; log_out < 2; log_out++) {
    int op = log_out ? OC_OP_LOG_SOFTMAX : OC_OP_SOFTMAX;
    for (int axis = 0; axis < 3; axis++) {
      int64_t ints[2] = {axis, 0};
      int64_t outer = numel(axis, xd), inner = numel(2 - axis, xd + axis + 1);
      ASSERT_OK(run(op, in, 1, out, 1, ints, 2, NULL, 0));
      ref_softmax(want, x.data, outer, xd[axis], inner, log_out);
      expect_close(y.data, want, 60, 1e-5, "softmax single axis");
      free(y.data);
      ints[1] = 1; /* opset < 13: flatten from axis */
      ASSERT_OK(run(op, in, 1, out, 1, ints, 2, NULL, 0));
      ref_softmax(want, x.data, outer, numel(3 - axis, xd + axis), 1, log_out);
      expect_close(y.data, want, 60, 1e-5, "softmax flattened");
      free(y.data);
    }
  }
  free(x.data);

  /* Large numbers (test_softmax_large_number) and -inf rows. */
  float big[12] = {0, 1, 2, 3, 10000, 10001, 10002, 10003,
                   -INFINITY, -INFINITY, -INFINITY, -INFINITY};
  float part[4] = {1, -INFINITY, 2, -INFINITY};
  int64_t bd[2] = {3, 4};
  oc_tensor_t xb = tensor(OC_DTYPE_FLOAT32, 2, bd, big);
  in[0] = &xb;
  int64_t ints[2] = {-1, 0};
  ASSERT_OK(run(OC_OP_SOFTMAX, in, 1, out, 1, ints, 2, NULL, 0));
  const float *py = y.data;
  double row[4] = {0.032058604, 0.087144323, 0.236882818, 0.643914260};
  expect_close(py, row, 4, 1e-6, "large row 0");
  expect_close(py + 4, row, 4, 1e-6, "large row 1");
  for (int j = 8; j < 12; j++) ck_assert_msg(isnan(py[j]), "all -inf row gives NaN like PyTorch");
  free(y.data);
  int64_t pd[1] = {4};
  oc_tensor_t xp = tensor(OC_DTYPE_FLOAT32, 1, pd, part);
  in[0] = &xp;
  ASSERT_OK(run(OC_OP_SOFTMAX, in, 1, out, 1, ints, 2, NULL, 0));
  py = y.data;
  ck_assert(py[1] == 0.0f && py[3] == 0.0f);
  ck_assert(fabsf(py[0] + py[2] - 1.0f) < 1e-6f && py[2] > py[0]);
  free(y.data);
  ASSERT_OK(run(OC_OP_LOG_SOFTMAX, in, 1, out, 1, ints, 2, NULL, 0));
  py = y.data;
  ck_assert(isinf(py[1]) && py[1] < 0 && isinf(py[3]));
  ck_assert(fabs(py[2] - (-log1p(exp(-1.0)))) < 1e-6);
  free(y.data);
}
END_TEST

START_TEST(forward_layernorm) {
  int64_t xd[3] = {2, 3, 5};
  for (int axis = 0; axis < 3; axis++) {
    for (int variant = 0; variant < 3; variant++) {
      /* variant 0: full scale and bias; 1: no bias; 2: broadcast scale (1, 5)-like. */
      int nr = 3 - axis;
      int64_t sd[3];
      for (int i = 0; i < nr; i++) sd[i] = xd[axis + i];
      if (variant == 2) for (int i = 0; i + 1 < nr; i++) sd[i] = 1;
      int64_t d = numel(nr, xd + axis), n = 30 / d;
      oc_tensor_t x = tensor(OC_DTYPE_FLOAT32, 3, xd, rand_floats(30));
      oc_tensor_t sc = tensor(OC_DTYPE_FLOAT32, nr, sd, rand_floats(numel(nr, sd)));
      oc_tensor_t bi = tensor(OC_DTYPE_FLOAT32, nr, sd, rand_floats(numel(nr, sd)));
      oc_tensor_t y, mean, rstd;
      oc_tensor_t *in[3] = {&x, &sc, variant == 1 ? NULL : &bi}, *out[3] = {&y, &mean, &rstd};
      int64_t ints[1] = {axis - 3 + (variant & 1) * 3}; /* negative and positive axes */
      float eps[1] = {0.1f};
      ASSERT_OK(run(OC_OP_LAYERNORM, in, 3, out, 3, ints, 1, eps, 1));
      double want[30], wm[30], wr[30];
      const float *px = x.data, *ps = sc.data, *pb = bi.data;
      int64_t sst[3];
      strides_of(nr, sd, sst);
      for (int64_t i = 0; i < n; i++) {
        double m = 0, v = 0;
        for (int64_t j = 0; j < d; j++) m += px[i * d + j];
        m /= d;
        for (int64_t j = 0; j < d; j++) v += (px[i * d + j] - m) * (px[i * d + j] - m);
        v /= d;
        double r = 1 / sqrt(v + 0.1f);
        wm[i] = m;
        wr[i] = r;
        for (int64_t j = 0; j < d; j++) {
          /* index of j in the (maybe broadcast) scale */
          int64_t rem = j, si = 0, nst[3];
          strides_of(nr, xd + axis, nst);
          for (int q = 0; q < nr; q++) {
            int64_t c = rem / nst[q];
            rem %= nst[q];
            si += (sd[q] == 1 ? 0 : c) * sst[q];
          }
          want[i * d + j] = (px[i * d + j] - m) * r * ps[si] + (variant == 1 ? 0 : pb[si]);
        }
      }
      expect_close(y.data, want, 30, 1e-5, "layernorm y");
      expect_close(mean.data, wm, n, 1e-5, "layernorm mean");
      expect_close(rstd.data, wr, n, 1e-5, "layernorm rstd");
      free(x.data); free(sc.data); free(bi.data);
      free(y.data); free(mean.data); free(rstd.data);
    }
  }
}
END_TEST

START_TEST(forward_gather) {
  /* data (5,4,3,2) int64 = arange; axis 1; indices (2,2) int32 with negatives. */
  int64_t xd[4] = {5, 4, 3, 2};
  int64_t *xv = malloc(sizeof(int64_t) * 120);
  for (int i = 0; i < 120; i++) xv[i] = i * 7 - 3;
  int32_t iv[4] = {0, -1, 3, -4};
  int64_t id[2] = {2, 2};
  oc_tensor_t x = tensor(OC_DTYPE_INT64, 4, xd, xv), idx = tensor(OC_DTYPE_INT32, 2, id, iv), y;
  oc_tensor_t *in[2] = {&x, &idx}, *out[1] = {&y};
  int64_t axis[1] = {1};
  ASSERT_OK(run(OC_OP_GATHER, in, 2, out, 1, axis, 1, NULL, 0));
  const int64_t *py = y.data;
  for (int a = 0; a < 5; a++)
    for (int j = 0; j < 4; j++)
      for (int c = 0; c < 6; c++) {
        int k = iv[j] < 0 ? iv[j] + 4 : iv[j];
        ck_assert_int_eq(py[(a * 4 + j) * 6 + c], xv[(a * 4 + k) * 6 + c]);
      }
  free(y.data);
  /* float data, int64 scalar index on the last axis. */
  float fv[6] = {1, 2, 3, 4, 5, 6};
  int64_t fd[2] = {3, 2}, sidx = -2;
  oc_tensor_t xf = tensor(OC_DTYPE_FLOAT32, 2, fd, fv), is = tensor(OC_DTYPE_INT64, 0, NULL, &sidx);
  in[0] = &xf;
  in[1] = &is;
  axis[0] = -1;
  ASSERT_OK(run(OC_OP_GATHER, in, 2, out, 1, axis, 1, NULL, 0));
  ck_assert_int_eq(y.rank, 1);
  ck_assert(((float *)y.data)[0] == 1 && ((float *)y.data)[1] == 3 && ((float *)y.data)[2] == 5);
  free(y.data);
  /* bool data (1 byte elements). */
  uint8_t bv[3] = {1, 0, 1};
  int64_t bdim[1] = {3}, bi[2] = {1, 2}, bid[1] = {2};
  oc_tensor_t xbool = tensor(OC_DTYPE_BOOL, 1, bdim, bv), ib = tensor(OC_DTYPE_INT64, 1, bid, bi);
  in[0] = &xbool;
  in[1] = &ib;
  axis[0] = 0;
  ASSERT_OK(run(OC_OP_GATHER, in, 2, out, 1, axis, 1, NULL, 0));
  ck_assert(((uint8_t *)y.data)[0] == 0 && ((uint8_t *)y.data)[1] == 1);
  free(y.data);
  free(xv);
}
END_TEST

static const int rd_ops[] = {OC_OP_REDUCE_SUM, OC_OP_REDUCE_MEAN, OC_OP_REDUCE_MAX,
                             OC_OP_REDUCE_MIN, OC_OP_REDUCE_PROD, OC_OP_REDUCE_L1,
                             OC_OP_REDUCE_L2, OC_OP_REDUCE_SUM_SQUARE, OC_OP_REDUCE_LOG_SUM,
                             OC_OP_REDUCE_LOG_SUM_EXP};

START_TEST(forward_reduce) {
  int64_t xd[4] = {3, 1, 4, 5};
  float *xv = rand_floats(60);
  for (int i = 0; i < 60; i++) xv[i] = xv[i] * 0.5f + (i % 3 ? 1.5f : -1.0f); /* mixed sign */
  oc_tensor_t x = tensor(OC_DTYPE_FLOAT32, 4, xd, xv), y;
  oc_tensor_t *in[1] = {&x}, *out[1] = {&y};
  for (int k = 0; k < 10; k++) {
    for (unsigned mask = 0; mask < 16; mask++) {
      for (int keep = 0; keep < 2; keep++) {
        int64_t ints[5] = {keep};
        int n = 1;
        for (int i = 0; i < 4; i++)
          if (mask >> i & 1) ints[n++] = (i & 1) ? i - 4 : i; /* some negative */
        unsigned m = mask ? mask : 15u;
        /* ReduceLogSum of a negative sum is NaN in both; skip to keep it simple. */
        ASSERT_OK(run(rd_ops[k], in, 1, out, 1, ints, n, NULL, 0));
        int64_t ny = oc_tensor_numel(&y);
        double want[60];
        for (int64_t o = 0; o < ny; o++) want[o] = ref_reduce_one(xv, 4, xd, m, o, (rk_t)k);
        char what[64];
        snprintf(what, sizeof what, "reduce kind %d mask %u keep %d", k, mask, keep);
        expect_close(y.data, want, ny, 1e-5, what);
        int r = 0;
        for (int i = 0; i < 4; i++) r += (m >> i & 1) ? keep : 1;
        ck_assert_int_eq(y.rank, r);
        free(y.data);
      }
    }
  }
  free(xv);
}
END_TEST

START_TEST(forward_reduce_special) {
  /* ONNX example: ReduceSum axes [1] keepdims on arange(1..12) (3,2,2). */
  float ex[12];
  for (int i = 0; i < 12; i++) ex[i] = (float)(i + 1);
  int64_t xd[3] = {3, 2, 2};
  oc_tensor_t x = tensor(OC_DTYPE_FLOAT32, 3, xd, ex), y;
  oc_tensor_t *in[1] = {&x}, *out[1] = {&y};
  int64_t ints[2] = {1, 1};
  ASSERT_OK(run(OC_OP_REDUCE_SUM, in, 1, out, 1, ints, 2, NULL, 0));
  double want[6] = {4, 6, 12, 14, 20, 22};
  expect_close(y.data, want, 6, 0, "reduce_sum example");
  free(y.data);
  ASSERT_OK(run(OC_OP_REDUCE_SUM_SQUARE, in, 1, out, 1, ints, 1, NULL, 0));
  double ssq[1] = {650};
  expect_close(y.data, ssq, 1, 0, "sum square all");
  free(y.data);

  /* Empty reductions: (2, 0) over axis 1. */
  int64_t ed[2] = {2, 0};
  float dummy[1] = {0};
  oc_tensor_t xe = tensor(OC_DTYPE_FLOAT32, 2, ed, dummy);
  in[0] = &xe;
  double empty_want[10] = {0, NAN, -INFINITY, INFINITY, 1, 0, 0, 0, -INFINITY, -INFINITY};
  for (int k = 0; k < 10; k++) {
    ASSERT_OK(run(rd_ops[k], in, 1, out, 1, ints, 2, NULL, 0));
    ck_assert_int_eq(oc_tensor_numel(&y), 2);
    double w2[2] = {empty_want[k], empty_want[k]};
    expect_close(y.data, w2, 2, 0, "empty reduction");
    free(y.data);
  }

  /* NaN propagates through Max/Min; -inf rows in LogSumExp. */
  float nv[4] = {1, NAN, -INFINITY, -INFINITY};
  int64_t nd[2] = {2, 2};
  oc_tensor_t xn = tensor(OC_DTYPE_FLOAT32, 2, nd, nv);
  in[0] = &xn;
  ASSERT_OK(run(OC_OP_REDUCE_MAX, in, 1, out, 1, ints, 2, NULL, 0));
  ck_assert(isnan(((float *)y.data)[0]) && isinf(((float *)y.data)[1]));
  free(y.data);
  ASSERT_OK(run(OC_OP_REDUCE_MIN, in, 1, out, 1, ints, 2, NULL, 0));
  ck_assert(isnan(((float *)y.data)[0]));
  free(y.data);
  ASSERT_OK(run(OC_OP_REDUCE_LOG_SUM_EXP, in, 1, out, 1, ints, 2, NULL, 0));
  ck_assert(isnan(((float *)y.data)[0]));
  ck_assert(isinf(((float *)y.data)[1]) && ((float *)y.data)[1] < 0);
  free(y.data);

  /* Large magnitude LogSumExp stays finite. */
  float lv[2] = {1000, 1000};
  int64_t ld[1] = {2};
  oc_tensor_t xl = tensor(OC_DTYPE_FLOAT32, 1, ld, lv);
  in[0] = &xl;
  int64_t all0[1] = {0};
  ASSERT_OK(run(OC_OP_REDUCE_LOG_SUM_EXP, in, 1, out, 1, all0, 1, NULL, 0));
  ck_assert(fabsf(((float *)y.data)[0] - (1000.0f + logf(2.0f))) < 1e-3f);
  free(y.data);

  /* Integer Sum / Max / Min / Prod. */
  int64_t iv[6] = {1, -2, 3, INT64_MAX, 5, -6};
  int64_t id[2] = {2, 3};
  oc_tensor_t xi = tensor(OC_DTYPE_INT64, 2, id, iv);
  in[0] = &xi;
  int64_t ax1[2] = {0, 1};
  ASSERT_OK(run(OC_OP_REDUCE_SUM, in, 1, out, 1, ax1, 2, NULL, 0));
  ck_assert(((int64_t *)y.data)[0] == 2);
  ck_assert(((int64_t *)y.data)[1] == (int64_t)((uint64_t)INT64_MAX + 5 - 6)); /* wraps */
  free(y.data);
  ASSERT_OK(run(OC_OP_REDUCE_MAX, in, 1, out, 1, ax1, 2, NULL, 0));
  ck_assert(((int64_t *)y.data)[0] == 3 && ((int64_t *)y.data)[1] == INT64_MAX);
  free(y.data);
  ASSERT_OK(run(OC_OP_REDUCE_MIN, in, 1, out, 1, ax1, 2, NULL, 0));
  ck_assert(((int64_t *)y.data)[0] == -2 && ((int64_t *)y.data)[1] == -6);
  free(y.data);
  int32_t i32[6] = {1, -2, 3, 4, 5, -6};
  oc_tensor_t x32 = tensor(OC_DTYPE_INT32, 2, id, i32);
  in[0] = &x32;
  int64_t ax0[2] = {1, 0};
  ASSERT_OK(run(OC_OP_REDUCE_PROD, in, 1, out, 1, ax0, 2, NULL, 0));
  ck_assert(((int32_t *)y.data)[0] == 4 && ((int32_t *)y.data)[1] == -10 &&
            ((int32_t *)y.data)[2] == -18);
  free(y.data);

  /* Rank 0 input: reduce all is the identity. */
  float sv = 3.5f;
  oc_tensor_t xs = tensor(OC_DTYPE_FLOAT32, 0, NULL, &sv);
  in[0] = &xs;
  ASSERT_OK(run(OC_OP_REDUCE_MEAN, in, 1, out, 1, all0, 1, NULL, 0));
  ck_assert(y.rank == 0 && ((float *)y.data)[0] == 3.5f);
  free(y.data);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* errors                                                                   */
/* ------------------------------------------------------------------------ */

START_TEST(errors_matmul_gemm) {
  int64_t ad[2] = {3, 4}, bd[2] = {5, 6};
  oc_tensor_t a = tensor(OC_DTYPE_FLOAT32, 2, ad, NULL), b = tensor(OC_DTYPE_FLOAT32, 2, bd, NULL), y;
  oc_tensor_t *in[3] = {&a, &b, NULL}, *out[1] = {&y};
  expect_error(infer(OC_OP_MATMUL, in, 2, out, 1, NULL, 0, NULL, 0, NULL),
               OC_STATUS_INVALID_ARGUMENT, "inner", "matmul K mismatch");
  b.dims[0] = 4;
  a.dtype = b.dtype = OC_DTYPE_INT64;
  expect_error(infer(OC_OP_MATMUL, in, 2, out, 1, NULL, 0, NULL, 0, NULL), OC_STATUS_UNSUPPORTED,
               "float32", "int matmul");
  a.dtype = b.dtype = OC_DTYPE_FLOAT32;
  int64_t junk[1] = {1};
  expect_error(infer(OC_OP_MATMUL, in, 2, out, 1, junk, 1, NULL, 0, NULL),
               OC_STATUS_INVALID_ARGUMENT, NULL, "matmul with ints");
  a.rank = 0;
  expect_error(infer(OC_OP_MATMUL, in, 2, out, 1, NULL, 0, NULL, 0, NULL),
               OC_STATUS_INVALID_ARGUMENT, NULL, "matmul scalar");
  a.rank = 2;
  /* Batch dims that pass the per-tensor size check but overflow together. */
  int64_t big_a[4] = {(int64_t)1 << 36, 1, 1, 1};
  int64_t big_b[4] = {1, (int64_t)1 << 36, 1, 1};
  oc_tensor_t ba = tensor(OC_DTYPE_FLOAT32, 4, big_a, NULL), bb = tensor(OC_DTYPE_FLOAT32, 4, big_b, NULL);
  in[0] = &ba;
  in[1] = &bb;
  oc_status_t s = infer(OC_OP_MATMUL, in, 2, out, 1, NULL, 0, NULL, 0, NULL);
  ck_assert_msg(s != OC_OK, "huge broadcast batch accepted");
  oc_status_free(s);
  /* Matrix dims beyond the BLAS int. */
  int64_t wa[2] = {0, (int64_t)1 << 33}, wb[2] = {(int64_t)1 << 33, 0};
  oc_tensor_t wta = tensor(OC_DTYPE_FLOAT32, 2, wa, NULL), wtb = tensor(OC_DTYPE_FLOAT32, 2, wb, NULL);
  in[0] = &wta;
  in[1] = &wtb;
  expect_error(infer(OC_OP_MATMUL, in, 2, out, 1, NULL, 0, NULL, 0, NULL),
               OC_STATUS_RESOURCE_LIMIT, NULL, "K beyond int");

  /* Gemm hostile ints/floats. */
  in[0] = &a;
  in[1] = &b;
  int64_t tr[2] = {0, 0}, bad_tr[2] = {5, 0};
  float fl[2] = {1, 1};
  expect_error(infer(OC_OP_GEMM, in, 2, out, 1, bad_tr, 2, fl, 2, NULL), OC_STATUS_INVALID_ARGUMENT,
               "transA", "gemm transA=5");
  expect_error(infer(OC_OP_GEMM, in, 2, out, 1, tr, 1, fl, 2, NULL), OC_STATUS_INVALID_ARGUMENT,
               NULL, "gemm missing ints");
  expect_error(infer(OC_OP_GEMM, in, 2, out, 1, tr, 2, fl, 1, NULL), OC_STATUS_INVALID_ARGUMENT,
               NULL, "gemm missing floats");
  int64_t cd[2] = {2, 6};
  oc_tensor_t cc = tensor(OC_DTYPE_FLOAT32, 2, cd, NULL);
  in[2] = &cc;
  expect_error(infer(OC_OP_GEMM, in, 3, out, 1, tr, 2, fl, 2, NULL), OC_STATUS_INVALID_ARGUMENT,
               "broadcast", "gemm bad C");
  int64_t c3[3] = {1, 3, 6};
  oc_tensor_t c3t = tensor(OC_DTYPE_FLOAT32, 3, c3, NULL);
  in[2] = &c3t;
  expect_error(infer(OC_OP_GEMM, in, 3, out, 1, tr, 2, fl, 2, NULL), OC_STATUS_INVALID_ARGUMENT,
               NULL, "gemm 3-D C");
  int64_t a3[3] = {1, 3, 4};
  oc_tensor_t a3t = tensor(OC_DTYPE_FLOAT32, 3, a3, NULL);
  in[0] = &a3t;
  expect_error(infer(OC_OP_GEMM, in, 2, out, 1, tr, 2, fl, 2, NULL), OC_STATUS_INVALID_ARGUMENT,
               NULL, "gemm 3-D A");
}
END_TEST

START_TEST(errors_softmax_layernorm) {
  int64_t xd[2] = {3, 4};
  oc_tensor_t x = tensor(OC_DTYPE_FLOAT32, 2, xd, NULL), y, m, r;
  oc_tensor_t *in[3] = {&x, NULL, NULL}, *out[3] = {&y, &m, &r};
  int64_t bad[][2] = {{2, 0}, {-3, 0}, {INT64_MAX, 0}, {INT64_MIN, 1}, {0, 2}, {0, -1}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    oc_status_t s = infer(OC_OP_SOFTMAX, in, 1, out, 1, bad[i], 2, NULL, 0, NULL);
    ck_assert_msg(s != OC_OK, "softmax ints %zu accepted", i);
    oc_status_free(s);
  }
  int64_t ok[2] = {0, 0};
  expect_error(infer(OC_OP_SOFTMAX, in, 1, out, 1, ok, 1, NULL, 0, NULL),
               OC_STATUS_INVALID_ARGUMENT, NULL, "softmax one int");
  x.dtype = OC_DTYPE_INT64;
  expect_error(infer(OC_OP_LOG_SOFTMAX, in, 1, out, 1, ok, 2, NULL, 0, NULL),
               OC_STATUS_UNSUPPORTED, NULL, "softmax int64");
  x.dtype = OC_DTYPE_FLOAT32;
  /* Dims after a zero dim are unbounded by the size check: products must be checked. */
  int64_t zd[4] = {0, (int64_t)1 << 40, (int64_t)1 << 40, (int64_t)1 << 40};
  oc_tensor_t xz = tensor(OC_DTYPE_FLOAT32, 4, zd, NULL);
  in[0] = &xz;
  int64_t ax1[2] = {1, 0};
  expect_error(infer(OC_OP_SOFTMAX, in, 1, out, 1, ax1, 2, NULL, 0, NULL),
               OC_STATUS_RESOURCE_LIMIT, NULL, "softmax overflowing inner");

  /* LayerNorm. */
  in[0] = &x;
  int64_t sd[1] = {4};
  oc_tensor_t sc = tensor(OC_DTYPE_FLOAT32, 1, sd, NULL);
  in[1] = &sc;
  float eps[1] = {1e-5f};
  int64_t lbad[] = {2, -3, INT64_MAX, INT64_MIN};
  for (size_t i = 0; i < sizeof lbad / sizeof lbad[0]; i++) {
    oc_status_t s = infer(OC_OP_LAYERNORM, in, 2, out, 1, &lbad[i], 1, eps, 1, NULL);
    ck_assert_msg(s != OC_OK, "layernorm axis %lld accepted", (long long)lbad[i]);
    oc_status_free(s);
  }
  int64_t axis[1] = {-1};
  expect_error(infer(OC_OP_LAYERNORM, in, 2, out, 1, axis, 1, NULL, 0, NULL),
               OC_STATUS_INVALID_ARGUMENT, NULL, "layernorm no epsilon");
  int64_t sd_bad[1] = {3};
  oc_tensor_t scb = tensor(OC_DTYPE_FLOAT32, 1, sd_bad, NULL);
  in[1] = &scb;
  expect_error(infer(OC_OP_LAYERNORM, in, 2, out, 1, axis, 1, eps, 1, NULL),
               OC_STATUS_INVALID_ARGUMENT, "Scale", "layernorm bad scale");
  in[1] = &sc;
  in[2] = &scb;
  expect_error(infer(OC_OP_LAYERNORM, in, 3, out, 1, axis, 1, eps, 1, NULL),
               OC_STATUS_INVALID_ARGUMENT, "B", "layernorm bad bias");
  in[0] = &xz;
  in[2] = NULL;
  int64_t sz[3] = {1, 1, 1};
  oc_tensor_t scz = tensor(OC_DTYPE_FLOAT32, 3, sz, NULL);
  in[1] = &scz;
  expect_error(infer(OC_OP_LAYERNORM, in, 2, out, 1, (int64_t[]){1}, 1, eps, 1, NULL),
               OC_STATUS_RESOURCE_LIMIT, NULL, "layernorm overflowing D");
}
END_TEST

START_TEST(errors_gather) {
  int64_t xd[2] = {3, 4}, id[1] = {3};
  float xv[12] = {0};
  int64_t iv[3] = {0, 4, 1};
  oc_tensor_t x = tensor(OC_DTYPE_FLOAT32, 2, xd, xv), idx = tensor(OC_DTYPE_INT64, 1, id, iv), y;
  oc_tensor_t *in[2] = {&x, &idx}, *out[1] = {&y};
  int64_t bad[] = {2, -3, INT64_MAX, INT64_MIN};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    oc_status_t s = infer(OC_OP_GATHER, in, 2, out, 1, &bad[i], 1, NULL, 0, NULL);
    ck_assert_msg(s != OC_OK, "gather axis %lld accepted", (long long)bad[i]);
    oc_status_free(s);
  }
  int64_t axis[1] = {1};
  expect_error(run(OC_OP_GATHER, in, 2, out, 1, axis, 1, NULL, 0), OC_STATUS_NUMERIC,
               "index 4", "gather index 4 of 4");
  free(y.data);
  iv[1] = -5;
  oc_status_t s = run(OC_OP_GATHER, in, 2, out, 1, axis, 1, NULL, 0);
  ck_assert(s != OC_OK);
  ck_assert_msg(strstr(oc_status_message(s), "-5") && strstr(oc_status_message(s), "[-4, 3]"),
                "message: %s", oc_status_message(s));
  oc_status_free(s);
  free(y.data);
  iv[1] = INT64_MIN;
  expect_error(run(OC_OP_GATHER, in, 2, out, 1, axis, 1, NULL, 0), OC_STATUS_NUMERIC, NULL,
               "gather INT64_MIN");
  free(y.data);
  /* Empty axis: any index is out of range. */
  int64_t ed[2] = {3, 0};
  oc_tensor_t xe = tensor(OC_DTYPE_FLOAT32, 2, ed, xv);
  in[0] = &xe;
  iv[0] = 0;
  expect_error(run(OC_OP_GATHER, in, 2, out, 1, axis, 1, NULL, 0), OC_STATUS_NUMERIC, NULL,
               "gather from empty axis");
  free(y.data);
  in[0] = &x;
  idx.dtype = OC_DTYPE_FLOAT32;
  expect_error(infer(OC_OP_GATHER, in, 2, out, 1, axis, 1, NULL, 0, NULL), OC_STATUS_UNSUPPORTED,
               NULL, "float indices");
  idx.dtype = OC_DTYPE_INT64;
  /* Output rank over the limit. */
  int64_t id8[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  oc_tensor_t i8 = tensor(OC_DTYPE_INT64, 8, id8, iv);
  in[1] = &i8;
  expect_error(infer(OC_OP_GATHER, in, 2, out, 1, axis, 1, NULL, 0, NULL),
               OC_STATUS_RESOURCE_LIMIT, NULL, "gather rank 9");
  in[1] = &idx;
  oc_tensor_t xs = tensor(OC_DTYPE_FLOAT32, 0, NULL, xv);
  in[0] = &xs;
  int64_t a0[1] = {0};
  expect_error(infer(OC_OP_GATHER, in, 2, out, 1, a0, 1, NULL, 0, NULL),
               OC_STATUS_INVALID_ARGUMENT, NULL, "gather scalar data");
}
END_TEST

START_TEST(errors_reduce) {
  int64_t xd[3] = {3, 2, 2};
  oc_tensor_t x = tensor(OC_DTYPE_FLOAT32, 3, xd, NULL), y;
  oc_tensor_t *in[1] = {&x}, *out[1] = {&y};
  int64_t bad[][3] = {{2, 0, 0}, {-1, 0, 0}, {1, 3, 0}, {1, -4, 0}, {1, 0, -3},
                      {1, INT64_MAX, 0}, {1, INT64_MIN, 0}, {1, 1, 1}};
  int nbad[] = {2, 2, 2, 2, 3, 2, 2, 3};
  for (int k = 0; k < 10; k++)
    for (size_t i = 0; i < sizeof nbad / sizeof nbad[0]; i++) {
      oc_status_t s = infer(rd_ops[k], in, 1, out, 1, bad[i], nbad[i], NULL, 0, NULL);
      ck_assert_msg(s != OC_OK, "reduce %d ints case %zu accepted", k, i);
      oc_status_free(s);
    }
  expect_error(infer(OC_OP_REDUCE_SUM, in, 1, out, 1, NULL, 0, NULL, 0, NULL),
               OC_STATUS_INVALID_ARGUMENT, NULL, "reduce without keepdims");
  int64_t many[OC_MAX_RANK + 2] = {1, 0, 1, 2, 0, 1, 2, 0, 1, 2};
  expect_error(infer(OC_OP_REDUCE_SUM, in, 1, out, 1, many, OC_MAX_RANK + 2, NULL, 0, NULL),
               OC_STATUS_INVALID_ARGUMENT, "repeated", "reduce many axes");
  x.dtype = OC_DTYPE_INT64;
  int64_t ok[2] = {1, 0};
  expect_error(infer(OC_OP_REDUCE_MEAN, in, 1, out, 1, ok, 2, NULL, 0, NULL),
               OC_STATUS_UNSUPPORTED, "ReduceMean", "int mean");
  expect_error(infer(OC_OP_REDUCE_L2, in, 1, out, 1, ok, 2, NULL, 0, NULL),
               OC_STATUS_UNSUPPORTED, NULL, "int l2");
  x.dtype = OC_DTYPE_BOOL;
  expect_error(infer(OC_OP_REDUCE_MAX, in, 1, out, 1, ok, 2, NULL, 0, NULL),
               OC_STATUS_UNSUPPORTED, NULL, "bool max");
  /* A zero dim lets the kept dims be huge: the output must be refused. */
  int64_t zd[3] = {(int64_t)1 << 20, 0, (int64_t)1 << 40};
  oc_tensor_t xz = tensor(OC_DTYPE_FLOAT32, 3, zd, NULL);
  in[0] = &xz;
  int64_t ax1[2] = {0, 1};
  expect_error(infer(OC_OP_REDUCE_SUM, in, 1, out, 1, ax1, 2, NULL, 0, NULL),
               OC_STATUS_RESOURCE_LIMIT, NULL, "reduce huge output");
}
END_TEST


/* ------------------------------------------------------------------------ */
/* lower                                                                    */
/* ------------------------------------------------------------------------ */

/* A one-node graph: values by name, a node with int/ints/float attributes. */
typedef struct lg_s {
  oc_graph_t *g;
  oc_node_t *n;
  int64_t opset;
} lg_t;

static lg_t lg_new(int64_t opset, const char *op) {
  lg_t l = {oc_graph_new(), NULL, opset};
  l.g->opset = opset;
  l.n = oc_graph_add_node(l.g);
  l.n->name = oc_strdup("n0");
  l.n->op_type = oc_strdup(op);
  l.n->domain = oc_strdup("");
  l.n->in = calloc(8, sizeof(int));
  l.n->out = calloc(8, sizeof(int));
  l.n->attrs = calloc(8, sizeof(oc_attr_t));
  return l;
}

/* Adds input |name| to the node (NULL name: an omitted input); run-time
 * input when data is NULL, else a constant. */
static void lg_in(lg_t *l, const char *name, int dtype, int rank, const int64_t *dims,
                  const void *data) {
  int v = -1;
  if (name) {
    v = oc_graph_value(l->g, name);
    if (data) {
      ASSERT_OK(oc_value_set_const(l->g, v, dtype, rank, dims, data));
    } else {
      l->g->values[v].type = tensor(dtype, rank, dims, NULL);
      l->g->values[v].known = 1;
      l->g->values[v].kind = OC_VALUE_INPUT;
    }
  }
  l->n->in[l->n->n_in++] = v;
}

static void lg_out(lg_t *l, const char *name) {
  l->n->out[l->n->n_out++] = name ? oc_graph_value(l->g, name) : -1;
}

static oc_attr_t *lg_attr(lg_t *l, const char *name, int type) {
  oc_attr_t *a = &l->n->attrs[l->n->n_attrs++];
  memset(a, 0, sizeof *a);
  a->name = oc_strdup(name);
  a->type = type;
  a->tensor = -1;
  return a;
}
static void lg_int(lg_t *l, const char *name, int64_t v) { lg_attr(l, name, OC_ATTR_INT)->i = v; }
static void lg_ints(lg_t *l, const char *name, int n, const int64_t *v) {
  oc_attr_t *a = lg_attr(l, name, OC_ATTR_INTS);
  a->ints = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
  memcpy(a->ints, v, sizeof(int64_t) * (size_t)n);
  a->n_ints = n;
}

static oc_status_t lg_lower(lg_t *l) {
  oc_lower_t lw = {.g = l->g, .node = l->n, .opset = l->opset, .fold_limit_bytes = 1 << 20};
  oc_lower_fn fn = oc_lower_find("", l->n->op_type);
  ck_assert_msg(fn != NULL, "no lowering for %s", l->n->op_type);
  return fn(&lw);
}

/* The last instruction must be |op| with ints |ints|. */
static void lg_expect_instr(const lg_t *l, int op, int n_ints, const int64_t *ints) {
  ck_assert_msg(l->g->n_instrs > 0, "no instruction emitted");
  const oc_instr_t *in = &l->g->instrs[l->g->n_instrs - 1];
  ck_assert_msg(in->op == op, "op %d, expected %d", in->op, op);
  ck_assert_msg(in->n_ints == n_ints, "%d ints, expected %d", in->n_ints, n_ints);
  for (int i = 0; i < n_ints; i++)
    ck_assert_msg(in->ints[i] == ints[i], "ints[%d] = %lld, expected %lld", i,
                  (long long)in->ints[i], (long long)ints[i]);
}

START_TEST(lower_reduce_opsets) {
  int64_t xd[3] = {3, 4, 5}, ad[1] = {2}, a0[1] = {0}, axes[2] = {1, -1};
  /* Opset 13 ReduceMean: axes attribute. */
  lg_t l = lg_new(13, "ReduceMean");
  lg_in(&l, "x", OC_DTYPE_FLOAT32, 3, xd, NULL);
  lg_out(&l, "y");
  lg_ints(&l, "axes", 2, axes);
  lg_int(&l, "keepdims", 0);
  ASSERT_OK(lg_lower(&l));
  lg_expect_instr(&l, OC_OP_REDUCE_MEAN, 3, (int64_t[]){0, 1, -1});
  oc_graph_free(l.g);
  /* Opset 18 ReduceMean: constant axes input. */
  l = lg_new(18, "ReduceMean");
  lg_in(&l, "x", OC_DTYPE_FLOAT32, 3, xd, NULL);
  lg_in(&l, "axes", OC_DTYPE_INT64, 1, ad, axes);
  lg_out(&l, "y");
  ASSERT_OK(lg_lower(&l));
  lg_expect_instr(&l, OC_OP_REDUCE_MEAN, 3, (int64_t[]){1, 1, -1});
  oc_graph_free(l.g);
  /* Opset 18: the axes attribute is not allowed any more. */
  l = lg_new(18, "ReduceL2");
  lg_in(&l, "x", OC_DTYPE_FLOAT32, 3, xd, NULL);
  lg_out(&l, "y");
  lg_ints(&l, "axes", 2, axes);
  expect_error(lg_lower(&l), OC_STATUS_INVALID_ARGUMENT, "axes", "opset 18 axes attribute");
  oc_graph_free(l.g);
  /* Opset 18: run-time axes cannot set the output shape. */
  l = lg_new(18, "ReduceMax");
  lg_in(&l, "x", OC_DTYPE_FLOAT32, 3, xd, NULL);
  lg_in(&l, "axes", OC_DTYPE_INT64, 1, ad, NULL);
  lg_out(&l, "y");
  expect_error(lg_lower(&l), OC_STATUS_UNSUPPORTED, "compile-time constant", "run-time axes");
  oc_graph_free(l.g);
  /* A statically empty run-time axes input needs no value: reduce all... */
  l = lg_new(13, "ReduceSum");
  lg_in(&l, "x", OC_DTYPE_FLOAT32, 3, xd, NULL);
  lg_in(&l, "axes", OC_DTYPE_INT64, 1, a0, NULL);
  lg_out(&l, "y");
  ASSERT_OK(lg_lower(&l));
  lg_expect_instr(&l, OC_OP_REDUCE_SUM, 1, (int64_t[]){1});
  oc_graph_free(l.g);
  /* ...or, with noop_with_empty_axes, the identity. */
  l = lg_new(18, "ReduceProd");
  lg_in(&l, "x", OC_DTYPE_FLOAT32, 3, xd, NULL);
  lg_in(&l, NULL, 0, 0, NULL, NULL);
  lg_out(&l, "y");
  lg_int(&l, "noop_with_empty_axes", 1);
  ASSERT_OK(lg_lower(&l));
  lg_expect_instr(&l, OC_OP_COPY, 3, xd);
  oc_graph_free(l.g);
  /* noop_with_empty_axes does not exist before the axes input: reduce all. */
  l = lg_new(13, "ReduceMean");
  lg_in(&l, "x", OC_DTYPE_FLOAT32, 3, xd, NULL);
  lg_out(&l, "y");
  lg_int(&l, "noop_with_empty_axes", 1);
  ASSERT_OK(lg_lower(&l));
  lg_expect_instr(&l, OC_OP_REDUCE_MEAN, 1, (int64_t[]){1});
  oc_graph_free(l.g);
  /* Out-of-range axis and int mean are refused with the node's name. */
  l = lg_new(11, "ReduceSum");
  lg_in(&l, "x", OC_DTYPE_FLOAT32, 3, xd, NULL);
  lg_out(&l, "y");
  lg_ints(&l, "axes", 1, (int64_t[]){3});
  expect_error(lg_lower(&l), OC_STATUS_INVALID_ARGUMENT, "n0", "axis 3 of rank 3");
  oc_graph_free(l.g);
  l = lg_new(13, "ReduceMean");
  lg_in(&l, "x", OC_DTYPE_INT64, 3, xd, NULL);
  lg_out(&l, "y");
  expect_error(lg_lower(&l), OC_STATUS_UNSUPPORTED, "int64", "int64 ReduceMean");
  oc_graph_free(l.g);
}
END_TEST

START_TEST(lower_softmax_opsets) {
  int64_t xd[3] = {3, 4, 5};
  struct {
    const char *op;
    int64_t opset, axis; /* axis < -10: absent */
    int64_t want_axis, want_flatten;
    int want_op;
  } cases[] = {
      {"Softmax", 11, -100, 1, 1, OC_OP_SOFTMAX},
      {"Softmax", 1, -1, 2, 1, OC_OP_SOFTMAX},
      {"Softmax", 13, -100, 2, 0, OC_OP_SOFTMAX},
      {"Softmax", 13, 0, 0, 0, OC_OP_SOFTMAX},
      {"LogSoftmax", 11, 0, 0, 1, OC_OP_LOG_SOFTMAX},
      {"LogSoftmax", 13, -2, 1, 0, OC_OP_LOG_SOFTMAX},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    lg_t l = lg_new(cases[i].opset, cases[i].op);
    lg_in(&l, "x", OC_DTYPE_FLOAT32, 3, xd, NULL);
    lg_out(&l, "y");
    if (cases[i].axis > -10) lg_int(&l, "axis", cases[i].axis);
    ASSERT_OK(lg_lower(&l));
    lg_expect_instr(&l, cases[i].want_op, 2, (int64_t[]){cases[i].want_axis, cases[i].want_flatten});
    oc_graph_free(l.g);
  }
  lg_t l = lg_new(13, "Softmax");
  lg_in(&l, "x", OC_DTYPE_FLOAT32, 3, xd, NULL);
  lg_out(&l, "y");
  lg_int(&l, "axis", 3);
  expect_error(lg_lower(&l), OC_STATUS_INVALID_ARGUMENT, "axis", "softmax axis 3");
  oc_graph_free(l.g);
}
END_TEST

START_TEST(lower_refusals) {
  int64_t md[2] = {3, 3}, sd[1] = {3};
  /* Integer MatMul. */
  lg_t l = lg_new(13, "MatMul");
  lg_in(&l, "a", OC_DTYPE_INT64, 2, md, NULL);
  lg_in(&l, "b", OC_DTYPE_INT64, 2, md, NULL);
  lg_out(&l, "y");
  expect_error(lg_lower(&l), OC_STATUS_UNSUPPORTED, "int64", "int matmul");
  oc_graph_free(l.g);
  /* LayerNormalization stash_type 0. */
  l = lg_new(17, "LayerNormalization");
  lg_in(&l, "x", OC_DTYPE_FLOAT32, 2, md, NULL);
  lg_in(&l, "w", OC_DTYPE_FLOAT32, 1, sd, NULL);
  lg_out(&l, "y");
  lg_int(&l, "stash_type", 0);
  expect_error(lg_lower(&l), OC_STATUS_UNSUPPORTED, "stash_type", "stash_type 0");
  oc_graph_free(l.g);
  /* LayerNormalization asking for InvStdDev only gets a temporary Mean. */
  l = lg_new(17, "LayerNormalization");
  lg_in(&l, "x", OC_DTYPE_FLOAT32, 2, md, NULL);
  lg_in(&l, "w", OC_DTYPE_FLOAT32, 1, sd, NULL);
  lg_out(&l, "y");
  lg_out(&l, NULL);
  lg_out(&l, "r");
  ASSERT_OK(lg_lower(&l));
  lg_expect_instr(&l, OC_OP_LAYERNORM, 1, (int64_t[]){1});
  ck_assert_int_eq(l.g->instrs[l.g->n_instrs - 1].n_out, 3);
  oc_graph_free(l.g);
  /* Gemm: any non-zero trans is true; alpha/beta pass through. */
  l = lg_new(11, "Gemm");
  lg_in(&l, "a", OC_DTYPE_FLOAT32, 2, md, NULL);
  lg_in(&l, "b", OC_DTYPE_FLOAT32, 2, md, NULL);
  lg_out(&l, "y");
  lg_int(&l, "transA", 2);
  ASSERT_OK(lg_lower(&l));
  lg_expect_instr(&l, OC_OP_GEMM, 2, (int64_t[]){1, 0});
  oc_graph_free(l.g);
  /* Gather: float indices; a folded Gather with a bad index fails to compile. */
  l = lg_new(13, "Gather");
  lg_in(&l, "d", OC_DTYPE_FLOAT32, 2, md, NULL);
  lg_in(&l, "i", OC_DTYPE_FLOAT32, 1, sd, NULL);
  lg_out(&l, "y");
  expect_error(lg_lower(&l), OC_STATUS_UNSUPPORTED, "indices", "float indices");
  oc_graph_free(l.g);
  float dv[9] = {0};
  int64_t iv[1] = {7}, id[1] = {1};
  l = lg_new(13, "Gather");
  lg_in(&l, "d", OC_DTYPE_FLOAT32, 2, md, dv);
  lg_in(&l, "i", OC_DTYPE_INT64, 1, id, iv);
  lg_out(&l, "y");
  expect_error(lg_lower(&l), OC_STATUS_NUMERIC, "index 7", "folded gather out of range");
  oc_graph_free(l.g);
}
END_TEST

static Suite *linalg_suite(void) {
  Suite *s = suite_create("ops_linalg");
  TCase *shape = tcase_create("shape");
  tcase_add_test(shape, shape_matmul);
  tcase_add_test(shape, shape_gemm);
  tcase_add_test(shape, shape_softmax_layernorm);
  tcase_add_test(shape, shape_gather);
  tcase_add_test(shape, shape_reduce);
  suite_add_tcase(s, shape);
  TCase *fwd = tcase_create("forward");
  tcase_add_test(fwd, forward_matmul);
  tcase_add_test(fwd, forward_gemm);
  tcase_add_test(fwd, forward_softmax);
  tcase_add_test(fwd, forward_layernorm);
  tcase_add_test(fwd, forward_gather);
  tcase_add_test(fwd, forward_reduce);
  tcase_add_test(fwd, forward_reduce_special);
  suite_add_tcase(s, fwd);
  TCase *err = tcase_create("errors");
  tcase_add_test(err, errors_matmul_gemm);
  tcase_add_test(err, errors_softmax_layernorm);
  tcase_add_test(err, errors_gather);
  tcase_add_test(err, errors_reduce);
  suite_add_tcase(s, err);
  TCase *low = tcase_create("lower");
  tcase_add_test(low, lower_reduce_opsets);
  tcase_add_test(low, lower_softmax_opsets);
  tcase_add_test(low, lower_refusals);
  suite_add_tcase(s, low);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(linalg_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
