"""Tutorial 4, the run: Ji's AID-BiO claims against your own AID-BiO, then against a buggy one.

Equivalent to ``PYTHONPATH=examples/04_your_implementation bilevel verify --only
'ji2021/aid-bio-*' --implementation aid-bio=my_aid_bio:MyAIDBiO --out <dir>`` (exit 0: the
claims hold for it) and the same with ``my_aid_bio:MyAIDBiOWithABug`` (exit 1: refuted).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def verify(target: str) -> tuple[int, list[dict]]:
    out = Path(tempfile.mkdtemp(prefix="bilevel-tutorial-4-"))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "-m", "bilevel.proofs_checks", "verify", "--only",
               "ji2021/aid-bio-*", "--implementation", f"aid-bio={target}", "--out", str(out),
               "--no-progress", "--workers", "0"]  # fmt: skip
    status = subprocess.run(command, env=env, check=False, capture_output=True).returncode
    return status, json.loads((out / "report.json").read_text())["claims"]


def main() -> int:
    good, rows = verify("my_aid_bio:MyAIDBiO")
    for row in rows:
        print(f"MyAIDBiO          {row['id']}: {row['outcome']}; {row['measured'][:90]}")
    bad, rows = verify("my_aid_bio:MyAIDBiOWithABug")
    for row in rows:
        print(f"MyAIDBiOWithABug  {row['id']}: {row['outcome']}; {row['measured'][:90]}")
    print(f"exit status: {good} (yours), {bad} (with the bug)")
    return 0 if (good, bad) == (0, 1) else 1


if __name__ == "__main__":
    sys.exit(main())
