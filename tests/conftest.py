"""Test-suite configuration: hypothesis profiles.

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


def pytest_configure(config) -> None:
    """The summary of statistical tests comes from the installed plugin
    (``bilevel.proofs_checks.pytest_plugin``), as in a user's suite; here it is always printed."""
    config.pluginmanager.register(object(), "bilevel-repository")
