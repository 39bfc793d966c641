r"""The two-task toy of the UFOM paper (official ``toy/toy.py``; spec 4.6) in torch.

Task i has the Huber-like loss of z = |x - b_i/a_i|: a_i z^2/2 for z <= A; for t = z - A in
(0, 1] a cubic with f'' = a_i (1 - t), i.e. a_i (A^2/2 + A t + t^2/2 - t^3/6); linear with
slope a_i (A + 1/2) beyond. Train and test losses are the same function. ``simulate_fo_div``
uses a = (0.5, 1.5), b_1 = 0, r = 10 inner steps with alpha = 0.1, and b_2, A from
``bilevel.analysis.meta_learning.ufom_divergence_toy`` (b_2 ~ 17.3953, A ~ 12.5968).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def huber_like(x: torch.Tensor, a: float, b: float, half_width: float) -> torch.Tensor:
    """The toy's task loss at a 1-element tensor x (sum over elements for a batch of points)."""
    z = torch.abs(x - b / a)
    quadratic = torch.clamp(z, max=half_width)  # z on the quadratic piece
    t = torch.clamp(z - half_width, 0.0, 1.0)  # position on the cubic piece
    beyond = torch.clamp(z - half_width - 1.0, min=0.0)  # position on the linear piece
    value = a * (
        quadratic**2 / 2 + half_width * t + t**2 / 2 - t**3 / 6 + (half_width + 0.5) * beyond
    )
    return value.sum()


@dataclass(frozen=True)
class UFOMToy:
    a: tuple[float, float] = (0.5, 1.5)
    b: tuple[float, float] = (0.0, 17.39526997048349)
    half_width: float = 12.596846646988993

    def loss(self, phi: torch.Tensor, task: int) -> torch.Tensor:
        return huber_like(phi, self.a[task], self.b[task], self.half_width)

    def sample(self, generator: torch.Generator) -> int:
        """Task 0 or 1 with probability 1/2 each."""
        return int(torch.randint(0, 2, (), generator=generator))
