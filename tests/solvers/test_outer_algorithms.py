"""Outer algorithms (AID-BiO, ITD-BiO, FO-ITD-BiO) on quadratic instances: convergence to
||grad Phi|| < 1e-8 with the theorems' step sizes, the same iterates as an independent numpy
re-implementation, and FO-ITD-BiO's predicted biased limit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bilevel.analysis import QuadraticBilevel
from bilevel.proofs_checks.instances import quadratic_objectives
from bilevel.solvers.aid_bio import AIDBiO


def _convex_instance(seed: int) -> QuadraticBilevel:
    """A random instance with R shifted so that Phi is strongly convex (eigenvalues >= 1)."""
    blocks = QuadraticBilevel.random(d_x=3, d_y=5, kappa=10.0, seed=seed).as_numpy()
    Ai = np.linalg.inv(blocks["A"])
    B, S, P, R = blocks["B"], blocks["S"], blocks["P"], blocks["R"]
    hess_phi = R + S @ Ai @ B + B.T @ Ai @ S.T + B.T @ Ai @ P @ Ai @ B
    shift = max(0.0, 1.0 - np.linalg.eigvalsh((hess_phi + hess_phi.T) / 2).min())
    blocks["R"] = R + shift * np.eye(3)
    return QuadraticBilevel(**{k: v for k, v in blocks.items()})


def _setup(seed: int):
    inst = _convex_instance(seed)
    b = {k: np.asarray(v, dtype=float) for k, v in inst.as_numpy().items()}
    Ai = np.linalg.inv(b["A"])
    hess_phi = b["R"] + b["S"] @ Ai @ b["B"] + b["B"].T @ Ai @ b["S"].T
    hess_phi = hess_phi + b["B"].T @ Ai @ b["P"] @ Ai @ b["B"]
    L_phi = float(np.linalg.eigvalsh((hess_phi + hess_phi.T) / 2).max())
    outer, inner = quadratic_objectives(inst)
    grad_phi_np = inst.hypergradient(backend="numpy")
    grad_phi = lambda x: torch.as_tensor(np.asarray(grad_phi_np(x.numpy()), float).ravel())  # noqa: E731
    return inst, b, outer, inner, L_phi, grad_phi


def _numpy_aid(b, x, y, iterations, D, N, alpha, beta):
    """The recursion of the module docstring, in numpy (textbook CG, warm starts)."""
    v = np.zeros_like(y)
    xs = []
    for _ in range(iterations):
        for _ in range(D):
            y = y - alpha * (b["A"] @ y - b["B"] @ x - b["c"].ravel())
        rhs = b["P"] @ y + b["p"].ravel() + b["S"].T @ x
        r = rhs - b["A"] @ v
        p = r.copy()
        for _ in range(N):
            Ap = b["A"] @ p
            step = (r @ r) / (p @ Ap)
            v, r_new = v + step * p, r - step * Ap
            p = r_new + (r_new @ r_new) / (r @ r) * p
            r = r_new
        estimate = b["R"] @ x + b["r"].ravel() + b["S"] @ y + b["B"].T @ v
        x = x - beta * estimate
        xs.append(x.copy())
    return np.array(xs)


@pytest.mark.parametrize("seed", [0, 1])
def test_aid_bio_reaches_a_stationary_point_and_matches_numpy(seed: int) -> None:
    inst, b, outer, inner, L_phi, grad_phi = _setup(seed)
    L = float(inst.constants.L)
    algo = AIDBiO(
        outer=outer,
        inner=inner,
        inner_steps=10,
        inner_lr=1 / L,
        outer_lr=1 / L_phi,
        solver="cg",
        solver_steps=3,
    )
    x0, y0 = torch.ones(3, dtype=torch.float64), torch.zeros(5, dtype=torch.float64)
    state, trace = algo.run(x0, y0, iterations=400, grad_phi=grad_phi)
    assert trace[-1]["grad_norm"] < 1e-8 and trace[0]["grad_norm"] > 1e-2
    assert state.counts.hvp == 400 * (3 + 1)  # N CG steps + the warm-start residual
    reference = _numpy_aid(b, x0.numpy(), y0.numpy(), 30, 10, 3, 1 / L, 1 / L_phi)
    state30, _ = algo.run(x0, y0, iterations=30)
    assert np.allclose(state30.x.numpy(), reference[-1], rtol=1e-10, atol=1e-12)


def test_aid_bio_bad_input_and_budgets() -> None:
    _, _, outer, inner, L_phi, _ = _setup(0)
    with pytest.raises(ValueError, match="unknown solver"):
        AIDBiO(outer=outer, inner=inner, inner_steps=1, inner_lr=0.1, outer_lr=0.1, solver="gmres")
    with pytest.raises(ValueError, match="outer_lr must be a positive"):
        AIDBiO(outer=outer, inner=inner, inner_steps=1, inner_lr=0.1, outer_lr=-1.0)
    algo = AIDBiO(outer=outer, inner=inner, inner_steps=2, inner_lr=0.05, outer_lr=1 / L_phi)
    x0, y0 = torch.ones(3, dtype=torch.float64), torch.zeros(5, dtype=torch.float64)
    with pytest.raises(ValueError, match="give a budget"):
        algo.run(x0, y0)
    state, trace = algo.run(x0, y0, oracle_calls=100)
    assert sum(state.counts.as_dict().values()) >= 100 and len(trace) >= 2
    diverging = AIDBiO(outer=outer, inner=inner, inner_steps=2, inner_lr=50.0, outer_lr=0.1)
    with pytest.raises(FloatingPointError, match="NaN/inf"):
        diverging.run(x0, y0, iterations=200)


def test_aid_bio_with_the_neumann_solver_and_cold_starts_converges() -> None:
    inst, _, outer, inner, L_phi, grad_phi = _setup(2)
    L = float(inst.constants.L)
    x0, y0 = torch.ones(3, dtype=torch.float64), torch.zeros(5, dtype=torch.float64)
    for warm in (True, False):
        algo = AIDBiO(
            outer=outer,
            inner=inner,
            inner_steps=60,
            inner_lr=1 / L,
            outer_lr=1 / L_phi,
            solver="neumann",
            solver_steps=60,
            warm_start_v=warm,
        )
        _, trace = algo.run(x0, y0, iterations=300, grad_phi=grad_phi)
        # cold-started Neumann keeps a bias (1 - mu/L)^60 ~ 2e-3 relative: not stationary
        assert (trace[-1]["grad_norm"] < 1e-8) is warm


def test_itd_bio_reaches_a_stationary_point_with_D_of_order_kappa_log() -> None:
    """Warm-started ITD-BiO's fixed point keeps the truncated-Jacobian error
    B^T A^-1 (I - alpha A)^D g* (spec 7.3): D = 200 makes it (0.9)^200 ~ 7e-10 relative."""
    from bilevel.solvers.itd_bio import ITDBiO

    inst, _, outer, inner, L_phi, grad_phi = _setup(0)
    L = float(inst.constants.L)
    x0, y0 = torch.ones(3, dtype=torch.float64), torch.zeros(5, dtype=torch.float64)
    algo = ITDBiO(outer=outer, inner=inner, inner_steps=200, inner_lr=1 / L, outer_lr=1 / L_phi)
    state, trace = algo.run(x0, y0, iterations=150, grad_phi=grad_phi)
    assert trace[-1]["grad_norm"] < 1e-8 and state.counts.hvp == 150 * 200
    short = dict(inner_steps=50, inner_lr=1 / L, outer_lr=1 / L_phi)
    plain, _ = ITDBiO(outer=outer, inner=inner, **short).run(x0, y0, iterations=10)
    ckpt, _ = ITDBiO(outer=outer, inner=inner, checkpoint=True, **short).run(x0, y0, iterations=10)
    assert torch.allclose(plain.x, ckpt.x, rtol=1e-12, atol=0)


def _batched_quadratic(inst, noise: float, whole_inner: bool = False):
    """Minibatch oracles on a quadratic: batch j scales A (or, with ``whole_inner``, all of g) by
    (1 + noise * s_j), s_j = +-1 equally likely (mean 1); batch None is the full objective."""
    b = {k: torch.as_tensor(np.asarray(v, float)) for k, v in inst.as_numpy().items()}
    b = {k: v.reshape(-1) if v.ndim == 2 and v.shape[1] == 1 else v for k, v in b.items()}

    def inner(x, y, batch):
        scale = 1.0 if batch is None else 1.0 + noise * batch
        linear = y @ (b["B"] @ x + b["c"])
        return 0.5 * scale * y @ (b["A"] @ y) - (scale if whole_inner else 1.0) * linear

    def outer(x, y, batch):
        return (
            0.5 * y @ (b["P"] @ y)
            + b["p"] @ y
            + 0.5 * x @ (b["R"] @ x)
            + b["r"] @ x
            + x @ (b["S"] @ y)
        )

    def sampler(generator):
        return float(2 * torch.randint(0, 2, (), generator=generator).item() - 1)

    return outer, inner, sampler


def test_stocbio_without_noise_is_aid_with_a_q_plus_one_term_neumann_sum() -> None:
    from bilevel.solvers.stocbio_bio import StocBiO

    inst, _, outer_det, inner_det, L_phi, grad_phi = _setup(0)
    L = float(inst.constants.L)
    outer, inner, sampler = _batched_quadratic(inst, noise=0.0)
    x0, y0 = torch.ones(3, dtype=torch.float64), torch.zeros(5, dtype=torch.float64)
    common = dict(inner_steps=10, inner_lr=1 / L, outer_lr=1 / L_phi)
    sto = StocBiO(
        outer=outer,
        inner=inner,
        sampler=sampler,
        generator=torch.Generator().manual_seed(0),
        solver_steps=7,
        solver_lr=1 / L,
        **common,
    )
    aid = AIDBiO(
        outer=outer_det,
        inner=inner_det,
        solver="neumann",
        solver_steps=8,
        warm_start_v=False,
        **common,
    )
    s_state, trace = sto.run(x0, y0, iterations=20, grad_phi=grad_phi)
    a_state, _ = aid.run(x0, y0, iterations=20)
    assert torch.allclose(s_state.x, a_state.x, rtol=1e-10, atol=1e-12)
    assert trace[-1]["grad_norm"] < trace[0]["grad_norm"]


def test_stocbio_is_reproducible_from_its_generator_and_reference_variant_differs() -> None:
    from bilevel.solvers.stocbio_bio import StocBiO

    inst, _, _, _, L_phi, _ = _setup(1)
    L = float(inst.constants.L)
    outer, inner, sampler = _batched_quadratic(inst, noise=0.3)
    x0, y0 = torch.ones(3, dtype=torch.float64), torch.zeros(5, dtype=torch.float64)

    def final_x(seed: int, variant: str = "paper") -> torch.Tensor:
        algo = StocBiO(
            outer=outer,
            inner=inner,
            sampler=sampler,
            generator=torch.Generator().manual_seed(seed),
            inner_steps=5,
            inner_lr=0.5 / L,
            outer_lr=0.5 / L_phi,
            solver_steps=5,
            solver_lr=0.5 / L,
            variant=variant,
        )
        return algo.run(x0, y0, iterations=10)[0].x

    assert torch.equal(final_x(3), final_x(3)) and not torch.equal(final_x(3), final_x(4))
    assert not torch.allclose(final_x(3), final_x(3, "reference_code"), rtol=1e-3)
    with pytest.raises(TypeError, match=r"torch\.Generator"):
        StocBiO(
            outer=outer,
            inner=inner,
            sampler=sampler,
            generator=None,
            inner_steps=1,
            inner_lr=0.1,
            outer_lr=0.1,
            solver_steps=1,
            solver_lr=0.1,
        )


def test_itd_no_loop_scheme_has_the_predicted_non_vanishing_error() -> None:
    """ITD-BiO N-N with D = 1 (Ji et al. 2022, "loops", spec 6.5): with warm starts the inner
    iterate tends to y*(x) and the one-step Jacobian is alpha B, so the limit solves
    R x + r + S y*(x) + alpha B^T g*(x) = 0 (g* = grad_y f at y*), not grad Phi(x) = 0."""
    from bilevel.solvers.itd_bio import ITDBiO

    blocks = QuadraticBilevel.random(d_x=3, d_y=5, kappa=10.0, seed=6).as_numpy()
    A, B, S, P = blocks["A"], blocks["B"], blocks["S"], blocks["P"]
    Ai, alpha = np.linalg.inv(A), 1 / float(np.linalg.eigvalsh(A).max())
    # x -> R x + r + S y*(x) + alpha B^T g*(x) is affine with this Jacobian (y* = A^-1 (B x + c))
    jac = blocks["R"] + S @ Ai @ B + alpha * B.T @ (P @ Ai @ B + S.T)
    shift = max(0.0, 1.0 - np.linalg.eigvals(jac).real.min())
    blocks["R"] = blocks["R"] + shift * np.eye(3)
    inst = QuadraticBilevel(**blocks)
    b = {k: np.asarray(v, dtype=float) for k, v in inst.as_numpy().items()}
    jac = b["R"] + S @ Ai @ B + alpha * B.T @ (P @ Ai @ B + S.T)
    c, p, r = b["c"].ravel(), b["p"].ravel(), b["r"].ravel()
    const = r + S @ Ai @ c + alpha * B.T @ (P @ Ai @ c + p)
    x_limit = -np.linalg.solve(jac, const)
    outer, inner = quadratic_objectives(inst)
    algo = ITDBiO(
        outer=outer,
        inner=inner,
        inner_steps=1,
        inner_lr=alpha,
        outer_lr=0.2 / float(np.linalg.norm(jac, 2)),
    )
    state, _ = algo.run(
        torch.ones(3, dtype=torch.float64), torch.zeros(5, dtype=torch.float64), iterations=3000
    )
    assert np.allclose(state.x.numpy(), x_limit, rtol=1e-7, atol=1e-8)
    grad_at_limit = np.asarray(inst.hypergradient("numpy")(x_limit), dtype=float).ravel()
    assert np.linalg.norm(grad_at_limit) > 1e-2


def test_aid_loop_schemes_all_reach_stationarity() -> None:
    """AID has no non-vanishing error (Ji et al. 2022, spec 6.5): the single-loop N-N scheme
    (D = N = 1, warm starts) reaches ||grad Phi|| < 1e-8 in 2500 iterations; the Q-Q scheme
    (D_k = N_k = 20 + k from cold starts, kappa = 10) has a cold-start error of order
    0.9^(20 + k), negligible after 150 iterations; in 300 iterations it measured 1.3e-7, limited
    by the outer rate at beta = 0.5 / L_Phi, and is held to 1e-6."""
    inst, _, outer, inner, L_phi, grad_phi = _setup(3)
    L = float(inst.constants.L)
    x0, y0 = torch.ones(3, dtype=torch.float64), torch.zeros(5, dtype=torch.float64)
    common = dict(inner_lr=1 / L, outer_lr=0.5 / L_phi, solver="neumann", solver_lr=1 / L)
    no_loop = AIDBiO(outer=outer, inner=inner, inner_steps=1, solver_steps=1, **common)
    loops = AIDBiO(
        outer=outer,
        inner=inner,
        inner_steps=lambda k: 20 + k,
        solver_steps=lambda k: 20 + k,
        warm_start_v=False,
        warm_start_y=False,
        **common,
    )
    for algo, iterations, target in ((no_loop, 2500, 1e-8), (loops, 300, 1e-6)):
        _, trace = algo.run(x0, y0, iterations=iterations, grad_phi=grad_phi)
        assert trace[-1]["grad_norm"] < target < trace[0]["grad_norm"], iterations
    with pytest.raises(ValueError, match=r"inner_steps \(at iteration 0\)"):
        AIDBiO(outer=outer, inner=inner, inner_steps=lambda k: -1, inner_lr=0.1, outer_lr=0.1)


def _ill_conditioned_phi(seed: int, mu_phi: float):
    """A quadratic instance whose Phi has Hessian eigenvalues in [mu_phi, L_Phi]."""
    blocks = QuadraticBilevel.random(d_x=3, d_y=5, kappa=10.0, seed=seed).as_numpy()
    Ai = np.linalg.inv(blocks["A"])
    B, S, P = blocks["B"], blocks["S"], blocks["P"]
    rest = S @ Ai @ B + B.T @ Ai @ S.T + B.T @ Ai @ P @ Ai @ B
    rest = (rest + rest.T) / 2
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((3, 3)))
    target = q @ np.diag([mu_phi, 1.0, 10.0]) @ q.T  # the Hessian of Phi we want
    R = target - rest
    blocks["R"] = (R + R.T) / 2  # exactly symmetric in float (the analysis holds it exactly)
    inst = QuadraticBilevel(**blocks)
    grad_np = inst.hypergradient(backend="numpy")
    grad_phi = lambda x: torch.as_tensor(np.asarray(grad_np(x.numpy()), float).ravel())  # noqa: E731
    return inst, grad_phi


def test_accbio_beats_aid_bio_in_outer_iterations_on_an_ill_conditioned_phi() -> None:
    """kappa_Phi = 1000: plain AID-BiO with beta = 1/L_Phi needs ~kappa_Phi log(1/eps) outer
    steps, the accelerated form ~sqrt(kappa_Phi) log(1/eps). Both get 600 iterations; AccBiO
    must reach ||grad Phi|| < 1e-8 and AID-BiO must not (its error decays like 0.999^k)."""
    from bilevel.solvers.accbio import AccBiO

    inst, grad_phi = _ill_conditioned_phi(0, 1e-2)
    L = float(inst.constants.L)
    outer, inner = quadratic_objectives(inst)
    x0, y0 = torch.ones(3, dtype=torch.float64), torch.zeros(5, dtype=torch.float64)
    acc = AccBiO(
        outer=outer,
        inner=inner,
        inner_steps=20,
        inner_lr=1 / L,
        outer_lr=0.1,
        kappa_y=10.0,
        kappa_x=1000.0,
        solver_steps=5,
    )
    aid = AIDBiO(
        outer=outer, inner=inner, inner_steps=20, inner_lr=1 / L, outer_lr=0.1, solver_steps=5
    )
    _, acc_trace = acc.run(x0, y0, iterations=600, grad_phi=grad_phi)
    _, aid_trace = aid.run(x0, y0, iterations=600, grad_phi=grad_phi)
    assert acc_trace[-1]["grad_norm"] < 1e-8 < aid_trace[-1]["grad_norm"]
    with pytest.raises(ValueError, match="kappa_y is a condition number"):
        AccBiO(outer=outer, inner=inner, inner_steps=1, inner_lr=0.1, outer_lr=0.1, kappa_y=0.5)


def test_fsla_without_noise_is_single_loop_aid_and_storm_is_inert() -> None:
    """Noise-free batches: FSLA with or without STORM (eta = 0.5 or 1) follows the same iterates
    (m_k = d_k exactly, see the module docstring) and reaches ||grad Phi|| < 1e-8; with noise
    the STORM and plain runs differ and each is reproducible from its seed."""
    from bilevel.solvers.fsla import FSLA

    inst, _, _, _, L_phi, grad_phi = _setup(0)
    L = float(inst.constants.L)
    x0, y0 = torch.ones(3, dtype=torch.float64), torch.zeros(5, dtype=torch.float64)

    def run(noise: float, momentum: float, seed: int = 0, iterations: int = 3000):
        outer, inner, sampler = _batched_quadratic(inst, noise=noise, whole_inner=True)
        algo = FSLA(
            outer=outer,
            inner=inner,
            sampler=sampler,
            generator=torch.Generator().manual_seed(seed),
            inner_lr=1 / L,
            outer_lr=0.5 / L_phi,
            momentum=momentum,
        )
        return algo.run(x0, y0, iterations=iterations, grad_phi=grad_phi)

    plain, trace = run(0.0, 1.0)
    storm, _ = run(0.0, 0.5)
    assert trace[-1]["grad_norm"] < 1e-8
    assert torch.allclose(plain.x, storm.x, rtol=1e-9, atol=1e-12)
    noisy_a, _ = run(0.3, 0.5, iterations=50)
    noisy_b, _ = run(0.3, 0.5, iterations=50)
    noisy_plain, _ = run(0.3, 1.0, iterations=50)
    assert torch.equal(noisy_a.x, noisy_b.x) and not torch.allclose(noisy_a.x, noisy_plain.x)


def test_incompatible_objectives_are_refused_before_the_run() -> None:
    """A minibatch problem handed to a deterministic algorithm, and the reverse; an objective
    once accepted with (x, y) (remembered by the arity check) is still refused (x, y, batch)."""
    from bilevel.solvers.stocbio_bio import StocBiO

    inst, _, outer_det, inner_det, _, _ = _setup(0)
    outer_b, inner_b, sampler = _batched_quadratic(inst, noise=0.1)
    with pytest.raises(TypeError, match=r"AIDBiO calls outer\(x, y\)"):
        AIDBiO(
            outer=lambda x, y, batch: outer_b(x, y, batch),
            inner=inner_det,
            inner_steps=1,
            inner_lr=0.1,
            outer_lr=0.1,
        )
    AIDBiO(outer=outer_det, inner=inner_det, inner_steps=1, inner_lr=0.1, outer_lr=0.1)  # accepted
    with pytest.raises(TypeError, match=r"StocBiO calls outer\(x, y, batch\)"):
        StocBiO(
            outer=outer_det,
            inner=inner_b,
            sampler=sampler,
            generator=torch.Generator(),
            inner_steps=1,
            inner_lr=0.1,
            outer_lr=0.1,
            solver_steps=1,
            solver_lr=0.1,
        )


def test_trace_records_a_test_metric_every_few_iterations() -> None:
    """``metric(state)`` lands in the trace as ``test_metric`` every ``metric_every`` iterates
    (and at the start); a non-positive period is refused."""
    inst, _, outer, inner, L_phi, _ = _setup(0)
    algo = AIDBiO(
        outer=outer,
        inner=inner,
        inner_steps=5,
        inner_lr=1 / float(inst.constants.L),
        outer_lr=1 / L_phi,
    )
    x0, y0 = torch.ones(3, dtype=torch.float64), torch.zeros(5, dtype=torch.float64)
    _, trace = algo.run(x0, y0, iterations=6, metric=lambda s: float(s.x.sum()), metric_every=3)
    with_metric = [row["iteration"] for row in trace if "test_metric" in row]
    assert with_metric == [0, 3, 6]
    assert trace[3]["test_metric"] != trace[0]["test_metric"]
    with pytest.raises(ValueError, match="metric_every"):
        algo.run(x0, y0, iterations=1, metric=lambda s: 0.0, metric_every=0)


@pytest.mark.parametrize(
    "budget, match",
    [
        ({"oracle_calls": -5}, "oracle_calls must be a non-negative integer"),
        ({"seconds": -1.0}, "seconds must be a finite number >= 0"),
        ({"seconds": float("nan")}, "seconds must be a finite number >= 0"),
        ({"iterations": 3, "seconds": float("inf")}, "seconds must be a finite number >= 0"),
    ],
)
def test_run_refuses_a_negative_or_nan_budget_before_any_step(budget, match) -> None:
    """A negative budget used to return after 0 iterations; seconds=nan never returned."""
    from bilevel.solvers import AIDBiO

    A = torch.eye(2, dtype=torch.float64)

    def inner(x, y):
        return 0.5 * y @ A @ y - x @ y

    def outer(x, y):
        return 0.5 * (y**2).sum()

    algo = AIDBiO(outer=outer, inner=inner, inner_steps=1, inner_lr=0.5, outer_lr=0.1)
    zeros = torch.zeros(2, dtype=torch.float64)
    with pytest.raises(ValueError, match=match):
        algo.run(zeros, zeros, **budget)


def test_minimax_gda_refuses_zero_stages() -> None:
    """stages=0 used to be accepted, and the penalty silently became lambda_0 / rho."""
    from bilevel.solvers.minimax_gda import MinimaxGDA

    with pytest.raises(ValueError, match="stages must be >= 1"):
        MinimaxGDA(
            outer=lambda x, y: x.sum(),
            inner=lambda x, y: y.sum(),
            penalty=1.0,
            outer_lr=0.1,
            inner_lr=0.1,
            auxiliary_lr=0.1,
            growth=2.0,
            stages=0,
        )
