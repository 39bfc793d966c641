r"""Minimax reformulation of bilevel optimisation solved by multi-stage GDA (Wang, Pan, Pi &
Zhang, arXiv:2305.13153; spec 2.2-2.3). First-order oracles only.

    min_{x, y} max_z  L_lam(x, y, z) = f(x, y) + lam [g(x, y) - g(x, z)]        (lambda-form)
    min_{x, y} max_z  alpha f(x, y) + g(x, y) - g(x, z),  alpha = 1/lam          (alpha-form)

GDA step in stage s (lam = lam_s), in this order (``update="alternating"`` uses each new block
at once; ``"simultaneous"`` evaluates every gradient at the old point):

    z <- z - eta_z lam grad_y g(x, z)                              (ascent on -lam g(x, z))
    y <- y - eta_y (grad_y f(x, y) + lam grad_y g(x, y))
    x <- x - eta_x (grad_x f(x, y) + lam (grad_x g(x, y) - grad_x g(x, z)))

(alpha-form: every gradient above divided by lam). After T_s iterations lam_{s+1} = rho lam_s,
warm-starting (x, y, z); after ``stages`` stages lam stays at its last value. At the saddle point
for fixed x, z = y*(x) and y = y_lam(x) = argmin f + lam g, and the x-direction is
grad L*_lam(x), whose distance to grad Phi is O(1/lam) (spec 7.8; exact in
``QuadraticBilevel.penalty_error``).

What is [substitute]: the reformulation's exact scaling, the stage constants and the update order
(hence ``form`` and ``update`` are parameters); the paper's theorem was not retrieved.
Stability (``smoothness=Smoothness(inner=L_g, outer=L_f)``): eta_z lam L_g < 2 and
eta_y (L_f + lam L_g) < 2 at every stage's lam (the y and z blocks are gradient steps on
functions with those smoothness constants), checked at construction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ._flat import check_finite, check_step_size, check_steps
from ._outer import OuterAlgorithm, OuterState, check_objectives
from .oracles import OracleCounts, joint_gradients
from .stability import Smoothness

Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
FORMS = ("lambda", "alpha")
UPDATES = ("simultaneous", "alternating")


@dataclass
class MinimaxState(OuterState):
    z: torch.Tensor | None = None
    stage: int = 0
    stage_iteration: int = 0
    penalty: float = 0.0


@dataclass(frozen=True, kw_only=True)
class MinimaxGDA(OuterAlgorithm):
    """Multi-stage GDA; ``penalty`` = lam_0, ``growth`` = rho, ``stage_iterations`` = T_s;
    ``outer_lr`` = eta_x, ``inner_lr`` = eta_y, ``auxiliary_lr`` = eta_z (z, the auxiliary copy
    of the lower-level variable that tracks y*(x), starts at y)."""

    outer: Objective
    inner: Objective
    penalty: float
    outer_lr: float
    inner_lr: float
    auxiliary_lr: float
    growth: float = 1.0
    stage_iterations: int = 100
    stages: int = 1
    form: str = "lambda"
    update: str = "simultaneous"
    smoothness: Smoothness | None = None  # inner = L_g, outer = L_f (of f in y)

    def __post_init__(self) -> None:
        check_objectives(self.outer, self.inner, 2, "MinimaxGDA")
        for value, name in (
            (self.penalty, "penalty (lambda_0)"),
            (self.outer_lr, "outer_lr"),
            (self.inner_lr, "inner_lr"),
            (self.auxiliary_lr, "auxiliary_lr"),
        ):
            check_step_size(value, name)
        if not self.growth >= 1:
            raise ValueError(f"growth (rho) must be >= 1, got {self.growth}")
        check_steps(self.stage_iterations, "stage_iterations")
        check_steps(self.stages, "stages")
        if self.stages < 1:
            raise ValueError(
                f"stages must be >= 1 (one stage is single-stage GDA), got {self.stages}"
            )
        if self.form not in FORMS:
            raise ValueError(f"unknown form {self.form!r}; choose one of {FORMS}")
        if self.update not in UPDATES:
            raise ValueError(f"unknown update {self.update!r}; choose one of {UPDATES}")
        self._check_stability()

    def penalty_at(self, stage: int) -> float:
        """lam_s = lam_0 rho^min(s, stages - 1)."""
        return self.penalty * self.growth ** min(stage, self.stages - 1)

    def _check_stability(self) -> None:
        if self.smoothness is None:
            return
        L_g, L_f = self.smoothness.inner, self.smoothness.outer or 0.0
        for stage in range(self.stages):
            lam = self.penalty_at(stage)
            scale = 1.0 if self.form == "lambda" else 1.0 / lam
            for name, value, block in (
                ("auxiliary_lr * lam * L_g", self.auxiliary_lr * scale * lam * L_g, "z"),
                ("inner_lr * (L_f + lam * L_g)", self.inner_lr * scale * (L_f + lam * L_g), "y"),
            ):
                if value >= 2:
                    raise ValueError(
                        f"{name} = {value:g} >= 2 at stage {stage} (lambda = {lam:g}): the "
                        f"{block}-block gradient step diverges; lower the step"
                    )

    def init_vectors(self, x: torch.Tensor, y: torch.Tensor) -> MinimaxState:
        z = y.detach().clone()
        return MinimaxState(x.detach().clone(), y.detach().clone(), z=z, penalty=self.penalty)

    def step_vectors(self, state: MinimaxState) -> MinimaxState:
        lam = state.penalty
        scale = 1.0 if self.form == "lambda" else 1.0 / lam
        x, y, z, counts = state.x, state.y, state.z, state.counts
        alternate = self.update == "alternating"
        grad_x_gz, grad_y_gz = joint_gradients(self.inner, x, z, counts, "inner")
        z_next = z - self.auxiliary_lr * scale * lam * grad_y_gz
        grad_x_f, grad_y_f = joint_gradients(self.outer, x, y, counts, "outer")
        grad_x_g, grad_y_g = joint_gradients(self.inner, x, y, counts, "inner")
        y_next = y - self.inner_lr * scale * (grad_y_f + lam * grad_y_g)
        if alternate:  # x sees the new y and z
            grad_x_gz, _ = joint_gradients(self.inner, x, z_next, counts, "inner")
            grad_x_f, _ = joint_gradients(self.outer, x, y_next, counts, "outer")
            grad_x_g, _ = joint_gradients(self.inner, x, y_next, counts, "inner")
        direction = grad_x_f + lam * (grad_x_g - grad_x_gz)
        x_next = x - self.outer_lr * scale * direction
        k = state.iteration + 1
        for value, name in ((x_next, "x"), (y_next, "y"), (z_next, "z")):
            check_finite(value, f"minimax GDA iterate {name}", k, "a step size above 2/L")
        stage, within = state.stage, state.stage_iteration + 1
        if within >= self.stage_iterations and stage + 1 < self.stages:
            stage, within = stage + 1, 0
        return MinimaxState(
            x_next, y_next, k, counts, z_next, stage, within, self.penalty_at(stage)
        )


def penalty_direction(
    outer: Objective,
    inner: Objective,
    x: torch.Tensor,
    y: torch.Tensor,
    z: torch.Tensor,
    lam: float,
) -> torch.Tensor:
    """grad_x f(x, y) + lam (grad_x g(x, y) - grad_x g(x, z)): grad L*_lam(x) at the saddle."""
    counts = OracleCounts()
    grad_x_f, _ = joint_gradients(outer, x, y, counts, "outer")
    grad_x_g, _ = joint_gradients(inner, x, y, counts, "inner")
    grad_x_gz, _ = joint_gradients(inner, x, z, counts, "inner")
    return grad_x_f + lam * (grad_x_g - grad_x_gz)


def saddle_at_fixed_x(
    outer: Objective,
    inner: Objective,
    x: torch.Tensor,
    y: torch.Tensor,
    z: torch.Tensor,
    lam: float,
    inner_lr: float,
    auxiliary_lr: float,
    iterations: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The (y, z) blocks of GDA with x held fixed: y -> y_lam(x), z -> y*(x) (linearly, for
    strongly convex f + lam g and g in y with steps below 2/L)."""
    check_steps(iterations, "iterations")
    counts = OracleCounts()
    for k in range(iterations):
        _, grad_z = joint_gradients(inner, x, z, counts, "inner")
        _, grad_y_f = joint_gradients(outer, x, y, counts, "outer")
        _, grad_y_g = joint_gradients(inner, x, y, counts, "inner")
        z = z - auxiliary_lr * lam * grad_z
        y = y - inner_lr * (grad_y_f + lam * grad_y_g)
        check_finite(y, "saddle iterate y", k + 1, "inner_lr above 2 / (L_f + lam L_g)")
        check_finite(z, "saddle iterate z", k + 1, "auxiliary_lr above 2 / (lam L_g)")
    return y, z
