/*
 * Recomputation under a memory budget (--memory-budget).
 *
 * Time is the instruction index of the program as lowered (the train step:
 * forward, backward, optimizer). A value read long after it was made (a
 * forward activation that the backward reads) has early uses, up to the
 * largest idle gap between two of its uses, and late uses after it. To drop
 * it, its producing instruction is cloned with new output values right
 * before its first late use, the late uses read the clone, and the original
 * dies at its last early use. A clone reads the original inputs where they
 * are still alive (or kept alive for it), else clones of them, recursively:
 * the checkpoints of Chen et al. are the late-used values that stay. One
 * clone may serve all the late needs of an instruction, or (the mode that
 * splits) each cluster of needs gets its own clone, so that nothing
 * recomputed waits long for its next reader. Clones needed at the same
 * place run in program order.
 *
 * What may be cloned: instructions with outputs that are temporaries (not
 * entry outputs) and that update nothing (oc_op_def_t.mutates == 0: no
 * optimizer, state write, or random-number draw, whose state advances), nor
 * talk to other ranks (collectives of onnxc --ranks). A
 * clone must not read state that an instruction updates between the
 * original and the clone, with one exception: training-mode
 * BatchNormalization reads the running statistics (inputs 3, 4) only for
 * its outputs 1 and 2, so a clone that makes output 0 alone may run after
 * they were updated. Each clone runs the original's kernel on the same
 * input values, so every value it makes is bit-identical.
 *
 * What to drop: a choice of which late-used instructions ("saved") stay
 * (checkpoints) and which are recomputed, and of the clone mode. Each choice
 * is evaluated by building the program it gives and taking its liveness
 * lower bound (oc_memplan_lower_bound); the planner reaches that bound or
 * comes within a fraction of a percent of it, and the result is planned for
 * real before it is accepted. Candidates, in both modes: Chen et al.'s
 * sqrt(n) segments; their greedy segmentation under a byte budget, swept
 * over a grid; a greedy from nothing that changes, among the instructions
 * that matter at the busiest step, the one that lowers the bound the most
 * per recomputed operation; and the least memory found (the smallest of
 * those, improved the same way for bytes alone). The cheapest candidate
 * that fits wins, after a pass that keeps again whatever is not needed to
 * fit. Chen's choices are among the candidates, so the result recomputes no
 * more than the best of them that fits (chen_recompute_flops reports it).
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memplan.h"
#include "recompute.h"

/* A value idle for fewer steps than MIN_GAP between two uses is not split
 * into early and late uses; the needs of a recomputed value further apart
 * than SPLIT_GAP get clones of their own (in the mode that splits). */
enum { MIN_GAP = 4, SPLIT_GAP = 2 };
/* Evaluations of candidate choices in one greedy search, at most (each
 * builds a program and takes its lower bound: linear in its size), and the
 * choices tried at each busiest step. */
enum { MAX_EVALS = 2000, MAX_PEAK_CANDIDATES = 48 };

static double numel(const oc_tensor_t *t) {
  double n = 1;
  for (int d = 0; d < t->rank; d++) n *= (double)t->dims[d];
  return n;
}

double oc_instr_flops(const oc_graph_t *g, const oc_instr_t *ins) {
  const oc_tensor_t *x = ins->n_in > 0 && ins->in[0] >= 0 ? &g->values[ins->in[0]].type : NULL;
  const oc_tensor_t *w = ins->n_in > 1 && ins->in[1] >= 0 ? &g->values[ins->in[1]].type : NULL;
  const oc_tensor_t *y = ins->n_out > 0 && ins->out[0] >= 0 ? &g->values[ins->out[0]].type : NULL;
  if (x && w && y) {
    switch (ins->op) {
      case OC_OP_CONV: /* y (N, M, ...) from w (M, C/g, k...) */
        if (w->rank >= 1 && w->dims[0] > 0) return 2 * numel(y) * (numel(w) / (double)w->dims[0]);
        break;
      case OC_OP_CONVTRANSPOSE: /* each x element times w (C, M/g, k...) / C */
        if (w->rank >= 1 && w->dims[0] > 0) return 2 * numel(x) * (numel(w) / (double)w->dims[0]);
        break;
      case OC_OP_MATMUL:
        if (x->rank >= 1) return 2 * numel(y) * (double)x->dims[x->rank - 1];
        break;
      case OC_OP_GEMM: /* ints [transA, transB]; A (m, k) or (k, m) */
        if (x->rank == 2) return 2 * numel(y) * (double)x->dims[ins->n_ints > 0 && ins->ints[0]];
        break;
      default: break;
    }
  }
  double most = 0;
  for (int k = 0; k < ins->n_in; k++)
    if (ins->in[k] >= 0 && numel(&g->values[ins->in[k]].type) > most)
      most = numel(&g->values[ins->in[k]].type);
  for (int k = 0; k < ins->n_out; k++)
    if (ins->out[k] >= 0 && numel(&g->values[ins->out[k]].type) > most)
      most = numel(&g->values[ins->out[k]].type);
  return most;
}

/* Whether |op| talks to the other ranks (onnxc --ranks): running it again
 * would be another collective call, not a local recomputation. */
static int communicates(int op) {
  return op == OC_OP_ALLREDUCE || op == OC_OP_ALLGATHER || op == OC_OP_REDUCE_SCATTER ||
         op == OC_OP_SYNC_BATCHNORM || op == OC_OP_SYNC_BATCHNORM_BWD;
}

/* Training-mode BatchNormalization input |k| feeds only outputs 1 and 2
 * (the updated running statistics), not output 0. */
static int feeds_statistics_only(const oc_instr_t *ins, int k) {
  return ins->op == OC_OP_BATCHNORM && ins->n_ints >= 1 && ins->ints[0] == 1 && (k == 3 || k == 4);
}

/* A need of a recomputed instruction's outputs: at step |pos| (an original
 * step, or where a clone runs), outputs |slots|. */
typedef struct need_s {
  int pos;
  uint32_t slots;
  int next; /* the instruction's next need, or -1 */
} need_t;

/* A clone: instruction |instr| run again right before step |pos|, serving
 * the needs up to step |end|, making the outputs |need|. */
typedef struct clone_s {
  int instr, pos, end;
  uint32_t need;
  int id; /* value id of its output 0 */
  int ws; /* value id of its workspace, or -1 */
} clone_t;

typedef struct rc_s {
  oc_entry_t *e;
  oc_graph_t *g;
  int n, nv;
  int *producer;     /* per value: instruction that makes it, or -1 */
  int *out_slot;     /* per value: its output index there */
  int *use_start, *use; /* per value: instructions reading it, ascending, distinct */
  int *first_late;   /* per value: first use after its largest idle gap (INT_MAX: none) */
  int *last_early;   /* per value: last use before that gap (its producer if unused) */
  char *recomputable; /* per instruction */
  char *saved;        /* per instruction: recomputable with an output used late */
  double *flops;      /* per instruction */
  int *mut_start, *mut; /* per value: steps that update it in place, ascending */
  /* one evaluation */
  char *drop;         /* per instruction: the choice (1 = recompute) */
  int split;          /* a clone per cluster of needs (1), or one per instruction (0) */
  int *need_head;     /* per instruction: its first need, or -1 */
  need_t *needs;
  int n_needs, cap_needs;
  need_t *sorted;     /* scratch: one instruction's needs */
  int *first_clone, *n_clone; /* per instruction: its clones, by position */
  clone_t *clones;
  int n_clones, cap_clones;
  int *bucket_start, *bucket; /* clones by step */
  int *seq;           /* the program: i >= 0 original i, -1 - c clone c */
  int n_seq, n_new_values;
  double clone_flops;
  /* the program of one evaluation, over the entry's values and new ones */
  oc_graph_t shadow;
  oc_entry_t shadow_e;
  int cap_shadow_values, cap_shadow_instrs;
  int *pool;
  size_t pool_len, pool_cap;
  int evals;
  double chen_flops; /* cheapest of Chen's choices within the target, or -1 */
} rc_t;

static void rc_free(rc_t *rc) {
  free(rc->producer);
  free(rc->out_slot);
  free(rc->use_start);
  free(rc->use);
  free(rc->first_late);
  free(rc->last_early);
  free(rc->recomputable);
  free(rc->saved);
  free(rc->flops);
  free(rc->mut_start);
  free(rc->mut);
  free(rc->drop);
  free(rc->need_head);
  free(rc->needs);
  free(rc->sorted);
  free(rc->first_clone);
  free(rc->n_clone);
  free(rc->clones);
  free(rc->bucket_start);
  free(rc->bucket);
  free(rc->seq);
  free(rc->shadow.values);
  free(rc->shadow.instrs);
  free(rc->shadow_e.arena_offset);
  free(rc->shadow_e.inplace_of);
  free(rc->pool);
}

#define RC_ALLOC(p, count) ((p) = calloc((size_t)(count) + 1, sizeof *(p))) == NULL

/* Grows |*p| (|*cap| elements of |size| bytes) to hold |want|. */
static int grow(void **p, int *cap, int want, size_t size) {
  if (want <= *cap) return 0;
  int c = *cap ? *cap : 64;
  while (c < want) c *= 2;
  void *np = realloc(*p, (size_t)c * size);
  if (!np) return -1;
  *p = np;
  *cap = c;
  return 0;
}

static oc_status_t rc_init(rc_t *rc, oc_entry_t *e) {
  oc_graph_t *g = e->graph;
  int n = g->n_instrs, nv = g->n_values;
  rc->e = e;
  rc->g = g;
  rc->n = n;
  rc->nv = nv;
  if (RC_ALLOC(rc->producer, nv) || RC_ALLOC(rc->out_slot, nv) ||
      RC_ALLOC(rc->use_start, nv + 1) || RC_ALLOC(rc->first_late, nv) ||
      RC_ALLOC(rc->last_early, nv) || RC_ALLOC(rc->recomputable, n) || RC_ALLOC(rc->saved, n) ||
      RC_ALLOC(rc->flops, n) || RC_ALLOC(rc->mut_start, nv + 1) || RC_ALLOC(rc->drop, n) ||
      RC_ALLOC(rc->need_head, n) || RC_ALLOC(rc->first_clone, n) || RC_ALLOC(rc->n_clone, n) ||
      RC_ALLOC(rc->bucket_start, n + 1))
    return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  /* Producers, uses (distinct instructions per value), in-place updates. */
  for (int v = 0; v < nv; v++) rc->producer[v] = -1;
  size_t n_uses = 0, n_muts = 0;
  for (int i = 0; i < n; i++) {
    const oc_instr_t *ins = &g->instrs[i];
    uint32_t mutates = oc_op_get(ins->op)->mutates;
    for (int k = 0; k < ins->n_out; k++)
      if (ins->out[k] >= 0) {
        rc->producer[ins->out[k]] = i;
        rc->out_slot[ins->out[k]] = k;
      }
    for (int k = 0; k < ins->n_in; k++) {
      int v = ins->in[k];
      if (v < 0) continue;
      int seen = 0;
      for (int j = 0; j < k; j++) seen |= ins->in[j] == v;
      if (!seen) {
        rc->use_start[v + 1]++;
        n_uses++;
      }
      if (k < 32 && (mutates >> k & 1u)) {
        rc->mut_start[v + 1]++;
        n_muts++;
      }
    }
  }
  for (int v = 0; v < nv; v++) {
    rc->use_start[v + 1] += rc->use_start[v];
    rc->mut_start[v + 1] += rc->mut_start[v];
  }
  if (RC_ALLOC(rc->use, n_uses) || RC_ALLOC(rc->mut, n_muts))
    return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  int *fill = calloc((size_t)nv + 1, sizeof(int)), *mfill = calloc((size_t)nv + 1, sizeof(int));
  if (!fill || !mfill) {
    free(fill);
    free(mfill);
    return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  }
  for (int i = 0; i < n; i++) {
    const oc_instr_t *ins = &g->instrs[i];
    uint32_t mutates = oc_op_get(ins->op)->mutates;
    for (int k = 0; k < ins->n_in; k++) {
      int v = ins->in[k];
      if (v < 0) continue;
      int seen = 0;
      for (int j = 0; j < k; j++) seen |= ins->in[j] == v;
      if (!seen) rc->use[rc->use_start[v] + fill[v]++] = i;
      if (k < 32 && (mutates >> k & 1u)) rc->mut[rc->mut_start[v] + mfill[v]++] = i;
    }
  }
  free(fill);
  free(mfill);
  /* Entry inputs and outputs stay as they are. */
  char *pinned = calloc((size_t)nv + 1, 1);
  if (!pinned) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  for (int k = 0; k < e->n_outputs; k++) pinned[e->outputs[k]] = 1;
  for (int k = 0; k < e->n_inputs; k++) pinned[e->inputs[k]] = 1;
  /* Early and late uses: split at the largest idle gap. */
  for (int v = 0; v < nv; v++) {
    int p = rc->producer[v], a = rc->use_start[v], b = rc->use_start[v + 1];
    rc->first_late[v] = INT_MAX;
    rc->last_early[v] = b > a ? rc->use[b - 1] : p;
    if (p < 0 || b == a) continue;
    int prev = p, gap = 0, at = -1;
    for (int u = a; u < b; u++) {
      if (rc->use[u] - prev > gap) {
        gap = rc->use[u] - prev;
        at = u;
      }
      prev = rc->use[u];
    }
    if (gap >= MIN_GAP && at > a) {
      rc->first_late[v] = rc->use[at];
      rc->last_early[v] = rc->use[at - 1];
    }
  }
  for (int i = 0; i < n; i++) {
    const oc_instr_t *ins = &g->instrs[i];
    rc->flops[i] = oc_instr_flops(g, ins);
    int ok = oc_op_get(ins->op)->mutates == 0 && !communicates(ins->op) && ins->n_out >= 1 &&
             ins->n_out <= 31, late = 0;
    for (int k = 0; k < ins->n_out && ok; k++) {
      int v = ins->out[k];
      if (v < 0) continue;
      ok = g->values[v].kind == OC_VALUE_TEMP && !pinned[v];
      late |= rc->first_late[v] != INT_MAX;
    }
    rc->recomputable[i] = (char)ok;
    rc->saved[i] = (char)(ok && late);
  }
  free(pinned);
  return OC_OK;
}

/* Whether state |v| is updated at a step strictly between |a| and |b|. */
static int updated_between(const rc_t *rc, int v, int a, int b) {
  for (int k = rc->mut_start[v]; k < rc->mut_start[v + 1]; k++)
    if (rc->mut[k] > a && rc->mut[k] < b) return 1;
  return 0;
}

/* Whether a clone of instruction |i| making the outputs |need| may run
 * right before step |q|. */
static int clone_reads_same_state(const rc_t *rc, int i, int q, uint32_t need) {
  const oc_instr_t *ins = &rc->g->instrs[i];
  for (int k = 0; k < ins->n_in; k++) {
    int v = ins->in[k];
    if (v < 0 || rc->g->values[v].kind != OC_VALUE_STATE) continue;
    if (need == 1u && feeds_statistics_only(ins, k)) continue;
    if (updated_between(rc, v, i, q)) return 0;
  }
  return 1;
}

/* The value step |at| (an original step, or where a clone runs) reads for
 * |v|: the output of the clone serving that step when v's producer is
 * recomputed and the original is dead by then. */
static int resolve(const rc_t *rc, int v, int at) {
  if (v < 0) return v;
  int p = rc->producer[v];
  if (p < 0 || !rc->n_clone[p] || at <= rc->last_early[v]) return v;
  const clone_t *c = NULL;
  for (int k = rc->first_clone[p]; k < rc->first_clone[p] + rc->n_clone[p]; k++)
    if (rc->clones[k].pos <= at) c = &rc->clones[k];
  return c ? c->id + rc->out_slot[v] : v;
}

static int add_need(rc_t *rc, int i, int pos, uint32_t slots) {
  if (grow((void **)&rc->needs, &rc->cap_needs, rc->n_needs + 1, sizeof(need_t))) return -1;
  rc->needs[rc->n_needs] = (need_t){pos, slots, rc->need_head[i]};
  rc->need_head[i] = rc->n_needs++;
  return 0;
}

static int by_pos(const void *a, const void *b) {
  const need_t *x = a, *y = b;
  return (x->pos > y->pos) - (x->pos < y->pos);
}

/* Outputs a clone of |ins| making |need| has: training BatchNormalization
 * asked for y alone makes y alone. */
static int clone_outputs(const oc_instr_t *ins, uint32_t need) {
  return need == 1u && ins->op == OC_OP_BATCHNORM ? 1 : ins->n_out;
}

static int *pool_take(rc_t *rc, int count) {
  int *p = rc->pool + rc->pool_len;
  rc->pool_len += (size_t)count;
  return p;
}

#define OOM oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory")

/* The clones of the current choice (rc->drop): latest instruction first, so
 * that every need of an instruction is known when it is reached. */
static oc_status_t place_clones(rc_t *rc) {
  const oc_graph_t *g = rc->g;
  rc->n_needs = rc->n_clones = 0;
  rc->clone_flops = 0;
  for (int i = 0; i < rc->n; i++) {
    rc->need_head[i] = -1;
    rc->n_clone[i] = 0;
  }
  for (int i = rc->n - 1; i >= 0; i--) {
    if (!rc->recomputable[i] || !rc->drop[i]) continue;
    const oc_instr_t *ins = &g->instrs[i];
    for (int k = 0; k < ins->n_out; k++) {
      int v = ins->out[k];
      if (v < 0 || rc->first_late[v] == INT_MAX) continue;
      for (int u = rc->use_start[v]; u < rc->use_start[v + 1]; u++)
        if (rc->use[u] >= rc->first_late[v] && add_need(rc, i, rc->use[u], 1u << k)) return OOM;
    }
    int m = 0;
    for (int j = rc->need_head[i]; j >= 0; j = rc->needs[j].next) m++;
    if (!m) continue;
    need_t *sorted = realloc(rc->sorted, sizeof(need_t) * (size_t)m);
    if (!sorted) return OOM;
    rc->sorted = sorted;
    m = 0;
    for (int j = rc->need_head[i]; j >= 0; j = rc->needs[j].next) sorted[m++] = rc->needs[j];
    qsort(sorted, (size_t)m, sizeof(need_t), by_pos);
    /* Clusters of needs; each gets a clone at its first need. */
    int first = rc->n_clones, ok = 1;
    for (int a = 0; a < m && ok;) {
      int b = a + 1;
      uint32_t slots = sorted[a].slots;
      while (b < m && (!rc->split || sorted[b].pos - sorted[b - 1].pos < SPLIT_GAP))
        slots |= sorted[b++].slots;
      if (grow((void **)&rc->clones, &rc->cap_clones, rc->n_clones + 1, sizeof(clone_t)))
        return OOM;
      rc->clones[rc->n_clones++] = (clone_t){.instr = i, .pos = sorted[a].pos,
                                             .end = sorted[b - 1].pos, .need = slots};
      ok = clone_reads_same_state(rc, i, sorted[a].pos, slots);
      a = b;
    }
    if (!ok) { /* state changed in between: the original stays alive */
      rc->n_clones = first;
      continue;
    }
    rc->first_clone[i] = first;
    rc->n_clone[i] = rc->n_clones - first;
    for (int c = first; c < rc->n_clones; c++) {
      int q = rc->clones[c].pos;
      rc->clone_flops += rc->flops[i];
      for (int k = 0; k < ins->n_in; k++) {
        int w = ins->in[k];
        if (w < 0) continue;
        int p = rc->producer[w];
        if (p < 0 || !rc->recomputable[p] || !rc->drop[p] || q <= rc->last_early[w]) continue;
        if (add_need(rc, p, q, 1u << rc->out_slot[w])) return OOM;
      }
    }
  }
  return OC_OK;
}

/* Builds the program of the current choice (rc->drop) into rc->shadow: the
 * clones before the steps they serve (those at one step in program order),
 * new value ids after the entry's (every clone's outputs in program order,
 * then their workspaces), inputs retargeted. */
static oc_status_t build(rc_t *rc) {
  const oc_graph_t *g = rc->g;
  int n = rc->n;
  OC_RETURN_IF_ERROR(place_clones(rc));
  int nc = rc->n_clones;
  int *bucket = realloc(rc->bucket, sizeof(int) * (size_t)(nc + 1));
  int *seq = realloc(rc->seq, sizeof(int) * (size_t)(n + nc + 1));
  if (bucket) rc->bucket = bucket;
  if (seq) rc->seq = seq;
  if (!bucket || !seq) return OOM;
  memset(rc->bucket_start, 0, sizeof(int) * (size_t)(n + 1));
  for (int c = 0; c < nc; c++) rc->bucket_start[rc->clones[c].pos + 1]++;
  for (int q = 0; q < n; q++) rc->bucket_start[q + 1] += rc->bucket_start[q];
  /* Clones were made latest instruction first: walk them backwards. */
  for (int q = 0; q <= n; q++) seq[q] = rc->bucket_start[q];
  for (int c = nc - 1; c >= 0; c--) bucket[seq[rc->clones[c].pos]++] = c;
  rc->n_seq = 0;
  for (int q = 0; q < n; q++) {
    for (int b = rc->bucket_start[q]; b < rc->bucket_start[q + 1]; b++)
      seq[rc->n_seq++] = -1 - bucket[b];
    seq[rc->n_seq++] = q;
  }
  int next = rc->nv;
  for (int s = 0; s < rc->n_seq; s++)
    if (seq[s] < 0) {
      clone_t *c = &rc->clones[-1 - seq[s]];
      c->id = next;
      next += clone_outputs(&g->instrs[c->instr], c->need);
    }
  for (int s = 0; s < rc->n_seq; s++)
    if (seq[s] < 0) {
      clone_t *c = &rc->clones[-1 - seq[s]];
      c->ws = g->instrs[c->instr].workspace_bytes ? next++ : -1;
    }
  rc->n_new_values = next - rc->nv;
  /* The shadow program. */
  oc_graph_t *sh = &rc->shadow;
  if (grow((void **)&sh->values, &rc->cap_shadow_values, next, sizeof(oc_value_t)) ||
      grow((void **)&sh->instrs, &rc->cap_shadow_instrs, rc->n_seq, sizeof(oc_instr_t)))
    return OOM;
  size_t need_pool = 0;
  for (int s = 0; s < rc->n_seq; s++) {
    const oc_instr_t *ins = &g->instrs[seq[s] >= 0 ? seq[s] : rc->clones[-1 - seq[s]].instr];
    need_pool += (size_t)ins->n_in + (size_t)ins->n_out;
  }
  if (need_pool > rc->pool_cap) {
    int *np = realloc(rc->pool, sizeof(int) * need_pool);
    if (!np) return OOM;
    rc->pool = np;
    rc->pool_cap = need_pool;
  }
  rc->pool_len = 0;
  memcpy(sh->values, g->values, sizeof(oc_value_t) * (size_t)rc->nv);
  for (int s = 0; s < rc->n_seq; s++) {
    if (seq[s] >= 0) continue;
    const clone_t *c = &rc->clones[-1 - seq[s]];
    const oc_instr_t *ins = &g->instrs[c->instr];
    for (int k = 0; k < clone_outputs(ins, c->need); k++) {
      oc_value_t *v = &sh->values[c->id + k];
      *v = g->values[ins->out[k] >= 0 ? ins->out[k] : ins->out[0]];
      v->kind = OC_VALUE_TEMP;
      v->producer = -1;
    }
    if (c->ws >= 0) {
      int named = ins->workspace >= 0 ? ins->workspace : ins->out[0];
      oc_value_t *v = &sh->values[c->ws];
      *v = (oc_value_t){.name = g->values[named].name, .kind = OC_VALUE_TEMP, .known = 1,
                        .producer = -1};
      v->type.dtype = OC_DTYPE_UINT8;
      v->type.rank = 1;
      v->type.dims[0] = (int64_t)ins->workspace_bytes;
    }
  }
  sh->n_values = next;
  for (int s = 0; s < rc->n_seq; s++) {
    const clone_t *c = seq[s] < 0 ? &rc->clones[-1 - seq[s]] : NULL;
    const oc_instr_t *ins = &g->instrs[c ? c->instr : seq[s]];
    oc_instr_t *out = &sh->instrs[s];
    *out = *ins;
    int at = c ? c->pos : seq[s];
    out->in = pool_take(rc, ins->n_in);
    for (int k = 0; k < ins->n_in; k++) out->in[k] = resolve(rc, ins->in[k], at);
    if (c) {
      out->n_out = clone_outputs(ins, c->need);
      out->out = pool_take(rc, out->n_out);
      for (int k = 0; k < out->n_out; k++) out->out[k] = c->id + k;
      out->workspace = c->ws;
    }
  }
  sh->n_instrs = rc->n_seq;
  rc->shadow_e = (oc_entry_t){.graph = sh, .inputs = rc->e->inputs, .n_inputs = rc->e->n_inputs,
                              .outputs = rc->e->outputs, .n_outputs = rc->e->n_outputs,
                              .arena_offset = rc->shadow_e.arena_offset,
                              .inplace_of = rc->shadow_e.inplace_of};
  return OC_OK;
}

/* The lower bound of the current choice's program, its first busiest step
 * and its live bytes summed over the steps. */
static oc_status_t evaluate(rc_t *rc, uint64_t *lb, int *peak, double *byte_steps) {
  rc->evals++;
  OC_RETURN_IF_ERROR(build(rc));
  return oc_memplan_lower_bound(&rc->shadow_e, lb, peak, byte_steps);
}

/* A choice and what it gives. */
typedef struct choice_s {
  char *drop;
  int split; /* rc_t.split */
  uint64_t lb;
  double byte_steps;
  double flops;
  const char *name;
} choice_t;

static oc_status_t choice_eval(rc_t *rc, choice_t *c) {
  memcpy(rc->drop, c->drop, (size_t)rc->n);
  rc->split = c->split;
  int peak;
  OC_RETURN_IF_ERROR(evaluate(rc, &c->lb, &peak, &c->byte_steps));
  c->flops = rc->clone_flops;
  return OC_OK;
}

/* No saved instruction recomputed; the others may be, for clones that need
 * them (a BatchNormalization output that only its ReLU reads, say). */
static void base_choice(const rc_t *rc, char *drop) {
  for (int i = 0; i < rc->n; i++) drop[i] = rc->recomputable[i] && !rc->saved[i];
}

/* Chen et al.'s greedy segmentation under |segment| bytes: walking the saved
 * forward instructions in order, the one whose outputs take the running sum
 * past |segment| stays (a checkpoint) and the sum restarts; the others are
 * recomputed. segment = 0: every |every|-th stays (the sqrt(n) scheme). */
static void chen_choice(const rc_t *rc, double segment, int every, char *drop) {
  double sum = 0;
  int k = 0;
  for (int i = 0; i < rc->n; i++) {
    drop[i] = rc->recomputable[i];
    if (!rc->saved[i]) continue;
    const oc_instr_t *ins = &rc->g->instrs[i];
    if (segment > 0) {
      for (int o = 0; o < ins->n_out; o++)
        if (ins->out[o] >= 0) sum += (double)oc_tensor_bytes(&rc->g->values[ins->out[o]].type);
      if (sum > segment) {
        drop[i] = 0;
        sum = 0;
      }
    } else if (++k % every == 0) {
      drop[i] = 0;
    }
  }
}

/* The saved instructions whose choice matters at step |t| of the last built
 * program (an index into rc->seq): those that stay in |drop| with an output
 * idle there (to drop), and those recomputed whose clone is alive there (to
 * keep: a checkpoint inside a recomputed segment shortens it). At most
 * |cap|, those with the most bytes there. */
static int toggles_at(const rc_t *rc, const char *drop, int t, int *out, uint64_t *bytes,
                      int cap) {
  int s = rc->seq[t], at = s >= 0 ? s : rc->clones[-1 - s].pos, m = 0;
  for (int i = 0; i < rc->n; i++) {
    if (!rc->saved[i]) continue;
    const oc_instr_t *ins = &rc->g->instrs[i];
    int cloned = 0;
    for (int c = rc->first_clone[i]; drop[i] && c < rc->first_clone[i] + rc->n_clone[i]; c++)
      cloned |= rc->clones[c].pos <= at && at <= rc->clones[c].end;
    uint64_t there = 0;
    for (int k = 0; k < ins->n_out; k++) {
      int v = ins->out[k];
      if (v < 0 || rc->first_late[v] == INT_MAX) continue;
      int idle = !drop[i] && rc->last_early[v] < at && at < rc->first_late[v];
      if (idle || cloned) there += oc_tensor_bytes(&rc->g->values[v].type);
    }
    if (!there) continue;
    /* Insertion into the |cap| largest. */
    int k = m < cap ? m++ : cap - 1;
    if (k == cap - 1 && m == cap && bytes[k] >= there) continue;
    while (k > 0 && bytes[k - 1] < there) {
      out[k] = out[k - 1];
      bytes[k] = bytes[k - 1];
      k--;
    }
    out[k] = i;
    bytes[k] = there;
  }
  return m;
}

/* From |c|, changes the choice of one saved instruction at a time among
 * those that matter at the busiest step (toggles_at): the change that
 * lowers the bound the most, per recomputed operation if |per_flop|; when
 * none lowers it (another step is as busy), the one that lowers the live
 * bytes summed over the steps the most. Until the bound is at most |target|
 * or no change lowers either. */
static oc_status_t improve_at_peak(rc_t *rc, choice_t *c, uint64_t target, int per_flop,
                                int *n_dropped) {
  int *cand = malloc(sizeof(int) * MAX_PEAK_CANDIDATES);
  uint64_t *cand_bytes = malloc(sizeof(uint64_t) * MAX_PEAK_CANDIDATES);
  char *trial = malloc((size_t)rc->n + 1);
  if (!cand || !cand_bytes || !trial) {
    free(cand);
    free(cand_bytes);
    free(trial);
    return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  }
  oc_status_t s = OC_OK;
  rc->split = c->split;
  int stop = rc->evals + MAX_EVALS;
  while (c->lb > target && rc->evals < stop) {
    memcpy(rc->drop, c->drop, (size_t)rc->n);
    uint64_t lb;
    int peak;
    double area;
    s = evaluate(rc, &lb, &peak, &area);
    if (s) break;
    /* peak is a step of the built program: -1 and n_seq are the bound
     * inputs and outputs, which no choice changes. */
    if (peak < 0 || peak >= rc->n_seq) break;
    int m = toggles_at(rc, c->drop, peak, cand, cand_bytes, MAX_PEAK_CANDIDATES);
    int best = -1, best_class = 0;
    double best_score = 0;
    choice_t got = {0};
    for (int k = 0; k < m && rc->evals < stop; k++) {
      memcpy(trial, c->drop, (size_t)rc->n);
      trial[cand[k]] = !trial[cand[k]];
      memcpy(rc->drop, trial, (size_t)rc->n);
      s = evaluate(rc, &lb, &peak, &area);
      if (s) break;
      /* class 2: a lower bound; class 1: the same bound, fewer byte-steps */
      int cls = lb < c->lb ? 2 : lb == c->lb && area < c->byte_steps ? 1 : 0;
      if (!cls || cls < best_class) continue;
      double gain = cls == 2 ? (double)(c->lb - lb) : c->byte_steps - area;
      /* Keeping a checkpoint can lower both memory and operations. */
      double extra = rc->clone_flops - c->flops;
      double score = !per_flop ? gain : extra < 1 ? gain * 1e30 : gain / extra;
      if (cls > best_class || score > best_score ||
          (score == best_score && rc->clone_flops < got.flops)) {
        best = cand[k];
        best_class = cls;
        best_score = score;
        got = (choice_t){.lb = lb, .byte_steps = area, .flops = rc->clone_flops};
      }
    }
    if (s || best < 0) break;
    c->drop[best] = !c->drop[best];
    c->lb = got.lb;
    c->byte_steps = got.byte_steps;
    c->flops = got.flops;
    if (n_dropped) ++*n_dropped;
  }
  free(cand);
  free(cand_bytes);
  free(trial);
  return s;
}

/* Keeps again, most expensive first, each recomputed saved instruction whose
 * recomputation the bound does not need to stay within |target|. */
static oc_status_t keep_what_fits(rc_t *rc, choice_t *c, uint64_t target) {
  for (int pass = 0; pass < rc->n; pass++) {
    /* the most expensive recomputed saved instruction not tried yet */
    int best = -1;
    for (int i = 0; i < rc->n; i++)
      if (rc->saved[i] && c->drop[i] == 1 && (best < 0 || rc->flops[i] > rc->flops[best]))
        best = i;
    if (best < 0) break;
    c->drop[best] = 0;
    choice_t before = *c;
    oc_status_t s = choice_eval(rc, c);
    if (s) return s;
    if (c->lb > target || c->flops > before.flops) {
      before.drop[best] = 2; /* tried: stays recomputed */
      *c = before;
    }
  }
  for (int i = 0; i < rc->n; i++)
    if (c->drop[i] == 2) c->drop[i] = 1;
  return OC_OK;
}

/* Plans the program of choice |c| as the shadow (the placement the real
 * program will get: same values in the same order). */
static oc_status_t plan_choice(rc_t *rc, const choice_t *c, uint64_t *arena) {
  memcpy(rc->drop, c->drop, (size_t)rc->n);
  rc->split = c->split;
  OC_RETURN_IF_ERROR(build(rc));
  OC_RETURN_IF_ERROR(oc_memplan_place(&rc->shadow_e));
  *arena = rc->shadow_e.arena_bytes;
  return OC_OK;
}

/* Rewrites the entry's program into the last built one. */
static oc_status_t apply(rc_t *rc) {
  oc_graph_t *g = rc->g, *sh = &rc->shadow;
  /* New values, in the shadow's order so that ids match. */
  for (int v = rc->nv; v < sh->n_values; v++) {
    char hint[300];
    snprintf(hint, sizeof hint, "%s/recomputed", sh->values[v].name);
    int id = oc_graph_new_value(g, hint);
    if (id < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
    if (id != v)
      return oc_make_status(OC_STATUS_INTERNAL, "recompute: value ids diverged (%d, %d)", id, v);
    oc_value_t *val = &g->values[id];
    val->type = sh->values[v].type;
    val->type.data = NULL;
    val->known = 1;
    val->kind = OC_VALUE_TEMP;
  }
  oc_instr_t *instrs = calloc((size_t)rc->n_seq + 1, sizeof(oc_instr_t));
  if (!instrs) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  oc_status_t s = OC_OK;
  int made = 0;
  for (int q = 0; q < rc->n_seq && !s; q++) {
    const oc_instr_t *from = &sh->instrs[q];
    int clone = rc->seq[q] < 0, i = clone ? rc->clones[-1 - rc->seq[q]].instr : rc->seq[q];
    if (!clone) {
      instrs[q] = g->instrs[i]; /* takes ownership of its arrays */
      memcpy(instrs[q].in, from->in, sizeof(int) * (size_t)from->n_in);
      continue;
    }
    const oc_instr_t *orig = &g->instrs[i];
    oc_instr_t *ins = &instrs[q];
    *ins = *from;
    size_t node_len = strlen(orig->node ? orig->node : "") + 16;
    ins->in = malloc(sizeof(int) * (size_t)(from->n_in + 1));
    ins->out = malloc(sizeof(int) * (size_t)(from->n_out + 1));
    ins->ints = malloc(sizeof(int64_t) * (size_t)(from->n_ints + 1));
    ins->floats = malloc(sizeof(float) * (size_t)(from->n_floats + 1));
    ins->node = malloc(node_len);
    made = q + 1;
    if (!ins->in || !ins->out || !ins->ints || !ins->floats || !ins->node) {
      s = oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
      break;
    }
    memcpy(ins->in, from->in, sizeof(int) * (size_t)from->n_in);
    memcpy(ins->out, from->out, sizeof(int) * (size_t)from->n_out);
    if (from->n_ints) memcpy(ins->ints, orig->ints, sizeof(int64_t) * (size_t)from->n_ints);
    if (from->n_floats) memcpy(ins->floats, orig->floats, sizeof(float) * (size_t)from->n_floats);
    snprintf(ins->node, node_len, "%s/recompute", orig->node ? orig->node : "");
  }
  if (s) {
    for (int q = 0; q < made; q++)
      if (rc->seq[q] < 0) {
        free(instrs[q].in);
        free(instrs[q].out);
        free(instrs[q].ints);
        free(instrs[q].floats);
        free(instrs[q].node);
      }
    free(instrs);
    return s;
  }
  free(g->instrs);
  g->instrs = instrs;
  g->n_instrs = g->cap_instrs = rc->n_seq;
  for (int q = 0; q < g->n_instrs; q++)
    for (int k = 0; k < g->instrs[q].n_out; k++)
      if (g->instrs[q].out[k] >= 0) g->values[g->instrs[q].out[k]].producer = q;
  for (int q = 0; q < g->n_instrs; q++)
    if (g->instrs[q].workspace >= 0) g->values[g->instrs[q].workspace].producer = q;
  return OC_OK;
}

static int choice_fits_better(const choice_t *a, const choice_t *b, uint64_t target) {
  int fa = a->lb <= target, fb = b->lb <= target;
  if (fa != fb) return fa;
  if (fa) return a->flops < b->flops || (a->flops == b->flops && a->lb < b->lb);
  return a->lb < b->lb || (a->lb == b->lb && a->flops < b->flops);
}

/* Grid of Chen's segment budgets (besides sqrt(n)). */
enum { CHEN_GRID = 24 };

static void take(choice_t *dst, const choice_t *src, int n) {
  memcpy(dst->drop, src->drop, (size_t)n);
  dst->split = src->split;
  dst->lb = src->lb;
  dst->byte_steps = src->byte_steps;
  dst->flops = src->flops;
  dst->name = src->name;
}

/* Chen's choices (k = -1: sqrt(n) segments; 0 .. CHEN_GRID - 1: greedy
 * segments of a byte budget on a geometric grid over the saved bytes), into
 * |c|. Returns 0 when there is none. */
static int chen_candidate(const rc_t *rc, int k, choice_t *c) {
  int n_saved = 0;
  double saved_bytes = 0, smallest = 0;
  for (int i = 0; i < rc->n; i++) {
    if (!rc->saved[i]) continue;
    n_saved++;
    const oc_instr_t *ins = &rc->g->instrs[i];
    double b = 0;
    for (int o = 0; o < ins->n_out; o++)
      if (ins->out[o] >= 0) b += (double)oc_tensor_bytes(&rc->g->values[ins->out[o]].type);
    saved_bytes += b;
    if (smallest == 0 || b < smallest) smallest = b;
  }
  if (n_saved == 0 || smallest <= 0) return 0;
  if (k < 0) {
    chen_choice(rc, 0, (int)ceil(sqrt((double)n_saved)), c->drop);
    c->name = "Chen et al. sqrt(n) segments";
  } else {
    chen_choice(rc, smallest * pow(saved_bytes / smallest, (double)k / (CHEN_GRID - 1)), 0,
                c->drop);
    c->name = "Chen et al. greedy segments";
  }
  return 1;
}

/* The least memory this pass finds: for one clone per instruction and for a
 * clone per cluster of uses, the smallest bound among nothing and Chen's
 * choices, then changed at the busiest step while the bound goes down; the
 * smaller of the two, then kept again where the bound allows. Independent
 * of the budget. */
static oc_status_t choose_least(rc_t *rc, choice_t *least, choice_t *mode, choice_t *trial) {
  for (int split = 0; split < 2; split++) {
    base_choice(rc, mode->drop);
    mode->split = trial->split = split;
    mode->name = "none";
    OC_RETURN_IF_ERROR(choice_eval(rc, mode));
    for (int k = -1; k < CHEN_GRID && chen_candidate(rc, k, trial); k++) {
      OC_RETURN_IF_ERROR(choice_eval(rc, trial));
      if (trial->lb < mode->lb || (trial->lb == mode->lb && trial->flops < mode->flops))
        take(mode, trial, rc->n);
    }
    int changed = 0;
    OC_RETURN_IF_ERROR(improve_at_peak(rc, mode, 0, 0, &changed));
    if (changed) mode->name = "greedy at the peak";
    if (!split || mode->lb < least->lb || (mode->lb == least->lb && mode->flops < least->flops))
      take(least, mode, rc->n);
  }
  /* The same bound for fewer operations. */
  return keep_what_fits(rc, least, least->lb);
}

/* The cheapest choice whose bound is within |target| among Chen's, the
 * greedy from nothing (bytes per operation), each with both clone modes,
 * and |least|; then kept again where it can. best->lb > target when none
 * is. */
static oc_status_t choose(rc_t *rc, uint64_t target, const choice_t *least, choice_t *best,
                          choice_t *trial) {
  take(best, least, rc->n);
  rc->chen_flops = -1;
  for (int split = 0; split < 2; split++) {
    trial->split = split;
    for (int k = -1; k < CHEN_GRID && chen_candidate(rc, k, trial); k++) {
      OC_RETURN_IF_ERROR(choice_eval(rc, trial));
      if (trial->lb <= target && (rc->chen_flops < 0 || trial->flops < rc->chen_flops))
        rc->chen_flops = trial->flops;
      if (choice_fits_better(trial, best, target)) take(best, trial, rc->n);
    }
    base_choice(rc, trial->drop);
    OC_RETURN_IF_ERROR(choice_eval(rc, trial));
    OC_RETURN_IF_ERROR(improve_at_peak(rc, trial, target, 1, NULL));
    trial->name = "greedy at the peak";
    if (choice_fits_better(trial, best, target)) take(best, trial, rc->n);
  }
  if (best->lb <= target) OC_RETURN_IF_ERROR(keep_what_fits(rc, best, target));
  return OC_OK;
}

oc_status_t oc_recompute_to_budget(oc_entry_t *e, uint64_t budget_bytes) {
  OC_RETURN_IF_ERROR(oc_memplan_run(e));
  e->budget_bytes = budget_bytes;
  e->recompute_flops = 0;
  e->n_recomputed = 0;
  e->recompute_strategy = "none";
  e->chen_recompute_flops = -1;
  double step = 0;
  for (int i = 0; i < e->graph->n_instrs; i++) step += oc_instr_flops(e->graph, &e->graph->instrs[i]);
  e->step_flops = (uint64_t)step;
  e->unbudgeted_arena_bytes = e->arena_bytes;
  if (e->arena_bytes <= budget_bytes) return OC_OK;
  uint64_t unbudgeted = e->arena_bytes;
  rc_t rc = {0};
  choice_t best = {0}, trial = {0}, least = {0}, mode = {0};
  oc_status_t s = rc_init(&rc, e);
  if (!s && ((best.drop = calloc((size_t)rc.n + 1, 1)) == NULL ||
             (trial.drop = calloc((size_t)rc.n + 1, 1)) == NULL ||
             (least.drop = calloc((size_t)rc.n + 1, 1)) == NULL ||
             (mode.drop = calloc((size_t)rc.n + 1, 1)) == NULL))
    s = oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  /* The bound is what the search sees; the arena may end a little above it:
   * tighten the target by the difference and choose again. */
  uint64_t target = budget_bytes, arena = UINT64_MAX, least_arena = UINT64_MAX;
  if (!s) s = choose_least(&rc, &least, &mode, &trial);
  if (!s) s = plan_choice(&rc, &least, &least_arena);
  for (int round = 0; round < 4 && !s; round++) {
    s = choose(&rc, target, &least, &best, &trial);
    if (s || best.lb > target) break;
    s = plan_choice(&rc, &best, &arena);
    if (s || arena <= budget_bytes) break;
    target -= arena - budget_bytes < target ? arena - budget_bytes : target;
  }
  if (!s && arena > budget_bytes && least_arena <= budget_bytes) {
    take(&best, &least, rc.n);
    s = plan_choice(&rc, &best, &arena);
  }
  if (!s && arena > budget_bytes) {
    uint64_t smallest = least_arena < unbudgeted ? least_arena : unbudgeted;
    s = oc_make_status(OC_STATUS_RESOURCE_LIMIT,
                       "the arena needs %llu bytes, over the memory budget of %llu bytes even "
                       "when recomputing activations; the smallest budget that works is %llu "
                       "bytes",
                       (unsigned long long)unbudgeted, (unsigned long long)budget_bytes,
                       (unsigned long long)smallest);
  }
  if (!s) {
    /* The last plan_choice built the chosen program. */
    e->recompute_flops = (uint64_t)rc.clone_flops;
    e->n_recomputed = rc.n_clones;
    e->recompute_strategy = best.name;
    e->chen_recompute_flops = (int64_t)rc.chen_flops;
    s = apply(&rc);
    if (!s) s = oc_memplan_place(e); /* the schedule as built: no more moves */
    if (!s && e->arena_bytes > budget_bytes)
      s = oc_make_status(OC_STATUS_INTERNAL, "recompute: planned %llu bytes, expected %llu",
                         (unsigned long long)e->arena_bytes, (unsigned long long)arena);
  }
  free(best.drop);
  free(trial.drop);
  free(least.drop);
  free(mode.drop);
  rc_free(&rc);
  return s;
}
