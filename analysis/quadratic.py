r"""Quadratic bilevel instances: the exact ground truth every solver is checked against.

Notation of ``shared/spec/algorithms.md`` section 7.1:

- inner  g(x, y) = 1/2 y^T A y - y^T (B x + c), A symmetric positive definite (d_y x d_y);
- outer  f(x, y) = 1/2 y^T P y + p^T y + 1/2 x^T R x + r^T x + x^T S y;
- y*(x) = A^-1 (B x + c); grad Phi(x) = R x + r + S y* + B^T A^-1 (P y* + p + S^T x).

Derivatives: grad_y g = A y - B x - c, the Hessian of g in y is A, the mixed block
(d/dx)(grad_y g)^T = -B^T (d_x x d_y), grad_x f = R x + r + S y, grad_y f = P y + p + S^T x.
We write g* = grad_y f(x, y*(x)), M_a = I - a A, mu and L for the extreme eigenvalues of A and
kappa = L / mu.

Every quantity is a sympy expression in the instance's symbol vector ``x`` (and ``y`` where a
point of the inner variable is an input), or, with ``backend="numpy"`` / ``"torch"``, a callable
produced from that expression. Numeric instances are held in exact rational arithmetic, so the
identities below are proven exactly, not up to rounding.

The estimator closed forms (spec 7.3-7.6, 7.8), each with its error in the spec's boxed form and a
norm bound with explicit constants:

- ITD after T steps of GD with step a from y0 (y0 held constant):
  y_T = y* + M^T (y0 - y*), dy_T/dx = (I - M^T) A^-1 B, estimate grad_x f + (dy_T/dx)^T grad_y f at
  y_T; error [S + B^T A^-1 (I - M^T) P] M^T e0 - B^T A^-1 M^T g*.
- Neumann with Q terms, step eta, at a point y = y* + e: v_Q = eta sum_{q<Q} N^q grad_y f,
  N = I - eta A; error [S + B^T A^-1 (I - N^Q) P] e - B^T A^-1 N^Q g*.
- CG with K steps from v0: the Galerkin iterate v_K = v0 + K_K (K_K^T A K_K)^-1 K_K^T r0 with
  K_K = [r0, A r0, ..., A^{K-1} r0]; ||v_K - v*||_2 <= 2 sqrt(kappa) ((sqrt kappa - 1)/(sqrt kappa
  + 1))^K ||v0 - v*||_2.
- First order (Q = 0): grad_x f at y; error S e - B^T A^-1 g*.
- Penalty / minimax reformulation with weight lambda: y_lam = (P + lam A)^-1 (lam (B x + c) - p -
  S^T x), gradient R x + r + S y_lam - lam B^T (y_lam - y*); error
  -S (P + lam A)^-1 g* - (1/lam) B^T (A + P/lam)^-1 P A^-1 g* = O(1/lam).

References: [1] K. Ji, J. Yang, Y. Liang, "Bilevel optimization: convergence analysis and enhanced
design", ICML 2021; [2] spec ``algorithms.md`` section 7 (derivations, checked numerically).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import sympy as sp

from ._symbolic import (
    Backend,
    as_matrix,
    check_backend,
    check_nonnegative_int,
    check_positive_definite,
    check_positive_scalar,
    check_symmetric,
    is_numeric,
    lambdify_scalar,
    lambdify_vector,
    norm2,
    symbol_vector,
    to_float_array,
)

__all__ = ["QuadraticBilevel", "SpectralConstants"]


@dataclass(frozen=True)
class SpectralConstants:
    """Constants in the error bounds.

    Attributes:
        mu: smallest eigenvalue of A.
        L: largest eigenvalue of A.
        norm_S, norm_B, norm_P: spectral norms (numeric instances, float64) or Frobenius norms
            (symbolic instances; an upper bound on the spectral norm, so the bounds stay valid).
    """

    mu: sp.Expr
    L: sp.Expr
    norm_S: sp.Expr
    norm_B: sp.Expr
    norm_P: sp.Expr

    @property
    def kappa(self) -> sp.Expr:
        return self.L / self.mu


class QuadraticBilevel:
    """A quadratic bilevel problem (spec 7.1), exact and symbolic.

    Args:
        A: inner Hessian, symmetric positive definite, (d_y, d_y).
        B: (d_y, d_x).  c: (d_y,).
        P: symmetric (d_y, d_y).  p: (d_y,).  R: symmetric (d_x, d_x).  r: (d_x,).
        S: (d_x, d_y).

    Entries may be sympy symbols or numbers; numbers are converted to exact rationals.

    Example:
        >>> inst = QuadraticBilevel.random(d_x=2, d_y=3, kappa=10.0, seed=0)
        >>> grad = inst.hypergradient(backend="numpy")
        >>> grad([0.0, 0.0]).shape
        (2,)
    """

    def __init__(self, A: Any, B: Any, c: Any, P: Any, p: Any, R: Any, r: Any, S: Any) -> None:
        self.A = as_matrix(A, "A")
        d_y = self.A.rows
        check_symmetric(self.A, "A")
        self.B = as_matrix(B, "B")
        if self.B.rows != d_y:
            raise ValueError(f"B has shape {self.B.shape}, expected ({d_y}, d_x) to match A")
        d_x = self.B.cols
        self.c = as_matrix(c, "c", (d_y, 1))
        self.P = as_matrix(P, "P", (d_y, d_y))
        check_symmetric(self.P, "P")
        self.p = as_matrix(p, "p", (d_y, 1))
        self.R = as_matrix(R, "R", (d_x, d_x))
        check_symmetric(self.R, "R")
        self.r = as_matrix(r, "r", (d_x, 1))
        self.S = as_matrix(S, "S", (d_x, d_y))
        check_positive_definite(self.A, "A")
        self.d_x, self.d_y = d_x, d_y
        self.x = symbol_vector("x", d_x)
        self.y = symbol_vector("y", d_y)

    # ------------------------------------------------------------------ construction
    @classmethod
    def random(
        cls, d_x: int, d_y: int, kappa: float, seed: int, mu: float = 1.0
    ) -> QuadraticBilevel:
        """Numeric instance whose A has condition number ``kappa`` (to float64 rounding).

        A = Q diag(lambda) Q^T with Q Haar-distributed (QR of a Gaussian matrix, signs fixed) and
        the spectrum pinned at mu and kappa*mu (the rest log-uniform in between); every other
        block is standard Gaussian (P, R symmetrised). Deterministic in ``seed``.
        """
        check_nonnegative_int(seed, "seed")
        if d_x < 1 or d_y < 1:
            raise ValueError(f"d_x and d_y must be >= 1, got d_x={d_x}, d_y={d_y}")
        if not (np.isfinite(kappa) and kappa >= 1.0):
            raise ValueError(f"kappa must be a finite number >= 1, got {kappa}")
        if not (np.isfinite(mu) and mu > 0):
            raise ValueError(f"mu must be a positive finite number, got {mu}")
        rng = np.random.default_rng(seed)
        A = spd_with_condition_number(d_y, kappa, mu, rng)
        P = rng.standard_normal((d_y, d_y))
        R = rng.standard_normal((d_x, d_x))
        return cls(
            A=A,
            B=rng.standard_normal((d_y, d_x)),
            c=rng.standard_normal(d_y),
            P=(P + P.T) / 2,
            p=rng.standard_normal(d_y),
            R=(R + R.T) / 2,
            r=rng.standard_normal(d_x),
            S=rng.standard_normal((d_x, d_y)),
        )

    @property
    def is_numeric(self) -> bool:
        """True when no entry of the instance is symbolic."""
        return all(
            is_numeric(m) for m in (self.A, self.B, self.c, self.P, self.p, self.R, self.r, self.S)
        )

    def as_numpy(self) -> dict[str, np.ndarray]:
        """The blocks rounded to float64 (vectors 1-D), for numeric simulations and solvers."""
        if not self.is_numeric:
            raise ValueError("as_numpy needs a numeric instance; this one has symbolic entries")
        blocks = {"A": self.A, "B": self.B, "P": self.P, "R": self.R, "S": self.S}
        out = {k: to_float_array(v) for k, v in blocks.items()}
        for k, v in {"c": self.c, "p": self.p, "r": self.r}.items():
            out[k] = to_float_array(v).reshape(-1)
        return out

    # ------------------------------------------------------------------ objectives
    def inner(self, x: sp.Matrix | None = None, y: sp.Matrix | None = None) -> sp.Expr:
        """g(x, y) = 1/2 y^T A y - y^T (B x + c)."""
        x, y = self._xy(x, y)
        return ((y.T * self.A * y) / 2 - y.T * (self.B * x + self.c))[0, 0]

    def outer(self, x: sp.Matrix | None = None, y: sp.Matrix | None = None) -> sp.Expr:
        """f(x, y) = 1/2 y^T P y + p^T y + 1/2 x^T R x + r^T x + x^T S y."""
        x, y = self._xy(x, y)
        val = (y.T * self.P * y) / 2 + self.p.T * y + (x.T * self.R * x) / 2 + self.r.T * x
        return (val + x.T * self.S * y)[0, 0]

    def grad_x_outer(self, x: sp.Matrix, y: sp.Matrix) -> sp.Matrix:
        """grad_x f = R x + r + S y."""
        return self.R * x + self.r + self.S * y

    def grad_y_outer(self, x: sp.Matrix, y: sp.Matrix) -> sp.Matrix:
        """grad_y f = P y + p + S^T x."""
        return self.P * y + self.p + self.S.T * x

    def grad_y_inner(self, x: sp.Matrix, y: sp.Matrix) -> sp.Matrix:
        """grad_y g = A y - B x - c."""
        return self.A * y - self.B * x - self.c

    # ------------------------------------------------------------------ ground truth
    @cached_property
    def A_inv(self) -> sp.Matrix:
        """A^-1 (exact)."""
        inv = self.A.inv()
        return inv if self.is_numeric else inv.applyfunc(sp.simplify)

    @cached_property
    def _y_star(self) -> sp.Matrix:
        return self.A_inv * (self.B * self.x + self.c)

    @cached_property
    def _g_star(self) -> sp.Matrix:
        """g* = grad_y f(x, y*(x))."""
        return self.grad_y_outer(self.x, self._y_star)

    @cached_property
    def _hypergradient_ift(self) -> sp.Matrix:
        return self.grad_x_outer(self.x, self._y_star) + self.B.T * self.A_inv * self._g_star

    def inner_solution(self, backend: Backend = None) -> Any:
        """y*(x) = A^-1 (B x + c)."""
        return self._emit_vector(self._y_star, backend, (self.x,))

    def value(self, backend: Backend = None) -> Any:
        """Phi(x) = f(x, y*(x))."""
        phi = sp.expand(self.outer(self.x, self._y_star))
        check_backend(backend)
        return phi if backend is None else lambdify_scalar(phi, (self.x,), backend)

    def hypergradient(self, backend: Backend = None) -> Any:
        """grad Phi(x) = R x + r + S y* + B^T A^-1 (P y* + p + S^T x) (implicit function theorem)."""
        return self._emit_vector(self._hypergradient_ift, backend, (self.x,))

    def hypergradient_by_substitution(self, backend: Backend = None) -> Any:
        """grad Phi(x) obtained by substituting y*(x) into f and differentiating in x."""
        phi = self.outer(self.x, self._y_star)
        grad = sp.Matrix([sp.diff(phi, xi) for xi in self.x])
        return self._emit_vector(grad, backend, (self.x,))

    def prove_hypergradient_identity(self) -> bool:
        """Prove IFT form == substitution form: exactly (numeric) or by ``simplify`` (symbolic).

        Returns True, or raises ``AssertionError``-free ``ArithmeticError`` naming the entry
        that differs.
        """
        diff = self._hypergradient_ift - self.hypergradient_by_substitution()
        self._prove_zero(diff, "IFT hypergradient - substitution hypergradient")
        return True

    def hessian(self, backend: Backend = None) -> Any:
        """Hessian of Phi: R + S A^-1 B + B^T A^-1 S^T + B^T A^-1 P A^-1 B (spec 7.2)."""
        Ai = self.A_inv
        hess = self.R + self.S * Ai * self.B + self.B.T * Ai * self.S.T
        hess = hess + self.B.T * Ai * self.P * Ai * self.B
        check_backend(backend)
        if backend is None:
            return hess
        flat = lambdify_vector(sp.Matrix(list(hess)), (self.x,), backend)
        shape = hess.shape

        def hessian_callable(*args: Any) -> Any:
            return flat(*args).reshape(shape)

        return hessian_callable

    # ------------------------------------------------------------------ constants
    @cached_property
    def constants(self) -> SpectralConstants:
        """mu, L of A and the norms of S, B, P used in the error bounds (see SpectralConstants)."""
        if self.is_numeric:
            eigs = np.linalg.eigvalsh(to_float_array(self.A))

            def spec_norm(m: sp.Matrix) -> sp.Expr:
                return sp.Float(np.linalg.norm(to_float_array(m), 2) if m.rows and m.cols else 0.0)

            return SpectralConstants(
                mu=sp.Float(eigs.min()),
                L=sp.Float(eigs.max()),
                norm_S=spec_norm(self.S),
                norm_B=spec_norm(self.B),
                norm_P=spec_norm(self.P),
            )
        if self.A.is_diagonal():
            eigs = list(self.A.diagonal())
        else:
            eigs = list(self.A.eigenvals().keys())
        return SpectralConstants(
            mu=sp.Min(*eigs),
            L=sp.Max(*eigs),
            norm_S=self.S.norm(),
            norm_B=self.B.norm(),
            norm_P=self.P.norm(),
        )

    def gd_matrix_power(self, step: sp.Expr, n: int) -> sp.Matrix:
        """(I - step A)^n: n steps of GD on g (ITD) or n Neumann terms' remainder (exact)."""
        return (sp.eye(self.d_y) - step * self.A) ** n

    def gd_contraction(self, step: Any) -> sp.Expr:
        """||I - a A|| = max(|1 - a mu|, |1 - a L|) (= 1 - a mu for a <= 2/(mu + L))."""
        k = self.constants
        a = check_positive_scalar(step, "step")
        return sp.Max(sp.Abs(1 - a * k.mu), sp.Abs(1 - a * k.L))

    def cg_contraction(self) -> sp.Expr:
        """(sqrt(kappa) - 1) / (sqrt(kappa) + 1)."""
        sk = sp.sqrt(self.constants.kappa)
        return (sk - 1) / (sk + 1)

    def _partial_sum_factor(self, step: sp.Expr, n: int) -> sp.Expr:
        """Bound w on mu ||A^-1 (I - (I - a A)^n)||: 1 when a L <= 1, else 1 + q^n."""
        k = self.constants
        q = self.gd_contraction(step)
        return sp.Piecewise((1, step * k.L <= 1), (1 + q**n, True))

    # ------------------------------------------------------------------ estimators
    def itd_hypergradient(self, T: int, alpha: Any, y0: Any = None, backend: Backend = None) -> Any:
        """ITD: d/dx f(x, y_T(x)) with y_{t+1} = y_t - alpha grad_y g(x, y_t), y0 held constant.

        Closed form (spec 7.3): y_T = y* + M^T (y0 - y*), dy_T/dx = (I - M^T) A^-1 B, M = I - alpha A;
        estimate = grad_x f(x, y_T) + (dy_T/dx)^T grad_y f(x, y_T). ``y0=None`` makes y0 the
        symbol vector ``y`` (then the callable takes ``(x, y0)``).
        """
        T = check_nonnegative_int(T, "T")
        alpha = check_positive_scalar(alpha, "alpha")
        y0, inputs = self._point(y0, "y0")
        MT = self.gd_matrix_power(alpha, T)
        y_T = self._y_star + MT * (y0 - self._y_star)
        jac = (sp.eye(self.d_y) - MT) * self.A_inv * self.B
        est = self.grad_x_outer(self.x, y_T) + jac.T * self.grad_y_outer(self.x, y_T)
        return self._emit_vector(est, backend, inputs)

    def itd_inner_iterate(self, T: int, alpha: Any, y0: Any = None, backend: Backend = None) -> Any:
        """y_T = y* + (I - alpha A)^T (y0 - y*), the T-th GD iterate on g(x, .) from y0."""
        T = check_nonnegative_int(T, "T")
        alpha = check_positive_scalar(alpha, "alpha")
        y0, inputs = self._point(y0, "y0")
        MT = self.gd_matrix_power(alpha, T)
        return self._emit_vector(self._y_star + MT * (y0 - self._y_star), backend, inputs)

    def itd_error(self, T: int, alpha: Any, y0: Any = None, backend: Backend = None) -> Any:
        """Boxed ITD error (spec 7.3): [S + B^T A^-1 (I - M^T) P] M^T e0 - B^T A^-1 M^T g*."""
        T = check_nonnegative_int(T, "T")
        alpha = check_positive_scalar(alpha, "alpha")
        y0, inputs = self._point(y0, "y0")
        MT = self.gd_matrix_power(alpha, T)
        e0 = y0 - self._y_star
        lead = self.S + self.B.T * self.A_inv * (sp.eye(self.d_y) - MT) * self.P
        err = lead * MT * e0 - self.B.T * self.A_inv * MT * self._g_star
        return self._emit_vector(err, backend, inputs)

    def itd_error_bound(self, T: int, alpha: Any, y0: Any = None, backend: Backend = None) -> Any:
        """||ITD error|| <= (||S|| + w ||B|| ||P|| / mu) q^T ||e0|| + (||B|| / mu) q^T ||g*||.

        q = ||I - alpha A|| (= 1 - alpha mu in the usual step range), w = 1 for alpha L <= 1 and
        1 + q^T otherwise (a bound on mu ||A^-1 (I - M^T)||).
        """
        T = check_nonnegative_int(T, "T")
        alpha = check_positive_scalar(alpha, "alpha")
        y0, inputs = self._point(y0, "y0")
        k = self.constants
        q = self.gd_contraction(alpha)
        w = self._partial_sum_factor(alpha, T)
        e0 = norm2(y0 - self._y_star)
        bound = (k.norm_S + w * k.norm_B * k.norm_P / k.mu) * q**T * e0
        bound = bound + k.norm_B / k.mu * q**T * norm2(self._g_star)
        return self._emit_scalar(bound, backend, inputs)

    def neumann_hypergradient(
        self, Q: int, eta: Any, y: Any = None, backend: Backend = None
    ) -> Any:
        """AID-Neumann: grad_x f + B^T v_Q, v_Q = eta sum_{q=0}^{Q-1} (I - eta A)^q grad_y f, at y.

        Q terms (Q = 0 is the first-order estimate); closed form v_Q = (I - N^Q) A^-1 grad_y f.
        """
        Q = check_nonnegative_int(Q, "Q")
        eta = check_positive_scalar(eta, "eta")
        y, inputs = self._point(y, "y")
        NQ = self.gd_matrix_power(eta, Q)
        v = (sp.eye(self.d_y) - NQ) * self.A_inv * self.grad_y_outer(self.x, y)
        return self._emit_vector(self.grad_x_outer(self.x, y) + self.B.T * v, backend, inputs)

    def neumann_error(self, Q: int, eta: Any, y: Any = None, backend: Backend = None) -> Any:
        """Boxed AID-Neumann error (spec 7.4): [S + B^T A^-1 (I - N^Q) P] e - B^T A^-1 N^Q g*."""
        Q = check_nonnegative_int(Q, "Q")
        eta = check_positive_scalar(eta, "eta")
        y, inputs = self._point(y, "y")
        NQ = self.gd_matrix_power(eta, Q)
        lead = self.S + self.B.T * self.A_inv * (sp.eye(self.d_y) - NQ) * self.P
        err = lead * (y - self._y_star) - self.B.T * self.A_inv * NQ * self._g_star
        return self._emit_vector(err, backend, inputs)

    def neumann_error_bound(self, Q: int, eta: Any, y: Any = None, backend: Backend = None) -> Any:
        """||Neumann error|| <= (||S|| + w ||B|| ||P|| / mu) ||e|| + (||B|| / mu) q^Q ||g*||."""
        Q = check_nonnegative_int(Q, "Q")
        eta = check_positive_scalar(eta, "eta")
        y, inputs = self._point(y, "y")
        k = self.constants
        q = self.gd_contraction(eta)
        w = self._partial_sum_factor(eta, Q)
        bound = (k.norm_S + w * k.norm_B * k.norm_P / k.mu) * norm2(y - self._y_star)
        bound = bound + k.norm_B / k.mu * q**Q * norm2(self._g_star)
        return self._emit_scalar(bound, backend, inputs)

    def first_order_hypergradient(self, y: Any = None, backend: Backend = None) -> Any:
        """First-order estimate grad_x f(x, y) (the implicit term dropped)."""
        y, inputs = self._point(y, "y")
        return self._emit_vector(self.grad_x_outer(self.x, y), backend, inputs)

    def first_order_error(self, y: Any = None, backend: Backend = None) -> Any:
        """First-order error S e - B^T A^-1 g* (its bias -B^T A^-1 g* does not vanish at y*)."""
        y, inputs = self._point(y, "y")
        err = self.S * (y - self._y_star) - self.B.T * self.A_inv * self._g_star
        return self._emit_vector(err, backend, inputs)

    def first_order_error_bound(self, y: Any = None, backend: Backend = None) -> Any:
        """||first-order error|| <= ||S|| ||e|| + ||B|| ||g*|| / mu."""
        y, inputs = self._point(y, "y")
        k = self.constants
        bound = k.norm_S * norm2(y - self._y_star) + k.norm_B / k.mu * norm2(self._g_star)
        return self._emit_scalar(bound, backend, inputs)

    def cg_hypergradient(
        self, K: int, y: Any = None, v0: Any = None, backend: Backend = None
    ) -> Any:
        """AID-CG: grad_x f + B^T v_K, v_K the K-th CG iterate for A v = grad_y f from v0 (spec 7.6).

        v_K = v0 + K_K (K_K^T A K_K)^-1 K_K^T r0, r0 = b - A v0, K_K = [r0, ..., A^{K-1} r0], the
        Galerkin (A-norm optimal) iterate. When the Krylov space stops growing (r0 = 0, or K above
        the number of distinct eigenvalues of A) CG has terminated and the formula uses its basis.
        v_K is a rational (not linear) function of (x, y): the numpy / torch callables therefore
        evaluate the closed form exactly in rational arithmetic at the given point and round the
        result once (no autograd through the torch output).
        """
        K = check_nonnegative_int(K, "K")
        y_given = y
        y, _ = self._point(y, "y")
        v0 = sp.zeros(self.d_y, 1) if v0 is None else as_matrix(v0, "v0", (self.d_y, 1))
        check_backend(backend)
        if backend is None:
            return self._cg_estimate(self.x, y, v0, K)
        return self._exact_pointwise(
            lambda xv, yv: self._cg_estimate(xv, yv, v0, K), backend, y_given is None, y
        )

    def cg_error(self, K: int, y: Any = None, v0: Any = None, backend: Backend = None) -> Any:
        """AID-CG error: (S + B^T A^-1 P) e + B^T (v_K - v*_y), v*_y = A^-1 grad_y f(x, y)."""
        K = check_nonnegative_int(K, "K")
        y_given = y
        y, _ = self._point(y, "y")
        v0 = sp.zeros(self.d_y, 1) if v0 is None else as_matrix(v0, "v0", (self.d_y, 1))
        check_backend(backend)

        def error_at(xv: sp.Matrix, yv: sp.Matrix) -> sp.Matrix:
            truth = self._hypergradient_ift.subs(dict(zip(self.x, xv, strict=True)))
            return self._cg_estimate(xv, yv, v0, K) - truth

        if backend is None:
            return error_at(self.x, y)
        return self._exact_pointwise(error_at, backend, y_given is None, y)

    def cg_error_bound(self, K: int, y: Any = None, v0: Any = None, backend: Backend = None) -> Any:
        """||CG error|| <= (||S|| + ||B|| ||P|| / mu) ||e|| + ||B|| 2 sqrt(kappa) rho^K ||v0 - v*_y||.

        rho = (sqrt(kappa) - 1)/(sqrt(kappa) + 1) (spec 7.6), v*_y = A^-1 grad_y f(x, y).
        """
        K = check_nonnegative_int(K, "K")
        y, inputs = self._point(y, "y")
        v0 = sp.zeros(self.d_y, 1) if v0 is None else as_matrix(v0, "v0", (self.d_y, 1))
        k = self.constants
        v_star = self.A_inv * self.grad_y_outer(self.x, y)
        rho = self.cg_contraction()
        bound = (k.norm_S + k.norm_B * k.norm_P / k.mu) * norm2(y - self._y_star)
        bound = bound + k.norm_B * 2 * sp.sqrt(k.kappa) * rho**K * norm2(v0 - v_star)
        return self._emit_scalar(bound, backend, inputs)

    def first_order_fixed_point(self) -> sp.Matrix:
        """x_FO: where the first-order direction at the exact inner solution vanishes,
        grad_x f(x, y*(x)) = R x + r + S A^-1 (B x + c) = 0, i.e. the limit of FO-ITD-BiO with
        D -> infinity (spec 7.3); needs R + S A^-1 B invertible."""
        jacobian = self.R + self.S * self.A_inv * self.B
        if jacobian.det() == 0:
            raise ValueError("R + S A^-1 B is singular: FO-ITD-BiO has no unique fixed point")
        return jacobian.LUsolve(-(self.r + self.S * self.A_inv * self.c))

    def penalty_hypergradient(self, lam: Any, backend: Backend = None) -> Any:
        """Gradient of the penalty / minimax value L*_lam(x) = min_y max_z f + lam (g(x,y) - g(x,z)).

        y_lam = (P + lam A)^-1 (lam (B x + c) - p - S^T x) and z* = y*, so by the envelope theorem
        grad L*_lam = R x + r + S y_lam - lam B^T (y_lam - y*) (spec 7.8). Needs P + lam A > 0.
        """
        lam = self._check_lambda(lam)
        y_lam = (self.P + lam * self.A).inv() * (
            lam * (self.B * self.x + self.c) - self.p - self.S.T * self.x
        )
        grad = self.R * self.x + self.r + self.S * y_lam - lam * self.B.T * (y_lam - self._y_star)
        return self._emit_vector(grad, backend, (self.x,))

    def penalty_error(self, lam: Any, backend: Backend = None) -> Any:
        """Boxed bias (spec 7.8): -S (P + lam A)^-1 g* - (1/lam) B^T (A + P/lam)^-1 P A^-1 g*."""
        lam = self._check_lambda(lam)
        first = -self.S * (self.P + lam * self.A).inv() * self._g_star
        second = -self.B.T * (self.A + self.P / lam).inv() * self.P * self.A_inv * self._g_star
        return self._emit_vector(first + second / lam, backend, (self.x,))

    def penalty_error_bound(self, lam: Any, backend: Backend = None) -> Any:
        """||bias|| <= (||S|| + ||B|| ||P|| / mu) ||g*|| / (lam mu - ||P||), for lam mu > ||P||.

        From ||(P + lam A)^-1|| <= 1 / (lam mu - ||P||) and (1/lam) ||(A + P/lam)^-1|| <= the same.
        """
        lam = self._check_lambda(lam)
        k = self.constants
        gap = lam * k.mu - k.norm_P
        if gap.is_positive is False:
            raise ValueError(
                f"the O(1/lambda) bound needs lam * mu > ||P||; got lam={lam}, mu={k.mu}, "
                f"||P||={k.norm_P}"
            )
        bound = (k.norm_S + k.norm_B * k.norm_P / k.mu) * norm2(self._g_star) / gap
        return self._emit_scalar(bound, backend, (self.x,))

    def gda_iteration(
        self, lam: Any, eta_x: Any, eta_y: Any, eta_z: Any
    ) -> tuple[sp.Matrix, sp.Matrix]:
        """Simultaneous GDA on L_lam = f(x, y) + lam [g(x, y) - g(x, z)] as w' = M w + m.

        w = (x, y, z); descent in x and y, ascent in z (spec 2.3-2.4(b)):
        x' = x - eta_x grad_x L, y' = y - eta_y grad_y L, z' = z + eta_z grad_z L, with
        grad_x L = R x + r + (S - lam B^T) y + lam B^T z, grad_y L = (S^T - lam B) x +
        (P + lam A) y + p - lam c and grad_z L = -lam (A z - B x - c). GDA converges linearly
        from every start exactly when the spectral radius of M is below 1.
        """
        lam = self._check_lambda(lam)
        steps = [
            check_positive_scalar(e, n)
            for e, n in ((eta_x, "eta_x"), (eta_y, "eta_y"), (eta_z, "eta_z"))
        ]
        dx, dy = self.d_x, self.d_y
        zero_yz = sp.zeros(dy, dy)
        G = sp.BlockMatrix(
            [
                [self.R, self.S - lam * self.B.T, lam * self.B.T],
                [self.S.T - lam * self.B, self.P + lam * self.A, zero_yz],
                [-lam * self.B, zero_yz, lam * self.A],
            ]
        ).as_explicit()
        const = sp.Matrix.vstack(self.r, self.p - lam * self.c, -lam * self.c)
        D = sp.diag(*([steps[0]] * dx + [steps[1]] * dy + [steps[2]] * dy))
        return sp.eye(dx + 2 * dy) - D * G, -D * const

    def prove_itd_neumann_identity(self, T: int, alpha: Any, y0: Any = None) -> bool:
        """Prove ITD(T, alpha) from y0 == Neumann(T terms, eta = alpha) at y_T (spec 7.5)."""
        T = check_nonnegative_int(T, "T")
        alpha_e = check_positive_scalar(alpha, "alpha")
        y0m, _ = self._point(y0, "y0")
        y_T = self.itd_inner_iterate(T, alpha_e, y0m)
        diff = self.itd_hypergradient(T, alpha, y0m) - self.neumann_hypergradient(T, alpha, y_T)
        self._prove_zero(diff, f"ITD({T}) - Neumann({T}) at y_T")
        return True

    # ------------------------------------------------------------------ helpers
    def _xy(self, x: Any, y: Any) -> tuple[sp.Matrix, sp.Matrix]:
        x = self.x if x is None else as_matrix(x, "x", (self.d_x, 1))
        y = self.y if y is None else as_matrix(y, "y", (self.d_y, 1))
        return x, y

    def _point(self, value: Any, name: str) -> tuple[sp.Matrix, tuple[sp.Matrix, ...]]:
        """A point of the inner variable: the symbol vector ``y`` when ``None``."""
        if value is None:
            return self.y, (self.x, self.y)
        return as_matrix(value, name, (self.d_y, 1)), (self.x,)

    def _check_lambda(self, lam: Any) -> sp.Expr:
        lam = check_positive_scalar(lam, "lam")
        if self.is_numeric and lam.is_number and not (self.P + lam * self.A).is_positive_definite:
            raise ValueError(
                f"lam={lam} is too small: P + lam A must be positive definite for the penalty "
                "problem min_y f + lam g to have a minimiser"
            )
        return lam

    def _cg_estimate(self, x: sp.Matrix, y: sp.Matrix, v0: sp.Matrix, K: int) -> sp.Matrix:
        b = self.grad_y_outer(x, y)
        v = galerkin_cg_iterate(self.A, b, v0, K, exact=self.is_numeric and not b.free_symbols)
        return self.grad_x_outer(x, y) + self.B.T * v

    def _exact_pointwise(
        self,
        build: Callable[[sp.Matrix, sp.Matrix], sp.Matrix],
        backend: str,
        y_input: bool,
        y_fixed: sp.Matrix,
    ) -> Callable[..., Any]:
        """Callable that evaluates ``build(x, y)`` exactly at rational points, then rounds."""
        if not self.is_numeric:
            raise ValueError("numeric callables of CG quantities need a numeric instance")

        def evaluate(*args: Any) -> Any:
            expected = 2 if y_input else 1
            if len(args) != expected:
                raise TypeError(f"this callable takes {expected} vector argument(s)")
            xv = as_matrix(np.asarray(_to_numpy(args[0]), dtype=np.float64), "x", (self.d_x, 1))
            yv = (
                as_matrix(np.asarray(_to_numpy(args[1]), dtype=np.float64), "y", (self.d_y, 1))
                if y_input
                else y_fixed
            )
            out = np.array([float(v) for v in build(xv, yv)], dtype=np.float64)
            if backend == "torch":
                import torch

                return torch.from_numpy(out)
            return out

        return evaluate

    def _emit_vector(self, expr: sp.Matrix, backend: Backend, inputs: tuple) -> Any:
        check_backend(backend)
        if backend is None:
            return expr if self.is_numeric else expr.applyfunc(sp.cancel)
        return lambdify_vector(expr.applyfunc(sp.expand), inputs, backend)

    def _emit_scalar(self, expr: sp.Expr, backend: Backend, inputs: tuple) -> Any:
        check_backend(backend)
        return expr if backend is None else lambdify_scalar(expr, inputs, backend)

    @staticmethod
    def _prove_zero(diff: sp.Matrix, what: str) -> None:
        for i, entry in enumerate(diff):
            if sp.simplify(sp.expand(entry)) != 0:
                raise ArithmeticError(f"{what}: entry {i} does not vanish: {entry}")


def galerkin_cg_iterate(
    A: sp.Matrix, b: sp.Matrix, v0: sp.Matrix, K: int, exact: bool = True
) -> sp.Matrix:
    """K-th CG iterate in closed form: v0 + K_K (K_K^T A K_K)^-1 K_K^T r0 (spec 7.6).

    With ``exact`` (numeric A, b) the Krylov basis is cut at its exact dimension, where CG has
    terminated; symbolic input is assumed generic (dimension min(K, d)).
    """
    r0 = b - A * v0
    basis: list[sp.Matrix] = []
    vec = r0
    for _ in range(min(K, A.rows)):
        candidate = sp.Matrix.hstack(*basis, vec)
        if exact and candidate.rank() < len(basis) + 1:
            break
        basis.append(vec)
        vec = A * vec
    if not basis:
        return v0
    krylov = sp.Matrix.hstack(*basis)
    gram = krylov.T * A * krylov
    return v0 + krylov * gram.LUsolve(krylov.T * r0)


def spd_with_condition_number(
    n: int, kappa: float, mu: float, rng: np.random.Generator
) -> np.ndarray:
    """Q diag(lambda) Q^T, Q Haar (QR with sign fix), lambda_min = mu, lambda_max = kappa mu."""
    gauss = rng.standard_normal((n, n))
    q, r = np.linalg.qr(gauss)
    q = q * np.sign(np.diag(r))
    if n == 1:
        if kappa != 1.0:
            raise ValueError(f"a 1x1 matrix has condition number 1, got kappa={kappa}")
        spectrum = np.array([mu])
    else:
        inner = np.exp(rng.uniform(np.log(mu), np.log(kappa * mu), size=max(n - 2, 0)))
        spectrum = np.concatenate([[mu], np.sort(inner), [kappa * mu]])
    A = (q * spectrum) @ q.T
    return (A + A.T) / 2


def _to_numpy(value: Any) -> Any:
    detach = getattr(value, "detach", None)
    return detach().cpu().numpy() if detach is not None else value
