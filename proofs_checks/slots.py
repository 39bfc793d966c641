r"""Implementation slots: how a claim obtains the methods it checks, and how they are replaced.

A claim names the methods it checks by id (``Claim.slots``) and obtains each through
``implementation(id)``, never by importing it inside its measure function. The ids are those of
``bilevel.solvers.registry`` plus the ground-truth slots below (the closed forms of
``bilevel.analysis`` that the foundation claims check).

``using({"cg": "my_pkg.solvers:my_cg"})`` (a context manager) replaces the default of a slot for
the code run inside it; ``bilevel verify --implementation cg=my_pkg.solvers:my_cg`` does the same
in every run of every claim that uses the slot (the runner sends the names, not the objects, to
its workers). A replacement must have the default's call signature (``bilevel verify --slots``
prints it).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from bilevel.solvers import registry

_A = "bilevel.analysis"


@dataclass(frozen=True)
class GroundTruthSlot:
    """A closed form of ``bilevel.analysis`` that claims check against independent computation."""

    id: str
    target: str
    summary: str

    def load(self) -> Any:
        return registry.load_target(self.target)

    def signature(self) -> str:
        return registry.target_signature(self.target)


GROUND_TRUTH: tuple[GroundTruthSlot, ...] = (
    GroundTruthSlot(
        "quadratic-bilevel",
        f"{_A}.quadratic:QuadraticBilevel",
        "exact hypergradient and estimator closed forms of the quadratic bilevel problem",
    ),
    GroundTruthSlot(
        "pl-game",
        f"{_A}.pl:PLLeastSquaresGame",
        "the rank-deficient least-squares PL game and its surrogate hypergradient",
    ),
    GroundTruthSlot("scalar-pl", f"{_A}.pl:ScalarPLGame", "the scalar PL function y^2 + 3 sin^2 y"),
)
_GROUND_TRUTH = {s.id: s for s in GROUND_TRUTH}

_OVERRIDES: ContextVar[Mapping[str, Any] | None] = ContextVar(
    "bilevel_slot_overrides", default=None
)


def slot_ids() -> tuple[str, ...]:
    """Every slot id: the registry's methods, then the ground-truth slots."""
    return (*registry.ids(), *_GROUND_TRUTH)


def describe(slot: str) -> Any:
    """The registry entry (or ground-truth slot) behind ``slot``; ValueError if unknown."""
    if slot in _GROUND_TRUTH:
        return _GROUND_TRUTH[slot]
    try:
        return registry.get(slot)
    except ValueError:
        known = ", ".join(slot_ids())
        raise ValueError(f"unknown implementation slot {slot!r}; slots: {known}") from None


def default_target(slot: str) -> str:
    return describe(slot).target


_REQUESTED: ContextVar[set[str] | None] = ContextVar("bilevel_slots_requested", default=None)


@contextmanager
def tracking_requests() -> Iterator[set[str]]:
    """The set of slots that ``implementation`` is asked for inside the block. A run that never
    asks for a slot does not depend on it, so the runner reuses its measurement for a variant
    that replaces only that slot (a mutant of another method of the same claim)."""
    requested: set[str] = set()
    token = _REQUESTED.set(requested)
    try:
        yield requested
    finally:
        _REQUESTED.reset(token)


def implementation(slot: str) -> Any:
    """The implementation in force for ``slot``: a replacement given to ``using`` (an object,
    or a "module:attr" name imported here), else the registered default."""
    describe(slot)
    requested = _REQUESTED.get()
    if requested is not None:
        requested.add(slot)
    override = (_OVERRIDES.get() or {}).get(slot)
    if override is None:
        return describe(slot).load()
    if isinstance(override, str):
        return registry.load_target(override)
    return override


def parse_override(text: str) -> tuple[str, str]:
    """``"NAME=MODULE:ATTR"`` -> (NAME, "MODULE:ATTR"), both checked (the target imported)."""
    name, sep, target = text.partition("=")
    if not sep or not name or not target:
        raise ValueError(f"--implementation takes NAME=MODULE:ATTR, got {text!r}")
    describe(name)
    registry.load_target(target)
    return name, target


@contextmanager
def using(overrides: Mapping[str, Any]) -> Iterator[None]:
    """Replace slots inside the block: ``{slot: object or "module:attr"}`` (checked first)."""
    for slot in overrides:
        describe(slot)
    token = _OVERRIDES.set({**(_OVERRIDES.get() or {}), **overrides})
    try:
        yield
    finally:
        _OVERRIDES.reset(token)
