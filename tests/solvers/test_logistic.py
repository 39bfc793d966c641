"""Estimators on a non-quadratic problem: L2-regularised logistic regression with one weight per
feature (x = log-regularisation weights, exp-parametrised) on scikit-learn's breast-cancer data
(standardised; 400 train / 169 validation samples).

Checks and their tolerances:
- exact (dense Cholesky at y*) vs central finite differences of Phi(x) = f(x, y*(x)), with y*
  solved by Newton's method to ||grad_y g|| <= 1e-13: the central difference with h = 1e-4 has
  truncation error h^2/6 |Phi'''| (Phi''' = O(1) here) plus rounding ~ u |Phi| / h + the inner
  tolerance / h ~ 1e-9; the assertion allows 1e-6 relative.
- at y*, ITD(T) from y* equals Neumann(T) at y* (the spec 7.5 identity holds for any g when
  y_0 = y*, since y_t = y* for all t): 1e-10 relative (float64, T <= 200 contracting steps).
- CG / Neumann errors against exact obey ||mixed|| 2 sqrt(kappa) rho^K ||v*|| and
  ||mixed|| (1 - eta mu)^Q ||v*||, with mu, L the extreme eigenvalues of the Hessian at y*.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bilevel.solvers import hypergradient

sklearn = pytest.importorskip("sklearn.datasets")


@pytest.fixture(scope="module")
def problem():
    data = sklearn.load_breast_cancer()
    features = (data.data - data.data.mean(0)) / data.data.std(0)
    labels = 2.0 * data.target - 1.0
    rng = np.random.default_rng(0)
    order = rng.permutation(len(labels))
    tr, va = order[:400], order[400:]
    t = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
    a_tr, b_tr, a_va, b_va = t(features[tr]), t(labels[tr]), t(features[va]), t(labels[va])

    def inner(x, y):
        return (
            torch.nn.functional.softplus(-b_tr * (a_tr @ y)).mean()
            + 0.5 * (torch.exp(x) * y**2).sum()
        )

    def outer(x, y):
        return torch.nn.functional.softplus(-b_va * (a_va @ y)).mean()

    def solve_inner(x):
        y = torch.zeros(a_tr.shape[1], dtype=torch.float64)
        for _ in range(100):
            grad = torch.func.grad(inner, argnums=1)(x, y)
            if torch.linalg.vector_norm(grad) <= 1e-13:
                break
            hess = torch.func.hessian(inner, argnums=1)(x, y)
            y = y - torch.linalg.solve(hess, grad)
        return y

    x = torch.full((a_tr.shape[1],), np.log(0.05), dtype=torch.float64)
    return outer, inner, solve_inner, x


def test_exact_matches_finite_differences(problem) -> None:
    outer, inner, solve_inner, x = problem
    y_star = solve_inner(x)
    exact = hypergradient(outer, inner, x, y_star, method="exact")
    h = 1e-4
    fd = torch.zeros_like(x)
    for j in range(len(x)):
        e = torch.zeros_like(x)
        e[j] = h
        fd[j] = (outer(x + e, solve_inner(x + e)) - outer(x - e, solve_inner(x - e))) / (2 * h)
    assert torch.linalg.vector_norm(exact - fd) <= 1e-6 * torch.linalg.vector_norm(fd)


def test_estimators_agree_and_errors_obey_their_bounds(problem) -> None:
    outer, inner, solve_inner, x = problem
    y = solve_inner(x)
    exact = hypergradient(outer, inner, x, y, method="exact")
    hess = torch.func.hessian(inner, argnums=1)(x, y)
    eigs = torch.linalg.eigvalsh(hess)
    mu, L = eigs.min().item(), eigs.max().item()
    v_star = torch.linalg.solve(hess, torch.func.grad(outer, argnums=1)(x, y))
    mixed = torch.func.jacrev(torch.func.grad(inner, argnums=1), argnums=0)(x, y)  # (d_y, d_x)
    mixed_norm = torch.linalg.matrix_norm(mixed, 2).item()
    kappa = L / mu
    rho = (kappa**0.5 - 1) / (kappa**0.5 + 1)
    eta = 1.0 / L
    cg_err, neu_err = [], []
    for k in (1, 5, 10, 20, 40):
        cg = hypergradient(outer, inner, x, y, method="cg", steps=k, tol=0.0)
        neu = hypergradient(outer, inner, x, y, method="neumann", steps=k, lr=eta)
        itd = hypergradient(outer, inner, x, y, method="itd", steps=k, lr=eta)
        cg_err.append(torch.linalg.vector_norm(cg - exact).item())
        neu_err.append(torch.linalg.vector_norm(neu - exact).item())
        vn = torch.linalg.vector_norm(v_star).item()
        assert cg_err[-1] <= mixed_norm * 2 * kappa**0.5 * rho**k * vn * (1 + 1e-9) + 1e-13
        assert neu_err[-1] <= mixed_norm * (1 - eta * mu) ** k * vn * (1 + 1e-9) + 1e-13
        assert torch.linalg.vector_norm(itd - neu) <= 1e-10 * torch.linalg.vector_norm(exact)
    assert cg_err[-1] < 1e-3 * cg_err[0] and neu_err[-1] < neu_err[0]
