"""Hypothesis strategies for users' property-based tests (also exposed by the pytest plugin).

- ``spd_matrices(dim, kappa)``: float64 symmetric positive-definite matrices with a drawn
  condition number in [1, ``max_kappa``] (Haar eigenvectors, spectrum pinned at its ends);
- ``quadratic_bilevel(d_x, d_y)``: numeric ``bilevel.analysis.QuadraticBilevel`` instances with a
  drawn seed and kappa (exact hypergradients and estimator closed forms attached);
- ``pl_functions()``: Polyak-Lojasiewicz lower levels: rank-deficient least-squares games
  (``PLLeastSquaresGame``, PL but not strongly convex) with drawn sizes and seeds;
- ``fo_blo_members()``: the family of r-step quadratic meta-learning problems on which FO-BLO
  (FOM) and exact meta-gradients disagree (``QuadraticMetaLearning`` with integer SPD task
  matrices, integer centres and a rational inner step; spec 7.9), as a JSON-able description
  that ``fo_blo_instance`` turns into the exact instance.

Every draw is a deterministic function of drawn integers, so hypothesis can shrink and replay it.
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from hypothesis import strategies as st  # a dependency: the FO-BLO family claim draws with it

from bilevel.analysis import PLLeastSquaresGame, QuadraticBilevel
from bilevel.analysis.meta_learning import QuadraticMetaLearning
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


def fo_blo_members(
    max_tasks: int = 4, max_dim: int = 3, max_steps: int = 6
) -> st.SearchStrategy[dict]:
    """Members of the FO-BLO family: T in [2, max_tasks] tasks on R^n (n <= max_dim), each with
    train matrix A = L L^T + I and test matrix G = L' L'^T + I (L entries in {-2..2}), centres
    c, d in {-3..3}^n, r in [1, max_steps] inner steps with alpha = 1 / (2 max_tau
    ||A_tau||_inf) (so 0 < alpha lambda <= 1/2 for every eigenvalue: I - alpha A invertible), and the UFOM probability q in
    {1/4, 1/2, 3/4}. Integers throughout, so the instance is exact."""

    @st.composite
    def members(draw: st.DrawFn) -> dict:
        dim = draw(st.integers(1, max_dim))
        tasks = draw(st.integers(2, max_tasks))
        entries = st.integers(-2, 2)
        centres = st.lists(st.integers(-3, 3), min_size=dim, max_size=dim)

        def factor() -> list[list[int]]:
            row = st.lists(entries, min_size=dim, max_size=dim)
            return draw(st.lists(row, min_size=dim, max_size=dim))

        return {
            "A": [factor() for _ in range(tasks)],
            "G": [factor() for _ in range(tasks)],
            "c": [draw(centres) for _ in range(tasks)],
            "d": [draw(centres) for _ in range(tasks)],
            "steps": draw(st.integers(1, max_steps)),
            "q": draw(st.sampled_from((0.25, 0.5, 0.75))),
        }

    return members()


def fo_blo_instance(member: dict) -> QuadraticMetaLearning:
    """The exact ``QuadraticMetaLearning`` of a ``fo_blo_members`` draw (A = L L^T + I, ...)."""

    def spd(factor: list[list[int]]) -> sp.Matrix:
        m = sp.Matrix(factor)
        return m * m.T + sp.eye(m.shape[0])

    A, G = [spd(f) for f in member["A"]], [spd(f) for f in member["G"]]
    bound = max(max(sum(abs(x) for x in a.row(i)) for i in range(a.shape[0])) for a in A)
    c = [sp.Matrix(v) for v in member["c"]]
    d = [sp.Matrix(v) for v in member["d"]]
    return QuadraticMetaLearning(A, c, G, d, sp.Rational(1, 2 * bound), member["steps"])
