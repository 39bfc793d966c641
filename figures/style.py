"""One style for every figure: Agg, column-width sizes, a colour-blind-safe palette, the same
method always in the same colour and marker, and byte-reproducible files.

Reproducibility: no pyplot state, Agg rendering, ``svg.hashsalt`` fixed, SVG and PDF dates and the PNG
software tag removed, ``svg.fonttype = "none"`` (text kept as text; no embedded glyph ids that
vary), and PDF fonts as Type 42 with ``pdf.compression`` fixed. ``save`` writes each format with
these settings; the tests check that two runs give the same bytes.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

from bilevel.proofs_checks.records import atomic_write

from . import FORMATS

# Figures are built as ``Figure`` objects (no pyplot state) and saved through Agg-based
# canvases; fontTools warns about the font's own head-table timestamps while subsetting for
# PDF, which is noise here.
logging.getLogger("fontTools").setLevel(logging.ERROR)

#: Okabe & Ito (2008) colour-blind-safe palette.
OKABE_ITO = {
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "black": "#000000",
}

#: method -> (colour, marker): the same everywhere.
METHODS = {
    "ITD": (OKABE_ITO["blue"], "o"),
    "AID-Neumann": (OKABE_ITO["vermillion"], "s"),
    "AID-CG": (OKABE_ITO["green"], "^"),
    "AID-BiO": (OKABE_ITO["green"], "^"),
    "ITD-BiO": (OKABE_ITO["blue"], "o"),
    "stocBiO": (OKABE_ITO["orange"], "D"),
    "AccBiO": (OKABE_ITO["purple"], "v"),
    "FOM": (OKABE_ITO["vermillion"], "s"),
    "UFOM": (OKABE_ITO["blue"], "o"),
    "BDA": (OKABE_ITO["blue"], "o"),
    "RHG": (OKABE_ITO["vermillion"], "s"),
    "BDA (official schedule)": (OKABE_ITO["orange"], "D"),
    "MSGBiO": (OKABE_ITO["orange"], "D"),
    "VR-MSGBiO": (OKABE_ITO["purple"], "v"),
    "MGBiO": (OKABE_ITO["sky"], "P"),
    "CG": (OKABE_ITO["green"], "^"),
    "Neumann": (OKABE_ITO["vermillion"], "s"),
    "minimax GDA": (OKABE_ITO["sky"], "P"),
    "randomized truncation": (OKABE_ITO["sky"], "X"),
    "MAML": (OKABE_ITO["purple"], "o"),
    "FO-MAML": (OKABE_ITO["orange"], "s"),
    "ANIL": (OKABE_ITO["green"], "^"),
}
PREDICTION = OKABE_ITO["black"]  # closed forms and bounds: black, dashed or dotted

COLUMN_WIDTH = 3.35  # inches: one column of a two-column paper
DOUBLE_WIDTH = 6.9

RC = {
    "font.size": 8,
    "axes.labelsize": 8,
    "axes.titlesize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "lines.linewidth": 1.2,
    "lines.markersize": 3.5,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
    "figure.dpi": 150,
    "savefig.dpi": 300,
    "savefig.bbox": "standard",
    "svg.hashsalt": "bilevel",
    "svg.fonttype": "none",
    "pdf.fonttype": 42,
    "pdf.compression": 6,
    "path.simplify": False,
    "text.usetex": False,
    "font.family": "DejaVu Sans",
    "mathtext.fontset": "dejavusans",
}

METADATA = {
    "png": {"Software": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None},
    "svg": {"Date": None, "Creator": None},
}
assert tuple(METADATA) == FORMATS, "style.METADATA and bilevel.figures.FORMATS disagree"


def paper_style():
    """``with paper_style():`` draw a figure of your own in the shared style (every text size,
    line width and font of ``RC``; the built-in figures are drawn inside it by ``render``)."""
    return matplotlib.rc_context(RC)


def style(method: str) -> dict:
    """``color`` and ``marker`` keyword arguments of ``method``: the fixed styles of
    ``METHODS`` (the labels of the paper figures), or, for a method of the solver registry
    (label = its id, any case; e.g. "SOBA"), a style from its place in the registry, so a new
    method needs no entry here. KeyError for a label that is neither."""
    if method in METHODS:
        colour, marker = METHODS[method]
    else:
        colour, marker = _registry_style(method)
    return {"color": colour, "marker": marker, "label": method}


def _registry_style(label: str) -> tuple[str, str]:
    from bilevel.solvers import registry

    ids = registry.ids()
    if label.lower() not in ids:
        raise KeyError(f"no style for {label!r}: not in METHODS nor a registry id ({ids})")
    index = ids.index(label.lower())
    colours = [c for name, c in OKABE_ITO.items() if name != "black"]
    return colours[index % len(colours)], "osD^vPX*"[index % 8]


def new_figure(
    columns: int = 1, height: float = 2.4, ncols: int = 1, nrows: int = 1
) -> tuple[Figure, list]:
    """A figure one or two columns wide with ``nrows`` x ``ncols`` panels (returned row by row),
    in the shared style."""
    if columns not in (1, 2):
        raise ValueError(f"columns must be 1 or 2, got {columns}")
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(COLUMN_WIDTH if columns == 1 else DOUBLE_WIDTH, height))
        axes = list(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax in axes:
        _apply(ax)
    return fig, axes


def _apply(ax) -> None:
    ax.grid(True, alpha=0.3, linewidth=0.5)
    ax.tick_params(labelsize=7)
    ax.xaxis.label.set_size(8)
    ax.yaxis.label.set_size(8)
    ax.title.set_size(8)


def legend(ax, **kwargs) -> None:
    """A frameless legend placed where it covers the fewest data points (``loc="best"``)."""
    ax.legend(loc=kwargs.pop("loc", "best"), frameon=False, fontsize=7, **kwargs)


def save(fig: Figure, stem: Path, formats: Iterable[str] = ("png",)) -> list[Path]:
    """Write ``stem.<fmt>`` for each format, deterministically and atomically; returns the
    paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        if fmt not in METADATA:
            raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
        path = stem.with_suffix(f".{fmt}")
        buffer = io.BytesIO()
        with matplotlib.rc_context(RC):
            fig.savefig(buffer, format=fmt, metadata=METADATA[fmt])
        atomic_write(path, buffer.getvalue())  # never a torn file, even under SIGKILL
        written.append(path)
    return written
