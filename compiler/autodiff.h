/*
 * Autodiff at compile time (ggml-style): the backward pass is emitted as
 * ordinary instructions into the same program, so the memory planner and the
 * kernels treat forward and backward alike.
 *
 * The driver (compiler/autodiff.c) walks the forward program in reverse. For
 * every instruction with a gradient on one of its outputs and an input that
 * leads to a trained parameter, it calls the op's gradient rule. A rule lives
 * next to the op's lowering in compiler/ops/<family>.c and is registered in
 * compiler/ops/grad_ops.h. A rule:
 *   - reads the forward instruction (its ints/floats, input and output values),
 *   - emits backward instructions with oc_grad_emit (runtime backward kernels
 *     live with the forward ones in runtime/ops/<family>.c),
 *   - hands each input's gradient to oc_grad_accumulate, already reduced to
 *     that input's shape (oc_grad_unbroadcast helps after broadcasting ops),
 *   - skips inputs that carry no gradient (indices, shapes, masks) and inputs
 *     for which oc_grad_wants() is false.
 * Gradients of a value used several times (shared weights, one encoder on two
 * views) are summed by the driver.
 */
#ifndef ONNXC_AUTODIFF_H
#define ONNXC_AUTODIFF_H

#include "ir.h"

typedef struct oc_grad_s oc_grad_t;

typedef oc_status_t (*oc_grad_fn)(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);

/* The rule for runtime op |op|, or NULL. */
oc_grad_fn oc_grad_find(int op);
/* Whether the ONNX op |onnx_op| lowers only to ops that have rules (for the
 * op table's gradient column). */
int oc_grad_covers_onnx_op(const char *onnx_op);

/* --- for rules --------------------------------------------------------------- */

/* The graph (value types: gc->g->values[v].type). Adding a value (a
 * temporary, a constant) may move the values array: a rule copies the
 * types it needs instead of keeping pointers into it. */
oc_graph_t *oc_grad_graph(oc_grad_t *gc);
/* Whether forward input |i| of the instruction being differentiated needs a
 * gradient (it depends on a trained parameter). */
int oc_grad_wants(const oc_grad_t *gc, int i);
/* A new temporary value. */
int oc_grad_temp(oc_grad_t *gc, const char *hint);
/* Emits a backward instruction (types inferred by the op's shape rule). The
 * outputs must be fresh values from oc_grad_temp. */
oc_status_t oc_grad_emit(oc_grad_t *gc, int op, int n_in, const int *in, int n_out, const int *out,
                         const int64_t *ints, int n_ints, const float *floats, int n_floats);
/* A float32 constant of the given shape filled with |value|. */
int oc_grad_const(oc_grad_t *gc, const char *hint, int rank, const int64_t *dims, float value);
/* Adds |grad| (same type as forward input |i|) to that input's gradient. */
oc_status_t oc_grad_accumulate(oc_grad_t *gc, int i, int grad);
/* Sums |grad| over the axes along which forward input |i| was broadcast, and
 * reshapes it to that input's shape; the result is accumulated. */
oc_status_t oc_grad_accumulate_unbroadcast(oc_grad_t *gc, int i, int grad);
/* An error naming the forward node and op. */
oc_status_t oc_grad_error(const oc_grad_t *gc, oc_status_code_t code, const char *fmt, ...)
    OC_PRINTF(3, 4);

/* --- the driver ------------------------------------------------------------------ */

/* Differentiates |loss| (a float32 value with one element) with respect to
 * |params| (n values), appending the backward instructions to g->instrs.
 * out_grads[k] receives the value holding d loss / d params[k] (a zero
 * constant when the loss does not depend on it). With |seed| >= 0, |loss|
 * may be any float32 value and |seed| (of its type) is its incoming gradient
 * (vector-Jacobian products; the gradient checks use it). */
oc_status_t oc_autodiff(oc_graph_t *g, int loss, int seed, const int *params, int n_params,
                        int *out_grads);
/* The same for several float32 values at once: seeds[j] (of values[j]'s
 * type, or -1 for ones) is the incoming gradient of values[j], and
 * out_grads[k] receives the sum of their vector-Jacobian products with
 * respect to params[k] (GradCache backpropagates one chunk's embeddings of
 * several views this way). */
oc_status_t oc_autodiff_seeds(oc_graph_t *g, int n_seeds, const int *values, const int *seeds,
                              const int *params, int n_params, int *out_grads);

#endif
