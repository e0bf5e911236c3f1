/*
 * MaxPool, AveragePool, LpPool, GlobalAveragePool, GlobalMaxPool ->
 * runtime/ops/pool.c.
 */
#include <math.h>

#include "lower.h"

/* Defined in compiler/ops/conv.c (see there). */
oc_status_t oc_lower_window_attrs(const oc_lower_t *lw, int n, const int64_t *in,
                                  const int64_t *kernel, int64_t *strides, int64_t *pads,
                                  int64_t *dilations, int *out_auto);

enum { POOL_MAX = 0, POOL_AVG = 1, POOL_LP = 2 };

/* Emits MaxPool, AveragePool or LpPool (|kind|) with ints
 * [kernel[n], strides[n], pads[2n], dilations[n], ceil_mode(, count_include_pad)]
 * and, for LpPool, floats [p]. */
static oc_status_t lower_pool(oc_lower_t *lw, int kind) {
  int avg = kind == POOL_AVG;
  const oc_tensor_t *x = oc_lower_input(lw, 0);
  if (!x) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input X is required");
  if (x->rank < 3)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "input X has rank %d; pooling takes (N, C, D1..Dn)", x->rank);
  int n = x->rank - 2;
  if (n > 3)
    return oc_lower_error(lw, OC_STATUS_UNSUPPORTED,
                          "pooling over %d spatial axes is not supported (1 to 3)", n);
  if (kind == POOL_MAX) {
    if (oc_lower_out(lw, 1) >= 0)
      return oc_lower_error(lw, OC_STATUS_UNSUPPORTED,
                            "the optional output 'Indices' of MaxPool is not supported");
    int64_t storage_order;
    OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "storage_order", 0, &storage_order));
    /* storage_order only changes Indices, which is refused above. */
    if (storage_order != 0 && storage_order != 1)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "attribute 'storage_order' is %lld",
                            (long long)storage_order);
  }
  int64_t ints[5 * 3 + 2];
  const int64_t *ks;
  int nk;
  OC_RETURN_IF_ERROR(oc_lower_attr_ints(lw, "kernel_shape", &ks, &nk));
  if (nk < 0)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "attribute 'kernel_shape' is required");
  if (nk != n)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "attribute 'kernel_shape' has %d values; input X has %d spatial axes",
                          nk, n);
  for (int i = 0; i < n; i++) {
    if (ks[i] < 1 || ks[i] > OC_MAX_DIM)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                            "attribute 'kernel_shape'[%d] = %lld is out of range", i,
                            (long long)ks[i]);
    ints[i] = ks[i];
  }
  int is_auto;
  OC_RETURN_IF_ERROR(oc_lower_window_attrs(lw, n, x->dims + 2, ints, ints + n, ints + 2 * n,
                                           ints + 4 * n, &is_auto));
  int64_t ceil_mode = 0, count_include_pad = 0;
  /* LpPool has no ceil_mode before opset 18. */
  if (kind != POOL_LP) OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "ceil_mode", 0, &ceil_mode));
  if (ceil_mode != 0 && ceil_mode != 1)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "attribute 'ceil_mode' is %lld",
                          (long long)ceil_mode);
  /* With auto_pad the output size is fixed by the auto_pad rule, which the
   * resolved pads reproduce in floor mode. */
  ints[5 * n] = is_auto ? 0 : ceil_mode;
  if (avg) {
    OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "count_include_pad", 0, &count_include_pad));
    if (count_include_pad != 0 && count_include_pad != 1)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                            "attribute 'count_include_pad' is %lld", (long long)count_include_pad);
    ints[5 * n + 1] = count_include_pad;
  }
  float p = 0.0f;
  if (kind == POOL_LP) {
    /* p is a float in opset 1, an int from opset 2 on; default 2. */
    if (lw->opset < 2) {
      OC_RETURN_IF_ERROR(oc_lower_attr_float(lw, "p", 2.0f, &p));
    } else {
      int64_t pi;
      OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "p", 2, &pi));
      if (pi < 1 || pi > 1000000)
        return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "attribute 'p' is %lld",
                              (long long)pi);
      p = (float)pi;
    }
    if (!(p > 0.0f) || p == INFINITY)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "attribute 'p' is %g", p);
  }
  int in[1] = {oc_lower_in(lw, 0)}, out[1] = {oc_lower_out(lw, 0)};
  static const int ops[3] = {OC_OP_MAXPOOL, OC_OP_AVGPOOL, OC_OP_LPPOOL};
  return oc_lower_emit(lw, ops[kind], 1, in, 1, out, ints, 5 * n + 1 + avg, &p,
                       kind == POOL_LP ? 1 : 0);
}

/* MaxPool (opset 1, 8, 10, 11, 12): Indices output refused. */
oc_status_t oc_lower_maxpool(oc_lower_t *lw);
oc_status_t oc_lower_maxpool(oc_lower_t *lw) { return lower_pool(lw, POOL_MAX); }

/* AveragePool (opset 1, 7, 10, 11, 19). */
oc_status_t oc_lower_avgpool(oc_lower_t *lw);
oc_status_t oc_lower_avgpool(oc_lower_t *lw) { return lower_pool(lw, POOL_AVG); }

/* LpPool (opset 1, 2, 11): p (float in opset 1, int after), no dilations or
 * ceil_mode before opset 18 (a dilations attribute, if present, is honoured). */
oc_status_t oc_lower_lppool(oc_lower_t *lw);
oc_status_t oc_lower_lppool(oc_lower_t *lw) { return lower_pool(lw, POOL_LP); }

static oc_status_t lower_global_pool(oc_lower_t *lw, int op) {
  int in[1] = {oc_lower_in(lw, 0)}, out[1] = {oc_lower_out(lw, 0)};
  if (in[0] < 0) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input X is required");
  return oc_lower_emit(lw, op, 1, in, 1, out, NULL, 0, NULL, 0);
}

/* GlobalAveragePool / GlobalMaxPool (opset 1): any number of spatial axes. */
oc_status_t oc_lower_global_avgpool(oc_lower_t *lw);
oc_status_t oc_lower_global_avgpool(oc_lower_t *lw) {
  return lower_global_pool(lw, OC_OP_GLOBAL_AVGPOOL);
}
oc_status_t oc_lower_global_maxpool(oc_lower_t *lw);
oc_status_t oc_lower_global_maxpool(oc_lower_t *lw) {
  return lower_global_pool(lw, OC_OP_GLOBAL_MAXPOOL);
}

/* --- gradients --------------------------------------------------------------- */

#include "autodiff.h"

/* Emits backward op |op| on |in| and accumulates its output into input 0. */
static oc_status_t pool_grad_emit(oc_grad_t *gc, int op, int n_in, const int *in,
                                  const int64_t *ints, int n_ints) {
  int dx = oc_grad_temp(gc, "dx");
  if (dx < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  OC_RETURN_IF_ERROR(oc_grad_emit(gc, op, n_in, in, 1, &dx, ints, n_ints, NULL, 0));
  return oc_grad_accumulate(gc, 0, dx);
}

/* MaxPool: MaxPoolBwd(X, dY) with the forward ints; each window's dY goes to
 * its first maximum (PyTorch's max_pool backward), recomputed from X. */
oc_status_t oc_grad_maxpool(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_maxpool(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  if (dy[0] < 0 || !oc_grad_wants(gc, 0)) return OC_OK;
  int in[2] = {fwd->in[0], dy[0]};
  return pool_grad_emit(gc, OC_OP_MAXPOOL_BWD, 2, in, fwd->ints, fwd->n_ints);
}

/* AveragePool: AvgPoolBwd(dY) with the forward ints followed by X's spatial
 * dims; each window spreads dY / count over its taps. */
oc_status_t oc_grad_avgpool(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_avgpool(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  if (dy[0] < 0 || !oc_grad_wants(gc, 0)) return OC_OK;
  const oc_tensor_t x = oc_grad_graph(gc)->values[fwd->in[0]].type;
  int n = x.rank - 2;
  if (n < 1 || n > 3 || fwd->n_ints != 5 * n + 2)
    return oc_grad_error(gc, OC_STATUS_INTERNAL, "unexpected AveragePool instruction (%d ints)",
                         fwd->n_ints);
  int64_t ints[6 * 3 + 2];
  for (int i = 0; i < 5 * n + 2; i++) ints[i] = fwd->ints[i];
  for (int i = 0; i < n; i++) ints[5 * n + 2 + i] = x.dims[2 + i];
  return pool_grad_emit(gc, OC_OP_AVGPOOL_BWD, 1, &dy[0], ints, 6 * n + 2);
}

/* GlobalAveragePool: GlobalAvgPoolBwd(dY), ints X's spatial dims: dY / size. */
oc_status_t oc_grad_global_avgpool(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_global_avgpool(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  if (dy[0] < 0 || !oc_grad_wants(gc, 0)) return OC_OK;
  const oc_tensor_t x = oc_grad_graph(gc)->values[fwd->in[0]].type;
  int64_t ints[OC_MAX_RANK];
  int n = x.rank > 2 ? x.rank - 2 : 0;
  for (int i = 0; i < n; i++) ints[i] = x.dims[2 + i];
  return pool_grad_emit(gc, OC_OP_GLOBAL_AVGPOOL_BWD, 1, &dy[0], ints, n);
}

/* GlobalMaxPool: GlobalMaxPoolBwd(X, dY): dY to the first maximum. */
oc_status_t oc_grad_global_maxpool(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_global_maxpool(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  if (dy[0] < 0 || !oc_grad_wants(gc, 0)) return OC_OK;
  int in[2] = {fwd->in[0], dy[0]};
  return pool_grad_emit(gc, OC_OP_GLOBAL_MAXPOOL_BWD, 2, in, NULL, 0);
}

/* LpPool: LpPoolBwd(X, dY) with the forward ints and floats [p]: each window
 * adds dY * sign(x) |x|^(p-1) / y^(p-1) into its taps (y recomputed from X;
 * windows with y = 0 add nothing). */
oc_status_t oc_grad_lppool(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_lppool(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  if (dy[0] < 0 || !oc_grad_wants(gc, 0)) return OC_OK;
  int dx = oc_grad_temp(gc, "dx");
  if (dx < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  int in[2] = {fwd->in[0], dy[0]};
  OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_LPPOOL_BWD, 2, in, 1, &dx, fwd->ints, fwd->n_ints,
                                  fwd->floats, fwd->n_floats));
  return oc_grad_accumulate(gc, 0, dx);
}
