"""Comparators: a measurement against a prediction, by a stated statistical procedure.

Each comparator raises ``AssertionError`` (with the statistic, the threshold and the design) when
the claim is contradicted, and returns a result describing what was measured otherwise, so that
it can serve both in a user's pytest suite and in the verification report.

Unbiasedness (``VERIFICATION.md`` section 2):
- tier 0, ``assert_expectation_exact``: E[estimate] = sum_k P(k) estimate(k) over an enumerable
  source of randomness, against the target, with the neglected probability mass stated;
- tier 1, ``assert_unbiased`` / ``assert_bias``: a fixed-seed Bonferroni z-test at false-alarm
  probability ``alpha`` (default 1e-6) whose sample size is chosen by power analysis so that a
  bias of ``detectable_bias`` is caught with probability at least 1 - ``beta``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .statistics import bonferroni_threshold, bonferroni_z_test, required_samples


@dataclass(frozen=True)
class UnbiasednessResult:
    """What a tier-1 test measured: the mean, its Bonferroni interval, the design."""

    mean: np.ndarray
    half_width: np.ndarray  # per coordinate, at simultaneous level 1 - alpha
    n: int
    statistic: float
    threshold: float
    alpha: float


def _as_vector(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().double().numpy()
    return np.asarray(value, dtype=np.float64).reshape(-1)


def assert_expectation_exact(
    outcomes: Iterable[tuple[float, Any]], target: Any, *, tol: float, neglected_mass: float = 0.0
) -> np.ndarray:
    """Tier 0: sum_k p_k * value_k must equal ``target`` within ``tol`` (absolute, 2-norm).

    ``neglected_mass`` is the probability of the outcomes left out (a truncated enumeration);
    it must be covered by ``tol``, and the caller states why (a bound on the tail).
    """
    target_v = _as_vector(target)
    total_p, mean = 0.0, np.zeros_like(target_v)
    for prob, value in outcomes:
        total_p += prob
        mean = mean + prob * _as_vector(value)
    if abs(total_p + neglected_mass - 1.0) > 1e-9:
        raise ValueError(
            f"probabilities sum to {total_p} with neglected mass {neglected_mass}, not 1"
        )
    error = float(np.linalg.norm(mean - target_v))
    if error > tol:
        raise AssertionError(
            f"exact expectation differs from the target by {error:.3e} > tol {tol:.3e}"
        )
    return mean


def assert_unbiased(
    sample: Callable[[torch.Generator], Any],
    target: Any,
    *,
    detectable_bias: float,
    alpha: float = 1e-6,
    beta: float = 1e-6,
    generator: torch.Generator | None = None,
    pilot: int = 200,
    max_samples: int = 1_000_000,
    finite_variance: bool | None = None,
) -> UnbiasednessResult:
    """Tier 1: fixed-seed Bonferroni z-test of E[sample(generator)] = target.

    A pilot of ``pilot`` draws estimates sigma (largest coordinate standard deviation); then
    n = sigma^2 (z_{1-alpha/2d} + z_{1-beta})^2 / b^2 fresh draws are tested (b =
    ``detectable_bias``). Under the null the false-alarm probability is at most alpha (CLT and
    Bonferroni); a bias of size b in some coordinate is missed with probability at most beta.
    ``finite_variance=False`` refuses to run (the CLT does not apply).
    """
    if finite_variance is False:
        raise ValueError(
            "the estimator's variance is infinite: a CLT-based test is invalid (use tier 0 or "
            "median-of-means)"
        )
    if not detectable_bias > 0:
        raise ValueError(f"detectable_bias must be > 0, got {detectable_bias}")
    if not 0 < alpha < 1 or not 0 < beta < 1:
        raise ValueError(f"alpha and beta must lie in (0, 1), got alpha={alpha}, beta={beta}")
    generator = torch.Generator().manual_seed(0) if generator is None else generator
    target_v = _as_vector(target)
    draws = np.stack([_as_vector(sample(generator)) for _ in range(pilot)])
    if draws.shape[1] != target_v.size:
        raise ValueError(f"sample has {draws.shape[1]} coordinates, target has {target_v.size}")
    sigma = float(draws.std(axis=0, ddof=1).max())
    n = required_samples(sigma, detectable_bias, alpha, beta, target_v.size)
    if n > max_samples:
        raise ValueError(
            f"power analysis needs n = {n} samples (sigma = {sigma:.3g}, bias {detectable_bias}),"
            f" above max_samples = {max_samples}"
        )
    samples = np.stack([_as_vector(sample(generator)) for _ in range(n)])
    result = bonferroni_z_test(samples, target_v, alpha=alpha)
    half_width = bonferroni_threshold(alpha, target_v.size) * samples.std(axis=0, ddof=1)
    half_width = half_width / np.sqrt(n)
    measured = UnbiasednessResult(
        samples.mean(axis=0), half_width, n, result.statistic, result.threshold, alpha
    )
    if result.rejected:
        raise AssertionError(
            f"bias detected: max_j |mean_j - target_j| / (s_j / sqrt(n)) = {result.statistic:.3g}"
            f" > z = {result.threshold:.3g} (alpha = {alpha:g}, n = {n}); mean "
            f"{measured.mean} vs target {target_v}"
        )
    return measured


def assert_bias(
    sample: Callable[[torch.Generator], Any], target: Any, bias: Any, **kwargs: Any
) -> UnbiasednessResult:
    """Tier 1 test that E[sample] = target + bias (a predicted, non-zero bias)."""
    return assert_unbiased(sample, _as_vector(target) + _as_vector(bias), **kwargs)
