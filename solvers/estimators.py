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


def _estimator(method: str, summary: str) -> Callable[..., Tree]:
    """``hypergradient`` with ``method`` fixed, as a function of its own name and docstring."""

    def estimate(
        outer: Objective,
        inner: Objective,
        x: Tree,
        y: Tree,
        *,
        counts: OracleCounts | None = None,
        **options: Any,
    ) -> Tree:
        return hypergradient(outer, inner, x, y, method=method, counts=counts, **options)

    estimate.__name__ = estimate.__qualname__ = method
    estimate.__doc__ = f"{summary} (``hypergradient(..., method={method!r})``)."
    return estimate


exact = _estimator("exact", "grad_x f - (d^2 g/dx dy) H^-1 grad_y f by a dense solve")
cg = _estimator("cg", "AID-CG: v = K conjugate-gradient steps on H v = grad_y f (steps, v0, tol, low_precision)")
neumann = _estimator(
    "neumann", "AID-Neumann: v = eta sum_{q<Q} (I - eta H)^q grad_y f (steps = Q, lr = eta)"
)
rt = _estimator(
    "rt", "randomized truncation: P(N >= q) = (1 - p)^q, terms reweighted by (1 - p)^-q"
)
fo = _estimator("fo", "the first-order estimate grad_x f(x, y) (v = 0)")
itd = _estimator("itd", "ITD: d/dx f(x, y_T(x)) through T gradient steps (steps, lr, checkpoint)")
stocbio = _estimator(
    "stocbio", "stocBiO's stochastic Neumann hypergradient (steps, lr, sampler, ...)"
)
