/*
 * Gradient rules of the loss-head ops: NegativeLogLikelihoodLoss (reductions
 * none/sum/mean, class weights, ignore_index, (N, C) and (N, C, d1, d2)
 * inputs, int64 and int32 targets) and EinsumDiagonal ("ii->i", "bii->bi",
 * "iii->i" and transposing maps), against finite differences of double
 * references (tests/gradcheck.h). Direct assertions cover what finite
 * differences cannot: a mean over only ignored labels, and the NT-Xent
 * pattern (logits with -inf on the diagonal -> LogSoftmax -> NLL mean) whose
 * masked entries must get exactly 0 gradient.
 */
#include <check.h>

#include "gradcheck.h"

#define TOL 1e-3

static void fill(float *p, int64_t n) {
  for (int64_t i = 0; i < n; i++) p[i] = (float)gc_uniform();
}

#define CHECK(op, ints, n_ints, in, n_in, ref, user)                                          \
  do {                                                                                      \
    char msg_[1024];                                                                        \
    ck_assert_msg(gc_check(op, ints, n_ints, NULL, 0, in, n_in, ref, user, TOL, msg_,       \
                           sizeof msg_) == 0,                                               \
                  "%s:%d: %s", __FILE__, __LINE__, msg_);                                   \
  } while (0)

/* --- NegativeLogLikelihoodLoss -------------------------------------------------- */

typedef struct nll_attrs_s {
  int reduction, has_ignore;
  int64_t ignore;
} nll_attrs_t;

/* F.nll_loss in double: in[0] x (N, C, d...), in[1] labels, in[2] weight or
 * absent (n_in 2). */
static void ref_nll(const double *const *in, const gc_input_t *inputs, int n_in, double *out,
                    const oc_tensor_t *yt, const void *user) {
  const nll_attrs_t *a = user;
  const gc_input_t *x = &inputs[0];
  int64_t n = x->dims[0], c = x->dims[1], d = 1;
  for (int i = 2; i < x->rank; i++) d *= x->dims[i];
  const double *w = n_in > 2 && inputs[2].data ? in[2] : NULL;
  double sum = 0, wsum = 0;
  for (int64_t b = 0; b < n; b++)
    for (int64_t e = 0; e < d; e++) {
      int64_t i = b * d + e, t = (int64_t)in[1][i];
      double l = 0;
      if (!(a->has_ignore && t == a->ignore)) {
        double wc = w ? w[t] : 1;
        l = -wc * in[0][(b * c + t) * d + e];
        wsum += wc;
      }
      if (a->reduction == 0) out[i] = l;
      sum += l;
    }
  if (a->reduction == 1) out[0] = sum;
  if (a->reduction == 2) out[0] = sum / wsum;
}

/* Runs one NLL check: x (N, C, d...) random, labels[] given (int64 or int32),
 * with weights when |weighted|. */
static void check_nll(int rank, const int64_t *xdims, const int64_t *labels, int tdtype,
                      int weighted, nll_attrs_t a, int line) {
  float x[256], w[16];
  int32_t l32[64];
  int64_t nx = gc_numel(rank, xdims), nt = nx / xdims[1];
  ck_assert(nx <= 256 && nt <= 64 && xdims[1] <= 16);
  fill(x, nx);
  for (int64_t k = 0; k < xdims[1]; k++) w[k] = 0.25f + (float)k * 0.5f;
  for (int64_t k = 0; k < nt; k++) l32[k] = (int32_t)labels[k];
  gc_input_t in[3] = {{OC_DTYPE_FLOAT32, rank, {0}, x, 1},
                      {tdtype, rank - 1, {0}, tdtype == OC_DTYPE_INT32 ? (void *)l32 : labels, 0},
                      {OC_DTYPE_FLOAT32, 1, {xdims[1]}, w, 0}};
  for (int i = 0; i < rank; i++) in[0].dims[i] = xdims[i];
  in[1].dims[0] = xdims[0];
  for (int i = 2; i < rank; i++) in[1].dims[i - 1] = xdims[i];
  int64_t ints[3] = {a.reduction, a.has_ignore, a.ignore};
  char msg[1024];
  ck_assert_msg(gc_check(OC_OP_NLL_LOSS, ints, 3, NULL, 0, in, weighted ? 3 : 2, ref_nll, &a, TOL,
                         msg, sizeof msg) == 0,
                "line %d (reduction %d, weighted %d, ignore %d): %s", line, a.reduction, weighted,
                a.has_ignore, msg);
}

START_TEST(nll_2d) {
  int64_t dims[2] = {5, 4};
  int64_t labels[5] = {0, 3, 1, 1, 2};
  for (int red = 0; red < 3; red++)
    for (int weighted = 0; weighted < 2; weighted++) {
      check_nll(2, dims, labels, OC_DTYPE_INT64, weighted, (nll_attrs_t){red, 0, 0}, __LINE__);
      check_nll(2, dims, labels, OC_DTYPE_INT32, weighted, (nll_attrs_t){red, 0, 0}, __LINE__);
    }
}
END_TEST

START_TEST(nll_2d_ignore) {
  /* Labels equal to the ignore index (in range: 1, and outside: -100). */
  int64_t dims[2] = {6, 3};
  int64_t in_range[6] = {1, 0, 2, 1, 1, 0};
  int64_t outside[6] = {-100, 0, 2, -100, 1, 0};
  for (int red = 0; red < 3; red++)
    for (int weighted = 0; weighted < 2; weighted++) {
      check_nll(2, dims, in_range, OC_DTYPE_INT64, weighted, (nll_attrs_t){red, 1, 1}, __LINE__);
      check_nll(2, dims, outside, OC_DTYPE_INT64, weighted, (nll_attrs_t){red, 1, -100},
                __LINE__);
      check_nll(2, dims, outside, OC_DTYPE_INT32, weighted, (nll_attrs_t){red, 1, -100},
                __LINE__);
      /* has_ignore with no label ignored */
      check_nll(2, dims, in_range, OC_DTYPE_INT64, weighted, (nll_attrs_t){red, 1, 7}, __LINE__);
    }
}
END_TEST

START_TEST(nll_4d) {
  /* (N, C, d1, d2) = (2, 3, 2, 3), target (2, 2, 3). */
  int64_t dims[4] = {2, 3, 2, 3};
  int64_t labels[12] = {0, 2, 1, 1, 0, 2, 2, 2, 0, 1, 0, 1};
  int64_t ignored[12] = {0, -1, 1, 1, -1, 2, 2, -1, 0, 1, 0, -1};
  for (int red = 0; red < 3; red++)
    for (int weighted = 0; weighted < 2; weighted++) {
      check_nll(4, dims, labels, OC_DTYPE_INT64, weighted, (nll_attrs_t){red, 0, 0}, __LINE__);
      check_nll(4, dims, ignored, OC_DTYPE_INT64, weighted, (nll_attrs_t){red, 1, -1}, __LINE__);
      check_nll(4, dims, ignored, OC_DTYPE_INT32, weighted, (nll_attrs_t){red, 1, -1}, __LINE__);
    }
  /* (N, C, d1) = (3, 4, 2): rank 3 */
  int64_t dims3[3] = {3, 4, 2};
  int64_t l3[6] = {3, 0, 1, 2, 2, 3};
  for (int red = 0; red < 3; red++)
    check_nll(3, dims3, l3, OC_DTYPE_INT64, 1, (nll_attrs_t){red, 1, 2}, __LINE__);
}
END_TEST

/* --- a small graph runner for multi-op and direct checks --------------------------- */

typedef struct gr_s {
  oc_graph_t *g;
  void **buf;
} gr_t;

static void gr_free(gr_t *r) {
  if (r->buf)
    for (int v = 0; v < r->g->n_values; v++) free(r->buf[v]);
  free(r->buf);
  oc_graph_free(r->g);
}

static void gr_ok(oc_status_t s, int line) {
  if (s) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", oc_status_message(s));
    oc_status_free(s);
    ck_abort_msg("line %d: %s", line, msg);
  }
}

/* A constant (or, with |param|, a trained parameter) named |name|. */
static int gr_value(gr_t *r, const char *name, int dtype, int rank, const int64_t *dims,
                    const void *data, int param) {
  int v = oc_graph_value(r->g, name);
  gr_ok(oc_value_set_const(r->g, v, dtype, rank, dims, data), __LINE__);
  if (param) {
    r->g->values[v].kind = OC_VALUE_STATE;
    r->g->values[v].foldable = 0;
  }
  return v;
}

/* d loss/d param of the scalar |loss| after running forward and backward. */
static const float *gr_grad(gr_t *r, int loss, int param, int line) {
  int grad;
  gr_ok(oc_autodiff(r->g, loss, -1, &param, 1, &grad), line);
  r->buf = calloc((size_t)r->g->n_values + 1, sizeof(void *));
  gr_ok(gc_execute(r->g, r->buf), line);
  return r->buf[grad];
}

START_TEST(nll_mean_all_ignored) {
  /* Mean over no element: the loss is NaN (0/0, as ONNX and PyTorch), the
   * gradient 0 everywhere (as PyTorch: no element contributes). */
  gr_t r = {oc_graph_new(), NULL};
  float x[6] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f};
  int64_t xd[2] = {2, 3}, td[1] = {2}, t[2] = {-100, -100};
  int xv = gr_value(&r, "x", OC_DTYPE_FLOAT32, 2, xd, x, 1);
  int tv = gr_value(&r, "t", OC_DTYPE_INT64, 1, td, t, 0);
  int loss = oc_graph_value(r.g, "loss"), in[2] = {xv, tv};
  int64_t ints[3] = {2, 1, -100};
  gr_ok(oc_emit_instr(r.g, "nll", OC_OP_NLL_LOSS, 2, in, 1, &loss, ints, 3, NULL, 0), __LINE__);
  const float *dx = gr_grad(&r, loss, xv, __LINE__);
  ck_assert(isnan(((float *)r.buf[loss])[0]));
  for (int i = 0; i < 6; i++) ck_assert_msg(dx[i] == 0.0f, "dx[%d] = %g", i, dx[i]);
  gr_free(&r);
}
END_TEST

START_TEST(nll_weight_and_target_get_no_gradient) {
  /* Weight as a trained parameter: the rule leaves it alone (zero gradient),
   * as PyTorch's cross_entropy does not differentiate class weights. */
  gr_t r = {oc_graph_new(), NULL};
  float x[6] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f}, w[3] = {1, 2, 3};
  int64_t xd[2] = {2, 3}, td[1] = {2}, wd[1] = {3}, t[2] = {2, 0};
  int xv = gr_value(&r, "x", OC_DTYPE_FLOAT32, 2, xd, x, 1);
  int tv = gr_value(&r, "t", OC_DTYPE_INT64, 1, td, t, 0);
  int wv = gr_value(&r, "w", OC_DTYPE_FLOAT32, 1, wd, w, 1);
  int loss = oc_graph_value(r.g, "loss"), in[3] = {xv, tv, wv};
  int64_t ints[3] = {1, 0, 0};
  gr_ok(oc_emit_instr(r.g, "nll", OC_OP_NLL_LOSS, 3, in, 1, &loss, ints, 3, NULL, 0), __LINE__);
  int params[2] = {xv, wv}, grads[2];
  gr_ok(oc_autodiff(r.g, loss, -1, params, 2, grads), __LINE__);
  r.buf = calloc((size_t)r.g->n_values + 1, sizeof(void *));
  gr_ok(gc_execute(r.g, r.buf), __LINE__);
  const float *dx = r.buf[grads[0]], *dw = r.buf[grads[1]];
  const float want[6] = {0, 0, -3, -1, 0, 0};
  for (int i = 0; i < 6; i++) ck_assert_msg(dx[i] == want[i], "dx[%d] = %g", i, dx[i]);
  for (int i = 0; i < 3; i++) ck_assert_msg(dw[i] == 0.0f, "dw[%d] = %g", i, dw[i]);
  gr_free(&r);
}
END_TEST

/* --- EinsumDiagonal ------------------------------------------------------------- */

/* y[j...] = x[j_map0, ..., j_map{r-1}] with user = ints [m, map...]. */
static void ref_diag(const double *const *in, const gc_input_t *inputs, int n_in, double *out,
                     const oc_tensor_t *yt, const void *user) {
  const int64_t *ints = user;
  const gc_input_t *x = &inputs[0];
  int64_t idx[OC_MAX_RANK] = {0}, ny = oc_tensor_numel(yt);
  for (int64_t i = 0; i < ny; i++) {
    int64_t off = 0;
    for (int k = 0; k < x->rank; k++) off = off * x->dims[k] + idx[ints[1 + k]];
    out[i] = in[0][off];
    for (int a = yt->rank - 1; a >= 0; a--) {
      if (++idx[a] < yt->dims[a]) break;
      idx[a] = 0;
    }
  }
}

static void check_diag(int rank, const int64_t *xdims, const int64_t *ints, int line) {
  float x[512];
  int64_t nx = gc_numel(rank, xdims);
  ck_assert(nx <= 512);
  fill(x, nx);
  gc_input_t in[1] = {{OC_DTYPE_FLOAT32, rank, {0}, x, 1}};
  for (int i = 0; i < rank; i++) in[0].dims[i] = xdims[i];
  char msg[1024];
  ck_assert_msg(gc_check(OC_OP_EINSUM_DIAGONAL, ints, 1 + rank, NULL, 0, in, 1, ref_diag, ints,
                         TOL, msg, sizeof msg) == 0,
                "line %d: %s", line, msg);
}

START_TEST(diag_ii_i) {
  int64_t d[2] = {4, 4}, ints[3] = {1, 0, 0};
  check_diag(2, d, ints, __LINE__);
  int64_t d1[2] = {1, 1};
  check_diag(2, d1, ints, __LINE__);
}
END_TEST

START_TEST(diag_bii_bi) {
  int64_t d[3] = {2, 3, 3}, ints[4] = {2, 0, 1, 1};
  check_diag(3, d, ints, __LINE__);
  /* "...ii->...i" with two batch dims */
  int64_t d4[4] = {2, 3, 2, 2}, ints4[5] = {3, 0, 1, 2, 2};
  check_diag(4, d4, ints4, __LINE__);
}
END_TEST

START_TEST(diag_iii_i) {
  int64_t d[3] = {3, 3, 3}, ints[4] = {1, 0, 0, 0};
  check_diag(3, d, ints, __LINE__);
}
END_TEST

START_TEST(diag_transposing) {
  /* "iji->ij" on (3, 2, 3) */
  int64_t d[3] = {3, 2, 3}, ints[4] = {2, 0, 1, 0};
  check_diag(3, d, ints, __LINE__);
  /* "iij->ji" on (3, 3, 4): the diagonal axis is the output's last */
  int64_t d2[3] = {3, 3, 4}, ints2[4] = {2, 1, 1, 0};
  check_diag(3, d2, ints2, __LINE__);
  /* "ijij->ij" on (2, 3, 2, 3): two diagonals at once */
  int64_t d3[4] = {2, 3, 2, 3}, ints3[5] = {2, 0, 1, 0, 1};
  check_diag(4, d3, ints3, __LINE__);
  /* "ij->ji": a plain transpose */
  int64_t d4[2] = {3, 4}, ints4[3] = {2, 1, 0};
  check_diag(2, d4, ints4, __LINE__);
}
END_TEST

/* --- NT-Xent: -inf on the diagonal -> LogSoftmax -> NLL mean ---------------------- */

/* Mean over rows of -log_softmax(L)[i, t_i] in double. */
static double ntxent_ref(const double *L, int64_t n, const int64_t *t) {
  double sum = 0;
  for (int64_t i = 0; i < n; i++) {
    double mx = -INFINITY, s = 0;
    for (int64_t j = 0; j < n; j++)
      if (L[i * n + j] > mx) mx = L[i * n + j];
    for (int64_t j = 0; j < n; j++) s += exp(L[i * n + j] - mx);
    sum += -(L[i * n + t[i]] - mx - log(s));
  }
  return sum / (double)n;
}

START_TEST(ntxent_masked_diagonal) {
  ck_assert_msg(oc_grad_find(OC_OP_LOG_SOFTMAX) != NULL, "LogSoftmax has no rule");
  enum { B = 3, N = 2 * B };
  float L[N * N];
  double Ld[N * N];
  int64_t t[N];
  fill(L, N * N);
  for (int i = 0; i < N; i++) {
    L[i * N + i] = -INFINITY;
    t[i] = (i + B) % N; /* the positive pair: the other view of the same sample */
  }
  for (int i = 0; i < N * N; i++) Ld[i] = L[i];
  gr_t r = {oc_graph_new(), NULL};
  int64_t ld[2] = {N, N}, td[1] = {N};
  int lv = gr_value(&r, "logits", OC_DTYPE_FLOAT32, 2, ld, L, 1);
  int tv = gr_value(&r, "labels", OC_DTYPE_INT64, 1, td, t, 0);
  int lp = oc_graph_value(r.g, "log_prob"), loss = oc_graph_value(r.g, "loss");
  int64_t sm_ints[2] = {1, 0}, nll_ints[3] = {2, 0, 0};
  gr_ok(oc_emit_instr(r.g, "lsm", OC_OP_LOG_SOFTMAX, 1, &lv, 1, &lp, sm_ints, 2, NULL, 0),
        __LINE__);
  int in[2] = {lp, tv};
  gr_ok(oc_emit_instr(r.g, "nll", OC_OP_NLL_LOSS, 2, in, 1, &loss, nll_ints, 3, NULL, 0),
        __LINE__);
  const float *dl = gr_grad(&r, loss, lv, __LINE__);
  double want_loss = ntxent_ref(Ld, N, t);
  float got_loss = ((float *)r.buf[loss])[0];
  ck_assert_msg(fabs(got_loss - want_loss) <= 1e-5 * fmax(1, fabs(want_loss)), "loss %g vs %g",
                got_loss, want_loss);
  double max_fd = 1e-3, fd[N * N];
  for (int k = 0; k < N * N; k++) {
    if (k / N == k % N) continue;
    double x0 = Ld[k], h = 1e-6;
    Ld[k] = x0 + h;
    double lp_ = ntxent_ref(Ld, N, t);
    Ld[k] = x0 - h;
    double lm_ = ntxent_ref(Ld, N, t);
    Ld[k] = x0;
    fd[k] = (lp_ - lm_) / (2 * h);
    if (fabs(fd[k]) > max_fd) max_fd = fabs(fd[k]);
  }
  for (int k = 0; k < N * N; k++) {
    if (k / N == k % N) {
      ck_assert_msg(dl[k] == 0.0f,
                    "masked logit %d: gradient %g, not exactly 0", k, dl[k]);
      continue;
    }
    ck_assert_msg(fabs(dl[k] - fd[k]) <= TOL * max_fd, "logit %d: autodiff %.8g, fd %.8g", k,
                  dl[k], fd[k]);
  }
  gr_free(&r);
}
END_TEST

/* --- the backward kernels' shape rules (plans are untrusted) ---------------------- */

/* oc_op_infer of |op| on the given input types; returns whether it failed. */
static int infer_fails(int op, const int64_t *ints, int n_ints, oc_tensor_t *in, int n_in,
                       oc_tensor_t *out) {
  oc_tensor_t *pin[4], *pout[1] = {out};
  for (int i = 0; i < n_in; i++) pin[i] = &in[i];
  oc_op_call_t call = {.ints = ints, .n_ints = n_ints, .n_in = n_in, .in = pin, .n_out = 1,
                       .out = pout};
  size_t ws;
  oc_status_t s = oc_op_infer(op, &call, &ws);
  oc_status_free(s);
  return s != OC_OK;
}

START_TEST(bwd_shape_rules) {
  oc_tensor_t out;
  /* NegativeLogLikelihoodLossBwd: dy (), target (4, 2), weight (3): dx (4, 3, 2). */
  oc_tensor_t in[3] = {{OC_DTYPE_FLOAT32, 0, {0}, NULL},
                       {OC_DTYPE_INT64, 2, {4, 2}, NULL},
                       {OC_DTYPE_FLOAT32, 1, {3}, NULL}};
  int64_t ok[4] = {2, 1, -100, 3};
  ck_assert(!infer_fails(OC_OP_NLL_LOSS_BWD, ok, 4, in, 3, &out));
  ck_assert_int_eq(out.rank, 3);
  ck_assert(out.dims[0] == 4 && out.dims[1] == 3 && out.dims[2] == 2);
  int64_t bad_red[4] = {3, 0, 0, 3}, bad_ign[4] = {1, 2, 0, 3}, bad_c[4] = {1, 0, 0, -1};
  int64_t other_c[4] = {1, 0, 0, 5};
  ck_assert(infer_fails(OC_OP_NLL_LOSS_BWD, bad_red, 4, in, 3, &out));
  ck_assert(infer_fails(OC_OP_NLL_LOSS_BWD, bad_ign, 4, in, 3, &out));
  ck_assert(infer_fails(OC_OP_NLL_LOSS_BWD, bad_c, 4, in, 2, &out));
  ck_assert(infer_fails(OC_OP_NLL_LOSS_BWD, other_c, 4, in, 3, &out)); /* weight is (3) */
  ck_assert(infer_fails(OC_OP_NLL_LOSS_BWD, ok, 3, in, 3, &out));
  int64_t none[4] = {0, 0, 0, 3};
  ck_assert(infer_fails(OC_OP_NLL_LOSS_BWD, none, 4, in, 3, &out)); /* dy must be (4, 2) */
  in[0].rank = 2;
  in[0].dims[0] = 4;
  in[0].dims[1] = 2;
  ck_assert(!infer_fails(OC_OP_NLL_LOSS_BWD, none, 4, in, 3, &out));
  ck_assert(infer_fails(OC_OP_NLL_LOSS_BWD, ok, 4, in, 3, &out)); /* mean needs a scalar dy */
  in[1].dtype = OC_DTYPE_FLOAT32;
  ck_assert(infer_fails(OC_OP_NLL_LOSS_BWD, none, 4, in, 3, &out));

  /* EinsumDiagonalBwd: dy (2, 3) -> dx (2, 3, 3) with [3, 0, 1, 1]. */
  oc_tensor_t dy = {OC_DTYPE_FLOAT32, 2, {2, 3}, NULL};
  int64_t dok[4] = {3, 0, 1, 1};
  ck_assert(!infer_fails(OC_OP_EINSUM_DIAGONAL_BWD, dok, 4, &dy, 1, &out));
  ck_assert(out.rank == 3 && out.dims[0] == 2 && out.dims[1] == 3 && out.dims[2] == 3);
  int64_t range[4] = {3, 0, 2, 1}, unmapped[4] = {3, 0, 0, 0}, neg[4] = {3, 0, -1, 1};
  int64_t big[2] = {OC_MAX_RANK + 1, 0}, low[2] = {1, 0};
  ck_assert(infer_fails(OC_OP_EINSUM_DIAGONAL_BWD, range, 4, &dy, 1, &out));
  ck_assert(infer_fails(OC_OP_EINSUM_DIAGONAL_BWD, unmapped, 4, &dy, 1, &out));
  ck_assert(infer_fails(OC_OP_EINSUM_DIAGONAL_BWD, neg, 4, &dy, 1, &out));
  ck_assert(infer_fails(OC_OP_EINSUM_DIAGONAL_BWD, dok, 3, &dy, 1, &out));
  ck_assert(infer_fails(OC_OP_EINSUM_DIAGONAL_BWD, big, 2, &dy, 1, &out));
  ck_assert(infer_fails(OC_OP_EINSUM_DIAGONAL_BWD, low, 2, &dy, 1, &out)); /* rank 1 < 2 */
  ck_assert(infer_fails(OC_OP_EINSUM_DIAGONAL_BWD, dok, 0, &dy, 1, &out));
  /* dims whose product overflows the tensor limit */
  oc_tensor_t huge = {OC_DTYPE_FLOAT32, 1, {(int64_t)1 << 30}, NULL};
  int64_t cube[4] = {3, 0, 0, 0};
  ck_assert(infer_fails(OC_OP_EINSUM_DIAGONAL_BWD, cube, 4, &huge, 1, &out));
}
END_TEST

int main(void) {
  Suite *s = suite_create("grad_loss");
  TCase *tc = tcase_create("grad");
  tcase_add_test(tc, nll_2d);
  tcase_add_test(tc, nll_2d_ignore);
  tcase_add_test(tc, nll_4d);
  tcase_add_test(tc, nll_mean_all_ignored);
  tcase_add_test(tc, nll_weight_and_target_get_no_gradient);
  tcase_add_test(tc, diag_ii_i);
  tcase_add_test(tc, diag_bii_bi);
  tcase_add_test(tc, diag_iii_i);
  tcase_add_test(tc, diag_transposing);
  tcase_add_test(tc, ntxent_masked_diagonal);
  tcase_add_test(tc, bwd_shape_rules);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
