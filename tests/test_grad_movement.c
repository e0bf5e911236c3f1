/*
 * Gradient rules of the data-movement ops (compiler/ops/movement.c):
 * Transpose, Concat, Split, Slice (with the SliceBwd kernel) and Expand,
 * checked against finite differences of double-precision references.
 */
#include <check.h>
#include <stdint.h>

#include "gradcheck.h"

#define TOL 1e-3

static void fill(float *x, int64_t n) {
  for (int64_t i = 0; i < n; i++) x[i] = (float)gc_uniform();
}

/* Row-major strides of dims. */
static void strides_of(int rank, const int64_t *dims, int64_t *st) {
  int64_t s = 1;
  for (int i = rank - 1; i >= 0; i--) {
    st[i] = s;
    s *= dims[i];
  }
}

/* Coordinates of flat index |f| in dims. */
static void unravel(int64_t f, int rank, const int64_t *dims, int64_t *idx) {
  for (int i = rank - 1; i >= 0; i--) {
    idx[i] = dims[i] ? f % dims[i] : 0;
    f = dims[i] ? f / dims[i] : 0;
  }
}

/* --- Transpose ---------------------------------------------------------------- */

static void ref_transpose(const double *const *in, const gc_input_t *inputs, int n_in, double *out,
                          const oc_tensor_t *yt, const void *user) {
  const int64_t *perm = user;
  const gc_input_t *x = &inputs[0];
  int64_t xs[OC_MAX_RANK], idx[OC_MAX_RANK];
  strides_of(x->rank, x->dims, xs);
  int64_t n = oc_tensor_numel(yt);
  for (int64_t f = 0; f < n; f++) {
    unravel(f, yt->rank, yt->dims, idx);
    int64_t off = 0;
    for (int i = 0; i < yt->rank; i++) off += idx[i] * xs[perm[i]];
    out[f] = in[0][off];
  }
}

static void check_transpose(int rank, const int64_t *dims, const int64_t *perm) {
  float x[256];
  int64_t n = gc_numel(rank, dims);
  ck_assert(n <= 256);
  fill(x, n);
  gc_input_t in[1] = {{OC_DTYPE_FLOAT32, rank}};
  memcpy(in[0].dims, dims, sizeof(int64_t) * (size_t)rank);
  in[0].data = x;
  in[0].differentiable = 1;
  char msg[512];
  ck_assert_msg(gc_check(OC_OP_TRANSPOSE, perm, rank, NULL, 0, in, 1, ref_transpose, perm, TOL, msg,
                         sizeof msg) == 0,
                "rank %d: %s", rank, msg);
}

START_TEST(transpose_grad) {
  check_transpose(2, (int64_t[]){3, 4}, (int64_t[]){1, 0});
  check_transpose(2, (int64_t[]){1, 5}, (int64_t[]){1, 0});
  check_transpose(3, (int64_t[]){2, 3, 4}, (int64_t[]){2, 0, 1});
  check_transpose(3, (int64_t[]){2, 3, 4}, (int64_t[]){1, 2, 0}); /* inverse differs from perm */
  check_transpose(3, (int64_t[]){2, 3, 4}, (int64_t[]){0, 2, 1});
  check_transpose(3, (int64_t[]){2, 3, 4}, (int64_t[]){0, 1, 2});
  check_transpose(4, (int64_t[]){2, 3, 1, 4}, (int64_t[]){0, 2, 3, 1});
  check_transpose(4, (int64_t[]){2, 3, 2, 4}, (int64_t[]){3, 1, 0, 2});
  check_transpose(4, (int64_t[]){2, 3, 2, 4}, (int64_t[]){1, 3, 2, 0});
}
END_TEST

/* --- Concat ------------------------------------------------------------------- */

static void ref_concat(const double *const *in, const gc_input_t *inputs, int n_in, double *out,
                       const oc_tensor_t *yt, const void *user) {
  int axis = *(const int *)user;
  if (axis < 0) axis += yt->rank;
  int64_t idx[OC_MAX_RANK];
  int64_t n = oc_tensor_numel(yt);
  for (int64_t f = 0; f < n; f++) {
    unravel(f, yt->rank, yt->dims, idx);
    int64_t a = idx[axis];
    int j = 0;
    while (a >= inputs[j].dims[axis]) a -= inputs[j++].dims[axis];
    int64_t xs[OC_MAX_RANK], off = 0;
    strides_of(inputs[j].rank, inputs[j].dims, xs);
    for (int i = 0; i < yt->rank; i++) off += (i == axis ? a : idx[i]) * xs[i];
    out[f] = in[j][off];
  }
}

/* n inputs of |rank| with dims |dims| except lens[j] on |axis|; input |nodiff|
 * (or -1) is not differentiable. */
static void check_concat(int rank, const int64_t *dims, int axis, int n, const int64_t *lens,
                         int nodiff) {
  static float data[4][256];
  gc_input_t in[4];
  int a = axis < 0 ? axis + rank : axis;
  for (int j = 0; j < n; j++) {
    in[j] = (gc_input_t){OC_DTYPE_FLOAT32, rank};
    memcpy(in[j].dims, dims, sizeof(int64_t) * (size_t)rank);
    in[j].dims[a] = lens[j];
    int64_t m = gc_numel(rank, in[j].dims);
    ck_assert(m <= 256);
    fill(data[j], m);
    in[j].data = data[j];
    in[j].differentiable = j != nodiff;
  }
  int64_t ax = axis;
  char msg[512];
  ck_assert_msg(gc_check(OC_OP_CONCAT, &ax, 1, NULL, 0, in, n, ref_concat, &axis, TOL, msg,
                         sizeof msg) == 0,
                "axis %d, %d inputs, nodiff %d: %s", axis, n, nodiff, msg);
}

START_TEST(concat_grad) {
  int64_t d[3] = {2, 3, 4};
  /* every input differentiable (one Split), and one that is not (Slices) */
  check_concat(3, d, 0, 2, (int64_t[]){2, 3}, -1);
  check_concat(3, d, 0, 3, (int64_t[]){1, 2, 3}, 1);
  check_concat(3, d, 1, 2, (int64_t[]){3, 1}, 0);
  check_concat(3, d, 1, 3, (int64_t[]){2, 1, 4}, -1);
  check_concat(3, d, 1, 3, (int64_t[]){2, 1, 4}, 2);
  check_concat(3, d, -1, 2, (int64_t[]){4, 2}, -1);
  check_concat(3, d, -1, 3, (int64_t[]){1, 3, 2}, 0);
  check_concat(3, d, 2, 3, (int64_t[]){2, 2, 3}, -1);
  check_concat(1, (int64_t[]){5}, 0, 3, (int64_t[]){2, 5, 1}, 1);
  check_concat(2, (int64_t[]){3, 2}, -2, 2, (int64_t[]){1, 1}, -1);
  /* zero-size pieces */
  check_concat(3, d, 1, 3, (int64_t[]){2, 0, 3}, -1);
  check_concat(3, d, 1, 3, (int64_t[]){0, 2, 3}, 2);
  /* one input */
  check_concat(2, (int64_t[]){3, 2}, 1, 1, (int64_t[]){4}, -1);
}
END_TEST

/* --- Split -------------------------------------------------------------------- */

/* The one-output form through gc_check (its harness seeds output 0 only). */
START_TEST(split_single_output_grad) {
  float x[24];
  fill(x, 24);
  gc_input_t in[1] = {{OC_DTYPE_FLOAT32, 3, {2, 3, 4}, x, 1}};
  int64_t ints[2] = {-2, 3};
  int axis = 1;
  char msg[512];
  /* Split into one piece equals Concat of one input. */
  ck_assert_msg(gc_check(OC_OP_SPLIT, ints, 2, NULL, 0, in, 1, ref_concat, &axis, TOL, msg,
                         sizeof msg) == 0,
                "%s", msg);
}
END_TEST

/* Several outputs: gc_check builds one-output programs, so this builds
 * x -> Split -> (outputs sel[0..n_sel-1] joined by Concat when n_sel > 1),
 * seeds the result with W and compares d sum(result * W) / dx with central
 * differences of a double reference (the same gather). Outputs left out of
 * sel reach the Split rule with no gradient. */
static int check_split(int rank, const int64_t *dims, int axis, int n_out, const int64_t *sizes,
                       int n_sel, const int *sel, char *msg, size_t msg_size) {
  oc_graph_t *g = oc_graph_new();
  void **buf = NULL;
  int rc = 1, a = axis < 0 ? axis + rank : axis;
  float x[256];
  int64_t nx = gc_numel(rank, dims);
  fill(x, nx);
  int xv = oc_graph_value(g, "x");
  oc_status_t s = oc_value_set_const(g, xv, OC_DTYPE_FLOAT32, rank, dims, x);
  g->values[xv].kind = OC_VALUE_STATE;
  g->values[xv].foldable = 0;
  int y[OC_MAX_OP_OUTPUTS];
  for (int k = 0; k < n_out; k++) {
    char name[32];
    snprintf(name, sizeof name, "y%d", k);
    y[k] = oc_graph_value(g, name);
  }
  int64_t ints[1 + OC_MAX_OP_OUTPUTS];
  ints[0] = axis;
  memcpy(ints + 1, sizes, sizeof(int64_t) * (size_t)n_out);
  if (!s) s = oc_emit_instr(g, "split", OC_OP_SPLIT, 1, &xv, n_out, y, ints, 1 + n_out, NULL, 0);
  int lv = y[sel[0]];
  if (!s && n_sel > 1) {
    int cin[OC_MAX_OP_INPUTS];
    for (int k = 0; k < n_sel; k++) cin[k] = y[sel[k]];
    lv = oc_graph_value(g, "z");
    int64_t ax = axis;
    s = oc_emit_instr(g, "concat", OC_OP_CONCAT, n_sel, cin, 1, &lv, &ax, 1, NULL, 0);
  }
  oc_tensor_t lt = g->values[lv].type;
  int64_t nl = oc_tensor_numel(&lt);
  int wv = oc_graph_value(g, "W");
  double w[256];
  if (!s) s = oc_value_set_const(g, wv, OC_DTYPE_FLOAT32, lt.rank, lt.dims, NULL);
  for (int64_t k = 0; k < nl && !s; k++) {
    w[k] = (float)gc_uniform();
    ((float *)g->values[wv].type.data)[k] = (float)w[k];
  }
  int grad = -1;
  if (!s) s = oc_autodiff(g, lv, wv, &xv, 1, &grad);
  if (!s) {
    buf = calloc((size_t)g->n_values + 1, sizeof(void *));
    s = gc_execute(g, buf);
  }
  if (s) {
    snprintf(msg, msg_size, "%s", oc_status_message(s));
    oc_status_free(s);
    goto out;
  }
  /* Reference: result[f] = x[src(f)]; loss = sum(result * W). */
  int64_t off[OC_MAX_OP_OUTPUTS], o = 0, xs[OC_MAX_RANK], idx[OC_MAX_RANK];
  for (int k = 0; k < n_out; k++) {
    off[k] = o;
    o += sizes[k];
  }
  strides_of(rank, dims, xs);
  double xd[256], fd[256], max_fd = 1e-3;
  for (int64_t i = 0; i < nx; i++) xd[i] = x[i];
  for (int64_t i = 0; i < nx; i++) {
    double lp = 0, lm = 0, x0 = xd[i], h = 1e-6 * (fabs(x0) > 1 ? fabs(x0) : 1);
    for (int sign = 1; sign >= -1; sign -= 2) {
      xd[i] = x0 + sign * h;
      double l = 0;
      for (int64_t f = 0; f < nl; f++) {
        unravel(f, lt.rank, lt.dims, idx);
        int64_t p = idx[a];
        int k = 0;
        while (p >= sizes[sel[k]]) p -= sizes[sel[k++]];
        int64_t src = 0;
        for (int d = 0; d < rank; d++) src += (d == a ? off[sel[k]] + p : idx[d]) * xs[d];
        l += xd[src] * w[f];
      }
      if (sign > 0) lp = l; else lm = l;
    }
    xd[i] = x0;
    fd[i] = (lp - lm) / (2 * h);
    if (fabs(fd[i]) > max_fd) max_fd = fabs(fd[i]);
  }
  const float *gx = buf[grad];
  rc = 0;
  for (int64_t i = 0; i < nx && !rc; i++)
    if (!(fabs(gx[i] - fd[i]) <= TOL * max_fd)) {
      snprintf(msg, msg_size, "element %lld: autodiff %.8g, finite differences %.8g",
               (long long)i, gx[i], fd[i]);
      rc = 1;
    }
out:
  if (buf)
    for (int v = 0; v < g->n_values; v++) free(buf[v]);
  free(buf);
  oc_graph_free(g);
  return rc;
}

#define CHECK_SPLIT(rank, dims, axis, n_out, sizes, n_sel, sel)                                  \
  do {                                                                                           \
    char msg_[512];                                                                              \
    ck_assert_msg(check_split(rank, (int64_t[])dims, axis, n_out, (int64_t[])sizes, n_sel,       \
                              (int[])sel, msg_, sizeof msg_) == 0,                               \
                  "split line %d: %s", __LINE__, msg_);                                          \
  } while (0)
#define L(...) {__VA_ARGS__}

START_TEST(split_grad) {
  /* equal parts, all used (in order and reordered) */
  CHECK_SPLIT(2, L(6, 3), 0, 3, L(2, 2, 2), 3, L(0, 1, 2));
  CHECK_SPLIT(3, L(2, 6, 2), 1, 3, L(2, 2, 2), 3, L(2, 0, 1));
  /* one output unused (its gradient is zeros) */
  CHECK_SPLIT(3, L(2, 6, 2), 1, 3, L(2, 2, 2), 2, L(0, 2));
  CHECK_SPLIT(3, L(2, 3, 6), -1, 3, L(2, 2, 2), 2, L(1, 2));
  /* uneven sizes */
  CHECK_SPLIT(2, L(3, 7), 1, 3, L(3, 3, 1), 3, L(0, 1, 2));
  CHECK_SPLIT(2, L(3, 7), -1, 3, L(1, 4, 2), 2, L(2, 0));
  CHECK_SPLIT(3, L(5, 2, 3), 0, 2, L(4, 1), 1, L(1));
  CHECK_SPLIT(3, L(5, 2, 3), 0, 2, L(4, 1), 1, L(0));
  /* only one output used out of several */
  CHECK_SPLIT(2, L(4, 6), 1, 4, L(1, 2, 1, 2), 1, L(2));
  /* zero-size pieces, used and unused */
  CHECK_SPLIT(2, L(3, 5), 1, 3, L(0, 3, 2), 2, L(1, 0));
  CHECK_SPLIT(2, L(3, 5), 1, 3, L(2, 0, 3), 1, L(2));
  CHECK_SPLIT(2, L(3, 5), 1, 3, L(5, 0, 0), 1, L(1));
}
END_TEST

/* --- Slice -------------------------------------------------------------------- */

/* ONNX Slice on one axis (numpy semantics), written independently of the
 * compiler's resolver: the indices read, in order. Returns their count. */
static int64_t onnx_slice_indices(int64_t dim, int64_t start, int64_t end, int64_t step,
                                  int64_t *idx) {
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  int64_t n = 0;
  if (step > 0) {
    if (start < 0) start = 0;
    if (end > dim) end = dim;
    for (int64_t i = start; i < end; i += step) {
      idx[n++] = i;
      if (end - i <= step) break; /* no overflow with huge steps */
    }
  } else {
    if (start > dim - 1) start = dim - 1;
    if (end < -1) end = -1;
    for (int64_t i = start; i > end; i += step) {
      idx[n++] = i;
      if (i - end <= -step) break;
    }
  }
  return n;
}

typedef struct slice_case_s {
  int rank;
  int64_t dims[OC_MAX_RANK];
  int64_t idx[OC_MAX_RANK][32]; /* per axis: the x index of each output index */
} slice_case_t;

static void ref_slice(const double *const *in, const gc_input_t *inputs, int n_in, double *out,
                      const oc_tensor_t *yt, const void *user) {
  const slice_case_t *c = user;
  int64_t xs[OC_MAX_RANK], idx[OC_MAX_RANK];
  strides_of(c->rank, c->dims, xs);
  int64_t n = oc_tensor_numel(yt);
  for (int64_t f = 0; f < n; f++) {
    unravel(f, yt->rank, yt->dims, idx);
    int64_t off = 0;
    for (int d = 0; d < c->rank; d++) off += c->idx[d][idx[d]] * xs[d];
    out[f] = in[0][off];
  }
}

/* Slice x (dims) with ONNX starts/ends/steps on every axis (step 0: keep
 * the axis whole). The runtime ints come from the indices' first element,
 * spacing and count. */
static void check_slice(int rank, const int64_t *dims, const int64_t *starts, const int64_t *ends,
                        const int64_t *steps, int line) {
  static slice_case_t c;
  memset(&c, 0, sizeof c);
  c.rank = rank;
  memcpy(c.dims, dims, sizeof(int64_t) * (size_t)rank);
  int64_t ints[3 * OC_MAX_RANK];
  for (int d = 0; d < rank; d++) {
    int64_t n = steps[d] == 0 ? onnx_slice_indices(dims[d], 0, INT64_MAX, 1, c.idx[d])
                              : onnx_slice_indices(dims[d], starts[d], ends[d], steps[d], c.idx[d]);
    ints[3 * d] = n > 0 ? c.idx[d][0] : 0;
    ints[3 * d + 1] = n > 1 ? c.idx[d][1] - c.idx[d][0] : (steps[d] ? steps[d] : 1);
    ints[3 * d + 2] = n;
  }
  float x[256];
  int64_t nx = gc_numel(rank, dims);
  ck_assert(nx <= 256);
  fill(x, nx);
  gc_input_t in[1] = {{OC_DTYPE_FLOAT32, rank}};
  memcpy(in[0].dims, dims, sizeof(int64_t) * (size_t)rank);
  in[0].data = x;
  in[0].differentiable = 1;
  char msg[512];
  ck_assert_msg(gc_check(OC_OP_SLICE, ints, 3 * rank, NULL, 0, in, 1, ref_slice, &c, TOL, msg,
                         sizeof msg) == 0,
                "slice line %d: %s", line, msg);
}

#define CHECK_SLICE(rank, dims, starts, ends, steps)                                          \
  check_slice(rank, (int64_t[])dims, (int64_t[])starts, (int64_t[])ends, (int64_t[])steps, \
              __LINE__)
#define BIG INT64_MAX

START_TEST(slice_grad) {
  /* step 1 */
  CHECK_SLICE(1, L(7), L(2), L(5), L(1));
  CHECK_SLICE(2, L(4, 5), L(1, 0), L(3, 0), L(1, 0));
  /* step 2, -1, -2 */
  CHECK_SLICE(1, L(8), L(1), L(BIG), L(2));
  CHECK_SLICE(1, L(6), L(-1), L(-BIG), L(-1)); /* reversal */
  CHECK_SLICE(1, L(7), L(5), L(0), L(-2));
  CHECK_SLICE(2, L(4, 6), L(0, 5), L(4, -BIG), L(2, -2));
  /* negative starts and ends */
  CHECK_SLICE(2, L(5, 6), L(-4, -1), L(-1, -5), L(1, -1));
  CHECK_SLICE(1, L(9), L(-7), L(-1), L(3));
  CHECK_SLICE(1, L(5), L(-100), L(100), L(2)); /* clamped */
  /* empty slices: a dim-0 output, the input gets zeros */
  CHECK_SLICE(2, L(3, 4), L(2, 0), L(2, 0), L(1, 0));
  CHECK_SLICE(2, L(3, 4), L(0, 1), L(0, 3), L(0, -1));
  CHECK_SLICE(2, L(3, 4), L(-1, 0), L(-3, 0), L(1, 0));
  /* multiple axes */
  CHECK_SLICE(3, L(3, 4, 5), L(1, -1, 0), L(3, -BIG, BIG), L(1, -2, 2));
  CHECK_SLICE(3, L(4, 3, 5), L(3, 0, -2), L(-BIG, 3, -BIG), L(-1, 0, -2));
  CHECK_SLICE(4, L(2, 3, 2, 4), L(1, 2, 0, 1), L(2, -BIG, 2, 4), L(1, -1, 1, 2));
  /* one element on an axis, a huge step */
  CHECK_SLICE(2, L(3, 5), L(1, 2), L(2, BIG), L(1, BIG));
  CHECK_SLICE(2, L(3, 5), L(2, 4), L(-BIG, -BIG), L(-BIG, -3));
}
END_TEST

/* SliceBwd's shape rule rejects bad plans. */
START_TEST(slice_bwd_infer_rejects) {
  oc_tensor_t dy = {.dtype = OC_DTYPE_FLOAT32, .rank = 1, .dims = {2}}, dx = {0};
  oc_tensor_t *pin[1] = {&dy}, *pout[1] = {&dx};
  struct {
    int64_t ints[4];
    int n, ok;
  } cases[] = {
      {{1, 2, 2, 5}, 4, 1},   /* x[1], x[3] of 5 */
      {{4, -3, 2, 5}, 4, 1},  /* x[4], x[1] */
      {{1, 2, 2}, 3, 0},      /* missing the input dims */
      {{1, 0, 2, 5}, 4, 0},   /* step 0 */
      {{1, 2, 3, 5}, 4, 0},   /* dim differs from dy */
      {{3, 2, 2, 5}, 4, 0},   /* leaves the input */
      {{1, -2, 2, 5}, 4, 0},  /* leaves the input */
      {{0, 1, 2, -1}, 4, 0},  /* negative input dim */
      {{1, INT64_MAX, 2, 5}, 4, 0}, /* overflowing span */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    oc_op_call_t call = {.ints = cases[i].ints, .n_ints = cases[i].n, .n_in = 1, .in = pin,
                         .n_out = 1, .out = pout};
    size_t ws;
    oc_status_t s = oc_op_infer(OC_OP_SLICE_BWD, &call, &ws);
    ck_assert_msg((s == OC_OK) == cases[i].ok, "case %zu: %s", i, s ? oc_status_message(s) : "ok");
    if (s) oc_status_free(s);
  }
}
END_TEST

/* --- Expand ------------------------------------------------------------------- */

static void ref_expand(const double *const *in, const gc_input_t *inputs, int n_in, double *out,
                       const oc_tensor_t *yt, const void *user) {
  const gc_input_t *x = &inputs[0];
  int64_t xs[OC_MAX_RANK], idx[OC_MAX_RANK];
  strides_of(x->rank, x->dims, xs);
  int lead = yt->rank - x->rank;
  int64_t n = oc_tensor_numel(yt);
  for (int64_t f = 0; f < n; f++) {
    unravel(f, yt->rank, yt->dims, idx);
    int64_t off = 0;
    for (int i = 0; i < x->rank; i++) off += (x->dims[i] == 1 ? 0 : idx[i + lead]) * xs[i];
    out[f] = in[0][off];
  }
}

static void check_expand(int xrank, const int64_t *xdims, int yrank, const int64_t *ydims,
                         int line) {
  float x[256];
  int64_t n = gc_numel(xrank, xdims);
  fill(x, n);
  gc_input_t in[1] = {{OC_DTYPE_FLOAT32, xrank}};
  memcpy(in[0].dims, xdims, sizeof(int64_t) * (size_t)xrank);
  in[0].data = x;
  in[0].differentiable = 1;
  char msg[512];
  ck_assert_msg(gc_check(OC_OP_EXPAND, ydims, yrank, NULL, 0, in, 1, ref_expand, NULL, TOL, msg,
                         sizeof msg) == 0,
                "expand line %d: %s", line, msg);
}

#define CHECK_EXPAND(xrank, xdims, yrank, ydims) \
  check_expand(xrank, (int64_t[])xdims, yrank, (int64_t[])ydims, __LINE__)

START_TEST(expand_grad) {
  CHECK_EXPAND(1, L(4), 3, L(2, 3, 4));          /* leading axes */
  CHECK_EXPAND(2, L(3, 1), 3, L(2, 3, 4));       /* leading and trailing */
  CHECK_EXPAND(3, L(2, 1, 4), 3, L(2, 3, 4));    /* middle */
  CHECK_EXPAND(4, L(1, 3, 1, 2), 4, L(2, 3, 4, 2)); /* several middle/leading */
  CHECK_EXPAND(2, L(1, 1), 3, L(3, 2, 2));       /* everything */
  CHECK_EXPAND(0, L(0), 2, L(2, 3));             /* a scalar */
  CHECK_EXPAND(3, L(1, 3, 1), 3, L(1, 3, 1));    /* no broadcast */
  CHECK_EXPAND(2, L(3, 1), 2, L(3, 0));          /* to an empty output: zeros */
}
END_TEST

int main(void) {
  Suite *s = suite_create("grad_movement");
  TCase *tc = tcase_create("grad");
  tcase_add_test(tc, transpose_grad);
  tcase_add_test(tc, concat_grad);
  tcase_add_test(tc, split_single_output_grad);
  tcase_add_test(tc, split_grad);
  tcase_add_test(tc, slice_grad);
  tcase_add_test(tc, slice_bwd_infer_rejects);
  tcase_add_test(tc, expand_grad);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
