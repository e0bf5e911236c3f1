/*
 * Opening a plan: map the file, check the header and checksums, decode the
 * metadata, and validate every id, offset, size and instruction before any
 * entry point can run. After oc_plan_open_* succeeds, kernels may trust every
 * shape and every pointer the executor hands them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "op_cost.h"
#include "plan_format.h"
#include "plan_internal.h"

void oc_plan_options_init(oc_plan_options_t *options) {
  memset(options, 0, sizeof(*options));
  options->verify_weights = 1;
}

void oc_plan_format_versions(uint32_t *out_min, uint32_t *out_max) {
  if (out_min) *out_min = OC_PLAN_FORMAT_MIN_VERSION;
  if (out_max) *out_max = OC_PLAN_FORMAT_VERSION;
}

uint32_t oc_plan_format_version(const oc_plan_t *plan) { return plan->version; }


#define CORRUPT(...) oc_make_status(OC_STATUS_CORRUPT, __VA_ARGS__)

/* --- header ------------------------------------------------------------- */

static oc_status_t check_header(oc_plan_t *plan, const uint8_t *b, size_t size, int verify_data,
                                uint64_t *meta_off, uint64_t *meta_len) {
  if (size < OC_PLAN_HEADER_BYTES)
    return CORRUPT("file is %zu bytes, shorter than the %d-byte plan header", size,
                   OC_PLAN_HEADER_BYTES);
  if (memcmp(b, OC_PLAN_MAGIC, 8) != 0)
    return CORRUPT("byte 0: bad magic number (not an onnxc plan)");
  uint32_t version = oc_load_le32(b + OC_PLAN_OFF_VERSION);
  uint64_t header_hash = oc_hash64(b, OC_PLAN_OFF_HEADER_HASH, OC_PLAN_HASH_SEED);
  if (version < OC_PLAN_FORMAT_MIN_VERSION || version > OC_PLAN_FORMAT_VERSION) {
    /* Only trust the version number when the header is intact. */
    if (header_hash != oc_load_le64(b + OC_PLAN_OFF_HEADER_HASH))
      return CORRUPT("byte %d: header checksum mismatch", OC_PLAN_OFF_HEADER_HASH);
    if (OC_PLAN_FORMAT_MIN_VERSION == OC_PLAN_FORMAT_VERSION)
      return oc_make_status(OC_STATUS_VERSION,
                            "plan format version %u; this build reads version %d only "
                            "(recompile the model with this onnxc)",
                            version, OC_PLAN_FORMAT_VERSION);
    return oc_make_status(OC_STATUS_VERSION,
                          "plan format version %u; this build reads versions %d to %d "
                          "(recompile the model with this onnxc)",
                          version, OC_PLAN_FORMAT_MIN_VERSION, OC_PLAN_FORMAT_VERSION);
  }
  if (header_hash != oc_load_le64(b + OC_PLAN_OFF_HEADER_HASH))
    return CORRUPT("byte %d: header checksum mismatch (the header was modified)",
                   OC_PLAN_OFF_HEADER_HASH);
  if (oc_load_le32(b + OC_PLAN_OFF_HEADER_BYTES) != OC_PLAN_HEADER_BYTES)
    return CORRUPT("byte %d: header size %u, expected %d", OC_PLAN_OFF_HEADER_BYTES,
                   oc_load_le32(b + OC_PLAN_OFF_HEADER_BYTES), OC_PLAN_HEADER_BYTES);
  uint64_t file_bytes = oc_load_le64(b + OC_PLAN_OFF_FILE_BYTES);
  if (file_bytes != size)
    return CORRUPT("byte %d: header says the file is %llu bytes but it is %zu (truncated?)",
                   OC_PLAN_OFF_FILE_BYTES, (unsigned long long)file_bytes, size);
  uint64_t mo = oc_load_le64(b + OC_PLAN_OFF_META_OFFSET), ml = oc_load_le64(b + OC_PLAN_OFF_META_BYTES);
  uint64_t dof = oc_load_le64(b + OC_PLAN_OFF_DATA_OFFSET), dl = oc_load_le64(b + OC_PLAN_OFF_DATA_BYTES);
  uint64_t end;
  if (mo < OC_PLAN_HEADER_BYTES || oc_add_overflows(mo, ml, &end) || end > dof)
    return CORRUPT("byte %d: metadata range [%llu, +%llu) is invalid", OC_PLAN_OFF_META_OFFSET,
                   (unsigned long long)mo, (unsigned long long)ml);
  if (dof % OC_ALIGNMENT || oc_add_overflows(dof, dl, &end) || end != size)
    return CORRUPT("byte %d: constant section [%llu, +%llu) is invalid",
                   OC_PLAN_OFF_DATA_OFFSET, (unsigned long long)dof, (unsigned long long)dl);
  for (int i = OC_PLAN_OFF_RESERVED; i < OC_PLAN_HEADER_BYTES; i++)
    if (b[i]) return CORRUPT("byte %d: reserved header byte is not zero", i);
  if (oc_hash64(b + mo, ml, OC_PLAN_HASH_SEED) != oc_load_le64(b + OC_PLAN_OFF_META_HASH))
    return CORRUPT("metadata at bytes [%llu, %llu): checksum mismatch", (unsigned long long)mo,
                   (unsigned long long)(mo + ml));
  if (verify_data && oc_hash64(b + dof, dl, OC_PLAN_HASH_SEED) != oc_load_le64(b + OC_PLAN_OFF_DATA_HASH))
    return CORRUPT("constant section at bytes [%llu, %llu): checksum mismatch",
                   (unsigned long long)dof, (unsigned long long)(dof + dl));
  plan->version = version;
  plan->constants = b + dof;
  if (verify_data && plan->mmapped) {
    /* Checking the hash paged every weight in; let the kernel drop them
     * again: they come back from the page cache on first use, and weights
     * that only initialize state are never touched again. */
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)(b + dof) + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    uintptr_t hi = ((uintptr_t)(b + dof + dl)) & ~((uintptr_t)page - 1);
    if (page > 0 && hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
  }
  plan->constant_bytes = dl;
  *meta_off = mo;
  *meta_len = ml;
  return OC_OK;
}

/* --- tensors ------------------------------------------------------------ */

static oc_status_t load_tensors(oc_plan_t *plan) {
  Ocplan__Plan *m = plan->meta;
  if (m->n_tensors > OC_PLAN_MAX_TENSORS)
    return CORRUPT("metadata: %zu tensors exceeds the limit %d", m->n_tensors, OC_PLAN_MAX_TENSORS);
  plan->n_tensors = (int)m->n_tensors;
  plan->tensors = calloc(m->n_tensors ? m->n_tensors : 1, sizeof(oc_plan_tensor_t));
  if (!plan->tensors) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  plan->state_bytes = m->state_bytes;
  for (int i = 0; i < plan->n_tensors; i++) {
    const Ocplan__Tensor *pt = m->tensors[i];
    oc_plan_tensor_t *t = &plan->tensors[i];
    t->name = pt->name ? pt->name : "";
    if (pt->n_dims > OC_MAX_RANK)
      return CORRUPT("tensor %d '%s': rank %zu exceeds %d", i, t->name, pt->n_dims, OC_MAX_RANK);
    oc_tensor_t view = {.dtype = pt->dtype, .rank = (int)pt->n_dims};
    for (size_t d = 0; d < pt->n_dims; d++) view.dims[d] = pt->dims[d];
    oc_status_t s = oc_check_type(&view, "tensor");
    if (s) return oc_status_wrap(s, "tensor %d '%s': ", i, t->name);
    t->dtype = view.dtype;
    t->rank = view.rank;
    memcpy(t->dims, view.dims, sizeof(t->dims));
    t->bytes = oc_tensor_bytes(&view);
    t->region = pt->has_region ? (int)pt->region : OCPLAN__REGION__REGION_ARENA;
    t->offset = pt->offset;
    uint64_t end;
    switch (t->region) {
      case OCPLAN__REGION__REGION_ARENA:
        break;
      case OCPLAN__REGION__REGION_CONSTANT:
        if (t->offset % OC_ALIGNMENT || oc_add_overflows(t->offset, t->bytes, &end) ||
            end > plan->constant_bytes)
          return CORRUPT("tensor %d '%s': constant range [%llu, +%llu) is outside the %llu-byte "
                         "constant section or misaligned",
                         i, t->name, (unsigned long long)t->offset, (unsigned long long)t->bytes,
                         (unsigned long long)plan->constant_bytes);
        break;
      case OCPLAN__REGION__REGION_STATE:
        if (t->offset % OC_ALIGNMENT || oc_add_overflows(t->offset, t->bytes, &end) ||
            end > plan->state_bytes)
          return CORRUPT("tensor %d '%s': state range [%llu, +%llu) is outside the %llu-byte state",
                         i, t->name, (unsigned long long)t->offset, (unsigned long long)t->bytes,
                         (unsigned long long)plan->state_bytes);
        if (pt->init_from >= plan->n_tensors || pt->init_from < -1)
          return CORRUPT("tensor %d '%s': init_from %d is not a tensor id", i, t->name,
                         pt->init_from);
        break;
      default:
        return CORRUPT("tensor %d '%s': unknown region %d", i, t->name, t->region);
    }
  }
  if (plan->state_bytes > OC_PLAN_MAX_ARENA_BYTES)
    return CORRUPT("metadata: state of %llu bytes exceeds the limit",
                   (unsigned long long)plan->state_bytes);
  for (int i = 0; i < plan->n_tensors; i++) {
    const Ocplan__Tensor *pt = m->tensors[i];
    if (plan->tensors[i].region != OCPLAN__REGION__REGION_STATE || pt->init_from < 0) continue;
    const oc_plan_tensor_t *src = &plan->tensors[pt->init_from];
    if (src->region != OCPLAN__REGION__REGION_CONSTANT || src->bytes != plan->tensors[i].bytes)
      return CORRUPT("tensor %d '%s': init_from tensor %d is not a constant of the same size", i,
                     plan->tensors[i].name, pt->init_from);
  }
  return OC_OK;
}

/* --- entry points ------------------------------------------------------- */

static oc_status_t check_tensor_id(const oc_plan_t *plan, int32_t id, const char *what) {
  if (id < 0 || id >= plan->n_tensors)
    return CORRUPT("%s: tensor id %d is out of range [0, %d)", what, id, plan->n_tensors);
  return OC_OK;
}

static void fill_info(const oc_plan_tensor_t *t, oc_tensor_info_t *info) {
  info->name = t->name;
  info->dtype = (oc_dtype_t)t->dtype;
  info->rank = t->rank;
  info->dims = t->dims;
  info->bytes = t->bytes;
  info->elements = oc_dtype_size(t->dtype) ? t->bytes / oc_dtype_size(t->dtype) : 0;
}

/* The view index of tensor |id| in the entry being loaded, added on first
 * use (the view arrays hold one slot per operand reference). */
static int32_t view_of(oc_plan_t *plan, oc_plan_entry_t *e, int32_t id) {
  if (plan->load_view[id] < 0) {
    int32_t v = e->n_views++;
    plan->load_view[id] = v;
    e->view_tensor[v] = id;
    e->view_offset[v] = plan->tensors[id].region == OCPLAN__REGION__REGION_ARENA
                            ? plan->load_offset[id]
                            : UINT64_MAX;
  }
  return plan->load_view[id];
}

/* The bytes [*lo, *hi) that tensor |id| takes in its writable region (the
 * arena of the entry being loaded, or the state); 0 for constants. */
static int writable_range(const oc_plan_t *plan, int32_t id, int *region, uint64_t *lo,
                          uint64_t *hi) {
  const oc_plan_tensor_t *t = &plan->tensors[id];
  if (t->region == OCPLAN__REGION__REGION_CONSTANT || t->bytes == 0) return 0;
  *region = t->region;
  *lo = t->region == OCPLAN__REGION__REGION_ARENA ? plan->load_offset[id] : t->offset;
  *hi = *lo + t->bytes; /* both were range-checked against their region */
  return 1;
}

/* Kernels read their inputs while they write their outputs and workspace,
 * so a plan must not let an output or the workspace share bytes with any
 * other operand, except where the op allows output 0 to be written over an
 * input of the same size at the same place (oc_op_def_t.inplace). Inputs
 * may share bytes with each other: they are only read. */
static oc_status_t check_operand_overlap(const oc_plan_t *plan, const oc_plan_instr_t *ins,
                                         const oc_op_def_t *def) {
  int32_t ids[OC_MAX_OP_INPUTS + OC_MAX_OP_OUTPUTS + 1];
  int n = 0, n_written_from;
  for (int i = 0; i < ins->n_in; i++) ids[n++] = ins->in[i];
  n_written_from = n;
  for (int i = 0; i < ins->n_out; i++) ids[n++] = ins->out[i];
  if (ins->workspace >= 0) ids[n++] = ins->workspace;
  for (int a = n_written_from; a < n; a++) {
    int ra;
    uint64_t alo, ahi;
    if (!writable_range(plan, ids[a], &ra, &alo, &ahi)) continue;
    for (int b = 0; b < a; b++) {
      int rb;
      uint64_t blo, bhi;
      if (ids[b] < 0 || !writable_range(plan, ids[b], &rb, &blo, &bhi)) continue;
      if (ra != rb || ahi <= blo || bhi <= alo) continue;
      int is_output0 = a == n_written_from && a < n_written_from + ins->n_out;
      if (is_output0 && b < n_written_from && b < 32 && (def->inplace >> b & 1u) && alo == blo &&
          ahi == bhi)
        continue;
      const char *what_a = a < n_written_from + ins->n_out ? "output" : "workspace";
      int ia = a < n_written_from + ins->n_out ? a - n_written_from : 0;
      const char *what_b = b < n_written_from ? "input" : "output";
      int ib = b < n_written_from ? b : b - n_written_from;
      return CORRUPT("%s: %s %d (tensor %d '%s', bytes [%llu, %llu)) overlaps %s %d (tensor %d "
                     "'%s', bytes [%llu, %llu)) in the %s",
                     def->name, what_a, ia, ids[a], plan->tensors[ids[a]].name,
                     (unsigned long long)alo, (unsigned long long)ahi, what_b, ib, ids[b],
                     plan->tensors[ids[b]].name, (unsigned long long)blo,
                     (unsigned long long)bhi, ra == OCPLAN__REGION__REGION_ARENA ? "arena" : "state");
    }
  }
  return OC_OK;
}

/* Checks one instruction: ids, regions, and that the op's shape rule gives
 * exactly the recorded output types. Records its operands as views (from
 * |*pos| in e->view_operands) and adds its estimated cost to *cost. */
static oc_status_t check_instr(oc_plan_t *plan, oc_plan_entry_t *e, int idx,
                               const Ocplan__Instruction *pi, size_t *pos, uint64_t *cost) {
  oc_plan_instr_t *ins = &e->instrs[idx];
  const oc_op_def_t *def = oc_op_get(pi->op);
  if (!def) return CORRUPT("unknown op number %d", pi->op);
  if (pi->n_inputs > OC_MAX_OP_INPUTS || pi->n_outputs > OC_MAX_OP_OUTPUTS ||
      pi->n_ints > OC_MAX_OP_INTS || pi->n_floats > OC_MAX_OP_FLOATS)
    return CORRUPT("%s: too many operands", def->name);
  ins->op = pi->op;
  ins->n_in = (int)pi->n_inputs;
  ins->n_out = (int)pi->n_outputs;
  ins->in = pi->inputs;
  ins->out = pi->outputs;
  ins->n_ints = (int)pi->n_ints;
  ins->ints = pi->ints;
  ins->n_floats = (int)pi->n_floats;
  ins->floats = pi->floats;
  ins->node = pi->node ? pi->node : "";
  ins->workspace = pi->workspace; /* defaults to -1 when absent */

  oc_tensor_t in_t[OC_MAX_OP_INPUTS], out_t[OC_MAX_OP_OUTPUTS];
  oc_tensor_t *in_p[OC_MAX_OP_INPUTS], *out_p[OC_MAX_OP_OUTPUTS];
  for (int i = 0; i < ins->n_in; i++) {
    int32_t id = ins->in[i];
    if (id == -1) {
      in_p[i] = NULL;
      continue;
    }
    OC_RETURN_IF_ERROR(check_tensor_id(plan, id, "input"));
    const oc_plan_tensor_t *t = &plan->tensors[id];
    if (i < 32 && (def->mutates >> i & 1u) && t->region != OCPLAN__REGION__REGION_STATE)
      return CORRUPT("input %d: tensor %d '%s' is updated in place but is not state", i, id,
                     t->name);
    if (t->region == OCPLAN__REGION__REGION_ARENA && plan->load_offset[id] == UINT64_MAX)
      return CORRUPT("input %d: arena tensor %d '%s' has no placement in this entry", i, id,
                     t->name);
    in_t[i] = (oc_tensor_t){.dtype = t->dtype, .rank = t->rank};
    memcpy(in_t[i].dims, t->dims, sizeof(t->dims));
    in_p[i] = &in_t[i];
  }
  for (int i = 0; i < ins->n_out; i++) {
    int32_t id = ins->out[i];
    OC_RETURN_IF_ERROR(check_tensor_id(plan, id, "output"));
    const oc_plan_tensor_t *t = &plan->tensors[id];
    if (t->region == OCPLAN__REGION__REGION_CONSTANT)
      return CORRUPT("output %d: tensor %d '%s' is a read-only constant", i, id, t->name);
    if (t->region == OCPLAN__REGION__REGION_ARENA && plan->load_offset[id] == UINT64_MAX)
      return CORRUPT("output %d: arena tensor %d '%s' has no placement in this entry", i, id,
                     t->name);
    out_t[i] = (oc_tensor_t){0};
    out_p[i] = &out_t[i];
  }
  oc_op_call_t call = {.ints = ins->ints, .n_ints = ins->n_ints, .floats = ins->floats,
                       .n_floats = ins->n_floats, .n_in = ins->n_in, .in = in_p,
                       .n_out = ins->n_out, .out = out_p};
  size_t ws = 0;
  oc_status_t s = oc_op_infer(ins->op, &call, &ws);
  if (s) return oc_status_wrap(s, "%s: ", def->name);
  for (int i = 0; i < ins->n_out; i++) {
    const oc_plan_tensor_t *t = &plan->tensors[ins->out[i]];
    int same = out_t[i].dtype == t->dtype && out_t[i].rank == t->rank;
    for (int d = 0; same && d < t->rank; d++) same = out_t[i].dims[d] == t->dims[d];
    if (!same) {
      char b1[160], b2[160];
      oc_tensor_t rec = {.dtype = t->dtype, .rank = t->rank};
      memcpy(rec.dims, t->dims, sizeof(t->dims));
      return CORRUPT("%s: output %d '%s' is recorded as %s but the op computes %s", def->name, i,
                     t->name, oc_type_str(&rec, b1, sizeof b1), oc_type_str(&out_t[i], b2, sizeof b2));
    }
  }
  if (ws > 0) {
    if (ins->workspace < 0)
      return CORRUPT("%s: needs %zu bytes of workspace but has none", def->name, ws);
    OC_RETURN_IF_ERROR(check_tensor_id(plan, ins->workspace, "workspace"));
    const oc_plan_tensor_t *t = &plan->tensors[ins->workspace];
    if (t->region != OCPLAN__REGION__REGION_ARENA || plan->load_offset[ins->workspace] == UINT64_MAX)
      return CORRUPT("%s: workspace tensor %d is not placed in the arena", def->name,
                     ins->workspace);
    if (t->bytes < ws)
      return CORRUPT("%s: workspace of %llu bytes is smaller than the %zu it needs", def->name,
                     (unsigned long long)t->bytes, ws);
    ins->workspace_bytes = t->bytes;
  } else {
    ins->workspace = -1;
    ins->workspace_bytes = 0;
  }
  OC_RETURN_IF_ERROR(check_operand_overlap(plan, ins, def));
  int32_t *in_view = e->view_operands + *pos, *out_view = in_view + ins->n_in;
  for (int i = 0; i < ins->n_in; i++) in_view[i] = ins->in[i] < 0 ? -1 : view_of(plan, e, ins->in[i]);
  for (int i = 0; i < ins->n_out; i++) out_view[i] = view_of(plan, e, ins->out[i]);
  ins->in_view = in_view;
  ins->out_view = out_view;
  ins->workspace_view = ins->workspace < 0 ? -1 : view_of(plan, e, ins->workspace);
  *pos += (size_t)(ins->n_in + ins->n_out);
  *cost = oc_op_cost(ins->op, &call);
  return OC_OK;
}

static oc_status_t load_entry(oc_plan_t *plan, int k, uint64_t max_run_cost) {
  const Ocplan__EntryPoint *pe = plan->meta->entries[k];
  oc_plan_entry_t *e = &plan->entries[k];
  e->name = pe->name ? pe->name : "";
  if (!e->name[0]) return CORRUPT("entry point %d has no name", k);
  for (int j = 0; j < k; j++)
    if (strcmp(plan->entries[j].name, e->name) == 0)
      return CORRUPT("entry point '%s' appears twice", e->name);
  if (pe->n_instructions > OC_PLAN_MAX_INSTRUCTIONS)
    return CORRUPT("too many instructions (%zu)", pe->n_instructions);
  if (pe->arena_bytes > OC_PLAN_MAX_ARENA_BYTES || pe->arena_bytes % OC_ALIGNMENT)
    return CORRUPT("arena of %llu bytes is invalid", (unsigned long long)pe->arena_bytes);
  if (pe->n_inputs > OC_PLAN_MAX_TENSORS || pe->n_outputs > OC_PLAN_MAX_TENSORS)
    return CORRUPT("too many inputs or outputs");
  e->arena_bytes = pe->arena_bytes;
  /* Every tensor reference of the entry (instruction operands, workspaces,
   * inputs, outputs) may be a new view: the file bounds their number. */
  size_t n_operands = 0;
  for (size_t i = 0; i < pe->n_instructions; i++) {
    const Ocplan__Instruction *pi = pe->instructions[i];
    if (pi->n_inputs > OC_MAX_OP_INPUTS || pi->n_outputs > OC_MAX_OP_OUTPUTS)
      return oc_status_wrap(CORRUPT("too many operands"), "instruction %zu (node '%s'): ", i,
                            pi->node ? pi->node : "");
    n_operands += pi->n_inputs + pi->n_outputs;
  }
  size_t n_refs = n_operands + pe->n_instructions + pe->n_inputs + pe->n_outputs;
  e->instrs = calloc(pe->n_instructions ? pe->n_instructions : 1, sizeof(oc_plan_instr_t));
  e->input_info = calloc(pe->n_inputs ? pe->n_inputs : 1, sizeof(oc_tensor_info_t));
  e->output_info = calloc(pe->n_outputs ? pe->n_outputs : 1, sizeof(oc_tensor_info_t));
  e->view_tensor = malloc(sizeof(int32_t) * (n_refs + 1));
  e->view_offset = malloc(sizeof(uint64_t) * (n_refs + 1));
  e->view_operands = malloc(sizeof(int32_t) * (n_operands + 1));
  e->input_views = malloc(sizeof(int32_t) * (pe->n_inputs + 1));
  e->output_views = malloc(sizeof(int32_t) * (pe->n_outputs + 1));
  if (!e->instrs || !e->input_info || !e->output_info || !e->view_tensor || !e->view_offset ||
      !e->view_operands || !e->input_views || !e->output_views)
    return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");

  if (pe->n_arena_tensors != pe->n_arena_offsets)
    return CORRUPT("%zu arena tensors but %zu offsets", pe->n_arena_tensors, pe->n_arena_offsets);
  for (size_t i = 0; i < pe->n_arena_tensors; i++) {
    int32_t id = pe->arena_tensors[i];
    OC_RETURN_IF_ERROR(check_tensor_id(plan, id, "arena placement"));
    const oc_plan_tensor_t *t = &plan->tensors[id];
    uint64_t off = pe->arena_offsets[i], end;
    if (t->region != OCPLAN__REGION__REGION_ARENA)
      return CORRUPT("arena placement %zu: tensor %d '%s' is not an arena tensor", i, id, t->name);
    if (plan->load_offset[id] != UINT64_MAX)
      return CORRUPT("arena placement %zu: tensor %d '%s' is placed twice", i, id, t->name);
    if (off % OC_ALIGNMENT || oc_add_overflows(off, t->bytes, &end) || end > e->arena_bytes)
      return CORRUPT("arena placement %zu: tensor %d '%s' at [%llu, +%llu) is outside the "
                     "%llu-byte arena or misaligned",
                     i, id, t->name, (unsigned long long)off, (unsigned long long)t->bytes,
                     (unsigned long long)e->arena_bytes);
    plan->load_offset[id] = off;
  }

  e->n_inputs = (int)pe->n_inputs;
  e->inputs = pe->inputs;
  e->n_outputs = (int)pe->n_outputs;
  e->outputs = pe->outputs;
  for (int i = 0; i < e->n_inputs; i++) {
    OC_RETURN_IF_ERROR(check_tensor_id(plan, e->inputs[i], "entry input"));
    const oc_plan_tensor_t *t = &plan->tensors[e->inputs[i]];
    if (t->region != OCPLAN__REGION__REGION_ARENA || plan->load_offset[e->inputs[i]] == UINT64_MAX)
      return CORRUPT("entry input %d '%s' is not placed in the arena", i, t->name);
    fill_info(t, &e->input_info[i]);
    e->input_views[i] = view_of(plan, e, e->inputs[i]);
  }
  for (int i = 0; i < e->n_outputs; i++) {
    OC_RETURN_IF_ERROR(check_tensor_id(plan, e->outputs[i], "entry output"));
    const oc_plan_tensor_t *t = &plan->tensors[e->outputs[i]];
    if (t->region == OCPLAN__REGION__REGION_ARENA && plan->load_offset[e->outputs[i]] == UINT64_MAX)
      return CORRUPT("entry output %d '%s' is not placed in the arena", i, t->name);
    fill_info(t, &e->output_info[i]);
    e->output_views[i] = view_of(plan, e, e->outputs[i]);
  }
  e->n_instrs = (int)pe->n_instructions;
  size_t pos = 0;
  uint64_t top_cost = 0;
  int top = 0;
  for (int i = 0; i < e->n_instrs; i++) {
    uint64_t cost = 0;
    oc_status_t s = check_instr(plan, e, i, pe->instructions[i], &pos, &cost);
    if (s) {
      const char *node = pe->instructions[i]->node;
      return oc_status_wrap(s, "instruction %d (node '%s'): ", i, node ? node : "");
    }
    e->run_cost = oc_sat_add(e->run_cost, cost);
    if (cost > top_cost) {
      top_cost = cost;
      top = i;
    }
  }
  if (max_run_cost && e->run_cost > max_run_cost)
    return oc_make_status(OC_STATUS_RESOURCE_LIMIT,
                          "one run is estimated at %llu operations (instruction %d, node '%s' "
                          "(%s): %llu); the limit is %llu (oc_plan_options_t.max_run_cost, "
                          "onnxrun --max-cost)",
                          (unsigned long long)e->run_cost, top, e->instrs[top].node,
                          oc_op_get(e->instrs[top].op)->name, (unsigned long long)top_cost,
                          (unsigned long long)max_run_cost);
  /* Leave the scratch as it was for the next entry. */
  for (int v = 0; v < e->n_views; v++) plan->load_view[e->view_tensor[v]] = -1;
  for (size_t i = 0; i < pe->n_arena_tensors; i++)
    plan->load_offset[pe->arena_tensors[i]] = UINT64_MAX;
  return OC_OK;
}

/* --- open / release ------------------------------------------------------ */

static oc_status_t plan_load(oc_plan_t *plan, const oc_plan_options_t *options) {
  int verify_data = options->verify_weights;
  uint64_t mo = 0, ml = 0;
  OC_RETURN_IF_ERROR(check_header(plan, plan->map, plan->map_bytes, verify_data, &mo, &ml));
  plan->meta = ocplan__plan__unpack(NULL, ml, (const uint8_t *)plan->map + mo);
  if (!plan->meta)
    return CORRUPT("metadata at bytes [%llu, %llu) does not decode", (unsigned long long)mo,
                   (unsigned long long)(mo + ml));
  OC_RETURN_IF_ERROR(load_tensors(plan));
  if (plan->meta->n_entries == 0) return CORRUPT("metadata: the plan has no entry points");
  if (plan->meta->n_entries > OC_PLAN_MAX_ENTRIES)
    return CORRUPT("metadata: %zu entry points exceeds the limit", plan->meta->n_entries);
  int32_t sm = plan->meta->source_model;
  if (sm != -1) {
    if (sm < 0 || sm >= plan->n_tensors)
      return CORRUPT("metadata: source model tensor %d is out of range", sm);
    const oc_plan_tensor_t *t = &plan->tensors[sm];
    if (t->region != OCPLAN__REGION__REGION_CONSTANT || t->dtype != OC_DTYPE_UINT8 || t->rank != 1)
      return CORRUPT("metadata: source model tensor %d is not a uint8 constant", sm);
  }
  plan->n_entries = (int)plan->meta->n_entries;
  plan->entries = calloc((size_t)plan->n_entries, sizeof(oc_plan_entry_t));
  size_t nt = (size_t)plan->n_tensors + 1;
  plan->load_offset = malloc(sizeof(uint64_t) * nt);
  plan->load_view = malloc(sizeof(int32_t) * nt);
  if (!plan->entries || !plan->load_offset || !plan->load_view)
    return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  for (size_t i = 0; i < nt; i++) {
    plan->load_offset[i] = UINT64_MAX;
    plan->load_view[i] = -1;
  }
  oc_status_t s = OC_OK;
  for (int k = 0; k < plan->n_entries && !s; k++) {
    s = load_entry(plan, k, options->max_run_cost);
    if (s) {
      const char *name = plan->meta->entries[k]->name;
      s = oc_status_wrap(s, "entry point '%s': ", name ? name : "?");
    }
  }
  free(plan->load_offset);
  free(plan->load_view);
  plan->load_offset = NULL;
  plan->load_view = NULL;
  return s;
}

void oc_plan_release(oc_plan_t *plan) {
  if (!plan) return;
  if (plan->entries) {
    for (int k = 0; k < plan->n_entries; k++) {
      free(plan->entries[k].view_tensor);
      free(plan->entries[k].view_offset);
      free(plan->entries[k].view_operands);
      free(plan->entries[k].input_views);
      free(plan->entries[k].output_views);
      free(plan->entries[k].instrs);
      free(plan->entries[k].input_info);
      free(plan->entries[k].output_info);
    }
    free(plan->entries);
  }
  free(plan->tensors);
  free(plan->load_offset);
  free(plan->load_view);
  if (plan->meta) ocplan__plan__free_unpacked(plan->meta, NULL);
  if (plan->map) {
    if (plan->mmapped)
      munmap(plan->map, plan->map_bytes);
    else
      free(plan->map);
  }
  oc_allocator_t a = plan->allocator;
  oc_free(&a, plan);
}

static oc_status_t plan_new(const oc_plan_options_t *options, oc_plan_t **out) {
  oc_allocator_t a = oc_allocator_or_default(options ? &options->allocator : NULL);
  oc_plan_t *plan = oc_alloc(&a, sizeof(*plan));
  if (!plan) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  plan->allocator = a;
  *out = plan;
  return OC_OK;
}

oc_status_t oc_plan_open_file(const char *path, const oc_plan_options_t *options,
                              oc_plan_t **out_plan) {
  *out_plan = NULL;
  oc_plan_options_t defaults;
  if (!options) {
    oc_plan_options_init(&defaults);
    options = &defaults;
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return oc_make_status(OC_STATUS_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return oc_make_status(OC_STATUS_IO, "%s: not a regular file", path);
  }
  size_t size = (size_t)st.st_size;
  oc_plan_t *plan = NULL;
  oc_status_t s = plan_new(options, &plan);
  if (s) {
    close(fd);
    return s;
  }
  if (size > 0) {
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      close(fd);
      oc_plan_release(plan);
      return oc_make_status(OC_STATUS_IO, "%s: cannot map: %s", path, strerror(errno));
    }
    plan->map = map;
    plan->map_bytes = size;
    plan->mmapped = 1;
  }
  close(fd);
  s = plan_load(plan, options);
  if (s) {
    oc_plan_release(plan);
    return oc_status_wrap(s, "%s: ", path);
  }
  *out_plan = plan;
  return OC_OK;
}

oc_status_t oc_plan_open_memory(const void *data, size_t bytes, const oc_plan_options_t *options,
                                oc_plan_t **out_plan) {
  *out_plan = NULL;
  oc_plan_options_t defaults;
  if (!options) {
    oc_plan_options_init(&defaults);
    options = &defaults;
  }
  oc_plan_t *plan = NULL;
  OC_RETURN_IF_ERROR(plan_new(options, &plan));
  if (bytes > 0) {
    /* 64-byte aligned copy so constants keep their alignment. */
    plan->map = aligned_alloc(OC_ALIGNMENT, oc_align_up(bytes, OC_ALIGNMENT));
    if (!plan->map) {
      oc_plan_release(plan);
      return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory copying a %zu-byte plan", bytes);
    }
    memcpy(plan->map, data, bytes);
    plan->map_bytes = bytes;
  }
  oc_status_t s = plan_load(plan, options);
  if (s) {
    oc_plan_release(plan);
    return s;
  }
  *out_plan = plan;
  return OC_OK;
}

/* --- queries ------------------------------------------------------------ */

int oc_plan_entry_count(const oc_plan_t *plan) { return plan->n_entries; }

const char *oc_plan_entry_name(const oc_plan_t *plan, int entry) {
  if (entry < 0 || entry >= plan->n_entries) return NULL;
  return plan->entries[entry].name;
}

oc_status_t oc_plan_find_entry(const oc_plan_t *plan, const char *name, int *out_entry) {
  for (int k = 0; k < plan->n_entries; k++)
    if (strcmp(plan->entries[k].name, name) == 0) {
      *out_entry = k;
      return OC_OK;
    }
  return oc_make_status(OC_STATUS_NOT_FOUND, "the plan has no entry point '%s'", name);
}

static const oc_plan_entry_t *entry_at(const oc_plan_t *plan, int entry) {
  return entry >= 0 && entry < plan->n_entries ? &plan->entries[entry] : NULL;
}

int oc_plan_input_count(const oc_plan_t *plan, int entry) {
  const oc_plan_entry_t *e = entry_at(plan, entry);
  return e ? e->n_inputs : 0;
}

int oc_plan_output_count(const oc_plan_t *plan, int entry) {
  const oc_plan_entry_t *e = entry_at(plan, entry);
  return e ? e->n_outputs : 0;
}

oc_status_t oc_plan_input_info(const oc_plan_t *plan, int entry, int index,
                               oc_tensor_info_t *out_info) {
  const oc_plan_entry_t *e = entry_at(plan, entry);
  if (!e || index < 0 || index >= e->n_inputs)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "no input %d of entry %d", index, entry);
  *out_info = e->input_info[index];
  return OC_OK;
}

oc_status_t oc_plan_output_info(const oc_plan_t *plan, int entry, int index,
                                oc_tensor_info_t *out_info) {
  const oc_plan_entry_t *e = entry_at(plan, entry);
  if (!e || index < 0 || index >= e->n_outputs)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "no output %d of entry %d", index, entry);
  *out_info = e->output_info[index];
  return OC_OK;
}

int oc_plan_input_index(const oc_plan_t *plan, int entry, const char *name) {
  const oc_plan_entry_t *e = entry_at(plan, entry);
  for (int i = 0; e && i < e->n_inputs; i++)
    if (strcmp(e->input_info[i].name, name) == 0) return i;
  return -1;
}

int oc_plan_output_index(const oc_plan_t *plan, int entry, const char *name) {
  const oc_plan_entry_t *e = entry_at(plan, entry);
  for (int i = 0; e && i < e->n_outputs; i++)
    if (strcmp(e->output_info[i].name, name) == 0) return i;
  return -1;
}

size_t oc_plan_arena_bytes(const oc_plan_t *plan, int entry) {
  const oc_plan_entry_t *e = entry_at(plan, entry);
  return e ? (size_t)e->arena_bytes : 0;
}

uint64_t oc_plan_run_cost(const oc_plan_t *plan, int entry) {
  const oc_plan_entry_t *e = entry_at(plan, entry);
  return e ? e->run_cost : 0;
}

int oc_plan_instruction_count(const oc_plan_t *plan, int entry) {
  const oc_plan_entry_t *e = entry_at(plan, entry);
  return e ? e->n_instrs : 0;
}

int oc_plan_instruction_op(const oc_plan_t *plan, int entry, int index) {
  const oc_plan_entry_t *e = entry_at(plan, entry);
  return e && index >= 0 && index < e->n_instrs ? e->instrs[index].op : -1;
}

void oc_plan_constant_stats(const oc_plan_t *plan, uint64_t *out_elements, uint64_t *out_bytes) {
  uint64_t n = 0, b = 0;
  for (int i = 0; i < plan->n_tensors; i++) {
    const oc_plan_tensor_t *t = &plan->tensors[i];
    if (t->region != OCPLAN__REGION__REGION_CONSTANT) continue;
    n += t->bytes / oc_dtype_size(t->dtype);
    b += t->bytes;
  }
  if (out_elements) *out_elements = n;
  if (out_bytes) *out_bytes = b;
}

oc_status_t oc_plan_source_model(const oc_plan_t *plan, const void **out_data, size_t *out_bytes) {
  int32_t sm = plan->meta->source_model;
  if (sm < 0)
    return oc_make_status(OC_STATUS_NOT_FOUND, "the plan keeps no source model (only plans "
                          "compiled with --train do)");
  *out_data = plan->constants + plan->tensors[sm].offset;
  *out_bytes = (size_t)plan->tensors[sm].bytes;
  return OC_OK;
}
