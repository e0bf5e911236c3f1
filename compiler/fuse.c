/*
 * Fusions on a lowered program (see fuse.h). Each rewrite removes one
 * instruction and the tensor between the two, and changes results by
 * rounding at most:
 *
 *   Conv -> BatchNormalization (inference mode, every input but X a
 *   compile-time constant), with constant Conv weights (and bias): the
 *   normalization is folded into new weights and bias,
 *       a = scale / sqrt(var + eps),  W' = W * a (per output channel),
 *       b' = (b - mean) * a + B;
 *   Conv -> Relu, Conv -> Clip (float32 bounds): the Conv's fused activation
 *   (runtime/ops/conv.c: ints [..., activation], floats [lo, hi] for Clip).
 *
 * Only when the Conv's output is read by that one instruction and is not an
 * entry point output.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuse.h"

/* How many instructions read each value, plus one for an entry output. */
static int *use_counts(const oc_graph_t *g, const int *outputs, int n_outputs) {
  int *uses = calloc((size_t)g->n_values + 1, sizeof(int));
  if (!uses) return NULL;
  for (int i = 0; i < g->n_instrs; i++)
    for (int k = 0; k < g->instrs[i].n_in; k++)
      if (g->instrs[i].in[k] >= 0) uses[g->instrs[i].in[k]]++;
  for (int i = 0; i < n_outputs; i++) uses[outputs[i]]++;
  return uses;
}

static int is_const_f32(const oc_graph_t *g, int v) {
  return v >= 0 && g->values[v].kind == OC_VALUE_CONST && g->values[v].foldable &&
         g->values[v].type.dtype == OC_DTYPE_FLOAT32 && g->values[v].type.data;
}

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

oc_status_t oc_fuse_program(oc_graph_t *g, const int *outputs, int n_outputs) {
  int *uses = use_counts(g, outputs, n_outputs);
  char *dead = calloc((size_t)g->n_instrs + 1, 1);
  oc_status_t s = OC_OK;
  if (!uses || !dead) {
    free(uses);
    free(dead);
    return OC_OK; /* an optimization */
  }
  /* the reader of each value, when it has exactly one */
  int *reader = malloc(sizeof(int) * (size_t)(g->n_values + 1));
  if (!reader) {
    free(uses);
    free(dead);
    return OC_OK;
  }
  for (int v = 0; v < g->n_values; v++) reader[v] = -1;
  for (int i = 0; i < g->n_instrs; i++)
    for (int k = 0; k < g->instrs[i].n_in; k++)
      if (g->instrs[i].in[k] >= 0) reader[g->instrs[i].in[k]] = i;
  for (int i = 0; i < g->n_instrs && !s; i++) {
    oc_instr_t *c = &g->instrs[i];
    if (dead[i] || !plain_conv(c)) continue;
    for (int round = 0; round < 2 && !s; round++) {
      int v = c->out[0];
      if (uses[v] != 1 || reader[v] < 0 || dead[reader[v]]) break;
      int j = reader[v];
      const oc_instr_t *b = &g->instrs[j];
      if (b->in[0] != v || b->n_out != 1) break;
      int fold = round == 0 && plain_conv(c) && b->op == OC_OP_BATCHNORM && b->n_in == 5 &&
                 b->n_ints == 1 && b->ints[0] == 0 && b->n_floats == 1 &&
                 g->values[v].type.rank >= 3 && is_const_f32(g, c->in[1]) &&
                 (c->n_in < 3 || c->in[2] < 0 || is_const_f32(g, c->in[2]));
      for (int k = 1; k < 5 && fold; k++) fold = is_const_f32(g, b->in[k]);
      int act = plain_conv(c) &&
                (b->op == OC_OP_RELU ||
                 (b->op == OC_OP_CLIP && b->n_floats == 2 && b->n_ints == 0 &&
                  g->values[v].type.dtype == OC_DTYPE_FLOAT32 && b->floats[0] <= b->floats[1]));
      if (fold)
        s = fold_batchnorm(g, c, b);
      else if (act)
        s = fuse_activation(c, b);
      else
        continue;
      if (s) break;
      c = &g->instrs[i]; /* new values do not move instructions, but stay safe */
      b = &g->instrs[j];
      /* the Conv now writes the second instruction's output */
      c->out[0] = b->out[0];
      g->values[b->out[0]].producer = i;
      g->values[v].producer = -1;
      dead[j] = 1;
    }
  }
  if (!s) {
    int kept = 0;
    for (int i = 0; i < g->n_instrs; i++) {
      oc_instr_t *ins = &g->instrs[i];
      if (!dead[i]) {
        g->instrs[kept++] = *ins;
        continue;
      }
      free(ins->in);
      free(ins->out);
      free(ins->ints);
      free(ins->floats);
      free(ins->node);
    }
    g->n_instrs = kept;
    for (int i = 0; i < g->n_instrs; i++)
      for (int k = 0; k < g->instrs[i].n_out; k++)
        if (g->instrs[i].out[k] >= 0) g->values[g->instrs[i].out[k]].producer = i;
  }
  free(reader);
  free(uses);
  free(dead);
  return s;
}
