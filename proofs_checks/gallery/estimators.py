r"""Wrong hypergradient estimators: each has the call signature of its slot's default,
``fn(outer, inner, x, y, *, counts=None, **options)`` (``bilevel.solvers.estimators``), on flat
tensors, and differs from a correct implementation by one realistic bug (named in its
docstring). They are test doubles for ``bilevel verify --mutants``; never use them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from bilevel.solvers import estimators
from bilevel.solvers.oracles import OracleCounts, SecondOrderOracle, outer_gradients

Solve = Callable[[SecondOrderOracle, torch.Tensor], torch.Tensor]


def _aid(outer, inner, x, y, counts: OracleCounts | None, solve: Solve) -> torch.Tensor:
    """grad_x f - (d^2 g / dx dy) v with v = solve(oracle, grad_y f)."""
    counts = OracleCounts() if counts is None else counts
    grad_x_f, grad_y_f = outer_gradients(outer, x, y, counts)
    oracle = SecondOrderOracle(inner, x, y, counts)
    return grad_x_f - oracle.mixed(solve(oracle, grad_y_f))


def _cg(oracle, b, steps: int, v0, tol, *, direction: str) -> torch.Tensor:
    """CG with a pluggable direction update (the correct one is ``"new"``)."""
    v = torch.zeros_like(b) if v0 is None else v0.clone()
    r = b - oracle.hvp(v) if v0 is not None else b.clone()
    p = r.clone()
    threshold = (torch.finfo(b.dtype).eps if tol is None else tol) * float(b.norm())
    for _ in range(steps):
        rr = float(r @ r)
        if rr**0.5 <= threshold or rr == 0.0:
            break
        hp = oracle.hvp(p)
        alpha = rr / float(p @ hp)
        v = v + alpha * p
        r_new = r - alpha * hp
        if direction == "old":  # the direction built from the previous residual
            p = r + (float(r_new @ r_new) / rr) * p
        elif direction == "steepest":  # beta dropped: steepest descent
            p = r_new
        else:
            p = r_new + (float(r_new @ r_new) / rr) * p
        r = r_new
    return v


def cg_old_residual(outer, inner, x, y, *, counts=None, steps, v0=None, tol=None) -> Any:
    """CG whose direction update reads the old residual, p_{k+1} = r_k + beta_k p_k (the bug
    class of a CG shipped in a popular meta-learning library)."""
    return _aid(outer, inner, x, y, counts, lambda o, b: _cg(o, b, steps, v0, tol, direction="old"))


def cg_steepest_descent(outer, inner, x, y, *, counts=None, steps, v0=None, tol=None) -> Any:
    """ "CG" without conjugation (beta_k = 0): steepest descent on H v = b, kappa log(1/eps)."""
    return _aid(
        outer, inner, x, y, counts, lambda o, b: _cg(o, b, steps, v0, tol, direction="steepest")
    )


def cg_skipped_solve(outer, inner, x, y, *, counts=None, steps, v0=None, tol=None) -> Any:
    """The linear solve skipped: v = 0 (HVPs still spent), i.e. the first-order estimate."""

    def solve(oracle, b):
        for _ in range(steps):
            oracle.hvp(b)
        return torch.zeros_like(b)

    return _aid(outer, inner, x, y, counts, solve)


def cg_dense_miscounted(outer, inner, x, y, *, counts=None, steps, v0=None, tol=None) -> Any:
    """A "CG" that solves densely but reports one HVP (an oracle miscount)."""
    result = estimators.exact(outer, inner, x, y)
    if counts is not None:
        counts.hvp += min(steps, 1)
    return result


def neumann_one_term_short(outer, inner, x, y, *, counts=None, steps, lr) -> Any:
    """The Neumann sum stopped one term early: Q - 1 terms for Q (an off-by-one in the loop)."""
    return estimators.neumann(outer, inner, x, y, counts=counts, steps=max(steps - 1, 0), lr=lr)


def neumann_naive_powers(outer, inner, x, y, *, counts=None, steps, lr) -> Any:
    """Each term (I - eta H)^q b recomputed from b: the right value at Q^2 / 2 HVPs."""

    def solve(oracle, b):
        v = torch.zeros_like(b)
        for q in range(steps):
            term = b
            for _ in range(q):
                term = term - lr * oracle.hvp(term)
            v = v + lr * term
        return v

    return _aid(outer, inner, x, y, counts, solve)


def itd_one_step_short(outer, inner, x, y, *, counts=None, steps, lr, checkpoint=False) -> Any:
    """ITD differentiating through T - 1 of the T inner steps (the last step left untaped)."""
    return estimators.itd(
        outer, inner, x, y, counts=counts, steps=max(steps - 1, 0), lr=lr, checkpoint=checkpoint
    )


def itd_checkpoint_segment_off_by_one(
    outer, inner, x, y, *, counts=None, steps, lr, checkpoint=False
) -> Any:
    """Checkpointed ITD whose recomputed segments drop one step (plain ITD is right)."""
    if checkpoint is False or steps == 0:
        return estimators.itd(outer, inner, x, y, counts=counts, steps=steps, lr=lr)
    return estimators.itd(
        outer, inner, x, y, counts=counts, steps=steps - 1, lr=lr, checkpoint=checkpoint
    )


def _rt_series(oracle, b, lr, p, level, weight: Callable[[int], float]) -> torch.Tensor:
    v, term = torch.zeros_like(b), b
    for q in range(level + 1):
        if q > 0:
            term = term - lr * oracle.hvp(term)
        v = v + lr * weight(q) * term
    return v


def _rt_level(p: float, generator, level):
    from bilevel.solvers.linear_solvers import sample_truncation_level

    return sample_truncation_level(p, generator) if level is None else level


def rt_unweighted(
    outer, inner, x, y, *, counts=None, p, lr, mu, L=None, generator=None, level=None
) -> Any:
    """Randomized truncation without the 1 / P(N >= q) reweighting: biased towards 0."""
    n = _rt_level(p, generator, level)
    return _aid(outer, inner, x, y, counts, lambda o, b: _rt_series(o, b, lr, p, n, lambda q: 1.0))


def rt_weight_off_by_one(
    outer, inner, x, y, *, counts=None, p, lr, mu, L=None, generator=None, level=None
) -> Any:
    """Terms weighted by 1 / (1 - p)^(q+1), i.e. by 1 / P(N > q) instead of 1 / P(N >= q)."""
    n = _rt_level(p, generator, level)
    return _aid(
        outer,
        inner,
        x,
        y,
        counts,
        lambda o, b: _rt_series(o, b, lr, p, n, lambda q: (1 - p) ** -(q + 1)),
    )


def fo_identity_hessian(outer, inner, x, y, *, counts=None) -> Any:
    """A "first-order" estimate that keeps the mixed term with H replaced by I (v = grad_y f)."""
    return _aid(outer, inner, x, y, counts, lambda o, b: b)


def stocbio_one_batch_for_all(
    outer, inner, x, y, *, counts=None, steps, lr, sampler, generator=None, variant="paper"
) -> Any:
    """stocBiO drawing one batch and reusing it for every term (the full randomness of one
    batch instead of independent ones: the product of HVPs on one batch is biased)."""
    batch = sampler(generator)
    return estimators.stocbio(
        outer,
        inner,
        x,
        y,
        counts=counts,
        steps=steps,
        lr=lr,
        sampler=lambda _: batch,
        generator=generator,
        variant=variant,
    )
