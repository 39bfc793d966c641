r"""The momentum family against its baselines (the data of figure 5; Huang, arXiv:2303.03944,
experiments [abs]: a bilevel PL game and hyper-representation learning, both [substitute]s
here, spec 3.5): deterministic MGBiO against double-loop AID-BiO (D = 50 inner steps, N = 10
solver steps per outer step) at the same budget of oracle calls.

- ``momentum/beats-double-loop``: on the PL game (||grad F|| of the surrogate along the GD
  selection) and on hyper-representation (validation loss), MGBiO ends below AID-BiO at equal
  oracle calls, and on hyper-representation it is within 2.5x of the noise floor 0.04. An
  equal-budget comparison is only as fair as the counts: MGBiO's recorded calls must be its
  rule's K + 4 per iteration (K inner gradients, then one gradient of f and of g, one HVP and
  one mixed product), so a method that under-reports its oracle calls (and so gets more
  iterations from the budget) is refuted.
"""

from __future__ import annotations

import numpy as np
import torch

from ..engine import Claim, Measurement, Params, Verdict, check, judged
from ..slots import implementation
from .momentum_pl import pl_game

PROBLEMS = ("pl-game", "hyper-representation")
METHODS = ("MGBiO", "AID-BiO")


def _pl_game(method: str, budget: int) -> Measurement:
    game, problem = pl_game(0)
    L = game.smoothness_constant()
    y_gd = game.gd_limit(np.zeros(6), backend="numpy")
    surrogate = game.surrogate_hypergradient(backend="numpy")

    def grad_phi(x: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(surrogate(x.numpy(), y_gd(x.numpy())))

    f = lambda x, y: problem.outer(x, y)  # noqa: E731
    g = lambda x, y: problem.inner(x, y)  # noqa: E731
    if method == "MGBiO":
        algo = implementation("mgbio")(
            outer=f, inner=g, inner_lr=1 / L, solver_lr=1 / L, outer_lr=0.5, momentum=0.5
        )
    else:  # Neumann solver: well defined on the singular Hessian (null space annihilated)
        algo = implementation("aid-bio")(
            outer=f,
            inner=g,
            inner_steps=50,
            inner_lr=1 / L,
            outer_lr=0.5,
            solver="neumann",
            solver_steps=10,
            solver_lr=1 / L,
        )
    x0, y0 = torch.ones(3, dtype=torch.float64), torch.zeros(6, dtype=torch.float64)
    _, trace = algo.run(x0, y0, oracle_calls=budget, grad_phi=grad_phi)
    return {
        "values": [r["grad_norm"] for r in trace],
        "calls": _calls(trace),
        "calls_per_step": 1 + 4 if method == "MGBiO" else None,
    }


def _hyper_representation(method: str, budget: int) -> Measurement:
    from bilevel.solvers.problems import make_hyper_representation

    problem = make_hyper_representation(seed=0)
    d_x, d_y = problem.dims
    x0 = torch.as_tensor(0.3 * np.random.default_rng(1).standard_normal(d_x))
    y0 = torch.zeros(d_y, dtype=torch.float64)
    if method == "MGBiO":
        algo = implementation("mgbio")(
            outer=problem.outer,
            inner=problem.inner,
            inner_lr=0.1,
            solver_lr=0.1,
            outer_lr=0.03,
            momentum=0.5,
            inner_steps=5,
        )
    else:
        algo = implementation("aid-bio")(
            outer=problem.outer,
            inner=problem.inner,
            inner_steps=50,
            inner_lr=0.1,
            outer_lr=0.03,
            solver="cg",
            solver_steps=10,
        )
    _, trace = algo.run(x0, y0, oracle_calls=budget)
    return {
        "values": [r["outer_value"] for r in trace],
        "calls": _calls(trace),
        "calls_per_step": 5 + 4 if method == "MGBiO" else None,
    }


def _calls(trace: list[dict]) -> list[int]:
    return [r["grad_outer"] + r["grad_inner"] + r["hvp"] + r["mixed"] for r in trace]


def measure_baselines(params: Params) -> Measurement:
    run = _pl_game if params["problem"] == "pl-game" else _hyper_representation
    return {**params, **run(params["method"], params["budget"])}


def judge_baselines(_: list[Params], ms: list[Measurement]) -> Verdict:
    def compare() -> tuple[str, str]:
        final = {(m["problem"], m["method"]): m["values"][-1] for m in ms}
        for m in ms:
            if m["calls_per_step"] is not None:
                steps = len(m["calls"]) - 1
                check(
                    m["calls"][-1] == m["calls_per_step"] * steps,
                    f"{m['problem']}: MGBiO recorded {m['calls'][-1]} oracle calls in {steps} "
                    f"iterations, its rule spends {m['calls_per_step']} per iteration",
                )
        parts = []
        for problem in PROBLEMS:
            ours, baseline = final[problem, "MGBiO"], final[problem, "AID-BiO"]
            check(ours < baseline, f"{problem}: MGBiO {ours:.3g} vs AID-BiO {baseline:.3g}")
            parts.append(f"{problem}: MGBiO {ours:.3g} vs AID-BiO {baseline:.3g}")
        floor = final["hyper-representation", "MGBiO"]
        check(floor < 0.1, f"hyper-representation loss {floor:.3g} not near the floor 0.04")
        return "; ".join(parts), "equal oracle-call budgets"

    return judged(
        "MGBiO ends below double-loop AID-BiO at equal oracle calls",
        compare,
        power="MGBiO not strictly below AID-BiO on either problem; MGBiO's recorded calls off its "
        "rule's count; a hyper-representation loss at or above 0.1",
    )


CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="momentum/beats-double-loop",
        source="Huang, arXiv:2303.03944 (experiments [abs]; problems [substitute]); spec 3.5",
        statement="MGBiO beats double-loop AID-BiO on the PL game and hyper-representation",
        measure=measure_baselines,
        judge=judge_baselines,
        grids={
            "quick": [
                {"problem": p, "method": m, "budget": 3000} for p in PROBLEMS for m in METHODS
            ]
        },
        registry=("mgbio/gradients", "mgbio/previous-deterministic"),
        slots=("mgbio", "aid-bio"),
    ),
)
