"""Mixed-precision CG (``method="cg", low_precision=torch.float32``): float32 rounds refined by
float64 residuals.

Tolerances.
- Accuracy: at kappa = 100, float64 CG's hypergradient is held to 1e-10 relative by the
  contract suite (its stated envelope; test_contract.py). Refinement computes every residual
  in float64, so it must meet the same 1e-10. float32 CG alone cannot: its attainable relative
  error is about kappa u_32 = 100 * 6e-8 = 6e-6, five orders above, which the planted
  "no refinement" variant below shows (it must fail the same bound).
- The fallback (kappa u_32 > 1, where float32 rounds cannot shrink the residual) is held to
  what float64 CG reaches with the same budget: it ends as float64 CG from the rounds' iterate,
  a warm start CG's error bound does not order against a cold one, so the bound is plain CG's
  error times 10 (or 1e-6, kappa u_64 = 1e-7 times 10): a stated margin, not a derivation.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bilevel.analysis import QuadraticBilevel
from bilevel.proofs_checks.instances import quadratic_objectives
from bilevel.solvers import OracleCounts, argmin, hypergradient, refinement
from bilevel.solvers.linear_solvers import conjugate_gradient

from ._linear_model import linear_model_problem

REL_TOL = 1e-10
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _quadratic(seed: int, kappa: float, d_y: int = 40, device: str = "cpu"):
    inst = QuadraticBilevel.random(3, d_y, kappa, seed)
    outer, inner = quadratic_objectives(inst, device=device)
    rng = np.random.default_rng(seed)
    x, y = (torch.from_numpy(rng.standard_normal(k)).to(device) for k in (3, d_y))
    return outer, inner, x, y


def _relative_error(value: torch.Tensor, exact: torch.Tensor) -> float:
    return float((value - exact).norm() / exact.norm())


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), kappa=st.sampled_from([1.0, 10.0, 100.0]))
def test_refined_cg_reaches_float64_accuracy(device: str, seed: int, kappa: float) -> None:
    outer, inner, x, y = _quadratic(seed, kappa, device=device)
    exact = hypergradient(outer, inner, x, y, method="exact")
    refined = hypergradient(outer, inner, x, y, method="cg", steps=200,
                            low_precision=torch.float32)  # fmt: skip
    assert refined.dtype == torch.float64 and refined.device.type == device
    assert _relative_error(refined, exact) <= REL_TOL


def test_the_bound_refutes_float32_cg_without_refinement(monkeypatch) -> None:
    """Planted bug: the whole budget spent in one float32 CG run, upcast, with no float64
    residual ever correcting it. The accuracy bound above must fail it."""
    outer, inner, x, y = _quadratic(0, 100.0)
    exact = hypergradient(outer, inner, x, y, method="exact")

    def unrefined_cg(oracle, inner, x, y, low, b, steps, v0=None, tol=None):
        low_oracle = refinement.low_precision_oracle(inner, x, y, low, oracle.counts)
        return conjugate_gradient(low_oracle, b.to(low), steps).to(b.dtype)

    monkeypatch.setattr(refinement, "refined_conjugate_gradient", unrefined_cg)
    unrefined = hypergradient(outer, inner, x, y, method="cg", steps=200,
                              low_precision=torch.float32)  # fmt: skip
    assert _relative_error(unrefined, exact) > REL_TOL * 100


def test_rounds_run_in_float32_and_the_budget_bounds_them() -> None:
    outer, inner, x, y = _quadratic(1, 100.0)
    seen: list[torch.dtype] = []
    original = refinement.SecondOrderOracle.hvp

    def spy(self, v):
        seen.append(v.dtype)
        return original(self, v)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(refinement.SecondOrderOracle, "hvp", spy)
        counts = OracleCounts()
        hypergradient(outer, inner, x, y, method="cg", steps=150, counts=counts, tol=0.0,
                      low_precision=torch.float32)  # fmt: skip
    low, high = seen.count(torch.float32), seen.count(torch.float64)
    assert low == 150  # the budget: at kappa = 100 every CG iteration runs in float32
    # one float64 residual a round; rounds of <= 32, 64, ... steps: at least 2 rounds
    assert 2 <= high <= 150 / 5
    assert counts.hvp == low + high


def test_zero_steps_is_the_first_order_estimate() -> None:
    outer, inner, x, y = _quadratic(2, 10.0)
    counts = OracleCounts()
    got = hypergradient(outer, inner, x, y, method="cg", steps=0, counts=counts,
                        low_precision=torch.float32)  # fmt: skip
    assert torch.equal(got, hypergradient(outer, inner, x, y, method="fo"))
    assert counts.hvp == 0


def test_ill_conditioned_falls_back_to_float64_cg() -> None:
    """kappa = 1e9: kappa u_32 >> 1, so a float32 round cannot halve the residual (or meets
    p^T H p <= 0); the rest of the budget runs as float64 CG, which must do as well as plain
    float64 CG given the same budget (the first round's iterate is a warm start)."""
    outer, inner, x, y = _quadratic(3, 1e9, d_y=20)
    exact = hypergradient(outer, inner, x, y, method="exact")
    plain = hypergradient(outer, inner, x, y, method="cg", steps=200)
    refined = hypergradient(outer, inner, x, y, method="cg", steps=200,
                            low_precision=torch.float32)  # fmt: skip
    assert _relative_error(refined, exact) <= max(10 * _relative_error(plain, exact), 1e-6)


def test_float32_overflow_falls_back_to_float64_cg() -> None:
    """g = 1/2 c^-2 ||c y||^2 - y^T x with c = 1e20: ||c y||^2 ~ 1e41 overflows float32 (max
    3.4e38) but not float64. The float32 round meets NaN; float64 CG must take over and return
    the exact hypergradient (H = I: CG is exact in one step)."""
    scale = torch.tensor(1e20, dtype=torch.float64)

    def inner(x, y):
        return 0.5 * ((scale * y) @ (scale * y)) / scale**2 - y @ x

    def outer(x, y):
        return 0.5 * ((y - 1.0) ** 2).sum()

    x, y = torch.randn(4, dtype=torch.float64), torch.randn(4, dtype=torch.float64) + 3.0
    exact = hypergradient(outer, inner, x, y, method="exact")
    got = hypergradient(outer, inner, x, y, method="cg", steps=5, low_precision=torch.float32)
    assert torch.isfinite(got).all() and _relative_error(got, exact) <= REL_TOL


def _quadratic_form(A: torch.Tensor):
    return lambda x, y: 0.5 * y @ (A @ y) - y @ x


def test_captured_data_is_cast_once_while_it_lives() -> None:
    A = torch.randn(30, 30, dtype=torch.float64)
    A = A @ A.T + 30 * torch.eye(30, dtype=torch.float64)
    inner = _quadratic_form(A)

    def outer(x, y):
        return 0.5 * (y**2).sum()

    x, y = torch.randn(30, dtype=torch.float64), torch.randn(30, dtype=torch.float64)
    key = (id(A), torch.float32)
    hypergradient(outer, inner, x, y, method="cg", steps=5, low_precision=torch.float32)
    first = refinement._CACHE[key][2]
    hypergradient(outer, inner, x, y, method="cg", steps=5, low_precision=torch.float32)
    assert refinement._CACHE[key][2] is first  # a hit: not converted again
    A.mul_(2.0)  # modified in place: the cached copy is stale and must be replaced
    hypergradient(outer, inner, x, y, method="cg", steps=5, low_precision=torch.float32)
    assert torch.equal(refinement._CACHE[key][2], A.float())
    del A, inner
    gc.collect()
    assert key not in refinement._CACHE


def test_trees_modules_and_argmin_take_the_option() -> None:
    outer, inner, lam, params = linear_model_problem()
    exact = hypergradient(outer, inner, lam, params, method="exact")
    got = hypergradient(outer, inner, lam, params, method="cg", steps=40,
                        low_precision=torch.float32)  # fmt: skip
    assert _relative_error(got, exact) <= REL_TOL

    lam_leaf = lam.clone().requires_grad_(True)
    solution = argmin(inner, lam_leaf, params, method="cg", steps=40, low_precision=torch.float32)
    outer(lam_leaf, solution).backward()
    assert lam_leaf.grad is not None and torch.isfinite(lam_leaf.grad).all()


@pytest.mark.parametrize(
    ("low", "dtype", "match"),
    [
        (torch.float64, torch.float64, "not coarser"),
        (torch.float32, torch.float32, "not coarser"),
        ("float32", torch.float64, "floating torch.dtype"),
        (torch.int32, torch.float64, "floating torch.dtype"),
    ],
)
def test_bad_low_precision_raises_before_work(low, dtype, match) -> None:
    outer, inner, x, y = _quadratic(0, 10.0, d_y=5)
    counts = OracleCounts()
    with pytest.raises(ValueError, match=match):
        hypergradient(outer, inner, x.to(dtype), y.to(dtype), method="cg", steps=3,
                      low_precision=low, counts=counts)  # fmt: skip
    assert counts.total == 0


def test_aid_bio_with_float32_rounds_follows_the_float64_run() -> None:
    """Both runs solve each outer step's system to the float64 floor (warm-started v, 40 steps
    at kappa = 10, d_y = 40): their iterates must agree to 1e-9 after 20 outer steps (a 1e-10
    hypergradient error a step, times a contraction's accumulation over 20 steps)."""
    from bilevel.solvers import AIDBiO

    outer, inner, x, y = _quadratic(4, 10.0)
    common = dict(outer=outer, inner=inner, inner_steps=20, inner_lr=0.05, outer_lr=0.01,
                  solver_steps=40)  # fmt: skip
    plain, _ = AIDBiO(**common).run(x, y, iterations=20)
    mixed, _ = AIDBiO(**common, low_precision=torch.float32).run(x, y, iterations=20)
    assert float((mixed.x - plain.x).norm() / plain.x.norm()) <= 1e-9
    with pytest.raises(ValueError, match="applies to solver='cg'"):
        AIDBiO(**common, solver="neumann", low_precision=torch.float32)
    with pytest.raises(ValueError, match="not coarser"):
        AIDBiO(**common, low_precision=torch.float32).run(x.float(), y.float(), iterations=1)
