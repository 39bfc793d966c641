"""Comparators: a measurement against a prediction, by a stated statistical procedure.

Each comparator raises ``AssertionError`` (with the statistic, the threshold and the design) when
the claim is contradicted, and returns a result describing what was measured otherwise, so that
it can serve both in a user's pytest suite and in the verification report.

Unbiasedness (``VERIFICATION.md`` section 2):
- tier 0, ``assert_expectation_exact``: E[estimate] = sum_k P(k) estimate(k) over an enumerable
  source of randomness, against the target, with the neglected probability mass stated;
- tier 1, ``assert_unbiased`` / ``assert_bias``: a fixed-seed Bonferroni z-test at false-alarm
  probability ``alpha`` (default 1e-6) whose sample size is chosen by power analysis so that a
  bias of ``detectable_bias`` is caught with probability at least 1 - ``beta``;
- tier 2, ``assert_unbiased(..., sequential=True)`` (``assert_unbiased_sequential``):
  group-sequential looks at n = 256 * 2^j, alpha split equally over the looks; fails fast on
  |z| above the threshold and passes once the simultaneous interval is narrower than
  ``detectable_bias``.

Closed forms: ``assert_close_to_closed_form`` holds a float computation to its exact value with
the tolerance c kappa u (forward error of a backward-stable computation with condition number
kappa, unit roundoff u of the dtype), times the number of steps of a recursion.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from .engine import InconclusiveError
from .statistics import bonferroni_z_test, required_samples, spend

__all__ = [
    "InconclusiveError",
    "UnbiasednessResult",
    "assert_bias",
    "assert_bias_exact",
    "assert_close_to_closed_form",
    "assert_expectation_exact",
    "assert_unbiased",
    "assert_unbiased_sequential",
    "finite_vector",
]


@dataclass(frozen=True)
class UnbiasednessResult:
    """What a tier-1 test measured: the mean, its Bonferroni interval, the design."""

    mean: np.ndarray
    half_width: np.ndarray  # per coordinate, at simultaneous level 1 - alpha
    n: int
    statistic: float
    threshold: float
    alpha: float
    power: float = float("nan")  # the bias detected with probability >= 1 - beta at this n


def _as_vector(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().double().numpy()
    return np.asarray(value, dtype=np.float64).reshape(-1)


def finite_vector(value: Any, name: str) -> np.ndarray:
    """``value`` as a float64 vector, or a ``ValueError`` naming ``name`` when any entry is NaN
    or inf (a comparison with a non-finite target or outcome has no meaning: NaN compares
    false with everything, so ``error > tol`` would silently pass)."""
    vector = _as_vector(value)
    bad = np.nonzero(~np.isfinite(vector))[0]
    if bad.size:
        raise ValueError(
            f"{name} is not finite: entry {int(bad[0])} is {vector[bad[0]]} (of {vector.size}); "
            "the computation that produced it diverged or was given NaN"
        )
    return vector


def _check_generator(generator: Any) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator (seeded, e.g. torch.Generator()."
            f"manual_seed(0)), got {type(generator).__name__}"
        )


def _finite_draws(draws: np.ndarray) -> np.ndarray:
    """``draws`` (n x d), or a ``ValueError`` naming the first sample that is NaN or inf (the
    z-test's mean and variance would be NaN and its verdict meaningless)."""
    bad = np.nonzero(~np.isfinite(draws).all(axis=1))[0]
    if bad.size:
        raise ValueError(
            f"sample returned NaN or inf at draw {int(bad[0])} (of {len(draws)}): the estimator "
            "diverged or its input is not finite"
        )
    return draws


def assert_close_to_closed_form(
    measured: Any,
    predicted: Any,
    *,
    condition_number: float,
    dtype: torch.dtype = torch.float64,
    steps: int = 1,
    c: float = 10.0,
) -> float:
    """||measured - predicted|| <= c * max(steps, 1) * kappa * u * max(||predicted||, 1).

    The bound of a backward-stable computation (forward error <= kappa x backward error, the
    backward error a modest multiple c of u per step); u = eps(dtype) / 2. Returns the relative
    error. Raise c only with a derivation of the algorithm's constant.
    """
    m, p = finite_vector(measured, "measured"), finite_vector(predicted, "predicted")
    if m.shape != p.shape:
        raise ValueError(f"measured has {m.size} entries, predicted {p.size}")
    if not condition_number >= 1:
        raise ValueError(f"condition_number must be >= 1, got {condition_number}")
    unit = float(torch.finfo(dtype).eps) / 2
    scale = max(float(np.linalg.norm(p)), 1.0)
    error = float(np.linalg.norm(m - p)) / scale
    tol = c * max(steps, 1) * condition_number * unit
    if not error <= tol:
        raise AssertionError(
            f"relative error {error:.3e} exceeds c * steps * kappa * u = {c:g} * {max(steps, 1)}"
            f" * {condition_number:.3g} * {unit:.3g} = {tol:.3e}"
        )
    return error


def assert_expectation_exact(
    outcomes: Iterable[tuple[float, Any]], target: Any, *, tol: float, neglected_mass: float = 0.0
) -> np.ndarray:
    """Tier 0: sum_k p_k * value_k must equal ``target`` within ``tol`` (absolute, 2-norm).

    ``neglected_mass`` is the probability of the outcomes left out (a truncated enumeration);
    it must be covered by ``tol``, and the caller states why (a bound on the tail).
    """
    target_v = finite_vector(target, "target")
    if not (tol >= 0 and np.isfinite(tol)):
        raise ValueError(f"tol must be a finite non-negative number, got {tol}")
    if not (0 <= neglected_mass <= 1):
        raise ValueError(f"neglected_mass must lie in [0, 1], got {neglected_mass}")
    total_p, mean = 0.0, np.zeros_like(target_v)
    for index, (prob, value) in enumerate(outcomes):
        if not (np.isfinite(prob) and 0 <= prob <= 1):
            raise ValueError(f"outcome {index} has probability {prob}, not in [0, 1]")
        value_v = finite_vector(value, f"outcomes[{index}]")
        if value_v.shape != target_v.shape:
            raise ValueError(
                f"outcome {index} has {value_v.size} coordinates, the target {target_v.size}"
            )
        total_p += prob
        mean = mean + prob * value_v
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
    max_seconds: float = 600.0,
    progress: bool | None = None,
    finite_variance: bool | None = None,
    sequential: bool = False,
) -> UnbiasednessResult:
    """Tier 1 (or tier 2 with ``sequential=True``): fixed-seed test of E[sample] = target.

    A pilot of ``pilot`` draws estimates sigma (largest coordinate standard deviation) and the
    time of one draw; then n = sigma^2 (z_{1-alpha/2d} + z_{1-beta})^2 / b^2 fresh draws are
    tested (b = ``detectable_bias``). Under the null the false-alarm probability is at most
    alpha (CLT and Bonferroni); a bias of size b in some coordinate is missed with probability
    at most beta. Before drawing, a design above ``max_samples`` draws or above ``max_seconds``
    (the pilot's time per draw times n) is refused with both figures and the knobs to change;
    a run expected to take over 5 s shows a progress bar (``progress`` forces it on or off).
    ``finite_variance=False`` refuses to run (the CLT does not apply).
    """
    if finite_variance is False:
        raise ValueError(
            "the estimator's variance is infinite: a CLT-based test is invalid (use tier 0 or "
            "median-of-means)"
        )
    if not (detectable_bias > 0 and np.isfinite(detectable_bias)):
        raise ValueError(f"detectable_bias must be a finite number > 0, got {detectable_bias}")
    if not 0 < alpha < 1 or not 0 < beta < 1:
        raise ValueError(f"alpha and beta must lie in (0, 1), got alpha={alpha}, beta={beta}")
    if isinstance(pilot, bool) or not isinstance(pilot, int) or pilot < 2:
        raise ValueError(
            f"pilot must be an int >= 2 (a standard deviation needs two draws), got {pilot}"
        )
    _check_generator(generator)
    target = finite_vector(target, "target")
    generator = torch.Generator().manual_seed(0) if generator is None else generator
    if sequential:
        return assert_unbiased_sequential(
            sample,
            target,
            detectable_bias=detectable_bias,
            alpha=alpha,
            generator=generator,
            max_samples=max_samples,
        )
    if not (max_seconds > 0):
        raise ValueError(f"max_seconds must be > 0, got {max_seconds}")
    target_v = _as_vector(target)
    start = time.perf_counter()
    draws = _finite_draws(np.stack([_as_vector(sample(generator)) for _ in range(pilot)]))
    per_draw = (time.perf_counter() - start) / pilot
    if draws.shape[1] != target_v.size:
        raise ValueError(f"sample has {draws.shape[1]} coordinates, target has {target_v.size}")
    sigma = float(draws.std(axis=0, ddof=1).max())
    n = required_samples(sigma, detectable_bias, alpha, beta, target_v.size)
    expected = n * per_draw
    design = (
        f"the design needs n = {n} draws (pilot sigma = {sigma:.3g}, detectable bias "
        f"{detectable_bias:g}, alpha = {alpha:g}, beta = {beta:g}), about {expected:.3g} s at the "
        f"pilot's {per_draw * 1e3:.3g} ms a draw"
    )
    if n > max_samples or expected > max_seconds:
        raise ValueError(
            f"{design}: above max_samples = {max_samples} or max_seconds = {max_seconds:g}. "
            "Raise detectable_bias (n ~ 1 / b^2), make the estimator cheaper or less noisy, "
            "use sequential=True (stops early when the verdict is clear), or raise the limits"
        )
    show = expected > 5.0 if progress is None else progress
    bar = tqdm(range(n), desc="assert_unbiased", unit="draw", disable=not show, file=sys.stderr)
    if show:
        bar.write(f"assert_unbiased: {design}", file=sys.stderr)
    samples = _finite_draws(np.stack([_as_vector(sample(generator)) for _ in bar]))
    measured, rejected = _z_test_result(samples, target_v, alpha, alpha)
    measured = replace(measured, power=detectable_bias)
    if rejected:
        raise AssertionError(
            f"bias detected: max_j |mean_j - target_j| / (s_j / sqrt(n)) = {measured.statistic:.3g}"
            f" > z = {measured.threshold:.3g} (alpha = {alpha:g}, n = {n}); mean "
            f"{measured.mean} vs target {target_v}"
        )
    return measured


def assert_bias(
    sample: Callable[[torch.Generator], Any], target: Any, bias: Any, **kwargs: Any
) -> UnbiasednessResult:
    """Tier 1 test that E[sample] = target + bias (a predicted, non-zero bias)."""
    shifted = finite_vector(target, "target") + finite_vector(bias, "bias")
    return assert_unbiased(sample, shifted, **kwargs)


def assert_bias_exact(
    estimate: Any,
    target: Any,
    bias: Any,
    *,
    condition_number: float,
    steps: int = 1,
    c: float = 10.0,
    dtype: torch.dtype = torch.float64,
) -> float:
    """A deterministic estimator's bias, estimate - target, against its closed form ``bias``.

    A zero-variance estimate makes a z-test meaningless (any error, 4e-16 included, gives an
    infinite statistic), so the bias is compared to rounding instead: ||(estimate - target) -
    bias|| <= c * steps * kappa * u * max(||target||, 1), the envelope of
    ``assert_close_to_closed_form``. That envelope is the comparison's power: a bias off by
    more than it is refuted. Pair it with a control (the exact estimator against bias 0).
    Returns the relative error.
    """
    e, t, b = (
        finite_vector(v, n) for v, n in ((estimate, "estimate"), (target, "target"), (bias, "bias"))
    )
    if not e.shape == t.shape == b.shape:
        raise ValueError(f"estimate, target and bias have {e.size}, {t.size}, {b.size} entries")
    if not condition_number >= 1:
        raise ValueError(f"condition_number must be >= 1, got {condition_number}")
    unit = float(torch.finfo(dtype).eps) / 2
    scale = max(float(np.linalg.norm(t)), 1.0)
    error = float(np.linalg.norm((e - t) - b)) / scale
    tol = c * max(steps, 1) * condition_number * unit
    if not error <= tol:
        raise AssertionError(
            f"bias differs from its closed form by {error:.3e} (relative) > c * steps * kappa * "
            f"u = {tol:.3e}; measured bias norm {float(np.linalg.norm(e - t)):.3e}, predicted "
            f"{float(np.linalg.norm(b)):.3e}"
        )
    return error


def assert_unbiased_sequential(
    sample: Callable[[torch.Generator], Any],
    target: Any,
    *,
    detectable_bias: float,
    alpha: float = 1e-6,
    generator: torch.Generator | None = None,
    first_look: int = 256,
    max_samples: int = 1_000_000,
) -> UnbiasednessResult:
    """Tier 2: group-sequential z-tests at n = first_look * 2^j, j = 0..J-1.

    Each look tests at level alpha / J (J looks fit in ``max_samples``), so the false-alarm
    probability over all looks is at most alpha (Bonferroni over looks and coordinates). At each
    look: fail if the statistic exceeds its threshold; pass once the simultaneous half-width
    z s_j / sqrt(n) is below ``detectable_bias`` in every coordinate (a bias that large would
    have been seen); ``InconclusiveError`` if the looks run out first.
    """
    if not (detectable_bias > 0 and np.isfinite(detectable_bias)):
        raise ValueError(f"detectable_bias must be a finite number > 0, got {detectable_bias}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    _check_generator(generator)
    generator = torch.Generator().manual_seed(0) if generator is None else generator
    target_v = finite_vector(target, "target")
    looks = max(1, int(np.floor(np.log2(max_samples / first_look))) + 1)
    level = alpha / looks
    spend(alpha)  # once: the looks share it (each is run at alpha / looks, unrecorded)
    draws: list[np.ndarray] = []
    for j in range(looks):
        while len(draws) < first_look * 2**j:
            draws.append(_as_vector(sample(generator)))
        samples = _finite_draws(np.stack(draws))
        if samples.shape[1] != target_v.size:
            raise ValueError(f"sample has {samples.shape[1]} coordinates, target {target_v.size}")
        measured, rejected = _z_test_result(samples, target_v, level, alpha, record=False)
        if rejected:
            raise AssertionError(
                f"bias detected at look {j + 1} of {looks} (n = {measured.n}): statistic "
                f"{measured.statistic:.3g} > z = {measured.threshold:.3g} (alpha = {alpha:g} "
                f"split over {looks} looks); mean {measured.mean} vs target {target_v}"
            )
        if np.all(measured.half_width < detectable_bias):
            return replace(measured, power=detectable_bias)
    raise InconclusiveError(
        f"no decision after {looks} looks (n = {len(draws)}): the interval half-width "
        f"{measured.half_width.max():.3g} is still above detectable_bias = {detectable_bias}"
    )


def _z_test_result(
    samples: np.ndarray, target: np.ndarray, level: float, alpha: float, *, record: bool = True
) -> tuple[UnbiasednessResult, bool]:
    """The Bonferroni z-test at ``level`` and its simultaneous interval z s_j / sqrt(n);
    ``alpha`` is the overall false-alarm probability reported with the result."""
    result = bonferroni_z_test(samples, target, alpha=level, record=record)
    n = samples.shape[0]
    half_width = result.threshold * samples.std(axis=0, ddof=1) / np.sqrt(n)
    measured = UnbiasednessResult(
        samples.mean(axis=0), half_width, n, result.statistic, result.threshold, alpha
    )
    return measured, result.rejected
