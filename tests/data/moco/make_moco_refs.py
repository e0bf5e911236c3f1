#!/usr/bin/python3
"""Expected values of 3 full MoCo steps on the a5_moco_v2 reference case,
computed with PyTorch (Debian's python3-torch 1.13, CPU, float32).

Run: /usr/bin/python3 tests/data/moco/make_moco_refs.py
Writes beside this script:
  losses.txt            4 lines: the loss before each of 3 steps, and after the 3rd
  queue.pb              the queue after 3 steps (TensorProto, name "queue")
  key/<name>.pb         every encoder_k.* initializer after 3 steps
The model is rebuilt in PyTorch from the ONNX graph's initializers (MoCo v2:
SmallCNN + MLP head for both encoders, InfoNCE at t = 0.2, a [32, 64] queue of
L2-normalized keys in columns). Each step, as `onnxc --train --ema
encoder_k.=encoder_q.:0.99 --queue queue=<k>:1` compiles it:
  q = normalize(encoder_q(x_q)); k = normalize(encoder_k(x_k)) (no grad)
  loss = CE(cat[q.k, q @ queue] / 0.2, 0); SGD(lr 0.05, momentum 0.9, wd 1e-4)
  on encoder_q; then encoder_k params = 0.99 * k + 0.01 * q (parameters only:
  BatchNorm running statistics keep their own training-mode updates, as in the
  official MoCo code); then queue[:, ptr:ptr + 8] = k.T, ptr = (ptr + 8) % 64.
Both encoders run in training mode (batch statistics), the same batch each step.
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
CASE = os.path.join(HERE, "..", "reference", "a5_moco_v2")
M, T, LR, MOMENTUM, WD = 0.99, 0.2, 0.05, 0.9, 1e-4


def small_cnn():
    features = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1, bias=False), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Conv2d(16, 32, 3, padding=1, bias=False),
        torch.nn.BatchNorm2d(32), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    cnn = torch.nn.Module()
    cnn.features = features
    cnn.forward = lambda x: features(x)
    head = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 32))
    return torch.nn.Sequential(cnn, head)


def main():
    model = onnx.load(os.path.join(CASE, "model.onnx"))
    init = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in model.graph.initializer}
    enc_q, enc_k = small_cnn(), small_cnn()
    for enc, prefix in ((enc_q, "encoder_q."), (enc_k, "encoder_k.")):
        state = {k[len(prefix):]: v for k, v in init.items() if k.startswith(prefix)}
        missing, unexpected = enc.load_state_dict(state, strict=False)
        assert not unexpected and all(m.endswith("num_batches_tracked") for m in missing), missing
        enc.train()
    for p in enc_k.parameters():
        p.requires_grad = False
    x = [torch.from_numpy(numpy_helper.to_array(onnx.load_tensor(
        os.path.join(CASE, "test_data_set_0", f"input_{i}.pb"))).copy()) for i in range(3)]
    x_q, x_k, queue = x[0], x[1], x[2].clone()
    ptr = 0
    opt = torch.optim.SGD(enc_q.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD)
    ref_loss = float(numpy_helper.to_array(onnx.load_tensor(
        os.path.join(CASE, "test_data_set_0", "output_0.pb"))))
    losses = []

    def loss_and_keys():
        q = F.normalize(enc_q(x_q), dim=1)
        with torch.no_grad():
            k = F.normalize(enc_k(x_k), dim=1)
        l_pos = (q * k).sum(1, keepdim=True)
        l_neg = q @ queue
        logits = torch.cat([l_pos, l_neg], dim=1) / T
        return F.cross_entropy(logits, torch.zeros(x_q.shape[0], dtype=torch.long)), k

    for step in range(3):
        loss, k = loss_and_keys()
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            for pk, pq in zip(enc_k.parameters(), enc_q.parameters()):
                pk.data = pk.data * M + pq.data * (1.0 - M)
            queue[:, ptr:ptr + k.shape[0]] = k.T
            ptr = (ptr + k.shape[0]) % queue.shape[1]
    # The state after 3 steps, before the 4th forward moves the running stats.
    queue_after = queue.clone()
    key_after = {n: t.clone() for n, t in enc_k.state_dict().items()}
    with torch.no_grad():
        losses.append(loss_and_keys()[0].item())
    assert abs(losses[0] - ref_loss) <= 1e-6 + 1e-5 * abs(ref_loss), (losses[0], ref_loss)

    with open(os.path.join(HERE, "losses.txt"), "w") as f:
        for v in losses:
            f.write("%.9e\n" % v)
    with open(os.path.join(HERE, "queue.pb"), "wb") as f:
        f.write(numpy_helper.from_array(queue_after.numpy(), "queue").SerializeToString())
    os.makedirs(os.path.join(HERE, "key"), exist_ok=True)
    for name, t in key_after.items():
        if name.endswith("num_batches_tracked"):
            continue
        full = "encoder_k." + name
        with open(os.path.join(HERE, "key", full + ".pb"), "wb") as f:
            f.write(numpy_helper.from_array(t.numpy(), full).SerializeToString())
    print("losses", losses)


main()
