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
  iterations from the budget) is refuted. This is figure 5's data at one configuration (seed 0,
  the steps below); it is not robust evidence: with a step grid and other seeds the PL-game
  half does not hold (next claim's notes).
- ``momentum/equal-budget-over-seeds``: the experiment as a fair protocol over held-out
  seeds. Hyper-representation, seeds 4, 5, 6 (instance and start), a budget of 1500 oracle
  calls (every method that reaches the target does so within 1024), each method at its best outer step from the common grid {0.12, 0.24, 0.48, 0.96,
  1.92} (a diverging step is recorded and never chosen). Efficiency is the calls to reach
  validation loss 0.06 (1.5x the noise floor 0.04). Judged: MGBiO needs at most half the calls
  of double-loop AID-BiO (D = 50, CG N = 10) on every seed, and its recorded calls are its
  rule's 9 per iteration. Where AID-BiO's best step is the grid's largest, a larger one might
  do better, so the verdict is inconclusive (not a pass). Reported, not judged: the calls of
  single-loop SOBA (deterministic, constant steps) and each method's final loss.
  - What this does not support: the abstract's superiority over single-loop methods. On
    seeds 4-6, MGBiO / SOBA calls to the target are 0.97, 0.53 and 1.29.
  - Why the final loss is not judged: at 3000 calls (the second pass) all three end near the floor.
    With a bracketing grid, AID-BiO ends lowest on seed 4 (0.0365 against MGBiO's 0.0380),
    so the final loss ranks closeness to the floor, not speed.
  - The PL game is not judged either. On seeds 0-3, at each method's best step of {0.25,
    0.5, 1}, no method dominates. Best final ||grad F||: MGBiO 2e-14, 9.8e-7, 6.2e-4, 3e-15;
    AID-BiO 1.9e-14, 1.2e-5, 6.3e-6, 1.6e-15; SOBA 1.9e-14, 4.6e-6, 9.7e-5, 3.3e-15.
  - History: the margin was set after a first pass on these seeds, in which MGBiO needed 4-7x
    fewer calls than AID-BiO. Half is the conservative round number below that.
- ``momentum/stochastic-equal-budget``: the abstract's experiment for the stochastic methods.
  Hyper-representation with minibatches of 5 rows (the same rows of every task; ``inner_on`` /
  ``outer_on``), held-out seeds 20-31 (instance, start and sampler), 2000 oracle calls per run,
  each method at its best outer step of the common grid 0.0075 * 2^k, k = 0..8 (runs stop at
  the first diverging step). Judged: MSGBiO and VR-MSGBiO end with a full validation loss at
  most half that of double-loop stocBiO at the official code's loop lengths (T = Q = 10,
  spec 6.8's 20 Newsgroups defaults), as a geometric mean over the seeds, r = mean_s ln(L_stocBiO
  / L_method) >= ln 2. Refuted on evidence: the one-sided t upper bound of r (seeds i.i.d.) below
  ln 2, at false-alarm probability 5e-7 per method (1e-6 for the claim); a point estimate below
  ln 2 that the test cannot refute is inconclusive. Refuted outright: a momentum method whose
  recorded calls or drawn minibatches are not its rule's (MSGBiO 5 calls a step: grad_y g, and
  grad f, the linearisation of g, one HVP, one mixed product on one fresh minibatch; VR-MSGBiO
  10: STORM evaluates the same five at the previous point on the same minibatch; init 5 calls,
  one minibatch), any full-data evaluation inside a step (an equal-budget race is only fair
  with honest counts: a full-batch method is refuted here), or a method diverging at every
  step. Inconclusive: stocBiO's best step on the grid's edge (a wider grid might help it).
  Power: with 12 seeds t_11 = 9.70 at 5e-7, so r is refuted only below ln 2 - 2.80 s (s the
  seeds' standard deviation of ln(L_stocBiO / L_method), 1.1 on seeds 20-31): a true ratio
  below about 2 e^-3 = 0.1, a momentum method ending ten times above stocBiO's loss; the
  deterministic checks carry the rest (they refute both full-batch wrong implementations). Reported, not judged: stocBiO with T = Q = 1 (nearly single-loop) and SOBA.
  - What this does not support: superiority over single-loop methods. In the pilot (seeds 10-15)
    stocBiO with T = Q = 1 ended at 0.048 / 0.60 / 0.049 / 0.077 / 0.063 / 0.046 against
    MSGBiO's 0.032 / 0.127 / 0.047 / 0.448 / 0.038 / 0.074, and SOBA below both on most seeds.
  - Measured (seeds 20-31): geometric-mean loss ratio stocBiO / MSGBiO 6.74 (per seed 1.0 to
    35), stocBiO / VR-MSGBiO 7.48 (1.8 to 34); reported: stocBiO / (stocBiO, T = Q = 1) 7.32
    and stocBiO / SOBA 9.03, both above MSGBiO's.
  - History: two pilots, calls to loss 0.06 (seeds 4-6, 10-17; stocBiO at T = Q = 10 often
    never reached it) and then the final loss at 2000 calls (seeds 10-17: ratios stocBiO /
    MSGBiO 2.7 to 47). The margin 2 and the seeds 20-31 were fixed before those seeds were run.
  - Not encoded: the PL game. With one-row minibatches stocBiO and SOBA (methods for a strongly
    convex lower level) blew up at every step down to 0.0075 on pilot seeds 10-13 (||grad F||
    1e2 to 1e11 after 2000 calls, against 0.04-0.19 for MSGBiO and VR-MSGBiO): a loss ratio
    there measures applicability, not speed.
"""

from __future__ import annotations

import numpy as np
import torch

from ..engine import Claim, Measurement, Params, Verdict, check, inconclusive_unless, judged
from ..slots import implementation
from ..statistics import t_lower_bound
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


def _hyper_representation_setup(method: str, seed: int, outer_lr: float):
    """(algorithm, x0, y0) on ``make_hyper_representation(seed)``: MGBiO (5 inner steps) or
    double-loop AID-BiO (D = 50, CG N = 10), inner steps 0.1, x0 ~ 0.3 N(0, I) from seed + 1."""
    from bilevel.solvers.problems import make_hyper_representation

    problem = make_hyper_representation(seed=seed)
    d_x, d_y = problem.dims
    x0 = torch.as_tensor(0.3 * np.random.default_rng(seed + 1).standard_normal(d_x))
    y0 = torch.zeros(d_y, dtype=torch.float64)
    if method == "MGBiO":
        algo = implementation("mgbio")(
            outer=problem.outer, inner=problem.inner, inner_lr=0.1, solver_lr=0.1,
            outer_lr=outer_lr, momentum=0.5, inner_steps=5,
        )  # fmt: skip
    elif method == "AID-BiO":
        algo = implementation("aid-bio")(
            outer=problem.outer, inner=problem.inner, inner_steps=50, inner_lr=0.1,
            outer_lr=outer_lr, solver="cg", solver_steps=10,
        )  # fmt: skip
    else:
        algo = implementation("soba")(
            outer=lambda x, y, _batch: problem.outer(x, y),
            inner=lambda x, y, _batch: problem.inner(x, y),
            sampler=lambda _generator: None, generator=torch.Generator().manual_seed(seed),
            inner_lr=0.1, outer_lr=outer_lr,
        )  # fmt: skip
    return algo, x0, y0


def _hyper_representation(method: str, budget: int) -> Measurement:
    algo, x0, y0 = _hyper_representation_setup(method, 0, 0.03)
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


STEP_GRID = (0.12, 0.24, 0.48, 0.96, 1.92)
TARGET_LOSS = 0.06  # 1.5 x the noise floor 0.04
FAIR_METHODS = ("MGBiO", "AID-BiO", "SOBA")


def _hyper_representation_at(method: str, seed: int, outer_lr: float, budget: int) -> dict:
    algo, x0, y0 = _hyper_representation_setup(method, seed, outer_lr)
    try:
        _, trace = algo.run(x0, y0, oracle_calls=budget)
    except FloatingPointError as diverged:
        return {
            "loss": None,
            "calls": budget,
            "steps": 0,
            "to_target": None,
            "diverged": str(diverged)[:200],
        }
    calls = _calls(trace)
    reached = [c for r, c in zip(trace, calls, strict=True) if r["outer_value"] <= TARGET_LOSS]
    return {"loss": trace[-1]["outer_value"], "calls": calls[-1], "steps": len(trace) - 1,
            "to_target": reached[0] if reached else None}  # fmt: skip


def measure_fair(params: Params) -> Measurement:
    runs = {str(lr): _hyper_representation_at(params["method"], params["seed"], lr,
                                              params["budget"]) for lr in STEP_GRID}  # fmt: skip
    reached = [lr for lr in runs if runs[lr]["to_target"] is not None]
    best = min(reached, key=lambda lr: runs[lr]["to_target"]) if reached else None
    return {**params, "runs": runs, "best_lr": None if best is None else float(best),
            "best": None if best is None else runs[best]["to_target"]}  # fmt: skip


def judge_fair(params: list[Params], ms: list[Measurement]) -> Verdict:
    def compare() -> tuple[str, str]:
        parts = []
        for seed in sorted({p["seed"] for p in params}):
            by = {m["method"]: m for m in ms if m["seed"] == seed}
            for lr, run in by["MGBiO"]["runs"].items():
                check(not run["steps"] or run["calls"] == 9 * run["steps"], f"seed {seed}, step "
                      f"{lr}: MGBiO recorded {run['calls']} calls in {run['steps']} iterations, "
                      "its rule spends 9 per iteration (5 inner gradients + 4)")  # fmt: skip
            ours, aid, soba = (by[k] for k in FAIR_METHODS)
            check(ours["best"] is not None, f"seed {seed}: MGBiO never reached loss "
                  f"{TARGET_LOSS} at any step")  # fmt: skip
            if aid["best"] is not None:
                check(ours["best"] <= 0.5 * aid["best"], f"seed {seed}: MGBiO needs "
                      f"{ours['best']} calls to loss {TARGET_LOSS}, above half AID-BiO's "
                      f"{aid['best']}")  # fmt: skip
                inconclusive_unless(aid["best_lr"] < STEP_GRID[-1], f"seed {seed}: AID-BiO's "
                                    f"best step is the grid's largest ({STEP_GRID[-1]})")  # fmt: skip
            soba_calls = "never" if soba["best"] is None else str(soba["best"])
            finals = {k: min((r["loss"] for r in by[k]["runs"].values() if r["loss"]),
                             default=None) for k in FAIR_METHODS}  # fmt: skip
            parts.append(
                f"seed {seed}: calls to {TARGET_LOSS}: MGBiO {ours['best']} (step "
                f"{ours['best_lr']:g}), AID-BiO {aid['best'] or 'never'}, SOBA {soba_calls} "
                f"(reported); best final loss MGBiO {finals['MGBiO']:.4f}, AID-BiO "
                f"{finals['AID-BiO']:.4f}, SOBA {finals['SOBA']:.4f}"
            )
        return "; ".join(parts), "best of the step grid per method; 1500 oracle calls each"

    return judged(
        f"MGBiO reaches loss {TARGET_LOSS} in <= 1/2 of double-loop AID-BiO's oracle calls on "
        "every held-out seed",
        compare,
        power="MGBiO's calls to the target above half of AID-BiO's on any of the 3 seeds "
        "(deterministic runs; resolution one iteration, 9 calls); MGBiO's recorded calls off "
        "its rule's count",
    )


STOCHASTIC_GRID = tuple(0.0075 * 2**k for k in range(9))  # 0.0075 .. 1.92
STOCHASTIC_BUDGET = 2000
STOCHASTIC_ROWS = 5
STOCHASTIC_SEEDS = tuple(range(20, 32))
STOCHASTIC_ALPHA = 5e-7  # per momentum method: 1e-6 for the claim
#: (slot, options) per method; the two stocBiO rows differ in their loop lengths only
STOCHASTIC_METHODS = {
    "MSGBiO": ("msgbio", {"solver_lr": 0.1}),
    "VR-MSGBiO": ("vr-msgbio", {"solver_lr": 0.1}),
    "stocBiO": ("stocbio-bio", {"inner_steps": 10, "solver_steps": 10, "solver_lr": 0.1}),
    "stocBiO (T = Q = 1)": ("stocbio-bio", {"inner_steps": 1, "solver_steps": 1, "solver_lr": 0.1}),
    "SOBA": ("soba", {}),
}
MOMENTUM_RULES = {"MSGBiO": 5, "VR-MSGBiO": 10}  # oracle calls per step (module docstring)
INIT_CALLS = 5


def _stochastic_run(method: str, seed: int, outer_lr: float) -> dict:
    """One seeded run to STOCHASTIC_BUDGET oracle calls: the full validation loss at the end,
    the calls and steps, the minibatches drawn and the full-data evaluations inside the steps."""
    from bilevel.solvers.problems import make_hyper_representation

    problem = make_hyper_representation(seed=seed)
    d_x, d_y = problem.dims
    x = torch.as_tensor(0.3 * np.random.default_rng(seed + 1).standard_normal(d_x))
    y = torch.zeros(d_y, dtype=torch.float64)
    drawn, full = [0], [0]

    def sampler(generator: torch.Generator) -> torch.Tensor:
        drawn[0] += 1
        return torch.randint(0, problem.train[0].shape[1], (STOCHASTIC_ROWS,), generator=generator)

    def counted(objective):
        def on_batch(a: torch.Tensor, b: torch.Tensor, rows) -> torch.Tensor:
            full[0] += rows is None
            return objective(a, b, rows)

        return on_batch

    slot, options = STOCHASTIC_METHODS[method]
    algo = implementation(slot)(
        outer=counted(problem.outer_on), inner=counted(problem.inner_on), sampler=sampler,
        generator=torch.Generator().manual_seed(1000 + seed), inner_lr=0.1, outer_lr=outer_lr,
        **options,
    )  # fmt: skip
    try:
        state = algo.init(x, y)
        while state.counts.total < STOCHASTIC_BUDGET:
            state = algo.step(state)
    except FloatingPointError as diverged:
        return {"loss": None, "diverged": str(diverged)[:200]}
    loss = float(problem.outer(state.x, state.y))
    if not np.isfinite(loss):
        return {"loss": None, "diverged": f"validation loss {loss} at the budget"}
    return {"loss": loss, "calls": state.counts.total, "steps": state.iteration,
            "minibatches": drawn[0], "full_data": full[0]}  # fmt: skip


def measure_stochastic(params: Params) -> Measurement:
    runs = {}
    for lr in STOCHASTIC_GRID:  # ascending: the first diverging step ends the sweep
        runs[f"{lr:g}"] = _stochastic_run(params["method"], params["seed"], lr)
        if runs[f"{lr:g}"]["loss"] is None:
            break
    finite = {lr: run["loss"] for lr, run in runs.items() if run["loss"] is not None}
    best = min(finite, key=finite.get) if finite else None
    return {**params, "runs": runs, "best_lr": None if best is None else float(best),
            "best": None if best is None else finite[best]}  # fmt: skip


def _check_counts(method: str, seed: int, runs: dict) -> None:
    per_step = MOMENTUM_RULES[method]
    for lr, run in runs.items():
        if run["loss"] is None:
            continue
        where = f"{method}, seed {seed}, step {lr}"
        check(run["calls"] == INIT_CALLS + per_step * run["steps"], f"{where}: {run['calls']} "
              f"oracle calls in {run['steps']} steps, the rule spends {INIT_CALLS} + "
              f"{per_step} a step")  # fmt: skip
        check(run["minibatches"] == 1 + run["steps"], f"{where}: {run['minibatches']} "
              f"minibatches in {run['steps']} steps, the rule draws one a step")  # fmt: skip
        check(run["full_data"] == 0, f"{where}: {run['full_data']} full-data evaluations "
              "inside the steps of a stochastic method")  # fmt: skip


def _log_ratios(by: dict, method: str, seeds: list[int]) -> np.ndarray:
    """ln(L_stocBiO / L_method) per seed, each at its best step."""
    return np.log([by["stocBiO", s]["best"] / by[method, s]["best"] for s in seeds])


def judge_stochastic(params: list[Params], ms: list[Measurement]) -> Verdict:
    def compare() -> tuple[str, str]:
        by = {(m["method"], m["seed"]): m for m in ms}
        seeds = sorted({p["seed"] for p in params})
        for method in MOMENTUM_RULES:
            for seed in seeds:
                _check_counts(method, seed, by[method, seed]["runs"])
                check(by[method, seed]["best"] is not None, f"{method}, seed {seed}: diverged "
                      "at every step of the grid")  # fmt: skip
        inconclusive_unless(all(by["stocBiO", s]["best"] is not None for s in seeds), "stocBiO "
                            "diverged at every step on some seed: no baseline")  # fmt: skip
        ratios = {method: _log_ratios(by, method, seeds) for method in MOMENTUM_RULES}
        parts, intervals = [], []
        for method, r in ratios.items():
            negated_mean, negated_low = t_lower_bound(-r, STOCHASTIC_ALPHA)
            mean, high = -negated_mean, -negated_low
            check(high >= np.log(2), f"{method}: ln(L_stocBiO / L_{method}) averages {mean:.2f} "
                  f"over {len(seeds)} seeds, 1 - {STOCHASTIC_ALPHA:g} upper bound {high:.2f} < "
                  "ln 2: not half stocBiO's loss")  # fmt: skip
            per_seed = ", ".join(f"{np.exp(v):.1f}" for v in r)
            parts.append(f"{method}: geometric-mean loss ratio stocBiO / {method} "
                         f"{np.exp(mean):.2f} (per seed {per_seed})")  # fmt: skip
            intervals.append(f"{method}: ratio <= {np.exp(high):.3g} at 1 - {STOCHASTIC_ALPHA:g}"
                             f" (detects a true ratio below {2 * np.exp(mean - high):.2g})")  # fmt: skip
        for method, r in ratios.items():
            inconclusive_unless(r.mean() >= np.log(2), f"{method}: geometric-mean loss ratio "
                                f"{np.exp(r.mean()):.2f} below 2 without significance")  # fmt: skip
        edge = {f"{STOCHASTIC_GRID[0]:g}", f"{STOCHASTIC_GRID[-1]:g}"}
        on_edge = [s for s in seeds if f"{by['stocBiO', s]['best_lr']:g}" in edge]
        inconclusive_unless(not on_edge, f"stocBiO's best step is on the grid's edge on seeds "
                            f"{on_edge}")  # fmt: skip
        for other in ("stocBiO (T = Q = 1)", "SOBA"):
            if all(by[other, s]["best"] is not None for s in seeds):
                ratio = np.exp(_log_ratios(by, other, seeds).mean())
                parts.append(f"{other} (reported): ratio stocBiO / it {ratio:.2f}")
        return "; ".join(parts), "; ".join(intervals) + f" ({STOCHASTIC_BUDGET} oracle calls)"

    return judged(
        "MSGBiO and VR-MSGBiO end at <= 1/2 of double-loop stocBiO's validation loss at equal "
        "oracle budgets (geometric mean over held-out seeds)",
        compare,
        power="a geometric-mean loss ratio stocBiO / method below 2 exp(-t_11 s / sqrt(12)) = "
        "2 exp(-2.80 s) at 5e-7 per method (s the seeds' sd of the log ratio, 1.1 here: ratios "
        "below ~0.1; the interval gives it per method); any off-rule count of oracle calls or "
        "minibatches, a full-data evaluation in a step, divergence at every step",
    )


CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="momentum/beats-double-loop",
        source="Huang, arXiv:2303.03944 (experiments [abs]; problems [substitute]); spec 3.5",
        statement="at figure 5's steps on seed 0, MGBiO ends below double-loop AID-BiO on the PL "
        "game and hyper-representation",
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
    Claim(
        id="momentum/equal-budget-over-seeds",
        source="Huang, arXiv:2303.03944 (abstract: experiments on hyper-representation "
        "learning [abs]; problem [substitute]); spec 3.5",
        statement="at each method's best step, MGBiO reaches the target loss in at most half "
        "the oracle calls of double-loop AID-BiO on held-out seeds (single-loop SOBA reported)",
        measure=measure_fair,
        judge=judge_fair,
        grids={
            "quick": [
                {"method": m, "seed": s, "budget": 1500} for s in (4, 5, 6) for m in FAIR_METHODS
            ]
        },
        registry=("mgbio/gradients",),
        slots=("mgbio", "aid-bio", "soba"),
    ),
    Claim(
        id="momentum/stochastic-equal-budget",
        source="Huang, arXiv:2303.03944 (abstract: experiments, stochastic methods [abs]; "
        "problem [substitute]); stocBiO loop lengths: official code, spec 6.8; spec 3.5",
        statement="at equal oracle budgets and each method's best step, MSGBiO and VR-MSGBiO "
        "end at most at half the validation loss of double-loop stocBiO over held-out seeds "
        "(stocBiO with T = Q = 1 and SOBA reported)",
        measure=measure_stochastic,
        judge=judge_stochastic,
        grids={
            "quick": [
                {"method": m, "seed": s} for s in STOCHASTIC_SEEDS for m in STOCHASTIC_METHODS
            ]
        },
        registry=("msgbio/samples", "vr-msgbio/samples"),
        slots=("msgbio", "vr-msgbio", "stocbio-bio", "soba"),
    ),
)
