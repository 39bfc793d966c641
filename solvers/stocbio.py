r"""stocBiO's stochastic Neumann hypergradient (Ji, Yang & Liang, ICML 2021, Algorithm 3).

The objectives take a minibatch: ``outer(x, y, batch)``, ``inner(x, y, batch)``; ``sampler(gen)``
draws one batch from the explicit ``torch.Generator``. Batches are drawn in this order: D_F (for
grad_x F and grad_y F), then the Hessian batches, then D_G (for the mixed product).

Paper variant (``variant="paper"``, a fresh batch B_j per Hessian-vector product, Q + 1 terms):

    v_Q = eta sum_{q=0}^{Q} prod_{j=Q-q+1}^{Q} (I - eta H_{B_j}) b,   b = grad_y F(x, y; D_F),

computed in Horner form s_0 = b, s_j = b + (I - eta H_{B_j}) s_{j-1}, v_Q = eta s_Q (Q HVPs).
With independent batches E v_Q = (I - (I - eta H_bar)^{Q+1}) H_bar^-1 b (spec 7.7): the bias
decays like (1 - eta mu)^{Q+1}.

Reference-code variant (``variant="reference_code"``, the official repository's
``stocBiO.py``): one Hessian batch reused for all products, and
v = eta M^Q b + sum_{k=1}^{Q} M^k b with M = I - eta H_B, which tends to H_B^-1 b / eta - b
(spec 6.4, section 9 item 1). Kept for regression tests against that code; it is *not* an
estimate of H^-1 b.

Ghadimi & Wang's randomized truncation (BSA; ``variant="bsa"``, benchmark_bilevel's
``hia_jax``; spec 6.4): draw the level p ~ Uniform{0, ..., Q-1} from the generator (after D_F),
then v = Q eta prod_{i=1}^{p} (I - eta H_{B_i}) b with a fresh batch per product. With
independent batches E v = eta sum_{k<Q} (I - eta H_bar)^k b (the Q-term Neumann sum) at an
expected (Q - 1)/2 HVPs.

All return grad_x F(x, y; D_F) - (d^2 G / dx dy)(x, y; D_G) v.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ._flat import check_finite
from .oracles import OracleCounts, SecondOrderOracle, outer_gradients

VARIANTS = ("paper", "reference_code", "bsa")


def stocbio_hypergradient(
    outer: Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor],
    inner: Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    lr: float,
    sampler: Callable[[torch.Generator | None], Any],
    generator: torch.Generator | None,
    variant: str,
    counts: OracleCounts,
) -> torch.Tensor:
    """One stocBiO hypergradient estimate on flat x, y (see the module docstring)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown stocBiO variant {variant!r}; choose one of {VARIANTS}")

    def at(fn: Callable, batch: Any) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        return lambda a, b: fn(a, b, batch)

    batch_f = sampler(generator)
    grad_x_f, b = outer_gradients(at(outer, batch_f), x, y, counts)
    if variant == "paper":
        s = b
        for j in range(steps):
            oracle = SecondOrderOracle(at(inner, sampler(generator)), x, y, counts)
            s = b + s - lr * oracle.hvp(s)
            check_finite(s, "stocBiO Neumann sum", j + 1, "lr above 2 / L")
        v = lr * s
    elif variant == "bsa":
        if steps < 1:
            raise ValueError("the BSA variant needs steps (Q) >= 1: the level is uniform on 0..Q-1")
        level = int(torch.randint(0, steps, (), generator=generator))
        v = bsa_product(lambda: at(inner, sampler(generator)), x, y, b, lr, steps, level, counts)
    else:
        oracle = SecondOrderOracle(at(inner, sampler(generator)), x, y, counts)
        term, acc = b, torch.zeros_like(b)
        for k in range(steps):
            term = term - lr * oracle.hvp(term)
            acc = acc + term
            check_finite(term, "stocBiO (reference code) term M^k b", k + 1, "lr above 2 / L")
        v = lr * term + acc
    mixed_oracle = SecondOrderOracle(at(inner, sampler(generator)), x, y, counts)
    return grad_x_f - mixed_oracle.mixed(v)


def bsa_product(
    draw_inner: Callable[[], Callable[[torch.Tensor, torch.Tensor], torch.Tensor]],
    x: torch.Tensor,
    y: torch.Tensor,
    b: torch.Tensor,
    lr: float,
    steps: int,
    level: int,
    counts: OracleCounts,
) -> torch.Tensor:
    """Q eta prod_{i=1}^{level} (I - eta H_{B_i}) b, each factor on a fresh ``draw_inner()``."""
    s = b
    for i in range(level):
        oracle = SecondOrderOracle(draw_inner(), x, y, counts)
        s = s - lr * oracle.hvp(s)
        check_finite(s, "BSA product (I - eta H_B)^i b", i + 1, "lr above 2 / L")
    return steps * lr * s
