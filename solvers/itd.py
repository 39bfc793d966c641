r"""Iterative differentiation (ITD): reverse mode through T steps of inner gradient descent.

y_{t+1} = y_t - alpha grad_y g(x, y_t), t = 0..T-1, from y_0 = ``y`` held constant in x; the
estimate is d/dx f(x, y_T(x)) [Maclaurin et al. 2015; Franceschi et al. 2017; Ji et al. 2021,
ITD-BiO; spec 6.3, 7.3]. With ``checkpoint=True`` each step is recomputed in the backward pass
(``torch.utils.checkpoint``), so only the T iterates y_t are stored, not T autograd graphs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.checkpoint import checkpoint as torch_checkpoint

from ._flat import check_finite
from .oracles import OracleCounts


def itd_hypergradient(
    outer: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    inner: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    lr: float,
    counts: OracleCounts,
    checkpoint: bool = False,
) -> torch.Tensor:
    """d/dx f(x, y_T(x)) by reverse mode; x, y flat vectors; returns a flat vector like x."""

    def gd_step(x_: torch.Tensor, y_: torch.Tensor) -> torch.Tensor:
        y_in = y_ if y_.requires_grad else y_.detach().requires_grad_(True)
        (grad_y,) = torch.autograd.grad(inner(x_, y_in), y_in, create_graph=True)
        return y_in - lr * grad_y

    with torch.enable_grad():
        x_req = x.detach().requires_grad_(True)
        y_t = y.detach()
        for t in range(steps):
            if checkpoint:
                y_t = torch_checkpoint(gd_step, x_req, y_t, use_reentrant=False)
            else:
                y_t = gd_step(x_req, y_t)
            check_finite(y_t, "ITD inner iterate y_t", t + 1, "lr above 2 / L (GD diverges)")
        value = outer(x_req, y_t)
        (result,) = torch.autograd.grad(value, x_req)
    counts.grad_inner += steps
    counts.grad_outer += 1
    counts.hvp += steps  # the backward pass through each step costs one HVP ...
    counts.mixed += steps  # ... and one mixed product
    return result
