/*
 * Resize (opset 10, 11, 13) and Upsample (opset 7, 9; deprecated in 10) ->
 * runtime/ops/resize.c (ints [mode, coord, nearest, from_sizes, out[r]],
 * floats [scales[r]] unless from_sizes).
 *
 *   Resize-10, Upsample: inputs X, scales; mode nearest or linear with the
 *     asymmetric transform (x / scale) and, for nearest, the 'simple'
 *     rounding of those versions (floor when upsampling, ceil when
 *     downsampling).
 *   Resize-11, 13: inputs X, roi, scales, sizes (exactly one of scales and
 *     sizes, a compile-time constant); coordinate_transformation_mode
 *     half_pixel (default), asymmetric, pytorch_half_pixel, align_corners,
 *     tf_half_pixel_for_nn; nearest_mode round_prefer_floor (default),
 *     round_prefer_ceil, floor, ceil. roi is only read by
 *     tf_crop_and_resize, which is refused, as is mode cubic.
 *     exclude_outside changes nothing for nearest and linear (they only
 *     weight taps inside the input) and is accepted; extrapolation_value
 *     only matters to tf_crop_and_resize.
 * Output dims: sizes, or floor(in * scale) (in double, as ONNX's reference).
 * Linear is float32 only; nearest moves any dtype.
 */
#include <math.h>
#include <string.h>

#include "lower.h"

enum { RS_NEAREST = 0, RS_LINEAR = 1 };

/* Reads constant input |i| (float32) into scales[r]. */
static oc_status_t read_scales(oc_lower_t *lw, int i, int r, float *scales) {
  const oc_tensor_t *t = oc_lower_input(lw, i);
  if (!oc_lower_input_is_const(lw, i))
    return oc_lower_error(lw, OC_STATUS_UNSUPPORTED,
                          "input %d (scales) must be a compile-time constant: the output shape "
                          "depends on it",
                          i);
  if (t->dtype != OC_DTYPE_FLOAT32)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "scales has dtype %s; expected float32",
                          oc_dtype_name(t->dtype));
  if (oc_tensor_numel(t) != r)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "scales has %lld values; X has rank %d", (long long)oc_tensor_numel(t),
                          r);
  memcpy(scales, t->data, sizeof(float) * (size_t)r);
  return OC_OK;
}

/* Checks scales, computes out = floor(in * scale) and emits. */
static oc_status_t emit_resize(oc_lower_t *lw, int64_t mode, int64_t coord, int64_t nearest,
                               const float *scales, const int64_t *sizes) {
  const oc_tensor_t *x = oc_lower_input(lw, 0);
  int r = x->rank;
  int64_t ints[4 + OC_MAX_RANK] = {mode, coord, nearest, sizes ? 1 : 0};
  for (int i = 0; i < r; i++) {
    if (sizes) {
      if (sizes[i] < 0 || sizes[i] > OC_MAX_DIM)
        return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "sizes[%d] is %lld; out of range",
                              i, (long long)sizes[i]);
      if (x->dims[i] == 0 && sizes[i] != 0)
        return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                              "axis %d of X is empty; it cannot be resized to %lld", i,
                              (long long)sizes[i]);
      ints[4 + i] = sizes[i];
      continue;
    }
    if (!(scales[i] > 0.0f) || isinf(scales[i]))
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                            "scales[%d] is %g; scales must be finite and > 0", i, scales[i]);
    double o = floor((double)x->dims[i] * (double)scales[i]);
    if (o > (double)OC_MAX_DIM)
      return oc_lower_error(lw, OC_STATUS_RESOURCE_LIMIT, "output dim %d (%g) is too large", i, o);
    ints[4 + i] = (int64_t)o;
  }
  int in[1] = {oc_lower_in(lw, 0)}, out[1] = {oc_lower_out(lw, 0)};
  return oc_lower_emit(lw, OC_OP_RESIZE, 1, in, 1, out, ints, 4 + r, scales, sizes ? 0 : r);
}

static oc_status_t parse_mode(oc_lower_t *lw, int allow_bilinear, int64_t *mode) {
  const char *m;
  OC_RETURN_IF_ERROR(oc_lower_attr_string(lw, "mode", "nearest", &m));
  if (!strcmp(m, "nearest")) {
    *mode = RS_NEAREST;
  } else if (!strcmp(m, "linear") || (allow_bilinear && !strcmp(m, "bilinear"))) {
    *mode = RS_LINEAR;
  } else if (!strcmp(m, "cubic")) {
    return oc_lower_error(lw, OC_STATUS_UNSUPPORTED,
                          "attribute 'mode' is 'cubic'; only nearest and linear are supported");
  } else {
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "attribute 'mode' is '%s'; expected nearest, linear or cubic", m);
  }
  return OC_OK;
}

static oc_status_t need_x(oc_lower_t *lw) {
  const oc_tensor_t *x = oc_lower_input(lw, 0);
  if (!x) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input X is required");
  if (x->rank < 1)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input X is a scalar");
  return OC_OK;
}

oc_status_t oc_lower_resize(oc_lower_t *lw);
oc_status_t oc_lower_resize(oc_lower_t *lw) {
  OC_RETURN_IF_ERROR(need_x(lw));
  int r = oc_lower_input(lw, 0)->rank;
  int64_t mode;
  OC_RETURN_IF_ERROR(parse_mode(lw, 0, &mode));
  float scales[OC_MAX_RANK];
  if (lw->opset < 11) {
    if (oc_lower_in(lw, 1) < 0)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input scales is required");
    OC_RETURN_IF_ERROR(read_scales(lw, 1, r, scales));
    return emit_resize(lw, mode, 1 /* asymmetric */, 4 /* simple */, scales, NULL);
  }
  static const char *const coords[] = {"half_pixel", "asymmetric", "pytorch_half_pixel",
                                       "align_corners", "tf_half_pixel_for_nn"};
  static const char *const nearests[] = {"round_prefer_floor", "round_prefer_ceil", "floor",
                                         "ceil"};
  const char *cs, *ns;
  OC_RETURN_IF_ERROR(
      oc_lower_attr_string(lw, "coordinate_transformation_mode", "half_pixel", &cs));
  OC_RETURN_IF_ERROR(oc_lower_attr_string(lw, "nearest_mode", "round_prefer_floor", &ns));
  int64_t coord = -1, nearest = -1, exclude;
  for (int i = 0; i < 5; i++)
    if (!strcmp(cs, coords[i])) coord = i;
  for (int i = 0; i < 4; i++)
    if (!strcmp(ns, nearests[i])) nearest = i;
  if (!strcmp(cs, "tf_crop_and_resize"))
    return oc_lower_error(lw, OC_STATUS_UNSUPPORTED,
                          "coordinate_transformation_mode 'tf_crop_and_resize' is not supported");
  if (coord < 0)
    return oc_lower_error(lw, OC_STATUS_UNSUPPORTED,
                          "coordinate_transformation_mode '%s' is not supported", cs);
  if (nearest < 0)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "nearest_mode '%s' is not valid", ns);
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "exclude_outside", 0, &exclude));
  if (exclude != 0 && exclude != 1)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "attribute 'exclude_outside' is %lld",
                          (long long)exclude);
  const oc_tensor_t *sc = oc_lower_input(lw, 2), *sz = oc_lower_input(lw, 3);
  int has_scales = sc && oc_tensor_numel(sc) > 0, has_sizes = sz && oc_tensor_numel(sz) > 0;
  if (has_scales == has_sizes)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "exactly one of the inputs scales and sizes must be given (non-empty)");
  if (has_scales) {
    OC_RETURN_IF_ERROR(read_scales(lw, 2, r, scales));
    return emit_resize(lw, mode, coord, nearest, scales, NULL);
  }
  int64_t sizes[OC_MAX_RANK];
  int n;
  OC_RETURN_IF_ERROR(oc_lower_const_ints(lw, 3, sizes, OC_MAX_RANK, &n));
  if (n != r)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "sizes has %d values; X has rank %d", n,
                          r);
  return emit_resize(lw, mode, coord, nearest, NULL, sizes);
}

/* Upsample-7 (scales attribute) and -9 (scales input). */
oc_status_t oc_lower_upsample(oc_lower_t *lw);
oc_status_t oc_lower_upsample(oc_lower_t *lw) {
  OC_RETURN_IF_ERROR(need_x(lw));
  int r = oc_lower_input(lw, 0)->rank;
  int64_t mode;
  OC_RETURN_IF_ERROR(parse_mode(lw, 1, &mode));
  float scales[OC_MAX_RANK];
  if (lw->opset < 9) {
    const oc_attr_t *a = oc_node_attr(lw->node, "scales");
    if (!a || a->type != OC_ATTR_FLOATS)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                            "attribute 'scales' (floats) is required");
    if (a->n_floats != r)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                            "attribute 'scales' has %d values; X has rank %d", a->n_floats, r);
    memcpy(scales, a->floats, sizeof(float) * (size_t)r);
  } else {
    if (oc_lower_in(lw, 1) < 0)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input scales is required");
    OC_RETURN_IF_ERROR(read_scales(lw, 1, r, scales));
  }
  return emit_resize(lw, mode, 1 /* asymmetric */, 4 /* simple */, scales, NULL);
}

/* --- gradient ---------------------------------------------------------------- */

#include "autodiff.h"

/* Resize / Upsample: ResizeBwd(dY) with the forward ints followed by X's dims
 * and the forward floats: the transpose of the same taps and weights (nearest:
 * dY adds into the pixel each output picked; linear: the interpolation
 * weights transposed), for every coordinate transformation. Scales and sizes
 * are compile-time constants: no gradient. */
oc_status_t oc_grad_resize(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_resize(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  if (dy[0] < 0 || !oc_grad_wants(gc, 0)) return OC_OK;
  const oc_tensor_t x_type = oc_grad_graph(gc)->values[fwd->in[0]].type, *x = &x_type;
  if (x->dtype != OC_DTYPE_FLOAT32)
    return oc_grad_error(gc, OC_STATUS_UNSUPPORTED, "gradients are float32; X is %s",
                         oc_dtype_name(x->dtype));
  int r = x->rank;
  if (fwd->n_ints != 4 + r)
    return oc_grad_error(gc, OC_STATUS_INTERNAL, "unexpected Resize instruction (%d ints)",
                         fwd->n_ints);
  int64_t ints[4 + 2 * OC_MAX_RANK];
  for (int i = 0; i < 4 + r; i++) ints[i] = fwd->ints[i];
  for (int i = 0; i < r; i++) ints[4 + r + i] = x->dims[i];
  int dx = oc_grad_temp(gc, "dx");
  if (dx < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_RESIZE_BWD, 1, &dy[0], 1, &dx, ints, 4 + 2 * r,
                                  fwd->floats, fwd->n_floats));
  return oc_grad_accumulate(gc, 0, dx);
}
