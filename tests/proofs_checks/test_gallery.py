"""The gallery of wrong implementations: every claim has at least one, each is a drop-in
replacement of its slot's default, and every claim refutes each of its own (the quick grid, as
``bilevel verify --quick --mutants`` runs it; a sample here, the rest behind the ``slow``
marker, and ``.ci/run`` runs the whole gallery through ``make verify-mutants``)."""

from __future__ import annotations

import inspect

import pytest

from bilevel.proofs_checks.gallery import all_mutants, mutants_for
from bilevel.proofs_checks.runner import load_claims, mutant_refuted, run_claims
from bilevel.proofs_checks.slots import describe, implementation, slot_ids, using
from bilevel.solvers import registry

MUTANTS = all_mutants()

CLAIMS = load_claims()
#: a sample of claims run against their gallery here, one or two of each kind of check (closed
#: forms, update rules, exact expectations, squeezed lower bounds, ground truth), together about
#: 10 s; the rest are behind the slow marker, and ``.ci/run`` runs every claim against its
#: gallery through ``make verify-mutants`` (about 3 minutes on 2 cores)
FAST = {
    "foundation/scalar-pl-constant-of-y-2-3-sin-2-y",
    "foundation/hypergradient-ift-substitution-exact-d-6",
    "ji2021/aid-cg-error-bound",
    "estimators/rt-unbiased-exact",
    "estimators/fo-bias-closed-form",
    "lower-bounds/accbio-zero-chain",
    "ji2022-maml/anil-adapts-head-only",
    "minimax/stage-schedule",
    "mgbio/update-rule",
    "fsla/storm-recursion",
    "ufom/optimal-q-sweep",
    "bda/one-stage-hypergradient",
}


def test_the_fast_sample_names_existing_claims() -> None:
    assert FAST <= {c.id for c in CLAIMS}


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
    chosen = [c for c in CLAIMS if (c.id not in FAST) == slow]
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


def test_an_implementation_override_is_cached_apart_and_refuted(tmp_path) -> None:
    """``--implementation`` in the Python API: the replaced run is cached under its own key and
    judged on its own; the default's verdict is untouched."""
    (claim,) = [c for c in CLAIMS if c.id == "ji2021/aid-cg-error-bound"]
    wrong = {"cg": "bilevel.proofs_checks.gallery.estimators:cg_skipped_solve"}
    (replaced,) = run_claims([claim], tmp_path, implementations=wrong, progress=False)
    (default,) = run_claims([claim], tmp_path, progress=False)
    assert replaced.outcome == "refuted" and replaced.implementations == wrong
    assert default.outcome == "holds" and default.implementations == {}
    files = list((tmp_path / "runs").rglob("*.json"))
    assert len(files) == 2 * len(claim.runs("quick"))


def test_cli_lists_slots_and_refuses_bad_overrides(capsys, tmp_path) -> None:
    from bilevel.proofs_checks import cli

    assert cli.main(["verify", "--slots"]) == 0
    out = capsys.readouterr().out
    assert "aid-bio  (default bilevel.solvers.aid_bio:AIDBiO)" in out
    assert "ji2021/aid-bio-linear-rate" in out and "signature: AIDBiO(" in out
    args = ["verify", "--out", str(tmp_path), "--only", "ji2021/aid-cg-error-bound"]
    assert cli.main([*args, "--implementation", "nope=a:b"]) == 2
    assert "unknown implementation slot 'nope'" in capsys.readouterr().err
    assert cli.main([*args, "--implementation", "cg=no_such_module_xyz:f"]) == 2
    assert "no_such_module_xyz" in capsys.readouterr().err
    wrong = "cg=bilevel.proofs_checks.gallery.estimators:cg_skipped_solve"
    assert cli.main([*args, "--implementation", wrong, "--no-progress", "--workers", "0"]) == 1
