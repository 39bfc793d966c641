"""No graph leak: after 1000 outer iterations every algorithm holds as many live tensors as after
10 (gc count: a retained autograd graph or a growing list of tensors shows up exactly), and the
process's resident memory grew by less than 5% (issue 9's criterion)."""

from __future__ import annotations

import gc

import pytest
import torch

from bilevel.proofs_checks.instances import convex_phi_instance, noisy_quadratic_objectives
from bilevel.solvers import FSLA, AccBiO, AIDBiO, ITDBiO, StocBiO
from bilevel.solvers.bda import BDA
from bilevel.solvers.mgbio import MGBiO
from bilevel.solvers.minimax_gda import MinimaxGDA
from bilevel.solvers.msgbio import MSGBiO
from bilevel.solvers.problems import QuadraticProblem
from bilevel.solvers.ufom import UFOMSGD
from bilevel.solvers.vr_msgbio import VRMSGBiO

from ._proc import proc_status_kib


def _builders():
    inst = convex_phi_instance(3, 5, 10.0, 0)
    problem = QuadraticProblem.from_blocks(inst.as_numpy())
    f, g = problem.outer, problem.inner
    fb, gb, sampler = noisy_quadratic_objectives(inst, 0.1)
    L = float(inst.constants.L)

    def generator():
        return torch.Generator().manual_seed(0)

    def toy_loss(phi, task):
        return 0.5 * ((phi - float(task)) ** 2).sum()

    def toy_task(gen):
        return int(torch.randint(0, 2, (), generator=gen))

    return {
        "AID-BiO": lambda: AIDBiO(outer=f, inner=g, inner_steps=3, inner_lr=1 / L, outer_lr=0.05),
        "ITD-BiO": lambda: ITDBiO(outer=f, inner=g, inner_steps=3, inner_lr=1 / L, outer_lr=0.05),
        "stocBiO": lambda: StocBiO(
            outer=fb,
            inner=gb,
            sampler=sampler,
            generator=generator(),
            inner_steps=3,
            inner_lr=1 / L,
            outer_lr=0.05,
            solver_steps=3,
            solver_lr=1 / L,
        ),
        "AccBiO": lambda: AccBiO(
            outer=f, inner=g, inner_steps=3, inner_lr=1 / L, outer_lr=0.05, kappa_y=10.0
        ),
        "FSLA": lambda: FSLA(
            outer=fb,
            inner=gb,
            sampler=sampler,
            generator=generator(),
            inner_lr=1 / L,
            outer_lr=0.05,
            momentum=0.5,
        ),
        "minimax GDA": lambda: MinimaxGDA(
            outer=f, inner=g, penalty=5.0, outer_lr=0.01, inner_lr=0.01, auxiliary_lr=0.01
        ),
        "MGBiO": lambda: MGBiO(
            outer=f, inner=g, inner_lr=1 / L, solver_lr=1 / L, outer_lr=0.05, momentum=0.5
        ),
        "MSGBiO": lambda: MSGBiO(
            outer=fb,
            inner=gb,
            sampler=sampler,
            generator=generator(),
            inner_lr=1 / L,
            solver_lr=1 / L,
            outer_lr=0.05,
        ),
        "VR-MSGBiO": lambda: VRMSGBiO(
            outer=fb,
            inner=gb,
            sampler=sampler,
            generator=generator(),
            inner_lr=1 / L,
            solver_lr=1 / L,
            outer_lr=0.05,
        ),
        "BDA": lambda: BDA(
            outer=f, inner=g, inner_steps=3, upper_lr=0.1, inner_lr=0.1, outer_lr=0.05
        ),
        "UFOM-SGD": lambda: UFOMSGD(
            inner=toy_loss,
            outer=toy_loss,
            sampler=toy_task,
            generator=generator(),
            inner_steps=3,
            inner_lr=0.1,
            outer_lr=1.0,
            q=0.5,
        ),
    }


def _live_tensors() -> int:
    gc.collect()
    # type() rather than isinstance: no attribute lookups on lazily deprecated module objects
    return sum(1 for obj in gc.get_objects() if issubclass(type(obj), torch.Tensor))


@pytest.mark.parametrize("name", list(_builders()))
def test_memory_is_flat_over_1000_iterations(name: str) -> None:
    algo = _builders()[name]()
    x0, y0 = torch.ones(3, dtype=torch.float64), torch.zeros(5, dtype=torch.float64)
    state = algo.init(x0, None if name == "UFOM-SGD" else y0)  # UFOM-SGD has no y
    for _ in range(10):
        state = algo.step(state)
    tensors, rss = _live_tensors(), proc_status_kib("VmRSS")
    for _ in range(990):
        state = algo.step(state)
    assert state.iteration == 1000
    assert _live_tensors() <= tensors
    assert proc_status_kib("VmRSS") <= 1.05 * rss


def test_a_planted_leak_is_caught() -> None:
    """An algorithm that keeps every iterate's graph (a list of tensors that grows) fails the
    tensor count: the check above can fail."""

    class Leaky:
        def __init__(self) -> None:
            self.inner = _builders()["AID-BiO"]()
            self.kept: list[torch.Tensor] = []

        def init(self, x, y):
            return self.inner.init(x, y)

        def step(self, state):
            state = self.inner.step(state)
            self.kept.append(state.x.clone().requires_grad_(True) * 2)
            return state

    algo = Leaky()
    state = algo.init(torch.ones(3, dtype=torch.float64), torch.zeros(5, dtype=torch.float64))
    for _ in range(10):
        state = algo.step(state)
    tensors = _live_tensors()
    for _ in range(90):
        state = algo.step(state)
    assert _live_tensors() > tensors
