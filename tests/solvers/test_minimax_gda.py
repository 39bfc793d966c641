"""Multi-stage GDA on the minimax reformulation (spec 2.3) against ``QuadraticBilevel``'s
penalty closed forms (spec 7.8) and its symbolic GDA iteration matrix (spec 2.4(b))."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from bilevel.analysis import QuadraticBilevel
from bilevel.proofs_checks.instances import convex_phi_instance, quadratic_objectives
from bilevel.solvers import Smoothness
from bilevel.solvers.minimax_gda import MinimaxGDA, penalty_direction, saddle_at_fixed_x


def _instance(seed: int = 0) -> QuadraticBilevel:
    return convex_phi_instance(3, 5, 10.0, seed)


def _lrs(steps) -> dict[str, float]:
    """(eta_x, eta_y, eta_z) as MinimaxGDA's keyword arguments."""
    return dict(zip(("outer_lr", "inner_lr", "auxiliary_lr"), steps, strict=True))


def _start(algo, x, y, z):
    """The state at (x, y) with z (the auxiliary copy, which init starts at y) set to z."""
    return replace(algo.init(x, y), z=z)


def _iteration(inst, lam, steps):
    M, m = inst.gda_iteration(lam, *steps)
    return np.array(M, dtype=float), np.array(m, dtype=float).ravel()


def test_simultaneous_gda_is_the_symbolic_linear_map() -> None:
    """50 steps of the solver equal w_{k+1} = M w_k + m (sympy matrix), to 1e-12 relative."""
    inst = _instance()
    outer, inner = quadratic_objectives(inst)
    lam, steps = 4.0, (0.05, 0.02, 0.03)
    M, m = _iteration(inst, lam, steps)
    rng = np.random.default_rng(0)
    w = rng.standard_normal(13)
    algo = MinimaxGDA(outer=outer, inner=inner, penalty=lam, **_lrs(steps), stage_iterations=50)
    t = torch.from_numpy
    state = _start(algo, t(w[:3].copy()), t(w[3:8].copy()), t(w[8:].copy()))
    for _ in range(50):
        state = algo.step(state)
        w = M @ w + m
    got = torch.cat([state.x, state.y, state.z]).numpy()
    assert np.allclose(got, w, rtol=1e-12, atol=1e-12 * np.abs(w).max())
    assert state.counts.hvp == 0 and state.counts.mixed == 0  # first-order oracles only
    assert state.counts.grad_outer == 50 and state.counts.grad_inner == 100


def _boundary_scale(inst, lam, steps) -> float:
    """c with spectral radius rho(M(c * steps)) = 1, by bisection on [0, hi] (rho < 1 at 0+)."""
    lo, hi = 1e-6, 1.0
    while max(abs(np.linalg.eigvals(_iteration(inst, lam, [hi * s for s in steps])[0]))) < 1:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        radius = max(abs(np.linalg.eigvals(_iteration(inst, lam, [mid * s for s in steps])[0])))
        lo, hi = (mid, hi) if radius < 1 else (lo, mid)
    return lo


@pytest.mark.parametrize("side", [0.98, 1.02])
def test_gda_converges_exactly_when_the_spectral_radius_is_below_one(side: float) -> None:
    """Step sizes at 0.98 / 1.02 times the boundary scale: the distance to the saddle point after
    2000 steps shrinks below 1e-3 (radius < 1) or grows above 1e3 (radius > 1)."""
    inst = _instance(1)
    outer, inner = quadratic_objectives(inst)
    lam, base = 4.0, (0.05, 0.05, 0.05)
    scale = _boundary_scale(inst, lam, base) * side
    steps = [scale * s for s in base]
    M, m = _iteration(inst, lam, steps)
    radius = max(abs(np.linalg.eigvals(M)))
    assert (radius < 1) == (side < 1)
    w_star = np.linalg.solve(np.eye(13) - M, m)
    algo = MinimaxGDA(outer=outer, inner=inner, penalty=lam, **_lrs(steps), stage_iterations=2000)
    t = torch.from_numpy
    state = _start(algo, t(np.zeros(3)), t(np.zeros(5)), t(np.zeros(5)))
    try:
        for _ in range(2000):
            state = algo.step(state)
        w = torch.cat([state.x, state.y, state.z]).numpy()
        ratio = np.linalg.norm(w - w_star) / np.linalg.norm(w_star)
    except FloatingPointError:
        ratio = np.inf
    assert (ratio < 1e-3) if side < 1 else (ratio > 1e3)


@pytest.mark.parametrize("lam", [10.0, 100.0, 1000.0])
def test_saddle_direction_bias_equals_the_closed_form(lam: float) -> None:
    """At the (y, z) saddle for fixed x, the x-direction equals grad L*_lam of spec 7.8 (the
    (y, z) iteration contracts by 1 - 1/kappa ~ 0.9 per step after the step 1/(L_f + lam L_g),
    3000 steps: far below 1e-10)."""
    inst = _instance(2)
    outer, inner = quadratic_objectives(inst)
    x = torch.linspace(-1, 1, 3, dtype=torch.float64)
    L_g = float(inst.constants.L)
    L_f = float(np.linalg.norm(np.array(inst.P, dtype=float), 2))
    y, z = saddle_at_fixed_x(
        outer,
        inner,
        x,
        torch.zeros(5, dtype=torch.float64),
        torch.zeros(5, dtype=torch.float64),
        lam,
        1 / (L_f + lam * L_g),
        1 / (lam * L_g),
        3000,
    )
    got = penalty_direction(outer, inner, x, y, z, lam).numpy()
    want = inst.penalty_hypergradient(lam, backend="numpy")(x.numpy())
    assert np.allclose(got, want, rtol=1e-10, atol=1e-10)
    error = inst.penalty_error(lam, backend="numpy")(x.numpy())
    exact = inst.hypergradient(backend="numpy")(x.numpy())
    assert np.allclose(got - exact, error, atol=1e-9)


def test_stages_grow_the_penalty_and_alpha_form_shares_fixed_points() -> None:
    inst = _instance()
    outer, inner = quadratic_objectives(inst)
    algo = MinimaxGDA(
        outer=outer,
        inner=inner,
        penalty=2.0,
        outer_lr=0.01,
        inner_lr=0.01,
        auxiliary_lr=0.01,
        growth=3.0,
        stage_iterations=5,
        stages=3,
    )
    state = algo.init(torch.zeros(3, dtype=torch.float64), torch.zeros(5, dtype=torch.float64))
    penalties = []
    for _ in range(20):
        state = algo.step(state)
        penalties.append(state.penalty)
    assert penalties[3] == 2.0 and penalties[4] == 6.0 and penalties[9] == 18.0
    assert penalties[-1] == 18.0  # stays at the last stage's value
    x, y = torch.ones(3, dtype=torch.float64), torch.ones(5, dtype=torch.float64)
    lam_form = MinimaxGDA(
        outer=outer, inner=inner, penalty=5.0, outer_lr=0.01, inner_lr=0.01, auxiliary_lr=0.01
    )
    alpha_form = MinimaxGDA(
        outer=outer,
        inner=inner,
        penalty=5.0,
        outer_lr=0.05,
        inner_lr=0.05,
        auxiliary_lr=0.05,
        form="alpha",
    )
    a, b = lam_form.step(lam_form.init(x, y)), alpha_form.step(alpha_form.init(x, y))
    assert torch.allclose(a.x, b.x, rtol=1e-13) and torch.allclose(a.y, b.y, rtol=1e-13)


def test_bad_input_and_step_sizes_beyond_stability() -> None:
    inst = _instance()
    outer, inner = quadratic_objectives(inst)
    L_g = float(inst.constants.L)
    with pytest.raises(ValueError, match="unknown form"):
        MinimaxGDA(
            outer=outer,
            inner=inner,
            penalty=1.0,
            outer_lr=0.1,
            inner_lr=0.1,
            auxiliary_lr=0.1,
            form="beta",
        )
    with pytest.raises(ValueError, match="unknown update"):
        MinimaxGDA(
            outer=outer,
            inner=inner,
            penalty=1.0,
            outer_lr=0.1,
            inner_lr=0.1,
            auxiliary_lr=0.1,
            update="random",
        )
    with pytest.raises(ValueError, match="growth"):
        MinimaxGDA(
            outer=outer,
            inner=inner,
            penalty=1.0,
            outer_lr=0.1,
            inner_lr=0.1,
            auxiliary_lr=0.1,
            growth=0.5,
        )
    constants = Smoothness(inner=L_g, outer=1.0)
    MinimaxGDA(
        outer=outer,
        inner=inner,
        penalty=10.0,
        outer_lr=0.1,
        inner_lr=0.9 / (1 + 10 * L_g),
        auxiliary_lr=0.9 / (10 * L_g),
        smoothness=constants,
    )
    with pytest.raises(ValueError, match="stage 2"):
        MinimaxGDA(
            outer=outer,
            inner=inner,
            penalty=10.0,
            outer_lr=0.1,
            inner_lr=0.9 / (1 + 10 * L_g),
            auxiliary_lr=0.9 / (10 * L_g),
            growth=2.0,
            stages=3,
            smoothness=constants,
        )


def test_alternating_updates_reach_the_same_saddle() -> None:
    """Alternating and simultaneous GDA share their fixed points (all three partial gradients
    zero). Seed 1 at lambda = 4 with steps 0.02: simultaneous radius 0.9939, so 4000 steps
    leave 0.9939^4000 ~ 2e-11 of the start; both orders reach the saddle to 1e-9. (Not every
    instance has a stable GDA at a given lambda: L*_lam can be nonconvex in x even when Phi is
    convex; seed 3 has radius > 1 for every step size tried.)"""
    inst = _instance(1)
    outer, inner = quadratic_objectives(inst)
    lam, steps = 4.0, (0.02, 0.02, 0.02)
    M, m = _iteration(inst, lam, steps)
    w_star = np.linalg.solve(np.eye(13) - M, m)
    finals = []
    for update in ("simultaneous", "alternating"):
        algo = MinimaxGDA(
            outer=outer,
            inner=inner,
            penalty=lam,
            **_lrs(steps),
            stage_iterations=4000,
            update=update,
        )
        zeros = torch.zeros(3, dtype=torch.float64), torch.zeros(5, dtype=torch.float64)
        state, _ = algo.run(*zeros, iterations=4000)
        finals.append(torch.cat([state.x, state.y, state.z]).numpy())
    for w in finals:
        assert np.linalg.norm(w - w_star) <= 1e-9 * np.linalg.norm(w_star)


def test_penalty_direction_of_a_constant_outer_objective_is_the_inner_gap() -> None:
    """f = 1 (no graph at all): grad_x f = 0, so the direction is lam (grad_x g(x, y) -
    grad_x g(x, z)). g = y^T x: lam (y - z), exactly (one subtraction and one product)."""
    x = torch.tensor([1.0, -2.0], dtype=torch.float64)
    y = torch.tensor([0.5, 0.25], dtype=torch.float64)
    z = torch.tensor([-0.5, 1.0], dtype=torch.float64)
    direction = penalty_direction(
        lambda x, y: torch.tensor(1.0, dtype=torch.float64), lambda x, y: y @ x, x, y, z, 4.0
    )
    assert torch.equal(direction, 4.0 * (y - z))
