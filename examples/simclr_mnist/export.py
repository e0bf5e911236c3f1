#!/usr/bin/python3
"""Exports the SimCLR training graph of examples/simclr_mnist to ONNX.

  export.py [OUT.onnx] [--batch B] [--seed S]

writes OUT.onnx (default: model.onnx beside this script), the model that
onnxc --train compiles into one plan with a `train_step` and an `embed`
entry point:

  inputs   x1, x2   float32 [B, 1, 28, 28]   two augmented views of B digits
  outputs  loss                              NT-Xent (temperature 0.5)
           embedding float32 [B, 128]        encoder(x1), the representation

Encoder (pools early, ~93k parameters):
  conv3x3(1->32)-BN-ReLU-maxpool2   28 -> 14
  conv3x3(32->64)-BN-ReLU-maxpool2  14 -> 7
  conv3x3(64->128)-BN-ReLU          7
  global average pool, flatten      128
Projection head Linear(128,128)-ReLU-Linear(128,64); NT-Xent as in the
repository's a2_simclr_smallcnn reference (F.normalize, z @ z.T / t, the
diagonal masked with -inf through an eye mask, targets by arange/cat,
F.cross_entropy). The encoder runs on x1 and on x2 separately, so each
BatchNormalization normalizes over one view's B images. ~118k parameters
in all.

Exported with torch.onnx.export(training=TrainingMode.TRAINING,
do_constant_folding=False, opset_version=13). The initial weights are
PyTorch's default initialization under the seed, so the committed
model.onnx is also the 'random encoder' of the example's evaluation.
Needs torch (1.13) and onnx; the example itself does not: model.onnx is
committed.
"""
import argparse
import os
import sys

import numpy as np
for _k, _v in (("float", float), ("int", int), ("bool", bool), ("object", object)):
    setattr(np, _k, _v)  # onnx 1.12 with a newer numpy
import torch
import torch.nn as nn
import torch.nn.functional as F

TEMPERATURE = 0.5


def conv_bn_relu(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True)]


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            *conv_bn_relu(1, 32), nn.MaxPool2d(2),
            *conv_bn_relu(32, 64), nn.MaxPool2d(2),
            *conv_bn_relu(64, 128),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x):
        return self.features(x)


class SimCLR(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.head = nn.Sequential(nn.Linear(128, 128), nn.ReLU(inplace=True), nn.Linear(128, 64))

    def forward(self, x1, x2):
        n = x1.shape[0]
        h1 = self.encoder(x1)
        h2 = self.encoder(x2)
        z = F.normalize(torch.cat([self.head(h1), self.head(h2)], dim=0), dim=1)
        sim = z @ z.t() / TEMPERATURE
        sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
        targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
        return F.cross_entropy(sim, targets), h1


def build(seed):
    torch.manual_seed(seed)
    return SimCLR().train()


def export(model, path, batch):
    x1 = torch.rand(batch, 1, 28, 28)
    x2 = torch.rand(batch, 1, 28, 28)
    # Exporting in training mode runs the model once: keep the running
    # statistics (and every other buffer) as they were initialized.
    state = {k: v.clone() for k, v in model.state_dict().items()}
    tmp = path + ".tmp"
    torch.onnx.export(model, (x1, x2), tmp, opset_version=13,
                      training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False,
                      input_names=["x1", "x2"], output_names=["loss", "embedding"])
    model.load_state_dict(state)
    import onnx
    m = onnx.load(tmp)
    from onnx import numpy_helper
    by_name = {i.name: i for i in m.graph.initializer}
    for k, v in state.items():
        if k in by_name:
            by_name[k].CopyFrom(numpy_helper.from_array(v.numpy(), k))
    onnx.checker.check_model(m)
    onnx.save(m, tmp)
    os.replace(tmp, path)
    return m


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", nargs="?", default=os.path.join(here, "model.onnx"))
    ap.add_argument("--batch", type=int, default=128, help="images per view (default 128)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    model = build(a.seed)
    m = export(model, a.out, a.batch)
    params = sum(p.numel() for p in model.parameters())
    enc = sum(p.numel() for p in model.encoder.parameters())
    ops = {}
    for node in m.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    print("%s: batch %d, %d parameters (encoder %d), %d nodes" %
          (a.out, a.batch, params, enc, len(m.graph.node)))
    print("ops: " + ", ".join("%s %d" % kv for kv in sorted(ops.items())))


if __name__ == "__main__":
    sys.exit(main())
