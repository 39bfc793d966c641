"""Calibration: the stochastic comparators' false-alarm rates, observed on true nulls.

A declared error rate is only as good as the test's assumptions; the only way to see that it
holds is to run the test many times where the null is true and count (VERIFICATION.md: a
public plugin found its own bound at 16.5% against a declared 1% that way). At the suite's
alpha = 1e-6 no false alarm could be observed in any affordable number of repetitions, so the
tests are run at alpha = 0.05 on synthetic estimators (same code path, same formulas), 4000
repetitions from one seed. The observed rate must lie below alpha + 4 sigma (sigma =
sqrt(alpha (1 - alpha) / 4000) = 0.0034): a miscalibrated test (too liberal) fails. Deterministic
given the seed; the 4-sigma band is crossed by a well-calibrated test with probability ~3e-5
over seeds.
"""

from __future__ import annotations

import numpy as np

from bilevel.proofs_checks.statistics import bonferroni_z_test, ledger, t_lower_bound

ALPHA, REPEATS = 0.05, 4000
CEILING = ALPHA + 4 * np.sqrt(ALPHA * (1 - ALPHA) / REPEATS)


def test_bonferroni_z_test_false_alarm_rate_on_a_skewed_null() -> None:
    """Exponential draws (skewed, as estimator errors often are), n = 400, d = 3: the CLT-based
    Bonferroni test rejects a true mean at most at its declared rate."""
    rng = np.random.default_rng(20261201)
    rejected = 0
    with ledger(keep=False):
        for _ in range(REPEATS):
            samples = rng.exponential(1.0, size=(400, 3))
            rejected += bonferroni_z_test(samples, np.ones(3), alpha=ALPHA, record=False).rejected
    rate = rejected / REPEATS
    assert rate <= CEILING, f"observed false-alarm rate {rate:.4f} > {CEILING:.4f}"
    assert rate > 0, "no false alarm at all in 4000 nulls at alpha = 0.05: the test is inert"


def test_t_lower_bound_false_alarm_rate_with_eight_replicates() -> None:
    """The sample-complexity claims' one-sided t bound over 8 seeds: P(bound > true mean) is
    at most alpha for normal replicates."""
    rng = np.random.default_rng(7)
    above = 0
    with ledger(keep=False):
        for _ in range(REPEATS):
            _, low = t_lower_bound(rng.normal(-0.3, 0.1, size=8), ALPHA)
            above += low > -0.3
    rate = above / REPEATS
    assert rate <= CEILING, f"observed false-alarm rate {rate:.4f} > {CEILING:.4f}"
    assert rate > 0, "the bound never crossed the true mean: it is not a 1 - alpha bound"
