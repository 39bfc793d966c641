"""The runner: per-run cache, resume after SIGKILL without repeating finished runs, executors,
and the report's schema."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from bilevel.proofs_checks import cli, runner
from bilevel.proofs_checks.report import SCHEMA, format_markdown, report_payload

HERE = Path(__file__).parent
ROOT = HERE.parent.parent


@pytest.fixture
def planted(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    import planted_claims

    return planted_claims


def _ledger_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _without_seconds(report: dict) -> dict:
    return {**report, "claims": [{**c, "seconds": 0} for c in report["claims"]]}


def test_cached_runs_are_not_executed_again(tmp_path, planted, monkeypatch) -> None:
    ledger = tmp_path / "ledger"
    monkeypatch.setenv(runner.LEDGER_ENV, str(ledger))
    claims = [c for c in planted.CLAIMS if c.id == "planted/slow-sum"]
    first = runner.run_claims(
        claims, tmp_path / "out", progress=False, claims_modules=["planted_claims"]
    )
    assert sum(line.startswith("executed") for line in _ledger_lines(ledger)) == 8
    second = runner.run_claims(
        claims, tmp_path / "out", progress=False, claims_modules=["planted_claims"]
    )
    assert sum(line.startswith("executed") for line in _ledger_lines(ledger)) == 8  # none again
    assert first == second and first[0].passed
    runner.run_claims(
        claims, tmp_path / "out", fresh=True, progress=False, claims_modules=["planted_claims"]
    )
    assert sum(line.startswith("executed") for line in _ledger_lines(ledger)) == 16


def test_a_variant_reuses_runs_that_never_asked_for_its_slot(tmp_path, planted, monkeypatch):
    """A mutant of ``neumann`` re-executes only the run that asked for ``neumann``; the ``cg``
    run's measurement is reused (recorded as such) and judged with the mutant as before."""
    from bilevel.proofs_checks import gallery

    ledger = tmp_path / "ledger"
    monkeypatch.setenv(runner.LEDGER_ENV, str(ledger))
    mutant = gallery.Mutant("planted-neumann", "neumann",
                            "bilevel.proofs_checks.gallery.estimators:neumann_one_term_short",
                            "test", ("planted/two-slots",))  # fmt: skip
    monkeypatch.setattr(gallery, "mutants_for", lambda claim: [mutant])
    claims = [c for c in planted.CLAIMS if c.id == "planted/two-slots"]
    (result,) = runner.run_claims(claims, tmp_path / "out", progress=False, mutants=True,
                                  claims_modules=["planted_claims"])  # fmt: skip
    lines = _ledger_lines(ledger)
    assert sum(line.startswith("executed") for line in lines) == 3  # 2 own + the neumann run
    assert sum(line.startswith("reused") for line in lines) == 1  # the cg run, not re-executed
    assert result.passed and [m["outcome"] for m in result.mutants] == ["holds"]


def _verify_command(out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bilevel.proofs_checks",
        "verify",
        "--claims",
        "planted_claims",
        "--only",
        "planted/slow-sum",
        "--out",
        str(out),
        "--workers",
        "2",
        "--no-progress",
    ]


def test_sigkill_mid_run_then_resume_equals_an_uninterrupted_run(tmp_path) -> None:
    """Kill the whole process group of ``verify`` (workers too) after 3 runs are saved; the
    second call executes only the runs that were not saved, and the report is identical."""
    env = {**os.environ, "PYTHONPATH": str(HERE), "PLANTED_DELAY": "0.4"}
    ledger = tmp_path / "ledger"
    env[runner.LEDGER_ENV] = str(ledger)
    proc = subprocess.Popen(
        _verify_command(tmp_path / "out"),
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while sum(x.startswith("saved") for x in _ledger_lines(ledger)) < 3:
        assert proc.poll() is None, "verify ended before it could be killed"
        assert time.monotonic() < deadline, "no run was saved in 120 s"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.2)
    before = _ledger_lines(ledger)
    saved_before = {x.split()[-1] for x in before if x.startswith("saved")}
    assert 3 <= len(saved_before) < 8 and not (tmp_path / "out" / "report.json").exists()

    env["PLANTED_DELAY"] = "0"
    resumed = subprocess.run(
        _verify_command(tmp_path / "out"), env=env, capture_output=True, text=True, check=False
    )
    assert resumed.returncode == 0, resumed.stderr
    after = _ledger_lines(ledger)[len(before) :]
    executed_after = [x.split()[-1] for x in after if x.startswith("executed")]
    assert not saved_before & set(executed_after), "a finished run was executed again"
    assert len(executed_after) == len(set(executed_after)) == 8 - len(saved_before)

    env.pop(runner.LEDGER_ENV)
    clean = subprocess.run(
        _verify_command(tmp_path / "clean"), env=env, capture_output=True, text=True, check=False
    )
    assert clean.returncode == 0, clean.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    reference = json.loads((tmp_path / "clean" / "report.json").read_text())
    assert _without_seconds(report) == _without_seconds(reference)


def test_report_json_validates_and_markdown_has_a_row_per_claim(tmp_path, planted) -> None:
    jsonschema = pytest.importorskip("jsonschema")  # in the test extra; CI installs it
    results = runner.run_claims(
        planted.CLAIMS, tmp_path, progress=False, claims_modules=["planted_claims"]
    )
    payload = report_payload(results, "quick")
    jsonschema.validate(payload, SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**payload, "passed": "yes"}, SCHEMA)
    documented = json.loads((ROOT / "docs" / "report-schema.json").read_text())
    assert documented == json.loads(json.dumps(SCHEMA)), "docs/report-schema.json is stale"
    table = [line for line in format_markdown(results).splitlines() if line.startswith("| ")]
    assert len(table) == 1 + len(results)  # header + one row per claim


@pytest.mark.slow  # 48 s on 2 cores (a local cluster's start-up): `make test-slow`
def test_dask_local_cluster_gives_the_same_report(tmp_path) -> None:
    """A real ``dask.distributed.LocalCluster`` on loopback, as ``--executor dask`` uses it."""
    distributed = pytest.importorskip("distributed")
    claims = [c for c in runner.load_claims() if c.id.startswith("estimators/")]
    local = runner.run_claims(claims, tmp_path / "local", progress=False)
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        with distributed.Client(cluster.scheduler_address) as client:
            remote = runner.run_claims(
                claims, tmp_path / "dask", progress=False, executor=client.get_executor()
            )
        cli_args = ["verify", "--executor", "dask", "--address", cluster.scheduler_address]
        cli_args += ["--only", "estimators/*", "--out", str(tmp_path / "cli"), "--no-progress"]
        code = cli.main(cli_args)
        # a user's claims file: shipped to the workers (they could not import it before)
        mine = tmp_path / "my_dask_claims.py"
        mine.write_text((Path(__file__).parent / "planted_claims.py").read_text())
        user_args = ["verify", "--executor", "dask", "--address", cluster.scheduler_address,
                     "--claims", str(mine), "--only", "planted/slow-sum", "--no-progress",
                     "--out", str(tmp_path / "user")]  # fmt: skip
        assert cli.main(user_args) == 0
    strip = lambda rs: [{**r.as_dict(), "seconds": 0} for r in rs]  # noqa: E731
    assert strip(local) == strip(remote) and all(r.passed for r in local)
    via_cli = json.loads((tmp_path / "cli" / "report.json").read_text())
    expected = _without_seconds(report_payload(local, "quick"))
    assert code == 0 and _without_seconds(via_cli) == expected


SLOW_SUM = "planted/slow-sum"


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],  # torn
        lambda text: "",  # emptied
        lambda text: text.replace("{", "[", 1),  # edited into invalid JSON
        lambda text: _flip_a_digit(text),  # valid JSON, wrong value
    ],
    ids=["torn", "empty", "edited", "bit-flip"],
)
def test_a_corrupt_cache_entry_is_reported_and_recomputed(
    tmp_path, planted, monkeypatch, capsys, damage
) -> None:
    """Damage one saved run: the next call names it on stderr, moves it aside, executes exactly
    that run again, and the verdict equals the undamaged one."""
    ledger = tmp_path / "ledger"
    monkeypatch.setenv(runner.LEDGER_ENV, str(ledger))
    claims = [c for c in planted.CLAIMS if c.id == SLOW_SUM]
    kw = dict(progress=False, claims_modules=["planted_claims"])
    first = runner.run_claims(claims, tmp_path / "out", **kw)
    victim = runner.cache_path(tmp_path / "out", SLOW_SUM, {"i": 3})
    victim.write_text(damage(victim.read_text()))
    again = runner.run_claims(claims, tmp_path / "out", **kw)
    assert f"cache entry {victim} is corrupt" in capsys.readouterr().err
    assert victim.with_name(victim.name + ".corrupt").exists()
    lines = _ledger_lines(ledger)[8:]
    key = victim.stem
    assert [x for x in lines if not x.startswith("saved")] == [
        f"corrupt {SLOW_SUM} {key}",
        f"executed {SLOW_SUM} {key}",
    ]
    assert [replace(r, seconds=0) for r in again] == [replace(r, seconds=0) for r in first]
    assert runner.cache_problem(victim, SLOW_SUM, {"i": 3})[1] is None


def test_cache_problem_names_each_kind_of_corruption(tmp_path, planted) -> None:
    claims = [c for c in planted.CLAIMS if c.id == SLOW_SUM]
    runner.run_claims(claims, tmp_path, progress=False, claims_modules=["planted_claims"])
    first = runner.cache_path(tmp_path, SLOW_SUM, {"i": 1})
    second = runner.cache_path(tmp_path, SLOW_SUM, {"i": 2})

    def problem() -> str | None:
        return runner.cache_problem(first, SLOW_SUM, {"i": 1})[1]

    assert problem() is None
    assert runner.cache_problem(tmp_path / "absent.json", SLOW_SUM, {"i": 1}) == (None, None)
    first.write_text(second.read_text())  # a sound record, but of another run
    assert "another claim or parameter set" in problem()
    first.write_text(_flip_a_digit(second.read_text()))
    assert "checksum does not match" in problem()
    first.write_text("[1, 2]")
    assert "not a run record" in problem()
    first.write_text("{")
    assert "not valid JSON" in problem()


def _flip_a_digit(text: str) -> str:
    """Change the last digit in the measurement (valid JSON, checksum kept, value wrong)."""
    record = json.loads(text)
    body = json.dumps(record["measurement"], sort_keys=True)
    index = max(i for i, ch in enumerate(body) if ch.isdigit())
    record["measurement"] = json.loads(
        body[:index] + str((int(body[index]) + 1) % 10) + body[index + 1 :]
    )
    return json.dumps(record, sort_keys=True)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_with_a_sigkilled_verify(tmp_path) -> None:
    """kill -9 of the main process only (not its group): every worker is gone within 5 s."""
    import os
    import signal
    import subprocess
    import time

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    from kill_resume import children, wait_for_exit

    command = [sys.executable, "-m", "bilevel.proofs_checks", "verify", "--only", "ji2021/*",
               "--workers", "2", "--out", str(tmp_path / "out")]  # fmt: skip
    proc = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        workers: list[int] = []
        while time.monotonic() < deadline and len(workers) < 2:  # the pool and its tracker
            time.sleep(0.2)
            workers = [p for p in children(proc.pid) if "resource_tracker" not in _cmdline(p)]
        assert workers, "verify started no worker within 60 s"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        survivors = wait_for_exit(children(proc.pid) + workers, seconds=5.0)
        assert not survivors, f"workers alive 5 s after the kill: {survivors}"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""
