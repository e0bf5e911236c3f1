/* Elementwise ONNX ops -> runtime/ops/elementwise.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff.h"
#include "lower.h"

/* Function codes of the runtime ops Unary and Variadic (documented, and
 * checked, in runtime/ops/elementwise.c; stored in plans: never renumber). */
enum {
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
};
enum { VAR_MAX = 0, VAR_MIN = 1, VAR_SUM = 2, VAR_MEAN = 3 };

/* Ops that map one to one, same inputs and outputs, no attributes. */
static oc_status_t lower_direct(oc_lower_t *lw, int op, int n_in) {
  int in[3], out[1] = {oc_lower_out(lw, 0)};
  for (int i = 0; i < n_in; i++) {
    in[i] = oc_lower_in(lw, i);
    if (in[i] < 0) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input %d is missing", i);
  }
  return oc_lower_emit(lw, op, n_in, in, 1, out, NULL, 0, NULL, 0);
}

/* Binary ops before opset 7 broadcast only when the attribute broadcast=1,
 * and then B's shape matches a contiguous run of A's dims starting at
 * 'axis' (default: B aligned with A's last dims). Giving B trailing 1s makes
 * that numpy broadcasting, which the runtime ops do. *in_b becomes the value
 * to use for B. */
static oc_status_t legacy_broadcast(oc_lower_t *lw, int *in_b) {
  if (lw->opset >= 7) return OC_OK;
  const oc_tensor_t *a = oc_lower_input(lw, 0), *b = oc_lower_input(lw, 1);
  int64_t bcast, axis;
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "broadcast", 0, &bcast));
  if (!bcast) {
    int same = a->rank == b->rank;
    for (int i = 0; same && i < a->rank; i++) same = a->dims[i] == b->dims[i];
    if (!same)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                            "inputs have different shapes and broadcast=0 (opset %lld)",
                            (long long)lw->opset);
    return OC_OK;
  }
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "axis", (int64_t)a->rank - b->rank, &axis));
  if (axis < 0) axis += a->rank;
  if (axis < 0 || axis > (int64_t)a->rank - b->rank) /* no overflow for hostile axes */
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "legacy broadcast: B of rank %d does not fit A of rank %d at axis %lld",
                          b->rank, a->rank, (long long)axis);
  int rank = a->rank - (int)axis;
  if (rank == b->rank) return OC_OK;
  int64_t dims[OC_MAX_RANK];
  for (int i = 0; i < rank; i++) dims[i] = i < b->rank ? b->dims[i] : 1;
  int t = oc_lower_temp(lw, "B_broadcast");
  if (t < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  OC_RETURN_IF_ERROR(oc_lower_reshape(lw, *in_b, t, rank, dims));
  *in_b = t;
  return OC_OK;
}

/* Binary ops with multidirectional broadcasting (legacy broadcasting before
 * opset 7 rewritten to it). */
static oc_status_t lower_binary(oc_lower_t *lw, int op, const int64_t *ints, int n_ints) {
  int in[2] = {oc_lower_in(lw, 0), oc_lower_in(lw, 1)}, out[1] = {oc_lower_out(lw, 0)};
  for (int i = 0; i < 2; i++)
    if (in[i] < 0) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input %d is missing", i);
  OC_RETURN_IF_ERROR(legacy_broadcast(lw, &in[1]));
  return oc_lower_emit(lw, op, 2, in, 1, out, ints, n_ints, NULL, 0);
}

#define DIRECT(name, OP, N) \
  oc_status_t oc_lower_##name(oc_lower_t *lw); \
  oc_status_t oc_lower_##name(oc_lower_t *lw) { return lower_direct(lw, OP, N); }

#define BINARY(name, OP) \
  oc_status_t oc_lower_##name(oc_lower_t *lw); \
  oc_status_t oc_lower_##name(oc_lower_t *lw) { return lower_binary(lw, OP, NULL, 0); }

BINARY(add, OC_OP_ADD)
BINARY(sub, OC_OP_SUB)
BINARY(mul, OC_OP_MUL)
BINARY(div, OC_OP_DIV)
BINARY(pow, OC_OP_POW)
BINARY(equal, OC_OP_EQUAL)
BINARY(less, OC_OP_LESS)
BINARY(greater, OC_OP_GREATER)
BINARY(less_or_equal, OC_OP_LESS_EQUAL)
BINARY(greater_or_equal, OC_OP_GREATER_EQUAL)
BINARY(and, OC_OP_AND)
BINARY(or, OC_OP_OR)
BINARY(xor, OC_OP_XOR)
DIRECT(where, OC_OP_WHERE, 3)
DIRECT(relu, OC_OP_RELU, 1)
DIRECT(exp, OC_OP_EXP, 1)
DIRECT(sqrt, OC_OP_SQRT, 1)
DIRECT(erf, OC_OP_ERF, 1)
DIRECT(neg, OC_OP_NEG, 1)

/* PRelu-7+: slope broadcasts unidirectionally to X (the runtime op checks).
 * PRelu-1/6 shared a size-1 slope "across channels" with looser shape rules;
 * the registry starts at 7. */
oc_status_t oc_lower_prelu(oc_lower_t *lw);
oc_status_t oc_lower_prelu(oc_lower_t *lw) { return lower_direct(lw, OC_OP_PRELU, 2); }

/* Mod: fmod=0 is the integer remainder with the divisor's sign; fmod=1 C's
 * fmod. ONNX requires fmod=1 for floating point. */
oc_status_t oc_lower_mod(oc_lower_t *lw);
oc_status_t oc_lower_mod(oc_lower_t *lw) {
  int64_t fmod;
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "fmod", 0, &fmod));
  if (fmod != 0 && fmod != 1)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "attribute 'fmod' is %lld; must be 0 or 1", (long long)fmod);
  const oc_tensor_t *a = oc_lower_input(lw, 0);
  if (a && a->dtype == OC_DTYPE_FLOAT32 && fmod == 0)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "attribute 'fmod' is 0 for float32 input A; ONNX requires fmod=1 for "
                          "floating point");
  return lower_binary(lw, OC_OP_MOD, &fmod, 1);
}

/* --- Unary (one runtime op, a function code) ------------------------------- */

static oc_status_t lower_unary(oc_lower_t *lw, int64_t fn, float alpha, float beta,
                               const int64_t *extra, int n_extra) {
  int in[1] = {oc_lower_in(lw, 0)}, out[1] = {oc_lower_out(lw, 0)};
  if (in[0] < 0) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input 0 is missing");
  int64_t ints[3] = {fn};
  for (int i = 0; i < n_extra && i < 2; i++) ints[1 + i] = extra[i];
  float floats[2] = {alpha, beta};
  return oc_lower_emit(lw, OC_OP_UNARY, 1, in, 1, out, ints, 1 + n_extra, floats, 2);
}

#define UNARY(name, FN) \
  oc_status_t oc_lower_##name(oc_lower_t *lw); \
  oc_status_t oc_lower_##name(oc_lower_t *lw) { return lower_unary(lw, FN, 0.0f, 0.0f, NULL, 0); }

UNARY(abs, UN_ABS)
UNARY(reciprocal, UN_RECIPROCAL)
UNARY(log, UN_LOG)
UNARY(sigmoid, UN_SIGMOID)
UNARY(tanh, UN_TANH)
UNARY(hardswish, UN_HARD_SWISH)
UNARY(softplus, UN_SOFTPLUS)
UNARY(softsign, UN_SOFTSIGN)
UNARY(sign, UN_SIGN)
UNARY(floor, UN_FLOOR)
UNARY(ceil, UN_CEIL)
UNARY(round, UN_ROUND)
UNARY(isnan, UN_ISNAN)
UNARY(not, UN_NOT)

oc_status_t oc_lower_leakyrelu(oc_lower_t *lw);
oc_status_t oc_lower_leakyrelu(oc_lower_t *lw) {
  float alpha;
  OC_RETURN_IF_ERROR(oc_lower_attr_float(lw, "alpha", 0.01f, &alpha));
  return lower_unary(lw, UN_LEAKY_RELU, alpha, 0.0f, NULL, 0);
}

oc_status_t oc_lower_elu(oc_lower_t *lw);
oc_status_t oc_lower_elu(oc_lower_t *lw) {
  float alpha;
  OC_RETURN_IF_ERROR(oc_lower_attr_float(lw, "alpha", 1.0f, &alpha));
  return lower_unary(lw, UN_ELU, alpha, 0.0f, NULL, 0);
}

/* Selu: the runtime's beta is ONNX's gamma. */
oc_status_t oc_lower_selu(oc_lower_t *lw);
oc_status_t oc_lower_selu(oc_lower_t *lw) {
  float alpha, gamma;
  OC_RETURN_IF_ERROR(oc_lower_attr_float(lw, "alpha", 1.67326319217681884765625f, &alpha));
  OC_RETURN_IF_ERROR(oc_lower_attr_float(lw, "gamma", 1.05070102214813232421875f, &gamma));
  return lower_unary(lw, UN_SELU, alpha, gamma, NULL, 0);
}

/* Celu divides by alpha: alpha = 0 has no meaning (PyTorch refuses it too). */
oc_status_t oc_lower_celu(oc_lower_t *lw);
oc_status_t oc_lower_celu(oc_lower_t *lw) {
  float alpha;
  OC_RETURN_IF_ERROR(oc_lower_attr_float(lw, "alpha", 1.0f, &alpha));
  if (alpha == 0.0f)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "attribute 'alpha' is 0; Celu divides by it");
  return lower_unary(lw, UN_CELU, alpha, 0.0f, NULL, 0);
}

oc_status_t oc_lower_hardsigmoid(oc_lower_t *lw);
oc_status_t oc_lower_hardsigmoid(oc_lower_t *lw) {
  float alpha, beta;
  OC_RETURN_IF_ERROR(oc_lower_attr_float(lw, "alpha", 0.2f, &alpha));
  OC_RETURN_IF_ERROR(oc_lower_attr_float(lw, "beta", 0.5f, &beta));
  return lower_unary(lw, UN_HARD_SIGMOID, alpha, beta, NULL, 0);
}

oc_status_t oc_lower_isinf(oc_lower_t *lw);
oc_status_t oc_lower_isinf(oc_lower_t *lw) {
  int64_t flags[2];
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "detect_positive", 1, &flags[0]));
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "detect_negative", 1, &flags[1]));
  flags[0] = flags[0] != 0;
  flags[1] = flags[1] != 0;
  return lower_unary(lw, UN_ISINF, 0.0f, 0.0f, flags, 2);
}

/* --- Max Min Sum Mean (one runtime op, a function code) ---------------------- */

static oc_status_t lower_variadic(oc_lower_t *lw, int64_t fn) {
  int n = lw->node->n_in, in[OC_MAX_OP_INPUTS], out[1] = {oc_lower_out(lw, 0)};
  if (n < 1) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "needs at least one input");
  if (n > OC_MAX_OP_INPUTS)
    return oc_lower_error(lw, OC_STATUS_RESOURCE_LIMIT, "has %d inputs; at most %d", n,
                          OC_MAX_OP_INPUTS);
  for (int i = 0; i < n; i++) {
    in[i] = oc_lower_in(lw, i);
    if (in[i] < 0) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input %d is missing", i);
  }
  return oc_lower_emit(lw, OC_OP_VARIADIC, n, in, 1, out, &fn, 1, NULL, 0);
}

#define VARIADIC(name, FN) \
  oc_status_t oc_lower_##name(oc_lower_t *lw); \
  oc_status_t oc_lower_##name(oc_lower_t *lw) { return lower_variadic(lw, FN); }

VARIADIC(max, VAR_MAX)
VARIADIC(min, VAR_MIN)
VARIADIC(sum, VAR_SUM)
VARIADIC(mean, VAR_MEAN)

/* Clip of an integer tensor (Clip-12+): bounds are ints of the input's
 * dtype, defaulting to its range. */
static oc_status_t lower_clip_int(oc_lower_t *lw, const oc_tensor_t *x) {
  int64_t b[2];
  switch (x->dtype) {
    case OC_DTYPE_INT64: b[0] = INT64_MIN; b[1] = INT64_MAX; break;
    case OC_DTYPE_INT32: b[0] = INT32_MIN; b[1] = INT32_MAX; break;
    case OC_DTYPE_INT8: b[0] = INT8_MIN; b[1] = INT8_MAX; break;
    default: b[0] = 0; b[1] = UINT8_MAX; break;
  }
  for (int k = 0; k < 2; k++) {
    if (oc_lower_in(lw, 1 + k) < 0) continue;
    const oc_tensor_t *t = oc_lower_input(lw, 1 + k);
    if (t->dtype != x->dtype)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input '%s' has dtype %s; input has %s",
                            k ? "max" : "min", oc_dtype_name(t->dtype), oc_dtype_name(x->dtype));
    if (x->dtype == OC_DTYPE_INT64 || x->dtype == OC_DTYPE_INT32) {
      int n = 0;
      OC_RETURN_IF_ERROR(oc_lower_const_ints(lw, 1 + k, &b[k], 1, &n));
      if (n != 1)
        return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input '%s' must hold one value",
                              k ? "max" : "min");
    } else {
      double v; /* int8/uint8: exact in a double */
      OC_RETURN_IF_ERROR(oc_lower_const_scalar(lw, 1 + k, &v));
      b[k] = (int64_t)v;
    }
  }
  int in[1] = {oc_lower_in(lw, 0)}, out[1] = {oc_lower_out(lw, 0)};
  return oc_lower_emit(lw, OC_OP_CLIP, 1, in, 1, out, b, 2, NULL, 0);
}

/* Clip-6 takes min/max attributes; Clip-11+ takes optional min/max inputs,
 * which must be compile-time constants here. Integer inputs (Clip-12+) clip
 * with integer bounds. */
oc_status_t oc_lower_clip(oc_lower_t *lw);
oc_status_t oc_lower_clip(oc_lower_t *lw) {
  const oc_tensor_t *x = oc_lower_input(lw, 0);
  if (!x) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input 0 is missing");
  int is_int = x->dtype == OC_DTYPE_INT64 || x->dtype == OC_DTYPE_INT32 ||
               x->dtype == OC_DTYPE_INT8 || x->dtype == OC_DTYPE_UINT8;
  if (is_int && lw->opset >= 11) return lower_clip_int(lw, x);
  if (x->dtype != OC_DTYPE_FLOAT32)
    return oc_lower_error(lw, OC_STATUS_UNSUPPORTED,
                          "input 'input' has dtype %s; Clip computes float32, int64, int32, int8, "
                          "uint8",
                          oc_dtype_name(x->dtype));
  float bounds[2] = {-INFINITY, INFINITY};
  if (lw->opset < 11) {
    OC_RETURN_IF_ERROR(oc_lower_attr_float(lw, "min", -INFINITY, &bounds[0]));
    OC_RETURN_IF_ERROR(oc_lower_attr_float(lw, "max", INFINITY, &bounds[1]));
  } else {
    for (int k = 0; k < 2; k++) {
      if (oc_lower_in(lw, 1 + k) < 0) continue;
      double v;
      OC_RETURN_IF_ERROR(oc_lower_const_scalar(lw, 1 + k, &v));
      bounds[k] = (float)v;
    }
  }
  int in[1] = {oc_lower_in(lw, 0)}, out[1] = {oc_lower_out(lw, 0)};
  return oc_lower_emit(lw, OC_OP_CLIP, 1, in, 1, out, NULL, 0, bounds, 2);
}

static oc_status_t lower_cast_to(oc_lower_t *lw, int64_t to) {
  int in[1] = {oc_lower_in(lw, 0)}, out[1] = {oc_lower_out(lw, 0)};
  if (!oc_dtype_size((int)to) || to > 64)
    return oc_lower_error(lw, OC_STATUS_UNSUPPORTED, "cast to %s is not supported",
                          oc_dtype_name((int)to));
  return oc_lower_emit(lw, OC_OP_CAST, 1, in, 1, out, &to, 1, NULL, 0);
}

oc_status_t oc_lower_cast(oc_lower_t *lw);
oc_status_t oc_lower_cast(oc_lower_t *lw) {
  int64_t to;
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "to", -1, &to));
  if (to < 0) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "attribute 'to' is required");
  return lower_cast_to(lw, to);
}

oc_status_t oc_lower_castlike(oc_lower_t *lw);
oc_status_t oc_lower_castlike(oc_lower_t *lw) {
  const oc_tensor_t *like = oc_lower_input(lw, 1);
  if (!like) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input 'target_type' is missing");
  return lower_cast_to(lw, like->dtype);
}

oc_status_t oc_lower_identity(oc_lower_t *lw);
oc_status_t oc_lower_identity(oc_lower_t *lw) {
  const oc_tensor_t *x = oc_lower_input(lw, 0);
  if (!x) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input 0 is missing");
  return oc_lower_reshape(lw, oc_lower_in(lw, 0), oc_lower_out(lw, 0), x->rank, x->dims);
}

/* --- gradient rules -----------------------------------------------------------
 *
 * Backward kernels: UnaryBwd and BroadcastBwd (runtime/ops/elementwise.c, where
 * the numerics are noted). Add and Sub pass dY on (summed over broadcast
 * axes); Neg emits Neg; Cast float32 -> float32 is the identity. Sign, Floor,
 * Ceil, Round have zero gradient (as in PyTorch): their rule contributes
 * nothing, which the driver counts as zero. Bool results (comparisons, IsNaN,
 * IsInf, Not) and integer tensors never carry a gradient.
 */
static oc_status_t grad_oom(void) {
  return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
}

/* A copy of value |v|'s type (the value table moves when values are made). */
static oc_tensor_t grad_type(oc_grad_t *gc, int v) { return oc_grad_graph(gc)->values[v].type; }

/* Emits BroadcastBwd for forward input |which| (when it wants a gradient),
 * reading the forward inputs in the bit set |xs| and, with |y|, the output. */
static oc_status_t broadcast_bwd(oc_grad_t *gc, const oc_instr_t *fwd, int dy, int which,
                                 int64_t fn, uint64_t xs, int y) {
  if (!oc_grad_wants(gc, which)) return OC_OK;
  oc_tensor_t x = grad_type(gc, fwd->in[which]);
  if (x.dtype != OC_DTYPE_FLOAT32) return OC_OK;
  if (fwd->n_in + 2 > OC_MAX_OP_INPUTS)
    return oc_grad_error(gc, OC_STATUS_UNSUPPORTED, "has %d inputs; the gradient takes at most %d",
                         fwd->n_in, OC_MAX_OP_INPUTS - 2);
  int in[OC_MAX_OP_INPUTS];
  in[0] = dy;
  in[1] = y ? fwd->out[0] : -1;
  for (int k = 0; k < fwd->n_in; k++) in[2 + k] = (xs >> k) & 1 ? fwd->in[k] : -1;
  int64_t ints[4 + OC_MAX_RANK] = {fwd->op, which, fn, x.rank};
  for (int d = 0; d < x.rank; d++) ints[4 + d] = x.dims[d];
  int dx = oc_grad_temp(gc, "dx");
  if (dx < 0) return grad_oom();
  OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_BROADCAST_BWD, 2 + fwd->n_in, in, 1, &dx, ints,
                                  4 + x.rank, NULL, 0));
  return oc_grad_accumulate(gc, which, dx);
}

/* dY itself, summed to input |i|'s shape. */
static oc_status_t pass_dy(oc_grad_t *gc, const oc_instr_t *fwd, int i, int dy) {
  if (!oc_grad_wants(gc, i) || grad_type(gc, fwd->in[i]).dtype != OC_DTYPE_FLOAT32) return OC_OK;
  return oc_grad_accumulate_unbroadcast(gc, i, dy);
}

#define GRAD_RULE(name) \
  oc_status_t oc_grad_##name(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy); \
  oc_status_t oc_grad_##name(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy)

/* Add: dA = dY, dB = dY. */
GRAD_RULE(add) {
  if (dy[0] < 0) return OC_OK;
  OC_RETURN_IF_ERROR(pass_dy(gc, fwd, 0, dy[0]));
  return pass_dy(gc, fwd, 1, dy[0]);
}

/* Sub: dA = dY, dB = -dY. */
GRAD_RULE(sub) {
  if (dy[0] < 0) return OC_OK;
  OC_RETURN_IF_ERROR(pass_dy(gc, fwd, 0, dy[0]));
  return broadcast_bwd(gc, fwd, dy[0], 1, 0, 0, 0);
}

/* Mul: dA = dY * B, dB = dY * A. */
GRAD_RULE(mul) {
  if (dy[0] < 0) return OC_OK;
  OC_RETURN_IF_ERROR(broadcast_bwd(gc, fwd, dy[0], 0, 0, 2, 0));
  return broadcast_bwd(gc, fwd, dy[0], 1, 0, 1, 0);
}

/* Div: dA = dY / B, dB = -dY * (Y / B). */
GRAD_RULE(div) {
  if (dy[0] < 0) return OC_OK;
  OC_RETURN_IF_ERROR(broadcast_bwd(gc, fwd, dy[0], 0, 0, 2, 0));
  return broadcast_bwd(gc, fwd, dy[0], 1, 0, 2, 1);
}

/* Pow: dA = dY * B * A^(B - 1) (0 where B == 0), dB = dY * Y * ln(A) (0
 * where A == 0 and B >= 0). An integer exponent has no gradient. */
GRAD_RULE(pow) {
  if (dy[0] < 0) return OC_OK;
  OC_RETURN_IF_ERROR(broadcast_bwd(gc, fwd, dy[0], 0, 0, 3, 0));
  return broadcast_bwd(gc, fwd, dy[0], 1, 0, 3, 1);
}

/* PRelu: dX = x > 0 ? dY : slope * dY; dSlope = sum of (x > 0 ? 0 : x * dY). */
GRAD_RULE(prelu) {
  if (dy[0] < 0) return OC_OK;
  OC_RETURN_IF_ERROR(broadcast_bwd(gc, fwd, dy[0], 0, 0, 3, 0));
  return broadcast_bwd(gc, fwd, dy[0], 1, 0, 1, 0);
}

/* Mod (float32: fmod=1): dA = dY, dB = -dY * trunc(A / B). Integer Mod has
 * no gradient. */
GRAD_RULE(mod) {
  if (dy[0] < 0 || fwd->n_ints != 1 || fwd->ints[0] != 1) return OC_OK;
  OC_RETURN_IF_ERROR(broadcast_bwd(gc, fwd, dy[0], 0, 1, 0, 0));
  return broadcast_bwd(gc, fwd, dy[0], 1, 1, 3, 0);
}

/* Where: dA = dY where cond, dB = dY where !cond (exact zeros elsewhere: a
 * masked -inf branch gives no NaN). cond has no gradient. */
GRAD_RULE(where) {
  if (dy[0] < 0) return OC_OK;
  OC_RETURN_IF_ERROR(broadcast_bwd(gc, fwd, dy[0], 1, 0, 1, 0));
  return broadcast_bwd(gc, fwd, dy[0], 2, 0, 1, 0);
}

/* Max Min Sum Mean: Sum passes dY to every input, Mean dY / n; Max and Min
 * give dY to the inputs holding the extremum, shared evenly on ties (two
 * inputs: PyTorch's maximum/minimum, dY / 2 each on a tie). */
GRAD_RULE(variadic) {
  if (dy[0] < 0 || fwd->n_ints != 1) return OC_OK;
  int64_t fn = fwd->ints[0];
  uint64_t all = fwd->n_in >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << fwd->n_in) - 1;
  for (int k = 0; k < fwd->n_in; k++) {
    if (fn == VAR_SUM)
      OC_RETURN_IF_ERROR(pass_dy(gc, fwd, k, dy[0]));
    else if (fn == VAR_MEAN)
      OC_RETURN_IF_ERROR(broadcast_bwd(gc, fwd, dy[0], k, fn, 0, 0));
    else
      OC_RETURN_IF_ERROR(broadcast_bwd(gc, fwd, dy[0], k, fn, all, 1));
  }
  return OC_OK;
}

/* Which of X (bit 0) and Y (bit 1) UnaryBwd reads for (op, fn); -1: no
 * gradient is computed (zero, or a bool result). Mirrors the runtime's. */
static int unary_bwd_needs(int op, int64_t fn) {
  switch (op) {
    case OC_OP_RELU: case OC_OP_EXP: case OC_OP_SQRT: return 2;
    case OC_OP_ERF: case OC_OP_CLIP: return 1;
    case OC_OP_UNARY:
      switch (fn) {
        case UN_RECIPROCAL: case UN_SIGMOID: case UN_TANH: return 2;
        case UN_SIGN: case UN_FLOOR: case UN_CEIL: case UN_ROUND: /* zero gradient */
        case UN_ISNAN: case UN_ISINF: case UN_NOT: return -1;
        default: return 1;
      }
  }
  return -1;
}

/* Relu Exp Sqrt Erf Clip Unary: one UnaryBwd. */
GRAD_RULE(unary) {
  if (dy[0] < 0 || !oc_grad_wants(gc, 0)) return OC_OK;
  if (grad_type(gc, fwd->in[0]).dtype != OC_DTYPE_FLOAT32 ||
      grad_type(gc, fwd->out[0]).dtype != OC_DTYPE_FLOAT32)
    return OC_OK;
  int64_t fn = fwd->op == OC_OP_UNARY && fwd->n_ints >= 1 ? fwd->ints[0] : 0;
  int needs = unary_bwd_needs(fwd->op, fn);
  if (needs < 0) return OC_OK;
  int in[3] = {dy[0], needs & 1 ? fwd->in[0] : -1, needs & 2 ? fwd->out[0] : -1};
  int64_t ints[2] = {fwd->op, fn};
  int dx = oc_grad_temp(gc, "dx");
  if (dx < 0) return grad_oom();
  OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_UNARY_BWD, 3, in, 1, &dx, ints, 2, fwd->floats,
                                  fwd->n_floats));
  return oc_grad_accumulate(gc, 0, dx);
}

/* Neg: dX = -dY. */
GRAD_RULE(neg) {
  if (dy[0] < 0 || !oc_grad_wants(gc, 0)) return OC_OK;
  if (grad_type(gc, fwd->in[0]).dtype != OC_DTYPE_FLOAT32) return OC_OK;
  int dx = oc_grad_temp(gc, "dx");
  if (dx < 0) return grad_oom();
  OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_NEG, 1, &dy[0], 1, &dx, NULL, 0, NULL, 0));
  return oc_grad_accumulate(gc, 0, dx);
}

/* Cast float32 -> float32: the identity. Casts to or from other dtypes carry
 * no gradient (the driver only differentiates float32 paths). */
GRAD_RULE(cast) {
  if (dy[0] < 0 || !oc_grad_wants(gc, 0)) return OC_OK;
  if (grad_type(gc, fwd->in[0]).dtype != OC_DTYPE_FLOAT32 ||
      grad_type(gc, fwd->out[0]).dtype != OC_DTYPE_FLOAT32)
    return OC_OK;
  return oc_grad_accumulate(gc, 0, dy[0]);
}
