r"""Iterative differentiation (ITD): reverse mode through T steps of inner gradient descent.

y_{t+1} = y_t - alpha grad_y g(x, y_t), t = 0..T-1, from y_0 = ``y`` held constant in x; the
estimate is d/dx f(x, y_T(x)) [Maclaurin et al. 2015; Franceschi et al. 2017; Ji et al. 2021,
ITD-BiO; spec 6.3, 7.3]. The reverse pass is

    lambda_T = grad_y f(x, y_T),   estimate = grad_x f(x, y_T) - alpha sum_t (d^2 g/dx dy)_t lambda_{t+1},
    lambda_t = lambda_{t+1} - alpha H_t lambda_{t+1},   H_t, (d^2 g/dx dy)_t at (x, y_t).

``checkpoint=False``: autograd records the T steps (T graphs of grad_y g, memory growing with
T times the graph of one step) and runs this pass itself.

``checkpoint=k`` (an int >= 1; ``True`` = 1): segment checkpointing (Griewank & Walther 2008,
ch. 12; Chen et al. 2016). The forward pass runs without a graph and keeps y_0, y_k, y_2k, ...
in one preallocated buffer; the reverse pass walks the segments [c, c + k) from the last,
recomputes each from its checkpoint y_c *with* its graph and pulls (lambda, estimate) back
through it in one call. Memory: ceil(T/k) vectors of size d_y plus the graphs of k steps, least
near k = sqrt(T |y| / |graph of one step|) (k = 1 when one step's graph outweighs T iterates);
cost: T more inner gradients whatever k (``grad_inner`` = 2T), about 1.5x plain ITD's time.

``checkpoint="auto"``: segments of that best k, k = round(sqrt(T |y| / |G|)) clamped to [1, T],
with |G| the bytes one step's graph saves, measured before the forward pass (two linearisations
at y_0, the first kept alive: storages that both save, the data the objective closes over, are
not the step's; two more inner gradients).

``checkpoint="sqrt"``: the least memory, for a step graph far larger than an iterate. Checkpoints
every k = ceil(sqrt T) steps; each segment's iterates y_{c+1}..y_{c+k-1} are recomputed without a
graph into a second buffer, then grad_y g is re-linearised at one iterate at a time. Memory:
ceil(T/k) + k vectors (about 2 sqrt T) plus *one* step's graph; cost: T - ceil(T/k) more inner
gradients again (``grad_inner`` = 3T - ceil(T/k)), about 2.1x plain ITD's time.

``checkpoint="binomial"`` or ``BinomialCheckpoints(slots=c)``: binomial checkpointing (Revolve;
Griewank 1992, Griewank & Walther 2000; ``bilevel.solvers.revolve``). At most c iterates in one
buffer (y_0 among them) plus the one in hand and *one* step's graph; the fewest recomputed
steps any c-slot reversal needs, t(T, c) = r T - C(c + r, c + 1) with r the least integer such
that C(c + r, c) >= T (``grad_inner`` = T + t(T, c); the first reversal, of step T-1, also
gives y_T, so there is no separate forward sweep). ``"binomial"`` takes the least c with r <= 2:
C(c + 2, 2) >= T, about sqrt(2T) iterates (19 at T = 200, against ``"sqrt"``'s 29) at
``"sqrt"``'s cost; a larger c buys time back (c >= T: ``checkpoint=True``'s T - 1 advances).

Every variant does plain ITD's operations, in another order: the same value up to rounding.
Iterates live in preallocated buffers, not in T separate tensors: interleaved with the step's
temporaries, those fragment the heap (measured: 8.6 MiB instead of 4.1 MiB for T = 200 stored
logistic iterates of 4 KiB each, ``benchmarks/README.md``).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Iterator

import torch

from ._flat import GROWTH_LIMIT, check_finite_replayed, check_not_growing
from .oracles import OracleCounts, evaluate, outer_gradients, scalar
from .revolve import Advance, BinomialCheckpoints, binomial_schedule, least_slots

Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def itd_hypergradient_and_iterate(
    outer: Objective,
    inner: Objective,
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    lr: float,
    counts: OracleCounts,
    checkpoint: bool | int | str | BinomialCheckpoints = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(d/dx f(x, y_T(x)), y_T): the estimate and the last inner iterate (for warm starts)."""
    slots = binomial_slots(checkpoint, steps)
    if slots is not None:
        return _itd_binomial(outer, inner, x, y, steps, lr, counts, slots)
    every = checkpoint_interval(checkpoint, steps)
    if checkpoint == "auto" and steps > 0:
        every = _best_segment_length(inner, x, y, steps, lr)
        counts.grad_inner += 2
    if every is not None:
        least_memory = checkpoint == "sqrt"
        return _itd_checkpointed(outer, inner, x, y, steps, lr, counts, every, least_memory)
    with torch.enable_grad():
        x_req = x.detach().requires_grad_(True)
        y_t = y.detach()
        first = None
        for _ in range(steps):
            y_in = y_t if y_t.requires_grad else y_t.detach().requires_grad_(True)
            (grad_y,) = torch.autograd.grad(
                evaluate(inner, x_req, y_in, "inner"), y_in, create_graph=True
            )
            first = grad_y.detach() if first is None else first
            y_t = y_in - lr * grad_y
        _check_inner_iterate(y_t, inner, x, y, steps, lr)
        if steps > 1:  # GD steps never grow on a convex g at lr <= 2/L (``GROWTH_LIMIT``)
            check_not_growing(
                first, grad_y.detach(), GROWTH_LIMIT, "ITD's inner gradient grad_y g", steps,
                "lr above 2 / L, or g not convex in y (gradient steps diverge)",
            )  # fmt: skip
        value = evaluate(outer, x_req, y_t, "outer")
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
            (grad_y,) = torch.autograd.grad(evaluate(inner, x.detach(), y_leaf, "inner"), y_leaf)
        y_t = (y_leaf - lr * grad_y).detach()
        yield y_t


def _check_inner_iterate(
    y_last: torch.Tensor, inner: Objective, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float
) -> None:
    """Raise, naming the first non-finite GD step from ``y``, if y_T is not finite."""
    check_finite_replayed(
        y_last,
        lambda: _gd_iterates(inner, x, y, steps, lr),
        "ITD inner iterate y_t",
        "lr above 2 / L (GD diverges)",
    )


def check_checkpoint(checkpoint: object, steps: int) -> None:
    """Refuse, before any work, a ``checkpoint`` that is none of the documented values."""
    if binomial_slots(checkpoint, steps) is None:
        checkpoint_interval(checkpoint, steps)


def binomial_slots(checkpoint: object, steps: int) -> int | None:
    """The slot count c of a binomial ``checkpoint`` (None for the other variants): c from
    ``BinomialCheckpoints``, or for ``"binomial"`` the least c with C(c + 2, 2) >= T."""
    if isinstance(checkpoint, BinomialCheckpoints):
        return checkpoint.slots
    if checkpoint == "binomial":
        return least_slots(steps, 2)
    return None


def checkpoint_interval(checkpoint: object, steps: int) -> int | None:
    """The segment length k (None: plain ITD); rejects anything but the documented values
    ``False``, ``True`` (k = 1), an int k >= 1, ``"sqrt"`` (k = ceil(sqrt T)) and ``"auto"``
    (decided by ``_best_segment_length`` when the call runs; 1 here)."""
    if checkpoint is False:
        return None
    if checkpoint is True or checkpoint == "auto":
        return 1
    if checkpoint == "sqrt":
        return math.isqrt(steps - 1) + 1 if steps > 0 else 1
    if isinstance(checkpoint, int) and checkpoint >= 1:
        return checkpoint
    raise ValueError(
        "checkpoint must be False, True, an int >= 1, 'sqrt', 'auto', 'binomial' or "
        f"BinomialCheckpoints(slots=c); got {checkpoint!r}"
    )


def _best_segment_length(
    inner: Objective, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float
) -> int:
    """argmin_k of ceil(T/k) |y| + k |G| (module docstring, ``"auto"``)."""
    graph_bytes = _step_graph_bytes(inner, x, y, lr)
    iterate_bytes = y.numel() * y.element_size()
    if graph_bytes == 0:
        return max(steps, 1)
    return min(max(round(math.sqrt(steps * iterate_bytes / graph_bytes)), 1), max(steps, 1))


def _step_graph_bytes(inner: Objective, x: torch.Tensor, y: torch.Tensor, lr: float) -> int:
    """Bytes of the storages that the graph of one step y - lr grad_y g(x, y) keeps alive and
    that did not exist before it. Saved tensors the graph drops once grad_y is formed (parts of
    the first backward) do not count. A second linearisation, made while the first is alive,
    keeps the pre-existing storages (data, x) at the same addresses and new ones elsewhere."""

    def kept_storages() -> tuple[dict[int, int], torch.Tensor]:
        saved: list[tuple[weakref.ref, int, int]] = []

        def pack(tensor: torch.Tensor) -> torch.Tensor:
            storage = tensor.untyped_storage()
            saved.append((weakref.ref(tensor), storage.data_ptr(), storage.nbytes()))
            return tensor

        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            y_leaf = y.detach().clone().requires_grad_(True)
            (grad_y,) = torch.autograd.grad(
                scalar(inner(x.detach().requires_grad_(True), y_leaf), "inner"),
                y_leaf,
                create_graph=True,
            )
            step = y_leaf - lr * grad_y
        del grad_y, y_leaf  # alive from here on only through the step's graph
        return {address: size for ref, address, size in saved if ref() is not None}, step

    first, first_step = kept_storages()
    second, _ = kept_storages()
    del first_step  # kept alive until here, so that no new storage can reuse its addresses
    return sum(size for address, size in second.items() if address not in first)


def _forward_with_checkpoints(
    inner: Objective, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float, every: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(buffer of y_0, y_k, y_2k, ... (ceil(T/k) rows), y_T): GD without a graph."""
    y0 = y.detach()
    checkpoints = y0.new_empty((max(math.ceil(steps / every), 1), *y0.shape))
    checkpoints[0] = y0
    y_last = y0
    for t, y_last in enumerate(_gd_iterates(inner, x, y0, steps, lr), start=1):
        if t % every == 0 and t < steps:
            checkpoints[t // every] = y_last
    _check_inner_iterate(y_last, inner, x, y, steps, lr)
    return checkpoints, y_last


def _segments(steps: int, every: int) -> Iterator[tuple[int, int]]:
    """(index of the checkpoint, number of steps) of each segment, the last first."""
    for index in reversed(range(math.ceil(steps / every))):
        yield index, min(every, steps - index * every)


def _itd_checkpointed(
    outer: Objective,
    inner: Objective,
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    lr: float,
    counts: OracleCounts,
    every: int,
    least_memory: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The reverse pass of the module docstring over segments of ``every`` steps: each segment
    recomputed with its graph, or (``least_memory``, ``"sqrt"``) one step's graph at a time."""
    checkpoints, y_last = _forward_with_checkpoints(inner, x, y, steps, lr, every)
    estimate, lam = outer_gradients(outer, x, y_last, counts)
    x_leaf = x.detach().requires_grad_(True)
    segment = checkpoints.new_empty((every, *checkpoints.shape[1:])) if least_memory else None
    recomputed = 0
    for index, length in _segments(steps, every):
        if segment is None:
            d_x, lam = _pull_back_through_segment(
                inner, x_leaf, checkpoints[index], length, lr, lam
            )
        else:
            d_x, lam = _pull_back_step_by_step(
                inner, x, x_leaf, checkpoints[index], length, lr, lam, segment
            )
            recomputed += length - 1
        estimate = estimate + d_x
    # the forward pass, the iterates recomputed inside segments, one re-linearisation per step
    counts.grad_inner += 2 * steps + recomputed
    counts.hvp += steps
    counts.mixed += steps
    return estimate, y_last.detach()


def _pull_back_through_segment(
    inner: Objective,
    x_leaf: torch.Tensor,
    y_start: torch.Tensor,
    length: int,
    lr: float,
    lam: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(estimate's increment, lambda at the segment's start): the segment's ``length`` steps
    recomputed from ``y_start`` with their graph, pulled back in one call."""
    with torch.enable_grad():
        y_leaf = y_start.clone().requires_grad_(True)
        y_t = y_leaf
        for _ in range(length):
            (grad_y,) = torch.autograd.grad(
                evaluate(inner, x_leaf, y_t, "inner"), y_t, create_graph=True
            )
            y_t = y_t - lr * grad_y
    return _pull_back(x_leaf, y_leaf, y_t, lam)


def _pull_back_step_by_step(
    inner: Objective,
    x: torch.Tensor,
    x_leaf: torch.Tensor,
    y_start: torch.Tensor,
    length: int,
    lr: float,
    lam: torch.Tensor,
    segment: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """As ``_pull_back_through_segment``, holding one step's graph at a time: the iterates
    y_{c+1}..y_{c+length-1} are recomputed without a graph into ``segment`` first."""
    segment[0] = y_start
    for t, y_t in enumerate(_gd_iterates(inner, x, segment[0], length - 1, lr), start=1):
        segment[t] = y_t
    d_x = torch.zeros_like(x_leaf)
    for t in reversed(range(length)):
        step_d_x, lam = _pull_back(x_leaf, *_taped_step(inner, x_leaf, segment[t], lr), lam)
        d_x = d_x + step_d_x
    return d_x, lam


def _itd_binomial(
    outer: Objective,
    inner: Objective,
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    lr: float,
    counts: OracleCounts,
    slots: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The reverse pass of the module docstring along ``binomial_schedule(T, c)``: iterates in a
    c-row buffer, one taped step at a time; the first reversal (step T-1) also yields y_T."""
    y0 = y.detach()
    if steps == 0:
        estimate, _ = outer_gradients(outer, x, y0, counts)
        return estimate, y0
    buffer = y0.new_empty((min(slots, steps), *y0.shape))
    buffer[0] = y0
    x_leaf = x.detach().requires_grad_(True)
    in_hand: torch.Tensor | None = None  # the result of an Advance kept for the next Reverse
    estimate, lam, y_last, advanced = None, None, y0, 0
    for action in binomial_schedule(steps, len(buffer)):
        if isinstance(action, Advance):
            in_hand = None  # no longer needed: do not hold it while the next one is formed
            state = _advance(inner, x, buffer[action.source], action.steps, lr)
            advanced += action.steps
            if action.target is None:
                in_hand = state
            else:
                buffer[action.target] = state
            continue
        y_t = in_hand if action.source is None else buffer[action.source]
        y_leaf, y_next = _taped_step(inner, x_leaf, y_t, lr)
        if lam is None:  # step T-1: its output is y_T, where lambda_T is taken
            y_last = y_next.detach()
            _check_inner_iterate(y_last, inner, x, y, steps, lr)
            estimate, lam = outer_gradients(outer, x, y_last, counts)
        d_x, lam = _pull_back(x_leaf, y_leaf, y_next, lam)
        estimate = estimate + d_x
    counts.grad_inner += steps + advanced
    counts.hvp += steps
    counts.mixed += steps
    return estimate, y_last


def _advance(
    inner: Objective, x: torch.Tensor, y_start: torch.Tensor, steps: int, lr: float
) -> torch.Tensor:
    """y_{c + steps} from y_c (steps >= 1): GD steps without a graph, into a new tensor; each
    iterate is dropped as the next one is formed (one iterate alive, not ``steps``)."""
    state = y_start
    for state in _gd_iterates(inner, x, y_start, steps, lr):  # noqa: B007 (keep the last)
        pass
    return state


def _taped_step(
    inner: Objective, x_leaf: torch.Tensor, y_t: torch.Tensor, lr: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(y_t as a leaf, y_t - lr grad_y g(x, y_t) with its graph in x_leaf and that leaf)."""
    with torch.enable_grad():
        y_leaf = y_t.detach().requires_grad_(True)
        (grad_y,) = torch.autograd.grad(
            evaluate(inner, x_leaf, y_leaf, "inner"), y_leaf, create_graph=True
        )
        return y_leaf, y_leaf - lr * grad_y


def _pull_back(
    x_leaf: torch.Tensor, y_leaf: torch.Tensor, y_next: torch.Tensor, lam: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(-lr (d^2 g/dx dy) lambda, lambda - lr H lambda): lambda pulled back through one step."""
    d_x, d_y = torch.autograd.grad(y_next, (x_leaf, y_leaf), lam, allow_unused=True)
    return (torch.zeros_like(x_leaf) if d_x is None else d_x), d_y
