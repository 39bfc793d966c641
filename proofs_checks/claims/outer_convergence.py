r"""Whole outer algorithms side by side (the data of figure 3): AID-BiO, ITD-BiO, stocBiO and
AccBiO on a quadratic with strongly convex Phi and on logistic-regression hyperparameter
learning (scikit-learn's breast cancer), one run per (method, seed), each recording its trace
(oracle calls, seconds, ||grad Phi|| or the validation loss).

- ``outer/quadratic-convergence``: the deterministic methods reach ||grad Phi|| <= 1e-6 within
  their budget on every seed (spec 6.2-6.6 rates are linear here), and stocBiO (A perturbed by
  +-30% per batch) lowers ||grad Phi|| at least tenfold.
- ``outer/logistic-validation-loss``: every method lowers the validation loss by at least 5%
  from its value after the first iteration (the first inner solve; the AID-BiO test measured
  0.0578 -> 0.0495 in 30 iterations).
"""

from __future__ import annotations

import numpy as np
import torch

from bilevel.solvers import AccBiO, AIDBiO, ITDBiO, StocBiO

from ..engine import Claim, Measurement, Params, Verdict, check, judged
from ..instances import (
    convex_phi_instance,
    hyperobjective_hessian,
    noisy_quadratic_objectives,
    quadratic_objectives,
)

METHODS = ("AID-BiO", "ITD-BiO", "stocBiO", "AccBiO")


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
    if method == "AID-BiO":
        algo = AIDBiO(outer, inner, 10, 1 / L, 1 / L_phi, solver="cg", solver_steps=3)
    elif method == "ITD-BiO":
        algo = ITDBiO(outer, inner, 200, 1 / L, 1 / L_phi)  # (1 - 1/kappa)^D bias ~ 1e-9
    elif method == "AccBiO":
        kappa_phi = float(eigs.max() / eigs.min())
        algo = AccBiO(
            outer,
            inner,
            10,
            1 / L,
            1 / L_phi,
            kappa_y=float(inst.constants.kappa),
            kappa_x=kappa_phi,
            solver_steps=3,
        )
    else:
        f, g, sampler = noisy_quadratic_objectives(inst, 0.3)
        algo = StocBiO(
            f,
            g,
            sampler,
            torch.Generator().manual_seed(params["seed"]),
            10,
            1 / L,
            0.5 / L_phi,
            10,
            1 / L,
        )
    x0, y0 = torch.ones(3, dtype=torch.float64), torch.zeros(5, dtype=torch.float64)
    _, trace = algo.run(x0, y0, iterations=iterations, grad_phi=grad_phi)
    return {"method": method, **_trace_measurement(trace, "grad_norm")}


def judge_quadratic(_: list[Params], ms: list[Measurement]) -> Verdict:
    def compare() -> tuple[str, str]:
        finals = {}
        for m in ms:
            start, end = m["grad_norm"][0], m["grad_norm"][-1]
            if m["method"] == "stocBiO":
                check(end <= 0.1 * start, f"stocBiO: ||grad Phi|| {start:.3g} -> {end:.3g}")
            else:
                check(end <= 1e-6, f"{m['method']}: final ||grad Phi|| = {end:.3g} > 1e-6")
            finals.setdefault(m["method"], []).append(end)
        text = "; ".join(f"{k}: max {max(v):.1e}" for k, v in finals.items())
        return f"final ||grad Phi||: {text}", ""

    return judged("deterministic methods reach 1e-6; stocBiO drops tenfold", compare)


def measure_logistic(params: Params) -> Measurement:
    from bilevel.solvers.problems import load_logistic_problem

    problem = load_logistic_problem("breast_cancer", seed=params["seed"])
    d = problem.dim
    x0 = torch.full((d,), float(np.log(1e-2)), dtype=torch.float64)
    y0 = torch.zeros(d, dtype=torch.float64)
    method, iterations = params["method"], params["iterations"]
    if method == "AID-BiO":
        algo = AIDBiO(problem.outer, problem.inner, 50, 0.5, 1.0, solver="cg", solver_steps=10)
    elif method == "ITD-BiO":
        algo = ITDBiO(problem.outer, problem.inner, 50, 0.5, 1.0)
    elif method == "AccBiO":
        algo = AccBiO(problem.outer, problem.inner, 50, 0.5, 1.0, kappa_y=10.0, solver_steps=10)
    else:
        # minibatches of 64 training rows for g; f on the whole validation split
        algo = StocBiO(
            lambda x, y, batch: problem.outer(x, y),
            problem.inner,
            problem.sampler(64),
            torch.Generator().manual_seed(params["seed"]),
            50,
            0.5,
            1.0,
            10,
            0.5,
        )
    state, trace = algo.run(x0, y0, iterations=iterations)
    return {
        "method": method,
        **_trace_measurement(trace, "outer_value"),
        "test_accuracy": problem.accuracy(state.y),
    }


def judge_logistic(_: list[Params], ms: list[Measurement]) -> Verdict:
    def compare() -> tuple[str, str]:
        parts = []
        for m in ms:
            start, end = m["outer_value"][1], m["outer_value"][-1]  # [0] is y = 0, before any step
            check(end <= 0.95 * start, f"{m['method']}: validation loss {start:.4f} -> {end:.4f}")
            parts.append(f"{m['method']}: {start:.4f} -> {end:.4f}")
        return "; ".join(parts), ""

    return judged("every method lowers the validation loss by >= 5%", compare)


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
    ),
)
