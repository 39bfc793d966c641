"""Symbolic ground truth for bilevel optimisation (sympy, numpy; no torch).

Quadratic bilevel instances with exact hypergradients and the closed-form output and error of
every hypergradient estimator family, and Polyak-Lojasiewicz lower-level instances;
``meta_learning`` (MAML / FOM / UFOM on quadratic tasks, UFOM's q*, the paper's divergence toy)
and ``bda`` (the non-singleton counterexample's aggregated dynamics) in their own modules.
"""

from .pl import PLLeastSquaresGame, ScalarPLGame
from .quadratic import QuadraticBilevel, SpectralConstants, galerkin_cg_iterate

__all__ = [
    "PLLeastSquaresGame",
    "QuadraticBilevel",
    "ScalarPLGame",
    "SpectralConstants",
    "galerkin_cg_iterate",
]
