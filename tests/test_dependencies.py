"""No undeclared imports (issue 10): every import in the package is the standard library,
``bilevel`` itself, a declared dependency of ``pyproject.toml``, or an optional one imported
lazily (inside a function) or under ``try/except ImportError`` with a message naming the extra.
And each optional piece degrades to that message when its dependency is missing."""

from __future__ import annotations

import ast
import builtins
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11 (the suite runs on 3.11)


ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIRS = ("analysis", "solvers", "proofs_checks", "figures")
#: import names of the distributions in [project] dependencies
DISTRIBUTION_TO_IMPORT = {"scikit-learn": "sklearn", "dask[distributed]": "distributed"}
#: modules that exist only to be loaded by a tool that brings the dependency itself
TOOL_MODULES = {"proofs_checks/pytest_plugin.py": {"pytest"}}


def _import_names(requirements: list[str]) -> set[str]:
    names = set()
    for requirement in requirements:
        name = requirement.split(">")[0].split("=")[0].split("<")[0].strip()
        names.add(DISTRIBUTION_TO_IMPORT.get(name, name.split("[")[0]).replace("-", "_"))
    return names


def _guarded(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Inside a function body, or inside a ``try`` that catches ImportError."""
    current = parents.get(node)
    while current is not None:
        if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return True
        if isinstance(current, ast.Try):
            for handler in current.handlers:
                names = (
                    [handler.type]
                    if not isinstance(handler.type, ast.Tuple)
                    else list(handler.type.elts)
                )
                if any(
                    getattr(n, "id", "") in ("ImportError", "ModuleNotFoundError") for n in names
                ):
                    return True
        current = parents.get(current)
    return False


def _imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0], node, parents
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0], node, parents


def test_every_import_is_declared_or_guarded() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    required = _import_names(project["dependencies"])
    optional = set().union(*(_import_names(v) for v in project["optional-dependencies"].values()))
    allowed = set(sys.stdlib_module_names) | {"bilevel"} | required
    problems = []
    for folder in PACKAGE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = str(path.relative_to(ROOT))
            for name, node, parents in _imports(path):
                if name in allowed or name in TOOL_MODULES.get(relative, set()):
                    continue
                if name in optional and _guarded(node, parents):
                    continue
                kind = "optional, imported unguarded" if name in optional else "undeclared"
                problems.append(f"{relative}:{node.lineno}: {name} ({kind})")
    assert not problems, "\n".join(problems)


def _without(monkeypatch, *modules: str) -> None:
    """Make ``import <module>`` fail as if the distribution were not installed."""
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.split(".")[0] in modules:
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    for loaded in [m for m in sys.modules if m.split(".")[0] in modules]:
        monkeypatch.delitem(sys.modules, loaded)
    monkeypatch.setattr(builtins, "__import__", fake_import)


def test_missing_scikit_learn_says_how_to_install_it(monkeypatch) -> None:
    from bilevel.solvers.problems import load_hyper_cleaning, load_logistic_problem

    _without(monkeypatch, "sklearn")
    with pytest.raises(ImportError, match=r"pip install scikit-learn"):
        load_logistic_problem()
    with pytest.raises(ImportError, match=r"pip install scikit-learn"):
        load_hyper_cleaning()


def test_missing_dask_is_a_one_line_cli_error(monkeypatch, capsys, tmp_path) -> None:
    from bilevel.proofs_checks import cli

    _without(monkeypatch, "distributed", "dask")
    argv = ["verify", "--only", "ufom/unbiased-exact", "--executor", "dask", "--address", "x:1"]
    status = cli.main([*argv, "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "pip install 'bilevel[dask]'" in err[0]
