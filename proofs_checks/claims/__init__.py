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
- ``bda``: BDA against RHG on the non-singleton counterexample, and the official schedule.

Users add their own with ``bilevel verify --claims my.module`` (a module with ``CLAIMS``).
"""

from __future__ import annotations

from ..engine import Claim


def builtin_claims() -> tuple[Claim, ...]:
    from . import (
        bda,
        debiasing,
        estimator_means,
        foundation,
        hyper_cleaning,
        ji2021,
        lower_bounds,
        minimax,
        momentum_baselines,
        momentum_pl,
        momentum_rules,
        outer_algorithms,
        outer_convergence,
        randomized_truncation,
    )

    return (
        *foundation.CLAIMS,
        *ji2021.CLAIMS,
        *randomized_truncation.CLAIMS,
        *lower_bounds.CLAIMS,
        *outer_algorithms.CLAIMS,
        *outer_convergence.CLAIMS,
        *minimax.CLAIMS,
        *momentum_pl.CLAIMS,
        *momentum_rules.CLAIMS,
        *momentum_baselines.CLAIMS,
        *debiasing.CLAIMS,
        *estimator_means.CLAIMS,
        *bda.CLAIMS,
        *hyper_cleaning.CLAIMS,
    )
