r"""Wrong outer algorithms: subclasses of the registered classes (same constructor), each with
one realistic bug in the method it overrides. Test doubles for ``bilevel verify --mutants``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from bilevel.solvers._outer import OuterState
from bilevel.solvers.accbio import AccBiO
from bilevel.solvers.aid_bio import AIDBiO, AIDBiOState
from bilevel.solvers.itd_bio import ITDBiO, ITDBiOState
from bilevel.solvers.minimax_gda import MinimaxGDA, MinimaxState
from bilevel.solvers.oracles import OracleCounts, SecondOrderOracle, outer_gradients
from bilevel.solvers.stocbio_bio import StocBiO


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


@dataclass(frozen=True)
class AIDBiOStaleInnerIterate(AIDBiO):
    """AID-BiO whose hypergradient is taken at the inner iterate *before* this iteration's D
    inner steps (the stale y), while y itself is updated."""

    def step(self, state: AIDBiOState) -> AIDBiOState:
        stale = state.y
        fresh = super().step(state)
        x, counts = state.x, fresh.counts
        grad_x_f, _ = outer_gradients(self.outer, x, stale, counts)
        oracle = SecondOrderOracle(self.inner, x, stale, counts)
        v = fresh.v
        x_next = x - self.outer_lr * (grad_x_f - oracle.mixed(v))
        return AIDBiOState(x_next, fresh.y, fresh.iteration, counts, v)


@dataclass(frozen=True)
class ITDBiOFirstOrderIgnored(ITDBiO):
    """FO-ITD-BiO whose ``first_order`` flag is not passed through: it runs full ITD-BiO."""

    def step(self, state: ITDBiOState) -> ITDBiOState:
        return ITDBiO.step(replace(self, first_order=False), state)


@dataclass(frozen=True)
class ITDBiOOuterStepRescaled(ITDBiO):
    """ITD-BiO whose outer step is divided by 1000 (a step size rescaled twice, e.g. by a batch
    size already folded into the loss)."""

    def step(self, state: ITDBiOState) -> ITDBiOState:
        return ITDBiO.step(replace(self, outer_lr=self.outer_lr / 1000), state)


@dataclass(frozen=True)
class StocBiOImplicitSignFlipped(StocBiO):
    """stocBiO adding the implicit term instead of subtracting it: grad_x f + (d^2 g/dx dy) v
    (the sign of d^2 g / dx dy dropped, a classic transcription bug)."""

    def step(self, state: OuterState) -> OuterState:
        after = super().step(state)
        estimate = (state.x - after.x) / self.outer_lr
        grad_x_f, _ = outer_gradients(
            lambda a, b: self.outer(a, b, None), state.x, after.y, OracleCounts()
        )
        flipped = 2 * grad_x_f - estimate
        return replace(after, x=state.x - self.outer_lr * flipped)


@dataclass(frozen=True)
class MinimaxGDAPenaltyNeverGrows(MinimaxGDA):
    """Multi-stage GDA whose penalty stays at lambda_0 (the stage update never applied)."""

    def penalty_at(self, stage: int) -> float:
        return self.penalty


@dataclass(frozen=True)
class MinimaxGDAUpdateIgnored(MinimaxGDA):
    """GDA that always alternates (x sees the new y, z), whatever ``update`` asks for."""

    def step(self, state: MinimaxState) -> MinimaxState:
        return MinimaxGDA.step(replace(self, update="alternating"), state)


@dataclass(frozen=True)
class MinimaxGDASingleStageUnitPenalty(MinimaxGDA):
    """ "Multi-stage" GDA run as one stage at lambda = 1 (penalty and schedule dropped)."""

    def init(self, x, y, z=None):
        return replace(super().init(x, y, z), penalty=1.0)

    def penalty_at(self, stage: int) -> float:
        return 1.0
