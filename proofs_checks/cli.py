"""The ``bilevel`` command line (also ``python -m bilevel.proofs_checks``).

Subcommands:
    verify   run the registered claims, print the table, write report.json / report.md.
    claims   list the theorem registry of ``bilevel.analysis.theorems`` (``--latex`` for a
             booktabs table ready for a paper, ``--markdown`` for the README).
    figures  draw the paper figures from the verified results (``bilevel.figures``).

Exit status of ``verify``: 0 when every claim expected to hold holds and every claim expected to
fail is refuted; 1 otherwise; 2 for a usage error.
"""

from __future__ import annotations

import argparse
import fnmatch
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bilevel", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify", help="run the verification claims and write a report")
    verify.add_argument("--out", type=Path, default=Path("report"), help="report directory")
    verify.add_argument("--only", default="*", help="glob on claim ids (default: all)")
    verify.add_argument("--list", action="store_true", help="list the claims and exit")
    grid = verify.add_mutually_exclusive_group()
    grid.add_argument(
        "--quick",
        dest="grid",
        action="store_const",
        const="quick",
        help="the small grids (default)",
    )
    grid.add_argument(
        "--full", dest="grid", action="store_const", const="full", help="the larger grids"
    )
    verify.set_defaults(grid="quick")
    verify.add_argument("--fresh", action="store_true", help="ignore (delete) the run cache")
    verify.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes (default: min(4, CPUs)); 0 runs everything in this process",
    )
    verify.add_argument("--executor", choices=("process", "dask"), default="process")
    verify.add_argument("--address", default=None, help="Dask scheduler HOST:PORT")
    verify.add_argument(
        "--claims",
        action="append",
        default=[],
        metavar="MODULE",
        help="also run the CLAIMS of this importable module (repeatable)",
    )
    verify.add_argument(
        "--implementation",
        action="append",
        default=[],
        metavar="NAME=MODULE:ATTR",
        help="replace the implementation registered as NAME in every claim that uses it "
        "(repeatable; --slots lists the names and signatures)",
    )
    verify.add_argument(
        "--slots",
        action="store_true",
        help="list the implementation slots, the signature each expects and the claims using it",
    )
    verify.add_argument(
        "--mutants",
        action="store_true",
        help="also run every claim against the gallery's wrong implementations of its methods; "
        "exit non-zero unless each is refuted",
    )
    verify.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    claims = sub.add_parser("claims", help="list the theorem registry (rates, complexities)")
    fmt = claims.add_mutually_exclusive_group()
    fmt.add_argument("--latex", action="store_true", help="a booktabs LaTeX table")
    fmt.add_argument("--markdown", action="store_true", help="a Markdown table")
    claims.add_argument("--only", default="*", help="glob on entry ids (default: all)")
    claims.add_argument(
        "--report",
        type=Path,
        default=None,
        help="a report.json of bilevel verify: its verified claims instead of the registry",
    )
    from bilevel.figures.cli import add_parser  # the figures package sits above this one

    add_parser(sub)
    return parser


def _claims(args: argparse.Namespace) -> int:
    from bilevel.analysis import theorems

    if args.report is not None:
        return _verified_claims(args)
    entries = tuple(e for e in theorems.REGISTRY if fnmatch.fnmatch(e.id, args.only))
    if not entries:
        print(f"bilevel claims: no entry matches --only {args.only!r}", file=sys.stderr)
        return 2
    if args.latex:
        print(theorems.latex_table(entries), end="")
    elif args.markdown:
        print(theorems.markdown_table(entries), end="")
    else:
        for e in entries:
            convention = f" ({e.convention})" if e.convention else ""
            print(
                f"{e.id}  [{e.evidence}]  {e.expression}{convention}  -- {e.statement}; "
                f"{e.paper}, {e.where}"
            )
    return 0


def _verified_claims(args: argparse.Namespace) -> int:
    """``bilevel claims --report report/report.json [--latex | --markdown]``."""
    import json

    from .records import ClaimResult
    from .report import SCHEMA_ID, format_markdown, latex_claims_table

    payload = json.loads(args.report.read_text(encoding="utf-8"))
    if not isinstance(payload, dict):
        raise ValueError(
            f"{args.report} is not a {SCHEMA_ID} report (a JSON {type(payload).__name__}, not "
            "an object); run bilevel verify again"
        )
    if payload.get("schema") != SCHEMA_ID:
        raise ValueError(
            f"{args.report} is not a {SCHEMA_ID} report (schema {payload.get('schema')!r}); "
            "run bilevel verify again"
        )
    rows = [row for row in payload["claims"] if fnmatch.fnmatch(row["id"], args.only)]
    if not rows:
        print(f"bilevel claims: no claim matches --only {args.only!r}", file=sys.stderr)
        return 2
    selected = {**payload, "claims": rows}
    if args.latex:
        print(latex_claims_table(selected), end="")
    elif args.markdown:
        table = format_markdown([ClaimResult(**row) for row in rows], payload["grid"])
        print(table, end="")
    else:
        for row in rows:
            verdict = "PASS" if row["passed"] else "FAIL"
            print(f"{row['id']}  {verdict}  {row['measured']}")
    return 0


@contextmanager
def executor_for(args: argparse.Namespace) -> Iterator[Executor | None]:
    """The executor named by ``args`` (``executor``, ``address``, ``workers``): a Dask client's,
    a spawned process pool whose workers share the CPUs' torch threads, or None (in process)."""
    if args.executor == "dask":
        if not args.address:
            raise ValueError("--executor dask needs --address HOST:PORT of a Dask scheduler")
        try:
            from distributed import Client
        except ImportError as exc:
            raise ValueError(
                "--executor dask needs the optional extra: pip install 'bilevel[dask]'"
            ) from exc
        with Client(args.address) as client:
            args.claims = ship_claims_modules(client, args.claims)
            yield client.get_executor()
        return
    workers = min(4, os.cpu_count() or 1) if args.workers is None else args.workers
    if workers < 0:
        raise ValueError(f"--workers must be >= 0, got {workers}")
    if workers == 0:
        yield None
        return
    context = multiprocessing.get_context("spawn")  # torch and fork do not mix safely
    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(threads, os.getpid())
    ) as pool:
        yield pool


def ship_claims_modules(client: Any, modules: Sequence[str]) -> list[str]:
    """Upload each ``--claims`` module (a single file) to the Dask workers, which cannot import
    the user's modules otherwise; returns the names the workers import them by."""
    import importlib.util

    names = []
    for entry in modules:
        if entry.endswith(".py"):
            path, name = Path(entry).resolve(), Path(entry).stem
        else:
            spec = importlib.util.find_spec(entry)
            if spec is None or spec.origin is None:
                raise ValueError(f"--claims {entry}: cannot import it")
            path, name = Path(spec.origin), entry
            if path.name == "__init__.py" or "." in entry:
                raise ValueError(
                    f"--claims {entry} is part of a package: install that package on the Dask "
                    "workers (only single-file claims modules are shipped)"
                )
        client.upload_file(str(path))
        names.append(name)
    return names


def _init_worker(threads: int, parent: int) -> None:
    """Each worker gets its share of the cores, and dies with its parent.

    Threads: without a limit every worker's torch starts one thread per core, the workers
    oversubscribe the machine and the recorded seconds inflate (measured: a 1 s hyper-cleaning
    run took 17 s with two workers on two cores). Parent death: a ``kill -9`` of ``bilevel
    verify`` used to leave its workers computing runs no one saves (about 430 MB each); on Linux
    the kernel now sends them SIGKILL when the parent dies (``PR_SET_PDEATHSIG``), and on every
    platform a watchdog thread exits the worker within a second of its parent's death."""
    import torch

    torch.set_num_threads(threads)
    _die_with_parent(parent)


def _die_with_parent(parent: int) -> None:
    import signal
    import threading

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
        except OSError:  # pragma: no cover - no glibc: the watchdog still applies
            pass
    if os.getppid() != parent:  # the parent died before this line
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="bilevel-parent-watchdog", daemon=True).start()


def _print_slots(claims) -> None:
    """``bilevel verify --slots``: each slot, its default, its signature, its claims and mutants."""
    from .gallery import all_mutants
    from .slots import describe, slot_ids

    for slot in slot_ids():
        entry = describe(slot)
        users = [c.id for c in claims if slot in c.slots]
        wrong = [m.id for m in all_mutants() if m.slot == slot]
        print(f"{slot}  (default {entry.target})")
        print(f"    signature: {entry.signature()}")
        print(f"    claims: {', '.join(users) or '(none)'}")
        print(f"    wrong implementations: {', '.join(wrong) or '(none)'}")


def _verify(args: argparse.Namespace) -> int:
    from .report import false_alarm_line, format_table, mutant_line, report_passed, write_report
    from .runner import load_claims, run_claims
    from .slots import parse_override

    claims = load_claims(args.claims)
    overrides = dict(parse_override(text) for text in args.implementation)
    if args.slots:
        _print_slots(claims)
        return 0
    if args.list:
        for claim in claims:
            expect = "" if claim.expect == "holds" else "  (expected to fail)"
            print(f"{claim.id}  [{claim.source}]  {claim.statement}{expect}")
        return 0
    selected = [c for c in claims if fnmatch.fnmatch(c.id, args.only)]
    if not selected:
        print(f"bilevel verify: no claim matches --only {args.only!r}", file=sys.stderr)
        return 2
    check_writable(Path(args.out))
    start = time.perf_counter()
    with executor_for(args) as executor:
        results = run_claims(
            selected,
            args.out,
            grid=args.grid,
            executor=executor,
            fresh=args.fresh,
            progress=not args.no_progress,
            claims_modules=args.claims,
            implementations=overrides,
            mutants=args.mutants,
        )
    print(format_table(results))
    report_rows, coverage = merge_with_previous(results, claims, Path(args.out), args)
    json_path, md_path = write_report(report_rows, args.out, args.grid, args.mutants)
    if coverage:
        print(coverage)
    passed = sum(r.passed for r in results)
    replaced = f"; replaced: {', '.join(f'{k}={v}' for k, v in overrides.items())}"
    print(
        f"\n{passed} passed, {len(results) - passed} failed ({args.grid} grid, "
        f"{time.perf_counter() - start:.1f} s{replaced if overrides else ''}); wrote "
        f"{json_path} and {md_path}\n"
        + false_alarm_line(results)
        + "\n"
        + mutant_line(results, args.mutants)
    )
    return 0 if report_passed(results, args.mutants) else 1


def check_writable(out: Path) -> None:
    """Refuse an ``--out`` that is a file or cannot be written, before any run is computed."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder: give a folder for the report")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"--out {out} is not writable ({exc.strerror or exc})") from None


def merge_with_previous(results, claims, out: Path, args) -> tuple[list, str]:
    """With ``--only``: the rows just run merged into ``out``'s previous report of the same
    grid and mutants setting (rows of claims not run are kept, in claim order), so a partial
    run never shrinks a full report; without a compatible previous report, say what the new
    one covers."""
    import json

    from .records import ClaimResult
    from .report import SCHEMA_ID

    if args.only == "*":
        return list(results), ""
    previous_path = out / "report.json"
    try:
        previous = json.loads(previous_path.read_text(encoding="utf-8"))
        compatible = (
            previous.get("schema") == SCHEMA_ID
            and previous.get("grid") == args.grid
            and bool(previous.get("mutants", {}).get("run")) == bool(args.mutants)
        )
    except (OSError, ValueError, AttributeError):
        previous, compatible = None, False
    if not compatible:
        return list(results), (
            f"report.json covers the {len(results)} claim(s) matched by --only {args.only!r} "
            f"(of {len(claims)}); run without --only for the full report"
        )
    fresh = {r.id: r for r in results}
    kept = {row["id"]: ClaimResult(**row) for row in previous["claims"] if row["id"] not in fresh}
    order = [c.id for c in claims]
    merged = sorted(
        {**kept, **fresh}.values(), key=lambda r: order.index(r.id) if r.id in order else len(order)
    )
    return merged, (
        f"report.json: {len(fresh)} claim(s) re-run with --only {args.only!r} and merged into "
        f"the previous report ({len(merged)} claims in all)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "verify":
            return _verify(args)
        if args.command == "claims":
            return _claims(args)
        if args.command == "figures":
            from bilevel.figures.cli import run

            with executor_for(args) as executor:
                return run(args, executor)
    except (ValueError, TypeError, OSError, ImportError, ArithmeticError) as exc:
        print(f"bilevel {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
