r"""Wrong closed forms: subclasses of ``bilevel.analysis`` classes with one derivation slip each,
for the claims that hold a computation to the ground truth (``quadratic-bilevel``, ``pl-game``,
``scalar-pl`` slots). Test doubles for ``bilevel verify --mutants``.
"""

from __future__ import annotations

from typing import Any

from bilevel.analysis import PLLeastSquaresGame, QuadraticBilevel, ScalarPLGame


class QuadraticBilevelPenaltyLeadingTerm(QuadraticBilevel):
    """spec 7.8's bias with its second term, -(1/lam) B^T (A + P/lam)^-1 P A^-1 g*, dropped
    (kept "as higher order", although it is O(1/lam) too)."""

    def penalty_error(self, lam: Any, backend=None) -> Any:
        lam = self._check_lambda(lam)
        first = -self.S * (self.P + lam * self.A).inv() * self._g_star
        return self._emit_vector(first, backend, (self.x,))


class QuadraticBilevelImplicitSign(QuadraticBilevel):
    """The implicit function theorem's term with its sign flipped: grad_x f - B^T A^-1 grad_y f
    (g = 1/2 y^T A y - y^T (B x + c) has d^2 g / dx dy = -B^T: a slip of that minus)."""

    @property
    def _hypergradient_ift(self):
        y_star = self._y_star
        return self.grad_x_outer(self.x, y_star) - self.B.T * self.A_inv * self.grad_y_outer(
            self.x, y_star
        )


class QuadraticBilevelITDOffByOne(QuadraticBilevel):
    """ITD's closed form with M^(T-1) for M^T (one power short)."""

    def itd_hypergradient(self, T, alpha, y0=None, backend=None):
        return super().itd_hypergradient(max(int(T) - 1, 0), alpha, y0, backend)


class QuadraticBilevelNeumannOneShort(QuadraticBilevel):
    """The Neumann closed form with Q - 1 terms for Q."""

    def neumann_hypergradient(self, Q, eta, y=None, backend=None):
        return super().neumann_hypergradient(max(int(Q) - 1, 0), eta, y, backend)


class QuadraticBilevelCGOneShort(QuadraticBilevel):
    """The Krylov (CG) closed form over K - 1 Krylov vectors for K."""

    def cg_hypergradient(self, K, y=None, v0=None, backend=None):
        return super().cg_hypergradient(max(int(K) - 1, 0), y, v0, backend)


class PLGameSurrogateWithoutRegulariser(PLLeastSquaresGame):
    """The surrogate hypergradient without the outer regulariser's nu x."""

    def surrogate_hypergradient(self, y=None, backend=None):
        import numpy as np

        base = super().surrogate_hypergradient(y, backend)
        nu = float(self.nu)
        if backend is None:
            return base - self.nu * self.x

        def without(x, *rest):
            value = base(x, *rest)
            return value - nu * np.asarray(x, dtype=float).reshape(np.shape(value))

        return without


class ScalarPLChainRuleSlip(ScalarPLGame):
    """The PL ratio with h'(u) = 2u + 3 sin u (d/du sin^2 u taken as sin u, not sin 2u)."""

    def pl_ratio(self, u):
        import numpy as np

        u = np.asarray(u, dtype=np.float64)
        dh = 2 * u + 3 * np.sin(u)
        return 0.5 * dh**2 / (u**2 + 3 * np.sin(u) ** 2)
