/*
 * Pad -> runtime/ops/pad.c (ints [mode, pads[2r]], optional value input).
 *
 *   opset 1:     attributes paddings, mode, value (float)
 *   opset 2:     attributes pads, mode, value (float)
 *   opset 11,13: inputs data, pads (int64, compile-time constant),
 *                constant_value (optional scalar of data's dtype, may be a
 *                run-time value); attribute mode
 * Modes constant, reflect, edge; negative pads crop. The float attribute
 * 'value' of opsets 1/2 is converted to data's dtype (truncated toward zero
 * for integers, as numpy's pad does).
 */
#include <math.h>
#include <string.h>

#include "lower.h"

/* Makes a 1-element constant of |dtype| holding |v| (converted). */
static oc_status_t pad_value_const(oc_lower_t *lw, int dtype, double v, int *out_v) {
  union {
    float f;
    double d;
    int64_t i64;
    int32_t i32;
    uint8_t u8;
    int8_t i8;
  } u;
  memset(&u, 0, sizeof u);
  switch (dtype) {
    case OC_DTYPE_FLOAT32: u.f = (float)v; break;
    case OC_DTYPE_FLOAT64: u.d = v; break;
    case OC_DTYPE_INT64: u.i64 = (int64_t)v; break;
    case OC_DTYPE_INT32: u.i32 = (int32_t)v; break;
    case OC_DTYPE_UINT8: u.u8 = (uint8_t)v; break;
    case OC_DTYPE_INT8: u.i8 = (int8_t)v; break;
    case OC_DTYPE_BOOL: u.u8 = v != 0.0; break;
    default:
      return oc_lower_error(lw, OC_STATUS_UNSUPPORTED, "input data has dtype %s",
                            oc_dtype_name(dtype));
  }
  int limit = dtype == OC_DTYPE_INT32 ? 31 : dtype == OC_DTYPE_UINT8 || dtype == OC_DTYPE_INT8 ? 8 : 63;
  if (dtype != OC_DTYPE_FLOAT32 && dtype != OC_DTYPE_FLOAT64 && dtype != OC_DTYPE_BOOL &&
      !(fabs(v) < ldexp(1.0, limit)))
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "attribute 'value' %g does not fit the data's dtype %s", v,
                          oc_dtype_name(dtype));
  int t = oc_lower_temp(lw, "value");
  if (t < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  OC_RETURN_IF_ERROR(oc_lower_set_const(lw, t, dtype, 0, NULL, &u));
  *out_v = t;
  return OC_OK;
}

oc_status_t oc_lower_pad(oc_lower_t *lw);
oc_status_t oc_lower_pad(oc_lower_t *lw) {
  const oc_tensor_t *x = oc_lower_input(lw, 0);
  if (!x) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input data is required");
  int r = x->rank;
  const char *mode_s;
  OC_RETURN_IF_ERROR(oc_lower_attr_string(lw, "mode", "constant", &mode_s));
  int64_t ints[1 + 2 * OC_MAX_RANK];
  if (!strcmp(mode_s, "constant"))
    ints[0] = 0;
  else if (!strcmp(mode_s, "reflect"))
    ints[0] = 1;
  else if (!strcmp(mode_s, "edge"))
    ints[0] = 2;
  else
    return oc_lower_error(lw, OC_STATUS_UNSUPPORTED,
                          "attribute 'mode' is '%s'; expected constant, reflect or edge", mode_s);
  int n_pads;
  int value = -1;
  if (lw->opset < 11) {
    const int64_t *p;
    const char *name = lw->opset < 2 ? "paddings" : "pads";
    OC_RETURN_IF_ERROR(oc_lower_attr_ints(lw, name, &p, &n_pads));
    if (n_pads < 0)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "attribute '%s' is required", name);
    if (n_pads != 2 * r)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                            "attribute '%s' has %d values; data has rank %d (expected %d)", name,
                            n_pads, r, 2 * r);
    memcpy(ints + 1, p, sizeof(int64_t) * (size_t)n_pads);
    float v;
    OC_RETURN_IF_ERROR(oc_lower_attr_float(lw, "value", 0.0f, &v));
    if (ints[0] == 0 && v != 0.0f) OC_RETURN_IF_ERROR(pad_value_const(lw, x->dtype, v, &value));
  } else {
    if (oc_lower_in(lw, 1) < 0)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input pads is required");
    OC_RETURN_IF_ERROR(oc_lower_const_ints(lw, 1, ints + 1, 2 * OC_MAX_RANK, &n_pads));
    if (n_pads != 2 * r)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                            "input pads has %d values; data has rank %d (expected %d)", n_pads,
                            r, 2 * r);
    const oc_tensor_t *cv = oc_lower_input(lw, 2);
    if (ints[0] == 0 && cv) {
      if (cv->dtype != x->dtype)
        return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                              "constant_value has dtype %s; data has %s",
                              oc_dtype_name(cv->dtype), oc_dtype_name(x->dtype));
      if (oc_tensor_numel(cv) != 1)
        return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                              "constant_value has %lld elements; expected a scalar",
                              (long long)oc_tensor_numel(cv));
      value = oc_lower_in(lw, 2);
    }
  }
  for (int i = 0; i < 2 * r; i++)
    if (ints[1 + i] < -OC_MAX_DIM || ints[1 + i] > OC_MAX_DIM)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "pad %d is %lld; out of range", i,
                            (long long)ints[1 + i]);
  int in[2] = {oc_lower_in(lw, 0), value}, out[1] = {oc_lower_out(lw, 0)};
  return oc_lower_emit(lw, OC_OP_PAD, value >= 0 ? 2 : 1, in, 1, out, ints, 1 + 2 * r, NULL, 0);
}

/* --- gradient ---------------------------------------------------------------- */

#include "autodiff.h"

/* Pad: constant mode crops dY back to x (a Pad with the pads negated, which
 * also zero-fills what a negative pad cropped away); reflect and edge add
 * the mirrored / replicated borders back into their sources (PadBwd with the
 * forward ints). The constant value gets no gradient (a plain number in
 * PyTorch's F.pad). */
oc_status_t oc_grad_pad(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_pad(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  if (dy[0] < 0 || !oc_grad_wants(gc, 0)) return OC_OK;
  const oc_tensor_t x_type = oc_grad_graph(gc)->values[fwd->in[0]].type, *x = &x_type;
  if (x->dtype != OC_DTYPE_FLOAT32)
    return oc_grad_error(gc, OC_STATUS_UNSUPPORTED, "gradients are float32; x is %s",
                         oc_dtype_name(x->dtype));
  int r = x->rank;
  if (fwd->n_ints != 1 + 2 * r)
    return oc_grad_error(gc, OC_STATUS_INTERNAL, "unexpected Pad instruction (%d ints)",
                         fwd->n_ints);
  int dx = oc_grad_temp(gc, "dx");
  if (dx < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  if (fwd->ints[0] == 0) {
    int64_t ints[1 + 2 * OC_MAX_RANK];
    ints[0] = 0;
    for (int i = 0; i < 2 * r; i++) ints[1 + i] = -fwd->ints[1 + i];
    OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_PAD, 1, &dy[0], 1, &dx, ints, 1 + 2 * r, NULL, 0));
  } else {
    OC_RETURN_IF_ERROR(
        oc_grad_emit(gc, OC_OP_PAD_BWD, 1, &dy[0], 1, &dx, fwd->ints, fwd->n_ints, NULL, 0));
  }
  return oc_grad_accumulate(gc, 0, dx);
}
