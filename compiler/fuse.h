/* Fusions on a lowered program (compiler/fuse.c): BatchNormalization with
 * constant statistics folded into the preceding Conv's constant weights;
 * Relu / Clip after a Conv made the Conv's activation; the opset-13
 * spellings of LayerNorm (ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div,
 * Mul, Add) and of GELU (Div, Erf, Add, Mul, Mul, with the bias Add before
 * it) made single LayerNormalization and Gelu instructions; scaled dot-product
 * attention (MatMul, Softmax, MatMul and the head-splitting views around
 * them) made one Attention instruction. */
#ifndef ONNXC_FUSE_H
#define ONNXC_FUSE_H

#include "ir.h"

/* Rewrites the program of |g| in place; |outputs| are the entry point's
 * outputs (never fused away). Compile-time only: for entry points that are
 * not differentiated afterwards (autodiff wants the instructions as
 * lowered). */
oc_status_t oc_fuse_program(oc_graph_t *g, const int *outputs, int n_outputs);

#endif
