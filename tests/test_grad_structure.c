/*
 * Gradient rules of the structure / normalization ops (compiler/ops/pad.c,
 * resize.c, space_depth.c, norm.c, pool.c (LpPool), convtranspose.c,
 * dropout.c; kernels PadBwd, ResizeBwd, InstanceNormalizationBwd,
 * LpNormalizationBwd, LpPoolBwd, ConvTransposeBwdFilter, DropoutBwd):
 * finite differences of double-precision references written here, straight
 * from the ops' definitions, plus direct checks where finite differences
 * cannot look (LpNormalization at a zero vector, the random Dropout mask).
 */
#include <check.h>

#include "gradcheck.h"

/* --- helpers ------------------------------------------------------------------ */

static float *rand_buf(int64_t n) {
  float *p = malloc(sizeof(float) * (size_t)(n + 1));
  for (int64_t i = 0; i < n; i++) p[i] = (float)gc_uniform();
  return p;
}

/* Random values with |v| >= 0.2 (away from the kinks of |x| at 0). */
static float *rand_away_from_zero(int64_t n) {
  float *p = malloc(sizeof(float) * (size_t)(n + 1));
  for (int64_t i = 0; i < n; i++) {
    double u = gc_uniform();
    p[i] = (float)(u < 0 ? u - 0.2 : u + 0.2);
  }
  return p;
}

static gc_input_t mk_in(int dtype, int rank, const int64_t *dims, const void *data, int diff) {
  gc_input_t t;
  memset(&t, 0, sizeof t);
  t.dtype = dtype;
  t.rank = rank;
  for (int i = 0; i < rank; i++) t.dims[i] = dims[i];
  t.data = data;
  t.differentiable = diff;
  return t;
}

static int64_t numel(int rank, const int64_t *dims) { return gc_numel(rank, dims); }

/* Row-major multi-index of flat index |i| over |dims|. */
static void unflatten(int64_t i, int rank, const int64_t *dims, int64_t *idx) {
  for (int a = rank - 1; a >= 0; a--) {
    idx[a] = dims[a] ? i % dims[a] : 0;
    i = dims[a] ? i / dims[a] : 0;
  }
}

/* Runs y = op(inputs) and its backward with the seed |seed| (y0's type)
 * outside the finite-difference harness: the graph and every value's buffer
 * stay available for direct checks. Differentiable inputs become trained
 * parameters; inputs with state = 1 become (non-trained) state values. */
typedef struct direct_s {
  oc_graph_t *g;
  void **buf;
  int in_v[8], y[4], grads[8], n_params;
} direct_t;

static void direct_run(direct_t *d, int op, const int64_t *ints, int n_ints, const float *floats,
                       int n_floats, const gc_input_t *inputs, const int *state, int n_in,
                       int n_out, const float *seed) {
  memset(d, 0, sizeof *d);
  d->g = oc_graph_new();
  int params[8];
  for (int i = 0; i < n_in; i++) {
    char name[32];
    snprintf(name, sizeof name, "in%d", i);
    d->in_v[i] = oc_graph_value(d->g, name);
    oc_status_t s = oc_value_set_const(d->g, d->in_v[i], inputs[i].dtype, inputs[i].rank,
                                       inputs[i].dims, inputs[i].data);
    ck_assert_msg(s == OC_OK, "input %d", i);
    if (inputs[i].differentiable || (state && state[i])) {
      d->g->values[d->in_v[i]].kind = OC_VALUE_STATE;
      d->g->values[d->in_v[i]].foldable = 0;
    }
    if (inputs[i].differentiable) params[d->n_params++] = d->in_v[i];
  }
  for (int k = 0; k < n_out; k++) {
    char name[32];
    snprintf(name, sizeof name, "y%d", k);
    d->y[k] = oc_graph_value(d->g, name);
  }
  oc_status_t s =
      oc_emit_instr(d->g, "op", op, n_in, d->in_v, n_out, d->y, ints, n_ints, floats, n_floats);
  ck_assert_msg(s == OC_OK, "forward: %s", s ? oc_status_message(s) : "");
  const oc_tensor_t yt = d->g->values[d->y[0]].type;
  int wv = oc_graph_value(d->g, "seed");
  ck_assert(oc_value_set_const(d->g, wv, OC_DTYPE_FLOAT32, yt.rank, yt.dims, seed) == OC_OK);
  s = oc_autodiff(d->g, d->y[0], wv, params, d->n_params, d->grads);
  ck_assert_msg(s == OC_OK, "autodiff: %s", s ? oc_status_message(s) : "");
  d->buf = calloc((size_t)d->g->n_values + 1, sizeof(void *));
  s = gc_execute(d->g, d->buf);
  ck_assert_msg(s == OC_OK, "run: %s", s ? oc_status_message(s) : "");
}

static void direct_free(direct_t *d) {
  for (int v = 0; v < d->g->n_values; v++) free(d->buf[v]);
  free(d->buf);
  oc_graph_free(d->g);
}

/* --- Pad ------------------------------------------------------------------------ */

/* The input index read by output index o - begin = i along an axis of n (see
 * runtime/ops/pad.c), -1 for the constant. */
static int64_t ref_pad_src(int64_t i, int64_t n, int mode) {
  if (i >= 0 && i < n) return i;
  if (mode == 0) return -1;
  if (mode == 2) return i < 0 ? 0 : n - 1;
  if (n == 1) return 0;
  int64_t period = 2 * (n - 1), m = i % period;
  if (m < 0) m += period;
  return m < n ? m : period - m;
}

/* ints [mode, pads[2r]] through |user|; optional constant value input 1. */
static void ref_pad(const double *const *in, const gc_input_t *inputs, int n_in, double *out,
                    const oc_tensor_t *yt, const void *user) {
  const int64_t *ints = user;
  int mode = (int)ints[0], r = yt->rank;
  const int64_t *begin = ints + 1, *xd = inputs[0].dims;
  double value = n_in > 1 && inputs[1].data ? in[1][0] : 0.0;
  int64_t n = oc_tensor_numel(yt), idx[OC_MAX_RANK];
  for (int64_t o = 0; o < n; o++) {
    unflatten(o, r, yt->dims, idx);
    int64_t off = 0;
    int outside = 0;
    for (int a = 0; a < r; a++) {
      int64_t src = ref_pad_src(idx[a] - begin[a], xd[a], mode);
      if (src < 0) outside = 1;
      off = off * xd[a] + (src < 0 ? 0 : src);
    }
    out[o] = outside ? value : in[0][off];
  }
}

START_TEST(pad_grad) {
  static const struct {
    int mode, rank;
    int64_t dims[4], pads[8];
    int with_value;
  } cases[] = {
      /* constant: growing and cropping on several axes, with a value input */
      {0, 2, {3, 4}, {1, -1, 2, 0}, 1},
      {0, 3, {2, 3, 4}, {0, 1, -1, 1, -1, 2}, 0},
      {0, 4, {1, 2, 3, 3}, {0, 1, 2, -1, 0, -1, -2, 3}, 0},
      /* reflect: pads past n - 1 reflect again; an axis of length 1 */
      {1, 2, {3, 4}, {2, 3, 1, 5}, 0},
      {1, 3, {2, 3, 4}, {1, -1, 2, -1, 2, -2}, 0},
      {1, 3, {2, 1, 3}, {0, 2, 1, 0, 1, 2}, 0},
      /* edge */
      {2, 2, {3, 4}, {2, -1, 3, 2}, 0},
      {2, 4, {1, 2, 3, 3}, {0, 0, 2, 1, 0, 1, -1, 3}, 0},
      {2, 1, {5}, {-2, 3}, 0},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    int r = cases[k].rank;
    int64_t ints[9];
    ints[0] = cases[k].mode;
    for (int i = 0; i < 2 * r; i++) ints[1 + i] = cases[k].pads[i];
    float *x = rand_buf(numel(r, cases[k].dims)), value = 0.5f;
    gc_input_t in[2] = {mk_in(OC_DTYPE_FLOAT32, r, cases[k].dims, x, 1),
                        mk_in(OC_DTYPE_FLOAT32, 0, NULL, &value, 0)};
    char msg[768];
    int rc = gc_check(OC_OP_PAD, ints, 1 + 2 * r, NULL, 0, in, cases[k].with_value ? 2 : 1,
                      ref_pad, ints, 1e-3, msg, sizeof msg);
    ck_assert_msg(rc == 0, "pad case %zu (mode %d): %s", k, cases[k].mode, msg);
    free(x);
  }
}
END_TEST

/* Pads that crop an axis to nothing: the gradient is all zeros (constant
 * mode through a Pad, edge and reflect through PadBwd). */
START_TEST(pad_grad_empty_output) {
  int64_t dims[2] = {3, 2};
  float x[6] = {1, 2, 3, 4, 5, 6};
  for (int mode = 0; mode < 3; mode++) {
    int64_t ints[5] = {mode, 0, -1, 0, -1};
    gc_input_t in[1] = {mk_in(OC_DTYPE_FLOAT32, 2, dims, x, 1)};
    direct_t d;
    direct_run(&d, OC_OP_PAD, ints, 5, NULL, 0, in, NULL, 1, 1, NULL);
    ck_assert_int_eq(d.g->values[d.y[0]].type.dims[1], 0);
    const float *dx = d.buf[d.grads[0]];
    for (int i = 0; i < 6; i++) ck_assert_msg(dx[i] == 0.0f, "mode %d dx[%d] = %g", mode, i, dx[i]);
    direct_free(&d);
  }
}
END_TEST

/* --- Resize ---------------------------------------------------------------------- */

typedef struct rs_case_s {
  int r;
  int64_t ints[4 + OC_MAX_RANK];
  float floats[OC_MAX_RANK];
} rs_case_t;

/* The taps of output index o along an axis (see runtime/ops/resize.c): one
 * (nearest) or two (linear) input indices and weights. */
static int ref_rs_taps(const rs_case_t *c, int a, int64_t n, int64_t m, int64_t o, int64_t *idx,
                       double *w) {
  int mode = (int)c->ints[0], coord = (int)c->ints[1], nearest = (int)c->ints[2];
  int from_sizes = (int)c->ints[3];
  double s = from_sizes ? (double)m / (double)n : (double)c->floats[a];
  double len = from_sizes ? (double)m : s * (double)n, xi;
  switch (coord) {
    case 0: xi = (o + 0.5) / s - 0.5; break;
    case 1: xi = o / s; break;
    case 2: xi = m > 1 ? (o + 0.5) / s - 0.5 : 0.0; break;
    case 3: xi = len > 1 ? o * (double)(n - 1) / (len - 1) : 0.0; break;
    default: xi = (o + 0.5) / s; break;
  }
  if (mode == 0) {
    double v;
    switch (nearest) {
      case 0: v = ceil(xi - 0.5); break;
      case 1: v = floor(xi + 0.5); break;
      case 2: v = floor(xi); break;
      case 3: v = ceil(xi); break;
      default: v = s < 1 ? ceil(xi) : trunc(xi); break;
    }
    v = v < 0 ? 0 : v > n - 1 ? (double)(n - 1) : v;
    idx[0] = (int64_t)v;
    w[0] = 1;
    return 1;
  }
  xi = xi < 0 ? 0 : xi > n - 1 ? (double)(n - 1) : xi;
  idx[0] = (int64_t)floor(xi);
  idx[1] = idx[0] + 1 < n ? idx[0] + 1 : n - 1;
  w[1] = xi - (double)idx[0];
  w[0] = 1 - w[1];
  return 2;
}

static void ref_resize(const double *const *in, const gc_input_t *inputs, int n_in, double *out,
                       const oc_tensor_t *yt, const void *user) {
  const rs_case_t *c = user;
  int r = c->r;
  const int64_t *xd = inputs[0].dims;
  int64_t n = oc_tensor_numel(yt), idx[OC_MAX_RANK];
  for (int64_t o = 0; o < n; o++) {
    unflatten(o, r, yt->dims, idx);
    int64_t ti[OC_MAX_RANK][2];
    double tw[OC_MAX_RANK][2];
    int nt = 1;
    for (int a = 0; a < r; a++) nt = ref_rs_taps(c, a, xd[a], yt->dims[a], idx[a], ti[a], tw[a]);
    double acc = 0;
    for (int corner = 0; corner < (1 << r); corner++) {
      if (nt == 1 && corner) break;
      int64_t off = 0;
      double w = 1;
      for (int a = 0; a < r; a++) {
        int b = nt == 2 ? (corner >> a & 1) : 0;
        off = off * xd[a] + ti[a][b];
        w *= tw[a][b];
      }
      acc += w * in[0][off];
    }
    out[o] = acc;
  }
}

/* Checks Resize on x of |dims| with the head ints and scales (or sizes). */
static void check_resize(int r, const int64_t *dims, int mode, int coord, int nearest,
                         const float *scales, const int64_t *sizes) {
  rs_case_t c;
  memset(&c, 0, sizeof c);
  c.r = r;
  c.ints[0] = mode;
  c.ints[1] = coord;
  c.ints[2] = nearest;
  c.ints[3] = sizes ? 1 : 0;
  for (int a = 0; a < r; a++) {
    if (sizes) {
      c.ints[4 + a] = sizes[a];
    } else {
      c.floats[a] = scales[a];
      c.ints[4 + a] = (int64_t)floor((double)dims[a] * (double)scales[a]);
    }
  }
  float *x = rand_buf(numel(r, dims));
  gc_input_t in[1] = {mk_in(OC_DTYPE_FLOAT32, r, dims, x, 1)};
  char msg[768];
  int rc = gc_check(OC_OP_RESIZE, c.ints, 4 + r, c.floats, sizes ? 0 : r, in, 1, ref_resize, &c,
                    1e-3, msg, sizeof msg);
  ck_assert_msg(rc == 0, "resize mode %d coord %d nearest %d %s: %s", mode, coord, nearest,
                sizes ? "sizes" : "scales", msg);
  free(x);
}

START_TEST(resize_nearest_grad) {
  const int64_t dims[4] = {1, 2, 3, 5};
  const float scales[4][4] = {{1, 1, 2.0f, 1.5f},   /* up */
                              {1, 1, 0.5f, 0.6f},   /* down */
                              {1, 1, 1.7f, 0.5f},   /* mixed */
                              {1, 2, 1.0f, 2.5f}};  /* channels too */
  const int coords[4] = {0, 1, 3, 4};
  for (int nearest = 0; nearest < 5; nearest++)
    for (int ci = 0; ci < 4; ci++)
      for (int si = 0; si < 4; si++)
        check_resize(4, dims, 0, coords[ci], nearest, scales[si], NULL);
  /* sizes, rank 2 and 3 */
  const int64_t d2[2] = {4, 3}, s2[2] = {7, 2}, d3[3] = {2, 5, 2}, s3[3] = {3, 2, 4};
  for (int nearest = 0; nearest < 4; nearest++) {
    check_resize(2, d2, 0, 0, nearest, NULL, s2);
    check_resize(3, d3, 0, 3, nearest, NULL, s3);
  }
}
END_TEST

START_TEST(resize_linear_grad) {
  const int64_t dims[4] = {1, 2, 4, 5};
  const float scales[4][4] = {{1, 1, 2.0f, 1.5f},   /* up */
                              {1, 1, 0.5f, 0.6f},   /* down */
                              {1, 1, 1.75f, 0.4f},  /* mixed */
                              {1, 1.5f, 1.0f, 1.3f}};
  for (int coord = 0; coord < 5; coord++) { /* tf_half_pixel_for_nn too: the forward takes it */
    for (int si = 0; si < 4; si++) check_resize(4, dims, 1, coord, 0, scales[si], NULL);
    /* sizes: an output axis of 1 (pytorch_half_pixel maps it to 0) */
    const int64_t d3[3] = {2, 4, 3}, s3[3] = {3, 1, 7}, s3b[3] = {1, 7, 2};
    check_resize(3, d3, 1, coord, 0, NULL, s3);
    check_resize(3, d3, 1, coord, 0, NULL, s3b);
  }
}
END_TEST

/* --- DepthToSpace / SpaceToDepth ------------------------------------------------- */

/* ints [b, mode] (d2s) or [b] (s2d) through |user|: user[2] = 1 for s2d. */
static void ref_space_depth(const double *const *in, const gc_input_t *inputs, int n_in,
                            double *out, const oc_tensor_t *yt, const void *user) {
  const int64_t *u = user;
  int64_t b = u[0], crd = u[1], s2d = u[2];
  const int64_t *xd = inputs[0].dims;
  int64_t n = oc_tensor_numel(yt), idx[4];
  for (int64_t o = 0; o < n; o++) {
    unflatten(o, 4, yt->dims, idx);
    int64_t src;
    if (!s2d) {
      int64_t Cs = yt->dims[1], c = idx[1], h = idx[2] / b, i = idx[2] % b, w = idx[3] / b,
              j = idx[3] % b;
      int64_t cd = crd ? c * b * b + i * b + j : (i * b + j) * Cs + c;
      src = ((idx[0] * xd[1] + cd) * xd[2] + h) * xd[3] + w;
    } else {
      int64_t C = xd[1], cd = idx[1], c = cd % C, ij = cd / C, i = ij / b, j = ij % b;
      src = ((idx[0] * C + c) * xd[2] + idx[2] * b + i) * xd[3] + idx[3] * b + j;
    }
    out[o] = in[0][src];
  }
}

START_TEST(space_depth_grad) {
  static const struct {
    int s2d;
    int64_t b, mode, dims[4];
  } cases[] = {
      {0, 2, 0, {1, 8, 2, 3}}, {0, 2, 1, {1, 8, 2, 3}}, {0, 3, 1, {2, 9, 1, 2}},
      {0, 3, 0, {1, 18, 2, 1}}, {1, 2, 0, {2, 2, 4, 6}}, {1, 3, 0, {1, 3, 3, 6}},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    int64_t u[3] = {cases[k].b, cases[k].mode, cases[k].s2d};
    float *x = rand_buf(numel(4, cases[k].dims));
    gc_input_t in[1] = {mk_in(OC_DTYPE_FLOAT32, 4, cases[k].dims, x, 1)};
    char msg[768];
    int rc = gc_check(cases[k].s2d ? OC_OP_SPACE_TO_DEPTH : OC_OP_DEPTH_TO_SPACE, u,
                      cases[k].s2d ? 1 : 2, NULL, 0, in, 1, ref_space_depth, u, 1e-3, msg,
                      sizeof msg);
    ck_assert_msg(rc == 0, "space/depth case %zu: %s", k, msg);
    free(x);
  }
}
END_TEST

/* The SpaceToDepth form with mode 1 (the gradient of a CRD DepthToSpace) is
 * the inverse of DepthToSpace CRD. */
START_TEST(space_to_depth_crd_inverts) {
  int64_t dims[4] = {2, 8, 3, 2};
  float *x = rand_buf(numel(4, dims));
  gc_input_t in[1] = {mk_in(OC_DTYPE_FLOAT32, 4, dims, x, 1)};
  float seed[96];
  for (int i = 0; i < 96; i++) seed[i] = (float)i;
  direct_t d;
  int64_t ints[2] = {2, 1};
  direct_run(&d, OC_OP_DEPTH_TO_SPACE, ints, 2, NULL, 0, in, NULL, 1, 1, seed);
  /* dx = S2D_crd(seed); D2S_crd(dx) must give seed back, i.e. dx[k] is the
   * seed at the position x[k] moved to: y[pos(k)] = x[k]. */
  const float *dx = d.buf[d.grads[0]], *y = d.buf[d.y[0]];
  for (int k = 0; k < 96; k++) {
    int pos = -1;
    for (int j = 0; j < 96; j++)
      if (y[j] == x[k]) pos = j;
    ck_assert_int_ge(pos, 0);
    ck_assert_msg(dx[k] == seed[pos], "element %d: dx %g, want %g", k, dx[k], seed[pos]);
  }
  direct_free(&d);
  free(x);
}
END_TEST

/* --- InstanceNormalization --------------------------------------------------------- */

static void ref_instancenorm(const double *const *in, const gc_input_t *inputs, int n_in,
                             double *out, const oc_tensor_t *yt, const void *user) {
  double eps = *(const float *)user;
  int64_t N = yt->dims[0], C = yt->dims[1], S = 1;
  for (int i = 2; i < yt->rank; i++) S *= yt->dims[i];
  for (int64_t nc = 0; nc < N * C; nc++) {
    const double *x = in[0] + nc * S;
    int64_t c = nc % C;
    double m = 0, v = 0;
    for (int64_t i = 0; i < S; i++) m += x[i];
    m /= (double)S;
    for (int64_t i = 0; i < S; i++) v += (x[i] - m) * (x[i] - m);
    v /= (double)S;
    for (int64_t i = 0; i < S; i++)
      out[nc * S + i] = in[1][c] * (x[i] - m) / sqrt(v + eps) + in[2][c];
  }
}

START_TEST(instancenorm_grad) {
  static const struct {
    int rank;
    int64_t dims[4];
    float eps;
  } cases[] = {{3, {2, 3, 4}, 1e-5f}, {4, {2, 2, 3, 2}, 1e-5f}, {3, {1, 2, 5}, 0.1f},
               {4, {3, 1, 2, 2}, 1e-3f}};
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    int64_t C = cases[k].dims[1];
    float *x = rand_buf(numel(cases[k].rank, cases[k].dims)), *scale = rand_buf(C),
          *bias = rand_buf(C);
    for (int64_t c = 0; c < C; c++) scale[c] += 1.5f;
    /* every differentiable combination: all three, then x alone, scale alone */
    for (int sel = 0; sel < 3; sel++) {
      gc_input_t in[3] = {mk_in(OC_DTYPE_FLOAT32, cases[k].rank, cases[k].dims, x, sel != 2),
                          mk_in(OC_DTYPE_FLOAT32, 1, &C, scale, sel != 1),
                          mk_in(OC_DTYPE_FLOAT32, 1, &C, bias, sel == 0)};
      char msg[768];
      int rc = gc_check(OC_OP_INSTANCENORM, NULL, 0, &cases[k].eps, 1, in, 3, ref_instancenorm,
                        &cases[k].eps, 1e-3, msg, sizeof msg);
      ck_assert_msg(rc == 0, "instancenorm case %zu sel %d: %s", k, sel, msg);
    }
    free(x);
    free(scale);
    free(bias);
  }
}
END_TEST

/* --- LpNormalization ------------------------------------------------------------- */

static void ref_lpnorm(const double *const *in, const gc_input_t *inputs, int n_in, double *out,
                       const oc_tensor_t *yt, const void *user) {
  const int64_t *ints = user;
  int r = yt->rank, axis = (int)(ints[0] < 0 ? ints[0] + r : ints[0]), p = (int)ints[1];
  int64_t outer = 1, n = yt->dims[axis], inner = 1;
  for (int i = 0; i < axis; i++) outer *= yt->dims[i];
  for (int i = axis + 1; i < r; i++) inner *= yt->dims[i];
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      int64_t base = o * n * inner + i;
      double acc = 0;
      for (int64_t k = 0; k < n; k++) {
        double v = in[0][base + k * inner];
        acc += p == 1 ? fabs(v) : v * v;
      }
      double norm = p == 1 ? acc : sqrt(acc);
      for (int64_t k = 0; k < n; k++) out[base + k * inner] = in[0][base + k * inner] / norm;
    }
}

START_TEST(lpnorm_grad) {
  const int64_t dims[3] = {2, 3, 4};
  const int64_t axes[4] = {-1, 1, 0, -3};
  float *x = rand_away_from_zero(24);
  for (int p = 1; p <= 2; p++)
    for (int ai = 0; ai < 4; ai++) {
      int64_t ints[2] = {axes[ai], p};
      gc_input_t in[1] = {mk_in(OC_DTYPE_FLOAT32, 3, dims, x, 1)};
      char msg[768];
      int rc = gc_check(OC_OP_LPNORM, ints, 2, NULL, 0, in, 1, ref_lpnorm, ints, 1e-3, msg,
                        sizeof msg);
      ck_assert_msg(rc == 0, "lpnorm p %d axis %lld: %s", p, (long long)axes[ai], msg);
    }
  /* rank 1 */
  const int64_t d1[1] = {5};
  for (int p = 1; p <= 2; p++) {
    int64_t ints[2] = {0, p};
    gc_input_t in[1] = {mk_in(OC_DTYPE_FLOAT32, 1, d1, x, 1)};
    char msg[768];
    ck_assert_msg(gc_check(OC_OP_LPNORM, ints, 2, NULL, 0, in, 1, ref_lpnorm, ints, 1e-3, msg,
                           sizeof msg) == 0, "lpnorm rank 1 p %d: %s", p, msg);
  }
  free(x);
}
END_TEST

/* A zero vector: the forward gives NaN (0 / 0, ONNX's reference); the
 * gradient is 0 there instead, and the other vectors are unaffected. */
START_TEST(lpnorm_zero_vector) {
  int64_t dims[2] = {3, 4};
  float x[12] = {0, 0, 0, 0, 1, -2, 0.5f, 3, 0, 0, 0, 0};
  float seed[12];
  for (int i = 0; i < 12; i++) seed[i] = (float)(i + 1);
  x[8] = 0.0f; /* row 2 is zero too */
  for (int p = 1; p <= 2; p++) {
    int64_t ints[2] = {-1, p};
    gc_input_t in[1] = {mk_in(OC_DTYPE_FLOAT32, 2, dims, x, 1)};
    direct_t d;
    direct_run(&d, OC_OP_LPNORM, ints, 2, NULL, 0, in, NULL, 1, 1, seed);
    const float *dx = d.buf[d.grads[0]];
    for (int k = 0; k < 4; k++) {
      ck_assert_msg(dx[k] == 0.0f, "p %d: dx[%d] = %g at the zero vector", p, k, dx[k]);
      ck_assert_msg(dx[8 + k] == 0.0f, "p %d: dx[%d] = %g at the zero vector", p, 8 + k,
                    dx[8 + k]);
    }
    /* row 1 against the closed form */
    double norm = 0, s = 0;
    for (int k = 0; k < 4; k++) norm += p == 1 ? fabs(x[4 + k]) : (double)x[4 + k] * x[4 + k];
    if (p == 2) norm = sqrt(norm);
    for (int k = 0; k < 4; k++) s += seed[4 + k] * x[4 + k] / norm;
    for (int k = 0; k < 4; k++) {
      double v = x[4 + k], t = p == 1 ? (v > 0 ? 1 : v < 0 ? -1 : 0) : v / norm;
      double want = (seed[4 + k] - t * s) / norm;
      ck_assert_msg(fabs(dx[4 + k] - want) <= 1e-5 * (1 + fabs(want)), "p %d: dx[%d] %g, want %g",
                    p, 4 + k, dx[4 + k], want);
    }
    direct_free(&d);
  }
}
END_TEST

/* --- LpPool ------------------------------------------------------------------------ */

typedef struct lp_case_s {
  int n;
  int64_t ints[5 * 3 + 1];
  float p;
} lp_case_t;

static void ref_lppool(const double *const *in, const gc_input_t *inputs, int n_in, double *out,
                       const oc_tensor_t *yt, const void *user) {
  const lp_case_t *c = user;
  int n = c->n;
  const int64_t *k = c->ints, *s = c->ints + n, *pads = c->ints + 2 * n, *d = c->ints + 4 * n;
  const int64_t *xd = inputs[0].dims;
  double p = c->p;
  int64_t total = oc_tensor_numel(yt), idx[5];
  for (int64_t o = 0; o < total; o++) {
    unflatten(o, n + 2, yt->dims, idx);
    double sum = 0;
    int64_t t[3] = {0, 0, 0}, kv = 1;
    for (int a = 0; a < n; a++) kv *= k[a];
    for (int64_t tap = 0; tap < kv; tap++) {
      unflatten(tap, n, k, t);
      int64_t off = idx[0] * xd[1] + idx[1], inside = 1;
      for (int a = 0; a < n; a++) {
        int64_t i = idx[2 + a] * s[a] - pads[a] + t[a] * d[a];
        if (i < 0 || i >= xd[2 + a]) inside = 0;
        off = off * xd[2 + a] + i;
      }
      if (inside) sum += pow(fabs(in[0][off]), p);
    }
    out[o] = pow(sum, 1.0 / p);
  }
}

START_TEST(lppool_grad) {
  static const struct {
    int n;
    int64_t dims[5], k[3], s[3], pads[6], d[3], ceil;
    float p;
  } cases[] = {
      /* 2-D 3x3 stride 2 pad 1 */
      {2, {1, 2, 5, 5}, {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}, 0, 2.0f},
      {2, {1, 2, 5, 5}, {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}, 0, 3.0f},
      /* dilation 2, overlapping windows */
      {2, {2, 1, 4, 5}, {2, 2}, {1, 1}, {0, 0, 0, 0}, {2, 1}, 0, 3.0f},
      /* 1-D, ceil mode, uneven pads */
      {1, {2, 2, 7}, {3}, {2}, {1, 0}, {1}, 1, 3.0f},
      {1, {2, 2, 7}, {3}, {2}, {1, 0}, {1}, 1, 2.0f},
      /* rectangular window, ceil mode */
      {2, {1, 1, 4, 6}, {2, 3}, {1, 2}, {0, 1, 1, 0}, {1, 1}, 1, 2.0f},
      /* p = 1 */
      {2, {1, 1, 3, 4}, {2, 2}, {1, 2}, {0, 0, 0, 0}, {1, 1}, 0, 1.0f},
      /* 3-D */
      {3, {1, 1, 3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {0, 0, 0, 0, 0, 0}, {1, 1, 1}, 0, 2.0f},
  };
  for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
    lp_case_t c;
    memset(&c, 0, sizeof c);
    int n = cases[ci].n;
    c.n = n;
    c.p = cases[ci].p;
    for (int a = 0; a < n; a++) {
      c.ints[a] = cases[ci].k[a];
      c.ints[n + a] = cases[ci].s[a];
      c.ints[2 * n + a] = cases[ci].pads[a];
      c.ints[3 * n + a] = cases[ci].pads[n + a];
      c.ints[4 * n + a] = cases[ci].d[a];
    }
    c.ints[5 * n] = cases[ci].ceil;
    float *x = rand_away_from_zero(numel(n + 2, cases[ci].dims));
    gc_input_t in[1] = {mk_in(OC_DTYPE_FLOAT32, n + 2, cases[ci].dims, x, 1)};
    char msg[768];
    int rc = gc_check(OC_OP_LPPOOL, c.ints, 5 * n + 1, &c.p, 1, in, 1, ref_lppool, &c, 1e-3, msg,
                      sizeof msg);
    ck_assert_msg(rc == 0, "lppool case %zu: %s", ci, msg);
    free(x);
  }
}
END_TEST

/* --- ConvTranspose ------------------------------------------------------------------ */

typedef struct ct_case_s {
  int n;
  int64_t ints[1 + 4 * 3];
} ct_case_t;

/* y[n, g*Mg + m, i*s - pb + t*d] += x[n, c, i] * w[c, m, t] (+ bias), the
 * definition, in double. */
static void ref_convtranspose(const double *const *in, const gc_input_t *inputs, int n_in,
                              double *out, const oc_tensor_t *yt, const void *user) {
  const ct_case_t *c = user;
  int n = c->n;
  const int64_t G = c->ints[0], *s = c->ints + 1, *pads = c->ints + 1 + n, *d = c->ints + 1 + 3 * n;
  const int64_t *xd = inputs[0].dims, *wd = inputs[1].dims;
  int64_t N = xd[0], C = xd[1], Cg = C / G, Mg = wd[1], M = yt->dims[1];
  int64_t P = 1, Pin = 1, kv = 1;
  for (int a = 0; a < n; a++) {
    P *= yt->dims[2 + a];
    Pin *= xd[2 + a];
    kv *= wd[2 + a];
  }
  for (int64_t bn = 0; bn < N; bn++)
    for (int64_t m = 0; m < M; m++)
      for (int64_t q = 0; q < P; q++) out[(bn * M + m) * P + q] = n_in > 2 && in[2] ? in[2][m] : 0;
  int64_t ii[3], tt[3];
  for (int64_t bn = 0; bn < N; bn++)
    for (int64_t ch = 0; ch < C; ch++)
      for (int64_t pi = 0; pi < Pin; pi++) {
        unflatten(pi, n, xd + 2, ii);
        double xv = in[0][(bn * C + ch) * Pin + pi];
        for (int64_t m = 0; m < Mg; m++)
          for (int64_t tap = 0; tap < kv; tap++) {
            unflatten(tap, n, wd + 2, tt);
            int64_t off = 0, inside = 1;
            for (int a = 0; a < n; a++) {
              int64_t o = ii[a] * s[a] - pads[a] + tt[a] * d[a];
              if (o < 0 || o >= yt->dims[2 + a]) inside = 0;
              off = off * yt->dims[2 + a] + o;
            }
            if (!inside) continue;
            int64_t mo = (ch / Cg) * Mg + m;
            out[(bn * M + mo) * P + off] += xv * in[1][(ch * Mg + m) * kv + tap];
          }
      }
}

START_TEST(convtranspose_grad) {
  /* pads as the lowering leaves them: output_padding is a negative end pad,
   * a larger output_shape negative pads on either side. */
  static const struct {
    int n;
    int64_t x[5], w[5], group, s[3], pads[6], d[3];
    int bias;
  } cases[] = {
      /* 1-D stride 2, pads 1/1 with output_padding 1 (end 1 - 1 = 0), bias */
      {1, {2, 2, 4}, {2, 3, 3}, 1, {2}, {1, 0}, {1}, 1},
      /* 1-D stride 2, dilation 2, output_padding 1 with no pads: end -1 */
      {1, {1, 3, 3}, {3, 2, 2}, 1, {2}, {0, -1}, {2}, 0},
      /* 1-D group 2 */
      {1, {2, 4, 3}, {4, 1, 3}, 2, {1}, {1, 1}, {1}, 1},
      /* 2-D stride 2, group 2, dilation (1, 2), pads and output_padding, bias */
      {2, {1, 4, 3, 3}, {4, 1, 2, 3}, 2, {2, 2}, {1, 0, 0, -1}, {1, 2}, 1},
      /* 2-D negative begin pad (a larger output_shape), stride (1, 2) */
      {2, {1, 2, 2, 3}, {2, 2, 2, 2}, 1, {1, 2}, {-1, 0, 0, 1}, {1, 1}, 0},
      /* 2-D stride 2 both axes, output_padding on both, group 2, 2 outputs per group */
      {2, {2, 2, 2, 2}, {2, 2, 3, 3}, 2, {2, 2}, {1, 1, 0, 0}, {1, 1}, 1},
      /* 3-D */
      {3, {1, 2, 2, 2, 2}, {2, 1, 2, 2, 2}, 1, {2, 1, 2}, {0, 0, 1, 0, 0, -1}, {1, 1, 1}, 1},
  };
  for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
    ct_case_t c;
    memset(&c, 0, sizeof c);
    int n = cases[ci].n;
    c.n = n;
    c.ints[0] = cases[ci].group;
    for (int a = 0; a < n; a++) {
      c.ints[1 + a] = cases[ci].s[a];
      c.ints[1 + n + a] = cases[ci].pads[a];
      c.ints[1 + 2 * n + a] = cases[ci].pads[n + a];
      c.ints[1 + 3 * n + a] = cases[ci].d[a];
    }
    int64_t M = cases[ci].w[1] * cases[ci].group;
    float *x = rand_buf(numel(n + 2, cases[ci].x)), *w = rand_buf(numel(n + 2, cases[ci].w)),
          *b = rand_buf(M);
    /* all inputs differentiable, then x alone, then w alone */
    for (int sel = 0; sel < 3; sel++) {
      gc_input_t in[3] = {mk_in(OC_DTYPE_FLOAT32, n + 2, cases[ci].x, x, sel != 2),
                          mk_in(OC_DTYPE_FLOAT32, n + 2, cases[ci].w, w, sel != 1),
                          mk_in(OC_DTYPE_FLOAT32, 1, &M, b, sel == 0)};
      char msg[768];
      int rc = gc_check(OC_OP_CONVTRANSPOSE, c.ints, 1 + 4 * n, NULL, 0, in,
                        cases[ci].bias ? 3 : 2, ref_convtranspose, &c, 1e-3, msg, sizeof msg);
      ck_assert_msg(rc == 0, "convtranspose case %zu sel %d: %s", ci, sel, msg);
    }
    free(x);
    free(w);
    free(b);
  }
}
END_TEST

/* --- Dropout ------------------------------------------------------------------------ */

/* dX is exactly dY / (1 - ratio) (the forward's float scale) where the
 * forward kept the element and 0 where it dropped it: the mask the forward
 * wrote, though its RNG counter moved on before the backward ran. */
START_TEST(dropout_grad_uses_forward_mask) {
  const float ratios[3] = {0.5f, 0.3f, 0.9f};
  int64_t dims[2] = {16, 25}, two = 2;
  float *x = rand_away_from_zero(400), *seed = rand_buf(400);
  for (int ri = 0; ri < 3; ri++) {
    float ratio = ratios[ri];
    int64_t rng[2] = {1234 + ri, 5};
    gc_input_t in[2] = {mk_in(OC_DTYPE_FLOAT32, 2, dims, x, 1),
                        mk_in(OC_DTYPE_INT64, 1, &two, rng, 0)};
    int state[2] = {0, 1};
    direct_t d;
    direct_run(&d, OC_OP_DROPOUT, NULL, 0, &ratio, 1, in, state, 2, 2, seed);
    const float *dx = d.buf[d.grads[0]], *y = d.buf[d.y[0]];
    const uint8_t *mask = d.buf[d.y[1]];
    const int64_t *st = d.buf[d.in_v[1]];
    ck_assert_int_eq(st[1], 6); /* the forward advanced its counter */
    float scale = (float)(1.0 / (1.0 - (double)ratio));
    int kept = 0;
    for (int i = 0; i < 400; i++) {
      ck_assert(mask[i] <= 1);
      kept += mask[i];
      if (mask[i]) {
        ck_assert_msg(y[i] == x[i] * scale, "y[%d]", i);
        ck_assert_msg(dx[i] == seed[i] * scale, "ratio %g: dx[%d] = %.9g, want %.9g", ratio, i,
                      dx[i], seed[i] * scale);
      } else {
        ck_assert_msg(y[i] == 0.0f && dx[i] == 0.0f, "ratio %g: dropped element %d: y %g dx %g",
                      ratio, i, y[i], dx[i]);
      }
    }
    ck_assert_msg(kept > 0 && kept < 400, "ratio %g kept %d of 400", ratio, kept);
    direct_free(&d);
  }
  free(x);
  free(seed);
}
END_TEST

/* Without the mask output the rule refuses (it never redraws the mask). */
START_TEST(dropout_grad_needs_mask) {
  int64_t dims[1] = {8}, two = 2, rng[2] = {1, 0};
  float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, ratio = 0.5f;
  oc_graph_t *g = oc_graph_new();
  int xv = oc_graph_value(g, "x"), rv = oc_graph_value(g, "rng"), y = oc_graph_value(g, "y");
  ck_assert(oc_value_set_const(g, xv, OC_DTYPE_FLOAT32, 1, dims, x) == OC_OK);
  ck_assert(oc_value_set_const(g, rv, OC_DTYPE_INT64, 1, &two, rng) == OC_OK);
  g->values[xv].kind = g->values[rv].kind = OC_VALUE_STATE;
  g->values[xv].foldable = g->values[rv].foldable = 0;
  int in[2] = {xv, rv};
  ck_assert(oc_emit_instr(g, "op", OC_OP_DROPOUT, 2, in, 1, &y, NULL, 0, &ratio, 1) == OC_OK);
  int seed = oc_graph_value(g, "seed"), grad;
  ck_assert(oc_value_set_const(g, seed, OC_DTYPE_FLOAT32, 1, dims, x) == OC_OK);
  oc_status_t s = oc_autodiff(g, y, seed, &xv, 1, &grad);
  ck_assert(s != OC_OK);
  ck_assert_msg(strstr(oc_status_message(s), "mask") != NULL, "%s", oc_status_message(s));
  oc_status_free(s);
  oc_graph_free(g);
}
END_TEST

/* The lowering of a training-mode Dropout (opset 13) that does not ask for
 * the mask still writes one, and the gradient follows it end to end. */
START_TEST(dropout_lowering_keeps_mask) {
  oc_graph_t *g = oc_graph_new();
  g->opset = 13;
  int64_t dims[2] = {4, 8};
  float ratio = 0.25f, *x = rand_away_from_zero(32), *seedv = rand_buf(32);
  uint8_t training = 1;
  int xv = oc_graph_value(g, "x"), rv = oc_graph_value(g, "ratio");
  int tv = oc_graph_value(g, "training_mode"), yv = oc_graph_value(g, "y");
  g->values[xv].type.dtype = OC_DTYPE_FLOAT32;
  g->values[xv].type.rank = 2;
  g->values[xv].type.dims[0] = 4;
  g->values[xv].type.dims[1] = 8;
  g->values[xv].known = 1;
  g->values[xv].kind = OC_VALUE_INPUT;
  ck_assert(oc_value_set_const(g, rv, OC_DTYPE_FLOAT32, 0, NULL, &ratio) == OC_OK);
  ck_assert(oc_value_set_const(g, tv, OC_DTYPE_BOOL, 0, NULL, &training) == OC_OK);
  oc_node_t *nd = oc_graph_add_node(g);
  nd->name = oc_strdup("drop");
  nd->op_type = oc_strdup("Dropout");
  nd->domain = oc_strdup("");
  nd->in = calloc(3, sizeof(int));
  nd->out = calloc(1, sizeof(int));
  nd->n_in = 3;
  nd->n_out = 1;
  nd->in[0] = xv;
  nd->in[1] = rv;
  nd->in[2] = tv;
  nd->out[0] = yv;
  oc_lower_t lw = {.g = g, .node = nd, .opset = 13, .fold_limit_bytes = 1 << 20};
  oc_lower_fn fn = oc_lower_find("", "Dropout");
  ck_assert(fn != NULL);
  oc_status_t s = fn(&lw);
  ck_assert_msg(s == OC_OK, "%s", s ? oc_status_message(s) : "");
  ck_assert_int_eq(g->n_instrs, 1);
  ck_assert_int_eq(g->instrs[0].op, OC_OP_DROPOUT);
  ck_assert_int_eq(g->instrs[0].n_out, 2);
  int mask = g->instrs[0].out[1];
  ck_assert_int_eq(g->values[mask].type.dtype, OC_DTYPE_BOOL);
  int sv = oc_graph_value(g, "seed"), grad;
  ck_assert(oc_value_set_const(g, sv, OC_DTYPE_FLOAT32, 2, dims, seedv) == OC_OK);
  s = oc_autodiff(g, yv, sv, &xv, 1, &grad);
  ck_assert_msg(s == OC_OK, "%s", s ? oc_status_message(s) : "");
  void **buf = calloc((size_t)g->n_values + 1, sizeof(void *));
  buf[xv] = malloc(32 * sizeof(float));
  memcpy(buf[xv], x, 32 * sizeof(float));
  s = gc_execute(g, buf);
  ck_assert_msg(s == OC_OK, "%s", s ? oc_status_message(s) : "");
  const float *dx = buf[grad], *y = buf[yv];
  const uint8_t *m = buf[mask];
  float scale = (float)(1.0 / (1.0 - (double)ratio));
  for (int i = 0; i < 32; i++) {
    ck_assert(y[i] == (m[i] ? x[i] * scale : 0.0f));
    ck_assert(dx[i] == (m[i] ? seedv[i] * scale : 0.0f));
  }
  for (int v = 0; v < g->n_values; v++) free(buf[v]);
  free(buf);
  oc_graph_free(g);
  free(x);
  free(seedv);
}
END_TEST

/* --- backward kernels: hostile ints are refused by infer -------------------------- */

static oc_status_t infer1(int op, oc_tensor_t **in, int n_in, int n_out, const int64_t *ints,
                          int n_ints, const float *floats, int n_floats) {
  oc_tensor_t outs[3];
  oc_tensor_t *po[3] = {&outs[0], &outs[1], &outs[2]};
  oc_op_call_t c = {.ints = ints, .n_ints = n_ints, .floats = floats, .n_floats = n_floats,
                    .n_in = n_in, .in = in, .n_out = n_out, .out = po};
  size_t ws;
  return oc_op_infer(op, &c, &ws);
}

static oc_tensor_t ty(int dtype, int rank, const int64_t *dims) {
  oc_tensor_t t;
  memset(&t, 0, sizeof t);
  oc_tensor_set_type(&t, dtype, rank, dims);
  return t;
}

static void expect_fail(oc_status_t s, const char *what) {
  ck_assert_msg(s != OC_OK, "%s: accepted", what);
  oc_status_free(s);
}

START_TEST(bwd_kernels_refuse_bad_ints) {
  const int64_t hostile[] = {-1, INT64_MAX, INT64_MIN, (int64_t)1 << 41, 0};
  /* PadBwd: dY (4, 5) */
  int64_t dd[2] = {4, 5};
  oc_tensor_t dy = ty(OC_DTYPE_FLOAT32, 2, dd), dyi = ty(OC_DTYPE_INT64, 2, dd);
  oc_tensor_t *pin[1] = {&dy}, *pini[1] = {&dyi};
  int64_t ok[5] = {1, 1, 1, 1, 1};
  ck_assert(infer1(OC_OP_PAD_BWD, pin, 1, 1, ok, 5, NULL, 0) == OC_OK);
  expect_fail(infer1(OC_OP_PAD_BWD, pini, 1, 1, ok, 5, NULL, 0), "PadBwd int64 dY");
  expect_fail(infer1(OC_OP_PAD_BWD, pin, 1, 1, ok, 4, NULL, 0), "PadBwd 4 ints");
  for (int h = 1; h < 4; h++) { /* (-1 is fine: the forward cropped) */
    int64_t bad[5] = {1, hostile[h], 0, 0, 0};
    expect_fail(infer1(OC_OP_PAD_BWD, pin, 1, 1, bad, 5, NULL, 0), "PadBwd hostile pad");
  }
  int64_t crop_all[5] = {2, 3, 0, 2, 5}; /* edge, axis 1 of 5 - 0 - 5 = 0 from 5 */
  expect_fail(infer1(OC_OP_PAD_BWD, pin, 1, 1, crop_all, 5, NULL, 0), "PadBwd edge from nothing");
  int64_t mode3[5] = {3, 0, 0, 0, 0};
  expect_fail(infer1(OC_OP_PAD_BWD, pin, 1, 1, mode3, 5, NULL, 0), "PadBwd mode 3");

  /* ResizeBwd: dY (1, 1, 4, 6) from x (1, 1, 2, 3), scales 2 */
  int64_t ydims[4] = {1, 1, 4, 6};
  oc_tensor_t ry = ty(OC_DTYPE_FLOAT32, 4, ydims);
  oc_tensor_t *rin[1] = {&ry};
  int64_t rints[12] = {1, 0, 0, 0, 1, 1, 4, 6, 1, 1, 2, 3};
  float rsc[4] = {1, 1, 2, 2};
  ck_assert(infer1(OC_OP_RESIZE_BWD, rin, 1, 1, rints, 12, rsc, 4) == OC_OK);
  for (int i = 0; i < 12; i++)
    for (int h = 0; h < 4; h++) {
      int64_t bad[12];
      memcpy(bad, rints, sizeof bad);
      bad[i] = hostile[h];
      expect_fail(infer1(OC_OP_RESIZE_BWD, rin, 1, 1, bad, 12, rsc, 4), "ResizeBwd hostile int");
    }
  int64_t mismatch[12] = {1, 0, 0, 0, 1, 1, 4, 5, 1, 1, 2, 3}; /* the forward gives 4x5 */
  expect_fail(infer1(OC_OP_RESIZE_BWD, rin, 1, 1, mismatch, 12, rsc, 4), "ResizeBwd dY mismatch");
  expect_fail(infer1(OC_OP_RESIZE_BWD, rin, 1, 1, rints, 8, rsc, 4), "ResizeBwd 8 ints");

  /* InstanceNormalizationBwd */
  int64_t xd[3] = {2, 3, 4}, cd = 3, cd2 = 2;
  oc_tensor_t x = ty(OC_DTYPE_FLOAT32, 3, xd), sc = ty(OC_DTYPE_FLOAT32, 1, &cd),
              sc2 = ty(OC_DTYPE_FLOAT32, 1, &cd2);
  oc_tensor_t *iin[3] = {&x, &sc, &x}, *iin_bad[3] = {&x, &sc2, &x}, *iin_dy[3] = {&x, &sc, &sc};
  float eps = 1e-5f;
  for (int64_t mask = 1; mask <= 7; mask++) {
    int n_out = (int)(mask & 1) + (int)(mask >> 1 & 1) + (int)(mask >> 2 & 1);
    ck_assert(infer1(OC_OP_INSTANCENORM_BWD, iin, 3, n_out, &mask, 1, &eps, 1) == OC_OK);
    expect_fail(infer1(OC_OP_INSTANCENORM_BWD, iin, 3, n_out == 3 ? 1 : n_out + 1, &mask, 1,
                       &eps, 1),
                "InstanceNormBwd output count");
  }
  for (int h = 0; h < 5; h++)
    expect_fail(infer1(OC_OP_INSTANCENORM_BWD, iin, 3, 1, &hostile[h], 1, &eps, 1),
                "InstanceNormBwd mask");
  int64_t m1 = 1;
  expect_fail(infer1(OC_OP_INSTANCENORM_BWD, iin_bad, 3, 1, &m1, 1, &eps, 1), "scale of 2");
  expect_fail(infer1(OC_OP_INSTANCENORM_BWD, iin_dy, 3, 1, &m1, 1, &eps, 1), "dY of 3");
  expect_fail(infer1(OC_OP_INSTANCENORM_BWD, iin, 3, 1, &m1, 1, NULL, 0), "no eps");

  /* LpNormalizationBwd */
  oc_tensor_t *lin[2] = {&x, &x}, *lin_bad[2] = {&x, &sc};
  int64_t lok[2] = {-1, 2};
  ck_assert(infer1(OC_OP_LPNORM_BWD, lin, 2, 1, lok, 2, NULL, 0) == OC_OK);
  expect_fail(infer1(OC_OP_LPNORM_BWD, lin_bad, 2, 1, lok, 2, NULL, 0), "LpNormBwd dY");
  for (int h = 0; h < 4; h++) {
    int64_t b1[2] = {hostile[h], 2}, b2[2] = {0, hostile[h]};
    if (h > 0) /* axis -1 is fine */
      expect_fail(infer1(OC_OP_LPNORM_BWD, lin, 2, 1, b1, 2, NULL, 0), "LpNormBwd axis");
    expect_fail(infer1(OC_OP_LPNORM_BWD, lin, 2, 1, b2, 2, NULL, 0), "LpNormBwd p");
  }

  /* LpPoolBwd: x (1, 1, 5, 5), k 3 s 2 pads 1 -> (1, 1, 3, 3) */
  int64_t pxd[4] = {1, 1, 5, 5}, pyd[4] = {1, 1, 3, 3};
  oc_tensor_t px = ty(OC_DTYPE_FLOAT32, 4, pxd), py = ty(OC_DTYPE_FLOAT32, 4, pyd);
  oc_tensor_t *ppin[2] = {&px, &py}, *ppin_bad[2] = {&px, &px};
  int64_t pints[11] = {3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0};
  float pp = 2.0f, badp[3] = {0.0f, -1.0f, INFINITY};
  ck_assert(infer1(OC_OP_LPPOOL_BWD, ppin, 2, 1, pints, 11, &pp, 1) == OC_OK);
  expect_fail(infer1(OC_OP_LPPOOL_BWD, ppin_bad, 2, 1, pints, 11, &pp, 1), "LpPoolBwd dY");
  for (int i = 0; i < 3; i++)
    expect_fail(infer1(OC_OP_LPPOOL_BWD, ppin, 2, 1, pints, 11, &badp[i], 1), "LpPoolBwd p");
  for (int i = 0; i < 11; i++)
    for (int h = 0; h < 4; h++) {
      int64_t bad[11];
      memcpy(bad, pints, sizeof bad);
      bad[i] = hostile[h];
      expect_fail(infer1(OC_OP_LPPOOL_BWD, ppin, 2, 1, bad, 11, &pp, 1), "LpPoolBwd hostile");
    }

  /* ConvTransposeBwdFilter: x (1, 2, 3, 3), W (2, 2, 3, 3), stride 2, pads 1
   * -> y (1, 2, 5, 5) */
  int64_t cxd[4] = {1, 2, 3, 3}, cyd[4] = {1, 2, 5, 5}, cyd3[4] = {1, 3, 5, 5};
  oc_tensor_t cx = ty(OC_DTYPE_FLOAT32, 4, cxd), cy = ty(OC_DTYPE_FLOAT32, 4, cyd),
              cy3 = ty(OC_DTYPE_FLOAT32, 4, cyd3);
  oc_tensor_t *cin[2] = {&cx, &cy}, *cin3[2] = {&cx, &cy3}, *cin_swap[2] = {&cy, &cx};
  int64_t cints[11] = {1, 2, 2, 1, 1, 1, 1, 1, 1, 3, 3};
  ck_assert(infer1(OC_OP_CONVTRANSPOSE_BWD_FILTER, cin, 2, 1, cints, 11, NULL, 0) == OC_OK);
  int64_t g2[11] = {2, 2, 2, 1, 1, 1, 1, 1, 1, 3, 3};
  ck_assert(infer1(OC_OP_CONVTRANSPOSE_BWD_FILTER, cin, 2, 1, g2, 11, NULL, 0) == OC_OK);
  expect_fail(infer1(OC_OP_CONVTRANSPOSE_BWD_FILTER, cin3, 2, 1, g2, 11, NULL, 0), "3 % 2");
  expect_fail(infer1(OC_OP_CONVTRANSPOSE_BWD_FILTER, cin_swap, 2, 1, cints, 11, NULL, 0),
              "dY swapped");
  expect_fail(infer1(OC_OP_CONVTRANSPOSE_BWD_FILTER, cin, 2, 1, cints, 9, NULL, 0), "9 ints");
  /* every hostile value anywhere fails (a changed pad changes y's shape) */
  for (int i = 0; i < 11; i++)
    for (int h = 0; h < 5; h++) {
      int64_t bad[11];
      memcpy(bad, cints, sizeof bad);
      bad[i] = hostile[h];
      expect_fail(infer1(OC_OP_CONVTRANSPOSE_BWD_FILTER, cin, 2, 1, bad, 11, NULL, 0),
                  "ConvTransposeBwdFilter hostile int");
    }

  /* DropoutBwd */
  int64_t dd8 = 8, dd7 = 7;
  oc_tensor_t g8 = ty(OC_DTYPE_FLOAT32, 1, &dd8), m8 = ty(OC_DTYPE_BOOL, 1, &dd8),
              m7 = ty(OC_DTYPE_BOOL, 1, &dd7), f8 = ty(OC_DTYPE_FLOAT32, 1, &dd8);
  oc_tensor_t *din[2] = {&g8, &m8}, *din7[2] = {&g8, &m7}, *dinf[2] = {&g8, &f8};
  float half = 0.5f, badr[3] = {-0.1f, 1.5f, NAN};
  ck_assert(infer1(OC_OP_DROPOUT_BWD, din, 2, 1, NULL, 0, &half, 1) == OC_OK);
  expect_fail(infer1(OC_OP_DROPOUT_BWD, din7, 2, 1, NULL, 0, &half, 1), "mask of 7");
  expect_fail(infer1(OC_OP_DROPOUT_BWD, dinf, 2, 1, NULL, 0, &half, 1), "float mask");
  expect_fail(infer1(OC_OP_DROPOUT_BWD, din, 2, 1, NULL, 0, NULL, 0), "no ratio");
  for (int i = 0; i < 3; i++)
    expect_fail(infer1(OC_OP_DROPOUT_BWD, din, 2, 1, NULL, 0, &badr[i], 1), "ratio");

  /* SpaceToDepth's mode int */
  int64_t sd[4] = {1, 2, 4, 4};
  oc_tensor_t sx = ty(OC_DTYPE_FLOAT32, 4, sd);
  oc_tensor_t *sin[1] = {&sx};
  int64_t s_ok[2] = {2, 1}, s_bad[2] = {2, 2};
  ck_assert(infer1(OC_OP_SPACE_TO_DEPTH, sin, 1, 1, s_ok, 2, NULL, 0) == OC_OK);
  expect_fail(infer1(OC_OP_SPACE_TO_DEPTH, sin, 1, 1, s_bad, 2, NULL, 0), "s2d mode 2");
  expect_fail(infer1(OC_OP_SPACE_TO_DEPTH, sin, 1, 1, s_ok, 0, NULL, 0), "s2d no ints");
}
END_TEST

int main(void) {
  Suite *s = suite_create("grad_structure");
  TCase *tc = tcase_create("grad");
  tcase_add_test(tc, pad_grad);
  tcase_add_test(tc, pad_grad_empty_output);
  tcase_add_test(tc, resize_nearest_grad);
  tcase_add_test(tc, resize_linear_grad);
  tcase_add_test(tc, space_depth_grad);
  tcase_add_test(tc, space_to_depth_crd_inverts);
  tcase_add_test(tc, instancenorm_grad);
  tcase_add_test(tc, lpnorm_grad);
  tcase_add_test(tc, lpnorm_zero_vector);
  tcase_add_test(tc, lppool_grad);
  tcase_add_test(tc, convtranspose_grad);
  tcase_add_test(tc, dropout_grad_uses_forward_mask);
  tcase_add_test(tc, dropout_grad_needs_mask);
  tcase_add_test(tc, dropout_lowering_keeps_mask);
  tcase_add_test(tc, bwd_kernels_refuse_bad_ints);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
