r"""Iterative differentiation (ITD): reverse mode through T steps of inner gradient descent.

y_{t+1} = y_t - alpha grad_y g(x, y_t), t = 0..T-1, from y_0 = ``y`` held constant in x; the
estimate is d/dx f(x, y_T(x)) [Maclaurin et al. 2015; Franceschi et al. 2017; Ji et al. 2021,
ITD-BiO; spec 6.3, 7.3]. The reverse pass is

    lambda_T = grad_y f(x, y_T),   estimate = grad_x f(x, y_T) - alpha sum_t (d^2 g/dx dy)_t lambda_{t+1},
    lambda_t = lambda_{t+1} - alpha H_t lambda_{t+1},   H_t, (d^2 g/dx dy)_t at (x, y_t).

``checkpoint=False``: autograd records the T steps (T graphs of grad_y g, memory growing with
T times the graph of one step) and runs this pass itself. ``checkpoint=True`` (= 1): the forward
pass keeps only the iterates y_0..y_T (T + 1 vectors of size d_y, no graph), and the reverse pass
re-linearises grad_y g at (x, y_t) one step at a time, so the memory of the graphs stays that of
one step whatever T (Griewank & Walther 2008, ch. 12, storing all states). It costs T extra
inner gradients, which the oracle counts include (``grad_inner`` = 2T).

``checkpoint=k`` (an int >= 1) or ``"sqrt"`` (k = ceil(sqrt T)): two-level checkpointing. The
forward pass keeps every k-th iterate only; the reverse pass walks the segments [c, c + k) from
the last, recomputes y_{c+1}..y_{c+k-1} from the checkpoint y_c (no graph) and re-linearises them
one at a time as above. Memory: one step's graph plus ceil(T/k) + k vectors (2 sqrt T for
``"sqrt"``, instead of T); cost: T - ceil(T/k) more inner gradients (``grad_inner`` =
3T - ceil(T/k)). Same value as ``checkpoint=False`` up to rounding (the same operations).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch

from ._flat import check_finite_replayed
from .oracles import OracleCounts, outer_gradients, scalar

Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def itd_hypergradient_and_iterate(
    outer: Objective,
    inner: Objective,
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    lr: float,
    counts: OracleCounts,
    checkpoint: bool | int | str = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(d/dx f(x, y_T(x)), y_T): the estimate and the last inner iterate (for warm starts)."""
    every = checkpoint_interval(checkpoint, steps)
    if every is not None:
        return _itd_checkpointed(outer, inner, x, y, steps, lr, counts, every)
    with torch.enable_grad():
        x_req = x.detach().requires_grad_(True)
        y_t = y.detach()
        for _ in range(steps):
            y_in = y_t if y_t.requires_grad else y_t.detach().requires_grad_(True)
            (grad_y,) = torch.autograd.grad(
                scalar(inner(x_req, y_in), "inner"), y_in, create_graph=True
            )
            y_t = y_in - lr * grad_y
        check_finite_replayed(
            y_t,
            lambda: _gd_iterates(inner, x, y, steps, lr),
            "ITD inner iterate y_t",
            "lr above 2 / L (GD diverges)",
        )
        value = scalar(outer(x_req, y_t), "outer")
        (result,) = torch.autograd.grad(value, x_req, allow_unused=True)
    counts.grad_inner += steps
    counts.grad_outer += 1
    counts.hvp += steps  # the backward pass through each step costs one HVP ...
    counts.mixed += steps  # ... and one mixed product
    return (torch.zeros_like(x) if result is None else result), y_t.detach()


def _gd_iterates(
    inner: Objective, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float
) -> Iterator[torch.Tensor]:
    """y_1, ..., y_T of GD on g(x, .) from y, without a graph."""
    y_t = y.detach()
    for _ in range(steps):
        y_leaf = y_t.requires_grad_(True)
        with torch.enable_grad():
            (grad_y,) = torch.autograd.grad(scalar(inner(x.detach(), y_leaf), "inner"), y_leaf)
        y_t = (y_leaf - lr * grad_y).detach()
        yield y_t


def checkpoint_interval(checkpoint: object, steps: int) -> int | None:
    """The k of two-level checkpointing (None: plain ITD); rejects anything but the documented
    values ``False``, ``True`` (k = 1), an int k >= 1 and ``"sqrt"`` (k = ceil(sqrt T))."""
    if checkpoint is False:
        return None
    if checkpoint is True:
        return 1
    if checkpoint == "sqrt":
        return math.isqrt(steps - 1) + 1 if steps > 0 else 1
    if isinstance(checkpoint, int) and checkpoint >= 1:
        return checkpoint
    raise ValueError(f"checkpoint must be False, True, an int >= 1 or 'sqrt'; got {checkpoint!r}")


def _itd_checkpointed(
    outer: Objective,
    inner: Objective,
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    lr: float,
    counts: OracleCounts,
    every: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The reverse pass of the module docstring over checkpoints every ``every`` steps."""
    checkpoints, y_last = [y.detach()], y.detach()
    for t, y_last in enumerate(_gd_iterates(inner, x, y, steps, lr), start=1):
        if t % every == 0 and t < steps:
            checkpoints.append(y_last)
    check_finite_replayed(
        y_last,
        lambda: _gd_iterates(inner, x, y, steps, lr),
        "ITD inner iterate y_t",
        "lr above 2 / L (GD diverges)",
    )
    estimate, lam = outer_gradients(outer, x, y_last, counts)
    x_leaf = x.detach().requires_grad_(True)
    recomputed = 0
    for index in reversed(range(len(checkpoints))):
        length = min(every, steps - index * every)
        if length <= 0:  # steps = 0: nothing to reverse
            continue
        segment = [checkpoints[index], *_gd_iterates(inner, x, checkpoints[index], length - 1, lr)]
        recomputed += length - 1
        for y_t in reversed(segment):
            mixed_part, hess_part = _step_vjp(inner, x_leaf, y_t, lam)
            estimate = estimate - lr * mixed_part
            lam = lam - lr * hess_part
    # the forward pass, the segments' recomputation, then one re-linearisation per step
    counts.grad_inner += 2 * steps + recomputed
    counts.hvp += steps
    counts.mixed += steps
    return estimate, y_last.detach()


def _step_vjp(
    inner: Objective, x_leaf: torch.Tensor, y_t: torch.Tensor, lam: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """((d^2 g/dx dy) lam, H lam) at (x, y_t), from one linearisation of grad_y g."""
    y_leaf = y_t.detach().requires_grad_(True)
    with torch.enable_grad():
        (grad_y,) = torch.autograd.grad(
            scalar(inner(x_leaf, y_leaf), "inner"), y_leaf, create_graph=True
        )
    if not grad_y.requires_grad:  # grad_y g constant in (x, y)
        return torch.zeros_like(x_leaf), torch.zeros_like(y_leaf)
    parts = torch.autograd.grad(grad_y, (x_leaf, y_leaf), lam, allow_unused=True)
    return tuple(
        torch.zeros_like(leaf) if part is None else part
        for leaf, part in zip((x_leaf, y_leaf), parts, strict=True)
    )
