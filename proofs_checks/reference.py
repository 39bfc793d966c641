"""Independent reference computations (numpy, exact fractions, torch autograd).

These re-run the *procedures* (T steps of GD, Q Neumann terms, K CG steps, reverse mode through
a linear solve) on the float64 blocks of a quadratic instance, independently of the closed forms
of ``bilevel.analysis``; the self-checks of ``bilevel verify`` and the tests compare the two.
Blocks are the dict of ``QuadraticBilevel.as_numpy()``: g = 1/2 y^T A y - y^T (B x + c),
f = 1/2 y^T P y + p^T y + 1/2 x^T R x + r^T x + x^T S y.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

Blocks = dict[str, np.ndarray]


def _grad_x_outer(b: Blocks, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return b["R"] @ x + b["r"] + b["S"] @ y


def _grad_y_outer(b: Blocks, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return b["P"] @ y + b["p"] + b["S"].T @ x


def simulate_itd(b: Blocks, x: np.ndarray, y0: np.ndarray, T: int, alpha: float) -> np.ndarray:
    """T steps y <- y - alpha (A y - B x - c) with the forward Jacobian J = dy_t/dx (J_0 = 0)."""
    y, J = np.array(y0, dtype=float), np.zeros((len(y0), len(x)))
    for _ in range(T):
        y = y - alpha * (b["A"] @ y - b["B"] @ x - b["c"])
        J = J - alpha * (b["A"] @ J - b["B"])
    return _grad_x_outer(b, x, y) + J.T @ _grad_y_outer(b, x, y)


def simulate_neumann(b: Blocks, x: np.ndarray, y: np.ndarray, Q: int, eta: float) -> np.ndarray:
    """grad_x f + B^T v_Q with v_Q = eta sum_{q<Q} (I - eta A)^q grad_y f, term by term."""
    rhs = _grad_y_outer(b, x, y)
    v, term = np.zeros_like(rhs), rhs.copy()
    for _ in range(Q):
        v = v + eta * term
        term = term - eta * b["A"] @ term
    return _grad_x_outer(b, x, y) + b["B"].T @ v


def simulate_cg_exact(b: Blocks, x: np.ndarray, y: np.ndarray, K: int) -> np.ndarray:
    """Textbook CG (Hestenes-Stiefel) for A v = grad_y f from v = 0, in exact rationals.

    Float64 CG is not forward stable with respect to the exact Krylov iterate (deviations of
    5e4 x kappa u K were measured at kappa = 1e4, d = 5), so the reference runs exactly and
    rounds once.
    """
    F = np.vectorize(Fraction, otypes=[object])
    A, B, R, S = (F(b[k]) for k in ("A", "B", "R", "S"))
    xf, yf = F(np.asarray(x, dtype=float)), F(np.asarray(y, dtype=float))
    rhs = F(b["P"]) @ yf + F(b["p"]) + S.T @ xf
    v = np.array([Fraction(0)] * len(yf), dtype=object)
    res = rhs.copy()
    direction = res.copy()
    for _ in range(K):
        rr = res @ res
        if rr == 0:
            break
        Ad = A @ direction
        step = rr / (direction @ Ad)
        v = v + step * direction
        res = res - step * Ad
        direction = res + (res @ res) / rr * direction
    out = R @ xf + F(b["r"]) + S @ yf + B.T @ v
    return np.array([float(e) for e in out])


def autograd_hypergradient(b: Blocks, x: np.ndarray) -> np.ndarray:
    """grad Phi by float64 torch reverse mode through y*(x) = solve(A, B x + c)."""
    import torch

    t = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in b.items()}
    xt = torch.as_tensor(np.asarray(x, dtype=float)).requires_grad_(True)
    y = torch.linalg.solve(t["A"], t["B"] @ xt + t["c"])
    f = 0.5 * y @ t["P"] @ y + t["p"] @ y + 0.5 * xt @ t["R"] @ xt + t["r"] @ xt + xt @ t["S"] @ y
    (grad,) = torch.autograd.grad(f, xt)
    return grad.numpy()
