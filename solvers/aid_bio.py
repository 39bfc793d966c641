r"""AID-BiO: approximate implicit differentiation with warm starts (Ji, Yang & Liang, ICML 2021,
Algorithm 1; spec 6.2).

For k = 0, 1, ...:

    y^0 = y_{k-1}^D (warm start; y_0 given),  y^t = y^{t-1} - alpha grad_y g(x_k, y^{t-1}),  t = 1..D
    v_k = N steps of CG (or of the Neumann / fixed-point iteration) on H v = grad_y f(x_k, y^D),
          H = d^2 g/dy^2 (x_k, y^D), from v_{k-1} (warm start) or from 0
    ghat_k = grad_x f(x_k, y^D) - (d^2 g / dx dy)(x_k, y^D) v_k
    x_{k+1} = x_k - beta ghat_k

Loop schemes (Ji, Yang & Liang, NeurIPS 2022; spec 6.5): ``inner_steps`` and ``solver_steps``
may be functions of k (a loop growing with the precision, "Q") or constants with warm starts
("N"); ``warm_start_y`` / ``warm_start_v`` switch the warm starts of y and v. N-N is the single-loop
method (D and N small constants, both warm), Q-Q grows both from cold starts.

Theorem [recall]: alpha <= 1/L, D = Theta(kappa), N = Theta(sqrt(kappa)), beta = Theta(1/L_Phi)
give (1/K) sum ||grad Phi(x_k)||^2 = O(kappa^3 / K) (registry entries ``aid-bio/*``).
x and y are tensors or trees of tensors (the ``OuterAlgorithm`` protocol).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from . import linear_solvers, refinement
from ._flat import check_finite, check_step_size, check_steps
from ._outer import OuterAlgorithm, OuterState, check_objectives
from .linear_solvers import check_terms_contract
from .oracles import SecondOrderOracle, inner_descent, outer_gradients
from .stability import Smoothness, check_inner_and_outer_steps

Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
SOLVERS = ("cg", "neumann")


@dataclass
class AIDBiOState(OuterState):
    """The outer state plus v, the linear-system solution kept for warm starts."""

    v: torch.Tensor | None = None


@dataclass(frozen=True, kw_only=True)
class AIDBiO(OuterAlgorithm):
    """The algorithm with its hyper-parameters (``inner_steps`` = D, ``solver_steps`` = N)."""

    outer: Objective
    inner: Objective
    inner_steps: int | Callable[[int], int]
    inner_lr: float
    outer_lr: float
    solver: str = "cg"
    solver_steps: int | Callable[[int], int] = 10
    solver_lr: float | None = None  # the Neumann step eta (default: inner_lr)
    warm_start_v: bool = True
    warm_start_y: bool = True
    smoothness: Smoothness | None = None  # L_g, L_Phi: steps checked against 2/L
    #: with ``solver="cg"``: CG in this coarser dtype, refined by working-precision residuals
    #: (``bilevel.solvers.refinement``), e.g. ``torch.float32`` for float64 problems
    low_precision: torch.dtype | None = None

    def __post_init__(self) -> None:
        check_objectives(self.outer, self.inner, 2, "AIDBiO")
        _steps_at(self.inner_steps, 0, "inner_steps")
        _steps_at(self.solver_steps, 0, "solver_steps")
        check_step_size(self.inner_lr, "inner_lr")
        check_step_size(self.outer_lr, "outer_lr")
        if self.solver not in SOLVERS:
            raise ValueError(f"unknown solver {self.solver!r}; choose one of {SOLVERS}")
        if self.solver_lr is not None:
            check_step_size(self.solver_lr, "solver_lr")
        if self.low_precision is not None and self.solver != "cg":
            raise ValueError(f"low_precision applies to solver='cg', not {self.solver!r}")
        neumann_lr = (self.solver_lr or self.inner_lr) if self.solver == "neumann" else None
        check_inner_and_outer_steps(
            self.smoothness,
            {"inner_lr": self.inner_lr, "solver_lr (Neumann eta)": neumann_lr},
            {"outer_lr": self.outer_lr},
        )

    def init_vectors(self, x: torch.Tensor, y: torch.Tensor) -> AIDBiOState:
        if self.low_precision is not None:
            refinement.check_low_precision(self.low_precision, y.dtype)
        return AIDBiOState(x.detach().clone(), y.detach().clone(), v=torch.zeros_like(y))

    def step_vectors(self, state: AIDBiOState) -> AIDBiOState:
        """One outer iteration (the module docstring's update), oracle calls counted."""
        x, counts, k = state.x, state.counts, state.iteration
        y = state.y if self.warm_start_y else torch.zeros_like(state.y)
        solver_steps = _steps_at(self.solver_steps, k, "solver_steps")
        y = inner_descent(
            self.inner, x, y, self.inner_lr, _steps_at(self.inner_steps, k, "inner_steps"), counts
        )
        check_finite(y, "AID-BiO inner iterate y", state.iteration, "inner_lr above 2 / L")
        grad_x_f, grad_y_f = outer_gradients(self.outer, x, y, counts)
        oracle = SecondOrderOracle(self.inner, x, y, counts)
        v0 = state.v if self.warm_start_v else None
        try:
            if self.solver == "cg" and self.low_precision is not None:
                v = refinement.refined_conjugate_gradient(
                    oracle, self.inner, x, y, self.low_precision, grad_y_f, solver_steps, v0, 0.0
                )
            elif self.solver == "cg":
                v = linear_solvers.conjugate_gradient(oracle, grad_y_f, solver_steps, v0, 0.0)
            else:
                eta = self.solver_lr or self.inner_lr
                v = _neumann_from(oracle, grad_y_f, solver_steps, eta, v0)
        except FloatingPointError as exc:
            norms = {
                n: float(torch.linalg.vector_norm(t))
                for n, t in (("x", x), ("y", y), ("grad_y f", grad_y_f))
            }
            sizes = ", ".join(f"||{n}|| = {v:.3g}" for n, v in norms.items())
            huge = max(norms["x"], norms["y"]) > 1e100
            cause = ": iterates this large mean that outer_lr or inner_lr is far too large"
            raise FloatingPointError(
                f"{exc} (AID-BiO iteration {k}, {sizes}{cause if huge else ''})"
            ) from exc
        estimate = grad_x_f - oracle.mixed(v)
        x_next = x - self.outer_lr * estimate
        check_finite(
            x_next, "AID-BiO outer iterate x", state.iteration + 1, "outer_lr above 2 / L_Phi"
        )
        return AIDBiOState(x_next, y, state.iteration + 1, counts, v)


def _neumann_from(oracle, b, steps, lr, v0):
    """N steps of the fixed-point iteration v <- v - eta (H v - b) from v0 (0: the Neumann sum)."""
    v = torch.zeros_like(b) if v0 is None else v0.clone()
    first = last = None
    for _ in range(steps):
        last = oracle.hvp(v) - b  # the residual r_k = (I - eta H)^k r_0: never longer than r_0
        first = last if first is None else first
        v = v - lr * last
    if steps > 1:
        # a warm-started residual can start at the rounding level of H v - b, where it wobbles:
        # growth below 1e3 eps ||b|| is rounding, not divergence
        floor = 1e3 * torch.finfo(b.dtype).eps * float(torch.linalg.vector_norm(b))
        check_terms_contract(first, last, steps, "AID-BiO's fixed-point residual H v - b", floor)
    return v


def _steps_at(steps: int | Callable[[int], int], k: int, name: str) -> int:
    """The step count at outer iteration k (a constant, or a schedule k -> count)."""
    return check_steps(steps(k) if callable(steps) else steps, f"{name} (at iteration {k})")
