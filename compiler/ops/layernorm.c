/*
 * LayerNormalization (opset 17) -> runtime/ops/layernorm.c (OC_OP_LAYERNORM),
 * ints [axis], floats [epsilon].
 *
 * stash_type must be 1 (float32 statistics). The optional outputs Mean and
 * InvStdDev are produced when asked for (InvStdDev alone gets a temporary
 * Mean). The opset-13 decomposition (ReduceMean, Sub, Pow, Sqrt, ...) is
 * made of primitive ops lowered elsewhere.
 */
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
