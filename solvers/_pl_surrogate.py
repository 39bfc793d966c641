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

from .oracles import OracleCounts, SecondOrderOracle, inner_gradient, outer_gradients

Batched = Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor]


def _on(fn: Batched, batch: Any) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    return lambda a, b: fn(a, b, batch)


def project_ball(v: torch.Tensor, radius: float | None) -> torch.Tensor:
    """Proj onto {||v|| <= radius} (identity when radius is None)."""
    if radius is None:
        return v
    norm = float(torch.linalg.vector_norm(v))
    return v if norm <= radius else v * (radius / norm)


def grad_y_inner(inner: Batched, x, y, batch, counts: OracleCounts) -> torch.Tensor:
    return inner_gradient(_on(inner, batch), x.detach(), y, counts)


def _hessian_product(oracle: SecondOrderOracle, v: torch.Tensor, clip: float | None):
    """S[H] v: one HVP, or with ``clip`` S_mu[H] v from the dense H built column by column
    (d_y HVPs; for small d_y)."""
    if clip is None:
        return oracle.hvp(v)
    basis = torch.eye(v.numel(), dtype=v.dtype, device=v.device)
    hessian = torch.stack([oracle.hvp(e) for e in basis])
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
    grad_x_f, grad_y_f = outer_gradients(_on(outer, batch), x, y, counts)
    oracle = SecondOrderOracle(_on(inner, batch), x, y, counts)
    residual = _hessian_product(oracle, v, clip) - grad_y_f
    return residual.detach(), (grad_x_f - oracle.mixed(v)).detach()


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
    grad_x_f, grad_y_f = outer_gradients(_on(outer, batch), x, y, counts)
    oracle = SecondOrderOracle(_on(inner, batch), x, y, counts)
    residual = _hessian_product(oracle, v, clip) - grad_y_f
    v_next = project_ball((v - tau * residual).detach(), radius)
    return v_next, (grad_x_f - oracle.mixed(v_next)).detach()
