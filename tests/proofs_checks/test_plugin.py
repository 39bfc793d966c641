"""The pytest plugin (entry point ``pytest11``) is loaded and its fixture works."""

from __future__ import annotations

import numpy as np


def test_quadratic_instance_fixture(quadratic_instance) -> None:
    assert (quadratic_instance.d_x, quadratic_instance.d_y) == (3, 5)
    eigs = np.linalg.eigvalsh(quadratic_instance.as_numpy()["A"])
    assert abs(eigs.max() / eigs.min() / 100.0 - 1) < 1e-10
