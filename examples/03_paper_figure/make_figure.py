"""Tutorial 3: from a verify run to a paper figure and a LaTeX table of the verified claims.

1. ``bilevel verify --only 'bda/*' --out RUN``: the claims and their saved runs (the cache);
2. ``bilevel figures --only bda-counterexample --cache RUN --out RUN/figures --format pdf,png``:
   a built-in figure drawn from those runs (no solver runs again);
3. a figure of your own from the same saved runs: ``bilevel.figures.data.load`` returns each
   claim's (params, measurement) pairs and its verdict; ``bilevel.figures.style`` gives the
   shared look (column width, palette) and deterministic, atomic files;
4. ``bilevel claims --report RUN/report.json --latex > RUN/claims.tex``: the verified claims as a
   booktabs table (claim, source, predicted, measured with its interval, verdict).

Every file is byte-reproducible: running this script twice writes identical PDFs (the SHA-256
printed at the end). Run: ``python examples/03_paper_figure/make_figure.py [RUN_DIR]``.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

from bilevel.figures.data import load
from bilevel.figures.style import OKABE_ITO, legend, new_figure, paper_style, save

BILEVEL = [sys.executable, "-m", "bilevel.proofs_checks"]


def bilevel(*args: str, stdout=None) -> None:
    subprocess.run([*BILEVEL, *args], check=True, stdout=stdout)


def my_figure(run: Path) -> list[Path]:
    """x_K against K from the saved runs of ``bda/counterexample-minimiser``."""
    data = load(["bda/counterexample-minimiser"], run, progress=False)
    claim = data["bda/counterexample-minimiser"]
    runs = sorted(claim.runs, key=lambda pair: pair[0]["K"])
    with paper_style():
        fig = _draw(runs, claim.result.holds)
    return save(fig, run / "figures" / "my-bda-figure", ("pdf", "png"))


def _draw(runs, holds: bool):
    Ks = [p["K"] for p, _ in runs]
    fig, (ax,) = new_figure(columns=1, height=2.2)
    ax.semilogx([p["K"] for p, _ in runs], [m["x"] for _, m in runs], "o-",
                color=OKABE_ITO["blue"], label="BDA, measured")  # fmt: skip
    ax.semilogx([p["K"] for p, _ in runs], [m["predicted"] for _, m in runs], "x",
                color="black", label=r"$\arg\min \varphi_K$ (exact)")  # fmt: skip
    ax.axhline(
        0.5, color=OKABE_ITO["vermillion"], linestyle="--", linewidth=1, label="RHG's limit 1/2"
    )
    ax.set_xlabel("inner steps $K$")
    ax.set_ylabel("$x_K$")
    ax.set_xticks(Ks, [str(k) for k in Ks], minor=False)
    ax.set_xticks([], minor=True)
    ax.set_title("bda/counterexample-minimiser: " + ("holds" if holds else "refuted"))
    legend(ax, loc="lower right")
    fig.tight_layout()
    return fig


def main() -> int:
    run = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="bilevel-t3-"))
    bilevel("verify", "--only", "bda/*", "--out", str(run), "--no-progress", "--workers", "0")
    bilevel("figures", "--only", "bda-counterexample", "--cache", str(run), "--out",
            str(run / "figures"), "--format", "pdf,png", "--no-progress")  # fmt: skip
    written = my_figure(run)
    with open(run / "claims.tex", "w", encoding="utf-8") as table:
        bilevel("claims", "--report", str(run / "report.json"), "--latex", stdout=table)
    for path in [*sorted((run / "figures").iterdir()), run / "claims.tex"]:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        print(f"{path}  sha256 {digest}")
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main())
