"""Test-suite configuration: hypothesis profiles and shared fixtures.

With ``CI`` set, hypothesis' built-in ``ci`` profile (derandomized, no example database, no
deadline) is loaded; locally the ``dev`` profile keeps the same no-deadline setting, because
sympy's first call of a derivation can take longer than hypothesis' default deadline.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "dev", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """The session's statistical tests and the union bound on a false alarm among them."""
    from bilevel.proofs_checks.statistics import SUITE_FALSE_ALARM_BUDGET, spent

    tests, total = spent()
    terminalreporter.write_line(
        f"statistical tests in this session: {tests}; false-alarm probability <= {total:.2g} "
        f"(budget {SUITE_FALSE_ALARM_BUDGET:g})"
    )


def pytest_sessionfinish(session, exitstatus) -> None:
    """A session whose statistical tests spend more than the budget fails (issue 10)."""
    from bilevel.proofs_checks.statistics import SUITE_FALSE_ALARM_BUDGET, spent

    if spent()[1] > SUITE_FALSE_ALARM_BUDGET and exitstatus == 0:
        session.exitstatus = 1
