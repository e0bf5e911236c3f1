/*
 * The compiler's IR.
 *
 * A graph holds values (every tensor: graph inputs, initializers, node
 * outputs, compiler temporaries), the imported ONNX nodes (as they were in
 * the model), and the program: the list of runtime instructions that lowering
 * produces from the nodes. Autodiff, memory planning and the plan writer work
 * on the program, so forward and backward instructions are alike to them.
 *
 * Values are referred to by index (int); -1 means "absent".
 */
#ifndef ONNXC_IR_H
#define ONNXC_IR_H

#include "oc_ops.h"

typedef enum oc_value_kind_e {
  OC_VALUE_TEMP = 0,  /* computed at run time */
  OC_VALUE_INPUT = 1, /* bound by the caller */
  OC_VALUE_CONST = 2, /* known at compile time (initializer, Constant, folded) */
  OC_VALUE_STATE = 3, /* persistent and mutable per context; type.data is its initial value */
} oc_value_kind_t;

typedef struct oc_value_s {
  char *name;
  oc_tensor_t type;     /* dtype, rank, dims; type.data = constant bytes (CONST) */
  int known;            /* type is inferred */
  oc_value_kind_t kind;
  int is_initializer;   /* came from graph.initializer */
  int foldable;         /* CONST whose value may be folded into others (not a trained parameter) */
  int producer;         /* instruction index in the program, or -1 */
  char *dim_params[OC_MAX_RANK]; /* symbolic dims of a graph input (NULL when fixed) */
} oc_value_t;

/* ONNX AttributeProto.AttributeType numbers. */
typedef enum oc_attr_type_e {
  OC_ATTR_FLOAT = 1,
  OC_ATTR_INT = 2,
  OC_ATTR_STRING = 3,
  OC_ATTR_TENSOR = 4,
  OC_ATTR_GRAPH = 5,
  OC_ATTR_FLOATS = 6,
  OC_ATTR_INTS = 7,
  OC_ATTR_STRINGS = 8,
} oc_attr_type_t;

typedef struct oc_attr_s {
  char *name;
  int type;
  int64_t i;
  float f;
  char *s;
  int64_t *ints;
  int n_ints;
  float *floats;
  int n_floats;
  int tensor; /* value index of a TENSOR attribute (a CONST value), else -1 */
} oc_attr_t;

typedef struct oc_node_s {
  char *name;
  char *op_type;
  char *domain; /* "" for the default ONNX domain */
  int n_in, n_out, n_attrs;
  int *in;  /* value indices; -1 for an omitted optional input */
  int *out; /* value indices; -1 for an omitted optional output */
  oc_attr_t *attrs;
} oc_node_t;

typedef struct oc_instr_s {
  int op; /* oc_op_t */
  int n_in, n_out, n_ints, n_floats;
  int *in; /* value indices, -1 absent */
  int *out;
  int64_t *ints;
  float *floats;
  size_t workspace_bytes;
  int workspace; /* value index of the scratch tensor (set by the memory planner), or -1 */
  char *node;    /* the ONNX node it came from */
} oc_instr_t;

typedef struct oc_graph_s {
  oc_value_t *values;
  int n_values, cap_values;
  oc_node_t *nodes;
  int n_nodes, cap_nodes;
  oc_instr_t *instrs;
  int n_instrs, cap_instrs;
  int *inputs; /* graph inputs that are not initializers */
  int n_inputs;
  int *outputs;
  int n_outputs;
  int64_t opset;   /* default-domain opset version; 0 when the model imports none */
  int n_opsets;    /* every opset_import entry, for messages about other domains */
  char **opset_domains;
  int64_t *opset_versions;
  int64_t ir_version;
  char *producer;
  /* name -> value index, open addressing */
  int *name_table;
  int name_cap;
} oc_graph_t;

oc_graph_t *oc_graph_new(void);
void oc_graph_free(oc_graph_t *g);

/* Value lookup/creation by name. oc_graph_value returns the index of the value
 * named |name|, creating a TEMP value if needed (-1 on out of memory). */
int oc_graph_find(const oc_graph_t *g, const char *name);
int oc_graph_value(oc_graph_t *g, const char *name);
/* A fresh value with a unique name derived from |hint|. */
int oc_graph_new_value(oc_graph_t *g, const char *hint);

/* Makes value |v| a compile-time constant owning a copy of |data| (may be
 * NULL to zero-fill). */
oc_status_t oc_value_set_const(oc_graph_t *g, int v, int dtype, int rank, const int64_t *dims,
                               const void *data);

/* Appends an empty node; fields are filled by the caller. */
oc_node_t *oc_graph_add_node(oc_graph_t *g);

/* Appends an instruction (copies the arrays). Returns its index or -1. */
int oc_graph_add_instr(oc_graph_t *g, int op, int n_in, const int *in, int n_out, const int *out,
                       const int64_t *ints, int n_ints, const float *floats, int n_floats,
                       const char *node);

/* Removes every instruction i with keep[i] == 0 (its outputs lose their
 * producer) and renumbers the producers of the others. */
void oc_graph_keep_instrs(oc_graph_t *g, const char *keep);

/* Attribute lookup on a node. */
const oc_attr_t *oc_node_attr(const oc_node_t *n, const char *name);

#endif
