/*
 * The compiler's entry points: ONNX model -> plan.
 *
 *   oc_compile_*   import, resolve dims, lower (shape inference + folding),
 *                  prune to the requested outputs, plan memory.
 *   oc_plan_serialize / oc_plan_write_file
 *                  the plan bytes, or an atomically written plan file.
 *
 * Library code: returns statuses, never prints or exits.
 */
#ifndef ONNXC_COMPILE_H
#define ONNXC_COMPILE_H

#include "ir.h"

#define OC_COMPILE_MAX_DIMS 64
#define OC_COMPILE_MAX_OUTPUTS 256

typedef struct oc_compile_options_s {
  /* --dim NAME=V: values for symbolic dimensions of graph inputs. */
  int n_dims;
  const char *dim_names[OC_COMPILE_MAX_DIMS];
  int64_t dim_values[OC_COMPILE_MAX_DIMS];
  /* --output NAME: compile only what these values need (default: the
   * graph's outputs). */
  int n_outputs;
  const char *outputs[OC_COMPILE_MAX_OUTPUTS];
  /* Largest constant that folding may produce (default 64 MiB). */
  uint64_t fold_limit_bytes;
  /* Graph inputs bound to compile-time constants: the input named
   * const_input_names[i] takes the value const_input_values[i] (dtype, rank,
   * dims and data; the data is copied). Such inputs leave the plan's
   * signature and fold like initializers. */
  int n_const_inputs;
  const char *const_input_names[OC_COMPILE_MAX_OUTPUTS];
  const oc_tensor_t *const_input_values[OC_COMPILE_MAX_OUTPUTS];
} oc_compile_options_t;

void oc_compile_options_init(oc_compile_options_t *options);

/* The result of a compile: the lowered graph and its memory plan. */
typedef struct oc_compiled_s {
  oc_graph_t *graph;
  char *source; /* the model path, for the plan's metadata */
  /* Memory plan of the `embed` entry point: per value, arena offset or
   * UINT64_MAX; arena size. Filled by oc_memplan_run. */
  uint64_t *arena_offset;
  uint64_t arena_bytes;
  int *entry_inputs; /* value ids bound by the caller */
  int n_entry_inputs;
  int *entry_outputs;
  int n_entry_outputs;
} oc_compiled_t;

void oc_compiled_free(oc_compiled_t *c);

/* Compiles the ONNX model in |path| (external data is read relative to its
 * folder). |options| may be NULL. */
oc_status_t oc_compile_file(const char *path, const oc_compile_options_t *options,
                            oc_compiled_t **out);
/* Compiles a serialized ModelProto. |base_dir| is where external data lives
 * (NULL: external data is an error). |source| names the model in messages. */
oc_status_t oc_compile_memory(const void *data, size_t bytes, const char *base_dir,
                              const char *source, const oc_compile_options_t *options,
                              oc_compiled_t **out);

/* Serializes the plan into a malloc'd buffer (free() it). */
oc_status_t oc_plan_serialize(const oc_compiled_t *c, uint8_t **out, size_t *out_bytes);
/* Writes the plan to |path| atomically (temp file + rename). */
oc_status_t oc_plan_write_file(const oc_compiled_t *c, const char *path);

#endif
