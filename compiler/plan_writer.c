/*
 * The plan writer: compiled entry points -> plan bytes (runtime/plan_format.h
 * for the layout, schemas/plan.proto for the metadata).
 *
 * Tensors: every value an entry point touches becomes a plan tensor.
 * Constants and persistent state are shared between entry points by value
 * name (both entries of a training plan read the same parameters); run-time
 * values belong to their entry point's arena.
 */
#include <stdlib.h>
#include <string.h>

#include "compile.h"
#include "plan.pb-c.h"
#include "plan_format.h"
#include "tensor_file.h"

#ifndef ONNXC_VERSION_STRING
#define ONNXC_VERSION_STRING "0.2.0"
#endif


/* One plan tensor under construction. */
typedef struct ptensor_s {
  const oc_value_t *value; /* type, name, and the data of constants */
  int region;
  uint64_t offset;
  int init_from; /* state: tensor id of its initial value */
  int data_of_init; /* 1: this constant holds value->type.data as a state's start */
} ptensor_t;

typedef struct writer_s {
  ptensor_t *t;
  int n, cap;
  uint64_t const_bytes, state_bytes;
  int *entry_map; /* value -> tensor id for the entry being written */
  int failed;     /* out of memory while adding tensors */
} writer_t;

static int add_tensor(writer_t *w, const oc_value_t *v, int region) {
  if (w->n == w->cap) {
    int cap = w->cap ? w->cap * 2 : 256;
    ptensor_t *nt = realloc(w->t, sizeof(ptensor_t) * (size_t)cap);
    if (!nt) {
      w->failed = 1;
      return -1;
    }
    w->t = nt;
    w->cap = cap;
  }
  ptensor_t *t = &w->t[w->n];
  memset(t, 0, sizeof *t);
  t->value = v;
  t->region = region;
  t->init_from = -1;
  uint64_t bytes = oc_tensor_bytes(&v->type);
  if (region == OCPLAN__REGION__REGION_CONSTANT) {
    t->offset = w->const_bytes;
    w->const_bytes = oc_align_up(w->const_bytes + bytes, OC_ALIGNMENT);
  } else if (region == OCPLAN__REGION__REGION_STATE) {
    t->offset = w->state_bytes;
    w->state_bytes = oc_align_up(w->state_bytes + bytes, OC_ALIGNMENT);
  }
  return w->n++;
}

/* The tensor id of value |v| of |g|, adding it on first use. */
static int use_value(writer_t *w, const oc_graph_t *g, int v) {
  if (v < 0) return -1;
  if (w->entry_map[v] >= 0) return w->entry_map[v];
  const oc_value_t *val = &g->values[v];
  int id = -1;
  if (val->kind == OC_VALUE_CONST || val->kind == OC_VALUE_STATE) {
    int region = val->kind == OC_VALUE_CONST ? OCPLAN__REGION__REGION_CONSTANT
                                             : OCPLAN__REGION__REGION_STATE;
    for (int k = 0; k < w->n && id < 0; k++)
      if (w->t[k].region == region && !w->t[k].data_of_init &&
          strcmp(w->t[k].value->name, val->name) == 0)
        id = k;
    if (id < 0) {
      id = add_tensor(w, val, region);
      if (id >= 0 && region == OCPLAN__REGION__REGION_STATE) {
        int init = add_tensor(w, val, OCPLAN__REGION__REGION_CONSTANT);
        if (init < 0) return -1;
        w->t[init].data_of_init = 1;
        w->t[id].init_from = init;
      }
    }
  } else {
    id = add_tensor(w, val, OCPLAN__REGION__REGION_ARENA);
  }
  w->entry_map[v] = id;
  return id;
}

typedef struct entry_buf_s {
  Ocplan__EntryPoint ep;
  Ocplan__Instruction *instrs;
  Ocplan__Instruction **instr_ptrs;
  int32_t *ids;
  int32_t *arena_ids;
  uint64_t *arena_offs;
} entry_buf_t;

static void free_entry_buf(entry_buf_t *b) {
  free(b->instrs);
  free(b->instr_ptrs);
  free(b->ids);
  free(b->arena_ids);
  free(b->arena_offs);
}

static oc_status_t build_entry(writer_t *w, const oc_entry_t *e, entry_buf_t *b) {
  const oc_graph_t *g = e->graph;
  free(w->entry_map);
  w->entry_map = malloc(sizeof(int) * (size_t)(g->n_values + 1));
  size_t n_ids = (size_t)e->n_inputs + (size_t)e->n_outputs;
  for (int i = 0; i < g->n_instrs; i++) n_ids += (size_t)(g->instrs[i].n_in + g->instrs[i].n_out);
  b->ids = malloc(sizeof(int32_t) * (n_ids + 1));
  b->instrs = calloc((size_t)g->n_instrs + 1, sizeof(Ocplan__Instruction));
  b->instr_ptrs = calloc((size_t)g->n_instrs + 1, sizeof(Ocplan__Instruction *));
  b->arena_ids = malloc(sizeof(int32_t) * (size_t)(g->n_values + 1));
  b->arena_offs = malloc(sizeof(uint64_t) * (size_t)(g->n_values + 1));
  if (!w->entry_map || !b->ids || !b->instrs || !b->instr_ptrs || !b->arena_ids || !b->arena_offs)
    return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory writing the plan");
  for (int v = 0; v < g->n_values; v++) w->entry_map[v] = -1;
  size_t pos = 0;
  Ocplan__EntryPoint *ep = &b->ep;
  ocplan__entry_point__init(ep);
  ep->name = (char *)e->name;
  ep->inputs = b->ids + pos;
  ep->n_inputs = (size_t)e->n_inputs;
  for (int k = 0; k < e->n_inputs; k++) b->ids[pos++] = use_value(w, g, e->inputs[k]);
  for (int i = 0; i < g->n_instrs; i++) {
    const oc_instr_t *ins = &g->instrs[i];
    Ocplan__Instruction *pi = &b->instrs[i];
    ocplan__instruction__init(pi);
    pi->has_op = 1;
    pi->op = ins->op;
    pi->inputs = b->ids + pos;
    pi->n_inputs = (size_t)ins->n_in;
    for (int k = 0; k < ins->n_in; k++) b->ids[pos++] = use_value(w, g, ins->in[k]);
    pi->outputs = b->ids + pos;
    pi->n_outputs = (size_t)ins->n_out;
    for (int k = 0; k < ins->n_out; k++) b->ids[pos++] = use_value(w, g, ins->out[k]);
    pi->ints = ins->ints;
    pi->n_ints = (size_t)ins->n_ints;
    pi->floats = ins->floats;
    pi->n_floats = (size_t)ins->n_floats;
    pi->has_workspace = 1;
    pi->workspace = ins->workspace >= 0 ? use_value(w, g, ins->workspace) : -1;
    pi->node = ins->node;
    b->instr_ptrs[i] = pi;
  }
  ep->outputs = b->ids + pos;
  ep->n_outputs = (size_t)e->n_outputs;
  for (int k = 0; k < e->n_outputs; k++) b->ids[pos++] = use_value(w, g, e->outputs[k]);
  if (w->failed) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory writing the plan");
  ep->instructions = b->instr_ptrs;
  ep->n_instructions = (size_t)g->n_instrs;
  ep->has_arena_bytes = 1;
  ep->arena_bytes = e->arena_bytes;
  size_t n_arena = 0;
  for (int v = 0; v < g->n_values; v++) {
    int id = w->entry_map[v];
    if (id < 0 || w->t[id].region != OCPLAN__REGION__REGION_ARENA) continue;
    if (e->arena_offset[v] == UINT64_MAX)
      return oc_make_status(OC_STATUS_INTERNAL, "value '%s' has no arena placement",
                            g->values[v].name);
    b->arena_ids[n_arena] = id;
    b->arena_offs[n_arena++] = e->arena_offset[v];
  }
  ep->arena_tensors = b->arena_ids;
  ep->n_arena_tensors = n_arena;
  ep->arena_offsets = b->arena_offs;
  ep->n_arena_offsets = n_arena;
  return OC_OK;
}

oc_status_t oc_plan_serialize(const oc_compiled_t *c, uint8_t **out, size_t *out_bytes) {
  *out = NULL;
  *out_bytes = 0;
  writer_t w = {0};
  entry_buf_t bufs[OC_COMPILE_MAX_ENTRIES];
  Ocplan__EntryPoint *entry_ptrs[OC_COMPILE_MAX_ENTRIES];
  memset(bufs, 0, sizeof bufs);
  Ocplan__Tensor *tensors = NULL;
  Ocplan__Tensor **tensor_ptrs = NULL;
  uint8_t *buf = NULL;
  oc_status_t s = OC_OK;
  for (int k = 0; k < c->n_entries && !s; k++) {
    s = build_entry(&w, &c->entries[k], &bufs[k]);
    entry_ptrs[k] = &bufs[k].ep;
  }
  if (s) goto done;
  int source_model = -1;
  if (c->source_model.type.data) {
    source_model = add_tensor(&w, &c->source_model, OCPLAN__REGION__REGION_CONSTANT);
    if (source_model < 0) {
      s = oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory writing the plan");
      goto done;
    }
  }
  tensors = calloc((size_t)w.n + 1, sizeof(Ocplan__Tensor));
  tensor_ptrs = calloc((size_t)w.n + 1, sizeof(Ocplan__Tensor *));
  if (!tensors || !tensor_ptrs) {
    s = oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory writing the plan");
    goto done;
  }
  for (int t = 0; t < w.n; t++) {
    const oc_value_t *val = w.t[t].value;
    Ocplan__Tensor *pt = &tensors[t];
    ocplan__tensor__init(pt);
    pt->name = val->name;
    pt->has_dtype = 1;
    pt->dtype = val->type.dtype;
    pt->n_dims = (size_t)val->type.rank;
    pt->dims = (int64_t *)val->type.dims;
    pt->has_region = 1;
    pt->region = w.t[t].region;
    if (w.t[t].region != OCPLAN__REGION__REGION_ARENA) {
      pt->has_offset = 1;
      pt->offset = w.t[t].offset;
    }
    if (w.t[t].init_from >= 0) {
      pt->has_init_from = 1;
      pt->init_from = w.t[t].init_from;
    }
    tensor_ptrs[t] = pt;
  }

  Ocplan__Plan plan = OCPLAN__PLAN__INIT;
  plan.producer = "onnxc " ONNXC_VERSION_STRING;
  plan.source = c->source;
  plan.has_opset = 1;
  plan.opset = c->n_entries ? c->entries[0].graph->opset : 0;
  plan.tensors = tensor_ptrs;
  plan.n_tensors = (size_t)w.n;
  plan.entries = entry_ptrs;
  plan.n_entries = (size_t)c->n_entries;
  plan.has_constant_bytes = 1;
  plan.constant_bytes = w.const_bytes;
  plan.has_state_bytes = 1;
  plan.state_bytes = w.state_bytes;
  plan.has_source_model = 1;
  plan.source_model = source_model;

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
  for (int t = 0; t < w.n; t++)
    if (w.t[t].region == OCPLAN__REGION__REGION_CONSTANT)
      memcpy(buf + data_off + w.t[t].offset, w.t[t].value->type.data,
             oc_tensor_bytes(&w.t[t].value->type));
  memcpy(buf, OC_PLAN_MAGIC, 8);
  oc_store_le32(buf + OC_PLAN_OFF_VERSION, OC_PLAN_FORMAT_VERSION);
  oc_store_le32(buf + OC_PLAN_OFF_HEADER_BYTES, OC_PLAN_HEADER_BYTES);
  oc_store_le64(buf + OC_PLAN_OFF_FILE_BYTES, total);
  oc_store_le64(buf + OC_PLAN_OFF_META_OFFSET, meta_off);
  oc_store_le64(buf + OC_PLAN_OFF_META_BYTES, meta_bytes);
  oc_store_le64(buf + OC_PLAN_OFF_DATA_OFFSET, data_off);
  oc_store_le64(buf + OC_PLAN_OFF_DATA_BYTES, w.const_bytes);
  oc_store_le64(buf + OC_PLAN_OFF_META_HASH, oc_hash64(buf + meta_off, meta_bytes, OC_PLAN_HASH_SEED));
  oc_store_le64(buf + OC_PLAN_OFF_DATA_HASH, oc_hash64(buf + data_off, w.const_bytes, OC_PLAN_HASH_SEED));
  oc_store_le64(buf + OC_PLAN_OFF_HEADER_HASH, oc_hash64(buf, OC_PLAN_OFF_HEADER_HASH, OC_PLAN_HASH_SEED));
  *out = buf;
  *out_bytes = (size_t)total;
  buf = NULL;
done:
  free(buf);
  free(tensors);
  free(tensor_ptrs);
  for (int k = 0; k < c->n_entries; k++) free_entry_buf(&bufs[k]);
  free(w.t);
  free(w.entry_map);
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
