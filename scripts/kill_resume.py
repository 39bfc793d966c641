"""SIGKILL trials: ``verify`` and ``figures`` killed at random moments resume without losing or
repeating finished runs and end with the report / figure of an uninterrupted run (issue 10).

Each trial starts the command in its own process group with a run ledger
(``BILEVEL_RUN_LEDGER``: ``executed`` / ``saved`` / ``corrupt`` lines), kills the main process
only with SIGKILL (as a user's ``kill -9`` does, not the whole group) after a uniformly random
delay in (0.3 s, 0.9 x the uninterrupted duration), then runs the command again to completion
and checks:

- no worker of the killed process is alive 5 s after the kill (workers die with their parent);
- no run saved before the kill was executed again (nothing repeated);
- every run of the selection is in the cache afterwards and was executed exactly once in the
  trial (counting the killed and the resumed process: a run in flight at the kill is the only
  kind that may be executed twice, and it was never saved);
- no cache entry was reported corrupt (atomic writes);
- verify: ``report.json`` equals the uninterrupted reference (seconds aside); figures: the PNG is
  byte-identical to the reference.

Run: ``python scripts/kill_resume.py [--trials 10] [--seed 0]`` (``make kill-resume``); prints a
table and exits 1 if any trial failed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VERIFY_ONLY = "ji2021/*"  # 9 claims, about 20 runs: long enough to be killed mid-way
FIGURE = "complexity-exponents"  # 4 claims, 23 runs


def _command(kind: str, out: Path) -> list[str]:
    base = [sys.executable, "-m", "bilevel.proofs_checks"]
    if kind == "verify":
        return [*base, "verify", "--only", VERIFY_ONLY, "--out", str(out), "--no-progress"]
    return [
        *base, "figures", "--only", FIGURE, "--out", str(out / "fig"), "--cache", str(out),
        "--no-progress",
    ]  # fmt: skip


def _ledger(path: Path) -> list[tuple[str, str]]:
    if not path.exists():
        return []
    return [tuple(line.split(" ", 1)) for line in path.read_text().splitlines() if line]


def _run(kind: str, out: Path, ledger: Path | None) -> float:
    env = dict(os.environ)
    if ledger is not None:
        env["BILEVEL_RUN_LEDGER"] = str(ledger)
    start = time.monotonic()
    done = subprocess.run(_command(kind, out), env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} exited {done.returncode}:\n{done.stdout[-3000:]}{done.stderr}")
    return time.monotonic() - start


def _result(kind: str, out: Path) -> object:
    if kind == "verify":
        report = json.loads((out / "report.json").read_text())
        return {**report, "claims": [{**c, "seconds": 0} for c in report["claims"]]}
    return (out / "fig" / f"{FIGURE}.png").read_bytes()


def children(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def wait_for_exit(pids: list[int], seconds: float) -> list[int]:
    """The pids still alive (not zombies) after ``seconds``."""
    deadline = time.monotonic() + seconds
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [pid for pid in alive if _alive(pid)]
    return alive


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def trial(kind: str, work: Path, delay: float, reference: object) -> dict[str, object]:
    out, ledger = work / "out", work / "ledger"
    work.mkdir(parents=True)
    env = {**os.environ, "BILEVEL_RUN_LEDGER": str(ledger)}
    proc = subprocess.Popen(
        _command(kind, out),
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(delay)
    finished_first = proc.poll() is not None
    workers = children(proc.pid)
    if not finished_first:
        os.kill(proc.pid, signal.SIGKILL)  # the main process only, as a user's kill -9 does
    proc.wait()
    survivors = wait_for_exit(workers, seconds=5.0)
    for pid in survivors:  # clean up, then report the failure
        os.kill(pid, signal.SIGKILL)
    before = _ledger(ledger)
    saved_before = {key for event, key in before if event == "saved"}
    _run(kind, out, ledger)
    after = _ledger(ledger)[len(before) :]
    executed_after = [key for event, key in after if event == "executed"]
    executed_all = [key for event, key in before + after if event == "executed"]
    saved_all = {key for event, key in before + after if event == "saved"}
    # a run in flight at the kill (executed, never saved) is the only kind allowed to run twice
    in_flight = {key for event, key in before if event == "executed"} - saved_before
    repeated = {key for key in executed_all if executed_all.count(key) > 1} - in_flight
    corrupt = [key for event, key in before + after if event == "corrupt"]
    same = _result(kind, out) == reference
    ok = not repeated and not corrupt and same and saved_all == set(executed_all)
    ok = ok and not survivors
    return {
        "kind": kind,
        "delay": delay,
        "killed": not finished_first,
        "saved_before_kill": len(saved_before),
        "executed_after": len(executed_after),
        "repeated": len(repeated),
        "corrupt": len(corrupt),
        "same_result": same,
        "workers_at_kill": len(workers),
        "survivors": len(survivors),
        "ok": ok,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kinds", default="verify,figures")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for kind in args.kinds.split(","):
            reference_dir = root / f"{kind}-reference"
            duration = _run(kind, reference_dir, None)
            reference = _result(kind, reference_dir)
            for index in range(args.trials):
                work = root / f"{kind}-{index}"
                delay = rng.uniform(0.3, 0.9 * duration)
                rows.append(trial(kind, work, delay, reference))
                shutil.rmtree(work)
                print(rows[-1], flush=True)
    header = "| kind | delay (s) | killed | runs saved before kill | executed after | repeated | "
    print(header + "corrupt | same result | ok |")
    print("|---" * 9 + "|")
    for row in rows:
        print(
            f"| {row['kind']} | {row['delay']:.2f} | {row['killed']} | "
            f"{row['saved_before_kill']} | {row['executed_after']} | {row['repeated']} | "
            f"{row['corrupt']} | {row['same_result']} | {row['ok']} |"
        )
    return 0 if all(row["ok"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
