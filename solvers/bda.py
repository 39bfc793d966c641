r"""BDA: Bi-level Descent Aggregation (Liu, Mu, Yuan, Zeng & Zhang, ICML 2020 and TPAMI 2023;
spec 5.2-5.3). No lower-level-singleton assumption.

In BDA's letters the upper objective is F (``outer``) and the lower one f (``inner``). For each
outer iteration, K aggregated inner steps from y_0 (the initial y; ``warm_start_y`` keeps the last
y_K instead):

    y_{k+1} = y_k - ( w_k s_u grad_y F(x, y_k) + l_k s_l grad_y f(x, y_k) ),   k = 0..K-1,

then x <- x - beta d F(x, y_K(x)) / dx. Schedules of (w_k, l_k):

- ``"harmonic"`` (the paper's condition: w_k -> 0, sum w_k = inf): w_k = a / (k + 1),
  l_k = 1 - w_k, with s_l in (0, 1/L_f] and s_u in (0, 2/(L_F + sigma)] [recall]; a = 0 is RHG;
- ``"geometric"`` (official code ``boml/lower_iter/aggr.py``, [code]): w_k = alpha decay^k and
  l_k = 1 - alpha with s_u = s_l = lr (``inner_lr``). sum w_k < inf, so on the non-singleton counterexample it
  stalls at x = 1/(1 + c^2), c = prod_k (1 - lr alpha decay^k) (``bilevel.analysis.bda``).

Hypergradient (``gradient``):

- ``"reverse"``: reverse-mode differentiation through the K aggregated steps (as RHG / ITD);
- ``"one-stage"`` (TPAMI's "one-stage technique", form [substitute] after BOAT's ``na_ol/fd.py``):
  differentiate the last step only, with the mixed product by a symmetric finite difference,
  grad phi ~ grad_x F(x, y_K) - (grad_x l(x, y_K + eps v) - grad_x l(x, y_K - eps v)) / (2 eps),
  l = w_{K-1} s_u F + l_{K-1} s_l f the last step's aggregated loss, v = grad_y F(x, y_K),
  eps = r / ||v||. Cost: 2 gradients instead of a K-step reverse pass; memory O(1) in K.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ._flat import check_finite, check_step_size, check_steps
from ._outer import OuterAlgorithm, OuterState, check_objectives
from .oracles import scalar

Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
SCHEDULES = ("harmonic", "geometric")
GRADIENTS = ("reverse", "one-stage")


@dataclass
class BDAState(OuterState):
    y0: torch.Tensor | None = None  # the start of every inner loop (unless warm-started)


@dataclass(frozen=True, kw_only=True)
class BDA(OuterAlgorithm):
    """``outer`` = F (upper), ``inner`` = f (lower); ``inner_steps`` = K; ``aggregation`` is
    a (harmonic) or alpha (geometric)."""

    outer: Objective
    inner: Objective
    inner_steps: int
    upper_lr: float  # s_u (the geometric schedule uses inner_lr for both: the code's lr)
    inner_lr: float  # s_l
    outer_lr: float  # beta
    aggregation: float = 1.0
    schedule: str = "harmonic"
    decay: float = 0.9
    gradient: str = "reverse"
    fd_radius: float = 0.01
    warm_start_y: bool = False

    def __post_init__(self) -> None:
        check_objectives(self.outer, self.inner, 2, "BDA")
        check_steps(self.inner_steps, "inner_steps")
        for value, name in (
            (self.upper_lr, "upper_lr"),
            (self.inner_lr, "inner_lr"),
            (self.outer_lr, "outer_lr"),
            (self.fd_radius, "fd_radius"),
        ):
            check_step_size(value, name)
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose one of {SCHEDULES}")
        if self.gradient not in GRADIENTS:
            raise ValueError(f"unknown gradient {self.gradient!r}; choose one of {GRADIENTS}")
        if not 0 <= self.aggregation <= 1:
            raise ValueError(f"aggregation (a or alpha) must lie in [0, 1], got {self.aggregation}")
        if not 0 < self.decay < 1:
            raise ValueError(f"decay must lie in (0, 1), got {self.decay}")

    def weights(self) -> list[tuple[float, float, float, float]]:
        """(w_k, s_u, l_k, s_l) for k = 0..K-1."""
        K = self.inner_steps
        if self.schedule == "harmonic":
            a = self.aggregation
            return [(a / (k + 1), self.upper_lr, 1 - a / (k + 1), self.inner_lr) for k in range(K)]
        alpha, lr = self.aggregation, self.inner_lr
        return [(alpha * self.decay**k, lr, 1 - alpha, lr) for k in range(K)]

    def init_vectors(self, x: torch.Tensor, y: torch.Tensor) -> BDAState:
        return BDAState(x.detach().clone(), y.detach().clone(), y0=y.detach().clone())

    def step_vectors(self, state: BDAState) -> BDAState:
        """One outer iteration: K aggregated steps, the hypergradient, the x-step."""
        start = state.y if self.warm_start_y else state.y0
        if self.gradient == "reverse":
            estimate, y_K = self._reverse(state.x, start, state.counts)
        else:
            estimate, y_K = self._one_stage(state.x, start, state.counts)
        x_next = state.x - self.outer_lr * estimate
        check_finite(x_next, "BDA outer iterate x", state.iteration + 1, "outer_lr too large")
        return BDAState(x_next, y_K, state.iteration + 1, state.counts, state.y0)

    # ------------------------------------------------------------------ internals
    def _aggregated_gradient(self, x, y, w, s_u, low, s_l, create_graph: bool) -> torch.Tensor:
        (grad_upper,) = torch.autograd.grad(
            scalar(self.outer(x, y), "outer"), y, create_graph=create_graph
        )
        (grad_lower,) = torch.autograd.grad(
            scalar(self.inner(x, y), "inner"), y, create_graph=create_graph
        )
        return w * s_u * grad_upper + low * s_l * grad_lower

    def _reverse(self, x: torch.Tensor, y0: torch.Tensor, counts) -> tuple:
        """d F(x, y_K(x)) / dx through the K steps (y_0 held constant in x)."""
        with torch.enable_grad():
            x_leaf = x.detach().requires_grad_(True)
            y = y0.detach().requires_grad_(True)
            for k, (w, s_u, low, s_l) in enumerate(self.weights()):
                y = y - self._aggregated_gradient(x_leaf, y, w, s_u, low, s_l, True)
                if not torch.isfinite(y).all():
                    raise FloatingPointError(
                        f"BDA inner iterate y became NaN/inf at step {k + 1}; likely cause: "
                        "upper_lr or inner_lr above 2/L"
                    )
            (estimate,) = torch.autograd.grad(
                scalar(self.outer(x_leaf, y), "outer"), x_leaf, allow_unused=True
            )
        K = self.inner_steps
        counts.grad_outer += K + 1
        counts.grad_inner += K
        counts.hvp += K  # the reverse pass: one Hessian-vector and one mixed product per step
        counts.mixed += K
        estimate = torch.zeros_like(x) if estimate is None else estimate
        return estimate.detach(), y.detach()

    def _one_stage(self, x: torch.Tensor, y0: torch.Tensor, counts) -> tuple:
        """The last step differentiated by a symmetric finite difference (module docstring)."""
        weights = self.weights()
        y = y0.detach()
        with torch.enable_grad():
            for k, (w, s_u, low, s_l) in enumerate(weights):
                y_leaf = y.detach().requires_grad_(True)
                y = y_leaf - self._aggregated_gradient(x, y_leaf, w, s_u, low, s_l, False)
                check_finite(y, "BDA inner iterate y", k + 1, "upper_lr or inner_lr above 2/L")
            y = y.detach()
            x_leaf = x.detach().requires_grad_(True)
            y_leaf = y.requires_grad_(True)
            grad_x, v = torch.autograd.grad(
                scalar(self.outer(x_leaf, y_leaf), "outer"), (x_leaf, y_leaf)
            )
            w, s_u, low, s_l = weights[-1]
            eps = self.fd_radius / max(float(torch.linalg.vector_norm(v)), 1e-300)

            def aggregated_grad_x(point: torch.Tensor) -> torch.Tensor:
                xl = x.detach().requires_grad_(True)
                loss = w * s_u * self.outer(xl, point) + low * s_l * self.inner(xl, point)
                (part,) = torch.autograd.grad(loss, xl, allow_unused=True)
                return torch.zeros_like(x) if part is None else part

            difference = aggregated_grad_x(y + eps * v) - aggregated_grad_x(y - eps * v)
        K = self.inner_steps
        counts.grad_outer += K + 3
        counts.grad_inner += K + 2
        return (grad_x - difference / (2 * eps)).detach(), y.detach()
