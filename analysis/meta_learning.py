r"""Meta-learning on quadratic tasks: exact, first-order (FOM / FO-BLO) and unbiased first-order
(UFOM) meta-gradients in closed form (spec 4 and 7.9).

Task tau (probability w_tau) has train loss l_tau = 1/2 (phi - c_tau)^T A_tau (phi - c_tau) and
test loss L_tau = 1/2 (phi - d_tau)^T G_tau (phi - d_tau). r steps of GD with step alpha from
theta give, with M_tau = I - alpha A_tau,

    phi_r = c_tau + M_tau^r (theta - c_tau),
    exact gradient  g_ex = M_tau^r G_tau (phi_r - d_tau)      (MAML, r-step ABLO),
    first order     g_FO = G_tau (phi_r - d_tau)              (FOM / FO-MAML: Jacobian dropped),
    UFOM            g_hat = g_FO + (xi / q) (g_ex - g_FO),  xi ~ Bernoulli(q),

so E[g_hat | tau] = g_ex and E||g_hat||^2 = E_tau[||g_ex||^2 + (1/q - 1) ||g_ex - g_FO||^2].
The meta-objective M(theta) = E_tau L_tau(phi_r) is quadratic with Hessian E[M^r G M^r]; the
exact stationary point solves E[M^r G (M^r theta + (I - M^r) c - d)] = 0 and FOM's fixed point
E[G (M^r theta + (I - M^r) c - d)] = 0: they differ unless the tasks are homogeneous, which is
FOM's non-convergence mechanism (Likhosherstov et al., ICML 2021 [abs]; derivation spec 7.9).

Choosing q (spec 4.3, official ``toy/toy.py``): the root in (0, 1] of
2 C_rnd (V^2 - D^2) q^2 + C_rnd D^2 q - C_det D^2 = 0 is the stationary point of
T(q) = (C_det + q C_rnd) sqrt(V^2 + (1/q - 1) D^2), expected cost times the root of the
second-moment bound [derived]; ``ufom_divergence_toy`` rebuilds the paper's two-task toy whose
FOM fixed point is theta_FO ~ 5.7589 with |M'(theta_FO)| = sqrt(2 D) while theta* ~ 2.8403.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sympy as sp

from ._symbolic import (
    Backend,
    as_matrix,
    check_backend,
    check_nonnegative_int,
    check_positive_definite,
    check_positive_scalar,
    lambdify_scalar,
    lambdify_vector,
    symbol_vector,
    to_exact,
)

__all__ = [
    "QuadraticMetaLearning",
    "ufom_divergence_toy",
    "ufom_expected_cost",
    "ufom_optimal_q",
    "ufom_time_objective",
]


class QuadraticMetaLearning:
    """Quadratic tasks (A_tau, c_tau, G_tau, d_tau) with probabilities w_tau (uniform when
    omitted), inner step ``alpha`` and ``r`` adaptation steps; everything exact (sympy)."""

    def __init__(
        self,
        A: Sequence[Any],
        c: Sequence[Any],
        G: Sequence[Any],
        d: Sequence[Any],
        alpha: Any,
        r: int,
        probabilities: Sequence[Any] | None = None,
    ) -> None:
        count = len(A)
        if count == 0 or not (len(c) == len(G) == len(d) == count):
            raise ValueError("A, c, G and d need one entry per task (at least one task)")
        self.A = [as_matrix(a, f"A[{i}]") for i, a in enumerate(A)]
        n = self.A[0].shape[0]
        self.dim = n
        self.A = [as_matrix(a, f"A[{i}]", (n, n)) for i, a in enumerate(A)]
        self.G = [as_matrix(g, f"G[{i}]", (n, n)) for i, g in enumerate(G)]
        self.c = [as_matrix(v, f"c[{i}]", (n, 1)) for i, v in enumerate(c)]
        self.d = [as_matrix(v, f"d[{i}]", (n, 1)) for i, v in enumerate(d)]
        for i, (a, g) in enumerate(zip(self.A, self.G, strict=True)):
            check_positive_definite(a, f"A[{i}]")
            check_positive_definite(g, f"G[{i}]")
        self.alpha = check_positive_scalar(alpha, "alpha")
        self.r = check_nonnegative_int(r, "r")
        if probabilities is None:
            self.w = [sp.Rational(1, count)] * count
        else:
            self.w = [to_exact(p) for p in probabilities]
            if len(self.w) != count or any(p.is_negative for p in self.w):
                raise ValueError("probabilities: one non-negative number per task")
            if sp.simplify(sum(self.w) - 1) != 0:
                raise ValueError(f"probabilities must sum to 1, got {sum(self.w)}")
        self.theta = symbol_vector("theta", n)
        self._M_r = [(sp.eye(n) - self.alpha * a) ** self.r for a in self.A]

    @property
    def tasks(self) -> int:
        return len(self.A)

    # ----------------------------------------------------------------- per task
    def adapted(self, task: int) -> sp.Matrix:
        """phi_r(theta) = c + M^r (theta - c)."""
        return self.c[task] + self._M_r[task] * (self.theta - self.c[task])

    def _test_gradient(self, task: int) -> sp.Matrix:
        return self.G[task] * (self.adapted(task) - self.d[task])

    def _exact(self, task: int) -> sp.Matrix:
        return self._M_r[task] * self._test_gradient(task)

    def _expect(self, per_task) -> sp.Matrix:
        return sum((w * per_task(t) for t, w in enumerate(self.w)), sp.zeros(self.dim, 1))

    def exact_gradient(self, task: int | None = None, backend: Backend = None) -> Any:
        """M^r G (phi_r - d) for one task, or its expectation grad M(theta) (task=None)."""
        expr = self._expect(self._exact) if task is None else self._exact(self._task(task))
        return self._emit(expr, backend)

    def first_order_gradient(self, task: int | None = None, backend: Backend = None) -> Any:
        """G (phi_r - d) for one task, or its expectation (FOM's mean direction)."""
        per_task = self._test_gradient
        expr = self._expect(per_task) if task is None else per_task(self._task(task))
        return self._emit(expr, backend)

    def first_order_bias(self, backend: Backend = None) -> Any:
        """E[g_FO] - grad M = E[(I - M^r) G (phi_r - d)]."""
        expr = self._expect(lambda t: self._test_gradient(t) - self._exact(t))
        return self._emit(expr, backend)

    def meta_objective(self, backend: Backend = None) -> Any:
        """M(theta) = E_tau 1/2 (phi_r - d)^T G (phi_r - d)."""
        expr = sum(
            w * (self.adapted(t) - self.d[t]).dot(self.G[t] * (self.adapted(t) - self.d[t])) / 2
            for t, w in enumerate(self.w)
        )
        check_backend(backend)
        return expr if backend is None else lambdify_scalar(expr, (self.theta,), backend)

    # ---------------------------------------------------------- fixed points
    def stationary_point(self) -> sp.Matrix:
        """theta* solving E[M^r G M^r] theta = E[M^r G (d - (I - M^r) c)]."""
        return self._solve(lambda t: self._M_r[t])

    def first_order_fixed_point(self) -> sp.Matrix:
        """theta_FO solving E[G M^r] theta = E[G (d - (I - M^r) c)] (FOM-SGD's limit)."""
        return self._solve(lambda t: sp.eye(self.dim))

    def _solve(self, left) -> sp.Matrix:
        n = self.dim
        lhs, rhs = sp.zeros(n, n), sp.zeros(n, 1)
        for t, w in enumerate(self.w):
            m = self._M_r[t]
            lhs += w * left(t) * self.G[t] * m
            rhs += w * left(t) * self.G[t] * (self.d[t] - (sp.eye(n) - m) * self.c[t])
        if lhs.det() == 0:
            raise ValueError("the fixed-point system is singular (no unique stationary point)")
        return sp.simplify(lhs.LUsolve(rhs))

    # ------------------------------------------------------------------ UFOM
    def ufom_second_moment(self, q: Any, backend: Backend = None) -> Any:
        """E_tau E_xi ||g_hat||^2 = E_tau[||g_ex||^2 + (1/q - 1) ||g_ex - g_FO||^2]."""
        q = _check_probability(q)

        def per_task(t: int) -> sp.Expr:
            exact, fo = self._exact(t), self._test_gradient(t)
            return exact.dot(exact) + (1 / q - 1) * (exact - fo).dot(exact - fo)

        expr = sum(w * per_task(t) for t, w in enumerate(self.w))
        check_backend(backend)
        return expr if backend is None else lambdify_scalar(expr, (self.theta,), backend)

    def prove_ufom_unbiased(self, q: Any) -> bool:
        """E over tau and xi in {0, 1} (weights 1 - q, q) of g_FO + (xi/q)(g_ex - g_FO) equals
        grad M identically in theta (sympy simplification to the zero vector)."""
        q = _check_probability(q)

        def mean_over_xi(t: int) -> sp.Matrix:
            exact, fo = self._exact(t), self._test_gradient(t)
            return (1 - q) * fo + q * (fo + (exact - fo) / q)

        diff = sp.simplify(self._expect(mean_over_xi) - self._expect(self._exact))
        return diff == sp.zeros(self.dim, 1)

    def _task(self, task: int) -> int:
        if not 0 <= task < self.tasks:
            raise ValueError(f"task must be in [0, {self.tasks}), got {task}")
        return task

    def _emit(self, expr: sp.Matrix, backend: Backend) -> Any:
        check_backend(backend)
        return expr if backend is None else lambdify_vector(expr, (self.theta,), backend)


def _check_probability(q: Any) -> sp.Expr:
    q = to_exact(q)
    if not (q.is_positive and (q <= 1) == sp.true):
        raise ValueError(f"q must lie in (0, 1], got {q}")
    return q


def ufom_expected_cost(q: Any, c_det: Any, c_rnd: Any) -> sp.Expr:
    """Expected gradient calls per UFOM meta-step: C_det + q C_rnd (spec 4.2, additive)."""
    return to_exact(c_det) + _check_probability(q) * to_exact(c_rnd)


def ufom_time_objective(q: Any, v2: Any, d2: Any, c_det: Any, c_rnd: Any) -> sp.Expr:
    """T(q) = (C_det + q C_rnd) sqrt(V^2 + (1/q - 1) D^2) (spec 4.3, [derived])."""
    q = _check_probability(q)
    return (to_exact(c_det) + q * to_exact(c_rnd)) * sp.sqrt(to_exact(v2) + (1 / q - 1) * d2)


def ufom_optimal_q(v2: Any, d2: Any, c_det: Any, c_rnd: Any) -> sp.Expr:
    """q* of the official toy: the root in (0, 1) of 2 C_rnd (V^2 - D^2) q^2 + C_rnd D^2 q -
    C_det D^2 = 0, or 1 when D^2 >= 2 C_rnd V^2 / (C_det + C_rnd) (then T decreases on (0, 1]).

    D^2 may exceed V^2 (the first-order direction can point away from the exact one); the
    quadratic is negative at 0 and positive at 1 below the threshold either way, so the root
    (-b + sqrt(b^2 - 4ac)) / 2a is the one in (0, 1) for both signs of a."""
    v2, d2, c_det, c_rnd = (to_exact(v) for v in (v2, d2, c_det, c_rnd))
    if not (v2.is_positive and d2.is_nonnegative and c_det.is_positive and c_rnd.is_positive):
        raise ValueError("need V^2 > 0, D^2 >= 0 and positive costs")
    if d2 == 0:
        return sp.Integer(0)
    if (d2 >= 2 * c_rnd * v2 / (c_det + c_rnd)) == sp.true:
        return sp.Integer(1)
    a, b, c = 2 * c_rnd * (v2 - d2), c_rnd * d2, -c_det * d2
    return sp.nsimplify((-b + sp.sqrt(b**2 - 4 * a * c)) / (2 * a)) if a != 0 else -c / b


def ufom_divergence_toy(
    a: tuple[Any, Any] = ("1/2", "3/2"),
    alpha: Any = "1/10",
    r: int = 10,
    d_target: Any = "3/50",
) -> tuple[QuadraticMetaLearning, dict[str, sp.Expr]]:
    r"""The 1-D two-task toy of ``simulate_fo_div`` (spec 4.6) in its quadratic region.

    Tasks f_i(x) = a_i/2 (x - b_i/a_i)^2 (train = test), b_1 = 0 and b_2 > 0 chosen so that
    |M'(theta_FO)| = sqrt(2 D); with the defaults b_2 ~ 17.3953, theta_FO ~ 5.7589 and
    theta* ~ 2.8403. ``huber_A`` = b_2/a_2 + 1 reproduces the official A ~ 12.5968 (the
    half-width of the quadratic region; that it is chosen this way is [derived] from the number).
    """
    b2 = sp.Symbol("b_2", positive=True)
    a1, a2 = (to_exact(v) for v in a)
    alpha = to_exact(alpha)
    w = [(1 - alpha * ai) ** r for ai in (a1, a2)]
    theta_fo = w[1] * b2 / (w[0] * a1 + w[1] * a2)
    slope = sum(
        (1 - alpha * ai) ** (2 * r) * (ai * theta_fo - bi) for ai, bi in ((a1, 0), (a2, b2))
    )
    solutions = [s for s in sp.solve(sp.Eq((slope / 2) ** 2, 2 * to_exact(d_target)), b2)]
    if len(solutions) != 1:
        raise ValueError(f"expected one positive b_2, got {solutions}")
    b2_value = solutions[0]
    toy = QuadraticMetaLearning(
        A=[[[a1]], [[a2]]],
        c=[[0], [b2_value / a2]],
        G=[[[a1]], [[a2]]],
        d=[[0], [b2_value / a2]],
        alpha=alpha,
        r=r,
    )
    numbers = {
        "b_2": b2_value,
        "huber_A": b2_value / a2 + 1,
        "theta_FO": toy.first_order_fixed_point()[0],
        "theta_star": toy.stationary_point()[0],
    }
    return toy, numbers
