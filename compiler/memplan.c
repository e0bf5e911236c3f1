/*
 * Memory planning: one arena per entry point, offsets by greedy-by-size with
 * best-fit gap filling over value lifetimes.
 *
 * Time: instruction i runs at step i. Caller inputs are live from step -1
 * (bound before the run) to step n: a context may run an entry point again
 * on the same inputs (the train step does, every step). Entry outputs stay
 * live to step n (read after the run).
 * A value is live from its defining step to its last use, inclusive, so an
 * instruction's inputs and outputs never share bytes (no in-place reuse yet).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memplan.h"

typedef struct interval_s {
  int value;
  int first, last;
  uint64_t bytes;
  uint64_t offset;
} interval_t;

static int in_arena(const oc_value_t *v) { return v->kind == OC_VALUE_TEMP || v->kind == OC_VALUE_INPUT; }

static int by_size_desc(const void *a, const void *b) {
  const interval_t *x = a, *y = b;
  if (x->bytes != y->bytes) return x->bytes < y->bytes ? 1 : -1;
  if (x->first != y->first) return x->first - y->first;
  return x->value - y->value;
}

static int by_offset(const void *a, const void *b) {
  const interval_t *const *x = a, *const *y = b;
  if ((*x)->offset != (*y)->offset) return (*x)->offset < (*y)->offset ? -1 : 1;
  return 0;
}

/* Builds the lifetime of every arena value; adds workspace values. */
static oc_status_t lifetimes(oc_entry_t *c, interval_t **out, int *out_n) {
  oc_graph_t *g = c->graph;
  /* Workspaces become values first, so the tables below cover them. */
  for (int i = 0; i < g->n_instrs; i++) {
    oc_instr_t *ins = &g->instrs[i];
    if (ins->workspace_bytes == 0 || ins->workspace >= 0) continue;
    char hint[256];
    snprintf(hint, sizeof hint, "%s/workspace", ins->node);
    int v = oc_graph_new_value(g, hint);
    if (v < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
    oc_value_t *val = &g->values[v];
    val->kind = OC_VALUE_TEMP;
    val->known = 1;
    val->type.dtype = OC_DTYPE_UINT8;
    val->type.rank = 1;
    val->type.dims[0] = (int64_t)ins->workspace_bytes;
    val->producer = i;
    ins->workspace = v;
  }
  int nv = g->n_values;
  int *first = malloc(sizeof(int) * (size_t)(nv + 1));
  int *last = malloc(sizeof(int) * (size_t)(nv + 1));
  interval_t *iv = malloc(sizeof(interval_t) * (size_t)(nv + 1));
  if (!first || !last || !iv) {
    free(first);
    free(last);
    free(iv);
    return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  }
  for (int v = 0; v < nv; v++) first[v] = last[v] = INT32_MIN;
  for (int k = 0; k < c->n_inputs; k++) {
    first[c->inputs[k]] = -1;
    last[c->inputs[k]] = g->n_instrs;
  }
  for (int i = 0; i < g->n_instrs; i++) {
    const oc_instr_t *ins = &g->instrs[i];
    for (int k = 0; k < ins->n_in; k++) {
      int v = ins->in[k];
      if (v >= 0 && in_arena(&g->values[v]) && last[v] < i) last[v] = i;
    }
    for (int k = 0; k < ins->n_out; k++) {
      int v = ins->out[k];
      if (first[v] == INT32_MIN) first[v] = i;
      if (last[v] < i) last[v] = i;
    }
    if (ins->workspace >= 0) first[ins->workspace] = last[ins->workspace] = i;
  }
  for (int k = 0; k < c->n_outputs; k++) {
    int v = c->outputs[k];
    if (in_arena(&g->values[v])) last[v] = g->n_instrs;
  }
  int n = 0;
  for (int v = 0; v < nv; v++) {
    if (first[v] == INT32_MIN || !in_arena(&g->values[v])) continue;
    iv[n].value = v;
    iv[n].first = first[v];
    iv[n].last = last[v];
    iv[n].bytes = oc_align_up(oc_tensor_bytes(&g->values[v].type), OC_ALIGNMENT);
    iv[n].offset = UINT64_MAX;
    n++;
  }
  free(first);
  free(last);
  *out = iv;
  *out_n = n;
  return OC_OK;
}

static int overlaps_in_time(const interval_t *a, const interval_t *b) {
  return a->first <= b->last && b->first <= a->last;
}

oc_status_t oc_memplan_run(oc_entry_t *c) {
  interval_t *iv = NULL;
  int n = 0;
  OC_RETURN_IF_ERROR(lifetimes(c, &iv, &n));
  oc_graph_t *g = c->graph;
  free(c->arena_offset);
  c->arena_offset = malloc(sizeof(uint64_t) * (size_t)(g->n_values + 1));
  interval_t **live = malloc(sizeof(interval_t *) * (size_t)(n + 1));
  if (!c->arena_offset || !live) {
    free(iv);
    free(live);
    return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  }
  qsort(iv, (size_t)n, sizeof(interval_t), by_size_desc);
  uint64_t arena = 0;
  for (int i = 0; i < n; i++) {
    /* Placed intervals that share time with this one, by offset. */
    int m = 0;
    for (int j = 0; j < i; j++)
      if (overlaps_in_time(&iv[i], &iv[j]) && iv[j].bytes > 0) live[m++] = &iv[j];
    qsort(live, (size_t)m, sizeof(interval_t *), by_offset);
    /* Best fit: the smallest gap that holds it; else after the last one. */
    uint64_t best = UINT64_MAX, best_gap = UINT64_MAX, cursor = 0;
    for (int j = 0; j < m; j++) {
      if (live[j]->offset > cursor) {
        uint64_t gap = live[j]->offset - cursor;
        if (gap >= iv[i].bytes && gap < best_gap) {
          best_gap = gap;
          best = cursor;
        }
      }
      uint64_t end = live[j]->offset + live[j]->bytes;
      if (end > cursor) cursor = end;
    }
    iv[i].offset = best != UINT64_MAX ? best : cursor;
    if (iv[i].offset + iv[i].bytes > arena) arena = iv[i].offset + iv[i].bytes;
  }
  for (int v = 0; v < g->n_values; v++) c->arena_offset[v] = UINT64_MAX;
  for (int i = 0; i < n; i++) c->arena_offset[iv[i].value] = iv[i].offset;
  c->arena_bytes = oc_align_up(arena, OC_ALIGNMENT);
  free(live);
  free(iv);
  return oc_memplan_validate(c);
}

oc_status_t oc_memplan_validate(const oc_entry_t *c) {
  interval_t *iv = NULL;
  int n = 0;
  /* lifetimes() only adds workspace values that are missing; after planning
   * there are none, so the const cast does not change the graph. */
  OC_RETURN_IF_ERROR(lifetimes((oc_entry_t *)c, &iv, &n));
  oc_status_t s = OC_OK;
  for (int i = 0; i < n; i++) iv[i].offset = c->arena_offset[iv[i].value];
  for (int i = 0; i < n && !s; i++) {
    if (iv[i].offset == UINT64_MAX || iv[i].offset % OC_ALIGNMENT ||
        iv[i].offset + iv[i].bytes > c->arena_bytes) {
      s = oc_make_status(OC_STATUS_INTERNAL, "memory plan: '%s' is not placed inside the arena",
                         c->graph->values[iv[i].value].name);
      break;
    }
    for (int j = i + 1; j < n; j++) {
      if (!overlaps_in_time(&iv[i], &iv[j]) || !iv[i].bytes || !iv[j].bytes) continue;
      if (iv[i].offset < iv[j].offset + iv[j].bytes && iv[j].offset < iv[i].offset + iv[i].bytes) {
        s = oc_make_status(OC_STATUS_INTERNAL, "memory plan: '%s' and '%s' are live together "
                           "but overlap", c->graph->values[iv[i].value].name,
                           c->graph->values[iv[j].value].name);
        break;
      }
    }
  }
  free(iv);
  return s;
}
