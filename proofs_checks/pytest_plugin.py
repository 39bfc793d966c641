"""pytest plugin of bilevel (entry point ``pytest11``): fixtures for users' own test suites.

Installed with the package; pytest loads it automatically. Fixtures:

- ``quadratic_instance``: a numeric ``bilevel.analysis.QuadraticBilevel`` (d_x = 3, d_y = 5,
  kappa = 100, seed 0) with its exact hypergradient;
- ``bilevel_strategies``: the module ``bilevel.proofs_checks.strategies`` (hypothesis strategies
  ``spd_matrices``, ``quadratic_bilevel``, ``pl_functions``), also importable directly.

The comparators for users' tests are in ``bilevel.proofs_checks.comparators`` (bias tiers,
closed forms) and ``bilevel.proofs_checks.rates`` (rates, bounds, exponents, lower bounds).
Nothing heavy is imported until a fixture is used, so the plugin costs nothing otherwise.

The session summary: when the session ran statistical tests (bilevel's comparators), the
terminal summary prints how many and the union bound on a false alarm among them, and a
session that spends more than ``statistics.SUITE_FALSE_ALARM_BUDGET`` fails. The plugin also
silences the ``torch.jit.script`` deprecation warning that torch's own modules raise on import
(18 lines in a user's run, none of them about the user's code).
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


JIT_WARNING = "ignore:`torch.jit.script` is deprecated:DeprecationWarning"


def pytest_configure(config) -> None:
    config.addinivalue_line("filterwarnings", JIT_WARNING)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """The session's statistical tests and the union bound on a false alarm among them."""
    from bilevel.proofs_checks.statistics import SUITE_FALSE_ALARM_BUDGET, spent

    tests, total = spent()
    if tests or config.pluginmanager.hasplugin("bilevel-repository"):
        terminalreporter.write_line(
            f"statistical tests in this session: {tests}; false-alarm probability <= "
            f"{total:.2g} (budget {SUITE_FALSE_ALARM_BUDGET:g})"
        )


def pytest_sessionfinish(session, exitstatus) -> None:
    """A session whose statistical tests spend more than the budget fails."""
    from bilevel.proofs_checks.statistics import SUITE_FALSE_ALARM_BUDGET, spent

    if spent()[1] > SUITE_FALSE_ALARM_BUDGET and exitstatus == 0:
        session.exitstatus = 1
