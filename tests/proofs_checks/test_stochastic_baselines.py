"""The judge of ``momentum/stochastic-equal-budget`` on planted measurements: each of its
refutations and inconclusive outcomes is reached by the measurement it names, and no other.
(The claim's quick grid itself runs in ``bilevel verify``; its wrong implementations in
``test_gallery.py``.)"""

from __future__ import annotations

import numpy as np
import pytest

from bilevel.proofs_checks.claims import momentum_baselines as mb
from bilevel.proofs_checks.statistics import ledger

SEEDS = mb.STOCHASTIC_SEEDS
MIDDLE = f"{mb.STOCHASTIC_GRID[4]:g}"


def _run(method: str, loss: float, steps: int = 100) -> dict:
    per_step = mb.MOMENTUM_RULES.get(method, 4)
    return {"loss": loss, "calls": mb.INIT_CALLS + per_step * steps, "steps": steps,
            "minibatches": 1 + steps, "full_data": 0}  # fmt: skip


def _measurements(ratio: dict[str, np.ndarray], lr: str = MIDDLE) -> tuple[list, list]:
    """stocBiO at loss 1 on every seed; each momentum method at 1 / ratio[method][seed]."""
    params, ms = [], []
    for i, seed in enumerate(SEEDS):
        for method in mb.STOCHASTIC_METHODS:
            loss = 1.0 / ratio[method][i] if method in ratio else 1.0
            runs = {lr: _run(method, loss)}
            params.append({"method": method, "seed": seed})
            ms.append({"method": method, "seed": seed, "runs": runs, "best_lr": float(lr),
                       "best": loss})  # fmt: skip
    return params, ms


def _spread(centre: float, sd: float) -> np.ndarray:
    """Ratios whose logs have mean ln(centre) and sample sd ``sd`` (fixed, not random)."""
    z = np.linspace(-1.0, 1.0, len(SEEDS))
    return np.exp(np.log(centre) + sd * z / z.std(ddof=1))


def _judge(ratio: dict, **kwargs):
    with ledger(keep=False):
        return mb.judge_stochastic(*_measurements(ratio, **kwargs))


def test_ratios_well_above_two_hold() -> None:
    verdict = _judge({"MSGBiO": _spread(7.0, 1.0), "VR-MSGBiO": _spread(7.0, 1.0)})
    assert verdict.outcome == "holds", verdict.measured
    assert "geometric-mean loss ratio stocBiO / MSGBiO 7.00" in verdict.measured


def test_a_ratio_far_below_two_is_refuted_and_one_just_below_is_inconclusive() -> None:
    """Upper bound = mean + t_{11, 5e-7} s / sqrt(12) = mean + 2.80 s (s = 0.5 here): a centre
    of 0.4 gives ln 0.4 + 1.40 = 0.48 < ln 2 (refuted); 1.5 gives 1.81 > ln 2 with a point
    estimate below ln 2 (inconclusive)."""
    far = _judge({"MSGBiO": _spread(0.4, 0.5), "VR-MSGBiO": _spread(7.0, 1.0)})
    assert far.outcome == "refuted" and "not half stocBiO's loss" in far.measured
    near = _judge({"MSGBiO": _spread(7.0, 1.0), "VR-MSGBiO": _spread(1.5, 0.5)})
    assert near.outcome == "inconclusive" and "without significance" in near.measured


@pytest.mark.parametrize(
    "field, value, message",
    [("calls", mb.INIT_CALLS + 4 * 100, "oracle calls in 100 steps"),
     ("minibatches", 1, "minibatches in 100 steps"),
     ("full_data", 3, "full-data evaluations")],
)  # fmt: skip
def test_off_rule_counts_are_refuted(field: str, value: int, message: str) -> None:
    params, ms = _measurements({"MSGBiO": _spread(7.0, 1.0), "VR-MSGBiO": _spread(7.0, 1.0)})
    ms[0]["runs"][MIDDLE][field] = value  # MSGBiO, first seed
    with ledger(keep=False):
        verdict = mb.judge_stochastic(params, ms)
    assert verdict.outcome == "refuted" and message in verdict.measured


def test_a_stocbio_best_step_on_the_grid_edge_is_inconclusive() -> None:
    edge = f"{mb.STOCHASTIC_GRID[0]:g}"
    verdict = _judge({"MSGBiO": _spread(7.0, 1.0), "VR-MSGBiO": _spread(7.0, 1.0)}, lr=edge)
    assert verdict.outcome == "inconclusive" and "grid's edge" in verdict.measured


def test_a_momentum_method_diverging_everywhere_is_refuted() -> None:
    params, ms = _measurements({"MSGBiO": _spread(7.0, 1.0), "VR-MSGBiO": _spread(7.0, 1.0)})
    ms[1].update(runs={f"{mb.STOCHASTIC_GRID[0]:g}": {"loss": None, "diverged": "x"}}, best=None)
    with ledger(keep=False):
        verdict = mb.judge_stochastic(params, ms)
    assert verdict.outcome == "refuted" and "diverged at every step" in verdict.measured
