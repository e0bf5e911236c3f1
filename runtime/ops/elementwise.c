/*
 * Elementwise ops: binary arithmetic, comparisons and logic with
 * multidirectional (numpy) broadcasting, unary math, variadic Max/Min/Sum/
 * Mean, Where, Clip and Cast.
 *
 * Binary (Add Sub Mul Div Pow; Equal Less Greater LessOrEqual GreaterOrEqual;
 * And Or Xor; Mod; PRelu):
 *   inputs: a, b; outputs: y (broadcast shape; bool for comparisons and
 *   logic). ints/floats: none, except Mod: ints [fmod] (0 or 1).
 *   - Add Sub Mul Div Mod, comparisons: a and b of one dtype, float32, int64,
 *     int32, int8 or uint8 (Equal also bool). Integer arithmetic wraps;
 *     integer division truncates toward zero; by zero it gives 0 (ONNX
 *     leaves it undefined).
 *   - Pow: base float32/int64/int32, exponent float32/int64/int32; y has the
 *     base's dtype. Integer base with integer exponent is the exact (wrapping)
 *     integer power; a negative exponent gives trunc(1/x^-n) (1, -1 or 0; 0
 *     for x = 0). Integer base with float exponent is pow in double, then
 *     truncated toward zero and saturated (NaN gives 0), as numpy's astype.
 *   - And Or Xor: bool, bool -> bool.
 *   - Mod: float32 needs fmod=1 (C fmod: the sign of the dividend); integers
 *     take fmod=1 (truncated remainder) or fmod=0 (Python: the sign of the
 *     divisor). x mod 0 is 0 for integers (NaN for floats).
 *   - PRelu: x, slope of one dtype (float32, int64, int32); slope broadcasts
 *     unidirectionally to x; y = x < 0 ? slope * x : x, shape of x.
 * Unary (Relu Exp Sqrt Erf Neg): x float32 (Neg also int64/int32) -> y.
 * Unary: x -> y, one op for many functions:
 *   ints:   [function, ...]   floats: [alpha, beta] (always two; unused ones
 *           are ignored, the compiler writes 0)
 *   function codes (stored in plans: never renumber):
 *      0 Abs          float32 int64 int32 (integers wrap: |INT_MIN| = INT_MIN)
 *      1 Reciprocal   1 / x
 *      2 Log          natural log
 *      3 Sigmoid      1 / (1 + exp(-x)), evaluated without overflow
 *      4 Tanh
 *      5 LeakyRelu    x < 0 ? alpha * x : x
 *      6 Elu          x < 0 ? alpha * (exp(x) - 1) : x
 *      7 Selu         beta * (x > 0 ? x : alpha * (exp(x) - 1))  (beta = gamma)
 *      8 Celu         max(0, x) + min(0, alpha * (exp(x / alpha) - 1))
 *      9 HardSigmoid  max(0, min(1, alpha * x + beta))
 *     10 HardSwish    x * max(0, min(1, x / 6 + 0.5))
 *     11 Softplus     log(1 + exp(x)), evaluated without overflow
 *     12 Softsign     x / (1 + |x|)
 *     13 Sign         -1, 0 or 1 (float32 int64 int32; NaN stays NaN)
 *     14 Floor
 *     15 Ceil
 *     16 Round        to nearest, halves to even
 *     17 IsNaN        float32 -> bool
 *     18 IsInf        float32 -> bool; ints [18, detect_positive,
 *                     detect_negative], each 0 or 1
 *     19 Not          bool -> bool
 *   Unless noted: float32 -> float32, ints [function] only; NaN in gives
 *   NaN out.
 * Variadic: x0, x1, ... (1 to OC_MAX_OP_INPUTS, one dtype) -> y, their
 *   multidirectional broadcast. ints: [function]; floats: none.
 *     0 Max, 1 Min   float32 int64 int32 int8 uint8; NaN in any input gives NaN
 *     2 Sum          float32, added left to right in float32
 *     3 Mean         float32, Sum / number of inputs
 * Where: cond (bool), a, b (same dtype) -> y (broadcast of all three).
 * Clip: x -> y; float32: floats [min, max] (the compiler fills +-inf);
 *   int64/int32/int8/uint8: ints [min, max] within the dtype's range.
 *   NaN stays NaN; min > max gives max everywhere (numpy's clip).
 * Cast: x -> y; ints: [to] (an oc_dtype_t).
 * UnaryBwd, BroadcastBwd: the backward kernels of these ops (documented at
 * the end of the file).
 */
#include <math.h>
#include <string.h>

#include "oc_ops.h"
#include "parallel.h"
#include "simd.h"

/* --- fast float32 paths --------------------------------------------------- */

/* Add, Sub, Mul, Div of float32 and the hot float unary functions run as
 * flat vector loops (simd.h) split over the context's threads when the
 * operands are the same shape, a scalar, or a block broadcast (a per-channel
 * bias); other broadcasts take the generic loops below. Same expressions as
 * the scalar code, so the same results (Erf and Exp excepted: simd.h's
 * approximations, within a few ulp). */
enum { EW_ADD, EW_SUB, EW_MUL, EW_DIV };

#define EW_OP(k, x, y) \
  ((k) == EW_ADD ? (x) + (y) : (k) == EW_SUB ? (x) - (y) : (k) == EW_MUL ? (x) * (y) : (x) / (y))

/* y[i] = a[i] op b[i] (sa, sb: 0 for a scalar operand, 1 for an array). */
#define EW_BIN_KERNEL(name, K)                                                               \
  OC_SIMD_CLONES static void name(float *y, const float *a, const float *b, int64_t n, int sa, \
                                  int sb) {                                                  \
    int64_t i = 0;                                                                           \
    if (sa && sb) {                                                                          \
      for (; i + OC_V16 <= n; i += OC_V16)                                                   \
        oc_v16_store(y + i, EW_OP(K, oc_v16_load(a + i), oc_v16_load(b + i)));               \
      for (; i < n; i++) y[i] = EW_OP(K, a[i], b[i]);                                        \
    } else if (sa) {                                                                         \
      const float s = b[0];                                                                  \
      const oc_v16f vs = oc_v16_set(s);                                                      \
      for (; i + OC_V16 <= n; i += OC_V16) oc_v16_store(y + i, EW_OP(K, oc_v16_load(a + i), vs)); \
      for (; i < n; i++) y[i] = EW_OP(K, a[i], s);                                           \
    } else {                                                                                 \
      const float s = a[0];                                                                  \
      const oc_v16f vs = oc_v16_set(s);                                                      \
      for (; i + OC_V16 <= n; i += OC_V16) oc_v16_store(y + i, EW_OP(K, vs, oc_v16_load(b + i))); \
      for (; i < n; i++) y[i] = EW_OP(K, s, b[i]);                                           \
    }                                                                                        \
  }
EW_BIN_KERNEL(ew_add, EW_ADD)
EW_BIN_KERNEL(ew_sub, EW_SUB)
EW_BIN_KERNEL(ew_mul, EW_MUL)
EW_BIN_KERNEL(ew_div, EW_DIV)

typedef void (*ew_bin_fn)(float *, const float *, const float *, int64_t, int, int);
static const ew_bin_fn ew_bin_fns[4] = {ew_add, ew_sub, ew_mul, ew_div};

/* A binary float job: y[i] = a[ia(i)] op b[ib(i)] where each operand is
 * full (index i), a scalar, or a block broadcast: index (i / inner) % nblk. */
enum { EWM_FULL, EWM_SCALAR, EWM_BLOCK };
typedef struct ew_bin_job_s {
  ew_bin_fn fn;
  const float *a, *b;
  float *y;
  int ma, mb;       /* EWM_* of a and b (at most one is EWM_BLOCK) */
  int64_t inner, nblk;
} ew_bin_job_t;

static void ew_bin_part(void *arg, int64_t i0, int64_t i1, int thread) {
  const ew_bin_job_t *j = arg;
  (void)thread;
  if (j->ma != EWM_BLOCK && j->mb != EWM_BLOCK) {
    j->fn(j->y + i0, j->ma == EWM_FULL ? j->a + i0 : j->a, j->mb == EWM_FULL ? j->b + i0 : j->b,
          i1 - i0, j->ma == EWM_FULL, j->mb == EWM_FULL);
    return;
  }
  /* runs of |inner| elements share the broadcast operand's value */
  for (int64_t i = i0; i < i1;) {
    int64_t r = i / j->inner, e = (r + 1) * j->inner < i1 ? (r + 1) * j->inner : i1;
    const float *a = j->ma == EWM_FULL ? j->a + i : j->ma == EWM_SCALAR ? j->a : j->a + r % j->nblk;
    const float *b = j->mb == EWM_FULL ? j->b + i : j->mb == EWM_SCALAR ? j->b : j->b + r % j->nblk;
    j->fn(j->y + i, a, b, e - i, j->ma == EWM_FULL, j->mb == EWM_FULL);
    i = e;
  }
}

/* How |t| maps onto the output |y|: EWM_FULL (same element count), EWM_SCALAR
 * (one element), EWM_BLOCK (its non-1 dims are one contiguous run of y's
 * dims: *inner is the product of y's dims after the run, *nblk the run's),
 * or -1. */
static int ew_mode(const oc_tensor_t *t, const oc_tensor_t *y, int64_t *inner, int64_t *nblk) {
  int64_t n = oc_tensor_numel(t);
  if (n == oc_tensor_numel(y)) return EWM_FULL;
  if (n == 1) return EWM_SCALAR;
  int off = y->rank - t->rank, first = -1, last = -1;
  for (int i = 0; i < t->rank; i++) {
    if (t->dims[i] == 1) continue;
    if (t->dims[i] != y->dims[off + i]) return -1;
    if (first < 0) first = i;
    else if (last != i - 1) return -1; /* a gap of 1s between its non-1 dims */
    last = i;
  }
  if (first < 0) return -1;
  *inner = 1;
  for (int i = off + last + 1; i < y->rank; i++) *inner *= y->dims[i];
  *nblk = n;
  return *inner >= 16 ? EWM_BLOCK : -1; /* short runs: the generic loop */
}

/* The fast path of float32 Add/Sub/Mul/Div; 0 when the shapes need the
 * generic loop. */
static int ew_bin_fast(const oc_op_call_t *c, int k) {
  const oc_tensor_t *a = c->in[0], *b = c->in[1];
  oc_tensor_t *y = c->out[0];
  int64_t n = oc_tensor_numel(y), inner = 1, nblk = 1, inner_b = 1, nblk_b = 1;
  int ma = ew_mode(a, y, &inner, &nblk), mb = ew_mode(b, y, &inner_b, &nblk_b);
  if (ma < 0 || mb < 0 || (ma == EWM_BLOCK && mb == EWM_BLOCK)) return 0;
  if (ma != EWM_FULL && mb != EWM_FULL) return 0; /* both broadcast: rare */
  if (mb == EWM_BLOCK) {
    inner = inner_b;
    nblk = nblk_b;
  }
  ew_bin_job_t j = {ew_bin_fns[k], a->data, b->data, y->data, ma, mb, inner, nblk};
  oc_parallel_for(c->pool, n, oc_grain(1), ew_bin_part, &j);
  return 1;
}

/* Unary float32 maps: Relu, Neg, Erf, Exp, Sqrt, Clip. */
enum { EWU_RELU, EWU_NEG, EWU_ERF, EWU_EXP, EWU_SQRT, EWU_CLIP };
typedef struct ew_un_job_s {
  int fn;
  const float *x;
  float *y;
  float lo, hi;
} ew_un_job_t;

OC_SIMD_CLONES static void ew_unary(int fn, float *y, const float *x, int64_t n, float lo,
                                    float hi) {
  int64_t i = 0;
  const oc_v16f zero = oc_v16_set(0.0f), vlo = oc_v16_set(lo), vhi = oc_v16_set(hi);
  switch (fn) {
    case EWU_RELU:
      for (; i + OC_V16 <= n; i += OC_V16) {
        oc_v16f v = oc_v16_load(x + i);
        oc_v16_store(y + i, oc_v16_select(v < zero, zero, v));
      }
      for (; i < n; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i];
      break;
    case EWU_NEG:
      for (; i + OC_V16 <= n; i += OC_V16) oc_v16_store(y + i, -oc_v16_load(x + i));
      for (; i < n; i++) y[i] = -x[i];
      break;
    case EWU_ERF:
      for (; i + OC_V16 <= n; i += OC_V16) oc_v16_store(y + i, oc_erf16(oc_v16_load(x + i)));
      if (i < n) oc_v16_store_n(y + i, oc_erf16(oc_v16_load_n(x + i, n - i)), n - i);
      break;
    case EWU_CLIP: /* v = v < lo ? lo : v; v = v > hi ? hi : v (NaN stays) */
      for (; i + OC_V16 <= n; i += OC_V16) {
        oc_v16f v = oc_v16_load(x + i);
        v = oc_v16_select(v < vlo, vlo, v);
        oc_v16_store(y + i, oc_v16_select(v > vhi, vhi, v));
      }
      for (; i < n; i++) {
        float v = x[i];
        v = v < lo ? lo : v;
        y[i] = v > hi ? hi : v;
      }
      break;
    case EWU_EXP:
      for (; i + OC_V16 <= n; i += OC_V16) oc_v16_store(y + i, oc_exp16(oc_v16_load(x + i)));
      if (i < n) oc_v16_store_n(y + i, oc_exp16(oc_v16_load_n(x + i, n - i)), n - i);
      break;
    default:
      for (; i < n; i++) y[i] = sqrtf(x[i]);
      break;
  }
}

static void ew_un_part(void *arg, int64_t i0, int64_t i1, int thread) {
  const ew_un_job_t *j = arg;
  (void)thread;
  ew_unary(j->fn, j->y + i0, j->x + i0, i1 - i0, j->lo, j->hi);
}

static void ew_unary_run(const oc_op_call_t *c, int fn, float lo, float hi) {
  ew_un_job_t j = {fn, c->in[0]->data, c->out[0]->data, lo, hi};
  int64_t cost = fn == EWU_ERF || fn == EWU_EXP || fn == EWU_SQRT ? 8 : 1;
  oc_parallel_for(c->pool, oc_tensor_numel(c->in[0]), oc_grain(cost), ew_un_part, &j);
}

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

typedef enum {
  BIN_ADD,
  BIN_SUB,
  BIN_MUL,
  BIN_DIV,
  BIN_POW,
  BIN_EQ,
  BIN_LT,
  BIN_GT,
  BIN_LE,
  BIN_GE,
  BIN_AND,
  BIN_OR,
  BIN_XOR,
  BIN_MOD,  /* Python-style: the sign of the divisor (integers only) */
  BIN_FMOD, /* C-style: the sign of the dividend */
  BIN_PRELU,
} bin_kind_t;

static int is_compare(bin_kind_t k) {
  return k == BIN_EQ || k == BIN_LT || k == BIN_GT || k == BIN_LE || k == BIN_GE;
}
static int is_logic(bin_kind_t k) { return k == BIN_AND || k == BIN_OR || k == BIN_XOR; }
static int is_int_dtype(int dt) { return dt == OC_DTYPE_INT64 || dt == OC_DTYPE_INT32; }
static int is_numeric_dtype(int dt) { return dt == OC_DTYPE_FLOAT32 || is_int_dtype(dt); }
/* Arithmetic and comparisons also take the 8-bit integers. */
static int is_small_int_dtype(int dt) { return dt == OC_DTYPE_INT8 || dt == OC_DTYPE_UINT8; }

static oc_status_t binary_infer_kind(const oc_op_call_t *c, bin_kind_t k) {
  const oc_tensor_t *a = c->in[0], *b = c->in[1];
  if (is_logic(k)) {
    OC_RETURN_IF_ERROR(oc_expect_dtype(a, OC_DTYPE_BOOL, "input A"));
    OC_RETURN_IF_ERROR(oc_expect_dtype(b, OC_DTYPE_BOOL, "input B"));
  } else if (!is_numeric_dtype(a->dtype) && !is_small_int_dtype(a->dtype) &&
             !(k == BIN_EQ && a->dtype == OC_DTYPE_BOOL)) {
    return oc_make_status(OC_STATUS_UNSUPPORTED, "input A has dtype %s, not computed here",
                          oc_dtype_name(a->dtype));
  }
  if ((k == BIN_POW || k == BIN_PRELU) && !is_numeric_dtype(a->dtype))
    return oc_make_status(OC_STATUS_UNSUPPORTED, "input A has dtype %s; %s computes float32, "
                          "int64, int32", oc_dtype_name(a->dtype), k == BIN_POW ? "Pow" : "PRelu");
  if (k == BIN_POW) {
    if (!is_numeric_dtype(b->dtype))
      return oc_make_status(OC_STATUS_UNSUPPORTED, "Pow exponent has dtype %s",
                            oc_dtype_name(b->dtype));
  } else if (a->dtype != b->dtype) {
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "inputs have dtypes %s and %s",
                          oc_dtype_name(a->dtype), oc_dtype_name(b->dtype));
  }
  if (k == BIN_MOD && a->dtype == OC_DTYPE_FLOAT32)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "Mod of float32 needs fmod=1 (ONNX requires it for floating point)");
  int rank;
  int64_t dims[OC_MAX_RANK];
  OC_RETURN_IF_ERROR(oc_broadcast_shape(a, b, &rank, dims));
  if (k == BIN_PRELU) {
    /* Unidirectional: slope broadcasts to x, never the other way. */
    int same = rank == a->rank;
    for (int i = 0; same && i < rank; i++) same = dims[i] == a->dims[i];
    if (!same) {
      char b1[160], b2[160];
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "slope %s does not broadcast to x %s",
                            oc_type_str(b, b1, sizeof b1), oc_type_str(a, b2, sizeof b2));
    }
  }
  int out_dtype = is_compare(k) || is_logic(k) ? OC_DTYPE_BOOL : a->dtype;
  oc_tensor_set_type(c->out[0], out_dtype, rank, dims);
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
#define F_LE(x, y) ((x) <= (y))
#define F_GE(x, y) ((x) >= (y))
/* Bool bytes other than 0/1 (from a hostile plan's constants) still give 0/1. */
#define F_AND(x, y) ((x) != 0 && (y) != 0)
#define F_OR(x, y) ((x) != 0 || (y) != 0)
#define F_XOR(x, y) (((x) != 0) != ((y) != 0))
#define F_PRELU(x, s) ((x) < 0 ? (s) * (x) : (x))

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

/* Remainders. x % 0 is 0 (numpy gives 0 for integers); x % -1 is 0, which
 * also avoids the INT_MIN % -1 trap. fmod: sign of x; mod: sign of y. */
static inline int64_t ifmod64(int64_t x, int64_t y) { return y == 0 || y == -1 ? 0 : x % y; }
static inline int64_t imod64(int64_t x, int64_t y) {
  int64_t r = ifmod64(x, y);
  return r != 0 && (r < 0) != (y < 0) ? r + y : r;
}
static inline int32_t ifmod32(int32_t x, int32_t y) { return y == 0 || y == -1 ? 0 : x % y; }
static inline int32_t imod32(int32_t x, int32_t y) {
  int32_t r = ifmod32(x, y);
  return r != 0 && (r < 0) != (y < 0) ? r + y : r;
}

static inline int64_t iprelu64(int64_t x, int64_t s) { return x < 0 ? imul64(s, x) : x; }
static inline int32_t iprelu32(int32_t x, int32_t s) { return x < 0 ? imul32(s, x) : x; }

/* x^n for integers, exact modulo 2^64 (the caller narrows to its width, and
 * the low bits of a wrapped product are the narrow wrapped product). */
static int64_t ipow(int64_t x, int64_t n) {
  if (n < 0) {
    /* trunc(1 / x^-n): only |x| = 1 survives; x = 0 (a division by zero)
     * gives 0 too. */
    if (x == 1) return 1;
    if (x == -1) return (n & 1) ? -1 : 1;
    return 0;
  }
  uint64_t r = 1, b = (uint64_t)x;
  for (uint64_t e = (uint64_t)n; e; e >>= 1) {
    if (e & 1) r *= b;
    b *= b;
  }
  return (int64_t)r;
}

/* Double to integer, truncating toward zero, saturating at the limits of a
 * |bits|-bit signed integer; NaN gives 0 (never undefined behaviour). */
static int64_t f2i_sat(double v, int bits) {
  double hi = bits == 64 ? 9.2233720368547758e18 : 2147483648.0;
  if (v != v) return 0;
  if (v >= hi) return bits == 64 ? INT64_MAX : INT32_MAX;
  if (v <= -hi) return bits == 64 ? INT64_MIN : INT32_MIN;
  return (int64_t)v;
}

/* Pow with an integer base: TB the base (and output) type, TE the exponent
 * type; a float exponent goes through double as numpy's float64 promotion. */
#define POW_INT(TB, TE, BITS)                                                          \
  do {                                                                                 \
    const TB *pa = a->data;                                                            \
    const TE *pb = b->data;                                                            \
    TB *py = y->data;                                                                  \
    if (b->dtype == OC_DTYPE_FLOAT32)                                                  \
      BCAST_LOOP(y, a, b, b,                                                           \
                 py[i] = (TB)f2i_sat(pow((double)pa[ia], (double)pb[ib]), BITS));      \
    else                                                                               \
      BCAST_LOOP(y, a, b, b, py[i] = (TB)(uint64_t)ipow((int64_t)pa[ia], (int64_t)pb[ib])); \
  } while (0)

static void pow_kernel(const oc_tensor_t *a, const oc_tensor_t *b, oc_tensor_t *y) {
  if (a->dtype == OC_DTYPE_FLOAT32) {
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
    return;
  }
  if (a->dtype == OC_DTYPE_INT64) {
    switch (b->dtype) {
      case OC_DTYPE_FLOAT32: POW_INT(int64_t, float, 64); break;
      case OC_DTYPE_INT64: POW_INT(int64_t, int64_t, 64); break;
      default: POW_INT(int64_t, int32_t, 64); break;
    }
  } else {
    switch (b->dtype) {
      case OC_DTYPE_FLOAT32: POW_INT(int32_t, float, 32); break;
      case OC_DTYPE_INT64: POW_INT(int32_t, int64_t, 32); break;
      default: POW_INT(int32_t, int32_t, 32); break;
    }
  }
}

/* int8 and uint8 compute in int32 (exact: the values fit) and narrow on the
 * store, which wraps like the wide types do. */
#define SMALL_INT_CASES(T)                                \
  switch (k) {                                            \
    case BIN_ADD: ARITH(T, iadd32); break;                \
    case BIN_SUB: ARITH(T, isub32); break;                \
    case BIN_MUL: ARITH(T, imul32); break;                \
    case BIN_DIV: ARITH(T, idiv32); break;                \
    case BIN_MOD: ARITH(T, imod32); break;                \
    case BIN_FMOD: ARITH(T, ifmod32); break;              \
    case BIN_EQ: CMP(T, F_EQ); break;                     \
    case BIN_LT: CMP(T, F_LT); break;                     \
    case BIN_GT: CMP(T, F_GT); break;                     \
    case BIN_LE: CMP(T, F_LE); break;                     \
    case BIN_GE: CMP(T, F_GE); break;                     \
    default: break;                                       \
  }

static oc_status_t binary_run_kind(const oc_op_call_t *c, bin_kind_t k) {
  const oc_tensor_t *a = c->in[0], *b = c->in[1];
  oc_tensor_t *y = c->out[0];
  if (a->dtype == OC_DTYPE_FLOAT32 && k <= BIN_DIV && ew_bin_fast(c, (int)k)) return OC_OK;
  if (k == BIN_POW) {
    if (a->dtype == OC_DTYPE_FLOAT32 && b->dtype == OC_DTYPE_FLOAT32 && oc_tensor_numel(b) == 1 &&
        *(const float *)b->data == 2.0f && oc_tensor_numel(a) == oc_tensor_numel(y)) {
      /* x^2 (LayerNorm's variance): x * x, as pow_kernel computes it */
      ew_bin_job_t j = {ew_mul, a->data, a->data, y->data, EWM_FULL, EWM_FULL, 1, 1};
      oc_parallel_for(c->pool, oc_tensor_numel(y), oc_grain(1), ew_bin_part, &j);
      return OC_OK;
    }
    pow_kernel(a, b, y);
    return OC_OK;
  }
  switch (a->dtype) {
    case OC_DTYPE_FLOAT32:
      switch (k) {
        case BIN_ADD: ARITH(float, F_ADD); break;
        case BIN_SUB: ARITH(float, F_SUB); break;
        case BIN_MUL: ARITH(float, F_MUL); break;
        case BIN_DIV: ARITH(float, F_DIV); break;
        case BIN_FMOD: ARITH(float, fmodf); break;
        case BIN_PRELU: ARITH(float, F_PRELU); break;
        case BIN_EQ: CMP(float, F_EQ); break;
        case BIN_LT: CMP(float, F_LT); break;
        case BIN_GT: CMP(float, F_GT); break;
        case BIN_LE: CMP(float, F_LE); break;
        case BIN_GE: CMP(float, F_GE); break;
        default: break;
      }
      break;
    case OC_DTYPE_INT64:
      switch (k) {
        case BIN_ADD: ARITH(int64_t, iadd64); break;
        case BIN_SUB: ARITH(int64_t, isub64); break;
        case BIN_MUL: ARITH(int64_t, imul64); break;
        case BIN_DIV: ARITH(int64_t, idiv64); break;
        case BIN_MOD: ARITH(int64_t, imod64); break;
        case BIN_FMOD: ARITH(int64_t, ifmod64); break;
        case BIN_PRELU: ARITH(int64_t, iprelu64); break;
        case BIN_EQ: CMP(int64_t, F_EQ); break;
        case BIN_LT: CMP(int64_t, F_LT); break;
        case BIN_GT: CMP(int64_t, F_GT); break;
        case BIN_LE: CMP(int64_t, F_LE); break;
        case BIN_GE: CMP(int64_t, F_GE); break;
        default: break;
      }
      break;
    case OC_DTYPE_INT32:
      switch (k) {
        case BIN_ADD: ARITH(int32_t, iadd32); break;
        case BIN_SUB: ARITH(int32_t, isub32); break;
        case BIN_MUL: ARITH(int32_t, imul32); break;
        case BIN_DIV: ARITH(int32_t, idiv32); break;
        case BIN_MOD: ARITH(int32_t, imod32); break;
        case BIN_FMOD: ARITH(int32_t, ifmod32); break;
        case BIN_PRELU: ARITH(int32_t, iprelu32); break;
        case BIN_EQ: CMP(int32_t, F_EQ); break;
        case BIN_LT: CMP(int32_t, F_LT); break;
        case BIN_GT: CMP(int32_t, F_GT); break;
        case BIN_LE: CMP(int32_t, F_LE); break;
        case BIN_GE: CMP(int32_t, F_GE); break;
        default: break;
      }
      break;
    case OC_DTYPE_INT8:
      SMALL_INT_CASES(int8_t);
      break;
    case OC_DTYPE_UINT8:
      SMALL_INT_CASES(uint8_t);
      break;
    case OC_DTYPE_BOOL:
      switch (k) {
        case BIN_AND: CMP(uint8_t, F_AND); break;
        case BIN_OR: CMP(uint8_t, F_OR); break;
        case BIN_XOR: CMP(uint8_t, F_XOR); break;
        default: CMP(uint8_t, F_EQ); break;
      }
      break;
  }
  return OC_OK;
}

#define BINARY_OP(lower, KIND, NAME)                                                  \
  static oc_status_t lower##_infer(const oc_op_call_t *c, size_t *ws) {               \
    (void)ws;                                                                         \
    if (c->n_ints != 0 || c->n_floats != 0)                                           \
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "takes no attributes");       \
    return binary_infer_kind(c, KIND);                                                \
  }                                                                                   \
  static oc_status_t lower##_run(const oc_op_call_t *c) { return binary_run_kind(c, KIND); } \
  /* In place: every output element reads only the same element of an input   \
   * of the output's size (a same-sized broadcast input has the same layout). */ \
  const oc_op_def_t oc_op_##lower = {NAME, 2, 2, 1, 1, lower##_infer, lower##_run, 0, 0x3};

BINARY_OP(add, BIN_ADD, "Add")
BINARY_OP(sub, BIN_SUB, "Sub")
BINARY_OP(mul, BIN_MUL, "Mul")
BINARY_OP(div, BIN_DIV, "Div")
BINARY_OP(pow, BIN_POW, "Pow")
BINARY_OP(equal, BIN_EQ, "Equal")
BINARY_OP(less, BIN_LT, "Less")
BINARY_OP(greater, BIN_GT, "Greater")
BINARY_OP(less_equal, BIN_LE, "LessOrEqual")
BINARY_OP(greater_equal, BIN_GE, "GreaterOrEqual")
BINARY_OP(and, BIN_AND, "And")
BINARY_OP(or, BIN_OR, "Or")
BINARY_OP(xor, BIN_XOR, "Xor")
BINARY_OP(prelu, BIN_PRELU, "PRelu")

/* Mod: ints [fmod]. */
static bin_kind_t mod_kind(const oc_op_call_t *c) { return c->ints[0] ? BIN_FMOD : BIN_MOD; }

static oc_status_t mod_infer(const oc_op_call_t *c, size_t *ws) {
  (void)ws;
  if (c->n_ints != 1 || c->n_floats != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "needs ints [fmod]");
  if (c->ints[0] != 0 && c->ints[0] != 1)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "fmod is %lld; must be 0 or 1",
                          (long long)c->ints[0]);
  return binary_infer_kind(c, mod_kind(c));
}

static oc_status_t mod_run(const oc_op_call_t *c) { return binary_run_kind(c, mod_kind(c)); }

const oc_op_def_t oc_op_mod = {"Mod", 2, 2, 1, 1, mod_infer, mod_run, 0, 0x3};

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
  const oc_op_def_t oc_op_##lower = {NAME, 1, 1, 1, 1, unary_float_infer, lower##_run, 0, 0x1};

/* Relu keeps NaN (x > 0 is false for NaN, so write it as a select on x < 0). */
#define UNARY_FAST_OP(lower, NAME, FN)                                                 \
  static oc_status_t lower##_run(const oc_op_call_t *c) {                             \
    ew_unary_run(c, FN, 0.0f, 0.0f);                                                  \
    return OC_OK;                                                                     \
  }                                                                                   \
  const oc_op_def_t oc_op_##lower = {NAME, 1, 1, 1, 1, unary_float_infer, lower##_run, 0, 0x1};
UNARY_FAST_OP(relu, "Relu", EWU_RELU)
UNARY_FAST_OP(exp, "Exp", EWU_EXP)
UNARY_FAST_OP(sqrt, "Sqrt", EWU_SQRT)
UNARY_FAST_OP(erf, "Erf", EWU_ERF)

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
    case OC_DTYPE_FLOAT32:
      ew_unary_run(c, EWU_NEG, 0.0f, 0.0f);
      break;
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

const oc_op_def_t oc_op_neg = {"Neg", 1, 1, 1, 1, neg_infer, neg_run, 0, 0x1};

/* --- Unary: many functions, one op ---------------------------------------- */

/* Function codes: see the header. Stored in plans: never renumber. */
typedef enum {
  UN_ABS = 0,
  UN_RECIPROCAL = 1,
  UN_LOG = 2,
  UN_SIGMOID = 3,
  UN_TANH = 4,
  UN_LEAKY_RELU = 5,
  UN_ELU = 6,
  UN_SELU = 7,
  UN_CELU = 8,
  UN_HARD_SIGMOID = 9,
  UN_HARD_SWISH = 10,
  UN_SOFTPLUS = 11,
  UN_SOFTSIGN = 12,
  UN_SIGN = 13,
  UN_FLOOR = 14,
  UN_CEIL = 15,
  UN_ROUND = 16,
  UN_ISNAN = 17,
  UN_ISINF = 18,
  UN_NOT = 19,
  UN_COUNT
} un_fn_t;

static const char *const un_names[UN_COUNT] = {
    "Abs",  "Reciprocal", "Log",         "Sigmoid",   "Tanh",     "LeakyRelu", "Elu",
    "Selu", "Celu",       "HardSigmoid", "HardSwish", "Softplus", "Softsign",  "Sign",
    "Floor", "Ceil",      "Round",       "IsNaN",     "IsInf",    "Not"};

static oc_status_t unary_infer(const oc_op_call_t *c, size_t *ws) {
  (void)ws;
  const oc_tensor_t *x = c->in[0];
  if (c->n_ints < 1 || c->n_floats != 2)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "needs ints [function, ...] and floats "
                                                      "[alpha, beta]");
  int64_t fn = c->ints[0];
  if (fn < 0 || fn >= UN_COUNT)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "unknown function code %lld (0 to %d)",
                          (long long)fn, UN_COUNT - 1);
  const char *name = un_names[fn];
  int n_ints = fn == UN_ISINF ? 3 : 1;
  if (c->n_ints != n_ints)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s takes %d ints, got %d", name, n_ints,
                          c->n_ints);
  for (int i = 1; i < n_ints; i++)
    if (c->ints[i] != 0 && c->ints[i] != 1)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s: ints[%d] is %lld; must be 0 or 1",
                            name, i, (long long)c->ints[i]);
  int out_dtype = x->dtype;
  if (fn == UN_ABS || fn == UN_SIGN) {
    if (!is_numeric_dtype(x->dtype))
      return oc_make_status(OC_STATUS_UNSUPPORTED,
                            "input has dtype %s; %s computes float32, int64, int32",
                            oc_dtype_name(x->dtype), name);
  } else if (fn == UN_NOT) {
    if (x->dtype != OC_DTYPE_BOOL)
      return oc_make_status(OC_STATUS_UNSUPPORTED, "input has dtype %s; Not computes bool",
                            oc_dtype_name(x->dtype));
  } else {
    if (x->dtype != OC_DTYPE_FLOAT32)
      return oc_make_status(OC_STATUS_UNSUPPORTED, "input has dtype %s; %s computes float32",
                            oc_dtype_name(x->dtype), name);
    if (fn == UN_ISNAN || fn == UN_ISINF) out_dtype = OC_DTYPE_BOOL;
  }
  oc_tensor_set_type(c->out[0], out_dtype, x->rank, x->dims);
  return OC_OK;
}

/* Scalar functions (float32). Written as selects so NaN passes through. */
static inline float f_sigmoid(float x) {
  /* exp of a negative number only: no overflow for large |x|. */
  if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
  float e = expf(x);
  return e / (1.0f + e);
}
static inline float f_softplus(float x) {
  /* log(1 + e^x) = max(x, 0) + log1p(e^-|x|) */
  return x > 0.0f ? x + log1pf(expf(-x)) : log1pf(expf(x));
}
static inline float f_hard_sigmoid(float x, float alpha, float beta) {
  float v = alpha * x + beta;
  v = v < 0.0f ? 0.0f : v;
  return v > 1.0f ? 1.0f : v;
}
static inline float f_celu(float x, float alpha) {
  if (x != x) return x;
  float pos = x > 0.0f ? x : 0.0f;
  float neg = alpha * expm1f(x / alpha);
  return pos + (neg < 0.0f ? neg : 0.0f);
}
static inline float f_sign(float x) { return x > 0.0f ? 1.0f : x < 0.0f ? -1.0f : x; }
static inline float f_round_half_even(float x) {
  float r = roundf(x); /* halves away from zero */
  if (fabsf(x - truncf(x)) == 0.5f) r = 2.0f * roundf(0.5f * x);
  return r;
}

/* Applies EXPR (of x, alpha, beta) to every element: x is (n) of TI, y is
 * (n) of TO. */
#define UNARY_MAP(TO, TI, EXPR)                       \
  do {                                                \
    const TI *px_ = c->in[0]->data;                   \
    TO *py_ = c->out[0]->data;                        \
    for (int64_t i_ = 0; i_ < n; i_++) {              \
      TI x = px_[i_];                                 \
      py_[i_] = (TO)(EXPR);                           \
    }                                                 \
  } while (0)

/* Abs and Sign for the integer types: wrapping negation, no UB. */
#define ABS_SIGN_INT(T, UT)                                                    \
  do {                                                                         \
    if (fn == UN_ABS)                                                          \
      UNARY_MAP(T, T, x < 0 ? (T)(0 - (UT)x) : x);                             \
    else                                                                       \
      UNARY_MAP(T, T, (x > 0) - (x < 0));                                      \
  } while (0)

static oc_status_t unary_run(const oc_op_call_t *c) {
  int64_t n = oc_tensor_numel(c->in[0]);
  un_fn_t fn = (un_fn_t)c->ints[0];
  float alpha = c->floats[0], beta = c->floats[1];
  int dt = c->in[0]->dtype;
  if (dt == OC_DTYPE_INT64) {
    ABS_SIGN_INT(int64_t, uint64_t);
    return OC_OK;
  }
  if (dt == OC_DTYPE_INT32) {
    ABS_SIGN_INT(int32_t, uint32_t);
    return OC_OK;
  }
  switch (fn) {
    case UN_ABS: UNARY_MAP(float, float, fabsf(x)); break;
    case UN_RECIPROCAL: UNARY_MAP(float, float, 1.0f / x); break;
    case UN_LOG: UNARY_MAP(float, float, logf(x)); break;
    case UN_SIGMOID: UNARY_MAP(float, float, f_sigmoid(x)); break;
    case UN_TANH: UNARY_MAP(float, float, tanhf(x)); break;
    case UN_LEAKY_RELU: UNARY_MAP(float, float, x < 0.0f ? alpha * x : x); break;
    case UN_ELU: UNARY_MAP(float, float, x < 0.0f ? alpha * expm1f(x) : x); break;
    case UN_SELU: UNARY_MAP(float, float, beta * (x > 0.0f ? x : alpha * expm1f(x))); break;
    case UN_CELU: UNARY_MAP(float, float, f_celu(x, alpha)); break;
    case UN_HARD_SIGMOID: UNARY_MAP(float, float, f_hard_sigmoid(x, alpha, beta)); break;
    case UN_HARD_SWISH: UNARY_MAP(float, float, x * f_hard_sigmoid(x, 1.0f / 6.0f, 0.5f)); break;
    case UN_SOFTPLUS: UNARY_MAP(float, float, f_softplus(x)); break;
    case UN_SOFTSIGN: UNARY_MAP(float, float, x / (1.0f + fabsf(x))); break;
    case UN_SIGN: UNARY_MAP(float, float, f_sign(x)); break;
    case UN_FLOOR: UNARY_MAP(float, float, floorf(x)); break;
    case UN_CEIL: UNARY_MAP(float, float, ceilf(x)); break;
    case UN_ROUND: UNARY_MAP(float, float, f_round_half_even(x)); break;
    case UN_ISNAN: UNARY_MAP(uint8_t, float, x != x); break;
    case UN_ISINF: {
      int pos = c->ints[1] != 0, neg = c->ints[2] != 0;
      UNARY_MAP(uint8_t, float, (pos && x == INFINITY) || (neg && x == -INFINITY));
      break;
    }
    case UN_NOT: UNARY_MAP(uint8_t, uint8_t, x == 0); break;
    default: break;
  }
  return OC_OK;
}

const oc_op_def_t oc_op_unary = {"Unary", 1, 1, 1, 1, unary_infer, unary_run, 0, 0x1};

/* --- Variadic: Max Min Sum Mean --------------------------------------------- */

typedef enum { VAR_MAX = 0, VAR_MIN = 1, VAR_SUM = 2, VAR_MEAN = 3, VAR_COUNT } var_fn_t;

static const char *const var_names[VAR_COUNT] = {"Max", "Min", "Sum", "Mean"};

static oc_status_t variadic_infer(const oc_op_call_t *c, size_t *ws) {
  (void)ws;
  if (c->n_ints != 1 || c->n_floats != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "needs ints [function]");
  int64_t fn = c->ints[0];
  if (fn < 0 || fn >= VAR_COUNT)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "unknown function code %lld (0 to %d)",
                          (long long)fn, VAR_COUNT - 1);
  const oc_tensor_t *x0 = c->in[0];
  int ints_ok = fn == VAR_MAX || fn == VAR_MIN;
  int int_dtype = is_int_dtype(x0->dtype) || is_small_int_dtype(x0->dtype);
  if (!(x0->dtype == OC_DTYPE_FLOAT32 || (ints_ok && int_dtype)))
    return oc_make_status(OC_STATUS_UNSUPPORTED, "input 0 has dtype %s; %s computes %s",
                          oc_dtype_name(x0->dtype), var_names[fn],
                          ints_ok ? "float32, int64, int32, int8, uint8" : "float32");
  oc_tensor_t acc = {.dtype = x0->dtype, .rank = x0->rank};
  for (int i = 0; i < x0->rank; i++) acc.dims[i] = x0->dims[i];
  for (int k = 1; k < c->n_in; k++) {
    const oc_tensor_t *x = c->in[k];
    if (!x) return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input %d is missing", k);
    if (x->dtype != x0->dtype)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input %d has dtype %s; input 0 has %s",
                            k, oc_dtype_name(x->dtype), oc_dtype_name(x0->dtype));
    oc_tensor_t next = {.dtype = x0->dtype};
    OC_RETURN_IF_ERROR(oc_broadcast_shape(&acc, x, &next.rank, next.dims));
    acc = next;
  }
  oc_tensor_set_type(c->out[0], x0->dtype, acc.rank, acc.dims);
  return OC_OK;
}

/* max/min that return NaN when either side is NaN (numpy's maximum). */
static inline float f_max(float a, float b) { return a != a ? a : (a > b ? a : b); }
static inline float f_min(float a, float b) { return a != a ? a : (a < b ? a : b); }
#define I_MAX(a, b) ((a) > (b) ? (a) : (b))
#define I_MIN(a, b) ((a) < (b) ? (a) : (b))

/* y = x0 broadcast, then y = OP(y, xk) for k = 1.. in input order (the order
 * matters for float sums: it matches the ONNX reference). */
#define VARIADIC(T, OP)                                                      \
  do {                                                                       \
    T *py = y->data;                                                         \
    const T *p0 = c->in[0]->data;                                            \
    BCAST_LOOP(y, c->in[0], c->in[0], c->in[0], py[i] = p0[ia]);             \
    for (int k = 1; k < c->n_in; k++) {                                      \
      const oc_tensor_t *xk = c->in[k];                                      \
      const T *pk = xk->data;                                                \
      BCAST_LOOP(y, xk, xk, xk, py[i] = OP(py[i], pk[ia]));                  \
    }                                                                        \
  } while (0)

static oc_status_t variadic_run(const oc_op_call_t *c) {
  oc_tensor_t *y = c->out[0];
  var_fn_t fn = (var_fn_t)c->ints[0];
  switch (y->dtype) {
    case OC_DTYPE_FLOAT32:
      switch (fn) {
        case VAR_MAX: VARIADIC(float, f_max); break;
        case VAR_MIN: VARIADIC(float, f_min); break;
        default: {
          VARIADIC(float, F_ADD);
          if (fn == VAR_MEAN) {
            float *py = y->data, d = (float)c->n_in;
            int64_t n = oc_tensor_numel(y);
            for (int64_t i = 0; i < n; i++) py[i] /= d;
          }
          break;
        }
      }
      break;
    case OC_DTYPE_INT64:
      if (fn == VAR_MAX) VARIADIC(int64_t, I_MAX);
      else VARIADIC(int64_t, I_MIN);
      break;
    case OC_DTYPE_INT32:
      if (fn == VAR_MAX) VARIADIC(int32_t, I_MAX);
      else VARIADIC(int32_t, I_MIN);
      break;
    case OC_DTYPE_INT8:
      if (fn == VAR_MAX) VARIADIC(int8_t, I_MAX);
      else VARIADIC(int8_t, I_MIN);
      break;
    case OC_DTYPE_UINT8:
      if (fn == VAR_MAX) VARIADIC(uint8_t, I_MAX);
      else VARIADIC(uint8_t, I_MIN);
      break;
  }
  return OC_OK;
}

const oc_op_def_t oc_op_variadic = {"Variadic", 1, OC_MAX_OP_INPUTS, 1, 1, variadic_infer,
                                    variadic_run};

/* --- Clip ---------------------------------------------------------------- */

/* The range of an integer dtype Clip computes; 0 for other dtypes. */
static int int_range(int dtype, int64_t *lo, int64_t *hi) {
  switch (dtype) {
    case OC_DTYPE_INT64: *lo = INT64_MIN; *hi = INT64_MAX; return 1;
    case OC_DTYPE_INT32: *lo = INT32_MIN; *hi = INT32_MAX; return 1;
    case OC_DTYPE_INT8: *lo = INT8_MIN; *hi = INT8_MAX; return 1;
    case OC_DTYPE_UINT8: *lo = 0; *hi = UINT8_MAX; return 1;
  }
  return 0;
}

static oc_status_t clip_infer(const oc_op_call_t *c, size_t *ws) {
  (void)ws;
  const oc_tensor_t *x = c->in[0];
  int64_t lo, hi;
  if (int_range(x->dtype, &lo, &hi)) {
    if (c->n_ints != 2 || c->n_floats != 0)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s Clip needs ints [min, max]",
                            oc_dtype_name(x->dtype));
    for (int k = 0; k < 2; k++)
      if (c->ints[k] < lo || c->ints[k] > hi)
        return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s %lld is outside the range of %s",
                              k ? "max" : "min", (long long)c->ints[k], oc_dtype_name(x->dtype));
    oc_tensor_set_type(c->out[0], x->dtype, x->rank, x->dims);
    return OC_OK;
  }
  if (c->n_floats != 2 || c->n_ints != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "needs floats [min, max]");
  return unary_float_infer(c, ws);
}

/* x is (n), y is (n): y = min(max(x, lo), hi) in the integer type T. */
#define CLIP_INT(T)                                                  \
  do {                                                               \
    const T *px = c->in[0]->data;                                    \
    T *py = c->out[0]->data;                                         \
    T lo = (T)c->ints[0], hi = (T)c->ints[1];                        \
    for (int64_t i = 0; i < n; i++) {                                \
      T v = px[i];                                                   \
      v = v < lo ? lo : v;                                           \
      py[i] = v > hi ? hi : v;                                       \
    }                                                                \
  } while (0)

static oc_status_t clip_run(const oc_op_call_t *c) {
  int64_t n = oc_tensor_numel(c->in[0]);
  switch (c->in[0]->dtype) {
    case OC_DTYPE_INT64: CLIP_INT(int64_t); return OC_OK;
    case OC_DTYPE_INT32: CLIP_INT(int32_t); return OC_OK;
    case OC_DTYPE_INT8: CLIP_INT(int8_t); return OC_OK;
    case OC_DTYPE_UINT8: CLIP_INT(uint8_t); return OC_OK;
  }
  /* ONNX: y = min(max(x, min), max); NaN stays NaN as in PyTorch's clamp. */
  ew_unary_run(c, EWU_CLIP, c->floats[0], c->floats[1]);
  return OC_OK;
}

const oc_op_def_t oc_op_clip = {"Clip", 1, 1, 1, 1, clip_infer, clip_run, 0, 0x1};

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

const oc_op_def_t oc_op_where = {"Where", 3, 3, 1, 1, where_infer, where_run, 0, 0x6};

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

const oc_op_def_t oc_op_cast = {"Cast", 1, 1, 1, 1, cast_infer, cast_run, 0, 0x1};

/* --- backward kernels ---------------------------------------------------------
 *
 * The gradients of the ops above (rules in compiler/ops/elementwise.c). Both
 * kernels write their output (never accumulate); numerics follow PyTorch's
 * backward formulas (noted per case).
 *
 * UnaryBwd: the gradient of a shape-preserving float32 op with respect to its
 *   input.
 *   inputs:  dY, X, Y (float32, one shape; X or Y may be absent when the
 *            function does not read it, see unary_bwd_needs)
 *   outputs: dX (dY's type)
 *   ints:    [op, fn]: op the forward runtime op (OC_OP_RELU, EXP, SQRT, ERF,
 *            NEG, CLIP or UNARY), fn its Unary function code (0 otherwise;
 *            Sign Floor Ceil Round give zeros; IsNaN IsInf Not are refused)
 *   floats:  the forward op's: Unary [alpha, beta], Clip [min, max], else none
 *
 * BroadcastBwd: the gradient of a broadcasting elementwise op with respect to
 *   one of its inputs, summed over the axes that input was broadcast along.
 *   inputs:  dY (float32, the forward output's shape), Y (the forward output),
 *            then the forward op's inputs x0 .. x(n-1) in order; Y and any x
 *            the gradient does not read may be absent (see bcast_bwd_needs)
 *   outputs: dX (float32, dims (d_0, ..., d_{rank-1}))
 *   ints:    [op, which, fn, rank, d_0, ..., d_{rank-1}]: op the forward
 *            runtime op (ADD SUB MUL DIV POW PRELU MOD WHERE VARIADIC), which
 *            the forward input differentiated, fn the op's code (Mod: fmod,
 *            which must be 1; Variadic: its function; 0 otherwise), then the
 *            dims of input |which|; they broadcast (numpy, one way) to dY
 *   floats:  none
 *   Sums over broadcast axes accumulate in double (workspace).
 */

/* Which of X (bit 0) and Y (bit 1) UnaryBwd reads; -1: no gradient. */
static int unary_bwd_needs(int64_t op, int64_t fn) {
  switch (op) {
    case OC_OP_RELU: case OC_OP_EXP: case OC_OP_SQRT: return 2;
    case OC_OP_ERF: case OC_OP_CLIP: return 1;
    case OC_OP_NEG: return 0;
    case OC_OP_UNARY:
      switch (fn) {
        case UN_RECIPROCAL: case UN_SIGMOID: case UN_TANH: return 2;
        case UN_SIGN: case UN_FLOOR: case UN_CEIL: case UN_ROUND: return 0;
        case UN_ISNAN: case UN_ISINF: case UN_NOT: return -1;
        default: return fn >= 0 && fn < UN_COUNT ? 1 : -1;
      }
  }
  return -1;
}

static oc_status_t unary_bwd_infer(const oc_op_call_t *c, size_t *ws) {
  (void)ws;
  const oc_tensor_t *dy = c->in[0];
  OC_RETURN_IF_ERROR(oc_expect_dtype(dy, OC_DTYPE_FLOAT32, "dY"));
  if (c->n_ints != 2)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "needs ints [op, fn]");
  int64_t op = c->ints[0], fn = c->ints[1];
  if (op != OC_OP_UNARY && fn != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "fn is %lld; only Unary takes one",
                          (long long)fn);
  int needs = unary_bwd_needs(op, fn);
  if (needs < 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "no gradient for op %lld function %lld",
                          (long long)op, (long long)fn);
  int n_floats = op == OC_OP_UNARY || op == OC_OP_CLIP ? 2 : 0;
  if (c->n_floats != n_floats)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "takes %d floats, got %d", n_floats,
                          c->n_floats);
  for (int k = 1; k <= 2; k++) {
    const oc_tensor_t *t = k < c->n_in ? c->in[k] : NULL;
    const char *what = k == 1 ? "X" : "Y";
    if (!t) {
      if (needs & k) return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input %s is required", what);
      continue;
    }
    OC_RETURN_IF_ERROR(oc_expect_dtype(t, OC_DTYPE_FLOAT32, what));
    int same = t->rank == dy->rank;
    for (int d = 0; same && d < t->rank; d++) same = t->dims[d] == dy->dims[d];
    if (!same) {
      char b1[160], b2[160];
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s is %s; dY is %s", what,
                            oc_type_str(t, b1, sizeof b1), oc_type_str(dy, b2, sizeof b2));
    }
  }
  oc_tensor_set_type(c->out[0], dy->dtype, dy->rank, dy->dims);
  return OC_OK;
}

/* x^e as PyTorch's pow with a scalar exponent computes it (special cases for
 * the common exponents, powf otherwise). */
static inline float f_pow_like_torch(float x, float e) {
  if (e == 1.0f) return x;
  if (e == 2.0f) return x * x;
  if (e == 3.0f) return x * x * x;
  if (e == 0.5f) return sqrtf(x);
  if (e == -0.5f) return 1.0f / sqrtf(x);
  if (e == -1.0f) return 1.0f / x;
  if (e == -2.0f) return 1.0f / (x * x);
  return powf(x, e);
}

static inline float f_hard_sigmoid_bwd(float g, float x, float alpha, float beta) {
  double v = (double)alpha * x + beta;
  return v > 0.0 && v < 1.0 ? g * alpha : 0.0f;
}
static inline float f_softplus_bwd(float g, float x) {
  float z = expf(x);
  return g * z / (z + 1.0f);
}

/* dY, X, Y are (n); dX is (n). g = dY[i], x = X[i], y = Y[i]. */
#define UNARY_BWD_MAP(EXPR)                 \
  do {                                      \
    for (int64_t i = 0; i < n; i++) {       \
      float g = pg[i];                      \
      float x = px ? px[i] : 0.0f;          \
      float y = py ? py[i] : 0.0f;          \
      (void)g; (void)x; (void)y;            \
      pd[i] = (EXPR);                       \
    }                                       \
  } while (0)

static oc_status_t unary_bwd_run(const oc_op_call_t *c) {
  const float *pg = c->in[0]->data;
  const float *px = c->n_in > 1 && c->in[1] ? c->in[1]->data : NULL;
  const float *py = c->n_in > 2 && c->in[2] ? c->in[2]->data : NULL;
  float *pd = c->out[0]->data;
  int64_t n = oc_tensor_numel(c->in[0]);
  int64_t op = c->ints[0], fn = c->ints[1];
  float alpha = c->n_floats == 2 ? c->floats[0] : 0.0f;
  float beta = c->n_floats == 2 ? c->floats[1] : 0.0f;
  switch (op) {
    /* threshold_backward(grad, result, 0): NaN results pass the gradient. */
    case OC_OP_RELU: UNARY_BWD_MAP(y <= 0.0f ? 0.0f : g); return OC_OK;
    case OC_OP_EXP: UNARY_BWD_MAP(g * y); return OC_OK;
    case OC_OP_SQRT: UNARY_BWD_MAP(g / (2.0f * y)); return OC_OK; /* +-inf at 0 */
    case OC_OP_ERF: {
      const float k = (float)(2.0 / 1.7724538509055160273); /* 2 / sqrt(pi) */
      UNARY_BWD_MAP(k * expf(-(x * x)) * g);
      return OC_OK;
    }
    case OC_OP_NEG: UNARY_BWD_MAP(-g); return OC_OK;
    case OC_OP_CLIP: {
      /* clamp_backward: the gradient passes on [min, max], bounds included.
       * An infinite bound is an absent one (the compiler fills +-inf), as
       * in PyTorch, where NaN inputs then pass the gradient too. */
      int has_lo = alpha != -INFINITY, has_hi = beta != INFINITY;
      UNARY_BWD_MAP(((!has_lo || x >= alpha) && (!has_hi || x <= beta)) ? g : 0.0f);
      return OC_OK;
    }
    default: break;
  }
  switch (fn) {
    /* grad * sgn(x); sgn(0) = sgn(NaN) = 0 */
    case UN_ABS: UNARY_BWD_MAP(g * (float)((0.0f < x) - (x < 0.0f))); break;
    case UN_RECIPROCAL: UNARY_BWD_MAP(-g * (y * y)); break;
    case UN_LOG: UNARY_BWD_MAP(g / x); break;
    case UN_SIGMOID: UNARY_BWD_MAP(g * (1.0f - y) * y); break;
    case UN_TANH: UNARY_BWD_MAP(g * (1.0f - y * y)); break;
    case UN_LEAKY_RELU: UNARY_BWD_MAP(x > 0.0f ? g : g * alpha); break;
    /* elu_backward(is_result = false): scale = 1, input_scale = 1 for Elu;
     * scale = gamma for Selu; input_scale = 1 / alpha for Celu. NaN takes
     * the negative branch (PyTorch's vectorized select). */
    case UN_ELU: UNARY_BWD_MAP(x > 0.0f ? g : g * alpha * expf(x)); break;
    case UN_SELU: {
      float negcoef = alpha * beta;
      UNARY_BWD_MAP(x > 0.0f ? g * beta : g * negcoef * expf(x));
      break;
    }
    case UN_CELU: {
      float inv = (float)(1.0 / (double)alpha);
      UNARY_BWD_MAP(x > 0.0f ? g : g * inv * alpha * expf(x * inv));
      break;
    }
    case UN_HARD_SIGMOID: {
      /* hardsigmoid_backward: alpha strictly inside the linear region
       * (tested in double: x = +-3 with alpha = 1/6 stay outside). */
      UNARY_BWD_MAP(f_hard_sigmoid_bwd(g, x, alpha, beta));
      break;
    }
    case UN_HARD_SWISH:
      UNARY_BWD_MAP(x < -3.0f ? 0.0f : x <= 3.0f ? g * (x / 3.0f + 0.5f) : g);
      break;
    case UN_SOFTPLUS: {
      /* softplus_backward with beta 1, threshold 20: z / (z + 1), z = e^x,
       * which is sigmoid(x) (1 in float32 past 20, where the forward's
       * log1p term is below rounding too). */
      UNARY_BWD_MAP(x > 20.0f ? g : f_softplus_bwd(g, x));
      break;
    }
    case UN_SOFTSIGN: UNARY_BWD_MAP(g / ((1.0f + fabsf(x)) * (1.0f + fabsf(x)))); break;
    default: /* Sign Floor Ceil Round: zero almost everywhere */
      UNARY_BWD_MAP(0.0f);
      break;
  }
  return OC_OK;
}

/* dX may overwrite dY, X or Y: element i reads element i of each. */
const oc_op_def_t oc_op_unary_bwd = {"UnaryBwd", 1, 3, 1, 1, unary_bwd_infer, unary_bwd_run,
                                     .inplace = 0x7};

/* Whether |t| broadcasts (numpy, one way) to |y|'s shape. */
static int bcasts_to(const oc_tensor_t *t, const oc_tensor_t *y) {
  if (t->rank > y->rank) return 0;
  for (int i = 0; i < t->rank; i++) {
    int64_t dt = t->dims[i], dy = y->dims[i + y->rank - t->rank];
    if (dt != dy && dt != 1) return 0;
  }
  return 1;
}

/* What BroadcastBwd reads for (op, which, fn) with |nx| forward inputs: bit k
 * of *xs for forward input k, *y for the forward output. Returns 0 when the
 * combination has no gradient. */
static int bcast_bwd_needs(int64_t op, int64_t which, int64_t fn, int nx, uint64_t *xs, int *y) {
  *xs = 0;
  *y = 0;
  int binary = nx == 2 && (which == 0 || which == 1) && fn == 0;
  switch (op) {
    case OC_OP_ADD: case OC_OP_SUB: return binary;
    case OC_OP_MUL: *xs = which ? 1 : 2; return binary;
    case OC_OP_DIV: *xs = 2; *y = which == 1; return binary;
    case OC_OP_POW: *xs = 3; *y = which == 1; return binary;
    case OC_OP_PRELU: *xs = which ? 1 : 3; return binary;
    case OC_OP_MOD:
      *xs = which ? 3 : 0;
      return nx == 2 && (which == 0 || which == 1) && fn == 1;
    case OC_OP_WHERE: *xs = 1; return nx == 3 && (which == 1 || which == 2) && fn == 0;
    case OC_OP_VARIADIC:
      if (fn == VAR_MAX || fn == VAR_MIN) {
        *xs = nx >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << nx) - 1;
        *y = 1;
      }
      return nx >= 1 && which >= 0 && which < nx && fn >= 0 && fn < VAR_COUNT;
  }
  return 0;
}

static oc_status_t bcast_bwd_infer(const oc_op_call_t *c, size_t *ws) {
  const oc_tensor_t *dy = c->in[0];
  OC_RETURN_IF_ERROR(oc_expect_dtype(dy, OC_DTYPE_FLOAT32, "dY"));
  if (c->n_in < 3)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "needs inputs dY, Y, x0, ...");
  if (c->n_floats != 0) return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "takes no floats");
  if (c->n_ints < 4 || c->ints[3] < 0 || c->ints[3] > OC_MAX_RANK || c->n_ints != 4 + c->ints[3])
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "needs ints [op, which, fn, rank, dims...] with rank <= %d",
                          OC_MAX_RANK);
  int64_t op = c->ints[0], which = c->ints[1], fn = c->ints[2];
  int nx = c->n_in - 2;
  uint64_t need_x;
  int need_y;
  if (!bcast_bwd_needs(op, which, fn, nx, &need_x, &need_y))
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "no gradient for op %lld input %lld (fn %lld, %d inputs)",
                          (long long)op, (long long)which, (long long)fn, nx);
  oc_tensor_t t = {.dtype = OC_DTYPE_FLOAT32, .rank = (int)c->ints[3]};
  for (int d = 0; d < t.rank; d++) {
    t.dims[d] = c->ints[4 + d];
    if (t.dims[d] < 0 || t.dims[d] > OC_MAX_DIM)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "dim %d is out of range", d);
  }
  OC_RETURN_IF_ERROR(oc_check_type(&t, "output"));
  char b1[160], b2[160];
  if (!bcasts_to(&t, dy))
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s does not broadcast to dY %s",
                          oc_type_str(&t, b1, sizeof b1), oc_type_str(dy, b2, sizeof b2));
  const oc_tensor_t *y = c->in[1];
  if (y) {
    OC_RETURN_IF_ERROR(oc_expect_dtype(y, OC_DTYPE_FLOAT32, "Y"));
    int same = y->rank == dy->rank;
    for (int d = 0; same && d < y->rank; d++) same = y->dims[d] == dy->dims[d];
    if (!same)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "Y is %s; dY is %s",
                            oc_type_str(y, b1, sizeof b1), oc_type_str(dy, b2, sizeof b2));
  } else if (need_y) {
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input Y is required");
  }
  for (int k = 0; k < nx; k++) {
    const oc_tensor_t *x = c->in[2 + k];
    if (!x) {
      if ((need_x >> k) & 1)
        return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "forward input %d is required", k);
      continue;
    }
    int dtype_ok;
    if (op == OC_OP_WHERE && k == 0) {
      dtype_ok = x->dtype == OC_DTYPE_BOOL;
    } else if (op == OC_OP_POW && k == 1 && which == 0) {
      dtype_ok = x->dtype == OC_DTYPE_FLOAT32 || is_int_dtype(x->dtype);
    } else {
      dtype_ok = x->dtype == OC_DTYPE_FLOAT32;
    }
    if (!dtype_ok)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "forward input %d has dtype %s", k,
                            oc_dtype_name(x->dtype));
    if (!bcasts_to(x, dy))
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "forward input %d %s does not broadcast "
                            "to dY %s", k, oc_type_str(x, b1, sizeof b1),
                            oc_type_str(dy, b2, sizeof b2));
    if (k == which) {
      int same = x->rank == t.rank;
      for (int d = 0; same && d < t.rank; d++) same = x->dims[d] == t.dims[d];
      if (!same)
        return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "forward input %d is %s; ints give %s",
                              k, oc_type_str(x, b1, sizeof b1), oc_type_str(&t, b2, sizeof b2));
    }
  }
  oc_tensor_set_type(c->out[0], OC_DTYPE_FLOAT32, t.rank, t.dims);
  /* A double accumulator when summing over broadcast axes; tie counts for
   * Max/Min of several inputs. */
  int64_t n_t = oc_tensor_numel(&t), n_dy = oc_tensor_numel(dy);
  size_t bytes = n_t != n_dy ? (size_t)n_t * sizeof(double) : 0;
  if (op == OC_OP_VARIADIC && need_y && nx > 1) bytes += (size_t)n_dy;
  *ws = bytes;
  return OC_OK;
}

/* Walks dY (and Y) with forward inputs A and B and the target T broadcast,
 * storing the value V of every element: into dX when no axis is summed
 * (T's offset is then the element's), else added to the double accumulator. */
#define BCAST_BWD(A, B, V)                                                  \
  do {                                                                      \
    if (acc)                                                                \
      BCAST_LOOP(dyt, (A), (B), &tt, acc[ic] += (double)(V));               \
    else                                                                    \
      BCAST_LOOP(dyt, (A), (B), &tt, pd[ic] = (V));                         \
  } while (0)

/* dY, Y are (s_0, ..., s_{r-1}); the forward inputs broadcast to it; dX is
 * (d_0, ...). */
static oc_status_t bcast_bwd_run(const oc_op_call_t *c) {
  const oc_tensor_t *dyt = c->in[0];
  int64_t op = c->ints[0], which = c->ints[1], fn = c->ints[2];
  int nx = c->n_in - 2;
  oc_tensor_t tt = *c->out[0];
  float *pd = tt.data;
  int64_t n_t = oc_tensor_numel(&tt), n_dy = oc_tensor_numel(dyt);
  double *acc = n_t != n_dy ? c->workspace : NULL;
  if (acc)
    for (int64_t k = 0; k < n_t; k++) acc[k] = 0.0;
  const float *g = dyt->data;
  const float *py = c->in[1] ? c->in[1]->data : NULL;
  /* Absent inputs walk as dY (their offsets are never read). */
  const oc_tensor_t *x0 = c->in[2] ? c->in[2] : dyt;
  const oc_tensor_t *x1 = nx > 1 && c->in[3] ? c->in[3] : dyt;
  const float *pa = x0->data, *pb = x1->data;
  switch (op) {
    case OC_OP_ADD: BCAST_BWD(dyt, dyt, g[i]); break;
    case OC_OP_SUB: BCAST_BWD(dyt, dyt, which ? -g[i] : g[i]); break;
    /* grad * other */
    case OC_OP_MUL: BCAST_BWD(x0, x1, g[i] * (which ? pa[ia] : pb[ib])); break;
    case OC_OP_DIV:
      /* grad / other; -grad * ((self / other) / other), self / other = Y */
      if (which == 0) BCAST_BWD(x0, x1, g[i] / pb[ib]);
      else BCAST_BWD(x0, x1, -g[i] * (py[i] / pb[ib]));
      break;
    case OC_OP_POW:
      if (which == 0) {
        /* pow_backward_self: 0 where the exponent is 0, else
         * grad * (b * a^(b - 1)) */
        if (x1->dtype == OC_DTYPE_FLOAT32) {
          BCAST_BWD(x0, x1, pb[ib] == 0.0f ? 0.0f
                                           : g[i] * (pb[ib] * f_pow_like_torch(pa[ia], pb[ib] - 1.0f)));
        } else if (x1->dtype == OC_DTYPE_INT64) {
          const int64_t *pe = x1->data;
          BCAST_BWD(x0, x1, pe[ib] == 0 ? 0.0f
                                        : g[i] * ((float)pe[ib] *
                                                  f_pow_like_torch(pa[ia], (float)pe[ib] - 1.0f)));
        } else {
          const int32_t *pe = x1->data;
          BCAST_BWD(x0, x1, pe[ib] == 0 ? 0.0f
                                        : g[i] * ((float)pe[ib] *
                                                  f_pow_like_torch(pa[ia], (float)pe[ib] - 1.0f)));
        }
      } else {
        /* pow_backward_exponent: grad * (a == 0 && b >= 0 ? 0 : y * log(a)) */
        BCAST_BWD(x0, x1, g[i] * (pa[ia] == 0.0f && pb[ib] >= 0.0f ? 0.0f : py[i] * logf(pa[ia])));
      }
      break;
    case OC_OP_PRELU:
      /* x > 0 ? grad : weight * grad; weight: x > 0 ? 0 : x * grad */
      if (which == 0) BCAST_BWD(x0, x1, pa[ia] > 0.0f ? g[i] : pb[ib] * g[i]);
      else BCAST_BWD(x0, x1, pa[ia] > 0.0f ? 0.0f : pa[ia] * g[i]);
      break;
    case OC_OP_MOD:
      /* fmod: grad; -grad * trunc(self / other) */
      if (which == 0) BCAST_BWD(dyt, dyt, g[i]);
      else BCAST_BWD(x0, x1, -g[i] * truncf(pa[ia] / pb[ib]));
      break;
    case OC_OP_WHERE: {
      /* where(cond, grad, 0) / where(cond, 0, grad): exact zeros */
      const uint8_t *pc = x0->data;
      if (which == 1) BCAST_BWD(x0, x0, pc[ia] ? g[i] : 0.0f);
      else BCAST_BWD(x0, x0, pc[ia] ? 0.0f : g[i]);
      break;
    }
    case OC_OP_VARIADIC: {
      const oc_tensor_t *xw = c->in[2 + which] ? c->in[2 + which] : dyt;
      const float *pw = xw->data;
      if (fn == VAR_SUM || nx == 1) {
        BCAST_BWD(dyt, dyt, g[i]);
      } else if (fn == VAR_MEAN) {
        float n = (float)nx;
        BCAST_BWD(dyt, dyt, g[i] / n);
      } else {
        /* The inputs equal to the extremum share the gradient evenly; an
         * input strictly below the max (above the min) gets 0; an input that
         * compares with none (NaN) gets it whole. With two inputs this is
         * PyTorch's maximum/minimum backward (ties give grad / 2 each). */
        uint8_t *cnt = (uint8_t *)c->workspace + (acc ? (size_t)n_t * sizeof(double) : 0);
        memset(cnt, 0, (size_t)n_dy);
        for (int k = 0; k < nx; k++) {
          const oc_tensor_t *xk = c->in[2 + k];
          const float *pk = xk->data;
          BCAST_LOOP(dyt, xk, xk, xk, cnt[i] += pk[ia] == py[i]);
        }
        if (fn == VAR_MAX)
          BCAST_BWD(xw, xw, pw[ia] < py[i] ? 0.0f : pw[ia] == py[i] ? g[i] / (float)cnt[i] : g[i]);
        else
          BCAST_BWD(xw, xw, pw[ia] > py[i] ? 0.0f : pw[ia] == py[i] ? g[i] / (float)cnt[i] : g[i]);
      }
      break;
    }
    default: break;
  }
  if (acc)
    for (int64_t k = 0; k < n_t; k++) pd[k] = (float)acc[k];
  return OC_OK;
}

/* dX may overwrite dY or Y (of one byte size only when no axis is summed:
 * element i then reads element i of each). Not the forward inputs: a bool
 * condition or an int64 exponent of the same byte size is read at other
 * offsets than the one written. */
const oc_op_def_t oc_op_broadcast_bwd = {"BroadcastBwd", 1, OC_MAX_OP_INPUTS, 1, 1, bcast_bwd_infer,
                                         bcast_bwd_run, .inplace = 0x3};
