r"""FO-BLO (FOM) and its unbiased randomized correction UFOM (Likhosherstov, Song, Choromanski,
Davis & Weller, ICML 2021; spec 4), on the r-step approximate bilevel (meta-learning) problem.

For a task tau, phi_0 = theta and phi_{j+1} = phi_j - alpha grad l_tau(phi_j), j < r; the outer
objective is M(theta) = E_tau L_tau(phi_r(theta)). Per task:

    g_FO    = grad L_tau(phi_r)                                          (FOM, biased)
    g_exact = J_r^T g_FO,  u <- (I - alpha hess l_tau(phi_j)) u,  j = r-1..0   (backward HVPs)
    g_hat   = g_FO + (xi / q) (g_exact - g_FO),   xi ~ Bernoulli(q)      (UFOM, [code] UnbMAML)

so E[g_hat | tau] = g_exact. Cost in gradient-equivalent calls: C_det = r + 1 (r train
gradients and one test gradient) always, and on an exact draw C_rnd = r HVPs plus, with
``recompute=True`` (constant memory, the paper's accounting), r(r - 1)/2 train gradients that
rebuild phi_j from theta: C_rnd = r(r - 1)/2 + r. Expected cost C_det + q C_rnd.

``UFOMSGD`` is SGD on theta with Robbins-Monro steps gamma_k = gamma_0 / (k + 1) (the toy uses
gamma_0 = 10) and methods ``"fom"`` (q = 0), ``"exact"`` (q = 1), ``"ufom"`` (fixed q) and
``"ufom-adaptive"``: the official heuristic of ``UnbMAML`` (exact_prob < 0), labelled as such:
bias-corrected EMAs (beta = 0.99) of ||g_hat - g_exact||^2 (note: after debiasing, so it
estimates (1/q - 1)^2 D^2, not D^2) and ||g_exact||^2 on exact draws, D^2 divided by 10, and q
the positive root of C_rnd (V^2 - D^2) q^2 - C_rnd D^2 q - 2 C_det D^2 = 0 clipped to
[0.05, 1] (spec 4.3). Unbiasedness is proven for a fixed q only.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ._flat import check_finite, check_step_size, check_steps
from ._outer import Layout, OuterAlgorithm, OuterState, check_generator, run_outer
from .oracles import OracleCounts

Loss = Callable[[torch.Tensor, Any], torch.Tensor]  # loss(phi, task) for a flat phi
METHODS = ("fom", "exact", "ufom", "ufom-adaptive")


@dataclass(frozen=True)
class UFOMEstimate:
    """One task's estimate with its ingredients (``exact`` is None when not drawn)."""

    estimate: torch.Tensor
    first_order: torch.Tensor
    exact: torch.Tensor | None
    drawn: bool


def adapted(
    theta: torch.Tensor,
    train_loss: Loss,
    task: Any,
    steps: int,
    lr: float,
    counts: OracleCounts,
    keep: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """phi_steps: ``steps`` GD steps on the train loss from theta (counted as train gradients);
    each new iterate is appended to ``keep`` when a list is given."""
    phi = theta.detach()
    for _ in range(steps):
        phi = phi - lr * _grad(train_loss, phi, task)
        counts.grad_inner += 1
        if keep is not None:
            keep.append(phi)
    return phi


def ufom_estimate(
    theta: torch.Tensor,
    train_loss: Loss,
    test_loss: Loss,
    task: Any,
    *,
    steps: int,
    lr: float,
    q: float,
    generator: torch.Generator | None = None,
    xi: bool | None = None,
    recompute: bool = True,
    counts: OracleCounts | None = None,
) -> UFOMEstimate:
    """g_hat for one task (module docstring). ``xi`` forces the Bernoulli draw (tier-0
    enumeration); otherwise it is drawn from ``generator``. q = 0 is FOM and q = 1 exact."""
    check_steps(steps, "steps")
    check_step_size(lr, "lr")
    if not 0 <= q <= 1:
        raise ValueError(f"q must lie in [0, 1], got {q}")
    counts = OracleCounts() if counts is None else counts
    if xi is None:
        if generator is None and 0 < q < 1:
            raise ValueError("give a generator (or xi) to draw the Bernoulli(q) correction")
        xi = q == 1 or (q > 0 and bool(torch.rand((), generator=generator) < q))
    if xi and q == 0:
        raise ValueError("xi = 1 has probability 0 when q = 0")
    states = [theta.detach()] if xi and not recompute else None  # O(r) memory only if asked
    phi = adapted(theta, train_loss, task, steps, lr, counts, keep=states)
    first_order = _grad(test_loss, phi, task)
    counts.grad_outer += 1
    check_finite(first_order, "FOM gradient grad L(phi_r)", steps, "inner lr too large")
    if not xi:
        return UFOMEstimate(first_order, first_order, None, False)
    u = first_order
    for j in range(steps - 1, -1, -1):
        phi_j = adapted(theta, train_loss, task, j, lr, counts) if recompute else states[j]
        u = u - lr * _hvp(train_loss, phi_j, task, u)
        counts.hvp += 1
    check_finite(u, "exact meta-gradient J_r^T grad L", steps, "inner lr too large")
    return UFOMEstimate(first_order + (u - first_order) / q, first_order, u, True)


def expected_cost(q: float, steps: int, recompute: bool = True) -> float:
    """C_det + q C_rnd in gradient-equivalent calls (C_rnd = r(r-1)/2 + r with recompute)."""
    c_rnd = steps * (steps - 1) / 2 + steps if recompute else steps
    return steps + 1 + q * c_rnd


@dataclass
class AdaptiveQ:
    """The official UFOM-adaptive heuristic (``UnbMAML``, exact_prob < 0), as the code does it."""

    c_det: float
    c_rnd: float
    beta: float = 0.99
    q_min: float = 0.05
    _bias_ema: float = 0.0
    _norm_ema: float = 0.0
    _updates: int = 0

    @property
    def q(self) -> float:
        if self._updates == 0:
            return 1.0
        correction = 1 - self.beta**self._updates
        d2 = self._bias_ema / correction / 10.0
        v2 = self._norm_ema / correction
        if v2 <= d2 or d2 == 0:
            return 1.0 if d2 > 0 else self.q_min
        a, b, c = self.c_rnd * (v2 - d2), -self.c_rnd * d2, -2 * self.c_det * d2
        root = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
        return min(1.0, max(self.q_min, root))

    def update(self, result: UFOMEstimate) -> None:
        if not result.drawn:
            return
        self._bias_ema = self.beta * self._bias_ema + (1 - self.beta) * float(
            torch.sum((result.estimate - result.exact) ** 2)
        )
        self._norm_ema = self.beta * self._norm_ema + (1 - self.beta) * float(
            torch.sum(result.exact**2)
        )
        self._updates += 1


@dataclass
class UFOMState(OuterState):
    exact_draws: int = 0
    adaptive: AdaptiveQ | None = None
    q_history: tuple[float, ...] = ()


@dataclass(frozen=True, kw_only=True)
class UFOMSGD(OuterAlgorithm):
    """SGD on theta (``x``; there is no lower-level variable: ``y`` is None) with the
    ``method`` estimator: ``inner(phi, task)`` is the task's training (adaptation) loss,
    ``outer(phi, task)`` its test loss, ``inner_steps`` = r, ``inner_lr`` = alpha, ``outer_lr``
    = gamma_0 in gamma_k = gamma_0 / (k + 1), ``meta_batch`` tasks per step."""

    inner: Loss
    outer: Loss
    sampler: Callable[[torch.Generator], Any]  # one task per call
    generator: torch.Generator
    inner_steps: int  # r
    inner_lr: float  # alpha
    outer_lr: float  # gamma_0 in gamma_k = gamma_0 / (k + 1)
    method: str = "ufom"
    q: float = 0.1
    meta_batch: int = 1
    recompute: bool = True
    meta_objective: Callable[[Any], torch.Tensor] | None = None  # M(theta), for the trace

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {METHODS}")
        for fn, name in ((self.inner, "inner"), (self.outer, "outer"), (self.sampler, "sampler")):
            if not callable(fn):
                raise TypeError(f"UFOMSGD: {name} must be callable")
        check_steps(self.inner_steps, "inner_steps")
        check_steps(self.meta_batch, "meta_batch")
        if self.meta_batch < 1:
            raise ValueError(f"meta_batch (tasks per step) must be >= 1, got {self.meta_batch}")
        check_step_size(self.inner_lr, "inner_lr")
        check_step_size(self.outer_lr, "outer_lr")
        if self.method == "ufom" and not 0 < self.q <= 1:
            raise ValueError(f"UFOM needs q in (0, 1], got {self.q} (q = 0 is method='fom')")
        check_generator(self.generator)

    def value(self, state: UFOMState) -> torch.Tensor:
        """M(theta) for the trace when ``meta_objective`` is given, else NaN."""
        if self.meta_objective is None:
            return torch.tensor(float("nan"))
        return self.meta_objective(state.x)

    def vector_objectives(self, layout: Layout) -> dict[str, Callable]:
        def on_vector(loss: Loss) -> Loss:
            return lambda phi, task: loss(layout.x.unflatten(phi), task)

        return {"inner": on_vector(self.inner), "outer": on_vector(self.outer)}

    def init(self, x: Any, y: None = None) -> UFOMState:
        if y is not None:
            raise ValueError("UFOMSGD has no lower-level variable: call init(theta) (y is None)")
        return super().init(x, None)

    def init_vectors(self, x: torch.Tensor, y: torch.Tensor) -> UFOMState:
        adaptive = None
        if self.method == "ufom-adaptive":
            r = self.inner_steps
            c_rnd = r * (r - 1) / 2 + r if self.recompute else r
            adaptive = AdaptiveQ(c_det=r + 1, c_rnd=c_rnd)
        return UFOMState(x.detach().clone(), y, adaptive=adaptive)

    def current_q(self, state: UFOMState) -> float:
        """q of the next step: 0 (FOM), 1 (exact), the fixed q, or the adaptive heuristic's."""
        if self.method == "ufom-adaptive":
            return state.adaptive.q
        return {"fom": 0.0, "exact": 1.0, "ufom": self.q}[self.method]

    def step_vectors(self, state: UFOMState) -> UFOMState:
        q = self.current_q(state)
        adaptive = None if state.adaptive is None else copy.copy(state.adaptive)
        total = torch.zeros_like(state.x)
        draws = 0
        for _ in range(self.meta_batch):
            task = self.sampler(self.generator)
            result = ufom_estimate(
                state.x,
                self.inner,
                self.outer,
                task,
                steps=self.inner_steps,
                lr=self.inner_lr,
                q=q,
                generator=self.generator,
                recompute=self.recompute,
                counts=state.counts,
            )
            if adaptive is not None:
                adaptive.update(result)
            total = total + result.estimate
            draws += result.drawn
        gamma = self.outer_lr / (state.iteration + 1)
        x_next = state.x - gamma * total / self.meta_batch
        check_finite(x_next, "UFOM-SGD iterate theta", state.iteration + 1, "outer_lr too large")
        return UFOMState(
            x_next,
            state.y,
            state.iteration + 1,
            state.counts,
            state.exact_draws + draws,
            adaptive,
            (*state.q_history, q),
        )

    def run(self, x: Any, y: None = None, **budget_and_trace: Any) -> tuple:
        """``run_outer`` (budgets: iterations, oracle_calls, seconds; grad_phi, progress)."""
        if y is not None:
            raise ValueError("UFOMSGD has no lower-level variable: call run(theta, ...)")
        return run_outer(self, x, None, **budget_and_trace)


def _grad(loss: Loss, phi: torch.Tensor, task: Any) -> torch.Tensor:
    with torch.enable_grad():
        leaf = phi.detach().requires_grad_(True)
        (gradient,) = torch.autograd.grad(loss(leaf, task), leaf)
    return gradient


def _hvp(loss: Loss, phi: torch.Tensor, task: Any, v: torch.Tensor) -> torch.Tensor:
    with torch.enable_grad():
        leaf = phi.detach().requires_grad_(True)
        (gradient,) = torch.autograd.grad(loss(leaf, task), leaf, create_graph=True)
        (product,) = torch.autograd.grad(gradient, leaf, v)
    return product
