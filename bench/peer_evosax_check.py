#!/usr/bin/env python3
"""Checks that bench/peer_evosax.py's evosax configuration takes esmeta's openai-es step.

On a small quadratic, runs evosax's Open_ES exactly as the peer configures it and, beside it, esmeta's
update written out (src/es/openai_es.c, src/es/fitness.c, src/es/optim.c): centred ranks in [-0.5, 0.5]
(best +0.5), g = sum_i w_i z_i / (P sigma) over the P antithetic members, Adam (0.9, 0.999, eps 1e-8),
no weight decay, ascending minus the loss. Exits 1 if the centres drift apart by more than 1e-4 of a
step. Runs in seconds; needs jax, optax and evosax only.
"""
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
from evosax.algorithms import Open_ES

jax.config.update("jax_enable_x64", True)
n, P, sigma, lr, steps = 50, 8, 0.02, 0.002, 10
target = np.random.default_rng(0).standard_normal(n)
es = Open_ES(population_size=P, solution=jnp.zeros(n), use_antithetic_sampling=True,
             optimizer=optax.adam(lr, b1=0.9, b2=0.999, eps=1e-8), std_schedule=optax.constant_schedule(sigma))
params = es.default_params
key = jax.random.key(0)
state = es.init(key, jnp.zeros(n), params)
theta, m, v = np.zeros(n), np.zeros(n), np.zeros(n)
worst = 0.0
for t in range(1, steps + 1):
    key, ka, kt = jax.random.split(key, 3)
    pop, state_a = es.ask(ka, state, params)
    x = np.asarray(pop)
    loss = ((x - target) ** 2).sum(1)
    z = (x - theta) / sigma
    if not np.allclose(z[: P // 2], -z[P // 2 :], atol=1e-6):
        sys.exit("peer_evosax_check: evosax's population is not antithetic around the reference centre")
    f = -loss  # esmeta maximises minus the loss
    w = np.empty(P)
    w[np.argsort(f)] = np.arange(P) / (P - 1) - 0.5
    g = (w[:, None] * z).sum(0) / (P * sigma)
    m = 0.9 * m + 0.1 * g
    v = 0.999 * v + 0.001 * g * g
    theta = theta + lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    state, _ = es.tell(kt, pop, jnp.asarray(loss), state_a, params)
    worst = max(worst, float(np.abs(np.asarray(state.mean) - theta).max() / lr))
print(f"peer_evosax_check: {steps} steps, largest centre difference {worst:.2e} of a step "
      f"({'ok' if worst < 1e-4 else 'FAIL'})")
sys.exit(0 if worst < 1e-4 else 1)
