"""pytest plugin of bilevel (entry point ``pytest11``): fixtures for users' own test suites.

Installed with the package; pytest loads it automatically. Fixtures:

- ``quadratic_instance``: a numeric ``bilevel.analysis.QuadraticBilevel`` (d_x = 3, d_y = 5,
  kappa = 100, seed 0) with its exact hypergradient.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def quadratic_instance():
    """A seeded numeric quadratic bilevel instance (d_x=3, d_y=5, kappa=100)."""
    from bilevel.analysis import QuadraticBilevel

    return QuadraticBilevel.random(d_x=3, d_y=5, kappa=100.0, seed=0)
