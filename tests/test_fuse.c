/*
 * The compiler's fusions (compiler/fuse.c) and the kernels they select:
 * LayerNormalization over the last axis, Gelu, Attention, and a Conv's
 * fused activation.
 *
 *   kernels: each fused kernel against the unfused op sequence it replaces
 *            (run op by op through the same runtime), on random inputs of
 *            several shapes (row lengths that are and are not multiples of
 *            the vector width), on one thread and split over a pool.
 *            Tolerances, |fused - unfused| <=
 *            - LayerNorm: 2e-5 + 2e-5 |unfused| (the sequence rounds x - mean,
 *              its square and the variance to float32; the kernel keeps them
 *              in double);
 *            - Gelu: 1e-7 + 1e-6 |unfused| (the same float32 steps: equal
 *              unless a compiler contracts a multiply-add differently);
 *            - Attention: 1e-6 + 1e-5 |unfused| (the same products and
 *              Softmax rows; the scale is applied as sgemm's alpha);
 *            - Conv + Relu / Clip: 0 (the same sums).
 *            Attention's shape rule also refuses views outside their buffers
 *            and outputs not covered exactly once.
 *   models:  tests/data/fuse (made by make_fuse_models.py): PyTorch's export
 *            of a pre-norm MLP block and of MultiheadAttention (both
 *            layouts), and hand-written spellings, fuse into the expected
 *            instructions and match PyTorch / numpy within 1e-5; near misses
 *            (another axis, exponent or constant, an intermediate that is
 *            also an output, a masked or query-axis Softmax) are left alone
 *            and still compute the right values.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compile.h"
#include "oc_ops.h"
#include "parallel.h"
#include "tensor_file.h"

#define FUSE_DATA ONNXC_TEST_DATA "/fuse"

#define ASSERT_OK(expr)                                                 \
  do {                                                                  \
    oc_status_t s_ = (expr);                                            \
    ck_assert_msg(s_ == OC_OK, "%s: %s", #expr, oc_status_message(s_)); \
  } while (0)

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static float frand(float lo, float hi) {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return lo + (hi - lo) * (float)((double)(g_rng >> 11) / 9007199254740992.0);
}

/* A float32 tensor owning malloc'd data (NULL data for rank-0 shapes is not
 * used here). */
static oc_tensor_t ftensor(int rank, const int64_t *dims) {
  oc_tensor_t t = {.dtype = OC_DTYPE_FLOAT32, .rank = rank};
  for (int i = 0; i < rank; i++) t.dims[i] = dims[i];
  int64_t n = oc_tensor_numel(&t);
  t.data = malloc(sizeof(float) * (size_t)(n ? n : 1));
  return t;
}

static oc_tensor_t scalar(float v) {
  oc_tensor_t t = ftensor(0, NULL);
  ((float *)t.data)[0] = v;
  return t;
}

static void fill(oc_tensor_t *t, float lo, float hi) {
  float *p = t->data;
  for (int64_t i = 0; i < oc_tensor_numel(t); i++) p[i] = frand(lo, hi);
}

/* Runs |op| on |in| into a fresh *out (typed by infer), on |pool| (or the
 * calling thread). */
static void run_op(oc_pool_t *pool, int op, oc_tensor_t **in, int n_in, oc_tensor_t *out,
                   const int64_t *ints, int n_ints, const float *floats, int n_floats) {
  oc_tensor_t *outs[1] = {out};
  oc_op_call_t c = {.ints = ints, .n_ints = n_ints, .floats = floats, .n_floats = n_floats,
                    .n_in = n_in, .in = in, .n_out = 1, .out = outs, .pool = pool};
  size_t ws = 0;
  ASSERT_OK(oc_op_infer(op, &c, &ws));
  size_t bytes = oc_tensor_bytes(out);
  out->data = malloc(bytes ? bytes : 1);
  memset(out->data, 0xA5, bytes); /* poison */
  c.workspace = ws ? malloc(ws) : NULL;
  c.workspace_bytes = ws;
  ASSERT_OK(oc_op_get(op)->run(&c));
  free(c.workspace);
}

/* Binary op a (op) b into a fresh tensor. */
static oc_tensor_t bin(int op, oc_tensor_t *a, oc_tensor_t *b) {
  oc_tensor_t y = {0};
  oc_tensor_t *in[2] = {a, b};
  run_op(NULL, op, in, 2, &y, NULL, 0, NULL, 0);
  return y;
}

static oc_tensor_t unary(int op, oc_tensor_t *a) {
  oc_tensor_t y = {0};
  oc_tensor_t *in[1] = {a};
  run_op(NULL, op, in, 1, &y, NULL, 0, NULL, 0);
  return y;
}

static oc_tensor_t mean_last(oc_tensor_t *a) {
  oc_tensor_t y = {0};
  oc_tensor_t *in[1] = {a};
  const int64_t ints[2] = {1, -1};
  run_op(NULL, OC_OP_REDUCE_MEAN, in, 1, &y, ints, 2, NULL, 0);
  return y;
}

static void drop(oc_tensor_t *t) {
  free(t->data);
  t->data = NULL;
}

/* |got| against |want| elementwise: |got - want| <= atol + rtol |want|;
 * returns the largest difference. */
static double expect_close(const oc_tensor_t *got, const oc_tensor_t *want, double atol,
                           double rtol, const char *what) {
  ck_assert_int_eq(got->rank, want->rank);
  for (int i = 0; i < got->rank; i++) ck_assert_int_eq(got->dims[i], want->dims[i]);
  const float *g = got->data, *w = want->data;
  double worst = 0;
  for (int64_t i = 0; i < oc_tensor_numel(want); i++) {
    double d = fabs((double)g[i] - (double)w[i]);
    ck_assert_msg(d <= atol + rtol * fabs((double)w[i]), "%s[%lld]: %.9g, unfused %.9g", what,
                  (long long)i, g[i], w[i]);
    if (d > worst) worst = d;
  }
  return worst;
}

static int same_bits(const oc_tensor_t *a, const oc_tensor_t *b) {
  return oc_tensor_bytes(a) == oc_tensor_bytes(b) &&
         memcmp(a->data, b->data, oc_tensor_bytes(a)) == 0;
}

/* ------------------------------------------------------------------------ */
/* kernels                                                                  */
/* ------------------------------------------------------------------------ */

static const struct {
  int rank;
  int64_t dims[3];
} k_shapes[] = {{1, {1}}, {1, {7}}, {2, {3, 16}}, {2, {5, 33}}, {3, {2, 3, 45}},
                {2, {17, 192}}, {2, {4, 200}}, {3, {8, 65, 192}}};

/* ReduceMean, Sub, Pow 2, ReduceMean, Add eps, Sqrt, Div, Mul gamma, Add beta
 * (the opset-13 export) against LayerNormalization(axis -1). */
START_TEST(layernorm_matches_sequence) {
  const float eps = 1e-5f;
  double worst = 0;
  for (size_t k = 0; k < sizeof k_shapes / sizeof k_shapes[0]; k++) {
    int r = k_shapes[k].rank;
    int64_t D = k_shapes[k].dims[r - 1];
    oc_tensor_t x = ftensor(r, k_shapes[k].dims), gamma = ftensor(1, &D), beta = ftensor(1, &D);
    fill(&x, -1.0f, 5.0f); /* a mean far from 0 */
    fill(&gamma, 0.5f, 1.5f);
    fill(&beta, -0.5f, 0.5f);
    for (int affine = 0; affine < 2; affine++) {
      oc_tensor_t two = scalar(2.0f), e = scalar(eps);
      oc_tensor_t m = mean_last(&x), d = bin(OC_OP_SUB, &x, &m), p = bin(OC_OP_POW, &d, &two);
      oc_tensor_t v = mean_last(&p), a = bin(OC_OP_ADD, &v, &e), s = unary(OC_OP_SQRT, &a);
      oc_tensor_t n = bin(OC_OP_DIV, &d, &s), g = {0}, want = {0};
      if (affine) {
        g = bin(OC_OP_MUL, &n, &gamma);
        want = bin(OC_OP_ADD, &g, &beta);
      }
      /* no affine: what the fusion writes, gamma = ones */
      oc_tensor_t ones = ftensor(1, &D);
      for (int64_t j = 0; j < D; j++) ((float *)ones.data)[j] = 1.0f;
      oc_tensor_t *in[3] = {&x, affine ? &gamma : &ones, &beta};
      const int64_t axis = -1;
      oc_tensor_t got = {0}, got2 = {0};
      run_op(NULL, OC_OP_LAYERNORM, in, affine ? 3 : 2, &got, &axis, 1, &eps, 1);
      double w = expect_close(&got, affine ? &want : &n, 2e-5, 2e-5, "LayerNorm");
      if (w > worst) worst = w;
      /* rows split over two threads: the same bits */
      oc_pool_t *pool;
      ASSERT_OK(oc_pool_create(2, NULL, &pool));
      run_op(pool, OC_OP_LAYERNORM, in, affine ? 3 : 2, &got2, &axis, 1, &eps, 1);
      oc_pool_release(pool);
      ck_assert_msg(same_bits(&got, &got2), "LayerNorm on 2 threads differs (shape %zu)", k);
      oc_tensor_t *ts[] = {&two, &e, &m, &d, &p, &v, &a, &s, &n, &g, &want, &ones, &got, &got2};
      for (size_t t = 0; t < sizeof ts / sizeof ts[0]; t++) drop(ts[t]);
    }
    drop(&x);
    drop(&gamma);
    drop(&beta);
  }
  fprintf(stderr, "LayerNorm: largest |fused - unfused| %.3g\n", worst);
}
END_TEST

/* [Add bias,] Div sqrt(2), Erf, Add 1, Mul z, Mul 0.5 against Gelu. */
START_TEST(gelu_matches_sequence) {
  double worst = 0;
  for (size_t k = 0; k < sizeof k_shapes / sizeof k_shapes[0]; k++) {
    int r = k_shapes[k].rank;
    int64_t C = k_shapes[k].dims[r - 1];
    oc_tensor_t x = ftensor(r, k_shapes[k].dims), bias = ftensor(1, &C);
    fill(&x, -6.0f, 6.0f); /* past erf's saturation at |z / sqrt 2| = 4 */
    fill(&bias, -1.0f, 1.0f);
    for (int with_bias = 0; with_bias < 2; with_bias++) {
      oc_tensor_t sq2 = scalar(1.41421354f), one = scalar(1.0f), half = scalar(0.5f);
      oc_tensor_t z = with_bias ? bin(OC_OP_ADD, &bias, &x) : (oc_tensor_t){0};
      oc_tensor_t *zp = with_bias ? &z : &x;
      oc_tensor_t u = bin(OC_OP_DIV, zp, &sq2), e = unary(OC_OP_ERF, &u);
      oc_tensor_t a = bin(OC_OP_ADD, &e, &one), m = bin(OC_OP_MUL, zp, &a);
      oc_tensor_t want = bin(OC_OP_MUL, &m, &half);
      oc_tensor_t *in[2] = {&x, &bias};
      oc_tensor_t got = {0}, got2 = {0};
      run_op(NULL, OC_OP_GELU, in, 1 + with_bias, &got, NULL, 0, NULL, 0);
      double w = expect_close(&got, &want, 1e-7, 1e-6, "Gelu");
      if (w > worst) worst = w;
      oc_pool_t *pool;
      ASSERT_OK(oc_pool_create(2, NULL, &pool));
      run_op(pool, OC_OP_GELU, in, 1 + with_bias, &got2, NULL, 0, NULL, 0);
      oc_pool_release(pool);
      ck_assert_msg(same_bits(&got, &got2), "Gelu on 2 threads differs (shape %zu)", k);
      oc_tensor_t *ts[] = {&sq2, &one, &half, &z, &u, &e, &a, &m, &want, &got, &got2};
      for (size_t t = 0; t < sizeof ts / sizeof ts[0]; t++) drop(ts[t]);
    }
    drop(&x);
    drop(&bias);
  }
  fprintf(stderr, "Gelu: largest |fused - unfused| %.3g\n", worst);
}
END_TEST

static void expect_infer_error(oc_tensor_t **in, int n_in, const int64_t *ints, int n_ints,
                               const char *needle) {
  oc_tensor_t y = {0};
  oc_tensor_t *outs[1] = {&y};
  oc_op_call_t c = {.ints = ints, .n_ints = n_ints, .n_in = n_in, .in = in, .n_out = 1,
                    .out = outs};
  size_t ws;
  oc_status_t s = oc_op_infer(OC_OP_GELU, &c, &ws);
  ck_assert_msg(s != OC_OK, "Gelu infer accepted a bad call (%s)", needle);
  ck_assert_msg(oc_status_code(s) == OC_STATUS_INVALID_ARGUMENT, "%s", oc_status_message(s));
  ck_assert_msg(strstr(oc_status_message(s), needle), "'%s' lacks '%s'", oc_status_message(s),
                needle);
  oc_status_free(s);
}

START_TEST(gelu_rejects_bad_calls) {
  oc_tensor_t x = {.dtype = OC_DTYPE_FLOAT32, .rank = 2, .dims = {2, 3}};
  oc_tensor_t b2 = {.dtype = OC_DTYPE_FLOAT32, .rank = 1, .dims = {2}};
  oc_tensor_t b13 = {.dtype = OC_DTYPE_FLOAT32, .rank = 2, .dims = {1, 3}};
  oc_tensor_t xi = {.dtype = OC_DTYPE_INT64, .rank = 2, .dims = {2, 3}};
  oc_tensor_t x0 = {.dtype = OC_DTYPE_FLOAT32, .rank = 0};
  expect_infer_error((oc_tensor_t *[]){&x, &b2}, 2, NULL, 0, "last dim");
  expect_infer_error((oc_tensor_t *[]){&x, &b13}, 2, NULL, 0, "last dim");
  expect_infer_error((oc_tensor_t *[]){&x}, 1, (const int64_t[]){1}, 1, "no ints");
  expect_infer_error((oc_tensor_t *[]){&x0}, 1, NULL, 0, "rank >= 1");
  oc_tensor_t y = {0};
  oc_tensor_t *outs[1] = {&y};
  oc_op_call_t c = {.n_in = 1, .in = (oc_tensor_t *[]){&xi}, .n_out = 1, .out = outs};
  size_t ws;
  oc_status_t s = oc_op_infer(OC_OP_GELU, &c, &ws);
  ck_assert_msg(s != OC_OK, "Gelu accepted int64");
  oc_status_free(s);
}
END_TEST

/* One Attention geometry: batch dims with q/k/v/o strides, matrix sizes,
 * offsets and row strides, the buffers' and the output's dims. */
typedef struct at_case_s {
  int nb;
  int64_t n[3], qs[3], ks[3], vs[3], os[3];
  int64_t tq, tk, dk, dv, q_off, q_row, k_off, k_row, v_off, v_row, o_row;
  int q_rank, k_rank, v_rank, o_rank;
  int64_t q_dims[4], k_dims[4], v_dims[4], o_dims[4];
  float scale;
} at_case_t;

static int at_ints(const at_case_t *a, int64_t *ints) {
  int n = 0;
  ints[n++] = a->nb;
  for (int i = 0; i < a->nb; i++) {
    ints[n++] = a->n[i];
    ints[n++] = a->qs[i];
    ints[n++] = a->ks[i];
    ints[n++] = a->vs[i];
    ints[n++] = a->os[i];
  }
  const int64_t t[11] = {a->tq, a->tk, a->dk, a->dv, a->q_off, a->q_row,
                         a->k_off, a->k_row, a->v_off, a->v_row, a->o_row};
  for (int i = 0; i < 11; i++) ints[n++] = t[i];
  ints[n++] = a->o_rank;
  for (int i = 0; i < a->o_rank; i++) ints[n++] = a->o_dims[i];
  return n;
}

/* The offset of batch index |b| along strides |st|. */
static int64_t at_boff(const at_case_t *a, int64_t b, const int64_t *st) {
  int64_t off = 0;
  for (int i = a->nb - 1; i >= 0; i--) {
    off += (b % a->n[i]) * st[i];
    b /= a->n[i];
  }
  return off;
}

/* Gathers q (G, tq, dk), k^T (G, dk, tk) and v (G, tk, dv) out of the
 * buffers, runs MatMul, Mul scale, Softmax, MatMul (the unfused sequence)
 * and scatters the result through the output strides; compares with the
 * Attention op on one thread and on two. */
static double attention_case(const at_case_t *a) {
  oc_tensor_t qb = ftensor(a->q_rank, a->q_dims), kb = ftensor(a->k_rank, a->k_dims);
  oc_tensor_t vb = ftensor(a->v_rank, a->v_dims);
  fill(&qb, -2.0f, 2.0f);
  fill(&kb, -2.0f, 2.0f);
  fill(&vb, -1.0f, 1.0f);
  int64_t G = 1;
  for (int i = 0; i < a->nb; i++) G *= a->n[i];
  int64_t qd[3] = {G, a->tq, a->dk}, kd[3] = {G, a->dk, a->tk}, vd[3] = {G, a->tk, a->dv};
  oc_tensor_t q = ftensor(3, qd), kt = ftensor(3, kd), v = ftensor(3, vd);
  const float *pq = qb.data, *pk = kb.data, *pv = vb.data;
  for (int64_t b = 0; b < G; b++) {
    int64_t oq = a->q_off + at_boff(a, b, a->qs), ok = a->k_off + at_boff(a, b, a->ks);
    int64_t ov = a->v_off + at_boff(a, b, a->vs);
    for (int64_t t = 0; t < a->tq; t++)
      for (int64_t d = 0; d < a->dk; d++)
        ((float *)q.data)[(b * a->tq + t) * a->dk + d] = pq[oq + t * a->q_row + d];
    for (int64_t j = 0; j < a->tk; j++) {
      for (int64_t d = 0; d < a->dk; d++)
        ((float *)kt.data)[(b * a->dk + d) * a->tk + j] = pk[ok + j * a->k_row + d];
      for (int64_t e = 0; e < a->dv; e++)
        ((float *)v.data)[(b * a->tk + j) * a->dv + e] = pv[ov + j * a->v_row + e];
    }
  }
  oc_tensor_t sc = scalar(a->scale);
  oc_tensor_t s = bin(OC_OP_MATMUL, &q, &kt), ss = bin(OC_OP_MUL, &s, &sc), p = {0};
  oc_tensor_t *pin[1] = {&ss};
  const int64_t sm_ints[2] = {-1, 0};
  run_op(NULL, OC_OP_SOFTMAX, pin, 1, &p, sm_ints, 2, NULL, 0);
  oc_tensor_t o = bin(OC_OP_MATMUL, &p, &v);
  oc_tensor_t want = ftensor(a->o_rank, a->o_dims);
  for (int64_t b = 0; b < G; b++)
    for (int64_t t = 0; t < a->tq; t++)
      for (int64_t e = 0; e < a->dv; e++)
        ((float *)want.data)[at_boff(a, b, a->os) + t * a->o_row + e] =
            ((float *)o.data)[(b * a->tq + t) * a->dv + e];
  int64_t ints[64];
  int n_ints = at_ints(a, ints);
  oc_tensor_t *in[3] = {&qb, &kb, &vb};
  oc_tensor_t got = {0}, got2 = {0};
  run_op(NULL, OC_OP_ATTENTION, in, 3, &got, ints, n_ints, &a->scale, 1);
  double worst = expect_close(&got, &want, 1e-6, 1e-5, "Attention");
  oc_pool_t *pool;
  ASSERT_OK(oc_pool_create(2, NULL, &pool));
  run_op(pool, OC_OP_ATTENTION, in, 3, &got2, ints, n_ints, &a->scale, 1);
  oc_pool_release(pool);
  ck_assert_msg(same_bits(&got, &got2), "Attention on 2 threads differs");
  oc_tensor_t *ts[] = {&qb, &kb, &vb, &q, &kt, &v, &sc, &s, &ss, &p, &o, &want, &got, &got2};
  for (size_t t = 0; t < sizeof ts / sizeof ts[0]; t++) drop(ts[t]);
  return worst;
}

/* A packed (T, B, 3E) product split into H heads of dh, written (T, B, E). */
static at_case_t packed_case(int64_t T, int64_t B, int64_t H, int64_t dh, float scale) {
  int64_t E = H * dh;
  at_case_t a = {.nb = 2, .n = {B, H}, .qs = {3 * E, dh}, .ks = {3 * E, dh}, .vs = {3 * E, dh},
                 .os = {E, dh}, .tq = T, .tk = T, .dk = dh, .dv = dh, .q_off = 0,
                 .q_row = B * 3 * E, .k_off = E, .k_row = B * 3 * E, .v_off = 2 * E,
                 .v_row = B * 3 * E, .o_row = B * E, .q_rank = 3, .k_rank = 3, .v_rank = 3,
                 .o_rank = 3, .q_dims = {T, B, 3 * E}, .k_dims = {T, B, 3 * E},
                 .v_dims = {T, B, 3 * E}, .o_dims = {T, B, E}, .scale = scale};
  return a;
}

/* Separate contiguous q (G, tq, dk), k (G, tk, dk), v (G, tk, dv) -> (G, tq, dv). */
static at_case_t plain_case(int64_t G, int64_t tq, int64_t tk, int64_t dk, int64_t dv,
                            float scale) {
  at_case_t a = {.nb = 1, .n = {G}, .qs = {tq * dk}, .ks = {tk * dk}, .vs = {tk * dv},
                 .os = {tq * dv}, .tq = tq, .tk = tk, .dk = dk, .dv = dv, .q_row = dk,
                 .k_row = dk, .v_row = dv, .o_row = dv, .q_rank = 3, .k_rank = 3, .v_rank = 3,
                 .o_rank = 3, .q_dims = {G, tq, dk}, .k_dims = {G, tk, dk},
                 .v_dims = {G, tk, dv}, .o_dims = {G, tq, dv}, .scale = scale};
  return a;
}

START_TEST(attention_matches_sequence) {
  double worst = 0, w;
  at_case_t cases[] = {packed_case(7, 3, 2, 5, 0.4472136f), packed_case(65, 8, 3, 64, 0.125f),
                       plain_case(3, 70, 33, 17, 9, 0.3f), plain_case(2, 1, 1, 1, 1, 1.0f),
                       plain_case(1, 130, 20, 16, 16, 0.25f)};
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
    if ((w = attention_case(&cases[k])) > worst) worst = w;
  /* no batch dims: one matrix */
  at_case_t one = plain_case(1, 9, 11, 4, 6, 0.5f);
  one.nb = 0;
  one.q_rank = one.k_rank = one.v_rank = one.o_rank = 2;
  memmove(one.q_dims, one.q_dims + 1, 2 * sizeof(int64_t));
  memmove(one.k_dims, one.k_dims + 1, 2 * sizeof(int64_t));
  memmove(one.v_dims, one.v_dims + 1, 2 * sizeof(int64_t));
  memmove(one.o_dims, one.o_dims + 1, 2 * sizeof(int64_t));
  if ((w = attention_case(&one)) > worst) worst = w;
  fprintf(stderr, "Attention: largest |fused - unfused| %.3g\n", worst);
}
END_TEST

static void expect_attention_error(const at_case_t *a, const char *needle) {
  oc_tensor_t qb = {.dtype = OC_DTYPE_FLOAT32, .rank = a->q_rank};
  oc_tensor_t kb = {.dtype = OC_DTYPE_FLOAT32, .rank = a->k_rank};
  oc_tensor_t vb = {.dtype = OC_DTYPE_FLOAT32, .rank = a->v_rank};
  memcpy(qb.dims, a->q_dims, sizeof a->q_dims);
  memcpy(kb.dims, a->k_dims, sizeof a->k_dims);
  memcpy(vb.dims, a->v_dims, sizeof a->v_dims);
  int64_t ints[64];
  int n_ints = at_ints(a, ints);
  oc_tensor_t y = {0};
  oc_tensor_t *in[3] = {&qb, &kb, &vb}, *outs[1] = {&y};
  oc_op_call_t c = {.ints = ints, .n_ints = n_ints, .floats = &a->scale, .n_floats = 1,
                    .n_in = 3, .in = in, .n_out = 1, .out = outs};
  size_t ws;
  oc_status_t s = oc_op_infer(OC_OP_ATTENTION, &c, &ws);
  ck_assert_msg(s != OC_OK, "Attention infer accepted a bad call (%s)", needle);
  ck_assert_msg(strstr(oc_status_message(s), needle), "'%s' lacks '%s'", oc_status_message(s),
                needle);
  oc_status_free(s);
}

START_TEST(attention_rejects_bad_calls) {
  at_case_t a = packed_case(7, 3, 2, 5, 0.5f);
  a.v_off = 2 * 10 + 1; /* the last head's last column is past the buffer */
  expect_attention_error(&a, "reaches element");
  a = packed_case(7, 3, 2, 5, 0.5f);
  a.os[1] = 4; /* heads overlap in o */
  expect_attention_error(&a, "exactly once");
  a = packed_case(7, 3, 2, 5, 0.5f);
  a.o_dims[2] = 11; /* o holds more than the heads write */
  expect_attention_error(&a, "batch x tq x dv");
  a = plain_case(2, 3, 4, 5, 6, 0.5f);
  a.q_row = 4; /* shorter than a row of q */
  expect_attention_error(&a, "row stride");
  { /* nb out of range (checked before the batch dims are read) */
    oc_tensor_t b = {.dtype = OC_DTYPE_FLOAT32, .rank = 1, .dims = {4}}, y = {0};
    oc_tensor_t *in[3] = {&b, &b, &b}, *outs[1] = {&y};
    const int64_t bad_nb[1] = {9};
    const float one = 1.0f;
    oc_op_call_t c = {.ints = bad_nb, .n_ints = 1, .floats = &one, .n_floats = 1, .n_in = 3,
                      .in = in, .n_out = 1, .out = outs};
    size_t ws;
    oc_status_t s = oc_op_infer(OC_OP_ATTENTION, &c, &ws);
    ck_assert_msg(s && strstr(oc_status_message(s), "nb"), "nb 9 accepted");
    oc_status_free(s);
  }
  a = plain_case(2, 3, 4, 5, 6, NAN);
  expect_attention_error(&a, "finite");
  a = plain_case(2, 3, 0, 5, 6, 0.5f); /* no keys */
  expect_attention_error(&a, "tk and dk");
  a = plain_case(2, 3, 4, 5, 6, 0.5f);
  a.k_off = -1;
  expect_attention_error(&a, "negative");
}
END_TEST

/* Conv with its fused activation (Relu, Clip 0..6: what fuse.c folds into
 * a Conv) against Conv then Relu / Clip: the direct depthwise kernel (wide
 * rows, narrow rows four at a time, stride 2) and the GEMM paths' epilogue
 * (1x1 direct, im2col). */
START_TEST(conv_activation_matches_sequence) {
  const struct {
    int64_t n, c, m, group, h, w, k, s, p;
  } cases[] = {{1, 8, 8, 8, 14, 14, 3, 1, 1},   {1, 8, 8, 8, 7, 7, 3, 1, 1},
               {2, 5, 5, 5, 13, 11, 3, 2, 1},   {1, 4, 4, 4, 56, 56, 3, 1, 1},
               {1, 3, 3, 3, 112, 112, 3, 2, 1}, {1, 6, 6, 6, 9, 5, 5, 1, 2},
               {1, 16, 24, 1, 28, 28, 1, 1, 0}, {1, 3, 10, 1, 33, 35, 3, 2, 1}};
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    int64_t xd[4] = {cases[k].n, cases[k].c, cases[k].h, cases[k].w};
    int64_t wd[4] = {cases[k].m, cases[k].c / cases[k].group, cases[k].k, cases[k].k};
    int64_t bd[1] = {cases[k].m};
    oc_tensor_t x = ftensor(4, xd), w = ftensor(4, wd), b = ftensor(1, bd);
    fill(&x, -3.0f, 3.0f);
    fill(&w, -1.0f, 1.0f);
    fill(&b, -1.0f, 1.0f);
    int64_t ints[10] = {cases[k].group, cases[k].s, cases[k].s, cases[k].p, cases[k].p,
                        cases[k].p, cases[k].p, 1, 1, 0};
    oc_tensor_t *in[3] = {&x, &w, &b};
    oc_tensor_t plain = {0};
    run_op(NULL, OC_OP_CONV, in, 3, &plain, ints, 9, NULL, 0);
    for (int act = 1; act <= 2; act++) {
      const float clip[2] = {0.0f, 6.0f};
      oc_tensor_t want = {0}, got = {0};
      oc_tensor_t *pin[1] = {&plain};
      if (act == 1)
        run_op(NULL, OC_OP_RELU, pin, 1, &want, NULL, 0, NULL, 0);
      else
        run_op(NULL, OC_OP_CLIP, pin, 1, &want, NULL, 0, clip, 2);
      ints[9] = act;
      run_op(NULL, OC_OP_CONV, in, 3, &got, ints, 10, act == 2 ? clip : NULL, act == 2 ? 2 : 0);
      expect_close(&got, &want, 0, 0, act == 1 ? "Conv + Relu" : "Conv + Clip");
      drop(&want);
      drop(&got);
    }
    drop(&plain);
    drop(&x);
    drop(&w);
    drop(&b);
  }
}
END_TEST

/* ------------------------------------------------------------------------ */
/* models                                                                   */
/* ------------------------------------------------------------------------ */

/* How many instructions of the embed entry have |op|, and with |n_in| inputs
 * (any count when n_in < 0). */
static int count_op(const oc_compiled_t *c, int op, int n_in) {
  const oc_graph_t *g = c->entries[0].graph;
  int n = 0;
  for (int i = 0; i < g->n_instrs; i++)
    if (g->instrs[i].op == op && (n_in < 0 || g->instrs[i].n_in == n_in)) n++;
  return n;
}

/* Compiles |name| (plain embed), checks the op counts given as op, count
 * pairs ending with -1, then runs it and compares every output with the
 * model's test data within 1e-5 + 1e-5 |want|. */
static void check_model(const char *name, const int *op_counts) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s/model.onnx", FUSE_DATA, name);
  oc_compile_options_t o;
  oc_compile_options_init(&o);
  oc_compiled_t *c = NULL;
  ASSERT_OK(oc_compile_file(path, &o, &c));
  for (int k = 0; op_counts[k] >= 0; k += 3)
    ck_assert_msg(count_op(c, op_counts[k], op_counts[k + 2]) == op_counts[k + 1],
                  "%s: %d %s instructions (with %d inputs), expected %d", name,
                  count_op(c, op_counts[k], op_counts[k + 2]), oc_op_get(op_counts[k])->name,
                  op_counts[k + 2], op_counts[k + 1]);
  uint8_t *bytes;
  size_t n;
  ASSERT_OK(oc_plan_serialize(c, &bytes, &n));
  oc_compiled_free(c);
  oc_plan_t *plan;
  ASSERT_OK(oc_plan_open_memory(bytes, n, NULL, &plan));
  free(bytes);
  int e;
  ASSERT_OK(oc_plan_find_entry(plan, "embed", &e));
  oc_context_t *ctx;
  ASSERT_OK(oc_context_create(plan, NULL, &ctx));
  oc_host_tensor_t x;
  snprintf(path, sizeof path, "%s/%s/test_data_set_0/input_0.pb", FUSE_DATA, name);
  ASSERT_OK(oc_tensor_file_read(path, &x));
  ASSERT_OK(oc_context_set_input(ctx, e, 0, x.data, x.bytes));
  oc_host_tensor_free(&x);
  ASSERT_OK(oc_context_run(ctx, e));
  int n_out = oc_plan_output_count(plan, e);
  ck_assert_int_gt(n_out, 0);
  for (int k = 0; k < n_out; k++) {
    oc_host_tensor_t y;
    snprintf(path, sizeof path, "%s/%s/test_data_set_0/output_%d.pb", FUSE_DATA, name, k);
    ASSERT_OK(oc_tensor_file_read(path, &y));
    const void *out;
    size_t bytes_out;
    ASSERT_OK(oc_context_output(ctx, e, k, &out, &bytes_out));
    ck_assert_uint_eq(bytes_out, y.bytes);
    const float *a = out, *b = y.data;
    for (size_t i = 0; i < bytes_out / 4; i++)
      ck_assert_msg(fabsf(a[i] - b[i]) <= 1e-5f + 1e-5f * fabsf(b[i]),
                    "%s output %d element %zu: %.9g, expected %.9g", name, k, i, a[i], b[i]);
    oc_host_tensor_free(&y);
  }
  oc_context_release(ctx);
  oc_plan_release(plan);
}

START_TEST(pytorch_block_fuses) {
  /* two LayerNorms (one without affine), the GELU with fc1's bias; left:
   * the two MatMuls, fc2's bias Add and the residual Add */
  const int counts[] = {OC_OP_LAYERNORM, 1, 3, OC_OP_LAYERNORM, 1, 2, OC_OP_GELU, 1, 2,
                        OC_OP_MATMUL, 2, -1, OC_OP_ADD, 2, -1, OC_OP_ERF, 0, -1,
                        OC_OP_REDUCE_MEAN, 0, -1, OC_OP_POW, 0, -1, OC_OP_DIV, 0, -1,
                        OC_OP_MUL, 0, -1, -1};
  check_model("block", counts);
}
END_TEST

START_TEST(other_spellings_fuse) {
  /* z * (1/sqrt 2); (z * 0.5) * (erf + 1); bias + x; swapped LayerNorm operands */
  const int counts[] = {OC_OP_GELU, 2, 1, OC_OP_GELU, 1, 2, OC_OP_LAYERNORM, 1, 3,
                        OC_OP_ERF, 0, -1, OC_OP_MUL, 0, -1, OC_OP_ADD, 0, -1, -1};
  check_model("forms", counts);
}
END_TEST

START_TEST(near_misses_stay_unfused) {
  /* only the last GELU fuses, without the bias its sum is an output */
  const int counts[] = {OC_OP_LAYERNORM, 0, -1, OC_OP_GELU, 1, 1, OC_OP_ERF, 3, -1,
                        OC_OP_REDUCE_MEAN, 4, -1, OC_OP_POW, 2, -1, -1};
  check_model("near_miss", counts);
}
END_TEST

START_TEST(multihead_attention_fuses) {
  /* PyTorch's MultiheadAttention export, both layouts: one Attention reading
   * the heads out of the packed in-projection; no Softmax, Slice or Div left,
   * nor the Transposes of q, k, v and of the heads' output (batch_first keeps
   * the two around the layer) */
  const int first[] = {OC_OP_ATTENTION, 1, 3, OC_OP_SOFTMAX, 0, -1, OC_OP_SLICE, 0, -1,
                       OC_OP_DIV, 0, -1, OC_OP_TRANSPOSE, 2, -1, OC_OP_LAYERNORM, 2, -1,
                       OC_OP_GELU, 1, -1, -1};
  check_model("mha_batch_first", first);
  const int seq[] = {OC_OP_ATTENTION, 1, 3, OC_OP_SOFTMAX, 0, -1, OC_OP_SLICE, 0, -1,
                     OC_OP_TRANSPOSE, 0, -1, -1};
  check_model("mha_seq_first", seq);
}
END_TEST

START_TEST(split_heads_attention_fuses) {
  /* separate Q, K, V products: the unmasked one fuses (with the Transpose
   * of its output), the masked one and the one normalized over the query
   * axis stay MatMul, Softmax, MatMul */
  const int counts[] = {OC_OP_ATTENTION, 1, 3, OC_OP_SOFTMAX, 2, -1, OC_OP_MATMUL, 7, -1,
                        OC_OP_TRANSPOSE, 3, -1, OC_OP_DIV, 0, -1, -1};
  check_model("attention_split", counts);
}
END_TEST

static Suite *fuse_suite(void) {
  Suite *s = suite_create("fuse");
  TCase *k = tcase_create("kernels");
  tcase_add_test(k, layernorm_matches_sequence);
  tcase_add_test(k, gelu_matches_sequence);
  tcase_add_test(k, gelu_rejects_bad_calls);
  tcase_add_test(k, attention_matches_sequence);
  tcase_add_test(k, attention_rejects_bad_calls);
  tcase_add_test(k, conv_activation_matches_sequence);
  suite_add_tcase(s, k);
  TCase *m = tcase_create("models");
  tcase_add_test(m, pytorch_block_fuses);
  tcase_add_test(m, other_spellings_fuse);
  tcase_add_test(m, near_misses_stay_unfused);
  tcase_add_test(m, multihead_attention_fuses);
  tcase_add_test(m, split_heads_attention_fuses);
  suite_add_tcase(s, m);
  return s;
}

int main(void) {
  SRunner *r = srunner_create(fuse_suite());
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed ? 1 : 0;
}
