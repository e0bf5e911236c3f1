/*
 * Elementwise ops: binary arithmetic and comparisons with multidirectional
 * (numpy) broadcasting, unary float math, Where, Clip and Cast.
 *
 * Binary (Add Sub Mul Div Pow; Equal Less Greater):
 *   inputs: a, b (same dtype: float32, int64 or int32; Pow: float32 base, any
 *           float32/int64/int32 exponent); outputs: y (broadcast shape; bool
 *           for comparisons). ints/floats: none.
 * Unary (Relu Exp Sqrt Erf Neg): x float32 (Neg also int64/int32) -> y.
 * Where: cond (bool), a, b (same dtype) -> y (broadcast of all three).
 * Clip: x float32 -> y; floats: [min, max] (the compiler fills +-inf).
 * Cast: x -> y; ints: [to] (an oc_dtype_t).
 */
#include <math.h>
#include <string.h>

#include "oc_ops.h"

/* --- broadcasting ------------------------------------------------------- */

/* Element strides of |t| seen through an output of rank |rank| and |dims|:
 * broadcast axes get stride 0. */
static void bcast_strides(const oc_tensor_t *t, int rank, const int64_t *dims, int64_t *strides) {
  int64_t s = 1;
  for (int i = rank - 1; i >= 0; i--) {
    int it = i - (rank - t->rank);
    if (it >= 0 && t->dims[it] == dims[i] && dims[i] != 1) {
      strides[i] = s;
    } else {
      strides[i] = 0;
    }
    if (it >= 0) s *= t->dims[it];
  }
}

/* Walks the output in row-major order, calling body(i, ia, ib, ic) with the
 * element offsets of up to three broadcast inputs. The innermost axis runs as
 * a plain loop. */
#define BCAST_LOOP(out, A, B, C, BODY)                                                    \
  do {                                                                                    \
    int r_ = (out)->rank;                                                                 \
    int64_t sa_[OC_MAX_RANK], sb_[OC_MAX_RANK], sc_[OC_MAX_RANK], idx_[OC_MAX_RANK] = {0}; \
    bcast_strides((A), r_, (out)->dims, sa_);                                             \
    bcast_strides((B), r_, (out)->dims, sb_);                                             \
    bcast_strides((C), r_, (out)->dims, sc_);                                             \
    int64_t n_ = oc_tensor_numel(out);                                                    \
    if (n_ == 0) break;                                                                   \
    if (r_ == 0) {                                                                        \
      int64_t i = 0, ia = 0, ib = 0, ic = 0;                                              \
      (void)ia; (void)ib; (void)ic;                                                       \
      BODY;                                                                               \
      break;                                                                              \
    }                                                                                     \
    int64_t inner_ = (out)->dims[r_ - 1];                                                 \
    int64_t ia0_ = 0, ib0_ = 0, ic0_ = 0;                                                 \
    for (int64_t base_ = 0; base_ < n_; base_ += inner_) {                                \
      for (int64_t k_ = 0; k_ < inner_; k_++) {                                           \
        int64_t i = base_ + k_, ia = ia0_ + k_ * sa_[r_ - 1], ib = ib0_ + k_ * sb_[r_ - 1]; \
        int64_t ic = ic0_ + k_ * sc_[r_ - 1];                                             \
        (void)ia; (void)ib; (void)ic;                                                     \
        BODY;                                                                             \
      }                                                                                   \
      for (int d_ = r_ - 2; d_ >= 0; d_--) {                                              \
        idx_[d_]++;                                                                       \
        ia0_ += sa_[d_]; ib0_ += sb_[d_]; ic0_ += sc_[d_];                                \
        if (idx_[d_] < (out)->dims[d_]) break;                                            \
        ia0_ -= sa_[d_] * idx_[d_]; ib0_ -= sb_[d_] * idx_[d_]; ic0_ -= sc_[d_] * idx_[d_]; \
        idx_[d_] = 0;                                                                     \
      }                                                                                   \
    }                                                                                     \
  } while (0)

/* --- binary ------------------------------------------------------------- */

typedef enum { BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV, BIN_POW, BIN_EQ, BIN_LT, BIN_GT } bin_kind_t;

static int is_compare(bin_kind_t k) { return k == BIN_EQ || k == BIN_LT || k == BIN_GT; }

static oc_status_t binary_infer_kind(const oc_op_call_t *c, bin_kind_t k) {
  const oc_tensor_t *a = c->in[0], *b = c->in[1];
  int numeric = a->dtype == OC_DTYPE_FLOAT32 || a->dtype == OC_DTYPE_INT64 ||
                a->dtype == OC_DTYPE_INT32 || (k == BIN_EQ && a->dtype == OC_DTYPE_BOOL);
  if (!numeric)
    return oc_make_status(OC_STATUS_UNSUPPORTED, "input A has dtype %s, not computed here",
                          oc_dtype_name(a->dtype));
  if (k == BIN_POW) {
    if (a->dtype != OC_DTYPE_FLOAT32)
      return oc_make_status(OC_STATUS_UNSUPPORTED, "Pow base has dtype %s; float32 only",
                            oc_dtype_name(a->dtype));
    if (b->dtype != OC_DTYPE_FLOAT32 && b->dtype != OC_DTYPE_INT64 && b->dtype != OC_DTYPE_INT32)
      return oc_make_status(OC_STATUS_UNSUPPORTED, "Pow exponent has dtype %s",
                            oc_dtype_name(b->dtype));
  } else if (a->dtype != b->dtype) {
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "inputs have dtypes %s and %s",
                          oc_dtype_name(a->dtype), oc_dtype_name(b->dtype));
  }
  int rank;
  int64_t dims[OC_MAX_RANK];
  OC_RETURN_IF_ERROR(oc_broadcast_shape(a, b, &rank, dims));
  oc_tensor_set_type(c->out[0], is_compare(k) ? OC_DTYPE_BOOL : a->dtype, rank, dims);
  return OC_OK;
}

#define ARITH(T, OP)                                                          \
  do {                                                                        \
    const T *pa = a->data, *pb = b->data;                                     \
    T *py = y->data;                                                          \
    BCAST_LOOP(y, a, b, b, py[i] = OP(pa[ia], pb[ib]));                       \
  } while (0)

#define CMP(T, OP)                                                            \
  do {                                                                        \
    const T *pa = a->data, *pb = b->data;                                     \
    uint8_t *py = y->data;                                                    \
    BCAST_LOOP(y, a, b, b, py[i] = (uint8_t)OP(pa[ia], pb[ib]));              \
  } while (0)

#define F_ADD(x, y) ((x) + (y))
#define F_SUB(x, y) ((x) - (y))
#define F_MUL(x, y) ((x) * (y))
#define F_DIV(x, y) ((x) / (y))
#define F_EQ(x, y) ((x) == (y))
#define F_LT(x, y) ((x) < (y))
#define F_GT(x, y) ((x) > (y))

/* Integer division by zero is undefined in C; ONNX leaves it undefined too.
 * We give 0 instead of trapping. INT_MIN / -1 likewise wraps. */
static inline int64_t idiv64(int64_t x, int64_t y) {
  if (y == 0) return 0;
  if (y == -1) return (int64_t)(0 - (uint64_t)x);
  return x / y;
}
static inline int32_t idiv32(int32_t x, int32_t y) {
  if (y == 0) return 0;
  if (y == -1) return (int32_t)(0 - (uint32_t)x);
  return x / y;
}
/* Integer arithmetic wraps (two's complement) rather than invoking UB. */
#define W64(OP) (int64_t)((uint64_t)(x) OP (uint64_t)(y))
static inline int64_t iadd64(int64_t x, int64_t y) { return W64(+); }
static inline int64_t isub64(int64_t x, int64_t y) { return W64(-); }
static inline int64_t imul64(int64_t x, int64_t y) { return W64(*); }
#undef W64
static inline int32_t iadd32(int32_t x, int32_t y) { return (int32_t)((uint32_t)x + (uint32_t)y); }
static inline int32_t isub32(int32_t x, int32_t y) { return (int32_t)((uint32_t)x - (uint32_t)y); }
static inline int32_t imul32(int32_t x, int32_t y) { return (int32_t)((uint32_t)x * (uint32_t)y); }

static oc_status_t binary_run_kind(const oc_op_call_t *c, bin_kind_t k) {
  const oc_tensor_t *a = c->in[0], *b = c->in[1];
  oc_tensor_t *y = c->out[0];
  if (k == BIN_POW) {
    const float *pa = a->data;
    float *py = y->data;
    if (b->dtype == OC_DTYPE_FLOAT32) {
      const float *pb = b->data;
      BCAST_LOOP(y, a, b, b, py[i] = pb[ib] == 2.0f ? pa[ia] * pa[ia] : powf(pa[ia], pb[ib]));
    } else if (b->dtype == OC_DTYPE_INT64) {
      const int64_t *pb = b->data;
      BCAST_LOOP(y, a, b, b, py[i] = powf(pa[ia], (float)pb[ib]));
    } else {
      const int32_t *pb = b->data;
      BCAST_LOOP(y, a, b, b, py[i] = powf(pa[ia], (float)pb[ib]));
    }
    return OC_OK;
  }
  switch (a->dtype) {
    case OC_DTYPE_FLOAT32:
      switch (k) {
        case BIN_ADD: ARITH(float, F_ADD); break;
        case BIN_SUB: ARITH(float, F_SUB); break;
        case BIN_MUL: ARITH(float, F_MUL); break;
        case BIN_DIV: ARITH(float, F_DIV); break;
        case BIN_EQ: CMP(float, F_EQ); break;
        case BIN_LT: CMP(float, F_LT); break;
        case BIN_GT: CMP(float, F_GT); break;
        default: break;
      }
      break;
    case OC_DTYPE_INT64:
      switch (k) {
        case BIN_ADD: ARITH(int64_t, iadd64); break;
        case BIN_SUB: ARITH(int64_t, isub64); break;
        case BIN_MUL: ARITH(int64_t, imul64); break;
        case BIN_DIV: ARITH(int64_t, idiv64); break;
        case BIN_EQ: CMP(int64_t, F_EQ); break;
        case BIN_LT: CMP(int64_t, F_LT); break;
        case BIN_GT: CMP(int64_t, F_GT); break;
        default: break;
      }
      break;
    case OC_DTYPE_INT32:
      switch (k) {
        case BIN_ADD: ARITH(int32_t, iadd32); break;
        case BIN_SUB: ARITH(int32_t, isub32); break;
        case BIN_MUL: ARITH(int32_t, imul32); break;
        case BIN_DIV: ARITH(int32_t, idiv32); break;
        case BIN_EQ: CMP(int32_t, F_EQ); break;
        case BIN_LT: CMP(int32_t, F_LT); break;
        case BIN_GT: CMP(int32_t, F_GT); break;
        default: break;
      }
      break;
    case OC_DTYPE_BOOL:
      CMP(uint8_t, F_EQ);
      break;
  }
  return OC_OK;
}

#define BINARY_OP(lower, KIND, NAME)                                                  \
  static oc_status_t lower##_infer(const oc_op_call_t *c, size_t *ws) {               \
    (void)ws;                                                                         \
    return binary_infer_kind(c, KIND);                                                \
  }                                                                                   \
  static oc_status_t lower##_run(const oc_op_call_t *c) { return binary_run_kind(c, KIND); } \
  const oc_op_def_t oc_op_##lower = {NAME, 2, 2, 1, 1, lower##_infer, lower##_run};

BINARY_OP(add, BIN_ADD, "Add")
BINARY_OP(sub, BIN_SUB, "Sub")
BINARY_OP(mul, BIN_MUL, "Mul")
BINARY_OP(div, BIN_DIV, "Div")
BINARY_OP(pow, BIN_POW, "Pow")
BINARY_OP(equal, BIN_EQ, "Equal")
BINARY_OP(less, BIN_LT, "Less")
BINARY_OP(greater, BIN_GT, "Greater")

/* --- unary -------------------------------------------------------------- */

static oc_status_t unary_float_infer(const oc_op_call_t *c, size_t *ws) {
  (void)ws;
  OC_RETURN_IF_ERROR(oc_expect_dtype(c->in[0], OC_DTYPE_FLOAT32, "input"));
  oc_tensor_set_type(c->out[0], c->in[0]->dtype, c->in[0]->rank, c->in[0]->dims);
  return OC_OK;
}

#define UNARY_FLOAT_OP(lower, NAME, EXPR)                                             \
  static oc_status_t lower##_run(const oc_op_call_t *c) {                             \
    const float *px = c->in[0]->data;                                                 \
    float *py = c->out[0]->data;                                                      \
    int64_t n = oc_tensor_numel(c->in[0]);                                            \
    for (int64_t i = 0; i < n; i++) {                                                 \
      float x = px[i];                                                                \
      py[i] = (EXPR);                                                                 \
    }                                                                                 \
    return OC_OK;                                                                     \
  }                                                                                   \
  const oc_op_def_t oc_op_##lower = {NAME, 1, 1, 1, 1, unary_float_infer, lower##_run};

/* Relu keeps NaN (x > 0 is false for NaN, so write it as a select on x < 0). */
UNARY_FLOAT_OP(relu, "Relu", x < 0.0f ? 0.0f : x)
UNARY_FLOAT_OP(exp, "Exp", expf(x))
UNARY_FLOAT_OP(sqrt, "Sqrt", sqrtf(x))
UNARY_FLOAT_OP(erf, "Erf", erff(x))

static oc_status_t neg_infer(const oc_op_call_t *c, size_t *ws) {
  (void)ws;
  int dt = c->in[0]->dtype;
  if (dt != OC_DTYPE_FLOAT32 && dt != OC_DTYPE_INT64 && dt != OC_DTYPE_INT32)
    return oc_make_status(OC_STATUS_UNSUPPORTED, "input has dtype %s", oc_dtype_name(dt));
  oc_tensor_set_type(c->out[0], dt, c->in[0]->rank, c->in[0]->dims);
  return OC_OK;
}

static oc_status_t neg_run(const oc_op_call_t *c) {
  int64_t n = oc_tensor_numel(c->in[0]);
  switch (c->in[0]->dtype) {
    case OC_DTYPE_FLOAT32: {
      const float *x = c->in[0]->data;
      float *y = c->out[0]->data;
      for (int64_t i = 0; i < n; i++) y[i] = -x[i];
      break;
    }
    case OC_DTYPE_INT64: {
      const int64_t *x = c->in[0]->data;
      int64_t *y = c->out[0]->data;
      for (int64_t i = 0; i < n; i++) y[i] = (int64_t)(0 - (uint64_t)x[i]);
      break;
    }
    default: {
      const int32_t *x = c->in[0]->data;
      int32_t *y = c->out[0]->data;
      for (int64_t i = 0; i < n; i++) y[i] = (int32_t)(0 - (uint32_t)x[i]);
      break;
    }
  }
  return OC_OK;
}

const oc_op_def_t oc_op_neg = {"Neg", 1, 1, 1, 1, neg_infer, neg_run};

/* --- Clip ---------------------------------------------------------------- */

static oc_status_t clip_infer(const oc_op_call_t *c, size_t *ws) {
  (void)ws;
  if (c->n_floats != 2) return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "needs [min, max]");
  return unary_float_infer(c, ws);
}

static oc_status_t clip_run(const oc_op_call_t *c) {
  const float *x = c->in[0]->data;
  float *y = c->out[0]->data;
  float lo = c->floats[0], hi = c->floats[1];
  int64_t n = oc_tensor_numel(c->in[0]);
  /* ONNX: y = min(max(x, min), max); NaN stays NaN as in PyTorch's clamp. */
  for (int64_t i = 0; i < n; i++) {
    float v = x[i];
    v = v < lo ? lo : v;
    v = v > hi ? hi : v;
    y[i] = v;
  }
  return OC_OK;
}

const oc_op_def_t oc_op_clip = {"Clip", 1, 1, 1, 1, clip_infer, clip_run};

/* --- Where --------------------------------------------------------------- */

static oc_status_t where_infer(const oc_op_call_t *c, size_t *ws) {
  (void)ws;
  const oc_tensor_t *cond = c->in[0], *a = c->in[1], *b = c->in[2];
  OC_RETURN_IF_ERROR(oc_expect_dtype(cond, OC_DTYPE_BOOL, "condition"));
  if (a->dtype != b->dtype)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "X and Y have dtypes %s and %s",
                          oc_dtype_name(a->dtype), oc_dtype_name(b->dtype));
  oc_tensor_t ab = {.dtype = a->dtype};
  OC_RETURN_IF_ERROR(oc_broadcast_shape(a, b, &ab.rank, ab.dims));
  int rank;
  int64_t dims[OC_MAX_RANK];
  OC_RETURN_IF_ERROR(oc_broadcast_shape(cond, &ab, &rank, dims));
  oc_tensor_set_type(c->out[0], a->dtype, rank, dims);
  return OC_OK;
}

#define WHERE_T(T)                                                                  \
  do {                                                                              \
    const T *pa = a->data, *pb = b->data;                                           \
    T *py = y->data;                                                                \
    BCAST_LOOP(y, cond, a, b, py[i] = pc[ia] ? pa[ib] : pb[ic]);                    \
  } while (0)

static oc_status_t where_run(const oc_op_call_t *c) {
  const oc_tensor_t *cond = c->in[0], *a = c->in[1], *b = c->in[2];
  oc_tensor_t *y = c->out[0];
  const uint8_t *pc = cond->data;
  switch (oc_dtype_size(a->dtype)) {
    case 1: WHERE_T(uint8_t); break;
    case 4: WHERE_T(uint32_t); break;
    case 8: WHERE_T(uint64_t); break;
  }
  return OC_OK;
}

const oc_op_def_t oc_op_where = {"Where", 3, 3, 1, 1, where_infer, where_run};

/* --- Cast ---------------------------------------------------------------- */

static oc_status_t cast_infer(const oc_op_call_t *c, size_t *ws) {
  (void)ws;
  if (c->n_ints != 1) return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "needs [to]");
  oc_tensor_t probe = {.dtype = (int)c->ints[0]};
  if (c->ints[0] < 0 || c->ints[0] > 64 || !oc_dtype_size(probe.dtype))
    return oc_make_status(OC_STATUS_UNSUPPORTED, "cast to %s is not supported",
                          oc_dtype_name((int)c->ints[0]));
  oc_tensor_set_type(c->out[0], (int)c->ints[0], c->in[0]->rank, c->in[0]->dims);
  return OC_OK;
}

/* Reads element i of any computed dtype as double (exact for int32, bool,
 * float32; int64 beyond 2^53 is cast directly below). */
static double load_as_double(const void *p, int dtype, int64_t i) {
  switch (dtype) {
    case OC_DTYPE_FLOAT32: return ((const float *)p)[i];
    case OC_DTYPE_FLOAT64: return ((const double *)p)[i];
    case OC_DTYPE_INT32: return ((const int32_t *)p)[i];
    case OC_DTYPE_INT64: return (double)((const int64_t *)p)[i];
    case OC_DTYPE_UINT8: return ((const uint8_t *)p)[i];
    case OC_DTYPE_INT8: return ((const int8_t *)p)[i];
    case OC_DTYPE_BOOL: return ((const uint8_t *)p)[i] != 0;
  }
  return 0;
}

/* Float to integer casts saturate and send NaN to 0 instead of invoking
 * undefined behaviour. */
static int64_t f2i64(double v) {
  if (v != v) return 0;
  if (v >= 9.2233720368547758e18) return INT64_MAX;
  if (v <= -9.2233720368547758e18) return INT64_MIN;
  return (int64_t)v;
}

static oc_status_t cast_run(const oc_op_call_t *c) {
  const oc_tensor_t *x = c->in[0];
  oc_tensor_t *y = c->out[0];
  int64_t n = oc_tensor_numel(x);
  if (x->dtype == y->dtype) {
    memmove(y->data, x->data, oc_tensor_bytes(x));
    return OC_OK;
  }
  for (int64_t i = 0; i < n; i++) {
    if (x->dtype == OC_DTYPE_INT64 && y->dtype != OC_DTYPE_FLOAT32 && y->dtype != OC_DTYPE_FLOAT64) {
      int64_t v = ((const int64_t *)x->data)[i];
      switch (y->dtype) {
        case OC_DTYPE_INT32: ((int32_t *)y->data)[i] = (int32_t)(uint32_t)(uint64_t)v; break;
        case OC_DTYPE_BOOL: ((uint8_t *)y->data)[i] = v != 0; break;
        case OC_DTYPE_UINT8: ((uint8_t *)y->data)[i] = (uint8_t)(uint64_t)v; break;
        case OC_DTYPE_INT8: ((int8_t *)y->data)[i] = (int8_t)(uint8_t)(uint64_t)v; break;
      }
      continue;
    }
    double v = load_as_double(x->data, x->dtype, i);
    switch (y->dtype) {
      case OC_DTYPE_FLOAT32: ((float *)y->data)[i] = (float)v; break;
      case OC_DTYPE_FLOAT64: ((double *)y->data)[i] = v; break;
      case OC_DTYPE_INT64: ((int64_t *)y->data)[i] = f2i64(v); break;
      case OC_DTYPE_INT32: ((int32_t *)y->data)[i] = (int32_t)(uint32_t)(uint64_t)f2i64(v); break;
      case OC_DTYPE_BOOL: ((uint8_t *)y->data)[i] = v != 0; break;
      case OC_DTYPE_UINT8: ((uint8_t *)y->data)[i] = (uint8_t)(uint64_t)f2i64(v); break;
      case OC_DTYPE_INT8: ((int8_t *)y->data)[i] = (int8_t)(uint8_t)(uint64_t)f2i64(v); break;
    }
  }
  return OC_OK;
}

const oc_op_def_t oc_op_cast = {"Cast", 1, 1, 1, 1, cast_infer, cast_run};
