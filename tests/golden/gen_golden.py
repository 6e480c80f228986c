#!/usr/bin/env python3
"""Writes the PyTorch reference files that tests/test_model_golden.c compares against.

Builds esmeta's conv-4 ProtoNet in PyTorch (Conv2d 3x3 pad 1 -> BatchNorm2d -> ReLU ->
MaxPool2d(2)) for tiny configurations, runs one 3-way episode (support and query in one
batch, as Snell's code does) and dumps inputs, parameters in esmeta's flat layout, and the
results. The reference is computed in float64 from the float32 values stored, so the C
tests measure only esmeta's own float32 error.

Run:  /path/to/venv/bin/python tests/golden/gen_golden.py   (needs torch and numpy)

File format (little-endian): magic "ESMGOLD1", uint32 version (1), uint32 count, then
count entries of: uint32 name length, name bytes (no NUL), uint32 n, n float32 values.
"""
import os
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
VERSION = 1


def write_golden(path, arrays):
    with open(path, "wb") as f:
        f.write(b"ESMGOLD1")
        f.write(struct.pack("<II", VERSION, len(arrays)))
        for name, arr in arrays.items():
            a = np.ascontiguousarray(np.asarray(arr, dtype=np.float32).reshape(-1))
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)) + nb + struct.pack("<I", a.size))
            f.write(a.astype("<f4").tobytes())


def make_net(cin, width, depth):
    layers = []
    for b in range(depth):
        layers += [nn.Conv2d(cin if b == 0 else width, width, 3, padding=1), nn.BatchNorm2d(width),
                   nn.ReLU(), nn.MaxPool2d(2)]
    return nn.Sequential(*layers)


def flat_params(net):
    return torch.cat([p.detach().reshape(-1) for p in net.parameters()])


def flat_running(net):
    out = []
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            out += [m.running_mean.reshape(-1), m.running_var.reshape(-1)]
    return torch.cat(out)


def protonet_loss(emb, way, shot, labels):
    ns = way * shot
    proto = emb[:ns].reshape(way, shot, -1).mean(1)
    q = emb[ns:]
    logits = -((q[:, None, :] - proto[None, :, :]) ** 2).sum(2)
    loss = F.cross_entropy(logits, labels)
    acc = (logits.argmax(1) == labels).double().mean()
    return loss, acc


def case(name, seed, cin, h, w, width, depth, way, shot, labels):
    torch.manual_seed(seed)
    net = make_net(cin, width, depth)
    # Make the affine parts and running statistics non-trivial, including a negative gamma.
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(1 + 0.3 * torch.randn(width))
                m.bias.copy_(0.1 * torch.randn(width))
                m.running_mean.copy_(0.1 * torch.randn(width))
                m.running_var.copy_(0.5 + torch.rand(width))
        net[1].weight[0] = -0.7
    labels = torch.tensor(labels)
    nq = len(labels)
    xs = torch.rand(way * shot, cin, h, w)
    xq = torch.rand(nq, cin, h, w)
    params0 = flat_params(net).float()
    running0 = flat_running(net).float()

    net = net.double()  # reference in float64 from the float32 values above
    x = torch.cat([xs, xq]).double()
    net.train()
    emb = net(x).reshape(x.shape[0], -1)
    loss, acc = protonet_loss(emb, way, shot, labels)
    net.zero_grad()
    loss.backward()
    grad = torch.cat([p.grad.reshape(-1) for p in net.parameters()])
    running1 = flat_running(net)

    net.eval()
    with torch.no_grad():
        emb_eval = net(x).reshape(x.shape[0], -1)
        loss_eval, acc_eval = protonet_loss(emb_eval, way, shot, labels)

    # Adam: three steps from params0 with gradients grad * (1, -0.5, 2), lr 0.01, decay 0.01.
    p = params0.double().clone().requires_grad_(True)
    opt = torch.optim.Adam([p], lr=0.01, weight_decay=0.01)
    for s in (1.0, -0.5, 2.0):
        opt.zero_grad()
        p.grad = grad.detach() * s
        opt.step()

    arrays = {
        "config": [cin, h, w, width, depth, way, shot, nq],
        "support": xs, "query": xq, "labels": labels.float(),
        "params": params0, "running0": running0,
        "emb_train": emb.detach(), "loss": [loss.item()], "acc": [acc.item()],
        "grad": grad, "running1": running1,
        "emb_eval": emb_eval, "loss_eval": [loss_eval.item()], "acc_eval": [acc_eval.item()],
        "adam3": p.detach(),
    }
    path = os.path.join(HERE, name + ".bin")
    write_golden(path, {k: (v.numpy() if torch.is_tensor(v) else v) for k, v in arrays.items()})
    print(f"{path}: {os.path.getsize(path)} bytes, loss {loss.item():.6f}, params {params0.numel()}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    # 28 -> 14 -> 7 -> 3 -> 1: the default geometry at width 8, with the odd 7 -> 3 pool.
    case("conv4_w8_28", 1, 1, 28, 28, 8, 4, 3, 2, [0, 0, 1, 1, 2, 2])
    # Two input channels, non-square odd input: 10x13 -> 5x6 -> 2x3, a 30-d embedding.
    case("conv2_w5_2x10x13", 2, 2, 10, 13, 5, 2, 3, 2, [2, 0, 1, 1, 0, 2])
