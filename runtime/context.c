/*
 * Contexts and the executor. A context owns one arena (sized for the largest
 * entry point) and, per entry point, the tensor views and call records the
 * executor loop needs, all allocated in oc_context_create: running an entry
 * point does not allocate.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "parallel.h"
#include "plan_internal.h"

void oc_context_options_init(oc_context_options_t *options) {
  memset(options, 0, sizeof(*options));
}

void oc_context_release(oc_context_t *ctx) {
  if (!ctx) return;
  oc_allocator_t a = ctx->allocator;
  if (ctx->exec) {
    for (int k = 0; k < ctx->plan->n_entries; k++) {
      oc_free(&a, ctx->exec[k].tensors);
      oc_free(&a, ctx->exec[k].in_ptrs);
      oc_free(&a, ctx->exec[k].out_ptrs);
      oc_free(&a, ctx->exec[k].calls);
      oc_free(&a, ctx->exec[k].input_set);
    }
    oc_free(&a, ctx->exec);
  }
  oc_pool_release(ctx->pool);
  oc_free(&a, ctx->arena);
  oc_free(&a, ctx->state);
  oc_free(&a, ctx);
}

static void *view_data(oc_context_t *ctx, const oc_plan_entry_t *e, int v) {
  const oc_plan_tensor_t *t = &ctx->plan->tensors[e->view_tensor[v]];
  switch (t->region) {
    case OCPLAN__REGION__REGION_CONSTANT: return (void *)(ctx->plan->constants + t->offset);
    case OCPLAN__REGION__REGION_STATE: return ctx->state + t->offset;
    default: return ctx->arena + e->view_offset[v];
  }
}

/* The bytes build_exec allocates for |e|. */
static uint64_t exec_bytes(const oc_plan_entry_t *e) {
  uint64_t operands = 0;
  for (int i = 0; i < e->n_instrs; i++)
    operands += (uint64_t)e->instrs[i].n_in + (uint64_t)e->instrs[i].n_out;
  return sizeof(oc_tensor_t) * ((uint64_t)e->n_views + 1) +
         sizeof(oc_tensor_t *) * (operands + 2) +
         sizeof(oc_op_call_t) * ((uint64_t)e->n_instrs + 1) + (uint64_t)e->n_inputs + 1;
}

static oc_status_t build_exec(oc_context_t *ctx, int k) {
  const oc_plan_t *plan = ctx->plan;
  const oc_plan_entry_t *e = &plan->entries[k];
  entry_exec_t *x = &ctx->exec[k];
  size_t n_in = 0, n_out = 0;
  for (int i = 0; i < e->n_instrs; i++) {
    n_in += (size_t)e->instrs[i].n_in;
    n_out += (size_t)e->instrs[i].n_out;
  }
  x->tensors = oc_alloc(&ctx->allocator, sizeof(oc_tensor_t) * (size_t)(e->n_views + 1));
  x->in_ptrs = oc_alloc(&ctx->allocator, sizeof(oc_tensor_t *) * (n_in + 1));
  x->out_ptrs = oc_alloc(&ctx->allocator, sizeof(oc_tensor_t *) * (n_out + 1));
  x->calls = oc_alloc(&ctx->allocator, sizeof(oc_op_call_t) * (size_t)(e->n_instrs + 1));
  x->input_set = oc_alloc(&ctx->allocator, (size_t)e->n_inputs + 1);
  if (!x->tensors || !x->in_ptrs || !x->out_ptrs || !x->calls || !x->input_set)
    return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory creating a context");
  for (int v = 0; v < e->n_views; v++) {
    const oc_plan_tensor_t *t = &plan->tensors[e->view_tensor[v]];
    oc_tensor_t *view = &x->tensors[v];
    view->dtype = t->dtype;
    view->rank = t->rank;
    memcpy(view->dims, t->dims, sizeof(view->dims));
    view->data = view_data(ctx, e, v);
  }
  size_t pi = 0, po = 0;
  for (int i = 0; i < e->n_instrs; i++) {
    const oc_plan_instr_t *ins = &e->instrs[i];
    if (ins->op == OC_OP_CHECK_FINITE) x->watch_nan = 1;
    oc_op_call_t *c = &x->calls[i];
    c->ints = ins->ints;
    c->n_ints = ins->n_ints;
    c->floats = ins->floats;
    c->n_floats = ins->n_floats;
    c->n_in = ins->n_in;
    c->in = &x->in_ptrs[pi];
    for (int j = 0; j < ins->n_in; j++)
      x->in_ptrs[pi++] = ins->in_view[j] < 0 ? NULL : &x->tensors[ins->in_view[j]];
    c->n_out = ins->n_out;
    c->out = &x->out_ptrs[po];
    for (int j = 0; j < ins->n_out; j++) x->out_ptrs[po++] = &x->tensors[ins->out_view[j]];
    if (ins->workspace_view >= 0) {
      c->workspace = x->tensors[ins->workspace_view].data;
      c->workspace_bytes = ins->workspace_bytes;
    }
    c->pool = ctx->pool;
  }
  return OC_OK;
}

uint64_t oc_plan_context_bytes(const oc_plan_t *plan) {
  uint64_t arena = 0, bytes = sizeof(oc_context_t) + sizeof(entry_exec_t) * (uint64_t)plan->n_entries;
  for (int k = 0; k < plan->n_entries; k++) {
    if (plan->entries[k].arena_bytes > arena) arena = plan->entries[k].arena_bytes;
    bytes += exec_bytes(&plan->entries[k]);
  }
  /* Arena and state are each at most 2^40 (validated): no overflow. */
  return bytes + arena + plan->state_bytes;
}

oc_status_t oc_context_create(const oc_plan_t *plan, const oc_context_options_t *options,
                              oc_context_t **out_context) {
  *out_context = NULL;
  if (options && options->threads < 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "threads is %d; give 0 (every core) or more",
                          options->threads);
  if (options && options->max_memory_bytes) {
    uint64_t need = oc_plan_context_bytes(plan);
    if (need > options->max_memory_bytes) {
      uint64_t arena = 0;
      for (int k = 0; k < plan->n_entries; k++)
        if (plan->entries[k].arena_bytes > arena) arena = plan->entries[k].arena_bytes;
      return oc_make_status(OC_STATUS_RESOURCE_LIMIT,
                            "a context of this plan needs %llu bytes (arena %llu, state %llu, "
                            "bookkeeping %llu); the limit is %llu "
                            "(oc_context_options_t.max_memory_bytes, onnxrun --max-memory)",
                            (unsigned long long)need, (unsigned long long)arena,
                            (unsigned long long)plan->state_bytes,
                            (unsigned long long)(need - arena - plan->state_bytes),
                            (unsigned long long)options->max_memory_bytes);
    }
  }
  oc_allocator_t a = oc_allocator_or_default(options ? &options->allocator : NULL);
  oc_context_t *ctx = oc_alloc(&a, sizeof(*ctx));
  if (!ctx) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory creating a context");
  ctx->plan = plan;
  ctx->allocator = a;
  ctx->last_run = -1;
  for (int k = 0; k < plan->n_entries; k++)
    if (plan->entries[k].arena_bytes > ctx->arena_bytes)
      ctx->arena_bytes = (size_t)plan->entries[k].arena_bytes;
  ctx->arena = oc_alloc(&a, ctx->arena_bytes ? ctx->arena_bytes : OC_ALIGNMENT);
  ctx->state = oc_alloc(&a, plan->state_bytes ? (size_t)plan->state_bytes : OC_ALIGNMENT);
  ctx->exec = oc_alloc(&a, sizeof(entry_exec_t) * (size_t)plan->n_entries);
  if (!ctx->arena || !ctx->state || !ctx->exec) {
    oc_context_release(ctx);
    return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory: the context needs %llu bytes",
                          (unsigned long long)oc_plan_context_bytes(plan));
  }
  /* State tensors start as copies of their constants. Once copied, those
   * constants are never read again by this context: drop their pages from
   * the mapping (they come back from the page cache if another context
   * needs them), so a training process does not hold its weights twice. */
  long page = sysconf(_SC_PAGESIZE);
  for (int id = 0; id < plan->n_tensors; id++) {
    const oc_plan_tensor_t *t = &plan->tensors[id];
    int32_t from = plan->meta->tensors[id]->init_from;
    if (t->region != OCPLAN__REGION__REGION_STATE || from < 0) continue;
    const uint8_t *src = plan->constants + plan->tensors[from].offset;
    memcpy(ctx->state + t->offset, src, t->bytes);
    if (plan->mmapped && page > 0) {
      uintptr_t lo = ((uintptr_t)src + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
      uintptr_t hi = ((uintptr_t)src + t->bytes) & ~((uintptr_t)page - 1);
      if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
    }
  }
  int threads = options && options->threads > 0 ? options->threads : oc_cpu_count();
  oc_status_t ps = oc_pool_create(threads, &a, &ctx->pool);
  if (ps) {
    oc_context_release(ctx);
    return ps;
  }
  for (int k = 0; k < plan->n_entries; k++) {
    oc_status_t s = build_exec(ctx, k);
    if (s) {
      oc_context_release(ctx);
      return s;
    }
  }
  *out_context = ctx;
  return OC_OK;
}

/* entry_exec_t.input_set values. */
enum { INPUT_UNSET = 0, INPUT_SET = 1, INPUT_FILLED_IN_PLACE = 2 };

static oc_status_t check_entry(const oc_context_t *ctx, int entry) {
  if (entry < 0 || entry >= ctx->plan->n_entries)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "entry point %d is out of range [0, %d)",
                          entry, ctx->plan->n_entries);
  return OC_OK;
}

/* The arena bytes of input |index| of |entry|. */
static oc_status_t input_bytes(oc_context_t *ctx, int entry, int index, void **out_data,
                               size_t *out_bytes) {
  OC_RETURN_IF_ERROR(check_entry(ctx, entry));
  const oc_plan_entry_t *e = &ctx->plan->entries[entry];
  if (index < 0 || index >= e->n_inputs)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "entry point '%s' has no input %d", e->name,
                          index);
  *out_data = ctx->exec[entry].tensors[e->input_views[index]].data;
  *out_bytes = (size_t)ctx->plan->tensors[e->inputs[index]].bytes;
  return OC_OK;
}

oc_status_t oc_context_input_buffer(oc_context_t *ctx, int entry, int index, void **out_data,
                                    size_t *out_bytes) {
  size_t bytes;
  OC_RETURN_IF_ERROR(input_bytes(ctx, entry, index, out_data, &bytes));
  if (out_bytes) *out_bytes = bytes;
  /* The caller writes this buffer whenever it likes, which the context does
   * not see: from now on the input counts as set for good. */
  ctx->exec[entry].input_set[index] = INPUT_FILLED_IN_PLACE;
  return OC_OK;
}

oc_status_t oc_context_set_input(oc_context_t *ctx, int entry, int index, const void *data,
                                 size_t bytes) {
  void *dst;
  size_t want;
  OC_RETURN_IF_ERROR(input_bytes(ctx, entry, index, &dst, &want));
  if (bytes != want) {
    const oc_plan_entry_t *e = &ctx->plan->entries[entry];
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "input '%s' takes %zu bytes, got %zu",
                          e->input_info[index].name, want, bytes);
  }
  if (bytes) memcpy(dst, data, bytes);
  if (ctx->exec[entry].input_set[index] != INPUT_FILLED_IN_PLACE)
    ctx->exec[entry].input_set[index] = INPUT_SET;
  return OC_OK;
}

static int has_nan(const oc_tensor_t *t) {
  if (t->dtype != OC_DTYPE_FLOAT32) return 0;
  const float *p = t->data;
  int64_t n = oc_tensor_numel(t);
  for (int64_t k = 0; k < n; k++)
    if (p[k] != p[k]) return 1;
  return 0;
}

/* The failure of a train step's finiteness check: name the step, and the
 * first instruction whose output held NaN (an overflow to Inf without NaN
 * is named by the check itself). */
static oc_status_t not_finite(const oc_context_t *ctx, const oc_plan_entry_t *e, oc_status_t s,
                              int first_nan) {
  int64_t step = -1;
  if (oc_context_step_count(ctx, &step) != OC_OK) step = -1;
  if (first_nan >= 0) {
    const oc_plan_instr_t *bad = &e->instrs[first_nan];
    return oc_status_wrap(s, "step %lld: the loss or a gradient is not finite; the first NaN came "
                          "from node '%s' (%s); no parameter was updated (check): ",
                          (long long)step + 1, bad->node, oc_op_get(bad->op)->name);
  }
  return oc_status_wrap(s, "step %lld: the loss or a gradient is not finite; no parameter was "
                        "updated (check): ", (long long)step + 1);
}

/* Every input of |entry| must have been set since another entry point last
 * ran: the entry points share the arena, inputs included, and a run on
 * another entry's leftovers would give wrong numbers without a word. */
static oc_status_t check_inputs_set(oc_context_t *ctx, int entry) {
  const oc_plan_entry_t *e = &ctx->plan->entries[entry];
  for (int i = 0; i < e->n_inputs; i++) {
    if (ctx->exec[entry].input_set[i]) continue;
    if (ctx->last_run >= 0 && ctx->last_run != entry)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "entry point '%s': input %d '%s' was overwritten by running entry "
                            "point '%s' (entry points share the context's working memory); set "
                            "it again with oc_context_set_input",
                            e->name, i, e->input_info[i].name,
                            ctx->plan->entries[ctx->last_run].name);
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "entry point '%s': input %d '%s' is not set (oc_context_set_input)",
                          e->name, i, e->input_info[i].name);
  }
  return OC_OK;
}

/* After a run of |entry|: the other entry points' inputs are gone. */
static void note_run(oc_context_t *ctx, int entry) {
  if (ctx->last_run == entry) return;
  for (int k = 0; k < ctx->plan->n_entries; k++) {
    if (k == entry) continue;
    uint8_t *set = ctx->exec[k].input_set;
    for (int i = 0; i < ctx->plan->entries[k].n_inputs; i++)
      if (set[i] == INPUT_SET) set[i] = INPUT_UNSET;
  }
  ctx->last_run = entry;
}

oc_status_t oc_context_run(oc_context_t *ctx, int entry) {
  OC_RETURN_IF_ERROR(check_entry(ctx, entry));
  OC_RETURN_IF_ERROR(check_inputs_set(ctx, entry));
  note_run(ctx, entry);
  const oc_plan_entry_t *e = &ctx->plan->entries[entry];
  const entry_exec_t *x = &ctx->exec[entry];
  int first_nan = -1;
  for (int i = 0; i < e->n_instrs; i++) {
    const oc_plan_instr_t *ins = &e->instrs[i];
    oc_status_t s = oc_op_get(ins->op)->run(&x->calls[i]);
    if (s && ins->op == OC_OP_CHECK_FINITE) return not_finite(ctx, e, s, first_nan);
    if (s)
      return oc_status_wrap(s, "entry point '%s', node '%s' (%s): ", e->name, ins->node,
                            oc_op_get(ins->op)->name);
    if (x->watch_nan && first_nan < 0)
      for (int k = 0; k < ins->n_out && first_nan < 0; k++)
        if (has_nan(x->calls[i].out[k])) first_nan = i;
  }
  return OC_OK;
}

oc_status_t oc_context_output(const oc_context_t *ctx, int entry, int index,
                              const void **out_data, size_t *out_bytes) {
  OC_RETURN_IF_ERROR(check_entry(ctx, entry));
  const oc_plan_entry_t *e = &ctx->plan->entries[entry];
  if (index < 0 || index >= e->n_outputs)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "entry point '%s' has no output %d", e->name,
                          index);
  *out_data = ctx->exec[entry].tensors[e->output_views[index]].data;
  if (out_bytes) *out_bytes = (size_t)ctx->plan->tensors[e->outputs[index]].bytes;
  return OC_OK;
}

oc_status_t oc_context_set_communicator(oc_context_t *ctx, const oc_communicator_t *comm) {
  if (comm && (comm->size < 1 || comm->rank < 0 || comm->rank >= comm->size))
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "communicator: rank %d of size %d; the rank must be in [0, size)",
                          comm->rank, comm->size);
  if (comm && (!comm->allreduce_sum || !comm->allgather || !comm->broadcast || !comm->barrier))
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "communicator: allreduce_sum, allgather, broadcast and barrier are "
                          "all required");
  if (comm) ctx->comm = *comm;
  else memset(&ctx->comm, 0, sizeof ctx->comm);
  const oc_communicator_t *use = comm ? &ctx->comm : NULL;
  for (int k = 0; k < ctx->plan->n_entries; k++)
    for (int i = 0; i < ctx->plan->entries[k].n_instrs; i++) ctx->exec[k].calls[i].comm = use;
  return OC_OK;
}
