/* The autodiff driver and the helpers gradient rules use (see autodiff.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff.h"
#include "lower.h"

/* --- the rule registry --------------------------------------------------------- */

#define OC_GRAD_OP(op, fn, onnx_ops) oc_status_t fn(oc_grad_t *gc, const oc_instr_t *fwd, const int *dy);
#include "ops/grad_ops.h"
#undef OC_GRAD_OP

typedef struct grad_entry_s {
  int op;
  oc_grad_fn fn;
  const char *onnx_ops; /* space-separated ONNX ops that lower to this op alone */
} grad_entry_t;

static const grad_entry_t grad_rules[] = {
#define OC_GRAD_OP(op, fn, onnx_ops) {op, fn, onnx_ops},
#include "ops/grad_ops.h"
#undef OC_GRAD_OP
    {-1, NULL, NULL}};

oc_grad_fn oc_grad_find(int op) {
  for (const grad_entry_t *e = grad_rules; e->fn; e++)
    if (e->op == op) return e->fn;
  return NULL;
}

int oc_grad_covers_onnx_op(const char *onnx_op) {
  size_t n = strlen(onnx_op);
  for (const grad_entry_t *e = grad_rules; e->fn; e++) {
    for (const char *p = e->onnx_ops; (p = strstr(p, onnx_op)) != NULL; p += n) {
      int starts = p == e->onnx_ops || p[-1] == ' ';
      int ends = p[n] == 0 || p[n] == ' ';
      if (starts && ends) return 1;
    }
  }
  return 0;
}

/* --- state ----------------------------------------------------------------------- */

struct oc_grad_s {
  oc_graph_t *g;
  int *grad;   /* per value: its accumulated gradient value, or -1 */
  char *wants; /* per value: depends on a trained parameter */
  int cap;     /* size of grad/wants */
  oc_instr_t fwd; /* the instruction being differentiated (a copy: g->instrs moves) */
};

static oc_status_t oom(void) { return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory in autodiff"); }

/* Grows the per-value tables after new values were made. */
static oc_status_t fit_tables(oc_grad_t *gc) {
  if (gc->g->n_values <= gc->cap) return OC_OK;
  int cap = gc->g->n_values * 2;
  int *grad = realloc(gc->grad, sizeof(int) * (size_t)cap);
  if (!grad) return oom();
  gc->grad = grad;
  char *wants = realloc(gc->wants, (size_t)cap);
  if (!wants) return oom();
  gc->wants = wants;
  for (int v = gc->cap; v < cap; v++) {
    gc->grad[v] = -1;
    gc->wants[v] = 0;
  }
  gc->cap = cap;
  return OC_OK;
}

oc_graph_t *oc_grad_graph(oc_grad_t *gc) { return gc->g; }

int oc_grad_wants(const oc_grad_t *gc, int i) {
  if (i < 0 || i >= gc->fwd.n_in) return 0;
  int v = gc->fwd.in[i];
  return v >= 0 && gc->wants[v];
}

oc_status_t oc_grad_error(const oc_grad_t *gc, oc_status_code_t code, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  const oc_op_def_t *def = oc_op_get(gc->fwd.op);
  return oc_make_status(code, "node '%s' (%s), gradient: %s", gc->fwd.node,
                        def ? def->name : "?", msg);
}

int oc_grad_temp(oc_grad_t *gc, const char *hint) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s/grad/%s", gc->fwd.node, hint);
  int v = oc_graph_new_value(gc->g, buf);
  if (v >= 0 && fit_tables(gc) != OC_OK) return -1;
  return v;
}

int oc_grad_const(oc_grad_t *gc, const char *hint, int rank, const int64_t *dims, float value) {
  /* |dims| may point into the values array, which the new value may move. */
  int64_t own_dims[OC_MAX_RANK];
  if (rank < 0 || rank > OC_MAX_RANK) return -1;
  if (rank) memcpy(own_dims, dims, sizeof(int64_t) * (size_t)rank);
  dims = own_dims;
  int v = oc_grad_temp(gc, hint);
  if (v < 0) return -1;
  oc_status_t s = oc_value_set_const(gc->g, v, OC_DTYPE_FLOAT32, rank, dims, NULL);
  if (s) {
    oc_status_free(s);
    return -1;
  }
  oc_tensor_t *t = &gc->g->values[v].type;
  int64_t n = oc_tensor_numel(t);
  for (int64_t k = 0; k < n; k++) ((float *)t->data)[k] = value;
  return v;
}

oc_status_t oc_grad_emit(oc_grad_t *gc, int op, int n_in, const int *in, int n_out, const int *out,
                         const int64_t *ints, int n_ints, const float *floats, int n_floats) {
  char node[512];
  snprintf(node, sizeof node, "%s/grad", gc->fwd.node);
  return oc_emit_instr(gc->g, node, op, n_in, in, n_out, out, ints, n_ints, floats, n_floats);
}

static int same_type(const oc_tensor_t *a, const oc_tensor_t *b) {
  if (a->dtype != b->dtype || a->rank != b->rank) return 0;
  for (int i = 0; i < a->rank; i++)
    if (a->dims[i] != b->dims[i]) return 0;
  return 1;
}

/* Adds |grad| into the gradient of value |v|. */
static oc_status_t accumulate_value(oc_grad_t *gc, int v, int grad) {
  OC_RETURN_IF_ERROR(fit_tables(gc));
  const oc_tensor_t *want = &gc->g->values[v].type, *have = &gc->g->values[grad].type;
  if (!same_type(want, have)) {
    char b1[160], b2[160];
    return oc_grad_error(gc, OC_STATUS_INTERNAL, "gradient of '%s' is %s, the value is %s",
                         gc->g->values[v].name, oc_type_str(have, b1, sizeof b1),
                         oc_type_str(want, b2, sizeof b2));
  }
  if (gc->grad[v] < 0) {
    gc->grad[v] = grad;
    return OC_OK;
  }
  int sum = oc_grad_temp(gc, "sum");
  if (sum < 0) return oom();
  int in[2] = {gc->grad[v], grad};
  OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_ADD, 2, in, 1, &sum, NULL, 0, NULL, 0));
  gc->grad[v] = sum;
  return OC_OK;
}

oc_status_t oc_grad_accumulate(oc_grad_t *gc, int i, int grad) {
  if (i < 0 || i >= gc->fwd.n_in || gc->fwd.in[i] < 0)
    return oc_grad_error(gc, OC_STATUS_INTERNAL, "no input %d", i);
  if (!oc_grad_wants(gc, i)) return OC_OK;
  return accumulate_value(gc, gc->fwd.in[i], grad);
}

oc_status_t oc_grad_accumulate_unbroadcast(oc_grad_t *gc, int i, int grad) {
  if (i < 0 || i >= gc->fwd.n_in || gc->fwd.in[i] < 0)
    return oc_grad_error(gc, OC_STATUS_INTERNAL, "no input %d", i);
  if (!oc_grad_wants(gc, i)) return OC_OK;
  const oc_tensor_t want = gc->g->values[gc->fwd.in[i]].type;
  const oc_tensor_t have = gc->g->values[grad].type;
  if (same_type(&want, &have)) return accumulate_value(gc, gc->fwd.in[i], grad);
  /* Sum over the leading axes the input lacked and the axes it had as 1. */
  int64_t ints[1 + OC_MAX_RANK];
  int n = 1;
  ints[0] = 1; /* keepdims */
  for (int d = 0; d < have.rank; d++) {
    int dw = d - (have.rank - want.rank);
    if (dw < 0 || (want.dims[dw] == 1 && have.dims[d] != 1)) ints[n++] = d;
  }
  int cur = grad;
  if (n > 1) {
    int red = oc_grad_temp(gc, "unbroadcast");
    if (red < 0) return oom();
    OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_REDUCE_SUM, 1, &cur, 1, &red, ints, n, NULL, 0));
    cur = red;
  }
  if (!same_type(&want, &gc->g->values[cur].type)) {
    int shaped = oc_grad_temp(gc, "unbroadcast_shape");
    if (shaped < 0) return oom();
    OC_RETURN_IF_ERROR(oc_grad_emit(gc, OC_OP_COPY, 1, &cur, 1, &shaped, want.dims, want.rank, NULL, 0));
    cur = shaped;
  }
  return accumulate_value(gc, gc->fwd.in[i], cur);
}

/* --- the driver ------------------------------------------------------------------- */

/* Differentiates the values |of| (float32) with incoming gradients |seeds|
 * (-1: ones of that value's type) with respect to |params|. */
static oc_status_t differentiate(oc_graph_t *g, int n_of, const int *of, const int *seeds,
                                 const int *params, int n_params, int *out_grads) {
  oc_grad_t gc = {.g = g};
  oc_status_t s = fit_tables(&gc);
  if (s) return s;
  for (int k = 0; k < n_params; k++) gc.wants[params[k]] = 1;
  int n_fwd = g->n_instrs;
  /* Forward: which values depend on a parameter. */
  for (int i = 0; i < n_fwd; i++) {
    const oc_instr_t *ins = &g->instrs[i];
    int any = 0;
    for (int k = 0; k < ins->n_in; k++) any |= ins->in[k] >= 0 && gc.wants[ins->in[k]];
    for (int k = 0; k < ins->n_out && any; k++)
      if (g->values[ins->out[k]].type.dtype == OC_DTYPE_FLOAT32) gc.wants[ins->out[k]] = 1;
  }
  for (int j = 0; j < n_of && !s; j++) {
    if (!gc.wants[of[j]]) continue;
    gc.fwd = (oc_instr_t){.node = "loss", .op = OC_OP_COPY};
    const oc_tensor_t *t = &g->values[of[j]].type;
    int seed = seeds[j] >= 0 ? seeds[j] : oc_grad_const(&gc, "seed", t->rank, t->dims, 1.0f);
    s = seed < 0 ? oom() : accumulate_value(&gc, of[j], seed);
  }
  for (int i = n_fwd - 1; i >= 0 && !s; i--) {
    gc.fwd = g->instrs[i]; /* copy: emitting moves g->instrs */
    int dy[OC_MAX_OP_OUTPUTS], any_dy = 0, any_want = 0;
    for (int k = 0; k < gc.fwd.n_out; k++) {
      dy[k] = gc.grad[gc.fwd.out[k]];
      any_dy |= dy[k] >= 0;
    }
    for (int k = 0; k < gc.fwd.n_in; k++) any_want |= oc_grad_wants(&gc, k);
    if (!any_dy || !any_want) continue;
    oc_grad_fn fn = oc_grad_find(gc.fwd.op);
    if (!fn) {
      s = oc_grad_error(&gc, OC_STATUS_UNSUPPORTED, "no gradient rule for this op yet");
      break;
    }
    s = fn(&gc, &gc.fwd, dy);
  }
  for (int k = 0; k < n_params && !s; k++) {
    int v = params[k];
    if (gc.grad[v] >= 0) {
      out_grads[k] = gc.grad[v];
      continue;
    }
    /* No path from this parameter to the loss: its gradient is zero. */
    gc.fwd = (oc_instr_t){.node = g->values[v].name, .op = OC_OP_COPY};
    const oc_tensor_t *t = &g->values[v].type;
    out_grads[k] = oc_grad_const(&gc, "zero", t->rank, t->dims, 0.0f);
    if (out_grads[k] < 0) s = oom();
  }
  free(gc.grad);
  free(gc.wants);
  return s;
}

oc_status_t oc_autodiff(oc_graph_t *g, int loss, int seed, const int *params, int n_params,
                        int *out_grads) {
  const oc_tensor_t *lt = &g->values[loss].type;
  if (lt->dtype != OC_DTYPE_FLOAT32 || (seed < 0 && oc_tensor_numel(lt) != 1)) {
    char b[160];
    return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "the loss '%s' is %s; it must be a float32 "
                          "scalar (name another output with --loss)",
                          g->values[loss].name, oc_type_str(lt, b, sizeof b));
  }
  return differentiate(g, 1, &loss, &seed, params, n_params, out_grads);
}

oc_status_t oc_autodiff_seeds(oc_graph_t *g, int n_seeds, const int *values, const int *seeds,
                              const int *params, int n_params, int *out_grads) {
  for (int j = 0; j < n_seeds; j++)
    if (g->values[values[j]].type.dtype != OC_DTYPE_FLOAT32)
      return oc_make_status(OC_STATUS_INVALID_ARGUMENT, "'%s' is not float32: it has no gradient",
                            g->values[values[j]].name);
  return differentiate(g, n_seeds, values, seeds, params, n_params, out_grads);
}
