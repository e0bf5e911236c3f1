/*
 * The nesting pre-scan of serialized ONNX models (see onnx_wire.h).
 *
 * The wire format is a sequence of (tag, value) pairs; a length-delimited
 * value (wire type 2) is a string, bytes, a packed array or a nested
 * message, which only the schema tells apart. The table below is the
 * message-typed fields of onnx.proto (IR version 8, the schema protobuf-c's
 * generated decoder follows): fields it does not list are skipped by their
 * length, as unknown fields are by protobuf-c (which keeps their bytes and
 * never recurses into them).
 */
#include <stdlib.h>

#include "onnx_wire.h"

typedef enum msg_e {
  M_NONE = -1,
  M_MODEL,
  M_GRAPH,
  M_NODE,
  M_ATTRIBUTE,
  M_VALUE_INFO,
  M_TRAINING_INFO,
  M_TENSOR_ANNOTATION,
  M_TENSOR,
  M_SPARSE_TENSOR,
  M_TENSOR_SHAPE,
  M_TYPE,
  M_TYPE_TENSOR,
  M_TYPE_SEQUENCE,
  M_TYPE_MAP,
  M_TYPE_OPTIONAL,
  M_TYPE_SPARSE_TENSOR,
  M_FUNCTION,
  M_LEAF, /* a message without message fields (OperatorSetId, StringStringEntry, ...) */
} msg_t;

static const char *const msg_names[] = {
    "ModelProto",          "GraphProto",        "NodeProto",           "AttributeProto",
    "ValueInfoProto",      "TrainingInfoProto", "TensorAnnotation",    "TensorProto",
    "SparseTensorProto",   "TensorShapeProto",  "TypeProto",           "TypeProto.Tensor",
    "TypeProto.Sequence",  "TypeProto.Map",     "TypeProto.Optional",  "TypeProto.SparseTensor",
    "FunctionProto",       "message",
};

/* The message type of field |field| of message |m|, or M_NONE when the field
 * is not a message. */
static msg_t child(msg_t m, uint64_t field) {
  switch (m) {
    case M_MODEL:
      switch (field) {
        case 7: return M_GRAPH;          /* graph */
        case 8: return M_LEAF;           /* opset_import */
        case 14: return M_LEAF;          /* metadata_props */
        case 20: return M_TRAINING_INFO; /* training_info */
        case 25: return M_FUNCTION;      /* functions */
        default: return M_NONE;
      }
    case M_GRAPH:
      switch (field) {
        case 1: return M_NODE;               /* node */
        case 5: return M_TENSOR;             /* initializer */
        case 15: return M_SPARSE_TENSOR;     /* sparse_initializer */
        case 11: case 12: case 13: return M_VALUE_INFO; /* input, output, value_info */
        case 14: return M_TENSOR_ANNOTATION; /* quantization_annotation */
        default: return M_NONE;
      }
    case M_NODE:
      return field == 5 ? M_ATTRIBUTE : M_NONE; /* attribute */
    case M_ATTRIBUTE:
      switch (field) {
        case 5: case 10: return M_TENSOR;         /* t, tensors */
        case 6: case 11: return M_GRAPH;          /* g, graphs */
        case 22: case 23: return M_SPARSE_TENSOR; /* sparse_tensor, sparse_tensors */
        case 14: case 15: return M_TYPE;          /* tp, type_protos */
        default: return M_NONE;
      }
    case M_VALUE_INFO:
      return field == 2 ? M_TYPE : M_NONE; /* type */
    case M_TRAINING_INFO:
      switch (field) {
        case 1: case 2: return M_GRAPH; /* initialization, algorithm */
        case 3: case 4: return M_LEAF;  /* initialization_binding, update_binding */
        default: return M_NONE;
      }
    case M_TENSOR_ANNOTATION:
      return field == 2 ? M_LEAF : M_NONE; /* quant_parameter_tensor_names */
    case M_TENSOR:
      return field == 3 || field == 13 ? M_LEAF : M_NONE; /* segment, external_data */
    case M_SPARSE_TENSOR:
      return field == 1 || field == 2 ? M_TENSOR : M_NONE; /* values, indices */
    case M_TENSOR_SHAPE:
      return field == 1 ? M_LEAF : M_NONE; /* dim */
    case M_TYPE:
      switch (field) {
        case 1: return M_TYPE_TENSOR;
        case 4: return M_TYPE_SEQUENCE;
        case 5: return M_TYPE_MAP;
        case 8: return M_TYPE_SPARSE_TENSOR;
        case 9: return M_TYPE_OPTIONAL;
        default: return M_NONE;
      }
    case M_TYPE_TENSOR:
    case M_TYPE_SPARSE_TENSOR:
      return field == 2 ? M_TENSOR_SHAPE : M_NONE; /* shape */
    case M_TYPE_SEQUENCE:
    case M_TYPE_OPTIONAL:
      return field == 1 ? M_TYPE : M_NONE; /* elem_type */
    case M_TYPE_MAP:
      return field == 2 ? M_TYPE : M_NONE; /* value_type */
    case M_FUNCTION:
      switch (field) {
        case 7: return M_NODE; /* node */
        case 9: return M_LEAF; /* opset_import */
        default: return M_NONE;
      }
    default:
      return M_NONE;
  }
}

/* Reads a varint at |*pos| (before |end|); 0 when it is truncated or longer
 * than 10 bytes. */
static int read_varint(const uint8_t *b, size_t end, size_t *pos, uint64_t *out) {
  uint64_t v = 0;
  for (int i = 0; i < 10; i++) {
    if (*pos >= end) return 0;
    uint8_t c = b[(*pos)++];
    v |= (uint64_t)(c & 0x7f) << (7 * i);
    if (!(c & 0x80)) {
      *out = v;
      return 1;
    }
  }
  return 0;
}

typedef struct frame_s {
  size_t end; /* where the message's bytes end */
  msg_t type;
} frame_t;

oc_status_t oc_onnx_check_nesting(const void *data, size_t bytes, int max_depth,
                                  const char *hint) {
  const uint8_t *b = data;
  if (max_depth < 1) max_depth = 1;
  if (max_depth > OC_ONNX_MAX_DEPTH_CAP) max_depth = OC_ONNX_MAX_DEPTH_CAP;
  frame_t *stack = malloc(sizeof(frame_t) * ((size_t)max_depth + 1));
  if (!stack) return oc_make_status(OC_STATUS_OUT_OF_MEMORY, "out of memory");
  oc_status_t s = OC_OK;
  int top = 0;
  stack[0] = (frame_t){.end = bytes, .type = M_MODEL};
  size_t pos = 0;
  for (;;) {
    while (top > 0 && pos == stack[top].end) top--;
    if (top == 0 && pos == bytes) break;
    const size_t end = stack[top].end, at = pos;
    uint64_t tag, v;
    if (!read_varint(b, end, &pos, &tag) || (tag >> 3) == 0) {
      s = oc_make_status(OC_STATUS_CORRUPT, "byte %zu: not a protobuf field tag (in a %s)", at,
                         msg_names[stack[top].type]);
      break;
    }
    int ok = 1;
    switch (tag & 7) {
      case 0: ok = read_varint(b, end, &pos, &v); break;
      case 1: ok = end - pos >= 8; pos += ok ? 8 : 0; break;
      case 5: ok = end - pos >= 4; pos += ok ? 4 : 0; break;
      case 2: {
        ok = read_varint(b, end, &pos, &v) && v <= end - pos;
        if (!ok) break;
        msg_t c = child(stack[top].type, tag >> 3);
        if (c == M_NONE) {
          pos += (size_t)v;
          break;
        }
        if (top == max_depth) {
          s = oc_make_status(OC_STATUS_RESOURCE_LIMIT,
                             "byte %zu: a %s nested %d messages deep (subgraphs of If/Loop/Scan "
                             "nodes inside subgraphs, or nested sequence/map types); the limit is "
                             "%d%s",
                             at, msg_names[c], top + 1, max_depth, hint ? hint : "");
          break;
        }
        stack[++top] = (frame_t){.end = pos + (size_t)v, .type = c};
        break;
      }
      default: ok = 0; break; /* groups (3, 4) and 6, 7: protobuf-c refuses them too */
    }
    if (s) break;
    if (!ok) {
      s = oc_make_status(OC_STATUS_CORRUPT,
                         "byte %zu: field %llu (wire type %d) of a %s runs past the end of its "
                         "message or is malformed",
                         at, (unsigned long long)(tag >> 3), (int)(tag & 7),
                         msg_names[stack[top].type]);
      break;
    }
  }
  free(stack);
  return s;
}
