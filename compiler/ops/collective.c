/*
 * Gradients of the collective ops (runtime/ops/collective.c), which the
 * compiler inserts for onnxc --ranks N (compiler/train.c, gradcache.c); no
 * ONNX op lowers to them.
 *
 * Each rank differentiates its own copy of the program; the job's objective
 * is the mean over the ranks of what each rank's program computes, which is
 * why the parameter gradients are averaged (AllReduce mean) at the end. An
 * instruction whose output on every rank depends on the input of every rank
 * then passes back the sum over the ranks of the gradients that reach it:
 *   AllGather (x -> every rank's x) ............. ReduceScatter (ranks' sum, own rows)
 *   SyncBatchNormalization (statistics summed) .. SyncBatchNormalizationBwd
 * (docs/distributed.md writes out the algebra.)
 */
#include "autodiff.h"
#include "lower.h"

oc_status_t oc_grad_allgather(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_allgather(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  if (dy[0] < 0 || !oc_grad_wants(gc, 0)) return OC_OK;
  int dx = oc_grad_temp(gc, "dx");
  if (dx < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_REDUCE_SCATTER, 1, dy, 1, &dx, fwd->ints, 1, NULL, 0));
  return oc_grad_accumulate(gc, 0, dx);
}

/* BatchNormalization's rule (compiler/ops/batchnorm.c), with the backward
 * kernel that sums over the ranks. */
oc_status_t oc_grad_batchnorm(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_sync_batchnorm(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_sync_batchnorm(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  oc_graph_t *g = oc_grad_graph(gc);
  int first = g->n_instrs;
  OC_RETURN_IF_ERROR(oc_grad_batchnorm(gc, fwd, dy));
  for (int i = first; i < g->n_instrs; i++)
    if (g->instrs[i].op == OC_OP_BATCHNORM_BWD) g->instrs[i].op = OC_OP_SYNC_BATCHNORM_BWD;
  return OC_OK;
}
