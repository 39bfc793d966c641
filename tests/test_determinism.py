"""Determinism: the same seeds give bit-identical results on the CPU in two fresh processes.

Each process computes a few seeded results (a randomized-truncation hypergradient, a stocBiO run,
a UFOM-SGD run, a statistical claim's measurement) and prints the SHA-256 of their bytes; the
two digests must be equal. (On CUDA, atomics in some reductions can change the last bits from
run to run; the report says so, and the CUDA tests compare with tolerances.)
"""

from __future__ import annotations

import subprocess
import sys

PROGRAM = r"""
import hashlib, json
import torch
from bilevel.proofs_checks.instances import convex_phi_instance, noisy_quadratic_objectives
from bilevel.proofs_checks.instances import quadratic_objectives
from bilevel.proofs_checks.runner import execute_run
from bilevel.solvers import StocBiO, hypergradient

digest = hashlib.sha256()
inst = convex_phi_instance(3, 5, 10.0, 0)
L = float(inst.constants.L)
outer, inner = quadratic_objectives(inst)
x, y = torch.ones(3, dtype=torch.float64), torch.zeros(5, dtype=torch.float64)
gen = torch.Generator().manual_seed(7)
for _ in range(20):
    v = hypergradient(outer, inner, x, y, method="rt", p=0.1, lr=1 / L, mu=float(inst.constants.mu),
                      generator=gen)
    digest.update(v.numpy().tobytes())
fb, gb, sampler = noisy_quadratic_objectives(inst, 0.3)
algo = StocBiO(outer=fb, inner=gb, sampler=sampler, generator=torch.Generator().manual_seed(3),
               inner_steps=3, inner_lr=1 / L, outer_lr=0.05, solver_steps=3, solver_lr=1 / L)
state = algo.init(x, y)
for _ in range(50):
    state = algo.step(state)
digest.update(state.x.numpy().tobytes() + state.y.numpy().tobytes())
run = execute_run("ufom/unbiased-ztest", {"seed": 0, "tasks": 4, "dim": 3, "steps": 5,
                                           "alpha": 0.1, "q": 0.25, "test_seed": 0})
digest.update(json.dumps(run["measurement"], sort_keys=True).encode())
print(digest.hexdigest())
"""


def _digest() -> str:
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, check=True, timeout=600
    )
    return result.stdout.strip()


def test_same_seeds_give_bit_identical_results_in_two_processes() -> None:
    first, second = _digest(), _digest()
    assert len(first) == 64 and first == second
