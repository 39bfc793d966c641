r"""The momentum family's update rules, each run against the spec's rule in numpy on the
least-squares PL game (Huang, arXiv:2303.03944, spec 3.3; Li, Gu & Huang, AAAI 2022, spec 6.5).

Every stochastic run draws its minibatches (rows of the game) from a recording sampler; the
numpy reference (``reference.mgbio_reference``, ``msgbio_reference``, ``fsla_reference``)
replays the same batches in the order the rule draws them (one per step, MSGBiO one more at the
start), so a method that draws another number of batches, evaluates on the full data, or
updates differently departs from it. The first 30 iterates must agree to 1e-10 (relative; the
maps are evaluated in another order of float64 sums). The hyper-parameters are chosen so that
no weight is 0.5 or 1, where a swapped weight (1 - w for w) or a dropped term would coincide
with the right one.

- ``mgbio/update-rule``: MGBiO (beta = 0.3, eta = 0.7, K = 2 inner steps): the exponential
  average, the surrogate direction built from v_{t+1}.
- ``msgbio/update-rule``, ``vr-msgbio/update-rule``: the schedules eta_t = k / (m0 + t)^p
  (p = 1/2, 1/3), beta_{t+1} = c eta_t (c eta_t^2), and the momentum or STORM estimators.
- ``fsla/storm-recursion``: FSLA's STORM direction at eta = 0.3.
"""

from __future__ import annotations

import numpy as np
import torch

from ..engine import Claim, Measurement, Params, Verdict
from ..reference import (
    TRAJECTORY_STEPS,
    PLGameOracles,
    RecordingSampler,
    fsla_reference,
    judge_replayed_rule,
    mgbio_reference,
    msgbio_reference,
    run_iterates,
)
from ..slots import implementation
from .momentum_pl import SOURCE, pl_game


def _run(algo) -> list[list[float]]:
    return run_iterates(
        algo, torch.ones(3, dtype=torch.float64), torch.zeros(6, dtype=torch.float64)
    )


def measure_rule(params: Params) -> Measurement:
    game, problem = pl_game(params["seed"])
    L = game.smoothness_constant()
    oracles = PLGameOracles.of(problem)
    x0, y0 = np.ones(3), np.zeros(6)
    method = params["method"]
    if method == "mgbio":
        hyper = {
            "inner_lr": 1 / L,
            "solver_lr": 1 / L,
            "outer_lr": 0.5,
            "averaging": 0.7,
            "momentum": 0.3,
            "inner_steps": 2,
        }
        algo = implementation("mgbio")(
            outer=lambda x, y: problem.outer(x, y),
            inner=lambda x, y: problem.inner(x, y),
            **hyper,
        )
        xs = _run(algo)
        reference = mgbio_reference(oracles, x0, y0, TRAJECTORY_STEPS, **hyper)
        drawn, expected = 0, 0
    else:
        batch = params["batch"]
        sampler = RecordingSampler(
            lambda generator: torch.randint(0, 8, (batch,), generator=generator)
        )
        generator = torch.Generator().manual_seed(params["seed"])
        common = {"inner_lr": 1 / L, "solver_lr": 1 / L, "outer_lr": 0.5}
        if method == "fsla":
            algo = implementation("fsla")(
                outer=problem.outer,
                inner=problem.inner,
                sampler=sampler,
                generator=generator,
                inner_lr=1 / L,
                outer_lr=0.3,
                momentum=0.3,
            )
        else:
            algo = implementation(method)(
                outer=problem.outer,
                inner=problem.inner,
                sampler=sampler,
                generator=generator,
                schedule_k=0.5,
                schedule_m=4.0,
                schedule_c=0.8,
                **common,
            )
        xs = _run(algo)
        expected = TRAJECTORY_STEPS + (0 if method == "fsla" else 1)
        drawn = len(sampler.drawn)
        batches = sampler.replay(expected)
        if method == "fsla":
            reference = fsla_reference(
                oracles,
                x0,
                y0,
                batches,
                TRAJECTORY_STEPS,
                inner_lr=1 / L,
                outer_lr=0.3,
                momentum=0.3,
            )
        else:
            power = 0.5 if method == "msgbio" else 1 / 3

            def eta(t: int, power: float = power) -> float:
                return 0.5 / (4.0 + t) ** power

            exponent = 1 if method == "msgbio" else 2
            reference = msgbio_reference(
                oracles,
                x0,
                y0,
                batches,
                TRAJECTORY_STEPS,
                **common,
                eta=eta,
                beta=lambda t: 0.8 * eta(t - 1) ** exponent,
                storm=method == "vr-msgbio",
            )
    return {
        "iterates": xs,
        "reference": [x.tolist() for x in reference],
        "drawn": drawn,
        "expected_draws": expected,
    }


def judge_rule(params: list[Params], ms: list[Measurement]) -> Verdict:
    return judge_replayed_rule(
        params,
        ms,
        label="method",
        predicted="x_k = the spec's update rule (numpy, same minibatches) for 30 steps",
    )


def _claim(method: str, statement: str, source: str, batch: int = 2) -> Claim:
    name = "storm-recursion" if method == "fsla" else "update-rule"
    return Claim(
        id=f"{method}/{name}",
        source=source,
        statement=statement,
        measure=measure_rule,
        judge=judge_rule,
        grids={"quick": [{"method": method, "seed": s, "batch": batch} for s in (0, 1)]},
        registry={
            "mgbio": ("mgbio/gradients",),
            "msgbio": ("msgbio/samples",),
            "vr-msgbio": ("vr-msgbio/samples",),
        }.get(method, ()),
        slots=(method,),
    )


CLAIMS: tuple[Claim, ...] = (
    _claim(
        "mgbio",
        "MGBiO follows its update rule (exponential momentum, direction from v_{t+1})",
        SOURCE,
    ),
    _claim("msgbio", "MSGBiO follows its update rule (minibatch momentum, eta_t ~ t^-1/2)", SOURCE),
    _claim("vr-msgbio", "VR-MSGBiO follows its update rule (STORM, eta_t ~ t^-1/3)", SOURCE),
    _claim(
        "fsla",
        "FSLA's STORM direction follows its recursion at eta = 0.3",
        "Li, Gu & Huang, AAAI 2022; benchmark_bilevel solvers/fsla.py; spec 6.5",
    ),
)
