r"""Few-shot sinusoid regression (Finn et al. 2017): task tau = (amplitude, phase) with amplitude
~ U[0.1, 5], phase ~ U[0, pi]; inputs ~ U[-5, 5]; target amplitude sin(input - phase).

``sample_tasks(generator, tasks, shots, queries)`` draws a meta-batch as
``((support_inputs, support_targets), (query_inputs, query_targets))`` with the task index first
(shapes (tasks, shots, 1)), ready for ``bilevel.solvers.maml.meta_gradient``; ``regressor()`` is
the usual 1-40-40-1 ReLU network and ``mse_loss(model)`` its loss on a task's data through
``torch.func.functional_call``. ``HEAD_KEYS`` names the last layer's parameters: ANIL adapts
only those (``adapt_keys=HEAD_KEYS``); the two hidden layers are the shared body.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.func import functional_call


def sample_tasks(
    generator: torch.Generator,
    tasks: int,
    shots: int,
    queries: int,
    dtype: torch.dtype = torch.float64,
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """A meta-batch of sinusoid tasks, all randomness from ``generator`` (CPU)."""
    if min(tasks, shots, queries) < 1:
        raise ValueError("tasks, shots and queries must be >= 1")

    def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
        return low + (high - low) * torch.rand(*shape, generator=generator, dtype=dtype)

    amplitude = uniform(0.1, 5.0, tasks, 1, 1)
    phase = uniform(0.0, math.pi, tasks, 1, 1)
    inputs = uniform(-5.0, 5.0, tasks, shots + queries, 1)
    targets = amplitude * torch.sin(inputs - phase)
    return (
        (inputs[:, :shots], targets[:, :shots]),
        (inputs[:, shots:], targets[:, shots:]),
    )


HEAD_KEYS = ("4.weight", "4.bias")  # the last Linear of ``regressor()``


def regressor(hidden: int = 40, dtype: torch.dtype = torch.float64) -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Linear(1, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, 1),
    ).to(dtype)


def mse_loss(model: torch.nn.Module) -> Callable:
    """loss(params, (inputs, targets)) through ``functional_call``."""

    def loss(params: dict[str, torch.Tensor], data: tuple[torch.Tensor, torch.Tensor]):
        inputs, targets = data
        return ((functional_call(model, params, (inputs,)) - targets) ** 2).mean()

    return loss
