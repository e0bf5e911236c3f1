/*
 * ConvTranspose (opset 1, 11) -> runtime/ops/convtranspose.c
 * (ints [group, strides[n], pads[2n], dilations[n]]).
 *
 * X (N, C, D1..Dn) with n = 1..3, W (C, M/group, k1..kn), optional B (M).
 * The lowering resolves the output size rules into explicit pads:
 *   natural size  Oi = s*(Di - 1) + output_padding + (k - 1)*d + 1 - begin - end
 *   output_shape  total = s*(Di - 1) + output_padding + (k - 1)*d + 1 - output_shape
 *                 (its last n values when it has n + 2), split begin = floor(total/2),
 *                 end = total - begin for SAME_UPPER, the other way round
 *                 otherwise
 *   SAME_UPPER/SAME_LOWER without output_shape: output_shape = Di * s
 *   VALID: no pads
 * and output_padding into the end pad (end - output_padding). Pads may end up
 * negative (a larger output); the runtime handles that.
 */
#include <string.h>

#include "lower.h"

static oc_status_t read_ints(oc_lower_t *lw, const char *name, int want, int64_t min,
                             int64_t dflt, int64_t *out, int *present) {
  const int64_t *v;
  int nv;
  OC_RETURN_IF_ERROR(oc_lower_attr_ints(lw, name, &v, &nv));
  if (present) *present = nv >= 0;
  if (nv < 0) {
    for (int i = 0; i < want; i++) out[i] = dflt;
    return OC_OK;
  }
  if (nv != want)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "attribute '%s' has %d values; expected %d", name, nv, want);
  for (int i = 0; i < want; i++) {
    if (v[i] < min || v[i] > OC_MAX_DIM)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                            "attribute '%s'[%d] = %lld is out of range", name, i, (long long)v[i]);
    out[i] = v[i];
  }
  return OC_OK;
}

oc_status_t oc_lower_convtranspose(oc_lower_t *lw);
oc_status_t oc_lower_convtranspose(oc_lower_t *lw) {
  const oc_tensor_t *x = oc_lower_input(lw, 0), *w = oc_lower_input(lw, 1);
  if (!x || !w)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "inputs X and W are required");
  if (x->rank < 3)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "input X has rank %d; ConvTranspose takes (N, C, D1..Dn)", x->rank);
  int n = x->rank - 2;
  if (n > 3)
    return oc_lower_error(lw, OC_STATUS_UNSUPPORTED,
                          "ConvTranspose with %d spatial axes is not supported (1 to 3)", n);
  if (w->rank != x->rank)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input W has rank %d; expected %d",
                          w->rank, x->rank);
  const int64_t *ks;
  int nk;
  OC_RETURN_IF_ERROR(oc_lower_attr_ints(lw, "kernel_shape", &ks, &nk));
  if (nk >= 0) {
    if (nk != n)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                            "attribute 'kernel_shape' has %d values; expected %d", nk, n);
    for (int i = 0; i < n; i++)
      if (ks[i] != w->dims[2 + i])
        return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                              "attribute 'kernel_shape'[%d] = %lld does not match W's dim %lld",
                              i, (long long)ks[i], (long long)w->dims[2 + i]);
  }
  for (int i = 0; i < n; i++) {
    if (w->dims[2 + i] < 1)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input W has an empty kernel axis");
    if (x->dims[2 + i] < 1)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                            "input X has an empty spatial axis %d", i);
  }
  int64_t group;
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "group", 1, &group));
  if (group < 1)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "attribute 'group' is %lld",
                          (long long)group);
  int64_t ints[1 + 4 * 3];
  int64_t *strides = ints + 1, *pads = ints + 1 + n, *dil = ints + 1 + 3 * n;
  int64_t opad[3], oshape[3 + 2];
  int has_pads, has_oshape;
  ints[0] = group;
  OC_RETURN_IF_ERROR(read_ints(lw, "strides", n, 1, 1, strides, NULL));
  OC_RETURN_IF_ERROR(read_ints(lw, "dilations", n, 1, 1, dil, NULL));
  OC_RETURN_IF_ERROR(read_ints(lw, "pads", 2 * n, 0, 0, pads, &has_pads));
  OC_RETURN_IF_ERROR(read_ints(lw, "output_padding", n, 0, 0, opad, NULL));
  const int64_t *os;
  int nos;
  OC_RETURN_IF_ERROR(oc_lower_attr_ints(lw, "output_shape", &os, &nos));
  has_oshape = nos >= 0;
  if (has_oshape) {
    if (nos != n && nos != n + 2)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                            "attribute 'output_shape' has %d values; expected %d", nos, n);
    for (int i = 0; i < n; i++) {
      oshape[i] = os[nos - n + i];
      if (oshape[i] < 1 || oshape[i] > OC_MAX_DIM)
        return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                              "attribute 'output_shape' value %lld is out of range",
                              (long long)oshape[i]);
    }
  }
  const char *auto_pad;
  OC_RETURN_IF_ERROR(oc_lower_attr_string(lw, "auto_pad", "NOTSET", &auto_pad));
  int same_upper = !strcmp(auto_pad, "SAME_UPPER"), same_lower = !strcmp(auto_pad, "SAME_LOWER");
  int valid = !strcmp(auto_pad, "VALID");
  if (!same_upper && !same_lower && !valid && strcmp(auto_pad, "NOTSET") && auto_pad[0])
    return oc_lower_error(lw, OC_STATUS_UNSUPPORTED,
                          "attribute 'auto_pad' is '%s'; expected NOTSET, VALID, SAME_UPPER or "
                          "SAME_LOWER",
                          auto_pad);
  if ((same_upper || same_lower || valid) && has_pads) {
    for (int i = 0; i < 2 * n; i++)
      if (pads[i] != 0)
        return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                              "attributes 'pads' and 'auto_pad'=%s cannot be used together",
                              auto_pad);
  }
  if (!has_oshape && (same_upper || same_lower)) {
    for (int i = 0; i < n; i++) {
      if (x->dims[2 + i] > OC_MAX_DIM / strides[i])
        return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "the output is too large");
      oshape[i] = x->dims[2 + i] * strides[i];
    }
    has_oshape = 1;
  }
  for (int i = 0; i < n; i++) {
    /* every term is below 2^42 (checked bounds): no overflow */
    if (x->dims[2 + i] > OC_MAX_DIM / strides[i] || w->dims[2 + i] > OC_MAX_DIM / dil[i])
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "the output is too large");
    int64_t natural = strides[i] * (x->dims[2 + i] - 1) + opad[i] +
                      (w->dims[2 + i] - 1) * dil[i] + 1;
    if (has_oshape) {
      int64_t total = natural - oshape[i];
      /* floor(total / 2), as in ONNX's reference (Python's //): a negative total (a
       * larger output) then grows the end for NOTSET / SAME_LOWER. */
      int64_t half = total >= 0 ? total / 2 : -((-total + 1) / 2);
      pads[i] = same_upper ? half : total - half;
      pads[n + i] = same_upper ? total - half : half;
    }
    pads[n + i] -= opad[i];
  }
  int in[3] = {oc_lower_in(lw, 0), oc_lower_in(lw, 1), oc_lower_in(lw, 2)};
  int n_in = in[2] >= 0 ? 3 : 2;
  int out[1] = {oc_lower_out(lw, 0)};
  return oc_lower_emit(lw, OC_OP_CONVTRANSPOSE, n_in, in, 1, out, ints, 1 + 4 * n, NULL, 0);
}

/* --- gradient ---------------------------------------------------------------- */

#include "autodiff.h"

/* ConvTranspose (ints [group, strides[n], pads[2n], dilations[n]]):
 *   dX = Conv(dY, W) with the same group, strides and dilations: W
 *        (C, M/group, k) is exactly a Conv weight from M to C channels, and
 *        that Conv's output size is X's. Conv takes pads >= 0 only, so the
 *        negative pads (output_padding, a larger output_shape) first crop dY
 *        with a Pad; the cropped positions received only the bias.
 *   dW = ConvTransposeBwdFilter(X, dY), ints the forward's + W's spatial dims
 *   dB = ReduceSum(dY) over N and the spatial axes. */
oc_status_t oc_grad_convtranspose(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_convtranspose(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  if (dy[0] < 0) return OC_OK;
  oc_graph_t *g = oc_grad_graph(gc);
  const oc_tensor_t x = g->values[fwd->in[0]].type, w = g->values[fwd->in[1]].type;
  int r = x.rank, n = r - 2;
  if (n < 1 || n > 3 || fwd->n_ints != 1 + 4 * n)
    return oc_grad_error(gc, OC_STATUS_INTERNAL, "unexpected ConvTranspose instruction (%d ints)",
                         fwd->n_ints);
  const int64_t *pads = fwd->ints + 1 + n;
  if (oc_grad_wants(gc, 0)) {
    int src = dy[0], crop = 0;
    int64_t pad_ints[1 + 2 * OC_MAX_RANK] = {0};
    for (int i = 0; i < n; i++) {
      if (pads[i] < 0) crop = 1, pad_ints[1 + 2 + i] = pads[i];
      if (pads[n + i] < 0) crop = 1, pad_ints[1 + r + 2 + i] = pads[n + i];
    }
    if (crop) {
      src = oc_grad_temp(gc, "dy_cropped");
      if (src < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
      OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_PAD, 1, &dy[0], 1, &src, pad_ints, 1 + 2 * r,
                                      NULL, 0));
    }
    int64_t conv_ints[1 + 4 * 3];
    for (int i = 0; i < 1 + 4 * n; i++) conv_ints[i] = fwd->ints[i];
    for (int i = 0; i < 2 * n; i++)
      if (conv_ints[1 + n + i] < 0) conv_ints[1 + n + i] = 0;
    int dx = oc_grad_temp(gc, "dx");
    if (dx < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
    int in[2] = {src, fwd->in[1]};
    OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_CONV, 2, in, 1, &dx, conv_ints, 1 + 4 * n, NULL, 0));
    OC_RETURN_IF_ERROR(oc_grad_accumulate(gc, 0, dx));
  }
  if (oc_grad_wants(gc, 1)) {
    int64_t ints[1 + 5 * 3];
    for (int i = 0; i < 1 + 4 * n; i++) ints[i] = fwd->ints[i];
    for (int i = 0; i < n; i++) ints[1 + 4 * n + i] = w.dims[2 + i];
    int dw = oc_grad_temp(gc, "dw");
    if (dw < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
    int in[2] = {fwd->in[0], dy[0]};
    OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_CONVTRANSPOSE_BWD_FILTER, 2, in, 1, &dw, ints,
                                    1 + 5 * n, NULL, 0));
    OC_RETURN_IF_ERROR(oc_grad_accumulate(gc, 1, dw));
  }
  if (fwd->n_in > 2 && fwd->in[2] >= 0 && oc_grad_wants(gc, 2)) {
    int64_t ints[1 + OC_MAX_RANK];
    int k = 0;
    ints[k++] = 0; /* keepdims */
    ints[k++] = 0;
    for (int i = 2; i < r; i++) ints[k++] = i;
    int db = oc_grad_temp(gc, "db");
    if (db < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
    OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_REDUCE_SUM, 1, &dy[0], 1, &db, ints, k, NULL, 0));
    OC_RETURN_IF_ERROR(oc_grad_accumulate(gc, 2, db));
  }
  return OC_OK;
}
