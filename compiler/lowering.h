/* The lowering driver (compiler/lower.c), used by compile.c. */
#ifndef ONNXC_LOWERING_H
#define ONNXC_LOWERING_H

#include "ir.h"

/* Newest default-domain opset whose op semantics onnxc implements. */
#define OC_MAX_OPSET 17

/* What constant folding may spend while one graph is lowered. Folding
 * that would go over a limit is not done: the instruction stays in the
 * program and runs at run time. Ops that can only produce constants (Range,
 * EyeLike, NonZero, Constant, ...) fail with RESOURCE_LIMIT instead. */
typedef struct oc_fold_limits_s {
  /* One folded constant, plus the scratch memory its kernel needs. */
  uint64_t max_constant_bytes;
  /* Constants that lowering makes, in total. */
  uint64_t max_total_bytes;
  /* The graph's constants (initializers, attribute tensors) plus those that
   * lowering makes. */
  uint64_t max_memory_bytes;
  /* Operations (op_cost.h) the folded instructions run, in total. */
  uint64_t max_cost;
} oc_fold_limits_t;

/* Lowers the nodes that |outputs| depend on, in topological order, into
 * g->instrs. Graph input types must be resolved (no symbolic dims). */
oc_status_t oc_lower_graph(oc_graph_t *g, const int *outputs, int n_outputs,
                           const oc_fold_limits_t *limits, int mode);

/* The registered ONNX ops, for the generated op table (onnxc --list-ops). */
int oc_lower_op_count(void);
void oc_lower_op_info(int i, const char **out_domain, const char **out_name, int *out_since,
                      const char **out_dtypes);

#endif
