#!/usr/bin/python3
"""A BatchNorm-free SimCLR model for GradCache (onnxc --micro-batch), with
PyTorch's loss and gradients (torch 1.13, CPU, float32).

Run: /usr/bin/python3 tests/data/gradcache/make_gradcache.py
Writes beside this script:
  model.onnx                       opset 14; inputs x1, x2 (two views, [64, 8, 16]);
                                   outputs loss (scalar) and embedding (z1, [64, 32])
  test_data_set_0/input_0.pb       x1
  test_data_set_0/input_1.pb       x2
  test_data_set_0/output_0.pb      the loss
  test_data_set_0/gradients/<initializer>.pb   d loss / d initializer
The encoder treats each example as a set of 8 tokens of 16 features: a token
MLP (Linear-LayerNorm-ReLU, twice, width 128), the mean over the tokens, and a
projection head (Linear-ReLU-Linear to 32). Its activations are per token, so
they outweigh the parameters (what micro-batching saves). The loss is NT-Xent
over the 128 embeddings of both views with a learnable temperature (CLIP's
exp(logit_scale)), so the loss head has a parameter of its own. Weights are
plain parameters used as x @ w, so the ONNX initializers carry their names and
PyTorch's gradients need no transposing.

Also writes dropout.onnx: a small SimCLR MLP (batch 8) with training-mode
Dropout in its encoder, which GradCache must refuse (its two encoding passes
would draw different masks).
"""
import os
import numpy as np
for k, v in (("float", float), ("int", int), ("bool", bool), ("object", object)):
    setattr(np, k, v)
import onnx
from onnx import numpy_helper
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
B, T, D, H, P, Z = 64, 8, 16, 128, 64, 32


class SetEncoderSimCLR(torch.nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(7)

        def param(*shape, scale):
            return torch.nn.Parameter(torch.randn(*shape, generator=g) * scale)

        self.w1, self.b1 = param(D, H, scale=D ** -0.5), param(H, scale=0.1)
        self.ln1 = torch.nn.LayerNorm(H)
        self.w2, self.b2 = param(H, H, scale=H ** -0.5), param(H, scale=0.1)
        self.ln2 = torch.nn.LayerNorm(H)
        self.w3, self.b3 = param(H, P, scale=H ** -0.5), param(P, scale=0.1)
        self.w4, self.b4 = param(P, Z, scale=P ** -0.5), param(Z, scale=0.1)
        with torch.no_grad():
            for ln in (self.ln1, self.ln2):
                ln.weight.copy_(1 + 0.1 * torch.randn(H, generator=g))
                ln.bias.copy_(0.1 * torch.randn(H, generator=g))
        self.logit_scale = torch.nn.Parameter(torch.tensor(np.log(1 / 0.5), dtype=torch.float32))
        self.register_buffer("diagonal", torch.eye(2 * B, dtype=torch.bool))
        self.register_buffer("targets", torch.cat([torch.arange(B, 2 * B), torch.arange(0, B)]))

    def encode(self, x):
        h = F.relu(self.ln1(x @ self.w1 + self.b1))
        h = F.relu(self.ln2(h @ self.w2 + self.b2))
        h = h.mean(dim=1)
        return F.relu(h @ self.w3 + self.b3) @ self.w4 + self.b4

    def forward(self, x1, x2):
        z1, z2 = self.encode(x1), self.encode(x2)
        z = F.normalize(torch.cat([z1, z2], 0), dim=1)
        sim = (z @ z.t()) * self.logit_scale.exp()
        sim = sim.masked_fill(self.diagonal, -9e15)
        return F.cross_entropy(sim, self.targets), z1


class DropoutSimCLR(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = torch.nn.Sequential(torch.nn.Linear(D, 16), torch.nn.ReLU(),
                                           torch.nn.Dropout(0.1), torch.nn.Linear(16, 8))

    def forward(self, x1, x2):
        z = F.normalize(torch.cat([self.encoder(x1), self.encoder(x2)], 0), dim=1)
        n = x1.shape[0]
        targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
        return F.cross_entropy(z @ z.t() / 0.5, targets)


def save(t, name, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(t.detach().numpy(), name).SerializeToString())


def main():
    torch.manual_seed(11)
    model = SetEncoderSimCLR()
    x1, x2 = torch.randn(B, T, D), torch.randn(B, T, D)
    path = os.path.join(HERE, "model.onnx")
    torch.onnx.export(model, (x1, x2), path, opset_version=14, input_names=["x1", "x2"],
                      output_names=["loss", "embedding"], do_constant_folding=False)
    onnx.checker.check_model(onnx.load(path), full_check=True)
    inits = {t.name for t in onnx.load(path).graph.initializer}
    loss, _ = model(x1, x2)
    loss.backward()
    data = os.path.join(HERE, "test_data_set_0")
    save(x1, "x1", os.path.join(data, "input_0.pb"))
    save(x2, "x2", os.path.join(data, "input_1.pb"))
    save(loss, "loss", os.path.join(data, "output_0.pb"))
    for name, p in model.named_parameters():
        assert name in inits, (name, sorted(inits))
        save(p.grad, name, os.path.join(data, "gradients", name + ".pb"))
    print("loss", loss.item(), "initializers", sorted(inits))
    path = os.path.join(HERE, "dropout.onnx")
    torch.onnx.export(DropoutSimCLR(), (torch.randn(8, D), torch.randn(8, D)), path,
                      opset_version=14, input_names=["x1", "x2"], output_names=["loss"],
                      training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False)
    onnx.checker.check_model(onnx.load(path), full_check=True)


if __name__ == "__main__":
    main()
