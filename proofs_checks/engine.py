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
- ``slots``: the registry ids of the methods the claim checks (``bilevel.proofs_checks.slots``);
  its measure obtains each through ``implementation(id)``, so that ``bilevel verify
  --implementation ID=MODULE:ATTR`` and the gallery of wrong implementations (``--mutants``)
  can put another one in its place;
- ``registry``: ids of the ``bilevel.analysis.theorems`` entries the prediction rests on; their
  evidence tags ([abs], [derived], [recall], ...) are printed in the report's ``evidence``
  column, so a reader sees which predictions are a paper's text and which are reconstructions;
- ``expect``: ``"holds"``, or ``"fails"`` for a claim that must be refuted (a known-biased
  estimator called unbiased, a non-convergent method called convergent): the report passes it
  only if the comparator rejects it.

A verdict is one of three outcomes (``OUTCOMES``): ``"holds"`` (the comparison was made and the
prediction survived it), ``"refuted"`` (the comparison contradicts the prediction) or
``"inconclusive"`` (the design could not have refuted the stated alternative: a sequential test
out of looks, a rate window with too few points, a budget never reached). Inconclusive is not a
pass. Every verdict states its ``power``: the smallest violation the comparison detects with
probability at least 1 - 1e-6 (for a deterministic comparison: its rounding envelope).
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
OUTCOMES = ("holds", "refuted", "inconclusive")


class InconclusiveError(AssertionError):
    """The design could not decide (a sequential test out of looks, a window with too few
    points, a target never reached where that is no evidence against the claim)."""


@dataclass(frozen=True)
class Verdict:
    """The judged claim: the prediction, the measurement with its interval, the outcome (one of
    ``OUTCOMES``) and the power of the comparison (the smallest violation it detects)."""

    predicted: str
    measured: str
    outcome: str
    interval: str = ""
    power: str = ""

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            hint = (
                " (the third field is the outcome, no longer a bool: pass 'holds' or 'refuted')"
                if isinstance(self.outcome, bool)
                else ""
            )
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {self.outcome!r}{hint}")

    @property
    def holds(self) -> bool:
        return self.outcome == "holds"


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
    slots: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.expect not in EXPECTATIONS:
            raise ValueError(f"claim {self.id}: expect must be one of {EXPECTATIONS}")
        if "quick" not in self.grids or not self.grids["quick"]:
            raise ValueError(f"claim {self.id}: needs a non-empty 'quick' grid")
        if isinstance(self.slots, str):
            raise TypeError(f"claim {self.id}: slots is a tuple of ids, got the string")
        from .slots import describe

        for slot in self.slots:
            describe(slot)  # an unknown id is refused when the claim is defined

    def passes(self, verdict: Verdict) -> bool:
        """Whether ``verdict`` is what this claim must do: "holds" for a claim expected to hold,
        "refuted" for one expected to fail; "inconclusive" never passes."""
        return verdict.outcome == ("holds" if self.expect == "holds" else "refuted")

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


def inconclusive_unless(condition: bool, message: str = "") -> None:
    """Raise ``InconclusiveError`` (the verdict "inconclusive") when ``condition`` is false: the
    measurement cannot decide the claim either way (say why in ``message``)."""
    if not condition:
        raise InconclusiveError(message)


def judged(predicted: str, comparison: Callable[[], tuple[str, str]], *, power: str) -> Verdict:
    """Run a comparator-based ``comparison() -> (measured, interval)``: an ``InconclusiveError``
    is the verdict "inconclusive", any other ``AssertionError`` "refuted", each with its message
    as the measurement. ``power`` states the smallest violation the comparison detects."""
    if not power:
        raise ValueError("a verdict states its power (the smallest violation it detects)")
    try:
        measured, interval = comparison()
    except InconclusiveError as undecided:
        return Verdict(predicted, str(undecided), "inconclusive", power=power)
    except AssertionError as refutation:
        return Verdict(predicted, str(refutation), "refuted", power=power)
    return Verdict(predicted, measured, "holds", interval, power)
