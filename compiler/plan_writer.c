/*
 * The plan writer: compiled graph -> plan bytes (runtime/plan_format.h for the
 * layout, schemas/plan.proto for the metadata).
 */
#include <stdlib.h>
#include <string.h>

#include "compile.h"
#include "plan.pb-c.h"
#include "plan_format.h"
#include "tensor_file.h"

#define OC_PRODUCER "onnxc " ONNXC_VERSION_STRING
#ifndef ONNXC_VERSION_STRING
#define ONNXC_VERSION_STRING "0.1.0"
#endif

static void wr32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void wr64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

typedef struct writer_s {
  const oc_compiled_t *c;
  int *tensor_of;     /* value -> tensor id, -1 */
  int *value_of;      /* tensor id -> value */
  int n_tensors;
  uint64_t *const_offset; /* per tensor id, for constants */
  uint64_t const_bytes;
  uint64_t state_bytes;
} writer_t;

static int use_value(writer_t *w, int v) {
  if (v < 0) return -1;
  if (w->tensor_of[v] < 0) {
    w->tensor_of[v] = w->n_tensors;
    w->value_of[w->n_tensors++] = v;
  }
  return w->tensor_of[v];
}

oc_status_t oc_plan_serialize(const oc_compiled_t *c, uint8_t **out, size_t *out_bytes) {
  *out = NULL;
  *out_bytes = 0;
  const oc_graph_t *g = c->graph;
  oc_status_t s = OC_OK;
  writer_t w = {.c = c};
  w.tensor_of = malloc(sizeof(int) * (size_t)(g->n_values + 1));
  w.value_of = malloc(sizeof(int) * (size_t)(g->n_values + 1));
  /* Each state value adds a second tensor: the constant it starts from. */
  size_t max_tensors = 2 * (size_t)g->n_values + 1;
  w.const_offset = calloc(max_tensors, sizeof(uint64_t));
  Ocplan__Tensor *tensors = calloc(max_tensors, sizeof(Ocplan__Tensor));
  Ocplan__Tensor **tensor_ptrs = calloc(max_tensors, sizeof(Ocplan__Tensor *));
  int64_t *dims = calloc(max_tensors * OC_MAX_RANK, sizeof(int64_t));
  int *init_value = calloc(max_tensors, sizeof(int)); /* tensor id -> value whose data it holds */
  Ocplan__Instruction *instrs = calloc((size_t)g->n_instrs + 1, sizeof(Ocplan__Instruction));
  Ocplan__Instruction **instr_ptrs = calloc((size_t)g->n_instrs + 1, sizeof(Ocplan__Instruction *));
  int32_t *ids = NULL;
  size_t n_ids = 0;
  for (int i = 0; i < g->n_instrs; i++) n_ids += (size_t)(g->instrs[i].n_in + g->instrs[i].n_out);
  ids = malloc(sizeof(int32_t) * (n_ids + (size_t)c->n_entry_inputs + (size_t)c->n_entry_outputs + 1));
  int32_t *arena_ids = malloc(sizeof(int32_t) * (size_t)(g->n_values + 1));
  uint64_t *arena_offs = malloc(sizeof(uint64_t) * (size_t)(g->n_values + 1));
  uint8_t *buf = NULL;
  if (!w.tensor_of || !w.value_of || !w.const_offset || !tensors || !tensor_ptrs || !dims ||
      !init_value || !instrs || !instr_ptrs || !ids || !arena_ids || !arena_offs) {
    s = oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory writing the plan");
    goto done;
  }
  for (int v = 0; v < g->n_values; v++) w.tensor_of[v] = -1;

  /* Tensor ids in first-use order: entry inputs, then instruction operands. */
  size_t pos = 0;
  int32_t *entry_in = ids + pos;
  for (int k = 0; k < c->n_entry_inputs; k++) ids[pos++] = use_value(&w, c->entry_inputs[k]);
  for (int i = 0; i < g->n_instrs; i++) {
    const oc_instr_t *ins = &g->instrs[i];
    Ocplan__Instruction *pi = &instrs[i];
    ocplan__instruction__init(pi);
    pi->op = ins->op;
    pi->has_op = 1;
    pi->inputs = ids + pos;
    pi->n_inputs = (size_t)ins->n_in;
    for (int k = 0; k < ins->n_in; k++) ids[pos++] = use_value(&w, ins->in[k]);
    pi->outputs = ids + pos;
    pi->n_outputs = (size_t)ins->n_out;
    for (int k = 0; k < ins->n_out; k++) ids[pos++] = use_value(&w, ins->out[k]);
    pi->ints = ins->ints;
    pi->n_ints = (size_t)ins->n_ints;
    pi->floats = ins->floats;
    pi->n_floats = (size_t)ins->n_floats;
    pi->has_workspace = 1;
    pi->workspace = ins->workspace >= 0 ? use_value(&w, ins->workspace) : -1;
    pi->node = ins->node;
    instr_ptrs[i] = pi;
  }
  int32_t *entry_out = ids + pos;
  for (int k = 0; k < c->n_entry_outputs; k++) ids[pos++] = use_value(&w, c->entry_outputs[k]);

  /* Tensors; constants laid out 64-byte aligned in the constant section. */
  size_t n_arena = 0;
  int n_value_tensors = w.n_tensors;
  for (int t = 0; t < n_value_tensors; t++) {
    int v = w.value_of[t];
    const oc_value_t *val = &g->values[v];
    Ocplan__Tensor *pt = &tensors[t];
    ocplan__tensor__init(pt);
    pt->name = val->name;
    pt->has_dtype = 1;
    pt->dtype = val->type.dtype;
    pt->n_dims = (size_t)val->type.rank;
    pt->dims = dims + (size_t)t * OC_MAX_RANK;
    memcpy(pt->dims, val->type.dims, sizeof(int64_t) * (size_t)val->type.rank);
    pt->has_region = 1;
    init_value[t] = -1;
    if (val->kind == OC_VALUE_CONST) {
      pt->region = OCPLAN__REGION__REGION_CONSTANT;
      init_value[t] = v;
      w.const_offset[t] = w.const_bytes;
      pt->has_offset = 1;
      pt->offset = w.const_bytes;
      w.const_bytes = oc_align_up(w.const_bytes + oc_tensor_bytes(&val->type), OC_ALIGNMENT);
    } else if (val->kind == OC_VALUE_STATE) {
      /* State: a slot in the per-context state region, initialized from a
       * constant copy of its starting value. */
      pt->region = OCPLAN__REGION__REGION_STATE;
      pt->has_offset = 1;
      pt->offset = w.state_bytes;
      w.state_bytes = oc_align_up(w.state_bytes + oc_tensor_bytes(&val->type), OC_ALIGNMENT);
      int it = w.n_tensors++;
      Ocplan__Tensor *init = &tensors[it];
      ocplan__tensor__init(init);
      init->name = val->name;
      init->has_dtype = 1;
      init->dtype = val->type.dtype;
      init->n_dims = pt->n_dims;
      init->dims = pt->dims;
      init->has_region = 1;
      init->region = OCPLAN__REGION__REGION_CONSTANT;
      init->has_offset = 1;
      init->offset = w.const_bytes;
      init_value[it] = v;
      w.const_offset[it] = w.const_bytes;
      w.const_bytes = oc_align_up(w.const_bytes + oc_tensor_bytes(&val->type), OC_ALIGNMENT);
      pt->has_init_from = 1;
      pt->init_from = it;
      tensor_ptrs[it] = init;
    } else {
      pt->region = OCPLAN__REGION__REGION_ARENA;
      if (c->arena_offset[v] == UINT64_MAX) {
        s = oc_make_status(OC_STATUS_INTERNAL, "value '%s' has no arena placement", val->name);
        goto done;
      }
      arena_ids[n_arena] = t;
      arena_offs[n_arena++] = c->arena_offset[v];
    }
    tensor_ptrs[t] = pt;
  }

  Ocplan__EntryPoint entry = OCPLAN__ENTRY_POINT__INIT;
  Ocplan__EntryPoint *entry_ptr = &entry;
  entry.name = "embed";
  entry.inputs = entry_in;
  entry.n_inputs = (size_t)c->n_entry_inputs;
  entry.outputs = entry_out;
  entry.n_outputs = (size_t)c->n_entry_outputs;
  entry.instructions = instr_ptrs;
  entry.n_instructions = (size_t)g->n_instrs;
  entry.has_arena_bytes = 1;
  entry.arena_bytes = c->arena_bytes;
  entry.arena_tensors = arena_ids;
  entry.n_arena_tensors = n_arena;
  entry.arena_offsets = arena_offs;
  entry.n_arena_offsets = n_arena;

  Ocplan__Plan plan = OCPLAN__PLAN__INIT;
  plan.producer = OC_PRODUCER;
  plan.source = c->source;
  plan.has_opset = 1;
  plan.opset = g->opset;
  plan.tensors = tensor_ptrs;
  plan.n_tensors = (size_t)w.n_tensors;
  plan.entries = &entry_ptr;
  plan.n_entries = 1;
  plan.has_constant_bytes = 1;
  plan.constant_bytes = w.const_bytes;
  plan.has_state_bytes = 1;
  plan.state_bytes = w.state_bytes;

  size_t meta_bytes = ocplan__plan__get_packed_size(&plan);
  uint64_t meta_off = OC_PLAN_HEADER_BYTES;
  uint64_t data_off = oc_align_up(meta_off + meta_bytes, OC_ALIGNMENT);
  uint64_t total = data_off + w.const_bytes;
  buf = calloc(1, (size_t)total);
  if (!buf) {
    s = oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory: the plan is %llu bytes",
                       (unsigned long long)total);
    goto done;
  }
  ocplan__plan__pack(&plan, buf + meta_off);
  for (int t = 0; t < w.n_tensors; t++) {
    if (init_value[t] < 0) continue;
    const oc_value_t *val = &g->values[init_value[t]];
    memcpy(buf + data_off + w.const_offset[t], val->type.data, oc_tensor_bytes(&val->type));
  }
  memcpy(buf, OC_PLAN_MAGIC, 8);
  wr32(buf + OC_PLAN_OFF_VERSION, OC_PLAN_FORMAT_VERSION);
  wr32(buf + OC_PLAN_OFF_HEADER_BYTES, OC_PLAN_HEADER_BYTES);
  wr64(buf + OC_PLAN_OFF_FILE_BYTES, total);
  wr64(buf + OC_PLAN_OFF_META_OFFSET, meta_off);
  wr64(buf + OC_PLAN_OFF_META_BYTES, meta_bytes);
  wr64(buf + OC_PLAN_OFF_DATA_OFFSET, data_off);
  wr64(buf + OC_PLAN_OFF_DATA_BYTES, w.const_bytes);
  wr64(buf + OC_PLAN_OFF_META_HASH, oc_hash64(buf + meta_off, meta_bytes, OC_PLAN_HASH_SEED));
  wr64(buf + OC_PLAN_OFF_DATA_HASH, oc_hash64(buf + data_off, w.const_bytes, OC_PLAN_HASH_SEED));
  wr64(buf + OC_PLAN_OFF_HEADER_HASH, oc_hash64(buf, OC_PLAN_OFF_HEADER_HASH, OC_PLAN_HASH_SEED));
  *out = buf;
  *out_bytes = (size_t)total;
  buf = NULL;
done:
  free(buf);
  free(w.tensor_of);
  free(w.value_of);
  free(w.const_offset);
  free(tensors);
  free(tensor_ptrs);
  free(dims);
  free(init_value);
  free(instrs);
  free(instr_ptrs);
  free(ids);
  free(arena_ids);
  free(arena_offs);
  return s;
}

oc_status_t oc_plan_write_file(const oc_compiled_t *c, const char *path) {
  uint8_t *buf = NULL;
  size_t n = 0;
  OC_RETURN_IF_ERROR(oc_plan_serialize(c, &buf, &n));
  oc_status_t s = oc_file_write_atomic(path, buf, n);
  free(buf);
  return s;
}
