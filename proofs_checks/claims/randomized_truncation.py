r"""Estimator (un)biasedness: randomized truncation against first-order and truncated Neumann.

Randomized truncation (Ghadimi & Wang 2018; spec 7.7; VERIFICATION.md section 2): with a
geometric level N, P(N >= q) = (1 - p)^q, the estimate
grad_x f - (d^2 g/dx dy) eta sum_{q <= N} (I - eta H)^q b / (1 - p)^q is unbiased for the AID
hypergradient at y, grad_x f - (d^2 g/dx dy) H^-1 b (b = grad_y f), and has finite variance
iff (1 - eta mu)^2 < 1 - p (checked before the test, as the CLT needs it).

- ``rt-unbiased-exact`` (tier 0): E over N = 0..M enumerated, with the probability of N > M and
  a bound on its contribution stated, equals the target to 1e-12 + that tail bound.
- ``rt-unbiased-ztest`` (tier 1): the fixed-seed Bonferroni z-test at alpha = 1e-6 with power
  1 - 1e-6 against a bias of 5% of ||target|| does not reject.
- ``fo-unbiased`` and ``neumann-q3-unbiased``: the same tier-1 test applied to the first-order
  estimate and to a 3-term Neumann series, each claimed unbiased; both are biased, so the
  claims must be *refuted* (expect "fails").

The target comes from ``bilevel.analysis``: the Galerkin (CG) closed form with K = d_y, which is
exactly H^-1 b at y.
"""

from __future__ import annotations

import numpy as np
import torch

from bilevel.analysis import QuadraticBilevel
from bilevel.solvers import OracleCounts, hypergradient
from bilevel.solvers.linear_solvers import truncated_series_at_level
from bilevel.solvers.oracles import SecondOrderOracle, outer_gradients

from ..comparators import assert_expectation_exact, assert_unbiased
from ..engine import Claim, Measurement, Params, Verdict, judged
from ..instances import quadratic_objectives

SOURCE = "Ghadimi & Wang 2018; spec 7.7"
#: kappa = 4 with eta = 1/L: (1 - eta mu)^2 = 0.5625 < 1 - p = 0.7 (finite variance).
SETUP = {"kappa": 4.0, "p": 0.3, "d_y": 4, "seed": 0}
LEVELS = 150  # tier 0 enumerates N = 0..150; the tail bound below is ~1e-16


def _problem(params: Params):
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
    inst, x, y, target, mu, L = _problem(params)
    p, eta = params["p"], 1.0 / L
    outer, inner = quadratic_objectives(inst)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    counts = OracleCounts()
    grad_x_f, b = outer_gradients(outer, xt, yt, counts)
    oracle = SecondOrderOracle(inner, xt, yt, counts)
    outcomes = []
    for level in range(LEVELS + 1):
        v = truncated_series_at_level(oracle, b, eta, p, level)
        estimate = (grad_x_f - oracle.mixed(v)).numpy()
        outcomes.append((p * (1 - p) ** level, estimate.tolist()))
    norm_b = float(np.linalg.norm(inst.as_numpy()["B"], 2))
    tail = _tail_bound(
        p, 1 - eta * mu, LEVELS, float(grad_x_f.norm()), norm_b * eta * float(b.norm())
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

    return judged("E[estimate] = AID hypergradient at y (exact sum)", compare)


def _sampler(method: str, params: Params):
    inst, x, y, target, mu, L = _problem(params)
    outer, inner = quadratic_objectives(inst)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    options = {
        "rt": {"p": params["p"], "lr": 1.0 / L, "mu": mu, "L": L},
        "fo": {},
        "neumann": {"steps": 3, "lr": 1.0 / L},
    }[method]

    def sample(generator: torch.Generator) -> torch.Tensor:
        extra = {"generator": generator} if method == "rt" else {}
        return hypergradient(outer, inner, xt, yt, method=method, **options, **extra)

    return sample, target


def _measure_ztest(method: str):
    def measure(params: Params) -> Measurement:
        sample, target = _sampler(method, params)
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
    predicted = f"unbiased (detects bias >= {m['bias']:.3g}, alpha = beta = 1e-6)"
    return Verdict(predicted, m["detail"], m["holds"], m.get("interval", ""))


def _ztest_claim(method: str, name: str, statement: str, expect: str) -> Claim:
    return Claim(
        id=f"estimators/{name}",
        source=SOURCE if method == "rt" else "Ji et al. 2021 / spec 7.4, 7.7",
        statement=statement,
        measure=_measure_ztest(method),
        judge=judge_ztest,
        grids={"quick": [SETUP]},
        expect=expect,
        registry={"rt": ("rt/finite-variance",), "fo": ("fo-itd/bias",)}.get(
            method, ("neumann/contraction",)
        ),
    )


CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="estimators/rt-unbiased-exact",
        source=SOURCE,
        statement="randomized truncation is unbiased (tier 0, exact expectation)",
        measure=measure_rt_exact,
        judge=judge_rt_exact,
        registry=("rt/finite-variance",),
        grids={"quick": [SETUP]},
    ),
    _ztest_claim("rt", "rt-unbiased-ztest", "randomized truncation is unbiased (tier 1)", "holds"),
    _ztest_claim("fo", "fo-unbiased", "first-order estimate is unbiased (refuted)", "fails"),
    _ztest_claim(
        "neumann", "neumann-q3-unbiased", "3-term Neumann estimate is unbiased (refuted)", "fails"
    ),
)
