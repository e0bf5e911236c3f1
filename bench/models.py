#!/usr/bin/python3
"""Models and anchors of the speed benchmark (bench/run.sh), in PyTorch.

  models.py export WORK          exports every benchmark model into WORK/<case>/
                                 (model.onnx, inputs/input_K.npy); skips cases
                                 already exported
  models.py train CASE WORK REPEAT
                                 times REPEAT train steps of CASE in PyTorch after
                                 2 warm-up steps; prints median_ms/min_ms/max_ms

Threads: BENCH_THREADS (default 2) for torch.set_num_threads.

Cases (the names bench/run.sh uses):
  resnet18_b1, resnet18_b32   torchvision resnet18 (weights=None), 224x224, eval
  mobilenetv2_b1              torchvision mobilenet_v2 (weights=None), 224x224, eval
  vit_tiny                    a tiny ViT defined here: 32x32 images, 4x4 patches,
                              dim 192, 3 heads, depth 6, MLP 768, batch 8, eval
  text_a4                     the a4_clip_dual reference text encoder (embed_text)
  resnet50                    torchvision resnet50, batch 1 (compile time only)
  simclr_r18                  bench/memory's SimCLR ResNet-18 at 32x32, batch 2x64
                              (training graph; SGD lr 0.05, momentum 0.9, wd 1e-4)
  smallcnn_a2                 the a2_simclr_smallcnn reference training graph
  mlp_a1                      the a1_mlp_triplet reference training graph
"""
import os
import shutil
import statistics
import sys
import time

import numpy as np
for _k, _v in (("float", float), ("int", int), ("bool", bool), ("object", object)):
    setattr(np, _k, _v)
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
REF = os.path.join(ROOT, "tests", "data", "reference")


def save_npy(d, k, a):
    os.makedirs(d, exist_ok=True)
    np.save(os.path.join(d, "input_%d.npy" % k), np.ascontiguousarray(a))


# --- models -------------------------------------------------------------------


class TinyViT(nn.Module):
    def __init__(self, image=32, patch=4, dim=192, depth=6, heads=3, mlp=768):
        super().__init__()
        n = (image // patch) ** 2
        self.patch = nn.Conv2d(3, dim, patch, stride=patch)
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, mlp, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, depth)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        return self.norm(self.blocks(x))[:, 0]


class SimCLR(nn.Module):
    """bench/memory/simclr_resnet18.py's model (same layers, same loss)."""

    def __init__(self):
        super().__init__()
        import torchvision
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
        return F.cross_entropy(sim, targets)


class SmallCNN(nn.Module):
    """a2_simclr_smallcnn (tests/data/reference/a2_simclr_smallcnn/meta.json)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
            nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32),
            nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 32))

    def forward(self, x1, x2):
        n = x1.shape[0]
        z = torch.cat([self.head(self.features(x1)), self.head(self.features(x2))])
        z = F.normalize(z, dim=1)
        sim = z @ z.t() / 0.5
        sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
        targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
        return F.cross_entropy(sim, targets)


class MLPTriplet(nn.Module):
    """a1_mlp_triplet (tests/data/reference/a1_mlp_triplet/meta.json)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                                 nn.Linear(128, 32))
        self.loss = nn.TripletMarginLoss(margin=1.0, p=2, eps=1e-6)

    def forward(self, a, p, n):
        return self.loss(self.net(a), self.net(p), self.net(n))


def read_pb(path):
    import onnx
    from onnx import numpy_helper
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def train_inputs(case, work):
    """The batch of a training case as tensors (the files onnxrun reads)."""
    d = os.path.join(work, case, "batch")
    files = sorted(f for f in os.listdir(d) if f.startswith("input_"))
    return [torch.from_numpy(read_pb(os.path.join(d, f)).copy()) for f in files]


# --- export -------------------------------------------------------------------


def export_eval(model, x, path, dynamic_batch=False, opset=13):
    model.eval()
    kw = {}
    if dynamic_batch:
        kw["dynamic_axes"] = {"x": {0: "batch"}, "embedding": {0: "batch"}}
    with torch.no_grad():
        torch.onnx.export(model, (x,), path, opset_version=opset, input_names=["x"],
                          output_names=["embedding"], do_constant_folding=True, **kw)


def export(work):
    import torchvision
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)

    def case_dir(name):
        d = os.path.join(work, name)
        os.makedirs(d, exist_ok=True)
        return d, os.path.exists(os.path.join(d, "model.onnx"))

    d, done = case_dir("resnet18")
    if not done:
        m = torchvision.models.resnet18(weights=None)
        m.fc = nn.Identity()
        export_eval(m, torch.rand(1, 3, 224, 224, generator=g), d + "/model.onnx", True)
    for b in (1, 32):
        save_npy(os.path.join(work, "resnet18", "inputs_b%d" % b), 0,
                 torch.rand(b, 3, 224, 224, generator=g).numpy())
    d, done = case_dir("mobilenetv2")
    if not done:
        m = torchvision.models.mobilenet_v2(weights=None)
        m.classifier = nn.Identity()
        export_eval(m, torch.rand(1, 3, 224, 224, generator=g), d + "/model.onnx")
    save_npy(d + "/inputs", 0, torch.rand(1, 3, 224, 224, generator=g).numpy())
    d, done = case_dir("resnet50")
    if not done:
        m = torchvision.models.resnet50(weights=None)
        export_eval(m, torch.rand(1, 3, 224, 224, generator=g), d + "/model.onnx")
    d, done = case_dir("vit_tiny")
    if not done:
        export_eval(TinyViT(), torch.rand(8, 3, 32, 32, generator=g), d + "/model.onnx")
    save_npy(d + "/inputs", 0, torch.rand(8, 3, 32, 32, generator=g).numpy())
    d, _ = case_dir("text_a4")
    src = os.path.join(REF, "a4_clip_dual", "embed_text")
    shutil.copyfile(os.path.join(src, "model.onnx"), d + "/model.onnx")
    save_npy(d + "/inputs", 0, read_pb(os.path.join(src, "test_data_set_0", "input_0.pb")))
    # Training graphs: the reference cases as they are, and bench/memory's
    # SimCLR ResNet-18 exported at batch 64 (its exporter writes batch/).
    for case, ref in (("smallcnn_a2", "a2_simclr_smallcnn"), ("mlp_a1", "a1_mlp_triplet")):
        d, _ = case_dir(case)
        shutil.copyfile(os.path.join(REF, ref, "model.onnx"), d + "/model.onnx")
        os.makedirs(d + "/batch", exist_ok=True)
        t = os.path.join(REF, ref, "test_data_set_0")
        for f in os.listdir(t):
            if f.startswith("input_"):
                shutil.copyfile(os.path.join(t, f), os.path.join(d, "batch", f))
    d, done = case_dir("simclr_r18")
    if not done:
        import subprocess
        subprocess.check_call([sys.executable, os.path.join(ROOT, "bench", "memory",
                                                            "simclr_resnet18.py"),
                               "export", d + "/model.onnx", "64"], stdout=subprocess.DEVNULL)


# --- PyTorch train steps --------------------------------------------------------


def train_time(case, work, repeat):
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    torch.manual_seed(0)
    model = {"simclr_r18": SimCLR, "smallcnn_a2": SmallCNN, "mlp_a1": MLPTriplet}[case]().train()
    xs = train_inputs(case, work)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    times = []
    for s in range(repeat + 2):
        t0 = time.perf_counter()
        loss = model(*xs)
        opt.zero_grad()
        loss.backward()
        opt.step()
        t1 = time.perf_counter()
        if s >= 2:
            times.append((t1 - t0) * 1e3)
    print("median_ms: %.6f" % statistics.median(times))
    print("min_ms: %.6f" % min(times))
    print("max_ms: %.6f" % max(times))


def main():
    cmd = sys.argv[1]
    if cmd == "export":
        export(sys.argv[2])
    elif cmd == "train":
        train_time(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit("models.py: unknown command " + cmd)


if __name__ == "__main__":
    main()
