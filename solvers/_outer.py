"""The protocol every outer algorithm follows, and the loop they share (benchmark_bilevel style).

Every outer algorithm is a frozen, keyword-only dataclass deriving from ``OuterAlgorithm``:

- ``init(x, y) -> state`` and ``step(state) -> state``; a step returns a new state and leaves
  the one it was given (its tensors and its ``OracleCounts``) unchanged;
- ``run(x, y, *, iterations=, oracle_calls=, seconds=, ...) -> (state, trace)``;
- ``value(state)``, the outer objective at the state, for the trace.

x and y may be tensors of any shape, tuples / lists or dicts of tensors (for example
``dict(model.named_parameters())`` with ``torch.func.functional_call``); the state holds them
in the caller's structure. An algorithm's own code (``init_vectors`` / ``step_vectors``) sees
one flat vector per variable: the objectives are wrapped once per structure, and 1-D tensors
pass through untouched.

The one vocabulary of hyper-parameters (each algorithm documents which it uses):
``inner_lr`` / ``inner_steps`` (gradient steps on g in y), ``outer_lr`` (the step on x),
``solver_lr`` / ``solver_steps`` (the linear system H v = grad_y f), ``warm_start_y`` /
``warm_start_v`` (start the next outer iteration's inner or linear-system loop from the last
solution), ``sampler`` / ``generator`` (one minibatch per call, every draw from the generator),
``smoothness`` (constants the step sizes are checked against).
"""

from __future__ import annotations

import inspect
import math
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import torch
from tqdm import tqdm

from ._flat import (
    FlatSpec,
    Tree,
    batched_flat_objective,
    check_same_dtype_and_device,
    check_steps,
    flat_objective,
    flatten,
)
from .oracles import OracleCounts


@dataclass
class OuterState:
    """The iterate (x, y) after ``iteration`` outer steps and the oracle calls spent so far.

    ``x`` and ``y`` are in the caller's structure (``layout`` rebuilds them from flat vectors;
    None for 1-D tensors, which need no rebuilding)."""

    x: Tree
    y: Tree
    iteration: int = 0
    counts: OracleCounts = field(default_factory=OracleCounts)
    layout: Layout | None = field(default=None, kw_only=True, repr=False, compare=False)


@dataclass(frozen=True)
class Layout:
    """The structures of x and y (``y`` None: the algorithm has no lower-level variable)."""

    x: FlatSpec
    y: FlatSpec | None

    @staticmethod
    def of(x: Tree, y: Tree | None) -> tuple[Layout | None, torch.Tensor, torch.Tensor]:
        """Validate the starting points; return (layout, x vector, y vector), layout None when
        both are 1-D tensors."""
        x_flat, x_spec = flatten(x, "x")
        if y is None:
            y_flat, y_spec = x_flat.new_zeros(0), None
        else:
            y_flat, y_spec = flatten(y, "y")
            check_same_dtype_and_device(x_flat, y_flat)
        trivial = _is_vector(x) and (y is None or _is_vector(y))
        return (None if trivial else Layout(x_spec, y_spec)), x_flat, y_flat

    def pack(self, state: OuterState) -> OuterState:
        """The state with x and y as flat vectors."""
        y = state.y if self.y is None else self.y.pack(state.y)
        return replace(state, x=self.x.pack(state.x), y=y)

    def unpack(self, state: OuterState) -> OuterState:
        """The state with x and y in the caller's structure, and this layout attached."""
        y = state.y if self.y is None else self.y.unflatten(state.y)
        return replace(state, x=self.x.unflatten(state.x), y=y, layout=self)


def _is_vector(tree: Tree) -> bool:
    return isinstance(tree, torch.Tensor) and tree.ndim == 1


class OuterAlgorithm:
    """Base of every outer algorithm (see the module docstring for the protocol).

    A subclass is a ``@dataclass(frozen=True, kw_only=True)`` with its objectives in the fields
    named by ``objectives`` (called ``(x, y)``, or ``(x, y, batch)`` when ``batched``) and
    implements ``init_vectors(x, y)`` and ``step_vectors(state)`` on flat vectors."""

    objectives: ClassVar[tuple[str, ...]] = ("outer", "inner")
    batched: ClassVar[bool] = False

    def init_vectors(self, x: torch.Tensor, y: torch.Tensor) -> OuterState:
        raise NotImplementedError

    def step_vectors(self, state: Any) -> Any:
        raise NotImplementedError

    def init(self, x: Tree, y: Tree) -> Any:
        """The state at (x, y), validated: tensors, tuples or dicts of floating finite tensors
        of one dtype and device."""
        layout, x_flat, y_flat = Layout.of(x, y)
        state = self.on_vectors(layout).init_vectors(x_flat, y_flat)
        return state if layout is None else layout.unpack(state)

    def step(self, state: Any) -> Any:
        """One outer iteration; ``state`` is left as it was (its counts are copied)."""
        if not isinstance(state, OuterState):
            raise TypeError(f"step takes the state made by init, got {type(state).__name__}")
        layout = state.layout
        if layout is None:
            return self.step_vectors(replace(state, counts=state.counts.copy()))
        packed = replace(layout.pack(state), counts=state.counts.copy())
        return layout.unpack(self.on_vectors(layout).step_vectors(packed))

    def run(self, x: Tree, y: Tree, **budget_and_trace: Any) -> tuple[Any, list[dict]]:
        """``run_outer``: budgets ``iterations``, ``oracle_calls``, ``seconds``; ``grad_phi``,
        ``metric``, ``progress``."""
        return run_outer(self, x, y, **budget_and_trace)

    def value(self, state: Any) -> torch.Tensor:
        """The outer objective at the state (the full data, batch None, when batched)."""
        fn = self.outer  # type: ignore[attr-defined]
        return fn(state.x, state.y, None) if self.batched else fn(state.x, state.y)

    def on_vectors(self, layout: Layout | None) -> Any:
        """This algorithm with its objectives taking flat vectors (itself for 1-D tensors);
        made once per layout."""
        if layout is None:
            return self
        forms = self.__dict__.setdefault("_vector_forms", {})
        if layout not in forms:
            forms[layout] = replace(self, **self.vector_objectives(layout))
        return forms[layout]

    def vector_objectives(self, layout: Layout) -> dict[str, Callable]:
        """The objective fields rewritten for flat vectors."""
        wrap = batched_flat_objective if self.batched else flat_objective
        return {
            name: wrap(getattr(self, name), layout.x, layout.y, name) for name in self.objectives
        }


_ACCEPTS_ARITY: weakref.WeakKeyDictionary[Callable, set[int]] = weakref.WeakKeyDictionary()


def check_objectives(outer: Callable, inner: Callable, arity: int, algorithm: str) -> None:
    """Refuse objectives that cannot take ``arity`` positional arguments ((x, y) for
    deterministic algorithms, (x, y, batch) for stochastic ones) before any work.

    An accepted (function, arity) is remembered (weakly): ``inspect.signature`` costs about
    25 us, a third of a small problem's HVP, and a hypergradient call checks two objectives."""
    for fn, name in ((outer, "outer"), (inner, "inner")):
        if not callable(fn):
            raise TypeError(f"{algorithm}: {name} must be callable")
        if _known_to_accept(fn, arity):
            continue
        try:
            inspect.signature(fn).bind(*range(arity))
        except TypeError as exc:
            kind = "(x, y, batch)" if arity == 3 else "(x, y)"
            message = f"{algorithm} calls {name}{kind}; {name} does not accept that: {exc}"
            raise TypeError(message) from exc
        except ValueError:  # builtins without a signature: checked at the first call
            continue
        _remember_accepts(fn, arity)


def _known_to_accept(fn: Callable, arity: int) -> bool:
    try:
        return arity in _ACCEPTS_ARITY.get(fn, ())
    except TypeError:  # not weakly referenceable, or unhashable: not remembered
        return False


def _remember_accepts(fn: Callable, arity: int) -> None:
    try:
        _ACCEPTS_ARITY.setdefault(fn, set()).add(arity)
    except TypeError:
        pass


def check_generator(generator: Any) -> None:
    """Stochastic algorithms draw every batch from one explicit ``torch.Generator``."""
    if not isinstance(generator, torch.Generator):
        raise TypeError("generator must be a torch.Generator (all sampling goes through it)")


def run_outer(
    algorithm: OuterAlgorithm,
    x: Tree,
    y: Tree,
    *,
    iterations: int | None = None,
    oracle_calls: int | None = None,
    seconds: float | None = None,
    grad_phi: Callable[[Tree], Tree] | None = None,
    metric: Callable[[Any], float] | None = None,
    metric_every: int = 1,
    progress: bool = False,
) -> tuple[Any, list[dict]]:
    """Iterate until the first budget is spent (iterations, total oracle calls, seconds).

    The trace has one row per iterate: iteration, f(x, y), ||grad Phi(x)|| when ``grad_phi``
    (the true hypergradient) is given, ``metric(state)`` (a test metric such as test accuracy)
    every ``metric_every`` iterates when given, cumulative oracle counts by type, seconds. The
    seconds exclude the time spent evaluating the trace itself.
    """
    if iterations is None and oracle_calls is None and seconds is None:
        raise ValueError("give a budget: iterations, oracle_calls or seconds")
    if iterations is not None:
        check_steps(iterations, "iterations")
    if oracle_calls is not None:
        check_steps(oracle_calls, "oracle_calls")
    if seconds is not None and (
        isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))
        or not 0 <= seconds < float("inf")
    ):
        raise ValueError(f"seconds must be a finite number >= 0, got {seconds!r}")
    if metric_every < 1:
        raise ValueError(f"metric_every must be >= 1, got {metric_every}")
    state, start = algorithm.init(x, y), time.perf_counter()
    trace = [_row(algorithm, state, grad_phi, 0.0, metric)]
    name = type(algorithm).__name__
    with tqdm(total=iterations, disable=not progress, desc=name, unit="it") as bar:
        while not _spent(state, start, iterations, oracle_calls, seconds):
            state = algorithm.step(state)
            elapsed = time.perf_counter() - start
            due = metric if state.iteration % metric_every == 0 else None
            trace.append(_row(algorithm, state, grad_phi, elapsed, due))
            start += time.perf_counter() - start - elapsed  # the trace's own cost
            bar.update()
    return state, trace


def _spent(state, start: float, iterations, oracle_calls, seconds) -> bool:
    return (
        (iterations is not None and state.iteration >= iterations)
        or (oracle_calls is not None and state.counts.total >= oracle_calls)
        or (seconds is not None and time.perf_counter() - start >= seconds)
    )


def _row(algorithm: OuterAlgorithm, state, grad_phi, elapsed: float, metric=None) -> dict:
    row = {
        "iteration": state.iteration,
        "outer_value": _traced_value(algorithm, state),
        **state.counts.as_dict(),
        "seconds": elapsed,
    }
    if grad_phi is not None:
        row["grad_norm"] = _norm(grad_phi(state.x))
        if not math.isfinite(row["grad_norm"]):
            raise FloatingPointError(
                f"grad_phi(x) (the true hypergradient given for the trace) is NaN/inf at "
                f"iteration {state.iteration}; likely cause: x diverged, or grad_phi is wrong"
            )
    if metric is not None:
        row["test_metric"] = float(metric(state))
    return row


def _traced_value(algorithm: OuterAlgorithm, state: Any) -> float:
    """The outer objective at the state, for the trace, with errors that say what was called."""
    name = type(algorithm).__name__
    batched = getattr(algorithm, "batched", False)
    call = "outer(x, y, None) (the full data)" if batched else "outer(x, y)"
    try:  # an algorithm of one's own (duck-typed, no OuterAlgorithm base) is traced by outer
        value = (
            algorithm.value(state)
            if hasattr(algorithm, "value")
            else algorithm.outer(state.x, state.y)
        )
    except (RuntimeError, TypeError, IndexError) as exc:
        raise type(exc)(
            f"{name}'s trace calls {call} and it raised {type(exc).__name__}: {exc}"
            + ("; a batched objective must accept batch=None" if batched else "")
        ) from exc
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(f"{name}: {call} must return a scalar tensor, got {got}")
    return float(value)


def _norm(tree: Tree) -> float:
    """The Euclidean norm of a tensor or of a tree of tensors (all entries together)."""
    if isinstance(tree, torch.Tensor):
        return float(torch.linalg.vector_norm(tree))
    leaves = tree.values() if isinstance(tree, dict) else tree
    return math.sqrt(sum(float(torch.linalg.vector_norm(leaf)) ** 2 for leaf in leaves))
