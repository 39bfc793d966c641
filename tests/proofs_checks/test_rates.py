"""Rate, bound, slope, exponent and lower-bound comparators: true case and planted failure."""

from __future__ import annotations

import numpy as np
import pytest

from bilevel.proofs_checks.engine import InconclusiveError
from bilevel.proofs_checks.rates import (
    assert_bound_holds,
    assert_complexity_exponent,
    assert_linear_rate,
    assert_lower_bound,
    assert_slope,
)


def _gd_errors(rho_slow: float, steps: int) -> np.ndarray:
    """||(I - alpha A)^k e_0|| for a diagonal A: the slowest mode decays like rho_slow^k."""
    factors = np.array([rho_slow, 0.5, 0.1])
    return np.array([np.linalg.norm(factors**k) for k in range(steps)])


def test_linear_rate_true_and_wrong() -> None:
    errors = _gd_errors(0.9, 300)
    result = assert_linear_rate(errors, 0.9, constant=1.0)
    assert abs(result.rho_hat - 0.9) < 1e-3
    with pytest.raises(AssertionError, match="linear rate"):
        assert_linear_rate(errors, 0.8)  # log 0.9 / log 0.8 = 0.47
    with pytest.raises(AssertionError, match="bound e_k <= C rho"):
        assert_linear_rate(errors, 0.9, constant=0.5)
    with pytest.raises(InconclusiveError, match="only 2 errors"):
        assert_linear_rate(errors[:19], 0.9)


def test_linear_rate_no_decay_is_a_refutation_not_inconclusive() -> None:
    """A stalled error where the prediction falls 1000x is evidence against the rate."""
    flat = np.ones(200)
    with pytest.raises(AssertionError, match="no decay") as caught:
        assert_linear_rate(flat, 0.9)
    assert not isinstance(caught.value, InconclusiveError)


def test_bound_holds_and_its_violation_is_located() -> None:
    k = np.arange(1, 50)
    assert assert_bound_holds(1.0 / k, 1.0 / k) == pytest.approx(1.0)
    with pytest.raises(AssertionError, match="bound violated at k=5"):
        assert_bound_holds(1.0 / np.sqrt(k), 2.0 / k, labels=[f"k={i}" for i in k])


def test_slope_with_bootstrap_interval() -> None:
    rng = np.random.default_rng(0)
    x = np.geomspace(10, 1e4, 8)
    noisy = x**-1.0 * np.exp(0.05 * rng.standard_normal((20, x.size)))
    result = assert_slope(x, noisy, -1.0, tol=0.05)
    assert result.interval[0] <= result.slope <= result.interval[1]
    with pytest.raises(AssertionError, match="log-log slope"):
        assert_slope(x, x**-0.5 * np.ones((5, 1)), -1.0, tol=0.05)


def test_complexity_exponent_separates_rivals_and_handles_logs() -> None:
    rng = np.random.default_rng(1)
    kappa = np.geomspace(10, 1e4, 7)
    counts = 7 * kappa**0.5 * np.exp(0.05 * rng.standard_normal(kappa.size))
    assert_complexity_exponent(kappa, counts, 0.5, rival=1.0)
    with pytest.raises(AssertionError, match="fitted exponent"):
        assert_complexity_exponent(kappa, counts, 1.0, rival=0.5)
    # kappa log kappa: a free fit drifts; ratio flatness against the predicted form holds
    eps = np.geomspace(1e-2, 1e-10, 7)
    with_logs = 3 * np.log(1 / eps)
    assert_complexity_exponent(1 / eps, with_logs, 0.0, rival=0.5, predicted=np.log(1 / eps))
    with pytest.raises(AssertionError):
        assert_complexity_exponent(1 / eps, with_logs, 0.0, rival=0.5, predicted=(1 / eps) ** 0.6)


def _zero_chain(n: int, mu: float):
    """Nesterov's quadratic: A = tridiag(-1, 2 + mu, -1), b = e_1 (a zero chain)."""
    A = np.diag(np.full(n, 2.0 + mu)) - np.diag(np.ones(n - 1), 1) - np.diag(np.ones(n - 1), -1)
    b = np.zeros(n)
    b[0] = 1.0
    return A, b, np.linalg.solve(A, b)


def _krylov_iterates(A, b, steps):
    """Exact-arithmetic-like CG iterates (float64) and their HVP counts."""
    x, r = np.zeros_like(b), b.copy()
    p, out = r.copy(), [np.zeros_like(b)]
    for _ in range(steps):
        Ap = A @ p
        a = (r @ r) / (p @ Ap)
        x = x + a * p
        r_new = r - a * Ap
        p = r_new + (r_new @ r_new) / (r @ r) * p
        r = r_new
        out.append(x.copy())
    return out, list(range(steps + 1))


def test_lower_bound_passes_cg_and_catches_a_cheat() -> None:
    """Any Krylov method's k-th iterate lives on coordinates 1..k, so its error is at least the
    norm of x* beyond k (the zero-chain argument); a solver that reads x* directly is caught."""
    A, b, x_star = _zero_chain(200, 0.01)
    iterates, calls = _krylov_iterates(A, b, 30)
    lower = [np.linalg.norm(x_star[k:]) for k in calls]
    assert assert_lower_bound(iterates, calls, x_star, lower) >= 1.0
    cheat = [x_star.copy() for _ in calls]  # "one call", the whole solution
    with pytest.raises(AssertionError, match="uses information the counted oracle"):
        assert_lower_bound(cheat, [1] * len(calls), x_star, lower)
    truncated = [np.concatenate([x_star[:k], np.zeros(200 - k)]) * 1.0 for k in calls]
    truncated[5] = truncated[5].copy()
    truncated[5][:5] = x_star[:5]  # within the support, optimal: error equals the bound
    assert_lower_bound(truncated, calls, x_star, lower)
