"""Figures read the verification engine's saved runs; they never run a solver themselves.

``load(claim_ids, cache)`` first lets ``bilevel.proofs_checks.runner.run_claims`` execute the
runs missing from the cache (with its progress bar; finished runs are kept, an interrupted call
resumes), then reads each run back through ``records.load_run`` (the runner's checksum check:
a hand-edited entry is refused, never drawn), and returns each claim's (params, measurement) pairs in grid order together with its
verdict, so a figure can say whether the claim it illustrates held.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bilevel.proofs_checks.engine import Measurement, Params
from bilevel.proofs_checks.records import ClaimResult, load_run
from bilevel.proofs_checks.runner import load_claims, run_claims


@dataclass(frozen=True)
class ClaimData:
    claim_id: str
    runs: list[tuple[Params, Measurement]]
    result: ClaimResult

    def measurements(self, **match: Any) -> list[Measurement]:
        """The measurements whose params contain every ``key=value`` of ``match``."""
        return [m for p, m in self.runs if all(p.get(k) == v for k, v in match.items())]


def load(
    claim_ids: Sequence[str],
    cache: Path,
    *,
    grid: str = "quick",
    executor: Executor | None = None,
    progress: bool = True,
) -> dict[str, ClaimData]:
    known = {c.id: c for c in load_claims()}
    unknown = [i for i in claim_ids if i not in known]
    if unknown:
        raise ValueError(f"unknown claim id(s): {', '.join(unknown)}")
    claims = [known[i] for i in claim_ids]
    results = run_claims(claims, Path(cache), grid=grid, executor=executor, progress=progress)
    data = {}
    for claim, result in zip(claims, results, strict=True):
        runs = []
        for params in claim.runs(grid):
            try:  # the runner's checked loader: checksum, claim, params
                record = load_run(Path(cache), claim.id, params)
            except FileNotFoundError:
                raise RuntimeError(
                    f"{claim.id}: run {params} failed ({result.measured}); no data to draw"
                ) from None
            runs.append((record["params"], record["measurement"]))
        data[claim.id] = ClaimData(claim.id, runs, result)
    return data
