"""The claims of the four seed methods (minimax GDA, the MGBiO family, FOM/UFOM, BDA): each
quick grid gives the expected verdict, and a planted failure (the paper's mechanism removed,
as a wrong implementation in its slot, or a wrong prediction fed to the judge) turns a holding
claim into a refuted one. The whole gallery runs in ``test_gallery.py``."""

from __future__ import annotations

import pytest

from bilevel.proofs_checks.claims import (
    bda,
    debiasing,
    hyper_cleaning,
    minimax,
    momentum_baselines,
    momentum_pl,
    momentum_rules,
    outer_algorithms,
)
from bilevel.proofs_checks.engine import Claim
from bilevel.proofs_checks.slots import using

G = "bilevel.proofs_checks.gallery"

#: claims whose quick grid takes > 15 s: ``bilevel verify`` runs them in CI (``.ci/run``)
HEAVY = (
    "momentum/equal-budget-over-seeds",
    "momentum/stochastic-equal-budget",
    "hyper-cleaning/minimax-cost-to-accuracy",
)

FAST = [
    *minimax.CLAIMS,
    *[c for c in momentum_pl.CLAIMS if "sample-complexity" not in c.id],
    *momentum_rules.CLAIMS,
    *[c for c in debiasing.CLAIMS if c.id not in ("ufom/toy-fixed-points", "ufom/optimal-q-sweep")],
    *bda.CLAIMS,
    *[c for c in hyper_cleaning.CLAIMS if c.id not in HEAVY],
    *[c for c in momentum_baselines.CLAIMS if c.id not in HEAVY],
    *[c for c in outer_algorithms.CLAIMS if c.id.startswith(("ji2021/fo", "ji2022-maml"))],
]


def _verdict(claim: Claim, runs=None):
    runs = claim.runs("quick") if runs is None else runs
    return claim.judge(runs, [claim.measure(p) for p in runs])


#: run here; the other FAST claims are behind the ``slow`` marker, because ``.ci/run`` judges
#: every claim's quick grid anyway (``make verify-mutants``), so CI ran each of them twice
SAMPLE = {"minimax/penalty-bias", "mgbio/update-rule", "bda/one-stage-hypergradient",
          "ufom/unbiased-exact", "ji2021/fo-itd-bio-biased-limit"}  # fmt: skip


def _sampled(claims: list[Claim]) -> list:
    return [pytest.param(c, id=c.id, marks=[] if c.id in SAMPLE else [pytest.mark.slow])
            for c in claims]  # fmt: skip


def test_the_sample_names_fast_claims() -> None:
    assert SAMPLE <= {c.id for c in FAST}


@pytest.mark.parametrize("claim", _sampled(FAST))
def test_quick_grid_gives_the_expected_verdict(claim: Claim) -> None:
    verdict = _verdict(claim)
    assert claim.passes(verdict), verdict.measured
    assert verdict.power, "every verdict states its power"


def _claim(module, claim_id: str) -> Claim:
    return next(c for c in module.CLAIMS if c.id == claim_id)


def test_dropping_the_one_over_q_correction_refutes_unbiasedness() -> None:
    claim = _claim(debiasing, "ufom/unbiased-exact")
    with using({"ufom": f"{G}.meta:ufom_missing_inverse_q"}):
        verdict = _verdict(claim)
    assert verdict.outcome == "refuted" and "differs from the target" in verdict.measured


def test_bda_with_alpha_zero_fails_the_counterexample() -> None:
    claim = _claim(bda, "bda/counterexample-minimiser")
    runs = [dict(p, aggregation=0.0) for p in claim.runs("quick")]
    assert _verdict(claim, runs).outcome == "refuted"


def test_a_stalling_mgbio_refutes_the_complexity_claim() -> None:
    """An outer step far too small never reaches eps = 1e-7 in 500 iterations."""
    claim = _claim(momentum_pl, "mgbio/gradient-complexity")
    runs = [dict(p, outer_lr=1e-4) for p in claim.runs("quick")]
    verdict = _verdict(claim, runs)
    assert verdict.outcome == "refuted" and "never reached" in verdict.measured


def test_a_heavy_ball_mgbio_refutes_the_complexity_claim() -> None:
    claim = _claim(momentum_pl, "mgbio/gradient-complexity")
    with using({"mgbio": f"{G}.outer:MGBiOHeavyBall"}):
        verdict = _verdict(claim)
    assert verdict.outcome == "refuted" and "the rule reaches it" in verdict.measured


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
def test_a_constant_step_refutes_the_sample_complexity_claim_with_32_seeds() -> None:
    """MSGBiO with a constant step stalls at a noise floor: with 32 seeds (t_31 = 6.2 at 1e-6)
    the lower bound of the per-seed slope of the iterate average lies above -1/4 (about 60 s);
    the quick grid's 8 seeds cannot see it (its stated power)."""
    from dataclasses import dataclass

    from bilevel.solvers.msgbio import MSGBiO

    @dataclass(frozen=True)
    class FrozenStep(MSGBiO):  # eta_t held at 0.3 (the gallery's constant step, eta_0 = 1 at
        def eta(self, t: int) -> float:  # the claim's k = m0 = 1, diverges: a loud failure)
            return 0.3

    claim = _claim(momentum_pl, "msgbio/sample-complexity")
    runs = [{**claim.runs("quick")[0], "seed": seed, "iterations": 4000} for seed in range(32)]
    with using({"msgbio": FrozenStep}):
        verdict = _verdict(claim, runs)
    assert verdict.outcome == "refuted" and "samples grow faster than eps^-4" in verdict.measured


@pytest.mark.slow
@pytest.mark.parametrize(
    "claim",
    [c for c in momentum_pl.CLAIMS if "sample-complexity" in c.id],
    ids=lambda c: c.id,
)
def test_sample_complexity_claims_hold_on_their_quick_grid(claim: Claim) -> None:
    """About 40 s together (16 runs of 4000 stochastic steps): behind the slow marker."""
    assert _verdict(claim).holds


@pytest.mark.parametrize(
    "wrong, outcome", [(None, "holds"), (f"{G}.meta:ufom_hvps_uncounted", "refuted")]
)
def test_q_sweep_finds_q_star_and_refutes_a_wrong_cost(wrong, outcome) -> None:
    """The exact T(q) is minimised at q*; a UFOM that under-counts its correction's cost moves
    the minimiser and is refuted."""
    claim = _claim(debiasing, "ufom/optimal-q-sweep")
    with using({"ufom": wrong} if wrong else {}):
        assert _verdict(claim).outcome == outcome


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
