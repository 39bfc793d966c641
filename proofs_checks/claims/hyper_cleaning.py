r"""Data hyper-cleaning on scikit-learn's digits with 50% of the training labels corrupted (the
data of figure 4): the minimax reformulation with multi-stage GDA (first-order oracles only)
against AID-BiO, ITD-BiO and stocBiO, each run recording test accuracy, oracle calls by type and
seconds.

- ``hyper-cleaning/minimax-matches-aid``: multi-stage GDA ends within 0.01 of AID-BiO's final
  test accuracy while making no Hessian-vector or mixed-product call (spec 2.5; Wang et al.'s
  abstract claims lower cost at comparable accuracy). Every method beats the unweighted
  model's 0.778 by 0.1, and the GDA run is the multi-stage method the claim names: its final
  penalty is lambda_0 rho^(S - 1) = 10 x 2^2 = 40 (a single stage at lambda = 1 reaches the
  same accuracy here, so the accuracy alone does not show which method ran).
- ``hyper-cleaning/minimax-cost-to-accuracy``: the abstract's "significantly reducing the
  computational cost", with the margin fixed before the runs: over seeds 0, 1, 2 (each its own
  corruption and split), the cost of multi-stage GDA to first reach test accuracy 0.90 is at
  most half that of AID-BiO, ITD-BiO and stocBiO (each with the settings above). Cost is
  counted in gradient-equivalent oracle calls: a gradient is 1, a Hessian-vector or mixed
  product 2 (Pearlmutter's reverse-over-reverse product costs about two gradients). A
  baseline that never reaches 0.90 within its run is charged what it spent (a lower bound on
  its cost, so the comparison can only favour it). GDA must reach the target, with no
  second-order call and the multi-stage penalty schedule. Seconds to the target are measured
  and reported beside the counts, not judged (a time is not reproducible).
"""

from __future__ import annotations

import torch

from ..engine import Claim, Measurement, Params, Verdict, check, judged
from ..slots import implementation

METHODS = ("minimax GDA", "AID-BiO", "ITD-BiO", "stocBiO")
UNWEIGHTED_ACCURACY = 0.778  # measured in tests/solvers/test_problems.py


def _algorithm(problem, method: str, seed: int):
    if method == "minimax GDA":
        return implementation("minimax-gda")(
            outer=problem.outer,
            inner=problem.inner,
            penalty=LAMBDA_0,
            outer_lr=100.0,
            inner_lr=0.1,
            auxiliary_lr=0.1,
            growth=GROWTH,
            stage_iterations=200,
            stages=STAGES,
        )
    common = {"inner_steps": 30, "inner_lr": 1.0, "outer_lr": 100.0}
    if method == "AID-BiO":
        return implementation("aid-bio")(
            outer=problem.outer, inner=problem.inner, solver="cg", solver_steps=10, **common
        )
    if method == "ITD-BiO":
        return implementation("itd-bio")(outer=problem.outer, inner=problem.inner, **common)
    n_train = problem.dims[0]
    return implementation("stocbio-bio")(
        outer=lambda x, y, batch: problem.outer(x, y),
        inner=problem.inner,
        sampler=lambda generator: torch.randint(0, n_train, (256,), generator=generator),
        generator=torch.Generator().manual_seed(seed),
        solver_steps=10,
        solver_lr=1.0,
        **common,
    )


LAMBDA_0, GROWTH, STAGES = 10.0, 2.0, 3


def measure_cleaning(params: Params) -> Measurement:
    from bilevel.solvers.problems import load_hyper_cleaning

    problem = load_hyper_cleaning(corruption=0.5, seed=params["seed"])
    n, d_y = problem.dims
    algo = _algorithm(problem, params["method"], params["seed"])
    x0, y0 = torch.zeros(n, dtype=torch.float64), torch.zeros(d_y, dtype=torch.float64)
    state, trace = algo.run(
        x0,
        y0,
        iterations=params["iterations"],
        metric=lambda s: problem.accuracy(s.y),
        metric_every=params["metric_every"],
    )
    rows = [r for r in trace if "test_metric" in r]
    return {
        "method": params["method"],
        "accuracy": [r["test_metric"] for r in rows],
        "first_order_calls": [r["grad_outer"] + r["grad_inner"] for r in rows],
        "second_order_calls": [r["hvp"] + r["mixed"] for r in rows],
        "seconds": [r["seconds"] for r in rows],
        "f1": problem.detection_f1(state.x),
        "final_penalty": float(getattr(state, "penalty", float("nan")) or 0.0)
        if params["method"] == "minimax GDA"
        else 0.0,
    }


def judge_cleaning(_: list[Params], ms: list[Measurement]) -> Verdict:
    def compare() -> tuple[str, str]:
        final = {m["method"]: m for m in ms}
        gda, aid = final["minimax GDA"], final["AID-BiO"]
        check(gda["second_order_calls"][-1] == 0, "minimax GDA made second-order calls")
        final_penalty = LAMBDA_0 * GROWTH ** (STAGES - 1)
        check(
            gda["final_penalty"] == final_penalty,
            f"minimax GDA ended at lambda = {gda['final_penalty']:g}, not lambda_0 rho^(S-1) = "
            f"{final_penalty:g}: not the multi-stage method",
        )
        check(
            gda["accuracy"][-1] >= aid["accuracy"][-1] - 0.01,
            f"minimax GDA {gda['accuracy'][-1]:.3f} vs AID-BiO {aid['accuracy'][-1]:.3f}",
        )
        for m in ms:
            check(
                m["accuracy"][-1] > UNWEIGHTED_ACCURACY + 0.1,
                f"{m['method']}: test accuracy {m['accuracy'][-1]:.3f}",
            )
        parts = [
            f"{m['method']}: acc {m['accuracy'][-1]:.3f}, 2nd-order calls "
            f"{m['second_order_calls'][-1]}"
            for m in ms
        ]
        return "; ".join(parts), ""

    return judged(
        "multi-stage GDA (lambda 10 -> 40) >= AID-BiO - 0.01 with no second-order calls",
        compare,
        power="a GDA accuracy below AID-BiO's by > 0.01; any second-order call; a final "
        "penalty other than lambda_0 rho^(S-1); any method within 0.1 of the unweighted model",
    )


TARGET_ACCURACY = 0.90
COST_MARGIN = 0.5  # GDA's cost to the target must be at most this fraction of each baseline's
SECOND_ORDER_WEIGHT = 2  # gradient-equivalents per Hessian-vector or mixed product


def _cost_to_target(m: Measurement) -> tuple[float, float, bool]:
    """(gradient-equivalent calls, seconds) at the first metric point with accuracy >= the
    target, and whether it was reached; else what the run spent in all (a lower bound)."""
    costs = [a + SECOND_ORDER_WEIGHT * b
             for a, b in zip(m["first_order_calls"], m["second_order_calls"], strict=True)]  # fmt: skip
    for accuracy, cost, seconds in zip(m["accuracy"], costs, m["seconds"], strict=True):
        if accuracy >= TARGET_ACCURACY:
            return cost, seconds, True
    return costs[-1], m["seconds"][-1], False


def judge_cost(params: list[Params], ms: list[Measurement]) -> Verdict:
    def compare() -> tuple[str, str]:
        parts = []
        for seed in sorted({p["seed"] for p in params}):
            runs = {m["method"]: m for p, m in zip(params, ms, strict=True) if p["seed"] == seed}
            gda = runs["minimax GDA"]
            check(gda["second_order_calls"][-1] == 0, f"seed {seed}: minimax GDA made "
                  "second-order calls")  # fmt: skip
            check(gda["final_penalty"] == LAMBDA_0 * GROWTH ** (STAGES - 1), f"seed {seed}: "
                  f"minimax GDA ended at lambda = {gda['final_penalty']:g}: not multi-stage")  # fmt: skip
            gda_cost, gda_seconds, reached = _cost_to_target(gda)
            check(reached, f"seed {seed}: minimax GDA never reached accuracy {TARGET_ACCURACY} "
                  f"(best {max(gda['accuracy']):.3f})")  # fmt: skip
            row = [f"seed {seed}: GDA {gda_cost:g} calls ({gda_seconds:.2f} s)"]
            for method in METHODS[1:]:
                cost, seconds, done = _cost_to_target(runs[method])
                check(gda_cost <= COST_MARGIN * cost, f"seed {seed}: GDA's cost {gda_cost:g} to "
                      f"accuracy {TARGET_ACCURACY} is above {COST_MARGIN} x {method}'s "
                      f"{'' if done else '>= '}{cost:g}")  # fmt: skip
                row.append(f"{method} {'' if done else '>'}{cost:g} ({seconds:.2f} s)")
            parts.append(", ".join(row))
        return "; ".join(parts), (
            f"gradient-equivalent calls to accuracy {TARGET_ACCURACY} (HVP = "
            f"{SECOND_ORDER_WEIGHT}); '>' marks a baseline that never reached it"
        )

    return judged(
        f"GDA's cost to test accuracy {TARGET_ACCURACY} <= {COST_MARGIN} x each baseline's, on "
        "every seed",
        compare,
        power=f"a GDA cost above {COST_MARGIN} x any baseline's on any seed (to the resolution "
        "of the metric grid: 5 GDA steps (15 calls), 2 outer steps for the baselines); GDA not "
        "reaching the target; any second-order call",
    )


ITERATIONS = {"minimax GDA": 600, "AID-BiO": 60, "ITD-BiO": 60, "stocBiO": 60}
EVERY = {"minimax GDA": 20, "AID-BiO": 2, "ITD-BiO": 2, "stocBiO": 2}

CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="hyper-cleaning/minimax-matches-aid",
        source="Wang, Pan, Pi & Zhang, arXiv:2305.13153 (abstract); spec 2.5, 6.8",
        statement="multi-stage GDA matches AID-BiO's test accuracy without second-order oracles",
        measure=measure_cleaning,
        judge=judge_cleaning,
        grids={
            "quick": [
                {"method": m, "seed": 0, "iterations": ITERATIONS[m], "metric_every": EVERY[m]}
                for m in METHODS
            ]
        },
        registry=("penalty/leading-bias",),
        slots=("minimax-gda", "aid-bio", "itd-bio", "stocbio-bio"),
    ),
    Claim(
        id="hyper-cleaning/minimax-cost-to-accuracy",
        source="Wang, Pan, Pi & Zhang, arXiv:2305.13153 (abstract: 'significantly reducing the "
        "computational cost'); spec 2.5, 6.8",
        statement="multi-stage GDA reaches test accuracy 0.90 at under half the oracle cost of "
        "AID-BiO, ITD-BiO and stocBiO, on every seed",
        measure=measure_cleaning,
        judge=judge_cost,
        grids={
            "quick": [
                {
                    "method": m,
                    "seed": s,
                    "iterations": ITERATIONS[m],
                    "metric_every": 5 if m == "minimax GDA" else EVERY[m],
                }
                for s in (0, 1, 2)
                for m in METHODS
            ]
        },
        registry=("penalty/leading-bias",),
        slots=("minimax-gda", "aid-bio", "itd-bio", "stocbio-bio"),
    ),
)
