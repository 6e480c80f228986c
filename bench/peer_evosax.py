#!/usr/bin/env python3
"""The second peer: evosax (JAX on the CPU) running esmeta's ES-ProtoNet objective, for
bench/compare-peers.sh.

Same objective and the same ES as bench/peer_evotorch.py and `esmeta train --trainer es --strategy
openai-es --width 32 --pop 64 --sigma 0.02 --lr 0.002 --way 5 --shot 5 --query 5`:

  model    esmeta's conv-4 ProtoNet on a flat parameter vector in esmeta's layout (bench/peer_data.py),
           written with jax.lax; PyTorch's default init, from numpy's generator.
  fitness  the ProtoNet cross-entropy of the queries of ONE 5-way 5-shot 5-query `trainval` episode a
           generation, the same episode for every member, members normalising with the batch
           statistics of the episode's 50 images; evosax minimises, so the fitness is the loss itself.
  ES       evosax.algorithms.Open_ES: antithetic sampling, centred ranks in [-0.5, 0.5] (ties share
           their average rank, as in esmeta), gradient sum_i w_i z_i / (P sigma) and optax.adam(lr,
           0.9, 0.999, eps 1e-8): esmeta's openai-es update term for term, with the sign flipped
           because evosax descends (bench/peer_evosax_check.py checks this on a quadratic).
  BN stats after each tell the new centre makes one batch-statistics forward over the generation's
           episode that updates the running statistics (momentum 0.1, unbiased variance), as esmeta's
           trainer does; the test normalises with them.

The population is scored by one jitted function, either jax.vmap over the members or lax.map (one
member after another, each forward batched over the episode); the script times both on one
generation before training (outside the budget, with the compilation) and keeps the faster
(--popeval auto). JAX's CPU threads are whatever the process may use: pin it with taskset.

Writes JSON lines to --out: a setup line, one per generation, then a final record (also printed).
Python is only for benchmarks; nothing in the build or the tests needs this file.
"""
import argparse
import json
import math
import os
import sys
import time
from importlib import metadata

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_data import BN_EPS, BN_MOMENTUM, Episodes, Layout, read_cache, read_checkpoint, split_classes  # noqa: E402


def make_model(net):
    """Pure functions of the flat parameter vector: embeddings, loss, running-statistics update."""
    import jax
    import jax.numpy as jnp

    def embed(theta, x, running=None):
        """running None: batch statistics; else normalise with the given (mean, var) per block.
        Returns the embeddings and each block's (batch mean, unbiased var)."""
        w, h, stats = net.width, x, []
        for b, (off, cin) in enumerate(net.blocks):
            nw = w * cin * 9
            weight = theta[off : off + nw].reshape(w, cin, 3, 3)
            bias = theta[off + nw : off + nw + w]
            gamma = theta[off + nw + w : off + nw + 2 * w]
            beta = theta[off + nw + 2 * w : off + nw + 3 * w]
            z = jax.lax.conv_general_dilated(h, weight, (1, 1), ((1, 1), (1, 1)),
                                             dimension_numbers=("NCHW", "OIHW", "NCHW"))
            z = z + bias.reshape(1, w, 1, 1)
            if running is None:
                mean = z.mean(axis=(0, 2, 3))
                var = z.var(axis=(0, 2, 3))
                m = z.size // w
                stats.append((mean, var * m / (m - 1)))
            else:
                mean, var = running[b]
            scale = gamma * jax.lax.rsqrt(var + BN_EPS)
            y = jax.nn.relu(z * scale.reshape(1, w, 1, 1) + (beta - mean * scale).reshape(1, w, 1, 1))
            # max-pool 2, floor on odd sizes as PyTorch and esmeta do
            h = jax.lax.reduce_window(y, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
        return h.reshape(h.shape[0], -1), stats

    def logits(emb, way, shot):
        proto = emb[: way * shot].reshape(way, shot, -1).mean(axis=1)
        q = emb[way * shot :]
        return -((q[:, None, :] - proto[None, :, :]) ** 2).sum(axis=-1)

    def loss_acc(theta, x, way, shot, query):
        lg = logits(embed(theta, x)[0], way, shot)
        labels = jnp.repeat(jnp.arange(way), query)
        lp = jax.nn.log_softmax(lg)
        return -lp[jnp.arange(lg.shape[0]), labels].mean(), (lg.argmax(1) == labels).mean()

    return embed, logits, loss_acc


def evaluate(embed, logits, theta, running, episodes, n, chunk=20):
    """Mean accuracy, 1.96*std/sqrt(n) (esmeta eval's interval) and mean loss over n episodes."""
    import jax
    import jax.numpy as jnp

    way, shot, query = episodes.way, episodes.shot, episodes.query
    labels = np.repeat(np.arange(way), query)
    run = jax.jit(lambda t, x: embed(t, x, running)[0])
    accs, losses = [], []
    done = 0
    while done < n:
        k = min(chunk, n - done)
        xs = [episodes.sample() for _ in range(k)]
        # Running statistics treat every image alone, so episodes can share one forward.
        embs = np.asarray(run(theta, jnp.asarray(np.concatenate(xs))))
        per = len(xs[0])
        for i in range(k):
            lg = np.asarray(logits(jnp.asarray(embs[i * per : (i + 1) * per]), way, shot), np.float64)
            lp = lg - lg.max(1, keepdims=True)
            lp = lp - np.log(np.exp(lp).sum(1, keepdims=True))
            accs.append(float((lg.argmax(1) == labels).mean()))
            losses.append(float(-lp[np.arange(len(labels)), labels].mean()))
        done += k
    a = np.array(accs)
    sd = a.std(ddof=1) if n > 1 else 0.0
    return float(a.mean()), float(1.96 * sd / math.sqrt(n)), float(np.mean(losses))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.environ.get("ESMETA_DATA", "data/omniglot.esmc"),
                    help="esmeta cache file (default $ESMETA_DATA or data/omniglot.esmc)")
    ap.add_argument("--seconds", type=float, default=60, help="wall-clock training budget (default 60)")
    ap.add_argument("--generations", type=int, default=0, help="stop after G generations too (0 = budget only)")
    ap.add_argument("--eval-episodes", type=int, default=1000, help="test episodes (default 1000)")
    ap.add_argument("--eval-split", default="test")
    ap.add_argument("--eval-query", type=int, default=15, help="queries per class at test (default 15)")
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--pop", type=int, default=64)
    ap.add_argument("--sigma", type=float, default=0.02)
    ap.add_argument("--lr", type=float, default=0.002)
    ap.add_argument("--way", type=int, default=5)
    ap.add_argument("--shot", type=int, default=5)
    ap.add_argument("--query", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--popeval", choices=["auto", "vmap", "map"], default="auto",
                    help="score members with jax.vmap, lax.map, or whichever is faster in a trial (default)")
    ap.add_argument("--from-checkpoint", metavar="FILE",
                    help="start from an esmeta checkpoint's centre and running statistics (with --seconds 0: "
                         "evaluate esmeta's model with this script, a cross-check)")
    ap.add_argument("--out", default="peer_evosax.jsonl", help="JSON lines (default peer_evosax.jsonl)")
    a = ap.parse_args()

    import jax
    import jax.numpy as jnp
    import optax
    from evosax.algorithms import Open_ES

    jax.config.update("jax_platforms", "cpu")
    ds = read_cache(a.data)
    train_eps = Episodes(ds, split_classes(ds, "trainval"), a.way, a.shot, a.query, seed=a.seed)
    net = Layout(a.width)
    theta0, running = net.init(np.random.default_rng(a.seed))
    if a.from_checkpoint:
        theta0, running = read_checkpoint(a.from_checkpoint, net)
    running = [(jnp.asarray(m), jnp.asarray(v)) for m, v in running]
    embed, logits, loss_acc = make_model(net)
    way, shot, query = a.way, a.shot, a.query

    def member_loss(theta, x):
        return loss_acc(theta, x, way, shot, query)[0]

    scorers = {"vmap": jax.jit(jax.vmap(member_loss, in_axes=(0, None))),
               "map": jax.jit(lambda pop, x: jax.lax.map(lambda t: member_loss(t, x), pop))}

    @jax.jit
    def running_update(theta, x, running):
        stats = embed(theta, x)[1]
        return [((1 - BN_MOMENTUM) * rm + BN_MOMENTUM * m, (1 - BN_MOMENTUM) * rv + BN_MOMENTUM * v)
                for (rm, rv), (m, v) in zip(running, stats)]

    es = Open_ES(population_size=a.pop, solution=jnp.zeros(net.n_params, jnp.float32), use_antithetic_sampling=True,
                 optimizer=optax.adam(a.lr, b1=0.9, b2=0.999, eps=1e-8),
                 std_schedule=optax.constant_schedule(a.sigma))
    params = es.default_params
    key = jax.random.key(a.seed)
    key, k0 = jax.random.split(key)
    state = es.init(k0, jnp.asarray(theta0), params)

    # Compile everything and pick the population scorer on an episode of a stream of its own, outside
    # the budget (the training episodes do not depend on --popeval).
    t_setup = time.perf_counter()
    x_trial = jnp.asarray(Episodes(ds, train_eps.classes, way, shot, query, seed=(1 << 40) + a.seed).sample())
    pop, _ = es.ask(k0, state, params)
    trial = {}
    modes = ["vmap", "map"] if a.popeval == "auto" else [a.popeval]
    for mode in modes:
        scorers[mode](pop, x_trial).block_until_ready()  # compile
        t = time.perf_counter()
        scorers[mode](pop, x_trial).block_until_ready()
        trial[mode] = time.perf_counter() - t
    mode = min(trial, key=trial.get)
    score = scorers[mode]
    es.tell(k0, pop, score(pop, x_trial), state, params)  # compile tell
    running_update(state.mean, x_trial, running)
    setup_s = time.perf_counter() - t_setup

    out = open(a.out, "w")

    def emit(rec):
        out.write(json.dumps(rec, separators=(",", ":")) + "\n")
        out.flush()

    emit({"peer": "evosax", "evosax": metadata.version("evosax"), "jax": jax.__version__,
          "popeval": mode, "popeval_trial_s": {k: round(v, 4) for k, v in trial.items()},
          "setup_s": round(setup_s, 2), "n_params": net.n_params, "width": a.width, "pop": a.pop,
          "sigma": a.sigma, "lr": a.lr, "shape": f"{way}-way {shot}-shot {query}-query",
          "cpus": len(os.sched_getaffinity(0))})

    g, times, losses = 0, [], []
    t_start = time.perf_counter()
    while time.perf_counter() - t_start < a.seconds and (a.generations <= 0 or g < a.generations):
        t0 = time.perf_counter()
        x = jnp.asarray(train_eps.sample())
        key, k_ask, k_tell = jax.random.split(key, 3)
        pop, state = es.ask(k_ask, state, params)
        fit = score(pop, x)
        state, _ = es.tell(k_tell, pop, fit, state, params)
        running = running_update(state.mean, x, running)
        loss = float(fit.mean())  # waits for the generation to finish
        jax.block_until_ready(running)
        dt = time.perf_counter() - t0
        g += 1
        times.append(dt)
        losses.append(loss)
        emit({"generation": g, "seconds": round(dt, 5), "elapsed_s": round(time.perf_counter() - t_start, 3),
              "loss": round(loss, 5)})
    train_s = time.perf_counter() - t_start

    test_eps = Episodes(ds, split_classes(ds, a.eval_split), 5, 5, a.eval_query, seed=0)
    t0 = time.perf_counter()
    acc, ci, test_loss = evaluate(embed, logits, state.mean, running, test_eps, a.eval_episodes)
    eval_s = time.perf_counter() - t0
    k = max(1, min(50, g // 4))
    rec = {"peer": "evosax", "final": True, "generations": g, "updates": g, "train_s": round(train_s, 2),
           "s_per_gen": round(train_s / g, 5) if g else None,
           "s_per_gen_median": round(float(np.median(times)), 5) if g else None,
           "loss_first": round(float(np.mean(losses[:k])), 4) if g else None,
           "loss_last": round(float(np.mean(losses[-k:])), 4) if g else None,
           "loss_window": k, "eval_split": a.eval_split, "test_task": f"5-way 5-shot {a.eval_query}-query",
           "episodes": a.eval_episodes, "eval_bn": "running", "accuracy": round(acc, 6), "ci95": round(ci, 6),
           "loss": round(test_loss, 6), "eval_s": round(eval_s, 2), "popeval": mode}
    emit(rec)
    print(json.dumps(rec, separators=(",", ":")))


if __name__ == "__main__":
    main()
