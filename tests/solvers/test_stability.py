"""Step sizes beyond the stability bound are refused before the run, and the bound is the right
one: plain gradient descent on the inner quadratic contracts just below 2/L and blows up just
above it (|1 - alpha L| crosses 1)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from bilevel.analysis import QuadraticBilevel
from bilevel.proofs_checks.instances import convex_phi_instance
from bilevel.solvers import (
    FSLA,
    AccBiO,
    AIDBiO,
    ITDBiO,
    Smoothness,
    StocBiO,
    estimate_inner_smoothness,
)
from bilevel.solvers.problems import QuadraticProblem
from bilevel.solvers.stability import ProvenRangeWarning


def _problem(seed: int = 0) -> tuple[QuadraticBilevel, QuadraticProblem]:
    inst = convex_phi_instance(3, 5, 10.0, seed)
    return inst, QuadraticProblem.from_blocks(inst.as_numpy())


def test_quadratic_smoothness_matches_the_symbolic_hessian() -> None:
    """L_g = lambda_max(A); L_Phi = ||hess Phi||_2 with the Hessian from bilevel.analysis
    (sympy, exact) against the torch formula: equal to float64 rounding (1e-12 relative)."""
    inst, problem = _problem()
    constants = problem.smoothness()
    hessian = np.array(inst.hessian(), dtype=float)
    assert constants.outer == pytest.approx(np.linalg.norm(hessian, 2), rel=1e-12)
    assert constants.inner == pytest.approx(float(inst.constants.L), rel=1e-12)


def test_power_iteration_finds_lambda_max() -> None:
    """A with spectrum 1..10 (lambda_2/lambda_1 = 0.9): 400 power steps leave a relative error
    below 0.9^800 tan^2(theta_0) ~ 1e-36 tan^2(theta_0); 1e-10 allows tan(theta_0) up to 1e13."""
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((10, 10)))
    a = torch.from_numpy(q @ np.diag(np.arange(1.0, 11.0)) @ q.T)

    def inner(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return 0.5 * y @ (a @ y) - x.sum() * y.sum()

    x, y = torch.zeros(2, dtype=torch.float64), torch.zeros(10, dtype=torch.float64)
    generator = torch.Generator().manual_seed(0)
    estimate = estimate_inner_smoothness(inner, x, y, iterations=400, generator=generator)
    assert estimate == pytest.approx(10.0, rel=1e-10)


@pytest.mark.parametrize("factor, diverges", [(1.99, False), (2.01, True)])
def test_two_over_L_is_where_inner_gradient_descent_diverges(factor: float, diverges: bool) -> None:
    """4000 GD steps on g(x, .) from y = 0: the error along the top eigenvector is multiplied by
    |1 - factor| = 0.99 or 1.01 per step, i.e. 0.99^4000 ~ 3.5e-18 or 1.01^4000 ~ 2e17."""
    inst, problem = _problem()
    L = problem.smoothness().inner
    x = torch.ones(3, dtype=torch.float64)
    y = torch.zeros(5, dtype=torch.float64)
    y_star = torch.from_numpy(np.asarray(inst.inner_solution(backend="numpy")(x.numpy()), float))
    start = float(torch.linalg.vector_norm(y - y_star.ravel()))
    b = problem.blocks
    for _ in range(4000):
        y = y - factor / L * (b["A"] @ y - b["B"] @ x - b["c"])
    ratio = float(torch.linalg.vector_norm(y - y_star.ravel())) / start
    assert (ratio > 1e6) if diverges else (ratio < 1e-6)


def _batched(fn):
    return lambda x, y, batch: fn(x, y)


def _builders(problem: QuadraticProblem, constants: Smoothness) -> dict:
    generator = torch.Generator().manual_seed(0)
    f, g = problem.outer, problem.inner
    fb, gb = _batched(f), _batched(g)
    sampler = lambda gen: None  # noqa: E731

    def aid(inner_lr, outer_lr):
        return AIDBiO(
            outer=f,
            inner=g,
            inner_steps=5,
            inner_lr=inner_lr,
            outer_lr=outer_lr,
            solver="neumann",
            smoothness=constants,
        )

    def itd(inner_lr, outer_lr):
        return ITDBiO(
            outer=f,
            inner=g,
            inner_steps=5,
            inner_lr=inner_lr,
            outer_lr=outer_lr,
            smoothness=constants,
        )

    def stocbio(inner_lr, outer_lr):
        return StocBiO(
            outer=fb,
            inner=gb,
            sampler=sampler,
            generator=generator,
            inner_steps=5,
            inner_lr=inner_lr,
            outer_lr=outer_lr,
            solver_steps=5,
            solver_lr=inner_lr,
            smoothness=constants,
        )

    def accbio(inner_lr, outer_lr):
        return AccBiO(
            outer=f,
            inner=g,
            inner_steps=5,
            inner_lr=inner_lr,
            outer_lr=outer_lr / 2,
            kappa_y=10.0,
            smoothness=constants,
        )

    def fsla(inner_lr, outer_lr):
        return FSLA(
            outer=fb,
            inner=gb,
            sampler=sampler,
            generator=generator,
            inner_lr=inner_lr,
            outer_lr=outer_lr,
            smoothness=constants,
        )

    return {"aid": aid, "itd": itd, "stocbio": stocbio, "accbio": accbio, "fsla": fsla}


@pytest.mark.parametrize("name", ["aid", "itd", "stocbio", "accbio", "fsla"])
def test_algorithms_refuse_steps_beyond_the_bound_at_construction(name: str) -> None:
    """Inside the range (0.99 x bound) builds; 1.01 x the inner or the outer bound raises a
    ValueError naming the step, before any oracle call. AccBiO's Nesterov step is held to
    1/L_Phi (the builder halves outer_lr, so 2.02/L_Phi becomes 1.01/L_Phi)."""
    _, problem = _problem()
    constants = problem.smoothness()
    build = _builders(problem, constants)[name]
    L_g, L_phi = constants.inner, constants.outer
    with pytest.warns(ProvenRangeWarning, match="inner_lr = .* above 1/L"):
        build(1.99 / L_g, 1.98 / L_phi)
    with pytest.raises(ValueError, match=r"inner_lr = .* stability range"):
        build(2.02 / L_g, 1.0 / L_phi)
    with pytest.raises(ValueError, match="outer_lr"):
        build(1.0 / L_g, 2.02 / L_phi)


@pytest.mark.parametrize("name", ["aid", "itd", "stocbio", "accbio", "fsla"])
def test_steps_inside_the_proven_range_build_without_a_warning(name: str) -> None:
    """At 1/L (the theorems' largest step) nothing is said; just above it, a warning names the
    step, before any oracle call (the builders make none)."""
    _, problem = _problem()
    constants = problem.smoothness()
    build = _builders(problem, constants)[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build(1.0 / constants.inner, 1.0 / constants.outer)
    with pytest.warns(ProvenRangeWarning, match="inner_lr"):
        build(1.2 / constants.inner, 1.0 / constants.outer)


def test_neumann_step_is_checked_separately_from_the_inner_step() -> None:
    _, problem = _problem()
    constants = problem.smoothness()
    with pytest.raises(ValueError, match=r"solver_lr \(Neumann eta\)"):
        AIDBiO(
            outer=problem.outer,
            inner=problem.inner,
            inner_steps=5,
            inner_lr=1.0 / constants.inner,
            outer_lr=1.0 / constants.outer,
            solver="neumann",
            solver_lr=2.5 / constants.inner,
            smoothness=constants,
        )
    with pytest.raises(ValueError, match="positive finite"):
        Smoothness(inner=-1.0)
