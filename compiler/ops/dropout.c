/*
 * Dropout, every opset -> a Copy (inference) or runtime/ops/dropout.c
 * (training).
 *
 *   opset 1, 6:   attributes is_test (default 0: training!), ratio (0.5)
 *   opset 7, 10:  attribute ratio; always inference (these versions leave the
 *                 mode to the runtime, and onnxc runs them as inference)
 *   opset 12, 13: inputs ratio (scalar, default 0.5) and training_mode
 *                 (bool scalar, default false), both compile-time constants;
 *                 attribute seed
 * Inference, or training with ratio 0: y is x (a Copy; any dtype) and the
 * mask all true. Training with ratio > 0 (float32 only): a Dropout
 * instruction reading a persistent RNG state {seed, counter} of its own
 * (int64[2]; seed = the 'seed' attribute, else a fixed default mixed with the
 * node's name so that two unseeded nodes draw different masks), which the
 * kernel advances once per run. That instruction always writes the bool mask
 * (its second output), which the gradient rule reads. The node's mask output
 * is bool from opset 10 on and of x's dtype (1 / 0) before, as those versions
 * define it.
 */
#include <string.h>

#include "lower.h"

#define DROPOUT_DEFAULT_SEED 0x6f6e6e7863ull /* "onnxc" */

/* The mask output as all ones of |dtype| (bool or x's) in x's shape: a
 * one-element constant expanded (folded to a constant when small, a run-time
 * Expand when it exceeds the folding limit). */
static oc_status_t const_mask(oc_lower_t *lw, int v, const oc_tensor_t *x, int dtype) {
  union {
    float f;
    double d;
    int64_t i64;
    int32_t i32;
    uint8_t u8;
  } one;
  memset(&one, 0, sizeof one);
  switch (dtype) {
    case OC_DTYPE_FLOAT32: one.f = 1.0f; break;
    case OC_DTYPE_FLOAT64: one.d = 1.0; break;
    case OC_DTYPE_INT64: one.i64 = 1; break;
    case OC_DTYPE_INT32: one.i32 = 1; break;
    case OC_DTYPE_BOOL:
    case OC_DTYPE_UINT8:
    case OC_DTYPE_INT8: one.u8 = 1; break;
    default:
      return oc_lower_error(lw, OC_STATUS_UNSUPPORTED, "mask dtype %s", oc_dtype_name(dtype));
  }
  int t = oc_lower_temp(lw, "one");
  if (t < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  OC_RETURN_IF_ERROR(oc_lower_set_const(lw, t, dtype, 0, NULL, &one));
  int in[1] = {t}, out[1] = {v};
  return oc_lower_emit(lw, OC_OP_EXPAND, 1, in, 1, out, x->dims, x->rank, NULL, 0);
}

oc_status_t oc_lower_dropout_train(oc_lower_t *lw);
oc_status_t oc_lower_dropout_train(oc_lower_t *lw) {
  const oc_tensor_t *x = oc_lower_input(lw, 0);
  if (!x) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input data is required");
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
    float r;
    OC_RETURN_IF_ERROR(oc_lower_attr_float(lw, "ratio", 0.5f, &r));
    ratio = r;
    if (lw->opset < 7) {
      int64_t is_test;
      OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "is_test", 0, &is_test));
      training = is_test == 0;
    }
  }
  if (!(ratio >= 0.0 && ratio <= 1.0))
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "ratio %g is not in [0, 1]", ratio);
  int y = oc_lower_out(lw, 0), mask = oc_lower_out(lw, 1);
  int mask_dtype = lw->opset >= 10 ? OC_DTYPE_BOOL : x->dtype;

  if (!training || ratio == 0.0) {
    OC_RETURN_IF_ERROR(oc_lower_reshape(lw, oc_lower_in(lw, 0), y, x->rank, x->dims));
    return mask >= 0 ? const_mask(lw, mask, x, mask_dtype) : OC_OK;
  }

  if (x->dtype != OC_DTYPE_FLOAT32)
    return oc_lower_error(lw, OC_STATUS_UNSUPPORTED,
                          "training-mode Dropout computes float32; input data is %s",
                          oc_dtype_name(x->dtype));
  const oc_attr_t *sa = oc_node_attr(lw->node, "seed");
  int64_t init[2];
  if (sa && sa->type == OC_ATTR_INT) {
    init[0] = sa->i;
  } else if (sa && sa->type == OC_ATTR_FLOAT) { /* some exporters write a float seed */
    init[0] = (int64_t)sa->f;
  } else {
    const char *name = lw->node->name ? lw->node->name : "";
    init[0] = (int64_t)oc_hash64(name, strlen(name), DROPOUT_DEFAULT_SEED);
  }
  init[1] = 0;
  int64_t two = 2;
  int rng = oc_lower_state(lw, "rng", OC_DTYPE_INT64, 1, &two, init);
  if (rng < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  float fr = (float)ratio;
  int in[2] = {oc_lower_in(lw, 0), rng};
  /* The bool mask is always an output, requested or not: the gradient rule
   * reads it (see oc_grad_dropout). */
  int bmask = mask >= 0 && mask_dtype == OC_DTYPE_BOOL ? mask : oc_lower_temp(lw, "mask_bool");
  if (bmask < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  int out[2] = {y, bmask};
  OC_RETURN_IF_ERROR(oc_lower_emit(lw, OC_OP_DROPOUT, 2, in, 2, out, NULL, 0, &fr, 1));
  if (mask < 0 || bmask == mask) return OC_OK;
  int64_t to = mask_dtype;
  int cin[1] = {bmask}, cout[1] = {mask};
  return oc_lower_emit(lw, OC_OP_CAST, 1, cin, 1, cout, &to, 1, NULL, 0);
}

/* --- gradient ---------------------------------------------------------------- */

#include "autodiff.h"

/* Training-mode Dropout: DropoutBwd(dY, mask) with the forward floats
 * [ratio]: dX = dY * mask / (1 - ratio), exactly the forward's scale.
 *
 * The mask is the forward's own bool output (the lowering always emits it),
 * not a second draw: the kernel advances its RNG counter after drawing, so a
 * redraw would have to assume "counter - 1", which breaks as soon as the
 * forward instruction runs twice before the backward (a recomputing
 * scheduler, an evaluation pass between, a plan whose state was restored
 * from a checkpoint in between) or the counter wraps. Keeping the mask costs
 * one byte per element until the backward runs, as PyTorch's saved mask. */
oc_status_t oc_grad_dropout(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_dropout(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  if (dy[0] < 0 || !oc_grad_wants(gc, 0)) return OC_OK;
  if (fwd->n_out < 2 || fwd->out[1] < 0)
    return oc_grad_error(gc, OC_STATUS_UNSUPPORTED,
                         "training-mode Dropout without its mask output (the compiler's lowering "
                         "always emits it): the gradient needs the mask the forward drew");
  int dx = oc_grad_temp(gc, "dx");
  if (dx < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  int in[2] = {dy[0], fwd->out[1]};
  OC_RETURN_IF_ERROR(
      oc_grad_emit(gc, OC_OP_DROPOUT_BWD, 2, in, 1, &dx, NULL, 0, fwd->floats, fwd->n_floats));
  return oc_grad_accumulate(gc, 0, dx);
}
