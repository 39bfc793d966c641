"""Tutorial 1: put your own hypergradient estimator under bilevel's checks in your pytest suite.

Run: ``pytest examples/01_unbiasedness_in_pytest`` (bilevel's pytest plugin loads itself and
provides the ``quadratic_instance`` fixture).

The estimator under test is a user's own: a randomized-truncation ("Russian roulette") estimate
of the implicit hypergradient, written with plain ``torch.func`` Hessian-vector products. Three
tests, each with its tolerance stated:

1. unbiasedness: a fixed-seed Bonferroni z-test (false alarm <= 1e-6; a bias of 0.05 in any
   coordinate is missed with probability <= 1e-6; the sample size comes from a power analysis);
2. the same test catches a biased variant (the series cut without reweighting);
3. the estimator's deterministic limit (many terms) against the exact closed form, at the
   float64 tolerance of a backward-stable computation (``assert_close_to_closed_form``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.func import grad, jvp

from bilevel.analysis import QuadraticBilevel
from bilevel.proofs_checks.comparators import assert_close_to_closed_form, assert_unbiased
from bilevel.proofs_checks.instances import quadratic_objectives


class MyEstimator:
    """grad_x f - (d^2 g/dx dy) v with v = eta sum_{q<=N} (I - eta H)^q b / P(N >= q) and
    N ~ Geometric(p), P(N >= q) = (1 - p)^q: unbiased for grad Phi when the series converges."""

    def __init__(self, instance: QuadraticBilevel, x: np.ndarray, p: float = 0.3):
        self.outer, self.inner = quadratic_objectives(instance)  # the instance as torch functions
        self.x = torch.as_tensor(x, dtype=torch.float64)
        self.y = torch.as_tensor(np.ravel(instance.inner_solution("numpy")(x)))  # y*(x)
        self.eta, self.p = 1.0 / float(instance.constants.L), p

    def _grad_y(self, x, y):
        return grad(self.inner, argnums=1)(x, y)

    def with_terms(self, count: int, reweight: bool = True) -> torch.Tensor:
        """The estimate given N = count - 1 (``reweight=False``: the plain truncated sum)."""
        gx, b = grad(self.outer, argnums=(0, 1))(self.x, self.y)
        term, v = b, torch.zeros_like(b)
        for q in range(count):
            v = v + self.eta * term / ((1 - self.p) ** q if reweight else 1.0)
            hvp = jvp(lambda y: self._grad_y(self.x, y), (self.y,), (term,))[1]
            term = term - self.eta * hvp
        mixed = grad(lambda x: self._grad_y(x, self.y) @ v)(self.x)  # (d^2 g/dx dy) v
        return gx - mixed

    def __call__(self, generator: torch.Generator, reweight: bool = True) -> torch.Tensor:
        u = torch.rand((), generator=generator, dtype=torch.float64).item()
        level = math.floor(math.log1p(-u) / math.log1p(-self.p))  # N ~ Geometric(p)
        return self.with_terms(level + 1, reweight)


INSTANCE = QuadraticBilevel.random(d_x=2, d_y=4, kappa=4.0, seed=0)  # exact ground truth
X = np.ones(2)


def test_my_estimator_is_unbiased():
    exact = INSTANCE.hypergradient("numpy")(X)
    result = assert_unbiased(
        MyEstimator(INSTANCE, X),
        exact,
        detectable_bias=0.05,
        generator=torch.Generator().manual_seed(0),
    )
    assert result.n >= 2  # the draws the power analysis asked for


def test_the_same_check_catches_a_biased_variant():
    exact = INSTANCE.hypergradient("numpy")(X)
    estimator = MyEstimator(INSTANCE, X)
    with pytest.raises(AssertionError, match="bias detected"):
        assert_unbiased(
            lambda generator: estimator(generator, reweight=False),  # cut, not reweighted
            exact,
            detectable_bias=0.05,
            generator=torch.Generator().manual_seed(0),
        )


def test_its_limit_is_the_exact_hypergradient(quadratic_instance):
    """The plugin's instance (kappa = 100). Unweighted, 3000 terms leave a Neumann remainder of
    (1 - 1/kappa)^3000 ~ 1e-13 relative; the comparator allows c kappa u per step (c = 10)."""
    x = np.ones(quadratic_instance.B.shape[1])
    estimate = MyEstimator(quadratic_instance, x).with_terms(3000, reweight=False)
    exact = quadratic_instance.hypergradient("numpy")(x)
    assert_close_to_closed_form(estimate.numpy(), exact, condition_number=100.0, steps=3000)
