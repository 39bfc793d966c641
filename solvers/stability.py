r"""Step sizes against the stability bounds of the methods, checked before a run.

Gradient descent y <- y - alpha grad_y g on an L-smooth, mu-strongly convex g contracts for every
alpha in (0, 2/L) and diverges on a quadratic with curvature L once alpha > 2/L
(|1 - alpha L| > 1; Nesterov 2004, Thm 2.1.15). The fixed-point (Neumann) iteration
v <- v - eta (H v - b) is the same map, so eta needs (0, 2/L) too. Outer gradient steps on an
L_Phi-smooth Phi need beta < 2/L_Phi, and Nesterov's accelerated step (AccBiO) beta <= 1/L_Phi.

An outer algorithm given ``smoothness=Smoothness(inner=L_g, outer=L_Phi)`` refuses step sizes
outside these ranges at construction, and warns (``ProvenRangeWarning``) for a step that is
stable but above 1/L: the convergence theorems of the seed papers take alpha, eta <= 1/L_g and
beta <= 1/L_Phi (Ji et al. 2021, Thms 1-3; Nesterov 2004, Thm 2.1.14), so their rates are not
claimed there. The constants come from the problem
(``QuadraticProblem.smoothness()``) or from ``estimate_inner_smoothness`` (power iteration on
Hessian-vector products at a point).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .oracles import OracleCounts, SecondOrderOracle


@dataclass(frozen=True)
class Smoothness:
    """``inner`` = L_g, the largest eigenvalue of d^2 g / dy^2 over the region the run visits;
    ``outer`` = L_Phi, the Lipschitz constant of grad Phi (optional)."""

    inner: float
    outer: float | None = None

    def __post_init__(self) -> None:
        for value, name in ((self.inner, "inner"), (self.outer, "outer")):
            if value is not None and not (0 < value < float("inf")):
                raise ValueError(f"Smoothness.{name} must be a positive finite number, got {value}")


class ProvenRangeWarning(UserWarning):
    """A step size that is stable (below 2/L) but outside the theorems' range (0, 1/L]."""


def warn_outside_proven_range(step: float, smoothness: float | None, name: str) -> None:
    """Warn (before any work) when 1/L < step: stable, but no seed theorem covers it."""
    if smoothness is not None and 1.0 / smoothness < step < 2.0 / smoothness:
        warnings.warn(
            f"{name} = {step:g} is stable (< 2/L = {2.0 / smoothness:g}) but above 1/L = "
            f"{1.0 / smoothness:g}, outside the range the convergence theorems assume; "
            "measured rates need not match the predicted ones",
            ProvenRangeWarning,
            stacklevel=5,  # the line that constructs the algorithm
        )


def check_stable_step(step: float, smoothness: float | None, name: str) -> None:
    """Raise ``ValueError`` unless step < 2 / smoothness (the open range where a gradient
    iteration on an L-smooth quadratic contracts); no check when the constant is unknown."""
    if smoothness is not None and step >= 2.0 / smoothness:
        raise ValueError(
            f"{name} = {step:g} is outside the stability range (0, 2/L) = "
            f"(0, {2.0 / smoothness:g}) for L = {smoothness:g}: the gradient iteration diverges "
            "along the top eigenvector"
        )


def check_proven_step(step: float, smoothness: float | None, name: str, limit: float) -> None:
    """Raise ``ValueError`` unless step <= limit / smoothness (a theorem's closed range, such as
    1/L_Phi for Nesterov's step); no check when the constant is unknown."""
    if smoothness is not None and step > limit / smoothness:
        raise ValueError(
            f"{name} = {step:g} exceeds the proven range (0, {limit:g}/L] = "
            f"(0, {limit / smoothness:g}] for L = {smoothness:g}"
        )


def check_inner_and_outer_steps(
    smoothness: Smoothness | None,
    inner_steps: dict[str, float | None],
    outer_steps: dict[str, float | None],
    *,
    outer_limit: float | None = None,
) -> None:
    """Check every named inner step against the stability range (0, 2/L_g), and every outer step
    against (0, 2/L_Phi), or against the proven (0, outer_limit/L_Phi] when ``outer_limit`` is
    given (``None`` entries are skipped: a default taken from another step)."""
    if smoothness is None:
        return
    for name, step in inner_steps.items():
        if step is not None:
            check_stable_step(step, smoothness.inner, name)
            warn_outside_proven_range(step, smoothness.inner, name)
    for name, step in outer_steps.items():
        if step is None:
            continue
        if outer_limit is None:
            check_stable_step(step, smoothness.outer, name)
            warn_outside_proven_range(step, smoothness.outer, name)
        else:
            check_proven_step(step, smoothness.outer, name, outer_limit)


def estimate_inner_smoothness(
    inner: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    iterations: int = 100,
    generator: torch.Generator | None = None,
) -> float:
    r"""The largest eigenvalue of H = d^2 g / dy^2 at (x, y) by power iteration on HVPs.

    The Rayleigh quotient of the k-th iterate approaches lambda_max from below at rate
    (lambda_2 / lambda_max)^(2k) for a positive semi-definite H; it is a lower bound, so pass a
    margin (or the problem's exact constant) when the step size is close to the boundary.
    """
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    oracle = SecondOrderOracle(inner, x.detach(), y.detach(), OracleCounts())
    v = torch.randn(y.shape, dtype=y.dtype, generator=generator).to(y.device)
    v = v / torch.linalg.vector_norm(v)
    estimate = 0.0
    for _ in range(iterations):
        hv = oracle.hvp(v)
        estimate = float(v @ hv)
        norm = torch.linalg.vector_norm(hv)
        if norm == 0:
            return 0.0
        v = hv / norm
    return estimate
