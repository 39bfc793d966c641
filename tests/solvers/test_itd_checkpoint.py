"""Checkpointed ITD (``checkpoint=k`` segments / ``"sqrt"`` / ``"binomial"``): same value, counted
cost, and the memory it promises (``bilevel.solvers.itd``; the binomial schedule itself is
tested in ``test_revolve.py``)."""

from __future__ import annotations

import math
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
import torch

from bilevel.solvers import OracleCounts, hypergradient
from bilevel.solvers.itd import checkpoint_interval

from ._proc import proc_status_kib
from ._small_quadratic import small_quadratic

U64 = float(np.finfo(np.float64).eps)


@pytest.mark.parametrize("steps", [0, 1, 7, 20])
@pytest.mark.parametrize("checkpoint", [True, 1, 3, 7, 20, 25, "sqrt", "auto"])
def test_every_checkpoint_interval_gives_plain_itds_value_and_counts(steps, checkpoint):
    """Same operations in another order: plain ITD's value to a few hundred ulps (the reverse
    sums of at most 20 steps of a contraction, each rounded once more, bound ~ 20 * 10 u).

    Counts: T forward gradients and T re-linearisations; ``"sqrt"`` also recomputes the
    T - ceil(T/k) iterates inside its segments without a graph, ``"auto"`` measures one step's
    graph with two more linearisations (when there is a step).
    """
    outer, inner, x, y, lr = small_quadratic()
    plain = hypergradient(outer, inner, x, y, method="itd", steps=steps, lr=lr)
    counts = OracleCounts()
    ckpt = hypergradient(
        outer, inner, x, y, method="itd", steps=steps, lr=lr, checkpoint=checkpoint, counts=counts
    )
    scale = max(float(torch.linalg.vector_norm(plain)), 1.0)
    assert float(torch.linalg.vector_norm(ckpt - plain)) <= 200 * steps * U64 * scale + 1e-300
    k = checkpoint_interval(checkpoint, steps)
    recomputed = steps - math.ceil(steps / k) if checkpoint == "sqrt" else 0
    recomputed += 2 if checkpoint == "auto" and steps > 0 else 0
    assert counts.as_dict() == dict(
        grad_outer=1, grad_inner=2 * steps + recomputed, hvp=steps, mixed=steps
    )


def test_step_graph_bytes_count_the_steps_tensors_not_the_data_it_closes_over():
    """A diagonal quadratic saves O(1) vectors of d_y per step: the measure is linear in d_y.
    Adding a d_y x d_y matrix the step multiplies by (saved by the matmul, but existing before
    the step) must leave it unchanged but for the product's own vector(s)."""
    from bilevel.solvers.itd import _step_graph_bytes

    def measured(dim: int, with_matrix: bool) -> int:
        weights = torch.linspace(1.0, 2.0, dim, dtype=torch.float64)
        matrix = torch.eye(dim, dtype=torch.float64)

        def inner(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            z = matrix @ y if with_matrix else y
            return 0.5 * (weights * z * z).sum() - x.sum() * y.sum()

        return _step_graph_bytes(
            inner, torch.ones(2, dtype=torch.float64), torch.zeros(dim, dtype=torch.float64), 0.1
        )

    small, large = measured(1000, False), measured(2000, False)
    assert 0 < small and abs(large - 2 * small) <= 8 * 16  # up to 16 saved 0-d scalars
    vector = 1000 * 8
    assert measured(1000, True) <= small + 2 * vector < 1000 * vector


@pytest.mark.parametrize("graph_over_iterate", [0.5, 4.0, 30.0])
def test_auto_segment_length_minimises_the_memory_model(monkeypatch, graph_over_iterate):
    """k minimises ceil(T/k) |y| + k |G| over the integers up to the rounding of sqrt."""
    from bilevel.solvers import itd

    y = torch.zeros(500, dtype=torch.float64)
    iterate = y.numel() * y.element_size()
    monkeypatch.setattr(itd, "_step_graph_bytes", lambda *a: int(graph_over_iterate * iterate))
    for steps in (1, 10, 50, 200):
        k = itd._best_segment_length(None, None, y, steps, 0.1)
        memory = [math.ceil(steps / j) + j * graph_over_iterate for j in range(1, steps + 1)]
        assert memory[k - 1] <= 1.25 * min(memory), (steps, k, memory)


def test_sqrt_interval_is_the_ceiling_of_the_square_root():
    assert [checkpoint_interval("sqrt", t) for t in (0, 1, 2, 4, 5, 9, 10, 200)] == [
        1, 1, 2, 2, 3, 3, 4, 15
    ]  # fmt: skip


@pytest.mark.parametrize("bad", [0, -2, 1.5, "log", None, "Auto"])
def test_bad_checkpoint_values_are_refused_before_work(bad):
    outer, inner, x, y, lr = small_quadratic()
    calls = []

    def counting_inner(a, b):
        calls.append(1)
        return inner(a, b)

    with pytest.raises(ValueError, match="checkpoint must be"):
        hypergradient(outer, counting_inner, x, y, method="itd", steps=5, lr=lr, checkpoint=bad)
    assert not calls


def _peak_rss_rise_mib(checkpoint: object, steps: int, dim: int) -> float:
    """Peak RSS of one ITD call above RSS before it (VmHWM reset via clear_refs; Linux)."""
    torch.set_num_threads(1)

    def inner(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        scales = torch.linspace(1.0, 2.0, len(y), dtype=y.dtype)
        return 0.5 * (scales * y * y).sum() - x.sum() * y.sum()

    outer = lambda x, y: 0.5 * (y * y).sum()  # noqa: E731
    x, y = torch.ones(2, dtype=torch.float64), torch.zeros(dim, dtype=torch.float64)
    small = dict(method="itd", steps=3, lr=0.4, checkpoint=checkpoint)
    hypergradient(outer, inner, x, y[:8], **small)  # load the code paths first

    before = proc_status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
        clear.write("5")
    hypergradient(outer, inner, x, y, method="itd", steps=steps, lr=0.4, checkpoint=checkpoint)
    return (proc_status_kib("VmHWM") - before) / 1024


@pytest.mark.skipif(sys.platform != "linux", reason="peak RSS read from /proc (Linux only)")
def test_checkpointing_holds_the_vectors_and_graphs_its_docstring_promises():
    """T = 400 steps on d = 50 000 (one vector = 0.38 MiB). Storing every iterate holds 401
    vectors (153 MiB) and one step's graph; segments of k = 20 hold 20 checkpoints and 20 step
    graphs (a step of this inner saves about 5 vectors: ~120 vectors); ``"sqrt"`` 20
    checkpoints, 20 segment iterates and one step's graph (~45 vectors); ``"binomial"`` 27 slots
    (C(29, 2) = 406 >= 400), the iterate in hand and one step's graph (~33 vectors), 13 vectors
    (5 MiB) under ``"sqrt"``, more than the 2 MiB by which repeated runs differ. The bounds asked
    are far from each (a quarter and a third of storing every iterate); each run is in a fresh
    process so that memory the allocator kept from an earlier call cannot hide a peak."""
    context = multiprocessing.get_context("spawn")
    peaks = {}
    for checkpoint in (True, 20, "sqrt", "binomial"):
        with ProcessPoolExecutor(1, mp_context=context) as pool:
            peaks[checkpoint] = pool.submit(_peak_rss_rise_mib, checkpoint, 400, 50_000).result()
    vector_mib = 50_000 * 8 / 2**20
    assert peaks[True] >= 0.8 * 401 * vector_mib, peaks  # the measurement sees stored iterates
    assert peaks[20] <= peaks[True] / 3, peaks
    assert peaks["sqrt"] <= 0.25 * peaks[True], peaks
    assert peaks["binomial"] < peaks["sqrt"], peaks
