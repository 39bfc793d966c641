"""Hypothesis strategies for users' property-based tests (also exposed by the pytest plugin).

- ``spd_matrices(dim, kappa)``: float64 symmetric positive-definite matrices with a drawn
  condition number in [1, ``max_kappa``] (Haar eigenvectors, spectrum pinned at its ends);
- ``quadratic_bilevel(d_x, d_y)``: numeric ``bilevel.analysis.QuadraticBilevel`` instances with a
  drawn seed and kappa (exact hypergradients and estimator closed forms attached);
- ``pl_functions()``: Polyak-Lojasiewicz lower levels: rank-deficient least-squares games
  (``PLLeastSquaresGame``, PL but not strongly convex) with drawn sizes and seeds.

Every draw is a deterministic function of drawn integers, so hypothesis can shrink and replay it.
"""

from __future__ import annotations

import numpy as np

try:
    from hypothesis import strategies as st
except ImportError as exc:  # an optional dependency: only users' property-based tests need it
    raise ImportError(
        "bilevel.proofs_checks.strategies needs hypothesis: pip install 'bilevel[test]'"
    ) from exc

from bilevel.analysis import PLLeastSquaresGame, QuadraticBilevel
from bilevel.analysis.quadratic import spd_with_condition_number

_SEEDS = st.integers(0, 2**32 - 1)


def _kappas(max_kappa: float) -> st.SearchStrategy[float]:
    if not max_kappa >= 1:
        raise ValueError(f"max_kappa must be >= 1, got {max_kappa}")
    return st.floats(0.0, float(np.log10(max_kappa))).map(lambda e: float(10.0**e))


def spd_matrices(dim: int = 5, max_kappa: float = 1e4) -> st.SearchStrategy[np.ndarray]:
    """dim x dim SPD matrices, lambda_min = 1, lambda_max = kappa <= ``max_kappa``."""
    return st.builds(
        lambda kappa, seed: spd_with_condition_number(dim, kappa, 1.0, np.random.default_rng(seed)),
        _kappas(max_kappa),
        _SEEDS,
    )


def quadratic_bilevel(
    d_x: int = 3, d_y: int = 5, max_kappa: float = 1e4
) -> st.SearchStrategy[QuadraticBilevel]:
    """Random numeric quadratic bilevel problems (``QuadraticBilevel.random``)."""
    return st.builds(
        lambda kappa, seed: QuadraticBilevel.random(d_x, d_y, kappa, seed),
        _kappas(max_kappa),
        _SEEDS,
    )


def pl_functions(max_dim: int = 5) -> st.SearchStrategy[PLLeastSquaresGame]:
    """Rank-deficient least-squares lower levels (PL, not strongly convex)."""

    @st.composite
    def games(draw: st.DrawFn) -> PLLeastSquaresGame:
        d_y = draw(st.integers(2, max_dim))
        rank = draw(st.integers(1, d_y - 1))
        m = draw(st.integers(rank, max_dim + 1))
        return PLLeastSquaresGame.random(m=m, d_x=2, d_y=d_y, rank=rank, seed=draw(_SEEDS))

    return games()
