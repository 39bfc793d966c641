"""BDA on the non-singleton counterexample (spec 7.10) against ``bilevel.analysis.bda``.

phi_K(x) = F(x, y_K(x)) is a quadratic with curvature h_K in (0, 2] (exact, from the analysis):
outer GD with beta = 1 / h_K is Newton's step, so with the exact hypergradient the first step
lands on argmin phi_K; 3 steps are run and compared to float64 rounding (1e-12 absolute)."""

from __future__ import annotations

import pytest
import sympy as sp
import torch

from bilevel.analysis import bda as exact
from bilevel.solvers.bda import BDA

HALF = sp.Rational(1, 2)


def upper(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 0.5 * (x[0] - y[1]) ** 2 + 0.5 * (y[0] - 1) ** 2


def lower(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 0.5 * y[0] ** 2 - x[0] * y[0]


def _curvature(weights, s_u, s_l, lower_weights=None) -> float:
    y = exact.aggregated_inner_iterate(weights, s_u, s_l, lower_weights=lower_weights)
    return float(sp.expand(exact.upper_objective(exact.x, y)).coeff(exact.x, 2) * 2)


def _run(curvature: float, **kwargs) -> float:
    x0 = torch.tensor([3.0], dtype=torch.float64)
    y0 = torch.zeros(2, dtype=torch.float64)
    state, _ = BDA(outer=upper, inner=lower, outer_lr=1 / curvature, **kwargs).run(
        x0, y0, iterations=3
    )
    return float(state.x[0])


@pytest.mark.parametrize("K", [5, 20])
def test_bda_reaches_the_exact_minimiser_of_phi_K(K: int) -> None:
    weights = exact.harmonic_schedule(1, K)
    got = _run(_curvature(weights, HALF, HALF), inner_steps=K, upper_lr=0.5, inner_lr=0.5)
    want = float(exact.aggregated_minimiser(weights, HALF, HALF))
    assert got == pytest.approx(want, abs=1e-12)
    assert want > 0.9  # far from RHG's 1/2, moving to x* = 1 as K grows


def test_rhg_alpha_zero_is_the_planted_failure_stuck_at_one_half() -> None:
    curvature = _curvature([0] * 60, HALF, HALF)
    got = _run(curvature, inner_steps=60, upper_lr=0.5, inner_lr=0.5, aggregation=0.0)
    # phi_60 for alpha = 0: y_1 = x (1 - 0.5^60), y_2 = 0; minimiser 1/2 up to 0.5^60.
    assert got == pytest.approx(float(exact.lower_level_singleton_minimiser()), abs=1e-12)


def test_geometric_schedule_stalls_where_derived() -> None:
    """Official schedule (lr = 0.1, alpha = 0.6): BDA reaches the exact phi_K minimiser at
    K = 150, which is within 1e-2 of the limit 1/(1 + c^2) ~ 0.772 (what is left of the lower
    weight's transient is 0.96^150 ~ 2e-3) and far from x* = 1."""
    K = 150
    weights = [sp.Rational(1, 10) * w for w in exact.geometric_schedule(sp.Rational(6, 10), K)]
    lower_weights = [sp.Rational(4, 10)] * K
    tenth = sp.Rational(1, 10)
    got = _run(
        _curvature(weights, 1, tenth, lower_weights),
        inner_steps=K,
        upper_lr=0.1,
        inner_lr=0.1,
        aggregation=0.6,
        schedule="geometric",
    )
    want = float(exact.aggregated_minimiser(weights, 1, tenth, lower_weights=lower_weights))
    assert got == pytest.approx(want, abs=1e-10)
    assert got == pytest.approx(exact.geometric_limit_minimiser(0.1, 0.6), abs=1e-2)


def test_one_stage_variant_is_exact_on_one_step() -> None:
    """K = 1: differentiating the last step is the whole reverse pass, and the symmetric finite
    difference is exact for the quadratic aggregated loss (round-off 1e-12)."""
    reverse = _run(1.0, inner_steps=1, upper_lr=0.5, inner_lr=0.5)
    one_stage = _run(1.0, inner_steps=1, upper_lr=0.5, inner_lr=0.5, gradient="one-stage")
    assert one_stage == pytest.approx(reverse, abs=1e-9)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown schedule"):
        BDA(
            outer=upper,
            inner=lower,
            inner_steps=5,
            upper_lr=0.5,
            inner_lr=0.5,
            outer_lr=0.5,
            schedule="cosine",
        )
    with pytest.raises(ValueError, match="aggregation"):
        BDA(
            outer=upper,
            inner=lower,
            inner_steps=5,
            upper_lr=0.5,
            inner_lr=0.5,
            outer_lr=0.5,
            aggregation=1.5,
        )
    with pytest.raises(ValueError, match="unknown gradient"):
        BDA(
            outer=upper,
            inner=lower,
            inner_steps=5,
            upper_lr=0.5,
            inner_lr=0.5,
            outer_lr=0.5,
            gradient="forward",
        )
