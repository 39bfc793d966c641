r"""The quadratic bilevel problem of spec 7.1 in torch (the twin of ``bilevel.analysis``).

g(x, y) = 1/2 y^T A y - y^T (B x + c),  f(x, y) = 1/2 y^T P y + p^T y + 1/2 x^T R x + r^T x
+ x^T S y, built from the same blocks (numpy arrays or tensors) as
``bilevel.analysis.QuadraticBilevel`` (``inst.as_numpy()``), so every closed form of the analysis
applies to it exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from ..stability import Smoothness

BLOCKS = ("A", "B", "c", "P", "p", "R", "r", "S")


@dataclass(frozen=True)
class QuadraticProblem:
    blocks: Mapping[str, torch.Tensor]

    @classmethod
    def from_blocks(
        cls, blocks: Mapping[str, Any], dtype: torch.dtype = torch.float64, device: str = "cpu"
    ) -> QuadraticProblem:
        missing = [k for k in BLOCKS if k not in blocks]
        if missing:
            raise ValueError(f"missing quadratic blocks: {', '.join(missing)}")
        tensors = {}
        for key in BLOCKS:
            value = torch.as_tensor(blocks[key], dtype=dtype, device=device)
            tensors[key] = value.reshape(-1) if key in ("c", "p", "r") else value
        d_y, d_x = tensors["B"].shape
        expected = {
            "A": (d_y, d_y),
            "P": (d_y, d_y),
            "R": (d_x, d_x),
            "S": (d_x, d_y),
            "c": (d_y,),
            "p": (d_y,),
            "r": (d_x,),
        }
        for key, shape in expected.items():
            if tuple(tensors[key].shape) != shape:
                raise ValueError(
                    f"block {key} has shape {tuple(tensors[key].shape)}, "
                    f"expected {shape} (B is {d_y}x{d_x})"
                )
        return cls(tensors)

    def inner(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        b = self.blocks
        return 0.5 * y @ (b["A"] @ y) - y @ (b["B"] @ x + b["c"])

    def outer(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        b = self.blocks
        quad_y = 0.5 * y @ (b["P"] @ y) + b["p"] @ y
        return quad_y + 0.5 * x @ (b["R"] @ x) + b["r"] @ x + x @ (b["S"] @ y)

    def smoothness(self) -> Smoothness:
        r"""L_g = lambda_max(A) and L_Phi = ||nabla^2 Phi||_2 with, for y*(x) = A^{-1}(B x + c)
        and J = A^{-1} B, nabla^2 Phi = R + S J + J^T S^T + J^T P J (Phi is quadratic)."""
        b = self.blocks
        jacobian = torch.linalg.solve(b["A"], b["B"])
        hessian = (
            b["R"] + b["S"] @ jacobian + jacobian.T @ b["S"].T + jacobian.T @ b["P"] @ jacobian
        )
        inner = float(torch.linalg.eigvalsh(b["A"]).max())
        return Smoothness(inner=inner, outer=float(torch.linalg.matrix_norm(hessian, ord=2)))
