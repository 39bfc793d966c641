"""The built-in claims, one module per paper or topic.

- ``foundation``: the exact ground truth (hypergradient identities, closed forms against
  independent simulations, PL constants) that every other claim builds on;
- ``ji2021``: AID / ITD of Ji, Yang & Liang (ICML 2021): error rates and the kappa-complexity
  of CG against Neumann;
- ``randomized_truncation``: unbiasedness of the randomized-truncation estimator, and the
  refuted "unbiased" claims of the first-order and truncated-Neumann estimators;
- ``lower_bounds``: the zero-chain lower bound that Krylov inner solvers cannot beat;
- ``outer_algorithms``: rates and limits of whole algorithms (AID-BiO, ITD-BiO without loops).

Users add their own with ``bilevel verify --claims my.module`` (a module with ``CLAIMS``).
"""

from __future__ import annotations

from ..engine import Claim


def builtin_claims() -> tuple[Claim, ...]:
    from . import foundation, ji2021, lower_bounds, outer_algorithms, randomized_truncation

    return (
        *foundation.CLAIMS,
        *ji2021.CLAIMS,
        *randomized_truncation.CLAIMS,
        *lower_bounds.CLAIMS,
        *outer_algorithms.CLAIMS,
    )
