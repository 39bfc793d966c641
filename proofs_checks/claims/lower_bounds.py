r"""The zero-chain lower bound for the linear system of AID (Nesterov 2004, Thm 2.1.13; the
building block of the AID lower bounds in Ji & Liang, JMLR 2023; spec 7.9).

Instance: g(x, y) = 1/2 y^T A y - x^T y with A = tridiag(-1, 2 + mu, -1) (n = 400), and
f(x, y) = e_1^T y, so that the hypergradient is v = A^-1 e_1 and an estimator's output is its
approximation v_K of A^-1 e_1. A method whose iterates stay in the span of the HVPs it was given
(CG, Neumann) reaches coordinate k only after k HVPs (e_1 is known before any: one free
coordinate), so ||v_K - v*|| >= ||v*_{K+1:n}|| after K HVPs, which decays like q^K with
q = (sqrt(kappa) - 1)/(sqrt(kappa) + 1) asymptotically.

- ``lower-bounds/cg-zero-chain``: CG through ``bilevel.solvers`` respects the support limit and
  stays above the curve at every K (holds).
- ``lower-bounds/accbio-zero-chain``: AccBiO (the best-known accelerated method, spec 6.6) on a
  bilevel problem whose Phi is the zero chain, Phi(x) = 1/2 x^T H x - e_1^T x (g = 1/2 ||y - x||^2,
  f = 1/2 y^T H y - e_1^T y, H = tridiag(-1, 2 + mu, -1)): after k gradients of f its outer
  iterate has reached at most coordinate k + 1, so ||x_k - x*|| >= ||x*_{k+2:n}||; AccBiO
  respects the support limit and stays above the curve (holds). This is the structure of Ji &
  Liang's lower bound for first-order outer methods; their exact instance was not retrieved.
- ``lower-bounds/cheat-detected``: a planted "solver" that calls the dense solve (``exact``) but
  reports one HVP, as an algorithm that miscounts its oracle would: the claim "it respects the
  lower bound" must be refuted (expect "fails").
"""

from __future__ import annotations

import numpy as np
import torch

from bilevel.solvers import OracleCounts, hypergradient

from ..engine import Claim, Measurement, Params, Verdict, judged
from ..rates import assert_lower_bound

SOURCE = "Nesterov 2004, Thm 2.1.13; Ji & Liang 2023"


def _zero_chain(n: int, mu: float):
    main = torch.full((n,), 2.0 + mu, dtype=torch.float64)
    off = -torch.ones(n - 1, dtype=torch.float64)

    def inner(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        Ay = main * y
        Ay = (
            Ay
            + torch.cat([off * y[1:], y.new_zeros(1)])
            + torch.cat([y.new_zeros(1), off * y[:-1]])
        )
        return 0.5 * y @ Ay - x @ y

    def outer(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return y[0]

    A = np.diag(np.full(n, 2.0 + mu)) - np.diag(np.ones(n - 1), 1) - np.diag(np.ones(n - 1), -1)
    e1 = np.zeros(n)
    e1[0] = 1.0
    return outer, inner, np.linalg.solve(A, e1)


def _measure(cheat: bool):
    def measure(params: Params) -> Measurement:
        n, mu = params["n"], params["mu"]
        outer, inner, v_star = _zero_chain(n, mu)
        zeros = torch.zeros(n, dtype=torch.float64)
        iterates, calls = [], []
        for K in range(params["steps"] + 1):
            counts = OracleCounts()
            if cheat:
                v = hypergradient(outer, inner, zeros, zeros, method="exact")
                reported = min(K, 1)
            else:
                v = hypergradient(
                    outer, inner, zeros, zeros, method="cg", steps=K, tol=0.0, counts=counts
                )
                reported = counts.hvp
            iterates.append(v.numpy().tolist())
            calls.append(reported)
        return {"iterates": iterates, "calls": calls, "solution": v_star.tolist()}

    return measure


def measure_accbio_chain(params: Params) -> Measurement:
    from bilevel.solvers import AccBiO

    n, mu = params["n"], params["mu"]
    _, chain, h_inverse_e1 = _zero_chain(n, mu)  # chain(0, y) = 1/2 y^T H y

    def outer(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return chain(torch.zeros_like(y), y) - y[0]

    def inner(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((y - x) ** 2).sum()

    L_phi = 4.0 + mu
    algo = AccBiO(outer, inner, 1, 1.0, 1 / L_phi, kappa_y=1.0, kappa_x=L_phi / mu, solver_steps=1)
    state = algo.init(torch.zeros(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float64))
    iterates, calls = [state.x.numpy().tolist()], [0]
    for _ in range(params["steps"]):
        state = algo.step(state)
        iterates.append(state.x.numpy().tolist())
        calls.append(state.counts.grad_outer)
    return {"iterates": iterates, "calls": calls, "solution": h_inverse_e1.tolist()}


def judge_lower_bound(_: list[Params], ms: list[Measurement]) -> Verdict:
    (m,) = ms
    v_star = np.asarray(m["solution"])
    # after c HVPs at most coordinates 1..c+1 are reached: the error is at least the tail norm
    lower = [float(np.linalg.norm(v_star[c + 1 :])) for c in m["calls"]]

    def compare() -> tuple[str, str]:
        iterates = [np.asarray(v) for v in m["iterates"]]
        ratio = assert_lower_bound(iterates, m["calls"], v_star, lower, start_support=1)
        return f"min error / lower bound = {ratio:.3f} over K = 0..{len(lower) - 1}", ""

    return judged("support <= HVPs + 1; ||v_K - v*|| >= ||v*_{K+2:n}||", compare)


GRID = {"quick": [{"n": 400, "mu": 1e-2, "steps": 40}]}

CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="lower-bounds/cg-zero-chain",
        source=SOURCE,
        statement="CG cannot beat the zero-chain lower bound",
        measure=_measure(cheat=False),
        judge=judge_lower_bound,
        grids=GRID,
    ),
    Claim(
        id="lower-bounds/accbio-zero-chain",
        source=SOURCE + " (structure of their first-order lower bound; instance [substitute])",
        statement="AccBiO cannot beat the zero-chain lower bound in gradients of f",
        measure=measure_accbio_chain,
        judge=judge_lower_bound,
        grids={"quick": [{"n": 400, "mu": 1e-2, "steps": 60}]},
        registry=("lower-bound/sc-sc",),
    ),
    Claim(
        id="lower-bounds/cheat-detected",
        source=SOURCE,
        statement="a solver that miscounts its HVPs respects the bound (refuted)",
        measure=_measure(cheat=True),
        judge=judge_lower_bound,
        grids=GRID,
        expect="fails",
    ),
)
