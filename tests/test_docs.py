"""The documentation covers the code: every algorithm module has a page that renders its
docstring (the update rule) and its claims, every page is in the navigation, and every claim
marker matches registered claims. The site itself is built with ``make docs`` (strict)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _algorithm_modules() -> list[str]:
    """The modules of every registered method (the registry, not a list kept here), plus the
    estimators' engines that the registry reaches through ``estimators``."""
    from bilevel.solvers import registry

    modules = {m.target.split(":")[0].rsplit(".", 1)[1] for m in registry.REGISTRY}
    return sorted((modules - {"estimators"}) | {"itd", "stocbio"})


def _pages() -> dict[str, str]:
    return {
        str(p.relative_to(ROOT / "docs")): p.read_text(encoding="utf-8")
        for p in (ROOT / "docs").rglob("*.md")
        if "results" not in p.parts
    }


def test_every_algorithm_module_has_a_page_with_its_claims() -> None:
    pages = {k: v for k, v in _pages().items() if k.startswith("algorithms/")}
    for module in _algorithm_modules():
        hosting = [k for k, v in pages.items() if f"::: bilevel.solvers.{module}\n" in v]
        assert hosting, f"no docs/algorithms page renders bilevel.solvers.{module}"
        assert all("{{ claims " in pages[k] for k in hosting), hosting


def test_every_page_is_in_the_navigation() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    missing = [page for page in _pages() if page not in nav]
    assert not missing, missing


def test_claim_markers_match_registered_claims() -> None:
    pytest.importorskip("sympy")
    import importlib.util

    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    for page, text in _pages().items():
        for marker in re.finditer(hooks.MARKER, text):
            table = hooks.claims_table(hooks.shlex.split(marker.group(1)))  # raises on no match
            assert table.count("\n") >= 2, page
