"""The claims of the four seed methods (minimax GDA, the MGBiO family, FOM/UFOM, BDA): each
quick grid gives the expected verdict, and a planted failure (the paper's mechanism removed)
turns a holding claim into a refuted one."""

from __future__ import annotations

import pytest

from bilevel.proofs_checks.claims import (
    bda,
    debiasing,
    hyper_cleaning,
    minimax,
    momentum_baselines,
    momentum_pl,
    outer_algorithms,
)
from bilevel.proofs_checks.engine import Claim

FAST = [
    *minimax.CLAIMS,
    *[c for c in momentum_pl.CLAIMS if "sample-complexity" not in c.id],
    *[c for c in debiasing.CLAIMS if c.id not in ("ufom/toy-fixed-points", "ufom/optimal-q-sweep")],
    *bda.CLAIMS,
    *hyper_cleaning.CLAIMS,
    *momentum_baselines.CLAIMS,
    *[c for c in outer_algorithms.CLAIMS if c.id.startswith(("ji2021/fo", "ji2022-maml"))],
]


def _verdict(claim: Claim, runs=None):
    runs = claim.runs("quick") if runs is None else runs
    return claim.judge(runs, [claim.measure(p) for p in runs])


@pytest.mark.parametrize("claim", FAST, ids=lambda c: c.id)
def test_quick_grid_gives_the_expected_verdict(claim: Claim) -> None:
    verdict = _verdict(claim)
    assert verdict.holds == (claim.expect == "holds"), verdict.measured


def _claim(module, claim_id: str) -> Claim:
    return next(c for c in module.CLAIMS if c.id == claim_id)


def test_dropping_the_one_over_q_correction_refutes_unbiasedness() -> None:
    claim = _claim(debiasing, "ufom/unbiased-exact")
    runs = [dict(p, corrected=False) for p in claim.runs("quick")]
    verdict = _verdict(claim, runs)
    assert not verdict.holds and "differs from the target" in verdict.measured


def test_bda_with_alpha_zero_fails_the_counterexample() -> None:
    claim = _claim(bda, "bda/counterexample-minimiser")
    runs = [dict(p, aggregation=0.0) for p in claim.runs("quick")]
    assert not _verdict(claim, runs).holds


def test_a_stalling_mgbio_refutes_the_complexity_claim() -> None:
    """An outer step far too small never reaches eps = 1e-7 in 500 iterations."""
    claim = _claim(momentum_pl, "mgbio/gradient-complexity")
    runs = [dict(p, outer_lr=1e-4) for p in claim.runs("quick")]
    verdict = _verdict(claim, runs)
    assert not verdict.holds and "never reached" in verdict.measured


def test_a_wrong_penalty_scaling_refutes_the_bias_claim() -> None:
    """The alpha-form direction is the lambda-form's divided by lambda; judged as if it were the
    lambda-form's, its bias no longer matches spec 7.8."""
    claim = _claim(minimax, "minimax/penalty-bias")
    runs = claim.runs("quick")
    measurements = [claim.measure(p) for p in runs]
    for m in measurements:
        m["bias"] = [b / m["lambda"] for b in m["bias"]]
    assert not claim.judge(runs, measurements).holds


def test_the_toy_claim_separates_fom_from_ufom() -> None:
    """The quick grid holds; swapping the method labels (FOM's run judged as UFOM's) fails."""
    claim = _claim(debiasing, "ufom/toy-fixed-points")
    runs = claim.runs("quick")
    measurements = [claim.measure(p) for p in runs]
    assert claim.judge(runs, measurements).holds
    swapped = [dict(m, method="ufom" if m["method"] == "fom" else "fom") for m in measurements]
    assert not claim.judge(runs, swapped).holds


@pytest.mark.slow
def test_a_constant_step_refutes_the_sample_complexity_claim() -> None:
    """MSGBiO with eta_t held at 0.3 stalls at a noise floor: with 32 seeds (t_31 = 5.8 at
    1e-6) the lower bound of the per-seed slope lies above -1/4 (measured: about 60 s)."""
    claim = _claim(momentum_pl, "msgbio/sample-complexity")
    runs = [
        {**claim.runs("quick")[0], "seed": seed, "constant_step": True, "iterations": 2000}
        for seed in range(32)
    ]
    verdict = _verdict(claim, runs)
    assert not verdict.holds and "samples grow faster than eps^-4" in verdict.measured


@pytest.mark.slow
@pytest.mark.parametrize(
    "claim",
    [c for c in momentum_pl.CLAIMS if "sample-complexity" in c.id],
    ids=lambda c: c.id,
)
def test_sample_complexity_claims_hold_on_their_quick_grid(claim: Claim) -> None:
    """About 40 s together (16 runs of 4000 stochastic steps): behind the slow marker."""
    assert _verdict(claim).holds


@pytest.mark.parametrize("q_test, holds", [(None, True), (1.0, False)])
def test_q_sweep_finds_q_star_and_refutes_q_one(q_test, holds) -> None:
    """800 draws per q (the quick grid has 3000): q* holds, always-exact (q = 1) is refuted."""
    claim = _claim(debiasing, "ufom/optimal-q-sweep")
    runs = [dict(p, draws=800) for p in claim.runs("quick")]
    if q_test is not None:
        runs = [dict(p, q_test=q_test) for p in runs]
    assert _verdict(claim, runs).holds == holds


def test_estimator_means_hold_and_a_wrong_prediction_is_refuted() -> None:
    """The four estimators' means equal their closed-form biases; predicting FOM unbiased
    (bias 0) is refuted by the same data (its z is about 9)."""
    from bilevel.proofs_checks.claims import estimator_means

    (claim,) = estimator_means.CLAIMS
    runs = [dict(p, draws=1500) for p in claim.runs("quick")]
    measurements = [claim.measure(p) for p in runs]
    assert claim.judge(runs, measurements).holds
    planted = [dict(m, predicted=0.0) if m["estimator"] == "fom" else m for m in measurements]
    verdict = claim.judge(runs, planted)
    assert not verdict.holds and verdict.measured.startswith("fom")


@pytest.mark.slow
def test_outer_convergence_claims_hold() -> None:
    """About 40 s (24 runs of whole outer algorithms): behind the slow marker."""
    from bilevel.proofs_checks.claims import outer_convergence

    for claim in outer_convergence.CLAIMS:
        assert _verdict(claim).holds, claim.id


def test_accbio_respects_the_zero_chain_lower_bound() -> None:
    from bilevel.proofs_checks.claims import lower_bounds

    claim = _claim(lower_bounds, "lower-bounds/accbio-zero-chain")
    assert _verdict(claim).holds
