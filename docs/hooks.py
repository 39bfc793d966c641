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
if not (SOURCE_TREE / "__init__.py").is_symlink():
    (SOURCE_TREE / "__init__.py").symlink_to(ROOT / "bilevel" / "__init__.py")

MARKER = re.compile(r"\{\{\s*claims\s+(.+?)\s*\}\}")
API_MARKER = "{{ api }}"
SUBPACKAGES = (
    ("solvers", "hypergradients and outer algorithms"),
    ("analysis", "exact ground truth"),
    ("proofs_checks", "claims, statistics, runner"),
    ("figures", "figures from saved runs"),
)


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


def api_reference() -> str:
    """The API page's body, generated: the registry's methods (with the claims that check each,
    from the claims' slots), the public names of each namespace (their ``__all__``), then every
    public module of each subpackage (found on disk, so a new module is listed by itself;
    the claim and gallery modules are documented by the claim tables of the algorithm pages)."""
    import importlib
    import pkgutil

    from bilevel.proofs_checks.runner import load_claims
    from bilevel.solvers import registry

    claims = load_claims()
    lines = [
        "## Methods (`bilevel.solvers.registry`)",
        "",
        "| id | kind | implementation | paper | what it is | claims that check it |",
        "|---|---|---|---|---|---|",
    ]
    for method in registry.REGISTRY:
        checked = ", ".join(f"`{c.id}`" for c in claims if method.id in c.slots) or "none"
        cells = [f"`{method.id}`", method.kind, f"`{method.target}`", method.paper,
                 method.summary, checked]  # fmt: skip
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines += ["", "## Public names", ""]
    for namespace in ("bilevel", *(f"bilevel.{name}" for name, _ in SUBPACKAGES)):
        names = getattr(importlib.import_module(namespace), "__all__", ())
        if names:
            lines.append(f"- `{namespace}`: " + ", ".join(f"`{n}`" for n in names))
    for name, title in SUBPACKAGES:
        lines += ["", f"## `bilevel.{name}`: {title}", "", f"::: bilevel.{name}"]
        found = pkgutil.iter_modules([str(ROOT / name)], f"bilevel.{name}.")
        for info in sorted(found, key=lambda i: i.name):
            if not info.name.rsplit(".", 1)[1].startswith("_"):
                lines.append(f"::: {info.name}")
    return "\n".join(lines)


def on_page_markdown(markdown: str, **_: object) -> str:
    if API_MARKER in markdown:
        markdown = markdown.replace(API_MARKER, api_reference())
    return MARKER.sub(lambda m: claims_table(shlex.split(m.group(1))), markdown)
