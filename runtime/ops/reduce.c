/*
 * Reductions over a set of axes: ReduceSum, ReduceMean, ReduceMax,
 * ReduceMin, ReduceProd, ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSum,
 * ReduceLogSumExp.
 *   inputs:  x float32 (Sum, Max, Min, Prod also int64 and int32)
 *   outputs: y, dtype of x; dims of x with each reduced axis set to 1
 *            (keepdims=1) or removed (keepdims=0)
 *   ints:    [keepdims, axis...]: keepdims 0 or 1; the axes in [-rank, rank),
 *            distinct; no axis means every axis (the compiler turns ONNX's
 *            noop_with_empty_axes into a Copy before it gets here)
 *   floats:  none
 * Float sums accumulate in double (workspace: one double per output
 * element); Max/Min propagate NaN. Over an empty set: Sum, L1, L2, SumSquare
 * give 0, Prod 1, Max -inf (int: the type's minimum), Min +inf (maximum),
 * LogSum and LogSumExp -inf, Mean NaN. Integer sums and products wrap.
 */
#include <math.h>
#include <string.h>

#include "oc_ops.h"
#include "parallel.h"

typedef enum {
  RD_SUM,
  RD_MEAN,
  RD_MAX,
  RD_MIN,
  RD_PROD,
  RD_L1,
  RD_L2,
  RD_SUM_SQUARE,
  RD_LOG_SUM,
  RD_LOG_SUM_EXP,
} rd_kind_t;

static const char *const rd_names[] = {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin",
                                       "ReduceProd", "ReduceL1", "ReduceL2", "ReduceSumSquare",
                                       "ReduceLogSum", "ReduceLogSumExp"};

static int rd_takes_ints(rd_kind_t k) {
  return k == RD_SUM || k == RD_MAX || k == RD_MIN || k == RD_PROD;
}
/* Kinds accumulated in doubles in the workspace (float32 inputs). */
static int rd_uses_acc(rd_kind_t k) { return k != RD_MAX && k != RD_MIN; }

/* The walk over x: its dims with size-1 dims dropped and neighbours of the
 * same kind (reduced / kept) merged; ostride[i] is the step in y of one step
 * along dim i (0 for a reduced dim). */
typedef struct rd_geom_s {
  int nd;
  int64_t size[OC_MAX_RANK];
  int64_t ostride[OC_MAX_RANK];
  int64_t in_numel, out_numel;
} rd_geom_t;

/* Reads ints [keepdims, axis...] (n_ints of them) for input x into a mask
 * of reduced axes and the output type. */
static oc_status_t rd_parse_ints(const oc_tensor_t *x, const int64_t *ints, int n_ints,
                                 unsigned *out_mask, int *out_rank, int64_t *out_dims) {
  if (n_ints < 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "needs ints [keepdims, axis...]");
  if (ints[0] != 0 && ints[0] != 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "keepdims is %lld; must be 0 or 1",
                          (long long)ints[0]);
  unsigned mask = 0;
  for (int i = 1; i < n_ints; i++) {
    int64_t a = ints[i];
    if (a < -(int64_t)x->rank || a >= (int64_t)x->rank)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "axis %lld is out of range for rank %d",
                            (long long)a, x->rank);
    int ax = (int)(a < 0 ? a + x->rank : a);
    if (mask & (1u << ax))
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "axis %lld is repeated", (long long)a);
    mask |= 1u << ax;
  }
  if (n_ints == 1) mask = (1u << x->rank) - 1u;
  int r = 0;
  for (int i = 0; i < x->rank; i++) {
    if (!(mask & (1u << i)))
      out_dims[r++] = x->dims[i];
    else if (ints[0])
      out_dims[r++] = 1;
  }
  *out_mask = mask;
  *out_rank = r;
  return OC_OK;
}

static oc_status_t rd_parse(const oc_op_call_t *c, unsigned *out_mask, int *out_rank,
                            int64_t *out_dims) {
  if (c->n_ints < 1 || c->n_floats != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "needs ints [keepdims, axis...]");
  return rd_parse_ints(c->in[0], c->ints, c->n_ints, out_mask, out_rank, out_dims);
}

/* x and y passed oc_check_type. */
static void rd_geometry(const oc_tensor_t *x, const oc_tensor_t *y, unsigned mask, rd_geom_t *g) {
  g->in_numel = oc_tensor_numel(x);
  g->out_numel = oc_tensor_numel(y);
  g->nd = 0;
  if (g->in_numel == 0) return;
  /* Output strides of kept dims, innermost first. */
  int64_t ost[OC_MAX_RANK], s = 1;
  for (int i = x->rank - 1; i >= 0; i--) {
    ost[i] = (mask & (1u << i)) ? 0 : s;
    if (!(mask & (1u << i))) s *= x->dims[i];
  }
  int last_reduced = -1;
  for (int i = 0; i < x->rank; i++) {
    if (x->dims[i] == 1) continue;
    int red = (mask >> i) & 1u;
    if (g->nd > 0 && last_reduced == red) {
      g->size[g->nd - 1] *= x->dims[i];
      g->ostride[g->nd - 1] = ost[i];
    } else {
      g->size[g->nd] = x->dims[i];
      g->ostride[g->nd] = ost[i];
      g->nd++;
    }
    last_reduced = red;
  }
}

/* Visits every element of x in row-major order with i its offset in x and o
 * the offset of its output element in y. */
#define RD_WALK(g, BODY)                                                                 \
  do {                                                                                   \
    int nd_ = (g)->nd;                                                                   \
    if ((g)->in_numel == 0) break;                                                       \
    if (nd_ == 0) {                                                                      \
      int64_t i = 0, o = 0;                                                              \
      BODY;                                                                              \
      break;                                                                             \
    }                                                                                    \
    int64_t inner_ = (g)->size[nd_ - 1], ost_ = (g)->ostride[nd_ - 1];                   \
    int64_t idx_[OC_MAX_RANK] = {0}, o0_ = 0;                                            \
    for (int64_t base_ = 0; base_ < (g)->in_numel; base_ += inner_) {                    \
      for (int64_t k_ = 0; k_ < inner_; k_++) {                                          \
        int64_t i = base_ + k_, o = o0_ + k_ * ost_;                                     \
        BODY;                                                                            \
      }                                                                                  \
      for (int d_ = nd_ - 2; d_ >= 0; d_--) {                                            \
        idx_[d_]++;                                                                      \
        o0_ += (g)->ostride[d_];                                                         \
        if (idx_[d_] < (g)->size[d_]) break;                                             \
        o0_ -= (g)->ostride[d_] * idx_[d_];                                              \
        idx_[d_] = 0;                                                                    \
      }                                                                                  \
    }                                                                                    \
  } while (0)

static oc_status_t reduce_infer_kind(const oc_op_call_t *c, size_t *ws, rd_kind_t k) {
  const oc_tensor_t *x = c->in[0];
  int dt = x->dtype;
  int ok = dt == OC_DTYPE_FLOAT32 ||
           (rd_takes_ints(k) && (dt == OC_DTYPE_INT64 || dt == OC_DTYPE_INT32));
  if (!ok)
    return oc_make_status(OC_STATUS_UNSUPPORTED, "%s of %s is not supported (%s)", rd_names[k],
                          oc_dtype_name(dt),
                          rd_takes_ints(k) ? "float32, int64, int32" : "float32 only");
  unsigned mask;
  int rank;
  int64_t dims[OC_MAX_RANK];
  OC_RETURN_IF_ERROR(rd_parse(c, &mask, &rank, dims));
  oc_tensor_t y = {.dtype = dt, .rank = rank};
  memcpy(y.dims, dims, sizeof(int64_t) * (size_t)rank);
  OC_RETURN_IF_ERROR(oc_check_type(&y, "output"));
  oc_tensor_set_type(c->out[0], dt, rank, dims);
  /* y is at most 2^40 bytes, so at most 2^41 bytes of doubles. */
  *ws = (dt == OC_DTYPE_FLOAT32 && rd_uses_acc(k)) ? (size_t)oc_tensor_numel(&y) * sizeof(double)
                                                   : 0;
  return OC_OK;
}

/* x is (any), y is the reduction of x; acc is (y elements) of doubles. */
static void reduce_float(float *y, double *acc, const float *x, const rd_geom_t *g, rd_kind_t k) {
  int64_t ny = g->out_numel;
  if (k == RD_MAX || k == RD_MIN || k == RD_LOG_SUM_EXP) {
    /* Max and Min live in y; LogSumExp keeps each row maximum there. */
    int want_max = k != RD_MIN;
    for (int64_t o = 0; o < ny; o++) y[o] = want_max ? -INFINITY : INFINITY;
    if (want_max)
      RD_WALK(g, { float v = x[i]; if (v > y[o] || v != v) y[o] = v; });
    else
      RD_WALK(g, { float v = x[i]; if (v < y[o] || v != v) y[o] = v; });
    /* NaN stays: once y[o] is NaN, neither comparison above is true. */
    if (k != RD_LOG_SUM_EXP) return;
  }
  double init = k == RD_PROD ? 1.0 : 0.0;
  for (int64_t o = 0; o < ny; o++) acc[o] = init;
  switch (k) {
    case RD_SUM:
    case RD_MEAN:
    case RD_LOG_SUM: RD_WALK(g, acc[o] += x[i]); break;
    case RD_PROD: RD_WALK(g, acc[o] *= x[i]); break;
    case RD_L1: RD_WALK(g, acc[o] += fabs((double)x[i])); break;
    case RD_L2:
    case RD_SUM_SQUARE: RD_WALK(g, acc[o] += (double)x[i] * x[i]); break;
    case RD_LOG_SUM_EXP:
      RD_WALK(g, { if (isfinite(y[o])) acc[o] += exp((double)x[i] - y[o]); });
      break;
    default: break;
  }
  double count = ny ? (double)(g->in_numel / ny) : 0.0;
  if (g->in_numel == 0) count = 0.0; /* every row is empty */
  for (int64_t o = 0; o < ny; o++) {
    double a = acc[o];
    switch (k) {
      case RD_MEAN: y[o] = (float)(a / count); break;
      case RD_L2: y[o] = (float)sqrt(a); break;
      case RD_LOG_SUM: y[o] = (float)log(a); break;
      case RD_LOG_SUM_EXP:
        /* max +-inf or NaN: the result is that (-inf also for empty rows). */
        if (isfinite(y[o])) y[o] = (float)(y[o] + log(a));
        break;
      default: y[o] = (float)a; break;
    }
  }
}

#define REDUCE_INT(T, UT, TMIN, TMAX)                                                   \
  do {                                                                                  \
    const T *px = x->data;                                                              \
    T *py = y->data;                                                                    \
    T init = k == RD_SUM ? 0 : k == RD_PROD ? 1 : k == RD_MAX ? TMIN : TMAX;            \
    for (int64_t o = 0; o < g->out_numel; o++) py[o] = init;                            \
    switch (k) {                                                                        \
      case RD_SUM: RD_WALK(g, py[o] = (T)((UT)py[o] + (UT)px[i])); break;               \
      case RD_PROD: RD_WALK(g, py[o] = (T)((UT)py[o] * (UT)px[i])); break;              \
      case RD_MAX: RD_WALK(g, if (px[i] > py[o]) py[o] = px[i]); break;                 \
      case RD_MIN: RD_WALK(g, if (px[i] < py[o]) py[o] = px[i]); break;                 \
      default: break;                                                                   \
    }                                                                                   \
  } while (0)

/* The common case of a float reduction over trailing axes: y[o] = f(row o
 * of x), rows of |S| contiguous values (LayerNorm's mean, a loss's sum).
 * Rows are split over the context's threads; sums use 8 interleaved double
 * accumulators. */
typedef struct rd_rows_job_s {
  float *y;
  const float *x;
  int64_t S;
  rd_kind_t k;
} rd_rows_job_t;

static void rd_rows_part(void *arg, int64_t o0, int64_t o1, int thread) {
  const rd_rows_job_t *j = arg;
  const int64_t S = j->S;
  (void)thread;
  for (int64_t o = o0; o < o1; o++) {
    const float *x = j->x + o * S;
    if (j->k == RD_MAX || j->k == RD_MIN) {
      float m = j->k == RD_MAX ? -INFINITY : INFINITY;
      if (j->k == RD_MAX)
        for (int64_t i = 0; i < S; i++) {
          float v = x[i];
          if (v > m || v != v) m = v;
        }
      else
        for (int64_t i = 0; i < S; i++) {
          float v = x[i];
          if (v < m || v != v) m = v;
        }
      j->y[o] = m;
      continue;
    }
    double acc[8] = {0};
    int64_t i = 0;
    int sq = j->k == RD_L2 || j->k == RD_SUM_SQUARE;
    if (sq)
      for (; i + 8 <= S; i += 8)
        for (int l = 0; l < 8; l++) acc[l] += (double)x[i + l] * x[i + l];
    else
      for (; i + 8 <= S; i += 8)
        for (int l = 0; l < 8; l++) acc[l] += (double)x[i + l];
    for (; i < S; i++) acc[i % 8] += sq ? (double)x[i] * x[i] : (double)x[i];
    double a = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
    j->y[o] = (float)(j->k == RD_MEAN ? a / (double)S : j->k == RD_L2 ? sqrt(a) : a);
  }
}

/* 1 when |g| is rows of trailing reduced values and |k| has a row kernel. */
static int rd_rows(const rd_geom_t *g, rd_kind_t k, int64_t *S) {
  if (!(k == RD_SUM || k == RD_MEAN || k == RD_L2 || k == RD_SUM_SQUARE || k == RD_MAX ||
        k == RD_MIN))
    return 0;
  if (g->in_numel == 0 || g->out_numel == 0) return 0;
  if (g->nd == 1 && g->ostride[0] == 0) {
    *S = g->size[0];
    return 1;
  }
  if (g->nd == 2 && g->ostride[1] == 0 && g->ostride[0] == 1) {
    *S = g->size[1];
    return 1;
  }
  return 0;
}

static oc_status_t reduce_run_kind(const oc_op_call_t *c, rd_kind_t k) {
  const oc_tensor_t *x = c->in[0];
  oc_tensor_t *y = c->out[0];
  unsigned mask;
  int rank;
  int64_t dims[OC_MAX_RANK];
  OC_RETURN_IF_ERROR(rd_parse(c, &mask, &rank, dims));
  rd_geom_t geom, *g = &geom;
  rd_geometry(x, y, mask, g);
  int64_t S;
  if (x->dtype == OC_DTYPE_FLOAT32 && rd_rows(g, k, &S)) {
    rd_rows_job_t j = {y->data, x->data, S, k};
    oc_parallel_for(c->pool, g->out_numel, oc_grain(S), rd_rows_part, &j);
    return OC_OK;
  }
  switch (x->dtype) {
    case OC_DTYPE_FLOAT32: reduce_float(y->data, c->workspace, x->data, g, k); break;
    case OC_DTYPE_INT64: REDUCE_INT(int64_t, uint64_t, INT64_MIN, INT64_MAX); break;
    case OC_DTYPE_INT32: REDUCE_INT(int32_t, uint32_t, INT32_MIN, INT32_MAX); break;
  }
  return OC_OK;
}

#define REDUCE_OP(lower, KIND, NAME)                                                        \
  static oc_status_t lower##_infer(const oc_op_call_t *c, size_t *ws) {                 \
    return reduce_infer_kind(c, ws, KIND);                                              \
  }                                                                                     \
  static oc_status_t lower##_run(const oc_op_call_t *c) { return reduce_run_kind(c, KIND); } \
  const oc_op_def_t oc_op_##lower = {NAME, 1, 1, 1, 1, lower##_infer, lower##_run};

REDUCE_OP(reduce_sum, RD_SUM, "ReduceSum")
REDUCE_OP(reduce_mean, RD_MEAN, "ReduceMean")
REDUCE_OP(reduce_max, RD_MAX, "ReduceMax")
REDUCE_OP(reduce_min, RD_MIN, "ReduceMin")
REDUCE_OP(reduce_prod, RD_PROD, "ReduceProd")
REDUCE_OP(reduce_l1, RD_L1, "ReduceL1")
REDUCE_OP(reduce_l2, RD_L2, "ReduceL2")
REDUCE_OP(reduce_sum_square, RD_SUM_SQUARE, "ReduceSumSquare")
REDUCE_OP(reduce_log_sum, RD_LOG_SUM, "ReduceLogSum")
REDUCE_OP(reduce_log_sum_exp, RD_LOG_SUM_EXP, "ReduceLogSumExp")

/* --- ReduceBwd (backward of the float reductions) -----------------------------
 *
 * ReduceBwd: dx of y = Reduce<kind>(x) from dy, for float32.
 *   inputs:  dy float32 (the dims of y); x float32 and y float32 (the forward
 *            input and output), each present only when the kind needs it:
 *              x: Prod L1 SumSquare L2 LogSum LogSumExp Max Min
 *              y: L2 LogSum LogSumExp Max Min
 *            (Sum and Mean take dy alone: x's dims come from ints)
 *   outputs: dx float32 with x's dims
 *   ints:    [op, rank, x dims..., keepdims, axis...]: op the forward's
 *            runtime op number (OC_OP_REDUCE_SUM, ..._MEAN, ..._MAX, ..._MIN,
 *            ..._PROD, ..._L1, ..._L2, ..._SUM_SQUARE, ..._LOG_SUM,
 *            ..._LOG_SUM_EXP); rank and dims of x; then the forward's ints
 *   floats:  none
 * dx, with o the output element x_i reduces into and n the count per output:
 *   Sum dy; Mean dy / n; SumSquare 2 x dy; L1 sign(x) dy (0 at x = 0);
 *   L2 dy x / y, exactly 0 where y = 0 (PyTorch's norm backward: the
 *   subgradient 0 at the zero vector, not NaN); LogSum dy / exp(y);
 *   LogSumExp dy exp(x - y), 0 where y = -inf (an all -inf slice);
 *   Max / Min: dy split evenly among the elements equal to y (PyTorch's
 *   amax / amin; none gets any where y is NaN);
 *   Prod: dy * the product of the other elements, without dividing by zero:
 *   with one zero in the slice only that element gets a gradient, with two
 *   or more none does.
 * Workspace: Max/Min one double per output element (tie counts), Prod two
 * (the product of the non-zero elements, the zero count).
 */
static int rdg_kind(int64_t op, rd_kind_t *k) {
  switch (op) {
    case OC_OP_REDUCE_SUM: *k = RD_SUM; return 1;
    case OC_OP_REDUCE_MEAN: *k = RD_MEAN; return 1;
    case OC_OP_REDUCE_MAX: *k = RD_MAX; return 1;
    case OC_OP_REDUCE_MIN: *k = RD_MIN; return 1;
    case OC_OP_REDUCE_PROD: *k = RD_PROD; return 1;
    case OC_OP_REDUCE_L1: *k = RD_L1; return 1;
    case OC_OP_REDUCE_L2: *k = RD_L2; return 1;
    case OC_OP_REDUCE_SUM_SQUARE: *k = RD_SUM_SQUARE; return 1;
    case OC_OP_REDUCE_LOG_SUM: *k = RD_LOG_SUM; return 1;
    case OC_OP_REDUCE_LOG_SUM_EXP: *k = RD_LOG_SUM_EXP; return 1;
  }
  return 0;
}
static int rdg_needs_x(rd_kind_t k) { return k != RD_SUM && k != RD_MEAN; }
static int rdg_needs_y(rd_kind_t k) {
  return k == RD_L2 || k == RD_LOG_SUM || k == RD_LOG_SUM_EXP || k == RD_MAX || k == RD_MIN;
}

static int rdg_same_dims(const oc_tensor_t *t, int rank, const int64_t *dims) {
  if (t->rank != rank) return 0;
  for (int i = 0; i < rank; i++)
    if (t->dims[i] != dims[i]) return 0;
  return 1;
}

/* Validates ints and inputs; x gets the dims of the forward input. */
static oc_status_t rdg_parse(const oc_op_call_t *c, rd_kind_t *kind, oc_tensor_t *x,
                             unsigned *mask) {
  char b1[160], b2[160];
  if (c->n_floats != 0 || c->n_ints < 3)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "ReduceBwd needs ints [op, rank, dims..., keepdims, axis...]");
  if (!rdg_kind(c->ints[0], kind))
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "ReduceBwd op %lld is not a reduction",
                          (long long)c->ints[0]);
  int64_t rank = c->ints[1];
  if (rank < 0 || rank > OC_MAX_RANK || c->n_ints < 3 + rank)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "ReduceBwd rank is %lld with %d ints; needs rank in [0, %d] and "
                          "rank + 3 ints", (long long)rank, c->n_ints, OC_MAX_RANK);
  *x = (oc_tensor_t){.dtype = OC_DTYPE_FLOAT32, .rank = (int)rank};
  for (int i = 0; i < rank; i++) {
    int64_t d = c->ints[2 + i];
    if (d < 0 || d > OC_MAX_DIM)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "ReduceBwd x dim %d is %lld", i,
                            (long long)d);
    x->dims[i] = d;
  }
  OC_RETURN_IF_ERROR(oc_check_type(x, "ReduceBwd x"));
  int yrank;
  int64_t ydims[OC_MAX_RANK];
  OC_RETURN_IF_ERROR(rd_parse_ints(x, c->ints + 2 + rank, c->n_ints - 2 - (int)rank, mask, &yrank,
                                   ydims));
  oc_tensor_t yt = {.dtype = OC_DTYPE_FLOAT32, .rank = yrank};
  memcpy(yt.dims, ydims, sizeof(int64_t) * (size_t)yrank);
  const char *names[3] = {"dy", "x", "y"};
  for (int k = 0; k < 3; k++) {
    const oc_tensor_t *t = k < c->n_in ? c->in[k] : NULL;
    int needed = k == 0 || (k == 1 ? rdg_needs_x(*kind) : rdg_needs_y(*kind));
    if (!t) {
      if (needed)
        return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "ReduceBwd for %s needs input %s",
                              rd_names[*kind], names[k]);
      continue;
    }
    const oc_tensor_t *want = k == 1 ? x : &yt;
    if (t->dtype != OC_DTYPE_FLOAT32 || !rdg_same_dims(t, want->rank, want->dims))
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "ReduceBwd input %s is %s; expected %s",
                            names[k], oc_type_str(t, b1, sizeof b1),
                            oc_type_str(want, b2, sizeof b2));
  }
  return OC_OK;
}

static oc_status_t reduce_grad_infer(const oc_op_call_t *c, size_t *ws) {
  rd_kind_t k;
  oc_tensor_t x;
  unsigned mask;
  OC_RETURN_IF_ERROR(rdg_parse(c, &k, &x, &mask));
  oc_tensor_set_type(c->out[0], OC_DTYPE_FLOAT32, x.rank, x.dims);
  /* dy is at most 2^40 bytes, so this is at most 2^42 bytes. */
  int64_t ny = oc_tensor_numel(c->in[0]);
  *ws = (k == RD_MAX || k == RD_MIN) ? (size_t)ny * sizeof(double)
        : k == RD_PROD               ? 2 * (size_t)ny * sizeof(double)
                                     : 0;
  return OC_OK;
}

/* dy is the reduction's output (y), x and dx are (x dims). */
static oc_status_t reduce_grad_run(const oc_op_call_t *c) {
  rd_kind_t k;
  oc_tensor_t xt;
  unsigned mask;
  OC_RETURN_IF_ERROR(rdg_parse(c, &k, &xt, &mask));
  rd_geom_t geom, *g = &geom;
  rd_geometry(&xt, c->in[0], mask, g);
  const float *dy = c->in[0]->data;
  const float *x = c->n_in > 1 && c->in[1] ? c->in[1]->data : NULL;
  const float *y = c->n_in > 2 && c->in[2] ? c->in[2]->data : NULL;
  float *dx = c->out[0]->data;
  int64_t ny = g->out_numel;
  double *w1 = c->workspace, *w2 = w1 ? w1 + ny : NULL;
  switch (k) {
    case RD_SUM: RD_WALK(g, dx[i] = dy[o]); break;
    case RD_MEAN: {
      double n = ny ? (double)(g->in_numel / ny) : 1.0;
      RD_WALK(g, dx[i] = (float)(dy[o] / n));
      break;
    }
    case RD_SUM_SQUARE: RD_WALK(g, dx[i] = 2.0f * x[i] * dy[o]); break;
    case RD_L1:
      RD_WALK(g, dx[i] = x[i] > 0 ? dy[o] : x[i] < 0 ? -dy[o] : x[i] == 0 ? 0.0f : x[i]);
      break;
    case RD_L2: RD_WALK(g, dx[i] = y[o] == 0 ? 0.0f : (float)((double)dy[o] * x[i] / y[o])); break;
    case RD_LOG_SUM: RD_WALK(g, dx[i] = (float)(dy[o] * exp(-(double)y[o]))); break;
    case RD_LOG_SUM_EXP:
      RD_WALK(g, dx[i] = y[o] == -INFINITY ? 0.0f
                                           : (float)(dy[o] * exp((double)x[i] - y[o])));
      break;
    case RD_MAX:
    case RD_MIN:
      for (int64_t o = 0; o < ny; o++) w1[o] = 0.0;
      RD_WALK(g, if (x[i] == y[o]) w1[o] += 1.0);
      RD_WALK(g, dx[i] = x[i] == y[o] ? (float)(dy[o] / w1[o]) : 0.0f);
      break;
    case RD_PROD:
      for (int64_t o = 0; o < ny; o++) {
        w1[o] = 1.0; /* product of the non-zero elements */
        w2[o] = 0.0; /* zero count */
      }
      RD_WALK(g, { if (x[i] == 0) w2[o] += 1.0; else w1[o] *= x[i]; });
      RD_WALK(g, {
        double v = w2[o] == 0 ? w1[o] / x[i] : (w2[o] == 1 && x[i] == 0) ? w1[o] : 0.0;
        dx[i] = (float)(dy[o] * v);
      });
      break;
  }
  return OC_OK;
}

/* In place over x: dx[i] is written after the last read of x[i] (Max, Min
 * and Prod read all of x in a first pass). */
const oc_op_def_t oc_op_reduce_bwd = {"ReduceBwd", 1, 3, 1, 1, reduce_grad_infer,
                                      reduce_grad_run, 0, 1u << 1};
