"""Writing the verification report: a terminal table, ``report.json`` and ``report.md``.

``report.json`` follows ``SCHEMA`` (also in ``docs/report-schema.json``, checked equal by the
tests): ``{"schema": "bilevel-report/4", "grid": ..., "passed": bool, "false_alarm": {...},
"mutants": {...}, "claims": [row, ...]}``, one row per claim with the fields of
``runner.ClaimResult``: its ``outcome`` (holds / refuted / inconclusive / error), the ``power``
of its comparison, the ``slots`` it checks, the ``implementations`` that replaced their
defaults, and under ``--mutants`` the list ``mutants`` of the gallery's wrong implementations
run against it, each ``{"id", "slot", "provenance", "outcome", "refuted", "measured"}``.
``false_alarm`` sums the false-alarm probabilities of every statistical test the claims ran (a
union bound on the probability that any true claim is refuted by chance) against
``statistics.SUITE_FALSE_ALARM_BUDGET``. ``passed`` is true only if every claim expected to hold
holds, every claim expected to fail fails, the sum is within the budget, and (with
``--mutants``) every claim refuted each of its wrong implementations and has at least one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .records import ClaimResult, atomic_write

SCHEMA_ID = "bilevel-report/4"

_ROW_FIELDS: dict[str, dict[str, Any]] = {
    "id": {"type": "string", "description": "claim id, <paper or topic>/<claim>"},
    "source": {"type": "string", "description": "paper, theorem or equation"},
    "statement": {"type": "string", "description": "the prediction in words"},
    "expect": {"enum": ["holds", "fails"], "description": "what the claim must do to pass"},
    "evidence": {
        "type": "string",
        "description": "theorem-registry entries behind the prediction, with evidence tags",
    },
    "predicted": {"type": "string", "description": "the predicted value or form"},
    "measured": {"type": "string", "description": "the measurement, or the refutation"},
    "interval": {"type": "string", "description": "confidence interval, when one is defined"},
    "holds": {"type": "boolean", "description": "the comparator's verdict on the claim"},
    "passed": {"type": "boolean", "description": "holds == (expect == 'holds')"},
    "runs": {"type": "integer", "minimum": 1, "description": "runs (instance x seed) judged"},
    "seconds": {"type": "number", "minimum": 0, "description": "sum of the runs' times"},
    "statistical_tests": {
        "type": "integer",
        "minimum": 0,
        "description": "statistical tests run by the claim's measurements and judge",
    },
    "false_alarm": {
        "type": "number",
        "minimum": 0,
        "description": "sum of those tests' false-alarm probabilities",
    },
    "outcome": {
        "enum": ["holds", "refuted", "inconclusive", "error"],
        "description": "the three verdicts, or error when a run or the judge failed",
    },
    "power": {
        "type": "string",
        "description": "the smallest violation the comparison detects w.p. >= 1 - 1e-6 (or its "
        "rounding envelope)",
    },
    "slots": {
        "type": "array",
        "items": {"type": "string"},
        "description": "registry ids of the methods the claim checks (implementation slots)",
    },
    "implementations": {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "description": "slots replaced by --implementation: slot -> MODULE:ATTR",
    },
    "mutants": {
        "type": "array",
        "description": "wrong implementations run against the claim (--mutants)",
        "items": {
            "type": "object",
            "required": ["id", "slot", "provenance", "outcome", "refuted", "measured"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "string"},
                "slot": {"type": "string"},
                "provenance": {"type": "string", "description": "the bug class it stands for"},
                "outcome": {"enum": ["holds", "refuted", "inconclusive", "error"]},
                "refuted": {"type": "boolean"},
                "measured": {"type": "string"},
            },
        },
    },
}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "title": "bilevel verification report",
    "type": "object",
    "required": ["schema", "grid", "passed", "false_alarm", "mutants", "claims"],
    "additionalProperties": False,
    "properties": {
        "schema": {"const": SCHEMA_ID},
        "grid": {"enum": ["quick", "full"]},
        "passed": {"type": "boolean"},
        "false_alarm": {
            "type": "object",
            "required": ["tests", "sum", "budget", "within_budget"],
            "additionalProperties": False,
            "properties": {
                "tests": {"type": "integer", "minimum": 0},
                "sum": {"type": "number", "minimum": 0},
                "budget": {"type": "number", "exclusiveMinimum": 0},
                "within_budget": {"type": "boolean"},
            },
            "description": "the suite's statistical tests and the sum of their false-alarm "
            "probabilities (a union bound), against the budget",
        },
        "mutants": {
            "type": "object",
            "required": ["run", "total", "refuted", "claims_without"],
            "additionalProperties": False,
            "properties": {
                "run": {"type": "boolean"},
                "total": {"type": "integer", "minimum": 0},
                "refuted": {"type": "integer", "minimum": 0},
                "claims_without": {"type": "array", "items": {"type": "string"}},
            },
            "description": "the gallery run (--mutants): wrong implementations run and refuted, "
            "and the claims that have none",
        },
        "claims": {
            "type": "array",
            "items": {
                "type": "object",
                "required": list(_ROW_FIELDS),
                "additionalProperties": False,
                "properties": _ROW_FIELDS,
            },
        },
    },
}

DETERMINISM_NOTE = (
    "Determinism: with the same seeds every run is bit-identical on the CPU, across processes "
    "(tests/test_determinism.py). On CUDA, reductions that use atomic additions (index_add, "
    "some matrix products) may change the last bits between runs, so CUDA measurements can "
    "differ from the CPU's and from each other at rounding level; no verdict depends on that."
)

COLUMNS = (
    "claim",
    "source",
    "evidence",
    "predicted",
    "measured",
    "interval",
    "power",
    "expect",
    "verdict",
    "mutants",
    "seconds",
)


def _row(result: ClaimResult) -> tuple[str, ...]:
    return (
        result.id,
        result.source,
        result.evidence,
        result.predicted,
        result.measured,
        result.interval,
        result.power,
        result.expect,
        ("PASS" if result.passed else "FAIL") + f" ({result.outcome})",
        mutant_cell(result),
        f"{result.seconds:.2f}",
    )


def mutant_cell(result: ClaimResult) -> str:
    """ "refuted / run" of the claim's wrong implementations, "-" when none were run."""
    if not result.mutants:
        return "-"
    refuted = sum(m["refuted"] for m in result.mutants)
    return f"{refuted}/{len(result.mutants)}"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def format_table(results: Sequence[ClaimResult], width: int = 60) -> str:
    """Plain-text table with aligned columns (cells clipped to ``width`` characters)."""
    rows = [COLUMNS, *(tuple(_clip(c, width) for c in _row(r)) for r in results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def mutant_summary(results: Sequence[ClaimResult], run: bool) -> dict[str, Any]:
    """How many wrong implementations were run and refuted, and which claims had none."""
    rows = [m for r in results for m in r.mutants]
    return {
        "run": run,
        "total": len(rows),
        "refuted": sum(m["refuted"] for m in rows),
        "claims_without": [r.id for r in results if run and not r.mutants],
    }


def mutant_line(results: Sequence[ClaimResult], run: bool) -> str:
    if not run:
        return "Wrong implementations: not run (bilevel verify --mutants runs the gallery)."
    summary = mutant_summary(results, run)
    survivors = [f"{r.id}: {m['id']}" for r in results for m in r.mutants if not m["refuted"]]
    text = (
        f"Wrong implementations: {summary['refuted']} of {summary['total']} refuted"
        + (f"; survivors: {', '.join(survivors)}" if survivors else "")
        + (
            f"; claims with none: {', '.join(summary['claims_without'])}"
            if summary["claims_without"]
            else ""
        )
        + "."
    )
    return text


def format_markdown(
    results: Sequence[ClaimResult], grid: str = "quick", mutants: bool = False
) -> str:
    """GitHub-flavoured Markdown table (cells unclipped; '|' escaped, newlines flattened)."""
    esc = [[c.replace("|", "\\|").replace("\n", " ") for c in _row(r)] for r in results]
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in esc]
    passed = sum(r.passed for r in results)
    return (
        f"# bilevel verification report ({grid} grid)\n\n"
        + "\n".join(lines)
        + f"\n\n{passed} of {len(results)} claims passed. {false_alarm_line(results)}\n"
        + f"\n{mutant_line(results, mutants)}\n"
        + f"\n{DETERMINISM_NOTE}\n"
    )


def false_alarm_summary(results: Sequence[ClaimResult]) -> dict[str, Any]:
    """The suite's statistical tests and the union bound on a false alarm, with the budget."""
    from .statistics import SUITE_FALSE_ALARM_BUDGET

    total = float(sum(r.false_alarm for r in results))
    return {
        "tests": int(sum(r.statistical_tests for r in results)),
        "sum": total,
        "budget": SUITE_FALSE_ALARM_BUDGET,
        "within_budget": total <= SUITE_FALSE_ALARM_BUDGET,
    }


def false_alarm_line(results: Sequence[ClaimResult]) -> str:
    summary = false_alarm_summary(results)
    verdict = "within" if summary["within_budget"] else "OVER"
    return (
        f"Suite false-alarm probability <= {summary['sum']:.2g} ({summary['tests']} statistical "
        f"tests; {verdict} the budget {summary['budget']:g})."
    )


def latex_claims_table(payload: dict[str, Any]) -> str:
    """The verified claims of a ``report.json`` payload as a booktabs table for a paper: claim,
    source, prediction, measurement (with its interval) and verdict; the grid and the suite's
    false-alarm bound in a closing comment line."""
    from bilevel.analysis.theorems import latex_escape

    lines = [
        r"\begin{tabular}{lllll}",
        r"\toprule",
        r"claim & source & predicted & measured & verdict \\",
        r"\midrule",
    ]
    for row in payload["claims"]:
        measured = row["measured"] + (f" ({row['interval']})" if row["interval"] else "")
        verdict = row["outcome"] + ("" if row["passed"] else " (unexpected)")
        cells = (row["id"], row["source"], row["predicted"], measured, verdict)
        lines.append(" & ".join(latex_escape(cell) for cell in cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    alarm = payload["false_alarm"]
    lines.append(
        f"% {payload['grid']} grid; {alarm['tests']} statistical tests, false-alarm "
        f"probability <= {alarm['sum']:.2g}"
    )
    return "\n".join(lines) + "\n"


def report_passed(results: Sequence[ClaimResult], mutants: bool) -> bool:
    """Every claim passed, the false-alarm sum is within budget, and with ``mutants`` every
    claim has at least one wrong implementation and refuted each."""
    ok = all(r.passed for r in results) and false_alarm_summary(results)["within_budget"]
    if mutants:
        ok = ok and all(r.mutants and all(m["refuted"] for m in r.mutants) for r in results)
    return ok


def report_payload(
    results: Sequence[ClaimResult], grid: str, mutants: bool = False
) -> dict[str, Any]:
    return {
        "schema": SCHEMA_ID,
        "grid": grid,
        "passed": report_passed(results, mutants),
        "false_alarm": false_alarm_summary(results),
        "mutants": mutant_summary(results, mutants),
        "claims": [r.as_dict() for r in results],
    }


def write_report(
    results: Sequence[ClaimResult], out_dir: Path, grid: str, mutants: bool = False
) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.md`` into ``out_dir``; return their paths."""
    json_path, md_path = Path(out_dir) / "report.json", Path(out_dir) / "report.md"
    payload = report_payload(results, grid, mutants)
    atomic_write(json_path, json.dumps(payload, indent=2, sort_keys=True) + "\n")
    atomic_write(md_path, format_markdown(results, grid, mutants))
    return json_path, md_path
