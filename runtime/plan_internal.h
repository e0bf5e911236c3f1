/* The runtime's view of an opened, validated plan. Private to runtime/. */
#ifndef ONNXC_PLAN_INTERNAL_H
#define ONNXC_PLAN_INTERNAL_H

#include "oc_ops.h"
#include "plan.pb-c.h"

typedef struct oc_plan_tensor_s {
  const char *name;
  int dtype;
  int rank;
  int64_t dims[OC_MAX_RANK];
  uint64_t bytes;
  int region; /* OCPLAN__REGION__* */
  uint64_t offset;
} oc_plan_tensor_t;

typedef struct oc_plan_instr_s {
  int op;
  int n_in, n_out;
  const int32_t *in;
  const int32_t *out;
  int n_ints, n_floats;
  const int64_t *ints;
  const float *floats;
  int32_t workspace; /* tensor id or -1 */
  uint64_t workspace_bytes;
  const char *node;
  /* The same operands as indices into the entry's views (-1 absent). */
  const int32_t *in_view, *out_view;
  int32_t workspace_view;
} oc_plan_instr_t;

typedef struct oc_plan_entry_s {
  const char *name;
  int n_inputs, n_outputs;
  const int32_t *inputs;
  const int32_t *outputs;
  int n_instrs;
  oc_plan_instr_t *instrs;
  uint64_t arena_bytes;
  /* The tensors the entry uses, each once: what a context binds to memory.
   * Sized by the entry, not by the plan's tensor count, so that many
   * entries over many tensors cost what their instructions hold. */
  int n_views;
  int32_t *view_tensor;   /* plan tensor id */
  uint64_t *view_offset;  /* arena offset; UINT64_MAX for constants and state */
  int32_t *view_operands; /* every instruction's in_view and out_view, packed */
  int32_t *input_views, *output_views;
  uint64_t run_cost;      /* estimated operations of one run (op_cost.h) */
  oc_tensor_info_t *input_info, *output_info;
} oc_plan_entry_t;

struct oc_plan_s {
  oc_allocator_t allocator;
  void *map; /* mmapped file, or a malloc'd copy */
  size_t map_bytes;
  int mmapped;
  uint32_t version;
  const uint8_t *constants;
  uint64_t constant_bytes;
  uint64_t state_bytes;
  Ocplan__Plan *meta;
  int n_tensors;
  oc_plan_tensor_t *tensors;
  int n_entries;
  oc_plan_entry_t *entries;
  /* Only while loading: per tensor, its arena offset in the entry being
   * loaded (UINT64_MAX: not placed) and its view index (-1: none yet). */
  uint64_t *load_offset;
  int32_t *load_view;
};

/* Per entry point: the views and call records the executor loop needs. */
typedef struct entry_exec_s {
  oc_tensor_t *tensors;     /* one per view of the entry (oc_plan_entry_t) */
  oc_tensor_t **in_ptrs;    /* all instructions' input pointers, packed */
  oc_tensor_t **out_ptrs;
  oc_op_call_t *calls;      /* one per instruction */
  int watch_nan;            /* a train step: find the first instruction making NaN */
  /* Per input: set by oc_context_set_input since another entry point last
   * ran (entry points share the arena, inputs included, so running one
   * overwrites the others'), or handed out by oc_context_input_buffer (the
   * caller's to refill). Values in runtime/context.c. */
  uint8_t *input_set;
} entry_exec_t;

struct oc_context_s {
  const oc_plan_t *plan;
  oc_allocator_t allocator;
  uint8_t *arena;
  size_t arena_bytes;
  uint8_t *state; /* plan->state_bytes: parameters, optimizer state, ... */
  entry_exec_t *exec;
  struct oc_pool_s *pool; /* the context's threads (runtime/parallel.h) */
  int last_run;           /* the entry point run last, or -1 */
  oc_communicator_t comm; /* oc_context_set_communicator; comm.size == 0: none */
};

/* Hash of the plan's state layout (names, types, offsets): a checkpoint
 * only loads into a plan with the same layout. */
uint64_t oc_plan_state_layout_hash(const oc_plan_t *plan);

#endif
