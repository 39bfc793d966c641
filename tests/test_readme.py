"""The README's unbiasedness example runs as a user's test file: it passes as written, and the
same file with a planted bias of 0.1 (twice the detectable bias) fails."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"


def _example() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- example: unbiasedness -->\n```python\n(.*?)```", text, re.S)
    assert match, "the README lost its unbiasedness example"
    return match.group(1)


def _pytest(tmp_path: Path, source: str) -> subprocess.CompletedProcess:
    path = tmp_path / "test_users_estimator.py"
    path.write_text(source, encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )


def test_readme_example_is_short_and_passes(tmp_path) -> None:
    source = _example()
    assert len([line for line in source.splitlines() if line.strip()]) <= 22
    result = _pytest(tmp_path, source)
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_example_catches_a_planted_bias(tmp_path) -> None:
    biased = _example().replace("return hypergradient(", "return 0.1 + hypergradient(")
    result = _pytest(tmp_path, biased)
    assert result.returncode == 1 and "bias detected" in result.stdout
