"""The runner: claims x runs on any ``concurrent.futures.Executor``, cached, resumable.

Every run (claim x parameter dict) is executed by ``execute_run(claim_id, params, claims_module)``
in a worker, which looks the claim up by id (nothing but names and JSON crosses processes). Each
finished run is written at once to ``<out>/runs/<claim-id>/<key>.json`` by an atomic rename, so
an interrupted ``verify`` (even SIGKILL) loses at most the runs in flight: the next call skips
every run whose file exists and executes only the others. Each record carries the SHA-256 of its
content: an entry that fails to parse, fails its checksum or belongs to another run is reported,
moved aside (``.corrupt``) and recomputed. ``fresh=True`` deletes the cache first. A run that raises is reported with its error and not cached, so it is retried next time.

Implementation slots (``bilevel.proofs_checks.slots``): ``implementations`` maps slot ids to
"module:attr" names that replace the registered defaults in every run of every claim using the
slot; the names travel to the workers, which import them. Runs with replacements are cached
under their own keys. ``mutants=True`` also runs each claim against each wrong implementation the
gallery (``bilevel.proofs_checks.gallery``) lists for it, and records per claim whether each was
refuted.

With ``BILEVEL_RUN_LEDGER`` set to a file, each executed run appends ``executed <claim> <key>``
and each saved run ``saved <claim> <key>``: the audit trail that shows no saved run was executed
again.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import shutil
import sys
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import Executor, Future, as_completed
from dataclasses import replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .engine import Claim, Measurement, Params, Verdict, run_key
from .records import (
    ClaimResult,
    Overrides,
    atomic_write,
    cache_path,
    cache_problem,
    record_checksum,
    variant_key,
)
from .statistics import ledger

LEDGER_ENV = "BILEVEL_RUN_LEDGER"

__all__ = [  # the records' names stay importable from here
    "ClaimResult",
    "atomic_write",
    "cache_path",
    "cache_problem",
    "load_claims",
    "record_checksum",
    "run_claims",
    "variant_key",
]


def import_claims_module(entry: str) -> Any:
    """A module named ``entry`` (importable), or the ``.py`` file at that path (loaded under a
    name derived from the file's path, so every process loads it the same way)."""
    if entry.endswith(".py"):
        path = Path(entry).resolve()
        if not path.is_file():
            raise ValueError(f"--claims {entry}: no such file")
        name = "bilevel_user_claims_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
        if name not in sys.modules:
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[name]
                raise
        return sys.modules[name]
    try:
        return importlib.import_module(entry)
    except ModuleNotFoundError as exc:
        raise ValueError(
            f"--claims {entry}: cannot import it ({exc}); give an importable module name (on "
            "PYTHONPATH) or the path of a .py file"
        ) from None


def load_claims(modules: Sequence[str] = ()) -> list[Claim]:
    """The built-in claims, then those of each extra module (its ``CLAIMS`` sequence): a module
    name or the path of a ``.py`` file."""
    from .claims import builtin_claims

    claims = list(builtin_claims())
    for name in modules:
        module = import_claims_module(name)
        extra = getattr(module, "CLAIMS", None)
        if extra is None:
            raise ValueError(f"claims module {name!r} defines no CLAIMS sequence")
        claims.extend(extra)
    ids = [c.id for c in claims]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"duplicate claim ids: {', '.join(duplicates)}")
    return claims


def _ledger(line: str) -> None:
    path = os.environ.get(LEDGER_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as handle:  # one short append: atomic
            handle.write(line + "\n")


def execute_run(
    claim_id: str,
    params: Params,
    claims_modules: Sequence[str] = (),
    implementations: Overrides = (),
) -> dict:
    """Worker entry point: ``{"measurement": ..., "seconds": ...}`` or ``{"error": ...}``; the
    claim's slots named in ``implementations`` are replaced for the run."""
    from .slots import tracking_requests, using

    claim = {c.id: c for c in load_claims(claims_modules)}[claim_id]
    start = time.perf_counter()
    try:
        with ledger() as used, using(dict(implementations)), tracking_requests() as requested:
            measurement = claim.measure(dict(params))
        try:  # must be strict JSON: it is cached and reported (a bare NaN is not JSON)
            json.dumps(measurement, allow_nan=False)
        except ValueError as exc:
            raise FloatingPointError(
                f"the measurement of {claim_id} holds NaN or inf ({exc}): the measured method "
                "diverged or produced a non-finite value"
            ) from None
    except Exception as exc:  # a crash is a failed run, reported, never hidden
        detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return {"error": detail}
    seconds = time.perf_counter() - start
    _ledger(f"executed {claim_id} {run_key(params)}")
    return {
        "measurement": measurement,
        "seconds": seconds,
        "statistics": used,
        "slots_requested": sorted(requested),
    }


def code_fingerprint(claim: Claim) -> str:
    """SHA-256 (16 hex digits) of the source of the module that defines the claim's measure: a
    cached run measured by other code is stale and is recomputed (edits to a claim never reuse
    its old measurements)."""
    import inspect

    module = inspect.getmodule(claim.measure)
    try:
        source = inspect.getsource(module) if module is not None else claim.id
    except (OSError, TypeError):  # no source on disk (e.g. defined interactively)
        source = claim.id
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


def _load_cached(
    path: Path, claim_id: str, params: Params, implementations: Overrides = (), code: str = ""
) -> dict | None:
    """The cached record, or None; a corrupt entry is reported on stderr (and in the ledger),
    moved aside to ``<name>.corrupt`` for inspection, and so recomputed. A sound record whose
    ``code`` fingerprint differs from ``code`` is stale: recomputed, and overwritten then."""
    record, problem = cache_problem(path, claim_id, params, implementations)
    if record is not None and code and record.get("code", "") != code:
        _ledger(f"stale {claim_id} {run_key(params)}")
        return None
    if problem is not None:
        print(
            f"bilevel: cache entry {path} is corrupt ({problem}); recomputing it",
            file=sys.stderr,
        )
        _ledger(f"corrupt {claim_id} {run_key(params)}")
        os.replace(path, path.with_name(path.name + ".corrupt"))
    return record


class InProcessExecutor(Executor):
    """Runs each submitted call at once, in this process (``--workers 0``; debugging)."""

    def submit(self, fn, /, *args, **kwargs) -> Future:  # type: ignore[override]
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


def _variants(
    claim: Claim, implementations: Overrides, mutants: bool
) -> list[tuple[Overrides, Any]]:
    """(overrides, mutant or None) for each variant of ``claim`` to run: the claim with the
    user's replacements of its own slots, then one per gallery mutant when ``mutants``."""
    own = tuple(sorted((s, t) for s, t in implementations if s in claim.slots))
    variants: list[tuple[Overrides, Any]] = [(own, None)]
    if mutants:
        from .gallery import mutants_for

        for mutant in mutants_for(claim):
            merged = dict(own)
            merged[mutant.slot] = mutant.target
            variants.append((tuple(sorted(merged.items())), mutant))
    return variants


def run_claims(
    claims: Sequence[Claim],
    out_dir: Path,
    *,
    grid: str = "quick",
    executor: Executor | None = None,
    fresh: bool = False,
    progress: bool = True,
    claims_modules: Sequence[str] = (),
    implementations: Overrides | dict[str, str] = (),
    mutants: bool = False,
) -> list[ClaimResult]:
    """Execute the missing runs of ``claims`` on ``executor``, then judge every claim.

    ``implementations`` ({slot: "module:attr"}) replaces slots in every claim that uses them;
    ``mutants`` also runs every claim against each of its gallery's wrong implementations and
    fills ``ClaimResult.mutants`` with whether each was refuted."""
    out_dir = Path(out_dir)
    if isinstance(implementations, dict):
        implementations = tuple(sorted(implementations.items()))
    if fresh and (out_dir / "runs").exists():
        shutil.rmtree(out_dir / "runs")
    executor = InProcessExecutor() if executor is None else executor
    plan = [(claim, _variants(claim, implementations, mutants)) for claim in claims]
    codes = {claim.id: code_fingerprint(claim) for claim in claims}
    results: dict[tuple[str, str], dict] = {}
    pending: list[tuple[Claim, Params, Overrides]] = []
    for claim, variants in plan:
        for overrides, _ in variants:
            for params in claim.runs(grid):
                path = cache_path(out_dir, claim.id, params, overrides)
                cached = _load_cached(path, claim.id, params, overrides, codes[claim.id])
                if cached is not None:
                    results[claim.id, variant_key(params, overrides)] = cached
                else:
                    pending.append((claim, params, overrides))
    total = sum(len(c.runs(grid)) * len(v) for c, v in plan)
    bar = tqdm(
        total=total,
        initial=total - len(pending),
        desc="verify",
        unit="run",
        disable=not progress,
        file=sys.stderr,
    )
    own = {claim.id: variants[0][0] for claim, variants in plan}
    first = [job for job in pending if job[2] == own[job[0].id]]
    later = [job for job in pending if job[2] != own[job[0].id]]
    for jobs in (first, later):  # the claims as given, then the variants that may reuse them
        jobs = [job for job in jobs if not _reuse(job, own, results, out_dir, codes, bar)]
        futures = {
            executor.submit(execute_run, c.id, p, tuple(claims_modules), o): (c, p, o)
            for c, p, o in jobs
        }
        for future in as_completed(futures):
            claim, params, overrides = futures[future]
            try:
                outcome = future.result()
            except Exception as exc:  # the worker itself died (not the measurement)
                outcome = {"error": f"{type(exc).__name__}: {exc}"}
            _record(claim, params, overrides, outcome, results, out_dir, codes)
            bar.set_postfix_str(claim.id[-40:])
            bar.update()
    bar.close()
    return [_judge_with_mutants(claim, grid, results, variants) for claim, variants in plan]


def _record(claim, params, overrides, outcome, results, out_dir, codes) -> None:
    """Keep a run's outcome, and cache it (atomically) unless it failed."""
    key = variant_key(params, overrides)
    if "error" not in outcome:
        record = {"claim": claim.id, "params": params, "code": codes[claim.id], **outcome}
        if overrides:
            record["implementations"] = dict(overrides)
        record["checksum"] = record_checksum(record)
        atomic_write(
            cache_path(out_dir, claim.id, params, overrides),
            json.dumps(record, sort_keys=True) + "\n",
        )
        _ledger(f"saved {claim.id} {key}")
    results[claim.id, key] = outcome


def _reuse(job, own, results, out_dir, codes, bar) -> bool:
    """A variant whose replaced slots its run never asked for measures what the claim's own
    run measured (same parameters, same code, deterministic): take that outcome (as a cached
    record of the variant) instead of running it again. False when it must run."""
    claim, params, overrides = job
    base = results.get((claim.id, variant_key(params, own[claim.id])))
    if base is None or "error" in base or "slots_requested" not in base:
        return False
    replaced = {slot for slot, target in overrides if dict(own[claim.id]).get(slot) != target}
    if replaced & set(base["slots_requested"]):
        return False
    reused = {k: v for k, v in base.items() if k not in ("claim", "params", "code", "checksum",
                                                         "implementations")}  # fmt: skip
    _record(claim, params, overrides, {**reused, "reused": True}, results, out_dir, codes)
    _ledger(f"reused {claim.id} {variant_key(params, overrides)}")
    bar.update()
    return True


def mutant_refuted(claim: Claim, outcome: str) -> bool:
    """A wrong implementation is refuted when the claim's verdict with it turns against it:
    "refuted" for a claim expected to hold ("holds" for one expected to fail). An inconclusive
    verdict or a crashed run does not count: the claim must decide."""
    return outcome == ("refuted" if claim.expect == "holds" else "holds")


def _judge_with_mutants(
    claim: Claim, grid: str, results: dict[tuple[str, str], dict], variants
) -> ClaimResult:
    (own, _), *others = variants
    result = _judge(claim, grid, results, own)
    rows = []
    for overrides, mutant in others:
        judged_mutant = _judge(claim, grid, results, overrides)
        rows.append(
            {
                "id": mutant.id,
                "slot": mutant.slot,
                "provenance": mutant.provenance,
                "outcome": judged_mutant.outcome,
                "refuted": mutant_refuted(claim, judged_mutant.outcome),
                "measured": judged_mutant.measured,
            }
        )
    return replace(result, mutants=rows)


def _judge(
    claim: Claim, grid: str, results: dict[tuple[str, str], dict], overrides: Overrides = ()
) -> ClaimResult:
    params = claim.runs(grid)
    outcomes = [results[claim.id, variant_key(p, overrides)] for p in params]
    errors = [o["error"] for o in outcomes if "error" in o]
    seconds = sum(o.get("seconds", 0.0) for o in outcomes)
    tests = sum(int(o.get("statistics", {}).get("tests", 0)) for o in outcomes)
    alpha = sum(float(o.get("statistics", {}).get("alpha", 0.0)) for o in outcomes)
    outcome = "error"
    if errors:
        verdict = Verdict("(not judged)", f"{len(errors)} run(s) failed: {errors[0]}", "refuted")
        passed = False
    else:
        measurements: list[Measurement] = [o["measurement"] for o in outcomes]
        try:
            with ledger() as used:
                verdict = claim.judge(params, measurements)
        except Exception as exc:  # a broken judge is a failed claim, reported
            verdict = Verdict("(judge crashed)", f"{type(exc).__name__}: {exc}", "refuted")
            passed = False
        else:
            passed = claim.passes(verdict)
            outcome = verdict.outcome
            tests, alpha = tests + int(used["tests"]), alpha + used["alpha"]
    return ClaimResult(
        claim.id,
        claim.source,
        claim.statement,
        claim.expect,
        claim.evidence(),
        verdict.predicted,
        verdict.measured,
        verdict.interval,
        verdict.holds,
        passed,
        len(params),
        round(seconds, 3),
        tests,
        alpha,
        outcome=outcome,
        power=verdict.power,
        slots=list(claim.slots),
        implementations=dict(overrides),
    )
