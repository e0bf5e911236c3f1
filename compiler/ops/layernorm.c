/*
 * LayerNormalization (opset 17) -> runtime/ops/layernorm.c (OC_OP_LAYERNORM),
 * ints [axis], floats [epsilon].
 *
 * stash_type must be 1 (float32 statistics). The optional outputs Mean and
 * InvStdDev are produced when asked for (InvStdDev alone gets a temporary
 * Mean). The opset-13 decomposition (ReduceMean, Sub, Pow, Sqrt, ...) is
 * made of primitive ops lowered elsewhere.
 */
#include "autodiff.h"
#include "lower.h"

oc_status_t oc_lower_layernormalization(oc_lower_t *lw);
oc_status_t oc_lower_layernormalization(oc_lower_t *lw) {
  int64_t axis, stash;
  float eps;
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "axis", -1, &axis));
  OC_RETURN_IF_ERROR(oc_lower_attr_float(lw, "epsilon", 1e-5f, &eps));
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "stash_type", 1, &stash));
  if (stash != 1)
    return oc_lower_error(lw, OC_STATUS_UNSUPPORTED,
                          "attribute 'stash_type' is %lld; only 1 (float32 statistics) is "
                          "supported",
                          (long long)stash);
  const char *names[3] = {"X", "Scale", "B"};
  for (int i = 0; i < 3; i++) {
    const oc_tensor_t *t = oc_lower_input(lw, i);
    if (!t) {
      if (i < 2)
        return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input '%s' is missing", names[i]);
      continue;
    }
    if (t->dtype != OC_DTYPE_FLOAT32)
      return oc_lower_error(lw, OC_STATUS_UNSUPPORTED, "input '%s' has dtype %s; float32 only",
                            names[i], oc_dtype_name(t->dtype));
  }
  const oc_tensor_t *x = oc_lower_input(lw, 0);
  if (axis < -(int64_t)x->rank || axis >= (int64_t)x->rank)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "attribute 'axis' is %lld; must be in [%d, %d] for rank %d",
                          (long long)axis, -x->rank, x->rank - 1, x->rank);
  int64_t ints[1] = {axis < 0 ? axis + x->rank : axis};
  float floats[1] = {eps};
  int n_in = oc_lower_in(lw, 2) >= 0 ? 3 : 2;
  int in[3] = {oc_lower_in(lw, 0), oc_lower_in(lw, 1), oc_lower_in(lw, 2)};
  int out[3] = {oc_lower_out(lw, 0), oc_lower_out(lw, 1), oc_lower_out(lw, 2)};
  int n_out = out[2] >= 0 ? 3 : out[1] >= 0 ? 2 : 1;
  if (n_out == 3 && out[1] < 0) {
    out[1] = oc_lower_temp(lw, "mean");
    if (out[1] < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  }
  return oc_lower_emit(lw, OC_OP_LAYERNORM, n_in, in, n_out, out, ints, 1, floats, 1);
}

/* --- gradients ---------------------------------------------------------------- */

/* LayerNormalization: one LayerNormBwd (mean and 1/std recomputed from x)
 * producing the wanted subset of dx, dscale, dbias; the gradients flowing
 * into the optional Mean / InvStdDev outputs are inputs of the same kernel.
 * dscale and dbias come over the whole normalized shape and are summed to the
 * shapes of a broadcast scale / bias. */
oc_status_t oc_grad_layernorm(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_layernorm(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  int64_t mask = 0;
  if (oc_grad_wants(gc, 0)) mask |= 1;
  if (dy[0] >= 0 && oc_grad_wants(gc, 1)) mask |= 2;
  if (dy[0] >= 0 && fwd->n_in > 2 && fwd->in[2] >= 0 && oc_grad_wants(gc, 2)) mask |= 4;
  int dmean = fwd->n_out > 1 ? dy[1] : -1, drstd = fwd->n_out > 2 ? dy[2] : -1;
  if (!mask) return OC_OK;
  int in[5] = {fwd->in[0], fwd->in[1], dy[0], dmean, drstd};
  int n_in = 5;
  while (n_in > 2 && in[n_in - 1] < 0) n_in--;
  int out[3], n_out = 0;
  const char *hints[3] = {"dx", "dscale", "dbias"};
  for (int k = 0; k < 3; k++) {
    if (!(mask & (1 << k))) continue;
    out[n_out] = oc_grad_temp(gc, hints[k]);
    if (out[n_out] < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
    n_out++;
  }
  int64_t ints[2] = {fwd->ints[0], mask};
  OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_LAYERNORM_BWD, n_in, in, n_out, out, ints, 2,
                                  fwd->floats, 1));
  int o = 0;
  if (mask & 1) OC_RETURN_IF_ERROR(oc_grad_accumulate(gc, 0, out[o++]));
  if (mask & 2) OC_RETURN_IF_ERROR(oc_grad_accumulate_unbroadcast(gc, 1, out[o++]));
  if (mask & 4) OC_RETURN_IF_ERROR(oc_grad_accumulate_unbroadcast(gc, 2, out[o++]));
  return OC_OK;
}
