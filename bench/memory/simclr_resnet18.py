#!/usr/bin/python3
"""The SimCLR ResNet-18 model of the memory and speed benchmarks, in PyTorch.

  simclr_resnet18.py export OUT.onnx BATCH      training-mode ONNX export (both
                                                views of BATCH images at 32x32)
  simclr_resnet18.py train BATCH STEPS          STEPS SGD steps in PyTorch on a
                                                fixed batch; prints the losses

torchvision resnet18 (weights=None, fc=Identity) + Linear-ReLU-Linear head
(512-512-128); NT-Xent at temperature 0.5 with the two views concatenated
into one batch (BatchNorm over both); SGD lr 0.05, momentum 0.9, weight
decay 1e-4: the a3_simclr_resnet18 reference case at another batch size.
"""
import sys
import numpy as np
for k, v in (("float", float), ("int", int), ("bool", bool), ("object", object)):
    setattr(np, k, v)
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

torch.manual_seed(303)


class SimCLR(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = torchvision.models.resnet18(weights=None)
        self.encoder.fc = nn.Identity()
        self.head = nn.Sequential(nn.Linear(512, 512), nn.ReLU(inplace=True), nn.Linear(512, 128))

    def forward(self, x1, x2):
        n = x1.shape[0]
        h = self.encoder(torch.cat([x1, x2], dim=0))
        z = F.normalize(self.head(h), dim=1)
        sim = z @ z.t() / 0.5
        sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
        targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
        return F.cross_entropy(sim, targets), h[:n]


def batch(n):
    g = torch.Generator().manual_seed(7)
    return torch.rand(n, 3, 32, 32, generator=g), torch.rand(n, 3, 32, 32, generator=g)


def main():
    mode, n = sys.argv[1], int(sys.argv[3] if sys.argv[1] == "export" else sys.argv[2])
    model = SimCLR().train()
    x1, x2 = batch(n)
    if mode == "export":
        import onnx
        from onnx import numpy_helper
        torch.onnx.export(model, (x1, x2), sys.argv[2], opset_version=13,
                          training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False,
                          input_names=["x1", "x2"], output_names=["loss", "embedding"])
        import os
        d = os.path.join(os.path.dirname(sys.argv[2]), "batch")
        os.makedirs(d, exist_ok=True)
        for k, (name, x) in enumerate((("x1", x1), ("x2", x2))):
            with open(os.path.join(d, f"input_{k}.pb"), "wb") as f:
                f.write(numpy_helper.from_array(x.numpy(), name).SerializeToString())
        return
    torch.set_num_threads(int(__import__("os").environ.get("BENCH_THREADS", "2")))
    steps = int(sys.argv[3])
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    for s in range(steps):
        loss, _ = model(x1, x2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        print("step %d loss %.9e" % (s + 1, loss.item()), flush=True)


main()
