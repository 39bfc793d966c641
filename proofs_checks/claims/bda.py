r"""BDA on its non-singleton counterexample (Liu et al., ICML 2020 / TPAMI 2023; spec 5, 7.10),
measured with ``bilevel.solvers.bda`` against ``bilevel.analysis.bda``.

- ``bda/counterexample-minimiser``: with alpha_k = a/(k + 1), BDA's outer iterate is argmin phi_K
  (exact, from the aggregated dynamics; one Newton-sized step lands on it, three are run), and
  argmin phi_K approaches x* = 1 as K grows, while RHG (a = 0) stays at the lower-level-singleton
  answer 1/2. The grid's ``aggregation`` is a parameter: a = 0 is the planted failure.
- ``bda/aggregation-residual``: the non-singleton residual e_K / e_0 of the inner iterate equals
  the Gamma-function closed form Gamma(K + 1 - a s_u) / (Gamma(1 - a s_u) Gamma(K + 1)) and its
  log-log slope in K is -a s_u (asymptotic form; fitted over K = 200..1600).
- ``bda/geometric-schedule-stalls``: the official code's schedule (upper weight lr alpha 0.9^k)
  converges to 1/(1 + c^2), c = prod_k (1 - lr alpha 0.9^k) (~0.772 for lr = 0.1, alpha = 0.6),
  not to x* = 1 (spec 5.2, discrepancy 3 of spec 9).
- ``bda/one-stage-hypergradient``: the one-stage technique (TPAMI; spec 5.3) differentiates the
  last aggregated step only, its mixed product by a central difference. On the counterexample
  every objective is quadratic, so the central difference is exact up to rounding and the
  estimate has a closed form: grad_x F(x, y_K) - (w s_u d^2F/dxdy + l s_l d^2f/dxdy) v with
  v = grad_y F(x, y_K), y_K from the aggregated recursion in numpy; BDA's output must equal it
  to 1e-9 (rounding of the difference: u ||grad_x l|| / (2 eps ||v||) with eps ||v|| = 0.01).
  Its distance to the exact d phi_K / dx (reverse mode) is reported: the technique is an
  approximation, not asserted to vanish.

All four run the ``bda`` slot.
"""

from __future__ import annotations

import itertools

import numpy as np
import sympy as sp
import torch

from bilevel.analysis import bda as exact

from ..engine import Claim, Measurement, Params, Verdict, check, judged
from ..slots import implementation

SOURCE = "Liu, Mu, Yuan, Zeng & Zhang, ICML 2020 / TPAMI 2023; spec 7.10"


def upper(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """F(x, y) = 1/2 (x - y_2)^2 + 1/2 (y_1 - 1)^2."""
    return 0.5 * (x[0] - y[1]) ** 2 + 0.5 * (y[0] - 1) ** 2


def lower(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """f(x, y) = 1/2 y_1^2 - x y_1."""
    return 0.5 * y[0] ** 2 - x[0] * y[0]


def _newton_run(algo_kwargs: dict, weights, s_u, s_l, lower_weights=None) -> float:
    """Three outer steps of BDA with beta = 1 / phi_K'' (exact curvature) from x = 3, y = 0."""
    y_K = exact.aggregated_inner_iterate(weights, s_u, s_l, lower_weights=lower_weights)
    curvature = float(sp.expand(exact.upper_objective(exact.x, y_K)).coeff(exact.x, 2) * 2)
    algo = implementation("bda")(outer=upper, inner=lower, outer_lr=1 / curvature, **algo_kwargs)
    x0 = torch.tensor([3.0], dtype=torch.float64)
    state, _ = algo.run(x0, torch.zeros(2, dtype=torch.float64), iterations=3)
    return float(state.x[0])


def measure_minimiser(params: Params) -> Measurement:
    K, a, s = params["K"], params["aggregation"], params["step"]
    step = sp.nsimplify(s)
    weights = [sp.nsimplify(a) / (k + 1) for k in range(K)]
    kwargs = {"inner_steps": K, "upper_lr": s, "inner_lr": s, "aggregation": a}
    x_final = _newton_run(kwargs, weights, step, step)
    predicted = float(exact.aggregated_minimiser(weights, step, step))
    return {"K": K, "x": x_final, "predicted": predicted}


def judge_minimiser(_: list[Params], ms: list[Measurement]) -> Verdict:
    def compare() -> tuple[str, str]:
        ms_sorted = sorted(ms, key=lambda m: m["K"])
        for m in ms_sorted:
            # Newton's step on an exact quadratic: float64 rounding of a few operations.
            check(
                abs(m["x"] - m["predicted"]) <= 1e-12,
                f"K = {m['K']}: BDA ends at {m['x']:.15g}, argmin phi_K = {m['predicted']:.15g}",
            )
        distances = [abs(1 - m["x"]) for m in ms_sorted]
        check(
            all(b < a for a, b in itertools.pairwise(distances)),
            f"|x_K - 1| does not decrease in K: {distances}",
        )
        check(
            distances[-1] < 0.25,
            f"|x_K - 1| = {distances[-1]:.3g} at K = {ms_sorted[-1]['K']}: not closer to x* = 1 "
            "than RHG's 1/2",
        )
        measured = ", ".join(f"K={m['K']}: x={m['x']:.6f}" for m in ms_sorted)
        return measured, "exact to 1e-12"

    return judged(
        "x_K = argmin phi_K -> x* = 1 (RHG: 1/2)",
        compare,
        power="an end point off argmin phi_K by > 1e-12; |x_K - 1| not decreasing in K or not "
        "below 0.25",
    )


def measure_residual(params: Params) -> Measurement:
    """e_K / e_0 read from BDA's inner iterate after one outer step (x0 = 1, y0 = 0: e_0 = -1)."""
    a, s_u = params["aggregation"], params["step"]
    ratios = []
    for K in params["Ks"]:
        algo = implementation("bda")(
            outer=upper,
            inner=lower,
            inner_steps=K,
            upper_lr=s_u,
            inner_lr=s_u,
            outer_lr=1e-300,
            aggregation=a,
            gradient="one-stage",
        )
        state = algo.step(
            algo.init(torch.ones(1, dtype=torch.float64), torch.zeros(2, dtype=torch.float64))
        )
        ratios.append(float(state.y[1] - 1.0) / -1.0)
    return {"Ks": params["Ks"], "ratios": ratios, "power": a * s_u}


def judge_residual(_: list[Params], ms: list[Measurement]) -> Verdict:
    def compare() -> tuple[str, str]:
        m = ms[0]
        closed = [
            float(exact.harmonic_residual_gamma(sp.nsimplify(m["power"]), 1, K)) for K in m["Ks"]
        ]
        for K, got, want in zip(m["Ks"], m["ratios"], closed, strict=True):
            # K multiplications by factors in (0, 1]: relative rounding below K * 2^-52 * 4.
            check(
                abs(got - want) <= 4 * K * 2**-52 * max(abs(want), 1e-300),
                f"K = {K}: e_K/e_0 = {got:.15g}, Gamma form {want:.15g}",
            )
        slope = float(np.polyfit(np.log(m["Ks"]), np.log(m["ratios"]), 1)[0])
        # the next term of Gamma(K + 1 - p)/Gamma(K + 1) K^p is O(1/K): at K >= 200 it moves the
        # slope by less than p (1 - p) / 200 < 0.002.
        check(abs(slope + m["power"]) < 0.002, f"slope {slope:.5f} vs -a s_u = {-m['power']}")
        return f"slope {slope:.5f}; e_K/e_0 = Gamma form at every K", "closed form to rounding"

    return judged(
        "e_K / e_0 = Gamma(K+1-a s_u)/(Gamma(1-a s_u) Gamma(K+1)) ~ K^(-a s_u)",
        compare,
        power="a residual off the Gamma form by > 4 K u (relative); a slope off -a s_u by >= 0.002",
    )


def measure_geometric(params: Params) -> Measurement:
    K, lr, alpha = params["K"], params["lr"], params["alpha"]
    # sympy Floats (53-bit): exact rationals of 0.9^k grow too long to be worth it here
    weights = [sp.Float(lr * alpha * 0.9**k) for k in range(K)]
    lower_weights = [sp.Float(1 - alpha)] * K
    kwargs = {
        "inner_steps": K,
        "upper_lr": lr,
        "inner_lr": lr,
        "aggregation": alpha,
        "schedule": "geometric",
    }
    x_final = _newton_run(kwargs, weights, 1, sp.Float(lr), lower_weights)
    return {"x": x_final, "limit": exact.geometric_limit_minimiser(lr, alpha), "K": K, "lr": lr}


def judge_geometric(_: list[Params], ms: list[Measurement]) -> Verdict:
    def compare() -> tuple[str, str]:
        m = ms[0]
        # y_1 lags x by (1 - lr (1 - alpha))^K; its effect on the minimiser is below that.
        transient = (1 - m["lr"] * 0.4) ** m["K"]
        check(
            abs(m["x"] - m["limit"]) <= 2 * transient + 1e-12,
            f"x_K = {m['x']:.6f} vs 1/(1 + c^2) = {m['limit']:.6f}",
        )
        return (
            f"x_K = {m['x']:.6f} (x* = 1)",
            f"1/(1+c^2) = {m['limit']:.6f} +- {2 * transient:.1e}",
        )

    return judged(
        "the geometric schedule stalls at 1/(1 + c^2)",
        compare,
        power="an end point off 1/(1 + c^2) by more than twice the transient (1 - 0.4 lr)^K",
    )


def measure_one_stage(params: Params) -> Measurement:
    K, a, s = params["K"], params["aggregation"], params["step"]
    x = torch.tensor([params["x"]], dtype=torch.float64)
    y0 = torch.zeros(2, dtype=torch.float64)
    estimates = {}
    for gradient in ("one-stage", "reverse"):
        algo = implementation("bda")(
            outer=upper,
            inner=lower,
            inner_steps=K,
            upper_lr=s,
            inner_lr=s,
            outer_lr=1.0,
            aggregation=a,
            gradient=gradient,
        )
        state = algo.step(algo.init(x, y0))
        estimates[gradient] = float(x[0] - state.x[0])  # outer_lr = 1: x - x_next = estimate
    # the closed form: y_K by the aggregated recursion, then the last step's mixed product
    xv, y = float(x[0]), np.zeros(2)
    for k in range(K):
        w = a / (k + 1)
        grad_upper = np.array([y[0] - 1.0, -(xv - y[1])])
        grad_lower = np.array([y[0] - xv, 0.0])
        y = y - (w * s * grad_upper + (1 - w) * s * grad_lower)
    w_last, v = a / K, np.array([y[0] - 1.0, -(xv - y[1])])
    # d^2 F / dx dy = (0, -1), d^2 f / dx dy = (-1, 0)
    mixed = w_last * s * (-v[1]) + (1 - w_last) * s * (-v[0])
    closed = (xv - y[1]) - mixed
    return {
        "K": K,
        "one_stage": estimates["one-stage"],
        "reverse": estimates["reverse"],
        "closed": closed,
    }


def judge_one_stage(_: list[Params], ms: list[Measurement]) -> Verdict:
    def compare() -> tuple[str, str]:
        parts = []
        for m in ms:
            gap = abs(m["one_stage"] - m["closed"])
            check(
                gap <= 1e-9 * max(1.0, abs(m["closed"])),
                f"K = {m['K']}: one-stage {m['one_stage']:.12g} vs closed form {m['closed']:.12g}",
            )
            parts.append(
                f"K={m['K']}: {m['one_stage']:.6f} (closed {m['closed']:.6f}; d phi_K/dx "
                f"{m['reverse']:.6f})"
            )
        return "; ".join(parts), "tol 1e-9 (exact central difference on quadratics)"

    return judged(
        "one-stage estimate = its closed form (last step, exact central difference)",
        compare,
        power="an estimate off the closed form by > 1e-9 (a difference over eps for 2 eps "
        "doubles the mixed term)",
    )


CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="bda/counterexample-minimiser",
        source=SOURCE,
        statement="BDA (alpha_k = a/(k+1)) approaches x* = 1 where RHG stops at 1/2",
        measure=measure_minimiser,
        judge=judge_minimiser,
        grids={
            "quick": [{"K": K, "aggregation": 1.0, "step": 0.5} for K in (5, 20, 80)],
            "full": [{"K": K, "aggregation": 1.0, "step": 0.5} for K in (5, 20, 80, 320)],
        },
        registry=("bda/aggregation-error",),
        slots=("bda",),
    ),
    Claim(
        id="bda/aggregation-residual",
        source=SOURCE,
        statement="the non-singleton residual decays like the Gamma closed form, K^(-a s_u)",
        measure=measure_residual,
        judge=judge_residual,
        grids={"quick": [{"Ks": [200, 400, 800, 1600], "aggregation": 1.0, "step": 0.5}]},
        registry=("bda/aggregation-error", "bda/aggregation-rate"),
        slots=("bda",),
    ),
    Claim(
        id="bda/geometric-schedule-stalls",
        source="official code boml/lower_iter/aggr.py; spec 5.2",
        statement="the official geometric schedule converges to 1/(1 + c^2), not to x* = 1",
        measure=measure_geometric,
        judge=judge_geometric,
        grids={"quick": [{"K": 200, "lr": 0.1, "alpha": 0.6}]},
        registry=("bda/aggregation-error",),
        slots=("bda",),
    ),
    Claim(
        id="bda/one-stage-hypergradient",
        source="Liu et al., TPAMI 2023 (one-stage technique); BOAT na_ol/fd.py; spec 5.3",
        statement="BDA's one-stage hypergradient equals its closed form on the counterexample",
        measure=measure_one_stage,
        judge=judge_one_stage,
        grids={"quick": [{"K": K, "aggregation": 1.0, "step": 0.5, "x": 2.0} for K in (5, 40)]},
        registry=("bda/aggregation-error",),
        slots=("bda",),
    ),
)
