"""Divergence is reported, not returned (issue: no silent wrong answer).

On a quadratic with H = diag(1, 2) (L = 2) every configuration below diverges: a step above
2/L, or a concave inner objective. Each used to return a finite wrong number (Neumann -6.6e94
at 200 steps, about 3e5 at 3/L and 20 steps; AID-BiO at inner_lr = 10 ran to x ~ 3e60; a
concave g gave x ~ 1e28) or NaN. The checks are exact facts, not tuned thresholds: every
term (I - eta H)^q b of a convergent Neumann series is no longer than b (symmetric H,
0 <= eta lambda <= 2; 1% slack for rounding), and gradient steps on a convex g at lr <= 2/L
never grow (a 1e3 slack admits a nonconvex g).
"""

from __future__ import annotations

import pytest
import torch

from bilevel.solvers import AIDBiO, ITDBiO, hypergradient

A = torch.diag(torch.tensor([1.0, 2.0], dtype=torch.float64))
X = torch.ones(2, dtype=torch.float64)
Y = torch.tensor([0.3, -0.7], dtype=torch.float64)


def convex(x, y):
    return 0.5 * y @ A @ y - x @ y


def concave(x, y):
    return -0.5 * (y**2).sum() + x @ y


def outer(x, y):
    return 0.5 * (y**2).sum() + 0.1 * (x**2).sum()


@pytest.mark.parametrize(
    ("inner", "method", "options", "match"),
    [
        (convex, "neumann", {"steps": 200, "lr": 1.5}, "Neumann term .* grew"),
        (convex, "neumann", {"steps": 20, "lr": 1.5}, "Neumann term .* grew"),
        (convex, "itd", {"steps": 500, "lr": 1.5}, "ITD's inner gradient .* grew"),
        (concave, "neumann", {"steps": 20, "lr": 0.5}, "not positive definite"),
        (concave, "itd", {"steps": 20, "lr": 0.5}, "not convex in y"),
        (convex, "rt", {"p": 0.5, "lr": 1.5, "mu": 1.0, "level": 30}, None),
    ],
)
def test_divergent_estimators_raise(inner, method, options, match) -> None:
    with pytest.raises((FloatingPointError, ValueError), match=match):
        hypergradient(outer, inner, X, Y, method=method, **options)


def test_convergent_configurations_pass_the_same_checks() -> None:
    """At 1/L and 2/L - 1e-9 (the edge of stability) nothing is raised."""
    for lr in (0.5, 1.0 - 1e-9):
        hypergradient(outer, convex, X, Y, method="neumann", steps=200, lr=lr)
        hypergradient(outer, convex, X, Y, method="itd", steps=200, lr=lr)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: AIDBiO(outer=outer, inner=convex, inner_steps=5, inner_lr=10.0, outer_lr=0.1),
         "inner gradient .* grew"),
        (lambda: AIDBiO(outer=outer, inner=concave, inner_steps=1, inner_lr=0.5, outer_lr=0.1,
                        solver="neumann"), "fixed-point residual .* grew"),
        (lambda: ITDBiO(outer=outer, inner=convex, inner_steps=50, inner_lr=1.5, outer_lr=0.1),
         "grew"),
    ],
)  # fmt: skip
def test_divergent_outer_algorithms_raise(build, match) -> None:
    with pytest.raises(FloatingPointError, match=match):
        build().run(X, Y, iterations=20)


def test_rounding_level_growth_is_not_divergence() -> None:
    """A warm-started AID-BiO residual can start at ~1e-16 ||b|| and wobble by 25%: below the
    floor 1e3 eps ||b|| that is rounding (the false alarm seen on iteration 290 of
    ``ji2021/aid-bio-linear-rate``); above it the same growth still raises."""
    from bilevel.solvers._flat import check_not_growing

    first = torch.full((4,), 1.0e-16, dtype=torch.float64)
    last = 1.25 * first
    floor = 1e3 * torch.finfo(torch.float64).eps * 2.65
    check_not_growing(first, last, 1.01, "residual", 10, "cause", floor=floor)
    with pytest.raises(FloatingPointError, match="residual grew"):
        check_not_growing(first, last, 1.01, "residual", 10, "cause")
    with pytest.raises(FloatingPointError, match="residual grew"):
        check_not_growing(first * 1e6, last * 1e6, 1.01, "residual", 10, "cause", floor=floor)
