/* GradCache: the cut between encoders and loss head, and the chunked train
 * step (gradcache.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff.h"
#include "gradcache.h"
#include "lower.h"

static oc_status_t oom(void) { return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory"); }

/* --- the cut ----------------------------------------------------------------------- */

/* What a value is along axis 0 of the batch. */
enum { FREE = 0, ROWS = 1, COUPLED = 2 };
/* FREE: depends on no batch input (parameters, constants, other inputs).
 * ROWS: per-example: row i depends on row i of the batch inputs alone.
 * COUPLED: anything else that depends on the batch. */

typedef struct analysis_s {
  const oc_graph_t *g;
  int64_t batch, micro; /* B and N */
  int batch_inputs[OC_COMPILE_MAX_OUTPUTS];
  int n_batch_inputs;
  char *cls;     /* per value */
  char *forced;  /* per instruction: taken as batch-coupling (the cut moves to a node boundary) */
  char *encoder; /* per instruction: part of the encoders */
  char *is_cut;  /* per value */
  int cut[OC_COMPILE_MAX_OUTPUTS];
  int n_cut;
} analysis_t;

static void analysis_free(analysis_t *a) {
  free(a->cls);
  free(a->forced);
  free(a->encoder);
  free(a->is_cut);
}

/* The batch inputs: graph inputs the program reads whose axis 0 has the
 * size of the first one's. */
static oc_status_t find_batch(analysis_t *a, const oc_train_options_t *t) {
  const oc_graph_t *g = a->g;
  char *read = calloc((size_t)g->n_values + 1, 1);
  if (!read) return oom();
  for (int i = 0; i < g->n_instrs; i++)
    for (int k = 0; k < g->instrs[i].n_in; k++)
      if (g->instrs[i].in[k] >= 0) read[g->instrs[i].in[k]] = 1;
  const char *first = NULL;
  a->batch = -1;
  for (int i = 0; i < g->n_inputs; i++) {
    const oc_value_t *v = &g->values[g->inputs[i]];
    if (!read[g->inputs[i]] || v->kind != OC_VALUE_INPUT || v->type.rank < 1) continue;
    if (a->batch < 0) {
      a->batch = v->type.dims[0];
      first = v->name;
    }
    if (v->type.dims[0] == a->batch && a->n_batch_inputs < OC_COMPILE_MAX_OUTPUTS)
      a->batch_inputs[a->n_batch_inputs++] = g->inputs[i];
  }
  free(read);
  int global = t->micro_batch <= 0; /* --global-negatives: one rank's rows */
  if (a->batch < 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "%s: the train step reads no graph input with a batch axis",
                          global ? "--global-negatives" : "--micro-batch");
  if (global && (t->ranks < 1 || a->batch % t->ranks != 0))
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "--ranks %lld: the batch (%lld rows: axis 0 of graph input '%s') is not "
                          "a multiple of it",
                          (long long)t->ranks, (long long)a->batch, first);
  a->micro = global ? a->batch / t->ranks : t->micro_batch;
  if (a->micro < 1 || a->micro > a->batch || a->batch % a->micro != 0)
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                          "--micro-batch %lld: the batch (%lld rows: axis 0 of graph input '%s') "
                          "is not a multiple of it",
                          (long long)a->micro, (long long)a->batch, first);
  return OC_OK;
}

static int norm_axis(int64_t axis, int rank) {
  if (axis < -rank || axis >= rank) return -1;
  return (int)(axis < 0 ? axis + rank : axis);
}

/* Whether input |i| of |ins| is absent or FREE and broadcasts along axis 0
 * of an output of rank |r| (it has fewer axes, or 1 row). */
static int broadcasts(const analysis_t *a, const oc_instr_t *ins, int i, int r) {
  int v = ins->in[i];
  if (v < 0) return 1;
  const oc_tensor_t *t = &a->g->values[v].type;
  return a->cls[v] == FREE && (t->rank < r || t->dims[0] == 1);
}

static int is_rows(const analysis_t *a, const oc_instr_t *ins, int i) {
  return i < ins->n_in && ins->in[i] >= 0 && a->cls[ins->in[i]] == ROWS;
}

static int rank_of(const analysis_t *a, int v) { return a->g->values[v].type.rank; }

/* Whether only input 0 may carry rows (the others are FREE parameters). */
static int rows_in_input0_only(const analysis_t *a, const oc_instr_t *ins) {
  for (int i = 1; i < ins->n_in; i++)
    if (ins->in[i] >= 0 && a->cls[ins->in[i]] != FREE) return 0;
  return is_rows(a, ins, 0);
}

/* Whether |ins| (no COUPLED input, some ROWS input) computes row i of its
 * outputs from row i of its ROWS inputs alone. Unknown ops are taken as
 * coupling: that only moves the cut earlier. */
static int keeps_rows(const analysis_t *a, const oc_instr_t *ins) {
  const oc_graph_t *g = a->g;
  int r = ins->n_out > 0 ? rank_of(a, ins->out[0]) : 0;
  switch (ins->op) {
    case OC_OP_ADD: case OC_OP_SUB: case OC_OP_MUL: case OC_OP_DIV: case OC_OP_POW:
    case OC_OP_EQUAL: case OC_OP_LESS: case OC_OP_GREATER: case OC_OP_WHERE: case OC_OP_RELU:
    case OC_OP_EXP: case OC_OP_SQRT: case OC_OP_ERF: case OC_OP_NEG: case OC_OP_CLIP:
    case OC_OP_CAST: case OC_OP_UNARY: case OC_OP_VARIADIC: case OC_OP_LESS_EQUAL:
    case OC_OP_GREATER_EQUAL: case OC_OP_AND: case OC_OP_OR: case OC_OP_XOR: case OC_OP_MOD:
    case OC_OP_PRELU: case OC_OP_DROPOUT:
      for (int i = 0; i < ins->n_in; i++)
        if (!(is_rows(a, ins, i) ? rank_of(a, ins->in[i]) == r : broadcasts(a, ins, i, r)))
          return 0;
      return 1;
    case OC_OP_COPY: /* a reshape keeping axis 0 keeps every row's elements in the row */
    case OC_OP_EXPAND:
      return is_rows(a, ins, 0) && (ins->op == OC_OP_COPY || rank_of(a, ins->in[0]) == r);
    case OC_OP_MATMUL: {
      /* (..., M, K) @ (..., K, N): rows are M of a 2-D a, or the leading batch axis. */
      int ra = rank_of(a, ins->in[0]), rb = rank_of(a, ins->in[1]);
      int ok_a = is_rows(a, ins, 0) ? ra == r && r >= 2 : ra <= 2 ? r >= 3 : broadcasts(a, ins, 0, r);
      int ok_b = is_rows(a, ins, 1) ? rb == r && r >= 3 : rb <= 2 || broadcasts(a, ins, 1, r);
      return ok_a && ok_b;
    }
    case OC_OP_GEMM:
      return is_rows(a, ins, 0) && ins->ints[0] == 0 && a->cls[ins->in[1]] == FREE &&
             (is_rows(a, ins, 2) || broadcasts(a, ins, 2, 2));
    case OC_OP_CONV: case OC_OP_CONVTRANSPOSE: case OC_OP_BATCHNORM: case OC_OP_MAXPOOL:
    case OC_OP_AVGPOOL: case OC_OP_LPPOOL: case OC_OP_GLOBAL_AVGPOOL: case OC_OP_GLOBAL_MAXPOOL:
    case OC_OP_INSTANCENORM: case OC_OP_DEPTH_TO_SPACE: case OC_OP_SPACE_TO_DEPTH:
      return rows_in_input0_only(a, ins);
    case OC_OP_TRANSPOSE:
      return ins->n_ints > 0 && ins->ints[0] == 0;
    case OC_OP_CONCAT:
      for (int i = 0; i < ins->n_in; i++)
        if (!is_rows(a, ins, i)) return 0;
      return norm_axis(ins->ints[0], r) > 0;
    case OC_OP_SPLIT:
      return norm_axis(ins->ints[0], rank_of(a, ins->in[0])) > 0;
    case OC_OP_SLICE:
      return ins->ints[0] == 0 && ins->ints[1] == 1 && ins->ints[2] == a->batch;
    case OC_OP_SOFTMAX: case OC_OP_LOG_SOFTMAX: case OC_OP_HARDMAX: case OC_OP_LPNORM:
      return norm_axis(ins->ints[0], r) > 0;
    case OC_OP_LAYERNORM:
      return rows_in_input0_only(a, ins) && norm_axis(ins->ints[0], r) > 0;
    case OC_OP_GATHER: {
      int axis = norm_axis(ins->ints[0], rank_of(a, ins->in[0]));
      if (is_rows(a, ins, 0)) return a->cls[ins->in[1]] == FREE && axis > 0;
      return is_rows(a, ins, 1) && axis == 0 && rank_of(a, ins->in[1]) >= 1;
    }
    case OC_OP_REDUCE_MEAN: case OC_OP_REDUCE_SUM: case OC_OP_REDUCE_L2: case OC_OP_REDUCE_MAX:
    case OC_OP_REDUCE_MIN: case OC_OP_REDUCE_PROD: case OC_OP_REDUCE_L1:
    case OC_OP_REDUCE_SUM_SQUARE: case OC_OP_REDUCE_LOG_SUM: case OC_OP_REDUCE_LOG_SUM_EXP: {
      if (ins->n_ints < 2) return 0; /* every axis */
      for (int k = 1; k < ins->n_ints; k++)
        if (norm_axis(ins->ints[k], rank_of(a, ins->in[0])) <= 0) return 0;
      return 1;
    }
    default:
      (void)g;
      return 0;
  }
}

/* Classifies every value, in program order. */
static void classify(analysis_t *a) {
  const oc_graph_t *g = a->g;
  memset(a->cls, FREE, (size_t)g->n_values);
  for (int k = 0; k < a->n_batch_inputs; k++) a->cls[a->batch_inputs[k]] = ROWS;
  for (int i = 0; i < g->n_instrs; i++) {
    const oc_instr_t *ins = &g->instrs[i];
    int rows = 0, coupled = 0;
    for (int k = 0; k < ins->n_in; k++) {
      if (ins->in[k] < 0) continue;
      rows |= a->cls[ins->in[k]] == ROWS;
      coupled |= a->cls[ins->in[k]] == COUPLED;
    }
    int kept = rows && !coupled && !a->forced[i] && keeps_rows(a, ins);
    for (int k = 0; k < ins->n_out; k++) {
      const oc_tensor_t *t = &g->values[ins->out[k]].type;
      /* BatchNorm's other outputs are statistics over the batch. */
      int row_output = kept && t->rank >= 1 && t->dims[0] == a->batch &&
                       !(ins->op == OC_OP_BATCHNORM && k > 0);
      a->cls[ins->out[k]] = !rows && !coupled ? FREE : row_output ? ROWS : COUPLED;
    }
  }
}

static int is_batch_input(const analysis_t *a, int v) {
  for (int k = 0; k < a->n_batch_inputs; k++)
    if (a->batch_inputs[k] == v) return 1;
  return 0;
}

static int add_cut(analysis_t *a, int v) {
  if (a->is_cut[v]) return 0;
  if (a->n_cut == OC_COMPILE_MAX_OUTPUTS) return -1;
  a->is_cut[v] = 1;
  a->cut[a->n_cut++] = v;
  return 0;
}

/* Whether the instruction is an encoder candidate: its first output is per-example. */
static int rows_instr(const analysis_t *a, const oc_instr_t *ins) {
  return ins->n_out > 0 && a->cls[ins->out[0]] == ROWS;
}

/* The automatic cut: per-example values (not batch inputs) read by an
 * instruction that is not per-example, or pushed into a --queue. */
static oc_status_t auto_cut(analysis_t *a, const oc_train_options_t *t) {
  const oc_graph_t *g = a->g;
  memset(a->is_cut, 0, (size_t)g->n_values);
  a->n_cut = 0;
  int over = 0;
  for (int i = 0; i < g->n_instrs; i++) {
    const oc_instr_t *ins = &g->instrs[i];
    if (rows_instr(a, ins)) continue;
    for (int k = 0; k < ins->n_in; k++) {
      int v = ins->in[k];
      if (v >= 0 && a->cls[v] == ROWS && !is_batch_input(a, v)) over |= add_cut(a, v);
    }
  }
  for (int k = 0; k < t->n_queue; k++) {
    int v = oc_graph_find(g, t->queue_value[k]);
    if (v >= 0 && a->cls[v] == ROWS && !is_batch_input(a, v)) over |= add_cut(a, v);
  }
  if (over)
    return oc_make_status(OC_STATUS_RESOURCE_LIMIT, "--micro-batch: the cut has more than %d values",
                          OC_COMPILE_MAX_OUTPUTS);
  return OC_OK;
}

/* Forces the instructions of node |node| to be batch-coupling. */
static void force_node(analysis_t *a, const char *node) {
  for (int i = 0; i < a->g->n_instrs; i++)
    if (a->g->instrs[i].node && node && !strcmp(a->g->instrs[i].node, node)) a->forced[i] = 1;
}

/* Whether |name| is a node output of |micro| (before lowering): the values
 * that the encoder's lowering at batch N can be asked for. */
static int node_output(const oc_graph_t *micro, const char *name) {
  int v = oc_graph_find(micro, name);
  return v >= 0 && micro->values[v].kind == OC_VALUE_TEMP;
}

static const char *cls_name(int c) {
  return c == FREE ? "independent of the batch inputs" : c == ROWS ? "per-example" : "batch-coupled";
}

/* Takes the cut named by |names|: each must be a per-example value that a
 * node of |micro| outputs. */
static oc_status_t named_cut(analysis_t *a, const oc_graph_t *micro, const char *const *names,
                             int n, const char *flag) {
  const oc_graph_t *g = a->g;
  memset(a->is_cut, 0, (size_t)g->n_values);
  a->n_cut = 0;
  for (int k = 0; k < n; k++) {
    int v = oc_graph_find(g, names[k]);
    if (v < 0 || !g->values[v].known)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "%s %s: the train step computes no value of that name (onnxc "
                            "--inspect lists candidate values)",
                            flag, names[k]);
    if (g->values[v].kind == OC_VALUE_INPUT)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "%s %s: that is a graph input; the cut is where the encoders end",
                            flag, names[k]);
    if (a->cls[v] != ROWS) {
      char b[160];
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "%s %s: '%s' (%s) is %s, not per-example (computed row by row from "
                            "the %lld-row batch inputs)",
                            flag, names[k], names[k], oc_type_str(&g->values[v].type, b, sizeof b),
                            cls_name(a->cls[v]), (long long)a->batch);
    }
    if (!node_output(micro, names[k]))
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "%s %s: not the output of an ONNX node of the model", flag, names[k]);
    if (add_cut(a, v))
      return oc_make_status(OC_STATUS_RESOURCE_LIMIT, "%s: more than %d values", flag,
                            OC_COMPILE_MAX_OUTPUTS);
  }
  return OC_OK;
}

/* The encoders: the per-example instructions the cut values come from. Then
 * every other instruction (the head) may read of them only cut values. */
static oc_status_t encoder_slice(analysis_t *a, const oc_train_options_t *t, int loss) {
  const oc_graph_t *g = a->g;
  memset(a->encoder, 0, (size_t)g->n_instrs);
  int *stack = malloc(sizeof(int) * (size_t)(g->n_values + 1));
  char *seen = calloc((size_t)g->n_values + 1, 1);
  if (!stack || !seen) {
    free(stack);
    free(seen);
    return oom();
  }
  int sp = 0;
  for (int j = 0; j < a->n_cut; j++) {
    stack[sp++] = a->cut[j];
    seen[a->cut[j]] = 1;
  }
  while (sp > 0) {
    int p = g->values[stack[--sp]].producer;
    if (p < 0 || a->encoder[p]) continue;
    a->encoder[p] = 1;
    const oc_instr_t *ins = &g->instrs[p];
    for (int k = 0; k < ins->n_in; k++) {
      int v = ins->in[k];
      if (v >= 0 && a->cls[v] == ROWS && !seen[v]) {
        seen[v] = 1;
        stack[sp++] = v;
      }
    }
  }
  free(stack);
  free(seen);
  oc_status_t s = OC_OK;
  for (int i = 0; i < g->n_instrs && !s; i++) {
    if (a->encoder[i]) continue;
    const oc_instr_t *ins = &g->instrs[i];
    for (int k = 0; k < ins->n_in && !s; k++) {
      int v = ins->in[k], p = v >= 0 ? g->values[v].producer : -1;
      if (p >= 0 && a->encoder[p] && !a->is_cut[v])
        s = oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                           "the cut does not separate the encoders from the loss head: node '%s' "
                           "reads '%s', which the encoder node '%s' computes (add it to --cut)",
                           ins->node, g->values[v].name, g->instrs[p].node);
    }
  }
  int outs[1 + OC_COMPILE_MAX_PATTERNS], n_outs = 0;
  outs[n_outs++] = loss;
  for (int k = 0; k < t->n_queue; k++) {
    int v = oc_graph_find(g, t->queue_value[k]);
    if (v >= 0) outs[n_outs++] = v;
  }
  for (int k = 0; k < n_outs && !s; k++) {
    int p = g->values[outs[k]].producer;
    if (p >= 0 && a->encoder[p] && !a->is_cut[outs[k]])
      s = oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                         "the cut does not separate the encoders from the loss head: '%s' is "
                         "computed inside the encoders (add it to --cut)",
                         g->values[outs[k]].name);
  }
  return s;
}

/* Batch, classes and cut of |g|: --cut's (|names|) when given, else the
 * automatic one moved back until every cut value is a node output. */
static oc_status_t analyze(analysis_t *a, const oc_graph_t *g, const oc_graph_t *micro, int loss,
                           const oc_train_options_t *t, const char *const *names, int n_names,
                           const char *flag) {
  memset(a, 0, sizeof *a);
  a->g = g;
  a->cls = malloc((size_t)g->n_values + 1);
  a->forced = calloc((size_t)g->n_instrs + 1, 1);
  a->encoder = calloc((size_t)g->n_instrs + 1, 1);
  a->is_cut = calloc((size_t)g->n_values + 1, 1);
  if (!a->cls || !a->forced || !a->encoder || !a->is_cut) return oom();
  OC_RETURN_IF_ERROR(find_batch(a, t));
  classify(a);
  if (n_names) {
    OC_RETURN_IF_ERROR(named_cut(a, micro, names, n_names, flag));
  } else {
    for (int changed = 1; changed;) {
      OC_RETURN_IF_ERROR(auto_cut(a, t));
      changed = 0;
      for (int j = 0; j < a->n_cut; j++) {
        const oc_value_t *v = &g->values[a->cut[j]];
        if (node_output(micro, v->name) || v->producer < 0) continue;
        force_node(a, g->instrs[v->producer].node);
        changed = 1;
      }
      if (changed) classify(a);
    }
    if (a->n_cut == 0) {
      const char *first = g->values[a->batch_inputs[0]].name;
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT,
                            "--micro-batch: found no per-example encoder: the batch inputs (such "
                            "as '%s') go straight into instructions that couple the batch; name "
                            "the cut with --cut",
                            first);
    }
  }
  return encoder_slice(a, t, loss);
}

oc_status_t oc_gradcache_cut(const oc_graph_t *g, oc_graph_t *micro, int loss,
                             const oc_train_options_t *t, int *out_cut, int *out_n_cut) {
  *out_n_cut = 0;
  analysis_t a;
  oc_status_t s = analyze(&a, g, micro, loss, t, t->cut, t->n_cut, "--cut");
  for (int k = 0; k < a.n_batch_inputs && !s; k++) {
    int v = oc_graph_find(micro, g->values[a.batch_inputs[k]].name);
    if (v < 0 || micro->values[v].kind != OC_VALUE_INPUT)
      s = oc_make_status(OC_STATUS_INTERNAL, "graph input '%s' is missing from the second import",
                         g->values[a.batch_inputs[k]].name);
    else
      micro->values[v].type.dims[0] = a.micro;
  }
  for (int j = 0; j < a.n_cut && !s; j++) out_cut[j] = oc_graph_find(micro, g->values[a.cut[j]].name);
  if (!s) *out_n_cut = a.n_cut;
  analysis_free(&a);
  return s;
}

/* --- the chunked step ---------------------------------------------------------------- */

/* Copies of the encoder program |m| (lowered at N rows) into |g|. */
typedef struct inliner_s {
  oc_graph_t *g;
  const oc_graph_t *m;
  const analysis_t *a;
  int *shared; /* per value of m: its value in g for inputs, constants and state, or -1 */
  int *map;    /* per value of m: its value in g in the chunk being encoded */
} inliner_t;

/* The value of |g| that stands for input, constant or state |mv| of |m|. */
static oc_status_t shared_value(inliner_t *in, int mv, int *out) {
  if (in->shared[mv] >= 0) {
    *out = in->shared[mv];
    return OC_OK;
  }
  oc_graph_t *g = in->g;
  const oc_value_t *m = &in->m->values[mv];
  int v = oc_graph_find(g, m->name);
  if (m->kind == OC_VALUE_CONST) {
    /* Folded at batch N, a constant may differ from its full-batch namesake. */
    const oc_value_t *gv = v >= 0 ? &g->values[v] : NULL;
    int same = gv && gv->kind == OC_VALUE_CONST && gv->type.dtype == m->type.dtype &&
               gv->type.rank == m->type.rank &&
               !memcmp(gv->type.dims, m->type.dims, sizeof(int64_t) * (size_t)m->type.rank) &&
               !memcmp(gv->type.data, m->type.data, oc_tensor_bytes(&m->type));
    if (!same) {
      char hint[600];
      snprintf(hint, sizeof hint, "%s/micro_batch", m->name);
      v = oc_graph_new_value(g, hint);
      if (v < 0) return oom();
      m = &in->m->values[mv];
      OC_RETURN_IF_ERROR(oc_value_set_const(g, v, m->type.dtype, m->type.rank, m->type.dims,
                                            m->type.data));
      g->values[v].foldable = m->foldable;
      g->values[v].known = 1;
    }
  } else if (v < 0 || g->values[v].kind != m->kind) {
    return oc_make_status(OC_STATUS_INTERNAL, "'%s' of the encoder at batch %lld has no "
                          "counterpart in the train step", m->name, (long long)in->a->micro);
  }
  in->shared[mv] = v;
  *out = v;
  return OC_OK;
}

/* A fresh value named after |name|. */
static int fresh(oc_graph_t *g, const char *name, const char *pass, int chunk) {
  char hint[700];
  snprintf(hint, sizeof hint, "%s/%s%d", name, pass, chunk);
  return oc_graph_new_value(g, hint);
}

/* Rows [start, start + n) of |src| into a fresh value. */
static oc_status_t slice_rows(oc_graph_t *g, const char *node, int src, int64_t start, int64_t n,
                              int *out) {
  int rank = g->values[src].type.rank;
  int64_t ints[3 * OC_MAX_RANK];
  for (int d = 0; d < rank; d++) {
    ints[3 * d] = d == 0 ? start : 0;
    ints[3 * d + 1] = 1;
    ints[3 * d + 2] = d == 0 ? n : g->values[src].type.dims[d];
  }
  *out = oc_graph_new_value(g, node); /* moves g->values */
  if (*out < 0) return oom();
  return oc_emit_instr(g, node, OC_OP_SLICE, 1, &src, 1, out, ints, 3 * rank, NULL, 0);
}

/* |out| (fresh) = |parts| joined along axis 0, in Concats of at most
 * OC_MAX_OP_INPUTS inputs. */
static oc_status_t concat_rows(oc_graph_t *g, const char *node, const int *parts, int n, int out) {
  int64_t axis = 0;
  if (n <= OC_MAX_OP_INPUTS)
    return oc_emit_instr(g, node, OC_OP_CONCAT, n, parts, 1, &out, &axis, 1, NULL, 0);
  int groups = (n + OC_MAX_OP_INPUTS - 1) / OC_MAX_OP_INPUTS;
  int *joined = malloc(sizeof(int) * (size_t)groups);
  if (!joined) return oom();
  oc_status_t s = OC_OK;
  for (int k = 0; k < groups && !s; k++) {
    int first = k * OC_MAX_OP_INPUTS, count = n - first < OC_MAX_OP_INPUTS ? n - first : OC_MAX_OP_INPUTS;
    joined[k] = oc_graph_new_value(g, node);
    s = joined[k] < 0 ? oom() : concat_rows(g, node, parts + first, count, joined[k]);
  }
  if (!s) s = concat_rows(g, node, joined, groups, out);
  free(joined);
  return s;
}

/* Appends one copy of the encoder program for rows [chunk * N, chunk * N +
 * N); out_cut[j] receives the chunk's value of cut[j]. */
static oc_status_t encode_chunk(inliner_t *in, const char *pass, int chunk, const int *cut, int n_cut,
                                int *out_cut) {
  oc_graph_t *g = in->g;
  const oc_graph_t *m = in->m;
  const analysis_t *a = in->a;
  for (int v = 0; v < m->n_values; v++) in->map[v] = -1;
  char node[700];
  for (int k = 0; k < a->n_batch_inputs; k++) {
    const char *name = g->values[a->batch_inputs[k]].name;
    snprintf(node, sizeof node, "%s/%s%d", name, pass, chunk);
    int mv = oc_graph_find(m, name);
    if (chunk < 0) /* the batch inputs hold the chunk's rows (--global-negatives) */
      in->map[mv] = a->batch_inputs[k];
    else
      OC_RETURN_IF_ERROR(slice_rows(g, node, a->batch_inputs[k], chunk * a->micro, a->micro, &in->map[mv]));
  }
  for (int i = 0; i < m->n_instrs; i++) {
    const oc_instr_t *ins = &m->instrs[i];
    int ids[OC_MAX_OP_INPUTS + OC_MAX_OP_OUTPUTS];
    int *ii = ids, *oo = ids + ins->n_in;
    for (int k = 0; k < ins->n_in; k++) {
      int mv = ins->in[k];
      ii[k] = mv < 0 ? -1 : in->map[mv];
      if (mv < 0 || ii[k] >= 0) continue;
      if (m->values[mv].kind == OC_VALUE_TEMP)
        return oc_make_status(OC_STATUS_INTERNAL, "encoder value '%s' is read before it is computed",
                              m->values[mv].name);
      OC_RETURN_IF_ERROR(shared_value(in, mv, &ii[k]));
    }
    for (int k = 0; k < ins->n_out; k++) {
      oo[k] = fresh(g, m->values[ins->out[k]].name, pass, chunk);
      if (oo[k] < 0) return oom();
      in->map[ins->out[k]] = oo[k];
    }
    snprintf(node, sizeof node, "%s/%s%d", ins->node ? ins->node : "", pass, chunk);
    OC_RETURN_IF_ERROR(oc_emit_instr(g, node, ins->op, ins->n_in, ii, ins->n_out, oo, ins->ints,
                                     ins->n_ints, ins->floats, ins->n_floats));
  }
  for (int j = 0; j < n_cut; j++) out_cut[j] = in->map[cut[j]];
  return OC_OK;
}

/* Moves instructions [start, n_instrs) to the front of the program. */
static oc_status_t move_to_front(oc_graph_t *g, int start) {
  int n = g->n_instrs - start;
  oc_instr_t *tail = malloc(sizeof(oc_instr_t) * (size_t)(n + 1));
  if (!tail) return oom();
  memcpy(tail, g->instrs + start, sizeof(oc_instr_t) * (size_t)n);
  memmove(g->instrs + n, g->instrs, sizeof(oc_instr_t) * (size_t)start);
  memcpy(g->instrs, tail, sizeof(oc_instr_t) * (size_t)n);
  free(tail);
  for (int i = 0; i < g->n_instrs; i++)
    for (int k = 0; k < g->instrs[i].n_out; k++) g->values[g->instrs[i].out[k]].producer = i;
  return OC_OK;
}

/* Removes the encoder instructions from the program; their outputs lose
 * their producer (the cut values get new ones). */
static oc_status_t drop_encoders(oc_graph_t *g, const char *encoder) {
  char *keep = malloc((size_t)g->n_instrs + 1);
  if (!keep) return oom();
  for (int i = 0; i < g->n_instrs; i++) keep[i] = !encoder[i];
  oc_graph_keep_instrs(g, keep);
  free(keep);
  return OC_OK;
}

/* Checks the encoder program at batch N and collects what the user should
 * know about it. */
static oc_status_t check_cut_types(const analysis_t *a, const oc_graph_t *g, const oc_graph_t *m,
                                   const int *cut, int n_cut) {
  for (int j = 0; j < n_cut; j++) {
    const oc_tensor_t *mt = &m->values[cut[j]].type, *gt = &g->values[a->cut[j]].type;
    int ok = m->values[cut[j]].known && mt->dtype == gt->dtype && mt->rank == gt->rank &&
             mt->dims[0] == a->micro;
    for (int d = 1; ok && d < mt->rank; d++) ok = mt->dims[d] == gt->dims[d];
    if (!ok) {
      char b1[160], b2[160];
      return oc_make_status(OC_STATUS_UNSUPPORTED,
                            "--micro-batch %lld: at batch %lld the encoder makes '%s' %s, at the "
                            "full batch %s: the model's shapes do not follow the batch",
                            (long long)a->micro, (long long)a->micro, g->values[a->cut[j]].name,
                            oc_type_str(mt, b1, sizeof b1), oc_type_str(gt, b2, sizeof b2));
    }
  }
  return OC_OK;
}

static oc_status_t check_encoder(const analysis_t *a, const oc_graph_t *g, const oc_graph_t *m,
                                 const int *cut, int n_cut, char **out_warnings) {
  OC_RETURN_IF_ERROR(check_cut_types(a, g, m, cut, n_cut));
  int n_bn = 0;
  const char *bn = NULL;
  for (int i = 0; i < m->n_instrs; i++) {
    const oc_instr_t *ins = &m->instrs[i];
    const oc_op_def_t *def = oc_op_get(ins->op);
    if (def->mutates)
      return oc_make_status(OC_STATUS_UNSUPPORTED,
                            "--micro-batch: node '%s' (%s) in the encoder changes state each "
                            "time it runs (a random mask), so the two encoding passes of "
                            "GradCache would differ; put the cut before it (--cut) or export "
                            "the encoder without it",
                            ins->node, def->name);
    if (ins->op == OC_OP_BATCHNORM && ins->n_ints > 0 && ins->ints[0] == 1 && n_bn++ == 0)
      bn = ins->node;
  }
  *out_warnings = NULL;
  if (n_bn) {
    char text[1024];
    snprintf(text, sizeof text,
             "--micro-batch %lld: %d training-mode BatchNormalization node(s) in the encoders "
             "(first: '%s') normalize each chunk of %lld rows with that chunk's statistics, as "
             "GradCache does, and update the running statistics once per chunk: the step is not "
             "the full-batch step\n",
             (long long)a->micro, n_bn, bn, (long long)a->micro);
    *out_warnings = oc_strdup(text);
    if (!*out_warnings) return oom();
  }
  return OC_OK;
}

/* Index of |v| in |list|, or -1. */
static int find_index(const int *list, int n, int v) {
  for (int k = 0; k < n; k++)
    if (list[k] == v) return k;
  return -1;
}

/* Whether |v| is a constant zero: the gradient autodiff gives a parameter
 * with no path to what it differentiates. */
static int zero_const(const oc_graph_t *g, int v) {
  const oc_value_t *val = &g->values[v];
  if (val->kind != OC_VALUE_CONST || val->type.dtype != OC_DTYPE_FLOAT32) return 0;
  const float *d = val->type.data;
  for (int64_t i = 0; i < oc_tensor_numel(&val->type); i++)
    if (d[i] != 0.0f) return 0;
  return 1;
}

/* |*acc| += |grad| (a new value; |*acc| < 0 starts the sum). Zero constants
 * add nothing. */
static oc_status_t accumulate(oc_graph_t *g, const char *param, int *acc, int grad) {
  if (zero_const(g, grad)) return OC_OK;
  if (*acc < 0) {
    *acc = grad;
    return OC_OK;
  }
  char node[600];
  snprintf(node, sizeof node, "%s/grad/sum_chunks", param);
  int sum = oc_graph_new_value(g, node);
  if (sum < 0) return oom();
  int in[2] = {*acc, grad};
  OC_RETURN_IF_ERROR(oc_emit_instr(g, node, OC_OP_ADD, 2, in, 1, &sum, NULL, 0, NULL, 0));
  *acc = sum;
  return OC_OK;
}

typedef struct build_s {
  analysis_t a;
  inliner_t in;
  int n_values;        /* of g before the rewrite: the parameters are below */
  int *head_params;    /* trained cut values of g, then the parameters the head reads */
  int *head_grads;
  int n_head, n_trained_cut;
  int *enc_params;     /* values of g: the parameters the encoder reads */
  int n_enc;
  int *acc;            /* per value of g below n_values: summed encoder gradient, or -1 */
  int *chunk_cut, *seeds, *grads;
  char *trains;        /* per cut value: depends on a trained parameter */
} build_t;

static void build_free(build_t *b) {
  analysis_free(&b->a);
  free(b->in.shared);
  free(b->in.map);
  free(b->head_params);
  free(b->head_grads);
  free(b->enc_params);
  free(b->acc);
  free(b->chunk_cut);
  free(b->seeds);
  free(b->grads);
  free(b->trains);
}

/* The parameters the encoder program reads (as values of g), and which cut
 * values depend on them. */
static oc_status_t encoder_params(build_t *b, const int *cut, int n_cut, const oc_name_set_t *params) {
  const oc_graph_t *m = b->in.m;
  char *dep = calloc((size_t)m->n_values + 1, 1);
  if (!dep) return oom();
  oc_status_t s = OC_OK;
  for (int i = 0; i < m->n_instrs && !s; i++) {
    const oc_instr_t *ins = &m->instrs[i];
    int any = 0;
    for (int k = 0; k < ins->n_in && !s; k++) {
      int mv = ins->in[k];
      if (mv < 0) continue;
      const oc_value_t *val = &m->values[mv];
      if (val->kind == OC_VALUE_STATE && oc_name_set_has(params, val->name) && !dep[mv]) {
        dep[mv] = 1;
        int gv;
        s = shared_value(&b->in, mv, &gv);
        if (!s) b->enc_params[b->n_enc++] = gv;
      }
      any |= dep[mv];
    }
    for (int k = 0; k < ins->n_out; k++) dep[ins->out[k]] = (char)any;
  }
  for (int j = 0; j < n_cut; j++) b->trains[j] = dep[cut[j]];
  free(dep);
  return s;
}

oc_status_t oc_gradcache_build(oc_graph_t *g, const oc_graph_t *micro, const int *cut, int n_cut,
                               int loss, const oc_train_options_t *t, const oc_name_set_t *params,
                               char **out_warnings) {
  *out_warnings = NULL;
  build_t b;
  memset(&b, 0, sizeof b);
  const char *names[OC_COMPILE_MAX_OUTPUTS] = {0};
  for (int j = 0; j < n_cut; j++) names[j] = micro->values[cut[j]].name;
  oc_status_t s = analyze(&b.a, g, micro, loss, t, names, n_cut, "cut");
  if (s) goto done;
  s = check_encoder(&b.a, g, micro, cut, n_cut, out_warnings);
  if (s) goto done;
  int64_t chunks = b.a.batch / b.a.micro;
  b.n_values = g->n_values;
  b.in = (inliner_t){.g = g, .m = micro, .a = &b.a};
  b.in.shared = malloc(sizeof(int) * (size_t)(micro->n_values + 1));
  b.in.map = malloc(sizeof(int) * (size_t)(micro->n_values + 1));
  b.head_params = malloc(sizeof(int) * (size_t)(g->n_values + n_cut + 1));
  b.head_grads = malloc(sizeof(int) * (size_t)(g->n_values + n_cut + 1));
  b.enc_params = malloc(sizeof(int) * (size_t)(micro->n_values + 1));
  b.acc = malloc(sizeof(int) * (size_t)(g->n_values + 1));
  b.chunk_cut = malloc(sizeof(int) * (size_t)(n_cut * chunks + 1));
  b.seeds = malloc(sizeof(int) * (size_t)(n_cut + 1));
  b.grads = malloc(sizeof(int) * (size_t)(micro->n_values + 1));
  b.trains = calloc((size_t)n_cut + 1, 1);
  if (!b.in.shared || !b.in.map || !b.head_params || !b.head_grads || !b.enc_params || !b.acc ||
      !b.chunk_cut || !b.seeds || !b.grads || !b.trains) {
    s = oom();
    goto done;
  }
  for (int v = 0; v < micro->n_values; v++) b.in.shared[v] = -1;
  for (int v = 0; v < g->n_values; v++) b.acc[v] = -1;
  s = encoder_params(&b, cut, n_cut, params);
  if (s) goto done;

  /* The head alone, differentiated down to the cut values (leaves now). */
  s = drop_encoders(g, b.a.encoder);
  if (s) goto done;
  for (int j = 0; j < n_cut; j++)
    if (b.trains[j]) b.head_params[b.n_head++] = b.a.cut[j];
  b.n_trained_cut = b.n_head;
  {
    int *read = NULL, n_read = 0;
    s = oc_train_read_params(g, params, &read, &n_read);
    if (s) goto done;
    for (int k = 0; k < n_read; k++) b.head_params[b.n_head++] = read[k];
    free(read);
  }
  s = oc_autodiff(g, loss, -1, b.head_params, b.n_head, b.head_grads);
  if (s) goto done;

  /* Pass 1, put in front of the head: every chunk encoded, its activations
   * dropped; the cut values joined. */
  int start = g->n_instrs;
  for (int64_t c = 0; c < chunks && !s; c++)
    s = encode_chunk(&b.in, "encode", (int)c, cut, n_cut, b.chunk_cut + c * n_cut);
  for (int j = 0; j < n_cut && !s; j++) {
    int *col = malloc(sizeof(int) * (size_t)(chunks + 1));
    if (!col) {
      s = oom();
      break;
    }
    for (int64_t c = 0; c < chunks; c++) col[c] = b.chunk_cut[c * n_cut + j];
    char node[600];
    snprintf(node, sizeof node, "%s/join_chunks", g->values[b.a.cut[j]].name);
    g->values[b.a.cut[j]].known = 0; /* produced again, by the join */
    s = concat_rows(g, node, col, (int)chunks, b.a.cut[j]);
    free(col);
  }
  if (!s) s = move_to_front(g, start);
  if (!s) s = oc_train_write_back_running_stats(g);
  if (s) goto done;

  /* Pass 2: each chunk encoded again, its rows of the cut gradients
   * backpropagated into the encoder parameters and summed over chunks. */
  for (int64_t c = 0; c < chunks && !s && b.n_trained_cut; c++) {
    int *zc = b.chunk_cut; /* reused: pass 1's values are placed already */
    s = encode_chunk(&b.in, "reencode", (int)c, cut, n_cut, zc);
    int n_seeds = 0;
    for (int j = 0; j < n_cut && !s; j++) {
      if (!b.trains[j]) continue;
      char node[600];
      snprintf(node, sizeof node, "%s/grad/chunk%lld", g->values[b.a.cut[j]].name, (long long)c);
      int hg = b.head_grads[find_index(b.head_params, b.n_trained_cut, b.a.cut[j])];
      zc[n_seeds] = zc[j];
      s = slice_rows(g, node, hg, c * b.a.micro, b.a.micro, &b.seeds[n_seeds]);
      n_seeds++;
    }
    if (!s) s = oc_autodiff_seeds(g, n_seeds, zc, b.seeds, b.enc_params, b.n_enc, b.grads);
    for (int k = 0; k < b.n_enc && !s; k++) {
      int p = b.enc_params[k];
      s = accumulate(g, g->values[p].name, &b.acc[p], b.grads[k]);
    }
  }
  if (s) goto done;

  /* The gradients: the head's plus the encoders'. */
  {
    int *ps = NULL, n = 0;
    s = oc_train_read_params(g, params, &ps, &n);
    int *gs = s ? NULL : malloc(sizeof(int) * (size_t)(n + 1));
    if (!s && !gs) s = oom();
    for (int k = 0; k < n && !s; k++) {
      int p = ps[k], h = find_index(b.head_params + b.n_trained_cut, b.n_head - b.n_trained_cut, p);
      int sum = p < b.n_values ? b.acc[p] : -1;
      if (h >= 0) s = accumulate(g, g->values[p].name, &sum, b.head_grads[b.n_trained_cut + h]);
      if (!s && sum < 0) {
        char hint[600];
        snprintf(hint, sizeof hint, "%s/grad/zero", g->values[p].name);
        sum = oc_graph_new_value(g, hint);
        const oc_tensor_t *pt = &g->values[p].type;
        int64_t dims[OC_MAX_RANK];
        memcpy(dims, pt->dims, sizeof dims);
        s = sum < 0 ? oom() : oc_value_set_const(g, sum, OC_DTYPE_FLOAT32, pt->rank, dims, NULL);
      }
      if (!s) gs[k] = sum;
    }
    if (!s) s = oc_train_update(g, loss, t, params, ps, gs, n);
    free(ps);
    free(gs);
  }
done:
  build_free(&b);
  if (s) {
    free(*out_warnings);
    *out_warnings = NULL;
  }
  return s;
}

/* --- global negatives ------------------------------------------------------------------ */

/* |out| (fresh) = every rank's |src| along axis 0. */
static oc_status_t all_gather(oc_graph_t *g, const char *node, int src, int64_t ranks, int out) {
  return oc_emit_instr(g, node, OC_OP_ALLGATHER, 1, &src, 1, &out, &ranks, 1, NULL, 0);
}

oc_status_t oc_gradcache_global(oc_graph_t *g, const oc_graph_t *micro, const int *cut, int n_cut,
                                int loss, const oc_train_options_t *t) {
  analysis_t a;
  inliner_t in = {.g = g, .m = micro, .a = &a};
  const char *names[OC_COMPILE_MAX_OUTPUTS] = {0};
  for (int j = 0; j < n_cut; j++) names[j] = micro->values[cut[j]].name;
  int local[OC_COMPILE_MAX_OUTPUTS];
  oc_status_t s = analyze(&a, g, micro, loss, t, names, n_cut, "cut");
  if (!s) s = check_cut_types(&a, g, micro, cut, n_cut);
  if (!s) {
    in.shared = malloc(sizeof(int) * (size_t)(micro->n_values + 1));
    in.map = malloc(sizeof(int) * (size_t)(micro->n_values + 1));
    if (!in.shared || !in.map) s = oom();
  }
  if (!s) {
    for (int v = 0; v < micro->n_values; v++) in.shared[v] = -1;
    s = drop_encoders(g, a.encoder);
  }
  /* The batch inputs hold this rank's rows; what the head reads of them
   * (labels, say) is every rank's. */
  int start = g->n_instrs;
  for (int k = 0; k < a.n_batch_inputs && !s; k++) {
    int v = a.batch_inputs[k], read = 0;
    for (int i = 0; i < start; i++)
      for (int q = 0; q < g->instrs[i].n_in; q++) read |= g->instrs[i].in[q] == v;
    g->values[v].type.dims[0] = a.micro;
    if (!read) continue;
    char node[600];
    snprintf(node, sizeof node, "%s/all_ranks", g->values[v].name);
    int all = oc_graph_new_value(g, node);
    s = all < 0 ? oom() : all_gather(g, node, v, t->ranks, all);
    for (int i = 0; i < start && !s; i++)
      for (int q = 0; q < g->instrs[i].n_in; q++)
        if (g->instrs[i].in[q] == v) g->instrs[i].in[q] = all;
  }
  /* This rank's encoders, then every rank's cut values. */
  if (!s) s = encode_chunk(&in, "rank", -1, cut, n_cut, local);
  for (int j = 0; j < n_cut && !s; j++) {
    char node[600];
    snprintf(node, sizeof node, "%s/all_ranks", g->values[a.cut[j]].name);
    g->values[a.cut[j]].known = 0; /* produced again, by the gather */
    s = all_gather(g, node, local[j], t->ranks, a.cut[j]);
  }
  if (!s) s = move_to_front(g, start);
  free(in.shared);
  free(in.map);
  analysis_free(&a);
  return s;
}
