/*
 * Einsum (opset 12) -> existing runtime ops, so every piece is a tested
 * kernel (and has, or will have, a gradient rule):
 *   EinsumDiagonal (runtime/ops/einsum.c)  an index repeated in one operand
 *   Copy (reshape)                         dropping broadcast size-1 axes,
 *                                          grouping axes for a matrix product
 *   ReduceSum [0, axes...]                 an index that no other operand and
 *                                          not the output uses
 *   Transpose [perm]                       ordering axes
 *   MatMul (float32) or Mul + ReduceSum    contracting two operands
 *   (int64, int32)
 *
 * The equation: terms of letters (a-z, A-Z) and at most one "..." each,
 * separated by ',', one per input, optionally followed by "->" and the output
 * term; spaces are ignored. Without "->" the output is the ellipsis dims, then
 * the letters that appear exactly once, in ASCII order (as numpy). An explicit
 * output must contain "..." when the ellipsis stands for any dims.
 * Ellipsis dims broadcast numpy-style: an operand's ellipsis dims are aligned
 * to the right of the longest one; a dim of size 1 broadcasts against any
 * size, for letters as well (as numpy).
 *
 * The plan, per operand: take diagonals of repeated letters, drop axes of size
 * 1 whose letter is larger elsewhere (broadcast: the operand is constant along
 * them), and sum away letters used nowhere else. Then operands are contracted
 * left to right, two at a time: with batch letters b (in both, still needed),
 * contracted letters k (in both, not needed any more), and letters m of the
 * left and n of the right operand alone,
 *   float32:  A -> (b, m, k) -> (B, M, K);  B -> (b, k, n) -> (B, K, N);
 *             MatMul -> (B, M, N) -> (b, m, n)
 *   integers: A -> (B, M, 1, K);  B -> (B, 1, N, K);  Mul -> (B, M, N, K);
 *             ReduceSum over K -> (B, M, N) -> (b, m, n)
 * and a last Transpose orders the result as the output term. Any number of
 * operands works this way; float64 and the other dtypes are refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff.h"
#include "lower.h"

#define ES_MAX_OPERANDS OC_MAX_OP_INPUTS
#define ES_LETTERS 52                        /* codes 0..51: 'A'..'Z', 'a'..'z' (ASCII order) */
#define ES_LABELS (ES_LETTERS + OC_MAX_RANK) /* then the ellipsis dims */
#define ES_MAX_EQUATION 4096
#define ES_MAX_STEPS (12 * ES_MAX_OPERANDS + 4)

/* One planned runtime instruction. An input ref >= 0 is a graph value; a
 * negative ref -(k+1) is the output of step k. */
typedef struct es_step_s {
  int op;
  int n_in;
  int in[2];
  int n_ints;
  int64_t ints[2 + OC_MAX_RANK];
} es_step_t;

/* An operand while planning: its value ref, and one label and dim per axis. */
typedef struct es_opnd_s {
  int ref;
  int n;
  int label[OC_MAX_RANK];
  int64_t dim[OC_MAX_RANK];
} es_opnd_t;

typedef struct es_plan_s {
  oc_lower_t *lw;
  const char *eq;
  int dtype;
  es_step_t *steps;
  int n_steps;
  int64_t size[ES_LABELS]; /* the size of each label over all operands, -1 unused */
} es_plan_t;

static int es_code(char ch) {
  if (ch >= 'A' && ch <= 'Z') return ch - 'A';
  if (ch >= 'a' && ch <= 'z') return 26 + (ch - 'a');
  return -1;
}

/* A label for messages: its letter, or "...". */
static const char *es_name(int label, char buf[4]) {
  if (label >= ES_LETTERS) return "...";
  buf[0] = (char)(label < 26 ? 'A' + label : 'a' + (label - 26));
  buf[1] = 0;
  return buf;
}

static oc_status_t es_eq_error(const es_plan_t *p, const char *what) {
  return oc_lower_error(p->lw, OC_STATUS_INVALID_ARGUMENT, "equation '%s': %s", p->eq, what);
}

/* --- parsing ---------------------------------------------------------------- */

/* One term: letters into codes, the position of "..." (or -1). */
typedef struct es_term_s {
  int n_letters;
  int letter[OC_MAX_RANK];
  int ellipsis; /* index among the letters where "..." stands, or -1 */
} es_term_t;

static oc_status_t es_parse_term(const es_plan_t *p, const char *s, size_t len, es_term_t *t) {
  t->n_letters = 0;
  t->ellipsis = -1;
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '.') {
      if (i + 2 >= len || s[i + 1] != '.' || s[i + 2] != '.')
        return es_eq_error(p, "'.' outside \"...\"");
      if (t->ellipsis >= 0) return es_eq_error(p, "a term has two \"...\"");
      t->ellipsis = t->n_letters;
      i += 2;
      continue;
    }
    int c = es_code(s[i]);
    if (c < 0) {
      char msg[64];
      snprintf(msg, sizeof msg, "unexpected character '%c'", s[i]);
      return es_eq_error(p, msg);
    }
    if (t->n_letters == OC_MAX_RANK)
      return oc_lower_error(p->lw, OC_STATUS_RESOURCE_LIMIT,
                            "equation '%s': a term has more than %d indices", p->eq, OC_MAX_RANK);
    t->letter[t->n_letters++] = c;
  }
  return OC_OK;
}

/* Expands a term to one label per axis: |n_ell| ellipsis dims, aligned to the
 * right of the |max_ell| ellipsis labels. */
static int es_expand(const es_term_t *t, int n_ell, int max_ell, int *labels) {
  int n = 0;
  for (int i = 0; i <= t->n_letters; i++) {
    if (i == t->ellipsis)
      for (int e = 0; e < n_ell; e++) labels[n++] = ES_LETTERS + (max_ell - n_ell) + e;
    if (i < t->n_letters) labels[n++] = t->letter[i];
  }
  return n;
}

/* --- planning ----------------------------------------------------------------- */

static oc_status_t es_push(es_plan_t *p, int op, int n_in, int in0, int in1, const int64_t *ints,
                           int n_ints, int *out_ref) {
  if (p->n_steps >= ES_MAX_STEPS || n_ints > 2 + OC_MAX_RANK)
    return oc_lower_error(p->lw, OC_STATUS_RESOURCE_LIMIT, "equation '%s' is too large", p->eq);
  es_step_t *s = &p->steps[p->n_steps];
  s->op = op;
  s->n_in = n_in;
  s->in[0] = in0;
  s->in[1] = in1;
  s->n_ints = n_ints;
  if (n_ints > 0) memcpy(s->ints, ints, sizeof(int64_t) * (size_t)n_ints);
  p->n_steps++;
  *out_ref = -p->n_steps;
  return OC_OK;
}

/* Reshapes ref (dims now) to |rank| dims; no step when they are the same. */
static oc_status_t es_reshape(es_plan_t *p, int *ref, int n_now, const int64_t *now, int rank,
                              const int64_t *dims) {
  if (rank > OC_MAX_RANK)
    return oc_lower_error(p->lw, OC_STATUS_RESOURCE_LIMIT,
                          "equation '%s' needs an intermediate of rank %d; the limit is %d", p->eq,
                          rank, OC_MAX_RANK);
  if (n_now == rank && memcmp(now, dims, sizeof(int64_t) * (size_t)rank) == 0) return OC_OK;
  return es_push(p, OC_OP_COPY, 1, *ref, 0, dims, rank, ref);
}

/* Takes the diagonal over every repeated label: one label per axis after. */
static oc_status_t es_diagonal(es_plan_t *p, es_opnd_t *o) {
  int64_t ints[1 + OC_MAX_RANK];
  es_opnd_t r = {.ref = o->ref, .n = 0};
  for (int k = 0; k < o->n; k++) {
    int j = 0;
    while (j < r.n && r.label[j] != o->label[k]) j++;
    if (j == r.n) {
      r.label[r.n] = o->label[k];
      r.dim[r.n] = o->dim[k];
      r.n++;
    } else if (r.dim[j] != o->dim[k]) {
      char b[4], msg[160];
      snprintf(msg, sizeof msg, "index '%s' repeats in one term with dims %lld and %lld",
               es_name(o->label[k], b), (long long)r.dim[j], (long long)o->dim[k]);
      return es_eq_error(p, msg);
    }
    ints[1 + k] = j;
  }
  if (r.n == o->n) return OC_OK;
  ints[0] = r.n;
  OC_RETURN_IF_ERROR(es_push(p, OC_OP_EINSUM_DIAGONAL, 1, o->ref, 0, ints, 1 + o->n, &r.ref));
  *o = r;
  return OC_OK;
}

/* Drops axes of size 1 whose label is larger elsewhere (broadcast). */
static oc_status_t es_squeeze(es_plan_t *p, es_opnd_t *o) {
  es_opnd_t r = {.ref = o->ref, .n = 0};
  for (int k = 0; k < o->n; k++) {
    if (o->dim[k] == 1 && p->size[o->label[k]] != 1) continue;
    r.label[r.n] = o->label[k];
    r.dim[r.n] = o->dim[k];
    r.n++;
  }
  if (r.n == o->n) return OC_OK;
  OC_RETURN_IF_ERROR(es_reshape(p, &r.ref, o->n, o->dim, r.n, r.dim));
  *o = r;
  return OC_OK;
}

/* Sums away the axes whose label is not in |needed|. */
static oc_status_t es_reduce(es_plan_t *p, es_opnd_t *o, const char *needed) {
  int64_t ints[1 + OC_MAX_RANK] = {0}; /* keepdims 0 */
  int n_axes = 0;
  es_opnd_t r = {.ref = o->ref, .n = 0};
  for (int k = 0; k < o->n; k++) {
    if (!needed[o->label[k]]) {
      ints[1 + n_axes++] = k;
      continue;
    }
    r.label[r.n] = o->label[k];
    r.dim[r.n] = o->dim[k];
    r.n++;
  }
  if (n_axes == 0) return OC_OK;
  OC_RETURN_IF_ERROR(es_push(p, OC_OP_REDUCE_SUM, 1, o->ref, 0, ints, 1 + n_axes, &r.ref));
  *o = r;
  return OC_OK;
}

/* Orders the axes of o as |labels| (a permutation of o's labels). */
static oc_status_t es_transpose(es_plan_t *p, es_opnd_t *o, const int *labels) {
  int64_t perm[OC_MAX_RANK];
  int identity = 1;
  es_opnd_t r = {.ref = o->ref, .n = o->n};
  for (int i = 0; i < o->n; i++) {
    int k = 0;
    while (o->label[k] != labels[i]) k++;
    perm[i] = k;
    identity &= k == i;
    r.label[i] = o->label[k];
    r.dim[i] = o->dim[k];
  }
  if (identity) return OC_OK;
  OC_RETURN_IF_ERROR(es_push(p, OC_OP_TRANSPOSE, 1, o->ref, 0, perm, o->n, &r.ref));
  *o = r;
  return OC_OK;
}

static int es_has(const es_opnd_t *o, int label) {
  for (int k = 0; k < o->n; k++)
    if (o->label[k] == label) return 1;
  return 0;
}

/* Product of the dims of o's axes [from, to). */
static int64_t es_prod(const es_opnd_t *o, int from, int to) {
  int64_t n = 1;
  for (int k = from; k < to; k++) n *= o->dim[k];
  return n;
}

/* Contracts a and b into a; |needed| marks the labels used after. */
static oc_status_t es_contract(es_plan_t *p, es_opnd_t *a, es_opnd_t *b, const char *needed) {
  /* A label of one side only that nothing needs is summed first. */
  char need_a[ES_LABELS], need_b[ES_LABELS];
  for (int l = 0; l < ES_LABELS; l++) need_a[l] = need_b[l] = needed[l];
  for (int k = 0; k < b->n; k++) need_a[b->label[k]] = 1;
  for (int k = 0; k < a->n; k++) need_b[a->label[k]] = 1;
  OC_RETURN_IF_ERROR(es_reduce(p, a, need_a));
  OC_RETURN_IF_ERROR(es_reduce(p, b, need_b));

  int batch[OC_MAX_RANK], contr[OC_MAX_RANK], akeep[OC_MAX_RANK], bkeep[OC_MAX_RANK];
  int nb = 0, nk = 0, nm = 0, nn = 0;
  for (int k = 0; k < a->n; k++) {
    int l = a->label[k];
    if (!es_has(b, l))
      akeep[nm++] = l;
    else if (needed[l])
      batch[nb++] = l;
    else
      contr[nk++] = l;
  }
  for (int k = 0; k < b->n; k++)
    if (!es_has(a, b->label[k])) bkeep[nn++] = b->label[k];
  int integer = p->dtype != OC_DTYPE_FLOAT32;

  /* a -> (b, m, k); b -> (b, k, n) for MatMul, (b, n, k) for Mul. */
  int la[OC_MAX_RANK], lb[OC_MAX_RANK], n = 0;
  for (int i = 0; i < nb; i++) la[n++] = batch[i];
  for (int i = 0; i < nm; i++) la[n++] = akeep[i];
  for (int i = 0; i < nk; i++) la[n++] = contr[i];
  n = 0;
  for (int i = 0; i < nb; i++) lb[n++] = batch[i];
  if (!integer)
    for (int i = 0; i < nk; i++) lb[n++] = contr[i];
  for (int i = 0; i < nn; i++) lb[n++] = bkeep[i];
  if (integer)
    for (int i = 0; i < nk; i++) lb[n++] = contr[i];
  OC_RETURN_IF_ERROR(es_transpose(p, a, la));
  OC_RETURN_IF_ERROR(es_transpose(p, b, lb));

  /* The result's labels and dims, before grouping (checked against the rank
   * limit when reshaped back). */
  es_opnd_t r = {.n = nb + nm + nn};
  if (r.n > OC_MAX_RANK)
    return oc_lower_error(p->lw, OC_STATUS_RESOURCE_LIMIT,
                          "equation '%s' needs an intermediate of rank %d; the limit is %d", p->eq,
                          r.n, OC_MAX_RANK);
  for (int i = 0; i < nb + nm; i++) {
    r.label[i] = a->label[i];
    r.dim[i] = a->dim[i];
  }
  for (int i = 0; i < nn; i++) {
    int k = integer ? nb + i : (nb + nk + i);
    r.label[nb + nm + i] = b->label[k];
    r.dim[nb + nm + i] = b->dim[k];
  }
  int64_t B = es_prod(a, 0, nb), M = es_prod(a, nb, nb + nm), K = es_prod(a, nb + nm, a->n);
  int64_t N = es_prod(&r, nb + nm, r.n);
  int ra = a->ref, rb = b->ref, out;
  if (!integer) {
    int64_t da[3] = {B, M, K}, db[3] = {B, K, N};
    OC_RETURN_IF_ERROR(es_reshape(p, &ra, a->n, a->dim, 3, da));
    OC_RETURN_IF_ERROR(es_reshape(p, &rb, b->n, b->dim, 3, db));
    OC_RETURN_IF_ERROR(es_push(p, OC_OP_MATMUL, 2, ra, rb, NULL, 0, &out));
  } else {
    int64_t da[4] = {B, M, 1, K}, db[4] = {B, 1, N, K}, sum_k[2] = {0, 3};
    OC_RETURN_IF_ERROR(es_reshape(p, &ra, a->n, a->dim, 4, da));
    OC_RETURN_IF_ERROR(es_reshape(p, &rb, b->n, b->dim, 4, db));
    OC_RETURN_IF_ERROR(es_push(p, OC_OP_MUL, 2, ra, rb, NULL, 0, &out));
    OC_RETURN_IF_ERROR(es_push(p, OC_OP_REDUCE_SUM, 1, out, 0, sum_k, 2, &out));
  }
  int64_t dm[3] = {B, M, N};
  OC_RETURN_IF_ERROR(es_reshape(p, &out, 3, dm, r.n, r.dim));
  r.ref = out;
  *a = r;
  return OC_OK;
}

/* --- emitting ------------------------------------------------------------------- */

/* Emits the planned steps; the last one writes the node's output. */
static oc_status_t es_emit(es_plan_t *p) {
  oc_lower_t *lw = p->lw;
  int *vals = malloc(sizeof(int) * (size_t)(p->n_steps + 1));
  if (!vals) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  oc_status_t s = OC_OK;
  for (int k = 0; k < p->n_steps && !s; k++) {
    const es_step_t *st = &p->steps[k];
    int in[2];
    for (int i = 0; i < st->n_in; i++) in[i] = st->in[i] >= 0 ? st->in[i] : vals[-st->in[i] - 1];
    vals[k] = k == p->n_steps - 1 ? oc_lower_out(lw, 0) : oc_lower_temp(lw, "einsum");
    if (vals[k] < 0) {
      s = oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
      break;
    }
    s = oc_lower_emit(lw, st->op, st->n_in, in, 1, &vals[k], st->ints, st->n_ints, NULL, 0);
  }
  free(vals);
  return s;
}

/* --- the lowering ------------------------------------------------------------------- */

typedef struct es_work_s {
  char eq[ES_MAX_EQUATION + 1];
  es_term_t terms[ES_MAX_OPERANDS + 1]; /* the inputs, then the output */
  es_opnd_t opnd[ES_MAX_OPERANDS];
  es_step_t steps[ES_MAX_STEPS];
} es_work_t;

static oc_status_t es_lower(oc_lower_t *lw, es_work_t *w) {
  const char *raw;
  OC_RETURN_IF_ERROR(oc_lower_attr_string(lw, "equation", NULL, &raw));
  if (!raw)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "attribute 'equation' is required");
  if (oc_lower_out(lw, 0) < 0)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "output 0 is missing");
  size_t len = 0;
  for (const char *c = raw; *c; c++) {
    if (*c == ' ') continue;
    if (len == ES_MAX_EQUATION)
      return oc_lower_error(lw, OC_STATUS_RESOURCE_LIMIT, "attribute 'equation' is longer than %d",
                            ES_MAX_EQUATION);
    w->eq[len++] = *c;
  }
  w->eq[len] = 0;
  es_plan_t p = {.lw = lw, .eq = w->eq, .steps = w->steps};
  for (int l = 0; l < ES_LABELS; l++) p.size[l] = -1;

  /* Inputs: all present, one dtype. */
  int n_ops = lw->node->n_in;
  if (n_ops < 1) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "Einsum needs an input");
  if (n_ops > ES_MAX_OPERANDS)
    return oc_lower_error(lw, OC_STATUS_RESOURCE_LIMIT, "%d inputs; at most %d", n_ops,
                          ES_MAX_OPERANDS);
  for (int i = 0; i < n_ops; i++) {
    const oc_tensor_t *t = oc_lower_input(lw, i);
    if (!t) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input %d is missing", i);
    if (t->dtype != OC_DTYPE_FLOAT32 && t->dtype != OC_DTYPE_INT64 && t->dtype != OC_DTYPE_INT32)
      return oc_lower_error(lw, OC_STATUS_UNSUPPORTED,
                            "input %d has dtype %s; Einsum computes float32, int64 and int32", i,
                            oc_dtype_name(t->dtype));
    if (i > 0 && t->dtype != p.dtype)
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "inputs have dtypes %s and %s",
                            oc_dtype_name(p.dtype), oc_dtype_name(t->dtype));
    p.dtype = t->dtype;
  }

  /* Split into terms. */
  char *arrow = strstr(w->eq, "->");
  size_t lhs_len = arrow ? (size_t)(arrow - w->eq) : len;
  if (arrow && (strchr(arrow + 2, '-') || strchr(arrow + 2, '>')))
    return es_eq_error(&p, "more than one \"->\"");
  for (size_t i = 0; i < lhs_len; i++)
    if (w->eq[i] == '-' || w->eq[i] == '>') return es_eq_error(&p, "a stray '-' or '>'");
  int n_terms = 0;
  size_t start = 0;
  for (size_t i = 0; i <= lhs_len; i++) {
    if (i < lhs_len && w->eq[i] != ',') continue;
    if (n_terms == n_ops) {
      char msg[96];
      snprintf(msg, sizeof msg, "more terms than the %d inputs", n_ops);
      return es_eq_error(&p, msg);
    }
    OC_RETURN_IF_ERROR(es_parse_term(&p, w->eq + start, i - start, &w->terms[n_terms]));
    n_terms++;
    start = i + 1;
  }
  if (n_terms != n_ops) {
    char msg[96];
    snprintf(msg, sizeof msg, "%d terms for %d inputs", n_terms, n_ops);
    return es_eq_error(&p, msg);
  }

  /* Ellipsis widths, then one label per axis of each input. */
  int n_ell[ES_MAX_OPERANDS], max_ell = 0;
  for (int i = 0; i < n_ops; i++) {
    const oc_tensor_t *t = oc_lower_input(lw, i);
    const es_term_t *term = &w->terms[i];
    int e = t->rank - term->n_letters;
    if (term->ellipsis < 0 ? e != 0 : e < 0) {
      char msg[160];
      snprintf(msg, sizeof msg, "term %d has %d indices%s for input %d of rank %d", i,
               term->n_letters, term->ellipsis < 0 ? "" : " and \"...\"", i, t->rank);
      return es_eq_error(&p, msg);
    }
    n_ell[i] = term->ellipsis < 0 ? 0 : e;
    if (n_ell[i] > max_ell) max_ell = n_ell[i];
  }
  int count[ES_LABELS] = {0};
  for (int i = 0; i < n_ops; i++) {
    const oc_tensor_t *t = oc_lower_input(lw, i);
    es_opnd_t *o = &w->opnd[i];
    o->ref = oc_lower_in(lw, i);
    o->n = es_expand(&w->terms[i], n_ell[i], max_ell, o->label);
    for (int k = 0; k < o->n; k++) {
      int l = o->label[k];
      int64_t d = t->dims[k];
      o->dim[k] = d;
      count[l]++;
      if (p.size[l] < 0 || p.size[l] == 1) {
        p.size[l] = d;
      } else if (d != 1 && d != p.size[l]) {
        char b[4], msg[160];
        snprintf(msg, sizeof msg, "index '%s' has dims %lld and %lld", es_name(l, b),
                 (long long)p.size[l], (long long)d);
        return es_eq_error(&p, msg);
      }
    }
  }

  /* The output labels. */
  int out_label[OC_MAX_RANK], n_out = 0;
  char in_out[ES_LABELS] = {0};
  if (arrow) {
    es_term_t *ot = &w->terms[n_ops];
    OC_RETURN_IF_ERROR(es_parse_term(&p, arrow + 2, strlen(arrow + 2), ot));
    if (max_ell > 0 && ot->ellipsis < 0)
      return es_eq_error(&p, "the output has no \"...\", but the inputs' \"...\" stand for dims");
    if (ot->n_letters + (ot->ellipsis >= 0 ? max_ell : 0) > OC_MAX_RANK)
      return oc_lower_error(lw, OC_STATUS_RESOURCE_LIMIT,
                            "equation '%s': the output has rank above %d", w->eq, OC_MAX_RANK);
    n_out = es_expand(ot, ot->ellipsis >= 0 ? max_ell : 0, max_ell, out_label);
    for (int k = 0; k < n_out; k++) {
      char b[4], msg[96];
      int l = out_label[k];
      if (in_out[l]) {
        snprintf(msg, sizeof msg, "output index '%s' repeats", es_name(l, b));
        return es_eq_error(&p, msg);
      }
      if (!count[l]) {
        snprintf(msg, sizeof msg, "output index '%s' is in no input term", es_name(l, b));
        return es_eq_error(&p, msg);
      }
      in_out[l] = 1;
    }
  } else {
    for (int l = ES_LETTERS; l < ES_LETTERS + max_ell; l++) out_label[n_out++] = l;
    for (int l = 0; l < ES_LETTERS; l++)
      if (count[l] == 1) {
        if (n_out == OC_MAX_RANK)
          return oc_lower_error(lw, OC_STATUS_RESOURCE_LIMIT,
                                "equation '%s': the output has rank above %d", w->eq, OC_MAX_RANK);
        out_label[n_out++] = l;
      }
    for (int k = 0; k < n_out; k++) in_out[out_label[k]] = 1;
  }

  /* Per operand: diagonals, broadcast axes, then the labels nothing else uses. */
  for (int i = 0; i < n_ops; i++) {
    OC_RETURN_IF_ERROR(es_diagonal(&p, &w->opnd[i]));
    OC_RETURN_IF_ERROR(es_squeeze(&p, &w->opnd[i]));
  }
  for (int i = 0; i < n_ops; i++) {
    char needed[ES_LABELS];
    memcpy(needed, in_out, sizeof needed);
    for (int j = 0; j < n_ops; j++)
      for (int k = 0; j != i && k < w->opnd[j].n; k++) needed[w->opnd[j].label[k]] = 1;
    OC_RETURN_IF_ERROR(es_reduce(&p, &w->opnd[i], needed));
  }

  /* Contract left to right. */
  es_opnd_t *acc = &w->opnd[0];
  for (int i = 1; i < n_ops; i++) {
    char needed[ES_LABELS];
    memcpy(needed, in_out, sizeof needed);
    for (int j = i + 1; j < n_ops; j++)
      for (int k = 0; k < w->opnd[j].n; k++) needed[w->opnd[j].label[k]] = 1;
    OC_RETURN_IF_ERROR(es_contract(&p, acc, &w->opnd[i], needed));
  }

  /* Order as the output; a plain copy when nothing else was needed. */
  OC_RETURN_IF_ERROR(es_reduce(&p, acc, in_out));
  if (acc->n != n_out)
    return oc_lower_error(lw, OC_STATUS_INTERNAL, "equation '%s': result rank %d, output %d",
                          w->eq, acc->n, n_out);
  OC_RETURN_IF_ERROR(es_transpose(&p, acc, out_label));
  if (p.n_steps == 0)
    OC_RETURN_IF_ERROR(es_push(&p, OC_OP_COPY, 1, acc->ref, 0, acc->dim, acc->n, &acc->ref));
  return es_emit(&p);
}

oc_status_t oc_lower_einsum(oc_lower_t *lw);
oc_status_t oc_lower_einsum(oc_lower_t *lw) {
  es_work_t *w = malloc(sizeof *w);
  if (!w) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  oc_status_t s = es_lower(lw, w);
  free(w);
  return s;
}

/* --- gradients ---------------------------------------------------------------- */

/* EINSUM_DIAGONAL: dx = EinsumDiagonalBwd(dy), ints [rank of x, the forward's
 * map]: zeros of x's shape with dy written onto the positions the forward
 * read (one x element per y element, so nothing accumulates). */
oc_status_t oc_grad_einsum_diagonal(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
oc_status_t oc_grad_einsum_diagonal(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy) {
  if (dy[0] < 0 || !oc_grad_wants(gc, 0)) return OC_OK;
  const oc_tensor_t x_type = oc_grad_graph(gc)->values[fwd->in[0]].type, *x = &x_type;
  if (fwd->n_ints != 1 + x->rank)
    return oc_grad_error(gc, OC_STATUS_INTERNAL, "%d ints for an input of rank %d", fwd->n_ints,
                         x->rank);
  int64_t ints[1 + OC_MAX_RANK];
  ints[0] = x->rank;
  for (int k = 0; k < x->rank; k++) ints[1 + k] = fwd->ints[1 + k];
  int dx = oc_grad_temp(gc, "dx");
  if (dx < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  OC_RETURN_IF_ERROR(
      oc_grad_emit(gc, OC_OP_EINSUM_DIAGONAL_BWD, 1, &dy[0], 1, &dx, ints, 1 + x->rank, NULL, 0));
  return oc_grad_accumulate(gc, 0, dx);
}
