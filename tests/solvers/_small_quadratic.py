"""A small random quadratic bilevel problem shared by the ITD checkpointing tests."""

from __future__ import annotations

import numpy as np
import torch

from bilevel.analysis import QuadraticBilevel
from bilevel.proofs_checks.instances import quadratic_objectives


def small_quadratic(seed: int = 0):
    """(outer, inner, x, y, 1 / L): d_x = 3, d_y = 6, kappa = 10, float64."""
    inst = QuadraticBilevel.random(3, 6, 10.0, seed)
    outer, inner = quadratic_objectives(inst)
    rng = np.random.default_rng(seed)
    x, y = (torch.from_numpy(rng.standard_normal(k)) for k in (3, 6))
    return outer, inner, x, y, 1.0 / float(inst.constants.L)
