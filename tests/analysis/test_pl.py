"""PL lower-level instances: PL constants, the surrogate hypergradient, selection behaviour.

All checks are exact (sympy) or float64 with tolerances from rounding of O(1) quantities
(1e-10 relative); the PL inequality is checked on random points with a relative slack of 1e-9
for float64 rounding of the eigenvalue.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from bilevel.analysis import PLLeastSquaresGame, ScalarPLGame

seeds = st.integers(0, 2**32 - 1)


def _game(seed: int) -> PLLeastSquaresGame:
    return PLLeastSquaresGame.random(m=4, d_x=2, d_y=4, rank=2, seed=seed)


@settings(max_examples=10)
@given(seed=seeds)
def test_surrogate_is_selection_invariant_and_the_gd_selection_gradient(seed) -> None:
    game = _game(seed)
    assert game.prove_surrogate_selection_invariance()
    y0 = np.random.default_rng(seed).standard_normal(4)
    assert game.prove_surrogate_is_gd_selection_gradient(y0)


@settings(max_examples=10)
@given(seed=seeds)
def test_pl_inequality_holds_with_the_stated_constant_and_is_tight(seed) -> None:
    game = _game(seed)
    b = {k: np.array(getattr(game, k).evalf().tolist(), dtype=float) for k in ("C", "D")}
    mu = game.pl_constant()
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(2)
    y_sol = np.linalg.pinv(b["C"]) @ b["D"] @ x
    ratios = []
    for _ in range(200):
        y = rng.standard_normal(4) * 3
        res = b["C"] @ y - b["D"] @ x
        gap = 0.5 * res @ res - 0.5 * np.sum((b["C"] @ y_sol - b["D"] @ x) ** 2)
        grad = b["C"].T @ res
        if gap > 1e-12:
            ratios.append(0.5 * grad @ grad / gap)
    assert min(ratios) >= mu * (1 - 1e-9)
    # tight: along the right singular vector of sigma_min^+ the ratio equals mu
    _, s, vt = np.linalg.svd(b["C"])
    k = int(np.sum(s > 1e-10 * s[0])) - 1
    y = y_sol + vt[k]
    res = b["C"] @ y - b["D"] @ x
    gap = 0.5 * res @ res - 0.5 * np.sum((b["C"] @ y_sol - b["D"] @ x) ** 2)
    grad = b["C"].T @ res
    assert abs(0.5 * grad @ grad / gap / mu - 1) <= 1e-8


def test_gd_converges_to_the_predicted_selection() -> None:
    game = _game(3)
    C = np.array(game.C.evalf().tolist(), dtype=float)
    D = np.array(game.D.evalf().tolist(), dtype=float)
    x, y = np.array([0.3, -1.2]), np.array([1.0, -2.0, 0.5, 3.0])
    y0 = y.copy()
    step = 1.0 / game.smoothness_constant()
    for _ in range(20000):
        y = y - step * C.T @ (C @ y - D @ x)
    predicted = game.gd_limit(y0, backend="numpy")(x)
    assert np.allclose(y, predicted, rtol=1e-9, atol=1e-9)


def test_full_rank_lower_level_is_rejected() -> None:
    with pytest.raises(ValueError, match="C must be rank-deficient"):
        PLLeastSquaresGame(np.eye(3), np.ones((3, 1)), np.zeros(3), 0.1)


def test_scalar_pl_constant_and_hypergradient() -> None:
    game = ScalarPLGame(t=1, nu=sp.Rational(1, 10))
    empirical = game.pl_constant_empirical()
    assert empirical >= float(game.PL_CONSTANT_CERTIFIED)
    assert abs(empirical - 0.1755) < 5e-4  # VERIFICATION.md's measured value on [-50, 50]
    x = sp.Symbol("x", real=True)
    assert sp.simplify(game.hypergradient().subs(game.x, x) - (sp.Rational(11, 10) * x - 1)) == 0
    # h is nonconvex: h''(pi/2) = 2 + 6 cos(pi) = -4 < 0
    u = game.u
    assert sp.diff(game.h(u), u, 2).subs(u, sp.pi / 2) == -4
