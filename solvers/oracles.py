"""First- and second-order oracles of a bilevel problem, with exact oracle counting.

Oracle units follow Ji et al. (spec section 1): gradients of f and of g, Hessian-vector
products H v = (d^2 g / dy^2) v, and mixed products (d^2 g / dx dy) v ("JV"). Both products
are vector-Jacobian products of the one linearisation of grad_y g at (x, y): grad_y g is
computed once with its graph kept (``create_graph=True``), and each product replays that graph
backwards with the cotangent v, asking only for the y-part (H v, by symmetry of H) or the x-part
((d^2 g / dx dy) v). No graph is rebuilt between iterations (the SOBA idiom of
benchmark_bilevel). Plain ``torch.autograd`` is used rather than ``torch.func.vjp``: the
products are the same VJPs, and at small sizes the functional transform costs two to five times
more per call (benchmarks/hypergradient.py measured 0.28 ms against 0.055 ms to linearise,
0.061 against 0.040 ms per HVP at d = 100 on the CPU).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields

import torch

from ._flat import GROWTH_LIMIT, call_objective, check_not_growing

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

    @property
    def total(self) -> int:
        """All oracle calls together (the ``oracle_calls`` budget)."""
        return self.grad_outer + self.grad_inner + self.hvp + self.mixed

    def copy(self) -> OracleCounts:
        """An independent copy (each outer state owns its counts)."""
        return OracleCounts(self.grad_outer, self.grad_inner, self.hvp, self.mixed)

    def __iadd__(self, other: OracleCounts) -> OracleCounts:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self


def scalar(value: object, name: str) -> torch.Tensor:
    """``value`` if it is a 0-d tensor; otherwise a ``ValueError`` naming the objective (a
    vector-valued or Python-float objective would make autograd fail with a torch message)."""
    if isinstance(value, torch.Tensor) and value.ndim == 0:
        return value
    got = f"shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__
    raise ValueError(f"{name}(x, y) must return a scalar (0-d) tensor, got {got}")


def evaluate(fn: Callable, x: torch.Tensor, y: torch.Tensor, name: str) -> torch.Tensor:
    """``fn(x, y)`` checked to be a scalar, an error inside it re-raised with what it was called
    with (``_flat.call_objective``)."""
    return scalar(call_objective(fn, x, y, name), name)


def _leaf(t: torch.Tensor) -> torch.Tensor:
    return t.detach().requires_grad_(True)


def _vjp_or_zeros(output: torch.Tensor, wrt: torch.Tensor, cotangent: torch.Tensor) -> torch.Tensor:
    """d<output, cotangent>/d wrt, zeros when ``output`` does not depend on ``wrt``."""
    if not output.requires_grad:
        return torch.zeros_like(wrt)
    (part,) = torch.autograd.grad(output, wrt, cotangent, retain_graph=True, allow_unused=True)
    return torch.zeros_like(wrt) if part is None else part


class SecondOrderOracle:
    """Hessian-vector and mixed products of g at a fixed (x, y), counted.

    H v and (d^2 g/dx dy) v are the y- and x-parts of the VJP of grad_y g with cotangent v (H is
    symmetric, so the VJP in y is the HVP). grad_y g is linearised once, at construction (one
    inner-gradient oracle call); every product replays it, computing only the part asked for.
    """

    def __init__(self, inner: Flat, x: torch.Tensor, y: torch.Tensor, counts: OracleCounts):
        self.counts = counts
        self._x, self._y = _leaf(x), _leaf(y)
        with torch.enable_grad():
            value = evaluate(inner, self._x, self._y, "inner")
            (self._grad_y,) = (
                torch.autograd.grad(value, self._y, create_graph=True, allow_unused=True)
                if value.requires_grad
                else (None,)
            )
        if self._grad_y is None:  # g does not depend on y
            self._grad_y = torch.zeros_like(self._y)
        counts.grad_inner += 1

    @property
    def grad_y_inner(self) -> torch.Tensor:
        """grad_y g(x, y), the by-product of the linearisation."""
        return self._grad_y.detach()

    def hvp(self, v: torch.Tensor) -> torch.Tensor:
        """(d^2 g / dy^2) v."""
        self.counts.hvp += 1
        return _vjp_or_zeros(self._grad_y, self._y, v)

    def mixed(self, v: torch.Tensor) -> torch.Tensor:
        """(d^2 g / dx dy) v, a vector shaped like x."""
        self.counts.mixed += 1
        return _vjp_or_zeros(self._grad_y, self._x, v)


def outer_gradients(
    outer: Flat, x: torch.Tensor, y: torch.Tensor, counts: OracleCounts
) -> tuple[torch.Tensor, torch.Tensor]:
    """(grad_x f, grad_y f) at (x, y), one outer-gradient oracle call; ``FloatingPointError``
    if either is NaN/inf (one host read), so that a non-finite f is named as the cause rather
    than the linear solve it would poison next."""
    grad_x, grad_y = joint_gradients(outer, x, y, counts, "outer")
    if not math.isfinite(float(grad_x.sum() + grad_y.sum())):
        bad = [
            n
            for n, g in (("grad_x f", grad_x), ("grad_y f", grad_y))
            if not torch.isfinite(g).all()
        ]
        raise FloatingPointError(
            f"the outer objective's gradient ({', '.join(bad) or 'its sum'}) is NaN/inf at "
            f"(x, y) with ||x|| = {float(torch.linalg.vector_norm(x)):.3g}, ||y|| = "
            f"{float(torch.linalg.vector_norm(y)):.3g}; likely cause: f(x, y) is not finite "
            "there, or the iterates overflowed (a step size far too large)"
        )
    return grad_x, grad_y


def joint_gradients(
    fn: Flat, x: torch.Tensor, y: torch.Tensor, counts: OracleCounts, which: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(grad_x fn, grad_y fn) at (x, y), one gradient oracle call of the ``which`` objective
    ("outer" f or "inner" g, the name counted and used in errors); zeros where fn is constant."""
    if which == "outer":
        counts.grad_outer += 1
    elif which == "inner":
        counts.grad_inner += 1
    else:
        raise ValueError(f"which must be 'outer' or 'inner', got {which!r}")
    x_leaf, y_leaf = _leaf(x), _leaf(y)
    with torch.enable_grad():
        value = evaluate(fn, x_leaf, y_leaf, which)
    if not value.requires_grad:  # fn constant in both x and y
        return torch.zeros_like(x), torch.zeros_like(y)
    gx, gy = torch.autograd.grad(value, (x_leaf, y_leaf), allow_unused=True)
    return (
        torch.zeros_like(x) if gx is None else gx,
        torch.zeros_like(y) if gy is None else gy,
    )


def inner_descent(
    inner: Flat, x: torch.Tensor, y: torch.Tensor, lr: float, steps: int, counts: OracleCounts
) -> torch.Tensor:
    """y after ``steps`` gradient steps y <- y - lr grad_y g(x, y): the inner loop every
    double-loop algorithm shares (``steps`` counted inner gradients).

    Raises ``FloatingPointError`` when the steps diverge: the last gradient is more than
    ``GROWTH_LIMIT`` times the first (on a convex g at lr <= 2/L it never grows), long before
    the iterate overflows (an AID-BiO run at inner_lr = 10 used to reach x ~ 3e60 silently)."""
    first = last = None
    for _ in range(steps):
        last = inner_gradient(inner, x, y, counts)
        first = last if first is None else first
        y = y - lr * last
    if steps > 1:
        check_not_growing(
            first, last, GROWTH_LIMIT, "the inner gradient grad_y g", steps,
            "inner_lr above 2 / L_g, or g not convex in y (gradient steps diverge)",
        )  # fmt: skip
    return y


def inner_gradient(
    inner: Flat, x: torch.Tensor, y: torch.Tensor, counts: OracleCounts
) -> torch.Tensor:
    """grad_y g(x, y), one counted inner-gradient call."""
    counts.grad_inner += 1
    y_leaf = y.detach().requires_grad_(True)
    with torch.enable_grad():
        (gradient,) = torch.autograd.grad(evaluate(inner, x, y_leaf, "inner"), y_leaf)
    return gradient
