"""Run records and report rows: what the runner saves and what the report, the figures and
users read back (no module here imports the runner or the report).

A cached run is ``<out>/runs/<claim id with / as __>/<key>.json``: the claim, its params, the
measurement, the code fingerprint, the implementations replaced and a SHA-256 ``checksum`` of
the rest. ``load_run`` is the one checked way to read one back.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .engine import Params, run_key

#: replacements of implementation slots: ((slot, "module:attr"), ...), sorted by slot
Overrides = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ClaimResult:
    """One row of the report."""

    id: str
    source: str
    statement: str
    expect: str
    evidence: str  # registry entries cited, with their evidence tags
    predicted: str
    measured: str
    interval: str
    holds: bool
    passed: bool  # the outcome is the expected one: "holds" (or "refuted" if expect == "fails")
    runs: int
    seconds: float  # sum over the claim's runs, as measured when each was executed
    statistical_tests: int = 0  # tests run by its measurements and its judge
    false_alarm: float = 0.0  # the sum of their false-alarm probabilities
    outcome: str = "refuted"  # holds | refuted | inconclusive | error (a run or the judge failed)
    power: str = ""  # the smallest violation the comparison detects
    slots: list[str] = field(default_factory=list)  # registry ids of the methods checked
    implementations: dict[str, str] = field(default_factory=dict)  # slots replaced by the user
    mutants: list[dict[str, Any]] = field(default_factory=list)  # gallery runs (--mutants)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def variant_key(params: Params, implementations: Overrides = ()) -> str:
    """The run's cache key: ``run_key(params)``, or with slots replaced a key of both."""
    if not implementations:
        return run_key(params)
    return run_key({"params": params, "implementations": dict(implementations)})


def cache_path(
    out_dir: Path, claim_id: str, params: Params, implementations: Overrides = ()
) -> Path:
    safe = claim_id.replace("/", "__")
    return out_dir / "runs" / safe / f"{variant_key(params, implementations)}.json"


def record_checksum(record: dict) -> str:
    """SHA-256 of the record's canonical JSON (sorted keys), the ``checksum`` field left out."""
    body = {key: value for key, value in record.items() if key != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode("utf-8")).hexdigest()


def cache_problem(
    path: Path, claim_id: str, params: Params, implementations: Overrides = ()
) -> tuple[dict | None, str | None]:
    """(record, None) for a sound cache entry, (None, None) when absent, (None, reason) when the
    entry is corrupt: not JSON, a checksum that does not match its content, or a record of
    another claim or parameter set (a file copied or renamed by hand)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"unreadable ({type(exc).__name__})"
    try:
        record = json.loads(text)
    except ValueError:
        return None, "not valid JSON (torn or edited)"
    if not isinstance(record, dict) or "measurement" not in record:
        return None, "not a run record"
    if record.get("checksum") != record_checksum(record):
        return None, "checksum does not match the content"
    if record.get("claim") != claim_id or record.get("params") != json.loads(json.dumps(params)):
        return None, "record of another claim or parameter set"
    if record.get("implementations", {}) != dict(implementations):
        return None, "record of other implementations"
    return record, None


def atomic_write(path: Path, content: str | bytes) -> None:
    """Write ``content`` (text as UTF-8, or bytes) to ``path`` through a temporary file in the
    same folder, flushed to disk, then renamed over ``path``: a reader (or a process resuming
    after SIGKILL) sees the old file or the new one, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    data = content.encode("utf-8") if isinstance(content, str) else content
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())  # the content is on disk before the name points at it
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_run(out_dir: Path, claim_id: str, params: Params, implementations: Overrides = ()) -> dict:
    """The sound cached record of one run, checked as the runner checks it (checksum, claim,
    params, implementations); ``FileNotFoundError`` when absent, ``ValueError`` when corrupt."""
    path = cache_path(Path(out_dir), claim_id, params, implementations)
    record, problem = cache_problem(path, claim_id, params, implementations)
    if problem is not None:
        raise ValueError(f"cache entry {path} is corrupt ({problem}); rerun bilevel verify")
    if record is None:
        raise FileNotFoundError(f"no saved run of {claim_id} {params} under {out_dir}")
    return record
