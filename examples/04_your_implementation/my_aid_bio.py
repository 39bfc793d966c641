"""Tutorial 4: your own AID-BiO, written from Ji, Yang & Liang's Algorithm 1, with the
constructor keywords of the registered ``AIDBiO`` (``bilevel verify --slots`` prints them), so
that ``bilevel verify --implementation aid-bio=my_aid_bio:MyAIDBiO`` runs every claim that
checks AID-BiO against it. ``MyAIDBiOWithABug`` is the same code with one slip.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from bilevel.solvers import OuterState, run_outer


def _grad(fn, x, y, wrt):
    """Gradient of fn(x, y) in x (wrt = 0) or y (wrt = 1), plain autograd."""
    with torch.enable_grad():
        x, y = x.detach().requires_grad_(True), y.detach().requires_grad_(True)
        return torch.autograd.grad(fn(x, y), (x, y)[wrt], allow_unused=True)[0]


def _hvp_and_mixed(inner, x, y, v):
    """(d^2 g / dy^2) v and (d^2 g / dx dy) v by double backward."""
    with torch.enable_grad():
        x, y = x.detach().requires_grad_(True), y.detach().requires_grad_(True)
        (g_y,) = torch.autograd.grad(inner(x, y), y, create_graph=True)
        hvp, mixed = torch.autograd.grad(g_y @ v, (y, x), allow_unused=True)
    return hvp, torch.zeros_like(x) if mixed is None else mixed


@dataclass
class MyState(OuterState):
    v: torch.Tensor | None = None


@dataclass(frozen=True)
class MyAIDBiO:
    outer: object
    inner: object
    inner_steps: int
    inner_lr: float
    outer_lr: float
    solver: str = "cg"
    solver_steps: int = 10
    solver_lr: float | None = None
    warm_start_v: bool = True
    warm_start_y: bool = True
    smoothness: object = None

    def init(self, x, y):
        return MyState(x.detach().clone(), y.detach().clone(), v=torch.zeros_like(y))

    def solve(self, x, y, b, v):
        """N steps of CG (or of v <- v - eta (H v - b)) on H v = b from v."""
        if self.solver != "cg":
            eta = self.solver_lr or self.inner_lr
            for _ in range(self.solver_steps):
                v = v - eta * (_hvp_and_mixed(self.inner, x, y, v)[0] - b)
            return v
        r = b - _hvp_and_mixed(self.inner, x, y, v)[0]
        p = r
        for _ in range(self.solver_steps):
            rr = float(r @ r)
            if rr == 0.0:
                break
            hp = _hvp_and_mixed(self.inner, x, y, p)[0]
            alpha = rr / float(p @ hp)
            v, r_next = v + alpha * p, r - alpha * hp
            p, r = r_next + (float(r_next @ r_next) / rr) * p, r_next
        return v

    def step(self, state):
        x, y = state.x, state.y if self.warm_start_y else torch.zeros_like(state.y)
        for _ in range(self.inner_steps):
            y = y - self.inner_lr * _grad(self.inner, x, y, 1)
        v0 = state.v if self.warm_start_v else torch.zeros_like(state.v)
        v = self.solve(x, y, _grad(self.outer, x, y, 1), v0)
        grad_x_f = _grad(self.outer, x, y, 0)
        grad_x_f = torch.zeros_like(x) if grad_x_f is None else grad_x_f
        estimate = grad_x_f - _hvp_and_mixed(self.inner, x, y, v)[1]
        counts = state.counts
        counts.grad_inner += self.inner_steps
        counts.grad_outer += 1
        counts.hvp += self.solver_steps
        counts.mixed += 1
        return MyState(x - self.outer_lr * estimate, y, state.iteration + 1, counts, v)

    def run(self, x, y, **budget_and_trace):
        return run_outer(self, x, y, **budget_and_trace)


@dataclass(frozen=True)
class MyAIDBiOWithABug(MyAIDBiO):
    """The slip: v is restarted from 0 at every outer step, although warm_start_v is on."""

    def step(self, state):
        return MyAIDBiO.step(self, replace(state, v=torch.zeros_like(state.v)))
