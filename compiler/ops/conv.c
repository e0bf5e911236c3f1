/*
 * Conv -> runtime/ops/conv.c.
 *
 * Also home of oc_lower_window_attrs, the strides/dilations/pads/auto_pad
 * reader shared with the pooling lowerings (compiler/ops/pool.c).
 */
#include <string.h>

#include "autodiff.h"
#include "lower.h"

/* Reads the window attributes of a Conv/pool node with |n| spatial axes, input
 * spatial dims |in| and kernel |kernel|: strides (default 1), dilations
 * (default 1), pads (default 0, ONNX order [begins..., ends...]) and auto_pad,
 * which it resolves into explicit pads (SAME_*: output ceil(in / stride), the
 * odd pad at the end for SAME_UPPER, at the beginning for SAME_LOWER; VALID:
 * no pads). Writes strides[n], pads[2n], dilations[n]; *out_auto is 1 when
 * auto_pad was not NOTSET. Defined here, declared again in pool.c. */
oc_status_t oc_lower_window_attrs(const oc_lower_t *lw, int n, const int64_t *in,
                                  const int64_t *kernel, int64_t *strides, int64_t *pads,
                                  int64_t *dilations, int *out_auto);

static oc_status_t read_ints_attr(const oc_lower_t *lw, const char *name, int want, int64_t min,
                                  int64_t dflt, int64_t *out) {
  const int64_t *v;
  int nv;
  OC_RETURN_IF_ERROR(oc_lower_attr_ints(lw, name, &v, &nv));
  if (nv < 0) {
    for (int i = 0; i < want; i++) out[i] = dflt;
    return OC_OK;
  }
  if (nv != want)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "attribute '%s' has %d values; expected %d", name, nv, want);
  for (int i = 0; i < want; i++) {
    if (v[i] < min || v[i] > OC_MAX_DIM)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "attribute '%s'[%d] = %lld is out of range",
                            name, i, (long long)v[i]);
    out[i] = v[i];
  }
  return OC_OK;
}

oc_status_t oc_lower_window_attrs(const oc_lower_t *lw, int n, const int64_t *in,
                                  const int64_t *kernel, int64_t *strides, int64_t *pads,
                                  int64_t *dilations, int *out_auto) {
  OC_RETURN_IF_ERROR(read_ints_attr(lw, "strides", n, 1, 1, strides));
  OC_RETURN_IF_ERROR(read_ints_attr(lw, "dilations", n, 1, 1, dilations));
  OC_RETURN_IF_ERROR(read_ints_attr(lw, "pads", 2 * n, 0, 0, pads));
  const char *auto_pad;
  OC_RETURN_IF_ERROR(oc_lower_attr_string(lw, "auto_pad", "NOTSET", &auto_pad));
  *out_auto = 0;
  if (!strcmp(auto_pad, "NOTSET") || !auto_pad[0]) return OC_OK;
  int same_upper = !strcmp(auto_pad, "SAME_UPPER"), same_lower = !strcmp(auto_pad, "SAME_LOWER");
  if (!same_upper && !same_lower && strcmp(auto_pad, "VALID"))
    return oc_lower_error(lw, OC_STATUS_UNSUPPORTED,
                          "attribute 'auto_pad' is '%s'; expected NOTSET, VALID, SAME_UPPER or "
                          "SAME_LOWER",
                          auto_pad);
  for (int i = 0; i < 2 * n; i++)
    if (pads[i] != 0)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                            "attributes 'pads' and 'auto_pad'=%s cannot be used together",
                            auto_pad);
  *out_auto = 1;
  if (!same_upper && !same_lower) return OC_OK; /* VALID */
  for (int i = 0; i < n; i++) {
    uint64_t span;
    if (oc_mul_overflows((uint64_t)(kernel[i] - 1), (uint64_t)dilations[i], &span) ||
        span > (uint64_t)OC_MAX_DIM)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "the dilated kernel is too large");
    int64_t out = (in[i] + strides[i] - 1) / strides[i];
    int64_t total = (out > 0 ? out - 1 : 0) * strides[i] + (int64_t)span + 1 - in[i];
    if (total < 0) total = 0;
    int64_t small = total / 2, large = total - small;
    pads[i] = same_upper ? small : large;
    pads[n + i] = same_upper ? large : small;
  }
  return OC_OK;
}

/* Conv (opset 1, 11): X (N, C, D1..Dn), W (M, C/group, k1..kn), optional B. */
oc_status_t oc_lower_conv(oc_lower_t *lw);
oc_status_t oc_lower_conv(oc_lower_t *lw) {
  const oc_tensor_t *x = oc_lower_input(lw, 0), *w = oc_lower_input(lw, 1);
  if (!x || !w)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "inputs X and W are required");
  if (x->rank < 3)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "input X has rank %d; Conv takes (N, C, D1..Dn)", x->rank);
  int n = x->rank - 2;
  if (n > 3)
    return oc_lower_error(lw, OC_STATUS_UNSUPPORTED,
                          "Conv with %d spatial axes is not supported (1 to 3)", n);
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
  for (int i = 0; i < n; i++)
    if (w->dims[2 + i] < 1)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input W has an empty kernel axis");
  int64_t group;
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "group", 1, &group));
  if (group < 1)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "attribute 'group' is %lld",
                          (long long)group);
  int64_t ints[1 + 4 * 3];
  int is_auto;
  ints[0] = group;
  OC_RETURN_IF_ERROR(oc_lower_window_attrs(lw, n, x->dims + 2, w->dims + 2, ints + 1, ints + 1 + n,
                                           ints + 1 + 3 * n, &is_auto));
  int in[3] = {oc_lower_in(lw, 0), oc_lower_in(lw, 1), oc_lower_in(lw, 2)};
  int n_in = in[2] >= 0 ? 3 : 2;
  int out[1] = {oc_lower_out(lw, 0)};
  return oc_lower_emit(lw, OC_OP_CONV, n_in, in, 1, out, ints, 1 + 4 * n, NULL, 0);
}

/* The gradient of Conv (ints [group, strides[n], pads[2n], dilations[n]]):
 *   dX = ConvBwdData(dY, W), ints + x's spatial dims (GEMM W^T dY, col2im)
 *   dW = ConvBwdFilter(X, dY), ints + the kernel's spatial dims (im2col, dY col^T)
 *   dB = ReduceSum(dY) over N and the spatial axes */
oc_status_t oc_grad_conv(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_conv(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  if (dy[0] < 0) return OC_OK;
  const oc_graph_t *g = oc_grad_graph(gc);
  const oc_tensor_t x = g->values[fwd->in[0]].type, w = g->values[fwd->in[1]].type;
  int n = x.rank - 2;
  if (n < 1 || n > 3 || fwd->n_ints != 1 + 4 * n)
    return oc_grad_error(gc, OC_STATUS_INTERNAL, "unexpected Conv instruction (%d ints)",
                         fwd->n_ints);
  int64_t ints[1 + 5 * 3];
  memcpy(ints, fwd->ints, sizeof(int64_t) * (size_t)(1 + 4 * n));
  if (oc_grad_wants(gc, 0)) {
    for (int i = 0; i < n; i++) ints[1 + 4 * n + i] = x.dims[2 + i];
    int in[2] = {dy[0], fwd->in[1]}, dx = oc_grad_temp(gc, "dx");
    if (dx < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
    OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_CONV_BWD_DATA, 2, in, 1, &dx, ints, 1 + 5 * n,
                                    NULL, 0));
    OC_RETURN_IF_ERROR(oc_grad_accumulate(gc, 0, dx));
  }
  if (oc_grad_wants(gc, 1)) {
    for (int i = 0; i < n; i++) ints[1 + 4 * n + i] = w.dims[2 + i];
    int in[2] = {fwd->in[0], dy[0]}, dw = oc_grad_temp(gc, "dw");
    if (dw < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
    OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_CONV_BWD_FILTER, 2, in, 1, &dw, ints, 1 + 5 * n,
                                    NULL, 0));
    OC_RETURN_IF_ERROR(oc_grad_accumulate(gc, 1, dw));
  }
  if (fwd->n_in > 2 && fwd->in[2] >= 0 && oc_grad_wants(gc, 2)) {
    int64_t axes[1 + OC_MAX_RANK];
    int na = 0;
    axes[na++] = 0; /* keepdims */
    axes[na++] = 0;
    for (int i = 2; i < x.rank; i++) axes[na++] = i;
    int db = oc_grad_temp(gc, "db");
    if (db < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
    OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_REDUCE_SUM, 1, &dy[0], 1, &db, axes, na, NULL, 0));
    OC_RETURN_IF_ERROR(oc_grad_accumulate(gc, 2, db));
  }
  return OC_OK;
}
