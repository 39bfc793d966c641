"""Closed forms of spec 4.3, 4.6, 7.9 (meta-learning) and 7.10 (BDA counterexample).

Reference numbers are the spec's own (four or five printed digits), so tolerances are half a
unit in their last printed digit."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from bilevel.analysis import bda
from bilevel.analysis.meta_learning import (
    QuadraticMetaLearning,
    ufom_divergence_toy,
    ufom_optimal_q,
    ufom_time_objective,
)


def test_divergence_toy_reproduces_the_papers_numbers() -> None:
    """Spec 4.6: b_2 ~ 17.3953, A ~ 12.5968, theta_FO ~ 5.7589 with |M'| = sqrt(0.12) ~ 0.3464,
    theta* ~ 2.8403."""
    toy, numbers = ufom_divergence_toy()
    assert float(numbers["b_2"]) == pytest.approx(17.3953, abs=5e-5)
    assert float(numbers["huber_A"]) == pytest.approx(12.5968, abs=5e-5)
    assert float(numbers["theta_FO"]) == pytest.approx(5.7589, abs=5e-5)
    assert float(numbers["theta_star"]) == pytest.approx(2.8403, abs=5e-5)
    slope = toy.exact_gradient()[0].subs(toy.theta[0], numbers["theta_FO"])
    assert sp.simplify(slope**2 - sp.Rational(12, 100)) == 0
    assert toy.exact_gradient()[0].subs(toy.theta[0], numbers["theta_star"]).equals(0)
    assert toy.first_order_gradient()[0].subs(toy.theta[0], numbers["theta_FO"]).equals(0)


def test_homogeneous_tasks_make_fom_and_exact_agree() -> None:
    """One task: FOM's fixed point is the stationary point (the bias direction vanishes there)."""
    one = QuadraticMetaLearning([[[2]]], [[1]], [[[3]]], [[sp.Rational(1, 2)]], 0.1, 4)
    assert one.first_order_fixed_point() == one.stationary_point()


def test_ufom_unbiasedness_is_proven_symbolically() -> None:
    toy, _ = ufom_divergence_toy()
    assert toy.prove_ufom_unbiased(sp.Rational(1, 10))
    with pytest.raises(ValueError, match="q must lie"):
        toy.prove_ufom_unbiased(0)


@pytest.mark.parametrize("v2, d2", [(1, sp.Rational(1, 4)), (3, sp.Rational(1, 100))])
def test_optimal_q_is_the_stationary_point_of_T(v2, d2) -> None:
    """q* (the official toy's root) zeroes dT/dq and beats a 1000-point grid on (0, 1]."""
    c_det, c_rnd = 11, 10
    q_star = ufom_optimal_q(v2, d2, c_det, c_rnd)
    q = sp.Symbol("q", positive=True)
    T = (c_det + q * c_rnd) * sp.sqrt(v2 + (1 / q - 1) * d2)
    assert abs(float(sp.diff(T, q).subs(q, q_star))) < 1e-12
    grid = np.linspace(1e-3, 1, 1000)
    values = [float(ufom_time_objective(sp.Float(g), v2, d2, c_det, c_rnd)) for g in grid]
    assert float(ufom_time_objective(q_star, v2, d2, c_det, c_rnd)) <= min(values) + 1e-12


def test_optimal_q_is_one_when_the_bias_dominates() -> None:
    """D^2 >= 2 C_rnd V^2 / (C_det + C_rnd): T is decreasing on (0, 1], q* = 1."""
    assert ufom_optimal_q(1, sp.Rational(99, 100), 11, 10) == 1
    assert ufom_optimal_q(1, 2, 11, 10) == 1  # D^2 > V^2: 2 >= 2 * 10 / 21


def test_optimal_q_when_the_bias_exceeds_the_gradient() -> None:
    """D^2 = 1.2 V^2 but below the q = 1 threshold 2 C_rnd V^2 / (C_det + C_rnd) = 1.9 V^2 (C_det
    = 1, C_rnd = 20): the leading coefficient is negative, q* in (0, 1) still zeroes dT/dq and
    beats a grid."""
    v2, d2, c_det, c_rnd = 1, sp.Rational(6, 5), 1, 20
    q_star = ufom_optimal_q(v2, d2, c_det, c_rnd)
    assert 0 < q_star < 1
    grid = np.linspace(1e-3, 1, 1000)
    values = [float(ufom_time_objective(sp.Float(g), v2, d2, c_det, c_rnd)) for g in grid]
    assert float(ufom_time_objective(q_star, v2, d2, c_det, c_rnd)) <= min(values) + 1e-12


@pytest.mark.parametrize("K", [1, 7, 50])
@pytest.mark.parametrize("p", [sp.Rational(1, 2), sp.Rational(1, 3)])
def test_harmonic_residual_equals_its_gamma_form(K: int, p) -> None:
    """prod_{k<K} (1 - p/(k+1)) = Gamma(K + 1 - p) / (Gamma(1 - p) Gamma(K + 1)), exactly."""
    product = bda.harmonic_residual(1, p, K)
    assert sp.simplify(sp.gammasimp(bda.harmonic_residual_gamma(1, p, K) - product)) == 0


def test_counterexample_limits() -> None:
    """RHG -> 1/2; BDA's argmin phi_K -> 1 (K = 10, 100 print 0.963, 0.997; spec 7.10 reports
    1.000 at 3 digits for its own s_u, s_l, so only the monotone approach is asserted here); the
    geometric schedule with lr = 0.1, alpha = 0.6 stalls near 0.77 (spec 5.2: c ~ 0.54)."""
    assert bda.lower_level_singleton_minimiser() == sp.Rational(1, 2)
    half = sp.Rational(1, 2)
    minimisers = [
        float(bda.aggregated_minimiser(bda.harmonic_schedule(1, K), half, half)) for K in (10, 100)
    ]
    assert 0.5 < minimisers[0] < minimisers[1] < 1
    assert bda.geometric_residual(0.1, 0.6) == pytest.approx(0.54, abs=5e-3)
    assert bda.geometric_limit_minimiser(0.1, 0.6) == pytest.approx(0.77, abs=5e-3)
    assert bda.geometric_limit_minimiser(1, 0.6) == pytest.approx(1.0, abs=1e-5)
