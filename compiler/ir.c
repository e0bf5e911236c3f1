/* The compiler IR: values, nodes, instructions and a name table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

oc_graph_t *oc_graph_new(void) { return calloc(1, sizeof(oc_graph_t)); }

static void free_attr(oc_attr_t *a) {
  free(a->name);
  free(a->s);
  free(a->ints);
  free(a->floats);
}

static void free_instr(oc_instr_t *ins) {
  free(ins->in);
  free(ins->out);
  free(ins->ints);
  free(ins->floats);
  free(ins->node);
}

void oc_graph_free(oc_graph_t *g) {
  if (!g) return;
  for (int i = 0; i < g->n_values; i++) {
    free(g->values[i].name);
    free(g->values[i].type.data);
    for (int d = 0; d < OC_MAX_RANK; d++) free(g->values[i].dim_params[d]);
  }
  for (int i = 0; i < g->n_nodes; i++) {
    oc_node_t *n = &g->nodes[i];
    free(n->name);
    free(n->op_type);
    free(n->domain);
    free(n->in);
    free(n->out);
    for (int k = 0; k < n->n_attrs; k++) free_attr(&n->attrs[k]);
    free(n->attrs);
  }
  for (int i = 0; i < g->n_instrs; i++) free_instr(&g->instrs[i]);
  free(g->values);
  free(g->nodes);
  free(g->instrs);
  free(g->inputs);
  free(g->outputs);
  free(g->producer);
  for (int i = 0; i < g->n_opsets; i++) free(g->opset_domains[i]);
  free(g->opset_domains);
  free(g->opset_versions);
  free(g->name_table);
  free(g);
}

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ULL;
  return h;
}

static int table_insert(int *table, int cap, const oc_value_t *values, int v) {
  uint64_t h = hash_str(values[v].name);
  for (int k = 0; k < cap; k++) {
    int slot = (int)((h + (uint64_t)k) & (uint64_t)(cap - 1));
    if (table[slot] < 0) {
      table[slot] = v;
      return 0;
    }
  }
  return -1;
}

static int grow_table(oc_graph_t *g) {
  int cap = g->name_cap ? g->name_cap * 2 : 256;
  int *t = malloc(sizeof(int) * (size_t)cap);
  if (!t) return -1;
  for (int i = 0; i < cap; i++) t[i] = -1;
  for (int v = 0; v < g->n_values; v++) table_insert(t, cap, g->values, v);
  free(g->name_table);
  g->name_table = t;
  g->name_cap = cap;
  return 0;
}

int oc_graph_find(const oc_graph_t *g, const char *name) {
  if (!g->name_cap) return -1;
  uint64_t h = hash_str(name);
  for (int k = 0; k < g->name_cap; k++) {
    int slot = (int)((h + (uint64_t)k) & (uint64_t)(g->name_cap - 1));
    int v = g->name_table[slot];
    if (v < 0) return -1;
    if (strcmp(g->values[v].name, name) == 0) return v;
  }
  return -1;
}

static int add_value(oc_graph_t *g, char *owned_name) {
  if (g->n_values == g->cap_values) {
    int cap = g->cap_values ? g->cap_values * 2 : 64;
    oc_value_t *nv = realloc(g->values, sizeof(oc_value_t) * (size_t)cap);
    if (!nv) return -1;
    g->values = nv;
    g->cap_values = cap;
  }
  if ((g->n_values + 1) * 2 > g->name_cap && grow_table(g) != 0) return -1;
  int v = g->n_values;
  memset(&g->values[v], 0, sizeof(oc_value_t));
  g->values[v].name = owned_name;
  g->values[v].producer = -1;
  g->n_values++;
  table_insert(g->name_table, g->name_cap, g->values, v);
  return v;
}

int oc_graph_value(oc_graph_t *g, const char *name) {
  int v = oc_graph_find(g, name);
  if (v >= 0) return v;
  char *copy = oc_strdup(name);
  if (!copy) return -1;
  v = add_value(g, copy);
  if (v < 0) free(copy);
  return v;
}

int oc_graph_new_value(oc_graph_t *g, const char *hint) {
  size_t n = strlen(hint) + 32;
  char *name = malloc(n);
  if (!name) return -1;
  for (int k = g->n_values;; k++) {
    snprintf(name, n, "%s:%d", hint, k);
    if (oc_graph_find(g, name) < 0) break;
  }
  int v = add_value(g, name);
  if (v < 0) free(name);
  return v;
}

oc_status_t oc_value_set_const(oc_graph_t *g, int v, int dtype, int rank, const int64_t *dims,
                               const void *data) {
  oc_value_t *val = &g->values[v];
  oc_tensor_t t = {.dtype = dtype, .rank = rank};
  if (rank < 0 || rank > OC_MAX_RANK)
    return oc_make_status(OC_STATUS_RESOURCE_LIMIT, "value '%s': rank %d exceeds %d", val->name,
                          rank, OC_MAX_RANK);
  for (int i = 0; i < rank; i++) t.dims[i] = dims[i];
  oc_status_t s = oc_check_type(&t, "constant");
  if (s) return oc_status_wrap(s, "value '%s': ", val->name);
  size_t bytes = oc_tensor_bytes(&t);
  void *copy = malloc(bytes ? bytes : 1);
  if (!copy)
    return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory for a %zu-byte constant '%s'",
                          bytes, val->name);
  if (data)
    memcpy(copy, data, bytes);
  else
    memset(copy, 0, bytes);
  free(val->type.data);
  val->type = t;
  val->type.data = copy;
  val->known = 1;
  val->kind = OC_VALUE_CONST;
  val->foldable = 1;
  return OC_OK;
}

oc_node_t *oc_graph_add_node(oc_graph_t *g) {
  if (g->n_nodes == g->cap_nodes) {
    int cap = g->cap_nodes ? g->cap_nodes * 2 : 64;
    oc_node_t *nn = realloc(g->nodes, sizeof(oc_node_t) * (size_t)cap);
    if (!nn) return NULL;
    g->nodes = nn;
    g->cap_nodes = cap;
  }
  oc_node_t *n = &g->nodes[g->n_nodes++];
  memset(n, 0, sizeof(*n));
  return n;
}

static void *dup_array(const void *src, size_t bytes) {
  void *d = malloc(bytes ? bytes : 1);
  if (d && bytes) memcpy(d, src, bytes);
  return d;
}

int oc_graph_add_instr(oc_graph_t *g, int op, int n_in, const int *in, int n_out, const int *out,
                       const int64_t *ints, int n_ints, const float *floats, int n_floats,
                       const char *node) {
  if (g->n_instrs == g->cap_instrs) {
    int cap = g->cap_instrs ? g->cap_instrs * 2 : 64;
    oc_instr_t *ni = realloc(g->instrs, sizeof(oc_instr_t) * (size_t)cap);
    if (!ni) return -1;
    g->instrs = ni;
    g->cap_instrs = cap;
  }
  oc_instr_t ins = {.op = op, .n_in = n_in, .n_out = n_out, .n_ints = n_ints,
                    .n_floats = n_floats, .workspace = -1};
  ins.in = dup_array(in, sizeof(int) * (size_t)n_in);
  ins.out = dup_array(out, sizeof(int) * (size_t)n_out);
  ins.ints = dup_array(ints, sizeof(int64_t) * (size_t)n_ints);
  ins.floats = dup_array(floats, sizeof(float) * (size_t)n_floats);
  ins.node = oc_strdup(node ? node : "");
  if (!ins.in || !ins.out || !ins.ints || !ins.floats || !ins.node) {
    free_instr(&ins);
    return -1;
  }
  g->instrs[g->n_instrs] = ins;
  return g->n_instrs++;
}

void oc_graph_keep_instrs(oc_graph_t *g, const char *keep) {
  int kept = 0;
  for (int i = 0; i < g->n_instrs; i++) {
    oc_instr_t *ins = &g->instrs[i];
    if (keep[i]) {
      g->instrs[kept++] = *ins;
      continue;
    }
    for (int k = 0; k < ins->n_out; k++) g->values[ins->out[k]].producer = -1;
    free_instr(ins);
  }
  g->n_instrs = kept;
  for (int i = 0; i < g->n_instrs; i++)
    for (int k = 0; k < g->instrs[i].n_out; k++) g->values[g->instrs[i].out[k]].producer = i;
}

const oc_attr_t *oc_node_attr(const oc_node_t *n, const char *name) {
  for (int i = 0; i < n->n_attrs; i++)
    if (strcmp(n->attrs[i].name, name) == 0) return &n->attrs[i];
  return NULL;
}
