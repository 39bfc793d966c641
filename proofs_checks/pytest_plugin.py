"""pytest plugin of bilevel (entry point ``pytest11``): fixtures for users' own test suites.

Installed with the package; pytest loads it automatically. Fixtures:

- ``quadratic_instance``: a numeric ``bilevel.analysis.QuadraticBilevel`` (d_x = 3, d_y = 5,
  kappa = 100, seed 0) with its exact hypergradient;
- ``bilevel_strategies``: the module ``bilevel.proofs_checks.strategies`` (hypothesis strategies
  ``spd_matrices``, ``quadratic_bilevel``, ``pl_functions``), also importable directly.

The comparators for users' tests are in ``bilevel.proofs_checks.comparators`` (bias tiers,
closed forms) and ``bilevel.proofs_checks.rates`` (rates, bounds, exponents, lower bounds).
Nothing heavy is imported until a fixture is used, so the plugin costs nothing otherwise.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def quadratic_instance():
    """A seeded numeric quadratic bilevel instance (d_x=3, d_y=5, kappa=100)."""
    from bilevel.analysis import QuadraticBilevel

    return QuadraticBilevel.random(d_x=3, d_y=5, kappa=100.0, seed=0)


@pytest.fixture
def bilevel_strategies():
    """The hypothesis strategies of ``bilevel.proofs_checks.strategies``."""
    from bilevel.proofs_checks import strategies

    return strategies
