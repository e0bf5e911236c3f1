/*
 * Gradient rules of the indexing family (compiler/ops/indexing.c and
 * compiler/ops/topk.c): Tile (TileBwd), Trilu, GatherElements
 * (GatherElementsBwd), GatherND (GatherNDBwd), ScatterElements and ScatterND
 * (reductions none and add), TopK and CumSum, checked against finite
 * differences of double-precision references. Also: PyTorch's convention
 * for a repeated index in a scatter without reduction, the refused scatter
 * reductions, Hardmax (no rule), and the backward kernels' shape rules on
 * random shapes (ASan).
 */
#include <check.h>
#include <stdint.h>

#include "gradcheck.h"

#define TOL 1e-3

static void fill(float *x, int64_t n) {
  for (int64_t i = 0; i < n; i++) x[i] = (float)gc_uniform();
}

/* Coordinates of flat index |f| in dims. */
static void unravel(int64_t f, int rank, const int64_t *dims, int64_t *idx) {
  for (int i = rank - 1; i >= 0; i--) {
    idx[i] = dims[i] ? f % dims[i] : 0;
    f = dims[i] ? f / dims[i] : 0;
  }
}

static int64_t ravel(int rank, const int64_t *dims, const int64_t *idx) {
  int64_t f = 0;
  for (int i = 0; i < rank; i++) f = f * dims[i] + idx[i];
  return f;
}

static gc_input_t input_f(int rank, const int64_t *dims, const float *data, int diff) {
  gc_input_t in = {OC_DTYPE_FLOAT32, rank};
  if (rank) memcpy(in.dims, dims, sizeof(int64_t) * (size_t)rank);
  in.data = data;
  in.differentiable = diff;
  return in;
}

static gc_input_t input_i(int rank, const int64_t *dims, const int64_t *data) {
  gc_input_t in = {OC_DTYPE_INT64, rank};
  if (rank) memcpy(in.dims, dims, sizeof(int64_t) * (size_t)rank);
  in.data = data;
  return in;
}

#define CHECK(op, ints, n_ints, in, n_in, ref, user, what)                                   \
  do {                                                                                     \
    char msg_[512];                                                                        \
    ck_assert_msg(gc_check(op, ints, n_ints, NULL, 0, in, n_in, ref, user, TOL, msg_,      \
                           sizeof msg_) == 0,                                              \
                  "%s: %s", what, msg_);                                                   \
  } while (0)

/* --- Tile ------------------------------------------------------------------------ */

static void ref_tile(const double *const *in, const gc_input_t *inputs, int n_in, double *out,
                     const oc_tensor_t *yt, const void *user) {
  const gc_input_t *x = &inputs[0];
  int64_t idx[OC_MAX_RANK], n = oc_tensor_numel(yt);
  for (int64_t f = 0; f < n; f++) {
    unravel(f, yt->rank, yt->dims, idx);
    for (int i = 0; i < x->rank; i++) idx[i] %= x->dims[i];
    out[f] = in[0][ravel(x->rank, x->dims, idx)];
  }
}

static void check_tile(int rank, const int64_t *dims, const int64_t *reps) {
  float x[128];
  int64_t n = gc_numel(rank, dims);
  ck_assert(n <= 128);
  fill(x, n);
  gc_input_t in[1] = {input_f(rank, dims, x, 1)};
  CHECK(OC_OP_TILE, reps, rank, in, 1, ref_tile, NULL, "tile");
}

START_TEST(tile_grad) {
  check_tile(3, (int64_t[]){2, 3, 2}, (int64_t[]){2, 1, 3});
  check_tile(3, (int64_t[]){1, 2, 3}, (int64_t[]){2, 1, 3}); /* a size-1 axis repeated */
  check_tile(2, (int64_t[]){3, 2}, (int64_t[]){1, 1});
  check_tile(2, (int64_t[]){3, 2}, (int64_t[]){3, 2});
  check_tile(1, (int64_t[]){4}, (int64_t[]){3});
  check_tile(4, (int64_t[]){2, 1, 2, 2}, (int64_t[]){1, 2, 2, 2});
  check_tile(2, (int64_t[]){2, 3}, (int64_t[]){0, 2}); /* an empty output: dx = 0 */
  check_tile(0, NULL, NULL);                            /* a scalar */
}
END_TEST

/* --- Trilu ----------------------------------------------------------------------- */

static void ref_trilu(const double *const *in, const gc_input_t *inputs, int n_in, double *out,
                      const oc_tensor_t *yt, const void *user) {
  const int64_t *ints = user; /* upper, k */
  int r = yt->rank;
  int64_t idx[OC_MAX_RANK], n = oc_tensor_numel(yt);
  for (int64_t f = 0; f < n; f++) {
    unravel(f, r, yt->dims, idx);
    int64_t d = idx[r - 1] - idx[r - 2];
    int keep = ints[0] ? d >= ints[1] : d <= ints[1];
    out[f] = keep ? in[0][f] : 0;
  }
}

START_TEST(trilu_grad) {
  static const int64_t shapes[3][3] = {{2, 3, 4}, {4, 3, 0}, {3, 3, 0}};
  static const int ranks[3] = {3, 2, 2};
  for (int s = 0; s < 3; s++)
    for (int upper = 0; upper <= 1; upper++)
      for (int64_t k = -1; k <= 2; k++) {
        if (k == 1) continue; /* k in {-1, 0, 2} */
        float x[24];
        fill(x, gc_numel(ranks[s], shapes[s]));
        gc_input_t in[1] = {input_f(ranks[s], shapes[s], x, 1)};
        int64_t ints[2] = {upper, k};
        char what[64];
        snprintf(what, sizeof what, "trilu shape %d upper %d k %lld", s, upper, (long long)k);
        CHECK(OC_OP_TRILU, ints, 2, in, 1, ref_trilu, ints, what);
      }
}
END_TEST

/* --- GatherElements ------------------------------------------------------------------ */

/* user: the axis (normalized by the test). */
static void ref_gather_elements(const double *const *in, const gc_input_t *inputs, int n_in,
                                double *out, const oc_tensor_t *yt, const void *user) {
  int axis = *(const int *)user;
  const gc_input_t *x = &inputs[0];
  int64_t idx[OC_MAX_RANK], n = oc_tensor_numel(yt);
  for (int64_t f = 0; f < n; f++) {
    unravel(f, yt->rank, yt->dims, idx);
    int64_t k = (int64_t)in[1][f];
    idx[axis] = k < 0 ? k + x->dims[axis] : k;
    out[f] = in[0][ravel(x->rank, x->dims, idx)];
  }
}

START_TEST(gather_elements_grad) {
  float x[12];
  int64_t xd[2] = {3, 4};
  fill(x, 12);
  /* axis 0: indices (4, 3) with repeats and negatives (3 x 4 data). */
  {
    int64_t id[2] = {4, 3};
    int64_t idx[12] = {0, -1, 2, 2, 0, -3, 1, 1, -1, 0, 0, 0};
    gc_input_t in[2] = {input_f(2, xd, x, 1), input_i(2, id, idx)};
    int axis = 0;
    int64_t a = 0;
    CHECK(OC_OP_GATHER_ELEMENTS, &a, 1, in, 2, ref_gather_elements, &axis, "axis 0");
  }
  /* axis 1 (and -1): indices (2, 6), each row repeating some columns. */
  {
    int64_t id[2] = {2, 6};
    int64_t idx[12] = {0, 3, -1, 3, 1, 0, -4, -4, 2, 2, 2, 1};
    gc_input_t in[2] = {input_f(2, xd, x, 1), input_i(2, id, idx)};
    int axis = 1;
    int64_t a = 1, neg = -1;
    CHECK(OC_OP_GATHER_ELEMENTS, &a, 1, in, 2, ref_gather_elements, &axis, "axis 1");
    CHECK(OC_OP_GATHER_ELEMENTS, &neg, 1, in, 2, ref_gather_elements, &axis, "axis -1");
  }
  /* rank 3, axis 1, indices smaller than data in the other dims. */
  {
    float x3[24];
    fill(x3, 24);
    int64_t d3[3] = {2, 3, 4}, id[3] = {2, 2, 3};
    int64_t idx[12] = {0, 2, 1, -1, 0, 0, 1, 1, 1, 2, -3, 0};
    gc_input_t in[2] = {input_f(3, d3, x3, 1), input_i(3, id, idx)};
    int axis = 1;
    int64_t a = 1;
    CHECK(OC_OP_GATHER_ELEMENTS, &a, 1, in, 2, ref_gather_elements, &axis, "rank 3 axis 1");
  }
}
END_TEST

/* --- GatherND ---------------------------------------------------------------------- */

/* user: batch_dims. */
static void ref_gather_nd(const double *const *in, const gc_input_t *inputs, int n_in, double *out,
                          const oc_tensor_t *yt, const void *user) {
  int b = *(const int64_t *)user;
  const gc_input_t *x = &inputs[0], *id = &inputs[1];
  int r = x->rank, q = id->rank;
  int64_t m = id->dims[q - 1], batch = 1, slice = 1, block = 1;
  for (int i = 0; i < b; i++) batch *= x->dims[i];
  for (int i = b; i < r; i++) block *= x->dims[i];
  for (int i = b + (int)m; i < r; i++) slice *= x->dims[i];
  int64_t ntup = gc_numel(q, id->dims) / m, per = ntup / batch;
  for (int64_t t = 0; t < ntup; t++) {
    int64_t off = 0;
    for (int64_t j = 0; j < m; j++) {
      int64_t s = x->dims[b + j], k = (int64_t)in[1][t * m + j];
      off = off * s + (k < 0 ? k + s : k);
    }
    off = (t / per) * block + off * slice;
    for (int64_t e = 0; e < slice; e++) out[t * slice + e] = in[0][off + e];
  }
}

START_TEST(gather_nd_grad) {
  float x[24];
  fill(x, 24);
  int64_t xd[3] = {2, 3, 4};
  /* batch_dims 0, full tuples (m = 3): scalars, with a repeated tuple. */
  {
    int64_t id[2] = {4, 3}, idx[12] = {0, 1, 2, 1, -1, 3, 0, 1, 2, -2, 0, -4};
    gc_input_t in[2] = {input_f(3, xd, x, 1), input_i(2, id, idx)};
    int64_t b = 0;
    CHECK(OC_OP_GATHER_ND, &b, 1, in, 2, ref_gather_nd, &b, "b0 m3");
  }
  /* batch_dims 0, m = 1: whole (3, 4) slices, indices (2, 2, 1). */
  {
    int64_t id[3] = {2, 2, 1}, idx[4] = {1, 0, -1, 1};
    gc_input_t in[2] = {input_f(3, xd, x, 1), input_i(3, id, idx)};
    int64_t b = 0;
    CHECK(OC_OP_GATHER_ND, &b, 1, in, 2, ref_gather_nd, &b, "b0 m1");
  }
  /* batch_dims 0, m = 2: rows of 4. */
  {
    int64_t id[2] = {3, 2}, idx[6] = {0, 2, 1, -3, 0, 2};
    gc_input_t in[2] = {input_f(3, xd, x, 1), input_i(2, id, idx)};
    int64_t b = 0;
    CHECK(OC_OP_GATHER_ND, &b, 1, in, 2, ref_gather_nd, &b, "b0 m2");
  }
  /* batch_dims 1, m = 1: per batch, rows of 4 (indices (2, 3, 1)). */
  {
    int64_t id[3] = {2, 3, 1}, idx[6] = {2, 2, -3, 0, 1, -1};
    gc_input_t in[2] = {input_f(3, xd, x, 1), input_i(3, id, idx)};
    int64_t b = 1;
    CHECK(OC_OP_GATHER_ND, &b, 1, in, 2, ref_gather_nd, &b, "b1 m1");
  }
  /* batch_dims 1, m = 2: per batch, scalars (indices (2, 2)). */
  {
    int64_t id[2] = {2, 2}, idx[4] = {1, -1, 2, 0};
    gc_input_t in[2] = {input_f(3, xd, x, 1), input_i(2, id, idx)};
    int64_t b = 1;
    CHECK(OC_OP_GATHER_ND, &b, 1, in, 2, ref_gather_nd, &b, "b1 m2");
  }
}
END_TEST

/* --- ScatterElements ----------------------------------------------------------------- */

/* user: ints [axis (normalized), reduction]. */
static void ref_scatter_elements(const double *const *in, const gc_input_t *inputs, int n_in,
                                 double *out, const oc_tensor_t *yt, const void *user) {
  const int64_t *ints = user;
  int axis = (int)ints[0];
  const gc_input_t *x = &inputs[0], *id = &inputs[1];
  int64_t nx = gc_numel(x->rank, x->dims), n = gc_numel(id->rank, id->dims), idx[OC_MAX_RANK];
  for (int64_t f = 0; f < nx; f++) out[f] = in[0][f];
  for (int64_t j = 0; j < n; j++) {
    unravel(j, id->rank, id->dims, idx);
    int64_t k = (int64_t)in[1][j];
    idx[axis] = k < 0 ? k + x->dims[axis] : k;
    int64_t f = ravel(x->rank, x->dims, idx);
    out[f] = ints[1] ? out[f] + in[2][j] : in[2][j];
  }
}

START_TEST(scatter_elements_grad) {
  float x[15], u[12];
  fill(x, 15);
  fill(u, 12);
  int64_t xd[2] = {3, 5};
  /* none, axis 1: distinct columns per row (the written updates are the
   * only ones the output depends on), negative indices included. */
  {
    int64_t id[2] = {3, 3}, idx[9] = {0, 4, 2, -1, 1, 0, 3, -5, 2};
    gc_input_t in[3] = {input_f(2, xd, x, 1), input_i(2, id, idx), input_f(2, id, u, 1)};
    int64_t ints[2] = {1, 0};
    CHECK(OC_OP_SCATTER_ELEMENTS, ints, 2, in, 3, ref_scatter_elements, ints, "none axis 1");
    /* Only one of the two wants a gradient. */
    in[0].differentiable = 0;
    CHECK(OC_OP_SCATTER_ELEMENTS, ints, 2, in, 3, ref_scatter_elements, ints, "none, updates only");
    in[0].differentiable = 1;
    in[2].differentiable = 0;
    CHECK(OC_OP_SCATTER_ELEMENTS, ints, 2, in, 3, ref_scatter_elements, ints, "none, data only");
  }
  /* add, axis 1: repeated columns accumulate. */
  {
    int64_t id[2] = {2, 4}, idx[8] = {0, 0, 4, -1, 2, 1, 2, 2};
    gc_input_t in[3] = {input_f(2, xd, x, 1), input_i(2, id, idx), input_f(2, id, u, 1)};
    int64_t ints[2] = {1, 1};
    CHECK(OC_OP_SCATTER_ELEMENTS, ints, 2, in, 3, ref_scatter_elements, ints, "add axis 1");
  }
  /* none and add, axis 0. */
  {
    int64_t id[2] = {1, 5}, idx[5] = {2, 0, -1, 1, 0};
    gc_input_t in[3] = {input_f(2, xd, x, 1), input_i(2, id, idx), input_f(2, id, u, 1)};
    int64_t none[2] = {0, 0}, add[2] = {0, 1};
    CHECK(OC_OP_SCATTER_ELEMENTS, none, 2, in, 3, ref_scatter_elements, none, "none axis 0");
    CHECK(OC_OP_SCATTER_ELEMENTS, add, 2, in, 3, ref_scatter_elements, add, "add axis 0");
  }
}
END_TEST

/* --- ScatterND ----------------------------------------------------------------------- */

/* user: the reduction. */
static void ref_scatter_nd(const double *const *in, const gc_input_t *inputs, int n_in,
                           double *out, const oc_tensor_t *yt, const void *user) {
  int64_t red = *(const int64_t *)user;
  const gc_input_t *x = &inputs[0], *id = &inputs[1];
  int r = x->rank, q = id->rank;
  int64_t k = id->dims[q - 1], slice = 1, nx = gc_numel(r, x->dims);
  for (int i = (int)k; i < r; i++) slice *= x->dims[i];
  int64_t ntup = gc_numel(q, id->dims) / k;
  for (int64_t f = 0; f < nx; f++) out[f] = in[0][f];
  for (int64_t t = 0; t < ntup; t++) {
    int64_t off = 0;
    for (int64_t j = 0; j < k; j++) {
      int64_t s = x->dims[j], v = (int64_t)in[1][t * k + j];
      off = off * s + (v < 0 ? v + s : v);
    }
    for (int64_t e = 0; e < slice; e++)
      out[off * slice + e] = red ? out[off * slice + e] + in[2][t * slice + e] : in[2][t * slice + e];
  }
}

START_TEST(scatter_nd_grad) {
  float x[24], u[24];
  fill(x, 24);
  fill(u, 24);
  int64_t xd[3] = {2, 3, 4};
  int64_t none = 0, add = 1;
  /* k = 2: rows of 4; distinct tuples for none, a repeated one for add. */
  {
    int64_t id[2] = {3, 2}, idx[6] = {0, 1, -1, 2, 1, 0}, ud[2] = {3, 4};
    gc_input_t in[3] = {input_f(3, xd, x, 1), input_i(2, id, idx), input_f(2, ud, u, 1)};
    CHECK(OC_OP_SCATTER_ND, &none, 1, in, 3, ref_scatter_nd, &none, "none k2");
  }
  {
    int64_t id[2] = {3, 2}, idx[6] = {0, 1, -2, 1, 1, 0}, ud[2] = {3, 4};
    gc_input_t in[3] = {input_f(3, xd, x, 1), input_i(2, id, idx), input_f(2, ud, u, 1)};
    CHECK(OC_OP_SCATTER_ND, &add, 1, in, 3, ref_scatter_nd, &add, "add k2 repeated");
  }
  /* k = 3: scalars (updates (2, 2)); k = 1: (3, 4) blocks. */
  {
    int64_t id[3] = {2, 2, 3}, idx[12] = {0, 0, 0, 1, 2, 3, -1, 0, -1, 0, 2, 1}, ud[2] = {2, 2};
    gc_input_t in[3] = {input_f(3, xd, x, 1), input_i(3, id, idx), input_f(2, ud, u, 1)};
    CHECK(OC_OP_SCATTER_ND, &none, 1, in, 3, ref_scatter_nd, &none, "none k3");
    CHECK(OC_OP_SCATTER_ND, &add, 1, in, 3, ref_scatter_nd, &add, "add k3");
  }
  {
    int64_t id[2] = {1, 1}, idx[1] = {-1}, ud[3] = {1, 3, 4};
    gc_input_t in[3] = {input_f(3, xd, x, 1), input_i(2, id, idx), input_f(3, ud, u, 1)};
    CHECK(OC_OP_SCATTER_ND, &none, 1, in, 3, ref_scatter_nd, &none, "none k1");
    CHECK(OC_OP_SCATTER_ND, &add, 1, in, 3, ref_scatter_nd, &add, "add k1");
  }
}
END_TEST

/* Reduction none with a repeated index (finite differences see only the
 * update written last): as torch.scatter's backward, every update of a
 * position gets that position's gradient, and the data's is zero there. */
START_TEST(scatter_none_repeated_index_follows_pytorch) {
  oc_graph_t *g = oc_graph_new();
  float x[4] = {1, 2, 3, 4}, u[3] = {5, 6, 7}, w[4] = {0.5f, -1.5f, 2.0f, 0.25f};
  int64_t xd[2] = {1, 4}, ud[2] = {1, 3}, idx[3] = {2, 0, -2};
  int in[3] = {oc_graph_value(g, "x"), oc_graph_value(g, "idx"), oc_graph_value(g, "u")};
  ck_assert(oc_value_set_const(g, in[0], OC_DTYPE_FLOAT32, 2, xd, x) == OC_OK);
  ck_assert(oc_value_set_const(g, in[1], OC_DTYPE_INT64, 2, ud, idx) == OC_OK);
  ck_assert(oc_value_set_const(g, in[2], OC_DTYPE_FLOAT32, 2, ud, u) == OC_OK);
  int params[2] = {in[0], in[2]};
  for (int k = 0; k < 2; k++) {
    g->values[params[k]].kind = OC_VALUE_STATE;
    g->values[params[k]].foldable = 0;
  }
  int y = oc_graph_value(g, "y"), wv = oc_graph_value(g, "W"), grads[2];
  int64_t ints[2] = {1, 0};
  ck_assert(oc_emit_instr(g, "scatter", OC_OP_SCATTER_ELEMENTS, 3, in, 1, &y, ints, 2, NULL, 0) ==
            OC_OK);
  ck_assert(oc_value_set_const(g, wv, OC_DTYPE_FLOAT32, 2, xd, w) == OC_OK);
  ck_assert(oc_autodiff(g, y, wv, params, 2, grads) == OC_OK);
  void **buf = calloc((size_t)g->n_values + 1, sizeof(void *));
  ck_assert(gc_execute(g, buf) == OC_OK);
  const float *dx = buf[grads[0]], *du = buf[grads[1]];
  const float want_dx[4] = {0, -1.5f, 0, 0.25f}, want_du[3] = {2.0f, 0.5f, 2.0f};
  for (int i = 0; i < 4; i++) ck_assert_msg(dx[i] == want_dx[i], "dx[%d] = %g", i, dx[i]);
  for (int i = 0; i < 3; i++) ck_assert_msg(du[i] == want_du[i], "du[%d] = %g", i, du[i]);
  for (int v = 0; v < g->n_values; v++) free(buf[v]);
  free(buf);
  oc_graph_free(g);
}
END_TEST

/* mul, max and min have no rule: a clear error naming the reduction. */
START_TEST(scatter_refused_reductions) {
  static const char *const names[] = {"mul", "max", "min"};
  float x[6] = {1, 2, 3, 4, 5, 6}, u[2] = {7, 8};
  int64_t xd[2] = {2, 3}, id[2] = {2, 1}, idx[2] = {0, 1}, ud[2] = {2, 1};
  gc_input_t in[3] = {input_f(2, xd, x, 1), input_i(2, id, idx), input_f(2, ud, u, 1)};
  for (int red = 2; red <= 4; red++) {
    char msg[512];
    int64_t ints[2] = {1, red};
    ck_assert_int_eq(gc_check(OC_OP_SCATTER_ELEMENTS, ints, 2, NULL, 0, in, 3,
                              ref_scatter_elements, ints, TOL, msg, sizeof msg), 1);
    ck_assert_msg(strstr(msg, names[red - 2]) && strstr(msg, "no gradient rule"), "%s", msg);
    int64_t r = red, nid[2] = {2, 1}, ndx[2] = {1, 0}, nud[2] = {2, 3};
    float nu[6] = {1, 2, 3, 4, 5, 6};
    gc_input_t nin[3] = {input_f(2, xd, x, 1), input_i(2, nid, ndx), input_f(2, nud, nu, 1)};
    ck_assert_int_eq(gc_check(OC_OP_SCATTER_ND, &r, 1, NULL, 0, nin, 3, ref_scatter_nd, &r, TOL,
                              msg, sizeof msg), 1);
    ck_assert_msg(strstr(msg, names[red - 2]) && strstr(msg, "no gradient rule"), "%s", msg);
  }
}
END_TEST

/* --- TopK ---------------------------------------------------------------------------- */

/* user: ints [axis (normalized), k, largest]. Positions sorted by value
 * (ties by position, as the kernel; the tests have none). */
static void ref_topk(const double *const *in, const gc_input_t *inputs, int n_in, double *out,
                     const oc_tensor_t *yt, const void *user) {
  const int64_t *ints = user;
  const gc_input_t *x = &inputs[0];
  int axis = (int)ints[0];
  int64_t k = ints[1], outer = 1, inner = 1, n = x->dims[axis];
  for (int i = 0; i < axis; i++) outer *= x->dims[i];
  for (int i = axis + 1; i < x->rank; i++) inner *= x->dims[i];
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      int64_t p[64];
      for (int64_t j = 0; j < n; j++) p[j] = j;
      for (int64_t a = 0; a < n; a++)
        for (int64_t b = a + 1; b < n; b++) {
          double va = in[0][(o * n + p[a]) * inner + i], vb = in[0][(o * n + p[b]) * inner + i];
          if (ints[2] ? vb > va : vb < va) {
            int64_t t = p[a];
            p[a] = p[b];
            p[b] = t;
          }
        }
      for (int64_t j = 0; j < k; j++) out[(o * k + j) * inner + i] = in[0][(o * n + p[j]) * inner + i];
    }
}

/* Distinct values, well apart (finite differences never reorder them). */
static void fill_distinct(float *x, int64_t n) {
  for (int64_t i = 0; i < n; i++) x[i] = (float)(i * 7 % n) * 0.25f - 1.0f;
  for (int64_t i = n - 1; i > 0; i--) { /* shuffle */
    int64_t j = (int64_t)((gc_uniform() + 1) * 0.5 * (double)(i + 1));
    if (j > i) j = i;
    float t = x[i];
    x[i] = x[j];
    x[j] = t;
  }
}

START_TEST(topk_grad) {
  float x[24];
  int64_t xd[3] = {2, 3, 4};
  fill_distinct(x, 24);
  for (int largest = 0; largest <= 1; largest++)
    for (int a = 0; a < 3; a++)
      for (int64_t k = 0; k <= xd[a]; k++) {
        gc_input_t in[1] = {input_f(3, xd, x, 1)};
        int64_t ints[3] = {a, k, largest}, fwd[3] = {a == 2 ? -1 : a, k, largest};
        char what[64];
        snprintf(what, sizeof what, "topk axis %d k %lld largest %d", a, (long long)k, largest);
        CHECK(OC_OP_TOPK, fwd, 3, in, 1, ref_topk, ints, what);
      }
}
END_TEST

/* The forward keeps its indices output (the rule reads it instead of
 * recomputing them): the gradient is dvalues put back at the indices. */
START_TEST(topk_grad_with_indices_output) {
  float x[12];
  fill_distinct(x, 12);
  oc_graph_t *g = oc_graph_new();
  int xv = oc_graph_value(g, "x");
  int64_t xd[2] = {3, 4}, yd[2] = {3, 2};
  ck_assert(oc_value_set_const(g, xv, OC_DTYPE_FLOAT32, 2, xd, x) == OC_OK);
  g->values[xv].kind = OC_VALUE_STATE;
  g->values[xv].foldable = 0;
  int out[2] = {oc_graph_value(g, "values"), oc_graph_value(g, "indices")};
  int64_t ints[3] = {1, 2, 1};
  ck_assert(oc_emit_instr(g, "topk", OC_OP_TOPK, 1, &xv, 2, out, ints, 3, NULL, 0) == OC_OK);
  float w[6] = {0.5f, -1.5f, 2.0f, 0.25f, -0.75f, 1.0f};
  int wv = oc_graph_value(g, "W");
  ck_assert(oc_value_set_const(g, wv, OC_DTYPE_FLOAT32, 2, yd, w) == OC_OK);
  int n_before = g->n_instrs, grad;
  ck_assert(oc_autodiff(g, out[0], wv, &xv, 1, &grad) == OC_OK);
  for (int i = n_before; i < g->n_instrs; i++) ck_assert_int_ne(g->instrs[i].op, OC_OP_TOPK);
  void **buf = calloc((size_t)g->n_values + 1, sizeof(void *));
  ck_assert(gc_execute(g, buf) == OC_OK);
  const float *dx = buf[grad];
  const int64_t *ix = buf[out[1]];
  float want[12] = {0};
  for (int r = 0; r < 3; r++)
    for (int j = 0; j < 2; j++) want[r * 4 + ix[r * 2 + j]] = w[r * 2 + j];
  for (int i = 0; i < 12; i++)
    ck_assert_msg(dx[i] == want[i], "element %d: %g, want %g", i, dx[i], want[i]);
  for (int v = 0; v < g->n_values; v++) free(buf[v]);
  free(buf);
  oc_graph_free(g);
}
END_TEST

/* --- CumSum -------------------------------------------------------------------------- */

/* user: ints [axis (normalized), exclusive, reverse]. */
static void ref_cumsum(const double *const *in, const gc_input_t *inputs, int n_in, double *out,
                       const oc_tensor_t *yt, const void *user) {
  const int64_t *ints = user;
  const gc_input_t *x = &inputs[0];
  int axis = (int)ints[0];
  int64_t outer = 1, inner = 1, n = x->dims[axis];
  for (int i = 0; i < axis; i++) outer *= x->dims[i];
  for (int i = axis + 1; i < x->rank; i++) inner *= x->dims[i];
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++)
      for (int64_t j = 0; j < n; j++) {
        double s = 0;
        for (int64_t t = 0; t < n; t++) {
          int take = ints[2] ? (ints[1] ? t > j : t >= j) : (ints[1] ? t < j : t <= j);
          if (take) s += in[0][(o * n + t) * inner + i];
        }
        out[(o * n + j) * inner + i] = s;
      }
}

START_TEST(cumsum_grad) {
  float x[24];
  fill(x, 24);
  int64_t xd[3] = {2, 3, 4};
  for (int excl = 0; excl <= 1; excl++)
    for (int rev = 0; rev <= 1; rev++)
      for (int a = 0; a < 3; a++) {
        gc_input_t in[1] = {input_f(3, xd, x, 1)};
        int64_t ints[3] = {a, excl, rev}, fwd[3] = {a == 2 ? -1 : a, excl, rev};
        char what[64];
        snprintf(what, sizeof what, "cumsum axis %d exclusive %d reverse %d", a, excl, rev);
        CHECK(OC_OP_CUMSUM, fwd, 3, in, 1, ref_cumsum, ints, what);
      }
}
END_TEST

/* --- the backward kernels on random (mostly invalid) shapes ------------------------------ */

static uint64_t fz_state = 12345;
static int64_t fz(int64_t lo, int64_t hi) {
  fz_state ^= fz_state << 13;
  fz_state ^= fz_state >> 7;
  fz_state ^= fz_state << 17;
  return lo + (int64_t)(fz_state % (uint64_t)(hi - lo + 1));
}

static void fz_tensor(oc_tensor_t *t, int dtype, int rank, int64_t lo, int64_t hi) {
  *t = (oc_tensor_t){.dtype = dtype, .rank = rank};
  for (int i = 0; i < rank; i++) t->dims[i] = fz(0, 4);
  size_t n = (size_t)oc_tensor_numel(t);
  t->data = malloc(n ? n * oc_dtype_size(dtype) : 1);
  for (size_t i = 0; i < n; i++) {
    if (dtype == OC_DTYPE_INT64) ((int64_t *)t->data)[i] = fz(lo, hi);
    else ((float *)t->data)[i] = (float)fz(-3, 3);
  }
}

/* Whenever infer accepts, run stays inside exactly sized buffers (ASan) and
 * fails only on an index out of range. */
START_TEST(bwd_kernels_fuzz) {
  int accepted[3] = {0};
  for (int iter = 0; iter < 6000; iter++) {
    int which = iter % 3;
    oc_tensor_t a, b = {0}, y = {0};
    oc_tensor_t *in[2] = {&a, &b}, *out[1] = {&y};
    int64_t ints[1 + OC_MAX_RANK];
    int n_in, n_ints, op;
    if (which == 0) {
      op = OC_OP_TILE_BWD;
      fz_tensor(&a, OC_DTYPE_FLOAT32, (int)fz(0, 3), 0, 0);
      /* Often consistent with dy: its dims divided by a small factor. */
      n_ints = fz(0, 5) ? a.rank : (int)fz(0, 4);
      for (int i = 0; i < n_ints; i++) {
        int64_t f = fz(1, 3), d = i < a.rank ? a.dims[i] : 2;
        ints[i] = fz(0, 3) ? (d % f == 0 ? d / f : d) : fz(-1, 4);
      }
      n_in = 1;
    } else {
      op = which == 1 ? OC_OP_GATHER_ELEMENTS_BWD : OC_OP_GATHER_ND_BWD;
      int r = (int)fz(1, 3);
      n_ints = 1 + (fz(0, 8) ? r : (int)fz(0, 4));
      for (int i = 1; i < n_ints; i++) ints[i] = fz(0, 4);
      ints[0] = which == 1 ? fz(-r - 1, r) : fz(-1, 2);
      int q = which == 1 ? (fz(0, 5) ? r : (int)fz(1, 3)) : (int)fz(1, 3);
      fz_tensor(&a, OC_DTYPE_INT64, q, -5, 4);
      if (which == 2 && fz(0, 2)) a.dims[q - 1] = fz(1, 3);
      if (which == 2) { /* regenerate the data for the new dims */
        free(a.data);
        size_t n = (size_t)oc_tensor_numel(&a);
        a.data = malloc(n ? n * 8 : 1);
        for (size_t i = 0; i < n; i++) ((int64_t *)a.data)[i] = fz(-5, 4);
      }
      /* dy: usually the forward output's dims, found by trial. */
      fz_tensor(&b, OC_DTYPE_FLOAT32, (int)fz(0, 4), 0, 0);
      if (fz(0, 3)) {
        oc_tensor_t x = {.dtype = OC_DTYPE_FLOAT32, .rank = n_ints - 1}, fy = {0};
        for (int i = 0; i < x.rank; i++) x.dims[i] = ints[1 + i];
        oc_tensor_t *fin[2] = {&x, &a}, *fout[1] = {&fy};
        oc_op_call_t fc = {.ints = ints, .n_ints = 1, .n_in = 2, .in = fin, .n_out = 1,
                           .out = fout};
        size_t fws;
        int fop = which == 1 ? OC_OP_GATHER_ELEMENTS : OC_OP_GATHER_ND;
        oc_status_t fs = x.rank > 0 ? oc_op_infer(fop, &fc, &fws) : oc_make_status(OC_STATUS_INVALID_ARGUMENT, "x");
        if (fs == OC_OK) {
          free(b.data);
          b = (oc_tensor_t){.dtype = OC_DTYPE_FLOAT32, .rank = fy.rank};
          memcpy(b.dims, fy.dims, sizeof b.dims);
          size_t n = (size_t)oc_tensor_numel(&b);
          b.data = malloc(n ? n * 4 : 1);
          for (size_t i = 0; i < n; i++) ((float *)b.data)[i] = 1.0f;
        }
        oc_status_free(fs);
      }
      n_in = 2;
    }
    oc_op_call_t c = {.ints = ints, .n_ints = n_ints, .n_in = n_in, .in = in, .n_out = 1,
                      .out = out};
    size_t ws = 0;
    oc_status_t s = oc_op_infer(op, &c, &ws);
    if (s == OC_OK) {
      accepted[which]++;
      ck_assert_int_eq((int)ws, 0);
      size_t bytes = oc_tensor_bytes(&y);
      y.data = malloc(bytes ? bytes : 1);
      s = oc_op_get(op)->run(&c);
      ck_assert_msg(s == OC_OK || oc_status_code(s) == OC_STATUS_NUMERIC, "op %d: %s", op,
                    oc_status_message(s));
      free(y.data);
    }
    oc_status_free(s);
    free(a.data);
    free(b.data);
  }
  for (int i = 0; i < 3; i++) ck_assert_msg(accepted[i] > 100, "kernel %d accepted %d", i, accepted[i]);
}
END_TEST

/* --- not differentiable ---------------------------------------------------------------- */

static void ref_zero(const double *const *in, const gc_input_t *inputs, int n_in, double *out,
                     const oc_tensor_t *yt, const void *user) {
  int64_t n = oc_tensor_numel(yt);
  for (int64_t i = 0; i < n; i++) out[i] = 0;
}

/* Hardmax has no rule (piecewise constant): a gradient through it is an
 * error naming the op. */
START_TEST(hardmax_has_no_rule) {
  float x[6] = {1, 3, 2, 0, -1, 4};
  int64_t xd[2] = {2, 3}, axis = 1;
  gc_input_t in[1] = {input_f(2, xd, x, 1)};
  char msg[512];
  ck_assert_int_eq(gc_check(OC_OP_HARDMAX, &axis, 1, NULL, 0, in, 1, ref_zero, NULL, TOL, msg,
                            sizeof msg), 1);
  ck_assert_msg(strstr(msg, "no gradient rule") && strstr(msg, "Hardmax"), "%s", msg);
}
END_TEST

int main(void) {
  Suite *s = suite_create("grad_indexing");
  TCase *tc = tcase_create("grad");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, tile_grad);
  tcase_add_test(tc, trilu_grad);
  tcase_add_test(tc, gather_elements_grad);
  tcase_add_test(tc, gather_nd_grad);
  tcase_add_test(tc, scatter_elements_grad);
  tcase_add_test(tc, scatter_nd_grad);
  tcase_add_test(tc, scatter_none_repeated_index_follows_pytorch);
  tcase_add_test(tc, scatter_refused_reductions);
  tcase_add_test(tc, topk_grad);
  tcase_add_test(tc, topk_grad_with_indices_output);
  tcase_add_test(tc, cumsum_grad);
  tcase_add_test(tc, hardmax_has_no_rule);
  tcase_add_test(tc, bwd_kernels_fuzz);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
