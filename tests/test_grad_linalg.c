/*
 * Gradient rules of the linear-algebra, softmax, normalization, reduction and
 * gather ops: MatMul, Gemm, Softmax, LogSoftmax, LayerNormalization, the
 * Reduce* family and Gather. Each rule is checked against finite differences
 * of a double-precision reference (tests/gradcheck.h) on several shapes and
 * attributes; the cases finite differences cannot reach (-inf entries, the
 * zero vector of ReduceL2, ties, zeros in ReduceProd) are direct assertions.
 */
#include <check.h>

#include "gradcheck.h"

#define TOL 1e-3

static void fill(float *p, int64_t n) {
  for (int64_t i = 0; i < n; i++) p[i] = (float)gc_uniform();
}

/* Index of the element of a tensor of dims |dims| (rank |r|, aligned to the
 * right of the broadcast index |idx| of rank |br|) that the broadcast reads. */
static int64_t bcast_offset(const int64_t *idx, int br, int r, const int64_t *dims) {
  int64_t off = 0;
  for (int i = 0; i < r; i++) {
    int j = i + (br - r);
    off = off * dims[i] + (dims[i] == 1 ? 0 : idx[j]);
  }
  return off;
}

/* Steps |idx| (dims |dims|, rank |r|) to the next row-major index. */
static void next_index(int64_t *idx, int r, const int64_t *dims) {
  for (int d = r - 1; d >= 0; d--) {
    if (++idx[d] < dims[d]) return;
    idx[d] = 0;
  }
}

#define CHECK(op, ints, n_ints, floats, n_floats, in, n_in, ref, user)                          \
  do {                                                                                       \
    char msg_[1024];                                                                         \
    ck_assert_msg(gc_check(op, ints, n_ints, floats, n_floats, in, n_in, ref, user, TOL, msg_, \
                           sizeof msg_) == 0,                                                \
                  "%s:%d: %s", __FILE__, __LINE__, msg_);                                    \
  } while (0)

/* Runs op on |inputs| (the differentiable ones become parameters), seeds the
 * backward pass of output |which| (of |n_out|) with |seed| and returns the
 * gradients of the differentiable inputs in grads[] (malloc'd, in input
 * order). Returns 0 on success, else 1 with a message. */
static int vjp(int op, const int64_t *ints, int n_ints, const float *floats, int n_floats,
               const gc_input_t *inputs, int n_in, int n_out, int which, const float *seed,
               float **grads, char *msg, size_t msg_size) {
  oc_graph_t *g = oc_graph_new();
  int in_v[8], params[8], gv[8], n_params = 0, y[3], rc = 1;
  void **buf = NULL;
  msg[0] = 0;
  oc_status_t s = OC_OK;
  for (int i = 0; i < n_in && !s; i++) {
    char name[32];
    snprintf(name, sizeof name, "in%d", i);
    in_v[i] = -1;
    if (!inputs[i].data) continue;
    in_v[i] = oc_graph_value(g, name);
    s = oc_value_set_const(g, in_v[i], inputs[i].dtype, inputs[i].rank, inputs[i].dims,
                           inputs[i].data);
    if (inputs[i].differentiable) {
      g->values[in_v[i]].kind = OC_VALUE_STATE;
      g->values[in_v[i]].foldable = 0;
      params[n_params++] = in_v[i];
    }
  }
  for (int k = 0; k < n_out; k++) {
    char name[32];
    snprintf(name, sizeof name, "y%d", k);
    y[k] = oc_graph_value(g, name);
  }
  if (!s) s = oc_emit_instr(g, "op", op, n_in, in_v, n_out, y, ints, n_ints, floats, n_floats);
  int wv = -1;
  if (!s) {
    const oc_tensor_t yt = g->values[y[which]].type;
    wv = oc_graph_value(g, "W");
    s = oc_value_set_const(g, wv, OC_DTYPE_FLOAT32, yt.rank, yt.dims, seed);
  }
  if (!s) s = oc_autodiff(g, y[which], wv, params, n_params, gv);
  if (!s) {
    buf = calloc((size_t)g->n_values + 1, sizeof(void *));
    s = gc_execute(g, buf);
  }
  if (s) {
    snprintf(msg, msg_size, "%s", oc_status_message(s));
    oc_status_free(s);
    goto out;
  }
  for (int p = 0; p < n_params; p++) {
    size_t bytes = oc_tensor_bytes(&g->values[gv[p]].type);
    grads[p] = malloc(bytes + 4);
    memcpy(grads[p], buf[gv[p]], bytes);
  }
  rc = 0;
out:
  if (buf)
    for (int v = 0; v < g->n_values; v++) free(buf[v]);
  free(buf);
  oc_graph_free(g);
  return rc;
}

/* --- MatMul ------------------------------------------------------------------ */

/* numpy matmul of in[0] and in[1]. */
static void ref_matmul(const double *const *in, const gc_input_t *inputs, int n_in, double *out,
                       const oc_tensor_t *yt, const void *user) {
  const gc_input_t *A = &inputs[0], *B = &inputs[1];
  int ra = A->rank, rb = B->rank;
  int64_t m = ra >= 2 ? A->dims[ra - 2] : 1, k = A->dims[ra - 1];
  int64_t n = rb >= 2 ? B->dims[rb - 1] : 1;
  int bra = ra > 2 ? ra - 2 : 0, brb = rb > 2 ? rb - 2 : 0;
  int br = yt->rank - (ra >= 2) - (rb >= 2);
  int64_t batch = 1, idx[OC_MAX_RANK] = {0};
  for (int i = 0; i < br; i++) batch *= yt->dims[i];
  for (int64_t t = 0; t < batch; t++) {
    const double *a = in[0] + bcast_offset(idx, br, bra, A->dims) * m * k;
    const double *b = in[1] + bcast_offset(idx, br, brb, B->dims) * k * n;
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) {
        double s = 0;
        for (int64_t q = 0; q < k; q++) s += a[i * k + q] * b[q * n + j];
        out[t * m * n + i * n + j] = s;
      }
    next_index(idx, br, yt->dims);
  }
}

static void check_matmul(int ra, const int64_t *da, int rb, const int64_t *db) {
  static float a[512], b[512];
  gc_input_t in[2] = {{OC_DTYPE_FLOAT32, ra, {0}, a, 1}, {OC_DTYPE_FLOAT32, rb, {0}, b, 1}};
  memcpy(in[0].dims, da, sizeof(int64_t) * (size_t)ra);
  memcpy(in[1].dims, db, sizeof(int64_t) * (size_t)rb);
  fill(a, gc_numel(ra, da));
  fill(b, gc_numel(rb, db));
  CHECK(OC_OP_MATMUL, NULL, 0, NULL, 0, in, 2, ref_matmul, NULL);
}

START_TEST(matmul_grad) {
  check_matmul(2, (int64_t[]){3, 4}, 2, (int64_t[]){4, 5});
  /* batched with broadcasting on both sides */
  check_matmul(4, (int64_t[]){2, 1, 3, 4}, 3, (int64_t[]){5, 4, 2});
  /* 1-D operands */
  check_matmul(1, (int64_t[]){4}, 2, (int64_t[]){4, 5});
  check_matmul(2, (int64_t[]){3, 4}, 1, (int64_t[]){4});
  check_matmul(1, (int64_t[]){4}, 1, (int64_t[]){4});
  check_matmul(1, (int64_t[]){4}, 3, (int64_t[]){2, 4, 3});
  check_matmul(3, (int64_t[]){2, 3, 4}, 1, (int64_t[]){4});
  /* one b for a batch of a (the tall-product path) */
  check_matmul(3, (int64_t[]){2, 3, 4}, 2, (int64_t[]){4, 5});
  /* a broadcast against a batch of b */
  check_matmul(2, (int64_t[]){3, 4}, 3, (int64_t[]){2, 4, 5});
  /* same batch on both sides; a batch dim of 1 */
  check_matmul(3, (int64_t[]){2, 3, 4}, 3, (int64_t[]){2, 4, 5});
  check_matmul(3, (int64_t[]){1, 3, 4}, 3, (int64_t[]){2, 4, 2});
  /* K = 1 and M = 1 */
  check_matmul(2, (int64_t[]){3, 1}, 2, (int64_t[]){1, 2});
  check_matmul(2, (int64_t[]){1, 3}, 2, (int64_t[]){3, 2});
}
END_TEST

/* Only one operand differentiable: the other gets no instruction. */
START_TEST(matmul_grad_one_side) {
  float a[12], b[20];
  fill(a, 12);
  fill(b, 20);
  gc_input_t in[2] = {{OC_DTYPE_FLOAT32, 2, {3, 4}, a, 0}, {OC_DTYPE_FLOAT32, 2, {4, 5}, b, 1}};
  CHECK(OC_OP_MATMUL, NULL, 0, NULL, 0, in, 2, ref_matmul, NULL);
  in[0].differentiable = 1;
  in[1].differentiable = 0;
  CHECK(OC_OP_MATMUL, NULL, 0, NULL, 0, in, 2, ref_matmul, NULL);
}
END_TEST

/* --- Gemm -------------------------------------------------------------------- */

typedef struct gemm_attr_s {
  int ta, tb;
  double alpha, beta;
} gemm_attr_t;

static void ref_gemm(const double *const *in, const gc_input_t *inputs, int n_in, double *out,
                     const oc_tensor_t *yt, const void *user) {
  const gemm_attr_t *at = user;
  int64_t m = yt->dims[0], n = yt->dims[1];
  int64_t k = at->ta ? inputs[0].dims[0] : inputs[0].dims[1];
  const gc_input_t *C = n_in > 2 && inputs[2].data ? &inputs[2] : NULL;
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      double s = 0;
      for (int64_t q = 0; q < k; q++) {
        double a = at->ta ? in[0][q * m + i] : in[0][i * k + q];
        double b = at->tb ? in[1][j * k + q] : in[1][q * n + j];
        s += a * b;
      }
      double c = 0;
      if (C) {
        int64_t idx[2] = {i, j};
        c = in[2][bcast_offset(idx, 2, C->rank, C->dims)];
      }
      out[i * n + j] = at->alpha * s + at->beta * c;
    }
}

START_TEST(gemm_grad) {
  const int64_t M = 3, K = 4, N = 5;
  float a[12], b[20], c[15];
  fill(a, 12);
  fill(b, 20);
  fill(c, 15);
  /* C: none, (N), (1,N), (M,N), (M,1), (1,1), scalar */
  const int c_ranks[] = {-1, 1, 2, 2, 2, 2, 0};
  const int64_t c_dims[][2] = {{0, 0}, {N, 0}, {1, N}, {M, N}, {M, 1}, {1, 1}, {0, 0}};
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++)
      for (int ci = 0; ci < 7; ci++)
        for (int bi = 0; bi < 2; bi++) {
          gemm_attr_t at = {ta, tb, 0.7, bi ? 1.0 : -1.3};
          gc_input_t in[3] = {
              {OC_DTYPE_FLOAT32, 2, {ta ? K : M, ta ? M : K}, a, 1},
              {OC_DTYPE_FLOAT32, 2, {tb ? N : K, tb ? K : N}, b, 1},
              {OC_DTYPE_FLOAT32, c_ranks[ci] < 0 ? 0 : c_ranks[ci],
               {c_dims[ci][0], c_dims[ci][1]}, c_ranks[ci] < 0 ? NULL : c, 1}};
          int64_t ints[2] = {ta, tb};
          float fl[2] = {(float)at.alpha, (float)at.beta};
          CHECK(OC_OP_GEMM, ints, 2, fl, 2, in, c_ranks[ci] < 0 ? 2 : 3, ref_gemm, &at);
        }
}
END_TEST

/* beta = 0: C gets a zero gradient (no path), A and B are still right. */
START_TEST(gemm_grad_beta_zero) {
  float a[6], b[6], c[4];
  fill(a, 6);
  fill(b, 6);
  fill(c, 4);
  gemm_attr_t at = {0, 1, 2.0, 0.0};
  gc_input_t in[3] = {{OC_DTYPE_FLOAT32, 2, {2, 3}, a, 1},
                      {OC_DTYPE_FLOAT32, 2, {2, 3}, b, 1},
                      {OC_DTYPE_FLOAT32, 2, {2, 2}, c, 1}};
  int64_t ints[2] = {0, 1};
  float fl[2] = {2.0f, 0.0f};
  CHECK(OC_OP_GEMM, ints, 2, fl, 2, in, 3, ref_gemm, &at);
}
END_TEST

/* --- Softmax / LogSoftmax ------------------------------------------------------- */

typedef struct sm_attr_s {
  int axis, flatten, log;
} sm_attr_t;

static void ref_softmax(const double *const *in, const gc_input_t *inputs, int n_in, double *out,
                        const oc_tensor_t *yt, const void *user) {
  const sm_attr_t *at = user;
  int64_t outer = 1, n = 1, inner = 1;
  for (int i = 0; i < yt->rank; i++) {
    if (i < at->axis)
      outer *= yt->dims[i];
    else if (i == at->axis || at->flatten)
      n *= yt->dims[i];
    else
      inner *= yt->dims[i];
  }
  for (int64_t o = 0; o < outer; o++)
    for (int64_t q = 0; q < inner; q++) {
      const double *x = in[0] + o * n * inner + q;
      double *y = out + o * n * inner + q;
      double mx = -INFINITY, s = 0;
      for (int64_t i = 0; i < n; i++)
        if (x[i * inner] > mx) mx = x[i * inner];
      for (int64_t i = 0; i < n; i++) s += exp(x[i * inner] - mx);
      for (int64_t i = 0; i < n; i++)
        y[i * inner] = at->log ? x[i * inner] - mx - log(s) : exp(x[i * inner] - mx) / s;
    }
}

START_TEST(softmax_grad) {
  float x[60];
  fill(x, 60);
  for (int i = 0; i < 60; i++) x[i] *= 2;
  for (int lg = 0; lg < 2; lg++) {
    int op = lg ? OC_OP_LOG_SOFTMAX : OC_OP_SOFTMAX;
    /* 2-D, last axis */
    {
      sm_attr_t at = {1, 0, lg};
      gc_input_t in[1] = {{OC_DTYPE_FLOAT32, 2, {3, 5}, x, 1}};
      int64_t ints[2] = {1, 0};
      CHECK(op, ints, 2, NULL, 0, in, 1, ref_softmax, &at);
    }
    /* rank 3, every single axis (strided rows for axes 0 and 1) */
    for (int axis = 0; axis < 3; axis++) {
      sm_attr_t at = {axis, 0, lg};
      gc_input_t in[1] = {{OC_DTYPE_FLOAT32, 3, {3, 4, 5}, x, 1}};
      int64_t ints[2] = {axis, 0};
      CHECK(op, ints, 2, NULL, 0, in, 1, ref_softmax, &at);
    }
    /* rank 3, negative axis as the compiler never writes it but plans may */
    {
      sm_attr_t at = {2, 0, lg};
      gc_input_t in[1] = {{OC_DTYPE_FLOAT32, 3, {3, 4, 5}, x, 1}};
      int64_t ints[2] = {-1, 0};
      CHECK(op, ints, 2, NULL, 0, in, 1, ref_softmax, &at);
    }
    /* opset < 13: flattened block of axes 1..2, and 0..2 */
    for (int axis = 0; axis < 2; axis++) {
      sm_attr_t at = {axis, 1, lg};
      gc_input_t in[1] = {{OC_DTYPE_FLOAT32, 3, {3, 4, 5}, x, 1}};
      int64_t ints[2] = {axis, 1};
      CHECK(op, ints, 2, NULL, 0, in, 1, ref_softmax, &at);
    }
  }
}
END_TEST

/* Rows with -inf entries (masking, as contrastive losses do): the masked
 * entries get a gradient of exactly 0 (Softmax) and every entry is finite,
 * even when the seed is NaN there (the gradient of -sum(t * log(softmax))
 * with t = 0 at a masked entry). The finite entries match finite
 * differences of the reference with the masked entries held at -inf. */
START_TEST(softmax_grad_masked) {
  const float NI = -INFINITY;
  float x[12] = {0.3f, NI, -0.5f, 1.2f, NI, NI, 0.1f, -0.7f, 0.9f, 0.2f, -0.4f, 0.6f};
  float seed[12], seed_nan[12];
  fill(seed, 12);
  for (int lg = 0; lg < 2; lg++) {
    int op = lg ? OC_OP_LOG_SOFTMAX : OC_OP_SOFTMAX;
    int64_t ints[2] = {1, 0};
    sm_attr_t at = {1, 0, lg};
    gc_input_t in[1] = {{OC_DTYPE_FLOAT32, 2, {3, 4}, x, 1}};
    for (int variant = 0; variant < 2; variant++) {
      /* variant 1: NaN seed at the masked entries (Softmax) or 0 there
       * (LogSoftmax, whose masked entries pass dy through) */
      const float *sd = seed;
      if (variant) {
        for (int i = 0; i < 12; i++) seed_nan[i] = x[i] == NI ? (lg ? 0.0f : NAN) : seed[i];
        sd = seed_nan;
      }
      float *grad[1] = {NULL};
      char msg[512];
      ck_assert_msg(vjp(op, ints, 2, NULL, 0, in, 1, 1, 0, sd, grad, msg, sizeof msg) == 0, "%s",
                    msg);
      double dx[12], yp[12];
      for (int i = 0; i < 12; i++) dx[i] = x[i];
      const double *din[1] = {dx};
      oc_tensor_t yt = {.dtype = OC_DTYPE_FLOAT32, .rank = 2, .dims = {3, 4}};
      for (int i = 0; i < 12; i++) {
        ck_assert_msg(isfinite(grad[0][i]), "op %d variant %d: gradient %d is %g", op, variant, i,
                      grad[0][i]);
        if (x[i] == NI) {
          /* Softmax: exactly 0. LogSoftmax: dy passes through. */
          float want = lg ? sd[i] : 0.0f;
          ck_assert_msg(grad[0][i] == want, "op %d: masked entry %d has gradient %g, want %g", op,
                        i, grad[0][i], want);
          continue;
        }
        /* central difference on a finite entry */
        double h = 1e-6, lp = 0, lm = 0;
        dx[i] = x[i] + h;
        ref_softmax(din, in, 1, yp, &yt, &at);
        /* masked outputs are constants (0 or -inf): left out of the loss */
        for (int j = 0; j < 12; j++)
          if (x[j] != NI) lp += sd[j] * yp[j];
        dx[i] = x[i] - h;
        ref_softmax(din, in, 1, yp, &yt, &at);
        for (int j = 0; j < 12; j++)
          if (x[j] != NI) lm += sd[j] * yp[j];
        dx[i] = x[i];
        double fd = (lp - lm) / (2 * h);
        ck_assert_msg(fabs(grad[0][i] - fd) <= TOL * fmax(fabs(fd), 1.0),
                      "op %d variant %d: entry %d gradient %g, finite differences %g", op, variant,
                      i, grad[0][i], fd);
      }
      free(grad[0]);
    }
  }
}
END_TEST

/* --- LayerNormalization ---------------------------------------------------------- */

typedef struct ln_attr_s {
  int axis;
  double eps;
  int which; /* output: 0 Y, 1 Mean, 2 InvStdDev */
} ln_attr_t;

static void ref_layernorm(const double *const *in, const gc_input_t *inputs, int n_in,
                          double *out, const oc_tensor_t *yt, const void *user) {
  const ln_attr_t *at = user;
  const gc_input_t *X = &inputs[0];
  int64_t n = 1, d = 1;
  for (int i = 0; i < X->rank; i++) {
    if (i < at->axis)
      n *= X->dims[i];
    else
      d *= X->dims[i];
  }
  int nr = X->rank - at->axis;
  const int64_t *nd = X->dims + at->axis;
  const gc_input_t *B = n_in > 2 && inputs[2].data ? &inputs[2] : NULL;
  for (int64_t r = 0; r < n; r++) {
    const double *x = in[0] + r * d;
    double m = 0, v = 0;
    for (int64_t j = 0; j < d; j++) m += x[j];
    m /= (double)d;
    for (int64_t j = 0; j < d; j++) v += (x[j] - m) * (x[j] - m);
    v /= (double)d;
    double rs = 1 / sqrt(v + at->eps);
    if (at->which == 1) {
      out[r] = m;
      continue;
    }
    if (at->which == 2) {
      out[r] = rs;
      continue;
    }
    int64_t idx[OC_MAX_RANK] = {0};
    for (int64_t j = 0; j < d; j++) {
      double s = in[1][bcast_offset(idx, nr, inputs[1].rank, inputs[1].dims)];
      double b = B ? in[2][bcast_offset(idx, nr, B->rank, B->dims)] : 0;
      out[r * d + j] = (x[j] - m) * rs * s + b;
      next_index(idx, nr, nd);
    }
  }
}

static void check_layernorm(int rank, const int64_t *xd, int axis, int rs, const int64_t *sd,
                            int rb, const int64_t *bd) {
  static float x[256], s[64], b[64];
  fill(x, gc_numel(rank, xd));
  for (int i = 0; i < 64; i++) {
    s[i] = 1.0f + 0.5f * (float)gc_uniform();
    b[i] = (float)gc_uniform();
  }
  gc_input_t in[3] = {{OC_DTYPE_FLOAT32, rank, {0}, x, 1},
                      {OC_DTYPE_FLOAT32, rs, {0}, s, 1},
                      {OC_DTYPE_FLOAT32, rb < 0 ? 0 : rb, {0}, rb < 0 ? NULL : b, 1}};
  memcpy(in[0].dims, xd, sizeof(int64_t) * (size_t)rank);
  memcpy(in[1].dims, sd, sizeof(int64_t) * (size_t)rs);
  if (rb > 0) memcpy(in[2].dims, bd, sizeof(int64_t) * (size_t)rb);
  ln_attr_t at = {axis, 1e-5, 0};
  int64_t ints[1] = {axis};
  float fl[1] = {1e-5f};
  CHECK(OC_OP_LAYERNORM, ints, 1, fl, 1, in, rb < 0 ? 2 : 3, ref_layernorm, &at);
  /* x alone differentiable (scale and bias frozen) */
  in[1].differentiable = in[2].differentiable = 0;
  CHECK(OC_OP_LAYERNORM, ints, 1, fl, 1, in, rb < 0 ? 2 : 3, ref_layernorm, &at);
  /* scale and bias alone */
  in[0].differentiable = 0;
  in[1].differentiable = in[2].differentiable = 1;
  CHECK(OC_OP_LAYERNORM, ints, 1, fl, 1, in, rb < 0 ? 2 : 3, ref_layernorm, &at);
}

START_TEST(layernorm_grad) {
  /* rank 3, axis -1 (the compiler writes 2) */
  check_layernorm(3, (int64_t[]){2, 3, 4}, 2, 1, (int64_t[]){4}, 1, (int64_t[]){4});
  /* rank 3, axis 1: normalized (3, 4) */
  check_layernorm(3, (int64_t[]){2, 3, 4}, 1, 2, (int64_t[]){3, 4}, 2, (int64_t[]){3, 4});
  /* broadcast scale and bias over the normalized shape */
  check_layernorm(3, (int64_t[]){2, 3, 4}, 1, 2, (int64_t[]){1, 4}, 1, (int64_t[]){4});
  check_layernorm(3, (int64_t[]){2, 3, 4}, 1, 1, (int64_t[]){1}, 2, (int64_t[]){3, 1});
  /* no bias; axis 0 (one row) */
  check_layernorm(2, (int64_t[]){4, 6}, 1, 1, (int64_t[]){6}, -1, NULL);
  check_layernorm(2, (int64_t[]){3, 4}, 0, 2, (int64_t[]){3, 4}, 2, (int64_t[]){3, 4});
}
END_TEST

/* The negative axis: plans may hold it; the kernel normalizes it. */
START_TEST(layernorm_grad_negative_axis) {
  float x[24], s[4], b[4];
  fill(x, 24);
  fill(s, 4);
  fill(b, 4);
  gc_input_t in[3] = {{OC_DTYPE_FLOAT32, 3, {2, 3, 4}, x, 1},
                      {OC_DTYPE_FLOAT32, 1, {4}, s, 1},
                      {OC_DTYPE_FLOAT32, 1, {4}, b, 1}};
  ln_attr_t at = {2, 1e-5, 0};
  int64_t ints[1] = {-1};
  float fl[1] = {1e-5f};
  CHECK(OC_OP_LAYERNORM, ints, 1, fl, 1, in, 3, ref_layernorm, &at);
}
END_TEST

/* Gradients flowing into the Mean and InvStdDev outputs: compare with
 * central differences of the reference for that output. */
START_TEST(layernorm_grad_stats) {
  float x[24], s[12];
  fill(x, 24);
  fill(s, 12);
  gc_input_t in[2] = {{OC_DTYPE_FLOAT32, 3, {2, 3, 4}, x, 1}, {OC_DTYPE_FLOAT32, 2, {3, 4}, s, 0}};
  int64_t ints[1] = {1};
  float fl[1] = {1e-5f};
  for (int which = 1; which < 3; which++) {
    float seed[2] = {0.7f, -1.1f};
    float *grad[1] = {NULL};
    char msg[512];
    ck_assert_msg(vjp(OC_OP_LAYERNORM, ints, 1, fl, 1, in, 2, 3, which, seed, grad, msg,
                      sizeof msg) == 0, "%s", msg);
    ln_attr_t at = {1, 1e-5, which};
    double dx[24], out[2];
    for (int i = 0; i < 24; i++) dx[i] = x[i];
    const double *din[2] = {dx, NULL};
    double ds[12];
    for (int i = 0; i < 12; i++) ds[i] = s[i];
    din[1] = ds;
    oc_tensor_t yt = {.dtype = OC_DTYPE_FLOAT32, .rank = 3, .dims = {2, 1, 1}};
    double fd[24], max_fd = 1e-3;
    for (int i = 0; i < 24; i++) {
      double h = 1e-6, lp, lm;
      dx[i] = x[i] + h;
      ref_layernorm(din, in, 2, out, &yt, &at);
      lp = seed[0] * out[0] + seed[1] * out[1];
      dx[i] = x[i] - h;
      ref_layernorm(din, in, 2, out, &yt, &at);
      lm = seed[0] * out[0] + seed[1] * out[1];
      dx[i] = x[i];
      fd[i] = (lp - lm) / (2 * h);
      if (fabs(fd[i]) > max_fd) max_fd = fabs(fd[i]);
    }
    for (int i = 0; i < 24; i++)
      ck_assert_msg(fabs(grad[0][i] - fd[i]) <= TOL * max_fd,
                    "output %d: x[%d] gradient %g, finite differences %g", which, i, grad[0][i],
                    fd[i]);
    free(grad[0]);
  }
}
END_TEST

/* --- reductions ------------------------------------------------------------------ */

typedef struct rd_attr_s {
  int op;
  int n_axes;
  int axes[OC_MAX_RANK];
} rd_attr_t;

static void ref_reduce(const double *const *in, const gc_input_t *inputs, int n_in, double *out,
                       const oc_tensor_t *yt, const void *user) {
  const rd_attr_t *at = user;
  const gc_input_t *X = &inputs[0];
  int r = X->rank;
  unsigned mask = 0;
  for (int i = 0; i < at->n_axes; i++) mask |= 1u << (at->axes[i] < 0 ? at->axes[i] + r : at->axes[i]);
  if (at->n_axes == 0) mask = (1u << r) - 1;
  int64_t ny = oc_tensor_numel(yt), nx = gc_numel(r, X->dims);
  double *acc = calloc((size_t)ny + 1, sizeof(double));
  double *mx = calloc((size_t)ny + 1, sizeof(double));
  int op = at->op;
  for (int64_t o = 0; o < ny; o++) {
    acc[o] = op == OC_OP_REDUCE_PROD ? 1 : 0;
    mx[o] = op == OC_OP_REDUCE_MIN ? INFINITY : -INFINITY;
  }
  /* pass 1: max (for Max, Min and LogSumExp) */
  int64_t idx[OC_MAX_RANK] = {0};
  int64_t *oi = malloc(sizeof(int64_t) * (size_t)(nx + 1));
  for (int64_t i = 0; i < nx; i++) {
    int64_t o = 0;
    for (int d = 0; d < r; d++)
      if (!(mask & (1u << d))) o = o * X->dims[d] + idx[d];
    oi[i] = o;
    double v = in[0][i];
    if (op == OC_OP_REDUCE_MIN ? v < mx[o] : v > mx[o]) mx[o] = v;
    next_index(idx, r, X->dims);
  }
  for (int64_t i = 0; i < nx; i++) {
    double v = in[0][i];
    int64_t o = oi[i];
    switch (op) {
      case OC_OP_REDUCE_PROD: acc[o] *= v; break;
      case OC_OP_REDUCE_L1: acc[o] += fabs(v); break;
      case OC_OP_REDUCE_L2:
      case OC_OP_REDUCE_SUM_SQUARE: acc[o] += v * v; break;
      case OC_OP_REDUCE_LOG_SUM_EXP: acc[o] += exp(v - mx[o]); break;
      default: acc[o] += v; break;
    }
  }
  double count = (double)nx / (double)ny;
  for (int64_t o = 0; o < ny; o++) {
    switch (op) {
      case OC_OP_REDUCE_MEAN: out[o] = acc[o] / count; break;
      case OC_OP_REDUCE_MAX:
      case OC_OP_REDUCE_MIN: out[o] = mx[o]; break;
      case OC_OP_REDUCE_L2: out[o] = sqrt(acc[o]); break;
      case OC_OP_REDUCE_LOG_SUM: out[o] = log(acc[o]); break;
      case OC_OP_REDUCE_LOG_SUM_EXP: out[o] = mx[o] + log(acc[o]); break;
      default: out[o] = acc[o]; break;
    }
  }
  free(oi);
  free(acc);
  free(mx);
}

static void check_reduce(int op, int rank, const int64_t *dims, int keepdims, int n_axes,
                         const int *axes) {
  static float x[256];
  int64_t n = gc_numel(rank, dims);
  fill(x, n);
  for (int64_t i = 0; i < n; i++) {
    /* Keep away from kinks and poles: |x| >= 0.2 for L1 (sign), x in
     * [0.5, 1.5] for LogSum (a positive sum), x in [0.6, 1.4] in magnitude
     * for Prod (a modest product). */
    if (op == OC_OP_REDUCE_L1) x[i] = x[i] < 0 ? x[i] - 0.2f : x[i] + 0.2f;
    if (op == OC_OP_REDUCE_LOG_SUM) x[i] = 1.0f + 0.5f * x[i];
    if (op == OC_OP_REDUCE_PROD) x[i] = (x[i] < 0 ? -1.0f : 1.0f) * (1.0f + 0.4f * x[i]);
  }
  gc_input_t in[1] = {{OC_DTYPE_FLOAT32, rank, {0}, x, 1}};
  if (rank) memcpy(in[0].dims, dims, sizeof(int64_t) * (size_t)rank);
  rd_attr_t at = {op, n_axes, {0}};
  int64_t ints[1 + OC_MAX_RANK];
  ints[0] = keepdims;
  for (int i = 0; i < n_axes; i++) {
    at.axes[i] = axes[i];
    ints[1 + i] = axes[i];
  }
  char msg[1024];
  ck_assert_msg(gc_check(op, ints, 1 + n_axes, NULL, 0, in, 1, ref_reduce, &at, TOL, msg,
                         sizeof msg) == 0,
                "op %d, keepdims %d, %d axes: %s", op, keepdims, n_axes, msg);
}

START_TEST(reduce_grad) {
  const int ops[] = {OC_OP_REDUCE_SUM,  OC_OP_REDUCE_MEAN,        OC_OP_REDUCE_MAX,
                     OC_OP_REDUCE_MIN,  OC_OP_REDUCE_PROD,        OC_OP_REDUCE_L1,
                     OC_OP_REDUCE_L2,   OC_OP_REDUCE_SUM_SQUARE,  OC_OP_REDUCE_LOG_SUM,
                     OC_OP_REDUCE_LOG_SUM_EXP};
  const int64_t d3[3] = {2, 3, 4};
  for (int k = 0; k < 10; k++) {
    int op = ops[k];
    for (int keep = 0; keep < 2; keep++) {
      check_reduce(op, 3, d3, keep, 1, (int[]){1});
      check_reduce(op, 3, d3, keep, 2, (int[]){0, 2});
      check_reduce(op, 3, d3, keep, 1, (int[]){-1});
      check_reduce(op, 3, d3, keep, 2, (int[]){2, -3}); /* unordered */
      check_reduce(op, 3, d3, keep, 0, NULL);           /* every axis */
      check_reduce(op, 3, d3, keep, 3, (int[]){0, 1, 2});
    }
    /* a size-1 reduced axis; a rank-1 input; a rank-0 input */
    check_reduce(op, 3, (int64_t[]){3, 1, 4}, 0, 1, (int[]){1});
    check_reduce(op, 1, (int64_t[]){5}, 1, 0, NULL);
    check_reduce(op, 0, NULL, 0, 0, NULL);
  }
}
END_TEST

/* Runs ReduceX on a (rows, n) x over axis 1 and returns dx for seed |dy|. */
static float *reduce_vjp(int op, const float *x, int64_t rows, int64_t n, const float *dy) {
  gc_input_t in[1] = {{OC_DTYPE_FLOAT32, 2, {rows, n}, x, 1}};
  int64_t ints[2] = {0, 1};
  float *grad[1] = {NULL};
  char msg[512];
  ck_assert_msg(vjp(op, ints, 2, NULL, 0, in, 1, 1, 0, dy, grad, msg, sizeof msg) == 0, "%s", msg);
  return grad[0];
}

/* ReduceL2 at the zero vector: gradient 0, never NaN (PyTorch's norm). */
START_TEST(reduce_l2_zero_vector) {
  float x[6] = {0, 0, 0, 3, 0, 4};
  float dy[2] = {1.5f, 2.0f};
  float *g = reduce_vjp(OC_OP_REDUCE_L2, x, 2, 3, dy);
  for (int i = 0; i < 3; i++) ck_assert_msg(g[i] == 0.0f, "dx[%d] = %g at the zero vector", i, g[i]);
  ck_assert_float_eq_tol(g[3], 2.0f * 3 / 5, 1e-6);
  ck_assert_float_eq_tol(g[4], 0.0f, 1e-6);
  ck_assert_float_eq_tol(g[5], 2.0f * 4 / 5, 1e-6);
  free(g);
}
END_TEST

/* Ties: ReduceMax/Min split dy evenly among the tied elements (PyTorch's
 * amax/amin). */
START_TEST(reduce_max_min_ties) {
  float x[8] = {1, 3, 3, 2, 5, -1, -1, 0};
  float dy[2] = {1.0f, 6.0f};
  float *g = reduce_vjp(OC_OP_REDUCE_MAX, x, 2, 4, dy);
  const float want_max[8] = {0, 0.5f, 0.5f, 0, 6, 0, 0, 0};
  for (int i = 0; i < 8; i++) ck_assert_msg(g[i] == want_max[i], "max dx[%d] = %g", i, g[i]);
  free(g);
  g = reduce_vjp(OC_OP_REDUCE_MIN, x, 2, 4, dy);
  const float want_min[8] = {1, 0, 0, 0, 0, 3, 3, 0};
  for (int i = 0; i < 8; i++) ck_assert_msg(g[i] == want_min[i], "min dx[%d] = %g", i, g[i]);
  free(g);
}
END_TEST

/* ReduceProd with zeros: one zero gets the product of the others, two zeros
 * give 0 everywhere; no NaN. */
START_TEST(reduce_prod_zeros) {
  float x[9] = {2, 0, 3, 0, 5, 0, 2, 3, 4};
  float dy[3] = {1.0f, 1.0f, 0.5f};
  float *g = reduce_vjp(OC_OP_REDUCE_PROD, x, 3, 3, dy);
  const float want[9] = {0, 6, 0, 0, 0, 0, 6, 4, 3};
  for (int i = 0; i < 9; i++) ck_assert_msg(g[i] == want[i], "dx[%d] = %g, want %g", i, g[i], want[i]);
  free(g);
}
END_TEST

/* ReduceL1 at 0 (subgradient 0) and ReduceLogSumExp of an all -inf row (0,
 * not NaN). */
START_TEST(reduce_edge_values) {
  float x[4] = {0, -2, 3, 0};
  float dy[1] = {2.0f};
  float *g = reduce_vjp(OC_OP_REDUCE_L1, x, 1, 4, dy);
  const float want[4] = {0, -2, 2, 0};
  for (int i = 0; i < 4; i++) ck_assert_msg(g[i] == want[i], "L1 dx[%d] = %g", i, g[i]);
  free(g);
  float xl[6] = {-INFINITY, -INFINITY, -INFINITY, 0.0f, -INFINITY, 0.0f};
  float dyl[2] = {1.0f, 1.0f};
  g = reduce_vjp(OC_OP_REDUCE_LOG_SUM_EXP, xl, 2, 3, dyl);
  const float wantl[6] = {0, 0, 0, 0.5f, 0, 0.5f};
  for (int i = 0; i < 6; i++) ck_assert_msg(g[i] == wantl[i], "LSE dx[%d] = %g", i, g[i]);
  free(g);
}
END_TEST

/* --- Gather ---------------------------------------------------------------------- */

typedef struct ga_attr_s {
  int axis;
} ga_attr_t;

static void ref_gather(const double *const *in, const gc_input_t *inputs, int n_in, double *out,
                       const oc_tensor_t *yt, const void *user) {
  const ga_attr_t *at = user;
  const gc_input_t *X = &inputs[0];
  int64_t outer = 1, inner = 1, n = X->dims[at->axis];
  for (int i = 0; i < at->axis; i++) outer *= X->dims[i];
  for (int i = at->axis + 1; i < X->rank; i++) inner *= X->dims[i];
  int64_t m = gc_numel(inputs[1].rank, inputs[1].dims);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < m; j++) {
      int64_t k = (int64_t)in[1][j];
      if (k < 0) k += n;
      for (int64_t e = 0; e < inner; e++)
        out[(o * m + j) * inner + e] = in[0][(o * n + k) * inner + e];
    }
}

START_TEST(gather_grad) {
  float x[60];
  fill(x, 60);
  /* axis 0, repeated and negative indices (an embedding lookup) */
  {
    int64_t idx[5] = {1, 3, -1, 1, -4};
    gc_input_t in[2] = {{OC_DTYPE_FLOAT32, 2, {5, 3}, x, 1}, {OC_DTYPE_INT64, 1, {5}, idx, 0}};
    ga_attr_t at = {0};
    int64_t ints[1] = {0};
    CHECK(OC_OP_GATHER, ints, 1, NULL, 0, in, 2, ref_gather, &at);
  }
  /* axis 0, 2-D indices, int32 */
  {
    int32_t idx[6] = {0, 4, 4, -5, 2, 0};
    gc_input_t in[2] = {{OC_DTYPE_FLOAT32, 2, {5, 3}, x, 1}, {OC_DTYPE_INT32, 2, {2, 3}, idx, 0}};
    ga_attr_t at = {0};
    int64_t ints[1] = {0};
    CHECK(OC_OP_GATHER, ints, 1, NULL, 0, in, 2, ref_gather, &at);
  }
  /* axis 1 of a rank-3 tensor, repeated and negative indices */
  {
    int64_t idx[4] = {-1, 0, 3, 0};
    gc_input_t in[2] = {{OC_DTYPE_FLOAT32, 3, {2, 4, 3}, x, 1}, {OC_DTYPE_INT64, 1, {4}, idx, 0}};
    ga_attr_t at = {1};
    int64_t ints[1] = {1};
    CHECK(OC_OP_GATHER, ints, 1, NULL, 0, in, 2, ref_gather, &at);
  }
  /* axis 1 with 2-D indices; the last axis; a scalar index */
  {
    int64_t idx[4] = {2, -2, 1, 2};
    gc_input_t in[2] = {{OC_DTYPE_FLOAT32, 3, {2, 4, 3}, x, 1}, {OC_DTYPE_INT64, 2, {2, 2}, idx, 0}};
    ga_attr_t at = {1};
    int64_t ints[1] = {1};
    CHECK(OC_OP_GATHER, ints, 1, NULL, 0, in, 2, ref_gather, &at);
    gc_input_t in2[2] = {{OC_DTYPE_FLOAT32, 3, {2, 4, 3}, x, 1}, {OC_DTYPE_INT64, 1, {4}, idx, 0}};
    ga_attr_t at2 = {2};
    int64_t ints2[1] = {2};
    int64_t idx3[4] = {2, -1, 0, 2};
    in2[1].data = idx3;
    CHECK(OC_OP_GATHER, ints2, 1, NULL, 0, in2, 2, ref_gather, &at2);
    int64_t one = -3;
    gc_input_t in3[2] = {{OC_DTYPE_FLOAT32, 2, {5, 3}, x, 1}, {OC_DTYPE_INT64, 0, {0}, &one, 0}};
    ga_attr_t at3 = {0};
    int64_t ints3[1] = {0};
    CHECK(OC_OP_GATHER, ints3, 1, NULL, 0, in3, 2, ref_gather, &at3);
  }
}
END_TEST

/* Repeated indices accumulate exactly: gathering row 1 three times with a
 * seed of ones gives 3 in row 1 and 0 elsewhere. */
START_TEST(gather_grad_accumulates) {
  float x[6] = {1, 2, 3, 4, 5, 6};
  int64_t idx[3] = {1, -2, 1};
  gc_input_t in[2] = {{OC_DTYPE_FLOAT32, 2, {3, 2}, x, 1}, {OC_DTYPE_INT64, 1, {3}, idx, 0}};
  float seed[6] = {1, 1, 1, 1, 1, 1};
  int64_t ints[1] = {0};
  float *grad[1] = {NULL};
  char msg[512];
  ck_assert_msg(vjp(OC_OP_GATHER, ints, 1, NULL, 0, in, 2, 1, 0, seed, grad, msg, sizeof msg) == 0,
                "%s", msg);
  const float want[6] = {0, 0, 3, 3, 0, 0};
  for (int i = 0; i < 6; i++) ck_assert_msg(grad[0][i] == want[i], "dx[%d] = %g", i, grad[0][i]);
  free(grad[0]);
}
END_TEST

/* The backward kernels' shape rules refuse inconsistent plans. */
START_TEST(bwd_infer_rejects_bad_ints) {
  oc_tensor_t dy = {.dtype = OC_DTYPE_FLOAT32, .rank = 2, .dims = {3, 5}};
  oc_tensor_t b = {.dtype = OC_DTYPE_FLOAT32, .rank = 2, .dims = {4, 5}};
  oc_tensor_t out = {0};
  oc_tensor_t *in[3] = {&dy, &b, NULL}, *outs[3] = {&out, NULL, NULL};
  size_t ws;
  /* MatMulBwd: da of (3,4) is right, (3,3) is not, which = 2 is not */
  int64_t good[3] = {0, 3, 4}, bad_dims[3] = {0, 3, 3}, bad_which[3] = {2, 3, 4};
  oc_op_call_t c = {.ints = good, .n_ints = 3, .n_in = 2, .in = in, .n_out = 1, .out = outs};
  oc_status_t s = oc_op_infer(OC_OP_MATMUL_BWD, &c, &ws);
  ck_assert_msg(s == OC_OK, "%s", s ? oc_status_message(s) : "");
  ck_assert_int_eq(out.rank, 2);
  c.ints = bad_dims;
  s = oc_op_infer(OC_OP_MATMUL_BWD, &c, &ws);
  ck_assert(s != OC_OK);
  oc_status_free(s);
  c.ints = bad_which;
  s = oc_op_infer(OC_OP_MATMUL_BWD, &c, &ws);
  ck_assert(s != OC_OK);
  oc_status_free(s);
  /* ReduceBwd: dy (3,5) is not a reduction of (3,4,5) over axis 2 */
  int64_t rints[7] = {OC_OP_REDUCE_SUM, 3, 3, 4, 5, 0, 2};
  oc_op_call_t r = {.ints = rints, .n_ints = 7, .n_in = 1, .in = in, .n_out = 1, .out = outs};
  s = oc_op_infer(OC_OP_REDUCE_BWD, &r, &ws);
  ck_assert(s != OC_OK);
  oc_status_free(s);
  rints[6] = 1; /* over axis 1: (3,5), right */
  s = oc_op_infer(OC_OP_REDUCE_BWD, &r, &ws);
  ck_assert_msg(s == OC_OK, "%s", s ? oc_status_message(s) : "");
  rints[0] = OC_OP_REDUCE_L2; /* needs x and y */
  s = oc_op_infer(OC_OP_REDUCE_BWD, &r, &ws);
  ck_assert(s != OC_OK);
  oc_status_free(s);
  rints[0] = OC_OP_MATMUL; /* not a reduction */
  s = oc_op_infer(OC_OP_REDUCE_BWD, &r, &ws);
  ck_assert(s != OC_OK);
  oc_status_free(s);
  /* LayerNormBwd: the mask must match the outputs */
  oc_tensor_t x = {.dtype = OC_DTYPE_FLOAT32, .rank = 2, .dims = {3, 5}};
  oc_tensor_t sc = {.dtype = OC_DTYPE_FLOAT32, .rank = 1, .dims = {5}};
  oc_tensor_t *lin[3] = {&x, &sc, &dy};
  int64_t lints[2] = {1, 3};
  float eps = 1e-5f;
  oc_op_call_t l = {.ints = lints, .n_ints = 2, .floats = &eps, .n_floats = 1, .n_in = 3,
                    .in = lin, .n_out = 1, .out = outs};
  s = oc_op_infer(OC_OP_LAYERNORM_BWD, &l, &ws);
  ck_assert(s != OC_OK);
  oc_status_free(s);
  lints[1] = 1;
  s = oc_op_infer(OC_OP_LAYERNORM_BWD, &l, &ws);
  ck_assert_msg(s == OC_OK, "%s", s ? oc_status_message(s) : "");
  /* GatherBwd: dy must be data[:axis] ++ indices ++ data[axis+1:] */
  int64_t ix[2] = {0, 1};
  oc_tensor_t idx = {.dtype = OC_DTYPE_INT64, .rank = 1, .dims = {3}, .data = ix};
  oc_tensor_t *gin[2] = {&idx, &dy};
  int64_t gints[3] = {0, 7, 5};
  oc_op_call_t gc_ = {.ints = gints, .n_ints = 3, .n_in = 2, .in = gin, .n_out = 1, .out = outs};
  s = oc_op_infer(OC_OP_GATHER_BWD, &gc_, &ws);
  ck_assert_msg(s == OC_OK, "%s", s ? oc_status_message(s) : "");
  gints[2] = 4;
  s = oc_op_infer(OC_OP_GATHER_BWD, &gc_, &ws);
  ck_assert(s != OC_OK);
  oc_status_free(s);
  /* SoftmaxBwd: log must be 0 or 1 */
  int64_t sints[3] = {1, 0, 2};
  oc_tensor_t *sin[2] = {&dy, &dy};
  oc_op_call_t sm = {.ints = sints, .n_ints = 3, .n_in = 2, .in = sin, .n_out = 1, .out = outs};
  s = oc_op_infer(OC_OP_SOFTMAX_BWD, &sm, &ws);
  ck_assert(s != OC_OK);
  oc_status_free(s);
}
END_TEST


/* --- fuzzing the backward kernels' shape rules ---------------------------------- */

static uint64_t fz_state = 12345;
static int64_t fz(int64_t lo, int64_t hi) {
  if (hi < lo) return lo;
  fz_state = fz_state * 6364136223846793005ULL + 1442695040888963407ULL;
  return lo + (int64_t)((fz_state >> 33) % (uint64_t)(hi - lo + 1));
}

/* A tensor with exactly-sized data (ASan sees any overrun). */
static oc_tensor_t fz_tensor(int dtype, int rank, const int64_t *dims, int64_t idx_lo,
                             int64_t idx_hi) {
  oc_tensor_t t = {.dtype = dtype, .rank = rank};
  for (int i = 0; i < rank; i++) t.dims[i] = dims[i];
  int64_t n = oc_tensor_numel(&t);
  t.data = malloc(oc_tensor_bytes(&t) + 1);
  for (int64_t i = 0; i < n; i++) {
    if (dtype == OC_DTYPE_FLOAT32)
      ((float *)t.data)[i] = fz(0, 9) == 0 ? 0.0f : (float)fz(-20, 20) / 8;
    else if (dtype == OC_DTYPE_INT64)
      ((int64_t *)t.data)[i] = fz(idx_lo, idx_hi);
    else
      ((int32_t *)t.data)[i] = (int32_t)fz(idx_lo, idx_hi);
  }
  return t;
}

/* The output type of a forward op on |in|, or rank -1 when it refuses. */
static oc_tensor_t fz_forward_type(int op, oc_tensor_t **in, int n_in, const int64_t *ints,
                                   int n_ints) {
  oc_tensor_t y = {0};
  oc_tensor_t *outs[1] = {&y};
  oc_op_call_t c = {.ints = ints, .n_ints = n_ints, .n_in = n_in, .in = in, .n_out = 1,
                    .out = outs};
  size_t ws;
  oc_status_t s = oc_op_infer(op, &c, &ws);
  if (s) {
    oc_status_free(s);
    y.rank = -1;
  }
  return y;
}

/* Runs |op| when its shape rule accepts, with exactly-sized outputs and
 * workspace. Returns whether it was accepted. */
static int fz_run(int op, oc_tensor_t **in, int n_in, int n_out, const int64_t *ints, int n_ints,
                  const float *fl, int n_fl) {
  oc_tensor_t outs_t[3] = {{0}};
  oc_tensor_t *outs[3] = {&outs_t[0], &outs_t[1], &outs_t[2]};
  oc_op_call_t c = {.ints = ints, .n_ints = n_ints, .floats = fl, .n_floats = n_fl,
                    .n_in = n_in, .in = in, .n_out = n_out, .out = outs};
  size_t ws = 0;
  oc_status_t s = oc_op_infer(op, &c, &ws);
  if (s) {
    oc_status_free(s);
    return 0;
  }
  for (int k = 0; k < n_out; k++) outs_t[k].data = malloc(oc_tensor_bytes(&outs_t[k]) + 1);
  c.workspace = ws ? malloc(ws) : NULL;
  c.workspace_bytes = ws;
  s = oc_op_get(op)->run(&c);
  if (s) {
    /* only indices out of range may fail at run time */
    ck_assert_msg(op == OC_OP_GATHER_BWD, "%s: %s", oc_op_get(op)->name, oc_status_message(s));
    oc_status_free(s);
  }
  for (int k = 0; k < n_out; k++) free(outs_t[k].data);
  free(c.workspace);
  return 1;
}

START_TEST(bwd_fuzz) {
  const int rd_ops[10] = {OC_OP_REDUCE_SUM,  OC_OP_REDUCE_MEAN, OC_OP_REDUCE_MAX,
                          OC_OP_REDUCE_MIN,  OC_OP_REDUCE_PROD, OC_OP_REDUCE_L1,
                          OC_OP_REDUCE_L2,   OC_OP_REDUCE_SUM_SQUARE,
                          OC_OP_REDUCE_LOG_SUM, OC_OP_REDUCE_LOG_SUM_EXP};
  int accepted[5] = {0};
  for (int iter = 0; iter < 5000; iter++) {
    int kind = iter % 5;
    int64_t ints[32];
    int n_ints = 0;
    oc_tensor_t t[5] = {{0}};
    oc_tensor_t *in[5] = {NULL, NULL, NULL, NULL, NULL};
    int n_in = 0, n_out = 1, op = 0;
    float fl[1] = {1e-5f};
    int n_fl = 0;
    int64_t d1[4], d2[4];
    int r1 = (int)fz(0, 3), r2 = (int)fz(0, 3);
    for (int i = 0; i < 4; i++) {
      d1[i] = fz(0, 3);
      d2[i] = fz(0, 3);
    }
    switch (kind) {
      case 0: { /* MatMulBwd */
        op = OC_OP_MATMUL_BWD;
        if (r1 == 0) r1 = 1;
        if (r2 == 0) r2 = 1;
        if (fz(0, 1)) d2[r2 >= 2 ? r2 - 2 : 0] = d1[r1 - 1]; /* usually matching K */
        oc_tensor_t a = {.dtype = OC_DTYPE_FLOAT32, .rank = r1}, b = {.dtype = OC_DTYPE_FLOAT32, .rank = r2};
        memcpy(a.dims, d1, sizeof d1);
        memcpy(b.dims, d2, sizeof d2);
        oc_tensor_t *ab[2] = {&a, &b};
        oc_tensor_t y = fz_forward_type(OC_OP_MATMUL, ab, 2, NULL, 0);
        if (y.rank < 0 || fz(0, 9) == 0) y.rank = (int)fz(0, 3);
        int which = (int)fz(0, 1);
        const oc_tensor_t *op_t = which ? &b : &a, *other = which ? &a : &b;
        ints[n_ints++] = fz(0, 9) == 0 ? fz(-1, 2) : which;
        for (int i = 0; i < op_t->rank; i++) ints[n_ints++] = op_t->dims[i] + (fz(0, 19) == 0);
        t[0] = fz_tensor(OC_DTYPE_FLOAT32, y.rank, y.dims, 0, 0);
        t[1] = fz_tensor(OC_DTYPE_FLOAT32, other->rank, other->dims, 0, 0);
        n_in = 2;
        break;
      }
      case 1: { /* ReduceBwd */
        op = OC_OP_REDUCE_BWD;
        int fop = rd_ops[fz(0, 9)];
        int64_t fints[8];
        int nf = 0;
        fints[nf++] = fz(0, 1);
        int na = (int)fz(0, r1);
        for (int i = 0; i < na; i++) fints[nf++] = fz(-r1 - 1, r1);
        oc_tensor_t x = {.dtype = OC_DTYPE_FLOAT32, .rank = r1};
        memcpy(x.dims, d1, sizeof d1);
        oc_tensor_t *xs[1] = {&x};
        oc_tensor_t y = fz_forward_type(fop, xs, 1, fints, nf);
        if (y.rank < 0) {
          y.rank = r2;
          memcpy(y.dims, d2, sizeof d2);
        }
        ints[n_ints++] = fz(0, 19) == 0 ? fz(0, 60) : fop;
        ints[n_ints++] = fz(0, 19) == 0 ? fz(-1, 9) : r1;
        for (int i = 0; i < r1; i++) ints[n_ints++] = d1[i];
        for (int i = 0; i < nf; i++) ints[n_ints++] = fints[i];
        t[0] = fz_tensor(OC_DTYPE_FLOAT32, y.rank, y.dims, 0, 0);
        t[1] = fz_tensor(OC_DTYPE_FLOAT32, r1, d1, 0, 0);
        t[2] = fz_tensor(OC_DTYPE_FLOAT32, y.rank, y.dims, 0, 0);
        n_in = (int)fz(1, 3);
        break;
      }
      case 2: { /* GatherBwd */
        op = OC_OP_GATHER_BWD;
        if (r1 == 0) r1 = 1;
        if (r2 > 2) r2 = 2;
        int axis = (int)fz(0, r1 - 1);
        int64_t n = d1[axis];
        int dt = fz(0, 1) ? OC_DTYPE_INT64 : OC_DTYPE_INT32;
        t[0] = fz_tensor(dt, r2, d2, -n - (fz(0, 9) == 0), n - 1 + (fz(0, 9) == 0));
        oc_tensor_t x = {.dtype = OC_DTYPE_FLOAT32, .rank = r1};
        memcpy(x.dims, d1, sizeof d1);
        oc_tensor_t *xi[2] = {&x, &t[0]};
        int64_t fa[1] = {axis};
        oc_tensor_t y = fz_forward_type(OC_OP_GATHER, xi, 2, fa, 1);
        if (fz(0, 9) == 0 && y.rank > 0) y.dims[0]++;
        t[1] = fz_tensor(OC_DTYPE_FLOAT32, y.rank, y.dims, 0, 0);
        ints[n_ints++] = fz(0, 19) == 0 ? fz(-2, 4) : axis;
        for (int i = 0; i < r1; i++) ints[n_ints++] = d1[i];
        n_in = 2;
        break;
      }
      case 3: { /* LayerNormBwd */
        op = OC_OP_LAYERNORM_BWD;
        if (r1 == 0) r1 = 1;
        int axis = (int)fz(-r1, r1 - 1), ax = axis < 0 ? axis + r1 : axis;
        int sr = (int)fz(0, r1 - ax);
        int64_t sd[4];
        for (int i = 0; i < sr; i++) {
          int64_t want = d1[r1 - sr + i];
          sd[i] = fz(0, 3) == 0 ? 1 : fz(0, 9) == 0 ? want + 1 : want;
        }
        int64_t stats[4];
        for (int i = 0; i < r1; i++) stats[i] = i < ax ? d1[i] : 1;
        t[0] = fz_tensor(OC_DTYPE_FLOAT32, r1, d1, 0, 0);
        t[1] = fz_tensor(OC_DTYPE_FLOAT32, sr, sd, 0, 0);
        t[2] = fz_tensor(OC_DTYPE_FLOAT32, r1, d1, 0, 0);
        t[3] = fz_tensor(OC_DTYPE_FLOAT32, r1, stats, 0, 0);
        t[4] = fz_tensor(OC_DTYPE_FLOAT32, r1, stats, 0, 0);
        n_in = (int)fz(2, 5);
        int64_t mask = fz(0, 8);
        ints[n_ints++] = axis;
        ints[n_ints++] = mask;
        n_out = (int)((mask & 1) + (mask >> 1 & 1) + (mask >> 2 & 1));
        if (n_out == 0 || fz(0, 19) == 0) n_out = (int)fz(1, 3);
        n_fl = 1;
        fl[0] = fz(0, 1) ? 1e-5f : 0.0f;
        break;
      }
      default: { /* SoftmaxBwd */
        op = OC_OP_SOFTMAX_BWD;
        t[0] = fz_tensor(OC_DTYPE_FLOAT32, r1, d1, 0, 0);
        t[1] = fz_tensor(OC_DTYPE_FLOAT32, r1, fz(0, 9) == 0 ? d2 : d1, 0, 0);
        ints[n_ints++] = fz(-r1 - 1, r1);
        ints[n_ints++] = fz(0, 9) == 0 ? 2 : fz(0, 1);
        ints[n_ints++] = fz(0, 9) == 0 ? -1 : fz(0, 1);
        n_in = 2;
        break;
      }
    }
    /* optional inputs (ReduceBwd's x and y, LayerNormBwd's gradients) are
     * sometimes absent */
    int opt_from = kind == 1 ? 1 : 2;
    for (int k = 0; k < n_in; k++) in[k] = k >= opt_from && fz(0, 3) == 0 ? NULL : &t[k];
    accepted[kind] += fz_run(op, in, n_in, n_out, ints, n_ints, fl, n_fl);
    for (int k = 0; k < 5; k++) free(t[k].data);
  }
  for (int k = 0; k < 5; k++) ck_assert_msg(accepted[k] > 100, "kind %d accepted only %d", k, accepted[k]);
}
END_TEST

/* The backward ops that declare in-place outputs (oc_op_def_t.inplace) give
 * the same result when output 0 is written over each such input. */
static void inplace_case(int op, oc_tensor_t *const *in, int n_in, int n_out, const int64_t *ints,
                         int n_ints, const float *fl, int n_fl) {
  uint32_t may = oc_op_get(op)->inplace;
  ck_assert_msg(may != 0, "%s declares no in-place input", oc_op_get(op)->name);
  oc_tensor_t outs_t[3] = {{0}};
  oc_tensor_t *outs[3] = {&outs_t[0], &outs_t[1], &outs_t[2]};
  oc_op_call_t c = {.ints = ints, .n_ints = n_ints, .floats = fl, .n_floats = n_fl,
                    .n_in = n_in, .in = in, .n_out = n_out, .out = outs};
  size_t ws = 0;
  oc_status_t s = oc_op_infer(op, &c, &ws);
  ck_assert_msg(s == OC_OK, "%s", s ? oc_status_message(s) : "");
  for (int k = 0; k < n_out; k++) outs_t[k].data = calloc(1, oc_tensor_bytes(&outs_t[k]) + 1);
  c.workspace = ws ? malloc(ws) : NULL;
  ck_assert(oc_op_get(op)->run(&c) == OC_OK);
  size_t bytes = oc_tensor_bytes(&outs_t[0]);
  for (int k = 0; k < n_in; k++) {
    if (!(may >> k & 1u) || !in[k]) continue;
    ck_assert_int_eq(oc_tensor_bytes(in[k]), bytes);
    /* a copy of the inputs, with input k's buffer also holding output 0 */
    oc_tensor_t cin_t[5];
    oc_tensor_t *cin[5];
    for (int j = 0; j < n_in; j++) {
      cin[j] = NULL;
      if (!in[j]) continue;
      cin_t[j] = *in[j];
      cin_t[j].data = malloc(oc_tensor_bytes(in[j]) + 1);
      memcpy(cin_t[j].data, in[j]->data, oc_tensor_bytes(in[j]));
      cin[j] = &cin_t[j];
    }
    oc_tensor_t o2_t[3] = {outs_t[0], outs_t[1], outs_t[2]};
    oc_tensor_t *o2[3] = {&o2_t[0], &o2_t[1], &o2_t[2]};
    o2_t[0].data = cin_t[k].data;
    for (int j = 1; j < n_out; j++) o2_t[j].data = calloc(1, oc_tensor_bytes(&outs_t[j]) + 1);
    oc_op_call_t c2 = c;
    c2.in = cin;
    c2.out = o2;
    ck_assert(oc_op_get(op)->run(&c2) == OC_OK);
    for (int j = 0; j < n_out; j++)
      ck_assert_msg(memcmp(o2_t[j].data, outs_t[j].data, oc_tensor_bytes(&outs_t[j])) == 0,
                    "%s in place over input %d: output %d differs", oc_op_get(op)->name, k, j);
    for (int j = 1; j < n_out; j++) free(o2_t[j].data);
    for (int j = 0; j < n_in; j++)
      if (cin[j]) free(cin_t[j].data);
  }
  for (int k = 0; k < n_out; k++) free(outs_t[k].data);
  free(c.workspace);
}

START_TEST(bwd_inplace) {
  float a[60], b[60], c[60], s5[5];
  fill(a, 60);
  fill(b, 60);
  fill(c, 60);
  for (int i = 0; i < 60; i++) a[i] = fabsf(a[i]) + 0.1f; /* a softmax-like y */
  a[7] = 0.0f;
  /* SoftmaxBwd over y and dy, rows strided (axis 1 of (3,4,5)) and contiguous */
  oc_tensor_t y = {.dtype = OC_DTYPE_FLOAT32, .rank = 3, .dims = {3, 4, 5}, .data = a};
  oc_tensor_t dy = {.dtype = OC_DTYPE_FLOAT32, .rank = 3, .dims = {3, 4, 5}, .data = b};
  oc_tensor_t *sin[2] = {&y, &dy};
  for (int lg = 0; lg < 2; lg++)
    for (int axis = 1; axis < 3; axis++) {
      int64_t ints[3] = {axis, 0, lg};
      inplace_case(OC_OP_SOFTMAX_BWD, sin, 2, 1, ints, 3, NULL, 0);
    }
  /* ReduceBwd over x for every kind that reads x: (3,4,5) over axis 1 */
  oc_tensor_t x = {.dtype = OC_DTYPE_FLOAT32, .rank = 3, .dims = {3, 4, 5}, .data = c};
  c[5] = c[10]; /* a tie along axis 1 */
  c[0] = 0.0f;
  float ry[15], rdy[15];
  fill(rdy, 15);
  const int ops[8] = {OC_OP_REDUCE_MAX, OC_OP_REDUCE_MIN, OC_OP_REDUCE_PROD, OC_OP_REDUCE_L1,
                      OC_OP_REDUCE_L2, OC_OP_REDUCE_SUM_SQUARE, OC_OP_REDUCE_LOG_SUM,
                      OC_OP_REDUCE_LOG_SUM_EXP};
  for (int k = 0; k < 8; k++) {
    int64_t fints[2] = {0, 1};
    oc_tensor_t yt = {.dtype = OC_DTYPE_FLOAT32, .rank = 2, .dims = {3, 5}, .data = ry};
    oc_tensor_t *xin[1] = {&x}, *youts[1] = {&yt};
    double acc[15];
    oc_op_call_t fc = {.ints = fints, .n_ints = 2, .n_in = 1, .in = xin, .n_out = 1,
                       .out = youts, .workspace = acc, .workspace_bytes = sizeof acc};
    ck_assert(oc_op_get(ops[k])->run(&fc) == OC_OK);
    oc_tensor_t dyt = {.dtype = OC_DTYPE_FLOAT32, .rank = 2, .dims = {3, 5}, .data = rdy};
    oc_tensor_t *rin[3] = {&dyt, &x, &yt};
    int64_t ints[7] = {ops[k], 3, 3, 4, 5, 0, 1};
    inplace_case(OC_OP_REDUCE_BWD, rin, 3, 1, ints, 7, NULL, 0);
  }
  /* LayerNormBwd over x and dy, every output subset containing dx */
  oc_tensor_t lx = {.dtype = OC_DTYPE_FLOAT32, .rank = 3, .dims = {3, 4, 5}, .data = c};
  oc_tensor_t ls = {.dtype = OC_DTYPE_FLOAT32, .rank = 1, .dims = {5}, .data = s5};
  fill(s5, 5);
  oc_tensor_t *lin[3] = {&lx, &ls, &dy};
  float eps = 1e-5f;
  for (int64_t mask = 1; mask < 8; mask += 2) {
    int64_t ints[2] = {2, mask};
    int n_out = (int)((mask & 1) + (mask >> 1 & 1) + (mask >> 2 & 1));
    inplace_case(OC_OP_LAYERNORM_BWD, lin, 3, n_out, ints, 2, &eps, 1);
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("grad_linalg");
  TCase *tc = tcase_create("grad");
  tcase_add_test(tc, matmul_grad);
  tcase_add_test(tc, matmul_grad_one_side);
  tcase_add_test(tc, gemm_grad);
  tcase_add_test(tc, gemm_grad_beta_zero);
  tcase_add_test(tc, softmax_grad);
  tcase_add_test(tc, softmax_grad_masked);
  tcase_add_test(tc, layernorm_grad);
  tcase_add_test(tc, layernorm_grad_negative_axis);
  tcase_add_test(tc, layernorm_grad_stats);
  tcase_add_test(tc, reduce_grad);
  tcase_add_test(tc, reduce_l2_zero_vector);
  tcase_add_test(tc, reduce_max_min_ties);
  tcase_add_test(tc, reduce_prod_zeros);
  tcase_add_test(tc, reduce_edge_values);
  tcase_add_test(tc, gather_grad);
  tcase_add_test(tc, gather_grad_accumulates);
  tcase_add_test(tc, bwd_infer_rejects_bad_ints);
  tcase_add_test(tc, bwd_fuzz);
  tcase_add_test(tc, bwd_inplace);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
