r"""Whole outer algorithms side by side (the data of figure 3): AID-BiO, ITD-BiO, stocBiO and
AccBiO on a quadratic with strongly convex Phi and on logistic-regression hyperparameter
learning (scikit-learn's breast cancer), one run per (method, seed), each recording its trace
(oracle calls, seconds, ||grad Phi|| or the validation loss).

- ``outer/quadratic-convergence``: the deterministic methods reach ||grad Phi|| <= 1e-6 within
  their budget on every seed (spec 6.2-6.6 rates are linear here), and stocBiO (A perturbed by
  +-30% per batch) lowers ||grad Phi|| at least tenfold.
- ``outer/logistic-validation-loss``: every method lowers the hyperobjective Phi(x) =
  f(x, y*(x)), the validation loss at the inner problem's solution (500 gradient steps of the
  claim's own, from y = 0, contraction below 1e-12), between x_0 and x_30. The earlier version
  read f at the method's own unconverged y, which a method with a useless hypergradient also
  lowers (the inner solve alone does it).
"""

from __future__ import annotations

import numpy as np
import torch

from ..engine import Claim, Measurement, Params, Verdict, check, judged
from ..instances import (
    convex_phi_instance,
    hyperobjective_hessian,
    noisy_quadratic_objectives,
    quadratic_objectives,
)
from ..rates import assert_linear_rate
from ..slots import implementation

METHODS = ("AID-BiO", "ITD-BiO", "stocBiO", "AccBiO")
#: the implementation slot of each method
SLOT = {"AID-BiO": "aid-bio", "ITD-BiO": "itd-bio", "stocBiO": "stocbio-bio", "AccBiO": "accbio"}


def _trace_measurement(trace: list[dict], key: str) -> Measurement:
    calls = [r["grad_outer"] + r["grad_inner"] + r["hvp"] + r["mixed"] for r in trace]
    return {
        "calls": calls,
        "seconds": [r["seconds"] for r in trace],
        key: [r[key] for r in trace],
    }


def measure_quadratic(params: Params) -> Measurement:
    inst = convex_phi_instance(3, 5, 10.0, params["seed"])
    eigs = np.linalg.eigvalsh(hyperobjective_hessian(inst))
    L, L_phi = float(inst.constants.L), float(eigs.max())
    grad_np = inst.hypergradient(backend="numpy")

    def grad_phi(x: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(np.asarray(grad_np(x.numpy()), float).ravel())

    outer, inner = quadratic_objectives(inst)
    method, iterations = params["method"], params["iterations"]
    cls = implementation(SLOT[method])
    kappa_phi = float(eigs.max() / eigs.min())
    common = {"inner_lr": 1 / L, "outer_lr": 1 / L_phi}
    if method == "AID-BiO":
        algo = cls(outer=outer, inner=inner, inner_steps=10, solver="cg", solver_steps=3, **common)
    elif method == "ITD-BiO":  # (1 - 1/kappa)^D bias ~ 1e-9
        algo = cls(outer=outer, inner=inner, inner_steps=200, **common)
    elif method == "AccBiO":
        algo = cls(
            outer=outer,
            inner=inner,
            inner_steps=10,
            kappa_y=float(inst.constants.kappa),
            kappa_x=kappa_phi,
            solver_steps=3,
            **common,
        )
    else:
        f, g, sampler = noisy_quadratic_objectives(inst, 0.3)
        algo = cls(
            outer=f,
            inner=g,
            sampler=sampler,
            generator=torch.Generator().manual_seed(params["seed"]),
            inner_steps=10,
            inner_lr=1 / L,
            outer_lr=0.5 / L_phi,
            solver_steps=10,
            solver_lr=1 / L,
        )
    x0, y0 = torch.ones(3, dtype=torch.float64), torch.zeros(5, dtype=torch.float64)
    _, trace = algo.run(x0, y0, iterations=iterations, grad_phi=grad_phi)
    return {"method": method, "kappa_phi": kappa_phi, **_trace_measurement(trace, "grad_norm")}


def judge_quadratic(_: list[Params], ms: list[Measurement]) -> Verdict:
    def compare() -> tuple[str, str]:
        finals = {}
        for m in ms:
            start, end = m["grad_norm"][0], m["grad_norm"][-1]
            if m["method"] == "stocBiO":
                check(end <= 0.1 * start, f"stocBiO: ||grad Phi|| {start:.3g} -> {end:.3g}")
            else:
                check(end <= 1e-6, f"{m['method']}: final ||grad Phi|| = {end:.3g} > 1e-6")
            if m["method"] == "AccBiO":
                # Nesterov: Phi - Phi* <= C (1 - 1/sqrt k)^t and ||grad Phi||^2 <= 2 L (Phi - Phi*),
                # so ||grad Phi|| decays at least like (1 - 1/sqrt k)^(t/2) <= (1 - 1/(2 sqrt k))^t
                bound = 1 - 1 / (2 * np.sqrt(m["kappa_phi"]))
                fit = assert_linear_rate(m["grad_norm"], bound, tol=np.inf)
                check(
                    fit.rho_hat <= bound,
                    f"AccBiO's rate {fit.rho_hat:.4f} is slower than the accelerated bound "
                    f"{bound:.4f} = 1 - 1/(2 sqrt kappa_Phi) (GD: {1 - 1 / m['kappa_phi']:.4f})",
                )
                rates.append(f"{fit.rho_hat:.3f} <= {bound:.3f}")
            finals.setdefault(m["method"], []).append(end)
        text = "; ".join(f"{k}: max {max(v):.1e}" for k, v in finals.items())
        return f"final ||grad Phi||: {text}; AccBiO rate {', '.join(rates)}", ""

    rates: list[str] = []
    return judged(
        "deterministic methods reach 1e-6, AccBiO at the accelerated rate; stocBiO drops tenfold",
        compare,
        power="a deterministic method above 1e-6 after 200 iterations; an AccBiO rate above "
        "1 - 1/(2 sqrt kappa_Phi) (GD's 1 - 1/kappa_Phi is above it for kappa_Phi > 4)",
    )


def measure_logistic(params: Params) -> Measurement:
    from bilevel.solvers.problems import load_logistic_problem

    problem = load_logistic_problem("breast_cancer", seed=params["seed"])
    d = problem.dim
    x0 = torch.full((d,), float(np.log(1e-2)), dtype=torch.float64)
    y0 = torch.zeros(d, dtype=torch.float64)
    method, iterations = params["method"], params["iterations"]
    cls = implementation(SLOT[method])
    common = {"inner_steps": 50, "inner_lr": 0.5, "outer_lr": 1.0}
    if method == "AID-BiO":
        algo = cls(outer=problem.outer, inner=problem.inner, solver="cg", solver_steps=10, **common)
    elif method == "ITD-BiO":
        algo = cls(outer=problem.outer, inner=problem.inner, **common)
    elif method == "AccBiO":
        algo = cls(
            outer=problem.outer, inner=problem.inner, kappa_y=10.0, solver_steps=10, **common
        )
    else:
        # minibatches of 64 training rows for g; f on the whole validation split
        algo = cls(
            outer=lambda x, y, batch: problem.outer(x, y),
            inner=problem.inner,
            sampler=problem.sampler(64, split="train"),
            generator=torch.Generator().manual_seed(params["seed"]),
            solver_steps=10,
            solver_lr=0.5,
            **common,
        )
    state, trace = algo.run(x0, y0, iterations=iterations)
    return {
        "method": method,
        **_trace_measurement(trace, "outer_value"),
        "test_accuracy": problem.accuracy(state.y),
        "phi_start": _hyperobjective(problem, x0),
        "phi_end": _hyperobjective(problem, state.x),
    }


def _hyperobjective(problem, x: torch.Tensor) -> float:
    """Phi(x) = f(x, y*(x)): 500 gradient steps of 0.5 on the inner problem from y = 0 (its
    Hessian's spectrum lies in [e^x_min, 0.25 + e^x_max], so the error contracts far below 1e-12
    at the hyperparameters reached here), independent of the method under test."""
    y = torch.zeros(problem.dim, dtype=torch.float64)
    for _ in range(500):
        leaf = y.detach().requires_grad_(True)
        (gradient,) = torch.autograd.grad(problem.inner(x.detach(), leaf), leaf)
        y = (leaf - 0.5 * gradient).detach()
    return float(problem.outer(x.detach(), y))


def judge_logistic(_: list[Params], ms: list[Measurement]) -> Verdict:
    def compare() -> tuple[str, str]:
        parts = []
        for m in ms:
            start, end = m["phi_start"], m["phi_end"]
            check(end < start, f"{m['method']}: Phi(x) {start:.6f} -> {end:.6f} (not lowered)")
            parts.append(f"{m['method']}: {start:.5f} -> {end:.5f}")
        return "Phi: " + "; ".join(parts), ""

    return judged(
        "every method lowers Phi(x) = f(x, y*(x)) in 30 iterations",
        compare,
        power="any method (any seed) whose Phi(x_30) is not below Phi(x_0): an ascent or a "
        "wrong-signed implicit term",
    )


def _runs(seeds, iterations: dict[str, int]) -> list[Params]:
    return [{"method": m, "seed": s, "iterations": iterations[m]} for m in METHODS for s in seeds]


CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="outer/quadratic-convergence",
        source="Ji, Yang & Liang, ICML 2021; Ji & Liang, JMLR 2023; spec 6.2-6.6",
        statement="AID-BiO, ITD-BiO and AccBiO reach 1e-6 and stocBiO drops tenfold on a quadratic",
        measure=measure_quadratic,
        judge=judge_quadratic,
        grids={
            "quick": _runs(
                range(3), {"AID-BiO": 200, "ITD-BiO": 200, "AccBiO": 200, "stocBiO": 200}
            )
        },
        registry=("aid-bio/Gc(f)", "itd-bio/Gc(f)", "stocbio/Gc(F)"),
        slots=("aid-bio", "itd-bio", "stocbio-bio", "accbio"),
    ),
    Claim(
        id="outer/logistic-validation-loss",
        source="Ji, Yang & Liang, ICML 2021 (experiments, spec 6.8)",
        statement="every outer algorithm lowers the validation loss of logistic regression",
        measure=measure_logistic,
        judge=judge_logistic,
        grids={
            "quick": _runs(range(2), {"AID-BiO": 30, "ITD-BiO": 30, "AccBiO": 30, "stocBiO": 30})
        },
        registry=("aid-bio/Gc(f)",),
        slots=("aid-bio", "itd-bio", "stocbio-bio", "accbio"),
    ),
)
