"""Torch objectives of the symbolic instances of ``bilevel.analysis`` (for checks and tests).

``quadratic_objectives(inst)`` returns (outer, inner) closures over float tensors of the blocks
of a numeric ``QuadraticBilevel``, in the spec's notation (section 7.1).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from bilevel.analysis import QuadraticBilevel
from bilevel.analysis.meta_learning import QuadraticMetaLearning
from bilevel.solvers.problems import QuadraticProblem

Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def quadratic_objectives(
    inst: QuadraticBilevel, dtype: torch.dtype = torch.float64, device: str = "cpu"
) -> tuple[Objective, Objective]:
    """(f, g) with g = 1/2 y^T A y - y^T (B x + c), f = 1/2 y^T P y + p^T y + 1/2 x^T R x + r^T x
    + x^T S y, as torch functions of 1-D tensors x, y (``bilevel.solvers.problems``)."""
    problem = QuadraticProblem.from_blocks(inst.as_numpy(), dtype=dtype, device=device)
    return problem.outer, problem.inner


def hyperobjective_hessian(inst: QuadraticBilevel) -> np.ndarray:
    """The (constant) Hessian of Phi: R + S A^-1 B + B^T A^-1 S^T + B^T A^-1 P A^-1 B."""
    b = inst.as_numpy()
    Ai = np.linalg.inv(b["A"])
    hess = b["R"] + b["S"] @ Ai @ b["B"] + b["B"].T @ Ai @ b["S"].T
    hess = hess + b["B"].T @ Ai @ b["P"] @ Ai @ b["B"]
    return (hess + hess.T) / 2


def hyperobjective_minimiser(inst: QuadraticBilevel) -> np.ndarray:
    """x* = argmin Phi = -H_Phi^-1 grad Phi(0) (Phi is quadratic; its Hessian must be positive
    definite, as for ``convex_phi_instance``)."""
    grad_at_zero = np.asarray(inst.hypergradient(backend="numpy")(np.zeros(inst.d_x)), float)
    return -np.linalg.solve(hyperobjective_hessian(inst), grad_at_zero.ravel())


def convex_phi_instance(d_x: int, d_y: int, kappa: float, seed: int) -> QuadraticBilevel:
    """``QuadraticBilevel.random`` with R shifted so that Phi's Hessian has eigenvalues >= 1."""
    base = QuadraticBilevel.random(d_x, d_y, kappa, seed)
    blocks = dict(base.as_numpy())
    shift = max(0.0, 1.0 - float(np.linalg.eigvalsh(hyperobjective_hessian(base)).min()))
    blocks["R"] = blocks["R"] + shift * np.eye(d_x)
    return QuadraticBilevel(**blocks)


def meta_quadratic_instance(
    seed: int, tasks: int = 4, dim: int = 3, steps: int = 5, alpha: float = 0.1
) -> QuadraticMetaLearning:
    """Random quadratic meta-learning tasks (spec 7.9): A, G = M M^T / dim + I (eigenvalues in
    about [1, 4]), c, d standard normal, uniform task probabilities; exact rationals of floats."""
    rng = np.random.default_rng(seed)

    def spd() -> np.ndarray:
        m = rng.standard_normal((dim, dim))
        return m @ m.T / dim + np.eye(dim)

    A = [spd() for _ in range(tasks)]
    G = [spd() for _ in range(tasks)]
    c = [rng.standard_normal(dim) for _ in range(tasks)]
    d = [rng.standard_normal(dim) for _ in range(tasks)]
    return QuadraticMetaLearning(A, c, G, d, alpha, steps)


def meta_quadratic_losses(inst: QuadraticMetaLearning) -> tuple[Callable, Callable, Callable]:
    """(train_loss(phi, task), test_loss(phi, task), sampler(generator) -> task) in torch,
    float64, with tasks drawn by their probabilities."""

    def tensor(m) -> torch.Tensor:
        return torch.tensor(np.array(m, dtype=float), dtype=torch.float64)

    A, G = [tensor(a) for a in inst.A], [tensor(g) for g in inst.G]
    c, d = [tensor(v).reshape(-1) for v in inst.c], [tensor(v).reshape(-1) for v in inst.d]
    weights = torch.tensor([float(w) for w in inst.w], dtype=torch.float64)

    def train_loss(phi: torch.Tensor, task: int) -> torch.Tensor:
        e = phi - c[task]
        return 0.5 * e @ (A[task] @ e)

    def test_loss(phi: torch.Tensor, task: int) -> torch.Tensor:
        e = phi - d[task]
        return 0.5 * e @ (G[task] @ e)

    def sampler(generator: torch.Generator) -> int:
        return int(torch.multinomial(weights, 1, generator=generator))

    return train_loss, test_loss, sampler


def noisy_quadratic_objectives(
    inst: QuadraticBilevel, noise: float
) -> tuple[Callable, Callable, Callable]:
    """Minibatch oracles (f(x, y, batch), g(x, y, batch), sampler) on a quadratic: batch s = +-1
    (equally likely) scales A by 1 + noise s, so E over batches is g; batch None is g itself."""
    problem = QuadraticProblem.from_blocks(inst.as_numpy())
    b = problem.blocks

    def inner(x: torch.Tensor, y: torch.Tensor, batch) -> torch.Tensor:
        scale = 1.0 if batch is None else 1.0 + noise * batch
        return 0.5 * scale * y @ (b["A"] @ y) - y @ (b["B"] @ x + b["c"])

    def outer(x: torch.Tensor, y: torch.Tensor, batch) -> torch.Tensor:
        return problem.outer(x, y)

    def sampler(generator: torch.Generator) -> float:
        return float(2 * torch.randint(0, 2, (), generator=generator).item() - 1)

    return outer, inner, sampler
