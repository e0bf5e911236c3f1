"""The SimCLR small-CNN of tests/data/reference/a2_simclr_smallcnn, exported
with a symbolic batch axis ("batch") and an NT-Xent whose mask and targets
follow the batch (arange, not a constant eye), so that onnxc --ranks N can
lower the whole step at batch/N rows (local negatives) as well as the
--global-negatives step. Used by tests/test_distributed.sh.

Run with /usr/bin/python3 (torch 1.13, onnx 1.12) from this folder:
    /usr/bin/python3 make_simclr_dynamic.py
Writes model.onnx and test_data_set_0/input_{0,1}.pb (x1, x2: 8 rows each).
"""
import os

import numpy as np

np.float = float
np.int = int
np.bool = bool
np.object = object
import onnx  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from onnx import numpy_helper  # noqa: E402


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1))

    def forward(self, x):
        return torch.flatten(self.features(x), 1)


class SimCLR(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = SmallCNN()
        self.head = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 32))

    def forward(self, x1, x2):
        z = torch.cat([self.head(self.encoder(x1)), self.head(self.encoder(x2))], 0)
        z = F.normalize(z, dim=1)
        sim = z @ z.t() / 0.5
        n = z.shape[0]
        idx = torch.arange(n)
        sim = sim.masked_fill(idx.unsqueeze(0) == idx.unsqueeze(1), float("-inf"))
        targets = (idx + n // 2) % n
        return F.cross_entropy(sim, targets)


def main():
    torch.manual_seed(303)
    model = SimCLR().train()
    x1 = torch.randn(8, 3, 16, 16)
    x2 = torch.randn(8, 3, 16, 16)
    torch.onnx.export(model, (x1, x2), "model.onnx", input_names=["x1", "x2"],
                      output_names=["loss"], opset_version=13,
                      dynamic_axes={"x1": {0: "batch"}, "x2": {0: "batch"}},
                      training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False)
    onnx.checker.check_model(onnx.load("model.onnx"))
    os.makedirs("test_data_set_0", exist_ok=True)
    for k, (name, x) in enumerate([("x1", x1), ("x2", x2)]):
        t = numpy_helper.from_array(x.numpy(), name)
        with open("test_data_set_0/input_%d.pb" % k, "wb") as f:
            f.write(t.SerializeToString())


if __name__ == "__main__":
    main()
