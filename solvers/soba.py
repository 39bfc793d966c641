r"""SOBA, the stochastic bilevel algorithm (Dagreou, Ablin, Vaiter & Moreau, NeurIPS 2022,
"A framework for bilevel optimization that enables stochastic and global variance reduction
algorithms", Algorithm 1; the reference method of benchmark_bilevel, ``solvers/soba.py``).

A single loop: y, the linear-system variable v and x each take one stochastic step per
iteration, every direction evaluated at the current point (x_k, y_k, v_k), with one minibatch
xi_k for the inner objective's oracles and one zeta_k for the outer's:

    D_y = grad_y g(x_k, y_k; xi_k)
    D_v = H(x_k, y_k; xi_k) v_k - grad_y f(x_k, y_k; zeta_k)
    D_x = grad_x f(x_k, y_k; zeta_k) - (d^2 g / dx dy)(x_k, y_k; xi_k) v_k
    y_{k+1} = y_k - rho_k D_y,   v_{k+1} = v_k - rho_k D_v,   x_{k+1} = x_k - gamma_k D_x

(v here is the paper's -v: the hypergradient is grad_x f - (d^2 g/dx dy) v with v ~ H^-1 grad_y
f, the convention of every estimator in bilevel). ``inner_lr`` = rho_0 (y and v share it, as
in the paper), ``outer_lr`` = gamma_0; ``schedule="constant"`` keeps them (benchmark_bilevel's
experiments), ``"decreasing"`` uses the theorem's rho_k = rho_0 (k + 1)^(-2/5), gamma_k =
gamma_0 (k + 1)^(-3/5) (Theorem 1 [abs]: (1/K) sum E||grad h(x_k)||^2 = O(K^(-2/5))). Without
noise and with constant steps SOBA is an affine map of (x, y, v) on quadratics whose fixed point
is the stationary point of Phi (registry ``soba/stationary-point``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ._flat import check_finite, check_step_size
from ._outer import OuterAlgorithm, OuterState, check_generator, check_objectives
from .oracles import SecondOrderOracle, outer_gradients
from .stability import Smoothness, check_inner_and_outer_steps

Batched = Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor]
SCHEDULES = ("constant", "decreasing")


@dataclass
class SOBAState(OuterState):
    v: torch.Tensor | None = None  # the linear-system variable, v ~ H^-1 grad_y f


@dataclass(frozen=True, kw_only=True)
class SOBA(OuterAlgorithm):
    """``outer(x, y, batch)``, ``inner(x, y, batch)``; two batches per iteration (xi for g's
    oracles, zeta for f's), both drawn by ``sampler(generator)``."""

    outer: Batched
    inner: Batched
    sampler: Callable[[torch.Generator], Any]
    generator: torch.Generator
    inner_lr: float  # rho_0, the step of y and of v
    outer_lr: float  # gamma_0
    schedule: str = "constant"
    smoothness: Smoothness | None = None  # L_g, L_Phi: steps checked against 2/L

    batched = True

    def __post_init__(self) -> None:
        check_objectives(self.outer, self.inner, 3, "SOBA")
        check_step_size(self.inner_lr, "inner_lr")
        check_step_size(self.outer_lr, "outer_lr")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose one of {SCHEDULES}")
        check_generator(self.generator)
        check_inner_and_outer_steps(
            self.smoothness, {"inner_lr": self.inner_lr}, {"outer_lr": self.outer_lr}
        )

    def steps_at(self, k: int) -> tuple[float, float]:
        """(rho_k, gamma_k)."""
        if self.schedule == "constant":
            return self.inner_lr, self.outer_lr
        return self.inner_lr * (k + 1) ** -0.4, self.outer_lr * (k + 1) ** -0.6

    def init_vectors(self, x: torch.Tensor, y: torch.Tensor) -> SOBAState:
        return SOBAState(x.detach().clone(), y.detach().clone(), v=torch.zeros_like(y))

    def step_vectors(self, state: SOBAState) -> SOBAState:
        xi, zeta = self.sampler(self.generator), self.sampler(self.generator)
        x, y, v, counts, k = state.x, state.y, state.v, state.counts, state.iteration
        g = lambda a, b: self.inner(a, b, xi)  # noqa: E731
        f = lambda a, b: self.outer(a, b, zeta)  # noqa: E731
        oracle = SecondOrderOracle(g, x, y, counts)  # grad_y g as the by-product
        grad_x_f, grad_y_f = outer_gradients(f, x, y, counts)
        direction_y = oracle.grad_y_inner
        direction_v = oracle.hvp(v) - grad_y_f
        direction_x = grad_x_f - oracle.mixed(v)
        rho, gamma = self.steps_at(k)
        y_next, v_next = y - rho * direction_y, v - rho * direction_v
        x_next = x - gamma * direction_x
        for value, name in ((y_next, "y"), (v_next, "v"), (x_next, "x")):
            check_finite(value, f"SOBA iterate {name}", k + 1, "inner_lr or outer_lr above 2 / L")
        return SOBAState(x_next, y_next, k + 1, counts, v=v_next)
