/* Elementwise ONNX ops -> runtime/ops/elementwise.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lower.h"

/* Ops that map one to one, same inputs and outputs, no attributes. */
static oc_status_t lower_direct(oc_lower_t *lw, int op, int n_in) {
  int in[3], out[1] = {oc_lower_out(lw, 0)};
  for (int i = 0; i < n_in; i++) {
    in[i] = oc_lower_in(lw, i);
    if (in[i] < 0) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input %d is missing", i);
  }
  return oc_lower_emit(lw, op, n_in, in, 1, out, NULL, 0, NULL, 0);
}

#define DIRECT(name, OP, N) \
  oc_status_t oc_lower_##name(oc_lower_t *lw); \
  oc_status_t oc_lower_##name(oc_lower_t *lw) { return lower_direct(lw, OP, N); }

DIRECT(add, OC_OP_ADD, 2)
DIRECT(sub, OC_OP_SUB, 2)
DIRECT(mul, OC_OP_MUL, 2)
DIRECT(div, OC_OP_DIV, 2)
DIRECT(pow, OC_OP_POW, 2)
DIRECT(equal, OC_OP_EQUAL, 2)
DIRECT(less, OC_OP_LESS, 2)
DIRECT(greater, OC_OP_GREATER, 2)
DIRECT(where, OC_OP_WHERE, 3)
DIRECT(relu, OC_OP_RELU, 1)
DIRECT(exp, OC_OP_EXP, 1)
DIRECT(sqrt, OC_OP_SQRT, 1)
DIRECT(erf, OC_OP_ERF, 1)
DIRECT(neg, OC_OP_NEG, 1)

/* Clip-6 takes min/max attributes; Clip-11+ takes optional min/max inputs,
 * which must be compile-time constants here. */
oc_status_t oc_lower_clip(oc_lower_t *lw);
oc_status_t oc_lower_clip(oc_lower_t *lw) {
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
  const oc_tensor_t *x = oc_lower_input(lw, 0);
  if (!x) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input 0 is missing");
  if (x->dtype != OC_DTYPE_FLOAT32)
    return oc_lower_error(lw, OC_STATUS_UNSUPPORTED, "input 'input' has dtype %s; Clip computes float32",
                          oc_dtype_name(x->dtype));
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

/* Dropout in inference: the identity, with an all-true mask if asked for.
 * Training-mode dropout with a non-zero ratio is a different op (issue: op
 * coverage); refuse it rather than compute something else. */
oc_status_t oc_lower_dropout(oc_lower_t *lw);
oc_status_t oc_lower_dropout(oc_lower_t *lw) {
  const oc_tensor_t *x = oc_lower_input(lw, 0);
  if (!x) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input 0 is missing");
  double ratio = 0.5;
  int training = 0;
  if (lw->opset >= 12) {
    if (oc_lower_in(lw, 1) >= 0) OC_RETURN_IF_ERROR(oc_lower_const_scalar(lw, 1, &ratio));
    if (oc_lower_in(lw, 2) >= 0) {
      double t;
      OC_RETURN_IF_ERROR(oc_lower_const_scalar(lw, 2, &t));
      training = t != 0;
    }
  } else {
    int64_t is_test = 1;
    OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "is_test", lw->opset < 7 ? 0 : 1, &is_test));
    training = lw->opset < 7 && !is_test;
  }
  if (training && ratio != 0.0)
    return oc_lower_error(lw, OC_STATUS_UNSUPPORTED,
                          "training-mode Dropout with ratio %g is not supported yet", ratio);
  OC_RETURN_IF_ERROR(oc_lower_reshape(lw, oc_lower_in(lw, 0), oc_lower_out(lw, 0), x->rank, x->dims));
  int mask = oc_lower_out(lw, 1);
  if (mask >= 0) {
    int64_t n = oc_tensor_numel(x);
    uint8_t *ones = malloc((size_t)n + 1);
    if (!ones) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
    memset(ones, 1, (size_t)n);
    oc_status_t s = oc_lower_set_const(lw, mask, OC_DTYPE_BOOL, x->rank, x->dims, ones);
    free(ones);
    return s;
  }
  return OC_OK;
}
