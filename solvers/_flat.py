"""Flattening of the variables of a bilevel problem, and input validation shared by solvers.

``x`` and ``y`` may be a tensor, a tuple / list of tensors, or a dict of tensors (for example
``dict(model.named_parameters())``, used with ``torch.func.functional_call``). Estimators work
on one flat vector per variable and give results back in the caller's structure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch

Tree = Any


@dataclass(frozen=True)
class FlatSpec:
    """How to rebuild a tree of tensors from one flat vector."""

    kind: str  # "tensor" | "tuple" | "list" | "dict"
    keys: tuple[Any, ...]
    shapes: tuple[torch.Size, ...]

    @cached_property
    def sizes(self) -> list[int]:
        return [int(torch.Size(s).numel()) for s in self.shapes]

    def pack(self, tree: Tree) -> torch.Tensor:
        """The flat vector of a tree of this structure (no validation: the inverse of
        ``unflatten`` on trees this spec made)."""
        if self.kind == "tensor":
            return tree.reshape(-1)
        leaves = [tree[k] for k in self.keys] if self.kind == "dict" else list(tree)
        return torch.cat([leaf.reshape(-1) for leaf in leaves])

    def unflatten(self, flat: torch.Tensor) -> Tree:
        if self.kind == "tensor":  # the common case, on every objective call: at most a view
            (shape,) = self.shapes
            return flat if flat.shape == shape else flat.view(shape)
        parts = [p.reshape(s) for p, s in zip(flat.split(self.sizes), self.shapes, strict=True)]
        if self.kind == "tensor":
            return parts[0]
        if self.kind == "dict":
            return dict(zip(self.keys, parts, strict=True))
        return tuple(parts) if self.kind == "tuple" else list(parts)


def flatten(tree: Tree, name: str) -> tuple[torch.Tensor, FlatSpec]:
    """Concatenate the tensors of ``tree`` into one vector; validate dtype, device, finiteness."""
    if isinstance(tree, torch.Tensor):
        kind, keys, leaves = "tensor", (), [tree]
    elif isinstance(tree, dict):
        kind, keys, leaves = "dict", tuple(tree.keys()), list(tree.values())
    elif isinstance(tree, (tuple, list)):
        kind, keys, leaves = ("tuple" if isinstance(tree, tuple) else "list"), (), list(tree)
    else:
        raise TypeError(
            f"{name} must be a tensor, a tuple/list of tensors or a dict of tensors, "
            f"got {type(tree).__name__}"
        )
    if not leaves:
        raise ValueError(f"{name} is empty: it must hold at least one tensor")
    for i, leaf in enumerate(leaves):
        if not isinstance(leaf, torch.Tensor):
            raise TypeError(f"{name}[{i}] must be a tensor, got {type(leaf).__name__}")
        if not leaf.is_floating_point():
            raise TypeError(f"{name}[{i}] must have a floating dtype, got {leaf.dtype}")
        if leaf.numel() == 0:
            raise ValueError(f"{name}[{i}] is an empty tensor")
        if leaf.device.type == "meta":
            raise ValueError(f"{name}[{i}] is on the meta device: it has a shape but no values")
        if leaf.dtype != leaves[0].dtype or leaf.device != leaves[0].device:
            raise ValueError(
                f"all tensors of {name} must share dtype and device; {name}[{i}] is "
                f"{leaf.dtype} on {leaf.device}, {name}[0] is {leaves[0].dtype} on {leaves[0].device}"
            )
    if len(leaves) == 1:
        flat = leaves[0].detach().reshape(-1)
    else:
        flat = torch.cat([leaf.detach().reshape(-1) for leaf in leaves])
    # One reduction and one host read: a sum is finite unless an entry is NaN/inf or the sum
    # overflows; only then the exact check runs (and names the leaf).
    if not math.isfinite(flat.sum().item()) and not bool(torch.isfinite(flat).all()):
        bad = next(i for i, leaf in enumerate(leaves) if not bool(torch.isfinite(leaf).all()))
        raise ValueError(f"{name}[{bad}] contains NaN or inf")
    return flat, FlatSpec(kind, keys, tuple(leaf.shape for leaf in leaves))


def check_same_dtype_and_device(x: torch.Tensor, y: torch.Tensor) -> None:
    """x and y (flat) must share dtype and device: every oracle combines them."""
    if x.dtype != y.dtype or x.device != y.device:
        raise ValueError(
            f"x and y must share dtype and device; x is {x.dtype} on {x.device}, y is "
            f"{y.dtype} on {y.device}"
        )


def call_objective(fn: Callable, x: Any, y: Any, name: str) -> Any:
    """``fn(x, y)``; an error inside the objective (a shape, dtype or device mismatch with its
    own tensors, a tree where it expects a tensor) is re-raised, once, with what it was called
    with, instead of a bare torch message."""
    try:
        return fn(x, y)
    except (RuntimeError, TypeError, IndexError) as exc:
        if getattr(exc, "bilevel_context", False):  # raised by an inner call: already says it
            raise
        new = type(exc)(
            f"{name}(x, y) raised {type(exc).__name__}: {exc} -- it was called with x: "
            f"{describe(x)}, y: {describe(y)}; check the shapes, dtype and device it expects "
            "(its own tensors must match those of x and y)"
        )
        new.bilevel_context = True  # type: ignore[attr-defined]
        raise new from exc


def describe(value: object) -> str:
    """'float64 tensor of shape (3,) on cpu', a dict / tuple of those, or the type's name."""
    if isinstance(value, torch.Tensor):
        dtype = str(value.dtype).replace("torch.", "")
        return f"{dtype} tensor of shape {tuple(value.shape)} on {value.device}"
    if isinstance(value, dict):
        return "dict {" + ", ".join(f"{k!r}: {describe(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (tuple, list)):
        return f"{type(value).__name__} (" + ", ".join(describe(v) for v in value) + ")"
    return type(value).__name__


def flat_objective(
    fn: Callable[..., torch.Tensor], x_spec: FlatSpec, y_spec: FlatSpec, name: str
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``fn(x_tree, y_tree)`` as a function of two flat vectors, checked to return a scalar."""

    def wrapped(x_flat: torch.Tensor, y_flat: torch.Tensor) -> torch.Tensor:
        value = call_objective(fn, x_spec.unflatten(x_flat), y_spec.unflatten(y_flat), name)
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"{name}(x, y) must return a scalar tensor, got {shape}")
        return value.reshape(())

    return wrapped


def batched_flat_objective(
    fn: Callable[..., torch.Tensor], x_spec: FlatSpec, y_spec: FlatSpec, name: str
) -> Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor]:
    """``fn(x_tree, y_tree, batch)`` as a function of two flat vectors and a batch."""

    def wrapped(x_flat: torch.Tensor, y_flat: torch.Tensor, batch: Any) -> torch.Tensor:
        unbatched = flat_objective(lambda a, b: fn(a, b, batch), x_spec, y_spec, name)
        return unbatched(x_flat, y_flat)

    return wrapped


def check_steps(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def check_step_size(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    if not (value > 0 and value < float("inf")):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def check_finite(value: torch.Tensor, quantity: str, step: int, cause: str) -> None:
    """Raise ``FloatingPointError`` naming the quantity and the step if ``value`` is not finite."""
    if not torch.isfinite(value).all():
        raise FloatingPointError(f"{quantity} became NaN/inf at step {step}; likely cause: {cause}")


def check_finite_replayed(
    result: torch.Tensor,
    iterates: Callable[[], Iterable[torch.Tensor]],
    quantity: str,
    cause: str,
    first_step: int = 1,
) -> None:
    """Check ``result`` once; if it is not finite, replay ``iterates`` to name the first bad step.

    A deterministic recursion keeps NaN/inf once produced, so one check of its output is enough
    to detect a failure; the step is found by replaying the recursion (the items are numbered from
    ``first_step``), so the cost (and the GPU synchronisation) falls on the failure path only.
    """
    if bool(torch.isfinite(result).all()):
        return
    step = "an unknown step"
    for k, value in enumerate(iterates(), start=first_step):
        if not bool(torch.isfinite(value).all()):
            step = f"step {k}"
            break
    raise FloatingPointError(f"{quantity} became NaN/inf at {step}; likely cause: {cause}")


#: GD step lengths ||y_{t+1} - y_t|| never grow on a convex L-smooth g with lr <= 2/L (the GD
#: map is nonexpansive); a growth by more than this factor over one loop is divergence (the
#: slack admits the moderate growth of a nonconvex g, e.g. a network's loss in ITD)
GROWTH_LIMIT = 1e3


def check_not_growing(
    first: torch.Tensor,
    last: torch.Tensor,
    limit: float,
    quantity: str,
    steps: int,
    cause: str,
    floor: float = 0.0,
) -> None:
    """Raise ``FloatingPointError`` if ||last|| > limit ||first|| (one host read for both) and
    ||last|| > ``floor`` (below the floor, a rounding-level quantity, growth is noise)."""
    first_norm, last_norm = torch.stack(
        [torch.linalg.vector_norm(first), torch.linalg.vector_norm(last)]
    ).tolist()
    finite = math.isfinite(first_norm) and math.isfinite(last_norm)  # else: the NaN checks
    if finite and last_norm > max(limit * first_norm, floor) and last_norm > 0:
        raise FloatingPointError(
            f"{quantity} grew from {first_norm:.3g} to {last_norm:.3g} over {steps} steps "
            f"(more than {limit:g}x); likely cause: {cause}"
        )
