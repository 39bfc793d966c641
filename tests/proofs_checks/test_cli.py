"""The ``bilevel verify`` command: table, report files, exit status, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bilevel.proofs_checks import cli
from bilevel.proofs_checks.runner import load_claims

HERE = Path(__file__).parent


@pytest.fixture
def planted(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    return "planted_claims"


def test_verify_writes_reports_and_exits_zero(tmp_path, capsys) -> None:
    code = cli.main(
        ["verify", "--out", str(tmp_path), "--only", "*pl-*", "--no-progress", "--workers", "0"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "PASS" in out and "FAIL" not in out
    payload = json.loads((tmp_path / "report.json").read_text())
    assert payload["passed"] is True and payload["schema"] == "bilevel-report/4"
    assert {c["id"] for c in payload["claims"]} == {
        "foundation/pl-game-surrogate-hypergradient",
        "foundation/scalar-pl-constant-of-y-2-3-sin-2-y",
    }
    md = (tmp_path / "report.md").read_text()
    assert md.count("\n|") >= 3 and "2 of 2 claims passed" in md


def test_every_way_of_failing_is_a_failure(tmp_path, planted, capsys) -> None:
    code = cli.main(
        [
            "verify",
            "--out",
            str(tmp_path),
            "--claims",
            planted,
            "--only",
            "planted/*",
            "--no-progress",
            "--workers",
            "0",
        ]
    )
    assert code == 1
    rows = {c["id"]: c for c in json.loads((tmp_path / "report.json").read_text())["claims"]}
    assert rows["planted/slow-sum"]["passed"] is True
    assert rows["planted/wrong"]["passed"] is False and rows["planted/wrong"]["holds"] is False
    assert rows["planted/crash"]["passed"] is False
    assert "RuntimeError: planted crash" in rows["planted/crash"]["measured"]
    failing = rows["planted/expected-failure-holds"]
    assert failing["holds"] is True and failing["passed"] is False
    undecided = rows["planted/inconclusive"]
    assert undecided["outcome"] == "inconclusive" and undecided["passed"] is False
    assert rows["planted/expected-failure-refuted"]["passed"] is True
    assert capsys.readouterr().out.count("FAIL") == 4


def test_expected_failures_pass_only_when_refuted(tmp_path, planted) -> None:
    """A claim expected to fail passes when it is refuted (and only then)."""
    code = cli.main(
        [
            "verify",
            "--out",
            str(tmp_path),
            "--claims",
            planted,
            "--only",
            "planted/expected-failure-refuted",
            "--no-progress",
            "--workers",
            "0",
        ]
    )
    rows = json.loads((tmp_path / "report.json").read_text())["claims"]
    assert code == 0 and {r["expect"] for r in rows} == {"fails"}
    assert all(r["outcome"] == "refuted" and r["passed"] for r in rows)


def test_verify_rejects_a_pattern_matching_nothing(tmp_path, capsys) -> None:
    assert cli.main(["verify", "--out", str(tmp_path), "--only", "nothing*"]) == 2
    assert "no claim matches" in capsys.readouterr().err


def test_usage_errors_are_named(tmp_path, capsys) -> None:
    assert cli.main(["verify", "--out", str(tmp_path), "--executor", "dask"]) == 2
    assert "--address" in capsys.readouterr().err
    assert cli.main(["verify", "--out", str(tmp_path), "--claims", "no_such_module_xyz"]) == 2
    assert "no_such_module_xyz" in capsys.readouterr().err


def test_list_names_every_claim(capsys, planted) -> None:
    assert cli.main(["verify", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(c.id in out for c in load_claims())
    assert cli.main(["verify", "--list", "--claims", planted]) == 0
    assert "(expected to fail)" in capsys.readouterr().out


def test_module_entry_point_runs() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bilevel.proofs_checks", "verify", "--list"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0 and "ji2021/cg-hvp-complexity" in proc.stdout


def test_unknown_subcommand_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["frobnicate"])
    assert info.value.code == 2


def test_claims_lists_the_registry_in_three_formats(capsys) -> None:
    from bilevel.analysis.theorems import REGISTRY

    assert cli.main(["claims"]) == 0
    plain = capsys.readouterr().out
    assert all(e.id in plain for e in REGISTRY) and "[abs]" in plain and "[derived]" in plain
    assert cli.main(["claims", "--latex", "--only", "mgbio/*"]) == 0
    latex = capsys.readouterr().out
    assert r"\toprule" in latex and r"\cite{huang2023momentum}" in latex
    assert cli.main(["claims", "--markdown"]) == 0
    assert capsys.readouterr().out.startswith("| id | expression |")
    assert cli.main(["claims", "--only", "nothing*"]) == 2


def test_every_claim_cites_existing_registry_entries() -> None:
    cited = [c for c in load_claims() if c.registry]
    assert len(cited) >= 6
    for claim in cited:
        assert all("[" in part for part in claim.evidence().split("; ")), claim.id


def test_claims_report_exports_the_verified_claims_as_latex(tmp_path, capsys) -> None:
    """``bilevel claims --report R --latex``: one escaped booktabs row per verified claim."""
    assert cli.main(["verify", "--only", "bda/*", "--out", str(tmp_path), "--workers", "0",
                     "--no-progress"]) == 0  # fmt: skip
    capsys.readouterr()
    assert cli.main(["claims", "--report", str(tmp_path / "report.json"), "--latex"]) == 0
    latex = capsys.readouterr().out
    rows = [line for line in latex.splitlines() if line.endswith(r"\\")][1:]  # after the header
    bda_claims = [c for c in load_claims() if c.id.startswith("bda/")]
    assert latex.startswith(r"\begin{tabular}") and len(rows) == len(bda_claims)
    assert all(r"\_" in row or "_" not in row for row in rows) and "& holds" in rows[0]
    stale = tmp_path / "old.json"
    stale.write_text('{"schema": "bilevel-report/2", "claims": []}')
    assert cli.main(["claims", "--report", str(stale)]) == 2
    assert "run bilevel verify again" in capsys.readouterr().err


def test_claims_report_on_a_json_list_is_a_clear_error(tmp_path, capsys) -> None:
    """``bilevel claims --report`` on a JSON list used to end in an uncaught AttributeError."""
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    assert cli.main(["claims", "--report", str(path)]) == 2
    assert "is not a bilevel-report/4 report (a JSON list" in capsys.readouterr().err


def test_the_verify_parser_imports_no_matplotlib() -> None:
    """``bilevel verify`` never draws: building its parser must not import matplotlib."""
    import subprocess
    import sys

    code = (
        "import sys; from bilevel.proofs_checks.cli import _parser; _parser(); "
        "print('matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_only_merges_into_the_previous_full_report(tmp_path) -> None:
    """--only re-runs a subset and keeps the other rows of the previous report of the same grid:
    a partial run never shrinks report.json to its one row."""
    import json

    from bilevel.proofs_checks.cli import main

    out = tmp_path / "out"
    assert main(["verify", "--only", "foundation/*", "--workers", "0", "--no-progress",
                 "--out", str(out)]) == 0  # fmt: skip
    first = json.loads((out / "report.json").read_text())["claims"]
    assert len(first) > 1
    assert main(["verify", "--only", first[0]["id"], "--workers", "0", "--no-progress",
                 "--out", str(out)]) == 0  # fmt: skip
    second = json.loads((out / "report.json").read_text())["claims"]
    assert [r["id"] for r in second] == [r["id"] for r in first]


def test_an_out_that_is_a_file_or_unwritable_is_refused_at_once(tmp_path, capsys) -> None:
    import os

    from bilevel.proofs_checks.cli import main

    afile = tmp_path / "report"
    afile.write_text("not a folder")
    assert main(["verify", "--only", "ji2021/*", "--out", str(afile)]) == 2
    assert "is a file" in capsys.readouterr().err
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o500)
    try:
        if os.access(locked, os.W_OK):  # root ignores permissions: nothing to test
            return
        assert main(["verify", "--only", "ji2021/*", "--out", str(locked / "x")]) == 2
        assert "not writable" in capsys.readouterr().err
    finally:
        os.chmod(locked, 0o700)


def test_claims_accepts_the_path_of_a_py_file(tmp_path) -> None:
    """--claims path/to/file.py, with spawned workers that load it by the same path."""
    import json
    from pathlib import Path

    from bilevel.proofs_checks.cli import main

    mine = tmp_path / "mine.py"
    mine.write_text((Path(__file__).parent / "planted_claims.py").read_text())
    out = tmp_path / "out"
    code = main(["verify", "--claims", str(mine), "--only", "planted/slow-sum", "--workers", "1",
                 "--no-progress", "--out", str(out)])  # fmt: skip
    assert code == 0
    assert json.loads((out / "report.json").read_text())["claims"][0]["id"] == "planted/slow-sum"
    assert main(["verify", "--claims", str(tmp_path / "missing.py"), "--out", str(out)]) == 2
