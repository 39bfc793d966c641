r"""The non-singleton counterexample of BDA (Liu et al., ICML 2020 / TPAMI 2023; spec 5 and 7.10)
with its aggregated inner dynamics in closed form.

    min_x F(x, y) = 1/2 (x - y_2)^2 + 1/2 (y_1 - 1)^2   s.t.  y in argmin_y f(x, y) = 1/2 y_1^2 - x y_1.

S(x) = {(x, t) : t real} is not a singleton; the optimistic value is phi(x) = 1/2 (x - 1)^2, so
x* = 1. K aggregated steps y_{k+1} = y_k - (alpha_k s_u grad_y F + (1 - alpha_k) s_l grad_y f)
act on e = y_2 - x and y_1 separately [derived]:

    e_{k+1}   = (1 - alpha_k s_u) e_k,
    y1_{k+1}  = (1 - alpha_k s_u - (1 - alpha_k) s_l) y1_k + alpha_k s_u + (1 - alpha_k) s_l x,

so y_K(x) is affine in x and phi_K(x) = F(x, y_K(x)) is an explicit quadratic.

- RHG / ITD (alpha_k = 0) from y_0 = 0: y_2 stays 0, y_1 -> x, phi_inf = x^2/2 + (x - 1)^2/2,
  minimised at x = 1/2 (value 1/4; the optimum is 0).
- BDA, alpha_k = a/(k + 1) (sum alpha_k = inf): e_K / e_0 = prod_{k<K} (1 - a s_u/(k + 1))
  = Gamma(K + 1 - a s_u) / (Gamma(1 - a s_u) Gamma(K + 1)) ~ K^(-a s_u) / Gamma(1 - a s_u), and
  argmin phi_K -> 1.
- The official geometric schedule (upper weight lr alpha 0.9^k, lower weight lr (1 - alpha)):
  e_inf / e_0 = c = prod_k (1 - lr alpha 0.9^k) > 0, and the limiting minimiser is 1/(1 + c^2).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sympy as sp

from ._symbolic import check_nonnegative_int, check_positive_scalar, to_exact

__all__ = [
    "aggregated_inner_iterate",
    "aggregated_minimiser",
    "geometric_limit_minimiser",
    "geometric_residual",
    "geometric_schedule",
    "harmonic_residual",
    "harmonic_residual_gamma",
    "harmonic_schedule",
    "lower_level_singleton_minimiser",
    "upper_objective",
]

x = sp.Symbol("x", real=True)
X_STAR = sp.Integer(1)


def upper_objective(x_value: Any, y: Sequence[Any]) -> sp.Expr:
    """F(x, y) = 1/2 (x - y_2)^2 + 1/2 (y_1 - 1)^2."""
    return (x_value - y[1]) ** 2 / 2 + (y[0] - 1) ** 2 / 2


def harmonic_schedule(a: Any, K: int) -> list[sp.Expr]:
    """alpha_k = a / (k + 1), k = 0..K-1 (BDA's divergent-sum condition; needs 0 < a <= 1)."""
    a = check_positive_scalar(a, "a")
    if (a > 1) == sp.true:
        raise ValueError(f"alpha_0 = a must lie in (0, 1], got {a}")
    return [a / (k + 1) for k in range(check_nonnegative_int(K, "K"))]


def geometric_schedule(alpha: Any, K: int, decay: Any = "9/10") -> list[sp.Expr]:
    """The official code's upper-level weights alpha * decay^k (summable: sum < inf)."""
    alpha, decay = to_exact(alpha), to_exact(decay)
    return [alpha * decay**k for k in range(check_nonnegative_int(K, "K"))]


def aggregated_inner_iterate(
    weights: Sequence[Any],
    s_u: Any,
    s_l: Any,
    y0: Sequence[Any] = (0, 0),
    lower_weights: Sequence[Any] | None = None,
) -> tuple[sp.Expr, sp.Expr]:
    """y_K(x) after the steps y <- y - (w_k s_u grad_y F + l_k s_l grad_y f), exact in x.

    ``weights`` are the upper weights w_k (alpha_k); the lower weights l_k default to
    1 - alpha_k (the paper's convex combination); the official code keeps l_k = 1 - alpha.
    """
    s_u, s_l = to_exact(s_u), to_exact(s_l)
    lower = [1 - to_exact(w) for w in weights] if lower_weights is None else lower_weights
    if len(lower) != len(weights):
        raise ValueError("one lower weight per step")
    y1, y2 = (to_exact(v) for v in y0)
    for w, low in zip(weights, lower, strict=True):
        w, low = to_exact(w), to_exact(low)
        y1, y2 = (
            y1 - w * s_u * (y1 - 1) - low * s_l * (y1 - x),
            y2 - w * s_u * (y2 - x),
        )
    return sp.expand(y1), sp.expand(y2)


def aggregated_minimiser(
    weights: Sequence[Any],
    s_u: Any,
    s_l: Any,
    y0: Sequence[Any] = (0, 0),
    lower_weights: Sequence[Any] | None = None,
) -> sp.Expr:
    """argmin_x phi_K(x) = F(x, y_K(x)) (a quadratic in x; exact)."""
    y = aggregated_inner_iterate(weights, s_u, s_l, y0, lower_weights)
    phi = sp.expand(upper_objective(x, y))
    curvature = phi.coeff(x, 2)
    if curvature.is_positive is not True:
        raise ValueError("phi_K is not strictly convex in x: no unique minimiser")
    return sp.nsimplify(-phi.coeff(x, 1) / (2 * curvature))


def lower_level_singleton_minimiser() -> sp.Expr:
    """RHG / ITD's limit (alpha = 0, y_0 = 0): argmin x^2/2 + (x - 1)^2/2 = 1/2."""
    phi = x**2 / 2 + (x - 1) ** 2 / 2
    return sp.solve(sp.diff(phi, x), x)[0]


def harmonic_residual(a: Any, s_u: Any, K: int) -> sp.Expr:
    """e_K / e_0 = prod_{k<K} (1 - a s_u / (k + 1)) (exact rational for rational inputs)."""
    product = sp.Integer(1)
    for w in harmonic_schedule(a, K):
        product *= 1 - w * to_exact(s_u)
    return product


def harmonic_residual_gamma(a: Any, s_u: Any, K: Any) -> sp.Expr:
    """Gamma(K + 1 - a s_u) / (Gamma(1 - a s_u) Gamma(K + 1)) ~ K^(-a s_u) / Gamma(1 - a s_u)."""
    p = to_exact(a) * to_exact(s_u)
    return sp.gamma(K + 1 - p) / (sp.gamma(1 - p) * sp.gamma(K + 1))


def geometric_residual(lr: Any, alpha: Any, K: int | None = None, decay: Any = 0.9) -> float:
    """c = prod_{k<K} (1 - lr alpha decay^k); K=None: the infinite product (to 1e-16)."""
    lr, alpha, decay = float(lr), float(alpha), float(decay)
    if not 0 < decay < 1:
        raise ValueError(f"decay must lie in (0, 1), got {decay}")
    product, k = 1.0, 0
    while (K is None and lr * alpha * decay**k > 1e-17) or (K is not None and k < K):
        product *= 1 - lr * alpha * decay**k
        k += 1
    return product


def geometric_limit_minimiser(lr: Any, alpha: Any, decay: Any = 0.9) -> float:
    """1 / (1 + c^2): where the geometric schedule's phi_inf = c^2 x^2/2 + (x - 1)^2/2 is
    minimal (y_1 -> x since the lower weight stays lr (1 - alpha); e_inf = -c x from y_0 = 0)."""
    c = geometric_residual(lr, alpha, None, decay)
    return 1.0 / (1.0 + c * c)
