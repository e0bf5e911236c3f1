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

#define OC_COMPILE_MAX_PATTERNS 64

typedef enum oc_optimizer_kind_e {
  OC_OPTIMIZER_SGD = 0,
  OC_OPTIMIZER_ADAM = 1,
  OC_OPTIMIZER_ADAMW = 2,
  OC_OPTIMIZER_LARS = 3,
} oc_optimizer_kind_t;

typedef enum oc_schedule_kind_e {
  OC_SCHEDULE_CONSTANT = 0,
  OC_SCHEDULE_COSINE = 1, /* linear warmup, then cosine decay to 0 */
} oc_schedule_kind_t;

/* --train: what the train_step entry point differentiates and how it updates. */
typedef struct oc_train_options_s {
  int enabled;
  const char *loss; /* default: the first graph output */
  /* Values the plan's `embed` entry returns (default: the graph outputs other
   * than the loss). */
  int n_embed_outputs;
  const char *embed_outputs[OC_COMPILE_MAX_OUTPUTS];
  /* POSIX extended regexes matched against whole initializer names. */
  int n_freeze, n_trainable;
  const char *freeze[OC_COMPILE_MAX_PATTERNS];
  const char *trainable[OC_COMPILE_MAX_PATTERNS];
  oc_optimizer_kind_t optimizer;
  float lr, momentum, dampening, weight_decay;
  int nesterov;
  float beta1, beta2, eps;  /* Adam, AdamW (eps also LARS) */
  float trust_coefficient;  /* LARS */
  oc_schedule_kind_t schedule;
  int64_t warmup_steps, total_steps;
  /* --batch N: scale the learning rate by N / 256 (SimCLR's rule); 0: off. */
  int64_t batch;
  /* --ema DST=SRC:M: initializers named DST... are frozen and, after each
   * step, become m * dst + (1 - m) * src (MoCo's key encoder). */
  int n_ema;
  const char *ema_dst[OC_COMPILE_MAX_PATTERNS], *ema_src[OC_COMPILE_MAX_PATTERNS];
  float ema_m[OC_COMPILE_MAX_PATTERNS];
  /* --queue INPUT=VALUE:AXIS: graph input INPUT is persistent state (a ring
   * buffer along AXIS); after each step VALUE overwrites its oldest entries. */
  int n_queue;
  const char *queue_input[OC_COMPILE_MAX_PATTERNS], *queue_value[OC_COMPILE_MAX_PATTERNS];
  int queue_axis[OC_COMPILE_MAX_PATTERNS];
  /* --clamp NAME=MIN,MAX: after each step, clamp initializer NAME. */
  int n_clamp;
  const char *clamp_name[OC_COMPILE_MAX_PATTERNS];
  float clamp_min[OC_COMPILE_MAX_PATTERNS], clamp_max[OC_COMPILE_MAX_PATTERNS];
  /* --micro-batch N: GradCache (compiler/gradcache.h): the per-example
   * encoders run in chunks of N rows, twice (without, then with their
   * activations kept), around the full-batch loss head; 0: off. */
  int64_t micro_batch;
  /* --cut VALUE: where the encoders end (default: found automatically). */
  int n_cut;
  const char *cut[OC_COMPILE_MAX_OUTPUTS];
  /* --ranks N: the train step of one of N data-parallel ranks
   * (docs/distributed.md): the model's batch (axis 0 of its batch inputs) is
   * the global batch, each rank runs batch / N rows of it and the gradients
   * are averaged across the ranks (AllReduce); 0 or 1: one process. */
  int64_t ranks;
  /* --global-negatives: at the GradCache cut (the values where the
   * per-example encoders end), the loss head runs on the embeddings of every
   * rank (AllGather): the step equals the one-process step on the global
   * batch. */
  int global_negatives;
  /* --sync-bn: training-mode BatchNormalization uses the statistics of the
   * global batch (SyncBatchNormalization). */
  int sync_bn;
} oc_train_options_t;

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
  oc_train_options_t train;
  /* Resource limits (SECURITY.md), each per entry point; 0 takes the
   * default. Folding that would exceed max_fold_bytes, max_memory_bytes or
   * max_fold_cost is not done: the instruction runs at run time. */
  uint64_t max_memory_bytes; /* initializers and folded constants in total (16 GiB) */
  uint64_t max_fold_bytes;   /* constants made by folding, in total (1 GiB) */
  uint64_t max_fold_cost;    /* operations (op_cost.h) folding runs, in total (2^33) */
  uint64_t max_nodes;        /* ONNX nodes in the graph (2^20) */
  int max_depth;             /* message nesting of the model file (100, at most 1000) */
  /* --memory-budget: the train step's arena must fit in this many bytes,
   * recomputing activations if it must (compiler/recompute.h); 0: none. */
  uint64_t memory_budget_bytes;
} oc_compile_options_t;

/* The defaults of the resource limits above, and of fold_limit_bytes. */
#define OC_COMPILE_DEFAULT_FOLD_LIMIT_BYTES ((uint64_t)64 << 20)
#define OC_COMPILE_DEFAULT_MAX_MEMORY_BYTES ((uint64_t)16 << 30)
#define OC_COMPILE_DEFAULT_MAX_FOLD_BYTES ((uint64_t)1 << 30)
#define OC_COMPILE_DEFAULT_MAX_FOLD_COST ((uint64_t)1 << 33)
#define OC_COMPILE_DEFAULT_MAX_NODES ((uint64_t)1 << 20)

void oc_compile_options_init(oc_compile_options_t *options);

/* One entry point of the plan: its own lowered program (a graph) and memory
 * plan. Entries share constants and persistent state by value name. */
typedef struct oc_entry_s {
  char name[32]; /* "embed", "train_step" */
  oc_graph_t *graph;
  /* Memory plan (oc_memplan_run): per value, arena offset or UINT64_MAX, and
   * the input whose bytes it reuses in place (or -1). */
  uint64_t *arena_offset;
  int *inplace_of;
  uint64_t arena_bytes;
  uint64_t lower_bound_bytes; /* the busiest step's live bytes */
  int peak_step;
  const char *strategy;       /* which placement won */
  int *inputs; /* value ids bound by the caller */
  int n_inputs;
  int *outputs;
  int n_outputs;
  /* --memory-budget (compiler/recompute.c): the budget (0: none), the arena
   * without it, the estimated floating-point operations per run spent
   * recomputing, those of
   * the program before recomputation, the instructions cloned, and the
   * choice of what to recompute that won. */
  uint64_t budget_bytes;
  uint64_t unbudgeted_arena_bytes;
  uint64_t recompute_flops;
  uint64_t step_flops;
  int n_recomputed;
  const char *recompute_strategy;
  /* For comparison: the operations of the cheapest of Chen et al.'s choices
   * (sqrt(n) and greedy segments) that fit, by the lower bound; -1: none. */
  int64_t chen_recompute_flops;
} oc_entry_t;

#define OC_COMPILE_MAX_ENTRIES 4

/* The result of a compile: its entry points. */
typedef struct oc_compiled_s {
  char *source; /* the model path, for the plan's metadata */
  int n_entries;
  oc_entry_t entries[OC_COMPILE_MAX_ENTRIES];
  /* Training plans: the model without its state initializers' values (a
   * uint8 constant "onnx:source_model"), for export; kind 0 when absent. */
  oc_value_t source_model;
  /* What the compile did that the user should know (one line each, '\n'
   * ended; e.g. BatchNorm statistics per micro-batch), or NULL. */
  char *warnings;
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
