/* ONNX import into the IR (compiler/onnx_import.c). */
#ifndef ONNXC_IMPORT_H
#define ONNXC_IMPORT_H

#include "ir.h"

typedef struct oc_import_limits_s {
  uint64_t max_nodes;       /* default 2^20 */
  uint64_t max_total_bytes; /* initializers in total; default 16 GiB */
  int max_depth;            /* message nesting (onnx_wire.h); default 100 */
} oc_import_limits_t;

void oc_import_limits_init(oc_import_limits_t *limits);

/* Decodes a serialized ModelProto into a new graph: opset, initializers (raw
 * and typed fields, external data under |base_dir|), graph inputs (those that
 * are also initializers become constants), nodes with attributes (TENSOR
 * attributes become constant values), outputs. No shapes are inferred here.
 * |limits| may be NULL. */
oc_status_t oc_import_model(const void *data, size_t bytes, const char *base_dir,
                            const oc_import_limits_t *limits, oc_graph_t **out);

/* The model with the values of the initializers named in |omit| left out
 * and every other initializer inlined as raw_data: what a training plan
 * keeps so that `onnxrun --export-onnx` can write the trained model. */
oc_status_t oc_import_model_skeleton(const void *data, size_t bytes, const char *base_dir,
                                     const char *const *omit, int n_omit, uint8_t **out,
                                     size_t *out_bytes);

#endif
