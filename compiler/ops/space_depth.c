/*
 * DepthToSpace (opset 1, 11, 13: mode DCR or CRD from 11 on) and
 * SpaceToDepth (opset 1, 13) -> runtime/ops/space_depth.c. Any dtype: they
 * move data.
 */
#include <string.h>

#include "lower.h"

static oc_status_t read_blocksize(oc_lower_t *lw, int64_t *b) {
  const oc_tensor_t *x = oc_lower_input(lw, 0);
  if (!x) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input is required");
  OC_RETURN_IF_ERROR(oc_lower_attr_int(lw, "blocksize", -1, b));
  if (*b < 1)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "attribute 'blocksize' is %lld (required, >= 1)", (long long)*b);
  if (x->rank != 4)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "input has rank %d; expected (N, C, H, W)", x->rank);
  return OC_OK;
}

oc_status_t oc_lower_depth_to_space(oc_lower_t *lw);
oc_status_t oc_lower_depth_to_space(oc_lower_t *lw) {
  int64_t ints[2];
  OC_RETURN_IF_ERROR(read_blocksize(lw, &ints[0]));
  const char *mode = "DCR";
  if (lw->opset >= 11) OC_RETURN_IF_ERROR(oc_lower_attr_string(lw, "mode", "DCR", &mode));
  if (!strcmp(mode, "DCR"))
    ints[1] = 0;
  else if (!strcmp(mode, "CRD"))
    ints[1] = 1;
  else
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "attribute 'mode' is '%s'; expected DCR or CRD", mode);
  int in[1] = {oc_lower_in(lw, 0)}, out[1] = {oc_lower_out(lw, 0)};
  return oc_lower_emit(lw, OC_OP_DEPTH_TO_SPACE, 1, in, 1, out, ints, 2, NULL, 0);
}

oc_status_t oc_lower_space_to_depth(oc_lower_t *lw);
oc_status_t oc_lower_space_to_depth(oc_lower_t *lw) {
  int64_t b;
  OC_RETURN_IF_ERROR(read_blocksize(lw, &b));
  int in[1] = {oc_lower_in(lw, 0)}, out[1] = {oc_lower_out(lw, 0)};
  return oc_lower_emit(lw, OC_OP_SPACE_TO_DEPTH, 1, in, 1, out, &b, 1, NULL, 0);
}

/* --- gradients --------------------------------------------------------------- */

#include "autodiff.h"

/* Emits |op| on dY with |ints| and accumulates the result into input 0. */
static oc_status_t block_grad(oc_grad_t *gc, int op, int dy, const int64_t *ints, int n_ints) {
  int dx = oc_grad_temp(gc, "dx");
  if (dx < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  OC_RETURN_IF_ERROR(oc_grad_emit(gc, op, 1, &dy, 1, &dx, ints, n_ints, NULL, 0));
  return oc_grad_accumulate(gc, 0, dx);
}

/* DepthToSpace: its inverse permutation, SpaceToDepth with the same blocksize
 * and mode (the runtime op takes [b, mode], mode 1 inverting CRD). */
oc_status_t oc_grad_depth_to_space(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_depth_to_space(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  if (dy[0] < 0 || !oc_grad_wants(gc, 0)) return OC_OK;
  if (fwd->n_ints != 2)
    return oc_grad_error(gc, OC_STATUS_INTERNAL, "unexpected DepthToSpace instruction");
  int64_t ints[2] = {fwd->ints[0], fwd->ints[1]};
  return block_grad(gc, OC_OP_SPACE_TO_DEPTH, dy[0], ints, fwd->ints[1] ? 2 : 1);
}

/* SpaceToDepth: its inverse permutation, DepthToSpace with the same blocksize
 * (DCR, or CRD for the mode-1 form). */
oc_status_t oc_grad_space_to_depth(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_space_to_depth(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  if (dy[0] < 0 || !oc_grad_wants(gc, 0)) return OC_OK;
  if (fwd->n_ints < 1 || fwd->n_ints > 2)
    return oc_grad_error(gc, OC_STATUS_INTERNAL, "unexpected SpaceToDepth instruction");
  int64_t ints[2] = {fwd->ints[0], fwd->n_ints == 2 ? fwd->ints[1] : 0};
  return block_grad(gc, OC_OP_DEPTH_TO_SPACE, dy[0], ints, 2);
}
