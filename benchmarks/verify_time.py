"""``bilevel verify --quick`` as a benchmark: its wall time with and without ``--mutants``.

Each run starts from an empty report directory (no run cache to resume from) in a fresh process,
with the default workers (min(4, CPUs)), and is timed from start to exit; the table records the
machine, the exit status and the verdict line each run printed. Run on an otherwise idle
machine: another process on the cores slows the verdicts down with it.

Run: ``python benchmarks/verify_time.py [--out FILE.md]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from time_to_accuracy import machine

#: the verdict-power issue's limits (issue 20: 5 and 10 minutes on 2 cores)
LIMITS = {"verify --quick": 300.0, "verify --quick --mutants": 600.0}


def timed(arguments: list[str]) -> tuple[float, int, str]:
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "bilevel.proofs_checks", "verify", *arguments,
             "--out", folder, "--no-progress"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        seconds = time.perf_counter() - start
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    summary = next((line for line in reversed(lines) if "passed" in line), lines[-1] if lines else "")
    return seconds, done.returncode, summary.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rows = [f"Machine: {machine()}.\n", "| command | wall s | limit s | exit | summary |",
            "|---|---|---|---|---|"]  # fmt: skip
    for name, extra in (("verify --quick", []), ("verify --quick --mutants", ["--mutants"])):
        seconds, code, summary = timed(["--quick", *extra])
        rows.append(f"| `bilevel {name}` | {seconds:.0f} | {LIMITS[name]:.0f} | {code} | "
                    f"{summary.replace('|', '/')} |")  # fmt: skip
        print(rows[-1], flush=True)
    text = "\n".join(rows)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
