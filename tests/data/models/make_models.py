#!/usr/bin/python3
"""Writes the small hand-built ONNX models the compiler tests use (no PyTorch).

Run with Debian's python3-onnx: /usr/bin/python3 tests/data/models/make_models.py
Each model comes with test_data_set_0/input_K.pb and output_K.pb computed
with numpy here, so the expected values do not depend on onnxc.
"""
import os
import numpy as np
for k, v in (("float", float), ("int", int), ("bool", bool), ("object", object)):
    setattr(np, k, v)
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(7)


def save_case(name, model, inputs, outputs, external=False):
    d = os.path.join(HERE, name)
    os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
    onnx.checker.check_model(model)
    if external:
        onnx.save_model(model, os.path.join(d, "model.onnx"), save_as_external_data=True,
                        all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    else:
        onnx.save_model(model, os.path.join(d, "model.onnx"))
    for i, (n, a) in enumerate(inputs):
        with open(os.path.join(d, "test_data_set_0", f"input_{i}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(a, n).SerializeToString())
    for i, (n, a) in enumerate(outputs):
        with open(os.path.join(d, "test_data_set_0", f"output_{i}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(a, n).SerializeToString())


def mlp(batch_dim, w1, b1, w2, b2, typed=False, inputs_as_initializers=False):
    """x[batch,8] -> Gemm(w1,b1) -> Relu -> hidden -> Gemm(w2,b2) -> y."""
    def init(name, a):
        if typed:  # values in float_data / int64_data rather than raw_data
            return helper.make_tensor(name, TensorProto.FLOAT, a.shape, a.flatten().tolist())
        return numpy_helper.from_array(a, name)
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h0"], name="fc1", transB=1),
        helper.make_node("Relu", ["h0"], ["hidden"], name="relu1"),
        helper.make_node("Gemm", ["hidden", "w2", "b2"], ["y"], name="fc2", transB=1),
    ]
    inits = [init("w1", w1), init("b1", b1), init("w2", w2), init("b2", b2)]
    graph_inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch_dim, 8])]
    if inputs_as_initializers:  # the old keep_initializers_as_inputs=True export style
        graph_inputs += [helper.make_tensor_value_info(t.name, TensorProto.FLOAT, list(t.dims))
                         for t in inits]
    g = helper.make_graph(nodes, "mlp", graph_inputs,
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch_dim, 4])],
                          initializer=inits,
                          value_info=[helper.make_tensor_value_info("hidden", TensorProto.FLOAT,
                                                                    [batch_dim, 16])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)],
                             producer_name="onnxc-tests")


w1 = rng.standard_normal((16, 8)).astype(np.float32)
b1 = rng.standard_normal(16).astype(np.float32)
w2 = rng.standard_normal((4, 16)).astype(np.float32)
b2 = rng.standard_normal(4).astype(np.float32)
x = rng.standard_normal((3, 8)).astype(np.float32)
hidden = np.maximum(x @ w1.T + b1, 0).astype(np.float32)
y = (hidden @ w2.T + b2).astype(np.float32)

# A symbolic batch axis: needs --dim batch=3.
save_case("dynamic_batch_mlp", mlp("batch", w1, b1, w2, b2), [("x", x)], [("y", y)])
# Initializers in external data beside the model.
save_case("external_data_mlp", mlp(3, w1, b1, w2, b2), [("x", x)], [("y", y)], external=True)
# Initializers in the typed fields, and also listed as graph inputs.
save_case("typed_fields_mlp", mlp(3, w1, b1, w2, b2, typed=True, inputs_as_initializers=True),
          [("x", x)], [("y", y)])
# The intermediate value, for --output hidden.
os.makedirs(os.path.join(HERE, "dynamic_batch_mlp", "hidden"), exist_ok=True)
with open(os.path.join(HERE, "dynamic_batch_mlp", "hidden", "output_0.pb"), "wb") as f:
    f.write(numpy_helper.from_array(hidden, "hidden").SerializeToString())

# Shape arithmetic as PyTorch exports it around a reshape (Shape, Gather,
# Unsqueeze, Concat, Reshape) plus a Constant node; all of it must fold.
nodes = [
    helper.make_node("Shape", ["x"], ["shape"], name="shape"),
    helper.make_node("Constant", [], ["zero"], name="const0",
                     value=numpy_helper.from_array(np.array(0, np.int64))),
    helper.make_node("Gather", ["shape", "zero"], ["n"], name="gather_n", axis=0),
    helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"], name="unsq"),
    helper.make_node("Constant", [], ["minus1"], name="const_m1",
                     value=numpy_helper.from_array(np.array([-1], np.int64))),
    helper.make_node("Concat", ["n1", "minus1"], ["target"], name="concat", axis=0),
    helper.make_node("Reshape", ["x", "target"], ["flat"], name="reshape"),
    helper.make_node("Mul", ["flat", "two"], ["y"], name="scale"),
]
g = helper.make_graph(nodes, "shape_arith",
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 12])],
                      initializer=[numpy_helper.from_array(np.array([0], np.int64), "axes0"),
                                   numpy_helper.from_array(np.array(2.0, np.float32), "two")])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="onnxc-tests")
xs = rng.standard_normal((2, 3, 4)).astype(np.float32)
save_case("shape_arithmetic", m, [("x", xs)], [("y", (xs.reshape(2, 12) * 2).astype(np.float32))])
print("wrote", HERE)
