"""mkdocs hooks: make the package's sources findable, and render the claim tables.

- The four code folders are mapped to ``bilevel.<name>`` by setuptools' ``package-dir``; the
  API reference (mkdocstrings / griffe) reads sources from a folder tree, so ``.docs-src/bilevel``
  links to them (created when mkdocs loads this file; ``.docs-src`` is git-ignored).
- ``{{ claims "glob" ["glob" ...] }}`` in a page becomes a table of the registered claims whose
  ids match (id, statement, source, the implementation slots it checks, the wrong
  implementations it must refute): the pages list the claims the code has, never a stale copy.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE_TREE = ROOT / ".docs-src" / "bilevel"
SOURCE_TREE.mkdir(parents=True, exist_ok=True)
for folder in ("analysis", "solvers", "proofs_checks", "figures"):
    link = SOURCE_TREE / folder
    if not link.is_symlink():
        link.symlink_to(ROOT / folder, target_is_directory=True)

MARKER = re.compile(r"\{\{\s*claims\s+(.+?)\s*\}\}")


def claims_table(patterns: list[str]) -> str:
    from bilevel.proofs_checks.gallery import mutants_for
    from bilevel.proofs_checks.runner import load_claims

    rows = [c for c in load_claims() if any(fnmatch.fnmatch(c.id, p) for p in patterns)]
    if not rows:
        raise ValueError(f"no claim matches {patterns}")
    lines = [
        "| claim | statement | source | slots | wrong implementations refuted |",
        "|---|---|---|---|---|",
    ]
    for claim in rows:
        wrong = ", ".join(f"`{m.id}`" for m in mutants_for(claim))
        slots = ", ".join(f"`{s}`" for s in claim.slots)
        cells = [f"`{claim.id}`", claim.statement, claim.source, slots, wrong]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def on_page_markdown(markdown: str, **_: object) -> str:
    return MARKER.sub(lambda m: claims_table(shlex.split(m.group(1))), markdown)
