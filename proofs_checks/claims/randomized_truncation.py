r"""Estimator (un)biasedness: randomized truncation against first-order and truncated Neumann.

Randomized truncation (Ghadimi & Wang 2018; spec 7.7; VERIFICATION.md section 2): with a
geometric level N, P(N >= q) = (1 - p)^q, the estimate
grad_x f - (d^2 g/dx dy) eta sum_{q <= N} (I - eta H)^q b / (1 - p)^q is unbiased for the AID
hypergradient at y, grad_x f - (d^2 g/dx dy) H^-1 b (b = grad_y f), and has finite variance
iff (1 - eta mu)^2 < 1 - p (checked before the test, as the CLT needs it).

- ``rt-unbiased-exact`` (tier 0): E over N = 0..M enumerated (the estimator called at each
  level N = n, ``level=n``), with the probability of N > M and a bound on its contribution
  stated, equals the target to 1e-12 + that tail bound.
- ``rt-unbiased-ztest`` (tier 1): the fixed-seed Bonferroni z-test at alpha = 1e-6 with power
  1 - 1e-6 against a bias of 5% of ||target|| does not reject.
- ``fo-bias-closed-form`` and ``neumann-q3-bias-closed-form``: the first-order estimate and the
  3-term Neumann series are deterministic and biased; their bias (estimate - target) equals the
  closed form of ``bilevel.analysis`` (the Krylov form at K = 0, and ``neumann_hypergradient``
  at Q = 3, minus the target) to the rounding envelope c Q kappa u (``assert_bias_exact``). A
  z-test cannot judge a deterministic estimate (its variance is 0, so any error, 4e-16
  included, is "significant"); the control, the exact estimator against bias 0, must pass the
  same comparator.

The target comes from ``bilevel.analysis``: the Galerkin (CG) closed form with K = d_y, which is
exactly H^-1 b at y.
"""

from __future__ import annotations

import numpy as np
import torch

from bilevel.analysis import QuadraticBilevel

from ..comparators import assert_bias_exact, assert_expectation_exact, assert_unbiased
from ..engine import Claim, Measurement, Params, Verdict, judged
from ..instances import quadratic_objectives
from ..slots import implementation

SOURCE = "Ghadimi & Wang 2018; spec 7.7"
#: kappa = 4 with eta = 1/L: (1 - eta mu)^2 = 0.5625 < 1 - p = 0.7 (finite variance).
SETUP = {"kappa": 4.0, "p": 0.3, "d_y": 4, "seed": 0}
LEVELS = 150  # tier 0 enumerates N = 0..150; the tail bound below is ~1e-16


def setup_problem(params: Params):
    inst = QuadraticBilevel.random(
        d_x=2, d_y=params["d_y"], kappa=params["kappa"], seed=params["seed"]
    )
    rng = np.random.default_rng(params["seed"] + 1)
    x, y = rng.standard_normal(2), rng.standard_normal(params["d_y"])
    target = np.asarray(inst.cg_hypergradient(params["d_y"], y, backend="numpy")(x)).reshape(-1)
    k = inst.constants
    return inst, x, y, target, float(k.mu), float(k.L)


def _tail_bound(p: float, rho: float, levels: int, scale_0: float, scale_1: float) -> float:
    """sum_{n > M} P(N = n) ||estimate(n)||, with ||estimate(n)|| <= s0 + s1 sum_{q<=n}
    (rho/(1-p))^q: P(N=n)||est(n)|| <= p [s0 (1-p)^n + s1 (n+1) r^n], r = max(1-p, rho)."""
    r = max(1 - p, rho)
    m = levels
    geometric = (1 - p) ** (m + 1) / p
    arithmetic_geometric = r ** (m + 1) * ((m + 2) - (m + 1) * r) / (1 - r) ** 2
    return p * (scale_0 * geometric + scale_1 * arithmetic_geometric)


def measure_rt_exact(params: Params) -> Measurement:
    inst, x, y, target, mu, L = setup_problem(params)
    p, eta = params["p"], 1.0 / L
    outer, inner = quadratic_objectives(inst)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    rt = implementation("rt")
    outcomes = []
    for level in range(LEVELS + 1):
        estimate = rt(outer, inner, xt, yt, p=p, lr=eta, mu=mu, L=L, level=level).numpy()
        outcomes.append((p * (1 - p) ** level, estimate.tolist()))
    # the tail bound's scales from the closed forms (||grad_x f||, ||B|| eta ||grad_y f||)
    blocks = inst.as_numpy()
    grad_x_f = blocks["R"] @ x + blocks["r"].ravel() + blocks["S"] @ y
    grad_y_f = blocks["P"] @ y + blocks["p"].ravel() + blocks["S"].T @ x
    norm_b = float(np.linalg.norm(blocks["B"], 2))
    tail = _tail_bound(
        p,
        1 - eta * mu,
        LEVELS,
        float(np.linalg.norm(grad_x_f)),
        norm_b * eta * float(np.linalg.norm(grad_y_f)),
    )
    return {
        "outcomes": outcomes,
        "target": target.tolist(),
        "neglected_mass": (1 - p) ** (LEVELS + 1),
        "tail_bound": tail,
    }


def judge_rt_exact(_: list[Params], ms: list[Measurement]) -> Verdict:
    (m,) = ms
    tol = 1e-12 + m["tail_bound"]

    def compare() -> tuple[str, str]:
        mean = assert_expectation_exact(
            m["outcomes"], m["target"], tol=tol, neglected_mass=m["neglected_mass"]
        )
        error = float(np.linalg.norm(mean - np.asarray(m["target"])))
        return f"|E - target| = {error:.2e} (levels 0..{LEVELS})", f"tol {tol:.2e}"

    return judged(
        "E[estimate] = AID hypergradient at y (exact sum)",
        compare,
        power="any |E - target| above 1e-12 + the tail bound (exact enumeration, no sampling)",
    )


def _sampler(params: Params):
    inst, x, y, target, mu, L = setup_problem(params)
    outer, inner = quadratic_objectives(inst)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    rt = implementation("rt")

    def sample(generator: torch.Generator) -> torch.Tensor:
        return rt(outer, inner, xt, yt, p=params["p"], lr=1.0 / L, mu=mu, L=L, generator=generator)

    return sample, target


def _measure_ztest():
    def measure(params: Params) -> Measurement:
        sample, target = _sampler(params)
        bias = 0.05 * float(np.linalg.norm(target))
        try:
            r = assert_unbiased(
                sample,
                target,
                detectable_bias=bias,
                generator=torch.Generator().manual_seed(params["seed"]),
            )
        except AssertionError as refutation:
            return {"holds": False, "detail": str(refutation).split(";")[0], "bias": bias}
        return {
            "holds": True,
            "detail": f"z = {r.statistic:.2f} <= {r.threshold:.2f}, n = {r.n}",
            "interval": ", ".join(
                f"[{m - h:.4f}, {m + h:.4f}]" for m, h in zip(r.mean, r.half_width, strict=True)
            ),
            "bias": bias,
        }

    return measure


def judge_ztest(_: list[Params], ms: list[Measurement]) -> Verdict:
    (m,) = ms
    predicted = "unbiased (fixed-seed Bonferroni z-test, alpha = 1e-6)"
    outcome = "holds" if m["holds"] else "refuted"
    power = f"a bias >= {m['bias']:.3g} (5% of ||target||) in any coordinate, w.p. >= 1 - 1e-6"
    return Verdict(predicted, m["detail"], outcome, m.get("interval", ""), power)


def measure_deterministic_bias(params: Params) -> Measurement:
    """The estimate of ``params["method"]`` ("fo", or "neumann" with Q = 3), the exact
    estimator's (the control), the target and the closed-form estimate of bilevel.analysis."""
    inst, x, y, target, _, L = setup_problem(params)
    outer, inner = quadratic_objectives(inst)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    if params["method"] == "fo":
        estimate = implementation("fo")(outer, inner, xt, yt)
        closed = inst.cg_hypergradient(0, y, backend="numpy")(x)  # K = 0: v = 0
    else:
        estimate = implementation("neumann")(outer, inner, xt, yt, steps=3, lr=1.0 / L)
        closed = inst.neumann_hypergradient(3, 1.0 / L, y, backend="numpy")(x)
    control = implementation("exact")(outer, inner, xt, yt)
    return {
        "estimate": estimate.tolist(),
        "control": control.tolist(),
        "target": target.tolist(),
        "closed": np.asarray(closed, dtype=float).reshape(-1).tolist(),
        "kappa": float(inst.constants.kappa),
    }


def judge_deterministic_bias(params: list[Params], ms: list[Measurement]) -> Verdict:
    (p,), (m,) = params, ms
    steps = 3 if p["method"] == "neumann" else 1
    target = np.asarray(m["target"])
    predicted_bias = np.asarray(m["closed"]) - target

    def compare() -> tuple[str, str]:
        zero = np.zeros_like(target)
        control = assert_bias_exact(
            m["control"], target, zero, condition_number=m["kappa"], steps=steps
        )
        error = assert_bias_exact(
            m["estimate"], target, predicted_bias, condition_number=m["kappa"], steps=steps
        )
        return (
            f"||bias|| = {np.linalg.norm(predicted_bias):.4f} (predicted) matched to {error:.1e};"
            f" control (exact, bias 0) {control:.1e}",
            f"tol {10 * steps * m['kappa'] * U64:.1e} (relative)",
        )

    return judged(
        "bias = closed form (analysis) - target; the exact estimator has bias 0",
        compare,
        power=f"any bias off its closed form by > 10 x {steps} x kappa x u (relative to "
        "||target||); the control refutes a wrong target",
    )


U64 = float(np.finfo(np.float64).eps) / 2


CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="estimators/rt-unbiased-exact",
        source=SOURCE,
        statement="randomized truncation is unbiased (tier 0, exact expectation)",
        measure=measure_rt_exact,
        judge=judge_rt_exact,
        registry=("rt/finite-variance",),
        slots=("rt",),
        grids={"quick": [SETUP]},
    ),
    Claim(
        id="estimators/rt-unbiased-ztest",
        source=SOURCE,
        statement="randomized truncation is unbiased (tier 1)",
        measure=_measure_ztest(),
        judge=judge_ztest,
        registry=("rt/finite-variance",),
        slots=("rt",),
        grids={"quick": [SETUP]},
    ),
    Claim(
        id="estimators/fo-bias-closed-form",
        source="Ji et al. 2021 / spec 7.3, 7.6",
        statement="the first-order estimate is biased by exactly -(d^2 g/dx dy) H^-1 grad_y f",
        measure=measure_deterministic_bias,
        judge=judge_deterministic_bias,
        registry=("fo-itd/bias",),
        slots=("fo", "exact"),
        grids={"quick": [{**SETUP, "method": "fo"}]},
    ),
    Claim(
        id="estimators/neumann-q3-bias-closed-form",
        source="Ji et al. 2021 / spec 7.4",
        statement="the 3-term Neumann estimate is biased by its closed form (I - eta H)^3 term",
        measure=measure_deterministic_bias,
        judge=judge_deterministic_bias,
        registry=("neumann/contraction",),
        slots=("neumann", "exact"),
        grids={"quick": [{**SETUP, "method": "neumann"}]},
    ),
)
