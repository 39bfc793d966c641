r"""The gallery of wrong implementations: realistic bugs, each registered against a slot.

Every claim must refute at least one wrong implementation of a method it checks (``bilevel
verify --mutants`` runs them; a claim that refutes none is a defect). A ``Mutant`` names its
slot (a registry id of ``bilevel.solvers.registry`` or a ground-truth slot of
``bilevel.proofs_checks.slots``), the wrong implementation as "module:attr" (it has the
default's call signature, so it can also be passed by hand: ``bilevel verify --implementation
cg=bilevel.proofs_checks.gallery.estimators:cg_old_residual``), one line of provenance (the bug
class it stands for) and the claims that must refute it.

The modules hold the implementations, grouped by the slots they replace: ``estimators``
(hypergradient estimators), ``outer`` (outer algorithms), ``meta`` (meta-learning and UFOM),
``ground_truth`` (closed forms of ``bilevel.analysis``).
"""

from __future__ import annotations

import pkgutil
from dataclasses import dataclass
from importlib import import_module

from ..engine import Claim

_G = "bilevel.proofs_checks.gallery"


@dataclass(frozen=True)
class Mutant:
    """A planted wrong implementation of ``slot`` that each claim in ``claims`` must refute."""

    id: str
    slot: str
    target: str
    provenance: str
    claims: tuple[str, ...]


def _m(id: str, slot: str, target: str, provenance: str, *claims: str) -> Mutant:
    return Mutant(id, slot, f"{_G}.{target}", provenance, claims)


MUTANTS: tuple[Mutant, ...] = (
    # --- hypergradient estimators -------------------------------------------------------
    _m("cg-old-residual", "cg", "estimators:cg_old_residual",
       "CG direction from the previous residual (shipped in a popular meta-learning library)",
       "ji2021/aid-cg-rate", "ji2021/aid-cg-error-bound"),
    _m("cg-skipped-solve", "cg", "estimators:cg_skipped_solve",
       "linear solve skipped (v = 0) while the HVPs are still spent",
       "ji2021/aid-cg-error-bound", "lower-bounds/cg-zero-chain"),
    _m("cg-steepest-descent", "cg", "estimators:cg_steepest_descent",
       "conjugation dropped (beta = 0): steepest descent sold as CG",
       "ji2021/cg-hvp-complexity", "ji2021/aid-cg-rate"),
    _m("cg-dense-miscounted", "cg", "estimators:cg_dense_miscounted",
       "a dense solve reported as one HVP (oracle miscount)",
       "lower-bounds/cg-zero-chain"),
    _m("neumann-one-term-short", "neumann", "estimators:neumann_one_term_short",
       "Neumann series one term short (off-by-one loop bound)",
       "ji2021/aid-neumann-linear-rate"),
    _m("neumann-naive-powers", "neumann", "estimators:neumann_naive_powers",
       "each power (I - eta H)^q b recomputed from b: Q^2 / 2 HVPs",
       "ji2021/neumann-hvp-complexity"),
    _m("itd-one-step-short", "itd", "estimators:itd_one_step_short",
       "ITD taping T - 1 of its T inner steps",
       "ji2021/itd-error-closed-form"),
    _m("itd-checkpoint-off-by-one", "itd", "estimators:itd_checkpoint_segment_off_by_one",
       "checkpointed ITD recomputing segments one step short (plain ITD correct)",
       "ji2021/itd-error-closed-form"),
    _m("rt-unweighted", "rt", "estimators:rt_unweighted",
       "randomized truncation without the 1 / P(N >= q) reweighting",
       "estimators/rt-unbiased-exact", "estimators/rt-unbiased-ztest"),
    _m("rt-weight-off-by-one", "rt", "estimators:rt_weight_off_by_one",
       "terms weighted by 1 / P(N > q) instead of 1 / P(N >= q)",
       "estimators/rt-unbiased-exact", "estimators/rt-unbiased-ztest"),
    _m("fo-identity-hessian", "fo", "estimators:fo_identity_hessian",
       "first-order estimate keeping the mixed term with H replaced by I",
       "estimators/fo-bias-closed-form"),
    _m("neumann-one-term-short-bias", "neumann", "estimators:neumann_one_term_short",
       "Neumann series one term short (off-by-one loop bound)",
       "estimators/neumann-q3-bias-closed-form"),
    _m("stocbio-one-batch-for-all", "stocbio", "estimators:stocbio_one_batch_for_all",
       "one minibatch reused for every Neumann term (products of one batch's HVPs are biased)",
       "estimators/mean-equals-predicted-bias"),
    _m("rt-unweighted-means", "rt", "estimators:rt_unweighted",
       "randomized truncation without the 1 / P(N >= q) reweighting",
       "estimators/mean-equals-predicted-bias"),
    # --- outer algorithms ---------------------------------------------------------------
    _m("accbio-momentum-off", "accbio", "outer:AccBiOMomentumOff",
       "AccBiO with the outer momentum off (gradient descent)",
       "lower-bounds/accbio-zero-chain", "outer/quadratic-convergence"),
    _m("accbio-kappa-momentum", "accbio", "outer:AccBiOKappaMomentum",
       "AccBiO momentum (kappa - 1)/(kappa + 1) for (sqrt kappa - 1)/(sqrt kappa + 1)",
       "lower-bounds/accbio-zero-chain", "outer/quadratic-convergence"),
    _m("stocbio-implicit-sign-flipped", "stocbio-bio", "outer:StocBiOImplicitSignFlipped",
       "implicit term added instead of subtracted (sign of d^2 g/dx dy dropped)",
       "outer/logistic-validation-loss"),
    _m("aid-bio-stale-inner-iterate", "aid-bio", "outer:AIDBiOStaleInnerIterate",
       "hypergradient taken at the inner iterate before this iteration's inner steps",
       "ji2021/aid-bio-linear-rate"),
    _m("aid-bio-cold-start-v", "aid-bio", "outer:AIDBiOColdStartV",
       "warm start of v ignored (the solver restarts from 0)",
       "ji2021/aid-bio-linear-rate"),
    _m("stocbio-neumann-term-short", "stocbio-bio", "outer:StocBiONeumannTermShort",
       "Q Neumann terms for Q + 1 (index range read as 0..Q-1)",
       "stocbio-bio/update-rule"),
    _m("stocbio-implicit-sign-flipped-rule", "stocbio-bio", "outer:StocBiOImplicitSignFlipped",
       "implicit term added instead of subtracted (sign of d^2 g/dx dy dropped)",
       "stocbio-bio/update-rule"),
    _m("itd-bio-outer-step-rescaled", "itd-bio", "outer:ITDBiOOuterStepRescaled",
       "outer step divided by 1000 (a step size rescaled twice)",
       "ji2022-loops/itd-no-loop-limit"),
    _m("fo-itd-bio-flag-ignored", "itd-bio", "outer:ITDBiOFirstOrderIgnored",
       "FO-ITD-BiO's first_order flag not passed through (full ITD-BiO runs)",
       "ji2021/fo-itd-bio-biased-limit"),
    _m("minimax-penalty-never-grows", "minimax-gda", "outer:MinimaxGDAPenaltyNeverGrows",
       "stage schedule never applied: the penalty stays at lambda_0",
       "minimax/stage-schedule", "minimax/multi-stage-converges",
       "hyper-cleaning/minimax-cost-to-accuracy"),
    _m("minimax-outer-step-rescaled", "minimax-gda", "outer:MinimaxGDAOuterStepRescaled",
       "the x-step divided by 100 (a step size rescaled twice)",
       "hyper-cleaning/minimax-cost-to-accuracy"),
    _m("minimax-update-ignored", "minimax-gda", "outer:MinimaxGDAUpdateIgnored",
       "update order ignored: alternating GDA when simultaneous is asked for",
       "minimax/gda-spectral-boundary"),
    _m("minimax-single-stage-unit-penalty", "minimax-gda",
       "outer:MinimaxGDASingleStageUnitPenalty",
       "single-stage GDA at lambda = 1 (penalty and schedule dropped)",
       "hyper-cleaning/minimax-matches-aid", "minimax/stage-schedule",
       "minimax/multi-stage-converges"),
    _m("mgbio-heavy-ball", "mgbio", "outer:MGBiOHeavyBall",
       "heavy-ball accumulation m = (1 - beta) m + w for the exponential average",
       "mgbio/update-rule"),
    _m("mgbio-momentum-ignored", "mgbio", "outer:MGBiOMomentumIgnored",
       "momentum parameter ignored (m = w: MGBiO without momentum)",
       "mgbio/gradient-complexity", "mgbio/update-rule"),
    _m("mgbio-grad-g-in-v", "mgbio", "outer:MGBiOGradGInV",
       "the linear system for v solved against grad_y g instead of grad_y f",
       "mgbio/surrogate-selection-invariance"),
    _m("mgbio-heavy-ball-rate", "mgbio", "outer:MGBiOHeavyBall",
       "heavy-ball accumulation m = (1 - beta) m + w for the exponential average",
       "mgbio/gradient-complexity"),
    _m("mgbio-uncounted-inner", "mgbio", "outer:MGBiOUncountedInner",
       "inner gradients not counted (an oracle under-count in an equal-budget race)",
       "momentum/beats-double-loop", "momentum/equal-budget-over-seeds"),
    _m("mgbio-stale-v", "mgbio", "outer:MGBiOStaleV",
       "surrogate direction built from v_t instead of v_{t+1}",
       "mgbio/update-rule"),
    _m("msgbio-full-batch", "msgbio", "outer:MSGBiOFullBatch",
       "the full batch in a stochastic method (every oracle on all the data)",
       "msgbio/update-rule", "msgbio/sample-complexity",
       "momentum/stochastic-equal-budget"),
    _m("msgbio-constant-step", "msgbio", "outer:MSGBiOConstantStep",
       "the step schedule eta_t = k / (m0 + t)^(1/2) dropped for a constant",
       "msgbio/update-rule"),
    _m("vr-msgbio-full-batch", "vr-msgbio", "outer:VRMSGBiOFullBatch",
       "the full batch in a stochastic method (every oracle on all the data)",
       "vr-msgbio/update-rule", "vr-msgbio/sample-complexity",
       "momentum/stochastic-equal-budget"),
    _m("vr-msgbio-storm-dropped", "vr-msgbio", "outer:VRMSGBiOStormDropped",
       "STORM's correction dropped (plain momentum with the VR schedule)",
       "vr-msgbio/update-rule"),
    _m("fsla-storm-weight-swapped", "fsla", "outer:FSLAStormWeightSwapped",
       "STORM weight swapped: eta for 1 - eta",
       "fsla/storm-recursion"),
    _m("fsla-storm-dropped", "fsla", "outer:FSLAStormDropped",
       "STORM's correction dropped (m = d_new)",
       "fsla/storm-recursion"),
    _m("bda-aggregation-ignored", "bda", "outer:BDAAggregationIgnored",
       "aggregation weight not applied (RHG on the lower level)",
       "bda/counterexample-minimiser", "bda/lls-uniform-convergence"),
    _m("bda-harmonic-off-by-one", "bda", "outer:BDAHarmonicOffByOne",
       "harmonic weight a / (k + 2) for a / (k + 1)",
       "bda/aggregation-residual", "bda/counterexample-minimiser", "bda/lls-uniform-convergence"),
    _m("bda-geometric-off-by-one", "bda", "outer:BDAGeometricOffByOne",
       "the official schedule's decay applied from the first step (alpha decay^(k+1))",
       "bda/geometric-schedule-stalls"),
    _m("bda-one-stage-half-difference", "bda", "outer:BDAOneStageHalfDifference",
       "central difference divided by eps instead of 2 eps",
       "bda/one-stage-hypergradient", "bda/one-stage-fd-second-order"),
    _m("bda-one-stage-forward-difference", "bda", "outer:BDAOneStageForwardDifference",
       "a forward difference for the central one (O(eps) for O(eps^2))",
       "bda/one-stage-fd-second-order"),
    _m("bda-one-stage-runs-reverse", "bda", "outer:BDAOneStageRunsReverse",
       "the one-stage flag not passed on: reverse mode through the K steps runs",
       "bda/one-stage-cost-in-K"),
    # --- ground truth ---------------------------------------------------------------------
    _m("penalty-bias-leading-term", "quadratic-bilevel",
       "ground_truth:QuadraticBilevelPenaltyLeadingTerm",
       "spec 7.8's bias with its second O(1/lambda) term dropped as 'higher order'",
       "minimax/penalty-bias"),
    _m("implicit-term-sign", "quadratic-bilevel", "ground_truth:QuadraticBilevelImplicitSign",
       "the implicit function theorem's term with its sign flipped",
       "foundation/hypergradient-ift-substitution-symbolic",
       "foundation/hypergradient-ift-substitution-exact-d-6",
       "foundation/hypergradient-lambdified-torch-autograd"),
    _m("itd-closed-form-off-by-one", "quadratic-bilevel",
       "ground_truth:QuadraticBilevelITDOffByOne", "ITD's closed form one power short",
       "foundation/itd-closed-form-simulation-error-bound", "foundation/itd-t-neumann-t-at-y-t"),
    _m("neumann-closed-form-one-short", "quadratic-bilevel",
       "ground_truth:QuadraticBilevelNeumannOneShort", "the Neumann closed form one term short",
       "foundation/neumann-closed-form-simulation-error-bound"),
    _m("cg-closed-form-one-short", "quadratic-bilevel",
       "ground_truth:QuadraticBilevelCGOneShort", "the Krylov closed form one vector short",
       "foundation/cg-krylov-form-exact-cg-error-bound"),
    _m("penalty-bias-leading-term-foundation", "quadratic-bilevel",
       "ground_truth:QuadraticBilevelPenaltyLeadingTerm",
       "spec 7.8's bias with its second O(1/lambda) term dropped as 'higher order'",
       "foundation/penalty-reformulation-bias-o-1-lambda"),
    _m("pl-surrogate-without-regulariser", "pl-game",
       "ground_truth:PLGameSurrogateWithoutRegulariser",
       "the surrogate hypergradient without the outer regulariser's nu x",
       "foundation/pl-game-surrogate-hypergradient"),
    _m("scalar-pl-chain-rule-slip", "scalar-pl", "ground_truth:ScalarPLChainRuleSlip",
       "h'(u) with d/du sin^2 u taken as sin u",
       "foundation/scalar-pl-constant-of-y-2-3-sin-2-y"),
    # --- meta-learning ------------------------------------------------------------------
    _m("maml-as-fomaml", "maml", "meta:maml_as_fomaml",
       "MAML's adaptation Jacobian dropped (FO-MAML returned for MAML)",
       "ji2022-maml/meta-gradient-closed-form", "ji2022-maml/cost-linear-in-steps"),
    _m("anil-adapts-body", "maml", "meta:anil_adapts_body",
       "ANIL adapting the body too (adapt_keys not passed on)",
       "ji2022-maml/anil-adapts-head-only", "ji2022-maml/cost-linear-in-steps"),
    _m("maml-rebuilds-each-prefix", "maml", "meta:maml_rebuilds_each_prefix",
       "the inner trajectory re-run from theta for every prefix: a cost quadratic in N",
       "ji2022-maml/cost-linear-in-steps"),
    _m("ufom-missing-inverse-q", "ufom", "meta:ufom_missing_inverse_q",
       "the 1/q dropped from UFOM's correction",
       "ufom/unbiased-exact", "ufom/unbiased-ztest", "ufom/second-moment",
       "ufom/optimal-q-sweep", "fom/family-fixed-points"),
    _m("fom-unadapted", "ufom", "meta:fom_unadapted",
       "FOM's gradient taken at theta, not at the adapted phi_r",
       "fom/bias-closed-form", "fom/family-fixed-points"),
    _m("ufom-hvps-uncounted", "ufom", "meta:ufom_hvps_uncounted",
       "the correction's recomputed adaptations not counted (cost model off)",
       "ufom/optimal-q-sweep", "ufom/memory-and-cost-in-r"),
    _m("ufom-keeps-trajectory", "ufom", "meta:ufom_keeps_trajectory",
       "the adaptation trajectory kept for the backward HVPs (O(r) memory) while counted as "
       "recomputed",
       "ufom/memory-and-cost-in-r"),
    _m("ufom-sgd-method-ignored", "ufom-sgd", "outer:UFOMSGDMethodIgnored",
       "the method not passed to the estimator: FOM runs when UFOM is asked for",
       "ufom/toy-fixed-points", "ufom-sgd/family-limits"),
    _m("meta-train-ascent", "meta-train", "meta:meta_train_ascent",
       "meta-update with its sign flipped (theta + lr g)",
       "ji2022-maml/sinusoid-meta-training", "ji2022-maml/meta-train-update-rule"),
    _m("meta-train-method-dropped", "meta-train", "meta:meta_train_method_dropped",
       "the method not passed to the meta-gradient (MAML whatever is asked)",
       "ji2022-maml/meta-train-update-rule"),
)  # fmt: skip


def all_mutants() -> tuple[Mutant, ...]:
    """``MUTANTS`` above, then the ``MUTANTS`` of each module of this package that defines its
    own (a method's gallery can live in one module, e.g. ``gallery.soba``)."""
    found: list[Mutant] = list(MUTANTS)
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        found.extend(getattr(import_module(f"{__name__}.{info.name}"), "MUTANTS", ()))
    return tuple(found)


def mutants_for(claim: Claim) -> list[Mutant]:
    """The gallery's wrong implementations that ``claim`` must refute (slots it checks only)."""
    chosen = [m for m in all_mutants() if claim.id in m.claims]
    for mutant in chosen:
        if mutant.slot not in claim.slots:
            raise ValueError(
                f"mutant {mutant.id} replaces slot {mutant.slot!r}, which claim {claim.id} does "
                f"not use (its slots: {', '.join(claim.slots) or 'none'})"
            )
    return chosen
