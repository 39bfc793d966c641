r"""Wrong outer algorithms: subclasses of the registered classes (same constructor), each with
one realistic bug in the method it overrides. Test doubles for ``bilevel verify --mutants``.
"""

from __future__ import annotations

from dataclasses import dataclass

from bilevel.solvers.accbio import AccBiO


@dataclass(frozen=True)
class AccBiOMomentumOff(AccBiO):
    """AccBiO with its outer momentum switched off: plain (inexact) gradient descent on Phi."""

    def outer_momentum(self, k: int) -> float:
        return 0.0


@dataclass(frozen=True)
class AccBiOKappaMomentum(AccBiO):
    """AccBiO's outer momentum (kappa - 1)/(kappa + 1) for (sqrt kappa - 1)/(sqrt kappa + 1)."""

    def outer_momentum(self, k: int) -> float:
        if self.kappa_x is None:
            return super().outer_momentum(k)
        return (self.kappa_x - 1) / (self.kappa_x + 1)
