#!/usr/bin/python3
"""Writes the models of tests/test_fuse.c (the compiler's LayerNorm and GELU fusions).

Run with Debian's python3-torch and python3-onnx:
    /usr/bin/python3 tests/data/fuse/make_fuse_models.py

  block/      a pre-norm MLP block exported by PyTorch at opset 13: LayerNorm
              (affine), Linear, GELU (erf), Linear, residual, LayerNorm without
              affine; expected output from PyTorch. Every LayerNorm and the
              GELU (with the Linear's bias) must fuse.
  forms/      hand-built spellings that must fuse as well: GELU as
              z * (1/sqrt 2) and as (z * 0.5) * (erf + 1), operands of the
              commutative ops swapped; expected output from numpy.
  near_miss/  hand-built chains that differ from the patterns in one place
              (reduced axis, exponent, constants, an intermediate that is also
              a graph output, a bias Add whose sum is read elsewhere); only the
              last GELU may fuse, and without its bias. Expected from numpy.
Each folder: model.onnx, test_data_set_0/input_0.pb, output_K.pb.
"""
import math
import os

import numpy as np
for k, v in (("float", float), ("int", int), ("bool", bool), ("object", object)):
    setattr(np, k, v)
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(11)
torch.manual_seed(11)


def save(name, proto, inputs, outputs):
    """Writes the test data of folder |name| (and its model, unless None)."""
    d = os.path.join(HERE, name)
    os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
    if proto is not None:
        onnx.checker.check_model(proto)
        onnx.save_model(proto, os.path.join(d, "model.onnx"))
    for i, (n, a) in enumerate(inputs):
        with open(os.path.join(d, "test_data_set_0", f"input_{i}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(a, n).SerializeToString())
    for i, (n, a) in enumerate(outputs):
        with open(os.path.join(d, "test_data_set_0", f"output_{i}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(a, n).SerializeToString())


# --- block: PyTorch's own export ---------------------------------------------------
class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = torch.nn.LayerNorm(24)
        self.fc1 = torch.nn.Linear(24, 40)
        self.fc2 = torch.nn.Linear(40, 24)
        self.norm2 = torch.nn.LayerNorm(24, elementwise_affine=False)
        with torch.no_grad():  # not the identity initialization
            self.norm.weight.uniform_(0.5, 1.5)
            self.norm.bias.uniform_(-0.5, 0.5)

    def forward(self, x):
        h = self.fc2(torch.nn.functional.gelu(self.fc1(self.norm(x))))
        return self.norm2(x + h)


block = Block().eval()
xb = (torch.randn(2, 5, 24) * 2 + 1).float()
with torch.no_grad():
    yb = block(xb)
d = os.path.join(HERE, "block")
os.makedirs(d, exist_ok=True)
torch.onnx.export(block, (xb,), os.path.join(d, "model.onnx"), input_names=["x"],
                  output_names=["y"], opset_version=13)
save("block", None, [("x", xb.numpy())], [("y", yb.numpy())])


# --- hand-built graphs ------------------------------------------------------------
def const(name, value):
    return helper.make_node("Constant", [], [name], name=name,
                            value=numpy_helper.from_array(np.array(value, np.float32), name))


def erf(a):
    return np.vectorize(math.erf)(a.astype(np.float64))


def gelu_ref(z):
    z = z.astype(np.float64)
    return (0.5 * z * (1.0 + erf(z / math.sqrt(2.0)))).astype(np.float32)


def ln_ref(x, axis=-1, eps=1e-5, gamma=None, beta=None, p=2.0):
    x = x.astype(np.float64)
    m = x.mean(axis=axis, keepdims=True)
    d = x - m
    y = d / np.sqrt((d ** p).mean(axis=axis, keepdims=True) + eps)
    if gamma is not None:
        y = y * gamma
    if beta is not None:
        y = y + beta
    return y.astype(np.float32)


def ln_nodes(p, x, out, axes=(-1,), exponent=2.0, eps=1e-5, gamma=None, beta=None, swap=False):
    """The opset-13 LayerNorm spelling under prefix p."""
    n = [const(p + "two", exponent), const(p + "eps", eps),
         helper.make_node("ReduceMean", [x], [p + "m"], axes=list(axes)),
         helper.make_node("Sub", [x, p + "m"], [p + "d"]),
         helper.make_node("Pow", [p + "d", p + "two"], [p + "p"]),
         helper.make_node("ReduceMean", [p + "p"], [p + "v"], axes=list(axes)),
         helper.make_node("Add", [p + "eps", p + "v"] if swap else [p + "v", p + "eps"], [p + "a"]),
         helper.make_node("Sqrt", [p + "a"], [p + "s"]),
         helper.make_node("Div", [p + "d", p + "s"], [p + "n" if gamma else out])]
    if gamma:
        n.append(helper.make_node("Mul", [gamma, p + "n"] if swap else [p + "n", gamma],
                                  [p + "g" if beta else out]))
    if beta:
        n.append(helper.make_node("Add", [beta, p + "g"] if swap else [p + "g", beta], [out]))
    return n


def gelu_nodes(p, z, out, form="div", c_scale=None, c_one=1.0, c_half=0.5):
    """The erf GELU under prefix p: form 'div' z / sqrt2, 'mul' z * (1/sqrt2),
    'half_first' (z * 0.5) * (erf + 1)."""
    if form == "div":
        n = [const(p + "c", math.sqrt(2.0) if c_scale is None else c_scale),
             helper.make_node("Div", [z, p + "c"], [p + "u"])]
    else:
        n = [const(p + "c", 1 / math.sqrt(2.0) if c_scale is None else c_scale),
             helper.make_node("Mul", [p + "c", z], [p + "u"])]
    n += [const(p + "one", c_one), const(p + "half", c_half),
          helper.make_node("Erf", [p + "u"], [p + "e"]),
          helper.make_node("Add", [p + "one", p + "e"], [p + "a"])]
    if form == "half_first":
        n += [helper.make_node("Mul", [p + "half", z], [p + "h"]),
              helper.make_node("Mul", [p + "a", p + "h"], [out])]
    else:
        n += [helper.make_node("Mul", [p + "a", z], [p + "m"]),
              helper.make_node("Mul", [p + "half", p + "m"], [out])]
    return n


def model(nodes, inputs, outputs, inits):
    g = helper.make_graph(nodes, "fuse", inputs, outputs, initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)],
                             producer_name="onnxc-tests")


def vi(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


x = (rng.standard_normal((4, 20)) * 2).astype(np.float32)
gamma = rng.uniform(0.5, 1.5, 20).astype(np.float32)
beta = rng.uniform(-0.5, 0.5, 20).astype(np.float32)
bias = rng.uniform(-1, 1, 20).astype(np.float32)
inits = [numpy_helper.from_array(gamma, "gamma"), numpy_helper.from_array(beta, "beta"),
         numpy_helper.from_array(bias, "bias")]

# forms: three GELUs, one LayerNorm; all fuse.
nodes = (gelu_nodes("g1/", "x", "y1", form="mul")
         + gelu_nodes("g2/", "x", "y2", form="half_first")
         + [helper.make_node("Add", ["bias", "x"], ["xb"])]
         + gelu_nodes("g3/", "xb", "y3", form="div")
         + ln_nodes("n1/", "x", "y4", gamma="gamma", beta="beta", swap=True))
save("forms", model(nodes, [vi("x", [4, 20])], [vi(f"y{k}", [4, 20]) for k in range(1, 5)],
                    inits),
     [("x", x)],
     [("y1", gelu_ref(x)), ("y2", gelu_ref(x)), ("y3", gelu_ref(x + bias)),
      ("y4", ln_ref(x, gamma=gamma, beta=beta))])

# near_miss: none of these may fuse, except the last GELU (without its bias).
x3 = x.reshape(4, 4, 5)
nodes = (ln_nodes("a/", "x3", "y1", axes=(1,))              # not the last axis
         + ln_nodes("b/", "x3", "y2", exponent=4.0)          # Pow 4
         + gelu_nodes("c/", "x3", "y3", c_scale=1.5)         # not sqrt(2)
         + gelu_nodes("d/", "x3", "y4", c_half=0.25)         # not 0.5
         + gelu_nodes("e/", "x3", "y5"))                     # its Erf is an output
bias5 = bias[:5]
nodes = ([helper.make_node("Reshape", ["x", "shape"], ["x3"])] + nodes
         + [helper.make_node("Add", ["x3", "bias5"], ["z"])]
         + gelu_nodes("f/", "z", "y6"))                      # z is an output too
d3 = x3.astype(np.float64) - x3.mean(axis=-1, keepdims=True)
y2 = (d3 / np.sqrt((d3 ** 4).mean(axis=-1, keepdims=True) + 1e-5)).astype(np.float32)
y3 = (0.5 * x3 * (1 + erf(x3 / 1.5))).astype(np.float32)
y4 = (0.25 * x3 * (1 + erf(x3 / math.sqrt(2)))).astype(np.float32)
z = x3 + bias5
save("near_miss",
     model(nodes, [vi("x", [4, 20])],
           [vi(f"y{k}", [4, 4, 5]) for k in range(1, 7)] + [vi("e/e", [4, 4, 5]), vi("z", [4, 4, 5])],
           [numpy_helper.from_array(np.array([4, 4, 5], np.int64), "shape"),
            numpy_helper.from_array(bias5, "bias5")]),
     [("x", x)],
     [("y1", ln_ref(x3, axis=1)), ("y2", y2), ("y3", y3), ("y4", y4),
      ("y5", gelu_ref(x3)), ("y6", gelu_ref(z)), ("e/e", erf(x3 / math.sqrt(2)).astype(np.float32)),
      ("z", z.astype(np.float32))])


# --- attention ----------------------------------------------------------------------
class Encoder(torch.nn.Module):
    """A pre-norm transformer layer (PyTorch's MultiheadAttention export)."""

    def __init__(self, batch_first):
        super().__init__()
        self.layer = torch.nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, activation="gelu",
                                                      batch_first=batch_first, norm_first=True)

    def forward(self, x):
        return self.layer(x)


for name, batch_first, shape in (("mha_batch_first", True, (3, 7, 16)),
                                 ("mha_seq_first", False, (7, 3, 16))):
    enc = Encoder(batch_first).eval()
    xe = torch.randn(*shape)
    with torch.no_grad():
        ye = enc(xe)
    d = os.path.join(HERE, name)
    os.makedirs(d, exist_ok=True)
    torch.onnx.export(enc, (xe,), os.path.join(d, "model.onnx"), input_names=["x"],
                      output_names=["y"], opset_version=13)
    save(name, None, [("x", xe.numpy())], [("y", ye.numpy())])


def softmax_ref(s):
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# attention_split: the BERT-style spelling (separate Q, K, V products, heads
# by reshape and transpose (0,2,1,3), k transposed (0,2,3,1), the scores
# divided by sqrt(dh)) fuses; the same with an additive mask, or Softmax over
# another axis, does not.
B, T, H, DH = 2, 5, 2, 4
E = H * DH
xa = rng.standard_normal((B, T, E)).astype(np.float32)
wq, wk, wv = (rng.standard_normal((E, E)).astype(np.float32) * 0.5 for _ in range(3))
mask = rng.standard_normal((T, T)).astype(np.float32)


def heads(p, src, w, out, perm):
    return [helper.make_node("MatMul", [src, w], [p + "mm"]),
            helper.make_node("Reshape", [p + "mm", "hshape"], [p + "r"]),
            helper.make_node("Transpose", [p + "r"], [out], perm=perm)]


nodes = (heads("q/", "x", "wq", "q", [0, 2, 1, 3]) + heads("k/", "x", "wk", "kt", [0, 2, 3, 1])
         + heads("v/", "x", "wv", "v", [0, 2, 1, 3])
         + [const("sqrt_dh", math.sqrt(DH)),
            helper.make_node("MatMul", ["q", "kt"], ["s"]),
            helper.make_node("Div", ["s", "sqrt_dh"], ["ss"]),
            helper.make_node("Softmax", ["ss"], ["p"], axis=-1),
            helper.make_node("MatMul", ["p", "v"], ["o"]),
            helper.make_node("Transpose", ["o"], ["ot"], perm=[0, 2, 1, 3]),
            helper.make_node("Reshape", ["ot", "oshape"], ["y1"]),
            # the same scores with a mask: not fused
            helper.make_node("MatMul", ["q", "kt"], ["s2"]),
            helper.make_node("Add", ["s2", "mask"], ["sm"]),
            helper.make_node("Softmax", ["sm"], ["pm"], axis=-1),
            helper.make_node("MatMul", ["pm", "v"], ["y2"]),
            # Softmax over the query axis: not fused
            helper.make_node("MatMul", ["q", "kt"], ["s3"]),
            helper.make_node("Softmax", ["s3"], ["p3"], axis=2),
            helper.make_node("MatMul", ["p3", "v"], ["y3"])])
inits = [numpy_helper.from_array(a, n) for a, n in ((wq, "wq"), (wk, "wk"), (wv, "wv"), (mask, "mask"))]
inits += [numpy_helper.from_array(np.array([B, T, H, DH], np.int64), "hshape"),
          numpy_helper.from_array(np.array([B, T, E], np.int64), "oshape")]
x64 = xa.astype(np.float64)
q = (x64 @ wq).reshape(B, T, H, DH).transpose(0, 2, 1, 3)
k = (x64 @ wk).reshape(B, T, H, DH).transpose(0, 2, 1, 3)
v = (x64 @ wv).reshape(B, T, H, DH).transpose(0, 2, 1, 3)
s = q @ k.transpose(0, 1, 3, 2)
y1 = (softmax_ref(s / math.sqrt(DH)) @ v).transpose(0, 2, 1, 3).reshape(B, T, E)
y2 = softmax_ref(s + mask) @ v
e3 = np.exp(s - s.max(axis=2, keepdims=True))
y3 = (e3 / e3.sum(axis=2, keepdims=True)) @ v
save("attention_split",
     model(nodes, [vi("x", [B, T, E])],
           [vi("y1", [B, T, E]), vi("y2", [B, H, T, DH]), vi("y3", [B, H, T, DH])], inits),
     [("x", xa)], [("y1", y1.astype(np.float32)), ("y2", y2.astype(np.float32)),
                   ("y3", y3.astype(np.float32))])
