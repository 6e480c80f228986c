#!/usr/bin/env python3
"""Projected generation time and parallel efficiency of distributed ES, sharded and unsharded,
from measured per-unit costs (docs/RESULTS.md says where each comes from). One worker = one core
running one rank. Prints a Markdown table.

  bench/dist_projection.py [--e MS] [--c MS] [--u NS] [--dim D] [--alpha US] [--beta GBPS]

e: one member's evaluation; c: the centre's batch-norm pass every rank makes each generation;
u: the update per member and coordinate (noise regeneration and accumulation, optimiser folded in);
alpha, beta: a collective step's latency and the link's bandwidth. Collectives are modelled as
recursive doubling / Bruck: log2(W) steps of alpha plus the bytes each rank receives over beta.
The sharded update splits whole 1024-coordinate chunks, so no worker's shard is under one chunk."""
import argparse, math

CHUNK = 1024


def gen_ms(W, P, a, sharded):
    nch = math.ceil(a.dim / CHUNK)
    steps = math.ceil(math.log2(W)) if W > 1 else 0
    lat = steps * a.alpha * 1e-3                       # ms per collective
    bw = lambda nbytes: nbytes / (a.beta * 1e9) * 1e3  # ms to receive nbytes
    evals = math.ceil(P / W) * a.e
    if sharded:
        shard = min(math.ceil(nch / W), nch) * CHUNK
        shard = min(shard, a.dim)
        update = P * shard * a.u * 1e-6
        # members (12 B each + a status per rank), the centre, the per-chunk partial sums,
        # the stop flag (an allreduce: twice the steps), and every 10th generation the state
        # check with Adam's two moments gathered
        comm = (lat + bw(12 * P + 4 * W)) + (lat + bw(4 * a.dim * (W - 1) / W)) + (lat + bw(8 * nch)) + 2 * lat
        comm += (3 * lat + bw(8 * a.dim * (W - 1) / W)) / 10
    else:
        update = P * a.dim * a.u * 1e-6
        comm = (lat + bw(12 * P + 4 * W)) + 2 * lat + (2 * lat) / 10
    return evals, update, comm, evals + a.c + update + comm


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--e", type=float, default=17.0)
    ap.add_argument("--c", type=float, default=17.0)
    ap.add_argument("--u", type=float, default=9.0)
    ap.add_argument("--dim", type=int, default=111936)
    ap.add_argument("--alpha", type=float, default=20.0)
    ap.add_argument("--beta", type=float, default=1.25)
    a = ap.parse_args()
    print("| workers W | P | member evaluation (ms) | update per worker, unsharded -> sharded (ms) | collectives, "
          "sharded (ms) | generation, unsharded -> sharded (ms) | efficiency, unsharded -> sharded |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for W in (8, 32, 128, 512, 1024, 4096):
        for k in (1, 4):
            P = k * W
            one = P * a.e + a.c + P * a.dim * a.u * 1e-6  # one core does everything, no wire
            ev, up0, _, t0 = gen_ms(W, P, a, False)
            _, up1, cm1, t1 = gen_ms(W, P, a, True)
            print(f"| {W} | {P} | {ev:.0f} | {up0:.1f} -> {up1:.1f} | {cm1:.2f} | {t0:.0f} -> {t1:.0f} | "
                  f"{100 * one / (W * t0):.0f}% -> {100 * one / (W * t1):.0f}% |")


if __name__ == "__main__":
    main()
