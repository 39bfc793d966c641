r"""``argmin``: an inner solution that autograd differentiates by the implicit function theorem.

Given y ~ y*(x) = argmin_y g(x, y), computed by the caller by any means (detached),

    y_out = argmin(inner, x, y, method=..., **options)

returns y itself (a new tensor, in y's structure) attached to x: in a backward pass with
cotangent b = dL/dy_out it sends to x

    dL/dx += -(d^2 g / dx dy)(x, y) v,     v ~ H^-1 b,   H = (d^2 g / dy^2)(x, y),

the implicit function theorem's vector-Jacobian product dy*/dx^T b, with v found by the same
code as ``hypergradient`` (``"exact"``, ``"cg"``, ``"neumann"``, ``"rt"``; ``"fo"`` sends
nothing, v = 0). Hence, for any outer objective f,

    f(x, argmin(inner, x, y, method=m, **o)).backward()

leaves in ``x.grad`` what ``hypergradient(f, inner, x, y, method=m, **o)`` returns (to
rounding), and any ``torch.optim`` optimizer can drive x. ``method="itd"`` (``steps=T``,
``lr=alpha``) instead returns y_T, T gradient steps on g from y unrolled in autograd, whose
backward is ITD's reverse pass (``hypergradient(..., method="itd")`` from the same y).

x and y are tensors, tuples / lists or dicts of tensors (``nn.Module`` parameters with
``torch.func.functional_call``). Anchors: TorchOpt's ``custom_root`` and JAXopt's
``implicit_diff`` (Blondel et al., NeurIPS 2022); the implicit function theorem as in Pedregosa
2016 and Ji, Yang & Liang, ICML 2021, eq. (2).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ._flat import FlatSpec, Tree, check_same_dtype_and_device, flat_objective, flatten
from ._outer import check_objectives
from .hypergradient import resolve_options, resolve_v0, solve_linear_system
from .oracles import OracleCounts, scalar

IMPLICIT = ("exact", "cg", "neumann", "rt", "fo")
METHODS = (*IMPLICIT, "itd")


def argmin(
    inner: Callable[[Tree, Tree], torch.Tensor],
    x: Tree,
    y: Tree,
    *,
    method: str = "cg",
    counts: OracleCounts | None = None,
    **options: Any,
) -> Tree:
    """y attached to x by the implicit function theorem (the module docstring).

    Args:
        inner: g(x, y) -> scalar tensor.
        x: the outer variable; its tensors receive the gradient (those that require it).
        y: the caller's approximate inner solution (its graph, if any, is not used).
        method: one of ``METHODS``; options as for ``hypergradient`` (``steps``, ``lr``, ...).
        counts: an ``OracleCounts`` that the backward pass's oracle calls are added to.

    Returns:
        y (or y_T for ``"itd"``) in y's structure, differentiable in x.

    Raises:
        ValueError: before any work: an unknown method, bad values, x and y of different dtype
            or device, an ITD checkpoint (autograd keeps the graph).
        TypeError: before any work: an unknown or missing option, a tree that holds no tensor.
        FloatingPointError: in the backward pass, if the solve produces NaN or inf.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r} for argmin; choose one of {METHODS}")
    opts = resolve_options(method, options)
    if method == "itd" and opts["checkpoint"] is not False:
        raise ValueError("argmin(method='itd') unrolls in autograd: checkpoint does not apply")
    check_objectives(inner, inner, 2, "argmin")
    x_leaves, x_spec = _differentiable_flat(x)
    y_flat, y_spec = flatten(y, "y")
    check_same_dtype_and_device(x_leaves, y_flat)
    resolve_v0(opts, y_flat)
    g = flat_objective(inner, x_spec, y_spec, "inner")
    counts = OracleCounts() if counts is None else counts
    if method == "itd":
        return y_spec.unflatten(_unrolled(g, x_leaves, y_flat, opts["steps"], opts["lr"], counts))
    y_out = _ImplicitSolution.apply(x_leaves, y_flat.detach(), g, method, opts, counts)
    return y_spec.unflatten(y_out)


def _differentiable_flat(x: Tree) -> tuple[torch.Tensor, FlatSpec]:
    """x as one vector that keeps autograd's link to x's tensors (validated by ``flatten``)."""
    _, spec = flatten(x, "x")
    leaves = [x] if isinstance(x, torch.Tensor) else list(x.values() if isinstance(x, dict) else x)
    if len(leaves) == 1:
        return leaves[0].reshape(-1), spec
    return torch.cat([leaf.reshape(-1) for leaf in leaves]), spec


class _ImplicitSolution(torch.autograd.Function):
    """forward: y (a copy); backward: x-bar = -(d^2 g/dx dy) H^-1 y-bar, nothing for y."""

    @staticmethod
    def forward(ctx, x, y, g, method, opts, counts):  # type: ignore[override]
        ctx.point = (x.detach(), y)
        ctx.g, ctx.method, ctx.opts, ctx.counts = g, method, opts, counts
        return y.clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, y_bar):  # type: ignore[override]
        if ctx.method == "fo":
            return None, None, None, None, None, None
        x, y = ctx.point
        with torch.enable_grad():
            v, oracle = solve_linear_system(
                ctx.method, ctx.opts, ctx.g, x, y, y_bar.contiguous(), ctx.counts
            )
            x_bar = -oracle.mixed(v)
        if not bool(torch.isfinite(x_bar).all()):
            raise FloatingPointError(
                f"argmin backward (method={ctx.method!r}) is NaN/inf; likely cause: the inner "
                "Hessian is singular or not positive definite at (x, y), or a step size above 2/L"
            )
        return x_bar, None, None, None, None, None


def _unrolled(
    g: Callable, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float, counts: OracleCounts
) -> torch.Tensor:
    """y_T of T gradient steps on g from y, in autograd's graph (x's link kept)."""
    y_t = y.detach()
    with torch.enable_grad():
        for step in range(1, steps + 1):
            leaf = y_t if y_t.requires_grad else y_t.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(scalar(g(x, leaf), "inner"), leaf, create_graph=True)
            counts.grad_inner += 1
            y_t = leaf - lr * grad
            if not bool(torch.isfinite(y_t).all()):
                raise FloatingPointError(
                    f"argmin (method='itd') inner iterate y became NaN/inf at step {step}; "
                    "likely cause: lr above 2 / L"
                )
    return y_t
