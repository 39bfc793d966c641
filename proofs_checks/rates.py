"""Comparators for rates, bounds, complexity exponents and lower bounds (VERIFICATION.md s. 3).

Each raises ``AssertionError`` naming the statistic, the prediction and the tolerance when the
claim is contradicted, and otherwise returns what it measured (with an interval where one is
defined), for the report and for users' own tests.

- ``assert_linear_rate``: e_k ~ C rho^k. A least-squares fit of log e_k on k over the window
  that drops the transient (e_k < 0.1 e_0) and the floating-point floor (e_k > 1e3 floor) gives
  rho_hat; the claim holds if |log rho_hat / log rho - 1| < tol, and, when a constant C is
  given, e_k <= C rho^k e_0 at every k.
- ``assert_bound_holds``: a sublinear (or any) bound, measured <= bound on every instance.
- ``assert_slope``: a log-log slope, fitted only where the bound is tight, with a bootstrap
  interval over replicates.
- ``assert_complexity_exponent``: log-log fit of oracle counts over a grid; the tolerance is
  below half the gap to the rival exponent, so a pass also rules the rival out. With log factors
  (``predicted`` given) the fitted exponent of counts / predicted must be 0 within that tolerance
  (ratio flatness), since a free fit would absorb the logs.
- ``assert_lower_bound``: on a zero-chain instance started at 0, the support of the k-th iterate
  may grow by at most one coordinate per oracle call, and the error stays above the lower-bound
  curve.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .engine import InconclusiveError

#: relative slack for comparisons with bounds computed in float64.
BOUND_SLACK = 1e-9


@dataclass(frozen=True)
class LinearRateResult:
    rho_hat: float
    rho: float
    window: tuple[int, int]
    interval: tuple[float, float]  # 99% interval of rho_hat from the regression's residuals


@dataclass(frozen=True)
class SlopeResult:
    slope: float
    predicted: float
    interval: tuple[float, float]


@dataclass(frozen=True)
class ExponentResult:
    exponent: float
    predicted: float
    rival: float
    tolerance: float
    interval: tuple[float, float]


def finite_array(values, name: str) -> np.ndarray:
    """``values`` as a float64 array, or a ``ValueError`` naming ``name`` if any is NaN or inf
    (a comparison with NaN is false both ways, so a bound or a tolerance would pass silently)."""
    array = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        bad = int(np.flatnonzero(~np.isfinite(array.ravel()))[0])
        raise ValueError(f"{name} is not finite (entry {bad} is {array.ravel()[bad]})")
    return array


def line_fit(x: np.ndarray, y: np.ndarray, level: float = 0.99) -> tuple[float, float, float]:
    """Least-squares slope of y on x with its two-sided t interval at ``level``."""
    fit = stats.linregress(x, y)
    if len(x) <= 2 or not np.isfinite(fit.stderr):
        return float(fit.slope), float(fit.slope), float(fit.slope)
    half = float(stats.t.ppf(0.5 + level / 2, len(x) - 2)) * float(fit.stderr)
    return float(fit.slope), float(fit.slope) - half, float(fit.slope) + half


def assert_linear_rate(
    errors: Sequence[float],
    rho: float,
    *,
    tol: float = 0.05,
    constant: float | None = None,
    floor: float | None = None,
    steps: Sequence[int] | None = None,
) -> LinearRateResult:
    """e_k decays linearly with factor ``rho`` (see the module docstring).

    ``errors[i]`` is e at step ``steps[i]`` (default: steps 0, 1, 2, ...; steps[0] must be 0, so
    errors[0] is e_0). ``floor`` is the floating-point floor of e_k (default 1e-16 e_0).
    """
    e = np.asarray(errors, dtype=np.float64)
    k = np.arange(e.size) if steps is None else np.asarray(steps, dtype=np.int64)
    if k.shape != e.shape or k[0] != 0 or np.any(np.diff(k) <= 0):
        raise ValueError("steps must increase from 0, one per error")
    if e.ndim != 1 or e.size < 3:
        raise ValueError("errors must be a sequence of at least 3 values e_0, e_1, ...")
    if not 0 < rho < 1:
        raise ValueError(f"the predicted rate rho must lie in (0, 1), got {rho}")
    if not (tol > 0):
        raise ValueError(f"tol must be > 0, got {tol}")
    if not np.all(np.isfinite(e)) or np.any(e < 0):
        raise ValueError("errors must be finite and non-negative")
    floor = 1e-16 * e[0] if floor is None else floor
    if constant is not None:
        bound = constant * rho**k * e[0]
        bad = np.nonzero(e > bound * (1 + BOUND_SLACK))[0]
        if bad.size:
            i = int(bad[0])
            raise AssertionError(
                f"bound e_k <= C rho^k e_0 violated at k = {k[i]}: {e[i]:.3e} > {bound[i]:.3e} "
                f"(C = {constant:.4g}, rho = {rho:.6g})"
            )
    window = np.nonzero((e < 0.1 * e[0]) & (e > 1e3 * floor))[0]
    if window.size < 3:
        if e[-1] >= 0.1 * e[0] and rho ** float(k[-1]) < 1e-3:
            raise AssertionError(
                f"no decay: e_k stays above 0.1 e_0 up to k = {k[-1]} ({e[-1]:.3e} vs e_0 "
                f"{e[0]:.3e}) where rho^k = {rho ** float(k[-1]):.1e} predicts a fall of 1000x"
            )
        raise InconclusiveError(
            f"only {window.size} errors lie between 0.1 e_0 and 1e3 x floor: run more steps "
            "or start farther from the solution"
        )
    first, last = int(k[window[0]]), int(k[window[-1]])
    slope, low, high = line_fit(k[window].astype(float), np.log(e[window]))
    rho_hat = float(np.exp(slope))
    result = LinearRateResult(
        rho_hat, rho, (first, last), (float(np.exp(low)), float(np.exp(high)))
    )
    ratio = np.log(rho_hat) / np.log(rho) if rho_hat > 0 else np.inf
    if not abs(ratio - 1) < tol:
        raise AssertionError(
            f"linear rate rho_hat = {rho_hat:.6g} (fitted on k = {first}..{last}) vs predicted "
            f"rho = {rho:.6g}: |log rho_hat / log rho - 1| = {abs(ratio - 1):.3g} >= {tol}"
        )
    return result


def assert_bound_holds(
    measured: Sequence[float], bound: Sequence[float], *, labels: Sequence[str] | None = None
) -> float:
    """measured_i <= bound_i (relative slack 1e-9) for every i; returns max measured / bound."""
    m, b = finite_array(measured, "measured"), finite_array(bound, "bound")
    if m.shape != b.shape or m.size == 0:
        raise ValueError(f"measured {m.shape} and bound {b.shape} must be equal, non-empty")
    if not np.all(np.isfinite(m)):
        raise ValueError("measured values must be finite")
    bad = np.nonzero(m > b * (1 + BOUND_SLACK))[0]
    if bad.size:
        i = int(bad[0])
        where = labels[i] if labels is not None else f"index {i}"
        raise AssertionError(
            f"bound violated at {where}: measured {m[i]:.6g} > bound {b[i]:.6g} "
            f"({bad.size} of {m.size} violate it)"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(b > 0, m / b, 0.0)
    return float(ratios.max())


def assert_slope(
    x: Sequence[float],
    y_replicates: Sequence[Sequence[float]],
    slope: float,
    *,
    tol: float,
    level: float = 0.99,
    n_boot: int = 2000,
    seed: int = 0,
) -> SlopeResult:
    """The log-log slope of mean_r y[r, i] against x_i equals ``slope`` within ``tol``.

    ``y_replicates`` has one row per independent replicate (seed). The fitted slope comes from
    the replicate means; the interval is a percentile bootstrap at ``level`` over replicates
    (rows resampled with replacement, ``n_boot`` times, from a fixed ``seed``). Use it only on
    instances where the bound is tight: a random instance's slope is not the worst case's.
    """
    xs = np.log(finite_array(x, "x"))
    ys = finite_array(y_replicates, "y_replicates")
    if ys.ndim != 2 or ys.shape[1] != xs.size or xs.size < 3:
        raise ValueError("y_replicates must be (replicates, len(x)) with len(x) >= 3")
    if np.any(ys <= 0) or np.any(np.asarray(x) <= 0):
        raise ValueError("a log-log slope needs positive x and y")
    fitted = float(np.polyfit(xs, np.log(ys.mean(axis=0)), 1)[0])
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, ys.shape[0], size=(n_boot, ys.shape[0]))
    boot = [np.polyfit(xs, np.log(ys[p].mean(axis=0)), 1)[0] for p in picks]
    low, high = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    result = SlopeResult(fitted, slope, (float(low), float(high)))
    if not abs(fitted - slope) < tol:
        raise AssertionError(
            f"log-log slope {fitted:.4g} ({level:.0%} bootstrap interval [{low:.4g}, {high:.4g}])"
            f" vs predicted {slope:.4g}: difference {abs(fitted - slope):.3g} >= tol {tol}"
        )
    return result


def assert_complexity_exponent(
    grid: Sequence[float],
    counts: Sequence[float],
    exponent: float,
    *,
    rival: float,
    predicted: Sequence[float] | None = None,
    level: float = 0.99,
) -> ExponentResult:
    """Oracle counts to reach a fixed accuracy grow like grid^exponent, not grid^rival.

    Fits log counts on log grid (or, with ``predicted`` given, log(counts / predicted), whose
    exponent must then be 0: ratio flatness). Tolerance: 0.49 |exponent - rival|, below half the
    gap, so that the fit cannot be within tolerance of both.
    """
    g, c = finite_array(grid, "grid"), finite_array(counts, "counts")
    if predicted is not None:
        finite_array(predicted, "predicted")
    if g.shape != c.shape or g.size < 3:
        raise ValueError("grid and counts need the same length, at least 3")
    if np.any(g <= 0) or np.any(c <= 0):
        raise ValueError("grid and counts must be positive")
    if exponent == rival:
        raise ValueError("the rival exponent must differ from the predicted one")
    tolerance = 0.49 * abs(exponent - rival)
    target = exponent
    y = np.log(c)
    if predicted is not None:
        y = y - np.log(np.asarray(predicted, dtype=np.float64))
        target = 0.0
    fitted, low, high = line_fit(np.log(g), y, level)
    result = ExponentResult(fitted, target, rival, tolerance, (low, high))
    if not abs(fitted - target) < tolerance:
        what = "counts / predicted" if predicted is not None else "counts"
        raise AssertionError(
            f"fitted exponent of {what} = {fitted:.4g} vs predicted {target:.4g}: off by "
            f"{abs(fitted - target):.3g} >= {tolerance:.3g} (0.49 x gap to the rival "
            f"{rival:.4g})"
        )
    return result


def assert_lower_bound(
    iterates: Sequence[np.ndarray],
    calls: Sequence[int],
    solution: np.ndarray,
    lower_bound: Sequence[float],
    *,
    start_support: int = 0,
) -> float:
    """A zero-chain lower bound: support and error of each iterate against its oracle calls.

    ``iterates[k]`` was produced with ``calls[k]`` oracle calls from x_0 = 0 on a zero-chain
    instance (each call reveals at most one new coordinate; ``start_support`` are known before
    any call, e.g. 1 for a right-hand side e_1). Asserts that the last nonzero coordinate of the
    k-th iterate is below ``start_support + calls[k]`` and that ||x_k - x*|| >= lower_bound[k]
    (relative slack 1e-9). Returns min_k error / bound.
    """
    x_star = finite_array(solution, "solution")
    finite_array(lower_bound, "lower_bound")
    if not len(iterates) == len(calls) == len(lower_bound):
        raise ValueError("iterates, calls and lower_bound need the same length")
    ratios = []
    for k, (x, n_calls, bound) in enumerate(zip(iterates, calls, lower_bound, strict=True)):
        x = finite_array(x, f"iterates[{k}]")
        nonzero = np.nonzero(x)[0]
        support = int(nonzero[-1]) + 1 if nonzero.size else 0
        allowed = start_support + int(n_calls)
        if support > allowed:
            raise AssertionError(
                f"iterate {k} reaches coordinate {support} after {n_calls} oracle calls "
                f"(at most {allowed} on a zero chain): the method uses information the counted "
                "oracle did not give it"
            )
        error = float(np.linalg.norm(x - x_star))
        if error < bound * (1 - BOUND_SLACK):
            raise AssertionError(
                f"iterate {k} ({n_calls} oracle calls) has error {error:.6g} below the lower "
                f"bound {bound:.6g}"
            )
        ratios.append(error / bound if bound > 0 else np.inf)
    return float(min(ratios))
