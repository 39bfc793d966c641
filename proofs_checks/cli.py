"""The ``bilevel`` command line (also ``python -m bilevel.proofs_checks``).

Subcommands:
    verify   run the encoded checks, print the table, write report.json / report.md.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bilevel", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify", help="run the verification checks and write a report")
    verify.add_argument("--out", type=Path, default=Path("report"), help="report directory")
    verify.add_argument("--only", default="*", help="glob on check names (default: all)")
    verify.add_argument("--list", action="store_true", help="list the checks and exit")
    verify.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def _verify(args: argparse.Namespace) -> int:
    from .report import format_table, write_report
    from .selfchecks import SELF_CHECKS, run_self_check

    checks = [c for c in SELF_CHECKS if fnmatch.fnmatch(c.name, args.only)]
    if args.list:
        for check in SELF_CHECKS:
            print(f"{check.name}  [{check.source}]")
        return 0
    if not checks:
        print(f"bilevel verify: no check matches --only {args.only!r}", file=sys.stderr)
        return 2
    results = []
    bar = tqdm(checks, desc="verify", unit="check", disable=args.no_progress, file=sys.stderr)
    for check in bar:
        bar.set_postfix_str(check.name[:40])
        results.append(run_self_check(check))
    print(format_table(results))
    json_path, md_path = write_report(results, args.out)
    passed = sum(r.passed for r in results)
    print(f"\n{passed} passed, {len(results) - passed} failed; wrote {json_path} and {md_path}")
    return 0 if passed == len(results) else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "verify":
            return _verify(args)
    except (ValueError, TypeError, OSError) as exc:
        print(f"bilevel {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
