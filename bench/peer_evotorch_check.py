#!/usr/bin/env python3
"""Checks that bench/peer_evotorch.py's EvoTorch configuration takes esmeta's openai-es step.

On a small quadratic, runs EvoTorch's PGPE exactly as the peer configures it and, beside it, esmeta's
update written out (src/es/openai_es.c, src/es/fitness.c, src/es/optim.c): centred ranks in [-0.5, 0.5]
(best +0.5), g = sum_i w_i z_i / (P sigma) over the P antithetic members, Adam (0.9, 0.999, eps 1e-8),
no weight decay. EvoTorch's step k applies the update from the population its step k-1 evaluated, so
the reference consumes each population one step behind. Exits 1 if the centres drift apart by more
than 1e-4 of a step. Runs in a second; needs torch and evotorch only.
"""
import logging
import sys
import warnings

import torch

warnings.filterwarnings("ignore", category=FutureWarning)
from evotorch import Problem  # noqa: E402
from evotorch.algorithms import PGPE  # noqa: E402

logging.getLogger("evotorch").setLevel(logging.WARNING)
torch.set_num_threads(1)
torch.manual_seed(0)
n, P, sigma, lr, steps = 50, 8, 0.02, 0.002, 10
target = torch.randn(n)


class Quadratic(Problem):
    def __init__(self):
        super().__init__(objective_sense="max", solution_length=n, dtype=torch.float32)
        self.vals = None

    def _evaluate_batch(self, b):
        v = b.values.as_subclass(torch.Tensor)
        self.vals = v.clone()
        b.set_evals(-((v - target) ** 2).sum(1))


q = Quadratic()
es = PGPE(q, popsize=P, center_learning_rate=lr, stdev_learning_rate=0.0, stdev_init=sigma, center_init=torch.zeros(n),
          optimizer="adam", optimizer_config={"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8 * sigma ** 2},
          ranking_method="centered", symmetric=True, stdev_max_change=None)
theta = torch.zeros(n, dtype=torch.float64)
m, v = torch.zeros_like(theta), torch.zeros_like(theta)
es.step()
worst = 0.0
for t in range(1, steps + 1):
    x = q.vals.double()
    f = -((x - target.double()) ** 2).sum(1)
    z = (x - theta) / sigma
    if not torch.allclose(z[0::2], -z[1::2], atol=1e-3):
        sys.exit("peer_evotorch_check: EvoTorch's population is not antithetic around the reference centre")
    w = torch.empty(P, dtype=torch.float64)
    w[torch.argsort(f)] = torch.arange(P, dtype=torch.float64) / (P - 1) - 0.5
    g = (w[:, None] * z).sum(0) / (P * sigma)
    m = 0.9 * m + 0.1 * g
    v = 0.999 * v + 0.001 * g * g
    theta = theta + lr * (m / (1 - 0.9 ** t)) / ((v / (1 - 0.999 ** t)).sqrt() + 1e-8)
    es.step()
    worst = max(worst, float((es.status["center"].as_subclass(torch.Tensor).double() - theta).abs().max() / lr))
print(f"peer_evotorch_check: {steps} steps, largest centre difference {worst:.2e} of a step "
      f"({'ok' if worst < 1e-4 else 'FAIL'})")
sys.exit(0 if worst < 1e-4 else 1)
