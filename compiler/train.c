/* The train step: trainable selection, state, backward, optimizer (train.h). */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff.h"
#include "lower.h"
#include "train.h"

/* --- name sets ------------------------------------------------------------------ */

int oc_name_set_has(const oc_name_set_t *set, const char *name) {
  for (int i = 0; i < set->n; i++)
    if (strcmp(set->names[i], name) == 0) return 1;
  return 0;
}

static int name_set_add(oc_name_set_t *set, const char *name) {
  if (oc_name_set_has(set, name)) return 0;
  if (set->n == set->cap) {
    int cap = set->cap ? set->cap * 2 : 64;
    char **nn = realloc(set->names, sizeof(char *) * (size_t)cap);
    if (!nn) return -1;
    set->names = nn;
    set->cap = cap;
  }
  set->names[set->n] = oc_strdup(name);
  if (!set->names[set->n]) return -1;
  set->n++;
  return 0;
}

void oc_name_set_free(oc_name_set_t *set) {
  for (int i = 0; i < set->n; i++) free(set->names[i]);
  free(set->names);
  memset(set, 0, sizeof *set);
}

/* --- selection ------------------------------------------------------------------- */

static oc_status_t compile_patterns(const char *const *pats, int n, regex_t *out, const char *flag) {
  for (int i = 0; i < n; i++) {
    /* Anchored: the pattern must match the whole name. */
    size_t len = strlen(pats[i]);
    char *anchored = malloc(len + 5);
    if (!anchored) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
    snprintf(anchored, len + 5, "^(%s)$", pats[i]);
    int rc = regcomp(&out[i], anchored, REG_EXTENDED | REG_NOSUB);
    free(anchored);
    if (rc != 0) {
      char msg[256];
      regerror(rc, &out[i], msg, sizeof msg);
      for (int k = 0; k < i; k++) regfree(&out[k]);
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "%s '%s': %s", flag, pats[i], msg);
    }
  }
  return OC_OK;
}

static int matches(const regex_t *re, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (regexec(&re[i], name, 0, NULL, 0) == 0) return 1;
  return 0;
}

oc_status_t oc_train_select(const oc_graph_t *g, const oc_train_options_t *t,
                            oc_name_set_t *out_params, oc_name_set_t *out_state) {
  /* Consumers: running statistics are BatchNormalization inputs 3 and 4. */
  char *stat = calloc((size_t)g->n_values + 1, 1);
  char *used = calloc((size_t)g->n_values + 1, 1);
  regex_t freeze[OC_COMPILE_MAX_PATTERNS], train[OC_COMPILE_MAX_PATTERNS];
  if (!stat || !used) {
    free(stat);
    free(used);
    return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  }
  for (int i = 0; i < g->n_nodes; i++) {
    const oc_node_t *n = &g->nodes[i];
    for (int k = 0; k < n->n_in; k++) {
      if (n->in[k] < 0) continue;
      used[n->in[k]] = 1;
      if (!n->domain[0] && strcmp(n->op_type, "BatchNormalization") == 0 && (k == 3 || k == 4))
        stat[n->in[k]] = 1;
    }
  }
  oc_status_t s = compile_patterns(t->freeze, t->n_freeze, freeze, "--freeze");
  if (!s) {
    s = compile_patterns(t->trainable, t->n_trainable, train, "--trainable");
    if (s)
      for (int k = 0; k < t->n_freeze; k++) regfree(&freeze[k]);
  }
  if (s) {
    free(stat);
    free(used);
    return s;
  }
  for (int v = 0; v < g->n_values && !s; v++) {
    const oc_value_t *val = &g->values[v];
    if (!val->is_initializer) continue;
    int is_float = val->type.dtype == OC_DTYPE_FLOAT32;
    int param = is_float && used[v] && !stat[v];
    if (is_float && matches(train, t->n_trainable, val->name)) param = 1;
    if (matches(freeze, t->n_freeze, val->name)) param = 0;
    if (param && (name_set_add(out_params, val->name) || name_set_add(out_state, val->name)))
      s = oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
    if (!s && stat[v] && is_float && name_set_add(out_state, val->name))
      s = oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  }
  for (int k = 0; k < t->n_freeze; k++) regfree(&freeze[k]);
  for (int k = 0; k < t->n_trainable; k++) regfree(&train[k]);
  /* --ema: the DST... initializers (parameters, not running statistics) are
   * frozen state; each needs a partner SRC... of the same type. */
  for (int k = 0; k < t->n_ema && !s; k++) {
    size_t dl = strlen(t->ema_dst[k]);
    char missing[1024] = "";
    int n_dst = 0, n_missing = 0;
    for (int v = 0; v < g->n_values && !s; v++) {
      const oc_value_t *val = &g->values[v];
      if (!val->is_initializer || stat[v] || val->type.dtype != OC_DTYPE_FLOAT32 ||
          strncmp(val->name, t->ema_dst[k], dl) != 0)
        continue;
      n_dst++;
      char partner[600];
      snprintf(partner, sizeof partner, "%s%s", t->ema_src[k], val->name + dl);
      int p = oc_graph_find(g, partner);
      int ok = p >= 0 && g->values[p].is_initializer &&
               g->values[p].type.dtype == val->type.dtype && g->values[p].type.rank == val->type.rank;
      for (int d = 0; ok && d < val->type.rank; d++) ok = g->values[p].type.dims[d] == val->type.dims[d];
      if (!ok) {
        if (n_missing++ < 4)
          snprintf(missing + strlen(missing), sizeof missing - strlen(missing), "%s'%s' (needs '%s')",
                   n_missing > 1 ? ", " : "", val->name, partner);
        continue;
      }
      /* Frozen: out of the trained set, but state (the step updates it). */
      for (int i = 0; i < out_params->n; i++)
        if (!strcmp(out_params->names[i], val->name)) {
          free(out_params->names[i]);
          out_params->names[i] = out_params->names[--out_params->n];
          break;
        }
      if (name_set_add(out_state, val->name))
        s = oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
    }
    if (!s && n_missing)
      s = oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                         "--ema %s=%s: %d initializer(s) have no partner of the same shape: %s%s",
                         t->ema_dst[k], t->ema_src[k], n_missing, missing, n_missing > 4 ? ", ..." : "");
    if (!s && n_dst == 0)
      s = oc_make_status(OC_STATUS_INVALID_ARGUMENT, "--ema %s=%s: no initializer is named '%s...'",
                         t->ema_dst[k], t->ema_src[k], t->ema_dst[k]);
  }
  for (int k = 0; k < t->n_clamp && !s; k++) {
    int v = oc_graph_find(g, t->clamp_name[k]);
    if (v < 0 || !g->values[v].is_initializer || !oc_name_set_has(out_state, t->clamp_name[k]))
      s = oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                         "--clamp %s: no trained or state initializer has that name",
                         t->clamp_name[k]);
  }
  free(stat);
  free(used);
  if (!s && out_params->n == 0)
    s = oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                       "--train: no initializer is trainable (check --freeze/--trainable)");
  return s;
}

void oc_train_mark_state(oc_graph_t *g, const oc_name_set_t *state) {
  for (int i = 0; i < state->n; i++) {
    int v = oc_graph_find(g, state->names[i]);
    if (v < 0 || !g->values[v].is_initializer) continue;
    g->values[v].kind = OC_VALUE_STATE;
    g->values[v].foldable = 0;
  }
}

oc_status_t oc_train_mark_queues(oc_graph_t *g, const oc_train_options_t *t) {
  for (int k = 0; k < t->n_queue; k++) {
    int v = oc_graph_find(g, t->queue_input[k]);
    if (v < 0 || g->values[v].kind != OC_VALUE_INPUT)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "--queue %s: no graph input of that name",
                            t->queue_input[k]);
    oc_value_t *val = &g->values[v];
    OC_RETURN_IF_ERROR(oc_value_set_const(g, v, val->type.dtype, val->type.rank, val->type.dims, NULL));
    val->kind = OC_VALUE_STATE;
    val->foldable = 0;
    int n = 0;
    for (int i = 0; i < g->n_inputs; i++)
      if (g->inputs[i] != v) g->inputs[n++] = g->inputs[i];
    g->n_inputs = n;
  }
  return OC_OK;
}

/* --- building the step ------------------------------------------------------------ */

/* A named state value (created once per name) starting as |init| (zeros when
 * NULL). */
static int state_value(oc_graph_t *g, const char *name, int dtype, int rank, const int64_t *dims,
                       const void *init) {
  int v = oc_graph_find(g, name);
  if (v >= 0) return g->values[v].kind == OC_VALUE_STATE ? v : -1;
  v = oc_graph_value(g, name);
  if (v < 0) return -1;
  oc_status_t s = oc_value_set_const(g, v, dtype, rank, dims, init);
  if (s) {
    oc_status_free(s);
    return -1;
  }
  g->values[v].kind = OC_VALUE_STATE;
  g->values[v].foldable = 0;
  return v;
}

/* Moves the last |n| instructions to just after instruction |after|. */
static void move_tail_after(oc_graph_t *g, int after, int n) {
  if (n <= 0) return;
  oc_instr_t tmp[8];
  int start = g->n_instrs - n;
  memcpy(tmp, &g->instrs[start], sizeof(oc_instr_t) * (size_t)n);
  memmove(&g->instrs[after + 1 + n], &g->instrs[after + 1],
          sizeof(oc_instr_t) * (size_t)(start - after - 1));
  memcpy(&g->instrs[after + 1], tmp, sizeof(oc_instr_t) * (size_t)n);
  for (int i = after + 1; i < g->n_instrs; i++)
    for (int k = 0; k < g->instrs[i].n_out; k++) g->values[g->instrs[i].out[k]].producer = i;
}

/* Training-mode BatchNormalization updates its running statistics in place,
 * right after it runs, with PyTorch's unbiased batch variance: a statistic
 * shared by several BatchNorm nodes (one encoder on two views) then gets
 * their updates one after the other, as PyTorch applies them. */
oc_status_t oc_train_write_back_running_stats(oc_graph_t *g) {
  for (int i = 0; i < g->n_instrs; i++) {
    oc_instr_t *ins = &g->instrs[i];
    if (ins->op != OC_OP_BATCHNORM || ins->n_ints < 2 || ins->ints[0] != 1 || ins->n_out < 3) continue;
    int added = 0;
    ins->ints[1] = 1; /* unbiased running variance */
    /* Check before writing, so a step with bad numbers changes no state. */
    int check[2], n_check = 0;
    for (int k = 0; k < 2; k++)
      if (ins->in[3 + k] >= 0 && ins->out[1 + k] >= 0 &&
          g->values[ins->in[3 + k]].kind == OC_VALUE_STATE)
        check[n_check++] = ins->out[1 + k];
    if (n_check) {
      char node[300];
      snprintf(node, sizeof node, "%s/check_running_stats", g->instrs[i].node);
      OC_RETURN_IF_ERROR(
          oc_emit_instr(g, node, OC_OP_CHECK_FINITE, n_check, check, 0, NULL, NULL, 0, NULL, 0));
      ins = &g->instrs[i]; /* emitting may move the array */
      added++;
    }
    for (int k = 0; k < 2; k++) {
      int stat = g->instrs[i].in[3 + k], updated = g->instrs[i].out[1 + k];
      if (stat < 0 || updated < 0 || g->values[stat].kind != OC_VALUE_STATE) continue;
      int in[2] = {stat, updated};
      char node[300];
      snprintf(node, sizeof node, "%s/update_running_stat", g->instrs[i].node);
      OC_RETURN_IF_ERROR(oc_emit_instr(g, node, OC_OP_ASSIGN, 2, in, 0, NULL, NULL, 0, NULL, 0));
      ins = &g->instrs[i];
      added++;
    }
    move_tail_after(g, i, added);
    i += added;
  }
  return OC_OK;
}

/* LARS: biases and normalization parameters (rank <= 1) take neither weight
 * decay nor the trust ratio, as in SimCLR. */
static int lars_adapts(const oc_value_t *p) { return p->type.rank > 1; }

oc_status_t oc_train_read_params(const oc_graph_t *g, const oc_name_set_t *param_names,
                                 int **out_params, int *out_n) {
  *out_params = NULL;
  *out_n = 0;
  char *read = calloc((size_t)g->n_values + 1, 1);
  int *params = malloc(sizeof(int) * (size_t)(g->n_values + 1));
  if (!read || !params) {
    free(read);
    free(params);
    return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  }
  for (int i = 0; i < g->n_instrs; i++)
    for (int k = 0; k < g->instrs[i].n_in; k++)
      if (g->instrs[i].in[k] >= 0) read[g->instrs[i].in[k]] = 1;
  int n = 0;
  for (int v = 0; v < g->n_values; v++)
    if (read[v] && g->values[v].kind == OC_VALUE_STATE && g->values[v].is_initializer &&
        oc_name_set_has(param_names, g->values[v].name))
      params[n++] = v;
  free(read);
  *out_params = params;
  *out_n = n;
  return OC_OK;
}

/* --- data parallel (--ranks) -------------------------------------------------------- */

oc_status_t oc_train_split_batch(oc_graph_t *g, int64_t ranks) {
  int64_t batch = -1;
  const char *first = NULL;
  for (int i = 0; i < g->n_inputs; i++) {
    oc_value_t *v = &g->values[g->inputs[i]];
    if (v->kind != OC_VALUE_INPUT || v->type.rank < 1) continue;
    if (batch < 0) {
      batch = v->type.dims[0];
      first = v->name;
    }
    if (v->type.dims[0] != batch) continue;
    if (batch % ranks != 0 || batch == 0)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "--ranks %lld: the batch (%lld rows: axis 0 of graph input '%s') is "
                            "not a multiple of it",
                            (long long)ranks, (long long)batch, first);
    v->type.dims[0] = batch / ranks;
  }
  if (batch < 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "--ranks %lld: the model has no graph input with a batch axis",
                          (long long)ranks);
  return OC_OK;
}

/* |values| (n of them) replaced by their mean over the ranks: AllReduce
 * instructions over buckets of at most OC_MAX_OP_INPUTS tensors and about
 * 4 MiB (a larger tensor travels alone). */
static oc_status_t allreduce_mean(oc_graph_t *g, int *values, int n, const char *what) {
  const uint64_t bucket_bytes = (uint64_t)4 << 20;
  for (int k0 = 0; k0 < n;) {
    int k1 = k0 + 1;
    uint64_t bytes = oc_tensor_bytes(&g->values[values[k0]].type);
    while (k1 < n && k1 - k0 < OC_MAX_OP_INPUTS &&
           bytes + oc_tensor_bytes(&g->values[values[k1]].type) <= bucket_bytes)
      bytes += oc_tensor_bytes(&g->values[values[k1++]].type);
    int out[OC_MAX_OP_INPUTS];
    for (int k = k0; k < k1; k++) {
      char hint[600];
      snprintf(hint, sizeof hint, "%s/allreduce", g->values[values[k]].name);
      out[k - k0] = oc_graph_new_value(g, hint);
      if (out[k - k0] < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
    }
    char node[64];
    snprintf(node, sizeof node, "allreduce:%s%d", what, k0);
    int64_t mean = 1;
    OC_RETURN_IF_ERROR(oc_emit_instr(g, node, OC_OP_ALLREDUCE, k1 - k0, values + k0, k1 - k0, out,
                                     &mean, 1, NULL, 0));
    memcpy(values + k0, out, sizeof(int) * (size_t)(k1 - k0));
    k0 = k1;
  }
  return OC_OK;
}

/* Without --sync-bn each rank's running statistics follow its own batches:
 * after the step they become their mean over the ranks, so that every rank
 * holds the same state. */
static oc_status_t average_running_stats(oc_graph_t *g) {
  char *seen = calloc((size_t)g->n_values + 1, 1);
  int *stats = malloc(sizeof(int) * (size_t)(g->n_values + 1));
  int n = 0;
  oc_status_t s = OC_OK;
  if (!seen || !stats) s = oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  for (int i = 0; i < g->n_instrs && !s; i++) {
    const oc_instr_t *ins = &g->instrs[i];
    if (ins->op != OC_OP_BATCHNORM || ins->n_ints < 1 || ins->ints[0] != 1) continue;
    for (int k = 3; k < 5 && k < ins->n_in; k++) {
      int v = ins->in[k];
      if (v >= 0 && !seen[v] && g->values[v].kind == OC_VALUE_STATE) {
        seen[v] = 1;
        stats[n++] = v;
      }
    }
  }
  int *mean = s ? NULL : malloc(sizeof(int) * (size_t)(n + 1));
  if (!s && !mean) s = oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  if (!s) memcpy(mean, stats, sizeof(int) * (size_t)n);
  if (!s) s = allreduce_mean(g, mean, n, "running_stats");
  for (int k = 0; k < n && !s; k++) {
    int in[2] = {stats[k], mean[k]};
    s = oc_emit_instr(g, "average_running_stat", OC_OP_ASSIGN, 2, in, 0, NULL, NULL, 0, NULL, 0);
  }
  free(mean);
  free(seen);
  free(stats);
  return s;
}

oc_status_t oc_train_build(oc_graph_t *g, int loss, const oc_train_options_t *t,
                           const oc_name_set_t *param_names) {
  OC_RETURN_IF_ERROR(oc_train_write_back_running_stats(g));
  int distributed = t->ranks > 1;
  if (distributed && t->sync_bn)
    for (int i = 0; i < g->n_instrs; i++)
      if (g->instrs[i].op == OC_OP_BATCHNORM && g->instrs[i].n_ints > 0 && g->instrs[i].ints[0] == 1)
        g->instrs[i].op = OC_OP_SYNC_BATCHNORM;
  int *params = NULL, n = 0;
  OC_RETURN_IF_ERROR(oc_train_read_params(g, param_names, &params, &n));
  int *grads = malloc(sizeof(int) * (size_t)(n + 1));
  oc_status_t s = grads ? oc_autodiff(g, loss, -1, params, n, grads)
                        : oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  if (!s && distributed) s = allreduce_mean(g, grads, n, "grads");
  if (!s) s = oc_train_update(g, loss, t, param_names, params, grads, n);
  if (!s && distributed && !t->sync_bn) s = average_running_stats(g);
  free(params);
  free(grads);
  return s;
}

oc_status_t oc_train_update(oc_graph_t *g, int loss, const oc_train_options_t *t,
                            const oc_name_set_t *param_names, const int *params,
                            const int *grad_values, int n) {
  oc_status_t s = OC_OK;
  int *grads = malloc(sizeof(int) * (size_t)(n + 1));
  if (!grads) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  memcpy(grads, grad_values, sizeof(int) * (size_t)n);

  /* Gradients into state ("grad:<name>"), then one check over all of them. */
  int check[OC_MAX_OP_INPUTS], n_check = 0;
  check[n_check++] = loss;
  for (int k = 0; k < n && !s; k++) {
    const oc_value_t *p = &g->values[params[k]];
    char name[600];
    snprintf(name, sizeof name, "grad:%s", p->name);
    int64_t pdims[OC_MAX_RANK]; /* |p| moves when state_value adds a value */
    memcpy(pdims, p->type.dims, sizeof pdims);
    int gs = state_value(g, name, OC_DTYPE_FLOAT32, p->type.rank, pdims, NULL);
    if (gs < 0) {
      s = oc_make_status(OC_STATUS_INTERNAL, "cannot make state '%s'", name);
      break;
    }
    int in[2] = {gs, grads[k]};
    s = oc_emit_instr(g, name, OC_OP_ASSIGN, 2, in, 0, NULL, NULL, 0, NULL, 0);
    grads[k] = gs;
    if (!s && n_check == OC_MAX_OP_INPUTS) {
      s = oc_emit_instr(g, "check_finite", OC_OP_CHECK_FINITE, n_check, check, 0, NULL, NULL, 0,
                        NULL, 0);
      n_check = 0;
    }
    check[n_check++] = gs;
  }
  if (!s && n_check)
    s = oc_emit_instr(g, "check_finite", OC_OP_CHECK_FINITE, n_check, check, 0, NULL, NULL, 0,
                      NULL, 0);
  if (s) goto done;

  /* Learning rate and step. */
  int64_t one[1] = {1};
  /* SimCLR's rule: lr = base_lr * batch / 256. */
  float base = t->batch > 0 ? (float)((double)t->lr * (double)t->batch / 256.0) : t->lr;
  int lr = state_value(g, "opt:lr", OC_DTYPE_FLOAT32, 1, one, &base);
  int base_lr = state_value(g, "opt:base_lr", OC_DTYPE_FLOAT32, 1, one, &base);
  int step = state_value(g, "opt:step", OC_DTYPE_INT64, 1, one, NULL);
  if (lr < 0 || base_lr < 0 || step < 0) {
    s = oc_make_status(OC_STATUS_INTERNAL, "cannot make optimizer state");
    goto done;
  }
  {
    int64_t kind = t->schedule == OC_SCHEDULE_COSINE;
    float sched[3] = {(float)t->warmup_steps, (float)t->total_steps, 0.0f};
    if (kind && t->total_steps < t->warmup_steps) {
      s = oc_make_status(OC_STATUS_INVALID_ARGUMENT, "--total-steps %lld is below --warmup-steps %lld",
                         (long long)t->total_steps, (long long)t->warmup_steps);
      goto done;
    }
    int in[3] = {lr, base_lr, step};
    s = oc_emit_instr(g, "lr_schedule", OC_OP_LR_SCHEDULE, 3, in, 0, NULL, &kind, 1, sched, 3);
  }
  for (int k = 0; k < n && !s; k++) {
    const oc_value_t *p = &g->values[params[k]];
    const char *pname = p->name;
    char n1[600], n2[600];
    int rank = p->type.rank;
    int64_t dims[OC_MAX_RANK];
    memcpy(dims, p->type.dims, sizeof dims);
    switch (t->optimizer) {
      case OC_OPTIMIZER_SGD:
      case OC_OPTIMIZER_LARS: {
        snprintf(n1, sizeof n1, "opt:%s:momentum_buffer", pname);
        int buf = state_value(g, n1, OC_DTYPE_FLOAT32, rank, dims, NULL);
        if (buf < 0) {
          s = oc_make_status(OC_STATUS_INTERNAL, "cannot make state '%s'", n1);
          break;
        }
        int in[5] = {params[k], buf, grads[k], lr, step};
        if (t->optimizer == OC_OPTIMIZER_SGD) {
          float f[4] = {t->momentum, t->dampening, t->weight_decay, (float)t->nesterov};
          s = oc_emit_instr(g, pname, OC_OP_SGD_UPDATE, 5, in, 0, NULL, NULL, 0, f, 4);
        } else {
          int adapt = lars_adapts(&g->values[params[k]]); /* p moved with state_value */
          float f[5] = {t->momentum, adapt ? t->weight_decay : 0.0f, t->trust_coefficient, t->eps,
                        (float)adapt};
          s = oc_emit_instr(g, pname, OC_OP_LARS_UPDATE, 5, in, 0, NULL, NULL, 0, f, 5);
        }
        break;
      }
      case OC_OPTIMIZER_ADAM:
      case OC_OPTIMIZER_ADAMW: {
        snprintf(n1, sizeof n1, "opt:%s:exp_avg", pname);
        snprintf(n2, sizeof n2, "opt:%s:exp_avg_sq", pname);
        int m = state_value(g, n1, OC_DTYPE_FLOAT32, rank, dims, NULL);
        int v = state_value(g, n2, OC_DTYPE_FLOAT32, rank, dims, NULL);
        if (m < 0 || v < 0) {
          s = oc_make_status(OC_STATUS_INTERNAL, "cannot make state '%s'", n1);
          break;
        }
        int in[6] = {params[k], m, v, grads[k], lr, step};
        float f[5] = {t->beta1, t->beta2, t->eps, t->weight_decay,
                      (float)(t->optimizer == OC_OPTIMIZER_ADAMW)};
        s = oc_emit_instr(g, pname, OC_OP_ADAM_UPDATE, 6, in, 0, NULL, NULL, 0, f, 5);
        break;
      }
    }
  }
  /* After the optimizer: momentum encoders, clamps, queues. Running
   * statistics (BatchNorm inputs 3 and 4) are not averaged: MoCo copies
   * parameters only; the key encoder's statistics follow its own batches. */
  char *is_stat = calloc((size_t)g->n_values + 1, 1);
  if (!is_stat) s = oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  for (int i = 0; i < g->n_instrs && is_stat; i++)
    if ((g->instrs[i].op == OC_OP_BATCHNORM || g->instrs[i].op == OC_OP_SYNC_BATCHNORM) &&
        g->instrs[i].n_in >= 5)
      for (int k = 3; k < 5; k++)
        if (g->instrs[i].in[k] >= 0) is_stat[g->instrs[i].in[k]] = 1;
  for (int k = 0; k < t->n_ema && !s; k++) {
    size_t dl = strlen(t->ema_dst[k]);
    int n_values = g->n_values;
    for (int v = 0; v < n_values && !s; v++) {
      const oc_value_t *val = &g->values[v];
      if (val->kind != OC_VALUE_STATE || !val->is_initializer || is_stat[v] ||
          strncmp(val->name, t->ema_dst[k], dl) != 0 || oc_name_set_has(param_names, val->name))
        continue;
      char partner[600];
      snprintf(partner, sizeof partner, "%s%s", t->ema_src[k], val->name + dl);
      int src = oc_graph_find(g, partner);
      if (src < 0 || !g->values[src].known) continue; /* a running statistic's twin, say */
      int in[2] = {v, src};
      char node[700];
      snprintf(node, sizeof node, "ema:%s", val->name);
      s = oc_emit_instr(g, node, OC_OP_EMA_UPDATE, 2, in, 0, NULL, NULL, 0, &t->ema_m[k], 1);
    }
  }
  free(is_stat);
  for (int k = 0; k < t->n_clamp && !s; k++) {
    int v = oc_graph_find(g, t->clamp_name[k]);
    if (v < 0 || g->values[v].kind != OC_VALUE_STATE) continue; /* not read by this step */
    float f[2] = {t->clamp_min[k], t->clamp_max[k]};
    char node[600];
    snprintf(node, sizeof node, "clamp:%s", t->clamp_name[k]);
    s = oc_emit_instr(g, node, OC_OP_CLAMP_STATE, 1, &v, 0, NULL, NULL, 0, f, 2);
  }
  for (int k = 0; k < t->n_queue && !s; k++) {
    int q = oc_graph_find(g, t->queue_input[k]);
    int value = oc_graph_find(g, t->queue_value[k]);
    if (q < 0 || g->values[q].kind != OC_VALUE_STATE) {
      s = oc_make_status(OC_STATUS_INVALID_ARGUMENT, "--queue %s: the train step does not read it",
                         t->queue_input[k]);
      break;
    }
    if (value < 0 || !g->values[value].known) {
      s = oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                         "--queue %s=%s: the train step does not compute '%s' (onnxc --inspect "
                         "lists candidate values)",
                         t->queue_input[k], t->queue_value[k], t->queue_value[k]);
      break;
    }
    char name[600];
    snprintf(name, sizeof name, "queue:%s:ptr", t->queue_input[k]);
    int ptr = state_value(g, name, OC_DTYPE_INT64, 1, one, NULL);
    if (ptr < 0) {
      s = oc_make_status(OC_STATUS_INTERNAL, "cannot make state '%s'", name);
      break;
    }
    int in[3] = {q, ptr, value};
    int64_t axis = t->queue_axis[k];
    s = oc_emit_instr(g, name, OC_OP_QUEUE_PUSH, 3, in, 0, NULL, &axis, 1, NULL, 0);
  }
  if (!s) s = oc_emit_instr(g, "step_count", OC_OP_STEP_COUNT, 1, &step, 0, NULL, NULL, 0, NULL, 0);
done:
  free(grads);
  return s;
}
