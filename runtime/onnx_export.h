/* Writing a trained plan's model back to ONNX (runtime/onnx_export.c). */
#ifndef ONNXC_ONNX_EXPORT_H
#define ONNXC_ONNX_EXPORT_H

#include "oc_base.h"

/* Writes the model |plan| was compiled from (its source model), with every
 * initializer that is plan state (trained parameters, running statistics)
 * set to its value in |ctx|, to |path| atomically. */
oc_status_t oc_export_onnx(const oc_plan_t *plan, oc_context_t *ctx, const char *path);

#endif
