"""Tutorial 2, the run: verify ``my_claims`` on the quick grid and read the report.

Equivalent to ``PYTHONPATH=examples/02_verify_a_rate bilevel verify --claims my_claims --only
'mine/*' --out <dir>``; then it prints each claim's verdict from ``<dir>/report.json`` and exits
with verify's status (0: every claim did what it is expected to do).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    out = Path(tempfile.mkdtemp(prefix="bilevel-tutorial-2-"))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "-m", "bilevel.proofs_checks", "verify", "--claims", "my_claims",
               "--only", "mine/*", "--out", str(out), "--no-progress", "--workers", "0"]  # fmt: skip
    status = subprocess.run(command, env=env, check=False).returncode
    report = json.loads((out / "report.json").read_text())
    for row in report["claims"]:
        verdict = row["outcome"]
        print(f"{row['id']}: {verdict} (expected: {row['expect']}); {row['measured']}")
    print(f"report: {out / 'report.md'}; exit status {status}")
    return status


if __name__ == "__main__":
    sys.exit(main())
