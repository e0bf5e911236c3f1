/*
 * The indexing, mask and along-one-axis runtime ops (OneHot, Trilu, Tile,
 * GatherElements, GatherND, ScatterElements, ScatterND in
 * runtime/ops/indexing.c; ArgMax, ArgMin, TopK, Hardmax, CumSum in
 * runtime/ops/topk.c), called directly through oc_op_infer and the op's run
 * and compared with naive reference implementations in double written here
 * (multi-index loops, selection by scanning), for 1/4/8-byte elements,
 * negative axes and indices, empty tensors, ties, NaN and infinities.
 *
 *   shape:    output types and workspace sizes from infer
 *   forward:  values against the references
 *   errors:   hostile ints and shapes rejected by infer (never a crash);
 *             out-of-range indices at run time (OC_STATUS_NUMERIC)
 *   lowering: compiler/ops/{indexing,topk}.c on one-node graphs (NonZero
 *             folding and its refusal, opset differences, dtype refusals)
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

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return g_rng;
}
/* Uniform integer in [lo, hi]. */
static int64_t irand(int64_t lo, int64_t hi) { return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1)); }

static oc_tensor_t mk(int dtype, int rank, const int64_t *dims) {
  oc_tensor_t t;
  memset(&t, 0, sizeof t);
  t.dtype = dtype;
  t.rank = rank;
  for (int i = 0; i < rank; i++) t.dims[i] = dims[i];
  size_t b = oc_tensor_bytes(&t);
  t.data = calloc(b ? b : 1, 1);
  return t;
}

static double get(const oc_tensor_t *t, int64_t i) {
  switch (t->dtype) {
    case OC_DTYPE_FLOAT32: return ((const float *)t->data)[i];
    case OC_DTYPE_INT64: return (double)((const int64_t *)t->data)[i];
    case OC_DTYPE_INT32: return ((const int32_t *)t->data)[i];
    default: return ((const uint8_t *)t->data)[i];
  }
}

static void set(oc_tensor_t *t, int64_t i, double v) {
  switch (t->dtype) {
    case OC_DTYPE_FLOAT32: ((float *)t->data)[i] = (float)v; break;
    case OC_DTYPE_INT64: ((int64_t *)t->data)[i] = (int64_t)v; break;
    case OC_DTYPE_INT32: ((int32_t *)t->data)[i] = (int32_t)v; break;
    default: ((uint8_t *)t->data)[i] = (uint8_t)v; break;
  }
}

/* A tensor of random integers in [lo, hi] (bool: 0/1). */
static oc_tensor_t mk_rand(int dtype, int rank, const int64_t *dims, int64_t lo, int64_t hi) {
  oc_tensor_t t = mk(dtype, rank, dims);
  if (dtype == OC_DTYPE_BOOL) lo = 0, hi = 1;
  for (int64_t i = 0; i < oc_tensor_numel(&t); i++) set(&t, i, (double)irand(lo, hi));
  return t;
}

/* Infers |op|; frees the status and returns its code (and ws). */
static oc_status_code_t infer_code(int op, oc_tensor_t **in, int n_in, oc_tensor_t **out,
                                   int n_out, const int64_t *ints, int n_ints, size_t *ws) {
  oc_op_call_t c = {.ints = ints, .n_ints = n_ints, .n_in = n_in, .in = in, .n_out = n_out,
                    .out = out};
  size_t w = 0;
  oc_status_t s = oc_op_infer(op, &c, &w);
  oc_status_code_t code = oc_status_code(s);
  oc_status_free(s);
  if (ws) *ws = w;
  return code;
}

/* Infers (must succeed), allocates outputs (filled with garbage) and the
 * workspace, runs |op|. Returns the run status; caller frees out[i]->data. */
static oc_status_t run_op(int op, oc_tensor_t **in, int n_in, oc_tensor_t **out, int n_out,
                          const int64_t *ints, int n_ints) {
  oc_op_call_t c = {.ints = ints, .n_ints = n_ints, .n_in = n_in, .in = in, .n_out = n_out,
                    .out = out};
  size_t ws = 0;
  oc_status_t s = oc_op_infer(op, &c, &ws);
  ck_assert_msg(s == OC_OK, "infer %s: %s", oc_op_get(op)->name, oc_status_message(s));
  for (int i = 0; i < n_out; i++) {
    size_t b = oc_tensor_bytes(out[i]);
    out[i]->data = malloc(b ? b : 1);
    memset(out[i]->data, 0xA5, b ? b : 1);
  }
  void *w = ws ? malloc(ws) : NULL;
  if (w) memset(w, 0x5A, ws);
  c.workspace = w;
  c.workspace_bytes = ws;
  s = oc_op_get(op)->run(&c);
  free(w);
  return s;
}

static void run_ok(int op, oc_tensor_t **in, int n_in, oc_tensor_t **out, int n_out,
                   const int64_t *ints, int n_ints) {
  oc_status_t s = run_op(op, in, n_in, out, n_out, ints, n_ints);
  ck_assert_msg(s == OC_OK, "run %s: %s", oc_op_get(op)->name, oc_status_message(s));
}

/* Runs |op| expecting a run-time error of |code| whose message contains
 * |needle|. */
static void run_fails(int op, oc_tensor_t **in, int n_in, oc_tensor_t **out, int n_out,
                      const int64_t *ints, int n_ints, oc_status_code_t code, const char *needle) {
  oc_status_t s = run_op(op, in, n_in, out, n_out, ints, n_ints);
  ck_assert_int_eq(oc_status_code(s), code);
  ck_assert_msg(strstr(oc_status_message(s), needle), "message '%s' lacks '%s'",
                oc_status_message(s), needle);
  oc_status_free(s);
  for (int i = 0; i < n_out; i++) free(out[i]->data);
}

/* Exact equality, NaN matching NaN. */
static int same(double a, double b) { return a == b || (a != a && b != b); }

static void check_dims(const oc_tensor_t *t, int dtype, int rank, const int64_t *dims) {
  ck_assert_int_eq(t->dtype, dtype);
  ck_assert_int_eq(t->rank, rank);
  for (int i = 0; i < rank; i++) ck_assert_int_eq(t->dims[i], dims[i]);
}

/* Row-major flat offset and the inverse. */
static int64_t flat(int rank, const int64_t *dims, const int64_t *idx) {
  int64_t f = 0;
  for (int i = 0; i < rank; i++) f = f * dims[i] + idx[i];
  return f;
}
static void unflat(int rank, const int64_t *dims, int64_t f, int64_t *idx) {
  for (int i = rank - 1; i >= 0; i--) {
    idx[i] = dims[i] ? f % dims[i] : 0;
    f = dims[i] ? f / dims[i] : 0;
  }
}

static int64_t numel(int rank, const int64_t *dims) {
  int64_t n = 1;
  for (int i = 0; i < rank; i++) n *= dims[i];
  return n;
}

static const int g_dtypes[4] = {OC_DTYPE_FLOAT32, OC_DTYPE_INT64, OC_DTYPE_INT32, OC_DTYPE_BOOL};
static const int g_num_dtypes[3] = {OC_DTYPE_FLOAT32, OC_DTYPE_INT64, OC_DTYPE_INT32};

/* ------------------------------------------------------------------------ */
/* shape                                                                    */
/* ------------------------------------------------------------------------ */

START_TEST(test_shape_onehot_tile_trilu) {
  int64_t di[2] = {2, 3}, dv[1] = {2};
  oc_tensor_t idx = mk(OC_DTYPE_INT64, 2, di), vals = mk(OC_DTYPE_INT32, 1, dv), y = {0};
  oc_tensor_t *in[2] = {&idx, &vals}, *out[1] = {&y};
  int64_t oh[3] = {1, 5, 1};
  ck_assert_int_eq(infer_code(OC_OP_ONEHOT, in, 2, out, 1, oh, 3, NULL), OC_STATUS_OK);
  check_dims(&y, OC_DTYPE_INT32, 3, (int64_t[]){2, 5, 3});
  oh[0] = -1;
  ck_assert_int_eq(infer_code(OC_OP_ONEHOT, in, 2, out, 1, oh, 3, NULL), OC_STATUS_OK);
  check_dims(&y, OC_DTYPE_INT32, 3, (int64_t[]){2, 3, 5});
  oh[0] = -3;
  ck_assert_int_eq(infer_code(OC_OP_ONEHOT, in, 2, out, 1, oh, 3, NULL), OC_STATUS_OK);
  check_dims(&y, OC_DTYPE_INT32, 3, (int64_t[]){5, 2, 3});

  int64_t dx[3] = {2, 0, 3}, reps[3] = {3, 7, 0};
  oc_tensor_t x = mk(OC_DTYPE_BOOL, 3, dx);
  oc_tensor_t *xin[1] = {&x};
  ck_assert_int_eq(infer_code(OC_OP_TILE, xin, 1, out, 1, reps, 3, NULL), OC_STATUS_OK);
  check_dims(&y, OC_DTYPE_BOOL, 3, (int64_t[]){6, 0, 0});
  int64_t tr[2] = {0, -3};
  ck_assert_int_eq(infer_code(OC_OP_TRILU, xin, 1, out, 1, tr, 2, NULL), OC_STATUS_OK);
  check_dims(&y, OC_DTYPE_BOOL, 3, dx);
  oc_tensor_t s = mk(OC_DTYPE_FLOAT32, 0, NULL);
  xin[0] = &s;
  ck_assert_int_eq(infer_code(OC_OP_TILE, xin, 1, out, 1, NULL, 0, NULL), OC_STATUS_OK);
  check_dims(&y, OC_DTYPE_FLOAT32, 0, NULL);
  free(idx.data), free(vals.data), free(x.data), free(s.data);
}
END_TEST

START_TEST(test_shape_gather_scatter) {
  int64_t dd[3] = {2, 3, 4}, di[3] = {2, 5, 1};
  oc_tensor_t data = mk(OC_DTYPE_INT32, 3, dd), idx = mk(OC_DTYPE_INT64, 3, di), y = {0};
  oc_tensor_t *in[3] = {&data, &idx, NULL}, *out[1] = {&y};
  int64_t axis = 1;
  ck_assert_int_eq(infer_code(OC_OP_GATHER_ELEMENTS, in, 2, out, 1, &axis, 1, NULL), OC_STATUS_OK);
  check_dims(&y, OC_DTYPE_INT32, 3, di);
  /* GatherND: indices (2, 4, 1) with batch_dims 1 -> (2, 4) ++ data[2:] = (2, 4, 4). */
  int64_t dn[3] = {2, 4, 1}, b = 1;
  oc_tensor_t nd = mk(OC_DTYPE_INT32, 3, dn);
  in[1] = &nd;
  ck_assert_int_eq(infer_code(OC_OP_GATHER_ND, in, 2, out, 1, &b, 1, NULL), OC_STATUS_OK);
  check_dims(&y, OC_DTYPE_INT32, 3, (int64_t[]){2, 4, 4});
  b = 0; /* m = 1: (2, 4) ++ data[1:] */
  ck_assert_int_eq(infer_code(OC_OP_GATHER_ND, in, 2, out, 1, &b, 1, NULL), OC_STATUS_OK);
  check_dims(&y, OC_DTYPE_INT32, 4, (int64_t[]){2, 4, 3, 4});
  /* ScatterND: indices (5, 2) -> updates (5, 4). */
  int64_t dk[2] = {5, 2}, du[2] = {5, 4}, red = 1;
  oc_tensor_t k2 = mk(OC_DTYPE_INT64, 2, dk), upd = mk(OC_DTYPE_INT32, 2, du);
  in[1] = &k2;
  in[2] = &upd;
  ck_assert_int_eq(infer_code(OC_OP_SCATTER_ND, in, 3, out, 1, &red, 1, NULL), OC_STATUS_OK);
  check_dims(&y, OC_DTYPE_INT32, 3, dd);
  /* ScatterElements: updates of the indices' dims. */
  oc_tensor_t upd2 = mk(OC_DTYPE_INT32, 3, di);
  in[1] = &idx;
  in[2] = &upd2;
  int64_t se[2] = {-2, 2};
  ck_assert_int_eq(infer_code(OC_OP_SCATTER_ELEMENTS, in, 3, out, 1, se, 2, NULL), OC_STATUS_OK);
  check_dims(&y, OC_DTYPE_INT32, 3, dd);
  free(data.data), free(idx.data), free(nd.data), free(k2.data), free(upd.data), free(upd2.data);
}
END_TEST

START_TEST(test_shape_axis_ops) {
  int64_t dx[3] = {2, 3, 4};
  oc_tensor_t x = mk(OC_DTYPE_FLOAT32, 3, dx), y = {0}, z = {0};
  oc_tensor_t *in[1] = {&x}, *out[2] = {&y, &z};
  size_t ws;
  int64_t am[3] = {-2, 1, 0};
  ck_assert_int_eq(infer_code(OC_OP_ARGMAX, in, 1, out, 1, am, 3, &ws), OC_STATUS_OK);
  check_dims(&y, OC_DTYPE_INT64, 3, (int64_t[]){2, 1, 4});
  am[1] = 0;
  ck_assert_int_eq(infer_code(OC_OP_ARGMIN, in, 1, out, 1, am, 3, &ws), OC_STATUS_OK);
  check_dims(&y, OC_DTYPE_INT64, 2, (int64_t[]){2, 4});
  int64_t tk[3] = {2, 3, 1};
  ck_assert_int_eq(infer_code(OC_OP_TOPK, in, 1, out, 2, tk, 3, &ws), OC_STATUS_OK);
  check_dims(&y, OC_DTYPE_FLOAT32, 3, (int64_t[]){2, 3, 3});
  check_dims(&z, OC_DTYPE_INT64, 3, (int64_t[]){2, 3, 3});
  ck_assert_uint_eq(ws, 4 * 3 * 8);
  int64_t cs[3] = {0, 1, 1};
  ck_assert_int_eq(infer_code(OC_OP_CUMSUM, in, 1, out, 1, cs, 3, &ws), OC_STATUS_OK);
  check_dims(&y, OC_DTYPE_FLOAT32, 3, dx);
  ck_assert_uint_eq(ws, 12 * 8);
  int64_t hm = -1;
  ck_assert_int_eq(infer_code(OC_OP_HARDMAX, in, 1, out, 1, &hm, 1, &ws), OC_STATUS_OK);
  check_dims(&y, OC_DTYPE_FLOAT32, 3, dx);
  /* Empty tensors with large other dims need no workspace. */
  int64_t de[3] = {0, (int64_t)1 << 19, (int64_t)1 << 19};
  oc_tensor_t e = mk(OC_DTYPE_INT32, 0, NULL);
  e.rank = 3;
  memcpy(e.dims, de, sizeof de);
  in[0] = &e;
  ck_assert_int_eq(infer_code(OC_OP_CUMSUM, in, 1, out, 1, cs, 3, &ws), OC_STATUS_OK);
  ck_assert_uint_eq(ws, 0);
  /* Other dims whose product passes 2^40 bytes are refused even when the
   * tensor is empty: the strides would overflow. */
  e.dims[1] = e.dims[2] = (int64_t)1 << 40;
  ck_assert_int_eq(infer_code(OC_OP_CUMSUM, in, 1, out, 1, cs, 3, &ws), OC_STATUS_RESOURCE_LIMIT);
  free(x.data), free(e.data);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* forward: indexing.c                                                      */
/* ------------------------------------------------------------------------ */

START_TEST(test_forward_onehot) {
  int64_t di[2] = {3, 4}, dv[1] = {2};
  for (int it = 0; it < 3; it++) {
    int idt = it == 0 ? OC_DTYPE_INT64 : it == 1 ? OC_DTYPE_INT32 : OC_DTYPE_FLOAT32;
    oc_tensor_t idx = mk_rand(idt, 2, di, -9, 9);
    if (idt == OC_DTYPE_FLOAT32) {
      ((float *)idx.data)[0] = 2.7f;   /* truncates to 2 */
      ((float *)idx.data)[1] = -1.5f;  /* truncates to -1 */
      ((float *)idx.data)[2] = NAN;    /* selects nothing */
      ((float *)idx.data)[3] = 1e30f;  /* selects nothing */
    }
    for (int vd = 0; vd < 4; vd++) {
      oc_tensor_t vals = mk(g_dtypes[vd], 1, dv);
      set(&vals, 0, 0), set(&vals, 1, 1);
      if (g_dtypes[vd] != OC_DTYPE_BOOL) set(&vals, 0, 3), set(&vals, 1, 7);
      double off = get(&vals, 0), on = get(&vals, 1);
      for (int64_t axis = -3; axis <= 2; axis++)
        for (int neg = 0; neg <= 1; neg++) {
          int64_t depth = 6, ints[3] = {axis, depth, neg};
          oc_tensor_t y = {0};
          oc_tensor_t *in[2] = {&idx, &vals}, *out[1] = {&y};
          run_ok(OC_OP_ONEHOT, in, 2, out, 1, ints, 3);
          int a = (int)(axis < 0 ? axis + 3 : axis);
          int64_t yi[3], ii[2];
          for (int64_t f = 0; f < oc_tensor_numel(&y); f++) {
            unflat(3, y.dims, f, yi);
            for (int i = 0, k = 0; i < 3; i++)
              if (i != a) ii[k++] = yi[i];
            double v = get(&idx, flat(2, di, ii));
            int64_t cls = -1;
            if (v == v && fabs(v) < 1e18) {
              cls = (int64_t)trunc(v);
              if (cls < 0 && neg) cls += depth;
            }
            double want = cls == yi[a] ? on : off;
            ck_assert_msg(same(get(&y, f), want), "onehot axis %lld neg %d at %lld: %g vs %g",
                          (long long)axis, neg, (long long)f, get(&y, f), want);
          }
          free(y.data);
        }
      free(vals.data);
    }
    free(idx.data);
  }
  /* Empty indices and depth 0. */
  int64_t de[2] = {0, 3};
  oc_tensor_t idx = mk(OC_DTYPE_INT64, 2, de), vals = mk(OC_DTYPE_FLOAT32, 1, dv), y = {0};
  oc_tensor_t *in[2] = {&idx, &vals}, *out[1] = {&y};
  int64_t ints[3] = {1, 0, 1};
  run_ok(OC_OP_ONEHOT, in, 2, out, 1, ints, 3);
  check_dims(&y, OC_DTYPE_FLOAT32, 3, (int64_t[]){0, 0, 3});
  free(y.data), free(idx.data), free(vals.data);
}
END_TEST

START_TEST(test_forward_trilu) {
  int64_t shapes[][3] = {{3, 4, 5}, {2, 5, 3}, {1, 4, 4}, {2, 0, 5}, {1, 1, 1}};
  for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
    for (int dt = 0; dt < 4; dt++) {
      oc_tensor_t x = mk_rand(g_dtypes[dt], 3, shapes[si], 1, 100);
      for (int upper = 0; upper <= 1; upper++)
        for (int64_t k = -7; k <= 7; k++) {
          int64_t ints[2] = {upper, k};
          oc_tensor_t y = {0};
          oc_tensor_t *in[1] = {&x}, *out[1] = {&y};
          run_ok(OC_OP_TRILU, in, 1, out, 1, ints, 2);
          int64_t id[3];
          for (int64_t f = 0; f < oc_tensor_numel(&x); f++) {
            unflat(3, x.dims, f, id);
            int keep = upper ? id[2] - id[1] >= k : id[2] - id[1] <= k;
            ck_assert(same(get(&y, f), keep ? get(&x, f) : 0.0));
          }
          free(y.data);
        }
      free(x.data);
    }
  /* Extreme k: everything or nothing. */
  int64_t d2[2] = {3, 3};
  oc_tensor_t x = mk_rand(OC_DTYPE_INT64, 2, d2, 1, 9), y = {0};
  oc_tensor_t *in[1] = {&x}, *out[1] = {&y};
  int64_t ints[2] = {1, INT64_MIN};
  run_ok(OC_OP_TRILU, in, 1, out, 1, ints, 2);
  for (int f = 0; f < 9; f++) ck_assert(get(&y, f) == get(&x, f));
  free(y.data);
  ints[1] = INT64_MAX;
  run_ok(OC_OP_TRILU, in, 1, out, 1, ints, 2);
  for (int f = 0; f < 9; f++) ck_assert(get(&y, f) == 0);
  free(y.data), free(x.data);
}
END_TEST

START_TEST(test_forward_tile) {
  struct { int rank; int64_t dims[4], reps[4]; } cases[] = {
      {1, {3}, {4}}, {2, {2, 3}, {2, 2}}, {3, {2, 1, 3}, {1, 3, 2}}, {4, {2, 3, 1, 2}, {2, 1, 3, 2}},
      {2, {2, 3}, {0, 2}}, {2, {0, 3}, {2, 2}}, {0, {0}, {0}}, {3, {1, 1, 1}, {2, 3, 4}},
  };
  for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
    for (int dt = 0; dt < 4; dt++) {
      int r = cases[ci].rank;
      oc_tensor_t x = mk_rand(g_dtypes[dt], r, cases[ci].dims, -50, 50), y = {0};
      oc_tensor_t *in[1] = {&x}, *out[1] = {&y};
      run_ok(OC_OP_TILE, in, 1, out, 1, cases[ci].reps, r);
      for (int i = 0; i < r; i++) ck_assert_int_eq(y.dims[i], cases[ci].dims[i] * cases[ci].reps[i]);
      int64_t yi[4], xi[4];
      for (int64_t f = 0; f < oc_tensor_numel(&y); f++) {
        unflat(r, y.dims, f, yi);
        for (int i = 0; i < r; i++) xi[i] = yi[i] % x.dims[i];
        ck_assert(same(get(&y, f), get(&x, flat(r, x.dims, xi))));
      }
      free(x.data), free(y.data);
    }
}
END_TEST

START_TEST(test_forward_gather_elements) {
  for (int trial = 0; trial < 60; trial++) {
    int r = (int)irand(1, 4);
    int64_t dd[4], di[4];
    for (int i = 0; i < r; i++) dd[i] = irand(1, 4);
    int axis = (int)irand(0, r - 1);
    for (int i = 0; i < r; i++) di[i] = i == axis ? irand(0, 5) : irand(0, dd[i]);
    int dt = g_dtypes[trial % 4], it = trial % 2 ? OC_DTYPE_INT32 : OC_DTYPE_INT64;
    oc_tensor_t data = mk_rand(dt, r, dd, -99, 99), idx = mk_rand(it, r, di, -dd[axis], dd[axis] - 1);
    oc_tensor_t y = {0};
    oc_tensor_t *in[2] = {&data, &idx}, *out[1] = {&y};
    int64_t a = trial % 3 ? axis : axis - r;
    run_ok(OC_OP_GATHER_ELEMENTS, in, 2, out, 1, &a, 1);
    check_dims(&y, dt, r, di);
    int64_t p[4];
    for (int64_t f = 0; f < oc_tensor_numel(&idx); f++) {
      unflat(r, di, f, p);
      int64_t k = (int64_t)get(&idx, f);
      p[axis] = k < 0 ? k + dd[axis] : k;
      ck_assert(same(get(&y, f), get(&data, flat(r, dd, p))));
    }
    free(data.data), free(idx.data), free(y.data);
  }
}
END_TEST

START_TEST(test_forward_gather_nd) {
  int64_t dd[4] = {2, 3, 4, 2};
  for (int trial = 0; trial < 40; trial++) {
    int b = (int)irand(0, 2);
    int64_t m = irand(1, 4 - b);
    int q = (int)irand(b + 1, b + 3);
    int64_t di[5];
    for (int i = 0; i < b; i++) di[i] = dd[i];
    for (int i = b; i < q - 1; i++) di[i] = irand(0, 3);
    di[q - 1] = m;
    int dt = g_dtypes[trial % 4];
    oc_tensor_t data = mk_rand(dt, 4, dd, -99, 99), idx = mk(OC_DTYPE_INT64, q, di), y = {0};
    int64_t ntup = numel(q, di) / m;
    for (int64_t t = 0; t < ntup; t++)
      for (int64_t j = 0; j < m; j++) {
        int64_t s = dd[b + j];
        ((int64_t *)idx.data)[t * m + j] = irand(-s, s - 1);
      }
    oc_tensor_t *in[2] = {&data, &idx}, *out[1] = {&y};
    int64_t bb = b;
    run_ok(OC_OP_GATHER_ND, in, 2, out, 1, &bb, 1);
    ck_assert_int_eq(y.rank, q - 1 + 4 - b - (int)m);
    /* y[t..., s...] = data[batch(t), idx[t], s...] */
    int64_t slice = numel(4 - b - (int)m, dd + b + m), per_batch = numel(4 - b, dd + b);
    int64_t tpb = b ? ntup / numel(b, dd) : ntup;
    for (int64_t t = 0; t < ntup; t++) {
      int64_t off = 0;
      for (int64_t j = 0; j < m; j++) {
        int64_t k = ((int64_t *)idx.data)[t * m + j];
        off = off * dd[b + j] + (k < 0 ? k + dd[b + j] : k);
      }
      int64_t base = (tpb ? t / tpb : 0) * per_batch + off * slice;
      for (int64_t s = 0; s < slice; s++)
        ck_assert(same(get(&y, t * slice + s), get(&data, base + s)));
    }
    free(data.data), free(idx.data), free(y.data);
  }
  /* The ONNX example: batch_dims 1. */
  int64_t d3[3] = {2, 2, 2}, d2[2] = {2, 1};
  oc_tensor_t data = mk(OC_DTYPE_INT32, 3, d3), idx = mk(OC_DTYPE_INT64, 2, d2), y = {0};
  for (int i = 0; i < 8; i++) set(&data, i, i);
  set(&idx, 0, 1), set(&idx, 1, 0);
  oc_tensor_t *in[2] = {&data, &idx}, *out[1] = {&y};
  int64_t b = 1;
  run_ok(OC_OP_GATHER_ND, in, 2, out, 1, &b, 1);
  check_dims(&y, OC_DTYPE_INT32, 2, (int64_t[]){2, 2});
  const int32_t want[4] = {2, 3, 4, 5};
  ck_assert_mem_eq(y.data, want, sizeof want);
  free(data.data), free(idx.data), free(y.data);
}
END_TEST

/* Reference reduction in double (the test data are small integers, so
 * float32/int sums and products are exact). */
static double ref_reduce(double a, double v, int red) {
  switch (red) {
    case 1: return a + v;
    case 2: return a * v;
    case 3: return (v > a || v != v) ? v : a;
    case 4: return (v < a || v != v) ? v : a;
    default: return v;
  }
}

START_TEST(test_forward_scatter_elements) {
  for (int trial = 0; trial < 80; trial++) {
    int r = (int)irand(1, 3);
    int64_t dd[3], di[3];
    for (int i = 0; i < r; i++) dd[i] = irand(1, 4);
    int axis = (int)irand(0, r - 1);
    for (int i = 0; i < r; i++) di[i] = i == axis ? irand(0, 6) : irand(0, dd[i]);
    int red = (int)irand(0, 4);
    int dt = red ? g_num_dtypes[trial % 3] : g_dtypes[trial % 4];
    oc_tensor_t data = mk_rand(dt, r, dd, -5, 5), upd = mk_rand(dt, r, di, -3, 3);
    oc_tensor_t idx = mk_rand(trial % 2 ? OC_DTYPE_INT32 : OC_DTYPE_INT64, r, di, -dd[axis],
                              dd[axis] - 1);
    oc_tensor_t y = {0};
    oc_tensor_t *in[3] = {&data, &idx, &upd}, *out[1] = {&y};
    int64_t ints[2] = {axis - (trial % 2 ? r : 0), red};
    run_ok(OC_OP_SCATTER_ELEMENTS, in, 3, out, 1, ints, 2);
    double ref[64];
    for (int64_t f = 0; f < oc_tensor_numel(&data); f++) ref[f] = get(&data, f);
    int64_t p[3];
    for (int64_t f = 0; f < oc_tensor_numel(&idx); f++) {
      unflat(r, di, f, p);
      int64_t k = (int64_t)get(&idx, f);
      p[axis] = k < 0 ? k + dd[axis] : k;
      int64_t o = flat(r, dd, p);
      ref[o] = ref_reduce(ref[o], get(&upd, f), red);
    }
    for (int64_t f = 0; f < oc_tensor_numel(&data); f++)
      ck_assert_msg(same(get(&y, f), dt == OC_DTYPE_INT32 ? (double)(int32_t)ref[f] : ref[f]),
                    "scatter_elements red %d at %lld: %g vs %g", red, (long long)f, get(&y, f),
                    ref[f]);
    free(data.data), free(idx.data), free(upd.data), free(y.data);
  }
  /* Float max/min propagate NaN. */
  int64_t d1[1] = {3}, d2[1] = {2};
  oc_tensor_t data = mk(OC_DTYPE_FLOAT32, 1, d1), idx = mk(OC_DTYPE_INT64, 1, d2),
              upd = mk(OC_DTYPE_FLOAT32, 1, d2), y = {0};
  set(&data, 0, 1), set(&data, 1, NAN), set(&data, 2, 5);
  set(&idx, 0, 0), set(&idx, 1, 1);
  set(&upd, 0, NAN), set(&upd, 1, 9);
  oc_tensor_t *in[3] = {&data, &idx, &upd}, *out[1] = {&y};
  int64_t ints[2] = {0, 3};
  run_ok(OC_OP_SCATTER_ELEMENTS, in, 3, out, 1, ints, 2);
  ck_assert(isnan(get(&y, 0)) && isnan(get(&y, 1)) && get(&y, 2) == 5);
  free(data.data), free(idx.data), free(upd.data), free(y.data);
}
END_TEST

START_TEST(test_forward_scatter_nd) {
  int64_t dd[3] = {3, 2, 4};
  for (int trial = 0; trial < 60; trial++) {
    int64_t k = irand(1, 3);
    int q = (int)irand(1, 3);
    int64_t di[3];
    for (int i = 0; i < q - 1; i++) di[i] = irand(0, 3);
    di[q - 1] = k;
    int64_t du[5];
    int ur = 0;
    for (int i = 0; i < q - 1; i++) du[ur++] = di[i];
    for (int i = (int)k; i < 3; i++) du[ur++] = dd[i];
    int red = (int)irand(0, 4);
    int dt = red ? g_num_dtypes[trial % 3] : g_dtypes[trial % 4];
    oc_tensor_t data = mk_rand(dt, 3, dd, -5, 5), upd = mk_rand(dt, ur, du, -3, 3);
    oc_tensor_t idx = mk(trial % 2 ? OC_DTYPE_INT32 : OC_DTYPE_INT64, q, di), y = {0};
    int64_t ntup = numel(q, di) / k;
    for (int64_t t = 0; t < ntup; t++)
      for (int64_t j = 0; j < k; j++) set(&idx, t * k + j, (double)irand(-dd[j], dd[j] - 1));
    oc_tensor_t *in[3] = {&data, &idx, &upd}, *out[1] = {&y};
    int64_t ints[1] = {red};
    run_ok(OC_OP_SCATTER_ND, in, 3, out, 1, ints, 1);
    double ref[24];
    for (int f = 0; f < 24; f++) ref[f] = get(&data, f);
    int64_t slice = numel(3 - (int)k, dd + k);
    for (int64_t t = 0; t < ntup; t++) {
      int64_t off = 0;
      for (int64_t j = 0; j < k; j++) {
        int64_t v = (int64_t)get(&idx, t * k + j);
        off = off * dd[j] + (v < 0 ? v + dd[j] : v);
      }
      for (int64_t s = 0; s < slice; s++)
        ref[off * slice + s] = ref_reduce(ref[off * slice + s], get(&upd, t * slice + s), red);
    }
    for (int f = 0; f < 24; f++)
      ck_assert_msg(same(get(&y, f), ref[f]), "scatter_nd red %d k %lld at %d: %g vs %g", red,
                    (long long)k, f, get(&y, f), ref[f]);
    free(data.data), free(idx.data), free(upd.data), free(y.data);
  }
}
END_TEST

/* ------------------------------------------------------------------------ */
/* forward: topk.c                                                          */
/* ------------------------------------------------------------------------ */

/* Fills x with small integers (many ties), plus NaN and infinities for
 * float32 when |specials|. */
static oc_tensor_t mk_axis_input(int dt, int rank, const int64_t *dims, int specials) {
  oc_tensor_t x = mk_rand(dt, rank, dims, -3, 3);
  if (dt == OC_DTYPE_FLOAT32 && specials)
    for (int64_t f = 0; f < oc_tensor_numel(&x); f++) {
      int64_t u = irand(0, 19);
      if (u == 0) set(&x, f, NAN);
      if (u == 1) set(&x, f, INFINITY);
      if (u == 2) set(&x, f, -INFINITY);
    }
  return x;
}

/* a "above" b: greater, with NaN above every number. */
static int ref_above(double a, double b) { return a > b || (a != a && b == b); }

START_TEST(test_forward_argmax_argmin) {
  int64_t shapes[][3] = {{3, 4, 5}, {1, 7, 1}, {2, 1, 3}, {4, 6, 2}};
  for (size_t si = 0; si < 4; si++)
    for (int d = 0; d < 3; d++) {
      oc_tensor_t x = mk_axis_input(g_num_dtypes[d], 3, shapes[si], 1);
      for (int op = 0; op < 2; op++)
        for (int64_t axis = -3; axis < 3; axis++)
          for (int keep = 0; keep <= 1; keep++)
            for (int last = 0; last <= 1; last++) {
              int64_t ints[3] = {axis, keep, last};
              oc_tensor_t y = {0};
              oc_tensor_t *in[1] = {&x}, *out[1] = {&y};
              run_ok(op ? OC_OP_ARGMIN : OC_OP_ARGMAX, in, 1, out, 1, ints, 3);
              int a = (int)(axis < 0 ? axis + 3 : axis);
              ck_assert_int_eq(y.rank, keep ? 3 : 2);
              int64_t rd[3];
              memcpy(rd, x.dims, sizeof rd);
              rd[a] = 1;
              int64_t p[3];
              for (int64_t f = 0; f < numel(3, rd); f++) {
                unflat(3, rd, f, p);
                int64_t best = 0;
                for (int64_t j = 0; j < x.dims[a]; j++) {
                  p[a] = j;
                  double v = get(&x, flat(3, x.dims, p));
                  p[a] = best;
                  double bv = get(&x, flat(3, x.dims, p));
                  /* numpy: NaN wins both ways; ties: first (or last). */
                  int better = op ? (v < bv || (v != v && bv == bv)) : ref_above(v, bv);
                  int eq = same(v, bv);
                  if (j == 0 || better || (last && eq)) best = j;
                }
                ck_assert_msg(((int64_t *)y.data)[f] == best, "arg%s axis %d keep %d last %d: %lld vs %lld",
                              op ? "min" : "max", a, keep, last,
                              (long long)((int64_t *)y.data)[f], (long long)best);
              }
              free(y.data);
            }
      free(x.data);
    }
}
END_TEST

START_TEST(test_forward_topk) {
  int64_t shapes[][3] = {{3, 9, 2}, {2, 5, 3}, {1, 1, 4}, {2, 33, 1}};
  for (size_t si = 0; si < 4; si++)
    for (int d = 0; d < 3; d++) {
      oc_tensor_t x = mk_axis_input(g_num_dtypes[d], 3, shapes[si], 1);
      for (int64_t axis = -3; axis < 3; axis++)
        for (int largest = 0; largest <= 1; largest++) {
          int a = (int)(axis < 0 ? axis + 3 : axis);
          int64_t n = x.dims[a];
          for (int64_t k = 0; k <= n; k += (n > 6 ? 3 : 1)) {
            int64_t ints[3] = {axis, k, largest};
            oc_tensor_t v = {0}, ix = {0};
            oc_tensor_t *in[1] = {&x}, *out[2] = {&v, &ix};
            run_ok(OC_OP_TOPK, in, 1, out, 2, ints, 3);
            int64_t rd[3];
            memcpy(rd, x.dims, sizeof rd);
            rd[a] = 1;
            int64_t p[3], taken[64];
            for (int64_t f = 0; f < numel(3, rd); f++) {
              unflat(3, rd, f, p);
              memset(taken, 0, sizeof taken);
              /* Selection: the best untaken element, ties to the lower index. */
              for (int64_t r = 0; r < k; r++) {
                int64_t best = -1;
                double bv = 0;
                for (int64_t j = 0; j < n; j++) {
                  if (taken[j]) continue;
                  p[a] = j;
                  double val = get(&x, flat(3, x.dims, p));
                  int better = largest ? ref_above(val, bv) : ref_above(bv, val);
                  if (best < 0 || better) best = j, bv = val;
                }
                taken[best] = 1;
                int64_t od[3] = {x.dims[0], x.dims[1], x.dims[2]}, op[3] = {p[0], p[1], p[2]};
                od[a] = k;
                op[a] = r;
                int64_t o = flat(3, od, op);
                ck_assert_msg(((int64_t *)ix.data)[o] == best && same(get(&v, o), bv),
                              "topk axis %d k %lld largest %d rank %lld: (%g, %lld) vs (%g, %lld)",
                              a, (long long)k, largest, (long long)r, get(&v, o),
                              (long long)((int64_t *)ix.data)[o], bv, (long long)best);
              }
            }
            free(v.data), free(ix.data);
          }
        }
      free(x.data);
    }
  /* Values only (one output). */
  int64_t d1[1] = {5};
  oc_tensor_t x = mk(OC_DTYPE_INT32, 1, d1), v = {0};
  for (int i = 0; i < 5; i++) set(&x, i, (i * 7) % 5);
  oc_tensor_t *in[1] = {&x}, *out[1] = {&v};
  int64_t ints[3] = {0, 2, 1};
  run_ok(OC_OP_TOPK, in, 1, out, 1, ints, 3);
  ck_assert(get(&v, 0) == 4 && get(&v, 1) == 3);
  free(x.data), free(v.data);
}
END_TEST

START_TEST(test_forward_hardmax) {
  int64_t dx[3] = {3, 4, 5};
  oc_tensor_t x = mk_axis_input(OC_DTYPE_FLOAT32, 3, dx, 1);
  for (int64_t axis = -3; axis < 3; axis++) {
    oc_tensor_t y = {0};
    oc_tensor_t *in[1] = {&x}, *out[1] = {&y};
    run_ok(OC_OP_HARDMAX, in, 1, out, 1, &axis, 1);
    int a = (int)(axis < 0 ? axis + 3 : axis);
    int64_t p[3];
    for (int64_t f = 0; f < 60; f++) {
      unflat(3, dx, f, p);
      int64_t self = p[a], best = 0;
      for (int64_t j = 0; j < dx[a]; j++) {
        p[a] = j;
        double v = get(&x, flat(3, dx, p));
        p[a] = best;
        if (ref_above(v, get(&x, flat(3, dx, p)))) best = j;
      }
      ck_assert(get(&y, f) == (self == best ? 1.0 : 0.0));
    }
    free(y.data);
  }
  free(x.data);
}
END_TEST

START_TEST(test_forward_cumsum) {
  int64_t dx[3] = {3, 4, 5};
  for (int d = 0; d < 3; d++) {
    oc_tensor_t x = mk_rand(g_num_dtypes[d], 3, dx, -100, 100);
    if (d == 0) {
      for (int f = 0; f < 60; f++) set(&x, f, get(&x, f) / 7.0);
      set(&x, 7, INFINITY);
    }
    for (int64_t axis = -3; axis < 3; axis++)
      for (int ex = 0; ex <= 1; ex++)
        for (int rev = 0; rev <= 1; rev++) {
          int64_t ints[3] = {axis, ex, rev};
          oc_tensor_t y = {0};
          oc_tensor_t *in[1] = {&x}, *out[1] = {&y};
          run_ok(OC_OP_CUMSUM, in, 1, out, 1, ints, 3);
          int a = (int)(axis < 0 ? axis + 3 : axis);
          int64_t p[3];
          for (int64_t f = 0; f < 60; f++) {
            unflat(3, dx, f, p);
            int64_t self = p[a];
            double s = 0;
            for (int64_t j = 0; j < dx[a]; j++) {
              int in_sum = rev ? (ex ? j > self : j >= self) : (ex ? j < self : j <= self);
              if (!in_sum) continue;
              p[a] = j;
              s += get(&x, flat(3, dx, p));
            }
            double got = get(&y, f);
            ck_assert_msg(same(got, s) || fabs(got - s) <= 1e-5 * fabs(s) + 1e-6,
                          "cumsum axis %d ex %d rev %d at %lld: %g vs %g", a, ex, rev,
                          (long long)f, got, s);
          }
          free(y.data);
        }
    free(x.data);
  }
  /* Integer sums wrap instead of trapping. */
  int64_t d1[1] = {2};
  oc_tensor_t x = mk(OC_DTYPE_INT32, 1, d1), y = {0};
  ((int32_t *)x.data)[0] = INT32_MAX;
  ((int32_t *)x.data)[1] = 1;
  oc_tensor_t *in[1] = {&x}, *out[1] = {&y};
  int64_t ints[3] = {0, 0, 0};
  run_ok(OC_OP_CUMSUM, in, 1, out, 1, ints, 3);
  ck_assert_int_eq(((int32_t *)y.data)[1], INT32_MIN);
  free(x.data), free(y.data);
  /* Empty. */
  int64_t d0[2] = {0, 3};
  x = mk(OC_DTYPE_FLOAT32, 2, d0);
  in[0] = &x;
  run_ok(OC_OP_CUMSUM, in, 1, out, 1, ints, 3);
  free(x.data), free(y.data);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* errors                                                                   */
/* ------------------------------------------------------------------------ */

START_TEST(test_errors_infer_hostile) {
  const int64_t BIG = INT64_MAX, SMALL = INT64_MIN, HUGE_DIM = (int64_t)1 << 40;
  int64_t d2[2] = {4, 5}, dv[1] = {2}, d3[1] = {3};
  oc_tensor_t x = mk(OC_DTYPE_FLOAT32, 2, d2), vals = mk(OC_DTYPE_FLOAT32, 1, dv),
              v3 = mk(OC_DTYPE_FLOAT32, 1, d3), idx = mk(OC_DTYPE_INT64, 2, d2), y = {0}, z = {0};
  oc_tensor_t *out[2] = {&y, &z};
  oc_tensor_t *in2[2] = {&idx, &vals};
  /* OneHot */
  int64_t oh[][3] = {{3, 5, 1}, {-4, 5, 1}, {0, -1, 1}, {0, BIG, 1}, {0, 5, 2}, {SMALL, 5, 0},
                     {0, HUGE_DIM, 0}};
  for (size_t i = 0; i < sizeof oh / sizeof oh[0]; i++)
    ck_assert_int_ne(infer_code(OC_OP_ONEHOT, in2, 2, out, 1, oh[i], 3, NULL), OC_STATUS_OK);
  in2[1] = &v3;
  ck_assert_int_ne(infer_code(OC_OP_ONEHOT, in2, 2, out, 1, oh[0], 3, NULL), OC_STATUS_OK);
  ck_assert_int_ne(infer_code(OC_OP_ONEHOT, in2, 2, out, 1, oh[0], 2, NULL), OC_STATUS_OK);
  in2[0] = &vals; /* float32 indices ok, int8 not */
  oc_tensor_t i8 = mk(OC_DTYPE_INT8, 1, dv);
  in2[0] = &i8;
  in2[1] = &vals;
  int64_t ok3[3] = {0, 3, 1};
  ck_assert_int_eq(infer_code(OC_OP_ONEHOT, in2, 2, out, 1, ok3, 3, NULL), OC_STATUS_UNSUPPORTED);
  /* Trilu */
  oc_tensor_t *in1[1] = {&x};
  int64_t tr[][2] = {{2, 0}, {-1, 0}};
  for (int i = 0; i < 2; i++)
    ck_assert_int_ne(infer_code(OC_OP_TRILU, in1, 1, out, 1, tr[i], 2, NULL), OC_STATUS_OK);
  in1[0] = &vals; /* rank 1 */
  ck_assert_int_ne(infer_code(OC_OP_TRILU, in1, 1, out, 1, (int64_t[]){0, 0}, 2, NULL), OC_STATUS_OK);
  /* Tile: wrong count, negative, overflowing products. */
  in1[0] = &x;
  int64_t tl[][2] = {{-1, 1}, {1, BIG}, {HUGE_DIM, 1}, {(int64_t)1 << 39, 1}, {SMALL, SMALL}};
  for (int i = 0; i < 5; i++)
    ck_assert_int_ne(infer_code(OC_OP_TILE, in1, 1, out, 1, tl[i], 2, NULL), OC_STATUS_OK);
  ck_assert_int_ne(infer_code(OC_OP_TILE, in1, 1, out, 1, tl[0], 1, NULL), OC_STATUS_OK);
  /* GatherElements / ScatterElements: axis, rank and dims mismatches. */
  int64_t d2b[2] = {5, 5}, d1[1] = {4};
  oc_tensor_t big = mk(OC_DTYPE_INT64, 2, d2b), r1 = mk(OC_DTYPE_INT64, 1, d1),
              fidx = mk(OC_DTYPE_FLOAT32, 2, d2);
  oc_tensor_t *g[3] = {&x, &idx, &x};
  int64_t axes[] = {2, -3, BIG, SMALL};
  for (int i = 0; i < 4; i++) {
    ck_assert_int_ne(infer_code(OC_OP_GATHER_ELEMENTS, g, 2, out, 1, &axes[i], 1, NULL), OC_STATUS_OK);
    int64_t se[2] = {axes[i], 0};
    ck_assert_int_ne(infer_code(OC_OP_SCATTER_ELEMENTS, g, 3, out, 1, se, 2, NULL), OC_STATUS_OK);
  }
  int64_t zero = 0;
  g[1] = &big; /* dim 1 (5 > 5? no: 5 == 5) but axis 1 -> dim 0 is 5 > 4 */
  int64_t one = 1;
  ck_assert_int_ne(infer_code(OC_OP_GATHER_ELEMENTS, g, 2, out, 1, &one, 1, NULL), OC_STATUS_OK);
  g[1] = &r1;
  ck_assert_int_ne(infer_code(OC_OP_GATHER_ELEMENTS, g, 2, out, 1, &zero, 1, NULL), OC_STATUS_OK);
  g[1] = &fidx;
  ck_assert_int_eq(infer_code(OC_OP_GATHER_ELEMENTS, g, 2, out, 1, &zero, 1, NULL), OC_STATUS_UNSUPPORTED);
  /* Scatter: bad reduction, reduction on bool, updates mismatch. */
  g[1] = &idx;
  int64_t bad_red[][2] = {{0, 5}, {0, -1}, {0, BIG}};
  for (int i = 0; i < 3; i++)
    ck_assert_int_ne(infer_code(OC_OP_SCATTER_ELEMENTS, g, 3, out, 1, bad_red[i], 2, NULL), OC_STATUS_OK);
  oc_tensor_t xb = mk(OC_DTYPE_BOOL, 2, d2);
  oc_tensor_t *gb[3] = {&xb, &idx, &xb};
  int64_t add[2] = {0, 1};
  ck_assert_int_eq(infer_code(OC_OP_SCATTER_ELEMENTS, gb, 3, out, 1, add, 2, NULL), OC_STATUS_UNSUPPORTED);
  add[1] = 0;
  ck_assert_int_eq(infer_code(OC_OP_SCATTER_ELEMENTS, gb, 3, out, 1, add, 2, NULL), OC_STATUS_OK);
  g[2] = &big;
  ck_assert_int_ne(infer_code(OC_OP_SCATTER_ELEMENTS, g, 3, out, 1, add, 2, NULL), OC_STATUS_OK);
  /* GatherND / ScatterND: batch_dims, last dim, batch mismatch. */
  int64_t dk[2] = {4, 3};
  oc_tensor_t k3 = mk(OC_DTYPE_INT64, 2, dk);
  oc_tensor_t *n[3] = {&x, &k3, &x};
  int64_t bds[] = {0, 1, 2, -1, BIG, SMALL};
  for (int i = 0; i < 6; i++) /* m = 3 > rank 2 always */
    ck_assert_int_ne(infer_code(OC_OP_GATHER_ND, n, 2, out, 1, &bds[i], 1, NULL), OC_STATUS_OK);
  ck_assert_int_ne(infer_code(OC_OP_SCATTER_ND, n, 3, out, 1, &zero, 1, NULL), OC_STATUS_OK);
  int64_t db[2] = {3, 1};
  oc_tensor_t kb = mk(OC_DTYPE_INT64, 2, db);
  n[1] = &kb; /* batch dim 3 != 4 */
  ck_assert_int_ne(infer_code(OC_OP_GATHER_ND, n, 2, out, 1, &one, 1, NULL), OC_STATUS_OK);
  ck_assert_int_eq(infer_code(OC_OP_GATHER_ND, n, 2, out, 1, &zero, 1, NULL), OC_STATUS_OK);
  int64_t d35[2] = {3, 5}, bad_nd_red[] = {5, -1, BIG};
  oc_tensor_t u35 = mk(OC_DTYPE_FLOAT32, 2, d35);
  n[2] = &u35;
  ck_assert_int_eq(infer_code(OC_OP_SCATTER_ND, n, 3, out, 1, &zero, 1, NULL), OC_STATUS_OK);
  for (int i = 0; i < 3; i++) /* updates (3, 5) are right; the reduction is not */
    ck_assert_int_ne(infer_code(OC_OP_SCATTER_ND, n, 3, out, 1, &bad_nd_red[i], 1, NULL), OC_STATUS_OK);
  free(u35.data);
  /* Axis ops. */
  in1[0] = &x;
  int64_t arg[][3] = {{2, 1, 0}, {-3, 1, 0}, {0, 2, 0}, {0, 1, -1}, {BIG, 0, 0}, {SMALL, 0, 0}};
  for (int i = 0; i < 6; i++) {
    ck_assert_int_ne(infer_code(OC_OP_ARGMAX, in1, 1, out, 1, arg[i], 3, NULL), OC_STATUS_OK);
    ck_assert_int_ne(infer_code(OC_OP_ARGMIN, in1, 1, out, 1, arg[i], 3, NULL), OC_STATUS_OK);
    ck_assert_int_ne(infer_code(OC_OP_CUMSUM, in1, 1, out, 1, arg[i], 3, NULL), OC_STATUS_OK);
    ck_assert_int_ne(infer_code(OC_OP_HARDMAX, in1, 1, out, 1, arg[i], i < 2 || i > 3 ? 1 : 3, NULL),
                     OC_STATUS_OK);
  }
  int64_t tk[][3] = {{1, 6, 1}, {1, -1, 1}, {1, BIG, 1}, {1, 2, 2}, {2, 1, 1}, {SMALL, 1, 1}};
  for (int i = 0; i < 6; i++)
    ck_assert_int_ne(infer_code(OC_OP_TOPK, in1, 1, out, 2, tk[i], 3, NULL), OC_STATUS_OK);
  /* Empty axis for ArgMax; rank 0 for all. */
  int64_t d0[2] = {3, 0};
  oc_tensor_t e = mk(OC_DTYPE_FLOAT32, 2, d0), s = mk(OC_DTYPE_FLOAT32, 0, NULL);
  in1[0] = &e;
  int64_t a1[3] = {1, 1, 0};
  ck_assert_int_ne(infer_code(OC_OP_ARGMAX, in1, 1, out, 1, a1, 3, NULL), OC_STATUS_OK);
  in1[0] = &s;
  int64_t a0[3] = {0, 1, 0};
  ck_assert_int_ne(infer_code(OC_OP_ARGMAX, in1, 1, out, 1, a0, 3, NULL), OC_STATUS_OK);
  ck_assert_int_ne(infer_code(OC_OP_TOPK, in1, 1, out, 2, a0, 3, NULL), OC_STATUS_OK);
  ck_assert_int_ne(infer_code(OC_OP_CUMSUM, in1, 1, out, 1, a0, 3, NULL), OC_STATUS_OK);
  /* dtypes: bool is not computed by the axis ops; Hardmax is float32 only. */
  in1[0] = &xb;
  ck_assert_int_eq(infer_code(OC_OP_TOPK, in1, 1, out, 2, (int64_t[]){0, 1, 1}, 3, NULL),
                   OC_STATUS_UNSUPPORTED);
  ck_assert_int_eq(infer_code(OC_OP_CUMSUM, in1, 1, out, 1, (int64_t[]){0, 0, 0}, 3, NULL),
                   OC_STATUS_UNSUPPORTED);
  in1[0] = &idx;
  ck_assert_int_ne(infer_code(OC_OP_HARDMAX, in1, 1, out, 1, &zero, 1, NULL), OC_STATUS_OK);
  free(x.data), free(vals.data), free(v3.data), free(idx.data), free(i8.data), free(big.data);
  free(r1.data), free(fidx.data), free(xb.data), free(k3.data), free(kb.data), free(e.data);
  free(s.data);
}
END_TEST

START_TEST(test_errors_runtime_indices) {
  int64_t d2[2] = {2, 3};
  oc_tensor_t data = mk_rand(OC_DTYPE_FLOAT32, 2, d2, 0, 9), idx = mk(OC_DTYPE_INT64, 2, d2);
  oc_tensor_t upd = mk_rand(OC_DTYPE_FLOAT32, 2, d2, 0, 9), y = {0};
  ((int64_t *)idx.data)[4] = 3; /* axis 1 has size 3 */
  oc_tensor_t *in[3] = {&data, &idx, &upd}, *out[1] = {&y};
  int64_t one = 1, se[2] = {1, 0};
  run_fails(OC_OP_GATHER_ELEMENTS, in, 2, out, 1, &one, 1, OC_STATUS_NUMERIC, "index 3");
  run_fails(OC_OP_SCATTER_ELEMENTS, in, 3, out, 1, se, 2, OC_STATUS_NUMERIC, "[-3, 2]");
  ((int64_t *)idx.data)[4] = -4;
  run_fails(OC_OP_GATHER_ELEMENTS, in, 2, out, 1, &one, 1, OC_STATUS_NUMERIC, "index -4");
  /* int32 indices */
  oc_tensor_t i32 = mk(OC_DTYPE_INT32, 2, d2);
  ((int32_t *)i32.data)[0] = INT32_MIN;
  in[1] = &i32;
  run_fails(OC_OP_GATHER_ELEMENTS, in, 2, out, 1, &one, 1, OC_STATUS_NUMERIC, "-2147483648");
  /* ND: tuple (1, 5) into (2, 3). */
  int64_t dk[2] = {1, 2}, du[1] = {1};
  oc_tensor_t k = mk(OC_DTYPE_INT64, 2, dk), u1 = mk(OC_DTYPE_FLOAT32, 1, du);
  ((int64_t *)k.data)[0] = 1;
  ((int64_t *)k.data)[1] = 5;
  in[1] = &k;
  in[2] = &u1;
  int64_t zero = 0;
  run_fails(OC_OP_GATHER_ND, in, 2, out, 1, &zero, 1, OC_STATUS_NUMERIC, "index 5");
  run_fails(OC_OP_SCATTER_ND, in, 3, out, 1, &zero, 1, OC_STATUS_NUMERIC, "index 5");
  ((int64_t *)k.data)[1] = INT64_MIN;
  run_fails(OC_OP_SCATTER_ND, in, 3, out, 1, &zero, 1, OC_STATUS_NUMERIC, "out of range");
  /* Indices into an empty axis are always out of range. */
  int64_t de[2] = {2, 0}, dl[2] = {2, 1};
  oc_tensor_t ed = mk(OC_DTYPE_FLOAT32, 2, de), ei = mk(OC_DTYPE_INT64, 2, dl);
  in[0] = &ed;
  in[1] = &ei;
  run_fails(OC_OP_GATHER_ELEMENTS, in, 2, out, 1, &one, 1, OC_STATUS_NUMERIC, "size 0");
  free(data.data), free(idx.data), free(upd.data), free(i32.data), free(k.data), free(u1.data);
  free(ed.data), free(ei.data);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* lowering                                                                 */
/* ------------------------------------------------------------------------ */

oc_status_t oc_lower_nonzero(oc_lower_t *lw);
oc_status_t oc_lower_onehot(oc_lower_t *lw);
oc_status_t oc_lower_topk(oc_lower_t *lw);
oc_status_t oc_lower_hardmax(oc_lower_t *lw);
oc_status_t oc_lower_cumsum(oc_lower_t *lw);
oc_status_t oc_lower_tile(oc_lower_t *lw);
oc_status_t oc_lower_scatter_elements(oc_lower_t *lw);
oc_status_t oc_lower_argmax(oc_lower_t *lw);

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

static void fx_input(fx_t *f, int dtype, int rank, const int64_t *dims) {
  char name[16];
  snprintf(name, sizeof name, "in%d", f->node.n_in);
  int v = oc_graph_value(f->g, name);
  oc_value_t *val = &f->g->values[v];
  memset(&val->type, 0, sizeof val->type);
  val->type.dtype = dtype;
  val->type.rank = rank;
  for (int i = 0; i < rank; i++) val->type.dims[i] = dims[i];
  val->known = 1;
  val->kind = OC_VALUE_INPUT;
  f->in[f->node.n_in++] = v;
}

static void fx_const(fx_t *f, int dtype, int rank, const int64_t *dims, const void *data) {
  char name[16];
  snprintf(name, sizeof name, "in%d", f->node.n_in);
  int v = oc_graph_value(f->g, name);
  ck_assert(oc_value_set_const(f->g, v, dtype, rank, dims, data) == OC_OK);
  f->in[f->node.n_in++] = v;
}

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

static void fx_attr_string(fx_t *f, const char *name, const char *s) {
  oc_attr_t *a = &f->attrs[f->node.n_attrs++];
  *a = (oc_attr_t){.name = (char *)name, .type = OC_ATTR_STRING, .s = (char *)s, .tensor = -1};
}

static oc_status_code_t fx_lower(fx_t *f, oc_lower_fn fn, char *msg, size_t n) {
  oc_status_t s = fn(&f->lw);
  oc_status_code_t c = oc_status_code(s);
  if (msg) snprintf(msg, n, "%s", oc_status_message(s));
  oc_status_free(s);
  return c;
}

START_TEST(test_lower_nonzero) {
  /* A constant folds to its coordinates. */
  fx_t f;
  fx_init(&f, "NonZero", 13);
  int64_t d[2] = {2, 3};
  const float x[6] = {0.0f, -0.0f, 3.0f, NAN, 0.0f, -1.0f};
  fx_const(&f, OC_DTYPE_FLOAT32, 2, d, x);
  int y = fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_nonzero, NULL, 0), OC_STATUS_OK);
  const oc_value_t *v = &f.g->values[y];
  ck_assert_int_eq(v->kind, OC_VALUE_CONST);
  check_dims(&v->type, OC_DTYPE_INT64, 2, (int64_t[]){2, 3});
  const int64_t want[6] = {0, 1, 1, 2, 0, 2};
  ck_assert_mem_eq(v->type.data, want, sizeof want);
  ck_assert_int_eq(f.g->n_instrs, 0);
  oc_graph_free(f.g);
  /* A scalar: rank 1. */
  fx_init(&f, "NonZero", 13);
  const uint8_t t = 1;
  fx_const(&f, OC_DTYPE_BOOL, 0, NULL, &t);
  y = fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_nonzero, NULL, 0), OC_STATUS_OK);
  check_dims(&f.g->values[y].type, OC_DTYPE_INT64, 2, (int64_t[]){1, 1});
  oc_graph_free(f.g);
  /* A run-time input is refused with the reason. */
  fx_init(&f, "NonZero", 13);
  fx_input(&f, OC_DTYPE_BOOL, 2, d);
  fx_output(&f);
  char msg[512];
  ck_assert_int_eq(fx_lower(&f, oc_lower_nonzero, msg, sizeof msg), OC_STATUS_UNSUPPORTED);
  ck_assert_ptr_nonnull(strstr(msg, "output shape depends on run-time data"));
  oc_graph_free(f.g);
}
END_TEST

START_TEST(test_lower_opsets_and_refusals) {
  fx_t f;
  char msg[512];
  int64_t d[2] = {3, 4}, dv[1] = {2};
  /* OneHot-9 vs 11: the negative flag. */
  for (int opset = 9; opset <= 11; opset += 2) {
    fx_init(&f, "OneHot", opset);
    fx_input(&f, OC_DTYPE_INT64, 2, d);
    const float depth = 5.0f, vals[2] = {0, 1};
    fx_const(&f, OC_DTYPE_FLOAT32, 0, NULL, &depth);
    fx_const(&f, OC_DTYPE_FLOAT32, 1, dv, vals);
    fx_output(&f);
    ck_assert_int_eq(fx_lower(&f, oc_lower_onehot, msg, sizeof msg), OC_STATUS_OK);
    const oc_instr_t *ins = &f.g->instrs[f.g->n_instrs - 1];
    ck_assert_int_eq(ins->op, OC_OP_ONEHOT);
    ck_assert_int_eq(ins->ints[0], 2);
    ck_assert_int_eq(ins->ints[1], 5);
    ck_assert_int_eq(ins->ints[2], opset >= 11);
    oc_graph_free(f.g);
  }
  /* OneHot with a run-time depth: refused. */
  fx_init(&f, "OneHot", 11);
  fx_input(&f, OC_DTYPE_INT64, 2, d);
  fx_input(&f, OC_DTYPE_FLOAT32, 0, NULL);
  fx_input(&f, OC_DTYPE_FLOAT32, 1, dv);
  fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_onehot, msg, sizeof msg), OC_STATUS_UNSUPPORTED);
  oc_graph_free(f.g);
  /* TopK-1: k attribute; TopK-11: k input. */
  fx_init(&f, "TopK", 1);
  fx_input(&f, OC_DTYPE_FLOAT32, 2, d);
  fx_attr_int(&f, "k", 2);
  fx_output(&f);
  fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_topk, msg, sizeof msg), OC_STATUS_OK);
  ck_assert_int_eq(f.g->instrs[0].ints[0], 1);
  ck_assert_int_eq(f.g->instrs[0].ints[1], 2);
  ck_assert_int_eq(f.g->instrs[0].n_out, 2);
  oc_graph_free(f.g);
  fx_init(&f, "TopK", 11);
  fx_input(&f, OC_DTYPE_FLOAT32, 2, d);
  const int64_t k9 = 9;
  fx_const(&f, OC_DTYPE_INT64, 1, (int64_t[]){1}, &k9);
  fx_output(&f);
  fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_topk, msg, sizeof msg), OC_STATUS_INVALID_ARGUMENT);
  oc_graph_free(f.g);
  /* Hardmax-11 on axis 1 of a rank-3 input: Copy, Hardmax over the 2-D rows, Copy. */
  int64_t d3[3] = {2, 3, 4};
  fx_init(&f, "Hardmax", 11);
  fx_input(&f, OC_DTYPE_FLOAT32, 3, d3);
  int y = fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_hardmax, msg, sizeof msg), OC_STATUS_OK);
  ck_assert_int_eq(f.g->n_instrs, 3);
  ck_assert_int_eq(f.g->instrs[1].op, OC_OP_HARDMAX);
  check_dims(&f.g->values[f.g->instrs[1].in[0]].type, OC_DTYPE_FLOAT32, 2, (int64_t[]){2, 12});
  check_dims(&f.g->values[y].type, OC_DTYPE_FLOAT32, 3, d3);
  oc_graph_free(f.g);
  fx_init(&f, "Hardmax", 13);
  fx_input(&f, OC_DTYPE_FLOAT32, 3, d3);
  fx_attr_int(&f, "axis", 1);
  fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_hardmax, msg, sizeof msg), OC_STATUS_OK);
  ck_assert_int_eq(f.g->n_instrs, 1);
  ck_assert_int_eq(f.g->instrs[0].ints[0], 1);
  oc_graph_free(f.g);
  /* CumSum of float64: refused (storage-only dtype). */
  fx_init(&f, "CumSum", 14);
  fx_input(&f, OC_DTYPE_FLOAT64, 2, d);
  const int32_t ax = 0;
  fx_const(&f, OC_DTYPE_INT32, 0, NULL, &ax);
  fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_cumsum, msg, sizeof msg), OC_STATUS_UNSUPPORTED);
  ck_assert_ptr_nonnull(strstr(msg, "double"));
  oc_graph_free(f.g);
  /* Tile: repeats of the wrong length; Tile-1 refused. */
  fx_init(&f, "Tile", 13);
  fx_input(&f, OC_DTYPE_FLOAT32, 2, d);
  const int64_t reps[3] = {1, 2, 3};
  fx_const(&f, OC_DTYPE_INT64, 1, (int64_t[]){3}, reps);
  fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_tile, msg, sizeof msg), OC_STATUS_INVALID_ARGUMENT);
  oc_graph_free(f.g);
  fx_init(&f, "Tile", 1);
  fx_input(&f, OC_DTYPE_FLOAT32, 2, d);
  fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_tile, msg, sizeof msg), OC_STATUS_UNSUPPORTED);
  oc_graph_free(f.g);
  /* ScatterElements: reductions by name; unknown one refused; none on bool fine. */
  const char *reds[] = {"none", "add", "mul", "max", "min", "avg"};
  for (int i = 0; i < 6; i++) {
    fx_init(&f, "ScatterElements", 16);
    fx_input(&f, OC_DTYPE_FLOAT32, 2, d);
    fx_input(&f, OC_DTYPE_INT64, 2, d);
    fx_input(&f, OC_DTYPE_FLOAT32, 2, d);
    fx_attr_string(&f, "reduction", reds[i]);
    fx_output(&f);
    oc_status_code_t c = fx_lower(&f, oc_lower_scatter_elements, msg, sizeof msg);
    if (i < 5) {
      ck_assert_int_eq(c, OC_STATUS_OK);
      ck_assert_int_eq(f.g->instrs[0].ints[1], i);
    } else {
      ck_assert_int_eq(c, OC_STATUS_UNSUPPORTED);
      ck_assert_ptr_nonnull(strstr(msg, "avg"));
    }
    oc_graph_free(f.g);
  }
  fx_init(&f, "ScatterElements", 16);
  fx_input(&f, OC_DTYPE_BOOL, 2, d);
  fx_input(&f, OC_DTYPE_INT64, 2, d);
  fx_input(&f, OC_DTYPE_BOOL, 2, d);
  fx_attr_string(&f, "reduction", "add");
  fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_scatter_elements, msg, sizeof msg), OC_STATUS_UNSUPPORTED);
  oc_graph_free(f.g);
  /* ArgMax-11 ignores select_last_index (not in that opset); 12 reads it. */
  for (int opset = 11; opset <= 12; opset++) {
    fx_init(&f, "ArgMax", opset);
    fx_input(&f, OC_DTYPE_INT32, 2, d);
    fx_attr_int(&f, "select_last_index", 1);
    fx_attr_int(&f, "axis", -1);
    fx_output(&f);
    ck_assert_int_eq(fx_lower(&f, oc_lower_argmax, msg, sizeof msg), OC_STATUS_OK);
    ck_assert_int_eq(f.g->instrs[0].ints[0], 1);
    ck_assert_int_eq(f.g->instrs[0].ints[2], opset >= 12);
    oc_graph_free(f.g);
  }
}
END_TEST

static Suite *indexing_suite(void) {
  Suite *s = suite_create("ops_indexing");
  TCase *shape = tcase_create("shape");
  tcase_add_test(shape, test_shape_onehot_tile_trilu);
  tcase_add_test(shape, test_shape_gather_scatter);
  tcase_add_test(shape, test_shape_axis_ops);
  suite_add_tcase(s, shape);
  TCase *fwd = tcase_create("forward");
  tcase_add_test(fwd, test_forward_onehot);
  tcase_add_test(fwd, test_forward_trilu);
  tcase_add_test(fwd, test_forward_tile);
  tcase_add_test(fwd, test_forward_gather_elements);
  tcase_add_test(fwd, test_forward_gather_nd);
  tcase_add_test(fwd, test_forward_scatter_elements);
  tcase_add_test(fwd, test_forward_scatter_nd);
  tcase_add_test(fwd, test_forward_argmax_argmin);
  tcase_add_test(fwd, test_forward_topk);
  tcase_add_test(fwd, test_forward_hardmax);
  tcase_add_test(fwd, test_forward_cumsum);
  suite_add_tcase(s, fwd);
  TCase *err = tcase_create("errors");
  tcase_add_test(err, test_errors_infer_hostile);
  tcase_add_test(err, test_errors_runtime_indices);
  suite_add_tcase(s, err);
  TCase *low = tcase_create("lowering");
  tcase_add_test(low, test_lower_nonzero);
  tcase_add_test(low, test_lower_opsets_and_refusals);
  suite_add_tcase(s, low);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(indexing_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
