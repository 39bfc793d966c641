"""The pytest plugin (entry point ``pytest11``) is loaded and its fixture works."""

from __future__ import annotations

import numpy as np


def test_quadratic_instance_fixture(quadratic_instance) -> None:
    assert (quadratic_instance.d_x, quadratic_instance.d_y) == (3, 5)
    eigs = np.linalg.eigvalsh(quadratic_instance.as_numpy()["A"])
    assert abs(eigs.max() / eigs.min() / 100.0 - 1) < 1e-10


def test_strategies_draw_what_they_promise(bilevel_strategies) -> None:
    from hypothesis import given, settings

    st = bilevel_strategies

    @settings(max_examples=10, deadline=None)
    @given(st.spd_matrices(dim=4, max_kappa=1e3), st.pl_functions(max_dim=4))
    def check(matrix, game) -> None:
        eigs = np.linalg.eigvalsh(matrix)
        assert np.allclose(matrix, matrix.T) and eigs.min() > 0
        assert eigs.max() / eigs.min() <= 1e3 * (1 + 1e-8)
        assert game.pl_constant() > 0

    @settings(max_examples=3, deadline=None)
    @given(st.quadratic_bilevel(d_x=2, d_y=3, max_kappa=100.0))
    def check_quadratic(inst) -> None:
        assert (inst.d_x, inst.d_y) == (2, 3) and float(inst.constants.kappa) <= 100 * (1 + 1e-8)

    check()
    check_quadratic()
