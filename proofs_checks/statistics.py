"""Statistical procedures shared by the checks (``VERIFICATION.md`` section 2).

``bonferroni_z_test``: with n i.i.d. d-dimensional estimates, the statistic
max_j |mean_j - target_j| / (s_j / sqrt(n)) is compared with z = Phi^-1(1 - alpha / (2 d)); under
the null (unbiased, finite variance) the false-alarm probability is at most alpha (asymptotically,
by the CLT and Bonferroni). ``required_samples`` sizes n for power 1 - beta against a bias b:
n >= sigma^2 (z_{1 - alpha/2d} + z_{1 - beta})^2 / b^2. ``t_lower_bound``: the one-sided
Student-t lower confidence bound of a mean from n i.i.d. replicates (exact for normal
replicates).

The false-alarm ledger: every test records the probability it may spend on a false alarm
(``spend``); ``spent()`` reads the running total in this process and ``ledger()`` collects what a
block of code spent. The runner attaches each run's and each verdict's spending to the report, so
the report states the suite-level false-alarm probability (a union bound: the sum), against
``SUITE_FALSE_ALARM_BUDGET``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm, t

#: the largest sum of false-alarm probabilities a verification suite may spend (issue 10)
SUITE_FALSE_ALARM_BUDGET = 1e-4

_SPENT: list[float] = []


def spend(alpha: float) -> None:
    """Record one statistical test at false-alarm probability ``alpha``."""
    _SPENT.append(float(alpha))


def spent() -> tuple[int, float]:
    """(number of tests, sum of their false-alarm probabilities) recorded in this process."""
    return len(_SPENT), float(sum(_SPENT))


@contextmanager
def ledger(*, keep: bool = True) -> Iterator[dict[str, float]]:
    """``with ledger() as used:`` -> ``used["tests"]``, ``used["alpha"]`` spent inside the block.

    ``keep=False`` removes them from the process total afterwards: for tests whose rejection is
    an accepted outcome (fuzzing a comparator), which therefore cannot raise a false alarm."""
    start = len(_SPENT)
    used: dict[str, float] = {"tests": 0, "alpha": 0.0}
    try:
        yield used
    finally:
        used["tests"] = len(_SPENT) - start
        used["alpha"] = float(sum(_SPENT[start:]))
        if not keep:
            del _SPENT[start:]


@dataclass(frozen=True)
class ZTestResult:
    statistic: float
    threshold: float
    n: int
    alpha: float

    @property
    def rejected(self) -> bool:
        """True when the estimates are inconsistent with the target (bias detected)."""
        return self.statistic > self.threshold


def bonferroni_threshold(alpha: float, dim: int) -> float:
    """z_{1 - alpha / (2 d)}."""
    return float(norm.isf(alpha / (2 * dim)))


def bonferroni_z_test(
    samples: np.ndarray, target: np.ndarray, alpha: float = 1e-6, *, record: bool = True
) -> ZTestResult:
    """Two-sided Bonferroni z-test of E[sample] = target over the coordinates of ``samples``
    (``record=False``: a look of a sequential test, whose total alpha its caller records)."""
    samples = np.atleast_2d(np.asarray(samples, dtype=np.float64))
    target = np.asarray(target, dtype=np.float64).reshape(-1)
    n, dim = samples.shape
    if target.shape != (dim,):
        raise ValueError(f"target has shape {target.shape}, samples have dimension {dim}")
    if n < 2:
        raise ValueError(f"the z-test needs at least 2 samples, got {n}")
    if record:
        spend(alpha)
    deviation = np.abs(samples.mean(axis=0) - target)
    scale = samples.std(axis=0, ddof=1) / math.sqrt(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(scale > 0, deviation / scale, np.where(deviation > 0, np.inf, 0.0))
    return ZTestResult(float(z.max()), bonferroni_threshold(alpha, dim), n, alpha)


def required_samples(sigma: float, bias: float, alpha: float, beta: float, dim: int) -> int:
    """n >= sigma^2 (z_{1-alpha/2d} + z_{1-beta})^2 / b^2 (power 1 - beta against bias b)."""
    if bias <= 0 or sigma < 0:
        raise ValueError(f"need bias > 0 and sigma >= 0, got bias={bias}, sigma={sigma}")
    z_sum = bonferroni_threshold(alpha, dim) + float(norm.isf(beta))
    return max(2, math.ceil(sigma**2 * z_sum**2 / bias**2))


def t_lower_bound(values: np.ndarray, alpha: float = 1e-6) -> tuple[float, float]:
    """(mean, one-sided lower confidence bound at level 1 - alpha) of the mean of i.i.d.
    replicates: mean - t_{1-alpha, n-1} s / sqrt(n). P(bound > true mean) <= alpha for normal
    replicates (and approximately otherwise); recorded in the ledger."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.size < 2:
        raise ValueError(f"a t bound needs at least 2 replicates, got {values.size}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    spend(alpha)
    mean = float(values.mean())
    half = float(t.isf(alpha, values.size - 1)) * float(values.std(ddof=1)) / math.sqrt(values.size)
    return mean, mean - half
