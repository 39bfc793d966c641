r"""AccBiO in its best-known form (Ji & Liang, JMLR 2023; spec 6.6). A RECONSTRUCTION: the
paper's constants and exact schedules were not retrieved (spec 6.6 marks it [substitute]).

Outer Nesterov acceleration on x with step beta = 1/L_Phi, inner accelerated GD on y, and CG
warm-started for v:

    inner (D steps, from the warm y):  y_{t+1} = w_t - alpha grad_y g(z_k, w_t),
                                        w_{t+1} = y_{t+1} + m_y (y_{t+1} - y_t),
    v_k = N CG steps on H v = grad_y f(z_k, y) from v_{k-1},
    x_{k+1} = z_k - beta (grad_x f(z_k, y) - (d^2 g/dx dy) v_k),
    z_{k+1} = x_{k+1} + m_k (x_{k+1} - x_k),

with m_y = (sqrt(kappa_y) - 1)/(sqrt(kappa_y) + 1) and, strongly convex Phi (``kappa_x``
given), m_k = (sqrt(kappa_x) - 1)/(sqrt(kappa_x) + 1), else (C-SC) m_k = (k - 1)/(k + 2).
Gradients are taken at the extrapolated point z_k; the trace reports x_k.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from . import linear_solvers
from ._flat import check_finite, check_step_size, check_steps
from ._outer import OuterAlgorithm, OuterState, check_objectives
from .oracles import SecondOrderOracle, inner_gradient, outer_gradients
from .stability import Smoothness, check_inner_and_outer_steps

Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class AccBiOState(OuterState):
    z: torch.Tensor | None = None  # the extrapolated outer point
    v: torch.Tensor | None = None  # the warm start of the linear system


def _momentum(condition_number: float) -> float:
    root = math.sqrt(condition_number)
    return (root - 1) / (root + 1)


@dataclass(frozen=True, kw_only=True)
class AccBiO(OuterAlgorithm):
    outer: Objective
    inner: Objective
    inner_steps: int
    inner_lr: float
    outer_lr: float
    kappa_y: float
    kappa_x: float | None = None  # None: convex Phi, momentum (k - 1)/(k + 2)
    solver_steps: int = 10
    smoothness: Smoothness | None = None  # inner_lr < 2/L_g, outer_lr <= 1/L_Phi

    def __post_init__(self) -> None:
        check_objectives(self.outer, self.inner, 2, "AccBiO")
        check_steps(self.inner_steps, "inner_steps")
        check_steps(self.solver_steps, "solver_steps")
        check_step_size(self.inner_lr, "inner_lr")
        check_step_size(self.outer_lr, "outer_lr")
        for value, name in ((self.kappa_y, "kappa_y"), (self.kappa_x, "kappa_x")):
            if value is not None and not 1 <= value < float("inf"):
                raise ValueError(
                    f"{name} is a condition number and must be finite and >= 1, got {value}"
                )
        check_inner_and_outer_steps(
            self.smoothness,
            {"inner_lr": self.inner_lr},
            {"outer_lr (Nesterov step)": self.outer_lr},
            outer_limit=1.0,
        )

    def init_vectors(self, x: torch.Tensor, y: torch.Tensor) -> AccBiOState:
        x = x.detach().clone()
        return AccBiOState(x, y.detach().clone(), z=x.clone(), v=torch.zeros_like(y))

    def step_vectors(self, state: AccBiOState) -> AccBiOState:
        z, counts, k = state.z, state.counts, state.iteration
        m_y = self.inner_momentum()
        y_prev = w = state.y
        for _ in range(self.inner_steps):
            y_next = w - self.inner_lr * inner_gradient(self.inner, z, w, counts)
            w, y_prev = y_next + m_y * (y_next - y_prev), y_next
        y = y_prev
        check_finite(y, "AccBiO inner iterate y", k, "inner_lr above 1 / L")
        grad_x_f, grad_y_f = outer_gradients(self.outer, z, y, counts)
        oracle = SecondOrderOracle(self.inner, z, y, counts)
        v = linear_solvers.conjugate_gradient(oracle, grad_y_f, self.solver_steps, state.v, 0.0)
        x_next = z - self.outer_lr * (grad_x_f - oracle.mixed(v))
        check_finite(x_next, "AccBiO outer iterate x", k + 1, "outer_lr above 1 / L_Phi")
        z_next = x_next + self.outer_momentum(k) * (x_next - state.x)
        return AccBiOState(x_next, y, k + 1, counts, z=z_next, v=v)

    def inner_momentum(self) -> float:
        """m_y = (sqrt(kappa_y) - 1)/(sqrt(kappa_y) + 1)."""
        return _momentum(self.kappa_y)

    def outer_momentum(self, k: int) -> float:
        """m_k = (sqrt(kappa_x) - 1)/(sqrt(kappa_x) + 1), or max((k - 1)/(k + 2), 0) (C-SC)."""
        return _momentum(self.kappa_x) if self.kappa_x is not None else max((k - 1) / (k + 2), 0.0)
