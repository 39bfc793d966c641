r"""Binomial checkpointing (Revolve): reverse T steps holding at most c iterates, with the fewest
recomputed steps [Griewank 1992, Optim. Methods Softw. 1(1); Griewank & Walther 2000, ACM TOMS
26(1), "Algorithm 799: revolve"; Griewank & Walther 2008, *Evaluating Derivatives*, ch. 12].

Setting. A chain y_{t+1} = F_t(y_t), t = 0..T-1, is reversed step by step from t = T-1 down
to 0; reversing step t needs y_t (it tapes F_t at y_t and pulls the adjoint back through it).
Memory holds c *slots* (one of them y_0) and the iterate in hand; "advancing" n steps from a slot
costs n untaped evaluations of F.

Bound. With c slots and every step advanced at most r times, at most

    beta(c, r) = C(c + r, c)

steps can be reversed, and reversing l steps with beta(c, r-1) < l <= beta(c, r) needs at least

    t(l, c) = r l - C(c + r, c + 1)

advances (Griewank 1992, Prop. 1; at c = 1, l (l-1) / 2; at c >= l, l - 1).

Schedule. Reversing l > 1 steps from a slot holding y_a with c > 1 slots: advance

    m = min(beta(c, r-1), l - beta(c-1, r-1))

steps to y_{a+m}, store it in the next slot, reverse the last l - m steps with the c - 1 slots
from there, then the first m with all c slots. t(., c) is convex and piecewise linear in l with
slope r on (beta(c, r-1), beta(c, r)]; this m puts the left part on its slope r-1 piece and the
right part on its slope r piece, so m + t(l-m, c-1) + t(m, c) = t(l, c): the split is optimal,
and so is the whole schedule by induction (``tests/solvers/test_revolve.py`` checks it against
the dynamic programme over every split). With c = 1: advance l-1, l-2, ..., 1 steps from y_a.

This module is the schedule only (pure Python, no tensors); ``bilevel.solvers.itd`` runs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from math import comb


@dataclass(frozen=True)
class BinomialCheckpoints:
    """ITD's ``checkpoint=BinomialCheckpoints(slots=c)``: hold at most c iterates (y_0 among
    them) and recompute the fewest steps that allows (``checkpoint="binomial"``: the least c
    with every step advanced at most twice, C(c + 2, 2) >= T)."""

    slots: int

    def __post_init__(self) -> None:
        if isinstance(self.slots, bool) or not isinstance(self.slots, int) or self.slots < 1:
            raise ValueError(
                f"BinomialCheckpoints(slots=...) needs an int >= 1 (y_0 takes one slot); "
                f"got {self.slots!r}"
            )


@dataclass(frozen=True)
class Advance:
    """Run ``steps`` untaped steps from the iterate in slot ``source``; store the result in slot
    ``target``, or keep it in hand (``target=None``) for the ``Reverse`` that follows."""

    source: int
    steps: int
    target: int | None


@dataclass(frozen=True)
class Reverse:
    """Tape step ``step`` at y_step (in slot ``source``, or in hand: ``source=None``) and pull the
    adjoint back through it."""

    step: int
    source: int | None


def binomial_capacity(slots: int, repetitions: int) -> int:
    """beta(c, r) = C(c + r, c): the most steps c slots reverse, each advanced <= r times."""
    return comb(slots + repetitions, slots)


def repetitions(steps: int, slots: int) -> int:
    """The least r with beta(c, r) >= l (0 for l <= 1)."""
    r = 0
    while binomial_capacity(slots, r) < steps:
        r += 1
    return r


def least_advances(steps: int, slots: int) -> int:
    """t(l, c) = r l - C(c + r, c + 1): the fewest untaped steps any reversal of l steps with c
    slots makes (module docstring)."""
    if steps <= 1:
        return 0
    r = repetitions(steps, slots)
    return r * steps - comb(slots + r, slots + 1)


def least_slots(steps: int, max_repetitions: int) -> int:
    """The least c with beta(c, r) >= T: the memory floor at a given time budget."""
    slots = 1
    while binomial_capacity(slots, max_repetitions) < steps:
        slots += 1
    return slots


def _split(steps: int, slots: int) -> int:
    r = repetitions(steps, slots)
    return min(binomial_capacity(slots, r - 1), steps - binomial_capacity(slots - 1, r - 1))


def binomial_schedule(steps: int, slots: int) -> Iterator[Advance | Reverse]:
    """The actions that reverse steps T-1, ..., 0 with y_0 in slot 0 and slots 0..c-1: the
    module docstring's schedule, run with an explicit stack (no recursion depth limit)."""
    if steps < 0 or slots < 1:
        raise ValueError(f"need steps >= 0 and slots >= 1; got steps={steps}, slots={slots}")
    pending = [(0, steps, slots, 0)] if steps else []  # (first step, length, slots, slot)
    while pending:
        start, length, free, slot = pending.pop()
        while length > 1 and free > 1:
            m = _split(length, free)
            yield Advance(slot, m, slot + 1)
            pending.append((start, m, free, slot))  # the left part, after the right one
            start, length, free, slot = start + m, length - m, free - 1, slot + 1
        for offset in reversed(range(1, length)):  # free == 1: from the slot each time
            yield Advance(slot, offset, None)
            yield Reverse(start + offset, None)
        yield Reverse(start, slot)
