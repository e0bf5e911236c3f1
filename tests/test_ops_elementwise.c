/*
 * Elementwise ops: the runtime ops Unary (every function code), Variadic
 * (Max Min Sum Mean), the comparisons, logic, Mod, PRelu, Pow with integer
 * bases, 8-bit integer arithmetic and Clip on integers (shape rules; kernels
 * against naive references in double with their own broadcasting index
 * math; NaN/inf, empty tensors, hostile ints), and the lowering of the ONNX
 * ops in compiler/ops/elementwise.c on small hand-made graphs (defaults,
 * legacy broadcasting, refusals).
 */
#include <check.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lower.h"
#include "oc_ops.h"

/* Function codes of Unary and Variadic, as documented in
 * runtime/ops/elementwise.c (plans store them). */
enum {
  UN_ABS = 0,
  UN_RECIPROCAL,
  UN_LOG,
  UN_SIGMOID,
  UN_TANH,
  UN_LEAKY_RELU,
  UN_ELU,
  UN_SELU,
  UN_CELU,
  UN_HARD_SIGMOID,
  UN_HARD_SWISH,
  UN_SOFTPLUS,
  UN_SOFTSIGN,
  UN_SIGN,
  UN_FLOOR,
  UN_CEIL,
  UN_ROUND,
  UN_ISNAN,
  UN_ISINF,
  UN_NOT,
  UN_COUNT
};
enum { VAR_MAX = 0, VAR_MIN, VAR_SUM, VAR_MEAN };

/* ------------------------------------------------------------------------ */
/* Runtime helpers                                                          */
/* ------------------------------------------------------------------------ */

static oc_tensor_t mk(int dtype, int rank, const int64_t *dims, void *data) {
  oc_tensor_t t = {.dtype = dtype, .rank = rank, .data = data};
  for (int i = 0; i < rank; i++) t.dims[i] = dims[i];
  return t;
}

/* Infers |op|; frees the status and returns its code. */
static oc_status_code_t infer_code(int op, oc_tensor_t **in, int n_in, oc_tensor_t *out,
                                   const int64_t *ints, int n_ints, const float *floats,
                                   int n_floats) {
  oc_tensor_t *outs[1] = {out};
  oc_op_call_t c = {.ints = ints,
                    .n_ints = n_ints,
                    .floats = floats,
                    .n_floats = n_floats,
                    .n_in = n_in,
                    .in = in,
                    .n_out = 1,
                    .out = outs};
  size_t ws = 123;
  oc_status_t s = oc_op_infer(op, &c, &ws);
  oc_status_code_t code = oc_status_code(s);
  if (!s) ck_assert_uint_eq(ws, 0);
  oc_status_free(s);
  return code;
}

/* Infers, allocates the output (filled with garbage) and runs |op|. Caller
 * frees out->data. */
static void run_op(int op, oc_tensor_t **in, int n_in, oc_tensor_t *out, const int64_t *ints,
                   int n_ints, const float *floats, int n_floats) {
  oc_tensor_t *outs[1] = {out};
  oc_op_call_t c = {.ints = ints,
                    .n_ints = n_ints,
                    .floats = floats,
                    .n_floats = n_floats,
                    .n_in = n_in,
                    .in = in,
                    .n_out = 1,
                    .out = outs};
  size_t ws = 0;
  oc_status_t s = oc_op_infer(op, &c, &ws);
  ck_assert_msg(s == OC_OK, "infer: %s", oc_status_message(s));
  size_t b = oc_tensor_bytes(out);
  out->data = malloc(b ? b : 1);
  memset(out->data, 0xAB, b ? b : 1);
  s = oc_op_get(op)->run(&c);
  ck_assert_msg(s == OC_OK, "run: %s", oc_status_message(s));
}

/* |got| matches |want| (float32 result vs double reference): NaN matches NaN,
 * an infinity only itself, else a relative/absolute tolerance. */
static int close_to(float got, double want) {
  if (isnan(want)) return isnan(got);
  if (isinf(want)) return got == (float)want;
  return fabs((double)got - want) <= 1e-6 + 1e-5 * fabs(want);
}

#define CHECK_CLOSE(got, want, what, k)                                                   \
  ck_assert_msg(close_to((got), (want)), "%s[%d]: got %.9g, want %.9g", (what), (int)(k), \
                (double)(got), (double)(want))

/* Advances a row-major multi-index; returns 0 after the last one. */
static int next_index(int rank, const int64_t *dims, int64_t *idx) {
  for (int i = rank - 1; i >= 0; i--) {
    if (++idx[i] < dims[i]) return 1;
    idx[i] = 0;
  }
  return 0;
}

/* Flat index into |t| of output multi-index |oi| (output rank |r|) under
 * numpy broadcasting: leading output axes are dropped, size-1 axes read 0. */
static int64_t bflat(const oc_tensor_t *t, int r, const int64_t *oi) {
  int64_t f = 0;
  for (int i = 0; i < t->rank; i++) {
    int64_t k = t->dims[i] == 1 ? 0 : oi[i + r - t->rank];
    f = f * t->dims[i] + k;
  }
  return f;
}

/* Deterministic pseudo-random floats in [-4, 4). */
static float frand(uint32_t *st) {
  *st = *st * 1664525u + 1013904223u;
  return ((float)(*st >> 8) / (float)(1u << 24)) * 8.0f - 4.0f;
}

/* ------------------------------------------------------------------------ */
/* shape                                                                    */
/* ------------------------------------------------------------------------ */

static const float g_ab[2] = {0.0f, 0.0f};

START_TEST(test_shape_unary) {
  int64_t d[3] = {2, 0, 5};
  oc_tensor_t x = mk(OC_DTYPE_FLOAT32, 3, d, NULL), y = {0};
  oc_tensor_t *in[1] = {&x};
  for (int64_t fn = 0; fn < UN_COUNT; fn++) {
    if (fn == UN_NOT) continue;
    int64_t ints[3] = {fn, 1, 1};
    ck_assert_int_eq(infer_code(OC_OP_UNARY, in, 1, &y, ints, fn == UN_ISINF ? 3 : 1, g_ab, 2),
                     OC_STATUS_OK);
    ck_assert_int_eq(y.rank, 3);
    ck_assert_int_eq(y.dims[1], 0);
    ck_assert_int_eq(y.dims[2], 5);
    ck_assert_int_eq(y.dtype, fn == UN_ISNAN || fn == UN_ISINF ? OC_DTYPE_BOOL : OC_DTYPE_FLOAT32);
  }
  /* Abs / Sign keep integer dtypes; Not is bool -> bool; rank 0. */
  oc_tensor_t i64 = mk(OC_DTYPE_INT64, 0, NULL, NULL), b = mk(OC_DTYPE_BOOL, 3, d, NULL);
  in[0] = &i64;
  int64_t abs_fn = UN_ABS, sign_fn = UN_SIGN, not_fn = UN_NOT;
  ck_assert_int_eq(infer_code(OC_OP_UNARY, in, 1, &y, &abs_fn, 1, g_ab, 2), OC_STATUS_OK);
  ck_assert_int_eq(y.dtype, OC_DTYPE_INT64);
  ck_assert_int_eq(y.rank, 0);
  ck_assert_int_eq(infer_code(OC_OP_UNARY, in, 1, &y, &sign_fn, 1, g_ab, 2), OC_STATUS_OK);
  in[0] = &b;
  ck_assert_int_eq(infer_code(OC_OP_UNARY, in, 1, &y, &not_fn, 1, g_ab, 2), OC_STATUS_OK);
  ck_assert_int_eq(y.dtype, OC_DTYPE_BOOL);
  ck_assert_int_eq(y.rank, 3);
}
END_TEST

START_TEST(test_shape_binary) {
  int64_t da[3] = {2, 1, 4}, db[2] = {3, 1};
  oc_tensor_t a = mk(OC_DTYPE_FLOAT32, 3, da, NULL), b = mk(OC_DTYPE_FLOAT32, 2, db, NULL), y = {0};
  oc_tensor_t *in[2] = {&a, &b};
  const int cmp_ops[2] = {OC_OP_LESS_EQUAL, OC_OP_GREATER_EQUAL};
  for (int k = 0; k < 2; k++) {
    ck_assert_int_eq(infer_code(cmp_ops[k], in, 2, &y, NULL, 0, NULL, 0), OC_STATUS_OK);
    ck_assert_int_eq(y.dtype, OC_DTYPE_BOOL);
    ck_assert_int_eq(y.rank, 3);
    ck_assert_int_eq(y.dims[0], 2);
    ck_assert_int_eq(y.dims[1], 3);
    ck_assert_int_eq(y.dims[2], 4);
  }
  int64_t fmod1 = 1;
  ck_assert_int_eq(infer_code(OC_OP_MOD, in, 2, &y, &fmod1, 1, NULL, 0), OC_STATUS_OK);
  ck_assert_int_eq(y.dtype, OC_DTYPE_FLOAT32);
  ck_assert_int_eq(y.dims[1], 3);
  const int logic_ops[3] = {OC_OP_AND, OC_OP_OR, OC_OP_XOR};
  a.dtype = b.dtype = OC_DTYPE_BOOL;
  for (int k = 0; k < 3; k++) {
    ck_assert_int_eq(infer_code(logic_ops[k], in, 2, &y, NULL, 0, NULL, 0), OC_STATUS_OK);
    ck_assert_int_eq(y.dtype, OC_DTYPE_BOOL);
    ck_assert_int_eq(y.dims[1], 3);
  }
  /* Equal on bool. */
  ck_assert_int_eq(infer_code(OC_OP_EQUAL, in, 2, &y, NULL, 0, NULL, 0), OC_STATUS_OK);
  ck_assert_int_eq(y.dtype, OC_DTYPE_BOOL);
  /* PRelu: slope (3,1) broadcasts to x (2,3,4); y has x's shape. */
  int64_t dx[3] = {2, 3, 4};
  oc_tensor_t x = mk(OC_DTYPE_FLOAT32, 3, dx, NULL), s = mk(OC_DTYPE_FLOAT32, 2, db, NULL);
  oc_tensor_t *pin[2] = {&x, &s};
  ck_assert_int_eq(infer_code(OC_OP_PRELU, pin, 2, &y, NULL, 0, NULL, 0), OC_STATUS_OK);
  ck_assert_int_eq(y.rank, 3);
  ck_assert_int_eq(y.dims[2], 4);
  /* Pow: the output has the base's dtype. */
  oc_tensor_t ib = mk(OC_DTYPE_INT32, 2, db, NULL), fe = mk(OC_DTYPE_FLOAT32, 3, da, NULL);
  oc_tensor_t *powin[2] = {&ib, &fe};
  ck_assert_int_eq(infer_code(OC_OP_POW, powin, 2, &y, NULL, 0, NULL, 0), OC_STATUS_OK);
  ck_assert_int_eq(y.dtype, OC_DTYPE_INT32);
  ck_assert_int_eq(y.rank, 3);
}
END_TEST

START_TEST(test_shape_variadic) {
  int64_t d0[3] = {2, 1, 4}, d1[2] = {3, 1}, dz[2] = {0, 1};
  oc_tensor_t a = mk(OC_DTYPE_FLOAT32, 3, d0, NULL), b = mk(OC_DTYPE_FLOAT32, 2, d1, NULL),
              s = mk(OC_DTYPE_FLOAT32, 0, NULL, NULL), y = {0};
  oc_tensor_t *in[3] = {&a, &b, &s};
  for (int64_t fn = 0; fn < 4; fn++) {
    ck_assert_int_eq(infer_code(OC_OP_VARIADIC, in, 3, &y, &fn, 1, NULL, 0), OC_STATUS_OK);
    ck_assert_int_eq(y.rank, 3);
    ck_assert_int_eq(y.dims[0], 2);
    ck_assert_int_eq(y.dims[1], 3);
    ck_assert_int_eq(y.dims[2], 4);
  }
  /* One input; a 0-size dim wins over 1. */
  int64_t fn = VAR_MAX;
  ck_assert_int_eq(infer_code(OC_OP_VARIADIC, in + 2, 1, &y, &fn, 1, NULL, 0), OC_STATUS_OK);
  ck_assert_int_eq(y.rank, 0);
  oc_tensor_t z = mk(OC_DTYPE_FLOAT32, 2, dz, NULL);
  oc_tensor_t *zin[2] = {&b, &z};
  ck_assert_int_eq(infer_code(OC_OP_VARIADIC, zin, 2, &y, &fn, 1, NULL, 0),
                   OC_STATUS_INVALID_ARGUMENT);
  int64_t dz2[2] = {0, 1};
  b.dims[0] = 1;
  z = mk(OC_DTYPE_FLOAT32, 2, dz2, NULL);
  ck_assert_int_eq(infer_code(OC_OP_VARIADIC, zin, 2, &y, &fn, 1, NULL, 0), OC_STATUS_OK);
  ck_assert_int_eq(y.dims[0], 0);
  ck_assert_int_eq(y.dims[1], 1);
  /* Max/Min on integers. */
  a.dtype = OC_DTYPE_INT32;
  ck_assert_int_eq(infer_code(OC_OP_VARIADIC, in, 1, &y, &fn, 1, NULL, 0), OC_STATUS_OK);
  ck_assert_int_eq(y.dtype, OC_DTYPE_INT32);
}
END_TEST

START_TEST(test_shape_clip_int) {
  int64_t d[2] = {3, 4};
  const int dts[4] = {OC_DTYPE_INT64, OC_DTYPE_INT32, OC_DTYPE_INT8, OC_DTYPE_UINT8};
  int64_t bounds[2] = {0, 100};
  for (int k = 0; k < 4; k++) {
    oc_tensor_t x = mk(dts[k], 2, d, NULL), y = {0};
    oc_tensor_t *in[1] = {&x};
    ck_assert_int_eq(infer_code(OC_OP_CLIP, in, 1, &y, bounds, 2, NULL, 0), OC_STATUS_OK);
    ck_assert_int_eq(y.dtype, dts[k]);
    ck_assert_int_eq(y.dims[1], 4);
  }
}
END_TEST

/* ------------------------------------------------------------------------ */
/* forward                                                                  */
/* ------------------------------------------------------------------------ */

/* Naive double references of the float unary functions. */
static double ref_unary(int fn, double x, double alpha, double beta) {
  switch (fn) {
    case UN_ABS:
      return fabs(x);
    case UN_RECIPROCAL:
      return 1.0 / x;
    case UN_LOG:
      return log(x);
    case UN_SIGMOID:
      return 1.0 / (1.0 + exp(-x));
    case UN_TANH:
      return tanh(x);
    case UN_LEAKY_RELU:
      return isnan(x) ? x : x >= 0 ? x : alpha * x;
    case UN_ELU:
      return isnan(x) ? x : x >= 0 ? x : alpha * (exp(x) - 1.0);
    case UN_SELU:
      return isnan(x) ? x : x > 0 ? beta * x : beta * (alpha * exp(x) - alpha);
    case UN_CELU:
      return isnan(x) ? x : fmax(0.0, x) + fmin(0.0, alpha * (exp(x / alpha) - 1.0));
    case UN_HARD_SIGMOID: {
      double v = alpha * x + beta; /* 0 * inf is NaN, and stays NaN (np.clip) */
      return isnan(v) ? v : fmax(0.0, fmin(1.0, v));
    }
    case UN_HARD_SWISH:
      return isnan(x) ? x : x * fmax(0.0, fmin(1.0, x / 6.0 + 0.5));
    case UN_SOFTPLUS:
      return x > 30 ? x : log(1.0 + exp(x));
    case UN_SOFTSIGN:
      return x / (1.0 + fabs(x));
    case UN_SIGN:
      return isnan(x) ? x : x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0;
    case UN_FLOOR:
      return floor(x);
    case UN_CEIL:
      return ceil(x);
    case UN_ROUND: {
      double r = floor(x);
      double f = x - r;
      if (f > 0.5 || (f == 0.5 && fmod(r, 2.0) != 0.0)) r += 1.0;
      return isfinite(x) ? r : x;
    }
  }
  return NAN;
}

static const float g_edge[] = {0.0f,   -0.0f, 0.5f,     -0.5f,      1.5f,        2.5f,    -2.5f,
                               3.5f,   -3.5f, 1e-4f,    -1e-4f,     100.0f,      -100.0f, 20.0f,
                               -20.0f, 1e30f, -1e30f,   8388609.0f, 3.0f,        -3.0f,   6.0f,
                               -6.0f,  NAN,   INFINITY, -INFINITY,  0.49999997f, -1.0f,   1.0f};

START_TEST(test_forward_unary_float) {
  enum { NE = (int)(sizeof g_edge / sizeof g_edge[0]), N = NE + 200 };
  float *buf = malloc(sizeof(float) * N);
  memcpy(buf, g_edge, sizeof g_edge);
  uint32_t st = 7;
  for (int i = NE; i < N; i++) buf[i] = frand(&st);
  int64_t d[2] = {N / 4, 4};
  oc_tensor_t x = mk(OC_DTYPE_FLOAT32, 2, d, buf);
  oc_tensor_t *in[1] = {&x};
  static const float params[][2] = {{0.0f, 0.0f}, {0.3f, 0.7f}, {2.0f, 3.0f}};
  for (int fn = UN_ABS; fn <= UN_ROUND; fn++) {
    for (int p = 0; p < 3; p++) {
      float ab[2] = {params[p][0], params[p][1]};
      if (fn == UN_CELU && ab[0] == 0.0f) continue;
      if (fn == UN_SELU && p == 0) {
        ab[0] = 1.6732632f;
        ab[1] = 1.0507010f;
      }
      int64_t ints[1] = {fn};
      oc_tensor_t y = {0};
      run_op(OC_OP_UNARY, in, 1, &y, ints, 1, ab, 2);
      const float *py = y.data;
      for (int i = 0; i < N; i++) {
        double want = ref_unary(fn, buf[i], ab[0], ab[1]);
        ck_assert_msg(close_to(py[i], want), "fn %d alpha %g beta %g x %.9g: got %.9g, want %.9g",
                      fn, ab[0], ab[1], buf[i], py[i], want);
      }
      free(y.data);
    }
  }
  free(buf);
}
END_TEST

/* Sigmoid and Softplus stay finite and exact at the extremes. */
START_TEST(test_forward_unary_stable) {
  float xs[6] = {-1000.0f, -100.0f, 100.0f, 1000.0f, -88.8f, 88.8f};
  int64_t d[1] = {6};
  oc_tensor_t x = mk(OC_DTYPE_FLOAT32, 1, d, xs), y = {0};
  oc_tensor_t *in[1] = {&x};
  int64_t sig = UN_SIGMOID, sp = UN_SOFTPLUS;
  run_op(OC_OP_UNARY, in, 1, &y, &sig, 1, g_ab, 2);
  const float *py = y.data;
  ck_assert(py[0] == 0.0f && py[1] >= 0.0f && py[1] < 1e-40f);
  ck_assert(py[2] == 1.0f && py[3] == 1.0f);
  free(y.data);
  run_op(OC_OP_UNARY, in, 1, &y, &sp, 1, g_ab, 2);
  py = y.data;
  ck_assert(py[0] == 0.0f);
  ck_assert(py[2] == 100.0f && py[3] == 1000.0f);
  ck_assert(isfinite(py[5]) && fabsf(py[5] - 88.8f) < 1e-4f);
  free(y.data);
}
END_TEST

START_TEST(test_forward_unary_int_bool) {
  int64_t v64[7] = {0, 1, -1, 42, -42, INT64_MAX, INT64_MIN};
  int32_t v32[7] = {0, 1, -1, 42, -42, INT32_MAX, INT32_MIN};
  int64_t d[1] = {7};
  oc_tensor_t x64 = mk(OC_DTYPE_INT64, 1, d, v64), x32 = mk(OC_DTYPE_INT32, 1, d, v32), y = {0};
  oc_tensor_t *in[1] = {&x64};
  int64_t abs_fn = UN_ABS, sign_fn = UN_SIGN;
  run_op(OC_OP_UNARY, in, 1, &y, &abs_fn, 1, g_ab, 2);
  const int64_t want_abs64[7] = {0, 1, 1, 42, 42, INT64_MAX, INT64_MIN}; /* wraps */
  for (int i = 0; i < 7; i++) ck_assert_int_eq(((int64_t *)y.data)[i], want_abs64[i]);
  free(y.data);
  run_op(OC_OP_UNARY, in, 1, &y, &sign_fn, 1, g_ab, 2);
  const int64_t want_sign[7] = {0, 1, -1, 1, -1, 1, -1};
  for (int i = 0; i < 7; i++) ck_assert_int_eq(((int64_t *)y.data)[i], want_sign[i]);
  free(y.data);
  in[0] = &x32;
  run_op(OC_OP_UNARY, in, 1, &y, &abs_fn, 1, g_ab, 2);
  const int32_t want_abs32[7] = {0, 1, 1, 42, 42, INT32_MAX, INT32_MIN};
  for (int i = 0; i < 7; i++) ck_assert_int_eq(((int32_t *)y.data)[i], want_abs32[i]);
  free(y.data);
  run_op(OC_OP_UNARY, in, 1, &y, &sign_fn, 1, g_ab, 2);
  for (int i = 0; i < 7; i++) ck_assert_int_eq(((int32_t *)y.data)[i], want_sign[i]);
  free(y.data);
  /* Neg on int32 wraps too (existing op). */
  run_op(OC_OP_NEG, in, 1, &y, NULL, 0, NULL, 0);
  ck_assert_int_eq(((int32_t *)y.data)[6], INT32_MIN);
  ck_assert_int_eq(((int32_t *)y.data)[3], -42);
  free(y.data);

  /* IsNaN, IsInf (every flag combination), Not. */
  float fx[6] = {1.0f, NAN, INFINITY, -INFINITY, -0.0f, 3e38f};
  int64_t d6[1] = {6};
  oc_tensor_t xf = mk(OC_DTYPE_FLOAT32, 1, d6, fx);
  in[0] = &xf;
  int64_t isnan_fn = UN_ISNAN;
  run_op(OC_OP_UNARY, in, 1, &y, &isnan_fn, 1, g_ab, 2);
  for (int i = 0; i < 6; i++) ck_assert_int_eq(((uint8_t *)y.data)[i], i == 1);
  free(y.data);
  for (int pos = 0; pos < 2; pos++) {
    for (int neg = 0; neg < 2; neg++) {
      int64_t ints[3] = {UN_ISINF, pos, neg};
      run_op(OC_OP_UNARY, in, 1, &y, ints, 3, g_ab, 2);
      for (int i = 0; i < 6; i++)
        ck_assert_int_eq(((uint8_t *)y.data)[i], (i == 2 && pos) || (i == 3 && neg));
      free(y.data);
    }
  }
  uint8_t bx[4] = {0, 1, 0, 7};
  int64_t d4[1] = {4};
  oc_tensor_t xb = mk(OC_DTYPE_BOOL, 1, d4, bx);
  in[0] = &xb;
  int64_t not_fn = UN_NOT;
  run_op(OC_OP_UNARY, in, 1, &y, &not_fn, 1, g_ab, 2);
  const uint8_t want_not[4] = {1, 0, 1, 0};
  for (int i = 0; i < 4; i++) ck_assert_int_eq(((uint8_t *)y.data)[i], want_not[i]);
  free(y.data);
}
END_TEST

/* Comparisons and logic with broadcasting, against a naive reference. */
START_TEST(test_forward_compare_logic) {
  int64_t da[3] = {2, 1, 3}, db[2] = {4, 1};
  float fa[6], fb[4];
  uint32_t st = 3;
  for (int i = 0; i < 6; i++) fa[i] = (float)(int)frand(&st);
  for (int i = 0; i < 4; i++) fb[i] = (float)(int)frand(&st);
  fa[0] = NAN;
  fb[1] = fa[4];
  oc_tensor_t a = mk(OC_DTYPE_FLOAT32, 3, da, fa), b = mk(OC_DTYPE_FLOAT32, 2, db, fb), y = {0};
  oc_tensor_t *in[2] = {&a, &b};
  for (int k = 0; k < 2; k++) {
    int op = k ? OC_OP_GREATER_EQUAL : OC_OP_LESS_EQUAL;
    run_op(op, in, 2, &y, NULL, 0, NULL, 0);
    int64_t oi[3] = {0};
    int64_t f = 0;
    do {
      float va = fa[bflat(&a, 3, oi)], vb = fb[bflat(&b, 3, oi)];
      int want = k ? va >= vb : va <= vb;
      ck_assert_int_eq(((uint8_t *)y.data)[f], want);
      f++;
    } while (next_index(3, y.dims, oi));
    ck_assert_int_eq(f, 24);
    free(y.data);
  }
  /* int64 and int32 */
  int64_t ia[3] = {INT64_MIN, 0, 5}, ib[3] = {INT64_MIN, 1, 4};
  int64_t d3[1] = {3};
  oc_tensor_t a64 = mk(OC_DTYPE_INT64, 1, d3, ia), b64 = mk(OC_DTYPE_INT64, 1, d3, ib);
  oc_tensor_t *in64[2] = {&a64, &b64};
  run_op(OC_OP_LESS_EQUAL, in64, 2, &y, NULL, 0, NULL, 0);
  ck_assert(((uint8_t *)y.data)[0] == 1 && ((uint8_t *)y.data)[1] == 1 &&
            ((uint8_t *)y.data)[2] == 0);
  free(y.data);
  int32_t ja[3] = {-3, 0, 5}, jb[3] = {-3, 1, 4};
  oc_tensor_t a32 = mk(OC_DTYPE_INT32, 1, d3, ja), b32 = mk(OC_DTYPE_INT32, 1, d3, jb);
  oc_tensor_t *in32[2] = {&a32, &b32};
  run_op(OC_OP_GREATER_EQUAL, in32, 2, &y, NULL, 0, NULL, 0);
  ck_assert(((uint8_t *)y.data)[0] == 1 && ((uint8_t *)y.data)[1] == 0 &&
            ((uint8_t *)y.data)[2] == 1);
  free(y.data);

  /* And, Or, Xor, Equal on bool: (1,4,1,2) vs (3,2). */
  int64_t dla[4] = {1, 4, 1, 2}, dlb[2] = {3, 2};
  uint8_t la[8], lb[6];
  for (int i = 0; i < 8; i++) la[i] = (uint8_t)((i * 5 + 1) % 3 == 0);
  for (int i = 0; i < 6; i++) lb[i] = (uint8_t)(i % 2);
  la[7] = 2; /* a non-canonical true */
  oc_tensor_t ba = mk(OC_DTYPE_BOOL, 4, dla, la), bb = mk(OC_DTYPE_BOOL, 2, dlb, lb);
  oc_tensor_t *lin[2] = {&ba, &bb};
  const int ops[4] = {OC_OP_AND, OC_OP_OR, OC_OP_XOR, OC_OP_EQUAL};
  for (int k = 0; k < 4; k++) {
    run_op(ops[k], lin, 2, &y, NULL, 0, NULL, 0);
    ck_assert_int_eq(y.rank, 4);
    ck_assert_int_eq(y.dims[0], 1);
    ck_assert_int_eq(y.dims[1], 4);
    ck_assert_int_eq(y.dims[2], 3);
    ck_assert_int_eq(y.dims[3], 2);
    int64_t oi[4] = {0}, f = 0;
    do {
      int p = la[bflat(&ba, 4, oi)] != 0, q = lb[bflat(&bb, 4, oi)] != 0;
      int want = k == 0 ? p && q : k == 1 ? p || q : k == 2 ? p != q : -1;
      if (k == 3) want = la[bflat(&ba, 4, oi)] == lb[bflat(&bb, 4, oi)];
      ck_assert_int_eq(((uint8_t *)y.data)[f], want);
      f++;
    } while (next_index(4, y.dims, oi));
    free(y.data);
  }
}
END_TEST

/* Python-style and C-style remainders against a reference from floor and
 * trunc division in long double. */
START_TEST(test_forward_mod) {
  int64_t xa[10] = {-4, 7, 5, 4, -7, 8, INT64_MIN, INT64_MIN, 9, -9};
  int64_t xb[10] = {2, -3, 8, -2, 3, 5, -1, 7, 0, 0};
  int64_t d[1] = {10};
  oc_tensor_t a = mk(OC_DTYPE_INT64, 1, d, xa), b = mk(OC_DTYPE_INT64, 1, d, xb), y = {0};
  oc_tensor_t *in[2] = {&a, &b};
  for (int64_t fm = 0; fm < 2; fm++) {
    run_op(OC_OP_MOD, in, 2, &y, &fm, 1, NULL, 0);
    for (int i = 0; i < 10; i++) {
      int64_t want = 0;
      if (xb[i] != 0 && xb[i] != -1) {
        want = xa[i] % xb[i];
        if (!fm && want != 0 && (want < 0) != (xb[i] < 0)) want += xb[i];
      }
      ck_assert_msg(((int64_t *)y.data)[i] == want, "fmod %d: %lld mod %lld = %lld, want %lld",
                    (int)fm, (long long)xa[i], (long long)xb[i], (long long)((int64_t *)y.data)[i],
                    (long long)want);
    }
    free(y.data);
  }
  /* The ONNX node tests' values: np.mod and np.fmod. */
  int32_t ia[6] = {-4, 7, 5, 4, -7, 8}, ib[6] = {2, -3, 8, -2, 3, 5};
  int64_t d6[1] = {6};
  oc_tensor_t a32 = mk(OC_DTYPE_INT32, 1, d6, ia), b32 = mk(OC_DTYPE_INT32, 1, d6, ib);
  oc_tensor_t *in32[2] = {&a32, &b32};
  int64_t fm0 = 0, fm1 = 1;
  run_op(OC_OP_MOD, in32, 2, &y, &fm0, 1, NULL, 0);
  const int32_t want_mod[6] = {0, -2, 5, 0, 2, 3};
  for (int i = 0; i < 6; i++) ck_assert_int_eq(((int32_t *)y.data)[i], want_mod[i]);
  free(y.data);
  run_op(OC_OP_MOD, in32, 2, &y, &fm1, 1, NULL, 0);
  const int32_t want_fmod[6] = {0, 1, 5, 0, -1, 3};
  for (int i = 0; i < 6; i++) ck_assert_int_eq(((int32_t *)y.data)[i], want_fmod[i]);
  free(y.data);
  /* float32 fmod, broadcast against a scalar. */
  float fa[5] = {-4.3f, 7.2f, 5.0f, -0.0f, INFINITY}, fb[1] = {-2.1f};
  int64_t d5[1] = {5};
  oc_tensor_t af = mk(OC_DTYPE_FLOAT32, 1, d5, fa), bf = mk(OC_DTYPE_FLOAT32, 0, NULL, fb);
  oc_tensor_t *inf[2] = {&af, &bf};
  run_op(OC_OP_MOD, inf, 2, &y, &fm1, 1, NULL, 0);
  for (int i = 0; i < 5; i++)
    CHECK_CLOSE(((float *)y.data)[i], fmod((double)fa[i], (double)fb[0]), "fmod", i);
  free(y.data);
}
END_TEST

START_TEST(test_forward_prelu) {
  int64_t dx[3] = {2, 3, 4}, ds[2] = {3, 1};
  float px[24], ps[3] = {0.25f, -2.0f, 0.0f};
  uint32_t st = 11;
  for (int i = 0; i < 24; i++) px[i] = frand(&st);
  px[5] = NAN;
  px[6] = -INFINITY;
  oc_tensor_t x = mk(OC_DTYPE_FLOAT32, 3, dx, px), s = mk(OC_DTYPE_FLOAT32, 2, ds, ps), y = {0};
  oc_tensor_t *in[2] = {&x, &s};
  run_op(OC_OP_PRELU, in, 2, &y, NULL, 0, NULL, 0);
  int64_t oi[3] = {0}, f = 0;
  do {
    double xv = px[f], sv = ps[bflat(&s, 3, oi)];
    double want = xv < 0 ? sv * xv : xv;
    CHECK_CLOSE(((float *)y.data)[f], want, "prelu", f);
    f++;
  } while (next_index(3, dx, oi));
  free(y.data);
  /* int64 */
  int64_t ix[4] = {-3, 4, INT64_MIN, -1}, is[1] = {-2};
  int64_t d4[1] = {4}, d1[1] = {1};
  oc_tensor_t xi = mk(OC_DTYPE_INT64, 1, d4, ix), si = mk(OC_DTYPE_INT64, 1, d1, is);
  oc_tensor_t *iin[2] = {&xi, &si};
  run_op(OC_OP_PRELU, iin, 2, &y, NULL, 0, NULL, 0);
  const int64_t want[4] = {6, 4, 0 /* wraps */, 2};
  for (int i = 0; i < 4; i++) ck_assert_int_eq(((int64_t *)y.data)[i], want[i]);
  free(y.data);
}
END_TEST

/* Integer Pow: exact wrapping powers, negative exponents, float exponents
 * through double, truncated and saturated. */
START_TEST(test_forward_pow_int) {
  int64_t base[8] = {2, -3, 1, -1, 0, 7, 3, -2};
  int64_t expo[8] = {10, 3, -5, -3, 0, 0, 41, 63};
  int64_t d[1] = {8};
  oc_tensor_t a = mk(OC_DTYPE_INT64, 1, d, base), b = mk(OC_DTYPE_INT64, 1, d, expo), y = {0};
  oc_tensor_t *in[2] = {&a, &b};
  run_op(OC_OP_POW, in, 2, &y, NULL, 0, NULL, 0);
  for (int i = 0; i < 8; i++) {
    uint64_t r = 1;
    int64_t want;
    if (expo[i] < 0) {
      want = base[i] == 1 ? 1 : base[i] == -1 ? ((expo[i] & 1) ? -1 : 1) : 0;
    } else {
      for (int64_t k = 0; k < expo[i]; k++) r *= (uint64_t)base[i];
      want = (int64_t)r;
    }
    ck_assert_msg(((int64_t *)y.data)[i] == want, "%lld ** %lld = %lld, want %lld",
                  (long long)base[i], (long long)expo[i], (long long)((int64_t *)y.data)[i],
                  (long long)want);
  }
  free(y.data);
  /* int32 base, int32 exponent: wraps in 32 bits. */
  int32_t b32[3] = {3, 2, -5}, e32[3] = {3, 31, 3};
  int64_t d3[1] = {3};
  oc_tensor_t a32 = mk(OC_DTYPE_INT32, 1, d3, b32), x32 = mk(OC_DTYPE_INT32, 1, d3, e32);
  oc_tensor_t *in32[2] = {&a32, &x32};
  run_op(OC_OP_POW, in32, 2, &y, NULL, 0, NULL, 0);
  ck_assert_int_eq(((int32_t *)y.data)[0], 27);
  ck_assert_int_eq(((int32_t *)y.data)[1], INT32_MIN);
  ck_assert_int_eq(((int32_t *)y.data)[2], -125);
  free(y.data);
  /* int32 base, float exponent: pow in double, truncated, saturated, NaN 0. */
  float ef[3] = {0.5f, 40.0f, NAN};
  int32_t bf[3] = {10, 10, 4};
  oc_tensor_t ab = mk(OC_DTYPE_INT32, 1, d3, bf), eb = mk(OC_DTYPE_FLOAT32, 1, d3, ef);
  oc_tensor_t *inf[2] = {&ab, &eb};
  run_op(OC_OP_POW, inf, 2, &y, NULL, 0, NULL, 0);
  ck_assert_int_eq(((int32_t *)y.data)[0], 3);
  ck_assert_int_eq(((int32_t *)y.data)[1], INT32_MAX);
  ck_assert_int_eq(((int32_t *)y.data)[2], 0);
  free(y.data);
  /* int64 base, float exponent; broadcasting. */
  int64_t b64[2] = {5, -2};
  float e1[1] = {3.0f};
  int64_t d2[1] = {2};
  oc_tensor_t a64 = mk(OC_DTYPE_INT64, 1, d2, b64), es = mk(OC_DTYPE_FLOAT32, 0, NULL, e1);
  oc_tensor_t *in64[2] = {&a64, &es};
  run_op(OC_OP_POW, in64, 2, &y, NULL, 0, NULL, 0);
  ck_assert_int_eq(((int64_t *)y.data)[0], 125);
  ck_assert_int_eq(((int64_t *)y.data)[1], -8);
  free(y.data);
}
END_TEST

/* Max, Min, Sum, Mean over 1-4 broadcast inputs against a naive reference. */
START_TEST(test_forward_variadic) {
  int64_t shapes[4][3] = {{2, 1, 4}, {3, 1}, {1}, {2, 3, 4}};
  int ranks[4] = {3, 2, 1, 3};
  float *bufs[4];
  oc_tensor_t xs[4];
  uint32_t st = 5;
  for (int k = 0; k < 4; k++) {
    int64_t n = 1;
    for (int i = 0; i < ranks[k]; i++) n *= shapes[k][i];
    bufs[k] = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) bufs[k][i] = frand(&st);
    xs[k] = mk(OC_DTYPE_FLOAT32, ranks[k], shapes[k], bufs[k]);
  }
  bufs[0][1] = NAN; /* propagates through Max and Min */
  bufs[3][20] = NAN;
  for (int n_in = 1; n_in <= 4; n_in++) {
    oc_tensor_t *in[4] = {&xs[0], &xs[1], &xs[2], &xs[3]};
    for (int64_t fn = 0; fn < 4; fn++) {
      oc_tensor_t y = {0};
      run_op(OC_OP_VARIADIC, in, n_in, &y, &fn, 1, NULL, 0);
      int64_t oi[OC_MAX_RANK] = {0}, f = 0;
      do {
        double acc = 0;
        for (int k = 0; k < n_in; k++) {
          double v = bufs[k][bflat(&xs[k], y.rank, oi)];
          if (k == 0)
            acc = v;
          else if (fn == VAR_MAX)
            acc = isnan(acc) || isnan(v) ? NAN : fmax(acc, v);
          else if (fn == VAR_MIN)
            acc = isnan(acc) || isnan(v) ? NAN : fmin(acc, v);
          else
            acc += v;
        }
        if (fn == VAR_MEAN) acc /= n_in;
        CHECK_CLOSE(((float *)y.data)[f], acc, "variadic", f);
        f++;
      } while (next_index(y.rank, y.dims, oi));
      ck_assert_int_eq(f, oc_tensor_numel(&y));
      free(y.data);
    }
  }
  for (int k = 0; k < 4; k++) free(bufs[k]);
  /* int64 / int32 Max and Min, with extremes. */
  int64_t a64[3] = {INT64_MIN, 5, -1}, b64[3] = {0, INT64_MAX, -2};
  int64_t d3[1] = {3};
  oc_tensor_t a = mk(OC_DTYPE_INT64, 1, d3, a64), b = mk(OC_DTYPE_INT64, 1, d3, b64), y = {0};
  oc_tensor_t *in[2] = {&a, &b};
  int64_t fmax_ = VAR_MAX, fmin_ = VAR_MIN;
  run_op(OC_OP_VARIADIC, in, 2, &y, &fmax_, 1, NULL, 0);
  ck_assert(((int64_t *)y.data)[0] == 0 && ((int64_t *)y.data)[1] == INT64_MAX &&
            ((int64_t *)y.data)[2] == -1);
  free(y.data);
  int32_t a32[3] = {INT32_MIN, 5, -1}, b32[3] = {0, INT32_MAX, -2};
  oc_tensor_t c = mk(OC_DTYPE_INT32, 1, d3, a32), e = mk(OC_DTYPE_INT32, 1, d3, b32);
  in[0] = &c;
  in[1] = &e;
  run_op(OC_OP_VARIADIC, in, 2, &y, &fmin_, 1, NULL, 0);
  ck_assert(((int32_t *)y.data)[0] == INT32_MIN && ((int32_t *)y.data)[1] == 5 &&
            ((int32_t *)y.data)[2] == -2);
  free(y.data);
  /* Empty output. */
  int64_t dz[2] = {0, 3}, d13[2] = {1, 3};
  float one[3] = {1, 2, 3};
  oc_tensor_t z = mk(OC_DTYPE_FLOAT32, 2, dz, NULL), o = mk(OC_DTYPE_FLOAT32, 2, d13, one);
  oc_tensor_t *zin[2] = {&o, &z};
  int64_t fsum = VAR_MEAN;
  run_op(OC_OP_VARIADIC, zin, 2, &y, &fsum, 1, NULL, 0);
  ck_assert_int_eq(oc_tensor_numel(&y), 0);
  free(y.data);
}
END_TEST

/* int8 and uint8 arithmetic wraps, divides toward zero, and takes both
 * remainders; Max/Min on them. */
START_TEST(test_forward_small_ints) {
  uint8_t ua[5] = {250, 3, 200, 7, 0}, ub[5] = {10, 5, 2, 0, 9};
  int64_t d[1] = {5};
  oc_tensor_t a = mk(OC_DTYPE_UINT8, 1, d, ua), b = mk(OC_DTYPE_UINT8, 1, d, ub), y = {0};
  oc_tensor_t *in[2] = {&a, &b};
  const int ops[5] = {OC_OP_ADD, OC_OP_SUB, OC_OP_MUL, OC_OP_DIV, OC_OP_LESS_EQUAL};
  for (int k = 0; k < 5; k++) {
    run_op(ops[k], in, 2, &y, NULL, 0, NULL, 0);
    for (int i = 0; i < 5; i++) {
      unsigned p = ua[i], q = ub[i], want;
      switch (k) {
        case 0:
          want = (p + q) & 255u;
          break;
        case 1:
          want = (p - q) & 255u;
          break;
        case 2:
          want = (p * q) & 255u;
          break;
        case 3:
          want = q ? p / q : 0;
          break;
        default:
          want = p <= q;
          break;
      }
      ck_assert_int_eq(((uint8_t *)y.data)[i], want);
    }
    free(y.data);
  }
  int8_t sa[6] = {-128, -7, 7, -7, 127, 5}, sb[6] = {-1, 3, -3, -3, 2, 0};
  int64_t d6[1] = {6};
  oc_tensor_t c = mk(OC_DTYPE_INT8, 1, d6, sa), e = mk(OC_DTYPE_INT8, 1, d6, sb);
  oc_tensor_t *sin[2] = {&c, &e};
  run_op(OC_OP_DIV, sin, 2, &y, NULL, 0, NULL, 0);
  const int8_t want_div[6] = {-128 /* wraps */, -2, -2, 2, 63, 0};
  for (int i = 0; i < 6; i++) ck_assert_int_eq(((int8_t *)y.data)[i], want_div[i]);
  free(y.data);
  int64_t fm0 = 0, fm1 = 1;
  run_op(OC_OP_MOD, sin, 2, &y, &fm0, 1, NULL, 0);
  const int8_t want_mod[6] = {0, 2, -2, -1, 1, 0};
  for (int i = 0; i < 6; i++) ck_assert_int_eq(((int8_t *)y.data)[i], want_mod[i]);
  free(y.data);
  run_op(OC_OP_MOD, sin, 2, &y, &fm1, 1, NULL, 0);
  const int8_t want_fmod[6] = {0, -1, 1, -1, 1, 0};
  for (int i = 0; i < 6; i++) ck_assert_int_eq(((int8_t *)y.data)[i], want_fmod[i]);
  free(y.data);
  int64_t fmax_ = VAR_MAX, fmin_ = VAR_MIN;
  run_op(OC_OP_VARIADIC, sin, 2, &y, &fmax_, 1, NULL, 0);
  const int8_t want_max[6] = {-1, 3, 7, -3, 127, 5};
  for (int i = 0; i < 6; i++) ck_assert_int_eq(((int8_t *)y.data)[i], want_max[i]);
  free(y.data);
  run_op(OC_OP_VARIADIC, in, 2, &y, &fmin_, 1, NULL, 0);
  for (int i = 0; i < 5; i++)
    ck_assert_int_eq(((uint8_t *)y.data)[i], ua[i] < ub[i] ? ua[i] : ub[i]);
  free(y.data);
  /* Pow and PRelu stay float32/int64/int32. */
  ck_assert_int_eq(infer_code(OC_OP_POW, sin, 2, &y, NULL, 0, NULL, 0), OC_STATUS_UNSUPPORTED);
  ck_assert_int_eq(infer_code(OC_OP_PRELU, sin, 2, &y, NULL, 0, NULL, 0), OC_STATUS_UNSUPPORTED);
}
END_TEST

START_TEST(test_forward_clip_int) {
  int8_t x8[5] = {-128, -5, 0, 7, 127};
  int64_t d[1] = {5};
  oc_tensor_t x = mk(OC_DTYPE_INT8, 1, d, x8), y = {0};
  oc_tensor_t *in[1] = {&x};
  int64_t b[2] = {-6, 6};
  run_op(OC_OP_CLIP, in, 1, &y, b, 2, NULL, 0);
  const int8_t want8[5] = {-6, -5, 0, 6, 6};
  for (int i = 0; i < 5; i++) ck_assert_int_eq(((int8_t *)y.data)[i], want8[i]);
  free(y.data);
  int64_t x64[5] = {INT64_MIN, -5, 0, 7, INT64_MAX};
  oc_tensor_t xl = mk(OC_DTYPE_INT64, 1, d, x64);
  in[0] = &xl;
  int64_t bl[2] = {INT64_MIN + 1, 3};
  run_op(OC_OP_CLIP, in, 1, &y, bl, 2, NULL, 0);
  const int64_t want64[5] = {INT64_MIN + 1, -5, 0, 3, 3};
  for (int i = 0; i < 5; i++) ck_assert_int_eq(((int64_t *)y.data)[i], want64[i]);
  free(y.data);
  /* min > max: everything is max (numpy's clip). */
  int64_t swapped[2] = {4, 1};
  run_op(OC_OP_CLIP, in, 1, &y, swapped, 2, NULL, 0);
  for (int i = 0; i < 5; i++) ck_assert_int_eq(((int64_t *)y.data)[i], 1);
  free(y.data);
  uint8_t xu[3] = {0, 100, 255};
  int64_t d3[1] = {3};
  oc_tensor_t xuu = mk(OC_DTYPE_UINT8, 1, d3, xu);
  in[0] = &xuu;
  int64_t bu[2] = {10, 200};
  run_op(OC_OP_CLIP, in, 1, &y, bu, 2, NULL, 0);
  ck_assert(((uint8_t *)y.data)[0] == 10 && ((uint8_t *)y.data)[1] == 100 &&
            ((uint8_t *)y.data)[2] == 200);
  free(y.data);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* errors                                                                   */
/* ------------------------------------------------------------------------ */

START_TEST(test_errors_unary) {
  int64_t d[1] = {4};
  oc_tensor_t x = mk(OC_DTYPE_FLOAT32, 1, d, NULL), y = {0};
  oc_tensor_t *in[1] = {&x};
  const int64_t bad_fn[5] = {-1, UN_COUNT, 1000, INT64_MAX, INT64_MIN};
  for (int k = 0; k < 5; k++)
    ck_assert_int_eq(infer_code(OC_OP_UNARY, in, 1, &y, &bad_fn[k], 1, g_ab, 2),
                     OC_STATUS_INVALID_ARGUMENT);
  int64_t sig[3] = {UN_SIGMOID, 0, 0};
  ck_assert_int_eq(infer_code(OC_OP_UNARY, in, 1, &y, sig, 0, g_ab, 2), OC_STATUS_INVALID_ARGUMENT);
  ck_assert_int_eq(infer_code(OC_OP_UNARY, in, 1, &y, sig, 2, g_ab, 2), OC_STATUS_INVALID_ARGUMENT);
  ck_assert_int_eq(infer_code(OC_OP_UNARY, in, 1, &y, sig, 1, g_ab, 1), OC_STATUS_INVALID_ARGUMENT);
  ck_assert_int_eq(infer_code(OC_OP_UNARY, in, 1, &y, sig, 1, NULL, 0), OC_STATUS_INVALID_ARGUMENT);
  ck_assert_int_eq(infer_code(OC_OP_UNARY, in, 1, &y, sig, -5, g_ab, 2),
                   OC_STATUS_INVALID_ARGUMENT);
  ck_assert_int_eq(infer_code(OC_OP_UNARY, in, 1, &y, sig, 1, g_ab, -1),
                   OC_STATUS_INVALID_ARGUMENT);
  int64_t isinf_bad[3][3] = {{UN_ISINF, 2, 0}, {UN_ISINF, 0, -1}, {UN_ISINF, 1, INT64_MAX}};
  for (int k = 0; k < 3; k++)
    ck_assert_int_eq(infer_code(OC_OP_UNARY, in, 1, &y, isinf_bad[k], 3, g_ab, 2),
                     OC_STATUS_INVALID_ARGUMENT);
  int64_t isinf_short[1] = {UN_ISINF};
  ck_assert_int_eq(infer_code(OC_OP_UNARY, in, 1, &y, isinf_short, 1, g_ab, 2),
                   OC_STATUS_INVALID_ARGUMENT);
  /* Dtypes: float-only functions refuse ints; Not refuses float. */
  oc_tensor_t xi = mk(OC_DTYPE_INT64, 1, d, NULL), xb = mk(OC_DTYPE_BOOL, 1, d, NULL),
              xd = mk(OC_DTYPE_FLOAT64, 1, d, NULL);
  in[0] = &xi;
  ck_assert_int_eq(infer_code(OC_OP_UNARY, in, 1, &y, sig, 1, g_ab, 2), OC_STATUS_UNSUPPORTED);
  in[0] = &xb;
  int64_t abs_fn = UN_ABS;
  ck_assert_int_eq(infer_code(OC_OP_UNARY, in, 1, &y, &abs_fn, 1, g_ab, 2), OC_STATUS_UNSUPPORTED);
  in[0] = &xd;
  ck_assert_int_eq(infer_code(OC_OP_UNARY, in, 1, &y, sig, 1, g_ab, 2), OC_STATUS_UNSUPPORTED);
  in[0] = &x;
  int64_t not_fn = UN_NOT;
  ck_assert_int_eq(infer_code(OC_OP_UNARY, in, 1, &y, &not_fn, 1, g_ab, 2), OC_STATUS_UNSUPPORTED);
}
END_TEST

START_TEST(test_errors_binary) {
  int64_t da[2] = {2, 3}, db[2] = {3, 2};
  oc_tensor_t a = mk(OC_DTYPE_FLOAT32, 2, da, NULL), b = mk(OC_DTYPE_FLOAT32, 2, db, NULL), y = {0};
  oc_tensor_t *in[2] = {&a, &b};
  ck_assert_int_eq(infer_code(OC_OP_LESS_EQUAL, in, 2, &y, NULL, 0, NULL, 0),
                   OC_STATUS_INVALID_ARGUMENT);
  b = mk(OC_DTYPE_FLOAT32, 2, da, NULL);
  /* Binary ops take no ints or floats. */
  int64_t junk = 7;
  ck_assert_int_eq(infer_code(OC_OP_ADD, in, 2, &y, &junk, 1, NULL, 0), OC_STATUS_INVALID_ARGUMENT);
  ck_assert_int_eq(infer_code(OC_OP_AND, in, 2, &y, NULL, 0, NULL, 0), OC_STATUS_UNSUPPORTED);
  /* Mod: fmod must be 0 or 1; float32 needs 1. */
  const int64_t bad_fmod[4] = {2, -1, INT64_MAX, INT64_MIN};
  for (int k = 0; k < 4; k++)
    ck_assert_int_eq(infer_code(OC_OP_MOD, in, 2, &y, &bad_fmod[k], 1, NULL, 0),
                     OC_STATUS_INVALID_ARGUMENT);
  int64_t fm0 = 0;
  ck_assert_int_eq(infer_code(OC_OP_MOD, in, 2, &y, &fm0, 1, NULL, 0), OC_STATUS_INVALID_ARGUMENT);
  ck_assert_int_eq(infer_code(OC_OP_MOD, in, 2, &y, NULL, 0, NULL, 0), OC_STATUS_INVALID_ARGUMENT);
  /* Mixed dtypes. */
  b.dtype = OC_DTYPE_INT64;
  ck_assert_int_eq(infer_code(OC_OP_GREATER_EQUAL, in, 2, &y, NULL, 0, NULL, 0),
                   OC_STATUS_INVALID_ARGUMENT);
  b.dtype = OC_DTYPE_BOOL;
  ck_assert_int_eq(infer_code(OC_OP_POW, in, 2, &y, NULL, 0, NULL, 0), OC_STATUS_UNSUPPORTED);
  a.dtype = OC_DTYPE_BOOL;
  b.dtype = OC_DTYPE_BOOL;
  ck_assert_int_eq(infer_code(OC_OP_LESS_EQUAL, in, 2, &y, NULL, 0, NULL, 0),
                   OC_STATUS_UNSUPPORTED);
  ck_assert_int_eq(infer_code(OC_OP_PRELU, in, 2, &y, NULL, 0, NULL, 0), OC_STATUS_UNSUPPORTED);
  /* PRelu: the slope must broadcast to x, not widen it. */
  int64_t dx[2] = {1, 3}, ds[2] = {2, 3}, ds3[3] = {1, 1, 3};
  oc_tensor_t x = mk(OC_DTYPE_FLOAT32, 2, dx, NULL), s = mk(OC_DTYPE_FLOAT32, 2, ds, NULL);
  oc_tensor_t *pin[2] = {&x, &s};
  ck_assert_int_eq(infer_code(OC_OP_PRELU, pin, 2, &y, NULL, 0, NULL, 0),
                   OC_STATUS_INVALID_ARGUMENT);
  s = mk(OC_DTYPE_FLOAT32, 3, ds3, NULL);
  ck_assert_int_eq(infer_code(OC_OP_PRELU, pin, 2, &y, NULL, 0, NULL, 0),
                   OC_STATUS_INVALID_ARGUMENT);
  /* Arity. */
  ck_assert_int_eq(infer_code(OC_OP_XOR, pin, 1, &y, NULL, 0, NULL, 0), OC_STATUS_INVALID_ARGUMENT);
}
END_TEST

START_TEST(test_errors_variadic) {
  int64_t d[1] = {3}, d2[1] = {4};
  oc_tensor_t a = mk(OC_DTYPE_FLOAT32, 1, d, NULL), b = mk(OC_DTYPE_FLOAT32, 1, d2, NULL), y = {0};
  oc_tensor_t *in[3] = {&a, &b, NULL};
  int64_t fn = VAR_SUM;
  ck_assert_int_eq(infer_code(OC_OP_VARIADIC, in, 2, &y, &fn, 1, NULL, 0),
                   OC_STATUS_INVALID_ARGUMENT);
  in[1] = &a;
  const int64_t bad_fn[4] = {-1, 4, INT64_MAX, INT64_MIN};
  for (int k = 0; k < 4; k++)
    ck_assert_int_eq(infer_code(OC_OP_VARIADIC, in, 2, &y, &bad_fn[k], 1, NULL, 0),
                     OC_STATUS_INVALID_ARGUMENT);
  ck_assert_int_eq(infer_code(OC_OP_VARIADIC, in, 2, &y, NULL, 0, NULL, 0),
                   OC_STATUS_INVALID_ARGUMENT);
  int64_t two[2] = {0, 0};
  ck_assert_int_eq(infer_code(OC_OP_VARIADIC, in, 2, &y, two, 2, NULL, 0),
                   OC_STATUS_INVALID_ARGUMENT);
  ck_assert_int_eq(infer_code(OC_OP_VARIADIC, in, 2, &y, &fn, 1, g_ab, 1),
                   OC_STATUS_INVALID_ARGUMENT);
  /* An absent input in the middle. */
  ck_assert_int_eq(infer_code(OC_OP_VARIADIC, in, 3, &y, &fn, 1, NULL, 0),
                   OC_STATUS_INVALID_ARGUMENT);
  /* No inputs; too many inputs. */
  ck_assert_int_eq(infer_code(OC_OP_VARIADIC, in, 0, &y, &fn, 1, NULL, 0),
                   OC_STATUS_INVALID_ARGUMENT);
  oc_tensor_t *many[OC_MAX_OP_INPUTS + 1];
  for (int k = 0; k <= OC_MAX_OP_INPUTS; k++) many[k] = &a;
  ck_assert_int_eq(infer_code(OC_OP_VARIADIC, many, OC_MAX_OP_INPUTS, &y, &fn, 1, NULL, 0),
                   OC_STATUS_OK);
  ck_assert_int_eq(infer_code(OC_OP_VARIADIC, many, OC_MAX_OP_INPUTS + 1, &y, &fn, 1, NULL, 0),
                   OC_STATUS_INVALID_ARGUMENT);
  /* Dtypes: Sum/Mean are float32 only; mixed dtypes; bool. */
  oc_tensor_t i = mk(OC_DTYPE_INT64, 1, d, NULL);
  in[0] = &i;
  in[1] = &i;
  ck_assert_int_eq(infer_code(OC_OP_VARIADIC, in, 2, &y, &fn, 1, NULL, 0), OC_STATUS_UNSUPPORTED);
  in[1] = &a;
  int64_t fmax_ = VAR_MAX;
  ck_assert_int_eq(infer_code(OC_OP_VARIADIC, in, 2, &y, &fmax_, 1, NULL, 0),
                   OC_STATUS_INVALID_ARGUMENT);
  oc_tensor_t bo = mk(OC_DTYPE_BOOL, 1, d, NULL);
  in[0] = &bo;
  ck_assert_int_eq(infer_code(OC_OP_VARIADIC, in, 1, &y, &fmax_, 1, NULL, 0),
                   OC_STATUS_UNSUPPORTED);
}
END_TEST

START_TEST(test_errors_clip) {
  int64_t d[1] = {3};
  oc_tensor_t x = mk(OC_DTYPE_INT8, 1, d, NULL), y = {0};
  oc_tensor_t *in[1] = {&x};
  int64_t out_of_range[3][2] = {{-129, 0}, {0, 128}, {INT64_MIN, INT64_MAX}};
  for (int k = 0; k < 3; k++)
    ck_assert_int_eq(infer_code(OC_OP_CLIP, in, 1, &y, out_of_range[k], 2, NULL, 0),
                     OC_STATUS_INVALID_ARGUMENT);
  float fb[2] = {0, 1};
  int64_t ok[2] = {0, 1};
  ck_assert_int_eq(infer_code(OC_OP_CLIP, in, 1, &y, NULL, 0, fb, 2), OC_STATUS_INVALID_ARGUMENT);
  ck_assert_int_eq(infer_code(OC_OP_CLIP, in, 1, &y, ok, 1, NULL, 0), OC_STATUS_INVALID_ARGUMENT);
  ck_assert_int_eq(infer_code(OC_OP_CLIP, in, 1, &y, ok, 2, fb, 2), OC_STATUS_INVALID_ARGUMENT);
  x.dtype = OC_DTYPE_UINT8;
  int64_t neg[2] = {-1, 5};
  ck_assert_int_eq(infer_code(OC_OP_CLIP, in, 1, &y, neg, 2, NULL, 0), OC_STATUS_INVALID_ARGUMENT);
  x.dtype = OC_DTYPE_FLOAT32;
  ck_assert_int_eq(infer_code(OC_OP_CLIP, in, 1, &y, ok, 2, NULL, 0), OC_STATUS_INVALID_ARGUMENT);
  ck_assert_int_eq(infer_code(OC_OP_CLIP, in, 1, &y, ok, 2, fb, 2), OC_STATUS_INVALID_ARGUMENT);
  x.dtype = OC_DTYPE_BOOL;
  ck_assert_int_eq(infer_code(OC_OP_CLIP, in, 1, &y, NULL, 0, fb, 2), OC_STATUS_UNSUPPORTED);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* lowering: ONNX semantics                                                 */
/* ------------------------------------------------------------------------ */

oc_status_t oc_lower_add(oc_lower_t *lw);
oc_status_t oc_lower_and(oc_lower_t *lw);
oc_status_t oc_lower_mod(oc_lower_t *lw);
oc_status_t oc_lower_selu(oc_lower_t *lw);
oc_status_t oc_lower_celu(oc_lower_t *lw);
oc_status_t oc_lower_leakyrelu(oc_lower_t *lw);
oc_status_t oc_lower_hardsigmoid(oc_lower_t *lw);
oc_status_t oc_lower_isinf(oc_lower_t *lw);
oc_status_t oc_lower_max(oc_lower_t *lw);
oc_status_t oc_lower_mean(oc_lower_t *lw);
oc_status_t oc_lower_clip(oc_lower_t *lw);
oc_status_t oc_lower_sigmoid(oc_lower_t *lw);

/* A one-node graph under construction. */
typedef struct fx_s {
  oc_graph_t *g;
  oc_node_t node;
  int in[8], out[8];
  oc_attr_t attrs[4];
  oc_lower_t lw;
} fx_t;

static void fx_init(fx_t *f, const char *op, int64_t opset) {
  memset(f, 0, sizeof *f);
  f->g = oc_graph_new();
  f->node.name = (char *)"n";
  f->node.op_type = (char *)op;
  f->node.domain = (char *)"";
  f->node.in = f->in;
  f->node.out = f->out;
  f->node.attrs = f->attrs;
  f->lw = (oc_lower_t){.g = f->g, .node = &f->node, .opset = opset, .fold_limit_bytes = 1 << 20};
}

/* A run-time input of the given type. */
static void fx_input(fx_t *f, int dtype, int rank, const int64_t *dims) {
  char name[16];
  snprintf(name, sizeof name, "in%d", f->node.n_in);
  int v = oc_graph_value(f->g, name);
  oc_value_t *val = &f->g->values[v];
  val->type = mk(dtype, rank, dims, NULL);
  val->known = 1;
  val->kind = OC_VALUE_INPUT;
  f->in[f->node.n_in++] = v;
}

static void fx_const(fx_t *f, int dtype, int rank, const int64_t *dims, const void *data) {
  char name[16];
  snprintf(name, sizeof name, "in%d", f->node.n_in);
  int v = oc_graph_value(f->g, name);
  oc_status_t s = oc_value_set_const(f->g, v, dtype, rank, dims, data);
  ck_assert(s == OC_OK);
  f->in[f->node.n_in++] = v;
}

static void fx_absent(fx_t *f) { f->in[f->node.n_in++] = -1; }

static int fx_output(fx_t *f) {
  char name[16];
  snprintf(name, sizeof name, "out%d", f->node.n_out);
  int v = oc_graph_value(f->g, name);
  f->out[f->node.n_out++] = v;
  return v;
}

static void fx_attr_int(fx_t *f, const char *name, int64_t i) {
  oc_attr_t *a = &f->attrs[f->node.n_attrs++];
  *a = (oc_attr_t){.name = (char *)name, .type = OC_ATTR_INT, .i = i, .tensor = -1};
}

static void fx_attr_float(fx_t *f, const char *name, float v) {
  oc_attr_t *a = &f->attrs[f->node.n_attrs++];
  *a = (oc_attr_t){.name = (char *)name, .type = OC_ATTR_FLOAT, .f = v, .tensor = -1};
}

/* Runs |fn|; returns the status code, and the message in |msg| if any. */
static oc_status_code_t fx_lower(fx_t *f, oc_lower_fn fn, char *msg, size_t n) {
  oc_status_t s = fn(&f->lw);
  oc_status_code_t c = oc_status_code(s);
  if (msg) snprintf(msg, n, "%s", oc_status_message(s));
  oc_status_free(s);
  return c;
}

static void fx_finish(fx_t *f) { oc_graph_free(f->g); }

static const oc_instr_t *last_instr(const fx_t *f) {
  ck_assert_int_gt(f->g->n_instrs, 0);
  return &f->g->instrs[f->g->n_instrs - 1];
}

/* Activation attributes: ONNX defaults resolved into explicit floats. */
START_TEST(test_lower_unary_attrs) {
  int64_t d[1] = {4};
  struct {
    oc_lower_fn fn;
    const char *op;
    int code;
    float alpha, beta;
  } cases[] = {
      {oc_lower_selu, "Selu", UN_SELU, 1.67326319217681884765625f, 1.05070102214813232421875f},
      {oc_lower_celu, "Celu", UN_CELU, 1.0f, 0.0f},
      {oc_lower_leakyrelu, "LeakyRelu", UN_LEAKY_RELU, 0.01f, 0.0f},
      {oc_lower_hardsigmoid, "HardSigmoid", UN_HARD_SIGMOID, 0.2f, 0.5f},
      {oc_lower_sigmoid, "Sigmoid", UN_SIGMOID, 0.0f, 0.0f},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    fx_t f;
    fx_init(&f, cases[k].op, 17);
    fx_input(&f, OC_DTYPE_FLOAT32, 1, d);
    fx_output(&f);
    ck_assert_int_eq(fx_lower(&f, cases[k].fn, NULL, 0), OC_STATUS_OK);
    const oc_instr_t *ins = last_instr(&f);
    ck_assert_int_eq(ins->op, OC_OP_UNARY);
    ck_assert_int_eq(ins->n_ints, 1);
    ck_assert_int_eq(ins->ints[0], cases[k].code);
    ck_assert_int_eq(ins->n_floats, 2);
    ck_assert(ins->floats[0] == cases[k].alpha);
    ck_assert(ins->floats[1] == cases[k].beta);
    fx_finish(&f);
  }
  /* Explicit attributes; Selu's gamma lands in beta. */
  fx_t f;
  fx_init(&f, "Selu", 6);
  fx_input(&f, OC_DTYPE_FLOAT32, 1, d);
  fx_output(&f);
  fx_attr_float(&f, "alpha", 2.0f);
  fx_attr_float(&f, "gamma", 3.0f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_selu, NULL, 0), OC_STATUS_OK);
  ck_assert(last_instr(&f)->floats[0] == 2.0f && last_instr(&f)->floats[1] == 3.0f);
  fx_finish(&f);
  /* IsInf flags. */
  fx_init(&f, "IsInf", 10);
  fx_input(&f, OC_DTYPE_FLOAT32, 1, d);
  fx_output(&f);
  fx_attr_int(&f, "detect_negative", 0);
  ck_assert_int_eq(fx_lower(&f, oc_lower_isinf, NULL, 0), OC_STATUS_OK);
  ck_assert_int_eq(last_instr(&f)->n_ints, 3);
  ck_assert_int_eq(last_instr(&f)->ints[1], 1);
  ck_assert_int_eq(last_instr(&f)->ints[2], 0);
  ck_assert_int_eq(f.g->values[f.out[0]].type.dtype, OC_DTYPE_BOOL);
  fx_finish(&f);
  /* Celu alpha 0 is refused; Sigmoid on int64 is UNSUPPORTED naming the dtype. */
  char msg[512];
  fx_init(&f, "Celu", 12);
  fx_input(&f, OC_DTYPE_FLOAT32, 1, d);
  fx_output(&f);
  fx_attr_float(&f, "alpha", 0.0f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_celu, msg, sizeof msg), OC_STATUS_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msg, "alpha"));
  fx_finish(&f);
  fx_init(&f, "Sigmoid", 13);
  fx_input(&f, OC_DTYPE_INT64, 1, d);
  fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_sigmoid, msg, sizeof msg), OC_STATUS_UNSUPPORTED);
  ck_assert_ptr_nonnull(strstr(msg, "int64"));
  fx_finish(&f);
}
END_TEST

/* Before opset 7, broadcast=1 aligns B at 'axis'; without it shapes must
 * match. */
START_TEST(test_lower_legacy_broadcast) {
  int64_t da[4] = {2, 3, 4, 5}, db[2] = {3, 4};
  fx_t f;
  fx_init(&f, "Add", 6);
  fx_input(&f, OC_DTYPE_FLOAT32, 4, da);
  fx_input(&f, OC_DTYPE_FLOAT32, 2, db);
  fx_output(&f);
  fx_attr_int(&f, "broadcast", 1);
  fx_attr_int(&f, "axis", 1);
  ck_assert_int_eq(fx_lower(&f, oc_lower_add, NULL, 0), OC_STATUS_OK);
  /* B was reshaped to (3, 4, 1), then added. */
  ck_assert_int_eq(f.g->n_instrs, 2);
  ck_assert_int_eq(f.g->instrs[0].op, OC_OP_COPY);
  const oc_tensor_t *bt = &f.g->values[f.g->instrs[0].out[0]].type;
  ck_assert_int_eq(bt->rank, 3);
  ck_assert_int_eq(bt->dims[2], 1);
  const oc_tensor_t *y = &f.g->values[f.out[0]].type;
  ck_assert_int_eq(y->rank, 4);
  ck_assert_int_eq(y->dims[3], 5);
  fx_finish(&f);
  /* Default axis: suffix alignment, no reshape needed. */
  int64_t ds[2] = {4, 5};
  fx_init(&f, "And", 1);
  fx_input(&f, OC_DTYPE_BOOL, 4, da);
  fx_input(&f, OC_DTYPE_BOOL, 2, ds);
  fx_output(&f);
  fx_attr_int(&f, "broadcast", 1);
  ck_assert_int_eq(fx_lower(&f, oc_lower_and, NULL, 0), OC_STATUS_OK);
  ck_assert_int_eq(f.g->n_instrs, 1);
  fx_finish(&f);
  /* broadcast=0 with different shapes, and an axis that does not fit. */
  fx_init(&f, "Add", 6);
  fx_input(&f, OC_DTYPE_FLOAT32, 4, da);
  fx_input(&f, OC_DTYPE_FLOAT32, 2, db);
  fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_add, NULL, 0), OC_STATUS_INVALID_ARGUMENT);
  fx_finish(&f);
  fx_init(&f, "Add", 6);
  fx_input(&f, OC_DTYPE_FLOAT32, 4, da);
  fx_input(&f, OC_DTYPE_FLOAT32, 2, db);
  fx_output(&f);
  fx_attr_int(&f, "broadcast", 1);
  fx_attr_int(&f, "axis", 3);
  ck_assert_int_eq(fx_lower(&f, oc_lower_add, NULL, 0), OC_STATUS_INVALID_ARGUMENT);
  fx_finish(&f);
  const int64_t hostile[3] = {INT64_MAX, INT64_MIN, -5};
  for (int k = 0; k < 3; k++) {
    fx_init(&f, "Add", 6);
    fx_input(&f, OC_DTYPE_FLOAT32, 4, da);
    fx_input(&f, OC_DTYPE_FLOAT32, 2, db);
    fx_output(&f);
    fx_attr_int(&f, "broadcast", 1);
    fx_attr_int(&f, "axis", hostile[k]);
    ck_assert_int_eq(fx_lower(&f, oc_lower_add, NULL, 0), OC_STATUS_INVALID_ARGUMENT);
    fx_finish(&f);
  }
  /* Opset 7+: numpy broadcasting, attributes ignored. */
  fx_init(&f, "Add", 7);
  fx_input(&f, OC_DTYPE_FLOAT32, 4, da);
  fx_input(&f, OC_DTYPE_FLOAT32, 2, ds);
  fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_add, NULL, 0), OC_STATUS_OK);
  fx_finish(&f);
}
END_TEST

START_TEST(test_lower_mod_variadic_clip) {
  int64_t d[1] = {3};
  char msg[512];
  fx_t f;
  /* float Mod needs fmod=1. */
  fx_init(&f, "Mod", 13);
  fx_input(&f, OC_DTYPE_FLOAT32, 1, d);
  fx_input(&f, OC_DTYPE_FLOAT32, 1, d);
  fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_mod, msg, sizeof msg), OC_STATUS_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msg, "fmod"));
  fx_finish(&f);
  fx_init(&f, "Mod", 13);
  fx_input(&f, OC_DTYPE_INT64, 1, d);
  fx_input(&f, OC_DTYPE_INT64, 1, d);
  fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_mod, NULL, 0), OC_STATUS_OK);
  ck_assert_int_eq(last_instr(&f)->op, OC_OP_MOD);
  ck_assert_int_eq(last_instr(&f)->ints[0], 0);
  fx_finish(&f);
  /* Max of three inputs; Mean folds constants. */
  fx_init(&f, "Max", 13);
  for (int k = 0; k < 3; k++) fx_input(&f, OC_DTYPE_INT32, 1, d);
  fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_max, NULL, 0), OC_STATUS_OK);
  ck_assert_int_eq(last_instr(&f)->op, OC_OP_VARIADIC);
  ck_assert_int_eq(last_instr(&f)->n_in, 3);
  ck_assert_int_eq(last_instr(&f)->ints[0], VAR_MAX);
  fx_finish(&f);
  float c1[3] = {1, 2, 3}, c2[3] = {3, 4, 8};
  fx_init(&f, "Mean", 13);
  fx_const(&f, OC_DTYPE_FLOAT32, 1, d, c1);
  fx_const(&f, OC_DTYPE_FLOAT32, 1, d, c2);
  int yv = fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_mean, NULL, 0), OC_STATUS_OK);
  ck_assert_int_eq(f.g->n_instrs, 0);
  ck_assert_int_eq(f.g->values[yv].kind, OC_VALUE_CONST);
  const float *py = f.g->values[yv].type.data;
  ck_assert(py[0] == 2.0f && py[1] == 3.0f && py[2] == 5.5f);
  fx_finish(&f);
  fx_init(&f, "Max", 13);
  fx_input(&f, OC_DTYPE_FLOAT32, 1, d);
  fx_absent(&f);
  fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_max, NULL, 0), OC_STATUS_INVALID_ARGUMENT);
  fx_finish(&f);
  /* Clip on int8 with constant bounds; the default max. */
  int8_t lo = -3;
  fx_init(&f, "Clip", 13);
  fx_input(&f, OC_DTYPE_INT8, 1, d);
  fx_const(&f, OC_DTYPE_INT8, 0, NULL, &lo);
  fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_clip, NULL, 0), OC_STATUS_OK);
  ck_assert_int_eq(last_instr(&f)->n_ints, 2);
  ck_assert_int_eq(last_instr(&f)->ints[0], -3);
  ck_assert_int_eq(last_instr(&f)->ints[1], 127);
  fx_finish(&f);
  /* int64 bounds stay exact beyond 2^53. */
  int64_t hi = ((int64_t)1 << 60) + 1;
  fx_init(&f, "Clip", 13);
  fx_input(&f, OC_DTYPE_INT64, 1, d);
  fx_absent(&f);
  fx_const(&f, OC_DTYPE_INT64, 0, NULL, &hi);
  fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_clip, NULL, 0), OC_STATUS_OK);
  ck_assert_int_eq(last_instr(&f)->ints[0], INT64_MIN);
  ck_assert_int_eq(last_instr(&f)->ints[1], hi);
  fx_finish(&f);
  /* Clip-6 on int64 (no integer Clip before opset 12) is refused. */
  fx_init(&f, "Clip", 6);
  fx_input(&f, OC_DTYPE_INT64, 1, d);
  fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_clip, msg, sizeof msg), OC_STATUS_UNSUPPORTED);
  ck_assert_ptr_nonnull(strstr(msg, "int64"));
  fx_finish(&f);
}
END_TEST

static Suite *elementwise_suite(void) {
  Suite *s = suite_create("ops_elementwise");
  TCase *shape = tcase_create("shape");
  tcase_add_test(shape, test_shape_unary);
  tcase_add_test(shape, test_shape_binary);
  tcase_add_test(shape, test_shape_variadic);
  tcase_add_test(shape, test_shape_clip_int);
  suite_add_tcase(s, shape);
  TCase *fwd = tcase_create("forward");
  tcase_add_test(fwd, test_forward_unary_float);
  tcase_add_test(fwd, test_forward_unary_stable);
  tcase_add_test(fwd, test_forward_unary_int_bool);
  tcase_add_test(fwd, test_forward_compare_logic);
  tcase_add_test(fwd, test_forward_mod);
  tcase_add_test(fwd, test_forward_prelu);
  tcase_add_test(fwd, test_forward_pow_int);
  tcase_add_test(fwd, test_forward_variadic);
  tcase_add_test(fwd, test_forward_clip_int);
  tcase_add_test(fwd, test_forward_small_ints);
  suite_add_tcase(s, fwd);
  TCase *err = tcase_create("errors");
  tcase_add_test(err, test_errors_unary);
  tcase_add_test(err, test_errors_binary);
  tcase_add_test(err, test_errors_variadic);
  tcase_add_test(err, test_errors_clip);
  suite_add_tcase(s, err);
  TCase *low = tcase_create("lowering");
  tcase_add_test(low, test_lower_unary_attrs);
  tcase_add_test(low, test_lower_legacy_broadcast);
  tcase_add_test(low, test_lower_mod_variadic_clip);
  suite_add_tcase(s, low);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(elementwise_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
