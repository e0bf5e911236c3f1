/*
 * ONNX import: ModelProto (protobuf-c) -> the compiler IR. This is the only
 * compiler file that reads protobuf-c's ONNX model types; tensors decode
 * through runtime/tensor_file.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import.h"
#include "onnx_wire.h"
#include "tensor_file.h"

#define ERR(code, ...) oc_make_status(code, __VA_ARGS__)

static oc_status_t oom(void) { return ERR(OC_STATUS_OUT_OF_MEMORY, "out of memory importing the model"); }

static const char *or_empty(const char *s) { return s ? s : ""; }

/* Makes value |v| a constant holding |ht| (consumed). */
static oc_status_t take_host_tensor(oc_graph_t *g, int v, oc_host_tensor_t *ht, const char *what) {
  if (!oc_dtype_size(ht->dtype)) {
    oc_status_t s = ERR(OC_STATUS_UNSUPPORTED, "%s '%s' has dtype %s, which onnxc does not compute",
                        what, g->values[v].name, oc_dtype_name(ht->dtype));
    oc_host_tensor_free(ht);
    return s;
  }
  oc_status_t s = oc_value_set_const(g, v, ht->dtype, ht->rank, ht->dims, ht->data);
  oc_host_tensor_free(ht);
  return s;
}

static oc_status_t import_initializers(oc_graph_t *g, const Onnx__GraphProto *gp,
                                       const char *base_dir, const oc_import_limits_t *lim) {
  if (gp->n_sparse_initializer > 0)
    return ERR(OC_STATUS_UNSUPPORTED, "sparse initializers are not supported ('%s')",
               or_empty(gp->sparse_initializer[0]->values ? gp->sparse_initializer[0]->values->name : NULL));
  uint64_t total = 0;
  for (size_t i = 0; i < gp->n_initializer; i++) {
    const Onnx__TensorProto *tp = gp->initializer[i];
    const char *name = or_empty(tp->name);
    if (!name[0]) return ERR(OC_STATUS_CORRUPT, "initializer %zu has no name", i);
    if (oc_graph_find(g, name) >= 0)
      return ERR(OC_STATUS_CORRUPT, "initializer '%s' is defined twice", name);
    int v = oc_graph_value(g, name);
    if (v < 0) return oom();
    oc_host_tensor_t ht;
    oc_status_t s = oc_tensor_from_proto(tp, base_dir, &ht);
    if (s) return oc_status_wrap(s, "initializer '%s': ", name);
    if (oc_add_overflows(total, ht.bytes, &total) || total > lim->max_total_bytes) {
      oc_host_tensor_free(&ht);
      return ERR(OC_STATUS_RESOURCE_LIMIT,
                 "initializers exceed %llu bytes in total (at '%s'); raise the limit with --max-memory",
                 (unsigned long long)lim->max_total_bytes, name);
    }
    OC_RETURN_IF_ERROR(take_host_tensor(g, v, &ht, "initializer"));
    g->values[v].is_initializer = 1;
  }
  return OC_OK;
}

/* Reads a ValueInfo's tensor type into value |v| (dims may be symbolic). */
static oc_status_t import_value_type(oc_graph_t *g, int v, const Onnx__ValueInfoProto *vi) {
  oc_value_t *val = &g->values[v];
  const Onnx__TypeProto *tp = vi->type;
  if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
    return ERR(OC_STATUS_UNSUPPORTED, "graph input '%s' is not a tensor (sequences, maps and "
               "optionals are not supported)", val->name);
  const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
  val->type.dtype = tt->has_elem_type ? tt->elem_type : 0;
  if (!tt->shape)
    return ERR(OC_STATUS_INVALID_ARGUMENT, "graph input '%s' has no shape; onnxc needs static "
               "shapes (re-export with a fixed shape)", val->name);
  if (tt->shape->n_dim > OC_MAX_RANK)
    return ERR(OC_STATUS_RESOURCE_LIMIT, "graph input '%s' has rank %zu; the limit is %d",
               val->name, tt->shape->n_dim, OC_MAX_RANK);
  val->type.rank = (int)tt->shape->n_dim;
  for (size_t d = 0; d < tt->shape->n_dim; d++) {
    const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[d];
    if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
      if (dim->dim_value < 0)
        return ERR(OC_STATUS_CORRUPT, "graph input '%s': dimension %zu is %lld", val->name, d,
                   (long long)dim->dim_value);
      val->type.dims[d] = dim->dim_value;
    } else {
      const char *p = dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
                          ? dim->dim_param : NULL;
      /* An unnamed unknown dim gets a name users can pass to --dim. */
      char fallback[64];
      if (!p || !p[0]) {
        snprintf(fallback, sizeof fallback, "%s_dim%zu", val->name, d);
        p = fallback;
      }
      val->dim_params[d] = oc_strdup(p);
      if (!val->dim_params[d]) return oom();
      val->type.dims[d] = -1;
    }
  }
  return OC_OK;
}

static oc_status_t import_attr(oc_graph_t *g, oc_node_t *n, oc_attr_t *a,
                               const Onnx__AttributeProto *ap, const char *base_dir) {
  a->tensor = -1;
  a->name = oc_strdup(or_empty(ap->name));
  if (!a->name) return oom();
  int type = ap->has_type ? (int)ap->type : 0;
  /* Old exporters leave |type| unset; infer it from the populated field. */
  if (!type) {
    if (ap->n_ints) type = OC_ATTR_INTS;
    else if (ap->n_floats) type = OC_ATTR_FLOATS;
    else if (ap->t) type = OC_ATTR_TENSOR;
    else if (ap->g) type = OC_ATTR_GRAPH;
    else if (ap->has_s) type = OC_ATTR_STRING;
    else if (ap->has_f) type = OC_ATTR_FLOAT;
    else if (ap->has_i) type = OC_ATTR_INT;
  }
  a->type = type;
  switch (type) {
    case OC_ATTR_FLOAT: a->f = ap->f; break;
    case OC_ATTR_INT: a->i = ap->i; break;
    case OC_ATTR_STRING:
      a->s = malloc(ap->s.len + 1);
      if (!a->s) return oom();
      if (ap->s.len) memcpy(a->s, ap->s.data, ap->s.len);
      a->s[ap->s.len] = 0;
      break;
    case OC_ATTR_INTS:
      a->n_ints = (int)ap->n_ints;
      a->ints = malloc(sizeof(int64_t) * (ap->n_ints + 1));
      if (!a->ints) return oom();
      if (ap->n_ints) memcpy(a->ints, ap->ints, sizeof(int64_t) * ap->n_ints);
      break;
    case OC_ATTR_FLOATS:
      a->n_floats = (int)ap->n_floats;
      a->floats = malloc(sizeof(float) * (ap->n_floats + 1));
      if (!a->floats) return oom();
      if (ap->n_floats) memcpy(a->floats, ap->floats, sizeof(float) * ap->n_floats);
      break;
    case OC_ATTR_TENSOR: {
      if (!ap->t) return ERR(OC_STATUS_CORRUPT, "attribute '%s' has no tensor", a->name);
      char hint[256];
      snprintf(hint, sizeof hint, "%s:%s", n->name, a->name);
      int v = oc_graph_new_value(g, hint);
      if (v < 0) return oom();
      oc_host_tensor_t ht;
      oc_status_t s = oc_tensor_from_proto(ap->t, base_dir, &ht);
      if (s) return oc_status_wrap(s, "attribute '%s': ", a->name);
      OC_RETURN_IF_ERROR(take_host_tensor(g, v, &ht, "attribute tensor"));
      a->tensor = v;
      break;
    }
    default:
      /* Graphs, sparse tensors, lists of those: kept as an opaque marker;
       * the op's lowering refuses what it does not understand. */
      break;
  }
  return OC_OK;
}

static oc_status_t import_nodes(oc_graph_t *g, const Onnx__GraphProto *gp, const char *base_dir,
                                const oc_import_limits_t *lim) {
  if (gp->n_node > lim->max_nodes)
    return ERR(OC_STATUS_RESOURCE_LIMIT, "the graph has %zu nodes; the limit is %llu (--max-nodes)",
               gp->n_node, (unsigned long long)lim->max_nodes);
  for (size_t i = 0; i < gp->n_node; i++) {
    const Onnx__NodeProto *np = gp->node[i];
    oc_node_t *n = oc_graph_add_node(g);
    if (!n) return oom();
    const char *op = or_empty(np->op_type);
    if (np->name && np->name[0]) {
      n->name = oc_strdup(np->name);
    } else {
      char buf[128];
      snprintf(buf, sizeof buf, "%.64s_%zu", op[0] ? op : "node", i);
      n->name = oc_strdup(buf);
    }
    n->op_type = oc_strdup(op);
    const char *dom = or_empty(np->domain);
    n->domain = oc_strdup(strcmp(dom, "ai.onnx") == 0 ? "" : dom);
    if (!n->name || !n->op_type || !n->domain) return oom();
    if (!op[0]) return ERR(OC_STATUS_CORRUPT, "node %zu ('%s') has no op_type", i, n->name);
    if (np->n_input > OC_MAX_OP_INPUTS * 16 || np->n_output > OC_MAX_OP_OUTPUTS)
      return ERR(OC_STATUS_RESOURCE_LIMIT, "node '%s' has too many inputs or outputs", n->name);
    n->in = malloc(sizeof(int) * (np->n_input + 1));
    n->out = malloc(sizeof(int) * (np->n_output + 1));
    n->attrs = calloc(np->n_attribute + 1, sizeof(oc_attr_t));
    if (!n->in || !n->out || !n->attrs) return oom();
    for (size_t k = 0; k < np->n_input; k++) {
      const char *name = or_empty(np->input[k]);
      n->in[k] = name[0] ? oc_graph_value(g, name) : -1;
      if (name[0] && n->in[k] < 0) return oom();
      n->n_in = (int)k + 1;
    }
    for (size_t k = 0; k < np->n_output; k++) {
      const char *name = or_empty(np->output[k]);
      n->out[k] = name[0] ? oc_graph_value(g, name) : -1;
      if (name[0] && n->out[k] < 0) return oom();
      n->n_out = (int)k + 1;
    }
    for (size_t k = 0; k < np->n_attribute; k++) {
      n->n_attrs = (int)k + 1;
      oc_status_t s = import_attr(g, n, &n->attrs[k], np->attribute[k], base_dir);
      if (s) return oc_status_wrap(s, "node '%s' (%s): ", n->name, op);
    }
  }
  return OC_OK;
}

void oc_import_limits_init(oc_import_limits_t *lim) {
  lim->max_nodes = 1 << 20;
  lim->max_total_bytes = (uint64_t)16 << 30;
  lim->max_depth = OC_ONNX_DEFAULT_MAX_DEPTH;
}

/* The nesting pre-scan (onnx_wire.h) before protobuf-c's recursive decoder
 * sees the bytes. */
static oc_status_t check_nesting(const void *data, size_t bytes, int max_depth) {
  oc_status_t s = oc_onnx_check_nesting(data, bytes, max_depth, " (raise it with --max-depth)");
  if (s && oc_status_code(s) == OC_STATUS_CORRUPT)
    return oc_status_wrap(s, "not a valid ONNX model: ");
  return s;
}

oc_status_t oc_import_model(const void *data, size_t bytes, const char *base_dir,
                            const oc_import_limits_t *limits, oc_graph_t **out) {
  *out = NULL;
  oc_import_limits_t deflim;
  if (!limits) {
    oc_import_limits_init(&deflim);
    limits = &deflim;
  }
  OC_RETURN_IF_ERROR(check_nesting(data, bytes, limits->max_depth));
  Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, bytes, data);
  if (!mp)
    return ERR(OC_STATUS_CORRUPT, "not a valid ONNX model: the %zu bytes do not decode as a "
               "ModelProto", bytes);
  oc_status_t s = OC_OK;
  oc_graph_t *g = oc_graph_new();
  if (!g) {
    onnx__model_proto__free_unpacked(mp, NULL);
    return oom();
  }
  g->ir_version = mp->ir_version;
  g->producer = oc_strdup(or_empty(mp->producer_name));
  g->opset = -1;
  g->opset_domains = calloc(mp->n_opset_import + 1, sizeof(char *));
  g->opset_versions = calloc(mp->n_opset_import + 1, sizeof(int64_t));
  if (!g->opset_domains || !g->opset_versions) {
    s = oom();
    goto done;
  }
  for (size_t i = 0; i < mp->n_opset_import; i++) {
    const char *d = or_empty(mp->opset_import[i]->domain);
    if (!d[0] || strcmp(d, "ai.onnx") == 0) g->opset = mp->opset_import[i]->version;
    g->opset_domains[i] = oc_strdup(d);
    g->opset_versions[i] = mp->opset_import[i]->version;
    g->n_opsets = (int)i + 1;
    if (!g->opset_domains[i]) {
      s = oom();
      goto done;
    }
  }
  const Onnx__GraphProto *gp = mp->graph;
  if (!gp) {
    s = ERR(OC_STATUS_CORRUPT, "the model has no graph");
    goto done;
  }
  if (g->opset < 0) {
    /* IR version 3+ lists opsets explicitly (a model may use other domains
     * only: 0 marks "none"); before that the default opset was 1. */
    g->opset = mp->ir_version >= 3 ? 0 : 1;
  }
  if ((s = import_initializers(g, gp, base_dir, limits))) goto done;
  g->inputs = malloc(sizeof(int) * (gp->n_input + 1));
  g->outputs = malloc(sizeof(int) * (gp->n_output + 1));
  if (!g->inputs || !g->outputs) {
    s = oom();
    goto done;
  }
  for (size_t i = 0; i < gp->n_input; i++) {
    const char *name = or_empty(gp->input[i]->name);
    if (!name[0]) {
      s = ERR(OC_STATUS_CORRUPT, "graph input %zu has no name", i);
      goto done;
    }
    int v = oc_graph_find(g, name);
    /* An input that is also an initializer: the initializer is its default
     * value; onnxc treats it as a constant (a weight), not a plan input. */
    if (v >= 0 && g->values[v].is_initializer) continue;
    if (v >= 0) {
      s = ERR(OC_STATUS_CORRUPT, "graph input '%s' is listed twice", name);
      goto done;
    }
    v = oc_graph_value(g, name);
    if (v < 0) {
      s = oom();
      goto done;
    }
    g->values[v].kind = OC_VALUE_INPUT;
    if ((s = import_value_type(g, v, gp->input[i]))) goto done;
    g->inputs[g->n_inputs++] = v;
  }
  if ((s = import_nodes(g, gp, base_dir, limits))) goto done;
  for (size_t i = 0; i < gp->n_output; i++) {
    const char *name = or_empty(gp->output[i]->name);
    int v = name[0] ? oc_graph_value(g, name) : -1;
    if (v < 0) {
      s = name[0] ? oom() : ERR(OC_STATUS_CORRUPT, "graph output %zu has no name", i);
      goto done;
    }
    g->outputs[g->n_outputs++] = v;
  }
done:
  onnx__model_proto__free_unpacked(mp, NULL);
  if (s) {
    oc_graph_free(g);
    return s;
  }
  *out = g;
  return OC_OK;
}

/* The model as the plan keeps it for export: initializers named in |omit|
 * lose their values (the plan's state holds them), the others are inlined
 * into raw_data (no external files to carry along). */
oc_status_t oc_import_model_skeleton(const void *data, size_t bytes, const char *base_dir,
                                     const char *const *omit, int n_omit, uint8_t **out,
                                     size_t *out_bytes) {
  *out = NULL;
  *out_bytes = 0;
  /* The caller imported these bytes with its own depth limit; the cap keeps
   * the decoder's recursion safe whatever that was. */
  OC_RETURN_IF_ERROR(check_nesting(data, bytes, OC_ONNX_MAX_DEPTH_CAP));
  Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, bytes, data);
  if (!mp) return ERR(OC_STATUS_CORRUPT, "not a valid ONNX model");
  oc_status_t s = OC_OK;
  /* Payloads we substitute are owned here, not by protobuf-c's tree. */
  oc_host_tensor_t *inlined = calloc(mp->graph ? mp->graph->n_initializer + 1 : 1,
                                     sizeof(oc_host_tensor_t));
  Onnx__TensorProto *saved = calloc(mp->graph ? mp->graph->n_initializer + 1 : 1,
                                    sizeof(Onnx__TensorProto));
  if (!inlined || !saved) s = oom();
  for (size_t i = 0; !s && mp->graph && i < mp->graph->n_initializer; i++) {
    Onnx__TensorProto *tp = mp->graph->initializer[i];
    int drop = 0;
    for (int k = 0; k < n_omit && !drop; k++) drop = tp->name && strcmp(tp->name, omit[k]) == 0;
    saved[i] = *tp;
    if (!drop) {
      s = oc_tensor_from_proto(tp, base_dir, &inlined[i]);
      if (s) break;
    }
    tp->n_float_data = tp->n_int32_data = tp->n_int64_data = tp->n_double_data = 0;
    tp->n_uint64_data = tp->n_string_data = tp->n_external_data = 0;
    tp->has_data_location = 0;
    tp->has_raw_data = !drop;
    tp->raw_data.data = drop ? NULL : inlined[i].data;
    tp->raw_data.len = drop ? 0 : inlined[i].bytes;
  }
  if (!s) {
    size_t n = onnx__model_proto__get_packed_size(mp);
    *out = malloc(n ? n : 1);
    if (!*out) {
      s = oom();
    } else {
      onnx__model_proto__pack(mp, *out);
      *out_bytes = n;
    }
  }
  /* Give protobuf-c back exactly what it allocated before freeing its tree. */
  for (size_t i = 0; mp->graph && saved && inlined && i < mp->graph->n_initializer; i++) {
    if (saved[i].base.descriptor) *mp->graph->initializer[i] = saved[i];
    oc_host_tensor_free(&inlined[i]);
  }
  free(inlined);
  free(saved);
  onnx__model_proto__free_unpacked(mp, NULL);
  return s;
}
