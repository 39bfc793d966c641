"""BDA against RHG on data hyper-cleaning (digits, 50% of the training labels corrupted; spec
5.5). Minimax GDA against AID-BiO on the same problem is the verify claim
``hyper-cleaning/minimax-matches-aid`` (tested in tests/proofs_checks/test_seed_claims.py); the
unweighted model reaches 0.778 (test_problems)."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("sklearn")

from bilevel.solvers.bda import BDA
from bilevel.solvers.problems import load_hyper_cleaning


@pytest.fixture(scope="module")
def problem():
    return load_hyper_cleaning(corruption=0.5, seed=0)


def _start(problem):
    n, d_y = problem.dims
    return torch.zeros(n, dtype=torch.float64), torch.zeros(d_y, dtype=torch.float64)


def test_bda_matches_or_beats_rhg(problem) -> None:
    """K = 10 inner steps from y0 = 0 each outer step, 60 outer steps, beta = 100: RHG (a = 0)
    and BDA (a = 0.5). Measured test accuracy: RHG 0.916, BDA 0.918; asserted BDA >= RHG - 0.005
    (one test sample of 450 is 0.0022) and both above the unweighted 0.778 + 0.1."""
    accuracies = {}
    for a in (0.0, 0.5):
        algo = BDA(
            outer=problem.outer,
            inner=problem.inner,
            inner_steps=10,
            upper_lr=1.0,
            inner_lr=1.0,
            outer_lr=100.0,
            aggregation=a,
        )
        state, _ = algo.run(*_start(problem), iterations=60)
        accuracies[a] = problem.accuracy(state.y)
    assert accuracies[0.5] >= accuracies[0.0] - 0.005
    assert min(accuracies.values()) > 0.878
