#!/usr/bin/env python3
"""Projected generation time and parallel efficiency of distributed ES, sharded and unsharded,
from measured per-unit costs (docs/RESULTS.md says where each comes from). One worker = one core
running one rank. Prints a Markdown table.

  bench/dist_projection.py [--e MS] [--c MS] [--u NS] [--o MS] [--sums N] [--dim D] [--alpha US] [--beta GBPS]

e: one member's evaluation; c: the centre's batch-norm pass every rank makes each generation;
u: the noise work of the update per member and coordinate (regeneration and weighted sum), the
part a sharded update splits; o: the rest of the update, O(dim), which every rank performs;
sums: noise sums gathered (openai-es 1, the others 2), 8 bytes a coordinate each;
alpha, beta: a collective step's latency and the link's bandwidth. Collectives are modelled as
recursive doubling / Bruck: log2(W) steps of alpha plus the bytes each rank receives over beta."""
import argparse, math


def gen_ms(W, P, a, sharded):
    steps = math.ceil(math.log2(W)) if W > 1 else 0
    lat = steps * a.alpha * 1e-3                       # ms per collective
    bw = lambda nbytes: nbytes / (a.beta * 1e9) * 1e3  # ms to receive nbytes
    evals = math.ceil(P / W) * a.e
    # members (12 B each and a status per rank), the stop flag (an allreduce: twice the steps),
    # every 10th generation the 16-byte state check
    comm = (lat + bw(12 * P + 4 * W)) + 2 * lat + 2 * lat / 10
    if sharded:
        update = P * math.ceil(a.dim / W) * a.u * 1e-6 + a.o
        comm += a.sums * (lat + bw(8 * a.dim * (W - 1) / W))
    else:
        update = P * a.dim * a.u * 1e-6 + a.o
    return evals, update, comm, evals + a.c + update + comm


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--e", type=float, default=17.0)
    ap.add_argument("--c", type=float, default=17.0)
    ap.add_argument("--u", type=float, default=7.0)
    ap.add_argument("--o", type=float, default=3.8)
    ap.add_argument("--sums", type=int, default=1)
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
            one = P * a.e + a.c + P * a.dim * a.u * 1e-6 + a.o  # one core does everything, no wire
            ev, up0, _, t0 = gen_ms(W, P, a, False)
            _, up1, cm1, t1 = gen_ms(W, P, a, True)
            print(f"| {W} | {P} | {ev:.0f} | {up0:.1f} -> {up1:.1f} | {cm1:.2f} | {t0:.0f} -> {t1:.0f} | "
                  f"{100 * one / (W * t0):.0f}% -> {100 * one / (W * t1):.0f}% |")


if __name__ == "__main__":
    main()
