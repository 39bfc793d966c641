"""The seed methods' solvers give the same iterates on every device: 20 steps in float64 on the
accelerator (when present) equal the CPU run to 1e-10 relative (different reduction orders
only). On a CPU-only machine the parameter sets are empty and pytest reports the tests as
skipped."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bilevel.proofs_checks.instances import convex_phi_instance
from bilevel.solvers.bda import BDA
from bilevel.solvers.mgbio import MGBiO
from bilevel.solvers.minimax_gda import MinimaxGDA
from bilevel.solvers.problems import QuadraticProblem
from bilevel.solvers.ufom import UFOMSGD

ACCELERATORS = ["cuda"] if torch.cuda.is_available() else []


def _quadratic(device: str):
    inst = convex_phi_instance(3, 5, 10.0, 0)
    problem = QuadraticProblem.from_blocks(inst.as_numpy(), device=device)
    x0 = torch.ones(3, dtype=torch.float64, device=device)
    y0 = torch.zeros(5, dtype=torch.float64, device=device)
    return inst, problem, x0, y0


def _builders():
    def minimax(problem):
        return MinimaxGDA(
            outer=problem.outer,
            inner=problem.inner,
            penalty=5.0,
            outer_lr=0.01,
            inner_lr=0.01,
            auxiliary_lr=0.01,
        )

    def bda(problem):
        return BDA(
            outer=problem.outer,
            inner=problem.inner,
            inner_steps=5,
            upper_lr=0.1,
            inner_lr=0.1,
            outer_lr=0.1,
            aggregation=0.5,
        )

    def mgbio(problem):
        return MGBiO(
            outer=problem.outer,
            inner=problem.inner,
            inner_lr=0.1,
            solver_lr=0.1,
            outer_lr=0.1,
            momentum=0.5,
        )

    return {"minimax": minimax, "bda": bda, "mgbio": mgbio}


@pytest.mark.parametrize("device", ACCELERATORS)
@pytest.mark.parametrize("name", ["minimax", "bda", "mgbio"])
def test_accelerator_iterates_equal_cpu_iterates(device: str, name: str) -> None:
    build = _builders()[name]
    finals = []
    for where in ("cpu", device):
        _, problem, x0, y0 = _quadratic(where)
        state, _ = build(problem).run(x0, y0, iterations=20)
        assert state.x.device.type == where
        finals.append(state.x.cpu().numpy())
    assert np.allclose(finals[0], finals[1], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("device", ACCELERATORS)
def test_ufom_sgd_on_an_accelerator_follows_the_cpu_run(device: str) -> None:
    """Task and xi draws come from the CPU generator, so both runs see the same randomness."""
    centers = torch.tensor([[0.0, 1.0], [2.0, -1.0]], dtype=torch.float64)
    finals = []
    for where in ("cpu", device):
        c = centers.to(where)

        def loss(phi, task, c=c):
            return 0.5 * ((phi - c[task]) ** 2).sum()

        def sample(generator):
            return int(torch.randint(0, 2, (), generator=generator))

        algo = UFOMSGD(
            inner=loss,
            outer=loss,
            sampler=sample,
            generator=torch.Generator().manual_seed(0),
            inner_steps=3,
            inner_lr=0.1,
            outer_lr=1.0,
            q=0.5,
        )
        state, _ = algo.run(torch.ones(2, dtype=torch.float64, device=where), iterations=20)
        finals.append(state.x.cpu().numpy())
    assert np.allclose(finals[0], finals[1], rtol=1e-10, atol=1e-12)
