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


# --- outer algorithms on a quadratic instance: the spec's update rules in numpy ---------------


def _cg_float(A: np.ndarray, rhs: np.ndarray, v0: np.ndarray, steps: int) -> np.ndarray:
    """Textbook CG (Hestenes-Stiefel) from v0 in float64, stopping at a zero residual."""
    v = v0.copy()
    res = rhs - A @ v
    direction = res.copy()
    for _ in range(steps):
        rr = float(res @ res)
        if rr == 0.0:
            break
        Ad = A @ direction
        step = rr / float(direction @ Ad)
        v = v + step * direction
        res = res - step * Ad
        direction = res + float(res @ res) / rr * direction
    return v


def aid_bio_reference_step(
    b: Blocks,
    x: np.ndarray,
    y: np.ndarray,
    v: np.ndarray,
    *,
    inner_steps: int,
    inner_lr: float,
    outer_lr: float,
    solver: str,
    solver_steps: int,
    solver_lr: float | None = None,
    warm_start: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One AID-BiO iteration (spec 6.2): D GD steps on g from the warm y, N CG (or fixed-point
    v <- v - eta (A v - grad_y f)) steps on A v = grad_y f from the warm v, x <- x - beta
    (grad_x f + B^T v). Returns (x, y, v) after it."""
    for _ in range(inner_steps):
        y = y - inner_lr * (b["A"] @ y - b["B"] @ x - b["c"])
    rhs = _grad_y_outer(b, x, y)
    start = v if warm_start else np.zeros_like(v)
    if solver == "cg":
        v = _cg_float(b["A"], rhs, start, solver_steps)
    else:
        eta = inner_lr if solver_lr is None else solver_lr
        v = start.copy()
        for _ in range(solver_steps):
            v = v - eta * (b["A"] @ v - rhs)
    return x - outer_lr * (_grad_x_outer(b, x, y) + b["B"].T @ v), y, v


def aid_bio_reference(
    b: Blocks, x0: np.ndarray, y0: np.ndarray, iterations: int, **hyper
) -> list[np.ndarray]:
    """x_0..x_K of AID-BiO from (x0, y0, v = 0) (``aid_bio_reference_step``'s options)."""
    x, y = np.array(x0, dtype=float), np.array(y0, dtype=float)
    v = np.zeros(len(y))
    xs = [x.copy()]
    for _ in range(iterations):
        x, y, v = aid_bio_reference_step(b, x, y, v, **hyper)
        xs.append(x.copy())
    return xs


def itd_bio_reference(
    b: Blocks,
    x0: np.ndarray,
    y0: np.ndarray,
    iterations: int,
    *,
    inner_steps: int,
    inner_lr: float,
    outer_lr: float,
    first_order: bool = False,
) -> list[np.ndarray]:
    """x_0..x_K of (FO-)ITD-BiO with warm starts (spec 6.3): D GD steps from the previous y
    (held constant in x), the hypergradient through them (``simulate_itd``) or, first order,
    grad_x f at y_D; x <- x - beta * estimate."""
    x, y = np.array(x0, dtype=float), np.array(y0, dtype=float)
    xs = [x.copy()]
    for _ in range(iterations):
        x, y = itd_bio_reference_step(b, x, y, inner_steps, inner_lr, outer_lr, first_order)
        xs.append(x.copy())
    return xs


def itd_bio_reference_step(
    b: Blocks,
    x: np.ndarray,
    y: np.ndarray,
    inner_steps: int,
    inner_lr: float,
    outer_lr: float,
    first_order: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """One (FO-)ITD-BiO iteration from the warm y: returns (x, y) after it."""
    estimate = simulate_itd(b, x, y, inner_steps, inner_lr)
    for _ in range(inner_steps):
        y = y - inner_lr * (b["A"] @ y - b["B"] @ x - b["c"])
    if first_order:
        estimate = _grad_x_outer(b, x, y)
    return x - outer_lr * estimate, y


def affine_rate_and_fixed_point(step, dim: int) -> tuple[float, np.ndarray]:
    """For an affine map z -> M z + c (given as ``step``): the spectral radius of M (the
    asymptotic linear rate of its iteration) and its fixed point, by probing with unit vectors."""
    c = step(np.zeros(dim))
    M = np.column_stack([step(e) - c for e in np.eye(dim)])
    radius = float(np.abs(np.linalg.eigvals(M)).max())
    fixed = np.linalg.solve(np.eye(dim) - M, c)
    return radius, fixed
