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

static oc_status_t reduce_run_kind(const oc_op_call_t *c, rd_kind_t k) {
  const oc_tensor_t *x = c->in[0];
  oc_tensor_t *y = c->out[0];
  unsigned mask;
  int rank;
  int64_t dims[OC_MAX_RANK];
  OC_RETURN_IF_ERROR(rd_parse(c, &mask, &rank, dims));
  rd_geom_t geom, *g = &geom;
  rd_geometry(x, y, mask, g);
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
