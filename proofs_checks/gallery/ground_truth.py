r"""Wrong closed forms: subclasses of ``bilevel.analysis`` classes with one derivation slip each,
for the claims that hold a computation to the ground truth (``quadratic-bilevel``, ``pl-game``,
``scalar-pl`` slots). Test doubles for ``bilevel verify --mutants``.
"""

from __future__ import annotations

from typing import Any

from bilevel.analysis import QuadraticBilevel


class QuadraticBilevelPenaltyLeadingTerm(QuadraticBilevel):
    """spec 7.8's bias with its second term, -(1/lam) B^T (A + P/lam)^-1 P A^-1 g*, dropped
    (kept "as higher order", although it is O(1/lam) too)."""

    def penalty_error(self, lam: Any, backend=None) -> Any:
        lam = self._check_lambda(lam)
        first = -self.S * (self.P + lam * self.A).inv() * self._g_star
        return self._emit_vector(first, backend, (self.x,))
