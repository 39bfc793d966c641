r"""Bilevel instances whose lower level is Polyak-Lojasiewicz (PL) but not strongly convex.

A function h is mu-PL when 1/2 ||grad h(y)||^2 >= mu (h(y) - min h) for every y. Two families:

1. ``PLLeastSquaresGame`` (spec 7.11, a [substitute] for the MGBiO paper's "bilevel PL game"):
   g(x, y) = 1/2 ||C y - D x||^2 with C rank-deficient, f(x, y) = 1/2 ||y - y_t||^2 + nu/2 ||x||^2.
   g is PL in y with mu = sigma_min^+(C)^2 (smallest non-zero singular value squared) and has the
   non-singleton minimiser set S(x) = C^+ D x + null(C). The surrogate hypergradient of Huang
   (2023) with a pseudo-inverse Hessian is
   grad F~(x, y) = nu x + D^T C (C^T C)^+ (y - y_t) = nu x + D^T (C^T)^+ (y - y_t),
   identical for every y in S(x); it is the exact gradient of x -> f(x, y_gd(x)) along the
   selection y_gd(x) = C^+ D x + Pi_null y0 that gradient descent from y0 converges to.
2. ``ScalarPLGame``: g(x, y) = h(y - x) with h(u) = u^2 + 3 sin^2 u (nonconvex: h'' = 2 + 6 cos 2u
   < 0 near u = pi/2), f(x, y) = 1/2 (y - t)^2 + nu/2 x^2. h is PL with mu = 1/32 [1]; its
   empirical PL constant on a fine grid is about 0.1755 (``VERIFICATION.md``).

References: [1] H. Karimi, J. Nutini, M. Schmidt, "Linear convergence of gradient and
proximal-gradient methods under the Polyak-Lojasiewicz condition", ECML-PKDD 2016 (the example
x^2 + 3 sin^2 x with mu = 1/32). [2] F. Huang, "On momentum-based gradient methods for bilevel
optimization with nonconvex lower-level", 2023.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import sympy as sp

from ._symbolic import (
    Backend,
    as_matrix,
    check_backend,
    check_nonnegative_int,
    check_positive_scalar,
    is_numeric,
    lambdify_scalar,
    lambdify_vector,
    symbol_vector,
    to_float_array,
)

__all__ = ["PLLeastSquaresGame", "ScalarPLGame"]

_DEFAULT_NU = sp.Rational(1, 10)


class PLLeastSquaresGame:
    """The rank-deficient least-squares bilevel game of spec 7.11.

    Args:
        C: (m, d_y), rank-deficient (rank < d_y), so that g is PL but not strongly convex.
        D: (m, d_x).  y_target: (d_y,).  nu: outer regularisation, > 0.
    """

    def __init__(self, C: Any, D: Any, y_target: Any, nu: Any) -> None:
        self.C = as_matrix(C, "C")
        m, d_y = self.C.shape
        self.D = as_matrix(D, "D")
        if self.D.rows != m:
            raise ValueError(f"D has shape {self.D.shape}, expected ({m}, d_x) to match C")
        self.y_target = as_matrix(y_target, "y_target", (d_y, 1))
        self.nu = check_positive_scalar(nu, "nu")
        if self.C.rank() >= d_y:
            raise ValueError(
                f"C must be rank-deficient (rank < d_y = {d_y}) for a non-singleton lower level; "
                f"it has rank {self.C.rank()}"
            )
        if self.C.rank() == 0:
            raise ValueError("C must be non-zero: with C = 0 the lower level is constant")
        self.d_x, self.d_y = self.D.cols, d_y
        self.x = symbol_vector("x", self.d_x)
        self.y = symbol_vector("y", self.d_y)

    @classmethod
    def random(
        cls, m: int, d_x: int, d_y: int, rank: int, seed: int, nu: float = 0.1
    ) -> PLLeastSquaresGame:
        """C = G1 G2 with Gaussian G1 (m x rank), G2 (rank x d_y): rank exactly ``rank`` < d_y."""
        check_nonnegative_int(seed, "seed")
        if not 1 <= rank < d_y or rank > m:
            raise ValueError(f"need 1 <= rank < d_y and rank <= m, got rank={rank}, d_y={d_y}")
        rng = np.random.default_rng(seed)
        # the product is formed in exact arithmetic: a float product would round to full rank
        C = as_matrix(rng.standard_normal((m, rank)), "G1") * as_matrix(
            rng.standard_normal((rank, d_y)), "G2"
        )
        return cls(C=C, D=rng.standard_normal((m, d_x)), y_target=rng.standard_normal(d_y), nu=nu)

    def inner(self, x: Any = None, y: Any = None) -> sp.Expr:
        """g(x, y) = 1/2 ||C y - D x||^2."""
        x, y = self._xy(x, y)
        res = self.C * y - self.D * x
        return (res.T * res)[0, 0] / 2

    def outer(self, x: Any = None, y: Any = None) -> sp.Expr:
        """f(x, y) = 1/2 ||y - y_t||^2 + nu/2 ||x||^2."""
        x, y = self._xy(x, y)
        diff = y - self.y_target
        return (diff.T * diff)[0, 0] / 2 + self.nu * (x.T * x)[0, 0] / 2

    @cached_property
    def C_pinv(self) -> sp.Matrix:
        """C^+ (exact Moore-Penrose pseudo-inverse)."""
        return self.C.pinv()

    @cached_property
    def null_projector(self) -> sp.Matrix:
        """Pi_null = I - C^+ C, the orthogonal projector onto null(C)."""
        return sp.eye(self.d_y) - self.C_pinv * self.C

    def pl_constant(self) -> float:
        """mu = sigma_min^+(C)^2, the smallest non-zero eigenvalue of C^T C (float64)."""
        eigs = np.linalg.eigvalsh(to_float_array(self.C.T * self.C))
        rank = self.C.rank()
        return float(np.sort(eigs)[-rank])

    def smoothness_constant(self) -> float:
        """L = sigma_max(C)^2, the Lipschitz constant of grad_y g."""
        return float(np.linalg.eigvalsh(to_float_array(self.C.T * self.C)).max())

    def gd_limit(self, y0: Any, backend: Backend = None) -> Any:
        """Limit of GD on g(x, .) from y0 (step < 2/L): C^+ D x + Pi_null y0 (spec 7.11)."""
        y0 = as_matrix(y0, "y0", (self.d_y, 1))
        return self._emit(self.C_pinv * self.D * self.x + self.null_projector * y0, backend)

    def optimistic_selection(self, backend: Backend = None) -> Any:
        """argmin_{y in S(x)} f(x, y) = C^+ D x + Pi_null (y_t - C^+ D x)."""
        base = self.C_pinv * self.D * self.x
        return self._emit(base + self.null_projector * (self.y_target - base), backend)

    def surrogate_hypergradient(self, y: Any = None, backend: Backend = None) -> Any:
        """nu x + D^T (C^T)^+ grad_y f(x, y) = nu x + D^T (C^T)^+ (y - y_t) (``y=None``: symbolic)."""
        inputs: tuple[sp.Matrix, ...] = (self.x,)
        if y is None:
            y, inputs = self.y, (self.x, self.y)
        else:
            y = as_matrix(y, "y", (self.d_y, 1))
        grad = self.nu * self.x + self.D.T * self.C_pinv.T * (y - self.y_target)
        check_backend(backend)
        return grad if backend is None else lambdify_vector(grad, inputs, backend)

    def prove_surrogate_selection_invariance(self) -> bool:
        """Prove the surrogate takes one value on S(x): D^T (C^T)^+ n = 0 for n in null(C)."""
        for n in self.C.nullspace():
            residual = (self.D.T * self.C_pinv.T * n).applyfunc(sp.simplify)
            if any(v != 0 for v in residual):
                raise ArithmeticError(f"surrogate changes along null(C) direction {list(n)}")
        return True

    def prove_surrogate_is_gd_selection_gradient(self, y0: Any) -> bool:
        """Prove surrogate(y_gd(x)) == d/dx f(x, y_gd(x)) with y_gd(x) = C^+ D x + Pi_null y0."""
        y_gd = self.gd_limit(y0)
        value = self.outer(self.x, y_gd)
        grad = sp.Matrix([sp.diff(value, xi) for xi in self.x])
        diff = grad - self.surrogate_hypergradient(y_gd)
        if any(sp.simplify(sp.expand(v)) != 0 for v in diff):
            raise ArithmeticError("surrogate differs from the gradient along the GD selection")
        return True

    def _xy(self, x: Any, y: Any) -> tuple[sp.Matrix, sp.Matrix]:
        x = self.x if x is None else as_matrix(x, "x", (self.d_x, 1))
        y = self.y if y is None else as_matrix(y, "y", (self.d_y, 1))
        return x, y

    def _emit(self, expr: sp.Matrix, backend: Backend) -> Any:
        check_backend(backend)
        return expr if backend is None else lambdify_vector(expr, (self.x,), backend)

    @property
    def is_numeric(self) -> bool:
        return is_numeric(self.C) and is_numeric(self.D) and is_numeric(self.y_target)


class ScalarPLGame:
    """g(x, y) = h(y - x), h(u) = u^2 + 3 sin^2 u; f(x, y) = 1/2 (y - t)^2 + nu/2 x^2 (scalars).

    h is nonconvex, PL with the certified constant 1/32 [Karimi et al. 2016], with the unique
    minimiser u = 0, so y*(x) = x, Phi(x) = 1/2 (x - t)^2 + nu/2 x^2 and
    grad Phi(x) = (1 + nu) x - t.
    """

    #: PL constant of h proven by Karimi, Nutini and Schmidt (2016).
    PL_CONSTANT_CERTIFIED = sp.Rational(1, 32)

    def __init__(self, t: Any = 1, nu: Any = _DEFAULT_NU) -> None:
        self.t = sp.sympify(t)
        self.nu = check_positive_scalar(nu, "nu")
        self.x, self.y, self.u = sp.symbols("x y u", real=True)

    @staticmethod
    def h(u: Any) -> sp.Expr:
        """h(u) = u^2 + 3 sin^2 u."""
        return u**2 + 3 * sp.sin(u) ** 2

    def inner(self) -> sp.Expr:
        return self.h(self.y - self.x)

    def outer(self) -> sp.Expr:
        return (self.y - self.t) ** 2 / 2 + self.nu * self.x**2 / 2

    def hypergradient(self, backend: Backend = None) -> Any:
        """grad Phi(x) by the implicit function theorem at y*(x) = x (h''(0) = 8 > 0)."""
        f, g = self.outer(), self.inner()
        g_yy = sp.diff(g, self.y, 2)
        g_xy = sp.diff(g, self.x, self.y)
        expr = sp.diff(f, self.x) - g_xy / g_yy * sp.diff(f, self.y)
        expr = sp.simplify(expr.subs(self.y, self.x))
        check_backend(backend)
        xs = sp.Matrix([self.x])
        return expr if backend is None else lambdify_scalar(expr, (xs,), backend)

    def pl_ratio(self, u: np.ndarray) -> np.ndarray:
        """1/2 h'(u)^2 / h(u), whose infimum over u != 0 is the PL constant of h."""
        u = np.asarray(u, dtype=np.float64)
        dh = 2 * u + 3 * np.sin(2 * u)
        return 0.5 * dh**2 / (u**2 + 3 * np.sin(u) ** 2)

    def pl_constant_empirical(self, half_width: float = 50.0, n: int = 2_000_001) -> float:
        """min of ``pl_ratio`` on a symmetric grid without 0 (0.1755 on [-50, 50]).

        Outside [-50, 50] the ratio is at least (2|u| - 3)^2 / (2 (u^2 + 3)) > 1.8, so the grid
        minimum is the global one up to the grid's resolution.
        """
        grid = np.linspace(-half_width, half_width, n)
        grid = grid[grid != 0.0]
        return float(self.pl_ratio(grid).min())
