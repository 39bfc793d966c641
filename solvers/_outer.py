"""The loop every outer algorithm shares: budgets, trace, progress (benchmark_bilevel style).

An algorithm provides ``init(x, y) -> state`` and ``step(state) -> state``, where the state has
``x``, ``y``, ``iteration`` and ``counts`` (``OracleCounts``), and ``outer`` (f) for the trace.
"""

from __future__ import annotations

import inspect
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from tqdm import tqdm

from ._flat import check_steps
from .oracles import OracleCounts


@dataclass
class OuterState:
    """The iterate (x, y) after ``iteration`` outer steps and the oracle calls spent so far."""

    x: torch.Tensor
    y: torch.Tensor
    iteration: int = 0
    counts: OracleCounts = field(default_factory=OracleCounts)


class OuterAlgorithm(Protocol):
    outer: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

    def init(self, x: torch.Tensor, y: torch.Tensor) -> Any: ...

    def step(self, state: Any) -> Any: ...


@dataclass(frozen=True)
class FullBatchTrace:
    """A stochastic algorithm (objectives ``f(x, y, batch)``) seen by ``run_outer``: its trace
    evaluates f on the batch ``None``, the objectives' full-data value."""

    algorithm: Any

    def outer(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.algorithm.outer(x, y, None)

    def init(self, x: torch.Tensor, y: torch.Tensor) -> Any:
        return self.algorithm.init(x, y)

    def step(self, state: Any) -> Any:
        return self.algorithm.step(state)


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


def check_vectors(x: torch.Tensor, y: torch.Tensor) -> None:
    """Starting points: non-empty finite 1-D floating tensors of one dtype and device."""
    for value, name in ((x, "x"), (y, "y")):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
        if not value.is_floating_point():
            raise TypeError(f"{name} must have a floating dtype, got {value.dtype}")
        if value.ndim != 1 or value.numel() == 0:
            raise ValueError(
                f"{name} must be a non-empty 1-D tensor, got shape {tuple(value.shape)}"
            )
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"{name} contains NaN or inf")
    if x.dtype != y.dtype or x.device != y.device:
        raise ValueError(
            f"x and y must share dtype and device; x is {x.dtype} on {x.device}, y is {y.dtype} "
            f"on {y.device}"
        )


def run_outer(
    algorithm: OuterAlgorithm,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    iterations: int | None = None,
    oracle_calls: int | None = None,
    seconds: float | None = None,
    grad_phi: Callable[[torch.Tensor], torch.Tensor] | None = None,
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
        or (oracle_calls is not None and sum(state.counts.as_dict().values()) >= oracle_calls)
        or (seconds is not None and time.perf_counter() - start >= seconds)
    )


def _row(algorithm: OuterAlgorithm, state, grad_phi, elapsed: float, metric=None) -> dict:
    row = {
        "iteration": state.iteration,
        "outer_value": float(algorithm.outer(state.x, state.y)),
        **state.counts.as_dict(),
        "seconds": elapsed,
    }
    if grad_phi is not None:
        row["grad_norm"] = float(torch.linalg.vector_norm(grad_phi(state.x)))
    if metric is not None:
        row["test_metric"] = float(metric(state))
    return row
