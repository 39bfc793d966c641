"""Packaging: one ``bilevel`` namespace, no top-level analysis/solvers/figures, import layering."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
SUBPACKAGES = ("analysis", "solvers", "proofs_checks", "figures")


def _config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_code_folder_with_an_init_is_a_listed_package() -> None:
    listed = set(_config()["packages"])
    for folder in SUBPACKAGES:
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT).as_posix().replace("/", ".")
            assert f"bilevel.{rel}" in listed, f"{init.parent} is not in [tool.setuptools].packages"


def test_package_dir_maps_the_four_folders() -> None:
    mapping = _config()["package-dir"]
    assert mapping == {"bilevel": "bilevel", **{f"bilevel.{name}": name for name in SUBPACKAGES}}


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_subpackages_import_from_the_bilevel_namespace(name: str) -> None:
    """Editable install: bilevel.<name> is the repository's folder. A regular install
    (``pip install .``): a copy holding the same Python files, so nothing was left out."""
    spec = importlib.util.find_spec(f"bilevel.{name}")
    assert spec is not None and spec.origin is not None
    installed, folder = Path(spec.origin).resolve().parent, (ROOT / name).resolve()
    if installed != folder:

        def modules(base: Path) -> set[str]:
            return {
                str(p.relative_to(base)) for p in base.rglob("*.py") if "__pycache__" not in str(p)
            }

        assert modules(installed) == modules(folder), f"{installed} differs from {folder}"


def _imports(path: Path) -> set[str]:
    """Module-level imports (a function may import torch lazily for an optional backend)."""
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        ("analysis", ("torch", "bilevel.solvers", "bilevel.proofs_checks", "bilevel.figures")),
        ("solvers", ("sympy", "bilevel.analysis", "bilevel.proofs_checks", "bilevel.figures")),
    ],
)
def test_imports_flow_one_way(folder: str, forbidden: tuple[str, ...]) -> None:
    for path in (ROOT / folder).rglob("*.py"):
        for name in _imports(path):
            assert not any(name == f or name.startswith(f + ".") for f in forbidden), (
                f"{path.relative_to(ROOT)} imports {name}"
            )


#: third-party private modules with no public path, each with its reason
THIRD_PARTY_PRIVATE = {
    # TorchDispatchMode (the memory meter of proofs_checks.memory) is public nowhere else in
    # torch 2.4-2.13; torch.utils.flop_counter itself is built on it
    "torch.utils._python_dispatch",
}


def test_no_private_name_is_imported_across_modules() -> None:
    """Private stays private (optax's ``_src`` model): no module imports an underscore name,
    and no module imports another subpackage's private module (within a subpackage, its own
    private modules are its implementation). Third-party private modules only where listed."""
    offences = []
    for folder in SUBPACKAGES:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.ImportFrom):
                    continue
                names = [a.name for a in node.names if a.name.startswith("_")]
                names = [n for n in names if not n.startswith("__")]
                parts = (node.module or "").split(".")
                private_module = any(p.startswith("_") and not p.startswith("__") for p in parts)
                crosses = node.level == 0 or node.level > 1 + (path.parent != ROOT / folder)
                if node.level == 0 and node.module in THIRD_PARTY_PRIVATE:
                    continue
                if names or (private_module and crosses):
                    offences.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offences, offences


def test_the_public_face() -> None:
    import bilevel
    from bilevel import proofs_checks, solvers
    from bilevel.solvers import registry

    assert isinstance(bilevel.__version__, str) and bilevel.__version__[0].isdigit()
    for name in bilevel.__all__:
        assert getattr(bilevel, name) is not None, name
    for name in ("assert_unbiased", "assert_bias", "assert_linear_rate", "Claim", "Verdict",
                 "run_claims", "load_run", "implementation"):  # fmt: skip
        assert callable(getattr(proofs_checks, name)), name
    for name in proofs_checks.__all__:
        getattr(proofs_checks, name)
    for method in registry.REGISTRY:  # every registered algorithm and estimator is public
        attribute = method.target.split(":")[1]
        namespace = solvers.estimators if method.kind == "estimator" else solvers
        exported = getattr(namespace, attribute)
        assert exported is method.load(), method.id
    for name in ("argmin", "hypergradient", "AIDBiO", "SOBA", "OuterAlgorithm"):
        assert name in solvers.__all__
