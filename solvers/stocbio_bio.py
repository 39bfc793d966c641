r"""stocBiO, the outer algorithm (Ji, Yang & Liang, ICML 2021, Algorithm 2; spec 6.4).

For k = 0, 1, ...: from y^0 (warm start: the previous y^D),
y^t = y^{t-1} - alpha grad_y G(x_k, y^{t-1}; S_t), t = 1..D, each S_t a fresh minibatch, then
ghat_k = the stochastic Neumann hypergradient of ``bilevel.solvers.stocbio`` at (x_k, y^D)
(``variant="paper"``: a fresh batch per HVP, Q + 1 terms, bias factor (1 - eta mu)^(Q+1), registry
``stocbio/expectation-bias``; ``variant="reference_code"``: the official single-batch form, which
is not an estimate of H^-1 b, registry ``stocbio/reference-code-sum``), and
x_{k+1} = x_k - beta ghat_k. Every batch comes from ``sampler(generator)``: the run is a
deterministic function of the generator's seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ._flat import check_finite, check_step_size, check_steps
from ._outer import OuterAlgorithm, OuterState, check_generator, check_objectives
from .oracles import inner_gradient
from .stability import Smoothness, check_inner_and_outer_steps
from .stocbio import VARIANTS, stocbio_hypergradient

Batched = Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor]


StocBiOState = OuterState  # x, y, iteration, counts


@dataclass(frozen=True, kw_only=True)
class StocBiO(OuterAlgorithm):
    """``outer(x, y, batch)``, ``inner(x, y, batch)``; ``inner_steps`` = D, ``solver_steps`` = Q
    (``solver_lr`` = eta, the Neumann step)."""

    outer: Batched
    inner: Batched
    sampler: Callable[[torch.Generator | None], Any]
    generator: torch.Generator
    inner_steps: int
    inner_lr: float
    outer_lr: float
    solver_steps: int
    solver_lr: float
    variant: str = "paper"
    smoothness: Smoothness | None = None  # L_g, L_Phi: steps checked against 2/L

    def __post_init__(self) -> None:
        check_objectives(self.outer, self.inner, 3, "StocBiO")
        check_steps(self.inner_steps, "inner_steps")
        check_steps(self.solver_steps, "solver_steps")
        for value, name in (
            (self.inner_lr, "inner_lr"),
            (self.outer_lr, "outer_lr"),
            (self.solver_lr, "solver_lr"),
        ):
            check_step_size(value, name)
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown stocBiO variant {self.variant!r}; choose one of {VARIANTS}")
        check_generator(self.generator)
        check_inner_and_outer_steps(
            self.smoothness,
            {"inner_lr": self.inner_lr, "solver_lr (Neumann eta)": self.solver_lr},
            {"outer_lr": self.outer_lr},
        )

    batched = True

    def init_vectors(self, x: torch.Tensor, y: torch.Tensor) -> StocBiOState:
        return StocBiOState(x.detach().clone(), y.detach().clone())

    def step_vectors(self, state: StocBiOState) -> StocBiOState:
        x, y, counts = state.x, state.y, state.counts
        for _ in range(self.inner_steps):
            batch = self.sampler(self.generator)
            grad = inner_gradient(lambda a, b, batch=batch: self.inner(a, b, batch), x, y, counts)
            y = y - self.inner_lr * grad
        check_finite(y, "stocBiO inner iterate y", state.iteration, "inner_lr above 2 / L")
        estimate = stocbio_hypergradient(
            self.outer,
            self.inner,
            x,
            y,
            self.solver_steps,
            self.solver_lr,
            self.sampler,
            self.generator,
            self.variant,
            counts,
        )
        x_next = x - self.outer_lr * estimate
        check_finite(
            x_next, "stocBiO outer iterate x", state.iteration + 1, "outer_lr above 2 / L_Phi"
        )
        return StocBiOState(x_next, y, state.iteration + 1, counts)
