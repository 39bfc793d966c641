"""Writing the verification report: a terminal table, ``report.json`` and ``report.md``."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .selfchecks import CheckResult

COLUMNS = ("check", "source", "expected", "measured", "verdict", "seconds")


def _row(result: CheckResult) -> tuple[str, ...]:
    verdict = "PASS" if result.passed else "FAIL"
    return (
        result.check,
        result.source,
        result.expected,
        result.measured,
        verdict,
        f"{result.seconds:.2f}",
    )


def format_table(results: Sequence[CheckResult]) -> str:
    """Plain-text table with aligned columns."""
    rows = [COLUMNS, *(_row(r) for r in results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_markdown(results: Sequence[CheckResult]) -> str:
    """GitHub-flavoured Markdown table."""
    esc = [[cell.replace("|", "\\|") for cell in _row(r)] for r in results]
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in esc]
    passed = sum(r.passed for r in results)
    return (
        "# bilevel verification report\n\n"
        + "\n".join(lines)
        + (f"\n\n{passed} of {len(results)} checks passed.\n")
    )


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (no torn files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def write_report(results: Sequence[CheckResult], out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.json`` (schema: {"checks": [CheckResult fields], "passed": bool}) and
    ``report.md`` into ``out_dir``."""
    payload = {
        "schema": "bilevel-report/1",
        "passed": all(r.passed for r in results),
        "checks": [r.as_dict() for r in results],
    }
    json_path, md_path = out_dir / "report.json", out_dir / "report.md"
    atomic_write(json_path, json.dumps(payload, indent=2, sort_keys=True) + "\n")
    atomic_write(md_path, format_markdown(results))
    return json_path, md_path
