"""The seed methods on data hyper-cleaning (digits, 50% of the training labels corrupted):
minimax GDA against AID-BiO (second-order oracle calls), BDA against RHG (spec 2.5, 5.5).

Reference: the existing AID-BiO test (``test_problems``) measured test accuracy 0.942 with 100
iterations of D = 30, N = 10 CG: 1000 Hessian-vector and 100 mixed products; the unweighted
model reaches 0.778."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("sklearn")

from bilevel.solvers.bda import BDA
from bilevel.solvers.minimax_gda import MinimaxGDA
from bilevel.solvers.problems import load_hyper_cleaning

AID_BIO_ACCURACY = 0.942  # measured by test_problems' AID-BiO run (see its docstring)


@pytest.fixture(scope="module")
def problem():
    return load_hyper_cleaning(corruption=0.5, seed=0)


def _start(problem):
    n, d_y = problem.dims
    return torch.zeros(n, dtype=torch.float64), torch.zeros(d_y, dtype=torch.float64)


def test_minimax_gda_matches_aid_bio_without_second_order_calls(problem) -> None:
    """Three stages (lambda = 10, 20, 40) of 200 simultaneous GDA steps: measured test accuracy
    0.953 and detection F1 0.940 with 600 gradients of f, 1200 of g and no HVP / mixed product;
    asserted within 0.01 of AID-BiO's 0.942 and F1 > 0.8."""
    algo = MinimaxGDA(
        problem.outer,
        problem.inner,
        10.0,
        lr_x=100.0,
        lr_y=0.1,
        lr_z=0.1,
        growth=2.0,
        stage_iterations=200,
        stages=3,
    )
    state, _ = algo.run(*_start(problem), iterations=600)
    assert state.counts.hvp == 0 and state.counts.mixed == 0
    assert problem.accuracy(state.y) >= AID_BIO_ACCURACY - 0.01
    assert problem.detection_f1(state.x) > 0.8


def test_bda_matches_or_beats_rhg(problem) -> None:
    """K = 10 inner steps from y0 = 0 each outer step, 60 outer steps, beta = 100: RHG (a = 0)
    and BDA (a = 0.5). Measured test accuracy: RHG 0.916, BDA 0.918; asserted BDA >= RHG - 0.005
    (one test sample of 450 is 0.0022) and both above the unweighted 0.778 + 0.1."""
    accuracies = {}
    for a in (0.0, 0.5):
        algo = BDA(problem.outer, problem.inner, 10, 1.0, 1.0, 100.0, aggregation=a)
        state, _ = algo.run(*_start(problem), iterations=60)
        accuracies[a] = problem.accuracy(state.y)
    assert accuracies[0.5] >= accuracies[0.0] - 0.005
    assert min(accuracies.values()) > 0.878
