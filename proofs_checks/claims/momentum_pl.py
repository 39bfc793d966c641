r"""The momentum family for a Polyak-Lojasiewicz lower level (Huang, arXiv:2303.03944; spec 3,
7.11), measured with ``bilevel.solvers.mgbio`` on the rank-deficient least-squares game.

- ``mgbio/surrogate-selection-invariance``: the slot's MGBiO direction at a fixed (x, y)
  (momentum 1, x and y frozen by steps of 1e-300, 2000 v-steps: v converges at 1 - mu/L =
  0.978 a step, so 800 left 1.6e-8 of it, which the closed form sees and the gap does not) is the same at two lower-level
  minimisers that differ by a null(C) vector of norm ~3 (spec 7.11: D^T C (C^T C)^+
  annihilates null(C)), and equals the closed form nu x + D^T (C^T)^+ (y - y_t) at both;
  relative tolerance 1e-10.
- ``mgbio/gradient-complexity``: the [abs] bound (gradient calls to ||grad F|| <= eps grow at
  most like eps^-2) cannot fail on a strongly convex outer problem, where MGBiO converges
  linearly (the old version's fitted exponent was at most ln 500 / ln 1e6 = 0.45 whatever the
  method did). What is checked as well is the count itself: the first iteration at which
  ||grad F|| <= eps (eps = 1e-1 .. 1e-7) equals that of the spec's rule run in numpy (within one
  step), and the oracle calls spent by then are the rule's K + 4 per iteration (K inner steps,
  then one linearisation: a gradient of f and of g, one HVP, one mixed product). The calls-to-eps exponent's 99% interval must lie
  below 2 (here it is near 0: log(1/eps) growth).
- ``msgbio/sample-complexity`` and ``vr-msgbio/sample-complexity``: samples to eps =
  iterations x samples per iteration. The samples per iteration must be the rule's one
  minibatch (counted: rows drawn plus 8 for each full-data evaluation; a full-batch method is
  refuted). The average (1/T) sum_t ||grad F(x_t)|| over seeds (the theorems bound the average
  over iterates) must decay at least like T^(-1/bound), bound 4 (MSGBiO) and 3 (VR-MSGBiO),
  over T in [T_max/16, T_max]: refuted on evidence at false-alarm probability 1e-6 (the
  one-sided t lower bound of the mean per-seed slope above -1/bound), inconclusive when the
  pooled slope is above -1/bound without significance. Power: with 8 seeds t_7 = 14.2 at
  1e-6, so only slopes above -1/bound by 5 standard deviations of a seed's slope (about 0.3)
  are refuted here; a stalled method (constant step, slope +0.07) is not, and is refuted by
  ``msgbio/update-rule`` instead. The last iterate's decay (slope -0.18 for MSGBiO) is slower
  than the bound's -1/4 at this horizon, the average's (-0.30) is not.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from bilevel.analysis import PLLeastSquaresGame
from bilevel.solvers.problems import PLGameProblem

from ..engine import Claim, Measurement, Params, Verdict, check, inconclusive_unless, judged
from ..rates import line_fit
from ..reference import PLGameOracles, mgbio_reference
from ..slots import implementation
from ..statistics import t_lower_bound

#: false-alarm probability of each sample-complexity verdict (the suite's per-test level)
SAMPLE_COMPLEXITY_ALPHA = 1e-6

SOURCE = "Huang, arXiv:2303.03944 (template [substitute]); spec 3.2, 7.11"


def pl_game(seed: int):
    game = PLLeastSquaresGame.random(m=8, d_x=3, d_y=6, rank=3, seed=seed, nu=0.5)
    arrays = {k: np.array(getattr(game, k), dtype=float) for k in ("C", "D", "y_target")}
    return game, PLGameProblem.from_arrays(arrays, nu=float(game.nu))


def _mgbio_frozen_direction(problem, x, y, solver_lr: float, steps: int) -> torch.Tensor:
    """The slot's MGBiO surrogate direction at a fixed (x, y): momentum 1 (m = w), the inner
    and outer steps 1e-300 (x and y do not move in float64), ``steps`` v-steps of ``solver_lr``."""
    algo = implementation("mgbio")(
        outer=lambda a, b: problem.outer(a, b),
        inner=lambda a, b: problem.inner(a, b),
        inner_lr=1e-300,
        solver_lr=solver_lr,
        outer_lr=1e-300,
        momentum=1.0,
    )
    state = algo.init(x, y)
    for _ in range(steps):
        state = algo.step(state)
    return state.m


def measure_invariance(params: Params) -> Measurement:
    game, problem = pl_game(params["seed"])
    L = game.smoothness_constant()
    x = torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64)
    base = torch.as_tensor(np.asarray(game.gd_limit(np.zeros(6), backend="numpy")(x.numpy())))
    null = torch.as_tensor(np.array(game.null_projector, dtype=float) @ np.ones(6))
    surrogate = game.surrogate_hypergradient(backend="numpy")
    directions, closed = [], []
    for y in (base, base + params["shift"] * null):
        w = _mgbio_frozen_direction(problem, x, y, 1 / L, params["solver_steps"])
        directions.append(w.tolist())
        closed.append(np.asarray(surrogate(x.numpy(), y.numpy()), dtype=float).ravel().tolist())
    return {
        "directions": directions,
        "closed": closed,
        "shift_norm": params["shift"] * float(null.norm()),
    }


def judge_invariance(_: list[Params], ms: list[Measurement]) -> Verdict:
    def compare() -> tuple[str, str]:
        m = ms[0]
        a, b = (np.asarray(d) for d in m["directions"])
        gap = float(np.linalg.norm(a - b)) / float(np.linalg.norm(a))
        # v converges at 1 - mu/L = 0.978 per step (2000 steps: 5e-20): what is left is round-off
        check(gap <= 1e-10, f"directions differ by {gap:.2e} (relative)")
        for i, (d, c) in enumerate(zip(m["directions"], m["closed"], strict=True)):
            off = float(np.linalg.norm(np.subtract(d, c))) / float(np.linalg.norm(c))
            check(off <= 1e-10, f"minimiser {i}: direction off the closed form by {off:.2e}")
        return (
            f"relative gap {gap:.1e} for minimisers {m['shift_norm']:.2f} apart; both equal "
            "nu x + D^T (C^T)^+ (y - y_t)",
            "tol 1e-10",
        )

    return judged(
        "one surrogate direction on all of S(x), equal to spec 7.11's closed form",
        compare,
        power="directions at two minimisers differing by > 1e-10 (relative), or either off "
        "the closed form by as much",
    )


def measure_complexity(params: Params) -> Measurement:
    game, problem = pl_game(params["seed"])
    L = game.smoothness_constant()
    y_gd = game.gd_limit(np.zeros(6), backend="numpy")
    surrogate = game.surrogate_hypergradient(backend="numpy")

    def grad_norm(x: np.ndarray) -> float:
        return float(np.linalg.norm(surrogate(x, y_gd(x))))

    hyper = {
        "inner_lr": 1 / L,
        "solver_lr": 1 / L,
        "outer_lr": params["outer_lr"],
        "momentum": params["momentum"],
        "inner_steps": params["inner_steps"],
    }
    algo = implementation("mgbio")(
        outer=lambda x, y: problem.outer(x, y), inner=lambda x, y: problem.inner(x, y), **hyper
    )
    x0, y0 = torch.ones(3, dtype=torch.float64), torch.zeros(6, dtype=torch.float64)
    _, trace = algo.run(
        x0,
        y0,
        iterations=params["iterations"],
        grad_phi=lambda x: torch.as_tensor(surrogate(x.numpy(), y_gd(x.numpy()))),
    )
    norms = [row["grad_norm"] for row in trace]
    calls = [row["grad_outer"] + row["grad_inner"] + row["hvp"] + row["mixed"] for row in trace]
    oracles = PLGameOracles(
        problem.C.numpy(), problem.D.numpy(), problem.y_target.numpy(), problem.nu
    )
    reference = mgbio_reference(oracles, x0.numpy(), y0.numpy(), params["iterations"], **hyper)
    reference_norms = [grad_norm(x) for x in reference]

    def first_hit(values: list[float], eps: float) -> int | None:
        return next((t for t, v in enumerate(values) if v <= eps), None)

    return {
        "eps": params["eps"],
        "hits": [first_hit(norms, e) for e in params["eps"]],
        "reference_hits": [first_hit(reference_norms, e) for e in params["eps"]],
        "calls": calls,
        "calls_per_step": params["inner_steps"] + 4,  # K + 1 grads of g, one of f, HVP, mixed
    }


def judge_complexity(_: list[Params], ms: list[Measurement]) -> Verdict:
    def compare() -> tuple[str, str]:
        m = ms[0]
        missing = [e for e, h in zip(m["eps"], m["hits"], strict=True) if h is None]
        check(not missing, f"||grad F|| <= eps never reached for eps = {missing}")
        per_step = m["calls_per_step"]
        for eps, hit, ref in zip(m["eps"], m["hits"], m["reference_hits"], strict=True):
            # the two runs agree to ~1e-15 relative; a hit can move by one step only if the
            # norm crosses eps within rounding of it
            check(
                ref is not None and abs(hit - ref) <= 1,
                f"eps = {eps:g}: reached at iteration {hit}, the rule reaches it at {ref}",
            )
            check(
                m["calls"][hit] == per_step * hit,
                f"eps = {eps:g}: {m['calls'][hit]} oracle calls in {hit} iterations, the rule "
                f"spends {per_step} per iteration",
            )
        calls = [m["calls"][h] for h in m["hits"]]
        slope, low, high = line_fit(np.log(1 / np.asarray(m["eps"])), np.log(calls))
        check(high <= 2.0, f"fitted exponent {slope:.3f} (99% [{low:.3f}, {high:.3f}]) exceeds 2")
        return (
            "calls to eps = "
            + ", ".join(str(c) for c in calls)
            + f" (= {per_step} x the rule's iterations); exponent {slope:.3f}",
            f"99% [{low:.3f}, {high:.3f}] <= 2",
        )

    return judged(
        "gradient calls to ||grad F|| <= eps = (K + 4) x the rule's iterations, growing at most "
        "like eps^-2",
        compare,
        power="a first hit of any eps one iteration away from the numpy rule's, any other "
        "count of oracle calls per iteration, an exponent interval above 2",
    )


def measure_sample_complexity(params: Params) -> Measurement:
    """||grad F(x_t)|| along one seeded run (every ``every``-th iterate) and the samples spent:
    the rows the sampler drew plus all 8 rows for every evaluation on the full data."""
    game, problem = pl_game(params["game_seed"])
    L = game.smoothness_constant()
    y_gd = game.gd_limit(np.zeros(6), backend="numpy")
    surrogate = game.surrogate_hypergradient(backend="numpy")
    rows, drawn, full_data = params["batch"], [0], [0]

    def sampler(generator: torch.Generator) -> torch.Tensor:
        drawn[0] += rows
        return torch.randint(0, 8, (rows,), generator=generator)

    def inner(x: torch.Tensor, y: torch.Tensor, batch) -> torch.Tensor:
        full_data[0] += batch is None
        return problem.inner(x, y, batch)

    algo = implementation(params["method"])(
        outer=problem.outer,
        inner=inner,
        sampler=sampler,
        generator=torch.Generator().manual_seed(params["seed"]),
        inner_lr=1 / L,
        solver_lr=1 / L,
        outer_lr=0.5,
    )
    state = algo.init(torch.ones(3, dtype=torch.float64), torch.zeros(6, dtype=torch.float64))
    norms, steps = [], []
    for t in range(1, params["iterations"] + 1):
        state = algo.step(state)
        if t % params["every"] == 0:
            x = state.x.numpy()
            norms.append(float(np.linalg.norm(surrogate(x, y_gd(x)))))
            steps.append(t)
    return {
        "method": params["method"],
        "steps": steps,
        "norms": norms,
        "samples_per_step": (drawn[0] + 8 * full_data[0]) / (params["iterations"] + 1),
        "per_step": sum(state.counts.as_dict().values()) / params["iterations"],  # oracle calls
        "batch": rows,
    }


def _decay_slope(steps: np.ndarray, curves: np.ndarray, bins: int = 12) -> float:
    """Slope of log E||grad F|| on log t over t >= T/16, E taken over seeds and within 12
    log-spaced windows of t (the noise is autocorrelated over ~1/(eta_t gamma mu) steps, so a
    range of 16x in t is needed for a usable interval; 2x gave +-0.6)."""
    half = steps >= steps[-1] / 16
    edges = np.geomspace(steps[half][0], steps[-1] + 1, bins + 1)
    centres, values = [], []
    for lo, hi in itertools.pairwise(edges):
        inside = (steps >= lo) & (steps < hi)
        if inside.any():
            centres.append(np.exp(np.log(steps[inside]).mean()))
            values.append(curves[:, inside].mean())
    return float(np.polyfit(np.log(centres), np.log(values), 1)[0])


def judge_sample_complexity(bound: float):
    """The bound is on the average (1/T) sum_t E||grad F(x_t)|| (the theorems' form; here over
    the recorded iterates): samples to eps = iterations x samples per iteration, so (a) the
    samples per iteration must be the one minibatch the rule draws (measured: rows drawn plus 8
    for every full-data evaluation), and (b) the average must decay at least like
    T^(-1/bound). (b) is refuted only on evidence at false-alarm probability 1e-6: the
    one-sided t lower bound of the mean per-seed slope (seeds i.i.d.) above -1/bound; a pooled
    slope above -1/bound that the test cannot refute is inconclusive, never "holds"."""

    def judge(_: list[Params], ms: list[Measurement]) -> Verdict:
        def compare() -> tuple[str, str]:
            for m in ms:
                check(
                    m["samples_per_step"] == m["batch"],
                    f"{m['samples_per_step']:.2f} samples per step, the rule draws one minibatch "
                    f"of {m['batch']}: the sample count per iteration is not O(batch)",
                )
            steps = np.asarray(ms[0]["steps"], dtype=float)
            curves = np.asarray([m["norms"] for m in ms])
            averages = np.cumsum(curves, axis=1) / np.arange(1, curves.shape[1] + 1)
            pooled = _decay_slope(steps, averages)
            per_seed = [_decay_slope(steps, curve[None, :]) for curve in averages]
            mean, low = t_lower_bound(np.asarray(per_seed), SAMPLE_COMPLEXITY_ALPHA)
            check(
                low <= -1.0 / bound,
                f"the average E||grad F|| decays like T^{mean:.3f} (per-seed mean; 1 - 1e-6 "
                f"lower bound {low:.3f} > {-1.0 / bound:.3f} = -1/{bound:g}): samples grow "
                f"faster than eps^-{bound:g}" + (", the method stalls" if low > 0 else ""),
            )
            inconclusive_unless(
                pooled <= -1.0 / bound,
                f"pooled slope {pooled:.3f} is above -1/{bound:g} = {-1.0 / bound:.3f} (slower "
                f"than the bound) without significance (per-seed lower bound {low:.3f})",
            )
            exponent = -1 / pooled
            return (
                f"exponent {exponent:.2f} <= {bound:g} (pooled slope of the average {pooled:.3f};"
                f" per-seed mean {mean:.3f}, {len(ms)} seeds); {ms[0]['samples_per_step']:g} "
                "samples per step",
                f"slope >= {low:.3f} at 1 - 1e-6 (t, {len(ms) - 1} dof); refuted above "
                f"{-1.0 / bound:.3f}",
            )

        half_width = f"{t_margin(len(ms)):.2f} x the per-seed slope's standard deviation"
        return judged(
            f"samples to (1/T) sum E||grad F|| <= eps grow at most like eps^-{bound:g}",
            compare,
            power=f"samples per step other than one minibatch; a mean slope above "
            f"-1/{bound:g} by more than {half_width} (t, {len(ms) - 1} dof, 1e-6)",
        )

    return judge


def t_margin(seeds: int) -> float:
    """t_{1 - 1e-6, seeds - 1} / sqrt(seeds): the one-sided margin of the mean slope in units
    of the per-seed standard deviation."""
    from scipy import stats

    return float(stats.t.ppf(1 - SAMPLE_COMPLEXITY_ALPHA, seeds - 1)) / np.sqrt(seeds)


def _stochastic_runs(method: str, seeds: range, iterations: int) -> list[Params]:
    return [
        {
            "method": method,
            "seed": seed,
            "game_seed": 0,
            "batch": 1,
            "iterations": iterations,
            "every": 20,
        }
        for seed in seeds
    ]


CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="mgbio/surrogate-selection-invariance",
        source=SOURCE,
        statement="the PL surrogate does not depend on which lower-level minimiser is used",
        measure=measure_invariance,
        judge=judge_invariance,
        grids={"quick": [{"seed": 1, "shift": 3.0, "solver_steps": 2000}]},
        registry=("mgbio/gradients",),
        slots=("mgbio",),
    ),
    Claim(
        id="mgbio/gradient-complexity",
        source=SOURCE,
        statement="deterministic MGBiO needs O(eps^-2) gradient calls (upper bound)",
        measure=measure_complexity,
        judge=judge_complexity,
        grids={
            "quick": [
                {
                    "seed": 0,
                    "outer_lr": 0.5,
                    "momentum": 0.3,
                    "inner_steps": 2,
                    "iterations": 500,
                    "eps": [10.0**-k for k in range(1, 8)],
                }
            ]
        },
        registry=("mgbio/gradients",),
        slots=("mgbio",),
    ),
    Claim(
        id="msgbio/sample-complexity",
        source=SOURCE,
        statement="MSGBiO needs O~(eps^-4) samples (upper bound)",
        measure=measure_sample_complexity,
        judge=judge_sample_complexity(4.0),
        grids={
            "quick": _stochastic_runs("msgbio", range(8), 4000),
            "full": _stochastic_runs("msgbio", range(16), 20000),
        },
        registry=("msgbio/samples",),
        slots=("msgbio",),
    ),
    Claim(
        id="vr-msgbio/sample-complexity",
        source=SOURCE,
        statement="VR-MSGBiO needs O~(eps^-3) samples (upper bound)",
        measure=measure_sample_complexity,
        judge=judge_sample_complexity(3.0),
        grids={
            "quick": _stochastic_runs("vr-msgbio", range(8), 4000),
            "full": _stochastic_runs("vr-msgbio", range(16), 20000),
        },
        registry=("vr-msgbio/samples",),
        slots=("vr-msgbio",),
    ),
)
