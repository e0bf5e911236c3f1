/*
 * Shape arithmetic and constants: ONNX ops whose results are known at compile
 * time (Shape, Size, ConstantOfShape, Range, EyeLike, Constant) and the
 * reshape family (Reshape, Flatten, Squeeze, Unsqueeze), which only
 * computes the output dims and lowers through oc_lower_reshape (runtime Copy).
 *
 * Shape and Size depend only on the input's static shape, so they are
 * constants whether or not the input is. ConstantOfShape lowers to an Expand
 * of a one-element constant (folded unless larger than the folding limit).
 * Range needs constant bounds. PyTorch exports these around every reshape
 * (Shape -> Gather -> Unsqueeze -> Concat -> Reshape); all of it folds.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff.h"
#include "lower.h"

static oc_status_t need_input(const oc_lower_t *lw, int i, const char *name,
                              const oc_tensor_t **out) {
  *out = oc_lower_input(lw, i);
  if (!*out) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input '%s' is missing", name);
  return OC_OK;
}

/* Axes from the `axes` attribute (opset < |input_from|) or the constant
 * input |input| (from |input_from|). *n = -1 when absent. */
static oc_status_t read_axes(const oc_lower_t *lw, int64_t input_from, int input,
                             int64_t *axes, int max, int *n) {
  *n = -1;
  if (lw->opset < input_from) {
    const int64_t *a;
    int na;
    OC_RETURN_IF_ERROR(oc_lower_attr_ints(lw, "axes", &a, &na));
    if (na > max)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "attribute 'axes' has %d entries", na);
    for (int i = 0; i < na; i++) axes[i] = a[i];
    *n = na;
    return OC_OK;
  }
  if (oc_lower_in(lw, input) < 0) return OC_OK;
  return oc_lower_const_ints(lw, input, axes, max, n);
}

/* Normalizes |n| axes against |rank| into a mask; duplicates are an error. */
static oc_status_t axes_mask(const oc_lower_t *lw, const int64_t *axes, int n, int rank,
                             int *mask) {
  for (int i = 0; i < rank; i++) mask[i] = 0;
  for (int i = 0; i < n; i++) {
    if (axes[i] < -rank || axes[i] >= rank)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "axis %lld is out of range for rank %d",
                            (long long)axes[i], rank);
    int a = (int)(axes[i] < 0 ? axes[i] + rank : axes[i]);
    if (mask[a])
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "axis %lld is repeated",
                            (long long)axes[i]);
    mask[a] = 1;
  }
  return OC_OK;
}

/* --- Reshape family ------------------------------------------------------ */

/* Reshape-1 takes the shape as an attribute; Reshape-5+ as a constant input.
 * 0 copies the input's dim at that index unless allowzero=1 (opset 14);
 * one -1 is inferred from the element count. */
oc_status_t oc_lower_reshape_op(oc_lower_t *lw);
oc_status_t oc_lower_reshape_op(oc_lower_t *lw) {
  const oc_tensor_t *x;
  OC_RETURN_IF_ERROR(need_input(lw, 0, "data", &x));
  int64_t shape[OC_MAX_RANK];
  int n = 0;
  if (lw->opset < 5) {
    const int64_t *a;
    OC_RETURN_IF_ERROR(oc_lower_attr_ints(lw, "shape", &a, &n));
    if (n < 0) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "attribute 'shape' is required");
    if (n > OC_MAX_RANK)
      return oc_lower_error(lw, OC_STATUS_RESOURCE_LIMIT, "attribute 'shape' has %d entries; at most %d",
                            n, OC_MAX_RANK);
    memcpy(shape, a, sizeof(int64_t) * (size_t)n);
  } else {
    OC_RETURN_IF_ERROR(oc_lower_const_ints(lw, 1, shape, OC_MAX_RANK, &n));
  }
  int64_t allowzero = 0;
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "allowzero", 0, &allowzero));
  int infer_at = -1;
  uint64_t known = 1;
  int has_zero = 0;
  for (int i = 0; i < n; i++) {
    if (shape[i] == 0 && !allowzero) {
      if (i >= x->rank)
        return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                              "shape[%d] is 0 (copy the input dim) but the input has rank %d", i,
                              x->rank);
      shape[i] = x->dims[i];
    }
    if (shape[i] == -1) {
      if (infer_at >= 0)
        return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "shape has more than one -1");
      infer_at = i;
      continue;
    }
    if (shape[i] < 0 || shape[i] > OC_MAX_DIM)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "shape[%d] is %lld", i,
                            (long long)shape[i]);
    if (shape[i] == 0) has_zero = 1;
    if (oc_mul_overflows(known, (uint64_t)shape[i], &known))
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "shape's element count overflows");
  }
  int64_t numel = oc_tensor_numel(x);
  if (infer_at >= 0) {
    if (has_zero) {
      if (numel != 0 || allowzero)
        return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                              "cannot infer the -1 in shape: the other dims multiply to 0");
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                            "the -1 in shape is ambiguous: the input and the other dims are empty");
    }
    if ((uint64_t)numel % known != 0) {
      char buf[160];
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                            "cannot reshape %s: %lld elements do not divide by %llu",
                            oc_type_str(x, buf, sizeof buf), (long long)numel,
                            (unsigned long long)known);
    }
    shape[infer_at] = (int64_t)((uint64_t)numel / known);
  }
  return oc_lower_reshape(lw, oc_lower_in(lw, 0), oc_lower_out(lw, 0), n, shape);
}

/* Flatten: (d_0..d_{a-1}, d_a..d_{r-1}) -> (prod(d_0..d_{a-1}), prod(d_a..)).
 * axis in [0, r] (negative from opset 11). */
oc_status_t oc_lower_flatten(oc_lower_t *lw);
oc_status_t oc_lower_flatten(oc_lower_t *lw) {
  const oc_tensor_t *x;
  OC_RETURN_IF_ERROR(need_input(lw, 0, "input", &x));
  int64_t axis;
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "axis", 1, &axis));
  int64_t lo = lw->opset < 11 ? 0 : -(int64_t)x->rank;
  if (axis < lo || axis > x->rank)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "attribute 'axis' is %lld; it must be in [%lld, %d] for rank %d",
                          (long long)axis, (long long)lo, x->rank, x->rank);
  if (axis < 0) axis += x->rank;
  uint64_t d[2] = {1, 1};
  for (int i = 0; i < x->rank; i++)
    /* An empty tensor may have huge dims past its 0: check the products. */
    if (oc_mul_overflows(d[i < axis ? 0 : 1], (uint64_t)x->dims[i], &d[i < axis ? 0 : 1]) ||
        d[i < axis ? 0 : 1] > (uint64_t)OC_MAX_DIM)
      return oc_lower_error(lw, OC_STATUS_RESOURCE_LIMIT,
                            "a flattened dimension exceeds the 2^40 limit");
  int64_t dims[2] = {(int64_t)d[0], (int64_t)d[1]};
  return oc_lower_reshape(lw, oc_lower_in(lw, 0), oc_lower_out(lw, 0), 2, dims);
}

/* Squeeze: axes attribute before opset 13, optional input from 13; with no
 * axes, every 1-dim goes. A listed axis whose dim is not 1 is an error. */
oc_status_t oc_lower_squeeze(oc_lower_t *lw);
oc_status_t oc_lower_squeeze(oc_lower_t *lw) {
  const oc_tensor_t *x;
  OC_RETURN_IF_ERROR(need_input(lw, 0, "data", &x));
  int64_t axes[OC_MAX_RANK];
  int n, mask[OC_MAX_RANK];
  OC_RETURN_IF_ERROR(read_axes(lw, 13, 1, axes, OC_MAX_RANK, &n));
  if (n < 0) {
    for (int i = 0; i < x->rank; i++) mask[i] = x->dims[i] == 1;
  } else {
    OC_RETURN_IF_ERROR(axes_mask(lw, axes, n, x->rank, mask));
  }
  int64_t dims[OC_MAX_RANK];
  int r = 0;
  for (int i = 0; i < x->rank; i++) {
    if (!mask[i]) {
      dims[r++] = x->dims[i];
    } else if (x->dims[i] != 1) {
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                            "cannot squeeze axis %d: its dim is %lld, not 1", i,
                            (long long)x->dims[i]);
    }
  }
  return oc_lower_reshape(lw, oc_lower_in(lw, 0), oc_lower_out(lw, 0), r, dims);
}

/* Unsqueeze: axes (attribute before opset 13, input from 13) index the
 * output, of rank r + len(axes). */
oc_status_t oc_lower_unsqueeze(oc_lower_t *lw);
oc_status_t oc_lower_unsqueeze(oc_lower_t *lw) {
  const oc_tensor_t *x;
  OC_RETURN_IF_ERROR(need_input(lw, 0, "data", &x));
  int64_t axes[OC_MAX_RANK];
  int n, mask[OC_MAX_RANK];
  OC_RETURN_IF_ERROR(read_axes(lw, 13, 1, axes, OC_MAX_RANK, &n));
  if (n < 0) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "'axes' is required");
  int r = x->rank + n;
  if (r > OC_MAX_RANK)
    return oc_lower_error(lw, OC_STATUS_RESOURCE_LIMIT, "output rank %d exceeds %d", r, OC_MAX_RANK);
  OC_RETURN_IF_ERROR(axes_mask(lw, axes, n, r, mask));
  int64_t dims[OC_MAX_RANK];
  for (int i = 0, k = 0; i < r; i++) dims[i] = mask[i] ? 1 : x->dims[k++];
  return oc_lower_reshape(lw, oc_lower_in(lw, 0), oc_lower_out(lw, 0), r, dims);
}

/* --- Shape and Size --------------------------------------------------------- */

/* Shape: the input's dims as int64[r]; opset 15 slices them by start/end
 * (negative counts from the back; both clamped to [0, r]). */
oc_status_t oc_lower_shape(oc_lower_t *lw);
oc_status_t oc_lower_shape(oc_lower_t *lw) {
  const oc_tensor_t *x;
  OC_RETURN_IF_ERROR(need_input(lw, 0, "data", &x));
  int64_t r = x->rank, start, end;
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "start", 0, &start));
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "end", r, &end));
  if (start < 0) start += r;
  if (end < 0) end += r;
  start = start < 0 ? 0 : start > r ? r : start;
  end = end < 0 ? 0 : end > r ? r : end;
  int64_t n = end > start ? end - start : 0;
  int64_t dims[OC_MAX_RANK];
  for (int64_t i = 0; i < n; i++) dims[i] = x->dims[start + i];
  return oc_lower_set_const(lw, oc_lower_out(lw, 0), OC_DTYPE_INT64, 1, &n, dims);
}

/* Size: the input's element count as an int64 scalar. */
oc_status_t oc_lower_size(oc_lower_t *lw);
oc_status_t oc_lower_size(oc_lower_t *lw) {
  const oc_tensor_t *x;
  OC_RETURN_IF_ERROR(need_input(lw, 0, "data", &x));
  int64_t n = oc_tensor_numel(x);
  return oc_lower_set_const(lw, oc_lower_out(lw, 0), OC_DTYPE_INT64, 0, NULL, &n);
}

/* --- constants -------------------------------------------------------------- */

/* ConstantOfShape: a tensor of the constant 1-D int64 `input` as dims, every
 * element `value` (a one-element tensor attribute; default float32 0).
 * Lowered as Expand of the one-element value, so it folds up to the folding
 * limit and stays a run-time fill beyond it. */
oc_status_t oc_lower_constant_of_shape(oc_lower_t *lw);
oc_status_t oc_lower_constant_of_shape(oc_lower_t *lw) {
  const oc_tensor_t *shape_t;
  OC_RETURN_IF_ERROR(need_input(lw, 0, "input", &shape_t));
  if (!oc_lower_input_is_const(lw, 0))
    return oc_lower_error(lw, OC_STATUS_UNSUPPORTED,
                          "input 'input' is computed at run time: the output shape depends on "
                          "run-time data");
  if (shape_t->dtype != OC_DTYPE_INT64 || shape_t->rank != 1)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input 'input' must be 1-D int64");
  int64_t dims[OC_MAX_RANK];
  int n;
  OC_RETURN_IF_ERROR(oc_lower_const_ints(lw, 0, dims, OC_MAX_RANK, &n));
  for (int i = 0; i < n; i++)
    if (dims[i] < 0 || dims[i] > OC_MAX_DIM)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "shape[%d] is %lld", i,
                            (long long)dims[i]);
  int dtype = OC_DTYPE_FLOAT32;
  uint8_t zero[8] = {0};
  const void *value = zero;
  const oc_attr_t *a = oc_node_attr(lw->node, "value");
  if (a) {
    if (a->type != OC_ATTR_TENSOR || a->tensor < 0)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "attribute 'value' must be a tensor");
    const oc_tensor_t *v = &lw->g->values[a->tensor].type;
    if (oc_tensor_numel(v) != 1)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                            "attribute 'value' must hold one element, not %lld",
                            (long long)oc_tensor_numel(v));
    if (!oc_dtype_size(v->dtype))
      return oc_lower_error(lw, OC_STATUS_UNSUPPORTED, "attribute 'value' has dtype %s",
                            oc_dtype_name(v->dtype));
    dtype = v->dtype;
    value = v->data;
  }
  int scalar = oc_lower_temp(lw, "value");
  if (scalar < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  OC_RETURN_IF_ERROR(oc_lower_set_const(lw, scalar, dtype, 0, NULL, value));
  int in[1] = {scalar}, out[1] = {oc_lower_out(lw, 0)};
  return oc_lower_emit(lw, OC_OP_EXPAND, 1, in, 1, out, dims, n, NULL, 0);
}

/* Reads constant scalar input |i| of Range as int64 or double. */
static oc_status_t range_bound(const oc_lower_t *lw, int i, const char *name, int dtype,
                               int64_t *iv, double *fv) {
  const oc_tensor_t *t;
  OC_RETURN_IF_ERROR(need_input(lw, i, name, &t));
  if (!oc_lower_input_is_const(lw, i))
    return oc_lower_error(lw, OC_STATUS_UNSUPPORTED,
                          "input '%s' is computed at run time: the output shape depends on "
                          "run-time data",
                          name);
  if (t->dtype != dtype)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input '%s' has dtype %s; 'start' has %s",
                          name, oc_dtype_name(t->dtype), oc_dtype_name(dtype));
  if (oc_tensor_numel(t) != 1)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input '%s' must be a scalar", name);
  switch (dtype) {
    case OC_DTYPE_FLOAT32: *fv = *(const float *)t->data; break;
    case OC_DTYPE_FLOAT64: *fv = *(const double *)t->data; break;
    case OC_DTYPE_INT64: *iv = *(const int64_t *)t->data; break;
    case OC_DTYPE_INT32: *iv = *(const int32_t *)t->data; break;
    default:
      return oc_lower_error(lw, OC_STATUS_UNSUPPORTED,
                            "input '%s' has dtype %s; Range supports float32, float64, int64, int32", name,
                            oc_dtype_name(dtype));
  }
  return OC_OK;
}

/* Range: start, start + delta, ... while < limit (> limit for delta < 0);
 * max(ceil((limit - start) / delta), 0) elements. Constant inputs only. */
oc_status_t oc_lower_range(oc_lower_t *lw);
oc_status_t oc_lower_range(oc_lower_t *lw) {
  const oc_tensor_t *s0;
  OC_RETURN_IF_ERROR(need_input(lw, 0, "start", &s0));
  int dtype = s0->dtype;
  int64_t iv[3] = {0, 0, 0};
  double fv[3] = {0, 0, 0};
  static const char *const names[3] = {"start", "limit", "delta"};
  for (int i = 0; i < 3; i++)
    OC_RETURN_IF_ERROR(range_bound(lw, i, names[i], dtype, &iv[i], &fv[i]));
  uint64_t n;
  int is_float = dtype == OC_DTYPE_FLOAT32 || dtype == OC_DTYPE_FLOAT64;
  if (is_float) {
    if (!isfinite(fv[0]) || !isfinite(fv[1]) || !isfinite(fv[2]) || fv[2] == 0)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                            "start %g, limit %g, delta %g do not make a finite range", fv[0],
                            fv[1], fv[2]);
    double c = ceil((fv[1] - fv[0]) / fv[2]);
    if (c > (double)OC_MAX_DIM)
      return oc_lower_error(lw, OC_STATUS_RESOURCE_LIMIT, "the range has %g elements", c);
    n = c > 0 ? (uint64_t)c : 0;
  } else {
    int64_t start = iv[0], limit = iv[1], delta = iv[2];
    if (delta == 0) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "delta is 0");
    /* Unsigned arithmetic: exact for any int64 bounds. */
    uint64_t span, step;
    if (delta > 0) {
      span = limit > start ? (uint64_t)limit - (uint64_t)start : 0;
      step = (uint64_t)delta;
    } else {
      span = limit < start ? (uint64_t)start - (uint64_t)limit : 0;
      step = 0 - (uint64_t)delta;
    }
    n = span / step + (span % step != 0);
    if (n > (uint64_t)OC_MAX_DIM)
      return oc_lower_error(lw, OC_STATUS_RESOURCE_LIMIT, "the range has %llu elements",
                            (unsigned long long)n);
  }
  size_t esize = oc_dtype_size(dtype);
  uint64_t bytes = n * esize;
  if (bytes > lw->fold_limit_bytes)
    return oc_lower_error(lw, OC_STATUS_RESOURCE_LIMIT,
                          "the range has %llu elements, beyond the %llu-byte folding limit (onnxc --fold-limit)",
                          (unsigned long long)n, (unsigned long long)lw->fold_limit_bytes);
  void *data = malloc(bytes ? bytes : 1);
  if (!data) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  for (uint64_t i = 0; i < n; i++) {
    if (dtype == OC_DTYPE_FLOAT32)
      ((float *)data)[i] = (float)(fv[0] + (double)i * fv[2]);
    else if (dtype == OC_DTYPE_FLOAT64)
      ((double *)data)[i] = fv[0] + (double)i * fv[2];
    else if (dtype == OC_DTYPE_INT64)
      ((int64_t *)data)[i] = (int64_t)((uint64_t)iv[0] + i * (uint64_t)iv[2]);
    else
      ((int32_t *)data)[i] = (int32_t)(iv[0] + (int64_t)i * iv[2]);
  }
  int64_t dims[1] = {(int64_t)n};
  oc_status_t s = oc_lower_set_const(lw, oc_lower_out(lw, 0), dtype, 1, dims, data);
  free(data);
  return s;
}

/* Writes the value 1 of |dtype| at |p|; 0 for a dtype it does not know. */
static int store_one(void *p, int dtype) {
  switch (dtype) {
    case OC_DTYPE_FLOAT32: *(float *)p = 1.0f; return 1;
    case OC_DTYPE_FLOAT64: *(double *)p = 1.0; return 1;
    case OC_DTYPE_INT64: *(int64_t *)p = 1; return 1;
    case OC_DTYPE_INT32: *(int32_t *)p = 1; return 1;
    case OC_DTYPE_BOOL:
    case OC_DTYPE_UINT8:
    case OC_DTYPE_INT8: *(uint8_t *)p = 1; return 1;
    default: return 0;
  }
}

/* EyeLike: a 2-D tensor of the input's dims with ones on diagonal k (y[i,
 * i+k] = 1), zeros elsewhere; dtype from the `dtype` attribute or the input.
 * Only the input's static shape matters, so it is always a constant. */
oc_status_t oc_lower_eyelike(oc_lower_t *lw);
oc_status_t oc_lower_eyelike(oc_lower_t *lw) {
  const oc_tensor_t *x;
  OC_RETURN_IF_ERROR(need_input(lw, 0, "input", &x));
  if (x->rank != 2)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input must be 2-D, not rank %d", x->rank);
  int64_t k, dtype;
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "k", 0, &k));
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "dtype", x->dtype, &dtype));
  int64_t probe[1];
  if (dtype < 0 || dtype > 64 || !oc_dtype_size((int)dtype) || !store_one(probe, (int)dtype))
    return oc_lower_error(lw, OC_STATUS_UNSUPPORTED, "attribute 'dtype' is %s, which onnxc does not compute",
                          oc_dtype_name((int)dtype));
  int64_t rows = x->dims[0], cols = x->dims[1];
  size_t esize = oc_dtype_size((int)dtype);
  oc_tensor_t t = {.dtype = (int)dtype, .rank = 2, .dims = {rows, cols}};
  size_t bytes = oc_tensor_bytes(&t);
  if (bytes > lw->fold_limit_bytes)
    return oc_lower_error(lw, OC_STATUS_RESOURCE_LIMIT,
                          "the %lldx%lld output exceeds the %llu-byte folding limit (onnxc --fold-limit)",
                          (long long)rows, (long long)cols,
                          (unsigned long long)lw->fold_limit_bytes);
  uint8_t *data = calloc(bytes ? bytes : 1, 1);
  if (!data) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  for (int64_t i = 0; i < rows; i++) {
    if (k > cols || k < -rows) break; /* no diagonal (and no overflow below) */
    int64_t j = i + k;
    if (j >= 0 && j < cols) (void)store_one(data + (size_t)(i * cols + j) * esize, (int)dtype);
  }
  oc_status_t s = oc_lower_set_const(lw, oc_lower_out(lw, 0), (int)dtype, 2, t.dims, data);
  free(data);
  return s;
}

/* Constant: exactly one of value (tensor), value_float(s), value_int(s).
 * Sparse tensors and strings are not supported. */
oc_status_t oc_lower_constant(oc_lower_t *lw);
oc_status_t oc_lower_constant(oc_lower_t *lw) {
  int out = oc_lower_out(lw, 0);
  const oc_node_t *node = lw->node;
  if (node->n_attrs != 1)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "takes exactly one attribute (value, value_float(s), value_int(s)); "
                          "it has %d",
                          node->n_attrs);
  const oc_attr_t *a = &node->attrs[0];
  const char *name = a->name;
  if (strcmp(name, "value") == 0) {
    if (a->type != OC_ATTR_TENSOR || a->tensor < 0)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "attribute 'value' must be a tensor");
    const oc_tensor_t *t = &lw->g->values[a->tensor].type;
    return oc_lower_set_const(lw, out, t->dtype, t->rank, t->dims, t->data);
  }
  if (strcmp(name, "value_float") == 0) {
    float f;
    OC_RETURN_IF_ERROR(oc_lower_attr_float(lw, name, 0, &f));
    return oc_lower_set_const(lw, out, OC_DTYPE_FLOAT32, 0, NULL, &f);
  }
  if (strcmp(name, "value_int") == 0) {
    int64_t i;
    OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, name, 0, &i));
    return oc_lower_set_const(lw, out, OC_DTYPE_INT64, 0, NULL, &i);
  }
  if (strcmp(name, "value_ints") == 0) {
    const int64_t *v;
    int n;
    OC_RETURN_IF_ERROR(oc_lower_attr_ints(lw, name, &v, &n));
    int64_t dims[1] = {n};
    return oc_lower_set_const(lw, out, OC_DTYPE_INT64, 1, dims, v);
  }
  if (strcmp(name, "value_floats") == 0) {
    if (a->type != OC_ATTR_FLOATS)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "attribute 'value_floats' must be floats");
    int64_t dims[1] = {a->n_floats};
    return oc_lower_set_const(lw, out, OC_DTYPE_FLOAT32, 1, dims, a->floats);
  }
  if (strcmp(name, "sparse_value") == 0 || strcmp(name, "value_string") == 0 ||
      strcmp(name, "value_strings") == 0)
    return oc_lower_error(lw, OC_STATUS_UNSUPPORTED, "attribute '%s' is not supported", name);
  return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "unknown attribute '%s'", name);
}

/* Gradient of Copy (the reshape family): the same bytes in the input's shape. */
oc_status_t oc_grad_copy(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_copy(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  const oc_tensor_t x_type = oc_grad_graph(gc)->values[fwd->in[0]].type, *x = &x_type;
  int dx = oc_grad_temp(gc, "dx");
  if (dx < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_COPY, 1, &dy[0], 1, &dx, x->dims, x->rank, NULL, 0));
  return oc_grad_accumulate(gc, 0, dx);
}
