r"""MGBiO: momentum-based gradient bilevel method for a Polyak-Lojasiewicz lower level,
deterministic version (Huang, arXiv:2303.03944; spec 3.3). The update rules are Huang's usual
template (BiAdam / VR-BiAdam), a [substitute] the spec asks to check against the PDF; the
Hessian treatment (plain HVPs or spectral clipping ``clip``) is a parameter for that reason.

    y_{t+1} = y_t - lam grad_y g(x_t, y_t)                        (K times)
    v_{t+1} = Proj_{||v|| <= r_v}( v_t - tau (S[H_t] v_t - grad_y f(x_t, y_{t+1})) )
    w_{t+1} = grad_x f(x_t, y_{t+1}) - (d^2 g/dx dy)(x_t, y_{t+1}) v_{t+1}
    m_{t+1} = (1 - beta) m_t + beta w_{t+1}                     (m_1 = w_1)
    x_{t+1} = x_t - eta gamma m_{t+1}

Claimed [abs]: O(eps^-2) gradient complexity for ||grad F(x)|| <= eps (registry
``mgbio/gradients``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ._flat import check_finite, check_step_size, check_steps
from ._outer import OuterAlgorithm, OuterState, check_objectives
from ._pl_surrogate import surrogate_step
from .oracles import inner_descent
from .stability import Smoothness, check_inner_and_outer_steps

Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class MGBiOState(OuterState):
    v: torch.Tensor | None = None
    m: torch.Tensor | None = None


@dataclass(frozen=True, kw_only=True)
class MGBiO(OuterAlgorithm):
    outer: Objective
    inner: Objective
    inner_lr: float  # lam
    solver_lr: float  # tau
    outer_lr: float  # gamma
    averaging: float = 1.0  # eta
    momentum: float = 1.0  # beta in (0, 1]; 1: no momentum
    inner_steps: int = 1  # K
    radius: float | None = None  # r_v
    clip: float | None = None  # mu_c of S_mu[H]; None: plain HVPs
    smoothness: Smoothness | None = None

    def __post_init__(self) -> None:
        check_objectives(self.outer, self.inner, 2, "MGBiO")
        for value, name in (
            (self.inner_lr, "inner_lr"),
            (self.solver_lr, "solver_lr"),
            (self.outer_lr, "outer_lr"),
            (self.averaging, "averaging"),
        ):
            check_step_size(value, name)
        check_steps(self.inner_steps, "inner_steps")
        if not 0 < self.momentum <= 1:
            raise ValueError(f"momentum (beta) must lie in (0, 1], got {self.momentum}")
        if not 0 < self.averaging <= 1:
            raise ValueError(f"averaging (eta) must lie in (0, 1], got {self.averaging}")
        for value, name in ((self.radius, "radius"), (self.clip, "clip")):
            if value is not None:
                check_step_size(value, name)
        check_inner_and_outer_steps(
            self.smoothness,
            {"inner_lr": self.inner_lr, "solver_lr": self.solver_lr},
            {"outer_lr": self.outer_lr * self.averaging},
        )

    def init_vectors(self, x: torch.Tensor, y: torch.Tensor) -> MGBiOState:
        return MGBiOState(x.detach().clone(), y.detach().clone(), v=torch.zeros_like(y))

    def step_vectors(self, state: MGBiOState) -> MGBiOState:
        x, y, counts, k = state.x, state.y, state.counts, state.iteration
        outer = lambda a, b, _: self.outer(a, b)  # noqa: E731
        inner = lambda a, b, _: self.inner(a, b)  # noqa: E731
        y = inner_descent(self.inner, x, y, self.inner_lr, self.inner_steps, counts)
        check_finite(y, "MGBiO inner iterate y", k, "inner_lr above 2 / L_g")
        v, w = surrogate_step(
            outer, inner, x, y, state.v, self.solver_lr, self.radius, None, counts, self.clip
        )
        m = w if state.m is None else self.average(state.m, w)
        x_next = x - self.averaging * self.outer_lr * m
        check_finite(x_next, "MGBiO outer iterate x", k + 1, "outer_lr above 2 / L_F")
        return MGBiOState(x_next, y.detach(), k + 1, counts, v, m)

    def average(self, m: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """The momentum estimator m_{t+1} = (1 - beta) m_t + beta w_{t+1}."""
        return (1 - self.momentum) * m + self.momentum * w
