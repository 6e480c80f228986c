#!/usr/bin/env python3
"""The peer: EvoTorch running esmeta's ES-ProtoNet objective, for bench/compare-peers.sh.

Same objective as `esmeta train --trainer es --strategy openai-es --width 32 --pop 64 --sigma 0.02
--lr 0.002 --way 5 --shot 5 --query 5`:

  model    conv-4 ProtoNet: 4 x [conv 3x3 pad 1 (bias) -> batch norm (affine) -> ReLU -> max-pool 2],
           --width channels, 1x28x28 input, embedding = last block flattened (28,320 parameters at
           width 32), parameters in esmeta's flat layout (per block: conv weight, conv bias, gamma,
           beta); PyTorch's default init (conv weight and bias U(-1/sqrt(fan_in), +1/sqrt(fan_in)),
           gamma 1, beta 0), which is esmeta's init, from a different random stream.
  fitness  minus the ProtoNet cross-entropy (negative squared Euclidean distance to the class-mean
           prototypes) on the queries of ONE 5-way 5-shot 5-query `trainval` episode per generation,
           the same episode for every member; members use batch norm with the batch statistics of
           the episode's 50 images (support + query in one batch), as esmeta's ES trainer does.
  ES       EvoTorch's PGPE with symmetric (antithetic) sampling, centred ranks, Adam on the centre,
           fixed stdev (stdev_learning_rate 0): OpenAI-ES. See bench/README.md for how the step
           matches esmeta's openai-es exactly and where it differs.
  BN stats after each generation the new centre makes one batch-statistics forward over the
           generation's episode that updates running statistics (momentum 0.1, unbiased variance),
           as esmeta's trainer does; evaluation uses those running statistics (`--eval-bn running`,
           the default, like `esmeta eval`) or each episode's own batch statistics
           (`--eval-bn batch`).

Data: an esmeta cache file (`esmeta prepare --out data/omniglot.esmc`), read directly; it carries the
Vinyals split files, so classes are `Alphabet/characterNN/rotDDD` (character x rotation, counter-
clockwise quarter turns), pixels bytes / 255. Episodes are drawn with numpy, not esmeta's Philox
streams, so the peer's training and test episodes are different draws from the same classes.

Writes JSON lines to --out: one per generation, then a final record. Python is only for benchmarks;
nothing in the build or the tests needs this file.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_data import BN_EPS, BN_MOMENTUM, Episodes, Layout, read_cache, split_classes  # noqa: E402
from peer_data import read_checkpoint as read_checkpoint_np  # noqa: E402


def read_checkpoint(path, net):
    theta, running = read_checkpoint_np(path, net)
    return torch.from_numpy(theta), [(torch.from_numpy(m), torch.from_numpy(v)) for m, v in running]


class TorchEpisodes(Episodes):
    def sample(self):
        return torch.from_numpy(super().sample())


# ---------------------------------------------------------------- model


class Net(Layout):
    """esmeta's conv-4 ProtoNet on a flat parameter vector, in torch."""

    def init(self, gen):
        theta, running = super().init(np.random.default_rng(int(torch.randint(1 << 62, (1,), generator=gen))))
        return torch.from_numpy(theta), [(torch.from_numpy(m), torch.from_numpy(v)) for m, v in running]

    def forward(self, theta, x, running=None, update=None):
        """Embeddings of x (n,1,28,28). running None: batch statistics; else a list of (mean, var)
        to normalise with. update: a list to append each block's (batch mean, unbiased var) to."""
        w, h = self.width, x
        for b, (off, cin) in enumerate(self.blocks):
            nw = w * cin * 9
            weight = theta[off : off + nw].view(w, cin, 3, 3)
            bias = theta[off + nw : off + nw + w]
            gamma = theta[off + nw + w : off + nw + 2 * w]
            beta = theta[off + nw + 2 * w : off + nw + 3 * w]
            z = F.conv2d(h, weight, bias, padding=1)
            if running is None:
                mean = z.mean(dim=(0, 2, 3))
                var = z.var(dim=(0, 2, 3), correction=0)
                if update is not None:
                    m = z.numel() // w
                    update.append((mean, var * m / (m - 1)))
            else:
                mean, var = running[b]
            scale = gamma * torch.rsqrt(var + BN_EPS)
            y = z * scale.view(1, w, 1, 1) + (beta - mean * scale).view(1, w, 1, 1)
            h = F.max_pool2d(F.relu(y), 2)
        return h.flatten(1)


def protonet_logits(emb, way, shot):
    """Negative squared Euclidean distances of the queries to the class-mean prototypes."""
    proto = emb[: way * shot].view(way, shot, -1).mean(dim=1)
    q = emb[way * shot :]
    return -((q.unsqueeze(1) - proto.unsqueeze(0)) ** 2).sum(dim=-1)


# ---------------------------------------------------------------- EvoTorch problem


def make_problem_class():
    from evotorch import Problem

    class ProtoNetProblem(Problem):
        """Maximise minus the query cross-entropy of the current episode (set before each step)."""

        def __init__(self, net, way, shot, query, mode):
            super().__init__(objective_sense="max", solution_length=net.n_params, dtype=torch.float32,
                             device="cpu")
            self.net, self.way, self.shot, self.mode = net, way, shot, mode
            self.labels = torch.arange(way).repeat_interleave(query)
            self.x = None
            self.last_losses = None

            def member_loss(theta, x):
                logits = protonet_logits(self.net.forward(theta, x), self.way, self.shot)
                return F.cross_entropy(logits, self.labels)

            self.member_loss = member_loss
            self.vmapped = torch.func.vmap(member_loss, in_dims=(0, None))

        def losses(self, values):
            with torch.no_grad():
                if self.mode == "vmap":
                    return self.vmapped(values, self.x)
                return torch.stack([self.member_loss(v, self.x) for v in values])

        def _evaluate_batch(self, solutions):
            losses = self.losses(solutions.values.as_subclass(torch.Tensor))
            self.last_losses = losses
            solutions.set_evals(-losses)

    return ProtoNetProblem


# ---------------------------------------------------------------- evaluation


def evaluate(net, theta, running, episodes, n, bn_mode, chunk=20):
    """Mean accuracy, 1.96*std/sqrt(n) (esmeta eval's interval) and mean loss over n episodes."""
    accs, losses = [], []
    way, shot, query = episodes.way, episodes.shot, episodes.query
    labels = torch.arange(way).repeat_interleave(query)
    with torch.no_grad():
        done = 0
        while done < n:
            k = min(chunk, n - done)
            xs = [episodes.sample() for _ in range(k)]
            if bn_mode == "running":
                # Running statistics treat every image alone, so episodes can share one forward.
                embs = net.forward(theta, torch.cat(xs), running).split([len(x) for x in xs])
            else:
                embs = [net.forward(theta, x) for x in xs]
            for e in embs:
                logits = protonet_logits(e, way, shot)
                accs.append((logits.argmax(dim=1) == labels).float().mean().item())
                losses.append(F.cross_entropy(logits, labels).item())
            done += k
    a = np.array(accs, dtype=np.float64)
    sd = a.std(ddof=1) if n > 1 else 0.0
    return float(a.mean()), float(1.96 * sd / math.sqrt(n)), float(np.mean(losses))


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.environ.get("ESMETA_DATA", "data/omniglot.esmc"),
                    help="esmeta cache file (default $ESMETA_DATA or data/omniglot.esmc)")
    ap.add_argument("--seconds", type=float, default=60, help="wall-clock training budget (default 60)")
    ap.add_argument("--generations", type=int, default=0, help="stop after G generations too (0 = budget only)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument("--eval-episodes", type=int, default=1000, help="test episodes (default 1000)")
    ap.add_argument("--eval-split", default="test")
    ap.add_argument("--eval-query", type=int, default=15, help="queries per class at test (default 15, esmeta eval's)")
    ap.add_argument("--eval-bn", choices=["running", "batch"], default="running",
                    help="batch norm at test: the centre's running statistics (like esmeta eval) or each "
                         "episode's batch statistics")
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--pop", type=int, default=64)
    ap.add_argument("--sigma", type=float, default=0.02)
    ap.add_argument("--lr", type=float, default=0.002)
    ap.add_argument("--way", type=int, default=5)
    ap.add_argument("--shot", type=int, default=5)
    ap.add_argument("--query", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--popeval", choices=["auto", "vmap", "loop"], default="auto",
                    help="score members with torch.func.vmap over the population, a Python loop, or "
                         "whichever is faster in a short trial (default)")
    ap.add_argument("--fixed-episode", action="store_true",
                    help="a learning check, not the benchmark: train on one episode throughout, so the member "
                         "loss must fall within a few dozen generations")
    ap.add_argument("--from-checkpoint", metavar="FILE",
                    help="start from an esmeta checkpoint's centre and running statistics instead of a fresh "
                         "init (with --seconds 0: evaluate esmeta's model with this script, a cross-check)")
    ap.add_argument("--out", default="peer_evotorch.jsonl", help="JSON lines (default peer_evotorch.jsonl)")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    import logging
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    import evotorch
    from evotorch.algorithms import PGPE

    logging.getLogger("evotorch").setLevel(logging.WARNING)

    ds = read_cache(a.data)
    train_eps = TorchEpisodes(ds, split_classes(ds, "trainval"), a.way, a.shot, a.query, seed=a.seed)
    net = Net(a.width)
    gen = torch.Generator().manual_seed(a.seed)
    theta0, running = net.init(gen)
    if a.from_checkpoint:
        theta0, running = read_checkpoint(a.from_checkpoint, net)
    Problem = make_problem_class()
    problem = Problem(net, a.way, a.shot, a.query, "vmap")

    # Pick the population evaluator: time both on one episode at full population (an episode from a
    # stream of its own, so the training episodes do not depend on --popeval).
    trial = {}
    if a.popeval == "auto" and a.seconds > 0:
        problem.x = TorchEpisodes(ds, train_eps.classes, a.way, a.shot, a.query, seed=(1 << 40) + a.seed).sample()
        pop = theta0 + a.sigma * torch.randn(a.pop, net.n_params, generator=gen)
        for mode in ("vmap", "loop"):
            problem.mode = mode
            problem.losses(pop)  # warm-up
            t = time.perf_counter()
            problem.losses(pop)
            trial[mode] = time.perf_counter() - t
        problem.mode = min(trial, key=trial.get)
    else:
        problem.mode = a.popeval if a.popeval != "auto" else "loop"

    # OpenAI-ES as PGPE. EvoTorch's symmetric centre gradient is (1/(P/2)) sum_d (u+ - u-)/2 * sigma*z_d,
    # which is sigma^2 times esmeta's (1/(P sigma)) sum_i u_i z_i; Adam is invariant to a gradient
    # scale c when its epsilon is scaled by c too, so epsilon = 1e-8 * sigma^2 makes the step the same.
    searcher = PGPE(problem, popsize=a.pop, center_learning_rate=a.lr, stdev_learning_rate=0.0,
                    stdev_init=a.sigma, center_init=theta0, optimizer="adam",
                    optimizer_config={"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8 * a.sigma ** 2},
                    ranking_method="centered", symmetric=True, stdev_max_change=None)

    out = open(a.out, "w")

    def emit(rec):
        out.write(json.dumps(rec, separators=(",", ":")) + "\n")
        out.flush()

    emit({"peer": "evotorch", "evotorch": evotorch.__version__, "torch": torch.__version__,
          "threads": a.threads, "popeval": problem.mode,
          "popeval_trial_s": {k: round(v, 4) for k, v in trial.items()}, "n_params": net.n_params,
          "width": a.width, "pop": a.pop, "sigma": a.sigma, "lr": a.lr,
          "shape": f"{a.way}-way {a.shot}-shot {a.query}-query", "eval_bn": a.eval_bn})

    # EvoTorch's PGPE.step() first applies the update from the population the previous step evaluated,
    # then samples and evaluates a new population; its first step only evaluates. So step k scores
    # population k on episode k, and the centre it leaves is the one updated from episode k-1: that
    # centre makes the running-statistics forward over episode k-1, the episode of its update, as
    # esmeta's trainer does after each tell. The last step's population is never used for an update
    # (one generation's evaluation out of the budget); "generations" counts steps (population
    # evaluations, esmeta's unit), "updates" the centre updates applied.
    g, times, losses, prev_x = 0, [], [], None
    t_start = time.perf_counter()
    while time.perf_counter() - t_start < a.seconds and (a.generations <= 0 or g < a.generations):
        t0 = time.perf_counter()
        x = prev_x if a.fixed_episode and prev_x is not None else train_eps.sample()
        problem.x = x
        searcher.step()
        if prev_x is not None:
            stats = []
            with torch.no_grad():
                net.forward(searcher.status["center"].as_subclass(torch.Tensor), prev_x, update=stats)
            running = [((1 - BN_MOMENTUM) * rm + BN_MOMENTUM * m, (1 - BN_MOMENTUM) * rv + BN_MOMENTUM * v)
                       for (rm, rv), (m, v) in zip(running, stats)]
        prev_x = x
        dt = time.perf_counter() - t0
        g += 1
        times.append(dt)
        loss = float(problem.last_losses.mean())
        losses.append(loss)
        emit({"generation": g, "seconds": round(dt, 5), "elapsed_s": round(time.perf_counter() - t_start, 3),
              "loss": round(loss, 5)})
    train_s = time.perf_counter() - t_start

    centre = searcher.status["center"].as_subclass(torch.Tensor).clone()
    test_eps = TorchEpisodes(ds, split_classes(ds, a.eval_split), 5, 5, a.eval_query, seed=0)
    t0 = time.perf_counter()
    acc, ci, test_loss = evaluate(net, centre, running, test_eps, a.eval_episodes, a.eval_bn)
    eval_s = time.perf_counter() - t0
    k = max(1, min(50, g // 4))
    rec = {"peer": "evotorch", "final": True, "generations": g, "updates": max(0, g - 1), "train_s": round(train_s, 2),
           "s_per_gen": round(train_s / g, 5) if g else None,
           "s_per_gen_median": round(float(np.median(times)), 5) if g else None,
           "loss_first": round(float(np.mean(losses[:k])), 4) if g else None,
           "loss_last": round(float(np.mean(losses[-k:])), 4) if g else None,
           "loss_window": k, "eval_split": a.eval_split, "test_task": f"5-way 5-shot {a.eval_query}-query",
           "episodes": a.eval_episodes, "eval_bn": a.eval_bn, "accuracy": round(acc, 6), "ci95": round(ci, 6), "loss": round(test_loss, 6),
           "eval_s": round(eval_s, 2), "popeval": problem.mode}
    emit(rec)
    print(json.dumps(rec, separators=(",", ":")))


if __name__ == "__main__":
    main()
