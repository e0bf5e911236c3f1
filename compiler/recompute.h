/*
 * Recomputation under a memory budget (compiler/recompute.c), for
 * --memory-budget: when the train step's arena does not fit, forward values
 * that the backward reads late are dropped after their last forward use and
 * recomputed (their producing instructions cloned, with new output values)
 * right before the backward needs them.
 */
#ifndef ONNXC_RECOMPUTE_H
#define ONNXC_RECOMPUTE_H

#include "compile.h"

/* Plans the memory of |e| (oc_memplan_run) so that its arena fits in
 * |budget_bytes|, recomputing what it must. Sets e->budget_bytes,
 * e->unbudgeted_arena_bytes, e->recompute_flops, e->step_flops, e->n_recomputed and
 * e->recompute_strategy. A clone runs the same kernel on the same input
 * values as the original, so every value, and so the losses and gradients,
 * are bit-identical to the unbudgeted plan's. Instructions that update state,
 * draw random numbers or talk to other ranks are never cloned, nor any that
 * reads state updated between the original and the clone. When no choice fits: RESOURCE_LIMIT
 * naming the smallest budget this pass can meet. */
oc_status_t oc_recompute_to_budget(oc_entry_t *e, uint64_t budget_bytes);

/* The estimated floating-point operations of one run of |ins| in |g|:
 * 2 per multiply-add for Conv, ConvTranspose, MatMul and Gemm, else one per
 * element of its largest operand. */
double oc_instr_flops(const oc_graph_t *g, const oc_instr_t *ins);

#endif
