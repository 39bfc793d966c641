"""Independent reference computations (numpy, exact fractions, torch autograd).

These re-run the *procedures* (T steps of GD, Q Neumann terms, K CG steps, reverse mode through
a linear solve) on the float64 blocks of a quadratic instance, independently of the closed forms
of ``bilevel.analysis``; the self-checks of ``bilevel verify`` and the tests compare the two.
Blocks are the dict of ``QuadraticBilevel.as_numpy()``: g = 1/2 y^T A y - y^T (B x + c),
f = 1/2 y^T P y + p^T y + 1/2 x^T R x + r^T x + x^T S y.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from .engine import Verdict, check, judged

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


# --- the momentum family on the least-squares PL game (spec 3.3, 7.11), rows as batches -----


class PLGameOracles:
    """Numpy oracles of g(x, y; R) = (m / |R|) 1/2 sum_{i in R} (C_i y - D_i x)^2 (R = None: all
    m rows) and f = 1/2 ||y - y_t||^2 + nu/2 ||x||^2, the game of ``PLGameProblem``."""

    def __init__(self, C: np.ndarray, D: np.ndarray, y_target: np.ndarray, nu: float):
        self.C, self.D, self.y_target, self.nu = C, D, np.ravel(y_target), nu

    @classmethod
    def of(cls, problem: Any) -> PLGameOracles:
        """The oracles of a torch ``PLGameProblem`` (its tensors as numpy arrays)."""
        return cls(problem.C.numpy(), problem.D.numpy(), problem.y_target.numpy(), problem.nu)

    def _rows(self, rows):
        m = self.C.shape[0]
        idx = np.arange(m) if rows is None else np.asarray(rows)
        return self.C[idx], self.D[idx], m / len(idx)

    def grad_y_inner(self, x, y, rows):
        C, D, w = self._rows(rows)
        return w * C.T @ (C @ y - D @ x)

    def hvp(self, x, y, v, rows):
        C, _, w = self._rows(rows)
        return w * C.T @ (C @ v)

    def mixed(self, x, y, v, rows):
        """(d^2 g / dx dy) v = -(m/|R|) D_R^T C_R v."""
        C, D, w = self._rows(rows)
        return -w * D.T @ (C @ v)

    def grad_x_outer(self, x, y):
        return self.nu * x

    def grad_y_outer(self, x, y):
        return y - self.y_target

    def residual_and_direction(self, x, y, v, rows):
        """(H v - grad_y f, grad_x f - (d^2 g/dx dy) v) on the rows."""
        return (
            self.hvp(x, y, v, rows) - self.grad_y_outer(x, y),
            self.grad_x_outer(x, y) - self.mixed(x, y, v, rows),
        )


def mgbio_reference(
    game: PLGameOracles,
    x0,
    y0,
    iterations: int,
    *,
    inner_lr,
    solver_lr,
    outer_lr,
    averaging=1.0,
    momentum=1.0,
    inner_steps=1,
) -> list[np.ndarray]:
    """x_0..x_K of MGBiO (spec 3.3): K GD steps on y, v_{t+1} = v - tau (H v - grad_y f),
    w = grad_x f - (d^2 g/dx dy) v_{t+1}, m = (1 - beta) m + beta w (m_1 = w),
    x <- x - eta gamma m (no projection, no clipping)."""
    x, y = np.array(x0, dtype=float), np.array(y0, dtype=float)
    v, m = np.zeros_like(y), None
    xs = [x.copy()]
    for _ in range(iterations):
        for _ in range(inner_steps):
            y = y - inner_lr * game.grad_y_inner(x, y, None)
        v = v - solver_lr * game.residual_and_direction(x, y, v, None)[0]
        w = game.residual_and_direction(x, y, v, None)[1]
        m = w if m is None else (1 - momentum) * m + momentum * w
        x = x - averaging * outer_lr * m
        xs.append(x.copy())
    return xs


def msgbio_reference(
    game: PLGameOracles,
    x0,
    y0,
    batches,
    iterations: int,
    *,
    inner_lr,
    solver_lr,
    outer_lr,
    eta,
    beta,
    storm: bool,
) -> list[np.ndarray]:
    """x_0..x_K of MSGBiO (``storm=False``) or VR-MSGBiO (``storm=True``), spec 3.3: the
    estimators (u, p, m) of grad_y g, the v-residual and the direction on ``batches[0]`` at the
    start, then per step t: y, v, x move by eta(t) times their estimator, and on batch t + 1 the
    estimators are (1 - beta(t+1)) old + beta(t+1) fresh, or STORM's fresh + (1 - beta(t+1))
    (old - the same batch at the previous point)."""
    x, y = np.array(x0, dtype=float), np.array(y0, dtype=float)
    v = np.zeros_like(y)
    u = game.grad_y_inner(x, y, batches[0])
    p, m = game.residual_and_direction(x, y, v, batches[0])
    xs = [x.copy()]
    for t in range(iterations):
        rows = batches[t + 1]
        step = eta(t)
        x_new = x - step * outer_lr * m
        y_new = y - step * inner_lr * u
        v_new = v - step * solver_lr * p
        fresh = (
            game.grad_y_inner(x_new, y_new, rows),
            *game.residual_and_direction(x_new, y_new, v_new, rows),
        )
        b = beta(t + 1)
        if storm:
            previous = (game.grad_y_inner(x, y, rows), *game.residual_and_direction(x, y, v, rows))
            u, p, m = (
                f + (1 - b) * (o - q) for f, o, q in zip(fresh, (u, p, m), previous, strict=True)
            )
        else:
            u, p, m = ((1 - b) * o + b * f for f, o in zip(fresh, (u, p, m), strict=True))
        x, y, v = x_new, y_new, v_new
        xs.append(x.copy())
    return xs


def fsla_reference(
    game: PLGameOracles,
    x0,
    y0,
    batches,
    iterations: int,
    *,
    inner_lr,
    outer_lr,
    momentum,
) -> list[np.ndarray]:
    """x_0..x_K of FSLA (spec 6.5): on batch k, y <- y - alpha grad_y g(x, y), v <- v - alpha
    (H(x, y_new) v - grad_y f(x, y_new)), d = grad_x f - (d^2 g/dx dy)(x, y_new) v_new,
    m = d + (1 - eta)(m - d(x_prev, y_prev, v_prev) on the same batch), x <- x - beta m."""
    x, y = np.array(x0, dtype=float), np.array(y0, dtype=float)
    v, m, previous = np.zeros_like(y), None, None
    xs = [x.copy()]
    for k in range(iterations):
        rows = batches[k]
        y = y - inner_lr * game.grad_y_inner(x, y, rows)
        v = v - inner_lr * game.residual_and_direction(x, y, v, rows)[0]
        d_new = game.residual_and_direction(x, y, v, rows)[1]
        if m is None or momentum == 1.0:
            m = d_new
        else:
            d_old = game.residual_and_direction(*previous, rows)[1]
            m = d_new + (1 - momentum) * (m - d_old)
        previous = (x, y, v)
        x = x - outer_lr * m
        xs.append(x.copy())
    return xs


def soba_reference(
    game: PLGameOracles,
    x0,
    y0,
    batches,
    iterations: int,
    *,
    inner_lr: float,
    outer_lr: float,
    schedule: str = "constant",
) -> list[np.ndarray]:
    """x_0..x_K of SOBA (Dagreou et al. 2022, Algorithm 1, v = -v_paper): batches come in
    pairs (xi_k for g, zeta_k for f; f is batch-free in this game), every direction at the
    current (x, y, v): y <- y - rho grad_y g, v <- v - rho (H v - grad_y f), x <- x - gamma
    (grad_x f - (d^2 g/dx dy) v); rho_k, gamma_k constant or rho_0 (k+1)^-0.4, gamma_0 (k+1)^-0.6."""
    x, y = np.array(x0, dtype=float), np.array(y0, dtype=float)
    v = np.zeros_like(y)
    xs = [x.copy()]
    for k in range(iterations):
        rows = batches[2 * k]  # xi_k; batches[2k + 1] = zeta_k is not used by this f
        rho, gamma = (inner_lr, outer_lr)
        if schedule == "decreasing":
            rho, gamma = inner_lr * (k + 1) ** -0.4, outer_lr * (k + 1) ** -0.6
        residual, direction = game.residual_and_direction(x, y, v, rows)
        y, v, x = y - rho * game.grad_y_inner(x, y, rows), v - rho * residual, x - gamma * direction
        xs.append(x.copy())
    return xs


def soba_reference_step(
    b: Blocks, x: np.ndarray, y: np.ndarray, v: np.ndarray, *, inner_lr: float, outer_lr: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One deterministic SOBA step on the quadratic blocks (H = A, grad_y g = A y - B x - c,
    (d^2 g/dx dy) v = -B^T v), every direction at the current (x, y, v)."""
    residual = b["A"] @ v - _grad_y_outer(b, x, y)
    direction = _grad_x_outer(b, x, y) + b["B"].T @ v
    return (
        x - outer_lr * direction,
        y - inner_lr * (b["A"] @ y - b["B"] @ x - b["c"]),
        v - inner_lr * residual,
    )


def stocbio_bio_reference(
    b: Blocks,
    x0: np.ndarray,
    y0: np.ndarray,
    batches: list,
    iterations: int,
    *,
    inner_steps: int,
    inner_lr: float,
    outer_lr: float,
    solver_steps: int,
    solver_lr: float,
    noise: float,
) -> list[np.ndarray]:
    """x_0..x_K of stocBiO (paper variant, spec 6.4) on the noisy quadratic of
    ``instances.noisy_quadratic_objectives``: batch s = +-1 scales A by 1 + noise s. Per step,
    batches are consumed in the rule's order: D inner steps, then D_F (f does not depend on
    it), Q Hessian batches in the Horner sum s_j = b + (I - eta H_{B_j}) s_{j-1}, v = eta s_Q,
    and D_G for the mixed product (-B^T, batch-free here)."""
    x, y = np.array(x0, dtype=float), np.array(y0, dtype=float)
    queue = iter(batches)
    xs = [x.copy()]
    for _ in range(iterations):
        for _ in range(inner_steps):
            scale = 1 + noise * next(queue)
            y = y - inner_lr * (scale * b["A"] @ y - b["B"] @ x - b["c"])
        next(queue)  # D_F
        rhs = _grad_y_outer(b, x, y)
        s = rhs.copy()
        for _ in range(solver_steps):
            scale = 1 + noise * next(queue)
            s = rhs + s - solver_lr * scale * b["A"] @ s
        v = solver_lr * s
        next(queue)  # D_G
        x = x - outer_lr * (_grad_x_outer(b, x, y) + b["B"].T @ v)
        xs.append(x.copy())
    return xs


# --- running an implementation against a reference rule -----------------------------------

#: iterates compared with a numpy rule, and the relative tolerance: float64 sums in another
#: order; the maps compared contract, so rounding does not grow over 30 iterations
TRAJECTORY_STEPS = 30
TRAJECTORY_TOL = 1e-10


def run_iterates(algo, x0, y0, count: int = TRAJECTORY_STEPS) -> list[list[float]]:
    """x_0..x_count of an outer algorithm (``init`` then ``count`` ``step``s), as lists."""
    state = algo.init(x0, y0)
    xs = [state.x.tolist()]
    for _ in range(count):
        state = algo.step(state)
        xs.append(state.x.tolist())
    return xs


def trajectory_gap(run: list, reference: list, tol: float = TRAJECTORY_TOL) -> tuple[float, int]:
    """(max_k ||x_k - x_k^ref|| / max(1, ||x_k^ref||), the first k above ``tol`` or -1)."""
    worst, first = 0.0, -1
    for k, (a, b) in enumerate(zip(run, reference, strict=True)):
        gap = float(np.linalg.norm(np.subtract(a, b))) / max(1.0, float(np.linalg.norm(b)))
        if gap > tol and first < 0:
            first = k
        worst = max(worst, gap)
    return worst, first


class RecordingSampler:
    """A sampler that records every minibatch ``draw(generator)`` returns, so that a numpy rule
    can replay the same batches in the order it draws them."""

    def __init__(self, draw):
        self.draw, self.drawn = draw, []

    def __call__(self, generator):
        batch = self.draw(generator)
        self.drawn.append(batch.numpy().copy() if hasattr(batch, "numpy") else batch)
        return batch

    def replay(self, expected: int, placeholder=None) -> list:
        """The recorded batches, or ``expected`` placeholders when another number was drawn
        (the judge refutes that count; the reference is then only run to stay well-formed)."""
        return self.drawn if len(self.drawn) == expected else [placeholder] * expected


def judge_replayed_rule(
    params: list, ms: list, *, label: str, predicted: str, rule: str = "the rule"
) -> Verdict:
    """The verdict of a claim whose runs replay recorded minibatches through a numpy rule: each
    measurement holds ``iterates``, ``reference``, ``drawn`` and ``expected_draws``; ``label``
    names the parameter that tells runs apart in messages (e.g. "method")."""

    def compare() -> tuple[str, str]:
        worst = 0.0
        for p, m in zip(params, ms, strict=True):
            check(
                m["drawn"] == m["expected_draws"],
                f"{p[label]}: drew {m['drawn']} minibatches in {TRAJECTORY_STEPS} steps, "
                f"{rule} draws {m['expected_draws']}",
            )
            gap, first = trajectory_gap(m["iterates"], m["reference"])
            check(first < 0, f"{p[label]}: iterate {first} departs from the rule by {gap:.2e}")
            worst = max(worst, gap)
        return (
            f"max relative gap {worst:.1e} over {TRAJECTORY_STEPS} iterates",
            f"tol {TRAJECTORY_TOL:g}",
        )

    return judged(
        predicted,
        compare,
        power=f"any iterate off the rule by > {TRAJECTORY_TOL:g} (relative); any other number of "
        "minibatches drawn",
    )
