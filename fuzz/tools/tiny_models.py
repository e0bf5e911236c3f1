#!/usr/bin/env python3
"""Writes small hand-made ONNX training graphs (no onnx package needed) to DIR:

  python3 fuzz/tools/tiny_models.py DIR

  tiny_mlp_train.onnx    a [4,8] -> Gemm(W,B) -> Relu -> e; loss = ReduceMean(e*e)
  tiny_cnn_bn_train.onnx x [2,2,5,5] -> Conv -> BatchNormalization (training mode,
                         running statistics as outputs) -> Relu -> GlobalAveragePool
                         -> Flatten -> e; loss = ReduceMean(e*e)

Seeds for fuzz_compile (--train flags) and, compiled with --train, for
fuzz_plan: a training plan of a few KB (state, train_step and embed entries,
the source model) instead of the reference models' hundreds of KB.
"""
import os
import struct
import sys


def wv(n):
    if n < 0:
        n += 1 << 64
    o = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            o.append(b | 0x80)
        else:
            o.append(b)
            return bytes(o)


def fld(f, v):
    if isinstance(v, str):
        v = v.encode()
    return wv(f << 3 | 2) + wv(len(v)) + v


def vint(f, v):
    return wv(f << 3) + wv(v)


def tensor(name, dims, values):
    raw = struct.pack("<%df" % len(values), *values)
    return b"".join(vint(1, d) for d in dims) + vint(2, 1) + fld(8, name) + fld(9, raw)


def attr_i(name, i):
    return fld(1, name) + vint(3, i) + wv(20 << 3) + wv(2)


def attr_f(name, f):
    return fld(1, name) + wv(2 << 3 | 5) + struct.pack("<f", f) + wv(20 << 3) + wv(1)


def attr_ints(name, ints):
    return fld(1, name) + b"".join(vint(8, i) for i in ints) + wv(20 << 3) + wv(7)


def node(op, ins, outs, attrs=(), name=""):
    return (b"".join(fld(1, i) for i in ins) + b"".join(fld(2, o) for o in outs) +
            fld(3, name or outs[0] + "_node") + fld(4, op) + b"".join(fld(5, a) for a in attrs))


def vinfo(name, dims):
    shape = b"".join(fld(1, vint(1, d)) for d in dims)
    return fld(1, name) + fld(2, fld(1, vint(1, 1) + fld(2, shape)))


def model(nodes, inits, inputs, outputs, opset=13):
    g = (b"".join(fld(1, n) for n in nodes) + fld(2, "tiny") +
         b"".join(fld(5, t) for t in inits) + b"".join(fld(11, i) for i in inputs) +
         b"".join(fld(12, o) for o in outputs))
    return vint(1, 7) + fld(2, "onnxc-fuzz") + fld(8, fld(1, "") + vint(2, opset)) + fld(7, g)


def vals(n, seed):
    return [((i * 2654435761 + seed) % 1000) / 1000.0 - 0.5 for i in range(n)]


def mlp():
    nodes = [node("Gemm", ["a", "W", "B"], ["h"]),
             node("Relu", ["h"], ["e"]),
             node("Mul", ["e", "e"], ["sq"]),
             node("ReduceMean", ["sq"], ["loss"], [attr_i("keepdims", 0)])]
    inits = [tensor("W", [8, 4], vals(32, 1)), tensor("B", [4], vals(4, 2))]
    return model(nodes, inits, [vinfo("a", [4, 8])], [vinfo("loss", []), vinfo("e", [4, 4])])


def cnn_bn():
    nodes = [node("Conv", ["x", "K", "KB"], ["c"], [attr_ints("kernel_shape", [3, 3]),
                                                    attr_ints("pads", [1, 1, 1, 1])]),
             node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"],
                  ["bn", "mean_out", "var_out"],
                  [attr_f("epsilon", 1e-5), attr_f("momentum", 0.9), attr_i("training_mode", 1)]),
             node("Relu", ["bn"], ["r"]),
             node("GlobalAveragePool", ["r"], ["p"]),
             node("Flatten", ["p"], ["e"]),
             node("Mul", ["e", "e"], ["sq"]),
             node("ReduceMean", ["sq"], ["loss"], [attr_i("keepdims", 0)])]
    inits = [tensor("K", [3, 2, 3, 3], vals(54, 3)), tensor("KB", [3], vals(3, 4)),
             tensor("gamma", [3], [1.0, 1.0, 1.0]), tensor("beta", [3], [0.0, 0.0, 0.0]),
             tensor("mean", [3], [0.0, 0.0, 0.0]), tensor("var", [3], [1.0, 1.0, 1.0])]
    return model(nodes, inits, [vinfo("x", [2, 2, 5, 5])],
                 [vinfo("loss", []), vinfo("e", [2, 3])], opset=14)


if __name__ == "__main__":
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, data in [("tiny_mlp_train", mlp()), ("tiny_cnn_bn_train", cnn_bn())]:
        with open(os.path.join(out, name + ".onnx"), "wb") as f:
            f.write(data)
