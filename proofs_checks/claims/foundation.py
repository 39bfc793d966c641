"""Foundation claims: the self-checks of ``bilevel.proofs_checks.selfchecks`` as claims.

Each is one deterministic run (no parameters); its measurement is the check's (expected,
measured, passed) triple, and the judge reads the verdict from it. Sources are in each check.
"""

from __future__ import annotations

import re

from ..engine import Claim, Measurement, Params, Verdict
from ..selfchecks import SELF_CHECKS, SelfCheck


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _measure(check: SelfCheck):
    def measure(_: Params) -> Measurement:
        try:
            expected, measured, passed = check.run()
        except ArithmeticError as failed_proof:  # a symbolic identity that does not hold
            detail = str(failed_proof)
            return {"expected": check.name, "measured": detail[:300], "passed": False}
        return {"expected": expected, "measured": measured, "passed": bool(passed)}

    return measure


def _judge(_: list[Params], measurements: list[Measurement]) -> Verdict:
    (m,) = measurements
    outcome = "holds" if m["passed"] else "refuted"
    return Verdict(
        m["expected"], m["measured"], outcome, power=f"any violation of: {m['expected']}"
    )


CLAIMS: tuple[Claim, ...] = tuple(
    Claim(
        id=f"foundation/{_slug(check.name)}",
        source=check.source,
        statement=check.name,
        measure=_measure(check),
        judge=_judge,
        grids={"quick": [{}]},
        slots=(check.slot,),
    )
    for check in SELF_CHECKS
)
