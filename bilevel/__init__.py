"""bilevel: derive, run and verify bilevel-optimization algorithms.

Four subpackages of this one namespace: ``bilevel.analysis`` (sympy ground truth),
``bilevel.solvers`` (torch estimators and outer algorithms), ``bilevel.proofs_checks`` (claims,
comparators, the runner) and ``bilevel.figures``. The main names are re-exported here and
imported on first use (``import bilevel`` loads neither torch nor sympy):

    >>> import bilevel
    >>> bilevel.__version__  # doctest: +SKIP
    '0.1.0'
"""

from __future__ import annotations

from importlib import import_module, metadata
from pkgutil import extend_path
from typing import Any

# the subpackages may live in another sys.path entry (a checkout next to an installed copy)
__path__ = extend_path(__path__, __name__)

try:
    __version__ = metadata.version("bilevel")
except metadata.PackageNotFoundError:  # pragma: no cover - run from a bare checkout
    __version__ = "0+unknown"

_EXPORTS = {
    "hypergradient": "bilevel.solvers",
    "argmin": "bilevel.solvers",
    "OracleCounts": "bilevel.solvers",
    "OuterAlgorithm": "bilevel.solvers",
    "registry": "bilevel.solvers",
    "QuadraticBilevel": "bilevel.analysis",
    "Claim": "bilevel.proofs_checks",
    "Verdict": "bilevel.proofs_checks",
    "run_claims": "bilevel.proofs_checks",
    "assert_unbiased": "bilevel.proofs_checks",
    "assert_linear_rate": "bilevel.proofs_checks",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'bilevel' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
