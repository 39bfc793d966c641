r"""Pieces shared by MGBiO, MSGBiO and VR-MSGBiO (Huang, arXiv:2303.03944; spec 3.2-3.3).

For a Polyak-Lojasiewicz lower level the Hessian H = d^2 g/dy^2 may be singular; the surrogate
hypergradient is grad F~ = grad_x f - (d^2 g / dx dy) v with v solving S[H] v = grad_y f, where
S[H] = H (plain Hessian-vector products; ``clip=None``) or S_mu[H] = V max(Lambda, mu) V^T
(spectral clipping from below at mu; [text] from re-implementations of Huang's HJFBiO, [recall]
for MGBiO). v is kept by a projected gradient step on 1/2 v^T S[H] v - grad_y f^T v:

    residual r(x, y, v) = S[H](x, y) v - grad_y f(x, y),     v <- Proj_{||v|| <= r_v}(v - tau r).

Every function takes an optional ``batch`` handed to the objectives (``None``: full data) and
counts its oracle calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .oracles import OracleCounts

Batched = Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor]


def project_ball(v: torch.Tensor, radius: float | None) -> torch.Tensor:
    """Proj onto {||v|| <= radius} (identity when radius is None)."""
    if radius is None:
        return v
    norm = float(torch.linalg.vector_norm(v))
    return v if norm <= radius else v * (radius / norm)


def grad_y_inner(inner: Batched, x, y, batch, counts: OracleCounts) -> torch.Tensor:
    with torch.enable_grad():
        yl = y.detach().requires_grad_(True)
        (gradient,) = torch.autograd.grad(inner(x.detach(), yl, batch), yl)
    counts.grad_inner += 1
    return gradient


def _clipped_hessian_product(grad_y, yl, v, clip: float) -> torch.Tensor:
    """S_mu[H] v with H built column by column from HVPs (dense: for small d_y)."""
    n = yl.numel()
    rows = [
        torch.autograd.grad(grad_y, yl, e, retain_graph=True)[0]
        for e in torch.eye(n, dtype=yl.dtype, device=yl.device)
    ]
    hessian = torch.stack(rows)
    values, vectors = torch.linalg.eigh((hessian + hessian.T) / 2)
    return vectors @ (torch.clamp(values, min=clip) * (vectors.T @ v))


def residual_and_direction(
    outer: Batched,
    inner: Batched,
    x: torch.Tensor,
    y: torch.Tensor,
    v: torch.Tensor,
    batch: Any,
    counts: OracleCounts,
    clip: float | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(S[H] v - grad_y f, grad_x f - (d^2 g / dx dy) v) at (x, y, v) on one batch."""
    with torch.enable_grad():
        xl, yl = x.detach().requires_grad_(True), y.detach().requires_grad_(True)
        grad_x_f, grad_y_f = torch.autograd.grad(outer(xl, yl, batch), (xl, yl), allow_unused=True)
        (grad_y,) = torch.autograd.grad(inner(xl, yl, batch), yl, create_graph=True)
        hv, mixed = torch.autograd.grad(grad_y, (yl, xl), v, retain_graph=clip is not None)
        if clip is not None:
            hv = _clipped_hessian_product(grad_y, yl, v, clip)
            counts.hvp += yl.numel() - 1
    grad_x_f = torch.zeros_like(x) if grad_x_f is None else grad_x_f
    grad_y_f = torch.zeros_like(y) if grad_y_f is None else grad_y_f
    counts.grad_outer += 1
    counts.grad_inner += 1
    counts.hvp += 1
    counts.mixed += 1
    return (hv - grad_y_f).detach(), (grad_x_f - mixed).detach()


def surrogate_step(
    outer: Batched,
    inner: Batched,
    x: torch.Tensor,
    y: torch.Tensor,
    v: torch.Tensor,
    tau: float,
    radius: float | None,
    batch: Any,
    counts: OracleCounts,
    clip: float | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """v_{t+1} = Proj(v - tau (S[H] v - grad_y f)) and w = grad_x f - (d^2 g/dx dy) v_{t+1},
    from one linearisation of grad_y g at (x, y) (one gradient of f and of g, one HVP, one
    mixed product)."""
    with torch.enable_grad():
        xl, yl = x.detach().requires_grad_(True), y.detach().requires_grad_(True)
        grad_x_f, grad_y_f = torch.autograd.grad(outer(xl, yl, batch), (xl, yl), allow_unused=True)
        (grad_y,) = torch.autograd.grad(inner(xl, yl, batch), yl, create_graph=True)
        grad_y_f = torch.zeros_like(y) if grad_y_f is None else grad_y_f
        if clip is None:
            (hv,) = torch.autograd.grad(grad_y, yl, v, retain_graph=True)
        else:
            hv = _clipped_hessian_product(grad_y, yl, v, clip)
            counts.hvp += yl.numel() - 1
        v_next = project_ball((v - tau * (hv - grad_y_f)).detach(), radius)
        (mixed,) = torch.autograd.grad(grad_y, xl, v_next)
    grad_x_f = torch.zeros_like(x) if grad_x_f is None else grad_x_f
    counts.grad_outer += 1
    counts.grad_inner += 1
    counts.hvp += 1
    counts.mixed += 1
    return v_next, (grad_x_f - mixed).detach()
