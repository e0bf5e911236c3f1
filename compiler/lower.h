/*
 * Lowering: ONNX nodes -> runtime instructions, with shape inference and
 * constant folding on the way.
 *
 * Nodes are visited in topological order. Each ONNX op has a lowering
 * function (compiler/ops/<family>.c, registered in compiler/ops/onnx_ops.h)
 * that reads the node's attributes and input types, then either
 *   - emits runtime instructions with oc_lower_emit (their output types come
 *     from the runtime op's shape rule; when every input is a foldable
 *     constant the instruction runs now, at compile time, and its outputs
 *     become constants: that is constant folding), or
 *   - defines its outputs as constants directly (Shape, ConstantOfShape, ...).
 * Attributes that runtime ops take as ints (Reshape's shape, Slice's starts)
 * must be constant at compile time; lowering reads them with
 * oc_lower_const_ints and fails with a message naming the node otherwise.
 */
#ifndef ONNXC_LOWER_H
#define ONNXC_LOWER_H

#include "ir.h"

/* How an entry point sees the graph: as exported, or in inference mode
 * (training-mode BatchNormalization uses its running statistics, Dropout is
 * the identity) for the `embed` entry of a training plan. */
typedef enum oc_lower_mode_e { OC_LOWER_AS_EXPORTED = 0, OC_LOWER_EVAL = 1 } oc_lower_mode_t;

typedef struct oc_lower_s {
  oc_graph_t *g;
  const oc_node_t *node;
  int64_t opset; /* opset of the node's domain */
  oc_lower_mode_t mode;
  /* Limit on the bytes one folded constant (and its kernel's scratch) may
   * take; larger results stay run-time instructions. */
  uint64_t fold_limit_bytes;
  /* The budgets shared by the whole lowering (lowering.h's
   * oc_fold_limits_t and what is spent), or NULL: only fold_limit_bytes. */
  struct oc_fold_budget_s *budget;
} oc_lower_t;

typedef oc_status_t (*oc_lower_fn)(oc_lower_t *lw);

/* The lowering function for (domain, op_type), or NULL. */
oc_lower_fn oc_lower_find(const char *domain, const char *op_type);

/* --- reading the node ------------------------------------------------------ */

/* Value index of the node's input/output |i| (-1 when absent or past the end). */
int oc_lower_in(const oc_lower_t *lw, int i);
int oc_lower_out(const oc_lower_t *lw, int i);
/* The type (and, for constants, data) of input |i|, or NULL when absent. */
const oc_tensor_t *oc_lower_input(const oc_lower_t *lw, int i);
/* Whether input |i| is present and a foldable compile-time constant. */
int oc_lower_input_is_const(const oc_lower_t *lw, int i);
/* Reads a constant int64/int32 input as int64s (up to |max|). Error naming the
 * node and input when it is not a compile-time constant. */
oc_status_t oc_lower_const_ints(const oc_lower_t *lw, int i, int64_t *out, int max, int *out_n);
/* Reads a constant scalar (or 1-element) float/int input as double. */
oc_status_t oc_lower_const_scalar(const oc_lower_t *lw, int i, double *out);

/* Attributes; defaults when absent; an attribute of the wrong type is an error. */
oc_status_t oc_lower_attr_int(const oc_lower_t *lw, const char *name, int64_t dflt, int64_t *out);
oc_status_t oc_lower_attr_float(const oc_lower_t *lw, const char *name, float dflt, float *out);
/* String attribute, or |dflt| (not copied). */
oc_status_t oc_lower_attr_string(const oc_lower_t *lw, const char *name, const char *dflt,
                                 const char **out);
/* INTS attribute: *out_n = -1 when absent. */
oc_status_t oc_lower_attr_ints(const oc_lower_t *lw, const char *name, const int64_t **out,
                               int *out_n);

/* --- producing results ----------------------------------------------------- */

/* Emits runtime op |op| with inputs |in| and outputs |out| (value indices).
 * Infers the output types with the op's shape rule (errors name the node);
 * folds when every present input is a foldable constant. */
oc_status_t oc_lower_emit(oc_lower_t *lw, int op, int n_in, const int *in, int n_out,
                          const int *out, const int64_t *ints, int n_ints, const float *floats,
                          int n_floats);
/* A new temporary value for multi-instruction lowerings. */
int oc_lower_temp(oc_lower_t *lw, const char *hint);
/* A new persistent state value (kind OC_VALUE_STATE): lives as long as the
 * context, starts as a copy of |init| (zeros when NULL), and may be updated
 * in place by ops that declare it in oc_op_def_t.mutates (an RNG counter,
 * running statistics). */
int oc_lower_state(oc_lower_t *lw, const char *hint, int dtype, int rank, const int64_t *dims,
                   const void *init);
/* Defines output value |v| as a compile-time constant. */
oc_status_t oc_lower_set_const(oc_lower_t *lw, int v, int dtype, int rank, const int64_t *dims,
                               const void *data);
/* Makes output |out_v| carry the same bytes as |in_v| with dims |dims|:
 * emits a Copy (reshape family). */
oc_status_t oc_lower_reshape(oc_lower_t *lw, int in_v, int out_v, int rank, const int64_t *dims);

/* Appends instruction |op| to |g| without folding, inferring the types of the
 * fresh output values (compiler passes after lowering: autodiff, the train
 * step). Errors name |node|. */
oc_status_t oc_emit_instr(oc_graph_t *g, const char *node, int op, int n_in, const int *in,
                          int n_out, const int *out, const int64_t *ints, int n_ints,
                          const float *floats, int n_floats);

/* Error helpers: a status whose message starts with the node's name and op. */
oc_status_t oc_lower_error(const oc_lower_t *lw, oc_status_code_t code, const char *fmt, ...)
    OC_PRINTF(3, 4);

#endif
