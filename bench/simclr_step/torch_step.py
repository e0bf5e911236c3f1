#!/usr/bin/python3
"""The PyTorch side of bench/simclr_step: the SimCLR step of
examples/simclr_mnist in PyTorch, timed.

  torch_step.py DIGITS_DIR [--steps N] [--warmup W] [--threads T] [--batch B]

Same model (examples/simclr_mnist/export.py: conv32-BN-ReLU-pool,
conv64-BN-ReLU-pool, conv128-BN-ReLU, global average pool, Linear-ReLU-Linear
head, NT-Xent at temperature 0.5, encoder run on each view), same batch (B
digits x 2 views), same optimizer (AdamW lr 6e-3, weight decay 1e-4, linear
warmup then cosine, as LambdaLR), and the same augmentation recipe as
oc_augment_options_init_digits() (include/onnxc/augment.h), applied to the
batch with batched tensor ops: random resized crop (scale [0.5, 1], ratio
[3/4, 4/3]) and, with p 0.8, an affine map (rotation +-15 degrees, shear
+-10 degrees) resampled once (affine_grid + grid_sample, bilinear, zero
fill); with p 0.8 brightness and contrast factors in [0.6, 1.4] in a random
order; with p 0.2 a 3x3 Gaussian blur (sigma in [0.1, 1]); with p 0.5
Gaussian noise (std 0.1); clamped to [0, 1].

A step = augment two views of B train digits + forward + backward + AdamW
update + scheduler step. Prints one line: `pytorch views/s V (S steps in T s)`.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
for _k, _v in (("float", float), ("int", int), ("bool", bool), ("object", object)):
    setattr(np, _k, _v)
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "examples", "simclr_mnist"))
import export as simclr  # noqa: E402  (the example's model definition)


def load_digits(d):
    xs = []
    for k in range(10):
        with open(os.path.join(d, "%d.json" % k)) as f:
            xs.append(np.asarray(json.load(f)["data"], dtype=np.float32).reshape(-1, 1, 28, 28))
    return torch.from_numpy(np.concatenate(xs))


def crop_boxes(n, g):
    """torchvision RandomResizedCrop.get_params for 28x28, batched: up to 10
    tries per image, else the whole image."""
    area = 28.0 * 28.0
    top = torch.zeros(n)
    left = torch.zeros(n)
    h = torch.full((n,), 28.0)
    w = torch.full((n,), 28.0)
    done = torch.zeros(n, dtype=torch.bool)
    log_r = (math.log(3 / 4), math.log(4 / 3))
    for _ in range(10):
        target = area * torch.empty(n).uniform_(0.5, 1.0, generator=g)
        ratio = torch.exp(torch.empty(n).uniform_(*log_r, generator=g))
        cw = torch.round(torch.sqrt(target * ratio))
        ch = torch.round(torch.sqrt(target / ratio))
        ok = (~done) & (cw > 0) & (cw <= 28) & (ch > 0) & (ch <= 28)
        t = torch.floor(torch.rand(n, generator=g) * (28 - ch + 1))
        lft = torch.floor(torch.rand(n, generator=g) * (28 - cw + 1))
        top = torch.where(ok, t, top)
        left = torch.where(ok, lft, left)
        h = torch.where(ok, ch, h)
        w = torch.where(ok, cw, w)
        done |= ok
    return top, left, h, w


def augment(x, g):
    n = x.shape[0]
    top, left, h, w = crop_boxes(n, g)
    # Output pixel -> crop box (normalized coordinates, align_corners=False).
    sx, sy = w / 28.0, h / 28.0
    cx = (left + w / 2) / 14.0 - 1
    cy = (top + h / 2) / 14.0 - 1
    # Affine about the centre: rotation and x-shear, inverted.
    use = torch.rand(n, generator=g) < 0.8
    ang = torch.empty(n).uniform_(-15, 15, generator=g) * math.pi / 180 * use
    sh = torch.empty(n).uniform_(-10, 10, generator=g) * math.pi / 180 * use
    a = torch.cos(ang - sh) / torch.cos(sh)
    b = -torch.cos(ang - sh) * torch.tan(sh) / torch.cos(sh) - torch.sin(ang)
    c = torch.sin(ang - sh) / torch.cos(sh)
    d = -torch.sin(ang - sh) * torch.tan(sh) / torch.cos(sh) + torch.cos(ang)
    det = a * d - b * c
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = sx * ia
    theta[:, 0, 1] = sx * ib
    theta[:, 1, 0] = sy * ic
    theta[:, 1, 1] = sy * id_
    theta[:, 0, 2] = cx
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta, (n, 1, 28, 28), align_corners=False)
    y = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # Colour jitter: brightness then contrast, or the other way round.
    jit = (torch.rand(n, generator=g) < 0.8).view(n, 1, 1, 1)
    bf = torch.empty(n, 1, 1, 1).uniform_(0.6, 1.4, generator=g)
    cf = torch.empty(n, 1, 1, 1).uniform_(0.6, 1.4, generator=g)
    first_b = (torch.rand(n, generator=g) < 0.5).view(n, 1, 1, 1)

    def bright(z):
        return (z * bf).clamp(0, 1)

    def contrast(z):
        m = z.mean(dim=(1, 2, 3), keepdim=True)
        return (cf * z + (1 - cf) * m).clamp(0, 1)

    yj = torch.where(first_b, contrast(bright(y)), bright(contrast(y)))
    y = torch.where(jit, yj, y)
    # Blur: a 3x3 Gaussian per image (grouped convolution).
    blur = (torch.rand(n, generator=g) < 0.2).view(n, 1, 1, 1)
    sig = torch.empty(n).uniform_(0.1, 1.0, generator=g)
    k1 = torch.exp(-torch.tensor([1.0, 0.0, 1.0]).view(1, 3) / (2 * sig.view(n, 1) ** 2))
    k1 = k1 / k1.sum(dim=1, keepdim=True)
    k2 = (k1.view(n, 3, 1) * k1.view(n, 1, 3)).view(n, 1, 3, 3)
    yb = F.conv2d(F.pad(y.view(1, n, 28, 28), (1, 1, 1, 1), mode="reflect"), k2, groups=n)
    y = torch.where(blur, yb.view(n, 1, 28, 28), y)
    noise = (torch.rand(n, generator=g) < 0.5).view(n, 1, 1, 1)
    y = y + noise * 0.1 * torch.randn(y.shape, generator=g)
    return y.clamp(0, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("digits")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    data = load_digits(a.digits)
    model = simclr.build(0)
    total = a.warmup + a.steps
    opt = torch.optim.AdamW(model.parameters(), lr=6e-3, weight_decay=1e-4)
    warm = max(1, total // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else
        0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm))))
    g = torch.Generator().manual_seed(1)
    t0 = None
    for s in range(total):
        if s == a.warmup:
            t0 = time.perf_counter()
        idx = torch.randint(0, data.shape[0], (a.batch,), generator=g)
        x = data[idx]
        x1 = augment(x, g)
        x2 = augment(x, g)
        loss, _ = model(x1, x2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    dt = time.perf_counter() - t0
    print("pytorch views/s %.1f (%d steps in %.2f s, batch %d x 2 views, %d threads, loss %.4f)"
          % (2 * a.batch * a.steps / dt, a.steps, dt, a.batch, a.threads, loss.item()))


if __name__ == "__main__":
    main()
