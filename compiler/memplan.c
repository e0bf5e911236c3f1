/*
 * Memory planning: one arena per entry point.
 *
 * Time: instruction i runs at step i. Caller inputs are live from step -1
 * (bound before the run) to step n: a context may run an entry point again
 * on the same inputs (the train step does, every step). Entry outputs stay
 * live to step n (read after the run). A value is live from its defining step
 * to its last use, inclusive.
 *
 * In place: when an op declares that its output may share input k's bytes
 * (oc_op_def_t.inplace) and input k is a temporary that dies at that
 * instruction with the output's size, the two form one buffer. Buffers (one
 * or more values chained in place) are what gets placed.
 *
 * Offsets: greedy strategies over buffer lifetimes, keeping the smallest
 * arena (Pisarchyk & Lee): by size (largest first, best-fitting gap among the
 * buffers it overlaps in time), by breadth (steps in decreasing order of live
 * bytes, each step's unplaced buffers largest first, same best fit), and by
 * size x lifetime and by lifetime, which win on some training graphs. When
 * they all end above the lower bound, a bottom-up search (after Moffitt's
 * MiniMalloc) looks for a smaller arena: buffers are placed in increasing
 * order of offset, each on top of the highest buffer below it, pruned by
 * what is still to place at each step; it finds the bound or a few tenths
 * of a percent above it where the greedy strategies stop a percent or two
 * above (two-view training steps, whose workspaces come and go under
 * long-lived activations). Then, within a work budget, greedy by size with
 * jittered sizes. Everything is 64-byte aligned. The lower bound is the
 * largest sum of live buffer bytes at any step.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memplan.h"

typedef struct buffer_s {
  int root;       /* value that names the buffer */
  int first, last;
  uint64_t bytes;
  uint64_t offset;
} buffer_t;

static int in_arena(const oc_value_t *v) {
  return v->kind == OC_VALUE_TEMP || v->kind == OC_VALUE_INPUT;
}

/* Adds a value for each instruction's workspace (idempotent). */
static oc_status_t add_workspaces(oc_graph_t *g) {
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
  return OC_OK;
}

void oc_memplan_lifetimes(const oc_entry_t *e, int *first, int *last) {
  const oc_graph_t *g = e->graph;
  for (int v = 0; v < g->n_values; v++) first[v] = last[v] = INT32_MIN;
  for (int k = 0; k < e->n_inputs; k++) {
    first[e->inputs[k]] = -1;
    last[e->inputs[k]] = g->n_instrs;
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
  for (int k = 0; k < e->n_outputs; k++) {
    int v = e->outputs[k];
    if (in_arena(&g->values[v])) last[v] = g->n_instrs;
  }
}

/* Decides in-place sharing: inplace_of[out] = the input whose bytes it takes. */
static void choose_inplace(const oc_entry_t *e, const int *first, const int *last, int *inplace_of) {
  const oc_graph_t *g = e->graph;
  char *taken = calloc((size_t)g->n_values + 1, 1); /* an input already given away */
  char *pinned = calloc((size_t)g->n_values + 1, 1); /* entry inputs and outputs */
  for (int v = 0; v < g->n_values; v++) inplace_of[v] = -1;
  if (!taken || !pinned) { /* in place is an optimization */
    free(taken);
    free(pinned);
    return;
  }
  for (int k = 0; k < e->n_inputs; k++) pinned[e->inputs[k]] = 1;
  for (int k = 0; k < e->n_outputs; k++) pinned[e->outputs[k]] = 1;
  for (int i = 0; i < g->n_instrs; i++) {
    const oc_instr_t *ins = &g->instrs[i];
    uint32_t may = oc_op_get(ins->op)->inplace;
    if (!may || ins->n_out < 1) continue;
    int out = ins->out[0];
    if (pinned[out] || first[out] != i) continue;
    uint64_t out_bytes = oc_tensor_bytes(&g->values[out].type);
    for (int k = 0; k < ins->n_in && k < 32; k++) {
      int v = ins->in[k];
      if (!(may >> k & 1u) || v < 0 || pinned[v] || taken[v]) continue;
      if (g->values[v].kind != OC_VALUE_TEMP || last[v] != i) continue;
      if (oc_tensor_bytes(&g->values[v].type) != out_bytes) continue;
      /* The same value twice as an input (x * x) must stay readable. */
      int twice = 0;
      for (int j = 0; j < ins->n_in; j++) twice += ins->in[j] == v;
      if (twice > 1) continue;
      inplace_of[out] = v;
      taken[v] = 1;
      break;
    }
  }
  free(taken);
  free(pinned);
}

static int root_of(const int *inplace_of, int v) {
  while (inplace_of[v] >= 0) v = inplace_of[v];
  return v;
}

static int overlaps(const buffer_t *a, const buffer_t *b) {
  return a->first <= b->last && b->first <= a->last;
}

static int by_offset(const void *a, const void *b) {
  const buffer_t *const *x = a, *const *y = b;
  if ((*x)->offset != (*y)->offset) return (*x)->offset < (*y)->offset ? -1 : 1;
  return 0;
}

/* Best-fit offset for |b| among |placed| (those overlapping in time). */
static uint64_t best_fit(const buffer_t *b, buffer_t **placed, int n_placed, buffer_t **scratch) {
  int m = 0;
  for (int j = 0; j < n_placed; j++)
    if (placed[j]->bytes && overlaps(b, placed[j])) scratch[m++] = placed[j];
  qsort(scratch, (size_t)m, sizeof(buffer_t *), by_offset);
  uint64_t best = UINT64_MAX, best_gap = UINT64_MAX, cursor = 0;
  for (int j = 0; j < m; j++) {
    if (scratch[j]->offset > cursor) {
      uint64_t gap = scratch[j]->offset - cursor;
      if (gap >= b->bytes && gap < best_gap) {
        best_gap = gap;
        best = cursor;
      }
    }
    uint64_t end = scratch[j]->offset + scratch[j]->bytes;
    if (end > cursor) cursor = end;
  }
  return best != UINT64_MAX ? best : cursor;
}

static int by_size_desc(const void *a, const void *b) {
  const buffer_t *const *x = a, *const *y = b;
  if ((*x)->bytes != (*y)->bytes) return (*x)->bytes < (*y)->bytes ? 1 : -1;
  if ((*x)->first != (*y)->first) return (*x)->first - (*y)->first;
  return (*x)->root - (*y)->root;
}

static int by_area_desc(const void *a, const void *b) {
  const buffer_t *const *x = a, *const *y = b;
  double ax = (double)(*x)->bytes * ((*x)->last - (*x)->first + 1);
  double ay = (double)(*y)->bytes * ((*y)->last - (*y)->first + 1);
  if (ax != ay) return ax < ay ? 1 : -1;
  return by_size_desc(a, b);
}

static int by_length_desc(const void *a, const void *b) {
  const buffer_t *const *x = a, *const *y = b;
  int lx = (*x)->last - (*x)->first, ly = (*y)->last - (*y)->first;
  if (lx != ly) return ly - lx;
  return by_size_desc(a, b);
}

/* Greedy in the order |cmp| gives: each buffer at its best-fitting gap.
 * Returns the arena size. */
static uint64_t place_in_order(buffer_t *buf, int n, int (*cmp)(const void *, const void *),
                               buffer_t **order, buffer_t **placed, buffer_t **scratch) {
  for (int i = 0; i < n; i++) order[i] = &buf[i];
  qsort(order, (size_t)n, sizeof(buffer_t *), cmp);
  uint64_t arena = 0;
  for (int i = 0; i < n; i++) {
    order[i]->offset = best_fit(order[i], placed, i, scratch);
    placed[i] = order[i];
    if (order[i]->offset + order[i]->bytes > arena) arena = order[i]->offset + order[i]->bytes;
  }
  return arena;
}

typedef struct step_s {
  int t;
  uint64_t breadth;
} step_t;

static int by_breadth_desc(const void *a, const void *b) {
  const step_t *x = a, *y = b;
  if (x->breadth != y->breadth) return x->breadth < y->breadth ? 1 : -1;
  return x->t - y->t;
}

/* Greedy by breadth: the busiest steps first. Returns the arena size. */
static uint64_t place_by_breadth(buffer_t *buf, int n, int t0, int t1, buffer_t **order,
                                 buffer_t **placed, buffer_t **scratch) {
  int n_steps = t1 - t0 + 1;
  step_t *steps = calloc((size_t)n_steps, sizeof(step_t));
  char *done = calloc((size_t)n + 1, 1);
  if (!steps || !done) {
    free(steps);
    free(done);
    return UINT64_MAX;
  }
  for (int s = 0; s < n_steps; s++) steps[s].t = t0 + s;
  for (int i = 0; i < n; i++)
    for (int t = buf[i].first; t <= buf[i].last; t++) steps[t - t0].breadth += buf[i].bytes;
  qsort(steps, (size_t)n_steps, sizeof(step_t), by_breadth_desc);
  int n_placed = 0;
  uint64_t arena = 0;
  for (int s = 0; s < n_steps; s++) {
    int m = 0;
    for (int i = 0; i < n; i++)
      if (!done[i] && buf[i].first <= steps[s].t && steps[s].t <= buf[i].last) order[m++] = &buf[i];
    qsort(order, (size_t)m, sizeof(buffer_t *), by_size_desc);
    for (int k = 0; k < m; k++) {
      order[k]->offset = best_fit(order[k], placed, n_placed, scratch);
      placed[n_placed++] = order[k];
      done[order[k] - buf] = 1;
      if (order[k]->offset + order[k]->bytes > arena) arena = order[k]->offset + order[k]->bytes;
    }
  }
  free(steps);
  free(done);
  return arena;
}

/* The largest sum of live buffer bytes at any step of [t0, t1], and the
 * first step that reaches it (-1 when nothing is live). */
static uint64_t busiest_step(const buffer_t *buf, int n, int t0, int t1, int *peak) {
  int n_steps = t1 - t0 + 1;
  int64_t *delta = calloc((size_t)n_steps + 1, sizeof(int64_t));
  uint64_t best = 0;
  *peak = -1;
  if (!delta) return UINT64_MAX;
  for (int b = 0; b < n; b++) {
    delta[buf[b].first - t0] += (int64_t)buf[b].bytes;
    delta[buf[b].last + 1 - t0] -= (int64_t)buf[b].bytes;
  }
  int64_t live = 0;
  for (int s = 0; s < n_steps; s++) {
    live += delta[s];
    if ((uint64_t)live > best) {
      best = (uint64_t)live;
      *peak = t0 + s;
    }
  }
  free(delta);
  return best;
}

/*
 * Bottom-up search for a placement within |cap| bytes. Buffers go down in
 * increasing order of offset, each at its floor: the highest top of the
 * placed buffers it overlaps in time. Every placement can be lowered until
 * each buffer rests on another or on 0, and such a placement, taken in
 * order of offset, is one of these sequences, so the search misses none but
 * those its branching limit cuts. A node fails when, at some step, the
 * bytes still to place do not fit between the current offset (or the
 * highest placed top there) and |cap|. Branches: the candidates with the
 * lowest floor (ties broken three ways, one search each), at most
 * SEARCH_BRANCHES of them per node.
 */
enum { SEARCH_BRANCHES = 3 };

typedef struct undo_s {
  uint64_t *at;
  uint64_t old;
} undo_t;

typedef struct search_s {
  buffer_t *buf;
  int n, t0, n_steps;
  uint64_t cap;
  int order;       /* candidate order: 0 lifetime, 1 size, 2 size x lifetime */
  uint64_t *sky;   /* per step: highest top of the placed buffers live there */
  uint64_t *live;  /* per step: bytes of the unplaced buffers live there */
  uint64_t *floor; /* per buffer: highest top of the placed buffers it overlaps */
  char *done;
  undo_t *log;
  size_t n_log, cap_log;
  /* per depth d: candidates, the next one to try, where the log stood */
  int *cand, *n_cand, *next;
  size_t *mark;
  uint64_t *level; /* offset of the buffer placed at depth d - 1 */
  long nodes;
} search_t;

static int set_logged(search_t *s, uint64_t *at, uint64_t v) {
  if (s->n_log == s->cap_log) {
    size_t cap = s->cap_log ? 2 * s->cap_log : 4096;
    undo_t *nl = realloc(s->log, cap * sizeof(undo_t));
    if (!nl) return -1;
    s->log = nl;
    s->cap_log = cap;
  }
  s->log[s->n_log++] = (undo_t){at, *at};
  *at = v;
  return 0;
}

static int place_at_floor(search_t *s, int i) {
  buffer_t *b = &s->buf[i];
  b->offset = s->floor[i];
  uint64_t top = b->offset + b->bytes;
  s->done[i] = 1;
  for (int t = b->first; t <= b->last; t++) {
    s->live[t - s->t0] -= b->bytes;
    if (s->sky[t - s->t0] < top && set_logged(s, &s->sky[t - s->t0], top)) return -1;
  }
  for (int j = 0; j < s->n; j++)
    if (!s->done[j] && s->floor[j] < top && overlaps(b, &s->buf[j]) &&
        set_logged(s, &s->floor[j], top))
      return -1;
  return 0;
}

static void unplace(search_t *s, int i, size_t mark) {
  while (s->n_log > mark) {
    s->n_log--;
    *s->log[s->n_log].at = s->log[s->n_log].old;
  }
  const buffer_t *b = &s->buf[i];
  for (int t = b->first; t <= b->last; t++) s->live[t - s->t0] += b->bytes;
  s->done[i] = 0;
}

/* Whether buffer a comes before b among candidates: the lower floor, then
 * by s->order the longer lifetime, the larger size or the larger size x
 * lifetime (each wins on some programs: long-lived inputs want the bottom,
 * large workspaces too). */
static int better_candidate(const search_t *s, int a, int b) {
  const buffer_t *x = &s->buf[a], *y = &s->buf[b];
  if (s->floor[a] != s->floor[b]) return s->floor[a] < s->floor[b];
  int lx = x->last - x->first, ly = y->last - y->first;
  double ax = (double)x->bytes * (lx + 1), ay = (double)y->bytes * (ly + 1);
  if (s->order == 0 && lx != ly) return lx > ly;
  if (s->order == 2 && ax != ay) return ax > ay;
  if (x->bytes != y->bytes) return x->bytes > y->bytes;
  if (lx != ly) return lx > ly;
  return a < b;
}

/* Fills the candidates of depth |d| (0 when the node fails). */
static void expand(search_t *s, int d) {
  uint64_t last = s->level[d];
  int *c = &s->cand[(size_t)d * SEARCH_BRANCHES], m = 0;
  s->n_cand[d] = s->next[d] = 0;
  s->mark[d] = s->n_log;
  for (int t = 0; t < s->n_steps; t++) {
    uint64_t base = s->sky[t] > last ? s->sky[t] : last;
    if (s->live[t] && base + s->live[t] > s->cap) return;
  }
  for (int i = 0; i < s->n; i++) {
    if (s->done[i]) continue;
    uint64_t base = s->floor[i] > last ? s->floor[i] : last;
    if (base + s->buf[i].bytes > s->cap) return;
    if (s->floor[i] < last) continue;
    /* Keep the best SEARCH_BRANCHES, in order. */
    int k;
    if (m < SEARCH_BRANCHES)
      k = m++;
    else if (better_candidate(s, i, c[SEARCH_BRANCHES - 1]))
      k = SEARCH_BRANCHES - 1;
    else
      continue;
    while (k > 0 && better_candidate(s, i, c[k - 1])) {
      c[k] = c[k - 1];
      k--;
    }
    c[k] = i;
  }
  s->n_cand[d] = m;
}

/* Places every buffer within s->cap, or returns UINT64_MAX when the search
 * fails or visits |max_nodes| nodes. */
static uint64_t search_within(search_t *s, long max_nodes) {
  buffer_t *buf = s->buf;
  int n = s->n;
  memset(s->sky, 0, sizeof(uint64_t) * (size_t)s->n_steps);
  memset(s->live, 0, sizeof(uint64_t) * (size_t)s->n_steps);
  memset(s->done, 0, (size_t)n);
  s->n_log = 0;
  int n_open = 0;
  for (int i = 0; i < n; i++) {
    s->floor[i] = 0;
    if (!buf[i].bytes) {
      s->done[i] = 1;
      buf[i].offset = 0;
      continue;
    }
    n_open++;
    for (int t = buf[i].first; t <= buf[i].last; t++) s->live[t - s->t0] += buf[i].bytes;
  }
  /* depth d = number of buffers placed; chosen[d] at depth d is in cand */
  int d = 0;
  s->level[0] = 0;
  expand(s, 0);
  long nodes = 1;
  while (d < n_open) {
    if (s->next[d] < s->n_cand[d] && nodes < max_nodes) {
      int i = s->cand[(size_t)d * SEARCH_BRANCHES + s->next[d]++];
      if (place_at_floor(s, i)) return UINT64_MAX;
      d++;
      s->level[d] = buf[i].offset;
      if (d < n_open) {
        expand(s, d);
        nodes++;
      }
      continue;
    }
    if (d == 0 || nodes >= max_nodes) {
      s->nodes += nodes;
      return UINT64_MAX;
    }
    /* Back to depth d - 1: undo the buffer it placed. */
    d--;
    int i = s->cand[(size_t)d * SEARCH_BRANCHES + s->next[d] - 1];
    unplace(s, i, s->mark[d]);
  }
  s->nodes += nodes;
  uint64_t arena = 0;
  for (int i = 0; i < n; i++)
    if (buf[i].offset + buf[i].bytes > arena) arena = buf[i].offset + buf[i].bytes;
  return arena;
}

/* The smallest arena the search finds between |lb| and |hi| (exclusive),
 * within about |work| steps of work; UINT64_MAX when none. Offsets of the
 * best placement found are left in |buf|; |keep| receives them. */
static uint64_t place_by_search(buffer_t *buf, int n, int t0, int t1, uint64_t lb, uint64_t hi,
                                double work, uint64_t *keep) {
  search_t s = {.buf = buf, .n = n, .t0 = t0, .n_steps = t1 - t0 + 1};
  s.sky = malloc(sizeof(uint64_t) * (size_t)s.n_steps);
  s.live = malloc(sizeof(uint64_t) * (size_t)s.n_steps);
  s.floor = malloc(sizeof(uint64_t) * (size_t)(n + 1));
  s.done = malloc((size_t)n + 1);
  s.cand = malloc(sizeof(int) * (size_t)(n + 1) * SEARCH_BRANCHES);
  s.n_cand = malloc(sizeof(int) * (size_t)(n + 1));
  s.next = malloc(sizeof(int) * (size_t)(n + 1));
  s.mark = malloc(sizeof(size_t) * (size_t)(n + 1));
  s.level = malloc(sizeof(uint64_t) * (size_t)(n + 1));
  uint64_t best = UINT64_MAX;
  if (s.sky && s.live && s.floor && s.done && s.cand && s.n_cand && s.next && s.mark && s.level) {
    /* Each node costs about n + steps; at most 100 nodes a buffer. The
     * first try (at the bound, in each candidate order) gets half the
     * budget, the bisection the rest. */
    long total = (long)(work / (double)(n + s.n_steps + 1)), per_try;
    if (total > 100L * n + 10000) total = 100L * n + 10000;
    per_try = total / 6;
    if (per_try < n + 2) per_try = n + 2;
    uint64_t lo = lb, cap = lb; /* first at the bound itself, then bisect */
    while (s.nodes < total) {
      s.cap = cap;
      uint64_t a = UINT64_MAX;
      for (s.order = 0; s.order < 3 && a == UINT64_MAX && s.nodes < total; s.order++)
        a = search_within(&s, per_try);
      if (a != UINT64_MAX) {
        best = hi = a;
        for (int b = 0; b < n; b++) keep[b] = buf[b].offset;
      } else {
        lo = cap + OC_ALIGNMENT;
      }
      if (lo >= hi) break;
      cap = (lo + (hi - lo) / 2) & ~(uint64_t)(OC_ALIGNMENT - 1);
      if (cap < lo) cap = lo;
      per_try = total / 24 > n + 2 ? total / 24 : n + 2;
    }
  }
  free(s.sky);
  free(s.live);
  free(s.floor);
  free(s.done);
  free(s.log);
  free(s.cand);
  free(s.n_cand);
  free(s.next);
  free(s.mark);
  free(s.level);
  return best;
}

/* Liveness, in-place sharing and buffers of |e|: fills first, last and
 * inplace_of (per value), group (value -> buffer index, or -1) and buf.
 * Returns the number of buffers. */
static int make_buffers(const oc_entry_t *e, int *first, int *last, int *inplace_of, int *group,
                        buffer_t *buf) {
  const oc_graph_t *g = e->graph;
  int nv = g->n_values;
  oc_memplan_lifetimes(e, first, last);
  choose_inplace(e, first, last, inplace_of);
  /* Buffers: one per chain of in-place values. */
  int n = 0;
  for (int v = 0; v < nv; v++) group[v] = -1;
  for (int v = 0; v < nv; v++) {
    if (first[v] == INT32_MIN || !in_arena(&g->values[v]) || inplace_of[v] >= 0) continue;
    group[v] = n;
    buf[n] = (buffer_t){.root = v, .first = first[v], .last = last[v],
                        .bytes = oc_align_up(oc_tensor_bytes(&g->values[v].type), OC_ALIGNMENT)};
    n++;
  }
  for (int v = 0; v < nv; v++) {
    if (first[v] == INT32_MIN || !in_arena(&g->values[v]) || inplace_of[v] < 0) continue;
    int b = group[root_of(inplace_of, v)];
    group[v] = b;
    if (last[v] > buf[b].last) buf[b].last = last[v];
  }
  return n;
}

oc_status_t oc_memplan_lower_bound(const oc_entry_t *e, uint64_t *bytes, int *peak_step,
                                   double *byte_steps) {
  int nv = e->graph->n_values;
  int *first = malloc(sizeof(int) * (size_t)(nv + 1));
  int *last = malloc(sizeof(int) * (size_t)(nv + 1));
  int *inplace_of = malloc(sizeof(int) * (size_t)(nv + 1));
  int *group = malloc(sizeof(int) * (size_t)(nv + 1));
  buffer_t *buf = malloc(sizeof(buffer_t) * (size_t)(nv + 1));
  uint64_t lb = UINT64_MAX;
  if (first && last && inplace_of && group && buf) {
    int n = make_buffers(e, first, last, inplace_of, group, buf);
    lb = busiest_step(buf, n, -1, e->graph->n_instrs, peak_step);
    if (byte_steps) {
      *byte_steps = 0;
      for (int b = 0; b < n; b++)
        *byte_steps += (double)buf[b].bytes * (double)(buf[b].last - buf[b].first + 1);
    }
  }
  free(first);
  free(last);
  free(inplace_of);
  free(group);
  free(buf);
  if (lb == UINT64_MAX) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  *bytes = lb;
  return OC_OK;
}

/* Work budget of the search and of the jittered multi-start, in steps of
 * their inner loops: well under a second on the largest training steps. */
#define SEARCH_WORK 3e7
#define JITTER_WORK 4000000

/* Whether input slot |k| of |ins| is updated in place. */
static int updates_input(const oc_instr_t *ins, int k) {
  return k < 32 && (oc_op_get(ins->op)->mutates >> k & 1u);
}

/* Whether |x|, which updates state, may run before |y|, which runs just
 * before it: y makes none of x's inputs, neither reads nor updates what x
 * updates, nor updates what x reads; and if y is a check (no outputs, no
 * updates: it may stop the run), x is a plain store (Assign) that y does
 * not look at (the train step's finiteness check comes in chunks of at most
 * OC_MAX_OP_INPUTS gradients, meant as one check after all the stores; a
 * check guarding a store, as BatchNorm's statistics check does, reads the
 * stored value). */
static int commutes(const oc_instr_t *y, const oc_instr_t *x) {
  if (y->n_out == 0 && !oc_op_get(y->op)->mutates && x->op != OC_OP_ASSIGN) return 0;
  int check = y->n_out == 0 && !oc_op_get(y->op)->mutates;
  for (int k = 0; k < y->n_in && check; k++)
    for (int j = 0; j < x->n_in; j++)
      if (y->in[k] >= 0 && y->in[k] == x->in[j]) return 0;
  for (int k = 0; k < y->n_out; k++)
    for (int j = 0; j < x->n_in; j++)
      if (y->out[k] >= 0 && y->out[k] == x->in[j]) return 0;
  for (int k = 0; k < y->n_in; k++)
    for (int j = 0; j < x->n_in; j++)
      if (y->in[k] >= 0 && y->in[k] == x->in[j] && (updates_input(x, j) || updates_input(y, k)))
        return 0;
  return 1;
}

/* Moves every instruction that updates state as early as it may go (past
 * instructions it commutes with). The train step then stores each gradient
 * (Assign into grad:<name>) as soon as it is final, so the temporary holding
 * it dies there instead of at the end of the backward (on ResNet-18 the
 * layer-4 weight gradients, 9 MiB each, no longer pile up). No update
 * crosses a check (the finiteness check still precedes every optimizer
 * update) or an instruction touching the same state, and every value is the
 * same: a reordering of the schedule, not of the arithmetic. */
static void hoist_state_updates(oc_graph_t *g) {
  for (int i = 1; i < g->n_instrs; i++) {
    const oc_instr_t *x = &g->instrs[i];
    uint32_t mutates = oc_op_get(x->op)->mutates;
    if (!mutates) continue;
    int to = i;
    while (to > 0 && commutes(&g->instrs[to - 1], x)) to--;
    if (to == i) continue;
    oc_instr_t moved = g->instrs[i];
    memmove(&g->instrs[to + 1], &g->instrs[to], sizeof(oc_instr_t) * (size_t)(i - to));
    g->instrs[to] = moved;
  }
  for (int i = 0; i < g->n_instrs; i++) {
    const oc_instr_t *ins = &g->instrs[i];
    for (int k = 0; k < ins->n_out; k++)
      if (ins->out[k] >= 0) g->values[ins->out[k]].producer = i;
    if (ins->workspace >= 0) g->values[ins->workspace].producer = i;
  }
}

oc_status_t oc_memplan_run(oc_entry_t *e) {
  hoist_state_updates(e->graph);
  OC_RETURN_IF_ERROR(add_workspaces(e->graph));
  return oc_memplan_place(e);
}

oc_status_t oc_memplan_place(oc_entry_t *e) {
  const oc_graph_t *g = e->graph;
  int nv = g->n_values;
  int *first = malloc(sizeof(int) * (size_t)(nv + 1));
  int *last = malloc(sizeof(int) * (size_t)(nv + 1));
  int *group = malloc(sizeof(int) * (size_t)(nv + 1)); /* value -> buffer index */
  buffer_t *buf = malloc(sizeof(buffer_t) * (size_t)(nv + 1));
  buffer_t **order = malloc(sizeof(buffer_t *) * (size_t)(nv + 1));
  buffer_t **placed = malloc(sizeof(buffer_t *) * (size_t)(nv + 1));
  buffer_t **scratch = malloc(sizeof(buffer_t *) * (size_t)(nv + 1));
  uint64_t *kept = malloc(sizeof(uint64_t) * (size_t)(nv + 1)); /* best offsets so far */
  free(e->arena_offset);
  free(e->inplace_of);
  e->arena_offset = malloc(sizeof(uint64_t) * (size_t)(nv + 1));
  e->inplace_of = malloc(sizeof(int) * (size_t)(nv + 1));
  oc_status_t s = OC_OK;
  if (!first || !last || !group || !buf || !order || !placed || !scratch || !kept ||
      !e->arena_offset || !e->inplace_of) {
    s = oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory planning memory");
    goto done;
  }
  int n = make_buffers(e, first, last, e->inplace_of, group, buf);
  int t0 = -1, t1 = g->n_instrs, peak;
  uint64_t lb = busiest_step(buf, n, t0, t1, &peak);
  if (lb == UINT64_MAX) {
    s = oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory planning memory");
    goto done;
  }
  /* Try each strategy; keep the smallest arena (stop early at the bound). */
  static const struct {
    const char *name;
    int (*cmp)(const void *, const void *);
  } orders[] = {{"greedy by size", by_size_desc},
                {"greedy by breadth", NULL},
                {"greedy by size x lifetime", by_area_desc},
                {"greedy by lifetime", by_length_desc}};
  uint64_t best = UINT64_MAX;
  for (size_t k = 0; k < sizeof orders / sizeof orders[0] && best > lb; k++) {
    uint64_t a = orders[k].cmp ? place_in_order(buf, n, orders[k].cmp, order, placed, scratch)
                               : place_by_breadth(buf, n, t0, t1, order, placed, scratch);
    if (a < best) {
      best = a;
      e->strategy = orders[k].name;
      for (int b = 0; b < n; b++) kept[b] = buf[b].offset;
    }
  }
  if (best > lb) {
    uint64_t a = place_by_search(buf, n, t0, t1, lb, best, SEARCH_WORK, kept);
    if (a < best) {
      best = a;
      e->strategy = "bottom-up search";
    }
  }
  /* Still above the bound: greedy by size again with sizes jittered by a
   * deterministic pseudo-random factor (multi-start), within a work budget. */
  uint64_t rng = 0x9E3779B97F4A7C15ULL;
  int starts = n > 0 ? (int)(JITTER_WORK / ((uint64_t)n * (uint64_t)n + 1)) : 0;
  if (starts > 64) starts = 64;
  uint64_t *true_bytes = order ? malloc(sizeof(uint64_t) * (size_t)(n + 1)) : NULL;
  for (int k = 0; k < starts && best > lb && true_bytes; k++) {
    for (int b = 0; b < n; b++) true_bytes[b] = buf[b].bytes;
    for (int i = 0; i < n; i++) {
      rng ^= rng << 13;
      rng ^= rng >> 7;
      rng ^= rng << 17;
      order[i] = &buf[i];
      /* Sort key: size scaled by 1 +- 12.5%, kept in the low bits' order. */
      double f = 0.875 + 0.25 * (double)(rng >> 11) / 9007199254740992.0;
      order[i]->bytes = (uint64_t)((double)true_bytes[i] * f);
    }
    qsort(order, (size_t)n, sizeof(buffer_t *), by_size_desc);
    for (int b = 0; b < n; b++) buf[b].bytes = true_bytes[b];
    uint64_t arena = 0;
    for (int i = 0; i < n; i++) {
      order[i]->offset = best_fit(order[i], placed, i, scratch);
      placed[i] = order[i];
      if (order[i]->offset + order[i]->bytes > arena) arena = order[i]->offset + order[i]->bytes;
    }
    if (arena < best) {
      best = arena;
      e->strategy = "greedy by jittered size";
      for (int b = 0; b < n; b++) kept[b] = buf[b].offset;
    }
  }
  free(true_bytes);
  for (int b = 0; b < n; b++) buf[b].offset = kept[b];
  e->arena_bytes = oc_align_up(best == UINT64_MAX ? 0 : best, OC_ALIGNMENT);
  e->lower_bound_bytes = lb;
  e->peak_step = peak;
  for (int v = 0; v < nv; v++)
    e->arena_offset[v] = group[v] >= 0 ? buf[group[v]].offset : UINT64_MAX;
done:
  free(first);
  free(last);
  free(group);
  free(buf);
  free(order);
  free(placed);
  free(scratch);
  free(kept);
  if (s) return s;
  return oc_memplan_validate(e);
}

oc_status_t oc_memplan_validate(const oc_entry_t *e) {
  const oc_graph_t *g = e->graph;
  int nv = g->n_values;
  int *first = malloc(sizeof(int) * (size_t)(nv + 1));
  int *last = malloc(sizeof(int) * (size_t)(nv + 1));
  int *ids = malloc(sizeof(int) * (size_t)(nv + 1));
  oc_status_t s = OC_OK;
  if (!first || !last || !ids) {
    s = oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
    goto done;
  }
  oc_memplan_lifetimes(e, first, last);
  int n = 0;
  for (int v = 0; v < nv; v++)
    if (first[v] != INT32_MIN && in_arena(&g->values[v])) ids[n++] = v;
  for (int a = 0; a < n && !s; a++) {
    int v = ids[a];
    uint64_t off = e->arena_offset[v], bytes = oc_tensor_bytes(&g->values[v].type);
    if (off == UINT64_MAX || off % OC_ALIGNMENT || off + bytes > e->arena_bytes) {
      s = oc_make_status(OC_STATUS_INTERNAL, "memory plan: '%s' is not placed inside the arena",
                         g->values[v].name);
      break;
    }
    for (int b = a + 1; b < n; b++) {
      int w = ids[b];
      uint64_t woff = e->arena_offset[w], wbytes = oc_tensor_bytes(&g->values[w].type);
      if (!bytes || !wbytes || !(first[v] <= last[w] && first[w] <= last[v])) continue;
      if (!(off < woff + wbytes && woff < off + bytes)) continue;
      /* Allowed: an output taking over its input's bytes in place, where the
       * input's last use is the output's first step. */
      int handoff = (e->inplace_of[w] == v && last[v] == first[w]) ||
                    (e->inplace_of[v] == w && last[w] == first[v]);
      if (!handoff) {
        s = oc_make_status(OC_STATUS_INTERNAL, "memory plan: '%s' and '%s' are live together "
                           "but overlap", g->values[v].name, g->values[w].name);
        break;
      }
    }
  }
done:
  free(first);
  free(last);
  free(ids);
  return s;
}
