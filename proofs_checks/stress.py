"""Stress run of the statistical claims: each re-run under 20 different seeds (``make stress``).

A statistical verdict rests on one fixed seed; this checks that the seed was not lucky. Every
claim of ``STRESSED`` is re-run with its random seed replaced by 20 fresh ones (``reseed``); a
claim that is true must hold under every seed (its false-alarm probability is 1e-6 per seed, so
a failure here is a bug, not bad luck: 20 x 1e-6), and each of its wrong implementations in the
gallery (``bilevel.proofs_checks.gallery``; biased estimators) must be refuted under every seed
(each test has power 1 - 1e-6 against the bias it was sized for). Runs are cached under ``--out`` like ``verify``'s: an interrupted stress
run resumes. Writes ``<out>/stress.md``; exit status 0 only when every verdict is as expected.

Run: ``python -m bilevel.proofs_checks.stress [--seeds 20] [--slow] [--out stress]``. ``--slow``
adds the MSGBiO / VR-MSGBiO sample-complexity claims (8 seeds of 4000 steps each per
repetition; about 20 min on 2 cores).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from .cli import executor_for
from .engine import Claim, Params
from .records import atomic_write
from .runner import ClaimResult, load_claims, run_claims


def _shift(key: str, stride: int = 1) -> Callable[[Params, int], Params]:
    """Replace ``params[key]`` = s by s + stride * k for repetition k (k = 0 is the claim's own)."""
    return lambda params, k: {**params, key: params[key] + stride * k}


#: claim id -> how to re-seed one run for repetition k
STRESSED: dict[str, Callable[[Params, int], Params]] = {
    "ufom/unbiased-ztest": _shift("test_seed"),
    "estimators/rt-unbiased-ztest": _shift("seed"),
    "estimators/mean-equals-predicted-bias": _shift("seed"),
}
SLOW: dict[str, Callable[[Params, int], Params]] = {
    "msgbio/sample-complexity": _shift("seed", 8),
    "vr-msgbio/sample-complexity": _shift("seed", 8),
}


def reseeded(claim: Claim, reseed: Callable[[Params, int], Params], k: int) -> Claim:
    """The claim with every quick-grid run re-seeded for repetition k."""
    return replace(claim, grids={"quick": [reseed(p, k) for p in claim.runs("quick")]})


def stress_table(results: dict[str, list[ClaimResult]], seeds: int) -> str:
    lines = [
        f"# Stress run: each statistical claim under {seeds} seeds",
        "",
        "| claim | expect | seeds with the expected verdict | seeds refuting every wrong "
        "implementation (how many) | false-alarm sum |",
        "|---|---|---|---|---|",
    ]
    for claim_id, rows in results.items():
        good = sum(r.passed for r in rows)
        killed = sum(bool(r.mutants) and all(m["refuted"] for m in r.mutants) for r in rows)
        alpha = sum(r.false_alarm for r in rows)
        lines.append(
            f"| {claim_id} | {rows[0].expect} | {good} / {len(rows)} | {killed} / {len(rows)} "
            f"({len(rows[0].mutants)}) | {alpha:.2g} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--slow", action="store_true", help="add the sample-complexity claims")
    parser.add_argument("--out", type=Path, default=Path("stress"))
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    args.executor, args.address = "process", None
    if args.seeds < 1:
        print(f"stress: error: --seeds must be >= 1, got {args.seeds}", file=sys.stderr)
        return 2
    known = {c.id: c for c in load_claims()}
    stressed = {**STRESSED, **(SLOW if args.slow else {})}
    claims = [
        reseeded(known[claim_id], reseed, k)
        for claim_id, reseed in stressed.items()
        for k in range(args.seeds)
    ]
    with executor_for(args) as executor:
        rows = run_claims(
            claims, args.out, executor=executor, progress=not args.no_progress, mutants=True
        )
    by_claim: dict[str, list[ClaimResult]] = {}
    for row in rows:
        by_claim.setdefault(row.id, []).append(row)
    table = stress_table(by_claim, args.seeds)
    atomic_write(args.out / "stress.md", table)
    print(table)
    killed = all(r.mutants and all(m["refuted"] for m in r.mutants) for r in rows)
    return 0 if all(r.passed for r in rows) and killed else 1


if __name__ == "__main__":
    sys.exit(main())
