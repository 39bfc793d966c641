"""FOM / UFOM (spec 4, 7.9) against the closed forms of ``bilevel.analysis.meta_learning``.

Tier 0 (exact enumeration over the task and xi in {0, 1}) needs no statistics: float64 sums of
a few r-step products, tolerance 1e-10 relative. Tier 1 uses ``assert_unbiased`` (alpha = 1e-6,
power 1 - 1e-6 against the stated bias)."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
import torch

from bilevel.proofs_checks.comparators import assert_expectation_exact, assert_unbiased
from bilevel.proofs_checks.instances import meta_quadratic_instance, meta_quadratic_losses
from bilevel.solvers.oracles import OracleCounts
from bilevel.solvers.ufom import UFOMSGD, expected_cost, ufom_estimate

STEPS, ALPHA, Q = 5, 0.1, 0.25


def _setup(seed: int = 0):
    inst = meta_quadratic_instance(seed, steps=STEPS, alpha=ALPHA)
    train, test, sampler = meta_quadratic_losses(inst)
    theta = torch.linspace(-1.0, 1.0, inst.dim, dtype=torch.float64)
    return inst, train, test, sampler, theta


def _outcomes(inst, train, test, theta, q, corrected=True):
    """(probability, g_hat) over every task and xi: the estimator's exact distribution."""
    for task, w in enumerate(inst.w):
        for xi, p_xi in ((False, 1 - q), (True, q)):
            result = ufom_estimate(theta, train, test, task, steps=STEPS, lr=ALPHA, q=q, xi=xi)
            value = result.estimate
            if xi and not corrected:  # the planted failure: no 1/q
                value = result.first_order + (result.exact - result.first_order)
            yield float(w) * p_xi, value


def test_ufom_is_unbiased_and_fom_is_not_tier_0() -> None:
    """UFOM's exact expectation is grad M; FOM's is grad M + the closed-form bias
    E[(I - M^r) G (phi_r - d)] (non-zero: heterogeneous tasks); dropping the 1/q correction
    (the planted failure) breaks unbiasedness."""
    inst, train, test, _, theta = _setup()
    exact = inst.exact_gradient(backend="numpy")(theta.numpy())
    bias = inst.first_order_bias(backend="numpy")(theta.numpy())
    tol = 1e-10 * np.linalg.norm(exact)
    assert_expectation_exact(_outcomes(inst, train, test, theta, Q), exact, tol=tol)
    assert np.linalg.norm(bias) > 1e-2
    fom = [(float(w), _fo(train, test, theta, t)) for t, w in enumerate(inst.w)]
    assert_expectation_exact(fom, exact + bias, tol=tol)
    with pytest.raises(AssertionError, match="differs from the target"):
        assert_expectation_exact(fom, exact, tol=tol)
    with pytest.raises(AssertionError, match="differs from the target"):
        assert_expectation_exact(
            _outcomes(inst, train, test, theta, Q, corrected=False), exact, tol=tol
        )


def _fo(train, test, theta, task):
    return ufom_estimate(theta, train, test, task, steps=STEPS, lr=ALPHA, q=0.0).estimate


def test_second_moment_equals_its_formula_tier_0() -> None:
    """E||g_hat||^2 = E_tau[||g_ex||^2 + (1/q - 1)||g_ex - g_FO||^2] (exact enumeration)."""
    inst, train, test, _, theta = _setup(1)
    moment = sum(p * float(v @ v) for p, v in _outcomes(inst, train, test, theta, Q))
    formula = float(inst.ufom_second_moment(sp.Rational(1, 4), backend="numpy")(theta.numpy()))
    assert moment == pytest.approx(formula, rel=1e-10)


def test_ufom_passes_and_fom_fails_the_z_test() -> None:
    """Tier 1 with the generator drawing the task and xi; the detectable bias is half the
    norm of FOM's closed-form bias divided by sqrt(dim) (its largest-coordinate share)."""
    inst, train, test, sampler, theta = _setup(2)
    exact = inst.exact_gradient(backend="numpy")(theta.numpy())
    bias = inst.first_order_bias(backend="numpy")(theta.numpy())
    detectable = float(np.abs(bias).max()) / 2

    def draw(q):
        def sample(generator):
            task = sampler(generator)
            return ufom_estimate(
                theta, train, test, task, steps=STEPS, lr=ALPHA, q=q, generator=generator
            ).estimate

        return sample

    result = assert_unbiased(draw(Q), exact, detectable_bias=detectable)
    assert result.n > 0
    with pytest.raises(AssertionError, match="bias detected"):
        assert_unbiased(draw(0.0), exact, detectable_bias=detectable)


def test_cost_is_c_det_plus_c_rnd_on_exact_draws() -> None:
    """recompute=True: C_det = r + 1, C_rnd = r(r-1)/2 + r (spec 4.2); stored states: C_rnd = r."""
    _, train, test, _, theta = _setup()
    for recompute, c_rnd in ((True, STEPS * (STEPS - 1) // 2 + STEPS), (False, STEPS)):
        for xi in (False, True):
            counts = OracleCounts()
            ufom_estimate(
                theta,
                train,
                test,
                0,
                steps=STEPS,
                lr=ALPHA,
                q=Q,
                xi=xi,
                recompute=recompute,
                counts=counts,
            )
            total = counts.grad_inner + counts.grad_outer + counts.hvp
            assert total == STEPS + 1 + (c_rnd if xi else 0)
        assert expected_cost(Q, STEPS, recompute) == STEPS + 1 + Q * c_rnd


def test_ufom_sgd_bad_input() -> None:
    _, train, test, sampler, _ = _setup()
    generator = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="unknown method"):
        UFOMSGD(
            inner=train,
            outer=test,
            sampler=sampler,
            generator=generator,
            inner_steps=STEPS,
            inner_lr=ALPHA,
            outer_lr=1.0,
            method="reptile",
        )
    with pytest.raises(ValueError, match="q in"):
        UFOMSGD(
            inner=train,
            outer=test,
            sampler=sampler,
            generator=generator,
            inner_steps=STEPS,
            inner_lr=ALPHA,
            outer_lr=1.0,
            method="ufom",
            q=0.0,
        )
    with pytest.raises(ValueError, match="generator"):
        ufom_estimate(torch.zeros(3), train, test, 0, steps=2, lr=0.1, q=0.5)


def test_adaptive_q_follows_the_official_heuristic() -> None:
    """``AdaptiveQ`` (official UnbMAML, exact_prob < 0): before any exact draw q = 1; after one
    draw with ||g_hat - g_ex||^2 = 4 and ||g_ex||^2 = 9 the bias-corrected EMAs are 4 and 9,
    D^2 = 4/10, V^2 = 9, and q solves C_rnd (V^2 - D^2) q^2 - C_rnd D^2 q - 2 C_det D^2 = 0."""
    from bilevel.solvers.ufom import AdaptiveQ, UFOMEstimate

    adaptive = AdaptiveQ(c_det=6.0, c_rnd=15.0)
    assert adaptive.q == 1.0
    exact = torch.tensor([3.0, 0.0], dtype=torch.float64)
    estimate = exact + torch.tensor([0.0, 2.0], dtype=torch.float64)
    adaptive.update(UFOMEstimate(estimate, estimate, None, False))  # not drawn: ignored
    assert adaptive.q == 1.0
    adaptive.update(UFOMEstimate(estimate, estimate, exact, True))
    d2, v2 = 0.4, 9.0
    a, b, c = 15.0 * (v2 - d2), -15.0 * d2, -2 * 6.0 * d2
    root = (-b + np.sqrt(b * b - 4 * a * c)) / (2 * a)
    assert adaptive.q == pytest.approx(max(0.05, root), rel=1e-12)
    _, train, test, sampler, theta = _setup()
    algo = UFOMSGD(
        inner=train,
        outer=test,
        sampler=sampler,
        generator=torch.Generator().manual_seed(0),
        inner_steps=STEPS,
        inner_lr=ALPHA,
        outer_lr=0.5,
        method="ufom-adaptive",
    )
    state, _ = algo.run(theta, iterations=60)
    assert state.q_history[0] == 1.0 and len(set(state.q_history)) > 1
    assert all(0.05 <= q <= 1 for q in state.q_history)
