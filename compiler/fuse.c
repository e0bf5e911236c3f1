/*
 * Fusions on a lowered program (see fuse.h). Each rewrite replaces a chain
 * of instructions by one, removing the tensors between them, and changes
 * results by rounding at most. A chain is fused only when every tensor
 * inside it is read by the next instruction of the chain alone and is not an
 * entry point output; the fused instruction takes the place of the chain's
 * last one, so everything it reads is computed before it.
 *
 * Conv -> BatchNormalization (inference mode, every input but X a
 *   compile-time constant), with constant Conv weights (and bias): the
 *   normalization is folded into new weights and bias,
 *       a = scale / sqrt(var + eps),  W' = W * a (per output channel),
 *       b' = (b - mean) * a + B;
 * Conv -> Relu, Conv -> Clip (float32 bounds): the Conv's fused activation
 *   (runtime/ops/conv.c: ints [..., activation], floats [lo, hi] for Clip).
 *
 * LayerNorm over the last axis as exporters write it before opset 17:
 *       m = ReduceMean(x, last axis, keepdims), d = x - m,
 *       v = ReduceMean(Pow(d, 2)), y = d / Sqrt(v + eps) [* gamma [+ beta]]
 *   -> LayerNormalization(x, gamma, beta) with axis -1 (gamma and beta
 *   vectors of the last dim; without them, gamma = ones and no beta).
 *
 * GELU (erf form) on z, optionally z = bias + t with a bias vector of the
 *   last dim (a product's bias):
 *       y = z * (Erf(z / sqrt(2)) + 1) * 0.5   (the two Muls in either order,
 *       z / sqrt(2) also as z * (1 / sqrt(2)))
 *   -> Gelu(z) or Gelu(t, bias) (runtime/ops/gelu.c).
 *
 * Attention: MatMul(q, kt) [/ or * a constant on q, kt or the scores] ->
 *   Softmax over the last axis -> MatMul(., v) [-> Transpose], no mask
 *   -> Attention (runtime/ops/attention.c) reading q, k and v through
 *   strides: the Slice / reshape / Transpose chains that cut the heads out
 *   of a packed product are followed back to that product (views below) and
 *   left to prune(); the output is written in the Transpose's layout.
 *
 * Conv with constant float32 weights (group 1, a multiple of 16 output
 *   channels) that the runtime's kernel reads packed (runtime/ops/conv.c,
 *   ints layout 1: what its shape rule accepts): the weights packed into a
 *   new constant of the same dims and bytes (oc_conv_pack_weights), so that
 *   no run reorders or gathers them.
 *
 * Every constant of a pattern must be exactly the float32 the exporters
 * write (2, 1, 0.5, sqrt(2) and 1/sqrt(2) rounded to float32); epsilon a
 * finite scalar >= 0.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuse.h"

#define AT_BATCH_MAX 8 /* runtime/ops/attention.c */

/* The program's read graph, rebuilt before each kind of fusion. */
typedef struct fuse_s {
  oc_graph_t *g;
  int *uses;          /* per value: input slots reading it, plus one per entry output */
  int *rstart, *rlist; /* per value v: its readers rlist[rstart[v] .. rstart[v+1]) */
  char *dead;         /* per instruction: fused away */
} fuse_t;

static void fuse_index_free(fuse_t *f) {
  free(f->uses);
  free(f->rstart);
  free(f->rlist);
  free(f->dead);
  f->uses = f->rstart = f->rlist = NULL;
  f->dead = NULL;
}

/* Builds the read graph of |g|; 0 when out of memory (fusions are
 * optional: the caller then skips them). */
static int fuse_index(fuse_t *f, oc_graph_t *g, const int *outputs, int n_outputs) {
  size_t nv = (size_t)g->n_values + 1, reads = 0;
  for (int i = 0; i < g->n_instrs; i++) reads += (size_t)g->instrs[i].n_in;
  f->g = g;
  f->uses = calloc(nv, sizeof(int));
  f->rstart = calloc(nv + 1, sizeof(int));
  f->rlist = malloc(sizeof(int) * (reads + 1));
  f->dead = calloc((size_t)g->n_instrs + 1, 1);
  if (!f->uses || !f->rstart || !f->rlist || !f->dead) {
    fuse_index_free(f);
    return 0;
  }
  for (int i = 0; i < g->n_instrs; i++)
    for (int k = 0; k < g->instrs[i].n_in; k++)
      if (g->instrs[i].in[k] >= 0) f->rstart[g->instrs[i].in[k] + 1]++;
  for (int v = 0; v < g->n_values; v++) {
    f->uses[v] = f->rstart[v + 1];
    f->rstart[v + 1] += f->rstart[v];
  }
  int *fill = f->uses; /* reused as cursors, then recounted */
  for (int v = 0; v < g->n_values; v++) fill[v] = f->rstart[v];
  for (int i = 0; i < g->n_instrs; i++)
    for (int k = 0; k < g->instrs[i].n_in; k++)
      if (g->instrs[i].in[k] >= 0) f->rlist[fill[g->instrs[i].in[k]]++] = i;
  for (int v = 0; v < g->n_values; v++) f->uses[v] = f->rstart[v + 1] - f->rstart[v];
  for (int i = 0; i < n_outputs; i++) f->uses[outputs[i]]++;
  return 1;
}

/* The live instruction with op |op| that is the only reader of |v| (which is
 * not an entry output), or -1. */
static int sole_reader(const fuse_t *f, int v, int op) {
  if (v < 0 || f->uses[v] != 1 || f->rstart[v + 1] - f->rstart[v] != 1) return -1;
  int i = f->rlist[f->rstart[v]];
  return !f->dead[i] && f->g->instrs[i].op == op && f->g->instrs[i].n_out == 1 ? i : -1;
}

/* The live single-output instruction with op |op| producing |v|, or -1. */
static int producer_of(const fuse_t *f, int v, int op) {
  int i = v >= 0 ? f->g->values[v].producer : -1;
  if (i < 0 || i >= f->g->n_instrs || f->dead[i]) return -1;
  const oc_instr_t *p = &f->g->instrs[i];
  return p->op == op && p->n_out == 1 && p->out[0] == v ? i : -1;
}

/* Removes the fused-away instructions and renumbers producers (|dead|
 * becomes the keep mask). */
static void fuse_compact(fuse_t *f) {
  for (int i = 0; i < f->g->n_instrs; i++) f->dead[i] = !f->dead[i];
  oc_graph_keep_instrs(f->g, f->dead);
}

static int is_const_f32(const oc_graph_t *g, int v) {
  return v >= 0 && g->values[v].kind == OC_VALUE_CONST && g->values[v].foldable &&
         g->values[v].type.dtype == OC_DTYPE_FLOAT32 && g->values[v].type.data;
}

/* |v| is a float32 compile-time constant of one element equal to |want|. */
static int is_scalar(const oc_graph_t *g, int v, float want) {
  return is_const_f32(g, v) && oc_tensor_numel(&g->values[v].type) == 1 &&
         ((const float *)g->values[v].type.data)[0] == want;
}

static int same_dims(const oc_tensor_t *a, const oc_tensor_t *b) {
  if (a->rank != b->rank) return 0;
  for (int i = 0; i < a->rank; i++)
    if (a->dims[i] != b->dims[i]) return 0;
  return 1;
}

/* A float32 value of dims (n): a normalization's gamma or beta, a bias. */
static int is_vector(const oc_graph_t *g, int v, int64_t n) {
  return v >= 0 && g->values[v].known && g->values[v].type.dtype == OC_DTYPE_FLOAT32 &&
         g->values[v].type.rank == 1 && g->values[v].type.dims[0] == n;
}

/* The input of binary instruction |ins| that is not |v| (|v| itself when
 * both are), or -1 when |v| is not an input. */
static int other_input(const oc_instr_t *ins, int v) {
  if (ins->n_in != 2) return -1;
  if (ins->in[0] == v) return ins->in[1];
  if (ins->in[1] == v) return ins->in[0];
  return -1;
}

/* Makes instruction |at| op(in...) with the given ints and floats, keeping
 * its output and node name, if the op's shape rule accepts that and gives
 * the output its type (*done = 1); else leaves it as it was (*done = 0). */
static oc_status_t set_instr(oc_graph_t *g, int at, int op, const int *in, int n_in,
                             const int64_t *ints, int n_ints, const float *floats, int n_floats,
                             int *done) {
  oc_instr_t *ins = &g->instrs[at];
  *done = 0;
  if (ins->n_out != 1 || n_in > 3) return OC_OK;
  oc_tensor_t tin[3], tout, *pin[3], *pout[1] = {&tout};
  for (int k = 0; k < n_in; k++) {
    tin[k] = g->values[in[k]].type;
    pin[k] = &tin[k];
  }
  oc_op_call_t call = {.ints = ints, .n_ints = n_ints, .floats = floats, .n_floats = n_floats,
                       .n_in = n_in, .in = pin, .n_out = 1, .out = pout};
  size_t ws = 0;
  oc_status_t s = oc_op_infer(op, &call, &ws);
  const oc_tensor_t *want = &g->values[ins->out[0]].type;
  if (s || tout.dtype != want->dtype || !same_dims(&tout, want)) {
    oc_status_free(s);
    return OC_OK;
  }
  int *ni = malloc(sizeof(int) * (size_t)(n_in + 1));
  int64_t *nn = malloc(sizeof(int64_t) * (size_t)(n_ints + 1));
  float *nf = malloc(sizeof(float) * (size_t)(n_floats + 1));
  if (!ni || !nn || !nf) {
    free(ni);
    free(nn);
    free(nf);
    return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  }
  memcpy(ni, in, sizeof(int) * (size_t)n_in);
  if (n_ints) memcpy(nn, ints, sizeof(int64_t) * (size_t)n_ints);
  if (n_floats) memcpy(nf, floats, sizeof(float) * (size_t)n_floats);
  free(ins->in);
  free(ins->ints);
  free(ins->floats);
  ins->op = op;
  ins->in = ni;
  ins->n_in = n_in;
  ins->ints = nn;
  ins->n_ints = n_ints;
  ins->floats = nf;
  ins->n_floats = n_floats;
  ins->workspace_bytes = ws;
  *done = 1;
  return OC_OK;
}

/* Marks the instructions of a fused chain dead, except |last| (the fused
 * one); entries < 0 are absent links. */
static void kill_chain(fuse_t *f, const int *chain, int n, int last) {
  for (int c = 0; c < n; c++)
    if (chain[c] >= 0 && chain[c] != last) f->dead[chain[c]] = 1;
}

/* --- Conv + BatchNormalization / activation ------------------------------- */

/* A Conv without a fused activation yet: its spatial axis count, else 0. */
static int plain_conv(const oc_instr_t *c) {
  if (c->op != OC_OP_CONV || c->n_out != 1) return 0;
  int n = (c->n_ints - 1) / 4;
  return n >= 1 && n <= 3 && c->n_ints == 1 + 4 * n ? n : 0;
}

/* Folds BatchNormalization |b| into Conv |c| (whose output it reads). */
static oc_status_t fold_batchnorm(oc_graph_t *g, oc_instr_t *c, const oc_instr_t *b) {
  const oc_tensor_t *w = &g->values[c->in[1]].type;
  int has_bias = c->n_in > 2 && c->in[2] >= 0;
  int64_t M = w->dims[0], per = oc_tensor_numel(w) / (M ? M : 1);
  const float *scale = g->values[b->in[1]].type.data, *shift = g->values[b->in[2]].type.data;
  const float *mean = g->values[b->in[3]].type.data, *var = g->values[b->in[4]].type.data;
  const float *bias = has_bias ? g->values[c->in[2]].type.data : NULL;
  const float *wd = w->data;
  float eps = b->floats[0];
  float *nw = malloc(sizeof(float) * (size_t)(M * per + 1));
  float *nb = malloc(sizeof(float) * (size_t)(M + 1));
  if (!nw || !nb) {
    free(nw);
    free(nb);
    return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  }
  for (int64_t m = 0; m < M; m++) {
    /* the BatchNormalization kernel's own factor (runtime/ops/batchnorm.c) */
    float a = (float)((double)scale[m] / sqrt((double)var[m] + (double)eps));
    for (int64_t k = 0; k < per; k++) nw[m * per + k] = wd[m * per + k] * a;
    nb[m] = ((bias ? bias[m] : 0.0f) - mean[m]) * a + shift[m];
  }
  char name[512];
  int64_t bdims[1] = {M};
  int64_t wdims[OC_MAX_RANK];
  memcpy(wdims, w->dims, sizeof wdims);
  int wrank = w->rank;
  snprintf(name, sizeof name, "%s/folded_W", c->node);
  int vw = oc_graph_new_value(g, name);
  snprintf(name, sizeof name, "%s/folded_B", c->node);
  int vb = oc_graph_new_value(g, name);
  oc_status_t s = OC_OK;
  if (vw < 0 || vb < 0) s = oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  if (!s) s = oc_value_set_const(g, vw, OC_DTYPE_FLOAT32, wrank, wdims, nw);
  if (!s) s = oc_value_set_const(g, vb, OC_DTYPE_FLOAT32, 1, bdims, nb);
  free(nw);
  free(nb);
  if (s) return s;
  if (c->n_in < 3) {
    int *in = realloc(c->in, sizeof(int) * 3);
    if (!in) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
    c->in = in;
    c->n_in = 3;
  }
  c->in[1] = vw;
  c->in[2] = vb;
  return OC_OK;
}

/* Makes Relu / Clip |a| Conv |c|'s activation. */
static oc_status_t fuse_activation(oc_instr_t *c, const oc_instr_t *a) {
  int64_t *ints = realloc(c->ints, sizeof(int64_t) * (size_t)(c->n_ints + 1));
  if (!ints) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  c->ints = ints;
  c->ints[c->n_ints++] = a->op == OC_OP_RELU ? 1 : 2;
  if (a->op == OC_OP_CLIP) {
    float *f = realloc(c->floats, sizeof(float) * 2);
    if (!f) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
    c->floats = f;
    c->floats[0] = a->floats[0];
    c->floats[1] = a->floats[1];
    c->n_floats = 2;
  }
  return OC_OK;
}

/* The instruction reading Conv |i|'s output if it can be fused into it, or -1. */
static int conv_follower(const fuse_t *f, int i, int round) {
  const oc_graph_t *g = f->g;
  const oc_instr_t *c = &g->instrs[i];
  int v = c->out[0];
  if (f->uses[v] != 1 || f->rstart[v + 1] - f->rstart[v] != 1) return -1;
  int j = f->rlist[f->rstart[v]];
  const oc_instr_t *b = &g->instrs[j];
  if (f->dead[j] || b->in[0] != v || b->n_out != 1 || !plain_conv(c)) return -1;
  int fold = round == 0 && b->op == OC_OP_BATCHNORM && b->n_in == 5 && b->n_ints == 1 &&
             b->ints[0] == 0 && b->n_floats == 1 && g->values[v].type.rank >= 3 &&
             is_const_f32(g, c->in[1]) && (c->n_in < 3 || c->in[2] < 0 || is_const_f32(g, c->in[2]));
  for (int k = 1; k < 5 && fold; k++) fold = is_const_f32(g, b->in[k]);
  int act = b->op == OC_OP_RELU ||
            (b->op == OC_OP_CLIP && b->n_floats == 2 && b->n_ints == 0 &&
             g->values[v].type.dtype == OC_DTYPE_FLOAT32 && b->floats[0] <= b->floats[1]);
  return fold || act ? j : -1;
}

static oc_status_t fuse_conv(fuse_t *f) {
  oc_graph_t *g = f->g;
  oc_status_t s = OC_OK;
  for (int i = 0; i < g->n_instrs && !s; i++) {
    if (f->dead[i] || !plain_conv(&g->instrs[i])) continue;
    /* a BatchNormalization first, then an activation */
    for (int round = 0; round < 2 && !s; round++) {
      int j = conv_follower(f, i, round);
      if (j < 0) break;
      oc_instr_t *c = &g->instrs[i];
      const oc_instr_t *b = &g->instrs[j];
      int v = c->out[0];
      s = b->op == OC_OP_BATCHNORM ? fold_batchnorm(g, c, b) : fuse_activation(c, b);
      if (s) break;
      /* the Conv now writes the second instruction's output */
      c->out[0] = b->out[0];
      g->values[b->out[0]].producer = i;
      g->values[v].producer = -1;
      f->dead[j] = 1;
    }
  }
  return s;
}

/* --- LayerNorm --------------------------------------------------------------- */

/* A float32 ReduceMean over the last axis keeping it: ints [1, -1 or r-1]. */
static int is_last_axis_mean(const oc_graph_t *g, const oc_instr_t *ins) {
  if (ins->op != OC_OP_REDUCE_MEAN || ins->n_in != 1 || ins->n_out != 1 || ins->n_ints != 2 ||
      ins->ints[0] != 1)
    return 0;
  const oc_tensor_t *x = &g->values[ins->in[0]].type;
  return x->dtype == OC_DTYPE_FLOAT32 && x->rank >= 1 && x->dims[x->rank - 1] > 0 &&
         (ins->ints[1] == -1 || ins->ints[1] == x->rank - 1);
}

/* Fuses the LayerNorm chain starting at ReduceMean |i|, if it is one. */
static oc_status_t fuse_layernorm_at(fuse_t *f, int i) {
  oc_graph_t *g = f->g;
  const oc_instr_t *ins = g->instrs;
  if (!is_last_axis_mean(g, &ins[i])) return OC_OK;
  int x = ins[i].in[0];
  const oc_tensor_t *xt = &g->values[x].type;
  int64_t D = xt->dims[xt->rank - 1];
  /* d = x - mean */
  int sub = sole_reader(f, ins[i].out[0], OC_OP_SUB);
  if (sub < 0 || ins[sub].in[0] != x || ins[sub].in[1] != ins[i].out[0]) return OC_OK;
  int d = ins[sub].out[0];
  if (!same_dims(&g->values[d].type, xt) || f->uses[d] != 2) return OC_OK;
  /* d's readers: Pow(d, 2) and Div(d, sqrt(var + eps)) */
  int pw = -1, dv = -1;
  for (int r = f->rstart[d]; r < f->rstart[d + 1]; r++) {
    int k = f->rlist[r];
    if (f->dead[k] || ins[k].n_in != 2 || ins[k].n_out != 1 || ins[k].in[0] != d) return OC_OK;
    if (ins[k].op == OC_OP_POW && is_scalar(g, ins[k].in[1], 2.0f) && pw < 0)
      pw = k;
    else if (ins[k].op == OC_OP_DIV && ins[k].in[1] != d && dv < 0)
      dv = k;
    else
      return OC_OK;
  }
  if (pw < 0 || dv < 0) return OC_OK;
  int var = sole_reader(f, ins[pw].out[0], OC_OP_REDUCE_MEAN);
  if (var < 0 || !is_last_axis_mean(g, &ins[var])) return OC_OK;
  int add = sole_reader(f, ins[var].out[0], OC_OP_ADD);
  if (add < 0) return OC_OK;
  int e = other_input(&ins[add], ins[var].out[0]);
  if (!is_const_f32(g, e) || oc_tensor_numel(&g->values[e].type) != 1 ||
      !same_dims(&g->values[ins[add].out[0]].type, &g->values[ins[var].out[0]].type))
    return OC_OK;
  float eps = ((const float *)g->values[e].type.data)[0];
  if (!(eps >= 0.0f) || isinf(eps)) return OC_OK;
  int sq = sole_reader(f, ins[add].out[0], OC_OP_SQRT);
  if (sq < 0 || sole_reader(f, ins[sq].out[0], OC_OP_DIV) != dv || ins[dv].in[1] != ins[sq].out[0])
    return OC_OK;
  if (!same_dims(&g->values[ins[dv].out[0]].type, xt)) return OC_OK;
  /* optional * gamma, then + beta */
  int last = dv, mul = -1, gamma = -1, beta = -1;
  int k = sole_reader(f, ins[dv].out[0], OC_OP_MUL);
  if (k >= 0 && is_vector(g, other_input(&ins[k], ins[dv].out[0]), D) &&
      same_dims(&g->values[ins[k].out[0]].type, xt)) {
    mul = last = k;
    gamma = other_input(&ins[k], ins[dv].out[0]);
    k = sole_reader(f, ins[mul].out[0], OC_OP_ADD);
    if (k >= 0 && is_vector(g, other_input(&ins[k], ins[mul].out[0]), D) &&
        same_dims(&g->values[ins[k].out[0]].type, xt)) {
      last = k;
      beta = other_input(&ins[k], ins[mul].out[0]);
    }
  }
  if (gamma < 0) { /* no scale: ones */
    float *ones = malloc(sizeof(float) * (size_t)D);
    char name[512];
    snprintf(name, sizeof name, "%s/ones", ins[dv].node);
    gamma = ones ? oc_graph_new_value(g, name) : -1;
    oc_status_t s = gamma < 0 ? oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory") : OC_OK;
    for (int64_t j = 0; !s && j < D; j++) ones[j] = 1.0f;
    if (!s) s = oc_value_set_const(g, gamma, OC_DTYPE_FLOAT32, 1, &D, ones);
    free(ones);
    if (s) return s;
    ins = g->instrs;
  }
  int in[3] = {x, gamma, beta};
  int64_t axis = -1;
  int chain[] = {i, sub, pw, var, add, sq, dv, mul}, done;
  OC_RETURN_IF_ERROR(set_instr(g, last, OC_OP_LAYERNORM, in, beta >= 0 ? 3 : 2, &axis, 1, &eps, 1,
                               &done));
  if (done) kill_chain(f, chain, 8, last);
  return OC_OK;
}

/* --- GELU ---------------------------------------------------------------------- */

/* Fuses the GELU chain around Erf |i|, if it is one. */
static oc_status_t fuse_gelu_at(fuse_t *f, int i) {
  oc_graph_t *g = f->g;
  const oc_instr_t *ins = g->instrs;
  if (ins[i].op != OC_OP_ERF || ins[i].n_in != 1 || ins[i].n_out != 1) return OC_OK;
  /* z / sqrt(2) or z * (1 / sqrt(2)) */
  int u = ins[i].in[0], z = -1;
  int sc = producer_of(f, u, OC_OP_DIV);
  if (sc >= 0 && is_scalar(g, ins[sc].in[1], 1.41421354f)) {
    z = ins[sc].in[0];
  } else if ((sc = producer_of(f, u, OC_OP_MUL)) >= 0) {
    for (int k = 0; k < 2 && z < 0; k++)
      if (is_scalar(g, ins[sc].in[1 - k], 0.707106769f)) z = ins[sc].in[k];
  }
  if (z < 0 || f->uses[u] != 1) return OC_OK;
  const oc_tensor_t *zt = &g->values[z].type;
  if (zt->dtype != OC_DTYPE_FLOAT32 || zt->rank < 1 || !same_dims(&g->values[u].type, zt))
    return OC_OK;
  /* Erf(.) + 1 */
  int one = sole_reader(f, ins[i].out[0], OC_OP_ADD);
  if (one < 0 || !is_scalar(g, other_input(&ins[one], ins[i].out[0]), 1.0f)) return OC_OK;
  int a = ins[one].out[0];
  /* z * a * 0.5 or z * 0.5 * a */
  int m = sole_reader(f, a, OC_OP_MUL), half = -1, last = -1;
  if (m < 0) return OC_OK;
  int o = other_input(&ins[m], a);
  if (o == z) {
    half = last = sole_reader(f, ins[m].out[0], OC_OP_MUL);
    if (half < 0 || !is_scalar(g, other_input(&ins[half], ins[m].out[0]), 0.5f)) return OC_OK;
  } else {
    half = producer_of(f, o, OC_OP_MUL);
    if (half < 0 || f->uses[o] != 1 || !is_scalar(g, other_input(&ins[half], z), 0.5f))
      return OC_OK;
    last = m;
  }
  if (!same_dims(&g->values[ins[m].out[0]].type, zt) ||
      !same_dims(&g->values[ins[half].out[0]].type, zt) || !same_dims(&g->values[a].type, zt))
    return OC_OK;
  /* z = bias + t, z read by this chain alone (its two reads) */
  int in[2] = {z, -1}, n_in = 1, badd = producer_of(f, z, OC_OP_ADD);
  if (badd >= 0 && f->uses[z] == 2) {
    int64_t C = zt->dims[zt->rank - 1];
    for (int k = 0; k < 2 && n_in == 1; k++) {
      int t = ins[badd].in[k], b = ins[badd].in[1 - k];
      if (t != b && same_dims(&g->values[t].type, zt) && is_vector(g, b, C)) {
        in[0] = t;
        in[1] = b;
        n_in = 2;
      }
    }
  }
  int chain[] = {sc, i, one, m, half, n_in == 2 ? badd : -1}, done;
  OC_RETURN_IF_ERROR(set_instr(g, last, OC_OP_GELU, in, n_in, NULL, 0, NULL, 0, &done));
  if (done) kill_chain(f, chain, 6, last);
  return OC_OK;
}

/* --- attention ------------------------------------------------------------- */

/* Where the elements of a value lie in another value's buffer: element
 * (i_0, ..., i_{r-1}) of the value is element off + sum_p idx_p * stride[p]
 * of |base|, the logical dim d being split row-major into the |count[d]|
 * physical dims that follow those of dim d - 1 (none for a dim of size 1). */
#define VIEW_MAX 16
typedef struct view_s {
  int base;
  int64_t off;
  int n;
  int64_t size[VIEW_MAX], stride[VIEW_MAX];
  int rank;
  int count[OC_MAX_RANK];
} view_t;

/* |v| seen in its own buffer. */
static void view_identity(const oc_graph_t *g, int v, view_t *w) {
  const oc_tensor_t *t = &g->values[v].type;
  int64_t st[OC_MAX_RANK], s = 1;
  for (int d = t->rank - 1; d >= 0; d--) {
    st[d] = s;
    s *= t->dims[d];
  }
  w->base = v;
  w->off = 0;
  w->n = 0;
  w->rank = t->rank;
  for (int d = 0; d < t->rank; d++) {
    w->count[d] = t->dims[d] != 1;
    if (t->dims[d] != 1) {
      w->size[w->n] = t->dims[d];
      w->stride[w->n++] = st[d];
    }
  }
}

/* The first physical dim of logical dim |d|. */
static int view_start(const view_t *w, int d) {
  int p = 0;
  for (int k = 0; k < d; k++) p += w->count[k];
  return p;
}

/* The view of Transpose(w, perm). */
static int view_transpose(view_t *w, const int64_t *perm, int rank) {
  view_t t = *w;
  if (rank != w->rank) return 0;
  t.n = 0;
  for (int d = 0; d < rank; d++) {
    if (perm[d] < 0 || perm[d] >= rank) return 0;
    int p = view_start(w, (int)perm[d]);
    t.count[d] = w->count[perm[d]];
    for (int k = 0; k < t.count[d]; k++) {
      t.size[t.n] = w->size[p + k];
      t.stride[t.n++] = w->stride[p + k];
    }
  }
  *w = t;
  return 1;
}

/* The view of w reshaped to dims (same element count): each new dim takes
 * the next physical dims, splitting one when the sizes divide. */
static int view_reshape(view_t *w, const int64_t *dims, int rank) {
  view_t t = *w;
  int p = 0; /* next physical dim of w */
  int64_t psize = w->n ? w->size[0] : 1;
  t.n = 0;
  t.rank = rank;
  for (int d = 0; d < rank; d++) {
    int64_t N = dims[d], prod = 1;
    if (N < 1) return 0;
    t.count[d] = 0;
    while (prod < N) {
      if (p >= w->n || t.n >= VIEW_MAX) return 0;
      int64_t stride = w->stride[p];
      if (N % prod) return 0;
      int64_t want = N / prod;
      if (psize <= want) { /* all of it */
        if (want % psize) return 0;
        t.size[t.n] = psize;
        t.stride[t.n++] = stride;
        prod *= psize;
        if (++p < w->n) psize = w->size[p];
      } else { /* its outer part */
        if (psize % want) return 0;
        t.size[t.n] = want;
        t.stride[t.n++] = stride * (psize / want);
        prod = N;
        psize /= want; /* the inner part stays, same stride */
      }
      t.count[d]++;
    }
  }
  if (p != w->n) return 0;
  *w = t;
  return 1;
}

/* The view of Slice(w) with ints (start, step, dim) per dim, steps >= 1. */
static int view_slice(view_t *w, const int64_t *ints, int n_ints) {
  if (n_ints != 3 * w->rank) return 0;
  view_t t = *w;
  t.n = 0;
  for (int d = 0, p = 0; d < w->rank; p += w->count[d], d++) {
    int64_t start = ints[3 * d], step = ints[3 * d + 1], dim = ints[3 * d + 2];
    int64_t full = 1;
    for (int k = 0; k < w->count[d]; k++) full *= w->size[p + k];
    t.count[d] = w->count[d];
    if (start == 0 && step == 1 && dim == full) { /* untouched */
      for (int k = 0; k < w->count[d]; k++) {
        t.size[t.n] = w->size[p + k];
        t.stride[t.n++] = w->stride[p + k];
      }
      continue;
    }
    if (w->count[d] != 1 || step < 1 || dim < 1) return 0;
    t.off += start * w->stride[p];
    t.count[d] = dim != 1;
    if (dim != 1) {
      t.size[t.n] = dim;
      t.stride[t.n++] = w->stride[p] * step;
    }
  }
  *w = t;
  return 1;
}

/* The view of |v| through the Transpose / reshape / Slice instructions that
 * made it, back to the first value they did not make. */
static void view_of(const fuse_t *f, int v, view_t *w, int depth) {
  const oc_graph_t *g = f->g;
  int ops[3] = {OC_OP_TRANSPOSE, OC_OP_COPY, OC_OP_SLICE};
  for (int k = 0; k < 3 && depth < 16; k++) {
    int i = producer_of(f, v, ops[k]);
    if (i < 0 || g->instrs[i].n_in != 1) continue;
    const oc_instr_t *ins = &g->instrs[i];
    const oc_tensor_t *t = &g->values[v].type;
    view_of(f, ins->in[0], w, depth + 1);
    view_t keep = *w;
    int ok = ops[k] == OC_OP_TRANSPOSE ? view_transpose(w, ins->ints, ins->n_ints)
             : ops[k] == OC_OP_COPY    ? view_reshape(w, t->dims, t->rank)
                                       : view_slice(w, ins->ints, ins->n_ints);
    if (ok) return;
    *w = keep;
    break;
  }
  view_identity(g, v, w);
}

/* The float32 scalar constant operand of a Div / Mul producing |v| (read by
 * one instruction): *x gets the other operand and *scale is multiplied by
 * the factor. 0 when |v| is not made so. */
static int scaled_by_constant(const fuse_t *f, int v, int *x, double *scale) {
  const oc_graph_t *g = f->g;
  if (f->uses[v] != 1) return 0;
  int i = producer_of(f, v, OC_OP_DIV), k0 = 1;
  if (i < 0) {
    i = producer_of(f, v, OC_OP_MUL);
    k0 = 0;
  }
  if (i < 0 || g->instrs[i].n_in != 2) return 0;
  for (int k = k0; k < 2; k++) {
    int c = g->instrs[i].in[k], o = g->instrs[i].in[1 - k];
    if (!is_const_f32(g, c) || oc_tensor_numel(&g->values[c].type) != 1 || o == c ||
        !same_dims(&g->values[o].type, &g->values[v].type))
      continue;
    float s = ((const float *)g->values[c].type.data)[0];
    if (!(s - s == 0.0f) || s == 0.0f) return 0;
    *scale = g->instrs[i].op == OC_OP_DIV ? *scale / s : *scale * s;
    *x = o;
    return 1;
  }
  return 0;
}

/* The physical dims of logical dim |d| of |w|: *n of them at *size, *stride. */
static void view_group(const view_t *w, int d, int *n, const int64_t **size,
                       const int64_t **stride) {
  int p = view_start(w, d);
  *n = w->count[d];
  *size = w->size + p;
  *stride = w->stride + p;
}

/* A matrix dim of a view: its stride (|dflt| for a dim of size 1); 0 when
 * the dim is split. */
static int64_t view_dim_stride(const view_t *w, int d, int64_t dflt) {
  return w->count[d] == 0 ? dflt : w->count[d] == 1 ? w->stride[view_start(w, d)] : 0;
}

/* The batch dims of four views (q, k, v, o: logical dims 0..nb-1 of equal
 * sizes) split into common physical dims: ints (n, q, k, v, o strides) per
 * dim, outer first, appended to out; the count, or -1. */
static int common_batch(const view_t *w, int nb, int64_t *out) {
  int64_t tmp[AT_BATCH_MAX][5];
  int m = 0;
  for (int d = nb - 1; d >= 0; d--) {
    int n[4], idx[4];
    const int64_t *sz[4], *st[4];
    int64_t rem[4], cur[4];
    for (int k = 0; k < 4; k++) {
      view_group(&w[k], d, &n[k], &sz[k], &st[k]);
      idx[k] = n[k] - 1;
      rem[k] = idx[k] >= 0 ? sz[k][idx[k]] : 1;
      cur[k] = idx[k] >= 0 ? st[k][idx[k]] : 0;
    }
    for (;;) {
      int live = 0;
      for (int k = 0; k < 4; k++) live += idx[k] >= 0;
      if (live == 0) break;
      if (live != 4 || m >= AT_BATCH_MAX) return -1;
      int64_t s = rem[0];
      for (int k = 1; k < 4; k++) s = rem[k] < s ? rem[k] : s;
      tmp[m][0] = s;
      for (int k = 0; k < 4; k++) {
        if (rem[k] % s) return -1;
        tmp[m][1 + k] = cur[k];
        rem[k] /= s;
        cur[k] *= s;
        if (rem[k] == 1 && --idx[k] >= 0) {
          rem[k] = sz[k][idx[k]];
          cur[k] = st[k][idx[k]];
        }
      }
      m++;
    }
  }
  for (int i = 0; i < m; i++) memcpy(out + 5 * i, tmp[m - 1 - i], sizeof tmp[0]);
  return m;
}

/* Fuses MatMul(q, k^T) [* or / constant] -> Softmax (last axis) -> MatMul(., v)
 * [-> Transpose] around Softmax |i| into one Attention instruction. */
static oc_status_t fuse_attention_at(fuse_t *f, int i) {
  oc_graph_t *g = f->g;
  const oc_instr_t *ins = g->instrs;
  if (ins[i].op != OC_OP_SOFTMAX || ins[i].n_in != 1 || ins[i].n_out != 1 || ins[i].n_ints != 2)
    return OC_OK;
  const oc_tensor_t *pt = &g->values[ins[i].out[0]].type;
  if (pt->dtype != OC_DTYPE_FLOAT32 || pt->rank < 2 ||
      !(ins[i].ints[0] == -1 || ins[i].ints[0] == pt->rank - 1) ||
      (ins[i].ints[1] != 0 && ins[i].ints[1] != 1))
    return OC_OK;
  double scale = 1.0;
  int s = ins[i].in[0];
  scaled_by_constant(f, s, &s, &scale);
  int mm1 = producer_of(f, s, OC_OP_MATMUL);
  int mm2 = sole_reader(f, ins[i].out[0], OC_OP_MATMUL);
  if (mm1 < 0 || f->uses[s] != 1 || mm2 < 0 || ins[mm2].in[0] != ins[i].out[0] ||
      ins[mm2].in[1] == ins[i].out[0])
    return OC_OK;
  int qv = ins[mm1].in[0], kv = ins[mm1].in[1], vv = ins[mm2].in[1];
  scaled_by_constant(f, qv, &qv, &scale);
  scaled_by_constant(f, kv, &kv, &scale);
  /* q (batch, tq, dk), kt (batch, dk, tk), v (batch, tk, dv): one batch */
  const oc_tensor_t *qt = &g->values[qv].type, *kt = &g->values[kv].type, *vt = &g->values[vv].type;
  int r = qt->rank, nb = r - 2;
  if (r < 2 || kt->rank != r || vt->rank != r || qt->dtype != OC_DTYPE_FLOAT32 ||
      kt->dtype != OC_DTYPE_FLOAT32 || vt->dtype != OC_DTYPE_FLOAT32)
    return OC_OK;
  for (int d = 0; d < nb; d++)
    if (kt->dims[d] != qt->dims[d] || vt->dims[d] != qt->dims[d]) return OC_OK;
  int64_t tq = qt->dims[r - 2], dk = qt->dims[r - 1], tk = kt->dims[r - 1], dv = vt->dims[r - 1];
  if (kt->dims[r - 2] != dk || vt->dims[r - 2] != tk || tq < 1 || dk < 1 || tk < 1 || dv < 1)
    return OC_OK;
  /* o, possibly through the Transpose that reads it */
  int ov = ins[mm2].out[0], last = mm2, tr = sole_reader(f, ov, OC_OP_TRANSPOSE);
  view_t w[4];
  view_identity(g, ov, &w[3]);
  if (tr >= 0 && ins[tr].n_ints == r) {
    /* o's dim perm[j] is the output's dim j */
    view_t out;
    view_identity(g, ins[tr].out[0], &out);
    int ok = 1;
    for (int j = 0; j < r && ok; j++) {
      int64_t d = ins[tr].ints[j];
      ok = d >= 0 && d < r;
      if (ok) w[3].count[d] = out.count[j];
    }
    if (ok) { /* o's physical dims in o's order, each with its stride in the output */
      w[3].n = 0;
      for (int d = 0; d < r; d++)
        for (int j = 0; j < r; j++)
          if (ins[tr].ints[j] == d && out.count[j]) {
            w[3].size[w[3].n] = out.size[view_start(&out, j)];
            w[3].stride[w[3].n++] = out.stride[view_start(&out, j)];
          }
      last = tr;
    } else {
      view_identity(g, ov, &w[3]);
    }
  }
  view_of(f, qv, &w[0], 0);
  view_of(f, kv, &w[1], 0);
  view_of(f, vv, &w[2], 0);
  /* ints: nb, batch dims, tq tk dk dv, offsets and row strides, o dims */
  int64_t ints[1 + 5 * AT_BATCH_MAX + 12 + OC_MAX_RANK];
  /* k is read as (tk, dk): its view is of k^T */
  int64_t q_row = view_dim_stride(&w[0], r - 2, dk), q_col = view_dim_stride(&w[0], r - 1, 1);
  int64_t k_col = view_dim_stride(&w[1], r - 2, 1), k_row = view_dim_stride(&w[1], r - 1, dk);
  int64_t v_row = view_dim_stride(&w[2], r - 2, dv), v_col = view_dim_stride(&w[2], r - 1, 1);
  int64_t o_row = view_dim_stride(&w[3], r - 2, dv), o_col = view_dim_stride(&w[3], r - 1, 1);
  if (q_col != 1 || k_col != 1 || v_col != 1 || o_col != 1 || q_row < dk || k_row < dk ||
      v_row < dv || o_row < dv)
    return OC_OK;
  int m = common_batch(w, nb, ints + 1);
  if (m < 0) return OC_OK;
  ints[0] = m;
  int64_t *p = ints + 1 + 5 * m;
  const int64_t tail[11] = {tq, tk, dk, dv, w[0].off, q_row, w[1].off, k_row, w[2].off, v_row, o_row};
  memcpy(p, tail, sizeof tail);
  const oc_tensor_t *ot = &g->values[ins[last].out[0]].type; /* set_instr checks it */
  p[11] = ot->rank;
  for (int d = 0; d < ot->rank; d++) p[12 + d] = ot->dims[d];
  int n_ints = (int)(p + 12 + ot->rank - ints);
  float fs = (float)scale;
  int in[3] = {w[0].base, w[1].base, w[2].base}, done;
  /* the scaling instructions and the intermediate views go with prune() */
  OC_RETURN_IF_ERROR(set_instr(g, last, OC_OP_ATTENTION, in, 3, ints, n_ints, &fs, 1, &done));
  int chain[] = {mm1, i, mm2};
  if (done) kill_chain(f, chain, 3, last);
  return OC_OK;
}

/* --- packed Conv weights ------------------------------------------------------ */

/* Packs the constant weights of Conv |i| when its shape rule accepts them
 * packed. */
static oc_status_t pack_conv_at(fuse_t *f, int i) {
  oc_graph_t *g = f->g;
  const oc_instr_t *c = &g->instrs[i];
  if (c->op != OC_OP_CONV || c->n_out != 1 || c->n_in < 2 || c->n_in > 3 || c->in[0] < 0)
    return OC_OK;
  int n = g->values[c->in[0]].type.rank - 2;
  if (n < 1 || n > 3 || (c->n_ints != 1 + 4 * n && c->n_ints != 2 + 4 * n) || c->ints[0] != 1 ||
      !is_const_f32(g, c->in[1]))
    return OC_OK;
  int64_t ints[3 + 4 * 3];
  memcpy(ints, c->ints, sizeof(int64_t) * (size_t)c->n_ints);
  if (c->n_ints == 1 + 4 * n) ints[1 + 4 * n] = 0; /* no activation */
  ints[2 + 4 * n] = 1;                           /* packed */
  int in[3], n_in = c->n_in, done;
  memcpy(in, c->in, sizeof(int) * (size_t)n_in);
  /* the shape rule decides (the packed constant has the weights' type) */
  OC_RETURN_IF_ERROR(set_instr(g, i, OC_OP_CONV, in, n_in, ints, 3 + 4 * n, c->floats,
                               c->n_floats, &done));
  if (!done) return OC_OK;
  const oc_tensor_t *w = &g->values[in[1]].type;
  int64_t M = w->dims[0], K = M ? oc_tensor_numel(w) / M : 0, dims[OC_MAX_RANK];
  int rank = w->rank;
  memcpy(dims, w->dims, sizeof dims);
  float *packed = malloc(sizeof(float) * (size_t)(M * K + 1));
  if (!packed) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  oc_conv_pack_weights(packed, w->data, M, K);
  char name[512];
  snprintf(name, sizeof name, "%s/packed_W", g->instrs[i].node);
  int v = oc_graph_new_value(g, name);
  oc_status_t s = v < 0 ? oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory")
                        : oc_value_set_const(g, v, OC_DTYPE_FLOAT32, rank, dims, packed);
  free(packed);
  if (s) return s;
  g->instrs[i].in[1] = v;
  return OC_OK;
}

/* --- driver ------------------------------------------------------------------ */

typedef oc_status_t (*fuse_at_fn)(fuse_t *f, int i);

static oc_status_t fuse_each(fuse_t *f, fuse_at_fn fn) {
  oc_status_t s = OC_OK;
  for (int i = 0; i < f->g->n_instrs && !s; i++)
    if (!f->dead[i]) s = fn(f, i);
  return s;
}

oc_status_t oc_fuse_program(oc_graph_t *g, const int *outputs, int n_outputs) {
  enum { FUSE_CONV, FUSE_LAYERNORM, FUSE_GELU, FUSE_ATTENTION, FUSE_PACK, FUSE_KINDS };
  oc_status_t s = OC_OK;
  /* One kind at a time over a fresh read graph: a fusion changes the
   * readers of the values around it. */
  for (int kind = 0; kind < FUSE_KINDS && !s; kind++) {
    fuse_t f;
    if (!fuse_index(&f, g, outputs, n_outputs)) return OC_OK; /* an optimization */
    s = kind == FUSE_CONV        ? fuse_conv(&f)
        : kind == FUSE_LAYERNORM ? fuse_each(&f, fuse_layernorm_at)
        : kind == FUSE_GELU      ? fuse_each(&f, fuse_gelu_at)
        : kind == FUSE_ATTENTION ? fuse_each(&f, fuse_attention_at)
                                 : fuse_each(&f, pack_conv_at);
    if (!s) fuse_compact(&f);
    fuse_index_free(&f);
  }
  return s;
}
