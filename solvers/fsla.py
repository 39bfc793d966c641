r"""FSLA, the fully single-loop algorithm (Li, Gu & Huang, AAAI 2022; benchmark_bilevel's
``solvers/fsla.py``; spec 6.5). One stochastic step of each variable per iteration, with one
fresh minibatch xi_k per iteration:

    y_{k+1} = y_k - alpha grad_y g(x_k, y_k; xi_k)
    v_{k+1} = v_k - alpha (H(x_k, y_{k+1}; xi_k) v_k - grad_y f(x_k, y_{k+1}; xi_k))
    d(x, y, v) = grad_x f(x, y; xi_k) - (d^2 g/dx dy)(x, y; xi_k) v
    m_{k+1} = d(x_k, y_{k+1}, v_{k+1}) + (1 - eta) (m_k - d(x_{k-1}, y_k, v_k))   (STORM, same xi_k)
    x_{k+1} = x_k - beta m_{k+1}

m_0 = d(x_0, y_1, v_1). Without noise the two d terms at the previous point coincide with the
previous direction, so m_k = d_k and FSLA is the single-loop (N-N) AID method.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ._flat import check_finite, check_step_size
from ._outer import OuterAlgorithm, OuterState, check_generator, check_objectives
from .oracles import OracleCounts, SecondOrderOracle, inner_gradient, outer_gradients
from .stability import Smoothness, check_inner_and_outer_steps

Batched = Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor]


@dataclass
class FSLAState(OuterState):
    v: torch.Tensor | None = None
    m: torch.Tensor | None = None  # the STORM direction
    previous: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None  # (x, y, v)


def _direction(outer, inner, x, y, v, counts: OracleCounts) -> torch.Tensor:
    grad_x_f, _ = outer_gradients(outer, x, y, counts)
    return grad_x_f - SecondOrderOracle(inner, x, y, counts).mixed(v)


@dataclass(frozen=True, kw_only=True)
class FSLA(OuterAlgorithm):
    outer: Batched
    inner: Batched
    sampler: Callable[[torch.Generator | None], Any]
    generator: torch.Generator
    inner_lr: float
    outer_lr: float
    momentum: float = 1.0  # eta in (0, 1]; 1 turns STORM off
    smoothness: Smoothness | None = None  # L_g, L_Phi: steps checked against 2/L

    batched = True

    def __post_init__(self) -> None:
        check_objectives(self.outer, self.inner, 3, "FSLA")
        check_step_size(self.inner_lr, "inner_lr")
        check_step_size(self.outer_lr, "outer_lr")
        if not 0 < self.momentum <= 1:
            raise ValueError(f"momentum (eta) must lie in (0, 1], got {self.momentum}")
        check_generator(self.generator)
        check_inner_and_outer_steps(
            self.smoothness, {"inner_lr": self.inner_lr}, {"outer_lr": self.outer_lr}
        )

    def init_vectors(self, x: torch.Tensor, y: torch.Tensor) -> FSLAState:
        return FSLAState(x.detach().clone(), y.detach().clone(), v=torch.zeros_like(y))

    def step_vectors(self, state: FSLAState) -> FSLAState:
        batch = self.sampler(self.generator)
        f = lambda a, b: self.outer(a, b, batch)  # noqa: E731
        g = lambda a, b: self.inner(a, b, batch)  # noqa: E731
        x, counts, k = state.x, state.counts, state.iteration
        y = state.y - self.inner_lr * inner_gradient(g, x, state.y, counts)
        grad_x_f, grad_y_f = outer_gradients(f, x, y, counts)
        oracle = SecondOrderOracle(g, x, y, counts)  # serves both the HVP and d's mixed product
        v = state.v - self.inner_lr * (oracle.hvp(state.v) - grad_y_f)
        d_new = grad_x_f - oracle.mixed(v)
        if state.m is None or self.momentum == 1.0:
            m = d_new
        else:
            d_old = _direction(f, g, *state.previous, counts)
            m = d_new + (1 - self.momentum) * (state.m - d_old)
        x_next = x - self.outer_lr * m
        check_finite(x_next, "FSLA outer iterate x", k + 1, "outer_lr or inner_lr too large")
        return FSLAState(x_next, y, k + 1, counts, v=v, m=m, previous=(x, y, v))
