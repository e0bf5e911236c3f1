/*
 * The runtime refuses plans over the limits of runtime/plan_format.h (an
 * arena or a state over OC_PLAN_MAX_ARENA_BYTES, too many tensors or
 * instructions). A model can ask for that (--dim batch=2^36, a huge
 * Expand): the compiler says so with RESOURCE_LIMIT instead of writing a
 * plan that no runtime opens. The counts follow compiler/plan_writer.c:
 * an entry's tensors are the values its signature and instructions use;
 * constants and state are shared between entries by name, and every state
 * tensor also has a constant holding its initial value.
 */
#include <stdlib.h>
#include <string.h>

#include "plan_format.h"
#include "plan_limits.h"

oc_status_t oc_check_entry_limits(const oc_entry_t *e) {
  if (e->arena_bytes > OC_PLAN_MAX_ARENA_BYTES)
    return oc_make_status(OC_STATUS_RESOURCE_LIMIT,
                          "entry point '%s' needs an arena of %llu bytes; the runtime accepts at "
                          "most %llu bytes (2^40) per entry point (the model's tensors are too large; "
                          "smaller --dim values make them smaller)",
                          e->name, (unsigned long long)e->arena_bytes,
                          (unsigned long long)OC_PLAN_MAX_ARENA_BYTES);
  if (e->graph->n_instrs > OC_PLAN_MAX_INSTRUCTIONS)
    return oc_make_status(OC_STATUS_RESOURCE_LIMIT,
                          "entry point '%s' has %d instructions; the runtime accepts at most %d",
                          e->name, e->graph->n_instrs, OC_PLAN_MAX_INSTRUCTIONS);
  return OC_OK;
}

typedef struct named_s {
  const char *name;
  uint64_t bytes;
  int state;
} named_t;

static int by_name(const void *a, const void *b) {
  const named_t *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  return c ? c : x->state - y->state;
}

oc_status_t oc_check_plan_limits(const oc_compiled_t *c) {
  size_t cap = 0;
  for (int k = 0; k < c->n_entries; k++) cap += (size_t)c->entries[k].graph->n_values;
  named_t *shared = malloc(sizeof(named_t) * (cap + 1));
  if (!shared) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  size_t n_shared = 0;
  uint64_t tensors = c->source_model.type.data ? 1 : 0;
  for (int k = 0; k < c->n_entries; k++) {
    const oc_entry_t *e = &c->entries[k];
    const oc_graph_t *g = e->graph;
    char *used = calloc((size_t)g->n_values + 1, 1);
    if (!used) {
      free(shared);
      return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
    }
    for (int i = 0; i < e->n_inputs; i++) used[e->inputs[i]] = 1;
    for (int i = 0; i < e->n_outputs; i++) used[e->outputs[i]] = 1;
    for (int i = 0; i < g->n_instrs; i++) {
      const oc_instr_t *ins = &g->instrs[i];
      for (int j = 0; j < ins->n_in; j++)
        if (ins->in[j] >= 0) used[ins->in[j]] = 1;
      for (int j = 0; j < ins->n_out; j++)
        if (ins->out[j] >= 0) used[ins->out[j]] = 1;
      if (ins->workspace >= 0) used[ins->workspace] = 1;
    }
    for (int v = 0; v < g->n_values; v++) {
      if (!used[v]) continue;
      const oc_value_t *val = &g->values[v];
      if (val->kind == OC_VALUE_CONST || val->kind == OC_VALUE_STATE)
        shared[n_shared++] = (named_t){val->name, oc_align_up(oc_tensor_bytes(&val->type),
                                                              OC_ALIGNMENT),
                                       val->kind == OC_VALUE_STATE};
      else
        tensors++;
    }
    free(used);
  }
  qsort(shared, n_shared, sizeof(named_t), by_name);
  uint64_t state = 0;
  for (size_t i = 0; i < n_shared; i++) {
    if (i > 0 && by_name(&shared[i - 1], &shared[i]) == 0) continue;
    tensors += shared[i].state ? 2 : 1;
    if (shared[i].state) state += shared[i].bytes; /* each < 2^41: no overflow */
  }
  free(shared);
  if (state > OC_PLAN_MAX_ARENA_BYTES)
    return oc_make_status(OC_STATUS_RESOURCE_LIMIT,
                          "the plan's state (parameters, optimizer state, queues) needs %llu "
                          "bytes; the runtime accepts at most %llu bytes (2^40)",
                          (unsigned long long)state, (unsigned long long)OC_PLAN_MAX_ARENA_BYTES);
  if (tensors > OC_PLAN_MAX_TENSORS)
    return oc_make_status(OC_STATUS_RESOURCE_LIMIT,
                          "the plan would hold %llu tensors; the runtime accepts at most %d",
                          (unsigned long long)tensors, OC_PLAN_MAX_TENSORS);
  return OC_OK;
}
