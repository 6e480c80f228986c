#!/usr/bin/env python3
"""The same training step as bench/bench_train_step.c, in PyTorch on the CPU: conv-4 ProtoNet
(conv3x3+bias, BatchNorm2d, ReLU, MaxPool2d) x 4, prototypes, squared distances, cross-entropy,
backward and Adam, on one 60-way 5-shot 5-query episode, then the forward alone (no_grad, batch
statistics, the loss: what an ES member costs). Used only for reports.

usage: python3 bench/torch_train_step.py [way shot query reps threads]  -> two JSON lines
"""
import json
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def block(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2))


def median_time(fn, reps):
    """Median seconds of fn over reps calls, after one untimed warm-up call."""
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    a = [int(x) for x in sys.argv[1:]]
    way, shot, query, reps, threads = (a + [60, 5, 5, 7, 2][len(a):])[:5]
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = nn.Sequential(block(1, 64), block(64, 64), block(64, 64), block(64, 64), nn.Flatten())
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.rand(way * (shot + query), 1, 28, 28)
    labels = torch.arange(way).repeat_interleave(query)

    def loss():
        emb = net(x)
        s, q = emb[: way * shot], emb[way * shot:]
        protos = s.view(way, shot, -1).mean(1)
        return F.cross_entropy(-torch.cdist(q, protos).pow(2), labels)

    def train_step():
        opt.zero_grad()
        loss().backward()
        opt.step()

    step = median_time(train_step, reps)
    with torch.no_grad():  # what an ES member costs: the loss only, batch statistics in BN
        f = median_time(loss, reps)
    print(json.dumps({"what": "torch_forward", "torch": torch.__version__, "way": way, "shot": shot,
                      "query": query, "threads": threads, "s_per_episode": round(f, 5),
                      "images_per_s": round(way * (shot + query) / f, 1)}))
    print(json.dumps({"what": "torch_train_step", "torch": torch.__version__, "way": way, "shot": shot,
                      "query": query, "threads": threads, "s_per_step": round(step, 4),
                      "images_per_s": round(way * (shot + query) / step)}))


if __name__ == "__main__":
    main()
