/*
 * The loss heads and Einsum: the runtime ops NegativeLogLikelihoodLoss and
 * EinsumDiagonal called directly through oc_op_infer and the op's run, and
 * the lowerings of NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss and
 * Einsum on one-node graphs. Given constant inputs a lowering folds every
 * instruction it emits, so the folded output is the end-to-end result of the
 * lowering and its kernels; it is compared with naive references in double
 * written here (a generic einsum over all index values, log-softmax and NLL
 * straight from the ONNX definition).
 *
 *   shape:   output types from infer and from the lowerings
 *   forward: values against the references: reductions, weights, ignore
 *            index, k-dim losses, -inf-masked logits (NT-Xent), NaN, empty
 *            tensors; Einsum transposes, diagonals, reductions, implicit
 *            output, ellipsis broadcasting, matmuls, 1-3 operands, int64
 *   errors:  hostile ints for infer, run-time label errors, bad equations,
 *            refused dtypes
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
static float frand(void) { /* uniform in [-2, 2) */
  return (float)((double)(rnd() >> 11) / 9007199254740992.0 * 4.0 - 2.0);
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

static int64_t numel(int rank, const int64_t *dims) {
  int64_t n = 1;
  for (int i = 0; i < rank; i++) n *= dims[i];
  return n;
}

static float *rand_floats(int64_t n) {
  float *p = malloc(sizeof(float) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) p[i] = frand();
  return p;
}

static oc_status_t infer(int op, oc_tensor_t **in, int n_in, oc_tensor_t **out, int n_out,
                         const int64_t *ints, int n_ints, size_t *ws) {
  oc_op_call_t c = {.ints = ints, .n_ints = n_ints, .n_in = n_in, .in = in, .n_out = n_out,
                    .out = out};
  size_t w = 0;
  oc_status_t s = oc_op_infer(op, &c, &w);
  if (ws) *ws = w;
  return s;
}

/* Infers, allocates the outputs (caller frees out[i]->data) and runs. */
static oc_status_t run(int op, oc_tensor_t **in, int n_in, oc_tensor_t **out, int n_out,
                       const int64_t *ints, int n_ints) {
  size_t ws = 0;
  for (int i = 0; i < n_out; i++) out[i]->data = NULL;
  oc_status_t s = infer(op, in, n_in, out, n_out, ints, n_ints, &ws);
  if (s) return s;
  for (int i = 0; i < n_out; i++) {
    size_t b = oc_tensor_bytes(out[i]);
    out[i]->data = malloc(b ? b : 1);
    memset(out[i]->data, 0xA5, b); /* poison */
  }
  void *w = ws ? malloc(ws) : NULL;
  oc_op_call_t c = {.ints = ints, .n_ints = n_ints, .n_in = n_in, .in = in, .n_out = n_out,
                    .out = out, .workspace = w, .workspace_bytes = ws};
  s = oc_op_get(op)->run(&c);
  free(w);
  return s;
}

#define ASSERT_OK(expr)                                                            \
  do {                                                                             \
    oc_status_t s_ = (expr);                                                       \
    ck_assert_msg(s_ == OC_OK, "%s: %s", #expr, oc_status_message(s_));            \
  } while (0)

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

/* ------------------------------------------------------------------------ */
/* One-node graphs (for the lowerings)                                      */
/* ------------------------------------------------------------------------ */

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

/* Adds input |name| (NULL: omitted); run-time input when data is NULL, else
 * a constant. */
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
static void lg_str(lg_t *l, const char *name, const char *v) {
  lg_attr(l, name, OC_ATTR_STRING)->s = oc_strdup(v);
}

static oc_status_t lg_lower(lg_t *l) {
  oc_lower_t lw = {.g = l->g, .node = l->n, .opset = l->opset, .fold_limit_bytes = 1 << 22};
  oc_lower_fn fn = oc_lower_find("", l->n->op_type);
  ck_assert_msg(fn != NULL, "no lowering for %s", l->n->op_type);
  return fn(&lw);
}

/* The value called |name| (after lowering). */
static const oc_value_t *lg_value(const lg_t *l, const char *name) {
  int v = oc_graph_find(l->g, name);
  ck_assert_msg(v >= 0, "no value '%s'", name);
  return &l->g->values[v];
}

/* The folded constant |name|: its type and data. */
static const oc_tensor_t *lg_const(const lg_t *l, const char *name) {
  const oc_value_t *v = lg_value(l, name);
  ck_assert_msg(v->known && v->kind == OC_VALUE_CONST, "'%s' was not folded", name);
  return &v->type;
}

/* ------------------------------------------------------------------------ */
/* References                                                               */
/* ------------------------------------------------------------------------ */

/* NLL / SCE per ONNX: x (n, c, d) log-probabilities (or scores when |softmax|),
 * target (n, d), weight (c) or NULL; loss (n*d) for reduction 0 else loss[0].
 * lp (n, c, d), if not NULL, receives the log-probabilities. */
static void ref_nll(double *loss, double *lp, const float *x, const int64_t *target,
                    const float *weight, int64_t n, int64_t c, int64_t d, int reduction,
                    int has_ignore, int64_t ignore, int softmax) {
  double *logp = malloc(sizeof(double) * (size_t)(n * c * d + 1));
  for (int64_t i = 0; i < n; i++)
    for (int64_t k = 0; k < d; k++) {
      double mx = -INFINITY;
      for (int64_t j = 0; j < c; j++) mx = fmax(mx, x[(i * c + j) * d + k]);
      double s = 0;
      for (int64_t j = 0; j < c; j++) s += exp(x[(i * c + j) * d + k] - mx);
      for (int64_t j = 0; j < c; j++) {
        double v = x[(i * c + j) * d + k];
        logp[(i * c + j) * d + k] = softmax ? (v - mx) - log(s) : v;
      }
    }
  if (lp) memcpy(lp, logp, sizeof(double) * (size_t)(n * c * d));
  double sum = 0, wsum = 0;
  for (int64_t i = 0; i < n; i++)
    for (int64_t k = 0; k < d; k++) {
      int64_t t = target[i * d + k];
      double l = 0, w = 0;
      if (!(has_ignore && t == ignore)) {
        w = weight ? weight[t] : 1.0;
        l = -w * logp[(i * c + t) * d + k];
      }
      if (reduction == 0) loss[i * d + k] = l;
      sum += l;
      wsum += w;
    }
  if (reduction == 1) loss[0] = sum;
  if (reduction == 2) loss[0] = sum / wsum;
  free(logp);
}

/* Naive einsum over explicit letter terms (no "..."): every assignment of
 * every letter; a dim of size 1 broadcasts. */
#define REF_MAX_OPS 3
static void ref_einsum(double *y, int n_ops, const char *const *terms,
                       const oc_tensor_t *const *ops, const char *out, int64_t *out_dims) {
  int64_t size[128];
  for (int i = 0; i < 128; i++) size[i] = -1;
  for (int o = 0; o < n_ops; o++)
    for (int k = 0; terms[o][k]; k++) {
      int ch = terms[o][k];
      int64_t d = ops[o]->dims[k];
      if (size[ch] < 0 || size[ch] == 1) size[ch] = d;
    }
  char letters[64];
  int nl = 0;
  for (int ch = 0; ch < 128; ch++)
    if (size[ch] >= 0) letters[nl++] = (char)ch;
  int no = (int)strlen(out);
  for (int k = 0; k < no; k++) out_dims[k] = size[(int)out[k]];
  int64_t ny = numel(no, out_dims);
  for (int64_t i = 0; i < ny; i++) y[i] = 0;
  int64_t total = 1;
  for (int i = 0; i < nl; i++) total *= size[(int)letters[i]];
  int64_t val[128];
  for (int64_t it = 0; it < total; it++) {
    int64_t r = it;
    for (int i = nl - 1; i >= 0; i--) {
      val[(int)letters[i]] = r % size[(int)letters[i]];
      r /= size[(int)letters[i]];
    }
    double prod = 1;
    for (int o = 0; o < n_ops; o++) {
      int64_t off = 0;
      for (int k = 0; terms[o][k]; k++) {
        int64_t d = ops[o]->dims[k];
        off = off * d + (d == 1 ? 0 : val[(int)terms[o][k]]);
      }
      switch (ops[o]->dtype) {
        case OC_DTYPE_FLOAT32: prod *= ((const float *)ops[o]->data)[off]; break;
        case OC_DTYPE_INT64: prod *= (double)((const int64_t *)ops[o]->data)[off]; break;
        default: prod *= ((const int32_t *)ops[o]->data)[off]; break;
      }
    }
    int64_t yo = 0;
    for (int k = 0; k < no; k++) yo = yo * out_dims[k] + val[(int)out[k]];
    y[yo] += prod;
  }
}

/* Lowers Einsum |eq| on constant operands and checks the folded result
 * against ref_einsum with |ref_terms| -> |ref_out| (the same contraction
 * written with plain letters). */
static void check_einsum(const char *eq, int n_ops, oc_tensor_t *const *ops,
                         const char *const *ref_terms, const char *ref_out) {
  lg_t l = lg_new(12, "Einsum");
  char name[16];
  for (int i = 0; i < n_ops; i++) {
    snprintf(name, sizeof name, "x%d", i);
    lg_in(&l, name, ops[i]->dtype, ops[i]->rank, ops[i]->dims, ops[i]->data);
  }
  lg_out(&l, "y");
  lg_str(&l, "equation", eq);
  oc_status_t s = lg_lower(&l);
  ck_assert_msg(s == OC_OK, "einsum '%s': %s", eq, oc_status_message(s));
  const oc_tensor_t *y = lg_const(&l, "y");
  int64_t dims[OC_MAX_RANK];
  double *want = malloc(sizeof(double) * 4096);
  ref_einsum(want, n_ops, ref_terms, (const oc_tensor_t *const *)ops, ref_out, dims);
  char what[96];
  snprintf(what, sizeof what, "einsum '%s'", eq);
  expect_dims(y, (int)strlen(ref_out), dims, what);
  ck_assert_msg(y->dtype == ops[0]->dtype, "%s: dtype %d", what, y->dtype);
  int64_t n = oc_tensor_numel(y);
  if (y->dtype == OC_DTYPE_FLOAT32) {
    expect_close(y->data, want, n, 1e-5, what);
  } else {
    for (int64_t i = 0; i < n; i++) {
      int64_t got = y->dtype == OC_DTYPE_INT64 ? ((const int64_t *)y->data)[i]
                                               : ((const int32_t *)y->data)[i];
      ck_assert_msg(got == (int64_t)want[i], "%s[%lld]: %lld, expected %lld", what,
                    (long long)i, (long long)got, (long long)want[i]);
    }
  }
  free(want);
  oc_graph_free(l.g);
}

/* ------------------------------------------------------------------------ */
/* shape                                                                    */
/* ------------------------------------------------------------------------ */

START_TEST(shape_nll) {
  oc_tensor_t y;
  oc_tensor_t *out[1] = {&y};
  int64_t xd[4] = {2, 4, 3, 5}, td[3] = {2, 3, 5}, wd[1] = {4};
  oc_tensor_t x = tensor(OC_DTYPE_FLOAT32, 4, xd, NULL), t = tensor(OC_DTYPE_INT64, 3, td, NULL);
  oc_tensor_t w = tensor(OC_DTYPE_FLOAT32, 1, wd, NULL);
  oc_tensor_t *in3[3] = {&x, &t, &w}, *in2[2] = {&x, &t};
  int64_t none[3] = {0, 0, 0}, sum[3] = {1, 1, -100}, mean[3] = {2, 0, 0};
  ASSERT_OK(infer(OC_OP_NLL_LOSS, in2, 2, out, 1, none, 3, NULL));
  expect_dims(&y, 3, td, "none");
  ck_assert_int_eq(y.dtype, OC_DTYPE_FLOAT32);
  ASSERT_OK(infer(OC_OP_NLL_LOSS, in3, 3, out, 1, sum, 3, NULL));
  expect_dims(&y, 0, NULL, "sum");
  ASSERT_OK(infer(OC_OP_NLL_LOSS, in3, 3, out, 1, mean, 3, NULL));
  expect_dims(&y, 0, NULL, "mean");
  /* (N, C) with an int32 target; an absent optional weight. */
  int64_t xd2[2] = {3, 5}, td2[1] = {3};
  oc_tensor_t x2 = tensor(OC_DTYPE_FLOAT32, 2, xd2, NULL);
  oc_tensor_t t2 = tensor(OC_DTYPE_INT32, 1, td2, NULL);
  oc_tensor_t *in2b[3] = {&x2, &t2, NULL};
  ASSERT_OK(infer(OC_OP_NLL_LOSS, in2b, 3, out, 1, none, 3, NULL));
  expect_dims(&y, 1, td2, "NC none");
  /* Empty batch. */
  int64_t xd3[3] = {0, 5, 2}, td3[2] = {0, 2};
  oc_tensor_t x3 = tensor(OC_DTYPE_FLOAT32, 3, xd3, NULL);
  oc_tensor_t t3 = tensor(OC_DTYPE_INT64, 2, td3, NULL);
  oc_tensor_t *in2c[2] = {&x3, &t3};
  ASSERT_OK(infer(OC_OP_NLL_LOSS, in2c, 2, out, 1, none, 3, NULL));
  expect_dims(&y, 2, td3, "empty none");
}
END_TEST

START_TEST(shape_einsum_diagonal) {
  oc_tensor_t y;
  oc_tensor_t *out[1] = {&y};
  int64_t d33[2] = {3, 3}, d232[3] = {2, 3, 2}, d23[2] = {2, 3}, d32[2] = {3, 2};
  oc_tensor_t a = tensor(OC_DTYPE_FLOAT32, 2, d33, NULL), b = tensor(OC_DTYPE_INT64, 3, d232, NULL);
  oc_tensor_t c = tensor(OC_DTYPE_BOOL, 2, d23, NULL), s = tensor(OC_DTYPE_FLOAT32, 0, NULL, NULL);
  oc_tensor_t *ia[1] = {&a}, *ib[1] = {&b}, *ic[1] = {&c}, *is[1] = {&s};
  int64_t ii_i[3] = {1, 0, 0}, iji_ij[4] = {2, 0, 1, 0}, ij_ji[3] = {2, 1, 0}, sc[1] = {0};
  ASSERT_OK(infer(OC_OP_EINSUM_DIAGONAL, ia, 1, out, 1, ii_i, 3, NULL));
  int64_t d3[1] = {3};
  expect_dims(&y, 1, d3, "ii->i");
  ASSERT_OK(infer(OC_OP_EINSUM_DIAGONAL, ib, 1, out, 1, iji_ij, 4, NULL));
  expect_dims(&y, 2, d23, "iji->ij");
  ck_assert_int_eq(y.dtype, OC_DTYPE_INT64);
  ASSERT_OK(infer(OC_OP_EINSUM_DIAGONAL, ic, 1, out, 1, ij_ji, 3, NULL));
  expect_dims(&y, 2, d32, "ij->ji");
  ASSERT_OK(infer(OC_OP_EINSUM_DIAGONAL, is, 1, out, 1, sc, 1, NULL));
  expect_dims(&y, 0, NULL, "scalar");
}
END_TEST

START_TEST(shape_lowerings) {
  /* SoftmaxCrossEntropyLoss with run-time inputs: LogSoftmax(axis 1) into
   * log_prob, then NLL with the resolved attributes. */
  int64_t xd[3] = {4, 6, 3}, td[2] = {4, 3}, wd[1] = {6};
  for (int opset = 12; opset <= 13; opset++) {
    lg_t l = lg_new(opset, "SoftmaxCrossEntropyLoss");
    lg_in(&l, "x", OC_DTYPE_FLOAT32, 3, xd, NULL);
    lg_in(&l, "t", OC_DTYPE_INT32, 2, td, NULL);
    lg_in(&l, "w", OC_DTYPE_FLOAT32, 1, wd, NULL);
    lg_out(&l, "loss");
    lg_out(&l, "lp");
    lg_str(&l, "reduction", "sum");
    lg_int(&l, "ignore_index", -1);
    ASSERT_OK(lg_lower(&l));
    ck_assert_int_eq(l.g->n_instrs, 2);
    const oc_instr_t *a = &l.g->instrs[0], *b = &l.g->instrs[1];
    ck_assert_int_eq(a->op, OC_OP_LOG_SOFTMAX);
    ck_assert_int_eq(a->n_ints, 2);
    ck_assert(a->ints[0] == 1 && a->ints[1] == 0);
    ck_assert_int_eq(b->op, OC_OP_NLL_LOSS);
    ck_assert_int_eq(b->n_in, 3);
    ck_assert(b->n_ints == 3 && b->ints[0] == 1 && b->ints[1] == 1 && b->ints[2] == -1);
    expect_dims(&lg_value(&l, "lp")->type, 3, xd, "log_prob");
    expect_dims(&lg_value(&l, "loss")->type, 0, NULL, "loss");
    oc_graph_free(l.g);
  }
  /* NLL: default reduction mean, no ignore index. */
  lg_t l = lg_new(13, "NegativeLogLikelihoodLoss");
  lg_in(&l, "x", OC_DTYPE_FLOAT32, 3, xd, NULL);
  lg_in(&l, "t", OC_DTYPE_INT64, 2, td, NULL);
  lg_out(&l, "loss");
  ASSERT_OK(lg_lower(&l));
  ck_assert_int_eq(l.g->n_instrs, 1);
  const oc_instr_t *b = &l.g->instrs[0];
  ck_assert(b->op == OC_OP_NLL_LOSS && b->n_in == 2);
  ck_assert(b->ints[0] == 2 && b->ints[1] == 0);
  oc_graph_free(l.g);
  /* Einsum shapes with run-time inputs (nothing folds). */
  struct {
    const char *eq;
    int n_ops, rank[2];
    int64_t dims[2][4];
    int out_rank;
    int64_t out[4];
  } cases[] = {
      {"bij, bjk -> bik", 2, {3, 3}, {{5, 2, 3}, {5, 3, 4}}, 3, {5, 2, 4}},
      {"...ii ->...i", 1, {3}, {{3, 5, 5}}, 2, {3, 5}},
      {"i,i", 2, {1, 1}, {{5}, {5}}, 0, {0}},
      {"ij->i", 1, {2}, {{3, 4}}, 1, {3}},
      {"ij->ji", 1, {2}, {{3, 4}}, 2, {4, 3}},
      {"ba,ac", 2, {2, 2}, {{2, 3}, {3, 4}}, 2, {2, 4}},
      {"Ab,bC", 2, {2, 2}, {{2, 3}, {3, 4}}, 2, {2, 4}},
      {"...ij,...jk", 2, {4, 3}, {{2, 1, 3, 4}, {5, 4, 2}}, 4, {2, 5, 3, 2}},
      {"ii", 1, {2}, {{4, 4}}, 0, {0}},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    lg_t e = lg_new(12, "Einsum");
    lg_in(&e, "a", OC_DTYPE_FLOAT32, cases[k].rank[0], cases[k].dims[0], NULL);
    if (cases[k].n_ops > 1)
      lg_in(&e, "b", OC_DTYPE_FLOAT32, cases[k].rank[1], cases[k].dims[1], NULL);
    lg_out(&e, "y");
    lg_str(&e, "equation", cases[k].eq);
    oc_status_t s = lg_lower(&e);
    ck_assert_msg(s == OC_OK, "%s: %s", cases[k].eq, oc_status_message(s));
    expect_dims(&lg_value(&e, "y")->type, cases[k].out_rank, cases[k].out, cases[k].eq);
    oc_graph_free(e.g);
  }
}
END_TEST

/* ------------------------------------------------------------------------ */
/* forward                                                                  */
/* ------------------------------------------------------------------------ */

/* Runs NLL_LOSS directly on x (n, c, d...) for every reduction, with and
 * without weight and ignore index, int64 and int32 targets. */
START_TEST(forward_nll) {
  struct {
    int rank;
    int64_t dims[5];
  } shapes[] = {{2, {3, 5}}, {3, {2, 4, 3}}, {5, {2, 3, 2, 2, 3}}, {2, {1, 1}}};
  for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
    int rank = shapes[si].rank;
    const int64_t *xd = shapes[si].dims;
    int64_t n = xd[0], c = xd[1], d = numel(rank - 2, xd + 2);
    int64_t td[4];
    td[0] = n;
    for (int i = 2; i < rank; i++) td[i - 1] = xd[i];
    float *x = rand_floats(n * c * d), *w = rand_floats(c);
    for (int64_t j = 0; j < c; j++) w[j] = fabsf(w[j]) + 0.1f;
    int64_t *t64 = malloc(sizeof(int64_t) * (size_t)(n * d));
    int32_t *t32 = malloc(sizeof(int32_t) * (size_t)(n * d));
    for (int variant = 0; variant < 8; variant++) {
      int has_ignore = variant & 1, weighted = (variant >> 1) & 1, use32 = (variant >> 2) & 1;
      int64_t ignore = (si & 1) ? -7 : 1; /* inside and outside [0, C) */
      for (int64_t i = 0; i < n * d; i++) {
        t64[i] = (int64_t)(rnd() % (uint64_t)c);
        if (has_ignore && rnd() % 3 == 0) t64[i] = ignore;
        t32[i] = (int32_t)t64[i];
      }
      for (int red = 0; red <= 2; red++) {
        oc_tensor_t xt = tensor(OC_DTYPE_FLOAT32, rank, xd, x);
        oc_tensor_t tt = tensor(use32 ? OC_DTYPE_INT32 : OC_DTYPE_INT64, rank - 1, td,
                                use32 ? (void *)t32 : (void *)t64);
        oc_tensor_t wt = tensor(OC_DTYPE_FLOAT32, 1, &c, w), y;
        oc_tensor_t *in[3] = {&xt, &tt, weighted ? &wt : NULL}, *out[1] = {&y};
        int64_t ints[3] = {red, has_ignore, has_ignore ? ignore : 12345};
        ASSERT_OK(run(OC_OP_NLL_LOSS, in, 3, out, 1, ints, 3));
        double *want = malloc(sizeof(double) * (size_t)(n * d + 1));
        ref_nll(want, NULL, x, t64, weighted ? w : NULL, n, c, d, red, has_ignore, ignore, 0);
        char what[96];
        snprintf(what, sizeof what, "nll shape %zu variant %d reduction %d", si, variant, red);
        expect_close(y.data, want, red == 0 ? n * d : 1, 1e-5, what);
        free(want);
        free(y.data);
      }
    }
    free(x);
    free(w);
    free(t64);
    free(t32);
  }
}
END_TEST

/* Special values: -inf at a non-target class is harmless; -inf at the target
 * gives +inf; NaN propagates; means over nothing are NaN; empty tensors. */
START_TEST(forward_nll_special) {
  int64_t xd[2] = {2, 3}, td[1] = {2};
  float x[6] = {-1.0f, -INFINITY, -2.0f, -INFINITY, -0.5f, -3.0f};
  int64_t t[2] = {0, 1};
  oc_tensor_t xt = tensor(OC_DTYPE_FLOAT32, 2, xd, x), tt = tensor(OC_DTYPE_INT64, 1, td, t), y;
  oc_tensor_t *in[2] = {&xt, &tt}, *out[1] = {&y};
  int64_t none[3] = {0, 0, 0}, mean[3] = {2, 0, 0}, sum[3] = {1, 0, 0};
  ASSERT_OK(run(OC_OP_NLL_LOSS, in, 2, out, 1, none, 3));
  ck_assert(((float *)y.data)[0] == 1.0f && ((float *)y.data)[1] == 0.5f);
  free(y.data);
  /* Target at -inf: +inf, and the mean is +inf too (not NaN). */
  t[1] = 0;
  t[0] = 1;
  ASSERT_OK(run(OC_OP_NLL_LOSS, in, 2, out, 1, none, 3));
  ck_assert(isinf(((float *)y.data)[0]) && ((float *)y.data)[0] > 0);
  free(y.data);
  ASSERT_OK(run(OC_OP_NLL_LOSS, in, 2, out, 1, mean, 3));
  ck_assert(isinf(((float *)y.data)[0]) && ((float *)y.data)[0] > 0);
  free(y.data);
  /* Every label ignored: none gives zeros, sum 0, mean NaN (0/0, as ONNX). */
  int64_t t_ign[2] = {-100, -100};
  tt.data = t_ign;
  int64_t ign_none[3] = {0, 1, -100}, ign_sum[3] = {1, 1, -100}, ign_mean[3] = {2, 1, -100};
  ASSERT_OK(run(OC_OP_NLL_LOSS, in, 2, out, 1, ign_none, 3));
  ck_assert(((float *)y.data)[0] == 0.0f && ((float *)y.data)[1] == 0.0f);
  free(y.data);
  ASSERT_OK(run(OC_OP_NLL_LOSS, in, 2, out, 1, ign_sum, 3));
  ck_assert(((float *)y.data)[0] == 0.0f);
  free(y.data);
  ASSERT_OK(run(OC_OP_NLL_LOSS, in, 2, out, 1, ign_mean, 3));
  ck_assert(isnan(((float *)y.data)[0]));
  free(y.data);
  /* An ignored element's NaN score does not leak into the result. */
  float xn[6] = {NAN, NAN, NAN, -1.0f, -2.0f, -3.0f};
  int64_t t_mix[2] = {-100, 2};
  xt.data = xn;
  tt.data = t_mix;
  ASSERT_OK(run(OC_OP_NLL_LOSS, in, 2, out, 1, ign_mean, 3));
  ck_assert(((float *)y.data)[0] == 3.0f);
  free(y.data);
  /* A NaN at the target propagates. */
  t_mix[0] = 1;
  ASSERT_OK(run(OC_OP_NLL_LOSS, in, 2, out, 1, ign_sum, 3));
  ck_assert(isnan(((float *)y.data)[0]));
  free(y.data);
  /* Empty: N = 0. */
  int64_t xd0[2] = {0, 3}, td0[1] = {0};
  oc_tensor_t x0 = tensor(OC_DTYPE_FLOAT32, 2, xd0, x), t0 = tensor(OC_DTYPE_INT64, 1, td0, t);
  oc_tensor_t *in0[2] = {&x0, &t0};
  ASSERT_OK(run(OC_OP_NLL_LOSS, in0, 2, out, 1, none, 3));
  ck_assert_int_eq(y.rank, 1);
  ck_assert_int_eq(y.dims[0], 0);
  free(y.data);
  ASSERT_OK(run(OC_OP_NLL_LOSS, in0, 2, out, 1, sum, 3));
  ck_assert(((float *)y.data)[0] == 0.0f);
  free(y.data);
  ASSERT_OK(run(OC_OP_NLL_LOSS, in0, 2, out, 1, mean, 3));
  ck_assert(isnan(((float *)y.data)[0]));
  free(y.data);
}
END_TEST

/* Lowers SoftmaxCrossEntropyLoss on constants (folded end to end) and checks
 * loss and log_prob against the double reference. */
static void check_sce(int rank, const int64_t *xd, const float *x, const int64_t *t,
                      const float *w, const char *reduction, int has_ignore, int64_t ignore,
                      int with_log_prob, const char *what) {
  int64_t n = xd[0], c = xd[1], d = numel(rank - 2, xd + 2), td[OC_MAX_RANK];
  td[0] = n;
  for (int i = 2; i < rank; i++) td[i - 1] = xd[i];
  lg_t l = lg_new(13, "SoftmaxCrossEntropyLoss");
  lg_in(&l, "x", OC_DTYPE_FLOAT32, rank, xd, x);
  lg_in(&l, "t", OC_DTYPE_INT64, rank - 1, td, t);
  if (w) lg_in(&l, "w", OC_DTYPE_FLOAT32, 1, &c, w);
  lg_out(&l, "loss");
  if (with_log_prob) lg_out(&l, "lp");
  lg_str(&l, "reduction", reduction);
  if (has_ignore) lg_int(&l, "ignore_index", ignore);
  oc_status_t s = lg_lower(&l);
  ck_assert_msg(s == OC_OK, "%s: %s", what, oc_status_message(s));
  int red = strcmp(reduction, "none") == 0 ? 0 : strcmp(reduction, "sum") == 0 ? 1 : 2;
  double *want = malloc(sizeof(double) * (size_t)(n * d + 1));
  double *lp = malloc(sizeof(double) * (size_t)(n * c * d + 1));
  ref_nll(want, lp, x, t, w, n, c, d, red, has_ignore, ignore, 1);
  const oc_tensor_t *loss = lg_const(&l, "loss");
  expect_dims(loss, red == 0 ? rank - 1 : 0, td, what);
  expect_close(loss->data, want, red == 0 ? n * d : 1, 1e-5, what);
  if (with_log_prob) {
    const oc_tensor_t *lpt = lg_const(&l, "lp");
    expect_dims(lpt, rank, xd, what);
    expect_close(lpt->data, lp, n * c * d, 1e-5, what);
  }
  free(want);
  free(lp);
  oc_graph_free(l.g);
}

START_TEST(forward_sce) {
  /* k-dim, weighted, ignore index, every reduction. */
  int64_t xd[4] = {3, 5, 2, 3};
  float *x = rand_floats(3 * 5 * 6), w[5] = {0.5f, 1.0f, 2.0f, 0.25f, 1.5f};
  int64_t t[18];
  for (int i = 0; i < 18; i++) t[i] = (int64_t)(rnd() % 5);
  t[4] = -1;
  t[11] = -1;
  const char *reds[3] = {"none", "sum", "mean"};
  for (int r = 0; r < 3; r++) {
    check_sce(4, xd, x, t, w, reds[r], 1, -1, 1, "sce NCd1d2 weighted ignore");
    check_sce(4, xd, x, t, NULL, reds[r], 1, -1, 0, "sce NCd1d2 ignore");
  }
  for (int i = 0; i < 18; i++) t[i] = (int64_t)(rnd() % 5);
  check_sce(4, xd, x, t, NULL, "mean", 0, 0, 1, "sce NCd1d2 plain");
  check_sce(2, xd, x, t, w, "mean", 0, 0, 1, "sce NC weighted");
  free(x);
}
END_TEST

/* NT-Xent as PyTorch exports it: the similarity matrix with -inf on the
 * diagonal (masked_fill via Where), labels i <-> i + B. The -inf entries get
 * log_prob exactly -inf and probability 0; the loss stays finite. */
START_TEST(forward_sce_masked) {
  enum { B2 = 6 };
  int64_t xd[2] = {B2, B2};
  float x[B2 * B2];
  int64_t t[B2];
  for (int i = 0; i < B2; i++) {
    for (int j = 0; j < B2; j++) x[i * B2 + j] = i == j ? -INFINITY : 2.0f * frand();
    t[i] = (i + B2 / 2) % B2;
  }
  check_sce(2, xd, x, t, NULL, "mean", 1, -100, 1, "nt-xent");
  lg_t l = lg_new(13, "SoftmaxCrossEntropyLoss");
  lg_in(&l, "x", OC_DTYPE_FLOAT32, 2, xd, x);
  lg_in(&l, "t", OC_DTYPE_INT64, 1, xd, t);
  lg_out(&l, "loss");
  lg_out(&l, "lp");
  lg_str(&l, "reduction", "none");
  ASSERT_OK(lg_lower(&l));
  const float *lp = lg_const(&l, "lp")->data, *loss = lg_const(&l, "loss")->data;
  for (int i = 0; i < B2; i++) {
    ck_assert_msg(isfinite(loss[i]), "loss[%d] = %g", i, loss[i]);
    double psum = 0;
    for (int j = 0; j < B2; j++) {
      float v = lp[i * B2 + j];
      if (i == j)
        ck_assert_msg(isinf(v) && v < 0, "log_prob[%d,%d] = %g, expected -inf", i, j, v);
      else
        ck_assert_msg(isfinite(v), "log_prob[%d,%d] = %g", i, j, v);
      psum += exp((double)v);
    }
    ck_assert_msg(fabs(psum - 1.0) < 1e-5, "row %d: probabilities sum to %g", i, psum);
  }
  oc_graph_free(l.g);
  /* The target itself masked: loss +inf (as PyTorch), no NaN. */
  t[2] = 2;
  check_sce(2, xd, x, t, NULL, "none", 0, 0, 0, "target at -inf");
  check_sce(2, xd, x, t, NULL, "mean", 0, 0, 0, "target at -inf, mean");
  /* Large logits: the max is subtracted, no overflow. */
  float big[4] = {1000.0f, 999.0f, -1000.0f, 0.0f};
  int64_t bd[2] = {2, 2}, bt[2] = {1, 0};
  check_sce(2, bd, big, bt, NULL, "none", 0, 0, 1, "large logits");
}
END_TEST

START_TEST(forward_einsum_diagonal) {
  /* "iji->ij" on x (3, 2, 3) against a direct loop, int64 to check bytes. */
  int64_t xd[3] = {3, 2, 3};
  int64_t x[18];
  for (int i = 0; i < 18; i++) x[i] = i * 7 - 3;
  oc_tensor_t xt = tensor(OC_DTYPE_INT64, 3, xd, x), y;
  oc_tensor_t *in[1] = {&xt}, *out[1] = {&y};
  int64_t ints[4] = {2, 0, 1, 0};
  ASSERT_OK(run(OC_OP_EINSUM_DIAGONAL, in, 1, out, 1, ints, 4));
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 2; j++)
      ck_assert_int_eq(((int64_t *)y.data)[i * 2 + j], x[(i * 2 + j) * 3 + i]);
  free(y.data);
  /* Transpose through the map: y[j, i] = x[i, j] with map [1, 0]. */
  int64_t d23[2] = {2, 3};
  float f[6] = {0, 1, 2, 3, 4, 5};
  oc_tensor_t ft = tensor(OC_DTYPE_FLOAT32, 2, d23, f);
  oc_tensor_t *fin[1] = {&ft};
  int64_t tr[3] = {2, 1, 0};
  ASSERT_OK(run(OC_OP_EINSUM_DIAGONAL, fin, 1, out, 1, tr, 3));
  const float want[6] = {0, 3, 1, 4, 2, 5};
  for (int i = 0; i < 6; i++) ck_assert(((float *)y.data)[i] == want[i]);
  free(y.data);
  /* Empty and bool. */
  int64_t d00[2] = {0, 0};
  oc_tensor_t e = tensor(OC_DTYPE_BOOL, 2, d00, f);
  oc_tensor_t *ein[1] = {&e};
  int64_t ii[3] = {1, 0, 0};
  ASSERT_OK(run(OC_OP_EINSUM_DIAGONAL, ein, 1, out, 1, ii, 3));
  ck_assert(y.rank == 1 && y.dims[0] == 0);
  free(y.data);
}
END_TEST

START_TEST(forward_einsum) {
  float *a = rand_floats(256), *b = rand_floats(256), *c = rand_floats(256);
  struct {
    const char *eq;
    int n_ops, rank[3];
    int64_t dims[3][4];
    const char *ref_terms[3];
    const char *ref_out;
  } cases[] = {
      {"ij->ji", 1, {2}, {{3, 4}}, {"ij"}, "ji"},
      {"ij->i", 1, {2}, {{3, 4}}, {"ij"}, "i"},
      {"ij->", 1, {2}, {{3, 4}}, {"ij"}, ""},
      {"ij", 1, {2}, {{3, 4}}, {"ij"}, "ij"},
      {"ji", 1, {2}, {{3, 4}}, {"ji"}, "ij"},
      {"ii->i", 1, {2}, {{4, 4}}, {"ii"}, "i"},
      {"ii", 1, {2}, {{4, 4}}, {"ii"}, ""},
      {"iij->ji", 1, {3}, {{3, 3, 2}}, {"iij"}, "ji"},
      {"...ii ->...i", 1, {3}, {{3, 5, 5}}, {"zii"}, "zi"},
      {"i...i", 1, {3}, {{4, 2, 4}}, {"iai"}, "a"},
      {"i,i", 2, {1, 1}, {{5}, {5}}, {"i", "i"}, ""},
      {"i,j", 2, {1, 1}, {{2}, {3}}, {"i", "j"}, "ij"},
      {"i,j->ji", 2, {1, 1}, {{2}, {3}}, {"i", "j"}, "ji"},
      {"ij,jk->ik", 2, {2, 2}, {{3, 4}, {4, 5}}, {"ij", "jk"}, "ik"},
      {"ij,jk", 2, {2, 2}, {{3, 4}, {4, 5}}, {"ij", "jk"}, "ik"},
      {"ij,kj->ik", 2, {2, 2}, {{3, 4}, {5, 4}}, {"ij", "kj"}, "ik"},
      {"bij, bjk -> bik", 2, {3, 3}, {{5, 2, 3}, {5, 3, 4}}, {"bij", "bjk"}, "bik"},
      {"bij,bjk->bki", 2, {3, 3}, {{2, 2, 3}, {2, 3, 4}}, {"bij", "bjk"}, "bki"},
      {"ba,ac", 2, {2, 2}, {{2, 3}, {3, 4}}, {"ba", "ac"}, "bc"},
      {"Ab,bC", 2, {2, 2}, {{2, 3}, {3, 4}}, {"Ab", "bC"}, "AC"},
      {"ij,ij->ij", 2, {2, 2}, {{3, 4}, {3, 4}}, {"ij", "ij"}, "ij"},
      {"ij,ij->ij", 2, {2, 2}, {{1, 4}, {3, 4}}, {"ij", "ij"}, "ij"},
      {"ij,kj->", 2, {2, 2}, {{2, 1}, {4, 3}}, {"ij", "kj"}, ""},
      {"...ij,...jk->...ik", 2, {4, 3}, {{2, 1, 3, 4}, {5, 4, 2}}, {"abij", "bjk"}, "abik"},
      {"...i,...i->...", 2, {3, 2}, {{2, 1, 3}, {5, 3}}, {"abi", "bi"}, "ab"},
      {"bn,anm,bm->ba", 3, {2, 3, 2}, {{2, 3}, {4, 3, 5}, {2, 5}}, {"bn", "anm", "bm"}, "ba"},
      {"abc,cd,de->ae", 3, {3, 2, 2}, {{2, 3, 4}, {4, 2}, {2, 3}}, {"abc", "cd", "de"}, "ae"},
      {"ii,ij->j", 2, {2, 2}, {{3, 3}, {3, 2}}, {"ii", "ij"}, "j"},
      {"ijk,kji->", 2, {3, 3}, {{2, 3, 4}, {4, 3, 2}}, {"ijk", "kji"}, ""},
      {"ij,jk->ik", 2, {2, 2}, {{3, 0}, {0, 5}}, {"ij", "jk"}, "ik"},
      {"ij,jk->ik", 2, {2, 2}, {{0, 2}, {2, 5}}, {"ij", "jk"}, "ik"},
      {",i->i", 2, {0, 1}, {{0}, {4}}, {"", "i"}, "i"},
      {"->", 1, {0}, {{0}}, {""}, ""},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    float *data[3] = {a, b, c};
    oc_tensor_t t[3];
    oc_tensor_t *ops[3];
    for (int i = 0; i < cases[k].n_ops; i++) {
      t[i] = tensor(OC_DTYPE_FLOAT32, cases[k].rank[i], cases[k].dims[i], data[i]);
      ops[i] = &t[i];
    }
    check_einsum(cases[k].eq, cases[k].n_ops, ops, cases[k].ref_terms, cases[k].ref_out);
  }
  /* Integers go through Mul and ReduceSum. */
  int64_t ia[12], ib[20];
  int32_t ja[12], jb[20];
  for (int i = 0; i < 12; i++) ja[i] = (int32_t)(ia[i] = (int64_t)(rnd() % 19) - 9);
  for (int i = 0; i < 20; i++) jb[i] = (int32_t)(ib[i] = (int64_t)(rnd() % 19) - 9);
  int64_t da[2] = {3, 4}, db[2] = {4, 5}, dd[2] = {4, 4}, d3[3] = {1, 3, 4};
  oc_tensor_t A = tensor(OC_DTYPE_INT64, 2, da, ia), B = tensor(OC_DTYPE_INT64, 2, db, ib);
  oc_tensor_t *ab[2] = {&A, &B};
  const char *mm[2] = {"ij", "jk"};
  check_einsum("ij,jk->ik", 2, ab, mm, "ik");
  check_einsum("ij,jk->ki", 2, ab, mm, "ki");
  const char *outer[2] = {"ij", "jk"};
  check_einsum("ij,jk->ijk", 2, ab, outer, "ijk");
  oc_tensor_t D = tensor(OC_DTYPE_INT64, 2, dd, ib);
  oc_tensor_t *dpt[1] = {&D};
  const char *tr[1] = {"ii"};
  check_einsum("ii", 1, dpt, tr, "");
  oc_tensor_t A32 = tensor(OC_DTYPE_INT32, 3, d3, ja), B32 = tensor(OC_DTYPE_INT32, 2, db, jb);
  oc_tensor_t *ab32[2] = {&A32, &B32};
  const char *bmm[2] = {"bij", "jk"};
  check_einsum("bij,jk->bik", 2, ab32, bmm, "bik");
  free(a);
  free(b);
  free(c);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* errors                                                                   */
/* ------------------------------------------------------------------------ */

START_TEST(errors_nll_infer) {
  oc_tensor_t y;
  oc_tensor_t *out[1] = {&y};
  int64_t xd[3] = {2, 4, 3}, td[2] = {2, 3}, wd[1] = {4}, bad_td[2] = {2, 4}, bad_wd[1] = {5};
  oc_tensor_t x = tensor(OC_DTYPE_FLOAT32, 3, xd, NULL), t = tensor(OC_DTYPE_INT64, 2, td, NULL);
  oc_tensor_t w = tensor(OC_DTYPE_FLOAT32, 1, wd, NULL);
  oc_tensor_t *in[3] = {&x, &t, &w};
  int64_t ok[3] = {2, 1, -100};
  ASSERT_OK(infer(OC_OP_NLL_LOSS, in, 3, out, 1, ok, 3, NULL));
  /* Hostile ints. */
  int64_t r3[3] = {3, 0, 0}, rneg[3] = {-1, 0, 0}, h2[3] = {0, 2, 0}, big[3] = {INT64_MIN, 0, 0};
  expect_error(infer(OC_OP_NLL_LOSS, in, 3, out, 1, r3, 3, NULL), OC_STATUS_INVALID_ARGUMENT,
               "reduction", "reduction 3");
  expect_error(infer(OC_OP_NLL_LOSS, in, 3, out, 1, rneg, 3, NULL), OC_STATUS_INVALID_ARGUMENT,
               "reduction", "reduction -1");
  expect_error(infer(OC_OP_NLL_LOSS, in, 3, out, 1, big, 3, NULL), OC_STATUS_INVALID_ARGUMENT,
               "reduction", "reduction INT64_MIN");
  expect_error(infer(OC_OP_NLL_LOSS, in, 3, out, 1, h2, 3, NULL), OC_STATUS_INVALID_ARGUMENT,
               "has_ignore", "has_ignore 2");
  expect_error(infer(OC_OP_NLL_LOSS, in, 3, out, 1, ok, 2, NULL), OC_STATUS_INVALID_ARGUMENT,
               "ints", "two ints");
  expect_error(infer(OC_OP_NLL_LOSS, in, 3, out, 1, NULL, 0, NULL), OC_STATUS_INVALID_ARGUMENT,
               "ints", "no ints");
  /* Shapes and dtypes. */
  oc_tensor_t t_bad = tensor(OC_DTYPE_INT64, 2, bad_td, NULL);
  oc_tensor_t w_bad = tensor(OC_DTYPE_FLOAT32, 1, bad_wd, NULL);
  oc_tensor_t *in_tb[3] = {&x, &t_bad, &w}, *in_wb[3] = {&x, &t, &w_bad};
  expect_error(infer(OC_OP_NLL_LOSS, in_tb, 3, out, 1, ok, 3, NULL), OC_STATUS_INVALID_ARGUMENT,
               "target", "target dims");
  expect_error(infer(OC_OP_NLL_LOSS, in_wb, 3, out, 1, ok, 3, NULL), OC_STATUS_INVALID_ARGUMENT,
               "weight", "weight dims");
  oc_tensor_t x1 = tensor(OC_DTYPE_FLOAT32, 1, wd, NULL);
  oc_tensor_t t0 = tensor(OC_DTYPE_INT64, 0, NULL, NULL);
  oc_tensor_t *in_r1[2] = {&x1, &t0};
  expect_error(infer(OC_OP_NLL_LOSS, in_r1, 2, out, 1, ok, 3, NULL), OC_STATUS_INVALID_ARGUMENT,
               "rank", "rank-1 input");
  oc_tensor_t t_rank = tensor(OC_DTYPE_INT64, 1, td, NULL);
  oc_tensor_t *in_tr[2] = {&x, &t_rank};
  expect_error(infer(OC_OP_NLL_LOSS, in_tr, 2, out, 1, ok, 3, NULL), OC_STATUS_INVALID_ARGUMENT,
               "target", "target rank");
  oc_tensor_t x64 = tensor(OC_DTYPE_FLOAT64, 3, xd, NULL);
  oc_tensor_t tf = tensor(OC_DTYPE_FLOAT32, 2, td, NULL);
  oc_tensor_t *in_x64[2] = {&x64, &t}, *in_tf[2] = {&x, &tf};
  expect_error(infer(OC_OP_NLL_LOSS, in_x64, 2, out, 1, ok, 3, NULL), OC_STATUS_UNSUPPORTED,
               "double", "float64 input");
  expect_error(infer(OC_OP_NLL_LOSS, in_tf, 2, out, 1, ok, 3, NULL), OC_STATUS_UNSUPPORTED,
               "target", "float target");
  oc_tensor_t wi = tensor(OC_DTYPE_INT64, 1, wd, NULL);
  oc_tensor_t *in_wi[3] = {&x, &t, &wi};
  expect_error(infer(OC_OP_NLL_LOSS, in_wi, 3, out, 1, ok, 3, NULL), OC_STATUS_UNSUPPORTED,
               "weight", "int weight");
  /* Huge dims whose product overflows (after a zero dim the size check
   * cannot bound the rest). */
  int64_t hx[6] = {0, 4, OC_MAX_DIM, OC_MAX_DIM, OC_MAX_DIM, 2};
  int64_t ht[5] = {0, OC_MAX_DIM, OC_MAX_DIM, OC_MAX_DIM, 2};
  oc_tensor_t xh = tensor(OC_DTYPE_FLOAT32, 6, hx, NULL), th = tensor(OC_DTYPE_INT64, 5, ht, NULL);
  oc_tensor_t *in_h[2] = {&xh, &th};
  oc_status_t s = infer(OC_OP_NLL_LOSS, in_h, 2, out, 1, ok, 3, NULL);
  ck_assert(s != OC_OK);
  oc_status_free(s);
}
END_TEST

START_TEST(errors_nll_labels) {
  int64_t xd[3] = {2, 3, 2}, td[2] = {2, 2};
  float x[12] = {0};
  int64_t t[4] = {0, 1, 2, 3};
  int32_t t32[4] = {0, -1, 2, 1};
  oc_tensor_t xt = tensor(OC_DTYPE_FLOAT32, 3, xd, x), tt = tensor(OC_DTYPE_INT64, 2, td, t), y;
  oc_tensor_t *in[2] = {&xt, &tt}, *out[1] = {&y};
  int64_t plain[3] = {1, 0, 0}, ign[3] = {1, 1, -100};
  expect_error(run(OC_OP_NLL_LOSS, in, 2, out, 1, plain, 3), OC_STATUS_NUMERIC, "target[1,1] is 3",
               "label == C");
  free(y.data);
  expect_error(run(OC_OP_NLL_LOSS, in, 2, out, 1, ign, 3), OC_STATUS_NUMERIC, "ignore_index -100",
               "label == C with an ignore index");
  free(y.data);
  oc_tensor_t t32t = tensor(OC_DTYPE_INT32, 2, td, t32);
  oc_tensor_t *in32[2] = {&xt, &t32t};
  expect_error(run(OC_OP_NLL_LOSS, in32, 2, out, 1, plain, 3), OC_STATUS_NUMERIC,
               "target[0,1] is -1", "negative label");
  free(y.data);
  /* The same -1 is fine as the ignore index; so is an ignore index >= C. */
  int64_t ign_m1[3] = {1, 1, -1};
  ASSERT_OK(run(OC_OP_NLL_LOSS, in32, 2, out, 1, ign_m1, 3));
  free(y.data);
  int64_t ign_3[3] = {1, 1, 3};
  ASSERT_OK(run(OC_OP_NLL_LOSS, in, 2, out, 1, ign_3, 3));
  free(y.data);
  /* A huge label. */
  t[0] = INT64_MAX;
  expect_error(run(OC_OP_NLL_LOSS, in, 2, out, 1, ign_3, 3), OC_STATUS_NUMERIC,
               "9223372036854775807", "INT64_MAX label");
  free(y.data);
  /* C = 0: nothing but ignored labels is valid. */
  int64_t xd0[2] = {2, 0}, td0[1] = {2}, t0[2] = {5, 0};
  oc_tensor_t x0 = tensor(OC_DTYPE_FLOAT32, 2, xd0, x), tz = tensor(OC_DTYPE_INT64, 1, td0, t0);
  oc_tensor_t *in0[2] = {&x0, &tz};
  int64_t ign5[3] = {2, 1, 5};
  expect_error(run(OC_OP_NLL_LOSS, in0, 2, out, 1, ign5, 3), OC_STATUS_NUMERIC, "target[1] is 0",
               "C = 0");
  free(y.data);
}
END_TEST

START_TEST(errors_einsum_diagonal) {
  oc_tensor_t y;
  oc_tensor_t *out[1] = {&y};
  int64_t d34[2] = {3, 4}, d33[2] = {3, 3};
  oc_tensor_t a = tensor(OC_DTYPE_FLOAT32, 2, d34, NULL);
  oc_tensor_t sq = tensor(OC_DTYPE_FLOAT32, 2, d33, NULL);
  oc_tensor_t *in[1] = {&a}, *isq[1] = {&sq};
  int64_t mismatch[3] = {1, 0, 0}, unmapped[3] = {3, 0, 1}, neg_m[3] = {-1, 0, 0};
  int64_t big_m[3] = {INT64_MAX, 0, 0}, out_of[3] = {2, 0, 2}, neg_map[3] = {2, 0, -1};
  int64_t huge_map[3] = {2, 0, INT64_MIN}, ok[3] = {1, 0, 0};
  expect_error(infer(OC_OP_EINSUM_DIAGONAL, in, 1, out, 1, mismatch, 3, NULL),
               OC_STATUS_INVALID_ARGUMENT, "different dims", "diagonal of 3x4");
  expect_error(infer(OC_OP_EINSUM_DIAGONAL, isq, 1, out, 1, unmapped, 3, NULL),
               OC_STATUS_INVALID_ARGUMENT, NULL, "m 3 of rank 2");
  int64_t unmapped2[3] = {2, 0, 0};
  expect_error(infer(OC_OP_EINSUM_DIAGONAL, isq, 1, out, 1, unmapped2, 3, NULL),
               OC_STATUS_INVALID_ARGUMENT, "not mapped", "unmapped output axis");
  expect_error(infer(OC_OP_EINSUM_DIAGONAL, isq, 1, out, 1, neg_m, 3, NULL),
               OC_STATUS_INVALID_ARGUMENT, "output rank", "m -1");
  expect_error(infer(OC_OP_EINSUM_DIAGONAL, isq, 1, out, 1, big_m, 3, NULL),
               OC_STATUS_INVALID_ARGUMENT, "output rank", "m huge");
  expect_error(infer(OC_OP_EINSUM_DIAGONAL, isq, 1, out, 1, out_of, 3, NULL),
               OC_STATUS_INVALID_ARGUMENT, "map entry", "map 2 of m 2");
  expect_error(infer(OC_OP_EINSUM_DIAGONAL, isq, 1, out, 1, neg_map, 3, NULL),
               OC_STATUS_INVALID_ARGUMENT, "map entry", "negative map");
  expect_error(infer(OC_OP_EINSUM_DIAGONAL, isq, 1, out, 1, huge_map, 3, NULL),
               OC_STATUS_INVALID_ARGUMENT, "map entry", "INT64_MIN map");
  expect_error(infer(OC_OP_EINSUM_DIAGONAL, isq, 1, out, 1, ok, 2, NULL),
               OC_STATUS_INVALID_ARGUMENT, "ints", "too few ints");
  expect_error(infer(OC_OP_EINSUM_DIAGONAL, isq, 1, out, 1, NULL, 0, NULL),
               OC_STATUS_INVALID_ARGUMENT, "ints", "no ints");
}
END_TEST

/* Lowers a one- or two-input Einsum with run-time float inputs and expects
 * an error. */
static void expect_einsum_error(const char *eq, int dtype, int n_ops, const int *rank,
                                int64_t dims[][4], oc_status_code_t code, const char *needle) {
  lg_t l = lg_new(12, "Einsum");
  const char *names[3] = {"a", "b", "c"};
  for (int i = 0; i < n_ops; i++) lg_in(&l, names[i], dtype, rank[i], dims[i], NULL);
  lg_out(&l, "y");
  if (eq) lg_str(&l, "equation", eq);
  expect_error(lg_lower(&l), code, needle, eq ? eq : "(no equation)");
  oc_graph_free(l.g);
}

START_TEST(errors_lowerings) {
  int r2[2] = {2, 2};
  int64_t d[2][4] = {{3, 4}, {4, 5}};
  /* Dtypes: the ONNX node tests use double, refused as UNSUPPORTED. */
  expect_einsum_error("ij,jk->ik", OC_DTYPE_FLOAT64, 2, r2, d, OC_STATUS_UNSUPPORTED, "double");
  expect_einsum_error("ij->ji", OC_DTYPE_BOOL, 1, r2, d, OC_STATUS_UNSUPPORTED, "bool");
  /* Equations. */
  expect_einsum_error(NULL, OC_DTYPE_FLOAT32, 1, r2, d, OC_STATUS_INVALID_ARGUMENT, "equation");
  expect_einsum_error("ij,jk->ik", OC_DTYPE_FLOAT32, 1, r2, d, OC_STATUS_INVALID_ARGUMENT,
                      "terms");
  expect_einsum_error("ij->ik", OC_DTYPE_FLOAT32, 1, r2, d, OC_STATUS_INVALID_ARGUMENT,
                      "no input term");
  expect_einsum_error("ij->ii", OC_DTYPE_FLOAT32, 1, r2, d, OC_STATUS_INVALID_ARGUMENT, "repeats");
  expect_einsum_error("i.j->ij", OC_DTYPE_FLOAT32, 1, r2, d, OC_STATUS_INVALID_ARGUMENT, "'.'");
  expect_einsum_error("i..j", OC_DTYPE_FLOAT32, 1, r2, d, OC_STATUS_INVALID_ARGUMENT, "'.'");
  expect_einsum_error("......", OC_DTYPE_FLOAT32, 1, r2, d, OC_STATUS_INVALID_ARGUMENT, "two");
  expect_einsum_error("ij->i->j", OC_DTYPE_FLOAT32, 1, r2, d, OC_STATUS_INVALID_ARGUMENT, "->");
  expect_einsum_error("i-j", OC_DTYPE_FLOAT32, 1, r2, d, OC_STATUS_INVALID_ARGUMENT, "'-'");
  expect_einsum_error("i1", OC_DTYPE_FLOAT32, 1, r2, d, OC_STATUS_INVALID_ARGUMENT, "'1'");
  expect_einsum_error("ijk", OC_DTYPE_FLOAT32, 1, r2, d, OC_STATUS_INVALID_ARGUMENT, "rank 2");
  expect_einsum_error("i", OC_DTYPE_FLOAT32, 1, r2, d, OC_STATUS_INVALID_ARGUMENT, "rank 2");
  expect_einsum_error("ij...k", OC_DTYPE_FLOAT32, 1, r2, d, OC_STATUS_INVALID_ARGUMENT, "rank 2");
  expect_einsum_error("ij,ij->ij", OC_DTYPE_FLOAT32, 2, r2, d, OC_STATUS_INVALID_ARGUMENT,
                      "dims");
  expect_einsum_error("ii", OC_DTYPE_FLOAT32, 1, r2, d, OC_STATUS_INVALID_ARGUMENT, "dims 3 and 4");
  expect_einsum_error("...i->i", OC_DTYPE_FLOAT32, 1, r2, d, OC_STATUS_INVALID_ARGUMENT, "...");
  expect_einsum_error("abcdefghi", OC_DTYPE_FLOAT32, 1, r2, d, OC_STATUS_RESOURCE_LIMIT, "indices");
  /* An output, or an intermediate, of rank above 8. */
  int r5[4] = {5, 5, 5, 5};
  expect_einsum_error("abcd,efgh->abcdefgh", OC_DTYPE_FLOAT32, 2, r2, d, OC_STATUS_INVALID_ARGUMENT,
                      "rank");
  {
    lg_t l = lg_new(12, "Einsum");
    int64_t d5x[5] = {2, 2, 2, 2, 2};
    const char *names[4] = {"a", "b", "c", "e"};
    for (int i = 0; i < 4; i++) lg_in(&l, names[i], OC_DTYPE_FLOAT32, r5[i], d5x, NULL);
    lg_out(&l, "y");
    lg_str(&l, "equation", "abcde,fghij,abcde,fghij->");
    expect_error(lg_lower(&l), OC_STATUS_RESOURCE_LIMIT, "rank 10", "rank-10 intermediate");
    oc_graph_free(l.g);
    l = lg_new(12, "Einsum");
    for (int i = 0; i < 2; i++) lg_in(&l, names[i], OC_DTYPE_FLOAT32, r5[i], d5x, NULL);
    lg_out(&l, "y");
    lg_str(&l, "equation", "abcde,fghij->abcdefghij");
    expect_error(lg_lower(&l), OC_STATUS_RESOURCE_LIMIT, "more than 8 indices", "rank-10 output");
    oc_graph_free(l.g);
  }
  /* Mixed dtypes. */
  {
    lg_t l = lg_new(12, "Einsum");
    lg_in(&l, "a", OC_DTYPE_FLOAT32, 2, d[0], NULL);
    lg_in(&l, "b", OC_DTYPE_INT64, 2, d[1], NULL);
    lg_out(&l, "y");
    lg_str(&l, "equation", "ij,jk");
    expect_error(lg_lower(&l), OC_STATUS_INVALID_ARGUMENT, "dtypes", "mixed dtypes");
    oc_graph_free(l.g);
  }
  /* Loss lowerings. */
  int64_t xd[2] = {3, 5}, td[1] = {3};
  {
    lg_t l = lg_new(13, "SoftmaxCrossEntropyLoss");
    lg_in(&l, "x", OC_DTYPE_FLOAT64, 2, xd, NULL);
    lg_in(&l, "t", OC_DTYPE_INT64, 1, td, NULL);
    lg_out(&l, "loss");
    expect_error(lg_lower(&l), OC_STATUS_UNSUPPORTED, "double", "sce float64");
    oc_graph_free(l.g);
  }
  {
    lg_t l = lg_new(13, "NegativeLogLikelihoodLoss");
    lg_in(&l, "x", OC_DTYPE_FLOAT32, 2, xd, NULL);
    lg_in(&l, "t", OC_DTYPE_INT64, 1, td, NULL);
    lg_out(&l, "loss");
    lg_str(&l, "reduction", "average");
    expect_error(lg_lower(&l), OC_STATUS_INVALID_ARGUMENT, "average", "reduction average");
    oc_graph_free(l.g);
  }
  {
    lg_t l = lg_new(13, "NegativeLogLikelihoodLoss");
    lg_in(&l, "x", OC_DTYPE_FLOAT32, 2, xd, NULL);
    lg_in(&l, "t", OC_DTYPE_FLOAT32, 1, td, NULL);
    lg_out(&l, "loss");
    expect_error(lg_lower(&l), OC_STATUS_INVALID_ARGUMENT, "target", "float target");
    oc_graph_free(l.g);
  }
  {
    lg_t l = lg_new(13, "SoftmaxCrossEntropyLoss");
    lg_in(&l, "x", OC_DTYPE_FLOAT32, 1, xd, NULL);
    lg_in(&l, "t", OC_DTYPE_INT64, 0, td, NULL);
    lg_out(&l, "loss");
    expect_error(lg_lower(&l), OC_STATUS_INVALID_ARGUMENT, "rank 1", "sce rank 1");
    oc_graph_free(l.g);
  }
  {
    /* ignore_index of the wrong attribute type. */
    lg_t l = lg_new(13, "SoftmaxCrossEntropyLoss");
    lg_in(&l, "x", OC_DTYPE_FLOAT32, 2, xd, NULL);
    lg_in(&l, "t", OC_DTYPE_INT64, 1, td, NULL);
    lg_out(&l, "loss");
    lg_str(&l, "ignore_index", "x");
    expect_error(lg_lower(&l), OC_STATUS_INVALID_ARGUMENT, "ignore_index", "string ignore_index");
    oc_graph_free(l.g);
  }
  {
    /* A folded SCE with a bad constant label fails to compile, naming it. */
    float x[15] = {0};
    int64_t t[3] = {0, 7, 1};
    lg_t l = lg_new(13, "SoftmaxCrossEntropyLoss");
    lg_in(&l, "x", OC_DTYPE_FLOAT32, 2, xd, x);
    lg_in(&l, "t", OC_DTYPE_INT64, 1, td, t);
    lg_out(&l, "loss");
    expect_error(lg_lower(&l), OC_STATUS_NUMERIC, "target[1] is 7", "folded bad label");
    oc_graph_free(l.g);
  }
}
END_TEST

static Suite *loss_suite(void) {
  Suite *s = suite_create("ops_loss");
  TCase *shape = tcase_create("shape");
  tcase_add_test(shape, shape_nll);
  tcase_add_test(shape, shape_einsum_diagonal);
  tcase_add_test(shape, shape_lowerings);
  suite_add_tcase(s, shape);
  TCase *fwd = tcase_create("forward");
  tcase_add_test(fwd, forward_nll);
  tcase_add_test(fwd, forward_nll_special);
  tcase_add_test(fwd, forward_sce);
  tcase_add_test(fwd, forward_sce_masked);
  tcase_add_test(fwd, forward_einsum_diagonal);
  tcase_add_test(fwd, forward_einsum);
  suite_add_tcase(s, fwd);
  TCase *err = tcase_create("errors");
  tcase_add_test(err, errors_nll_infer);
  tcase_add_test(err, errors_nll_labels);
  tcase_add_test(err, errors_einsum_diagonal);
  tcase_add_test(err, errors_lowerings);
  suite_add_tcase(s, err);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(loss_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
