r"""Wrong outer algorithms: subclasses of the registered classes (same constructor), each with
one realistic bug in the method it overrides. Test doubles for ``bilevel verify --mutants``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from bilevel.solvers import OuterState
from bilevel.solvers.accbio import AccBiO
from bilevel.solvers.aid_bio import AIDBiO, AIDBiOState
from bilevel.solvers.bda import BDA
from bilevel.solvers.fsla import FSLA
from bilevel.solvers.itd_bio import ITDBiO, ITDBiOState
from bilevel.solvers.mgbio import MGBiO, MGBiOState
from bilevel.solvers.minimax_gda import MinimaxGDA, MinimaxState
from bilevel.solvers.msgbio import MSGBiO
from bilevel.solvers.oracles import OracleCounts, SecondOrderOracle, outer_gradients
from bilevel.solvers.stocbio_bio import StocBiO
from bilevel.solvers.ufom import UFOMSGD
from bilevel.solvers.vr_msgbio import VRMSGBiO


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

    def step_vectors(self, state: AIDBiOState) -> AIDBiOState:
        stale = state.y
        fresh = super().step_vectors(state)
        x, counts = state.x, fresh.counts
        grad_x_f, _ = outer_gradients(self.outer, x, stale, counts)
        oracle = SecondOrderOracle(self.inner, x, stale, counts)
        v = fresh.v
        x_next = x - self.outer_lr * (grad_x_f - oracle.mixed(v))
        return AIDBiOState(x_next, fresh.y, fresh.iteration, counts, v)


@dataclass(frozen=True)
class ITDBiOFirstOrderIgnored(ITDBiO):
    """FO-ITD-BiO whose ``first_order`` flag is not passed through: it runs full ITD-BiO."""

    def step_vectors(self, state: ITDBiOState) -> ITDBiOState:
        return ITDBiO.step_vectors(replace(self, first_order=False), state)


@dataclass(frozen=True)
class ITDBiOOuterStepRescaled(ITDBiO):
    """ITD-BiO whose outer step is divided by 1000 (a step size rescaled twice, e.g. by a batch
    size already folded into the loss)."""

    def step_vectors(self, state: ITDBiOState) -> ITDBiOState:
        return ITDBiO.step_vectors(replace(self, outer_lr=self.outer_lr / 1000), state)


@dataclass(frozen=True)
class StocBiOImplicitSignFlipped(StocBiO):
    """stocBiO adding the implicit term instead of subtracting it: grad_x f + (d^2 g/dx dy) v
    (the sign of d^2 g / dx dy dropped, a classic transcription bug)."""

    def step_vectors(self, state: OuterState) -> OuterState:
        after = super().step_vectors(state)
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
class MinimaxGDAOuterStepRescaled(MinimaxGDA):
    """Multi-stage GDA whose x-step is divided by 100 (a step size rescaled twice, e.g. by a
    penalty already folded into the gradient)."""

    def step_vectors(self, state: MinimaxState) -> MinimaxState:
        return MinimaxGDA.step_vectors(replace(self, outer_lr=self.outer_lr / 100), state)


@dataclass(frozen=True)
class MinimaxGDAUpdateIgnored(MinimaxGDA):
    """GDA that always alternates (x sees the new y, z), whatever ``update`` asks for."""

    def step_vectors(self, state: MinimaxState) -> MinimaxState:
        return MinimaxGDA.step_vectors(replace(self, update="alternating"), state)


@dataclass(frozen=True)
class MinimaxGDASingleStageUnitPenalty(MinimaxGDA):
    """ "Multi-stage" GDA run as one stage at lambda = 1 (penalty and schedule dropped)."""

    def init_vectors(self, x, y):
        return replace(super().init_vectors(x, y), penalty=1.0)

    def penalty_at(self, stage: int) -> float:
        return 1.0


@dataclass(frozen=True)
class MGBiOHeavyBall(MGBiO):
    """MGBiO with heavy-ball accumulation m = (1 - beta) m + w for the exponential average."""

    def average(self, m: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return (1 - self.momentum) * m + w


@dataclass(frozen=True)
class MGBiOStaleV(MGBiO):
    """MGBiO whose surrogate direction is built from v_t instead of v_{t+1}."""

    def step_vectors(self, state: MGBiOState) -> MGBiOState:
        after = super().step_vectors(state)
        counts = OracleCounts()
        grad_x_f, _ = outer_gradients(self.outer, state.x, after.y, counts)
        w = grad_x_f - SecondOrderOracle(self.inner, state.x, after.y, counts).mixed(state.v)
        m = w if state.m is None else self.average(state.m, w)
        return replace(after, x=state.x - self.averaging * self.outer_lr * m, m=m)


@dataclass(frozen=True)
class MGBiOGradGInV(MGBiO):
    """MGBiO whose v-update solves against grad_y g instead of grad_y f (the two objectives'
    gradients swapped in the linear system)."""

    def step_vectors(self, state: MGBiOState) -> MGBiOState:
        swapped = replace(self, outer=lambda a, b: self.inner(a, b) + 0.0 * self.outer(a, b))
        after = MGBiO.step_vectors(swapped, state)
        counts = OracleCounts()
        grad_x_f, _ = outer_gradients(self.outer, state.x, after.y, counts)
        w = grad_x_f - SecondOrderOracle(self.inner, state.x, after.y, counts).mixed(after.v)
        m = w if state.m is None else self.average(state.m, w)
        return replace(after, x=state.x - self.averaging * self.outer_lr * m, m=m)


@dataclass(frozen=True)
class MSGBiOFullBatch(MSGBiO):
    """MSGBiO evaluating every oracle on the full data (batch None) instead of a minibatch."""

    def init_vectors(self, x, y):
        return MSGBiO.init_vectors(replace(self, sampler=lambda generator: None), x, y)

    def step_vectors(self, state):
        return MSGBiO.step_vectors(replace(self, sampler=lambda generator: None), state)


@dataclass(frozen=True)
class MSGBiOConstantStep(MSGBiO):
    """MSGBiO with a constant step eta_t = eta_0 (the decay schedule dropped)."""

    def eta(self, t: int) -> float:
        return self.schedule_k / self.schedule_m**self.power


@dataclass(frozen=True)
class VRMSGBiOFullBatch(VRMSGBiO):
    """VR-MSGBiO evaluating every oracle on the full data (batch None)."""

    def init_vectors(self, x, y):
        return VRMSGBiO.init_vectors(replace(self, sampler=lambda generator: None), x, y)

    def step_vectors(self, state):
        return VRMSGBiO.step_vectors(replace(self, sampler=lambda generator: None), state)


@dataclass(frozen=True)
class VRMSGBiOStormDropped(VRMSGBiO):
    """VR-MSGBiO whose STORM correction is dropped: plain momentum (1 - beta) old + beta fresh
    with the VR schedule."""

    def _estimators(self, state, point, fresh, batch, t: int) -> tuple:
        return MSGBiO._estimators(self, state, point, fresh, batch, t)


@dataclass(frozen=True)
class FSLAStormWeightSwapped(FSLA):
    """FSLA with STORM's weights swapped: m = d_new + eta (m - d_old) for (1 - eta)."""

    def step_vectors(self, state):
        return FSLA.step_vectors(replace(self, momentum=1 - self.momentum), state)


@dataclass(frozen=True)
class FSLAStormDropped(FSLA):
    """FSLA without its STORM correction (m = d_new): the single-loop AID direction."""

    def step_vectors(self, state):
        return FSLA.step_vectors(replace(self, momentum=1.0), state)


@dataclass(frozen=True)
class MGBiOMomentumIgnored(MGBiO):
    """MGBiO whose momentum parameter is ignored: m = w (no averaging)."""

    def average(self, m: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return w


@dataclass(frozen=True)
class MGBiOUncountedInner(MGBiO):
    """MGBiO that does not count its K inner gradients (an oracle under-count: an equal-budget
    comparison then grants it more iterations)."""

    def step_vectors(self, state: MGBiOState) -> MGBiOState:
        after = super().step_vectors(state)
        after.counts.grad_inner -= self.inner_steps
        return after


@dataclass(frozen=True)
class UFOMSGDMethodIgnored(UFOMSGD):
    """SGD with UFOM whose ``method`` is not passed to the estimator: FOM runs whatever is asked."""

    def step_vectors(self, state):
        return UFOMSGD.step_vectors(replace(self, method="fom"), state)


@dataclass(frozen=True)
class BDAAggregationIgnored(BDA):
    """BDA whose aggregation weight is not applied: w_k = 0, i.e. RHG on the lower level."""

    def weights(self):
        return [(0.0, s_u, 1.0, s_l) for _, s_u, _, s_l in super().weights()]


@dataclass(frozen=True)
class BDAHarmonicOffByOne(BDA):
    """BDA's harmonic weight a / (k + 2) for a / (k + 1) (the step index counted from 1)."""

    def weights(self):
        if self.schedule != "harmonic":
            return super().weights()
        a = self.aggregation
        return [
            (a / (k + 2), self.upper_lr, 1 - a / (k + 2), self.inner_lr)
            for k in range(self.inner_steps)
        ]


@dataclass(frozen=True)
class BDAGeometricOffByOne(BDA):
    """The official geometric schedule's upper weight alpha decay^(k+1) for alpha decay^k (the
    decay applied before the first step)."""

    def weights(self):
        if self.schedule != "geometric":
            return super().weights()
        return [(w * self.decay, s_u, low, s_l) for w, s_u, low, s_l in super().weights()]


@dataclass(frozen=True)
class BDAOneStageHalfDifference(BDA):
    """BDA's one-stage hypergradient dividing the central difference by eps, not 2 eps."""

    def step_vectors(self, state):
        after = super().step_vectors(state)
        if self.gradient != "one-stage":
            return after
        estimate = (state.x - after.x) / self.outer_lr
        with torch.enable_grad():
            x_leaf = state.x.detach().requires_grad_(True)
            (grad_x,) = torch.autograd.grad(self.outer(x_leaf, after.y), x_leaf)
        wrong = 2 * estimate - grad_x
        return replace(after, x=state.x - self.outer_lr * wrong)


class BDAOneStageForwardDifference(BDA):
    """BDA's one-stage hypergradient with a forward difference (grad_x l(y + eps v) -
    grad_x l(y)) / eps for the central one: O(eps) accurate instead of O(eps^2)."""

    def step_vectors(self, state):
        after = super().step_vectors(state)
        if self.gradient != "one-stage":
            return after
        w, s_u, low, s_l = self.weights()[-1]
        with torch.enable_grad():
            x_leaf = state.x.detach().requires_grad_(True)
            y_leaf = after.y.detach().requires_grad_(True)
            grad_x, v = torch.autograd.grad(self.outer(x_leaf, y_leaf), (x_leaf, y_leaf))
            eps = self.fd_radius / float(torch.linalg.vector_norm(v))

            def aggregated_grad_x(point):
                xl = state.x.detach().requires_grad_(True)
                loss = w * s_u * self.outer(xl, point) + low * s_l * self.inner(xl, point)
                return torch.autograd.grad(loss, xl)[0]

            difference = aggregated_grad_x(after.y + eps * v) - aggregated_grad_x(after.y)
        wrong = grad_x - difference / eps
        return replace(after, x=state.x - self.outer_lr * wrong)


class BDAOneStageRunsReverse(BDA):
    """BDA whose ``gradient="one-stage"`` is not passed on: reverse mode through all K steps
    runs (the right value on a quadratic, but K-step cost and O(K) memory)."""

    def step_vectors(self, state):
        return BDA.step_vectors(replace(self, gradient="reverse"), state)


@dataclass(frozen=True)
class StocBiONeumannTermShort(StocBiO):
    """stocBiO's Neumann sum with Q terms for Q + 1 (the paper's index read as 0..Q-1)."""

    def step_vectors(self, state):
        return StocBiO.step_vectors(
            replace(self, solver_steps=max(self.solver_steps - 1, 0)), state
        )


@dataclass(frozen=True)
class AIDBiOColdStartV(AIDBiO):
    """AID-BiO whose linear solver ignores the warm start of v (starts from 0 every time)."""

    def step_vectors(self, state: AIDBiOState) -> AIDBiOState:
        return AIDBiO.step_vectors(self, replace(state, v=torch.zeros_like(state.v)))
