r"""The hypergradient estimators as functions, one per registry id (``bilevel.solvers.registry``).

Each is ``hypergradient(outer, inner, x, y, method=<id>, ...)`` with its method fixed, so that a
claim (or a user) can hold "the CG estimator" as a value and a replacement can be swapped in with
the same call signature: ``fn(outer, inner, x, y, *, counts=None, **options) -> Tree``. The
update rules and options are in ``bilevel.solvers.hypergradient``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ._flat import Tree
from .hypergradient import hypergradient
from .oracles import OracleCounts

Objective = Callable[[Tree, Tree], torch.Tensor]


def exact(
    outer: Objective,
    inner: Objective,
    x: Tree,
    y: Tree,
    *,
    counts: OracleCounts | None = None,
    **options: Any,
) -> Tree:
    """grad_x f - (d^2 g/dx dy) H^-1 grad_y f by a dense solve."""
    return hypergradient(outer, inner, x, y, method="exact", counts=counts, **options)


def cg(
    outer: Objective,
    inner: Objective,
    x: Tree,
    y: Tree,
    *,
    counts: OracleCounts | None = None,
    **options: Any,
) -> Tree:
    """AID-CG: v = K conjugate-gradient steps on H v = grad_y f (``steps``, ``v0``, ``tol``)."""
    return hypergradient(outer, inner, x, y, method="cg", counts=counts, **options)


def neumann(
    outer: Objective,
    inner: Objective,
    x: Tree,
    y: Tree,
    *,
    counts: OracleCounts | None = None,
    **options: Any,
) -> Tree:
    """AID-Neumann: v = eta sum_{q<Q} (I - eta H)^q grad_y f (``steps`` = Q, ``lr`` = eta)."""
    return hypergradient(outer, inner, x, y, method="neumann", counts=counts, **options)


def rt(
    outer: Objective,
    inner: Objective,
    x: Tree,
    y: Tree,
    *,
    counts: OracleCounts | None = None,
    **options: Any,
) -> Tree:
    """Randomized truncation: P(N >= q) = (1 - p)^q, terms reweighted by (1 - p)^-q."""
    return hypergradient(outer, inner, x, y, method="rt", counts=counts, **options)


def fo(
    outer: Objective,
    inner: Objective,
    x: Tree,
    y: Tree,
    *,
    counts: OracleCounts | None = None,
    **options: Any,
) -> Tree:
    """The first-order estimate grad_x f(x, y) (v = 0)."""
    return hypergradient(outer, inner, x, y, method="fo", counts=counts, **options)


def itd(
    outer: Objective,
    inner: Objective,
    x: Tree,
    y: Tree,
    *,
    counts: OracleCounts | None = None,
    **options: Any,
) -> Tree:
    """ITD: d/dx f(x, y_T(x)) through T gradient steps (``steps``, ``lr``, ``checkpoint``)."""
    return hypergradient(outer, inner, x, y, method="itd", counts=counts, **options)


def stocbio(
    outer: Objective,
    inner: Objective,
    x: Tree,
    y: Tree,
    *,
    counts: OracleCounts | None = None,
    **options: Any,
) -> Tree:
    """stocBiO's stochastic Neumann hypergradient (``steps``, ``lr``, ``sampler``, ...)."""
    return hypergradient(outer, inner, x, y, method="stocbio", counts=counts, **options)
