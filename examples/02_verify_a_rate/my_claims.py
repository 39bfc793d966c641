"""Tutorial 2: a convergence-rate claim for your own algorithm, verified on built-in instances.

Your algorithm: Polyak's heavy ball for the linear system H v = b that every implicit
hypergradient solves (H the inner Hessian, b = grad_y f):

    v_{k+1} = v_k - alpha (H v_k - b) + beta (v_k - v_{k-1}),
    alpha = 4 / (sqrt(L') + sqrt(mu'))^2,   beta = rho^2,   rho = (sqrt(kappa') - 1) / (sqrt(kappa') + 1)

with spectral bounds mu' < mu and L' > L (kappa' = L' / mu'). Every mode of the iteration matrix
then has modulus exactly rho (Polyak 1964), so the claim is ||v_k - v*|| ~ rho^k. The claim runs
on built-in quadratic instances (``bilevel.analysis.QuadraticBilevel``, exact v* = H^-1 b) with
kappa = 10, 100, 1000, and is judged by ``rates.assert_linear_rate`` (a log fit over the window
between the transient and the float64 floor; |log rho_hat / log rho - 1| < 0.05).

A second claim states the rate of plain gradient descent, (kappa' - 1) / (kappa' + 1), for the
same iteration, and is marked ``expect="fails"``: the report shows it refuted, as it must be.

Run it like any claim module: ``bilevel verify --claims my_claims --only 'mine/*'`` with this
folder on ``PYTHONPATH`` (``run.py`` does exactly that and reads the report).
"""

from __future__ import annotations

import math

import numpy as np

from bilevel.analysis import QuadraticBilevel
from bilevel.proofs_checks.engine import Claim, Measurement, Params, Verdict, judged
from bilevel.proofs_checks.rates import assert_linear_rate

MARGIN = 1.1  # mu' = mu / 1.1, L' = 1.1 L: the spectrum strictly inside [mu', L']


def heavy_ball(H: np.ndarray, b: np.ndarray, mu: float, L: float, steps: int) -> list[np.ndarray]:
    """The iterates v_0 = 0, v_1, ..., v_steps of the heavy-ball method (the algorithm under test)."""
    rho = (math.sqrt(L / mu) - 1) / (math.sqrt(L / mu) + 1)
    alpha, beta = 4 / (math.sqrt(L) + math.sqrt(mu)) ** 2, rho**2
    previous = current = np.zeros_like(b)
    iterates = [current]
    for _ in range(steps):
        previous, current = (
            current,
            current - alpha * (H @ current - b) + beta * (current - previous),
        )
        iterates.append(current)
    return iterates


def measure(params: Params) -> Measurement:
    inst = QuadraticBilevel.random(d_x=2, d_y=30, kappa=params["kappa"], seed=params["seed"])
    H = inst.as_numpy()["A"]  # the inner Hessian, spectrum pinned at 1 and kappa
    b = np.random.default_rng(params["seed"]).standard_normal(30)
    v_star = np.linalg.solve(H, b)
    spectrum = np.linalg.eigvalsh(H)
    mu, L = spectrum[0] / MARGIN, spectrum[-1] * MARGIN
    errors = [float(np.linalg.norm(v - v_star)) for v in heavy_ball(H, b, mu, L, params["steps"])]
    return {"kappa_bound": L / mu, "errors": errors}


def _judge(rate_of_kappa, name: str):
    def judge(params: list[Params], ms: list[Measurement]) -> Verdict:
        def compare() -> tuple[str, str]:
            parts, intervals = [], []
            for p, m in zip(params, ms, strict=True):
                rho = rate_of_kappa(m["kappa_bound"])
                result = assert_linear_rate(m["errors"], rho, tol=0.05)
                parts.append(f"kappa={p['kappa']:g}: {result.rho_hat:.4f} vs {rho:.4f}")
                intervals.append(f"[{result.interval[0]:.4f}, {result.interval[1]:.4f}]")
            return "; ".join(parts), "; ".join(intervals) + " (99%)"

        # the power: assert_linear_rate refutes a fitted rate off rho by >= 5% in log rho
        return judged(
            f"||v_k - v*|| ~ rho^k, rho = {name}",
            compare,
            power="a fitted rate off the predicted one by >= 5% in log rho",
        )

    return judge


RUNS = [{"kappa": k, "seed": 0, "steps": 60 * int(math.sqrt(k)) + 60} for k in (10, 100, 1000)]

CLAIMS = (
    Claim(
        id="mine/heavy-ball-rate",
        source="Polyak 1964; my paper, Prop. 1",
        statement="heavy ball solves H v = b at rate (sqrt(kappa) - 1) / (sqrt(kappa) + 1)",
        measure=measure,
        judge=_judge(
            lambda kappa: (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1), "(sqrt k-1)/(sqrt k+1)"
        ),
        grids={"quick": RUNS},
    ),
    Claim(
        id="mine/heavy-ball-is-only-gd-fast",
        source="a wrong claim, planted",
        statement="heavy ball solves H v = b only at GD's rate (kappa - 1) / (kappa + 1)",
        measure=measure,
        judge=_judge(lambda kappa: (kappa - 1) / (kappa + 1), "(k-1)/(k+1)"),
        grids={"quick": RUNS},
        expect="fails",
    ),
)
