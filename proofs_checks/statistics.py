"""Statistical procedures shared by the checks (``VERIFICATION.md`` section 2).

``bonferroni_z_test``: with n i.i.d. d-dimensional estimates, the statistic
max_j |mean_j - target_j| / (s_j / sqrt(n)) is compared with z = Phi^-1(1 - alpha / (2 d)); under
the null (unbiased, finite variance) the false-alarm probability is at most alpha (asymptotically,
by the CLT and Bonferroni). ``required_samples`` sizes n for power 1 - beta against a bias b:
n >= sigma^2 (z_{1 - alpha/2d} + z_{1 - beta})^2 / b^2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm


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


def bonferroni_z_test(samples: np.ndarray, target: np.ndarray, alpha: float = 1e-6) -> ZTestResult:
    """Two-sided Bonferroni z-test of E[sample] = target over the coordinates of ``samples``."""
    samples = np.atleast_2d(np.asarray(samples, dtype=np.float64))
    target = np.asarray(target, dtype=np.float64).reshape(-1)
    n, dim = samples.shape
    if target.shape != (dim,):
        raise ValueError(f"target has shape {target.shape}, samples have dimension {dim}")
    if n < 2:
        raise ValueError(f"the z-test needs at least 2 samples, got {n}")
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
