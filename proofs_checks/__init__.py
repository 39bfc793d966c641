"""Verification of bilevel claims: the symbolic predictions of ``bilevel.analysis`` measured
against the torch solvers of ``bilevel.solvers``, with stated statistical procedures.

The public names (imported on first use, so ``bilevel verify --help`` stays fast):

- claims: ``Claim``, ``Verdict``, ``judged``, ``check``, ``inconclusive_unless``,
  ``InconclusiveError``;
- comparators: ``assert_unbiased``, ``assert_unbiased_sequential``, ``assert_bias``,
  ``assert_bias_exact``, ``assert_expectation_exact``, ``assert_close_to_closed_form``,
  ``assert_linear_rate``, ``assert_bound_holds``, ``assert_slope``,
  ``assert_complexity_exponent``, ``assert_lower_bound``;
- running: ``run_claims``, ``load_claims``, ``ClaimResult``, ``load_run``;
- implementation slots: ``implementation``, ``using``.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Claim": "engine",
    "Verdict": "engine",
    "judged": "engine",
    "check": "engine",
    "inconclusive_unless": "engine",
    "InconclusiveError": "engine",
    "UnbiasednessResult": "comparators",
    "assert_unbiased": "comparators",
    "assert_unbiased_sequential": "comparators",
    "assert_bias": "comparators",
    "assert_bias_exact": "comparators",
    "assert_expectation_exact": "comparators",
    "assert_close_to_closed_form": "comparators",
    "assert_linear_rate": "rates",
    "assert_bound_holds": "rates",
    "assert_slope": "rates",
    "assert_complexity_exponent": "rates",
    "assert_lower_bound": "rates",
    "ClaimResult": "records",
    "load_run": "records",
    "run_claims": "runner",
    "load_claims": "runner",
    "implementation": "slots",
    "using": "slots",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
