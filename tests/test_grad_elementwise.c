/*
 * Gradient rules of the elementwise family (compiler/ops/elementwise.c, the
 * UnaryBwd and BroadcastBwd kernels in runtime/ops/elementwise.c): finite
 * differences of double references for every rule, with broadcasting, plus
 * the values PyTorch gives at kinks and edges (ReLU and Clip at the kink,
 * Where with a -inf branch, Sqrt at 0, Max/Min ties, Pow at 0).
 */
#include <check.h>

#include "gradcheck.h"

/* Function codes of the runtime ops Unary and Variadic. */
enum {
  UN_ABS, UN_RECIPROCAL, UN_LOG, UN_SIGMOID, UN_TANH, UN_LEAKY_RELU, UN_ELU, UN_SELU, UN_CELU,
  UN_HARD_SIGMOID, UN_HARD_SWISH, UN_SOFTPLUS, UN_SOFTSIGN, UN_SIGN, UN_FLOOR, UN_CEIL, UN_ROUND,
};
enum { VAR_MAX, VAR_MIN, VAR_SUM, VAR_MEAN };

#define TOL 1e-3

/* --- values ------------------------------------------------------------------- */

static double uniform(double lo, double hi) { return lo + (hi - lo) * (gc_uniform() + 1) / 2; }

/* n values in [lo, hi] at least |margin| away from each of avoid[0..n_avoid). */
static void fill(float *p, int64_t n, double lo, double hi, const double *avoid, int n_avoid,
                 double margin) {
  for (int64_t k = 0; k < n; k++) {
    double v;
    int ok;
    do {
      v = uniform(lo, hi);
      ok = 1;
      for (int j = 0; j < n_avoid; j++) ok &= fabs(v - avoid[j]) >= margin;
    } while (!ok);
    p[k] = (float)v;
  }
}

/* Values in +-[lo, hi] (random sign): away from 0. */
static void fill_nonzero(float *p, int64_t n, double lo, double hi) {
  for (int64_t k = 0; k < n; k++) p[k] = (float)(uniform(lo, hi) * (gc_uniform() < 0 ? -1 : 1));
}

static gc_input_t fin(int rank, const int64_t *dims, const float *data, int diff) {
  gc_input_t t = {OC_DTYPE_FLOAT32, rank, {0}, data, diff};
  for (int d = 0; d < rank; d++) t.dims[d] = dims[d];
  return t;
}

/* Offset in input |t| of output element |i| under numpy broadcasting. */
static int64_t bidx(const gc_input_t *t, const oc_tensor_t *yt, int64_t i) {
  int64_t off = 0, stride = 1;
  for (int d = yt->rank - 1; d >= 0; d--) {
    int64_t c = i % yt->dims[d];
    i /= yt->dims[d];
    int dt = d - (yt->rank - t->rank);
    if (dt < 0) continue;
    if (t->dims[dt] != 1) off += c * stride;
    stride *= t->dims[dt];
  }
  return off;
}

/* --- references ---------------------------------------------------------------- */

typedef struct spec_s {
  int op;
  int fn;
  double alpha, beta;
} spec_t;

static double unary_ref(const spec_t *s, double x) {
  double a = s->alpha, b = s->beta;
  switch (s->op) {
    case OC_OP_RELU: return x < 0 ? 0 : x;
    case OC_OP_EXP: return exp(x);
    case OC_OP_SQRT: return sqrt(x);
    case OC_OP_ERF: return erf(x);
    case OC_OP_NEG: return -x;
    case OC_OP_CAST: return x;
    case OC_OP_CLIP: {
      double v = x < a ? a : x; /* min > max gives max everywhere */
      return v > b ? b : v;
    }
  }
  switch (s->fn) {
    case UN_ABS: return fabs(x);
    case UN_RECIPROCAL: return 1 / x;
    case UN_LOG: return log(x);
    case UN_SIGMOID: return 1 / (1 + exp(-x));
    case UN_TANH: return tanh(x);
    case UN_LEAKY_RELU: return x < 0 ? a * x : x;
    case UN_ELU: return x < 0 ? a * expm1(x) : x;
    case UN_SELU: return b * (x > 0 ? x : a * expm1(x));
    case UN_CELU: return fmax(0, x) + fmin(0, a * expm1(x / a));
    case UN_HARD_SIGMOID: return fmax(0, fmin(1, a * x + b));
    case UN_HARD_SWISH: return x * fmax(0, fmin(1, x / 6 + 0.5));
    case UN_SOFTPLUS: return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
    case UN_SOFTSIGN: return x / (1 + fabs(x));
    case UN_SIGN: return (x > 0) - (x < 0);
    case UN_FLOOR: return floor(x);
    case UN_CEIL: return ceil(x);
    case UN_ROUND: return nearbyint(x);
  }
  return NAN;
}

static void ref_unary(const double *const *in, const gc_input_t *inputs, int n_in, double *out,
                      const oc_tensor_t *yt, const void *user) {
  int64_t n = oc_tensor_numel(yt);
  for (int64_t i = 0; i < n; i++) out[i] = unary_ref(user, in[0][i]);
}

static void ref_binary(const double *const *in, const gc_input_t *inputs, int n_in, double *out,
                       const oc_tensor_t *yt, const void *user) {
  const spec_t *s = user;
  int64_t n = oc_tensor_numel(yt);
  for (int64_t i = 0; i < n; i++) {
    double a = in[0][bidx(&inputs[0], yt, i)], b = in[1][bidx(&inputs[1], yt, i)], y = 0;
    switch (s->op) {
      case OC_OP_ADD: y = a + b; break;
      case OC_OP_SUB: y = a - b; break;
      case OC_OP_MUL: y = a * b; break;
      case OC_OP_DIV: y = a / b; break;
      case OC_OP_POW: y = pow(a, b); break;
      case OC_OP_PRELU: y = a < 0 ? b * a : a; break;
      case OC_OP_MOD: y = fmod(a, b); break;
    }
    out[i] = y;
  }
}

static void ref_where(const double *const *in, const gc_input_t *inputs, int n_in, double *out,
                      const oc_tensor_t *yt, const void *user) {
  int64_t n = oc_tensor_numel(yt);
  for (int64_t i = 0; i < n; i++)
    out[i] = in[0][bidx(&inputs[0], yt, i)] != 0 ? in[1][bidx(&inputs[1], yt, i)]
                                                 : in[2][bidx(&inputs[2], yt, i)];
}

static void ref_variadic(const double *const *in, const gc_input_t *inputs, int n_in, double *out,
                         const oc_tensor_t *yt, const void *user) {
  const spec_t *s = user;
  int64_t n = oc_tensor_numel(yt);
  for (int64_t i = 0; i < n; i++) {
    double y = in[0][bidx(&inputs[0], yt, i)];
    for (int k = 1; k < n_in; k++) {
      double x = in[k][bidx(&inputs[k], yt, i)];
      y = s->fn == VAR_MAX ? fmax(y, x) : s->fn == VAR_MIN ? fmin(y, x) : y + x;
    }
    out[i] = s->fn == VAR_MEAN ? y / n_in : y;
  }
}

/* --- running one op for exact values --------------------------------------------- */

/* Forward + backward of |op| seeded with |seed| (ones when NULL); grads[k]
 * (malloc'd, numel elements) receives the gradient of the k-th
 * differentiable input. */
static void run_grads(int op, const int64_t *ints, int n_ints, const float *floats, int n_floats,
                      const gc_input_t *inputs, int n_in, const float *seed, float **grads) {
  oc_graph_t *g = oc_graph_new();
  int in_v[OC_MAX_OP_INPUTS], params[OC_MAX_OP_INPUTS], gv[OC_MAX_OP_INPUTS], np = 0;
  for (int i = 0; i < n_in; i++) {
    char name[32];
    snprintf(name, sizeof name, "in%d", i);
    in_v[i] = oc_graph_value(g, name);
    oc_status_t s = oc_value_set_const(g, in_v[i], inputs[i].dtype, inputs[i].rank,
                                       inputs[i].dims, inputs[i].data);
    ck_assert_msg(s == OC_OK, "%s", s ? oc_status_message(s) : "");
    if (inputs[i].differentiable) {
      g->values[in_v[i]].kind = OC_VALUE_STATE;
      g->values[in_v[i]].foldable = 0;
      params[np++] = in_v[i];
    }
  }
  int y = oc_graph_value(g, "y");
  oc_status_t s = oc_emit_instr(g, "op", op, n_in, in_v, 1, &y, ints, n_ints, floats, n_floats);
  ck_assert_msg(s == OC_OK, "%s", s ? oc_status_message(s) : "");
  oc_tensor_t yt = g->values[y].type;
  int64_t ny = oc_tensor_numel(&yt);
  int wv = oc_graph_value(g, "W");
  ck_assert(oc_value_set_const(g, wv, OC_DTYPE_FLOAT32, yt.rank, yt.dims, NULL) == OC_OK);
  for (int64_t k = 0; k < ny; k++) ((float *)g->values[wv].type.data)[k] = seed ? seed[k] : 1.0f;
  s = oc_autodiff(g, y, wv, params, np, gv);
  ck_assert_msg(s == OC_OK, "%s", s ? oc_status_message(s) : "");
  void **buf = calloc((size_t)g->n_values + 1, sizeof(void *));
  s = gc_execute(g, buf);
  ck_assert_msg(s == OC_OK, "%s", s ? oc_status_message(s) : "");
  for (int k = 0; k < np; k++) {
    size_t bytes = oc_tensor_bytes(&g->values[params[k]].type);
    grads[k] = malloc(bytes + 4);
    memcpy(grads[k], buf[gv[k]], bytes);
  }
  for (int v = 0; v < g->n_values; v++) free(buf[v]);
  free(buf);
  oc_graph_free(g);
}

#define CHECK(op, ints, n_ints, floats, n_floats, in, n_in, ref, user)                          \
  do {                                                                                       \
    char msg_[512];                                                                          \
    ck_assert_msg(gc_check((op), (ints), (n_ints), (floats), (n_floats), (in), (n_in), (ref), \
                           (user), TOL, msg_, sizeof msg_) == 0,                             \
                  "%s:%d: %s", __FILE__, __LINE__, msg_);                                    \
  } while (0)

/* --- binary ops ------------------------------------------------------------------ */

/* Shape pairs: broadcasting both ways, a rank-0 scalar, equal shapes. */
static const struct {
  int ra;
  int64_t a[3];
  int rb;
  int64_t b[3];
} pairs[] = {
    {3, {2, 3, 4}, 2, {3, 1}}, {3, {2, 3, 4}, 0, {0}},    {2, {3, 1}, 3, {2, 3, 4}},
    {3, {2, 3, 4}, 3, {2, 3, 4}}, {2, {1, 4}, 2, {3, 1}}, {0, {0}, 1, {5}},
};

START_TEST(add_sub_mul_div) {
  int ops[] = {OC_OP_ADD, OC_OP_SUB, OC_OP_MUL, OC_OP_DIV};
  float a[24], b[24];
  for (size_t o = 0; o < 4; o++)
    for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++)
      for (int which = 0; which < 3; which++) { /* both, only A, only B differentiable */
        fill_nonzero(a, 24, 0.3, 2.0);
        fill_nonzero(b, 24, 0.5, 1.5); /* divisor away from 0 */
        gc_input_t in[2] = {fin(pairs[p].ra, pairs[p].a, a, which != 2),
                            fin(pairs[p].rb, pairs[p].b, b, which != 1)};
        spec_t s = {ops[o]};
        CHECK(ops[o], NULL, 0, NULL, 0, in, 2, ref_binary, &s);
      }
}
END_TEST

START_TEST(pow_grad) {
  float a[24], b[24];
  spec_t s = {OC_OP_POW};
  for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++) {
    fill(a, 24, 0.5, 2.0, NULL, 0, 0);
    fill(b, 24, -2.0, 2.5, NULL, 0, 0);
    gc_input_t in[2] = {fin(pairs[p].ra, pairs[p].a, a, 1), fin(pairs[p].rb, pairs[p].b, b, 1)};
    CHECK(OC_OP_POW, NULL, 0, NULL, 0, in, 2, ref_binary, &s);
  }
  /* Constant exponents (LayerNorm / normalize decompositions): 2, 3, 0.5,
   * -1, 1, 0 and a generic one; base of any sign where defined. */
  float exps[] = {2.0f, 3.0f, 0.5f, -1.0f, -0.5f, -2.0f, 1.0f, 0.0f, 1.7f};
  int64_t d3[3] = {2, 3, 4};
  for (size_t e = 0; e < sizeof exps / sizeof exps[0]; e++) {
    int any_sign = exps[e] == 2 || exps[e] == 3 || exps[e] == 1 || exps[e] == 0;
    if (any_sign) fill_nonzero(a, 24, 0.3, 2.0);
    else fill(a, 24, 0.3, 2.0, NULL, 0, 0);
    gc_input_t in[2] = {fin(3, d3, a, 1), fin(0, NULL, &exps[e], 0)};
    CHECK(OC_OP_POW, NULL, 0, NULL, 0, in, 2, ref_binary, &s);
  }
  /* Integer exponents: no gradient for them, the base's as PyTorch. */
  int64_t e64[3] = {3, -2, 0};
  int32_t e32[3] = {2, 1, -1};
  fill_nonzero(a, 24, 0.3, 2.0);
  gc_input_t i64[2] = {fin(3, d3, a, 1), {OC_DTYPE_INT64, 2, {3, 1}, e64, 0}};
  CHECK(OC_OP_POW, NULL, 0, NULL, 0, i64, 2, ref_binary, &s);
  gc_input_t i32[2] = {fin(3, d3, a, 1), {OC_DTYPE_INT32, 2, {3, 1}, e32, 0}};
  CHECK(OC_OP_POW, NULL, 0, NULL, 0, i32, 2, ref_binary, &s);
}
END_TEST

/* PyTorch: dA = 0 where the exponent is 0; dB = 0 where a == 0 and b >= 0. */
START_TEST(pow_at_zero) {
  float a[4] = {0.0f, 0.0f, 2.0f, 0.0f}, b[4] = {2.0f, 0.0f, 0.0f, -1.0f};
  int64_t d[1] = {4};
  gc_input_t in[2] = {fin(1, d, a, 1), fin(1, d, b, 1)};
  float *g[2];
  run_grads(OC_OP_POW, NULL, 0, NULL, 0, in, 2, NULL, g);
  ck_assert(g[0][0] == 0.0f && g[0][1] == 0.0f && g[0][2] == 0.0f);
  ck_assert(isinf(g[0][3]) || isnan(g[0][3])); /* -1 * 0^-2 */
  ck_assert(g[1][0] == 0.0f && g[1][1] == 0.0f);
  ck_assert(fabsf(g[1][2] - logf(2.0f)) < 1e-6f);
  ck_assert(isnan(g[1][3]) || isinf(g[1][3])); /* inf * -inf: as PyTorch */
  free(g[0]);
  free(g[1]);
}
END_TEST

START_TEST(prelu_grad) {
  float x[24], sl[24];
  int64_t d3[3] = {2, 3, 4}, d31[2] = {3, 1}, d4[1] = {4}, d1[1] = {1};
  const int64_t *sd[] = {d31, d4, d1, d3};
  int sr[] = {2, 1, 1, 3};
  spec_t s = {OC_OP_PRELU};
  for (int k = 0; k < 4; k++) {
    fill_nonzero(x, 24, 0.1, 2.0);
    fill(sl, 24, -0.5, 0.8, NULL, 0, 0);
    gc_input_t in[2] = {fin(3, d3, x, 1), fin(sr[k], sd[k], sl, 1)};
    CHECK(OC_OP_PRELU, NULL, 0, NULL, 0, in, 2, ref_binary, &s);
  }
  /* At x == 0: dX = slope * dY, dSlope gets 0 (PyTorch: x > 0 ? 1 : slope). */
  float x0[3] = {0.0f, 1.0f, -2.0f}, s0[1] = {0.25f}, seed[3] = {2.0f, 2.0f, 2.0f};
  int64_t d[1] = {3};
  gc_input_t in[2] = {fin(1, d, x0, 1), fin(1, d1, s0, 1)};
  float *g[2];
  run_grads(OC_OP_PRELU, NULL, 0, NULL, 0, in, 2, seed, g);
  ck_assert(g[0][0] == 0.5f && g[0][1] == 2.0f && g[0][2] == 0.5f);
  ck_assert(g[1][0] == -4.0f);
  free(g[0]);
  free(g[1]);
}
END_TEST

START_TEST(mod_grad) {
  float a[24], b[24];
  int64_t fm = 1;
  spec_t s = {OC_OP_MOD};
  for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++) {
    int64_t na = gc_numel(pairs[p].ra, pairs[p].a), nb = gc_numel(pairs[p].rb, pairs[p].b);
    gc_input_t in[2] = {fin(pairs[p].ra, pairs[p].a, a, 1), fin(pairs[p].rb, pairs[p].b, b, 1)};
    /* Keep a / b away from integers (fmod jumps there). */
    int ok;
    do {
      fill_nonzero(a, na, 0.2, 5.0);
      fill_nonzero(b, nb, 0.6, 1.7);
      oc_tensor_t yt = {.rank = 0};
      int64_t dims[OC_MAX_RANK];
      oc_tensor_t ta = {.rank = in[0].rank}, tb = {.rank = in[1].rank};
      memcpy(ta.dims, in[0].dims, sizeof ta.dims);
      memcpy(tb.dims, in[1].dims, sizeof tb.dims);
      ck_assert(oc_broadcast_shape(&ta, &tb, &yt.rank, dims) == OC_OK);
      memcpy(yt.dims, dims, sizeof dims);
      ok = 1;
      for (int64_t i = 0; i < oc_tensor_numel(&yt); i++) {
        double q = (double)a[bidx(&in[0], &yt, i)] / b[bidx(&in[1], &yt, i)];
        ok &= fabs(q - nearbyint(q)) > 0.02;
      }
    } while (!ok);
    CHECK(OC_OP_MOD, &fm, 1, NULL, 0, in, 2, ref_binary, &s);
  }
}
END_TEST

/* --- Where ------------------------------------------------------------------------ */

START_TEST(where_grad) {
  uint8_t c[24];
  float a[24], b[24];
  int64_t d3[3] = {2, 3, 4}, d31[2] = {3, 1}, d4[1] = {4};
  for (int k = 0; k < 24; k++) c[k] = gc_uniform() < 0;
  fill_nonzero(a, 24, 0.1, 2.0);
  fill_nonzero(b, 24, 0.1, 2.0);
  {
    gc_input_t in[3] = {{OC_DTYPE_BOOL, 3, {2, 3, 4}, c, 0}, fin(3, d3, a, 1), fin(2, d31, b, 1)};
    CHECK(OC_OP_WHERE, NULL, 0, NULL, 0, in, 3, ref_where, NULL);
  }
  {
    gc_input_t in[3] = {{OC_DTYPE_BOOL, 2, {3, 1}, c, 0}, fin(1, d4, a, 1), fin(0, NULL, b, 1)};
    CHECK(OC_OP_WHERE, NULL, 0, NULL, 0, in, 3, ref_where, NULL);
  }
  {
    gc_input_t in[3] = {{OC_DTYPE_BOOL, 1, {4}, c, 0}, fin(2, d31, a, 0), fin(3, d3, b, 1)};
    CHECK(OC_OP_WHERE, NULL, 0, NULL, 0, in, 3, ref_where, NULL);
  }
}
END_TEST

/* Contrastive losses mask logits with Where(mask, -inf, logits): the logits
 * get exactly 0 on the masked entries (no NaN), dY elsewhere. */
START_TEST(where_neg_inf_branch) {
  uint8_t mask[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
  float ninf = -INFINITY, logits[9], seed[9];
  int64_t d33[2] = {3, 3};
  fill_nonzero(logits, 9, 0.1, 3.0);
  for (int k = 0; k < 9; k++) seed[k] = (float)(k + 1);
  seed[0] = INFINITY; /* even an infinite incoming gradient stays out */
  gc_input_t in[3] = {{OC_DTYPE_BOOL, 2, {3, 3}, mask, 0}, fin(0, NULL, &ninf, 0),
                      fin(2, d33, logits, 1)};
  float *g[1];
  run_grads(OC_OP_WHERE, NULL, 0, NULL, 0, in, 3, seed, g);
  for (int k = 0; k < 9; k++) {
    if (mask[k]) {
      ck_assert_msg(g[0][k] == 0.0f && !signbit(g[0][k]), "masked entry %d: %g", k, g[0][k]);
    } else {
      ck_assert_msg(g[0][k] == seed[k], "entry %d: %g", k, g[0][k]);
    }
  }
  free(g[0]);
}
END_TEST

/* --- Max Min Sum Mean ------------------------------------------------------------- */

START_TEST(variadic_grad) {
  float x0[24], x1[24], x2[24];
  int64_t d3[3] = {2, 3, 4}, d31[2] = {3, 1}, d4[1] = {4};
  for (int64_t fn = 0; fn < 4; fn++) {
    spec_t s = {OC_OP_VARIADIC, (int)fn};
    fill(x0, 24, -2, 2, NULL, 0, 0);
    fill(x1, 24, -2, 2, NULL, 0, 0);
    fill(x2, 24, -2, 2, NULL, 0, 0);
    gc_input_t in3[3] = {fin(3, d3, x0, 1), fin(2, d31, x1, 1), fin(1, d4, x2, 1)};
    /* Max/Min: broadcast inputs compare against many elements; keep every
     * pair of values apart so no finite difference straddles a tie. */
    if (fn == VAR_MAX || fn == VAR_MIN) {
      for (int k = 0; k < 24; k++) x0[k] = (float)(-2.3 + 0.2 * k);
      for (int k = 0; k < 3; k++) x1[k] = (float)(-2.05 + 1.6 * k);
      for (int k = 0; k < 4; k++) x2[k] = (float)(-1.75 + 1.2 * k);
    }
    CHECK(OC_OP_VARIADIC, &fn, 1, NULL, 0, in3, 3, ref_variadic, &s);
    gc_input_t in2[2] = {fin(2, d31, x1, 1), fin(3, d3, x0, 1)};
    CHECK(OC_OP_VARIADIC, &fn, 1, NULL, 0, in2, 2, ref_variadic, &s);
    gc_input_t in1[1] = {fin(3, d3, x0, 1)};
    CHECK(OC_OP_VARIADIC, &fn, 1, NULL, 0, in1, 1, ref_variadic, &s);
  }
}
END_TEST

/* Ties: two inputs give dY / 2 to each (torch.maximum / minimum); n inputs
 * share dY evenly among those equal to the extremum. */
START_TEST(variadic_ties) {
  int64_t d[1] = {3};
  for (int64_t fn = 0; fn < 2; fn++) {
    float a[3] = {1.0f, 2.0f, 5.0f}, b[3] = {1.0f, 3.0f, -1.0f}, c[3] = {1.0f, 3.0f, 0.0f};
    float seed[3] = {6.0f, 6.0f, 6.0f};
    gc_input_t in2[2] = {fin(1, d, a, 1), fin(1, d, b, 1)};
    float *g[3];
    run_grads(OC_OP_VARIADIC, &fn, 1, NULL, 0, in2, 2, seed, g);
    ck_assert(g[0][0] == 3.0f && g[1][0] == 3.0f);
    if (fn == VAR_MAX) {
      ck_assert(g[0][1] == 0.0f && g[1][1] == 6.0f && g[0][2] == 6.0f && g[1][2] == 0.0f);
    } else {
      ck_assert(g[0][1] == 6.0f && g[1][1] == 0.0f && g[0][2] == 0.0f && g[1][2] == 6.0f);
    }
    free(g[0]);
    free(g[1]);
    gc_input_t in3[3] = {fin(1, d, a, 1), fin(1, d, b, 1), fin(1, d, c, 1)};
    run_grads(OC_OP_VARIADIC, &fn, 1, NULL, 0, in3, 3, seed, g);
    ck_assert(g[0][0] == 2.0f && g[1][0] == 2.0f && g[2][0] == 2.0f);
    if (fn == VAR_MAX) /* b and c tie at the max 3 */
      ck_assert(g[0][1] == 0.0f && g[1][1] == 3.0f && g[2][1] == 3.0f);
    else /* a alone holds the min 2 */
      ck_assert(g[0][1] == 6.0f && g[1][1] == 0.0f && g[2][1] == 0.0f);
    for (int k = 0; k < 3; k++) free(g[k]);
  }
  /* Equal inputs: each gets half. */
  float x[3] = {1.0f, -2.0f, 3.0f};
  int64_t fn = VAR_MAX;
  gc_input_t same[2] = {fin(1, d, x, 1), fin(1, d, x, 0)};
  float *g[1];
  run_grads(OC_OP_VARIADIC, &fn, 1, NULL, 0, same, 2, NULL, g);
  for (int k = 0; k < 3; k++) ck_assert(g[0][k] == 0.5f);
  free(g[0]);
}
END_TEST

/* --- unary ops ----------------------------------------------------------------- */

START_TEST(relu_exp_sqrt_erf_neg) {
  float x[24];
  int64_t d3[3] = {2, 3, 4};
  int ops[] = {OC_OP_RELU, OC_OP_EXP, OC_OP_SQRT, OC_OP_ERF, OC_OP_NEG};
  for (int k = 0; k < 5; k++) {
    spec_t s = {ops[k]};
    if (ops[k] == OC_OP_SQRT) fill(x, 24, 0.05, 3.0, NULL, 0, 0);
    else fill_nonzero(x, 24, 0.05, 2.5);
    gc_input_t in[1] = {fin(3, d3, x, 1)};
    CHECK(ops[k], NULL, 0, NULL, 0, in, 1, ref_unary, &s);
  }
  /* rank 0 */
  float one = 0.7f;
  spec_t s = {OC_OP_EXP};
  gc_input_t in[1] = {fin(0, NULL, &one, 1)};
  CHECK(OC_OP_EXP, NULL, 0, NULL, 0, in, 1, ref_unary, &s);
}
END_TEST

/* PyTorch: ReLU's gradient is 0 at x == 0 (threshold_backward on the result);
 * Sqrt's is +inf at 0. */
START_TEST(relu_sqrt_edges) {
  float x[4] = {-1.0f, 0.0f, 2.0f, -0.0f};
  int64_t d[1] = {4};
  gc_input_t in[1] = {fin(1, d, x, 1)};
  float *g[1];
  run_grads(OC_OP_RELU, NULL, 0, NULL, 0, in, 1, NULL, g);
  ck_assert(g[0][0] == 0.0f && g[0][1] == 0.0f && g[0][2] == 1.0f && g[0][3] == 0.0f);
  free(g[0]);
  float z[2] = {0.0f, 4.0f};
  int64_t d2[1] = {2};
  gc_input_t zin[1] = {fin(1, d2, z, 1)};
  run_grads(OC_OP_SQRT, NULL, 0, NULL, 0, zin, 1, NULL, g);
  ck_assert(isinf(g[0][0]) && g[0][0] > 0);
  ck_assert(g[0][1] == 0.25f);
  free(g[0]);
}
END_TEST

START_TEST(clip_grad) {
  float x[24];
  int64_t d3[3] = {2, 3, 4};
  float bounds[][2] = {{-0.5f, 0.5f}, {-INFINITY, 0.3f}, {0.2f, INFINITY}, {-INFINITY, INFINITY},
                       {1.0f, -1.0f}};
  for (size_t k = 0; k < sizeof bounds / sizeof bounds[0]; k++) {
    double avoid[2] = {bounds[k][0], bounds[k][1]};
    fill(x, 24, -2, 2, avoid, 2, 0.02);
    spec_t s = {OC_OP_CLIP, 0, bounds[k][0], bounds[k][1]};
    gc_input_t in[1] = {fin(3, d3, x, 1)};
    CHECK(OC_OP_CLIP, NULL, 0, bounds[k], 2, in, 1, ref_unary, &s);
  }
}
END_TEST

/* clamp_backward: the gradient passes on [min, max] bounds included, 0
 * outside; NaN gets 0 with a finite bound, the gradient with none. */
START_TEST(clip_edges) {
  float x[6] = {-0.5f, 0.5f, -0.6f, 0.6f, 0.0f, NAN}, seed[6] = {3, 3, 3, 3, 3, 3};
  int64_t d[1] = {6};
  gc_input_t in[1] = {fin(1, d, x, 1)};
  float *g[1], b[2] = {-0.5f, 0.5f};
  run_grads(OC_OP_CLIP, NULL, 0, b, 2, in, 1, seed, g);
  float want[6] = {3, 3, 0, 0, 3, 0};
  for (int k = 0; k < 6; k++) ck_assert_msg(g[0][k] == want[k], "element %d: %g", k, g[0][k]);
  free(g[0]);
  float lo_only[2] = {-0.5f, INFINITY};
  run_grads(OC_OP_CLIP, NULL, 0, lo_only, 2, in, 1, seed, g);
  float want_lo[6] = {3, 3, 0, 3, 3, 0};
  for (int k = 0; k < 6; k++) ck_assert_msg(g[0][k] == want_lo[k], "element %d: %g", k, g[0][k]);
  free(g[0]);
  float none[2] = {-INFINITY, INFINITY};
  run_grads(OC_OP_CLIP, NULL, 0, none, 2, in, 1, seed, g);
  for (int k = 0; k < 6; k++) ck_assert(g[0][k] == 3.0f);
  free(g[0]);
}
END_TEST

/* Every Unary function on a domain away from its kinks, several attribute
 * settings. */
START_TEST(unary_functions) {
  static const struct {
    int fn;
    float alpha, beta;
    double lo, hi;
    double avoid[3];
    int n_avoid;
  } cases[] = {
      {UN_ABS, 0, 0, -2, 2, {0}, 1},
      {UN_RECIPROCAL, 0, 0, -2, 2, {0}, 1},
      {UN_LOG, 0, 0, 0.1, 3, {0}, 0},
      {UN_SIGMOID, 0, 0, -6, 6, {0}, 0},
      {UN_TANH, 0, 0, -3, 3, {0}, 0},
      {UN_LEAKY_RELU, 0.01f, 0, -2, 2, {0}, 1},
      {UN_LEAKY_RELU, 0.2f, 0, -2, 2, {0}, 1},
      {UN_ELU, 1.0f, 0, -3, 2, {0}, 1},
      {UN_ELU, 0.5f, 0, -3, 2, {0}, 1},
      {UN_SELU, 1.67326319217681884765625f, 1.05070102214813232421875f, -3, 2, {0}, 1},
      {UN_CELU, 1.0f, 0, -3, 2, {0}, 1},
      {UN_CELU, 2.0f, 0, -3, 2, {0}, 1},
      {UN_HARD_SIGMOID, 0.2f, 0.5f, -4, 4, {-2.5, 2.5}, 2},
      {UN_HARD_SIGMOID, 1.0f / 6.0f, 0.5f, -5, 5, {-3, 3}, 2},
      {UN_HARD_SWISH, 0, 0, -5, 5, {-3, 3}, 2},
      {UN_SOFTPLUS, 0, 0, -8, 8, {0}, 0},
      {UN_SOFTPLUS, 0, 0, 18, 30, {0}, 0},
      {UN_SOFTSIGN, 0, 0, -3, 3, {0}, 0},
      {UN_SIGN, 0, 0, -2, 2, {0}, 1},
      {UN_FLOOR, 0, 0, -3, 3, {-2, -1, 0}, 3},
      {UN_CEIL, 0, 0, -3, 3, {-2, -1, 0}, 3},
      {UN_ROUND, 0, 0, -3, 3, {-1.5, -0.5, 0.5}, 3},
  };
  float x[24];
  int64_t d3[3] = {2, 3, 4};
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    fill(x, 24, cases[k].lo, cases[k].hi, cases[k].avoid, cases[k].n_avoid, 0.05);
    if (cases[k].fn == UN_FLOOR || cases[k].fn == UN_CEIL || cases[k].fn == UN_ROUND)
      for (int j = 0; j < 24; j++) x[j] = (float)(floor(x[j]) + 0.2 + 0.25 * (j % 3));
    int64_t fn = cases[k].fn;
    float fl[2] = {cases[k].alpha, cases[k].beta};
    spec_t s = {OC_OP_UNARY, cases[k].fn, cases[k].alpha, cases[k].beta};
    gc_input_t in[1] = {fin(3, d3, x, 1)};
    char msg[512];
    ck_assert_msg(gc_check(OC_OP_UNARY, &fn, 1, fl, 2, in, 1, ref_unary, &s, TOL, msg,
                           sizeof msg) == 0,
                  "case %zu (fn %d): %s", k, cases[k].fn, msg);
  }
}
END_TEST

/* PyTorch's values at the kinks. */
START_TEST(unary_kinks) {
  int64_t d[1] = {4};
  float *g[1];
  struct {
    int fn;
    float alpha, beta;
    float x[4], want[4];
  } cases[] = {
      /* leaky_relu_backward: x > 0 ? 1 : alpha */
      {UN_LEAKY_RELU, 0.1f, 0, {0.0f, -1.0f, 1.0f, -0.0f}, {0.1f, 0.1f, 1.0f, 0.1f}},
      /* abs: sgn(0) = 0 */
      {UN_ABS, 0, 0, {0.0f, -2.0f, 2.0f, -0.0f}, {0.0f, -1.0f, 1.0f, 0.0f}},
      /* hardsigmoid_backward: strict linear region (x = +-3 outside) */
      {UN_HARD_SIGMOID, 1.0f / 6.0f, 0.5f, {-3.0f, 3.0f, 0.0f, 4.0f},
       {0.0f, 0.0f, 1.0f / 6.0f, 0.0f}},
      {UN_HARD_SIGMOID, 0.25f, 0.5f, {-2.0f, 2.0f, 0.0f, 1.0f}, {0.0f, 0.0f, 0.25f, 0.25f}},
      /* hardswish_backward: x < -3: 0; x <= 3: x / 3 + 0.5; else 1 */
      {UN_HARD_SWISH, 0, 0, {-3.0f, 3.0f, -3.5f, 3.5f}, {-0.5f, 1.5f, 0.0f, 1.0f}},
      /* elu_backward: x <= 0 takes alpha * e^x */
      {UN_ELU, 0.5f, 0, {0.0f, 1.0f, -1.0f, 2.0f}, {0.5f, 1.0f, 0.5f * expf(-1.0f), 1.0f}},
      /* zero gradients */
      {UN_SIGN, 0, 0, {0.0f, 1.0f, -1.0f, 2.0f}, {0, 0, 0, 0}},
      {UN_FLOOR, 0, 0, {0.0f, 1.5f, -1.0f, 2.0f}, {0, 0, 0, 0}},
      {UN_ROUND, 0, 0, {0.5f, 1.5f, -1.0f, 2.0f}, {0, 0, 0, 0}},
      /* softplus past the threshold: 1 */
      {UN_SOFTPLUS, 0, 0, {25.0f, 100.0f, 0.0f, -100.0f}, {1.0f, 1.0f, 0.5f, 0.0f}},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    int64_t fn = cases[k].fn;
    float fl[2] = {cases[k].alpha, cases[k].beta};
    gc_input_t in[1] = {fin(1, d, cases[k].x, 1)};
    run_grads(OC_OP_UNARY, &fn, 1, fl, 2, in, 1, NULL, g);
    for (int j = 0; j < 4; j++)
      ck_assert_msg(fabsf(g[0][j] - cases[k].want[j]) <= 1e-6f, "fn %d x %g: %g, want %g",
                    cases[k].fn, cases[k].x[j], g[0][j], cases[k].want[j]);
    free(g[0]);
  }
}
END_TEST

START_TEST(cast_identity) {
  float x[6];
  int64_t d[2] = {2, 3}, to = OC_DTYPE_FLOAT32;
  fill(x, 6, -2, 2, NULL, 0, 0);
  spec_t s = {OC_OP_CAST};
  gc_input_t in[1] = {fin(2, d, x, 1)};
  CHECK(OC_OP_CAST, &to, 1, NULL, 0, in, 1, ref_unary, &s);
}
END_TEST

/* --- the backward kernels' shape rules ----------------------------------------------- */

static oc_status_t infer(int op, const oc_tensor_t *const *in, int n_in, const int64_t *ints,
                         int n_ints, const float *floats, int n_floats, oc_tensor_t *out) {
  oc_tensor_t *pin[8];
  for (int k = 0; k < n_in; k++) pin[k] = (oc_tensor_t *)in[k];
  oc_op_call_t call = {.ints = ints, .n_ints = n_ints, .floats = floats, .n_floats = n_floats,
                       .n_in = n_in, .in = pin, .n_out = 1, .out = &out};
  size_t ws;
  return oc_op_infer(op, &call, &ws);
}

static int fails(oc_status_t s) {
  if (!s) return 0;
  oc_status_free(s);
  return 1;
}

START_TEST(bwd_shape_rules) {
  oc_tensor_t dy = {OC_DTYPE_FLOAT32, 3, {2, 3, 4}}, b = {OC_DTYPE_FLOAT32, 2, {3, 1}};
  oc_tensor_t c = {OC_DTYPE_BOOL, 2, {3, 1}}, out;
  const oc_tensor_t *mul_in[4] = {&dy, NULL, &dy, &b};
  int64_t ok[6] = {OC_OP_MUL, 1, 0, 2, 3, 1};
  ck_assert(!fails(infer(OC_OP_BROADCAST_BWD, mul_in, 4, ok, 6, NULL, 0, &out)));
  ck_assert(out.rank == 2 && out.dims[0] == 3 && out.dims[1] == 1);
  int64_t bad_dims[6] = {OC_OP_MUL, 1, 0, 2, 4, 1};      /* not b's shape, no broadcast */
  int64_t bad_which[6] = {OC_OP_MUL, 2, 0, 2, 3, 1};     /* no input 2 */
  int64_t bad_rank[6] = {OC_OP_MUL, 1, 0, 9, 3, 1};      /* rank and count disagree */
  int64_t bad_op[6] = {OC_OP_EQUAL, 1, 0, 2, 3, 1};      /* no gradient */
  int64_t bad_fn[6] = {OC_OP_MUL, 1, 5, 2, 3, 1};
  ck_assert(fails(infer(OC_OP_BROADCAST_BWD, mul_in, 4, bad_dims, 6, NULL, 0, &out)));
  ck_assert(fails(infer(OC_OP_BROADCAST_BWD, mul_in, 4, bad_which, 6, NULL, 0, &out)));
  ck_assert(fails(infer(OC_OP_BROADCAST_BWD, mul_in, 4, bad_rank, 6, NULL, 0, &out)));
  ck_assert(fails(infer(OC_OP_BROADCAST_BWD, mul_in, 4, bad_op, 6, NULL, 0, &out)));
  ck_assert(fails(infer(OC_OP_BROADCAST_BWD, mul_in, 4, bad_fn, 6, NULL, 0, &out)));
  const oc_tensor_t *missing[4] = {&dy, NULL, &dy, NULL}; /* MUL's dB needs A... dA needs B */
  int64_t da[7] = {OC_OP_MUL, 0, 0, 3, 2, 3, 4};
  ck_assert(fails(infer(OC_OP_BROADCAST_BWD, missing, 4, da, 7, NULL, 0, &out)));
  const oc_tensor_t *div_in[4] = {&dy, NULL, NULL, &b}; /* DIV's dB needs Y */
  int64_t db[6] = {OC_OP_DIV, 1, 0, 2, 3, 1};
  ck_assert(fails(infer(OC_OP_BROADCAST_BWD, div_in, 4, db, 6, NULL, 0, &out)));
  const oc_tensor_t *where_bad[5] = {&dy, NULL, &b, &dy, &b}; /* cond must be bool */
  int64_t wa[7] = {OC_OP_WHERE, 1, 0, 3, 2, 3, 4};
  ck_assert(fails(infer(OC_OP_BROADCAST_BWD, where_bad, 5, wa, 7, NULL, 0, &out)));
  const oc_tensor_t *where_ok[5] = {&dy, NULL, &c, NULL, NULL};
  ck_assert(!fails(infer(OC_OP_BROADCAST_BWD, where_ok, 5, wa, 7, NULL, 0, &out)));
  /* UnaryBwd */
  const oc_tensor_t *u[3] = {&dy, &dy, NULL};
  int64_t relu[2] = {OC_OP_RELU, 0}, isnan_[2] = {OC_OP_UNARY, 17}, lrelu[2] = {OC_OP_UNARY, 5};
  float ab[2] = {0.1f, 0};
  ck_assert(fails(infer(OC_OP_UNARY_BWD, u, 3, relu, 2, NULL, 0, &out))); /* needs Y */
  ck_assert(fails(infer(OC_OP_UNARY_BWD, u, 3, isnan_, 2, ab, 2, &out)));
  ck_assert(fails(infer(OC_OP_UNARY_BWD, u, 3, lrelu, 2, NULL, 0, &out))); /* floats */
  ck_assert(!fails(infer(OC_OP_UNARY_BWD, u, 3, lrelu, 2, ab, 2, &out)));
  const oc_tensor_t *u_bad[3] = {&dy, &b, NULL}; /* X of another shape */
  ck_assert(fails(infer(OC_OP_UNARY_BWD, u_bad, 3, lrelu, 2, ab, 2, &out)));
}
END_TEST

int main(void) {
  Suite *s = suite_create("grad_elementwise");
  TCase *tc = tcase_create("grad");
  tcase_add_test(tc, add_sub_mul_div);
  tcase_add_test(tc, pow_grad);
  tcase_add_test(tc, pow_at_zero);
  tcase_add_test(tc, prelu_grad);
  tcase_add_test(tc, mod_grad);
  tcase_add_test(tc, where_grad);
  tcase_add_test(tc, where_neg_inf_branch);
  tcase_add_test(tc, variadic_grad);
  tcase_add_test(tc, variadic_ties);
  tcase_add_test(tc, relu_exp_sqrt_erf_neg);
  tcase_add_test(tc, relu_sqrt_edges);
  tcase_add_test(tc, clip_grad);
  tcase_add_test(tc, clip_edges);
  tcase_add_test(tc, unary_functions);
  tcase_add_test(tc, unary_kinks);
  tcase_add_test(tc, cast_identity);
  tcase_add_test(tc, bwd_shape_rules);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
