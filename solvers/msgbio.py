r"""MSGBiO: momentum-based stochastic gradient bilevel method for a Polyak-Lojasiewicz lower
level (Huang, arXiv:2303.03944; spec 3.3). Huang's usual template (BiAdam), a [substitute]:

    y_{t+1} = y_t - eta_t lam u_t,   v_{t+1} = Proj_{r_v}(v_t - eta_t tau p_t),
    x_{t+1} = x_t - eta_t gamma m_t,

then, on a fresh minibatch xi_{t+1}, with beta_{t+1} = c eta_t (clipped at 1) the momentum
estimators of grad_y g, of the v-residual S[H] v - grad_y f and of the surrogate direction
w = grad_x f - (d^2 g/dx dy) v:

    u_{t+1} = (1 - beta_{t+1}) u_t + beta_{t+1} grad_y g(x_{t+1}, y_{t+1}; xi_{t+1})   (same for p, m)

with eta_t = k / (m0 + t)^(1/2). Claimed [abs]: O~(eps^-4) samples for E||grad F|| <= eps
(registry ``msgbio/samples``). ``VRMSGBiO`` (``vr_msgbio``) swaps the estimators for
STORM and the schedule for eta_t = k / (m0 + t)^(1/3), beta_{t+1} = c eta_t^2.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ._flat import check_finite, check_step_size
from ._outer import OuterAlgorithm, OuterState, check_generator, check_objectives
from ._pl_surrogate import grad_y_inner, project_ball, residual_and_direction
from .oracles import OracleCounts

Batched = Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor]


@dataclass
class MomentumState(OuterState):
    v: torch.Tensor | None = None
    u: torch.Tensor | None = None  # estimator of grad_y g
    p: torch.Tensor | None = None  # estimator of the v-residual
    m: torch.Tensor | None = None  # estimator of the surrogate direction


@dataclass(frozen=True, kw_only=True)
class MSGBiO(OuterAlgorithm):
    outer: Batched
    inner: Batched
    sampler: Callable[[torch.Generator], Any]
    generator: torch.Generator
    inner_lr: float  # lam
    solver_lr: float  # tau
    outer_lr: float  # gamma
    schedule_k: float = 1.0
    schedule_m: float = 1.0
    schedule_c: float = 1.0
    radius: float | None = None
    clip: float | None = None

    batched = True
    power = 0.5  # eta_t = k / (m0 + t)^power
    name = "MSGBiO"

    def __post_init__(self) -> None:
        check_objectives(self.outer, self.inner, 3, self.name)
        check_generator(self.generator)
        for value, name in (
            (self.inner_lr, "inner_lr"),
            (self.solver_lr, "solver_lr"),
            (self.outer_lr, "outer_lr"),
            (self.schedule_k, "schedule_k"),
            (self.schedule_m, "schedule_m"),
            (self.schedule_c, "schedule_c"),
        ):
            check_step_size(value, name)
        if self.eta(0) > 1:
            raise ValueError(f"eta_0 = k / m0^{self.power} = {self.eta(0):g} must be <= 1")
        if self.beta(1) > 1:
            raise ValueError(
                f"beta_1 = {self.beta(1):g} > 1: the momentum weight must lie in (0, 1]; "
                "lower schedule_c or raise schedule_m"
            )

    def eta(self, t: int) -> float:
        return self.schedule_k / (self.schedule_m + t) ** self.power

    def beta(self, t: int) -> float:
        """beta_t = c eta_{t-1}."""
        return self.schedule_c * self.eta(t - 1)

    def init_vectors(self, x: torch.Tensor, y: torch.Tensor) -> MomentumState:
        x, y = x.detach().clone(), y.detach().clone()
        v, counts = torch.zeros_like(y), OracleCounts()
        batch = self.sampler(self.generator)
        u = grad_y_inner(self.inner, x, y, batch, counts)
        p, m = residual_and_direction(self.outer, self.inner, x, y, v, batch, counts, self.clip)
        return MomentumState(x, y, 0, counts, v, u, p, m)

    def step_vectors(self, state: MomentumState) -> MomentumState:
        t, counts = state.iteration, state.counts
        eta = self.eta(t)
        y = state.y - eta * self.inner_lr * state.u
        v = project_ball(state.v - eta * self.solver_lr * state.p, self.radius)
        x = state.x - eta * self.outer_lr * state.m
        for value, name in ((x, "x"), (y, "y"), (v, "v")):
            check_finite(value, f"{self.name} iterate {name}", t + 1, "a step size too large")
        batch = self.sampler(self.generator)
        u_new = grad_y_inner(self.inner, x, y, batch, counts)
        p_new, m_new = residual_and_direction(
            self.outer, self.inner, x, y, v, batch, counts, self.clip
        )
        u, p, m = self._estimators(state, (x, y, v), (u_new, p_new, m_new), batch, t + 1)
        return MomentumState(x, y, t + 1, counts, v, u, p, m)

    def _estimators(self, state, point, fresh, batch, t: int) -> tuple:
        """Momentum: (1 - beta) old + beta fresh."""
        beta = self.beta(t)
        old = (state.u, state.p, state.m)
        return tuple((1 - beta) * o + beta * f for o, f in zip(old, fresh, strict=True))
