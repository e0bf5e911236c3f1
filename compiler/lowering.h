/* The lowering driver (compiler/lower.c), used by compile.c. */
#ifndef ONNXC_LOWERING_H
#define ONNXC_LOWERING_H

#include "ir.h"

/* Newest default-domain opset whose op semantics onnxc implements. */
#define OC_MAX_OPSET 17

/* Lowers the nodes that |outputs| depend on, in topological order, into
 * g->instrs. Graph input types must be resolved (no symbolic dims). */
oc_status_t oc_lower_graph(oc_graph_t *g, const int *outputs, int n_outputs,
                           uint64_t fold_limit_bytes, int mode);

/* The registered ONNX ops, for the generated op table (onnxc --list-ops). */
int oc_lower_op_count(void);
void oc_lower_op_info(int i, const char **out_domain, const char **out_name, int *out_since,
                      const char **out_dtypes);

#endif
