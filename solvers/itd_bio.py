r"""ITD-BiO and FO-ITD-BiO (Ji, Yang & Liang, ICML 2021; spec 6.3).

For k = 0, 1, ...: from y^0 (warm start: the previous y^D, held constant in x),
y^t = y^{t-1} - alpha grad_y g(x_k, y^{t-1}), t = 1..D, then

- ITD-BiO: ghat_k = d f(x_k, y^D(x_k)) / d x_k by reverse mode through the D steps
  (``bilevel.solvers.itd``; ``checkpoint`` = True, k, ``"auto"``, ``"sqrt"``, ``"binomial"`` or
  ``BinomialCheckpoints(slots=c)`` trades inner gradients for memory);
- FO-ITD-BiO (``first_order=True``): ghat_k = grad_x f(x_k, y^D), the inner Jacobian dropped; its
  bias -B^T A^-1 g* on quadratics does not vanish as D grows (registry ``fo-itd/bias``),

and x_{k+1} = x_k - beta ghat_k. Theorem [recall]: D = Theta(kappa log(1/eps)),
beta = Theta(1/L_Phi), K = O(kappa^3 / eps) (registry ``itd-bio/*``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ._flat import check_finite, check_step_size, check_steps
from ._outer import OuterAlgorithm, OuterState, check_objectives
from .itd import check_checkpoint, itd_hypergradient_and_iterate
from .oracles import inner_descent, outer_gradients
from .revolve import BinomialCheckpoints
from .stability import Smoothness, check_inner_and_outer_steps

Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


ITDBiOState = OuterState  # x, y, iteration, counts


@dataclass(frozen=True, kw_only=True)
class ITDBiO(OuterAlgorithm):
    """ITD-BiO (or FO-ITD-BiO with ``first_order=True``); ``inner_steps`` = D."""

    outer: Objective
    inner: Objective
    inner_steps: int
    inner_lr: float
    outer_lr: float
    first_order: bool = False
    checkpoint: bool | int | str | BinomialCheckpoints = False  # see bilevel.solvers.itd
    warm_start_y: bool = True
    smoothness: Smoothness | None = None  # L_g, L_Phi: steps checked against 2/L

    def __post_init__(self) -> None:
        check_objectives(self.outer, self.inner, 2, "ITDBiO")
        check_steps(self.inner_steps, "inner_steps")
        check_step_size(self.inner_lr, "inner_lr")
        check_step_size(self.outer_lr, "outer_lr")
        check_checkpoint(self.checkpoint, self.inner_steps)
        if self.first_order and self.checkpoint is not False:
            raise ValueError("checkpoint applies to ITD-BiO's reverse pass, not to FO-ITD-BiO")
        check_inner_and_outer_steps(
            self.smoothness, {"inner_lr": self.inner_lr}, {"outer_lr": self.outer_lr}
        )

    def init_vectors(self, x: torch.Tensor, y: torch.Tensor) -> ITDBiOState:
        return ITDBiOState(x.detach().clone(), y.detach().clone())

    def step_vectors(self, state: ITDBiOState) -> ITDBiOState:
        x, counts = state.x, state.counts
        y0 = state.y if self.warm_start_y else state.y.new_zeros(state.y.shape)
        if self.first_order:
            y = inner_descent(self.inner, x, y0, self.inner_lr, self.inner_steps, counts)
            check_finite(y, "FO-ITD-BiO inner iterate y", state.iteration, "inner_lr above 2/L")
            estimate, _ = outer_gradients(self.outer, x, y, counts)
        else:
            estimate, y = itd_hypergradient_and_iterate(
                self.outer,
                self.inner,
                x,
                y0,
                self.inner_steps,
                self.inner_lr,
                counts,
                self.checkpoint,
            )
        x_next = x - self.outer_lr * estimate
        check_finite(
            x_next, "ITD-BiO outer iterate x", state.iteration + 1, "outer_lr above 2 / L_Phi"
        )
        return ITDBiOState(x_next, y, state.iteration + 1, counts)
