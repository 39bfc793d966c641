"""Torch objectives of the symbolic instances of ``bilevel.analysis`` (for checks and tests).

``quadratic_objectives(inst)`` returns (outer, inner) closures over float tensors of the blocks
of a numeric ``QuadraticBilevel``, in the spec's notation (section 7.1).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from bilevel.analysis import QuadraticBilevel

Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def quadratic_objectives(
    inst: QuadraticBilevel, dtype: torch.dtype = torch.float64, device: str = "cpu"
) -> tuple[Objective, Objective]:
    """(f, g) with g = 1/2 y^T A y - y^T (B x + c), f = 1/2 y^T P y + p^T y + 1/2 x^T R x + r^T x
    + x^T S y, as torch functions of 1-D tensors x, y."""
    b = {k: torch.as_tensor(v, dtype=dtype, device=device) for k, v in inst.as_numpy().items()}

    def inner(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return 0.5 * y @ (b["A"] @ y) - y @ (b["B"] @ x + b["c"])

    def outer(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        quad_y = 0.5 * y @ (b["P"] @ y) + b["p"] @ y
        return quad_y + 0.5 * x @ (b["R"] @ x) + b["r"] @ x + x @ (b["S"] @ y)

    return outer, inner
