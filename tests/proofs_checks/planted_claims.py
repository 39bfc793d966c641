"""A user's claims module for the engine's tests (``bilevel verify --claims planted_claims``).

``planted/slow-sum`` sleeps ``PLANTED_DELAY`` seconds per run so a test can kill ``verify``
mid-way; the others plant each way a claim can fail.
"""

from __future__ import annotations

import os
import time

from bilevel.proofs_checks.engine import Claim, Verdict, inconclusive_unless, judged

RUNS = [{"i": i} for i in range(8)]


def measure_square(params):
    time.sleep(float(os.environ.get("PLANTED_DELAY", "0")))
    return {"value": params["i"] ** 2}


def measure_two_slots(params):
    """Asks for one slot per run: the ``cg`` run never touches ``neumann`` and vice versa."""
    from bilevel.proofs_checks.slots import implementation

    return {"value": params["i"] ** 2, "target": repr(implementation(params["slot"]))[:40]}


def crash(params):
    raise RuntimeError("planted crash in a measurement")


def _sum_judge(predicted: int):
    def judge(params, measurements):
        total = sum(m["value"] for m in measurements)
        outcome = "holds" if total == predicted else "refuted"
        return Verdict(f"sum = {predicted}", f"sum = {total}", outcome, power="any other sum")

    return judge


def _undecided(params, measurements):
    def compare():
        inconclusive_unless(False, "the design cannot decide (planted)")
        return "", ""

    return judged("anything", compare, power="none (planted)")


CLAIMS = (
    Claim(
        "planted/slow-sum",
        "test",
        "sum of squares 0..7 is 140",
        measure_square,
        _sum_judge(140),
        {"quick": RUNS},
    ),
    Claim(
        "planted/wrong",
        "test",
        "sum of squares 0..7 is 141 (false)",
        measure_square,
        _sum_judge(141),
        {"quick": RUNS},
    ),
    Claim(
        "planted/crash",
        "test",
        "a crashing measurement",
        crash,
        _sum_judge(0),
        {"quick": [{"i": 0}]},
    ),
    Claim(
        "planted/expected-failure-holds",
        "test",
        "expected to fail, but holds",
        measure_square,
        _sum_judge(140),
        {"quick": RUNS},
        expect="fails",
    ),
    Claim(
        "planted/expected-failure-refuted",
        "test",
        "expected to fail, and refuted",
        measure_square,
        _sum_judge(141),
        {"quick": RUNS},
        expect="fails",
    ),
    Claim(
        "planted/two-slots",
        "test",
        "each run asks for one slot only",
        measure_two_slots,
        _sum_judge(0 + 1),
        {"quick": [{"i": 0, "slot": "cg"}, {"i": 1, "slot": "neumann"}]},
        slots=("cg", "neumann"),
    ),
    Claim(
        "planted/inconclusive",
        "test",
        "a design that cannot decide",
        measure_square,
        _undecided,
        {"quick": [{"i": 0}]},
    ),
)
