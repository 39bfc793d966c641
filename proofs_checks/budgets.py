"""Oracle budgets: a claim's measurement may refuse to spend more than the prediction allows.

``BudgetedCounts(budget)`` is an ``OracleCounts`` that raises ``OracleBudgetError`` as soon
as the total of its counts passes ``budget``. A claim about a method's oracle complexity gives
each call such a counter with a budget a stated multiple of the predicted count: a method that
spends far more (a quadratic-cost series, steepest descent sold as CG) is stopped there and its
measurement records the overrun, which the judge refutes, instead of running for hours.
"""

from __future__ import annotations

from typing import Any

from bilevel.solvers.oracles import OracleCounts


class OracleBudgetError(AssertionError):
    """A method spent more oracle calls than the claim allows (the evidence is the count)."""


class BudgetedCounts(OracleCounts):
    """``OracleCounts`` that raises ``OracleBudgetError`` once the total exceeds ``budget``."""

    def __init__(self, budget: int) -> None:
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
            raise ValueError(f"budget must be a non-negative int, got {budget!r}")
        object.__setattr__(self, "budget", budget)
        super().__init__()

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        total = sum(self.as_dict().values()) if hasattr(self, "mixed") else 0
        if total > self.budget:
            raise OracleBudgetError(
                f"{total} oracle calls exceed the budget of {self.budget} ({self.as_dict()})"
            )
