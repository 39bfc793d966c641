r"""Mixed-precision CG: H v = b solved in a low precision, checked and corrected in the working
one (iterative refinement; Wilkinson 1963, Moler 1967, Carson & Higham 2018).

With v_0 = ``v0`` (zeros by default), round j computes the residual in the working dtype,

    r_j = b - H v_j                                   (one working-precision HVP),

stops once ||r_j|| <= tol ||b||, and otherwise solves the correction in the low dtype,

    d_j ~ H_low^{-1} r_j   (CG from 0 on r_j / ||r_j||, to ||residual|| <= ROUND_TOL or
                             FIRST_ROUND_STEPS 2^j steps),

then v_{j+1} = v_j + ||r_j|| d_j. A round in which CG reaches relative residual rho in the low
precision shrinks the working-precision residual by about max(rho, c kappa eps_low), so each
round gains a fixed number of digits while the attainable accuracy is the working precision's:
r_j is always computed there, and an inaccurate low-precision solve costs rounds, never
accuracy. A round that does not halve ||r_j|| (kappa eps_low near 1, where low-precision CG
cannot help) hands the rest of the budget to working-precision CG from v_j.

``steps`` counts CG iterations of either precision together (one HVP each); the residual HVPs,
one a round, come on top and are counted as HVPs as well.

The low-precision oracle is the working one's inner objective evaluated under
``CastTo(low)``: a ``TorchFunctionMode`` that casts every working-dtype tensor an operation
receives to the low dtype, so the user's g (its captured data included) runs in the low
precision without being rewritten. Casts of tensors that need no gradient (captured data) are
cached while the tensor lives and is unmodified (its version counter), so the data is converted
once per outer run, not once per linearisation; the cache holds a low-precision copy of each.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable

import torch
from torch.overrides import TorchFunctionMode

from .linear_solvers import conjugate_gradient
from .oracles import OracleCounts, SecondOrderOracle

#: each low-precision round stops at this relative residual: about 2^-14, well above float32's
#: floor (CG's recursive residual there keeps falling while the true one stalls near
#: kappa eps_32), and a gain of four digits a round.
ROUND_TOL = 2.0**-14

#: round j runs at most FIRST_ROUND_STEPS * 2^j low-precision iterations before its residual is
#: checked: long enough for one round to carry a well-conditioned solve, and a bound on what a
#: round that cannot converge in the low precision (kappa u_low >= 1) wastes before the check.
FIRST_ROUND_STEPS = 32

#: a round must shrink the working-precision residual by this factor, else refinement stops
#: and working-precision CG finishes the budget.
MIN_ROUND_GAIN = 0.5

_CACHE: dict[tuple[int, torch.dtype], tuple[weakref.ref, int, torch.Tensor]] = {}


def _drop(key: tuple[int, torch.dtype]) -> None:
    _CACHE.pop(key, None)


def _cached_cast(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``tensor.to(dtype)``, converted once while ``tensor`` lives and is not modified."""
    key = (id(tensor), dtype)
    hit = _CACHE.get(key)
    if hit is not None and hit[0]() is tensor and hit[1] == tensor._version:
        return hit[2]
    low = tensor.detach().to(dtype)
    if hit is None or hit[0]() is not tensor:  # a new tensor under this key: drop it at death
        weakref.finalize(tensor, _drop, key)
    _CACHE[key] = (weakref.ref(tensor), tensor._version, low)
    return low


class CastTo(TorchFunctionMode):
    """Run torch operations with ``source``-dtype tensors cast to ``target`` (and ``source``
    dtype arguments, as in ``t.to(torch.float64)``, replaced by ``target``)."""

    def __init__(self, source: torch.dtype, target: torch.dtype):
        super().__init__()
        self.source, self.target = source, target

    def _cast(self, value: object) -> object:
        if isinstance(value, torch.Tensor):
            if value.dtype != self.source:
                return value
            if value.requires_grad:  # differentiable: the cast is part of the graph
                return value.to(self.target)
            return _cached_cast(value, self.target)
        if value is self.source:
            return self.target
        if isinstance(value, (list, tuple)):
            return type(value)(self._cast(item) for item in value)
        return value

    def __torch_function__(self, func, types, args=(), kwargs=None):
        args = self._cast(args)
        kwargs = {k: self._cast(v) for k, v in (kwargs or {}).items()}
        return func(*args, **kwargs)


def check_low_precision(low: object, working: torch.dtype) -> torch.dtype:
    """``low`` if it is a floating dtype coarser than ``working``; otherwise ``ValueError``."""
    if not isinstance(low, torch.dtype) or not low.is_floating_point:
        raise ValueError(f"low_precision must be a floating torch.dtype, got {low!r}")
    if torch.finfo(low).eps <= torch.finfo(working).eps:
        raise ValueError(
            f"low_precision={low} is not coarser than the working dtype {working}: "
            "refinement needs a cheaper, less precise dtype (for float64 work, torch.float32)"
        )
    return low


def low_precision_oracle(
    inner: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    low: torch.dtype,
    counts: OracleCounts,
) -> SecondOrderOracle:
    """The second-order oracle of g at (x, y) with g evaluated in ``low`` (``CastTo``)."""
    with CastTo(x.dtype, low):
        return SecondOrderOracle(inner, x.to(low), y.to(low), counts)


def refined_conjugate_gradient(
    oracle: SecondOrderOracle,
    inner: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    low: torch.dtype,
    b: torch.Tensor,
    steps: int,
    v0: torch.Tensor | None = None,
    tol: float | None = None,
) -> torch.Tensor:
    """v ~ H^-1 b by CG rounds in ``low`` refined in ``b``'s dtype (module docstring).

    ``oracle`` is the working-precision oracle of g = ``inner`` at (x, y) (the residuals); the
    low-precision one (``low_precision_oracle``) is built once, and only if a round is needed.
    ``steps`` bounds the CG iterations of both precisions together; ``tol`` (default: the
    working dtype's machine epsilon) is the relative working-precision residual to stop at. A
    round ends at its tolerance ``ROUND_TOL`` or after ``FIRST_ROUND_STEPS * 2^j`` steps (round
    j), whichever comes first.
    """
    tol = torch.finfo(b.dtype).eps if tol is None else tol
    b_norm = float(torch.linalg.vector_norm(b))
    v = torch.zeros_like(b) if v0 is None else v0.clone()
    r = b.clone() if v0 is None else b - oracle.hvp(v)
    low_oracle: SecondOrderOracle | None = None
    spent, rounds = 0, 0
    r_norm = float(torch.linalg.vector_norm(r))
    while spent < steps and r_norm > tol * b_norm:
        if low_oracle is None:
            low_oracle = low_precision_oracle(inner, x, y, low, oracle.counts)
        cap = min(FIRST_ROUND_STEPS * 2**rounds, steps - spent)
        correction, used = _low_precision_round(low_oracle, r / r_norm, cap)
        spent, rounds = spent + used, rounds + 1
        if correction is None:
            break
        v.add_(correction.to(b.dtype), alpha=r_norm)
        if spent >= steps:
            return v  # budget spent: no residual to check it against
        r = b - oracle.hvp(v)
        previous, r_norm = r_norm, float(torch.linalg.vector_norm(r))
        if not math.isfinite(r_norm):
            raise FloatingPointError(
                f"refined CG: the working-precision residual b - H v is NaN/inf after {spent} "
                "low-precision steps; likely cause: H v overflows at the corrected v (an inner "
                "Hessian close to singular, so that the correction is huge)"
            )
        if r_norm > MIN_ROUND_GAIN * previous:
            break
    else:
        return v
    # a round failed or gained too little: working-precision CG finishes the budget from v
    return conjugate_gradient(oracle, b, steps - spent, v0=v, tol=tol)


def _low_precision_round(
    low_oracle: SecondOrderOracle, direction: torch.Tensor, steps: int
) -> tuple[torch.Tensor | None, int]:
    """(d ~ H_low^-1 direction by at most ``steps`` low-precision CG steps to ``ROUND_TOL``, the
    steps taken); d is None when CG meets p^T H p <= 0 or NaN/inf in the low precision only (H
    nearly singular, or g overflowing, there): working-precision CG then decides, and raises if
    H itself is bad."""
    before = low_oracle.counts.hvp
    try:
        d = conjugate_gradient(
            low_oracle, direction.to(low_oracle.grad_y_inner.dtype), steps, tol=ROUND_TOL
        )
    except (ValueError, FloatingPointError):
        d = None
    return d, low_oracle.counts.hvp - before
