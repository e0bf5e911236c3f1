/*
 * The memory report (--memory-report FILE.json) and picture (--memory-svg
 * FILE.svg) of a compiled plan's largest entry point: the train step when
 * there is one, else embed. Field names are read by users' tools: keep them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memplan.h"
#include "memreport.h"
#include "recompute.h"
#include "tensor_file.h"

typedef struct text_s {
  char *buf;
  size_t len, cap;
  int failed;
} text_t;

static void put(text_t *t, const char *fmt, ...) OC_PRINTF(2, 3);
static void put(text_t *t, const char *fmt, ...) {
  if (t->failed) return;
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) n = 0;
  if (t->len + (size_t)n + 1 > t->cap) {
    size_t cap = (t->cap + (size_t)n + 1) * 2;
    char *nb = realloc(t->buf, cap);
    if (!nb) {
      t->failed = 1;
      va_end(ap);
      return;
    }
    t->buf = nb;
    t->cap = cap;
  }
  vsnprintf(t->buf + t->len, (size_t)n + 1, fmt, ap);
  t->len += (size_t)n;
  va_end(ap);
}

static void put_json_string(text_t *t, const char *s) {
  put(t, "\"");
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      put(t, "\\%c", c);
    else if (c < 0x20)
      put(t, "\\u%04x", c);
    else
      put(t, "%c", c);
  }
  put(t, "\"");
}

static const oc_entry_t *largest_entry(const oc_compiled_t *c) {
  for (int k = 0; k < c->n_entries; k++)
    if (!strcmp(c->entries[k].name, "train_step")) return &c->entries[k];
  return &c->entries[0];
}

/* Bytes of the persistent regions, by what they hold. */
typedef struct regions_s {
  uint64_t constants, parameters, gradients, optimizer, statistics, other_state;
} regions_t;

static int seen_name(const char **names, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (!strcmp(names[i], name)) return 1;
  return 0;
}

static void count_regions(const oc_compiled_t *c, regions_t *r) {
  memset(r, 0, sizeof *r);
  int cap = 0;
  for (int k = 0; k < c->n_entries; k++) cap += c->entries[k].graph->n_values;
  const char **seen = malloc(sizeof(char *) * (size_t)(cap + 1));
  int n = 0;
  if (!seen) return;
  for (int k = 0; k < c->n_entries; k++) {
    const oc_graph_t *g = c->entries[k].graph;
    char *used = calloc((size_t)g->n_values + 1, 1);
    if (!used) continue;
    for (int i = 0; i < g->n_instrs; i++)
      for (int j = 0; j < g->instrs[i].n_in; j++)
        if (g->instrs[i].in[j] >= 0) used[g->instrs[i].in[j]] = 1;
    for (int j = 0; j < c->entries[k].n_outputs; j++) used[c->entries[k].outputs[j]] = 1;
    for (int v = 0; v < g->n_values; v++) {
      const oc_value_t *val = &g->values[v];
      if (!used[v] || (val->kind != OC_VALUE_CONST && val->kind != OC_VALUE_STATE)) continue;
      if (seen_name(seen, n, val->name)) continue;
      seen[n++] = val->name;
      uint64_t b = oc_align_up(oc_tensor_bytes(&val->type), OC_ALIGNMENT);
      if (val->kind == OC_VALUE_CONST) {
        r->constants += b;
        continue;
      }
      r->constants += b; /* a state's initial value is a constant too */
      char gname[600];
      snprintf(gname, sizeof gname, "grad:%s", val->name);
      if (!strncmp(val->name, "grad:", 5))
        r->gradients += b;
      else if (!strncmp(val->name, "opt:", 4))
        r->optimizer += b;
      else if (val->is_initializer && oc_graph_find(g, gname) >= 0)
        r->parameters += b;
      else if (val->is_initializer)
        r->statistics += b;
      else
        r->other_state += b;
    }
    free(used);
  }
  if (c->source_model.type.data)
    r->constants += oc_align_up(oc_tensor_bytes(&c->source_model.type), OC_ALIGNMENT);
  free(seen);
}

oc_status_t oc_memory_report_json(const oc_compiled_t *c, char **out) {
  *out = NULL;
  const oc_entry_t *e = largest_entry(c);
  const oc_graph_t *g = e->graph;
  int *first = malloc(sizeof(int) * (size_t)(g->n_values + 1));
  int *last = malloc(sizeof(int) * (size_t)(g->n_values + 1));
  if (!first || !last) {
    free(first);
    free(last);
    return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  }
  oc_memplan_lifetimes(e, first, last);
  regions_t r;
  count_regions(c, &r);
  text_t t = {0};
  put(&t, "{\n  \"entry\": ");
  put_json_string(&t, e->name);
  put(&t, ",\n  \"regions\": {\"constants\": %llu, \"parameters\": %llu, \"gradients\": %llu, "
      "\"optimizer\": %llu, \"statistics\": %llu, \"other_state\": %llu, \"arena\": %llu},\n",
      (unsigned long long)r.constants, (unsigned long long)r.parameters,
      (unsigned long long)r.gradients, (unsigned long long)r.optimizer,
      (unsigned long long)r.statistics, (unsigned long long)r.other_state,
      (unsigned long long)e->arena_bytes);
  put(&t, "  \"arena_bytes\": %llu,\n  \"lower_bound_bytes\": %llu,\n  \"peak_step\": %d,\n",
      (unsigned long long)e->arena_bytes, (unsigned long long)e->lower_bound_bytes, e->peak_step);
  put(&t, "  \"steps\": %d,\n  \"strategy\": ", g->n_instrs);
  put_json_string(&t, e->strategy ? e->strategy : "");
  /* --memory-budget: what recomputation costs (budget 0: none given). */
  double step_flops = (double)e->step_flops;
  if (!e->budget_bytes)
    for (int i = 0; i < g->n_instrs; i++) step_flops += oc_instr_flops(g, &g->instrs[i]);
  put(&t, ",\n  \"budget_bytes\": %llu,\n  \"unbudgeted_arena_bytes\": %llu,\n"
      "  \"recompute_flops\": %llu,\n  \"step_flops\": %.0f,\n"
      "  \"recomputed_instructions\": %d,\n  \"recompute_strategy\": ",
      (unsigned long long)e->budget_bytes,
      (unsigned long long)(e->budget_bytes ? e->unbudgeted_arena_bytes : e->arena_bytes),
      (unsigned long long)e->recompute_flops, step_flops, e->n_recomputed);
  put_json_string(&t, e->recompute_strategy ? e->recompute_strategy : "none");
  put(&t, ",\n  \"chen_recompute_flops\": %lld",
      (long long)(e->budget_bytes ? e->chen_recompute_flops : -1));
  put(&t, ",\n  \"entries\": [");
  for (int k = 0; k < c->n_entries; k++) {
    put(&t, "%s{\"name\": ", k ? ", " : "");
    put_json_string(&t, c->entries[k].name);
    put(&t, ", \"arena_bytes\": %llu, \"lower_bound_bytes\": %llu}",
        (unsigned long long)c->entries[k].arena_bytes,
        (unsigned long long)c->entries[k].lower_bound_bytes);
  }
  put(&t, "],\n  \"tensors\": [");
  int n = 0;
  for (int v = 0; v < g->n_values; v++) {
    if (first[v] == INT32_MIN || e->arena_offset[v] == UINT64_MAX) continue;
    put(&t, "%s\n    {\"name\": ", n++ ? "," : "");
    put_json_string(&t, g->values[v].name);
    put(&t, ", \"bytes\": %llu, \"offset\": %llu, \"first_step\": %d, \"last_step\": %d",
        (unsigned long long)oc_tensor_bytes(&g->values[v].type),
        (unsigned long long)e->arena_offset[v], first[v], last[v]);
    if (e->inplace_of && e->inplace_of[v] >= 0) {
      put(&t, ", \"inplace_of\": ");
      put_json_string(&t, g->values[e->inplace_of[v]].name);
    }
    put(&t, "}");
  }
  put(&t, "\n  ]\n}\n");
  free(first);
  free(last);
  if (t.failed) {
    free(t.buf);
    return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  }
  *out = t.buf;
  return OC_OK;
}

/* forward / backward / optimizer / recomputed (--memory-budget), from the
 * instruction that made a value. */
static int phase_of(const oc_graph_t *g, int v) {
  int p = g->values[v].producer;
  if (p < 0) return 0;
  int op = g->instrs[p].op;
  if (op == OC_OP_ASSIGN || op == OC_OP_CHECK_FINITE || op == OC_OP_SGD_UPDATE ||
      op == OC_OP_ADAM_UPDATE || op == OC_OP_LARS_UPDATE || op == OC_OP_LR_SCHEDULE ||
      op == OC_OP_STEP_COUNT)
    return 2;
  size_t len = strlen(g->instrs[p].node);
  if (len >= 10 && !strcmp(g->instrs[p].node + len - 10, "/recompute")) return 3;
  return strstr(g->instrs[p].node, "/grad") ? 1 : 0;
}

oc_status_t oc_memory_report_svg(const oc_compiled_t *c, char **out) {
  *out = NULL;
  const oc_entry_t *e = largest_entry(c);
  const oc_graph_t *g = e->graph;
  int *first = malloc(sizeof(int) * (size_t)(g->n_values + 1));
  int *last = malloc(sizeof(int) * (size_t)(g->n_values + 1));
  if (!first || !last) {
    free(first);
    free(last);
    return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  }
  oc_memplan_lifetimes(e, first, last);
  const double W = 1000, H = 600, L = 80, T = 50, PW = W - L - 200, PH = H - T - 60;
  int steps = g->n_instrs + 2; /* -1 .. n */
  double arena = e->arena_bytes ? (double)e->arena_bytes : 1;
  static const char *const colors[4] = {"#4e79a7", "#e15759", "#59a14f", "#f28e2b"};
  static const char *const labels[4] = {"forward", "backward", "optimizer", "recomputed"};
  text_t t = {0};
  put(&t, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n", W, H);
  put(&t, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
  put(&t, "<text x=\"%.0f\" y=\"24\" font-size=\"16\">arena of '%s': %.2f MiB "
      "(lower bound %.2f MiB), %d steps</text>\n", L, e->name, arena / 1048576.0,
      (double)e->lower_bound_bytes / 1048576.0, g->n_instrs);
  put(&t, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" "
      "stroke=\"#888\"/>\n", L, T, PW, PH);
  for (int v = 0; v < g->n_values; v++) {
    if (first[v] == INT32_MIN || e->arena_offset[v] == UINT64_MAX) continue;
    uint64_t b = oc_tensor_bytes(&g->values[v].type);
    if (!b) continue;
    double x = L + PW * (first[v] + 1) / steps, w = PW * (last[v] - first[v] + 1) / steps;
    double y = T + PH - PH * ((double)e->arena_offset[v] + (double)b) / arena;
    double h = PH * (double)b / arena;
    put(&t, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\" "
        "fill-opacity=\"0.75\" stroke=\"#222\" stroke-width=\"0.2\"><title>", x, y,
        w > 0.5 ? w : 0.5, h > 0.5 ? h : 0.5, colors[phase_of(g, v)]);
    for (const char *p = g->values[v].name; *p; p++) {
      if (*p == '<') put(&t, "&lt;");
      else if (*p == '&') put(&t, "&amp;");
      else put(&t, "%c", *p);
    }
    put(&t, " (%llu bytes, steps %d-%d)</title></rect>\n", (unsigned long long)b, first[v], last[v]);
  }
  double px = L + PW * (e->peak_step + 1.5) / steps;
  put(&t, "<line x1=\"%.2f\" y1=\"%.0f\" x2=\"%.2f\" y2=\"%.0f\" stroke=\"black\" "
      "stroke-dasharray=\"4 3\"/>\n", px, T, px, T + PH);
  put(&t, "<text x=\"%.2f\" y=\"%.0f\" text-anchor=\"middle\">peak (step %d)</text>\n", px, T - 6,
      e->peak_step);
  put(&t, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">step</text>\n", L + PW / 2, H - 20);
  put(&t, "<text x=\"20\" y=\"%.0f\" transform=\"rotate(-90 20 %.0f)\" text-anchor=\"middle\">"
      "offset (bytes)</text>\n", T + PH / 2, T + PH / 2);
  put(&t, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">0</text>\n", L - 4, T + PH);
  put(&t, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">%.2f MiB</text>\n", L - 4, T + 10,
      arena / 1048576.0);
  for (int k = 0; k < 4; k++) {
    put(&t, "<rect x=\"%.0f\" y=\"%.0f\" width=\"14\" height=\"14\" fill=\"%s\"/>\n",
        L + PW + 20, T + 20.0 * k, colors[k]);
    put(&t, "<text x=\"%.0f\" y=\"%.0f\">%s</text>\n", L + PW + 40, T + 20.0 * k + 12, labels[k]);
  }
  put(&t, "</svg>\n");
  free(first);
  free(last);
  if (t.failed) {
    free(t.buf);
    return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  }
  *out = t.buf;
  return OC_OK;
}
