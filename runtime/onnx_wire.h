/*
 * A pre-scan of serialized ONNX models, run before protobuf-c decodes them.
 *
 * protobuf-c's unpack recurses once per nested message and has no depth
 * limit, and ONNX's schema is recursive (a GraphProto holds NodeProtos whose
 * AttributeProtos hold GraphProtos, If inside If inside If...; TypeProtos
 * nest through sequence, map and optional types). A model of a few thousand
 * such levels (tens of KB) would overflow the stack inside the decoder.
 * oc_onnx_check_nesting walks the wire format without recursion, following
 * every message-typed field of onnx.proto's ModelProto, and refuses nesting
 * deeper than a limit before anything is decoded. The default is the 100
 * levels that protobuf's C++ runtime (and so ONNX Runtime) allows.
 */
#ifndef ONNXC_ONNX_WIRE_H
#define ONNXC_ONNX_WIRE_H

#include <stddef.h>

#include "oc_base.h"

/* Message nesting allowed by default (ModelProto is level 0). */
#define OC_ONNX_DEFAULT_MAX_DEPTH 100
/* The most a caller may allow: the decoder's recursion stays well inside an
 * 8 MB stack at this depth. */
#define OC_ONNX_MAX_DEPTH_CAP 1000

/* Checks that the serialized ModelProto |data| nests messages at most
 * |max_depth| levels deep (clamped to [1, OC_ONNX_MAX_DEPTH_CAP]).
 * RESOURCE_LIMIT names the byte offset, the nested message and the limit,
 * followed by |hint| (how to raise it; may be ""); CORRUPT names the offset
 * of bytes that are not protobuf wire format (which protobuf-c would refuse
 * too). */
oc_status_t oc_onnx_check_nesting(const void *data, size_t bytes, int max_depth,
                                  const char *hint);

#endif
