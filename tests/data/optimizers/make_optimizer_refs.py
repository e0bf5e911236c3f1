#!/usr/bin/python3
"""Expected 5-step trajectories of Adam, AdamW and LARS on the a1_mlp_triplet
reference case, computed with PyTorch (Debian's python3-torch, CPU, float32).

Run: /usr/bin/python3 tests/data/optimizers/make_optimizer_refs.py
Writes a1_<optimizer>.txt beside this script: 5 lines, the loss before each
of 5 updates on the same batch (what `onnxrun --steps 5 --log` writes).

The model is rebuilt in PyTorch from the ONNX graph's initializers (a shared
3-layer MLP encoder, nn.TripletMarginLoss(margin=1)); its first loss must
equal the case's PyTorch reference output, which the script checks.

LARS as SimCLR uses it (PyTorch has none): for a parameter with more than one
dimension, g = grad + wd * p and the local rate is trust * ||p|| / ||g||
(1 if either norm is 0); biases and normalization parameters (rank <= 1)
take g = grad, no decay, rate 1; then buf = momentum * buf + lr * local * g,
p -= buf.
"""
import os
import numpy as np
for k, v in (("float", float), ("int", int), ("bool", bool), ("object", object)):
    setattr(np, k, v)
import onnx
from onnx import numpy_helper
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
CASE = os.path.join(HERE, "..", "reference", "a1_mlp_triplet")
torch.manual_seed(0)

# The hyper-parameters the test compiles the plan with (keep in sync with
# tests/test_train_reference.c).
CONFIGS = {
    "adam": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-4),
    "adamw": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2),
    "lars": dict(lr=0.1, momentum=0.9, weight_decay=1e-4, trust=0.001, eps=1e-8),
}


def build():
    model = onnx.load(os.path.join(CASE, "model.onnx"))
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    net = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 128),
                              torch.nn.ReLU(), torch.nn.Linear(128, 32))
    state = {k.replace("encoder.net.", ""): torch.from_numpy(v.copy()) for k, v in init.items()}
    net.load_state_dict(state)
    inputs = []
    for k in range(3):
        t = onnx.load_tensor(os.path.join(CASE, "test_data_set_0", f"input_{k}.pb"))
        inputs.append(torch.from_numpy(numpy_helper.to_array(t).copy()))
    return net, inputs


def loss_of(net, inputs):
    a, p, n = (net(x) for x in inputs)
    return torch.nn.TripletMarginLoss(margin=1.0)(a, p, n)


def lars_step(params, bufs, c):
    with torch.no_grad():
        for p in params:
            g = p.grad
            if p.dim() > 1:
                g = g + c["weight_decay"] * p
                pn, gn = torch.norm(p), torch.norm(g)
                local = (c["trust"] * pn / (gn + c["eps"])) if (pn > 0 and gn > 0) else 1.0
            else:
                local = 1.0
            buf = bufs.setdefault(p, torch.zeros_like(p))
            buf.mul_(c["momentum"]).add_(g * (c["lr"] * local))
            p.sub_(buf)


def main():
    ref = numpy_helper.to_array(onnx.load_tensor(os.path.join(CASE, "test_data_set_0", "output_0.pb")))
    for name, c in CONFIGS.items():
        net, inputs = build()
        params = list(net.parameters())
        if name == "adam":
            opt = torch.optim.Adam(params, **c)
        elif name == "adamw":
            opt = torch.optim.AdamW(params, **c)
        bufs = {}
        losses = []
        for step in range(5):
            for p in params:
                p.grad = None
            loss = loss_of(net, inputs)
            loss.backward()
            losses.append(loss.item())
            if name == "lars":
                lars_step(params, bufs, c)
            else:
                opt.step()
        assert abs(losses[0] - float(ref)) <= 1e-6 * abs(float(ref)) + 1e-7, (losses[0], ref)
        with open(os.path.join(HERE, f"a1_{name}.txt"), "w") as f:
            for v in losses:
                f.write("%.9e\n" % v)
        print(name, losses)


main()
