/* The compile pipeline: import -> resolve dims -> lower -> prune -> plan memory. */
#include <libgen.h>
#include <stdlib.h>
#include <string.h>

#include "compile.h"
#include "import.h"
#include "lowering.h"
#include "memplan.h"
#include "tensor_file.h"

void oc_compile_options_init(oc_compile_options_t *options) {
  memset(options, 0, sizeof(*options));
  options->fold_limit_bytes = (uint64_t)64 << 20;
}

void oc_compiled_free(oc_compiled_t *c) {
  if (!c) return;
  oc_graph_free(c->graph);
  free(c->source);
  free(c->arena_offset);
  free(c->entry_inputs);
  free(c->entry_outputs);
  free(c);
}

/* Gives every symbolic dim of the graph inputs a value from --dim, and binds
 * constant inputs. */
static oc_status_t resolve_inputs(oc_graph_t *g, const oc_compile_options_t *o) {
  for (int k = 0; k < o->n_const_inputs; k++) {
    int v = oc_graph_find(g, o->const_input_names[k]);
    if (v < 0 || g->values[v].kind != OC_VALUE_INPUT)
      return oc_make_status(OC_STATUS_NOT_FOUND, "no graph input named '%s'",
                            o->const_input_names[k]);
    const oc_tensor_t *t = o->const_input_values[k];
    OC_RETURN_IF_ERROR(oc_value_set_const(g, v, t->dtype, t->rank, t->dims, t->data));
    for (int d = 0; d < OC_MAX_RANK; d++) {
      free(g->values[v].dim_params[d]);
      g->values[v].dim_params[d] = NULL;
    }
  }
  int n = 0;
  for (int i = 0; i < g->n_inputs; i++) {
    int v = g->inputs[i];
    oc_value_t *val = &g->values[v];
    if (val->kind != OC_VALUE_INPUT) continue; /* bound to a constant above */
    g->inputs[n++] = v;
    for (int d = 0; d < val->type.rank; d++) {
      if (!val->dim_params[d]) continue;
      int found = 0;
      for (int k = 0; k < o->n_dims; k++)
        if (strcmp(o->dim_names[k], val->dim_params[d]) == 0) {
          val->type.dims[d] = o->dim_values[k];
          found = 1;
        }
      if (!found)
        return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                              "graph input '%s': dimension %d is symbolic ('%s'); give it a value "
                              "with --dim %s=N",
                              val->name, d, val->dim_params[d], val->dim_params[d]);
    }
    if (!oc_dtype_size(val->type.dtype))
      return oc_make_status(OC_STATUS_UNSUPPORTED, "graph input '%s' has dtype %s, which onnxc "
                            "does not compute", val->name, oc_dtype_name(val->type.dtype));
    oc_status_t s = oc_check_type(&val->type, "graph input");
    if (s) return oc_status_wrap(s, "'%s': ", val->name);
    val->known = 1;
  }
  g->n_inputs = n;
  for (int k = 0; k < o->n_dims; k++) {
    if (o->dim_values[k] < 0 || o->dim_values[k] > OC_MAX_DIM)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "--dim %s=%lld is out of range",
                            o->dim_names[k], (long long)o->dim_values[k]);
  }
  return OC_OK;
}

/* Removes instructions none of whose outputs is needed. */
static void prune(oc_graph_t *g, const int *outputs, int n_outputs) {
  char *needed = calloc((size_t)g->n_values + 1, 1);
  if (!needed) return; /* pruning is an optimization */
  for (int i = 0; i < n_outputs; i++) needed[outputs[i]] = 1;
  int kept = 0;
  char *keep = calloc((size_t)g->n_instrs + 1, 1);
  if (!keep) {
    free(needed);
    return;
  }
  for (int i = g->n_instrs - 1; i >= 0; i--) {
    const oc_instr_t *ins = &g->instrs[i];
    /* Instructions that update state in place always run. */
    int use = oc_op_get(ins->op)->mutates != 0;
    for (int k = 0; k < ins->n_out; k++) use |= needed[ins->out[k]];
    if (!use) continue;
    keep[i] = 1;
    for (int k = 0; k < ins->n_in; k++)
      if (ins->in[k] >= 0) needed[ins->in[k]] = 1;
  }
  for (int i = 0; i < g->n_instrs; i++) {
    oc_instr_t *ins = &g->instrs[i];
    if (keep[i]) {
      g->instrs[kept++] = *ins;
    } else {
      for (int k = 0; k < ins->n_out; k++) g->values[ins->out[k]].producer = -1;
      free(ins->in);
      free(ins->out);
      free(ins->ints);
      free(ins->floats);
      free(ins->node);
    }
  }
  g->n_instrs = kept;
  for (int i = 0; i < g->n_instrs; i++)
    for (int k = 0; k < g->instrs[i].n_out; k++) g->values[g->instrs[i].out[k]].producer = i;
  free(keep);
  free(needed);
}

static oc_status_t compile_graph(oc_graph_t *g, const oc_compile_options_t *o, oc_compiled_t *c) {
  OC_RETURN_IF_ERROR(resolve_inputs(g, o));
  int n_out = o->n_outputs ? o->n_outputs : g->n_outputs;
  c->entry_outputs = malloc(sizeof(int) * (size_t)(n_out + 1));
  c->entry_inputs = malloc(sizeof(int) * (size_t)(g->n_inputs + 1));
  if (!c->entry_outputs || !c->entry_inputs)
    return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  if (n_out == 0) return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "the graph has no outputs");
  for (int i = 0; i < n_out; i++) {
    int v = o->n_outputs ? oc_graph_find(g, o->outputs[i]) : g->outputs[i];
    if (v < 0)
      return oc_make_status(OC_STATUS_NOT_FOUND, "--output %s: the graph has no value of that name",
                            o->outputs[i]);
    for (int j = 0; j < i; j++)
      if (c->entry_outputs[j] == v)
        return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "output '%s' is requested twice",
                              g->values[v].name);
    c->entry_outputs[i] = v;
  }
  c->n_entry_outputs = n_out;
  uint64_t fold = o->fold_limit_bytes ? o->fold_limit_bytes : (uint64_t)64 << 20;
  OC_RETURN_IF_ERROR(oc_lower_graph(g, c->entry_outputs, n_out, fold));
  for (int i = 0; i < n_out; i++)
    if (!g->values[c->entry_outputs[i]].known)
      return oc_make_status(OC_STATUS_NOT_FOUND, "output '%s' is not computed by the graph",
                            g->values[c->entry_outputs[i]].name);
  prune(g, c->entry_outputs, n_out);
  /* The signature keeps every graph input, used or not, so callers bind
   * what the model declares. */
  for (int i = 0; i < g->n_inputs; i++) c->entry_inputs[c->n_entry_inputs++] = g->inputs[i];
  return oc_memplan_run(c);
}

oc_status_t oc_compile_memory(const void *data, size_t bytes, const char *base_dir,
                              const char *source, const oc_compile_options_t *options,
                              oc_compiled_t **out) {
  *out = NULL;
  oc_compile_options_t defaults;
  if (!options) {
    oc_compile_options_init(&defaults);
    options = &defaults;
  }
  oc_compiled_t *c = calloc(1, sizeof(*c));
  if (!c) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  c->source = oc_strdup(source ? source : "");
  oc_status_t s = oc_import_model(data, bytes, base_dir, NULL, &c->graph);
  if (!s) s = compile_graph(c->graph, options, c);
  if (s) {
    oc_compiled_free(c);
    return s;
  }
  *out = c;
  return OC_OK;
}

oc_status_t oc_compile_file(const char *path, const oc_compile_options_t *options,
                            oc_compiled_t **out) {
  *out = NULL;
  void *buf = NULL;
  size_t n = 0;
  oc_status_t s = oc_file_read_all(path, &buf, &n);
  if (s) return s;
  char *dir_copy = oc_strdup(path);
  if (!dir_copy) {
    free(buf);
    return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  }
  s = oc_compile_memory(buf, n, dirname(dir_copy), path, options, out);
  free(dir_copy);
  free(buf);
  if (s) return oc_status_wrap(s, "%s: ", path);
  return OC_OK;
}
