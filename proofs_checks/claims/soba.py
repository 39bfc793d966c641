r"""SOBA (Dagreou, Ablin, Vaiter & Moreau, NeurIPS 2022), measured with ``bilevel.solvers``.

- ``soba/update-rule``: on the least-squares PL game with row minibatches, SOBA's first 30
  iterates equal Algorithm 1 run in numpy on the same recorded minibatches
  (``reference.soba_reference``) to 1e-10 (relative), with two minibatches per iteration, at
  constant and at the theorem's decreasing steps.
- ``soba/stationary-point``: without noise and with constant steps, SOBA is an affine map of
  (x, y, v) on a quadratic with strongly convex Phi (numpy rule ``soba_reference_step``); its
  fixed point's x is x* = argmin Phi = -H_Phi^-1 grad Phi(0) (both from
  ``bilevel.analysis``), to 1e-8, and ||grad Phi(x_k)|| decays with the map's spectral radius
  rho(M) to 1% in log. A single-loop method whose fixed point is off x* (a wrong sign, a
  missing term, v solved against the wrong right-hand side) stalls and is refuted.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..engine import Claim, Measurement, Params, Verdict, check, judged
from ..instances import (
    convex_phi_instance,
    hyperobjective_hessian,
    hyperobjective_minimiser,
    quadratic_objectives,
)
from ..rates import assert_linear_rate
from ..reference import (
    TRAJECTORY_STEPS,
    PLGameOracles,
    RecordingSampler,
    affine_rate_and_fixed_point,
    judge_replayed_rule,
    run_iterates,
    soba_reference,
    soba_reference_step,
)
from ..slots import implementation
from .momentum_pl import pl_game

SOURCE = "Dagreou, Ablin, Vaiter & Moreau, NeurIPS 2022, Algorithm 1; benchmark_bilevel soba.py"
FIXED_POINT_TOL = 1e-8


def measure_rule(params: Params) -> Measurement:
    game, problem = pl_game(params["seed"])
    L = game.smoothness_constant()
    oracles = PLGameOracles.of(problem)
    sampler = RecordingSampler(lambda generator: torch.randint(0, 8, (2,), generator=generator))
    hyper = {"inner_lr": 1 / L, "outer_lr": 0.3, "schedule": params["schedule"]}
    algo = implementation("soba")(
        outer=problem.outer,
        inner=problem.inner,
        sampler=sampler,
        generator=torch.Generator().manual_seed(params["seed"]),
        **hyper,
    )
    iterates = run_iterates(
        algo, torch.ones(3, dtype=torch.float64), torch.zeros(6, dtype=torch.float64)
    )
    expected = 2 * TRAJECTORY_STEPS
    reference = soba_reference(
        oracles, np.ones(3), np.zeros(6), sampler.replay(expected), TRAJECTORY_STEPS, **hyper
    )
    return {
        "iterates": iterates,
        "reference": [x.tolist() for x in reference],
        "drawn": len(sampler.drawn),
        "expected_draws": expected,
    }


def judge_rule(params: list[Params], ms: list[Measurement]) -> Verdict:
    return judge_replayed_rule(
        params,
        ms,
        label="schedule",
        predicted="x_k = Algorithm 1 (numpy, same minibatches) for 30 steps",
        rule="Algorithm 1 (one minibatch for g, one for f per step)",
    )


def measure_stationary(params: Params) -> Measurement:
    inst = convex_phi_instance(3, 5, 10.0, params["seed"])
    blocks = inst.as_numpy()
    hessian = hyperobjective_hessian(inst)
    grad_np = inst.hypergradient(backend="numpy")
    x_star = hyperobjective_minimiser(inst)
    L_g = float(inst.constants.L)
    L_phi = float(np.linalg.eigvalsh(hessian).max())
    hyper = {"inner_lr": 1 / L_g, "outer_lr": 0.5 / L_phi}
    d_x, d_y = 3, 5

    def affine_step(z: np.ndarray) -> np.ndarray:
        x, y, v = np.split(z, [d_x, d_x + d_y])
        return np.concatenate(soba_reference_step(blocks, x, y, v, **hyper))

    rho, fixed = affine_rate_and_fixed_point(affine_step, d_x + 2 * d_y)
    iterations = min(4000, math.ceil(math.log(1e-9) / math.log(rho))) if rho < 1 else 200
    f, g = quadratic_objectives(inst)
    algo = implementation("soba")(
        outer=lambda x, y, batch: f(x, y),
        inner=lambda x, y, batch: g(x, y),
        sampler=lambda generator: None,
        generator=torch.Generator().manual_seed(0),
        **hyper,
    )
    grad_phi = lambda x: torch.as_tensor(np.asarray(grad_np(x.numpy()), float).ravel())  # noqa: E731
    x0, y0 = torch.ones(3, dtype=torch.float64), torch.zeros(5, dtype=torch.float64)
    _, trace = algo.run(x0, y0, iterations=iterations, grad_phi=grad_phi)
    return {
        "rho": rho,
        "fixed_x": fixed[:d_x].tolist(),
        "x_star": x_star.tolist(),
        "grad_norms": [row["grad_norm"] for row in trace],
    }


def judge_stationary(params: list[Params], ms: list[Measurement]) -> Verdict:
    def compare() -> tuple[str, str]:
        fits = []
        for m in ms:
            check(
                m["rho"] < 1, f"the design's affine map does not contract: rho(M) = {m['rho']:.4f}"
            )
            gap = np.linalg.norm(np.subtract(m["fixed_x"], m["x_star"]))
            scale = 1 + np.linalg.norm(m["x_star"])
            check(
                gap <= FIXED_POINT_TOL * scale,
                f"the rule's fixed point is {gap:.2e} from x* = argmin Phi",
            )
            fits.append(assert_linear_rate(m["grad_norms"], m["rho"], tol=0.01))
        measured = "; ".join(f"rate {r.rho_hat:.5f} vs rho(M) {r.rho:.5f}" for r in fits)
        interval = "; ".join(f"[{r.interval[0]:.5f}, {r.interval[1]:.5f}]" for r in fits)
        return measured, interval + " (99%)"

    return judged(
        "||grad Phi(x_k)|| -> 0 like rho(M)^k; the fixed point is x* = argmin Phi",
        compare,
        power="a rate off rho(M) by >= 1% in log; no 10x decay where rho(M)^k predicts 1000x "
        f"(a fixed point off x*); the rule's fixed point off x* by > {FIXED_POINT_TOL:g}",
    )


CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="soba/update-rule",
        source=SOURCE,
        statement="SOBA follows Algorithm 1: one step of y, v and x per iteration, all at "
        "(x_k, y_k, v_k), one minibatch for g and one for f",
        measure=measure_rule,
        judge=judge_rule,
        grids={
            "quick": [
                {"schedule": schedule, "seed": seed}
                for schedule in ("constant", "decreasing")
                for seed in (0, 1)
            ]
        },
        registry=("soba/single-loop",),
        slots=("soba",),
    ),
    Claim(
        id="soba/stationary-point",
        source=SOURCE,
        statement="deterministic SOBA with constant steps converges linearly to argmin Phi",
        measure=measure_stationary,
        judge=judge_stationary,
        grids={"quick": [{"seed": 0}, {"seed": 1}]},
        registry=("soba/single-loop",),
        slots=("soba",),
    ),
)
