"""Comparators catch their planted failures and pass their true cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bilevel.proofs_checks.comparators import (
    assert_bias,
    assert_expectation_exact,
    assert_unbiased,
)
from bilevel.proofs_checks.statistics import required_samples


def test_sample_size_matches_the_verification_guide() -> None:
    # VERIFICATION.md section 2: about 800 samples for b = 0.15, sigma = 0.43, alpha = beta = 1e-6
    # and d = 2 (z = 5.03 + 4.75).
    n = required_samples(0.43, 0.15, 1e-6, 1e-6, 2)
    assert 760 <= n <= 820


def _gaussian(mean: np.ndarray, scale: float):
    mean_t = torch.as_tensor(mean, dtype=torch.float64)

    def sample(gen: torch.Generator) -> torch.Tensor:
        return mean_t + scale * torch.randn(mean_t.shape, generator=gen, dtype=torch.float64)

    return sample


def test_unbiased_sample_passes_and_reports_its_interval() -> None:
    result = assert_unbiased(
        _gaussian(np.array([1.0, -2.0]), 0.5),
        [1.0, -2.0],
        detectable_bias=0.1,
        generator=torch.Generator().manual_seed(1),
    )
    assert result.n >= required_samples(0.45, 0.1, 1e-6, 1e-6, 2)
    assert np.all(np.abs(result.mean - [1.0, -2.0]) <= result.half_width)


def test_biased_sample_of_the_detectable_size_is_caught() -> None:
    with pytest.raises(AssertionError, match="bias detected"):
        assert_unbiased(
            _gaussian(np.array([1.1, -2.0]), 0.5),
            [1.0, -2.0],
            detectable_bias=0.1,
            generator=torch.Generator().manual_seed(1),
        )


def test_assert_bias_accepts_the_predicted_bias_and_rejects_zero() -> None:
    sample = _gaussian(np.array([0.3]), 1.0)
    assert_bias(
        sample, [0.0], [0.3], detectable_bias=0.2, generator=torch.Generator().manual_seed(2)
    )
    with pytest.raises(AssertionError):
        assert_unbiased(
            sample, [0.0], detectable_bias=0.2, generator=torch.Generator().manual_seed(2)
        )


def test_infinite_variance_is_refused() -> None:
    with pytest.raises(ValueError, match="variance is infinite"):
        assert_unbiased(
            _gaussian(np.zeros(1), 1.0), [0.0], detectable_bias=0.1, finite_variance=False
        )


def test_exact_expectation_passes_and_catches_a_wrong_weight() -> None:
    outcomes = [(0.5, [1.0]), (0.25, [2.0]), (0.25, [4.0])]
    assert_expectation_exact(outcomes, [2.0], tol=1e-15)
    with pytest.raises(AssertionError, match="differs from the target"):
        assert_expectation_exact([(0.5, [1.0]), (0.25, [2.0]), (0.25, [4.2])], [2.0], tol=1e-12)
    with pytest.raises(ValueError, match="probabilities sum"):
        assert_expectation_exact([(0.5, [1.0])], [1.0], tol=1.0)


def test_sequential_tier_passes_unbiased_fails_biased_fast() -> None:
    """Tier 2: the unbiased sample passes once the interval is tight; a bias of 0.3 sigma is
    rejected at an early look (VERIFICATION.md: biased estimators failed at n = 256-512)."""
    from bilevel.proofs_checks.comparators import InconclusiveError, assert_unbiased_sequential

    gen = torch.Generator().manual_seed(3)
    result = assert_unbiased(
        _gaussian(np.zeros(2), 1.0),
        [0.0, 0.0],
        detectable_bias=0.5,
        generator=gen,
        sequential=True,
    )
    assert result.n in {256 * 2**j for j in range(13)} and np.all(result.half_width < 0.5)
    with pytest.raises(AssertionError, match="bias detected at look") as caught:
        assert_unbiased_sequential(
            _gaussian(np.array([0.0, 0.3]), 1.0),
            [0.0, 0.0],
            detectable_bias=0.05,
            generator=torch.Generator().manual_seed(4),
        )
    assert not isinstance(caught.value, InconclusiveError)
    with pytest.raises(InconclusiveError):
        assert_unbiased_sequential(
            _gaussian(np.zeros(1), 1.0),
            [0.0],
            detectable_bias=1e-3,
            max_samples=600,
            generator=torch.Generator().manual_seed(5),
        )


def test_close_to_closed_form_uses_the_conditioning() -> None:
    from bilevel.proofs_checks.comparators import assert_close_to_closed_form

    exact = np.array([1.0, 2.0, 3.0])
    # kappa = 1e4: tolerance 10 * 1e4 * 1.1e-16 = 1.1e-11 relative to max(||p||, 1) = 3.74
    assert_close_to_closed_form(exact * (1 + 1e-12), exact, condition_number=1e4)
    with pytest.raises(AssertionError, match="exceeds c \\* steps \\* kappa \\* u"):
        assert_close_to_closed_form(exact * (1 + 1e-9), exact, condition_number=1e4)
    # a float32 computation gets float32's unit roundoff
    assert_close_to_closed_form(
        exact * (1 + 1e-6), exact, condition_number=10.0, dtype=torch.float32
    )


def test_every_comparator_refuses_nan_and_inf_instead_of_passing() -> None:
    """NaN compares false both ways, so an unchecked `error > tol` would pass: each comparator
    names the non-finite quantity instead."""
    from bilevel.proofs_checks.comparators import (
        assert_bias_exact,
        assert_close_to_closed_form,
        assert_expectation_exact,
        assert_unbiased,
    )
    from bilevel.proofs_checks.rates import (
        assert_bound_holds,
        assert_complexity_exponent,
        assert_lower_bound,
    )

    nan, inf = float("nan"), float("inf")
    draw = lambda generator: torch.randn(2, generator=generator, dtype=torch.float64)  # noqa: E731
    with pytest.raises(ValueError, match="target is not finite"):
        assert_unbiased(draw, [nan, 0.0], detectable_bias=0.5)
    with pytest.raises(ValueError, match="target is not finite"):
        assert_expectation_exact([(1.0, [0.0])], [nan], tol=1.0)
    with pytest.raises(ValueError, match="outcomes\\[0\\] is not finite"):
        assert_expectation_exact([(1.0, [nan])], [0.0], tol=1.0)
    with pytest.raises(ValueError, match="probability"):
        assert_expectation_exact([(-0.5, [0.0]), (1.5, [0.0])], [0.0], tol=1.0)
    with pytest.raises(ValueError, match="measured is not finite"):
        assert_close_to_closed_form([inf], [0.0], condition_number=1.0)
    with pytest.raises(ValueError, match="bias is not finite"):
        assert_bias_exact([0.0], [0.0], [nan], condition_number=1.0)
    with pytest.raises(ValueError, match="bound is not finite"):
        assert_bound_holds([1.0], [nan])
    with pytest.raises(ValueError, match="counts is not finite"):
        assert_complexity_exponent([1.0, 2.0, 4.0], [1.0, nan, 3.0], 1.0, rival=0.5)
    with pytest.raises(ValueError, match="iterates\\[0\\] is not finite"):
        assert_lower_bound([np.array([nan])], [0], np.array([1.0]), [0.5])


def test_bad_designs_are_refused_before_sampling() -> None:
    from bilevel.proofs_checks.comparators import assert_unbiased

    draw = lambda generator: torch.zeros(1, dtype=torch.float64)  # noqa: E731
    with pytest.raises(TypeError, match=r"generator must be a torch\.Generator"):
        assert_unbiased(draw, [0.0], detectable_bias=0.1, generator=0)
    for pilot in (0, 1):
        with pytest.raises(ValueError, match="pilot must be an int >= 2"):
            assert_unbiased(draw, [0.0], detectable_bias=0.1, pilot=pilot)


def test_deterministic_bias_is_judged_to_rounding_with_the_exact_control() -> None:
    """A zero-variance estimate: the closed-form bias matches to rounding, a wrong bias (off by
    1e-10) is refuted, and the exact estimator passes with bias 0 (the control)."""
    from bilevel.proofs_checks.comparators import assert_bias_exact

    target = np.array([1.0, -2.0])
    bias = np.array([0.25, 0.5])
    assert assert_bias_exact(target + bias, target, bias, condition_number=4.0) < 1e-15
    assert_bias_exact(target, target, np.zeros(2), condition_number=4.0)
    with pytest.raises(AssertionError, match="bias differs from its closed form"):
        assert_bias_exact(target + bias + 1e-10, target, bias, condition_number=4.0)


def test_a_design_too_long_for_its_budget_is_refused_before_drawing() -> None:
    """sigma ~ 1 and detectable_bias 0.01 need ~ 8.6e5 draws (the issue's 10-hour design):
    refused after the pilot, with the sample count, the expected time and the knobs."""
    import torch

    calls = []

    def noisy(generator):
        calls.append(1)
        return torch.randn(3, generator=generator, dtype=torch.float64)

    with pytest.raises(ValueError, match=r"needs n = \d+ draws.*Raise detectable_bias"):
        assert_unbiased(noisy, [0.0, 0.0, 0.0], detectable_bias=0.01, max_seconds=1.0)
    assert len(calls) == 200  # the pilot only: nothing drawn beyond it


def test_a_design_within_budget_runs_and_can_show_progress(capsys) -> None:
    import torch

    def noisy(generator):
        return torch.randn(2, generator=generator, dtype=torch.float64)

    result = assert_unbiased(noisy, [0.0, 0.0], detectable_bias=1.0, progress=True)
    assert result.n > 0
    assert "the design needs n =" in capsys.readouterr().err
