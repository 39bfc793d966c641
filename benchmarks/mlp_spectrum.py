"""The extreme eigenvalues of the digits MLP's inner Hessian at the benchmark's inner point.

Lanczos with full reorthogonalisation (float64, HVPs of ``SecondOrderOracle``) from a seeded
random start. Ritz values lie inside [lambda_min, lambda_max], so the smallest Ritz value is an
upper bound on lambda_min and the largest a lower bound on lambda_max: the printed kappa is a
lower bound on the condition number. It explains the MLP rows of ``time_to_accuracy.py``: the
Neumann series and ITD (step 1/L) contract like 1 - lambda_min / L per step along the smallest
eigenvectors, CG like 1 - 2 sqrt(lambda_min / L) and only over the few outlying eigenvalues.

Run: ``python benchmarks/mlp_spectrum.py [--iterations 300]`` (about 30 s per 300 on 2 cores).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from time_to_accuracy import mlp_objectives, mlp_reference

from bilevel.solvers.oracles import OracleCounts, SecondOrderOracle


def lanczos_ritz_values(hvp, n: int, iterations: int, seed: int = 0) -> torch.Tensor:
    """Ritz values of the symmetric map ``hvp`` after ``iterations`` Lanczos steps (float64,
    full reorthogonalisation against every earlier basis vector, twice: Kahan-Parlett)."""
    generator = torch.Generator().manual_seed(seed)
    q = torch.randn(n, dtype=torch.float64, generator=generator)
    basis, alphas, betas = [q / q.norm()], [], []
    for _ in range(iterations):
        w = hvp(basis[-1])
        alphas.append(float(basis[-1] @ w))
        Q = torch.stack(basis)
        w = w - Q.T @ (Q @ w)
        w = w - Q.T @ (Q @ w)
        betas.append(float(w.norm()))
        basis.append(w / betas[-1])
    off = torch.tensor(betas[:-1], dtype=torch.float64)
    T = torch.diag(torch.tensor(alphas, dtype=torch.float64)) + off.diag(1) + off.diag(-1)
    return torch.linalg.eigvalsh(T)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=300)
    args = parser.parse_args()
    x, y, _, _ = mlp_reference()
    _, inner, *_ = mlp_objectives(torch.float64)
    oracle = SecondOrderOracle(inner, x, y, OracleCounts())
    ritz = lanczos_ritz_values(oracle.hvp, y.numel(), args.iterations)
    low, high = float(ritz[0]), float(ritz[-1])
    print(f"{y.numel()} inner parameters, max |grad_y g| = "
          f"{float(oracle.grad_y_inner.abs().max()):.1e}, {args.iterations} Lanczos steps")  # fmt: skip
    print(f"smallest Ritz values (>= lambda_min): {[f'{v:.3e}' for v in ritz[:5].tolist()]}")
    print(f"largest Ritz values (<= lambda_max): {[f'{v:.4f}' for v in ritz[-3:].tolist()]}")
    print(f"kappa >= {high / low:.3g} (if lambda_min > 0: Ritz values cannot rule out a smaller "
          f"or negative one); Neumann/ITD at step 1/L contract no faster than "
          f"1 - {low / high:.2e} per step along the smallest eigenvector")  # fmt: skip


if __name__ == "__main__":
    main()
