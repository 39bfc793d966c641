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
