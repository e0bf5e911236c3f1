/*
 * GradCache (--micro-batch N): exact large-batch contrastive training with
 * the activation memory of a small batch (Gao et al., "Scaling Deep
 * Contrastive Learning Batch Size under Memory Limited Setup", 2021).
 *
 * The train step's forward program splits at the cut: the values where the
 * per-example encoders end and the batch-coupled loss head begins. The step
 * becomes, unrolled at compile time into the one flat program:
 *   1. for each chunk of N rows of the batch inputs: encode (the encoder
 *      lowered at batch N), keeping only the chunk's cut values; the full
 *      cut values are the chunks' joined along axis 0;
 *   2. the loss head on the full batch, and its backward down to the cut
 *      values (and the head's own parameters);
 *   3. for each chunk: encode again, keeping the activations, and
 *      backpropagate the chunk's rows of the cut gradients into the
 *      encoder's parameters; the chunks' parameter gradients are summed;
 *   4. the optimizer on the summed gradients (oc_train_update).
 * The memory planner then sees one chunk's activations live at a time.
 * Without BatchNorm the step equals the full-batch step up to float
 * rounding; training-mode BatchNorm in an encoder normalizes each chunk with
 * its own statistics (as in the GradCache paper), which the compiler reports
 * as a warning. An encoder that draws random numbers (training Dropout) is
 * an error: its two passes would see different masks.
 *
 * The cut is found by following "per-example along axis 0" from the batch
 * inputs (the graph inputs whose axis 0 is the batch) through instructions
 * that keep rows independent (elementwise with broadcast parameters,
 * MatMul/Gemm with the batch in the rows, Conv, pooling, normalization over
 * other axes, reshapes keeping axis 0, ...). The cut values are the
 * per-example values read by anything else (a product of embeddings with
 * embeddings, a Concat along axis 0, a reduction over the batch), moved back
 * to whole ONNX nodes. --cut VALUE names them instead.
 *
 * The compile runs in three calls (compile.c): oc_gradcache_cut on the
 * lowered full-batch program and a second import of the model, the lowering
 * of that import at batch N up to the cut, then oc_gradcache_build.
 */
#ifndef ONNXC_GRADCACHE_H
#define ONNXC_GRADCACHE_H

#include "train.h"

/* Finds the cut of the full-batch forward program |g| (lowered, loss value
 * |loss|) for t->micro_batch and t->cut, and prepares |micro| (the same
 * model imported with the same state and dims, not lowered): its batch
 * inputs get t->micro_batch rows. out_cut (room for OC_COMPILE_MAX_OUTPUTS)
 * receives the cut as values of |micro|, which the caller lowers next.
 * Errors: no batch input, a batch not divisible by N, no cut, a --cut name
 * that is no per-example value or does not separate the encoders from the
 * head. */
oc_status_t oc_gradcache_cut(const oc_graph_t *g, oc_graph_t *micro, int loss,
                             const oc_train_options_t *t, int *out_cut, int *out_n_cut);

/* Rewrites the forward program of |g| into the GradCache train step (the
 * steps above), with |micro| lowered up to |cut| (from oc_gradcache_cut),
 * training the state values named in |params|. *out_warnings gets a
 * malloc'd text of warning lines, or NULL. */
oc_status_t oc_gradcache_build(oc_graph_t *g, const oc_graph_t *micro, const int *cut, int n_cut,
                               int loss, const oc_train_options_t *t, const oc_name_set_t *params,
                               char **out_warnings);

/* --global-negatives (t->ranks > 1, no micro-batch; oc_gradcache_cut then
 * lowers |micro| at batch / ranks rows, one rank's): rewrites the forward
 * program of |g| so that its batch inputs hold one rank's rows, the encoders
 * (|micro| up to |cut|) run on them, and the loss head reads the cut values
 * of every rank (AllGather along axis 0, rank 0's rows first), as it reads
 * any batch input it uses directly. oc_train_build then differentiates the
 * whole (the gradient of AllGather is ReduceScatter). */
oc_status_t oc_gradcache_global(oc_graph_t *g, const oc_graph_t *micro, const int *cut, int n_cut,
                                int loss, const oc_train_options_t *t);

#endif
