"""The ``bilevel verify`` command: table, report files, exit status, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bilevel.proofs_checks import cli, selfchecks
from bilevel.proofs_checks.selfchecks import SelfCheck


def test_verify_writes_reports_and_exits_zero(tmp_path, capsys) -> None:
    code = cli.main(["verify", "--out", str(tmp_path), "--only", "*PL*", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert "PASS" in out and "FAIL" not in out
    payload = json.loads((tmp_path / "report.json").read_text())
    assert payload["passed"] is True and payload["schema"] == "bilevel-report/1"
    assert {c["check"] for c in payload["checks"]} == {
        "PL game surrogate hypergradient",
        "scalar PL constant of y^2 + 3 sin^2 y",
    }
    md = (tmp_path / "report.md").read_text()
    assert md.count("\n|") >= 3 and "2 of 2 checks passed" in md


def test_verify_fails_when_a_check_fails(tmp_path, monkeypatch, capsys) -> None:
    broken = SelfCheck("planted failure", "test", lambda: ("0", "1", False))
    crash = SelfCheck("planted crash", "test", lambda: 1 / 0)
    monkeypatch.setattr(selfchecks, "SELF_CHECKS", (broken, crash))
    assert cli.main(["verify", "--out", str(tmp_path), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert out.count("FAIL") == 2 and "ZeroDivisionError" in out


def test_verify_rejects_a_pattern_matching_nothing(tmp_path, capsys) -> None:
    assert cli.main(["verify", "--out", str(tmp_path), "--only", "nothing*"]) == 2
    assert "no check matches" in capsys.readouterr().err


def test_list_names_every_check(capsys) -> None:
    assert cli.main(["verify", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(c.name in out for c in selfchecks.SELF_CHECKS)


def test_module_entry_point_runs() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bilevel.proofs_checks", "verify", "--list"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0 and "spec 7.2" in proc.stdout


def test_unknown_subcommand_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["frobnicate"])
    assert info.value.code == 2
