#!/usr/bin/env python3
"""Writes fuzz/protobuf.dict (libFuzzer/AFL dictionary) to stdout.

  python3 fuzz/gen_dict.py > fuzz/protobuf.dict

Entries: the field tags (wire bytes) of every field of ONNX's onnx.proto
(ModelProto, GraphProto, NodeProto, TensorProto, ...) and of the plan schema
(schemas/plan.proto), packed variants of repeated numeric fields; a few whole
fields (data types, opset imports, dims); the ONNX op types the compiler
imports (compiler/ops/onnx_ops.h) bare and as a NodeProto.op_type field;
common attribute names; the magic numbers and names of the plan, checkpoint
and .npy formats.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ONNX_PROTO = os.environ.get("ONNX_PROTO", "/usr/include/onnx/onnx.proto")

VARINT = {"int32", "int64", "uint32", "uint64", "sint32", "sint64", "bool"}
FIXED32 = {"float", "fixed32", "sfixed32"}
FIXED64 = {"double", "fixed64", "sfixed64"}


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def esc(b):
    return "".join(chr(c) if 0x20 <= c < 0x7F and chr(c) not in '"\\' else "\\x%02x" % c
                   for c in b)


entries = []
seen = set()


def add(name, value):
    if isinstance(value, str):
        value = value.encode()
    if value in seen or not value:
        return
    seen.add(value)
    name = re.sub(r"[^A-Za-z0-9_]", "_", name)
    entries.append('%s="%s"' % (name, esc(value)))


def proto_fields(path, prefix):
    text = open(path).read()
    text = re.sub(r"//[^\n]*", "", text)
    enums = set(re.findall(r"\benum\s+(\w+)", text))
    stack = []
    pending = None
    for tok in re.finditer(r"\b(message|enum|oneof)\s+(\w+)\s*\{|\{|\}|"
                           r"(?:(optional|repeated|required)\s+)?([\w.]+)\s+(\w+)\s*=\s*(\d+)"
                           r"\s*(\[[^\]]*\])?\s*;", text):
        if tok.group(1):
            stack.append((tok.group(1), tok.group(2)))
            continue
        s = tok.group(0)
        if s == "{":
            stack.append(("block", ""))
            continue
        if s == "}":
            if stack:
                stack.pop()
            continue
        kinds = [k for k, _ in stack]
        if not kinds or kinds[-1] == "enum" or "message" not in kinds:
            continue
        msg = "_".join(n for k, n in stack if k == "message")
        label, typ, field, num = tok.group(3), tok.group(4), tok.group(5), int(tok.group(6))
        base = typ.split(".")[-1]
        if base in VARINT or base in enums:
            wt = 0
        elif base in FIXED32:
            wt = 5
        elif base in FIXED64:
            wt = 1
        else:
            wt = 2
        name = "%s_%s_%s" % (prefix, msg, field)
        add(name, varint(num << 3 | wt))
        if label == "repeated" and wt != 2:
            add(name + "_packed", varint(num << 3 | 2))


proto_fields(ONNX_PROTO, "onnx")
proto_fields(os.path.join(ROOT, "schemas", "plan.proto"), "plan")

# Whole small fields.
dtypes = {"float": 1, "uint8": 2, "int8": 3, "uint16": 4, "int16": 5, "int32": 6, "int64": 7,
          "string": 8, "bool": 9, "float16": 10, "double": 11, "uint32": 12, "uint64": 13,
          "complex64": 14, "complex128": 15, "bfloat16": 16, "float8e4m3fn": 17}
for n, v in dtypes.items():
    add("onnx_TensorProto_data_type_" + n, bytes([0x10, v]))
    add("onnx_TypeProto_Tensor_elem_type_" + n, bytes([0x08, v]))
for v in (7, 9, 11, 13, 14, 15, 17, 18):
    add("onnx_opset_import_%d" % v, b"\x42\x04\x0a\x00\x10" + bytes([v]))
    add("onnx_ir_version_%d" % v, bytes([0x08, v]))
for v in (0, 1, 2, 3, 4, 8, 16, 64, 127, 128, 255, 1024, 65535, 1 << 31):
    add("varint_%d" % v, varint(v))
add("varint_max_u64", b"\xff" * 9 + b"\x01")
add("varint_minus_1", b"\xff" * 9 + b"\x01")
add("float_one", b"\x00\x00\x80\x3f")
add("float_nan", b"\x00\x00\xc0\x7f")
add("float_inf", b"\x00\x00\x80\x7f")
add("float_neg_inf", b"\x00\x00\x80\xff")
add("float_denorm", b"\x01\x00\x00\x00")
add("attr_type_float", b"\xa0\x01\x01")
add("attr_type_int", b"\xa0\x01\x02")
add("attr_type_string", b"\xa0\x01\x03")
add("attr_type_tensor", b"\xa0\x01\x04")
add("attr_type_graph", b"\xa0\x01\x05")
add("attr_type_floats", b"\xa0\x01\x06")
add("attr_type_ints", b"\xa0\x01\x07")
add("attr_type_strings", b"\xa0\x01\x08")
add("data_location_external", b"\x70\x01")
add("plan_region_constant", b"\x20\x01")
add("plan_region_state", b"\x20\x02")

# Op types the compiler imports.
ops = []
for line in open(os.path.join(ROOT, "compiler", "ops", "onnx_ops.h")):
    m = re.match(r'\s*OC_ONNX_OP\("([^"]*)",\s*"([^"]+)"', line)
    if m and m.group(2) not in ops:
        ops.append(m.group(2))
for op in ops + ["If", "Loop", "Scan", "SequenceConstruct", "Acos", "Unknown"]:
    add("op_" + op, op)
    add("op_field_" + op, b"\x22" + varint(len(op)) + op.encode())

for w in ["ai.onnx", "ai.onnx.ml", "com.microsoft", "ai.onnx.preview.training", "location",
          "offset", "length", "checksum", "axis", "axes", "perm", "shape", "kernel_shape",
          "strides", "pads", "dilations", "group", "auto_pad", "SAME_UPPER", "SAME_LOWER",
          "VALID", "NOTSET", "ceil_mode", "count_include_pad", "epsilon", "momentum",
          "training_mode", "keepdims", "noop_with_empty_axes", "select_last_index", "transA",
          "transB", "alpha", "beta", "gamma", "to", "value", "value_float", "value_floats",
          "value_int", "value_ints", "mode", "split", "num_outputs", "allowzero",
          "stash_type", "reduction", "ignore_index", "seed", "ratio", "equation", "largest",
          "sorted", "coordinate_transformation_mode", "nearest_mode", "cubic_coeff_a",
          "blocksize", "batch_dims", "start", "end", "input", "output", "x", "y", "batch",
          "N"]:
    add("str_" + w, w)

# The plan, checkpoint and .npy formats.
add("plan_magic", "ONNXCPLN")
add("checkpoint_magic", "ONNXCCKP")
add("plan_version_1", b"\x01\x00\x00\x00")
add("plan_header_bytes", b"\x80\x00\x00\x00")
for w in ["embed", "train_step", "opt:step", "opt:lr", "opt:base_lr", "grad:", "opt:",
          ":momentum_buffer", ":exp_avg", ":exp_avg_sq", "onnx:source_model"]:
    add("plan_name_" + w, w)
add("npy_magic_v1", b"\x93NUMPY\x01\x00")
add("npy_magic_v2", b"\x93NUMPY\x02\x00")
add("npy_magic_v3", b"\x93NUMPY\x03\x00")
for w in ["'descr': ", "'fortran_order': ", "'shape': ", "\"descr\"", "False", "True",
          "<f4", "<f8", "<f2", "<i8", "<i4", "<i2", "|i1", "|u1", "|b1", "<u2", "<u4", "<u8",
          "<c8", "<c16", ">f4", "=f4", "|O", "<U1", "(1,)", "()", "(2, 3)", "(0,)", ", ",
          "}\n", "{"]:
    add("npy_" + w, w)

sys.stdout.write("# Generated by fuzz/gen_dict.py: protobuf tags of onnx.proto and\n"
                 "# schemas/plan.proto, op types, attribute names, file magics.\n")
sys.stdout.write("\n".join(entries) + "\n")
