"""Claims as declarative objects, and the verdict a comparator gives them.

A ``Claim`` says what a paper predicts and how to measure it:

- ``id``, ``source`` (paper, theorem or equation), ``statement`` (the prediction in words);
- ``grids``: the runs, one parameter dict each (instance, seed, ...), per grid name
  (``"quick"``, the default of ``bilevel verify``, and ``"full"``); each run is independent and
  deterministic given its parameters (seeds are parameters), so it can go to any executor and be
  cached on disk;
- ``measure``: a module-level function ``params -> dict`` of JSON numbers (the measurement of
  one run); it is looked up by the claim's id inside the worker, so claims need no pickling;
- ``judge``: ``(params list, measurement list) -> Verdict``, which applies a comparator of
  ``bilevel.proofs_checks.comparators`` / ``.rates`` to all the runs together;
- ``registry``: ids of the ``bilevel.analysis.theorems`` entries the prediction rests on; their
  evidence tags ([abs], [derived], [recall], ...) are printed in the report's ``evidence``
  column, so a reader sees which predictions are a paper's text and which are reconstructions;
- ``expect``: ``"holds"``, or ``"fails"`` for a claim that must be refuted (a known-biased
  estimator called unbiased, a non-convergent method called convergent): the report passes it
  only if the comparator rejects it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Params = dict[str, Any]
Measurement = dict[str, Any]

EXPECTATIONS = ("holds", "fails")


@dataclass(frozen=True)
class Verdict:
    """The judged claim: the prediction, the measurement with its interval, and whether it held."""

    predicted: str
    measured: str
    holds: bool
    interval: str = ""


@dataclass(frozen=True)
class Claim:
    id: str
    source: str
    statement: str
    measure: Callable[[Params], Measurement]
    judge: Callable[[list[Params], list[Measurement]], Verdict]
    grids: dict[str, list[Params]] = field(default_factory=dict)
    expect: str = "holds"
    registry: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.expect not in EXPECTATIONS:
            raise ValueError(f"claim {self.id}: expect must be one of {EXPECTATIONS}")
        if "quick" not in self.grids or not self.grids["quick"]:
            raise ValueError(f"claim {self.id}: needs a non-empty 'quick' grid")

    def evidence(self) -> str:
        """ "entry [tag]; ..." for the registry entries cited (raises on an unknown id)."""
        from bilevel.analysis.theorems import get

        return "; ".join(f"{i} [{get(i).evidence}]" for i in self.registry)

    def runs(self, grid: str) -> list[Params]:
        """The parameter dicts of ``grid`` (a claim without a ``full`` grid reuses ``quick``)."""
        return list(self.grids.get(grid) or self.grids["quick"])


def run_key(params: Params) -> str:
    """A stable file-name key of one run: sha1 of the canonical JSON of its parameters."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(canonical.encode("utf-8")).hexdigest()[:16]


def check(condition: bool, message: str = "") -> None:
    """``assert condition, message`` that ``python -O`` cannot remove: raises ``AssertionError``
    (the refutation that ``judged`` reports) when ``condition`` is false."""
    if not condition:
        raise AssertionError(message)


def judged(predicted: str, comparison: Callable[[], tuple[str, str]]) -> Verdict:
    """Run a comparator-based ``comparison() -> (measured, interval)``; an ``AssertionError``
    from a comparator is the verdict "does not hold", with its message as the measurement."""
    try:
        measured, interval = comparison()
    except AssertionError as refutation:
        return Verdict(predicted, str(refutation), False)
    return Verdict(predicted, measured, True, interval)
