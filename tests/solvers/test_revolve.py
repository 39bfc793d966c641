"""Binomial checkpointing (``bilevel.solvers.revolve`` and ITD's ``checkpoint="binomial"``):
the schedule reverses every step once, in order, from the right iterate, within c slots, with
the fewest advances any c-slot reversal makes; ITD run along it gives plain ITD's value."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from bilevel.solvers import ITDBiO, OracleCounts, hypergradient
from bilevel.solvers.revolve import (
    Advance,
    BinomialCheckpoints,
    Reverse,
    binomial_capacity,
    binomial_schedule,
    least_advances,
    least_slots,
)

from ._small_quadratic import small_quadratic


def _replay(steps: int, slots: int) -> tuple[list[int], int, int]:
    """Run the schedule on step *indices* instead of iterates: (steps reversed in order, advances
    made, highest slot written); asserts that each reversal sees y_step."""
    held, in_hand = {0: 0}, None
    reversed_steps, advances, top_slot = [], 0, 0
    for action in binomial_schedule(steps, slots):
        if isinstance(action, Advance):
            assert action.steps >= 1 and action.source in held
            state = held[action.source] + action.steps
            advances += action.steps
            if action.target is None:
                in_hand = state
            else:
                held[action.target] = state
                top_slot = max(top_slot, action.target)
        else:
            assert isinstance(action, Reverse)
            state = in_hand if action.source is None else held[action.source]
            assert state == action.step, (steps, slots, action, state)
            reversed_steps.append(action.step)
            in_hand = None
    return reversed_steps, advances, top_slot


@functools.cache
def _fewest_advances(steps: int, slots: int) -> int:
    """Dynamic programme over every first advance m (Griewank 1992, eq. (3)): reversing l steps
    from a held y_a with c slots costs m + cost(l - m, c - 1) + cost(m, c) for the best m."""
    if steps <= 1:
        return 0
    if slots == 1:
        return steps * (steps - 1) // 2
    return min(
        m + _fewest_advances(steps - m, slots - 1) + _fewest_advances(m, slots)
        for m in range(1, steps)
    )


@pytest.mark.parametrize("slots", range(1, 8))
def test_schedule_is_a_valid_reversal_with_the_fewest_advances(slots):
    """Exhaustive for T < 70: the advances equal the brute-force optimum and the closed form
    t(T, c) = r T - C(c + r, c + 1); no slot beyond c - 1 is written."""
    for steps in range(70):
        order, advances, top_slot = _replay(steps, slots)
        assert order == list(reversed(range(steps)))
        assert top_slot < slots
        assert advances == _fewest_advances(steps, slots) == least_advances(steps, slots)


@given(steps=st.integers(0, 3000), slots=st.integers(1, 60))
def test_schedule_stays_valid_and_optimal_on_long_chains(steps, slots):
    """Beyond the dynamic programme's reach: validity and the closed form (whose optimality the
    exhaustive test checks), and the two special cases c = 1 and c >= T."""
    order, advances, top_slot = _replay(steps, slots)
    assert order == list(reversed(range(steps)))
    assert top_slot < slots
    assert advances == least_advances(steps, slots)
    if slots == 1:
        assert advances == steps * (steps - 1) // 2
    if slots >= steps:
        assert advances == max(steps - 1, 0)


def test_least_slots_is_the_binomial_floor():
    """C(c + 2, 2) >= T at the least c: 3 slots for T = 10, 19 for T = 200."""
    assert [least_slots(t, 2) for t in (1, 3, 6, 10, 11, 200, 210, 211)] == [
        1, 1, 2, 3, 4, 19, 19, 20
    ]  # fmt: skip
    for steps in range(1, 300):
        c = least_slots(steps, 2)
        assert binomial_capacity(c, 2) >= steps > binomial_capacity(c - 1, 2) or c == 1


@pytest.mark.parametrize("steps", [0, 1, 2, 7, 20, 50])
@pytest.mark.parametrize(
    "checkpoint",
    ["binomial", *(BinomialCheckpoints(c) for c in (1, 2, 5, 100))],
    ids=str,
)
def test_binomial_itd_gives_plain_itds_value_and_its_counted_cost(steps, checkpoint):
    """The same floating-point operations on the same iterates (recomputed ones are bitwise
    those of the forward pass, the reverse sum runs in the same order): plain ITD's value
    exactly. Counts: T taped steps and the schedule's advances t(T, c)."""
    outer, inner, x, y, lr = small_quadratic()
    plain = hypergradient(outer, inner, x, y, method="itd", steps=steps, lr=lr)
    counts = OracleCounts()
    binomial = hypergradient(
        outer, inner, x, y, method="itd", steps=steps, lr=lr, checkpoint=checkpoint, counts=counts
    )
    torch.testing.assert_close(binomial, plain, rtol=0, atol=0)
    slots = checkpoint.slots if isinstance(checkpoint, BinomialCheckpoints) else 0
    slots = slots or least_slots(steps, 2)
    assert counts.as_dict() == dict(
        grad_outer=1,
        grad_inner=steps + least_advances(steps, min(slots, max(steps, 1))),
        hvp=steps,
        mixed=steps,
    )


def test_binomial_is_no_dearer_than_sqrt_segments_and_holds_fewer_iterates():
    """At T = 200: ``"sqrt"`` holds ceil(T/15) + 15 = 29 iterates for 586 inner gradients;
    ``"binomial"`` 19 for 200 + 379 = 579."""
    outer, inner, x, y, lr = small_quadratic()
    used = {}
    for checkpoint in ("sqrt", "binomial"):
        counts = OracleCounts()
        hypergradient(
            outer, inner, x, y, method="itd", steps=200, lr=lr, checkpoint=checkpoint, counts=counts
        )
        used[checkpoint] = counts.grad_inner
    assert used == {"sqrt": 586, "binomial": 579}
    assert math.ceil(200 / 15) + 15 == 29 and least_slots(200, 2) == 19


def test_itd_bio_runs_binomial_checkpoints_to_plain_itds_iterates():
    outer, inner, x, y, lr = small_quadratic()
    short = dict(inner_steps=9, inner_lr=lr, outer_lr=0.05)
    plain, _ = ITDBiO(outer=outer, inner=inner, **short).run(x, y, iterations=5)
    binomial, _ = ITDBiO(outer=outer, inner=inner, checkpoint=BinomialCheckpoints(2), **short).run(
        x, y, iterations=5
    )
    torch.testing.assert_close(binomial.x, plain.x, rtol=0, atol=0)
    torch.testing.assert_close(binomial.y, plain.y, rtol=0, atol=0)


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, "3"])
def test_bad_slot_counts_are_refused(bad):
    with pytest.raises(ValueError, match="slots"):
        BinomialCheckpoints(bad)


def test_binomial_divergence_names_the_first_non_finite_step():
    """g = y^2 / 2 with lr = 1 + 1e10: y_t = (-1e10)^t overflows first at t = 31 in float64;
    the schedule advances before any check, and the error must still name step 31."""
    inner = lambda x, y: 0.5 * (y**2).sum() - (x * y).sum()  # noqa: E731
    outer = lambda x, y: (y**2).sum()  # noqa: E731
    x, y = torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64)
    with pytest.raises(FloatingPointError, match=r"ITD inner iterate y_t.* at step 31;"):
        hypergradient(
            outer, inner, x, y, method="itd", steps=40, lr=1 + 1e10, checkpoint="binomial"
        )


def test_an_advance_holds_one_iterate_at_a_time(monkeypatch):
    """Memory of an advance of m steps is one iterate (plus the step's temporaries), not m: the
    iterates are counted while alive (weak references) as a fake GD yields them."""
    import weakref

    from bilevel.solvers import itd

    alive: weakref.WeakSet = weakref.WeakSet()
    most_alive = 0

    def fake_gd(inner, x, y, steps, lr):
        nonlocal most_alive
        for _ in range(steps):
            iterate = torch.zeros(3)
            alive.add(iterate)
            most_alive = max(most_alive, len(alive))
            yield iterate

    monkeypatch.setattr(itd, "_gd_iterates", fake_gd)
    itd._advance(None, None, torch.zeros(3), 50, 0.1)
    assert most_alive <= 2  # the one being formed and the one just yielded
