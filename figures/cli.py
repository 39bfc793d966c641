"""``bilevel figures --out DIR [--only NAME] [--format png,pdf,svg] [--cache DIR]``.

Missing results are computed first through the verification engine's cache (the same cache as
``bilevel verify --out DIR``; progress bar, resumable), then each figure is drawn from them and
written deterministically (``style.save``).
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
from pathlib import Path

from . import FORMATS


def add_parser(sub) -> None:
    figures = sub.add_parser("figures", help="draw the paper figures from verified results")
    figures.add_argument("--out", type=Path, default=Path("figures-out"), help="output folder")
    figures.add_argument("--only", default="*", help="glob on figure names (default: all)")
    figures.add_argument(
        "--format", default="png", help=f"comma-separated formats among {','.join(FORMATS)}"
    )
    figures.add_argument(
        "--cache",
        type=Path,
        default=Path("report"),
        help="the verification cache to read and extend (default: report, as bilevel verify)",
    )
    figures.add_argument("--list", action="store_true", help="list the figures and exit")
    figures.add_argument(
        "--workers", type=int, default=None, help="processes for missing runs, as for verify"
    )
    figures.set_defaults(executor="process", address=None)  # the verify executor's options
    figures.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace, executor=None) -> int:
    from . import registry, render
    from .data import load
    from .style import save

    figures = registry()
    if args.list:
        for name, module in figures.items():
            print(f"{name}  [{', '.join(module.CLAIMS)}]  {module.__doc__.splitlines()[0]}")
        return 0
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"unknown format(s) {unknown}; choose among {', '.join(FORMATS)}")
    selected = {n: m for n, m in figures.items() if fnmatch.fnmatch(n, args.only)}
    if not selected:
        print(f"bilevel figures: no figure matches --only {args.only!r}", file=sys.stderr)
        return 2
    from bilevel.proofs_checks.cli import check_writable

    check_writable(Path(args.out))  # before any run: not after minutes of computing
    check_writable(Path(args.cache))
    claims = list(dict.fromkeys(c for m in selected.values() for c in m.CLAIMS))
    data = load(claims, args.cache, executor=executor, progress=not args.no_progress)
    for name, module in selected.items():
        paths = save(render(module, data), args.out / name, formats)
        print("wrote " + ", ".join(str(p) for p in paths))
    return 0
