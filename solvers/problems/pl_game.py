r"""The Polyak-Lojasiewicz "bilevel game" of spec 7.11 in torch (twin of
``bilevel.analysis.PLLeastSquaresGame``): g(x, y) = 1/2 ||C y - D x||^2 with a rank-deficient C
(PL in y with mu = sigma_min^+(C)^2, not strongly convex), f(x, y) = 1/2 ||y - y_t||^2 +
nu/2 ||x||^2. Minibatch oracles: ``inner(x, y, rows)`` averages the squared residual over the
given rows of C and D (times m, so the full batch gives g), for the stochastic MSGBiO family.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class PLGameProblem:
    C: torch.Tensor
    D: torch.Tensor
    y_target: torch.Tensor
    nu: float

    @classmethod
    def from_arrays(
        cls, arrays: Mapping[str, Any], nu: float, dtype: torch.dtype = torch.float64
    ) -> PLGameProblem:
        C, D = (torch.as_tensor(arrays[k], dtype=dtype) for k in ("C", "D"))
        y_target = torch.as_tensor(arrays["y_target"], dtype=dtype).reshape(-1)
        if C.shape[0] != D.shape[0] or C.shape[1] != y_target.shape[0]:
            raise ValueError(
                f"C {tuple(C.shape)}, D {tuple(D.shape)} and y_target "
                f"{tuple(y_target.shape)} do not fit g = 1/2 ||C y - D x||^2"
            )
        return cls(C, D, y_target, float(nu))

    def inner(self, x: torch.Tensor, y: torch.Tensor, rows=None) -> torch.Tensor:
        residual = self.C @ y - self.D @ x
        if rows is None:
            return 0.5 * (residual**2).sum()
        return 0.5 * self.C.shape[0] * (residual[rows] ** 2).mean()

    def outer(self, x: torch.Tensor, y: torch.Tensor, rows=None) -> torch.Tensor:
        return 0.5 * ((y - self.y_target) ** 2).sum() + 0.5 * self.nu * (x**2).sum()

    def pl_constant(self) -> float:
        """sigma_min^+(C)^2, the smallest nonzero squared singular value (relative cut 1e-10)."""
        singular = torch.linalg.svdvals(self.C)
        return float(singular[singular > 1e-10 * singular.max()].min() ** 2)
