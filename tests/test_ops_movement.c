/*
 * Data movement and shape arithmetic: the runtime ops Transpose, Concat,
 * Split, Slice, Expand (shape rules, kernels against naive index-math
 * references for 1/4/8-byte elements, hostile ints), and the lowering of
 * the ONNX ops in compiler/ops/{shape,movement}.c, called directly on small
 * hand-made graphs (ONNX clamping rules, opset differences, refusals).
 */
#include <check.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lower.h"
#include "oc_ops.h"

/* ------------------------------------------------------------------------ */
/* Runtime helpers                                                          */
/* ------------------------------------------------------------------------ */

static oc_tensor_t mk(int dtype, int rank, const int64_t *dims, void *data) {
  oc_tensor_t t = {.dtype = dtype, .rank = rank, .data = data};
  for (int i = 0; i < rank; i++) t.dims[i] = dims[i];
  return t;
}

/* Infers |op|; frees the status and returns its code. */
static oc_status_code_t infer_code(int op, oc_tensor_t **in, int n_in, oc_tensor_t **out,
                                   int n_out, const int64_t *ints, int n_ints) {
  oc_op_call_t c = {.ints = ints, .n_ints = n_ints, .n_in = n_in, .in = in, .n_out = n_out,
                    .out = out};
  size_t ws = 123;
  oc_status_t s = oc_op_infer(op, &c, &ws);
  oc_status_code_t code = oc_status_code(s);
  if (!s) ck_assert_uint_eq(ws, 0);
  oc_status_free(s);
  return code;
}

/* Infers, allocates the outputs and runs |op|. Caller frees out[i]->data. */
static void run_op(int op, oc_tensor_t **in, int n_in, oc_tensor_t **out, int n_out,
                   const int64_t *ints, int n_ints) {
  oc_op_call_t c = {.ints = ints, .n_ints = n_ints, .n_in = n_in, .in = in, .n_out = n_out,
                    .out = out};
  size_t ws = 0;
  oc_status_t s = oc_op_infer(op, &c, &ws);
  ck_assert_msg(s == OC_OK, "infer: %s", oc_status_message(s));
  for (int i = 0; i < n_out; i++) {
    size_t b = oc_tensor_bytes(out[i]);
    out[i]->data = malloc(b ? b : 1);
    memset(out[i]->data, 0xAB, b ? b : 1);
  }
  s = oc_op_get(op)->run(&c);
  ck_assert_msg(s == OC_OK, "run: %s", oc_status_message(s));
}

/* Element k of a buffer of |esize|-byte elements, widened (for comparison). */
static uint64_t elem(const void *p, int64_t k, size_t esize) {
  uint64_t v = 0;
  memcpy(&v, (const char *)p + k * (int64_t)esize, esize);
  return v;
}

/* A buffer of n elements of |esize| bytes whose values are all distinct
 * (mod 256 for bytes), so a misplaced element shows. */
static void *iota_buf(int64_t n, size_t esize) {
  char *p = malloc((size_t)(n ? n : 1) * esize);
  for (int64_t k = 0; k < n; k++) {
    uint64_t v = (uint64_t)(k * 2654435761u) ^ ((uint64_t)k << 33);
    memcpy(p + k * (int64_t)esize, &v, esize);
  }
  return p;
}

static const int g_dtypes[3] = {OC_DTYPE_FLOAT32, OC_DTYPE_INT64, OC_DTYPE_BOOL};

/* Flat index of |idx| in row-major |dims|. */
static int64_t flat(int rank, const int64_t *dims, const int64_t *idx) {
  int64_t f = 0;
  for (int i = 0; i < rank; i++) f = f * dims[i] + idx[i];
  return f;
}

/* Advances a row-major multi-index; returns 0 after the last one. */
static int next_index(int rank, const int64_t *dims, int64_t *idx) {
  for (int i = rank - 1; i >= 0; i--) {
    if (++idx[i] < dims[i]) return 1;
    idx[i] = 0;
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* shape                                                                    */
/* ------------------------------------------------------------------------ */

START_TEST(test_shape_transpose) {
  int64_t d[3] = {2, 3, 4}, perm[3] = {2, 0, 1};
  oc_tensor_t x = mk(OC_DTYPE_FLOAT32, 3, d, NULL), y = {0};
  oc_tensor_t *in[1] = {&x}, *out[1] = {&y};
  ck_assert_int_eq(infer_code(OC_OP_TRANSPOSE, in, 1, out, 1, perm, 3), OC_STATUS_OK);
  ck_assert_int_eq(y.rank, 3);
  ck_assert_int_eq(y.dims[0], 4);
  ck_assert_int_eq(y.dims[1], 2);
  ck_assert_int_eq(y.dims[2], 3);
  /* rank 0 */
  oc_tensor_t s = mk(OC_DTYPE_INT64, 0, NULL, NULL);
  in[0] = &s;
  ck_assert_int_eq(infer_code(OC_OP_TRANSPOSE, in, 1, out, 1, NULL, 0), OC_STATUS_OK);
  ck_assert_int_eq(y.rank, 0);
  ck_assert_int_eq(y.dtype, OC_DTYPE_INT64);
}
END_TEST

START_TEST(test_shape_concat_split) {
  int64_t da[2] = {2, 3}, db[2] = {2, 0}, dc[2] = {2, 5};
  oc_tensor_t a = mk(OC_DTYPE_INT64, 2, da, NULL), b = mk(OC_DTYPE_INT64, 2, db, NULL),
              c = mk(OC_DTYPE_INT64, 2, dc, NULL), y = {0};
  oc_tensor_t *in[3] = {&a, &b, &c}, *out[3] = {&y};
  int64_t axis = -1;
  ck_assert_int_eq(infer_code(OC_OP_CONCAT, in, 3, out, 1, &axis, 1), OC_STATUS_OK);
  ck_assert_int_eq(y.dims[0], 2);
  ck_assert_int_eq(y.dims[1], 8);
  ck_assert_int_eq(y.dtype, OC_DTYPE_INT64);

  oc_tensor_t y0 = {0}, y1 = {0}, y2 = {0};
  oc_tensor_t *sin[1] = {&c}, *sout[3] = {&y0, &y1, &y2};
  int64_t ints[4] = {1, 2, 0, 3};
  ck_assert_int_eq(infer_code(OC_OP_SPLIT, sin, 1, sout, 3, ints, 4), OC_STATUS_OK);
  ck_assert_int_eq(y0.dims[1], 2);
  ck_assert_int_eq(y1.dims[1], 0);
  ck_assert_int_eq(y2.dims[1], 3);
  ck_assert_int_eq(y2.dims[0], 2);
}
END_TEST

START_TEST(test_shape_slice_expand) {
  int64_t d[3] = {20, 10, 5};
  oc_tensor_t x = mk(OC_DTYPE_FLOAT32, 3, d, NULL), y = {0};
  oc_tensor_t *in[1] = {&x}, *out[1] = {&y};
  /* x[19:0:-1, 9:0:-3, 4:1:-2] as in test_slice_neg_steps */
  int64_t ints[9] = {19, -1, 19, 9, -3, 3, 4, -2, 2};
  ck_assert_int_eq(infer_code(OC_OP_SLICE, in, 1, out, 1, ints, 9), OC_STATUS_OK);
  ck_assert_int_eq(y.dims[0], 19);
  ck_assert_int_eq(y.dims[1], 3);
  ck_assert_int_eq(y.dims[2], 2);
  /* empty axis: start/step unchecked */
  int64_t empty[9] = {0, 1, 20, 999, 7, 0, 0, 1, 5};
  ck_assert_int_eq(infer_code(OC_OP_SLICE, in, 1, out, 1, empty, 9), OC_STATUS_OK);
  ck_assert_int_eq(y.dims[1], 0);

  int64_t dx[2] = {3, 1}, shape[3] = {2, 3, 6};
  oc_tensor_t e = mk(OC_DTYPE_BOOL, 2, dx, NULL);
  in[0] = &e;
  ck_assert_int_eq(infer_code(OC_OP_EXPAND, in, 1, out, 1, shape, 3), OC_STATUS_OK);
  ck_assert_int_eq(y.rank, 3);
  ck_assert_int_eq(y.dims[2], 6);
  ck_assert_int_eq(y.dtype, OC_DTYPE_BOOL);
  int64_t zero[2] = {3, 0}; /* a 1 broadcasts to 0 */
  ck_assert_int_eq(infer_code(OC_OP_EXPAND, in, 1, out, 1, zero, 2), OC_STATUS_OK);
  ck_assert_int_eq(y.dims[1], 0);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* forward                                                                  */
/* ------------------------------------------------------------------------ */

/* Every permutation of a rank-4 tensor, for 4-, 8- and 1-byte dtypes. */
START_TEST(test_forward_transpose) {
  int64_t d[4] = {2, 3, 4, 5};
  int64_t n = 120;
  for (int t = 0; t < 3; t++) {
    size_t es = oc_dtype_size(g_dtypes[t]);
    void *buf = iota_buf(n, es);
    oc_tensor_t x = mk(g_dtypes[t], 4, d, buf);
    int64_t perm[4];
    for (int p = 0; p < 256; p++) {
      int used = 0, ok = 1;
      for (int i = 0; i < 4; i++) {
        perm[i] = (p >> (2 * i)) & 3;
        if (used & (1 << perm[i])) ok = 0;
        used |= 1 << perm[i];
      }
      if (!ok) continue;
      oc_tensor_t y = {0};
      oc_tensor_t *in[1] = {&x}, *out[1] = {&y};
      run_op(OC_OP_TRANSPOSE, in, 1, out, 1, perm, 4);
      int64_t oi[4] = {0}, xi[4];
      do {
        for (int i = 0; i < 4; i++) xi[perm[i]] = oi[i];
        ck_assert_uint_eq(elem(y.data, flat(4, y.dims, oi), es), elem(buf, flat(4, d, xi), es));
      } while (next_index(4, y.dims, oi));
      free(y.data);
    }
    free(buf);
  }
}
END_TEST

START_TEST(test_forward_concat_split) {
  int64_t da[3] = {2, 1, 3}, db[3] = {2, 0, 3}, dc[3] = {2, 4, 3};
  for (int t = 0; t < 3; t++) {
    size_t es = oc_dtype_size(g_dtypes[t]);
    void *pa = iota_buf(6, es), *pc = iota_buf(24, es);
    /* make c's values differ from a's */
    for (int k = 0; k < 24; k++) ((char *)pc)[k * (int64_t)es] ^= 0x5A;
    oc_tensor_t a = mk(g_dtypes[t], 3, da, pa), b = mk(g_dtypes[t], 3, db, pa),
                c = mk(g_dtypes[t], 3, dc, pc), y = {0};
    oc_tensor_t *in[3] = {&a, &b, &c}, *out[1] = {&y};
    int64_t axis = 1;
    run_op(OC_OP_CONCAT, in, 3, out, 1, &axis, 1);
    ck_assert_int_eq(y.dims[1], 5);
    int64_t idx[3] = {0};
    do {
      uint64_t want;
      if (idx[1] < 1) {
        int64_t ia[3] = {idx[0], idx[1], idx[2]};
        want = elem(pa, flat(3, da, ia), es);
      } else {
        int64_t ic[3] = {idx[0], idx[1] - 1, idx[2]};
        want = elem(pc, flat(3, dc, ic), es);
      }
      ck_assert_uint_eq(elem(y.data, flat(3, y.dims, idx), es), want);
    } while (next_index(3, y.dims, idx));

    /* Split y back into (1, 0, 4) along axis 1 and compare with the parts. */
    oc_tensor_t y0 = {0}, y1 = {0}, y2 = {0};
    oc_tensor_t *sin[1] = {&y}, *sout[3] = {&y0, &y1, &y2};
    int64_t ints[4] = {-2, 1, 0, 4};
    run_op(OC_OP_SPLIT, sin, 1, sout, 3, ints, 4);
    ck_assert_int_eq(memcmp(y0.data, pa, 6 * es), 0);
    ck_assert_int_eq(memcmp(y2.data, pc, 24 * es), 0);
    ck_assert_int_eq(y1.dims[1], 0);
    free(y.data);
    free(y0.data);
    free(y1.data);
    free(y2.data);
    free(pa);
    free(pc);
  }
}
END_TEST

/* Concat along axis 0 is a plain append; a single input is a copy. */
START_TEST(test_forward_concat_axis0) {
  int64_t d1[1] = {3}, d2[1] = {2};
  float a[3] = {1, 2, 3}, b[2] = {4, 5};
  oc_tensor_t x = mk(OC_DTYPE_FLOAT32, 1, d1, a), z = mk(OC_DTYPE_FLOAT32, 1, d2, b), y = {0};
  oc_tensor_t *in[2] = {&x, &z}, *out[1] = {&y};
  int64_t axis = 0;
  run_op(OC_OP_CONCAT, in, 2, out, 1, &axis, 1);
  float want[5] = {1, 2, 3, 4, 5};
  ck_assert_int_eq(memcmp(y.data, want, sizeof want), 0);
  free(y.data);
  run_op(OC_OP_CONCAT, in, 1, out, 1, &axis, 1);
  ck_assert_int_eq(memcmp(y.data, a, sizeof a), 0);
  free(y.data);
}
END_TEST

/* Slices with every sign of step, checked against index math. */
START_TEST(test_forward_slice) {
  int64_t d[3] = {5, 6, 7};
  int64_t n = 5 * 6 * 7;
  int64_t cases[][9] = {
      {0, 1, 5, 0, 1, 6, 0, 1, 7},    /* identity */
      {1, 2, 2, 5, -1, 6, 6, -3, 3},  /* mixed, full reversal on axis 1 */
      {4, -4, 2, 0, 5, 2, 2, 1, 4},   /* big steps */
      {2, 1, 1, 3, 1, 1, 6, -1, 1},   /* single element */
      {0, 1, 5, 0, 1, 0, 0, 1, 7},    /* empty */
      {3, INT64_MAX, 1, 4, INT64_MIN, 1, 0, 1, 7}, /* one element, hostile steps */
  };
  for (int t = 0; t < 3; t++) {
    size_t es = oc_dtype_size(g_dtypes[t]);
    void *buf = iota_buf(n, es);
    oc_tensor_t x = mk(g_dtypes[t], 3, d, buf);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
      oc_tensor_t y = {0};
      oc_tensor_t *in[1] = {&x}, *out[1] = {&y};
      run_op(OC_OP_SLICE, in, 1, out, 1, cases[k], 9);
      if (oc_tensor_numel(&y) > 0) {
        int64_t oi[3] = {0}, xi[3];
        do {
          for (int i = 0; i < 3; i++)
            xi[i] = cases[k][3 * i] + (oi[i] ? oi[i] * cases[k][3 * i + 1] : 0);
          ck_assert_uint_eq(elem(y.data, flat(3, y.dims, oi), es), elem(buf, flat(3, d, xi), es));
        } while (next_index(3, y.dims, oi));
      }
      free(y.data);
    }
    free(buf);
  }
}
END_TEST

START_TEST(test_forward_expand) {
  int64_t d[3] = {3, 1, 4};
  int64_t outs[][5] = {{2, 3, 5, 4}, {3, 1, 4}, {3, 2, 4}, {1, 1, 3, 7, 4}};
  int ranks[4] = {4, 3, 3, 5};
  for (int t = 0; t < 3; t++) {
    size_t es = oc_dtype_size(g_dtypes[t]);
    void *buf = iota_buf(12, es);
    oc_tensor_t x = mk(g_dtypes[t], 3, d, buf);
    for (int k = 0; k < 4; k++) {
      oc_tensor_t y = {0};
      oc_tensor_t *in[1] = {&x}, *out[1] = {&y};
      run_op(OC_OP_EXPAND, in, 1, out, 1, outs[k], ranks[k]);
      int r = ranks[k];
      int64_t oi[5] = {0}, xi[3];
      do {
        for (int i = 0; i < 3; i++) xi[i] = d[i] == 1 ? 0 : oi[i + r - 3];
        ck_assert_uint_eq(elem(y.data, flat(r, y.dims, oi), es), elem(buf, flat(3, d, xi), es));
      } while (next_index(r, y.dims, oi));
      free(y.data);
    }
    free(buf);
  }
  /* scalar to (2, 2) */
  float one = 7;
  oc_tensor_t s = mk(OC_DTYPE_FLOAT32, 0, NULL, &one), y = {0};
  oc_tensor_t *in[1] = {&s}, *out[1] = {&y};
  int64_t two[2] = {2, 2};
  run_op(OC_OP_EXPAND, in, 1, out, 1, two, 2);
  for (int i = 0; i < 4; i++) ck_assert_float_eq(((float *)y.data)[i], 7);
  free(y.data);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* errors: hostile ints never reach the kernels                             */
/* ------------------------------------------------------------------------ */

START_TEST(test_errors_transpose) {
  int64_t d[3] = {2, 3, 4};
  oc_tensor_t x = mk(OC_DTYPE_FLOAT32, 3, d, NULL), y = {0};
  oc_tensor_t *in[1] = {&x}, *out[1] = {&y};
  int64_t dup[3] = {0, 0, 1}, big[3] = {0, 1, 3}, neg[3] = {-1, 0, 1},
          huge[3] = {INT64_MAX, INT64_MIN, 0}, two[2] = {1, 0};
  ck_assert_int_ne(infer_code(OC_OP_TRANSPOSE, in, 1, out, 1, dup, 3), OC_STATUS_OK);
  ck_assert_int_ne(infer_code(OC_OP_TRANSPOSE, in, 1, out, 1, big, 3), OC_STATUS_OK);
  ck_assert_int_ne(infer_code(OC_OP_TRANSPOSE, in, 1, out, 1, neg, 3), OC_STATUS_OK);
  ck_assert_int_ne(infer_code(OC_OP_TRANSPOSE, in, 1, out, 1, huge, 3), OC_STATUS_OK);
  ck_assert_int_ne(infer_code(OC_OP_TRANSPOSE, in, 1, out, 1, two, 2), OC_STATUS_OK);
}
END_TEST

START_TEST(test_errors_slice) {
  int64_t d[2] = {4, 5};
  oc_tensor_t x = mk(OC_DTYPE_FLOAT32, 2, d, NULL), y = {0};
  oc_tensor_t *in[1] = {&x}, *out[1] = {&y};
  int64_t bad[][6] = {
      {0, 0, 1, 0, 1, 5},                /* step 0 */
      {4, 1, 1, 0, 1, 5},                 /* start == dim */
      {-1, 1, 1, 0, 1, 5},                /* negative start */
      {0, 1, 5, 0, 1, 5},                 /* runs past the end */
      {3, -1, 5, 0, 1, 5},                /* runs past the front */
      {0, 1, -1, 0, 1, 5},                /* negative dim */
      {0, INT64_MAX, 3, 0, 1, 5},         /* (n-1)*step overflows */
      {1, INT64_MAX, 2, 0, 1, 5},         /* start + span overflows */
      {0, INT64_MIN, 2, 0, 1, 5},         /* negative overflow */
      {0, 1, 4, 0, 1, (int64_t)1 << 50},  /* dim beyond the limit */
      {0, 1, 4, 5, 1, 1},                 /* second axis out of bounds */
  };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
    ck_assert_msg(infer_code(OC_OP_SLICE, in, 1, out, 1, bad[k], 6) != OC_STATUS_OK, "case %zu", k);
  int64_t short_ints[3] = {0, 1, 4};
  ck_assert_int_ne(infer_code(OC_OP_SLICE, in, 1, out, 1, short_ints, 3), OC_STATUS_OK);
}
END_TEST

START_TEST(test_errors_concat_split) {
  int64_t da[2] = {2, 3}, db[2] = {3, 3};
  oc_tensor_t a = mk(OC_DTYPE_FLOAT32, 2, da, NULL), b = mk(OC_DTYPE_FLOAT32, 2, db, NULL),
              ai = mk(OC_DTYPE_INT64, 2, da, NULL), s = mk(OC_DTYPE_FLOAT32, 0, NULL, NULL),
              y = {0};
  oc_tensor_t *out[1] = {&y};
  int64_t ax1 = 1, ax2 = 2, axm3 = -3, axbig = INT64_MIN;
  oc_tensor_t *ab[2] = {&a, &b}, *aai[2] = {&a, &ai}, *anull[2] = {&a, NULL}, *ss[2] = {&s, &s};
  ck_assert_int_ne(infer_code(OC_OP_CONCAT, ab, 2, out, 1, &ax1, 1), OC_STATUS_OK);
  ck_assert_int_eq(infer_code(OC_OP_CONCAT, ab, 2, out, 1, NULL, 0), OC_STATUS_INVALID_ARGUMENT);
  ck_assert_int_ne(infer_code(OC_OP_CONCAT, aai, 2, out, 1, &ax1, 1), OC_STATUS_OK);
  ck_assert_int_ne(infer_code(OC_OP_CONCAT, anull, 2, out, 1, &ax1, 1), OC_STATUS_OK);
  ck_assert_int_ne(infer_code(OC_OP_CONCAT, ab, 2, out, 1, &ax2, 1), OC_STATUS_OK);
  ck_assert_int_ne(infer_code(OC_OP_CONCAT, ab, 2, out, 1, &axm3, 1), OC_STATUS_OK);
  ck_assert_int_ne(infer_code(OC_OP_CONCAT, ab, 2, out, 1, &axbig, 1), OC_STATUS_OK);
  int64_t ax0 = 0;
  ck_assert_int_ne(infer_code(OC_OP_CONCAT, ss, 2, out, 1, &ax0, 1), OC_STATUS_OK);

  oc_tensor_t y0 = {0}, y1 = {0};
  oc_tensor_t *sin[1] = {&a}, *sout[2] = {&y0, &y1};
  int64_t bad[][3] = {
      {1, 1, 1},                  /* sum 2 != 3 */
      {1, 4, -1},                 /* negative size */
      {1, INT64_MAX, INT64_MAX},  /* overflow */
      {1, INT64_MIN, 3},          /* negative huge */
      {2, 1, 2},                  /* axis out of range */
      {INT64_MIN, 1, 2},          /* axis hostile */
  };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
    ck_assert_msg(infer_code(OC_OP_SPLIT, sin, 1, sout, 2, bad[k], 3) != OC_STATUS_OK, "case %zu", k);
  int64_t good[3] = {1, 1, 2};
  ck_assert_int_ne(infer_code(OC_OP_SPLIT, sin, 1, sout, 2, good, 2), OC_STATUS_OK);
  ck_assert_int_eq(infer_code(OC_OP_SPLIT, sin, 1, sout, 2, good, 3), OC_STATUS_OK);
}
END_TEST

START_TEST(test_errors_expand) {
  int64_t d[2] = {3, 4};
  oc_tensor_t x = mk(OC_DTYPE_FLOAT32, 2, d, NULL), y = {0};
  oc_tensor_t *in[1] = {&x}, *out[1] = {&y};
  int64_t one[1] = {4}, mism[2] = {3, 5}, neg[2] = {-3, 4}, huge[3] = {INT64_MAX, 3, 4},
          nine[9] = {1, 1, 1, 1, 1, 1, 1, 3, 4}, over[3] = {(int64_t)1 << 39, 3, 4};
  ck_assert_int_ne(infer_code(OC_OP_EXPAND, in, 1, out, 1, one, 1), OC_STATUS_OK);
  ck_assert_int_ne(infer_code(OC_OP_EXPAND, in, 1, out, 1, mism, 2), OC_STATUS_OK);
  ck_assert_int_ne(infer_code(OC_OP_EXPAND, in, 1, out, 1, neg, 2), OC_STATUS_OK);
  ck_assert_int_ne(infer_code(OC_OP_EXPAND, in, 1, out, 1, huge, 3), OC_STATUS_OK);
  ck_assert_int_ne(infer_code(OC_OP_EXPAND, in, 1, out, 1, nine, 9), OC_STATUS_OK);
  /* each dim fine, but the tensor exceeds the byte limit */
  ck_assert_int_ne(infer_code(OC_OP_EXPAND, in, 1, out, 1, over, 3), OC_STATUS_OK);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* lowering: ONNX semantics                                                 */
/* ------------------------------------------------------------------------ */

oc_status_t oc_lower_reshape_op(oc_lower_t *lw);
oc_status_t oc_lower_flatten(oc_lower_t *lw);
oc_status_t oc_lower_squeeze(oc_lower_t *lw);
oc_status_t oc_lower_unsqueeze(oc_lower_t *lw);
oc_status_t oc_lower_shape(oc_lower_t *lw);
oc_status_t oc_lower_size(oc_lower_t *lw);
oc_status_t oc_lower_constant_of_shape(oc_lower_t *lw);
oc_status_t oc_lower_range(oc_lower_t *lw);
oc_status_t oc_lower_eyelike(oc_lower_t *lw);
oc_status_t oc_lower_constant(oc_lower_t *lw);
oc_status_t oc_lower_transpose(oc_lower_t *lw);
oc_status_t oc_lower_concat(oc_lower_t *lw);
oc_status_t oc_lower_split(oc_lower_t *lw);
oc_status_t oc_lower_slice(oc_lower_t *lw);
oc_status_t oc_lower_expand(oc_lower_t *lw);

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

static void fx_ints_const(fx_t *f, int n, const int64_t *v) {
  int64_t d[1] = {n};
  fx_const(f, OC_DTYPE_INT64, 1, d, v);
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

static void fx_attr_ints(fx_t *f, const char *name, int64_t *v, int n) {
  oc_attr_t *a = &f->attrs[f->node.n_attrs++];
  *a = (oc_attr_t){.name = (char *)name, .type = OC_ATTR_INTS, .ints = v, .n_ints = n, .tensor = -1};
}

/* Runs |fn|; returns the status code, and the message in |msg| if any. */
static oc_status_code_t fx_lower(fx_t *f, oc_lower_fn fn, char *msg, size_t n) {
  oc_status_t s = fn(&f->lw);
  oc_status_code_t c = oc_status_code(s);
  if (msg) snprintf(msg, n, "%s", oc_status_message(s));
  oc_status_free(s);
  return c;
}

/* The node (names, attributes) lives on the stack, outside the graph. */
static void fx_finish(fx_t *f) { oc_graph_free(f->g); }

static const oc_value_t *val(const fx_t *f, int v) { return &f->g->values[v]; }

static const oc_instr_t *last_instr(const fx_t *f) {
  ck_assert_int_gt(f->g->n_instrs, 0);
  return &f->g->instrs[f->g->n_instrs - 1];
}

static void check_dims(const oc_tensor_t *t, int rank, const int64_t *dims) {
  ck_assert_int_eq(t->rank, rank);
  for (int i = 0; i < rank; i++) ck_assert_int_eq(t->dims[i], dims[i]);
}

START_TEST(test_lower_slice_clamping) {
  /* PyTorch's x[1:] and x.flip(0) forms: INT64_MAX / INT64_MIN ends. */
  struct {
    int64_t start, end, step, want[3];
  } cases[] = {
      {1, INT64_MAX, 1, {1, 1, 4}},
      {-1, INT64_MIN, -1, {4, -1, 5}},
      {INT64_MAX, INT64_MIN, -2, {4, -2, 3}},
      {-100, 100, 1, {0, 1, 5}},
      {100, 200, 1, {0, 1, 0}},
      {3, 1, 1, {0, 1, 0}},
      {-2, -1, 1, {3, 1, 1}},
      {4, -6, -1, {4, -1, 5}},
      {2, 2, -1, {0, 1, 0}},
      {0, 5, 3, {0, 3, 2}},
      {INT64_MIN, INT64_MAX, INT64_MAX, {0, INT64_MAX, 1}},
      {INT64_MAX, INT64_MIN, INT64_MIN, {4, INT64_MIN, 1}},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    fx_t f;
    fx_init(&f, "Slice", 13);
    int64_t d[2] = {5, 3};
    fx_input(&f, OC_DTYPE_FLOAT32, 2, d);
    fx_ints_const(&f, 1, &cases[k].start);
    fx_ints_const(&f, 1, &cases[k].end);
    int64_t axis = -2;
    fx_ints_const(&f, 1, &axis);
    fx_ints_const(&f, 1, &cases[k].step);
    int y = fx_output(&f);
    char msg[512];
    ck_assert_msg(fx_lower(&f, oc_lower_slice, msg, sizeof msg) == OC_STATUS_OK, "%zu: %s", k, msg);
    const oc_instr_t *ins = last_instr(&f);
    if (cases[k].want[2] == 5 && cases[k].want[1] == 1) {
      ck_assert_int_eq(ins->op, OC_OP_COPY); /* identity slice */
    } else {
      ck_assert_int_eq(ins->op, OC_OP_SLICE);
      ck_assert_int_eq(ins->n_ints, 6);
      for (int i = 0; i < 3; i++)
        ck_assert_msg(ins->ints[i] == cases[k].want[i], "case %zu int %d: %lld", k, i,
                      (long long)ins->ints[i]);
      ck_assert_int_eq(ins->ints[3], 0);
      ck_assert_int_eq(ins->ints[4], 1);
      ck_assert_int_eq(ins->ints[5], 3);
    }
    ck_assert_int_eq(val(&f, y)->type.dims[0], cases[k].want[2]);
    fx_finish(&f);
  }
}
END_TEST

START_TEST(test_lower_slice_opsets) {
  /* Slice-1: attributes, no steps. */
  fx_t f;
  fx_init(&f, "Slice", 9);
  int64_t d[3] = {4, 5, 6};
  fx_input(&f, OC_DTYPE_INT64, 3, d);
  int64_t starts[2] = {1, -3}, ends[2] = {1000, -1}, axes[2] = {2, 0};
  fx_attr_ints(&f, "starts", starts, 2);
  fx_attr_ints(&f, "ends", ends, 2);
  fx_attr_ints(&f, "axes", axes, 2);
  int y = fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_slice, NULL, 0), OC_STATUS_OK);
  int64_t want[3] = {2, 5, 5};
  check_dims(&val(&f, y)->type, 3, want);
  fx_finish(&f);

  /* Slice-13: non-constant starts are refused as UNSUPPORTED. */
  fx_init(&f, "Slice", 13);
  fx_input(&f, OC_DTYPE_FLOAT32, 3, d);
  int64_t one[1] = {1};
  fx_input(&f, OC_DTYPE_INT64, 1, one);
  fx_ints_const(&f, 1, one);
  fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_slice, NULL, 0), OC_STATUS_UNSUPPORTED);
  fx_finish(&f);

  /* Repeated axis and zero step are errors. */
  int64_t rep_axes[2] = {0, -3}, zero_step[1] = {0}, ax0[1] = {0};
  fx_init(&f, "Slice", 13);
  fx_input(&f, OC_DTYPE_FLOAT32, 3, d);
  fx_ints_const(&f, 2, starts);
  fx_ints_const(&f, 2, ends);
  fx_ints_const(&f, 2, rep_axes);
  fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_slice, NULL, 0), OC_STATUS_INVALID_ARGUMENT);
  fx_finish(&f);
  fx_init(&f, "Slice", 13);
  fx_input(&f, OC_DTYPE_FLOAT32, 3, d);
  fx_ints_const(&f, 1, starts);
  fx_ints_const(&f, 1, ends);
  fx_ints_const(&f, 1, ax0);
  fx_ints_const(&f, 1, zero_step);
  fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_slice, NULL, 0), OC_STATUS_INVALID_ARGUMENT);
  fx_finish(&f);

  /* A zero-size axis with a negative step gives an empty slice. */
  int64_t dz[1] = {0}, st[1] = {-1}, en[1] = {INT64_MIN}, stp[1] = {-1};
  fx_init(&f, "Slice", 13);
  fx_input(&f, OC_DTYPE_FLOAT32, 1, dz);
  fx_ints_const(&f, 1, st);
  fx_ints_const(&f, 1, en);
  fx_absent(&f);
  fx_ints_const(&f, 1, stp);
  y = fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_slice, NULL, 0), OC_STATUS_OK);
  ck_assert_int_eq(val(&f, y)->type.dims[0], 0);
  fx_finish(&f);
}
END_TEST

/* Folding a slice of a constant runs the kernel at compile time. */
START_TEST(test_lower_slice_folds) {
  fx_t f;
  fx_init(&f, "Slice", 13);
  int64_t d[1] = {6}, v[6] = {10, 11, 12, 13, 14, 15};
  fx_const(&f, OC_DTYPE_INT64, 1, d, v);
  int64_t st = -2, en = 0, step = -2;
  fx_ints_const(&f, 1, &st);
  fx_ints_const(&f, 1, &en);
  fx_absent(&f);
  fx_ints_const(&f, 1, &step);
  int y = fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_slice, NULL, 0), OC_STATUS_OK);
  ck_assert_int_eq(val(&f, y)->kind, OC_VALUE_CONST);
  ck_assert_int_eq(val(&f, y)->type.dims[0], 2);
  const int64_t *p = val(&f, y)->type.data;
  ck_assert_int_eq(p[0], 14);
  ck_assert_int_eq(p[1], 12);
  fx_finish(&f);
}
END_TEST

static oc_status_code_t reshape_case(int64_t opset, int allowzero, const int64_t *xd, int xr,
                                     const int64_t *shape, int n, int64_t *out_dims, int *out_rank) {
  fx_t f;
  fx_init(&f, "Reshape", opset);
  fx_input(&f, OC_DTYPE_FLOAT32, xr, xd);
  fx_ints_const(&f, n, shape);
  if (allowzero >= 0) fx_attr_int(&f, "allowzero", allowzero);
  int y = fx_output(&f);
  oc_status_code_t c = fx_lower(&f, oc_lower_reshape_op, NULL, 0);
  if (c == OC_STATUS_OK) {
    *out_rank = val(&f, y)->type.rank;
    memcpy(out_dims, val(&f, y)->type.dims, sizeof(int64_t) * (size_t)*out_rank);
  }
  fx_finish(&f);
  return c;
}

START_TEST(test_lower_reshape_family) {
  int64_t x[3] = {2, 3, 4}, out[8];
  int r;
  int64_t s1[4] = {2, 0, 1, -1}, w1[4] = {2, 3, 1, 4};
  ck_assert_int_eq(reshape_case(14, -1, x, 3, s1, 4, out, &r), OC_STATUS_OK);
  ck_assert_int_eq(r, 4);
  ck_assert_int_eq(memcmp(out, w1, sizeof w1), 0);
  int64_t s2[2] = {-1, -1}, s3[2] = {5, -1}, s4[2] = {-2, 12}, s5[4] = {1, 1, 1, 1};
  ck_assert_int_ne(reshape_case(14, -1, x, 3, s2, 2, out, &r), OC_STATUS_OK);
  ck_assert_int_ne(reshape_case(14, -1, x, 3, s3, 2, out, &r), OC_STATUS_OK);
  ck_assert_int_ne(reshape_case(14, -1, x, 3, s4, 2, out, &r), OC_STATUS_OK);
  ck_assert_int_ne(reshape_case(14, -1, x, 3, s5, 4, out, &r), OC_STATUS_OK);
  /* allowzero: 0 is a real zero */
  int64_t z[3] = {0, 3, 4}, s6[3] = {3, 4, 0};
  ck_assert_int_eq(reshape_case(14, 1, z, 3, s6, 3, out, &r), OC_STATUS_OK);
  ck_assert_int_eq(out[2], 0);
  int64_t s7[2] = {0, -1};
  ck_assert_int_ne(reshape_case(14, 1, z, 3, s7, 2, out, &r), OC_STATUS_OK);
  /* 0 beyond the input's rank */
  int64_t s8[4] = {24, 1, 1, 0};
  ck_assert_int_ne(reshape_case(14, -1, x, 3, s8, 4, out, &r), OC_STATUS_OK);
  /* overflow of the known product */
  int64_t s9[3] = {(int64_t)1 << 40, (int64_t)1 << 40, -1};
  ck_assert_int_ne(reshape_case(14, -1, x, 3, s9, 3, out, &r), OC_STATUS_OK);

  /* Flatten with a negative axis (opset 11) and axis 0. */
  fx_t f;
  fx_init(&f, "Flatten", 13);
  fx_input(&f, OC_DTYPE_BOOL, 3, x);
  fx_attr_int(&f, "axis", -1);
  int y = fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_flatten, NULL, 0), OC_STATUS_OK);
  int64_t wf[2] = {6, 4};
  check_dims(&val(&f, y)->type, 2, wf);
  fx_finish(&f);
  fx_init(&f, "Flatten", 9);
  fx_input(&f, OC_DTYPE_BOOL, 3, x);
  fx_attr_int(&f, "axis", -1);
  fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_flatten, NULL, 0), OC_STATUS_INVALID_ARGUMENT);
  fx_finish(&f);

  /* Squeeze with no axes drops every 1; Squeeze-11 attribute; bad axis. */
  int64_t sq[5] = {1, 3, 1, 1, 5};
  fx_init(&f, "Squeeze", 13);
  fx_input(&f, OC_DTYPE_FLOAT32, 5, sq);
  y = fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_squeeze, NULL, 0), OC_STATUS_OK);
  int64_t w2[2] = {3, 5};
  check_dims(&val(&f, y)->type, 2, w2);
  fx_finish(&f);
  int64_t ax[2] = {-2, 0};
  fx_init(&f, "Squeeze", 11);
  fx_input(&f, OC_DTYPE_FLOAT32, 5, sq);
  fx_attr_ints(&f, "axes", ax, 2);
  y = fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_squeeze, NULL, 0), OC_STATUS_OK);
  int64_t w3[3] = {3, 1, 5};
  check_dims(&val(&f, y)->type, 3, w3);
  fx_finish(&f);
  int64_t ax1[1] = {1};
  fx_init(&f, "Squeeze", 13);
  fx_input(&f, OC_DTYPE_FLOAT32, 5, sq);
  fx_ints_const(&f, 1, ax1);
  fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_squeeze, NULL, 0), OC_STATUS_INVALID_ARGUMENT);
  fx_finish(&f);

  /* Unsqueeze: axes index the output; negative and unsorted. */
  int64_t ux[2] = {3, 4}, uax[3] = {-1, 0, 2};
  fx_init(&f, "Unsqueeze", 13);
  fx_input(&f, OC_DTYPE_INT64, 2, ux);
  fx_ints_const(&f, 3, uax);
  y = fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_unsqueeze, NULL, 0), OC_STATUS_OK);
  int64_t w4[5] = {1, 3, 1, 4, 1};
  check_dims(&val(&f, y)->type, 5, w4);
  fx_finish(&f);
  int64_t dupax[2] = {0, -3};
  fx_init(&f, "Unsqueeze", 11);
  fx_input(&f, OC_DTYPE_INT64, 1, ux);
  fx_attr_ints(&f, "axes", dupax, 2);
  fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_unsqueeze, NULL, 0), OC_STATUS_INVALID_ARGUMENT);
  fx_finish(&f);
}
END_TEST

START_TEST(test_lower_transpose_expand) {
  /* Moving only 1-dims is a reshape. */
  fx_t f;
  int64_t d[4] = {1, 3, 1, 4}, p1[4] = {2, 1, 0, 3};
  fx_init(&f, "Transpose", 13);
  fx_input(&f, OC_DTYPE_FLOAT32, 4, d);
  fx_attr_ints(&f, "perm", p1, 4);
  fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_transpose, NULL, 0), OC_STATUS_OK);
  ck_assert_int_eq(last_instr(&f)->op, OC_OP_COPY);
  fx_finish(&f);
  /* Default perm reverses. */
  fx_init(&f, "Transpose", 13);
  fx_input(&f, OC_DTYPE_FLOAT32, 4, d);
  int y = fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_transpose, NULL, 0), OC_STATUS_OK);
  ck_assert_int_eq(last_instr(&f)->op, OC_OP_TRANSPOSE);
  int64_t w[4] = {4, 1, 3, 1};
  check_dims(&val(&f, y)->type, 4, w);
  fx_finish(&f);
  int64_t bad[4] = {0, 1, 2, 2};
  fx_init(&f, "Transpose", 13);
  fx_input(&f, OC_DTYPE_FLOAT32, 4, d);
  fx_attr_ints(&f, "perm", bad, 4);
  fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_transpose, NULL, 0), OC_STATUS_INVALID_ARGUMENT);
  fx_finish(&f);

  /* Expand: bidirectional; a 1 in shape keeps the input's dim. */
  int64_t xd[2] = {3, 1}, s1[3] = {2, 1, 6};
  fx_init(&f, "Expand", 13);
  fx_input(&f, OC_DTYPE_FLOAT32, 2, xd);
  fx_ints_const(&f, 3, s1);
  y = fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_expand, NULL, 0), OC_STATUS_OK);
  int64_t w1[3] = {2, 3, 6};
  check_dims(&val(&f, y)->type, 3, w1);
  ck_assert_int_eq(last_instr(&f)->op, OC_OP_EXPAND);
  fx_finish(&f);
  int64_t s2[1] = {1};
  fx_init(&f, "Expand", 13);
  fx_input(&f, OC_DTYPE_FLOAT32, 2, xd);
  fx_ints_const(&f, 1, s2);
  y = fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_expand, NULL, 0), OC_STATUS_OK);
  check_dims(&val(&f, y)->type, 2, xd);
  ck_assert_int_eq(last_instr(&f)->op, OC_OP_COPY);
  fx_finish(&f);
  int64_t s3[2] = {2, 2};
  fx_init(&f, "Expand", 13);
  fx_input(&f, OC_DTYPE_FLOAT32, 2, xd);
  fx_ints_const(&f, 2, s3);
  fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_expand, NULL, 0), OC_STATUS_INVALID_ARGUMENT);
  fx_finish(&f);
  /* run-time shape: refused */
  fx_init(&f, "Expand", 13);
  fx_input(&f, OC_DTYPE_FLOAT32, 2, xd);
  int64_t two[1] = {2};
  fx_input(&f, OC_DTYPE_INT64, 1, two);
  fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_expand, NULL, 0), OC_STATUS_UNSUPPORTED);
  fx_finish(&f);
}
END_TEST

static oc_status_code_t split_case(int64_t opset, int64_t dim, int n_out, const int64_t *sizes,
                                   int n_sizes, int as_attr, int64_t num_outputs, int64_t *got) {
  fx_t f;
  fx_init(&f, "Split", opset);
  int64_t d[2] = {2, dim};
  fx_input(&f, OC_DTYPE_FLOAT32, 2, d);
  fx_attr_int(&f, "axis", -1);
  int64_t sz[8];
  if (n_sizes > 0) memcpy(sz, sizes, sizeof(int64_t) * (size_t)n_sizes);
  if (n_sizes > 0 && as_attr) fx_attr_ints(&f, "split", sz, n_sizes);
  if (n_sizes > 0 && !as_attr) fx_ints_const(&f, n_sizes, sz);
  if (num_outputs > 0) fx_attr_int(&f, "num_outputs", num_outputs);
  int outs[8];
  for (int j = 0; j < n_out; j++) outs[j] = fx_output(&f);
  f.out[1] = -1; /* an unused output */
  oc_status_code_t c = fx_lower(&f, oc_lower_split, NULL, 0);
  if (c == OC_STATUS_OK) {
    const oc_instr_t *ins = last_instr(&f);
    ck_assert_int_eq(ins->op, OC_OP_SPLIT);
    ck_assert_int_eq(ins->n_out, n_out);
    ck_assert_int_eq(ins->ints[0], 1);
    for (int j = 0; j < n_out; j++) got[j] = ins->ints[1 + j];
    ck_assert_int_eq(val(&f, outs[0])->type.dims[1], got[0]);
  }
  fx_finish(&f);
  return c;
}

START_TEST(test_lower_split) {
  int64_t got[8];
  int64_t s[3] = {2, 4, 1};
  ck_assert_int_eq(split_case(13, 7, 3, s, 3, 0, 0, got), OC_STATUS_OK);
  ck_assert_int_eq(got[1], 4);
  ck_assert_int_eq(split_case(11, 7, 3, s, 3, 1, 0, got), OC_STATUS_OK);
  ck_assert_int_eq(got[2], 1);
  ck_assert_int_eq(split_case(13, 6, 3, NULL, 0, 0, 0, got), OC_STATUS_OK);
  ck_assert_int_eq(got[2], 2);
  ck_assert_int_eq(split_case(13, 7, 3, NULL, 0, 0, 0, got), OC_STATUS_INVALID_ARGUMENT);
  /* opset 18: ceil parts, last smaller */
  ck_assert_int_eq(split_case(18, 7, 3, NULL, 0, 0, 3, got), OC_STATUS_OK);
  ck_assert_int_eq(got[0], 3);
  ck_assert_int_eq(got[1], 3);
  ck_assert_int_eq(got[2], 1);
  ck_assert_int_eq(split_case(18, 9, 4, NULL, 0, 0, 4, got), OC_STATUS_OK);
  ck_assert_int_eq(got[3], 0);
  ck_assert_int_eq(split_case(18, 5, 4, NULL, 0, 0, 4, got), OC_STATUS_INVALID_ARGUMENT);
  ck_assert_int_eq(split_case(18, 6, 3, NULL, 0, 0, 2, got), OC_STATUS_INVALID_ARGUMENT);
  /* wrong count / sum */
  ck_assert_int_ne(split_case(13, 7, 2, s, 3, 0, 0, got), OC_STATUS_OK);
  ck_assert_int_ne(split_case(13, 8, 3, s, 3, 0, 0, got), OC_STATUS_OK);
}
END_TEST

START_TEST(test_lower_concat_many) {
  /* 100 inputs: more than one runtime Concat can take. */
  fx_t f;
  fx_init(&f, "Concat", 13);
  oc_node_t *n = &f.node;
  int ins[100];
  n->in = ins;
  int64_t d[1] = {1};
  for (int i = 0; i < 100; i++) {
    char name[16];
    snprintf(name, sizeof name, "c%d", i);
    int v = oc_graph_value(f.g, name);
    int64_t value = i;
    ck_assert(oc_value_set_const(f.g, v, OC_DTYPE_INT64, 1, d, &value) == OC_OK);
    ins[i] = v;
  }
  n->n_in = 100;
  fx_attr_int(&f, "axis", 0);
  int y = fx_output(&f);
  char msg[512];
  ck_assert_msg(fx_lower(&f, oc_lower_concat, msg, sizeof msg) == OC_STATUS_OK, "%s", msg);
  ck_assert_int_eq(val(&f, y)->kind, OC_VALUE_CONST);
  ck_assert_int_eq(val(&f, y)->type.dims[0], 100);
  for (int i = 0; i < 100; i++) ck_assert_int_eq(((int64_t *)val(&f, y)->type.data)[i], i);
  fx_finish(&f);

  fx_init(&f, "Concat", 13);
  fx_input(&f, OC_DTYPE_INT64, 1, d);
  fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_concat, NULL, 0), OC_STATUS_INVALID_ARGUMENT);
  fx_finish(&f);
}
END_TEST

START_TEST(test_lower_shape_size) {
  int64_t d[3] = {3, 4, 5};
  struct {
    int has_start, has_end;
    int64_t start, end;
    int n;
    int64_t want[3];
  } cases[] = {
      {0, 0, 0, 0, 3, {3, 4, 5}}, {1, 0, -1, 0, 1, {5}},    {0, 1, 0, -1, 2, {3, 4}},
      {1, 1, 1, 2, 1, {4}},        {1, 1, -10, 10, 3, {3, 4, 5}}, {1, 1, 2, 1, 0, {0}},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    fx_t f;
    fx_init(&f, "Shape", 15);
    fx_input(&f, OC_DTYPE_FLOAT32, 3, d);
    if (cases[k].has_start) fx_attr_int(&f, "start", cases[k].start);
    if (cases[k].has_end) fx_attr_int(&f, "end", cases[k].end);
    int y = fx_output(&f);
    ck_assert_int_eq(fx_lower(&f, oc_lower_shape, NULL, 0), OC_STATUS_OK);
    const oc_value_t *v = val(&f, y);
    ck_assert_int_eq(v->kind, OC_VALUE_CONST);
    ck_assert_int_eq(v->type.dtype, OC_DTYPE_INT64);
    ck_assert_int_eq(v->type.rank, 1);
    ck_assert_int_eq(v->type.dims[0], cases[k].n);
    for (int i = 0; i < cases[k].n; i++)
      ck_assert_int_eq(((int64_t *)v->type.data)[i], cases[k].want[i]);
    fx_finish(&f);
  }
  fx_t f;
  fx_init(&f, "Size", 13);
  fx_input(&f, OC_DTYPE_BOOL, 3, d);
  int y = fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_size, NULL, 0), OC_STATUS_OK);
  ck_assert_int_eq(val(&f, y)->type.rank, 0);
  ck_assert_int_eq(*(int64_t *)val(&f, y)->type.data, 60);
  fx_finish(&f);
}
END_TEST

START_TEST(test_lower_constants) {
  /* ConstantOfShape with an int32 value */
  fx_t f;
  fx_init(&f, "ConstantOfShape", 9);
  int64_t shape[2] = {2, 3};
  fx_ints_const(&f, 2, shape);
  int vv = oc_graph_value(f.g, "value");
  int32_t seven = 7;
  ck_assert(oc_value_set_const(f.g, vv, OC_DTYPE_INT32, 1, (int64_t[]){1}, &seven) == OC_OK);
  f.attrs[0] = (oc_attr_t){.name = (char *)"value", .type = OC_ATTR_TENSOR, .tensor = vv};
  f.node.n_attrs = 1;
  int y = fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_constant_of_shape, NULL, 0), OC_STATUS_OK);
  ck_assert_int_eq(val(&f, y)->kind, OC_VALUE_CONST);
  ck_assert_int_eq(val(&f, y)->type.dtype, OC_DTYPE_INT32);
  check_dims(&val(&f, y)->type, 2, shape);
  for (int i = 0; i < 6; i++) ck_assert_int_eq(((int32_t *)val(&f, y)->type.data)[i], 7);
  fx_finish(&f);
  /* default float 0, empty shape -> scalar */
  fx_init(&f, "ConstantOfShape", 9);
  fx_ints_const(&f, 0, shape);
  y = fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_constant_of_shape, NULL, 0), OC_STATUS_OK);
  ck_assert_int_eq(val(&f, y)->type.rank, 0);
  ck_assert_int_eq(val(&f, y)->type.dtype, OC_DTYPE_FLOAT32);
  ck_assert_float_eq(*(float *)val(&f, y)->type.data, 0.0f);
  fx_finish(&f);
  /* run-time shape */
  fx_init(&f, "ConstantOfShape", 9);
  int64_t two[1] = {2};
  fx_input(&f, OC_DTYPE_INT64, 1, two);
  fx_output(&f);
  char msg[512];
  ck_assert_int_eq(fx_lower(&f, oc_lower_constant_of_shape, msg, sizeof msg), OC_STATUS_UNSUPPORTED);
  ck_assert_ptr_nonnull(strstr(msg, "output shape depends on run-time data"));
  fx_finish(&f);
  /* larger than the folding limit: stays a run-time Expand */
  fx_init(&f, "ConstantOfShape", 9);
  int64_t big[2] = {1024, 1024};
  fx_ints_const(&f, 2, big);
  y = fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_constant_of_shape, NULL, 0), OC_STATUS_OK);
  ck_assert_int_eq(val(&f, y)->kind, OC_VALUE_TEMP);
  ck_assert_int_eq(last_instr(&f)->op, OC_OP_EXPAND);
  fx_finish(&f);

  /* Constant value_ints / value_float / sparse_value */
  fx_init(&f, "Constant", 13);
  int64_t iv[3] = {4, -1, 9};
  fx_attr_ints(&f, "value_ints", iv, 3);
  y = fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_constant, NULL, 0), OC_STATUS_OK);
  ck_assert_int_eq(val(&f, y)->type.dtype, OC_DTYPE_INT64);
  ck_assert_int_eq(memcmp(val(&f, y)->type.data, iv, sizeof iv), 0);
  fx_finish(&f);
  fx_init(&f, "Constant", 13);
  f.attrs[0] = (oc_attr_t){.name = (char *)"value_float", .type = OC_ATTR_FLOAT, .f = 2.5f, .tensor = -1};
  f.node.n_attrs = 1;
  y = fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_constant, NULL, 0), OC_STATUS_OK);
  ck_assert_int_eq(val(&f, y)->type.rank, 0);
  ck_assert_float_eq(*(float *)val(&f, y)->type.data, 2.5f);
  fx_finish(&f);
  fx_init(&f, "Constant", 13);
  f.attrs[0] = (oc_attr_t){.name = (char *)"sparse_value", .type = 11, .tensor = -1};
  f.node.n_attrs = 1;
  fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_constant, NULL, 0), OC_STATUS_UNSUPPORTED);
  fx_finish(&f);
}
END_TEST

START_TEST(test_lower_range_eyelike) {
  /* int64 extremes: exact count, no overflow */
  fx_t f;
  fx_init(&f, "Range", 11);
  int64_t b[3] = {INT64_MIN, INT64_MAX, INT64_MAX};
  for (int i = 0; i < 3; i++) fx_const(&f, OC_DTYPE_INT64, 0, NULL, &b[i]);
  int y = fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_range, NULL, 0), OC_STATUS_OK);
  ck_assert_int_eq(val(&f, y)->type.dims[0], 3);
  const int64_t *p = val(&f, y)->type.data;
  ck_assert(p[0] == INT64_MIN && p[1] == -1 && p[2] == INT64_MAX - 1);
  fx_finish(&f);
  /* int32 negative delta: 10, 7 */
  fx_init(&f, "Range", 11);
  int32_t i32[3] = {10, 6, -3};
  for (int i = 0; i < 3; i++) fx_const(&f, OC_DTYPE_INT32, 0, NULL, &i32[i]);
  y = fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_range, NULL, 0), OC_STATUS_OK);
  ck_assert_int_eq(val(&f, y)->type.dims[0], 2);
  ck_assert_int_eq(((int32_t *)val(&f, y)->type.data)[1], 7);
  fx_finish(&f);
  /* float: ceil((5 - 1) / 1.5) = 3; empty when the direction is wrong */
  float fl[2][3] = {{1, 5, 1.5f}, {1, 5, -1}};
  int64_t want[2] = {3, 0};
  for (int k = 0; k < 2; k++) {
    fx_init(&f, "Range", 11);
    for (int i = 0; i < 3; i++) fx_const(&f, OC_DTYPE_FLOAT32, 0, NULL, &fl[k][i]);
    y = fx_output(&f);
    ck_assert_int_eq(fx_lower(&f, oc_lower_range, NULL, 0), OC_STATUS_OK);
    ck_assert_int_eq(val(&f, y)->type.dims[0], want[k]);
    if (k == 0) ck_assert_float_eq(((float *)val(&f, y)->type.data)[2], 4.0f);
    fx_finish(&f);
  }
  /* delta 0, mixed dtypes, run-time bound */
  fx_init(&f, "Range", 11);
  int64_t z[3] = {0, 5, 0};
  for (int i = 0; i < 3; i++) fx_const(&f, OC_DTYPE_INT64, 0, NULL, &z[i]);
  fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_range, NULL, 0), OC_STATUS_INVALID_ARGUMENT);
  fx_finish(&f);
  fx_init(&f, "Range", 11);
  fx_const(&f, OC_DTYPE_INT64, 0, NULL, &z[0]);
  fx_const(&f, OC_DTYPE_INT32, 0, NULL, &i32[0]);
  fx_const(&f, OC_DTYPE_INT64, 0, NULL, &z[1]);
  fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_range, NULL, 0), OC_STATUS_INVALID_ARGUMENT);
  fx_finish(&f);
  fx_init(&f, "Range", 11);
  fx_const(&f, OC_DTYPE_INT64, 0, NULL, &z[0]);
  fx_input(&f, OC_DTYPE_INT64, 0, NULL);
  fx_const(&f, OC_DTYPE_INT64, 0, NULL, &z[1]);
  fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_range, NULL, 0), OC_STATUS_UNSUPPORTED);
  fx_finish(&f);

  /* EyeLike: bool output (NT-Xent's mask), k = -1 */
  fx_init(&f, "EyeLike", 9);
  int64_t d[2] = {3, 4};
  fx_input(&f, OC_DTYPE_FLOAT32, 2, d);
  fx_attr_int(&f, "dtype", OC_DTYPE_BOOL);
  fx_attr_int(&f, "k", -1);
  y = fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_eyelike, NULL, 0), OC_STATUS_OK);
  ck_assert_int_eq(val(&f, y)->type.dtype, OC_DTYPE_BOOL);
  const uint8_t *m = val(&f, y)->type.data;
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 4; j++) ck_assert_int_eq(m[i * 4 + j], j == i - 1);
  fx_finish(&f);
  /* huge k: all zeros */
  fx_init(&f, "EyeLike", 9);
  fx_input(&f, OC_DTYPE_INT64, 2, d);
  fx_attr_int(&f, "k", INT64_MIN);
  y = fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_eyelike, NULL, 0), OC_STATUS_OK);
  for (int i = 0; i < 12; i++) ck_assert_int_eq(((int64_t *)val(&f, y)->type.data)[i], 0);
  fx_finish(&f);
  /* float64 (stored, not computed): ones are 1.0 doubles, k = 2 */
  fx_init(&f, "EyeLike", 9);
  fx_input(&f, OC_DTYPE_INT32, 2, d);
  fx_attr_int(&f, "dtype", OC_DTYPE_FLOAT64);
  fx_attr_int(&f, "k", 2);
  y = fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_eyelike, NULL, 0), OC_STATUS_OK);
  const double *dd = val(&f, y)->type.data;
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 4; j++) ck_assert(dd[i * 4 + j] == (j == i + 2 ? 1.0 : 0.0));
  fx_finish(&f);
  /* float16: refused */
  fx_init(&f, "EyeLike", 9);
  fx_input(&f, OC_DTYPE_FLOAT32, 2, d);
  fx_attr_int(&f, "dtype", 10);
  fx_output(&f);
  ck_assert_int_eq(fx_lower(&f, oc_lower_eyelike, NULL, 0), OC_STATUS_UNSUPPORTED);
  fx_finish(&f);
}
END_TEST

static Suite *movement_suite(void) {
  Suite *s = suite_create("ops_movement");
  TCase *shape = tcase_create("shape");
  tcase_add_test(shape, test_shape_transpose);
  tcase_add_test(shape, test_shape_concat_split);
  tcase_add_test(shape, test_shape_slice_expand);
  suite_add_tcase(s, shape);
  TCase *fwd = tcase_create("forward");
  tcase_add_test(fwd, test_forward_transpose);
  tcase_add_test(fwd, test_forward_concat_split);
  tcase_add_test(fwd, test_forward_concat_axis0);
  tcase_add_test(fwd, test_forward_slice);
  tcase_add_test(fwd, test_forward_expand);
  suite_add_tcase(s, fwd);
  TCase *err = tcase_create("errors");
  tcase_add_test(err, test_errors_transpose);
  tcase_add_test(err, test_errors_slice);
  tcase_add_test(err, test_errors_concat_split);
  tcase_add_test(err, test_errors_expand);
  suite_add_tcase(s, err);
  TCase *low = tcase_create("lowering");
  tcase_add_test(low, test_lower_slice_clamping);
  tcase_add_test(low, test_lower_slice_opsets);
  tcase_add_test(low, test_lower_slice_folds);
  tcase_add_test(low, test_lower_reshape_family);
  tcase_add_test(low, test_lower_transpose_expand);
  tcase_add_test(low, test_lower_split);
  tcase_add_test(low, test_lower_concat_many);
  tcase_add_test(low, test_lower_shape_size);
  tcase_add_test(low, test_lower_constants);
  tcase_add_test(low, test_lower_range_eyelike);
  suite_add_tcase(s, low);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(movement_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
