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


def test_a_users_suite_gets_the_summary_and_no_jit_warnings(tmp_path) -> None:
    """A user's suite outside this repository (its own rootdir, no conftest of ours): the
    installed plugin prints the false-alarm summary and hides torch's jit deprecation noise."""
    import subprocess
    import sys

    (tmp_path / "test_user.py").write_text(
        "import torch\n"
        "from bilevel.proofs_checks import assert_unbiased\n\n"
        "def test_mean_zero():\n"
        "    assert_unbiased(lambda g: torch.randn(2, generator=g, dtype=torch.float64),\n"
        "                    [0.0, 0.0], detectable_bias=1.0)\n"
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "statistical tests in this session: 1; false-alarm probability <= 1e-06" in out.stdout
    assert "jit" not in out.stdout
