"""The gallery of wrong implementations: every claim has at least one, each is a drop-in
replacement of its slot's default, and every claim refutes each of its own (the quick grid, as
``bilevel verify --quick --mutants`` runs it; the claims whose runs with their mutants take 2 s
or more are behind the ``slow`` marker, and ``.ci/run`` runs the whole gallery through
``make verify-mutants``)."""

from __future__ import annotations

import inspect

import pytest

from bilevel.proofs_checks.gallery import MUTANTS, mutants_for
from bilevel.proofs_checks.runner import load_claims, mutant_refuted, run_claims
from bilevel.proofs_checks.slots import describe, implementation, slot_ids, using
from bilevel.solvers import registry

CLAIMS = load_claims()
#: claims whose runs with their mutants take 2 s or more (measured on 2 cores): behind the slow
#: marker here; CI runs every claim against its gallery through ``make verify-mutants``
SLOW = {
    "foundation/itd-closed-form-simulation-error-bound",
    "foundation/neumann-closed-form-simulation-error-bound",
    "ji2021/aid-neumann-linear-rate",
    "ji2021/itd-error-closed-form",
    "ji2021/neumann-hvp-complexity",
    "lower-bounds/cg-zero-chain",
    "ji2021/fo-itd-bio-biased-limit",
    "ji2022-maml/sinusoid-meta-training",
    "outer/quadratic-convergence",
    "outer/logistic-validation-loss",
    "minimax/gda-spectral-boundary",
    "mgbio/surrogate-selection-invariance",
    "msgbio/sample-complexity",
    "vr-msgbio/sample-complexity",
    "momentum/beats-double-loop",
    "ufom/unbiased-ztest",
    "ufom/toy-fixed-points",
    "estimators/mean-equals-predicted-bias",
    "hyper-cleaning/minimax-matches-aid",
}


def test_every_claim_names_its_slots_and_has_a_wrong_implementation() -> None:
    for claim in CLAIMS:
        assert claim.slots, f"{claim.id} names no implementation slot"
        assert mutants_for(claim), f"{claim.id} has no wrong implementation in the gallery"


def test_every_mutant_is_listed_by_a_claim_that_checks_its_slot() -> None:
    ids = {c.id: c for c in CLAIMS}
    assert len({m.id for m in MUTANTS}) == len(MUTANTS), "mutant ids repeat"
    for mutant in MUTANTS:
        assert mutant.claims and mutant.provenance
        for claim_id in mutant.claims:
            assert claim_id in ids, f"{mutant.id} names an unknown claim {claim_id}"
            assert mutant.slot in ids[claim_id].slots


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.id)
def test_every_mutant_accepts_its_slots_call_signature(mutant) -> None:
    """A replacement takes every parameter the default takes (by name), so a claim calling it
    as it calls the default reaches the bug, not a TypeError."""
    default = inspect.signature(describe(mutant.slot).load())
    wrong = inspect.signature(registry.load_target(mutant.target))
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in wrong.parameters.values())
    named = [
        n for n, p in default.parameters.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    ]
    missing = [n for n in named if n not in wrong.parameters and not accepts_any]
    assert not missing, f"{mutant.id} lacks {missing}"


def test_slots_resolve_and_overrides_are_scoped() -> None:
    assert set(registry.ids()) <= set(slot_ids())
    default = implementation("cg")
    with using({"cg": "bilevel.proofs_checks.gallery.estimators:cg_old_residual"}):
        assert implementation("cg") is not default
    assert implementation("cg") is default
    with pytest.raises(ValueError, match="unknown implementation slot"):
        implementation("no-such-method")


def _claims(slow: bool):
    chosen = [c for c in CLAIMS if (c.id in SLOW) == slow]
    marks = [pytest.mark.slow] if slow else []
    return [pytest.param(c, id=c.id, marks=marks) for c in chosen]


@pytest.mark.parametrize("claim", [*_claims(False), *_claims(True)])
def test_the_claim_holds_and_refutes_each_of_its_wrong_implementations(claim, tmp_path) -> None:
    (result,) = run_claims([claim], tmp_path, mutants=True, progress=False)
    assert result.passed, result.measured
    assert result.power, "the verdict states its power"
    survivors = [m["id"] for m in result.mutants if not m["refuted"]]
    assert result.mutants and not survivors, f"survivors: {survivors}"
    assert all(mutant_refuted(claim, m["outcome"]) for m in result.mutants)
