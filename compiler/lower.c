/*
 * The lowering API used by compiler/ops/ (one file per op family), and the driver that visits the
 * graph in topological order (see lower.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lower.h"
#include "lowering.h"
#include "op_cost.h"

/* What folding has spent of an oc_fold_limits_t while one graph lowers. */
struct oc_fold_budget_s {
  oc_fold_limits_t lim;
  uint64_t graph_bytes;  /* the graph's constants when lowering started */
  uint64_t folded_bytes; /* constants that lowering made */
  uint64_t cost;         /* operations the folded instructions ran */
};

/* --- the ONNX op registry -------------------------------------------------- */

#define OC_ONNX_OP(domain, name, fn, since, dtypes) oc_status_t fn(oc_lower_t *lw);
#include "ops/onnx_ops.h"
#undef OC_ONNX_OP

typedef struct onnx_op_entry_s {
  const char *domain;
  const char *name;
  oc_lower_fn fn;
  int since;
  const char *dtypes;
} onnx_op_entry_t;

static const onnx_op_entry_t onnx_ops[] = {
#define OC_ONNX_OP(domain, name, fn, since, dtypes) {domain, name, fn, since, dtypes},
#include "ops/onnx_ops.h"
#undef OC_ONNX_OP
};

oc_lower_fn oc_lower_find(const char *domain, const char *op_type) {
  for (size_t i = 0; i < sizeof(onnx_ops) / sizeof(onnx_ops[0]); i++)
    if (strcmp(onnx_ops[i].domain, domain) == 0 && strcmp(onnx_ops[i].name, op_type) == 0)
      return onnx_ops[i].fn;
  return NULL;
}

int oc_lower_op_count(void) { return (int)(sizeof(onnx_ops) / sizeof(onnx_ops[0])); }

void oc_lower_op_info(int i, const char **out_domain, const char **out_name, int *out_since,
                      const char **out_dtypes) {
  *out_domain = onnx_ops[i].domain;
  *out_name = onnx_ops[i].name;
  *out_since = onnx_ops[i].since;
  *out_dtypes = onnx_ops[i].dtypes;
}

/* --- reading the node -------------------------------------------------------- */

oc_status_t oc_lower_error(const oc_lower_t *lw, oc_status_code_t code, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return oc_make_status(code, "node '%s' (%s): %s", lw->node->name, lw->node->op_type, msg);
}

int oc_lower_in(const oc_lower_t *lw, int i) {
  return i >= 0 && i < lw->node->n_in ? lw->node->in[i] : -1;
}

int oc_lower_out(const oc_lower_t *lw, int i) {
  return i >= 0 && i < lw->node->n_out ? lw->node->out[i] : -1;
}

const oc_tensor_t *oc_lower_input(const oc_lower_t *lw, int i) {
  int v = oc_lower_in(lw, i);
  return v < 0 ? NULL : &lw->g->values[v].type;
}

int oc_lower_input_is_const(const oc_lower_t *lw, int i) {
  int v = oc_lower_in(lw, i);
  return v >= 0 && lw->g->values[v].kind == OC_VALUE_CONST && lw->g->values[v].foldable;
}

static oc_status_t need_const(const oc_lower_t *lw, int i) {
  int v = oc_lower_in(lw, i);
  if (v < 0) return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input %d is missing", i);
  if (!oc_lower_input_is_const(lw, i))
    return oc_lower_error(lw, OC_STATUS_UNSUPPORTED,
                          "input %d ('%s') must be a compile-time constant: the output shape "
                          "depends on its run-time value",
                          i, lw->g->values[v].name);
  return OC_OK;
}

oc_status_t oc_lower_const_ints(const oc_lower_t *lw, int i, int64_t *out, int max, int *out_n) {
  OC_RETURN_IF_ERROR(need_const(lw, i));
  const oc_tensor_t *t = oc_lower_input(lw, i);
  int64_t n = oc_tensor_numel(t);
  if (t->rank > 1)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input %d must be 0-D or 1-D, not rank %d",
                          i, t->rank);
  if (n > max)
    return oc_lower_error(lw, OC_STATUS_RESOURCE_LIMIT, "input %d has %lld values; at most %d",
                          i, (long long)n, max);
  for (int64_t k = 0; k < n; k++) {
    if (t->dtype == OC_DTYPE_INT64)
      out[k] = ((const int64_t *)t->data)[k];
    else if (t->dtype == OC_DTYPE_INT32)
      out[k] = ((const int32_t *)t->data)[k];
    else
      return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input %d must be int64 or int32, not %s",
                            i, oc_dtype_name(t->dtype));
  }
  *out_n = (int)n;
  return OC_OK;
}

oc_status_t oc_lower_const_scalar(const oc_lower_t *lw, int i, double *out) {
  OC_RETURN_IF_ERROR(need_const(lw, i));
  const oc_tensor_t *t = oc_lower_input(lw, i);
  if (oc_tensor_numel(t) != 1)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "input %d must hold one value, not %lld",
                          i, (long long)oc_tensor_numel(t));
  switch (t->dtype) {
    case OC_DTYPE_FLOAT32: *out = *(const float *)t->data; break;
    case OC_DTYPE_INT64: *out = (double)*(const int64_t *)t->data; break;
    case OC_DTYPE_INT32: *out = *(const int32_t *)t->data; break;
    case OC_DTYPE_BOOL:
    case OC_DTYPE_UINT8: *out = *(const uint8_t *)t->data; break;
    case OC_DTYPE_INT8: *out = *(const int8_t *)t->data; break;
    default:
      return oc_lower_error(lw, OC_STATUS_UNSUPPORTED, "input %d has dtype %s", i,
                            oc_dtype_name(t->dtype));
  }
  return OC_OK;
}

static oc_status_t attr_of_type(const oc_lower_t *lw, const char *name, int type,
                                const oc_attr_t **out) {
  const oc_attr_t *a = oc_node_attr(lw->node, name);
  *out = NULL;
  if (!a) return OC_OK;
  if (a->type != type)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT, "attribute '%s' has type %d, expected %d",
                          name, a->type, type);
  *out = a;
  return OC_OK;
}

oc_status_t oc_lower_attr_int(const oc_lower_t *lw, const char *name, int64_t dflt, int64_t *out) {
  const oc_attr_t *a;
  OC_RETURN_IF_ERROR(attr_of_type(lw, name, OC_ATTR_INT, &a));
  *out = a ? a->i : dflt;
  return OC_OK;
}

oc_status_t oc_lower_attr_float(const oc_lower_t *lw, const char *name, float dflt, float *out) {
  const oc_attr_t *a;
  OC_RETURN_IF_ERROR(attr_of_type(lw, name, OC_ATTR_FLOAT, &a));
  *out = a ? a->f : dflt;
  return OC_OK;
}

oc_status_t oc_lower_attr_string(const oc_lower_t *lw, const char *name, const char *dflt,
                                 const char **out) {
  const oc_attr_t *a;
  OC_RETURN_IF_ERROR(attr_of_type(lw, name, OC_ATTR_STRING, &a));
  *out = a ? a->s : dflt;
  return OC_OK;
}

oc_status_t oc_lower_attr_ints(const oc_lower_t *lw, const char *name, const int64_t **out,
                               int *out_n) {
  const oc_attr_t *a;
  OC_RETURN_IF_ERROR(attr_of_type(lw, name, OC_ATTR_INTS, &a));
  *out = a ? a->ints : NULL;
  *out_n = a ? a->n_ints : -1;
  return OC_OK;
}

/* --- producing results -------------------------------------------------------- */

int oc_lower_temp(oc_lower_t *lw, const char *hint) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s/%s", lw->node->name, hint);
  return oc_graph_new_value(lw->g, buf);
}

static oc_status_t check_output_slot(const oc_lower_t *lw, int v) {
  if (v < 0) return oc_lower_error(lw, OC_STATUS_INTERNAL, "output value is missing");
  const oc_value_t *val = &lw->g->values[v];
  if (val->known)
    return oc_lower_error(lw, OC_STATUS_INVALID_ARGUMENT,
                          "writes '%s', which is already defined (a graph input, an initializer "
                          "or another node's output)",
                          val->name);
  return OC_OK;
}

int oc_lower_state(oc_lower_t *lw, const char *hint, int dtype, int rank, const int64_t *dims,
                   const void *init) {
  /* |dims| may point into the values array, which the new value may move. */
  int64_t own_dims[OC_MAX_RANK];
  if (rank < 0 || rank > OC_MAX_RANK) return -1;
  if (rank) memcpy(own_dims, dims, sizeof(int64_t) * (size_t)rank);
  dims = own_dims;
  int v = oc_lower_temp(lw, hint);
  if (v < 0) return -1;
  oc_status_t s = oc_value_set_const(lw->g, v, dtype, rank, dims, init);
  if (s) {
    oc_status_free(s);
    return -1;
  }
  lw->g->values[v].kind = OC_VALUE_STATE;
  lw->g->values[v].foldable = 0;
  return v;
}

/* Why a new constant of |bytes| bytes (its kernel needing |scratch| more
 * while it runs) does not fit the limits, or NULL when it does. */
static const char *over_fold_limit(const oc_lower_t *lw, uint64_t bytes, uint64_t scratch,
                                   uint64_t *out_limit) {
  const struct oc_fold_budget_s *b = lw->budget;
  if (oc_sat_add(bytes, scratch) > lw->fold_limit_bytes) {
    *out_limit = lw->fold_limit_bytes;
    return "one folded constant (--fold-limit)";
  }
  if (!b) return NULL;
  if (oc_sat_add(b->folded_bytes, bytes) > b->lim.max_total_bytes) {
    *out_limit = b->lim.max_total_bytes;
    return "folded constants in total (--max-fold)";
  }
  if (oc_sat_add(oc_sat_add(b->graph_bytes, b->folded_bytes), oc_sat_add(bytes, scratch)) >
      b->lim.max_memory_bytes) {
    *out_limit = b->lim.max_memory_bytes;
    return "initializers and folded constants in total (--max-memory)";
  }
  return NULL;
}

oc_status_t oc_lower_set_const(oc_lower_t *lw, int v, int dtype, int rank, const int64_t *dims,
                               const void *data) {
  OC_RETURN_IF_ERROR(check_output_slot(lw, v));
  oc_tensor_t t = {.dtype = dtype, .rank = rank};
  for (int i = 0; i < rank && i < OC_MAX_RANK; i++) t.dims[i] = dims[i];
  uint64_t bytes = 0, limit = 0;
  if (rank >= 0 && rank <= OC_MAX_RANK && oc_check_type(&t, "x") == OC_OK) {
    bytes = oc_tensor_bytes(&t);
    const char *what = over_fold_limit(lw, bytes, 0, &limit);
    if (what)
      return oc_lower_error(lw, OC_STATUS_RESOURCE_LIMIT,
                            "its constant output of %llu bytes exceeds the %llu-byte limit on %s",
                            (unsigned long long)bytes, (unsigned long long)limit, what);
  }
  oc_status_t s = oc_value_set_const(lw->g, v, dtype, rank, dims, data);
  if (s) return oc_status_wrap(s, "node '%s' (%s): ", lw->node->name, lw->node->op_type);
  if (lw->budget) lw->budget->folded_bytes += bytes;
  return OC_OK;
}

oc_status_t oc_lower_reshape(oc_lower_t *lw, int in_v, int out_v, int rank, const int64_t *dims) {
  if (rank < 0 || rank > OC_MAX_RANK)
    return oc_lower_error(lw, OC_STATUS_RESOURCE_LIMIT, "rank %d exceeds %d", rank, OC_MAX_RANK);
  int in[1] = {in_v}, out[1] = {out_v};
  return oc_lower_emit(lw, OC_OP_COPY, 1, in, 1, out, dims, rank, NULL, 0);
}

oc_status_t oc_lower_emit(oc_lower_t *lw, int op, int n_in, const int *in, int n_out,
                          const int *out, const int64_t *ints, int n_ints, const float *floats,
                          int n_floats) {
  oc_graph_t *g = lw->g;
  const oc_op_def_t *def = oc_op_get(op);
  if (n_in > OC_MAX_OP_INPUTS || n_out > OC_MAX_OP_OUTPUTS || n_in < 0 || n_out < 1 || !def)
    return oc_lower_error(lw, OC_STATUS_INTERNAL, "bad instruction arity");
  oc_tensor_t *in_p[OC_MAX_OP_INPUTS];
  oc_tensor_t out_t[OC_MAX_OP_OUTPUTS];
  oc_tensor_t *out_p[OC_MAX_OP_OUTPUTS];
  int all_const = n_in > 0 && def->mutates == 0;
  for (int i = 0; i < n_in; i++) {
    if (in[i] < 0) {
      in_p[i] = NULL;
      continue;
    }
    oc_value_t *v = &g->values[in[i]];
    if (!v->known)
      return oc_lower_error(lw, OC_STATUS_INTERNAL, "input '%s' has no type yet", v->name);
    in_p[i] = &v->type;
    if (!(v->kind == OC_VALUE_CONST && v->foldable)) all_const = 0;
  }
  for (int i = 0; i < n_out; i++) {
    OC_RETURN_IF_ERROR(check_output_slot(lw, out[i]));
    memset(&out_t[i], 0, sizeof(out_t[i]));
    out_p[i] = &out_t[i];
  }
  oc_op_call_t call = {.ints = ints, .n_ints = n_ints, .floats = floats, .n_floats = n_floats,
                       .n_in = n_in, .in = in_p, .n_out = n_out, .out = out_p};
  size_t ws = 0;
  oc_status_t s = oc_op_infer(op, &call, &ws);
  if (s) return oc_status_wrap(s, "node '%s' (%s): ", lw->node->name, lw->node->op_type);

  if (all_const) {
    uint64_t bytes = 0, limit = 0, cost = 0;
    for (int i = 0; i < n_out; i++) bytes += oc_tensor_bytes(&out_t[i]);
    /* Folding runs the kernel now: its outputs and scratch must fit the
     * memory limits, and its work the cost budget, before anything is
     * allocated; otherwise the instruction runs at run time. */
    int fold = over_fold_limit(lw, bytes, ws, &limit) == NULL;
    if (fold && lw->budget) {
      cost = oc_op_cost(op, &call);
      fold = oc_sat_add(lw->budget->cost, cost) <= lw->budget->lim.max_cost;
    }
    if (fold) {
      /* Fold: run the kernel now; outputs become constants. */
      void *wsbuf = ws ? aligned_alloc(OC_ALIGNMENT, oc_align_up(ws, OC_ALIGNMENT)) : NULL;
      if (ws && !wsbuf) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory folding");
      for (int i = 0; i < n_out; i++) {
        size_t b = oc_tensor_bytes(&out_t[i]);
        out_t[i].data = aligned_alloc(OC_ALIGNMENT, oc_align_up(b ? b : 1, OC_ALIGNMENT));
        if (!out_t[i].data) s = oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory folding");
      }
      call.workspace = wsbuf;
      call.workspace_bytes = ws;
      if (!s) s = def->run(&call);
      for (int i = 0; i < n_out && !s; i++)
        s = oc_value_set_const(g, out[i], out_t[i].dtype, out_t[i].rank, out_t[i].dims,
                               out_t[i].data);
      for (int i = 0; i < n_out; i++) free(out_t[i].data);
      free(wsbuf);
      if (s) return oc_status_wrap(s, "node '%s' (%s), folding: ", lw->node->name, lw->node->op_type);
      if (lw->budget) {
        lw->budget->folded_bytes += bytes;
        lw->budget->cost += cost;
      }
      return OC_OK;
    }
  }
  int idx = oc_graph_add_instr(g, op, n_in, in, n_out, out, ints, n_ints, floats, n_floats,
                               lw->node->name);
  if (idx < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  g->instrs[idx].workspace_bytes = ws;
  for (int i = 0; i < n_out; i++) {
    oc_value_t *v = &g->values[out[i]];
    v->type = out_t[i];
    v->type.data = NULL;
    v->known = 1;
    v->kind = OC_VALUE_TEMP;
    v->producer = idx;
  }
  return OC_OK;
}

oc_status_t oc_emit_instr(oc_graph_t *g, const char *node, int op, int n_in, const int *in,
                          int n_out, const int *out, const int64_t *ints, int n_ints,
                          const float *floats, int n_floats) {
  const oc_op_def_t *def = oc_op_get(op);
  if (!def || n_in > OC_MAX_OP_INPUTS || n_out > OC_MAX_OP_OUTPUTS || n_in < 0 || n_out < 0)
    return oc_make_status(OC_STATUS_INTERNAL, "%s: bad instruction", node);
  oc_tensor_t *in_p[OC_MAX_OP_INPUTS], out_t[OC_MAX_OP_OUTPUTS], *out_p[OC_MAX_OP_OUTPUTS];
  for (int i = 0; i < n_in; i++) {
    in_p[i] = in[i] < 0 ? NULL : &g->values[in[i]].type;
    if (in[i] >= 0 && !g->values[in[i]].known)
      return oc_make_status(OC_STATUS_INTERNAL, "%s: '%s' has no type", node, g->values[in[i]].name);
  }
  for (int i = 0; i < n_out; i++) {
    if (out[i] < 0 || g->values[out[i]].known)
      return oc_make_status(OC_STATUS_INTERNAL, "%s: output %d is not a fresh value", node, i);
    memset(&out_t[i], 0, sizeof out_t[i]);
    out_p[i] = &out_t[i];
  }
  oc_op_call_t call = {.ints = ints, .n_ints = n_ints, .floats = floats, .n_floats = n_floats,
                       .n_in = n_in, .in = in_p, .n_out = n_out, .out = out_p};
  size_t ws = 0;
  oc_status_t s = oc_op_infer(op, &call, &ws);
  if (s) return oc_status_wrap(s, "%s (%s): ", node, def->name);
  int idx = oc_graph_add_instr(g, op, n_in, in, n_out, out, ints, n_ints, floats, n_floats, node);
  if (idx < 0) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  g->instrs[idx].workspace_bytes = ws;
  for (int i = 0; i < n_out; i++) {
    oc_value_t *v = &g->values[out[i]];
    v->type = out_t[i];
    v->type.data = NULL;
    v->known = 1;
    v->kind = OC_VALUE_TEMP;
    v->producer = idx;
  }
  return OC_OK;
}

/* --- the driver ------------------------------------------------------------------ */

/* Marks the nodes needed for |outputs| and orders them topologically.
 * Errors: a value nobody defines, two producers of one value, a cycle. */
static oc_status_t schedule(oc_graph_t *g, const int *outputs, int n_outputs, int **out_order,
                            int *out_n) {
  oc_status_t s = OC_OK;
  int *producer = malloc(sizeof(int) * (size_t)(g->n_values + 1));
  int *state = calloc((size_t)g->n_nodes + 1, sizeof(int)); /* 0 new, 1 on stack, 2 done */
  int *order = malloc(sizeof(int) * (size_t)(g->n_nodes + 1));
  /* Explicit DFS stack of (node, next input index). */
  int *stack_node = malloc(sizeof(int) * (size_t)(g->n_nodes + 1));
  int *stack_pos = malloc(sizeof(int) * (size_t)(g->n_nodes + 1));
  int n_order = 0;
  if (!producer || !state || !order || !stack_node || !stack_pos) {
    s = oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
    goto done;
  }
  for (int v = 0; v < g->n_values; v++) producer[v] = -1;
  for (int i = 0; i < g->n_nodes; i++) {
    const oc_node_t *n = &g->nodes[i];
    for (int k = 0; k < n->n_out; k++) {
      int v = n->out[k];
      if (v < 0) continue;
      if (g->values[v].kind != OC_VALUE_TEMP) {
        s = oc_make_status(OC_STATUS_CORRUPT,
                           "node '%s' (%s) writes '%s', which is a graph input or an initializer",
                           n->name, n->op_type, g->values[v].name);
        goto done;
      }
      if (producer[v] >= 0) {
        s = oc_make_status(OC_STATUS_CORRUPT, "value '%s' is produced by two nodes: '%s' and '%s'",
                           g->values[v].name, g->nodes[producer[v]].name, n->name);
        goto done;
      }
      producer[v] = i;
    }
  }
  for (int oi = 0; oi < n_outputs; oi++) {
    int v = outputs[oi];
    if (g->values[v].kind != OC_VALUE_TEMP) continue;
    if (producer[v] < 0) {
      s = oc_make_status(OC_STATUS_CORRUPT, "output '%s' is not produced by any node",
                         g->values[v].name);
      goto done;
    }
    int root = producer[v];
    if (state[root] == 2) continue;
    int sp = 0;
    stack_node[sp] = root;
    stack_pos[sp] = 0;
    state[root] = 1;
    sp++;
    while (sp > 0) {
      int nidx = stack_node[sp - 1];
      const oc_node_t *n = &g->nodes[nidx];
      if (stack_pos[sp - 1] < n->n_in) {
        int in = n->in[stack_pos[sp - 1]++];
        if (in < 0) continue;
        const oc_value_t *val = &g->values[in];
        if (val->kind != OC_VALUE_TEMP) continue;
        int p = producer[in];
        if (p < 0) {
          s = oc_make_status(OC_STATUS_CORRUPT,
                             "node '%s' (%s) reads '%s', which is not a graph input, an "
                             "initializer or any node's output",
                             n->name, n->op_type, val->name);
          goto done;
        }
        if (state[p] == 1) {
          s = oc_make_status(OC_STATUS_CORRUPT, "the graph has a cycle through node '%s' (%s)",
                             g->nodes[p].name, g->nodes[p].op_type);
          goto done;
        }
        if (state[p] == 0) {
          state[p] = 1;
          stack_node[sp] = p;
          stack_pos[sp] = 0;
          sp++;
        }
      } else {
        state[nidx] = 2;
        order[n_order++] = nidx;
        sp--;
      }
    }
  }
done:
  free(producer);
  free(state);
  free(stack_node);
  free(stack_pos);
  if (s) {
    free(order);
    return s;
  }
  *out_order = order;
  *out_n = n_order;
  return OC_OK;
}

/* The opset version the model imports for the node's domain (-1: none). */
static int64_t opset_for(const oc_graph_t *g, const oc_node_t *n) {
  if (!n->domain[0]) return g->opset;
  for (int i = 0; i < g->n_opsets; i++)
    if (strcmp(g->opset_domains[i], n->domain) == 0) return g->opset_versions[i];
  return -1;
}

oc_status_t oc_lower_graph(oc_graph_t *g, const int *outputs, int n_outputs,
                           const oc_fold_limits_t *limits, int mode) {
  if (g->opset > OC_MAX_OPSET || g->opset < 0)
    return oc_make_status(OC_STATUS_UNSUPPORTED,
                          "the model uses opset %lld of the default ONNX domain; onnxc supports "
                          "opsets 1 to %d (re-export with opset_version=%d or lower)",
                          (long long)g->opset, OC_MAX_OPSET, OC_MAX_OPSET);
  int *order = NULL, n_order = 0;
  OC_RETURN_IF_ERROR(schedule(g, outputs, n_outputs, &order, &n_order));
  struct oc_fold_budget_s budget = {.lim = *limits};
  for (int v = 0; v < g->n_values; v++)
    if (g->values[v].type.data)
      budget.graph_bytes = oc_sat_add(budget.graph_bytes, oc_tensor_bytes(&g->values[v].type));
  oc_status_t s = OC_OK;
  for (int k = 0; k < n_order && !s; k++) {
    const oc_node_t *n = &g->nodes[order[k]];
    oc_lower_t lw = {.g = g, .node = n, .opset = opset_for(g, n), .mode = (oc_lower_mode_t)mode,
                     .fold_limit_bytes = limits->max_constant_bytes, .budget = &budget};
    if (!n->domain[0] && g->opset == 0) {
      s = oc_make_status(OC_STATUS_CORRUPT,
                         "node '%s' (%s) is in the default ONNX domain, but the model imports no "
                         "version of that opset",
                         n->name, n->op_type);
      break;
    }
    oc_lower_fn fn = oc_lower_find(n->domain, n->op_type);
    if (!fn) {
      s = oc_make_status(OC_STATUS_UNSUPPORTED,
                         "node '%s': unknown op '%s' (domain '%s', opset %lld): onnxc has no "
                         "kernel for it",
                         n->name, n->op_type, n->domain[0] ? n->domain : "ai.onnx",
                         (long long)lw.opset);
      break;
    }
    for (int i = 0; i < n->n_in; i++)
      if (n->in[i] >= 0 && !g->values[n->in[i]].known) {
        s = oc_make_status(OC_STATUS_INTERNAL, "node '%s': input '%s' has no type", n->name,
                           g->values[n->in[i]].name);
        break;
      }
    if (s) break;
    s = fn(&lw);
    for (int i = 0; i < n->n_out && !s; i++)
      if (n->out[i] >= 0 && !g->values[n->out[i]].known)
        s = oc_lower_error(&lw, OC_STATUS_UNSUPPORTED, "output %d ('%s') is not computed", i,
                           g->values[n->out[i]].name);
  }
  free(order);
  return s;
}
