"""First- and second-order oracles of a bilevel problem, with exact oracle counting.

Oracle units follow Ji et al. (spec section 1): gradients of f and of g, Hessian-vector
products H v = (d^2 g / dy^2) v, and mixed products (d^2 g / dx dy) v ("JV"). Hessian-vector
and mixed products are vector-Jacobian products of grad_y g (``torch.func.vjp``); the
linearisation at (x, y) is recorded once and replayed per product, with no graph rebuilt
between iterations (the SOBA idiom of benchmark_bilevel).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import torch
from torch.func import grad, vjp

Flat = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class OracleCounts:
    """Number of oracle calls, by type.

    Attributes:
        grad_outer: gradients of f (in x and y together count once).
        grad_inner: gradients of g in y.
        hvp: Hessian-vector products of g in y.
        mixed: mixed second-derivative products (d^2 g / dx dy) v.
    """

    grad_outer: int = 0
    grad_inner: int = 0
    hvp: int = 0
    mixed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __iadd__(self, other: OracleCounts) -> OracleCounts:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self


class SecondOrderOracle:
    """Hessian-vector and mixed products of g at a fixed (x, y), counted.

    H v and (d^2 g/dx dy) v are the y- and x-parts of the VJP of grad_y g with cotangent v
    (H is symmetric, so the VJP in y is the HVP). The linearisation in y is recorded once and
    replayed for every HVP, so an iterative solver never computes the unused x-part; the
    x-linearisation is recorded only when a mixed product is first asked for (once, at the end
    of AID).
    """

    def __init__(self, inner: Flat, x: torch.Tensor, y: torch.Tensor, counts: OracleCounts):
        self.counts = counts
        self._grad_y_fn = grad(inner, argnums=1)
        self._x, self._y = x, y
        self._grad_y, self._hvp_fn = vjp(lambda yy: self._grad_y_fn(x, yy), y)
        self._mixed_fn: Callable | None = None
        counts.grad_inner += 1

    @property
    def grad_y_inner(self) -> torch.Tensor:
        """grad_y g(x, y), the by-product of the linearisation."""
        return self._grad_y

    def hvp(self, v: torch.Tensor) -> torch.Tensor:
        """(d^2 g / dy^2) v."""
        self.counts.hvp += 1
        return self._hvp_fn(v)[0]

    def mixed(self, v: torch.Tensor) -> torch.Tensor:
        """(d^2 g / dx dy) v, a vector shaped like x."""
        self.counts.mixed += 1
        if self._mixed_fn is None:
            y = self._y
            _, self._mixed_fn = vjp(lambda xx: self._grad_y_fn(xx, y), self._x)
        return self._mixed_fn(v)[0]


def outer_gradients(
    outer: Flat, x: torch.Tensor, y: torch.Tensor, counts: OracleCounts
) -> tuple[torch.Tensor, torch.Tensor]:
    """(grad_x f, grad_y f) at (x, y), one outer-gradient oracle call."""
    counts.grad_outer += 1
    gx, gy = grad(outer, argnums=(0, 1))(x, y)
    return gx, gy
