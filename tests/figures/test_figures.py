"""Figures: drawn from the engine's cache (never a solver), byte-identical across processes in
PNG, PDF and SVG, and the same image as the committed baselines.

The figures drawn here are the cheap ones (BDA counterexample and the zero-chain lower bound:
about 3 s of runs); their runs are computed once into a temporary cache."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from bilevel.figures import registry, render
from bilevel.figures.data import load
from bilevel.figures.style import METHODS, save

CHEAP = ("bda-counterexample", "lower-bound")
BASELINES = Path(__file__).parent / "baseline"


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("cache")
    figures = registry()
    claims = [c for name in CHEAP for c in figures[name].CLAIMS]
    load(claims, directory, progress=False)
    return directory


SCRIPT = """
import sys
from pathlib import Path
from bilevel.figures import registry, render
from bilevel.figures.data import load
from bilevel.figures.style import save
cache, out = Path(sys.argv[1]), Path(sys.argv[2])
figures = registry()
for name in {names!r}:
    module = figures[name]
    data = load(module.CLAIMS, cache, progress=False)
    save(render(module, data), out / name, ("png", "pdf", "svg"))
"""


def _render_in_fresh_process(cache: Path, out: Path) -> dict[str, str]:
    code = SCRIPT.format(names=CHEAP)
    subprocess.run([sys.executable, "-c", code, str(cache), str(out)], check=True)
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}


def test_two_runs_write_byte_identical_png_pdf_svg(cache: Path, tmp_path: Path) -> None:
    first = _render_in_fresh_process(cache, tmp_path / "a")
    second = _render_in_fresh_process(cache, tmp_path / "b")
    assert len(first) == 3 * len(CHEAP)
    assert first == second


@pytest.mark.parametrize("name", CHEAP)
def test_figure_matches_its_baseline_image(cache: Path, tmp_path: Path, name: str) -> None:
    """matplotlib.testing.compare against the committed PNG (RMS tolerance 1 of 255: a
    changed curve, marker, label or scale fails; anti-aliasing noise does not)."""
    from matplotlib.testing.compare import compare_images

    module = registry()[name]
    (png,) = save(render(module, load(module.CLAIMS, cache, progress=False)), tmp_path / name)
    baseline = BASELINES / f"{name}.png"
    assert baseline.exists(), f"no baseline: copy {png} to {baseline} after looking at it"
    assert compare_images(str(baseline), str(png), tol=1.0) is None


def test_every_figure_declares_known_claims_and_methods() -> None:
    from bilevel.proofs_checks.runner import load_claims

    known = {c.id for c in load_claims()}
    for name, module in registry().items():
        assert set(module.CLAIMS) <= known, name
        assert module.__doc__ and module.NAME == name
    assert len({colour for colour, _ in METHODS.values()}) >= 6  # a real palette


def test_cli_figures_refuses_unknown_format_and_names(tmp_path: Path) -> None:
    from bilevel.proofs_checks.cli import main

    assert main(["figures", "--out", str(tmp_path), "--format", "gif"]) == 2
    assert main(["figures", "--out", str(tmp_path), "--only", "nope"]) == 2
    assert main(["figures", "--list"]) == 0


def test_baseline_comparison_catches_a_changed_curve(cache: Path, tmp_path: Path) -> None:
    """The same figure with the measured errors scaled by 1.5 must not pass the comparison."""
    from matplotlib.testing.compare import compare_images

    module = registry()["lower-bound"]
    data = load(module.CLAIMS, cache, progress=False)
    claim = data["lower-bounds/cg-zero-chain"]
    params, measurement = claim.runs[0]
    solution = measurement["solution"]
    shifted = [
        [v + 0.5 * (v - s) for v, s in zip(it, solution, strict=True)]
        for it in measurement["iterates"]
    ]
    claim.runs[0] = (params, {**measurement, "iterates": shifted})
    (png,) = save(render(module, data), tmp_path / "changed")
    assert compare_images(str(BASELINES / "lower-bound.png"), str(png), tol=1.0) is not None
