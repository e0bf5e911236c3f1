/*
 * The compile pipeline. Each entry point is compiled from its own import of
 * the model: import -> mark persistent state -> resolve dims -> lower (shape
 * inference + folding) -> [train step: autodiff + optimizer] -> prune -> plan
 * memory. Entries share constants and state by value name in the plan.
 *
 *   plain compile:  `embed` = the graph outputs (or --output values), with
 *                   every initializer a constant (mmapped, folded).
 *   --train:        `train_step` = loss, backward, optimizer, as exported
 *                   (BatchNormalization in training mode); `embed` = the
 *                   --embed-output values in inference mode. Trained
 *                   parameters and BatchNorm running statistics are state.
 */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compile.h"
#include "fuse.h"
#include "gradcache.h"
#include "import.h"
#include "lower.h"
#include "lowering.h"
#include "memplan.h"
#include "onnx_wire.h"
#include "plan_limits.h"
#include "recompute.h"
#include "tensor_file.h"
#include "train.h"

/* The import limits of |o| (0: the default). */
static oc_import_limits_t import_limits(const oc_compile_options_t *o) {
  oc_import_limits_t lim;
  oc_import_limits_init(&lim);
  if (o->max_nodes) lim.max_nodes = o->max_nodes;
  if (o->max_memory_bytes) lim.max_total_bytes = o->max_memory_bytes;
  if (o->max_depth) lim.max_depth = o->max_depth;
  return lim;
}

void oc_compile_options_init(oc_compile_options_t *options) {
  memset(options, 0, sizeof(*options));
  options->fold_limit_bytes = OC_COMPILE_DEFAULT_FOLD_LIMIT_BYTES;
  options->max_memory_bytes = OC_COMPILE_DEFAULT_MAX_MEMORY_BYTES;
  options->max_fold_bytes = OC_COMPILE_DEFAULT_MAX_FOLD_BYTES;
  options->max_fold_cost = OC_COMPILE_DEFAULT_MAX_FOLD_COST;
  options->max_nodes = OC_COMPILE_DEFAULT_MAX_NODES;
  options->max_depth = OC_ONNX_DEFAULT_MAX_DEPTH;
  oc_train_options_t *t = &options->train;
  t->optimizer = OC_OPTIMIZER_SGD;
  t->lr = 0.01f;
  t->beta1 = 0.9f;
  t->beta2 = 0.999f;
  t->eps = 1e-8f;
  t->trust_coefficient = 0.001f;
  t->schedule = OC_SCHEDULE_CONSTANT;
}

static void free_entry(oc_entry_t *e) {
  oc_graph_free(e->graph);
  free(e->arena_offset);
  free(e->inplace_of);
  free(e->inputs);
  free(e->outputs);
  memset(e, 0, sizeof *e);
}

void oc_compiled_free(oc_compiled_t *c) {
  if (!c) return;
  for (int k = 0; k < c->n_entries; k++) free_entry(&c->entries[k]);
  free(c->source_model.type.data);
  free(c->warnings);
  free(c->source);
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
  for (int k = 0; k < o->n_dims; k++) {
    if (o->dim_values[k] < 0 || o->dim_values[k] > OC_MAX_DIM)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "--dim %s=%lld is out of range",
                            o->dim_names[k], (long long)o->dim_values[k]);
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
  return OC_OK;
}

/* Removes instructions that neither produce a needed value nor update state. */
static void prune(oc_graph_t *g, const int *outputs, int n_outputs) {
  char *needed = calloc((size_t)g->n_values + 1, 1);
  char *keep = calloc((size_t)g->n_instrs + 1, 1);
  if (!needed || !keep) { /* pruning is an optimization */
    free(needed);
    free(keep);
    return;
  }
  for (int i = 0; i < n_outputs; i++) needed[outputs[i]] = 1;
  for (int i = g->n_instrs - 1; i >= 0; i--) {
    const oc_instr_t *ins = &g->instrs[i];
    /* Ops with effects beyond their outputs always run: they update state
     * in place, or have no outputs at all (checks). */
    int use = oc_op_get(ins->op)->mutates != 0 || ins->n_out == 0;
    for (int k = 0; k < ins->n_out; k++) use |= needed[ins->out[k]];
    if (!use) continue;
    keep[i] = 1;
    for (int k = 0; k < ins->n_in; k++)
      if (ins->in[k] >= 0) needed[ins->in[k]] = 1;
  }
  oc_graph_keep_instrs(g, keep);
  free(keep);
  free(needed);
}

/* What one entry point computes. */
typedef struct entry_spec_s {
  const char *name;
  int mode;                /* oc_lower_mode_t */
  int n_outputs;           /* 0: the graph's outputs */
  const char *const *outputs;
  int all_inputs;          /* keep every graph input in the signature */
  const oc_name_set_t *state; /* initializers that are persistent state, or NULL */
  const oc_name_set_t *params; /* of those, the trained ones (train step only) */
  const oc_train_options_t *train; /* build a train step on output 0, or NULL */
  char **warnings;         /* where the build's warnings go (malloc'd), or NULL */
} entry_spec_t;

/* The model as an entry point sees it: imported, persistent state marked,
 * dims resolved, queues made state. */
static oc_status_t import_entry(const void *data, size_t bytes, const char *base_dir,
                                const oc_compile_options_t *o, const entry_spec_t *spec,
                                oc_graph_t **out) {
  oc_import_limits_t lim = import_limits(o);
  OC_RETURN_IF_ERROR(oc_import_model(data, bytes, base_dir, &lim, out));
  oc_graph_t *g = *out;
  if (spec->state) oc_train_mark_state(g, spec->state);
  OC_RETURN_IF_ERROR(resolve_inputs(g, o));
  if (spec->state) OC_RETURN_IF_ERROR(oc_train_mark_queues(g, &o->train));
  return OC_OK;
}

/* --micro-batch: the train step of |g| as GradCache builds it, with a second
 * import of the model lowered at the micro-batch size up to the cut. */
static oc_status_t build_gradcache(const void *data, size_t bytes, const char *base_dir,
                                   const oc_compile_options_t *o, const entry_spec_t *spec,
                                   oc_graph_t *g, int loss, const oc_fold_limits_t *fold) {
  oc_graph_t *micro = NULL;
  int cut[OC_COMPILE_MAX_OUTPUTS], n_cut = 0;
  char *warnings = NULL;
  oc_status_t s = import_entry(data, bytes, base_dir, o, spec, &micro);
  if (!s) s = oc_gradcache_cut(g, micro, loss, spec->train, cut, &n_cut);
  if (!s) {
    s = oc_lower_graph(micro, cut, n_cut, fold, spec->mode);
    if (s) s = oc_status_wrap(s, "--micro-batch %lld: the encoders at that batch: ",
                              (long long)spec->train->micro_batch);
  }
  if (!s) s = oc_gradcache_build(g, micro, cut, n_cut, loss, spec->train, spec->params, &warnings);
  if (spec->warnings) *spec->warnings = warnings;
  else free(warnings);
  oc_graph_free(micro);
  return s;
}

/* --ranks N --global-negatives: the encoders lowered at one rank's rows (a
 * second import), the loss head on every rank's embeddings. */
static oc_status_t build_global(const void *data, size_t bytes, const char *base_dir,
                                const oc_compile_options_t *o, const entry_spec_t *spec,
                                oc_graph_t *g, int loss, const oc_fold_limits_t *fold) {
  oc_graph_t *micro = NULL;
  int cut[OC_COMPILE_MAX_OUTPUTS], n_cut = 0;
  oc_status_t s = import_entry(data, bytes, base_dir, o, spec, &micro);
  if (!s) s = oc_gradcache_cut(g, micro, loss, spec->train, cut, &n_cut);
  if (!s) {
    s = oc_lower_graph(micro, cut, n_cut, fold, spec->mode);
    if (s) s = oc_status_wrap(s, "--global-negatives: the encoders of one rank: ");
  }
  if (!s) s = oc_gradcache_global(g, micro, cut, n_cut, loss, spec->train);
  oc_graph_free(micro);
  return s;
}

static oc_status_t compile_entry(const void *data, size_t bytes, const char *base_dir,
                                 const oc_compile_options_t *o, const entry_spec_t *spec,
                                 oc_entry_t *e) {
  snprintf(e->name, sizeof e->name, "%s", spec->name);
  oc_import_limits_t lim = import_limits(o);
  OC_RETURN_IF_ERROR(import_entry(data, bytes, base_dir, o, spec, &e->graph));
  oc_graph_t *g = e->graph;
  const oc_train_options_t *t = spec->train;
  if (t && t->ranks > 1 && !t->global_negatives) OC_RETURN_IF_ERROR(oc_train_split_batch(g, t->ranks));
  int n_out = spec->n_outputs ? spec->n_outputs : g->n_outputs;
  if (n_out == 0) return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "the graph has no outputs");
  e->outputs = malloc(sizeof(int) * (size_t)(n_out + 1));
  e->inputs = malloc(sizeof(int) * (size_t)(g->n_inputs + 1));
  if (!e->outputs || !e->inputs) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  for (int i = 0; i < n_out; i++) {
    int v = spec->n_outputs ? oc_graph_find(g, spec->outputs[i]) : g->outputs[i];
    if (v < 0)
      return oc_make_status(OC_STATUS_NOT_FOUND, "the graph has no value named '%s'",
                            spec->outputs[i]);
    for (int j = 0; j < i; j++)
      if (e->outputs[j] == v)
        return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "output '%s' is requested twice",
                              g->values[v].name);
    e->outputs[i] = v;
  }
  e->n_outputs = n_out;
  oc_fold_limits_t fold = {
      .max_constant_bytes = o->fold_limit_bytes ? o->fold_limit_bytes : OC_COMPILE_DEFAULT_FOLD_LIMIT_BYTES,
      .max_total_bytes = o->max_fold_bytes ? o->max_fold_bytes : OC_COMPILE_DEFAULT_MAX_FOLD_BYTES,
      .max_memory_bytes = lim.max_total_bytes,
      .max_cost = o->max_fold_cost ? o->max_fold_cost : OC_COMPILE_DEFAULT_MAX_FOLD_COST};
  oc_status_t ls = oc_lower_graph(g, e->outputs, n_out, &fold, spec->mode);
  if (ls && t && t->ranks > 1 && !t->global_negatives)
    return oc_status_wrap(ls, "--ranks %lld: the step at 1/%lld of the batch per rank: a model "
                          "whose loss bakes the batch into constants cannot run on a part of it "
                          "(use --global-negatives, or export a symbolic batch axis): ",
                          (long long)t->ranks, (long long)t->ranks);
  OC_RETURN_IF_ERROR(ls);
  for (int i = 0; i < n_out; i++)
    if (!g->values[e->outputs[i]].known)
      return oc_make_status(OC_STATUS_NOT_FOUND, "output '%s' is not computed by the graph",
                            g->values[e->outputs[i]].name);
  if (spec->train && spec->train->micro_batch > 0)
    OC_RETURN_IF_ERROR(build_gradcache(data, bytes, base_dir, o, spec, g, e->outputs[0], &fold));
  else if (spec->train) {
    if (t->ranks > 1 && t->global_negatives)
      OC_RETURN_IF_ERROR(build_global(data, bytes, base_dir, o, spec, g, e->outputs[0], &fold));
    OC_RETURN_IF_ERROR(oc_train_build(g, e->outputs[0], spec->train, spec->params));
  }
  else OC_RETURN_IF_ERROR(oc_fuse_program(g, e->outputs, n_out));
  prune(g, e->outputs, n_out);
  /* The signature: every graph input for a whole-graph compile (callers bind
   * what the model declares), else the inputs the program reads. */
  char *used = calloc((size_t)g->n_values + 1, 1);
  if (!used) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  for (int i = 0; i < g->n_instrs; i++)
    for (int k = 0; k < g->instrs[i].n_in; k++)
      if (g->instrs[i].in[k] >= 0) used[g->instrs[i].in[k]] = 1;
  for (int i = 0; i < n_out; i++) used[e->outputs[i]] = 1;
  for (int i = 0; i < g->n_inputs; i++)
    if (spec->all_inputs || used[g->inputs[i]]) e->inputs[e->n_inputs++] = g->inputs[i];
  free(used);
  if (spec->train && o->memory_budget_bytes)
    OC_RETURN_IF_ERROR(oc_recompute_to_budget(e, o->memory_budget_bytes)); /* plans memory */
  else
    OC_RETURN_IF_ERROR(oc_memplan_run(e));
  return oc_check_entry_limits(e);
}

static oc_status_t compile_model(const void *data, size_t bytes, const char *base_dir,
                                 const oc_compile_options_t *o, oc_compiled_t *c) {
  if (!o->train.enabled) {
    entry_spec_t spec = {.name = "embed", .mode = OC_LOWER_AS_EXPORTED,
                         .n_outputs = o->n_outputs, .outputs = o->outputs,
                         .all_inputs = o->n_outputs == 0};
    c->n_entries = 1;
    return compile_entry(data, bytes, base_dir, o, &spec, &c->entries[0]);
  }
  /* Which initializers train, and which are running statistics. */
  oc_graph_t *g = NULL;
  oc_import_limits_t lim = import_limits(o);
  OC_RETURN_IF_ERROR(oc_import_model(data, bytes, base_dir, &lim, &g));
  oc_name_set_t params = {0}, state = {0};
  const char *loss = NULL;
  const char *embed_defaults[OC_COMPILE_MAX_OUTPUTS];
  int n_embed = 0;
  oc_status_t s = oc_train_select(g, &o->train, &params, &state);
  if (!s && g->n_outputs == 0)
    s = oc_make_status(OC_STATUS_INVALID_ARGUMENT, "the graph has no outputs");
  if (!s) {
    loss = o->train.loss ? o->train.loss : g->values[g->outputs[0]].name;
    for (int i = 0; i < g->n_outputs && n_embed < OC_COMPILE_MAX_OUTPUTS; i++)
      if (strcmp(g->values[g->outputs[i]].name, loss) != 0)
        embed_defaults[n_embed++] = g->values[g->outputs[i]].name;
  }
  if (!s) {
    uint8_t *skeleton = NULL;
    size_t n = 0;
    s = oc_import_model_skeleton(data, bytes, base_dir, (const char *const *)state.names, state.n,
                                 &skeleton, &n);
    c->source_model = (oc_value_t){.name = "onnx:source_model", .kind = OC_VALUE_CONST,
                                   .known = 1, .producer = -1};
    c->source_model.type = (oc_tensor_t){.dtype = OC_DTYPE_UINT8, .rank = 1, .dims = {(int64_t)n},
                                         .data = skeleton};
  }
  /* The names outlive |g| through |state| (copies), but loss and the embed
   * defaults point into |g|: compile while it lives. */
  if (!s) {
    entry_spec_t train = {.name = "train_step", .mode = OC_LOWER_AS_EXPORTED, .n_outputs = 1,
                          .outputs = &loss, .all_inputs = 0, .state = &state,
                          .params = &params, .train = &o->train, .warnings = &c->warnings};
    c->n_entries = 1;
    s = compile_entry(data, bytes, base_dir, o, &train, &c->entries[0]);
    if (s) s = oc_status_wrap(s, "train_step: ");
  }
  if (!s) {
    int n = o->train.n_embed_outputs ? o->train.n_embed_outputs : n_embed;
    const char *const *names = o->train.n_embed_outputs ? o->train.embed_outputs : embed_defaults;
    if (n > 0) {
      entry_spec_t embed = {.name = "embed", .mode = OC_LOWER_EVAL, .n_outputs = n,
                            .outputs = names, .all_inputs = 0, .state = &state};
      c->n_entries = 2;
      s = compile_entry(data, bytes, base_dir, o, &embed, &c->entries[1]);
      if (s) s = oc_status_wrap(s, "embed: ");
    }
  }
  oc_graph_free(g);
  oc_name_set_free(&params);
  oc_name_set_free(&state);
  return s;
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
  oc_status_t s = compile_model(data, bytes, base_dir, options, c);
  if (!s) s = oc_check_plan_limits(c);
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
