"""Torch objectives of the symbolic instances of ``bilevel.analysis`` (for checks and tests).

``quadratic_objectives(inst)`` returns (outer, inner) closures over float tensors of the blocks
of a numeric ``QuadraticBilevel``, in the spec's notation (section 7.1).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from bilevel.analysis import QuadraticBilevel
from bilevel.solvers.problems import QuadraticProblem

Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def quadratic_objectives(
    inst: QuadraticBilevel, dtype: torch.dtype = torch.float64, device: str = "cpu"
) -> tuple[Objective, Objective]:
    """(f, g) with g = 1/2 y^T A y - y^T (B x + c), f = 1/2 y^T P y + p^T y + 1/2 x^T R x + r^T x
    + x^T S y, as torch functions of 1-D tensors x, y (``bilevel.solvers.problems``)."""
    problem = QuadraticProblem.from_blocks(inst.as_numpy(), dtype=dtype, device=device)
    return problem.outer, problem.inner
