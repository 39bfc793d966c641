"""The built-in claims, one module per paper or topic.

- ``foundation``: the exact ground truth (hypergradient identities, closed forms against
  independent simulations, PL constants) that every other claim builds on;
- ``ji2021``: AID / ITD of Ji, Yang & Liang (ICML 2021): error rates and the kappa-complexity
  of CG against Neumann;
- ``randomized_truncation``: unbiasedness of the randomized-truncation estimator, and the
  refuted "unbiased" claims of the first-order and truncated-Neumann estimators;
- ``lower_bounds``: the zero-chain lower bound that Krylov inner solvers cannot beat;
- ``outer_algorithms``: rates and limits of whole algorithms (AID-BiO, ITD-BiO without loops);
- ``outer_convergence``: AID-BiO, ITD-BiO, stocBiO and AccBiO side by side (figure 3's data);
- ``minimax``: the minimax reformulation's O(1/lambda) bias and GDA's spectral boundary;
- ``momentum_pl``: the PL surrogate's selection invariance and MGBiO's gradient complexity;
- ``momentum_rules``: MGBiO, MSGBiO, VR-MSGBiO and FSLA against their update rules in numpy;
- ``momentum_baselines``: MGBiO against double-loop AID-BiO (figure 5's data);
- ``debiasing``: FOM's bias, UFOM's unbiasedness and second moment, the two-task toy;
- ``estimator_means``: each stochastic estimator's mean error against its closed-form bias
  (figure 2's data);
- ``hyper_cleaning``: minimax GDA against AID-BiO, ITD-BiO and stocBiO on data hyper-cleaning
  (figure 4's data);
- ``bda``: BDA against RHG on the non-singleton counterexample, and the official schedule;
- ``soba``: SOBA against Algorithm 1, and its deterministic fixed point.

Users add their own with ``bilevel verify --claims my.module`` (a module with ``CLAIMS``).
"""

from __future__ import annotations

import pkgutil
from importlib import import_module

from ..engine import Claim


def builtin_claims() -> tuple[Claim, ...]:
    """The ``CLAIMS`` of every module of this package: ``foundation`` first (the ground truth
    the others build on), then the rest in name order. A new module is found without a list."""
    names = sorted(
        info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")
    )
    names.sort(key=lambda name: name != "foundation")
    claims: list[Claim] = []
    for name in names:
        claims.extend(getattr(import_module(f"{__name__}.{name}"), "CLAIMS", ()))
    return tuple(claims)
