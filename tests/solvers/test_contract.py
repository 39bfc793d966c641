"""One contract suite every hypergradient estimator passes (STYLE.md: optax-style contract).

Tolerances.
- ITD, Neumann, first-order and exact are compared with the exact closed forms of
  ``bilevel.analysis`` at 1e-10 relative: float64 recursions with at most 30 steps of a
  contraction, or a backward-stable Cholesky solve, have forward error <= c kappa u with
  u = 1.1e-16, kappa <= 1e4 (below 1e-11 for c <= 10).
- CG is not forward stable with respect to the exact Krylov iterate: its deviation measured over
  10 seeds was 3e-16, 1.2e-15, 1.9e-13, 7.7e-12, 7.7e-9 at kappa = 1, 10, 1e2, 1e3, 1e4, a
  kappa^2 u envelope. For K < d_y, CG is held to 1e-10 for kappa <= 100 and to 100 kappa^2 u
  beyond (a stated empirical envelope with a factor-100 margin, not a proof).
- At K = d_y exact CG terminates (v_K = A^-1 b) but finite-precision CG is *delayed*
  (Greenbaum & Strakos 1992; Meurant & Strakos, Acta Numerica 2006): at kappa = 1e4 the float
  iterate at K = d_y was measured 1.7e6 kappa u away from the solve (seeds 130 and 6028), and
  one step later 0.02 kappa u. So for kappa > 100 the termination step is not compared with the
  exact iterate; instead CG run to K = 2 d_y must reach the attainable accuracy
  (``_attainable_cg_error``), a bound of the form of Greenbaum's residual-gap theorem.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bilevel.analysis import QuadraticBilevel
from bilevel.proofs_checks.instances import quadratic_objectives
from bilevel.solvers import METHODS, OracleCounts, hypergradient

from ._linear_model import linear_model_problem

REL_TOL = 1e-10
U64 = float(np.finfo(np.float64).eps) / 2

seeds = st.integers(0, 2**32 - 1)
kappas = st.sampled_from([1.0, 10.0, 100.0, 1e3, 1e4])
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _setup(seed: int, kappa: float, d_x: int = 3, d_y: int = 5, device: str = "cpu"):
    inst = QuadraticBilevel.random(d_x, d_y, kappa, seed)
    outer, inner = quadratic_objectives(inst, device=device)
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal(d_x), rng.standard_normal(d_y)
    return inst, outer, inner, x, y


def _run(outer, inner, x, y, device: str = "cpu", **kw) -> np.ndarray:
    to = lambda a: torch.as_tensor(a, device=device)  # noqa: E731
    if isinstance(kw.get("v0"), np.ndarray):
        kw["v0"] = to(kw["v0"])
    out = hypergradient(outer, inner, to(x), to(y), **kw)
    assert out.dtype == torch.float64 and out.device.type == device
    return out.cpu().numpy()


def _close(a: np.ndarray, b: np.ndarray, scale: float, tol: float = REL_TOL) -> bool:
    return bool(np.linalg.norm(a - b) <= tol * max(scale, np.linalg.norm(b)))


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=15)
@given(seed=seeds, kappa=kappas)
@example(seed=0, kappa=1e4)
@example(seed=0, kappa=1.0)
@example(seed=130, kappa=1e4)
@example(seed=6028, kappa=1e4)
def test_matches_closed_forms_on_quadratics(device: str, seed: int, kappa: float) -> None:
    """Every estimator against its closed form, on the CPU and (when present) CUDA."""
    inst, outer, inner, x, y = _setup(seed, kappa, device=device)
    run = lambda *a, **kw: _run(*a, device=device, **kw)  # noqa: E731
    truth = inst.hypergradient(backend="numpy")(x)
    scale = float(np.linalg.norm(truth))
    lr = 1.0 / float(inst.constants.L)
    assert _close(
        run(outer, inner, x, inst.inner_solution("numpy")(x), method="exact"), truth, scale
    )
    assert _close(
        run(outer, inner, x, y, method="fo"),
        inst.first_order_hypergradient(y, backend="numpy")(x),
        scale,
    )
    for n in (0, 1, 4, 30):
        assert _close(
            run(outer, inner, x, y, method="neumann", steps=n, lr=lr),
            inst.neumann_hypergradient(n, lr, y, backend="numpy")(x),
            scale,
        )
        for checkpoint in (False, True, "binomial"):
            assert _close(
                run(outer, inner, x, y, method="itd", steps=n, lr=lr, checkpoint=checkpoint),
                inst.itd_hypergradient(n, lr, y, backend="numpy")(x),
                scale,
            )
    cg_tol = REL_TOL if kappa <= 100 else max(REL_TOL, 100 * kappa**2 * U64)
    exact_iterate_steps = inst.d_y + 1 if kappa <= 100 else inst.d_y
    for K in range(exact_iterate_steps):
        assert _close(
            run(outer, inner, x, y, method="cg", steps=K),
            inst.cg_hypergradient(K, y, backend="numpy")(x),
            scale,
            cg_tol,
        )
    if kappa > 100:
        K = 2 * inst.d_y
        solve = _aid_by_direct_solve(inst, x, y)
        error = np.linalg.norm(run(outer, inner, x, y, method="cg", steps=K) - solve)
        assert error <= _attainable_cg_error(inst, x, y, K)


def _aid_parts(inst: QuadraticBilevel, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """The blocks, grad_x f, grad_y f and v* = A^-1 grad_y f at (x, y), in float64."""
    b = inst.as_numpy()
    grad_y = b["P"] @ y + b["p"] + b["S"].T @ x
    grad_x = b["R"] @ x + b["r"] + b["S"] @ y
    return {**b, "grad_x": grad_x, "grad_y": grad_y, "v_star": np.linalg.solve(b["A"], grad_y)}


def _aid_by_direct_solve(inst: QuadraticBilevel, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """grad_x f + B^T A^-1 grad_y f at (x, y): what CG converges to (g_xy = -B^T)."""
    parts = _aid_parts(inst, x, y)
    return parts["grad_x"] + parts["B"].T @ parts["v_star"]


def _attainable_cg_error(inst: QuadraticBilevel, x: np.ndarray, y: np.ndarray, K: int) -> float:
    """Bound on ||AID-CG after K steps - the direct solve|| once CG has converged.

    ||B^T (v_K - v*)|| <= ||B|| ||A^-1|| ||b - A v_K||, and after convergence the true residual is
    dominated by the gap between it and CG's recursively updated residual, which Greenbaum
    (SIMAX 18(3), 1997) bounds by u O(K) (||b|| + ||A|| max_j ||v_j||). We take the O(K) as
    2 K (d_y + 4) (a d_y-term inner product and three axpys per step, for r and v), and
    max_j ||v_j|| <= 2 ||v*|| (exact CG from v0 = 0 has ||v_j|| increasing to ||v*||,
    Hestenes & Stiefel 1952 Thm 6:3; factor 2 for rounding). The closing u (d_y + 4) ||grad_x f||
    covers the rounding of the outer gradient's sum. Measured errors sit 1e3-1e4 below it; a
    wrong recurrence errs by O(||B|| ||v*||), kappa u O(K d_y) above it.
    """
    parts = _aid_parts(inst, x, y)
    A = parts["A"]
    norm_A, norm_A_inv = np.linalg.norm(A, 2), np.linalg.norm(np.linalg.inv(A), 2)
    max_iterate = 2 * np.linalg.norm(parts["v_star"])
    gap = 2 * K * (inst.d_y + 4) * U64 * (np.linalg.norm(parts["grad_y"]) + norm_A * max_iterate)
    outer_rounding = U64 * (inst.d_y + 4) * np.linalg.norm(parts["grad_x"])
    return float(np.linalg.norm(parts["B"], 2) * norm_A_inv * gap + outer_rounding)


def test_itd_checkpointing_gives_the_same_value() -> None:
    inst, outer, inner, x, y = _setup(1, 10.0)
    lr = 1.0 / float(inst.constants.L)
    plain = _run(outer, inner, x, y, method="itd", steps=20, lr=lr)
    ckpt = _run(outer, inner, x, y, method="itd", steps=20, lr=lr, checkpoint=True)
    assert np.allclose(plain, ckpt, rtol=1e-13, atol=0)


def test_cg_warm_start_at_the_solution_is_exact_in_zero_steps() -> None:
    inst, outer, inner, x, _ = _setup(2, 10.0)
    y = inst.inner_solution("numpy")(x)
    v_star = _aid_parts(inst, x, y)["v_star"]
    out = _run(outer, inner, x, y, method="cg", steps=0, v0=torch.from_numpy(v_star))
    assert _close(out, inst.hypergradient("numpy")(x), 1.0)


def test_oracle_counts_match_the_procedures() -> None:
    inst, outer, inner, x, y = _setup(3, 10.0)
    lr = 1.0 / float(inst.constants.L)
    expected = {
        ("cg", 3): dict(grad_outer=1, grad_inner=1, hvp=3, mixed=1),
        ("neumann", 4): dict(grad_outer=1, grad_inner=1, hvp=3, mixed=1),
        ("itd", 6): dict(grad_outer=1, grad_inner=6, hvp=6, mixed=6),
        # checkpointing re-linearises grad_y g at each stored iterate in the reverse pass
        ("itd-checkpoint", 6): dict(grad_outer=1, grad_inner=12, hvp=6, mixed=6),
    }
    for (name, steps), want in expected.items():
        method = name.removesuffix("-checkpoint")
        counts = OracleCounts()
        kw = {"lr": lr} if method != "cg" else {"tol": 0.0}
        if name.endswith("-checkpoint"):
            kw["checkpoint"] = True
        _run(outer, inner, x, y, method=method, steps=steps, counts=counts, **kw)
        assert counts.as_dict() == want, name


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("method", METHODS)
def test_dtype_and_device_in_equal_dtype_and_device_out(method, dtype, device) -> None:
    inst, _, _, x, y = _setup(4, 10.0)
    outer, inner = quadratic_objectives(inst, dtype=dtype, device=device)
    opts = {
        "exact": {},
        "fo": {},
        "cg": {"steps": 5},
        "neumann": {"steps": 5, "lr": 0.05},
        "itd": {"steps": 5, "lr": 0.05},
        "rt": {"p": 0.1, "lr": 0.1, "mu": 1.0, "generator": torch.Generator().manual_seed(0)},
        "stocbio": {"steps": 5, "lr": 0.05, "sampler": lambda gen: None},
    }[method]
    if method == "stocbio":  # stochastic oracles take a batch (ignored by this problem)
        outer_det, inner_det = outer, inner
        outer = lambda a, b, batch: outer_det(a, b)  # noqa: E731
        inner = lambda a, b, batch: inner_det(a, b)  # noqa: E731
    xt = torch.as_tensor(x, dtype=dtype, device=device)
    yt = torch.as_tensor(y, dtype=dtype, device=device)
    out = hypergradient(outer, inner, xt, yt, method=method, **opts)
    assert out.dtype == dtype and out.device.type == device and out.shape == xt.shape
    assert torch.isfinite(out).all()


def test_tuple_and_dict_variables_give_the_flat_result() -> None:
    _inst, outer, inner, x, y = _setup(5, 10.0)
    flat = _run(outer, inner, x, y, method="cg", steps=5)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def split_outer(xs, ys):
        return outer(torch.cat([xs["a"], xs["b"]]), torch.cat(ys))

    def split_inner(xs, ys):
        return inner(torch.cat([xs["a"], xs["b"]]), torch.cat(ys))

    out = hypergradient(
        split_outer, split_inner, {"a": xt[:1], "b": xt[1:]}, (yt[:2], yt[2:]), method="cg", steps=5
    )
    assert set(out) == {"a", "b"}
    assert np.allclose(torch.cat([out["a"], out["b"]]).numpy(), flat, rtol=1e-14, atol=1e-14)


def test_module_parameters_through_functional_call() -> None:
    outer, inner, lam, params = linear_model_problem()
    exact = hypergradient(outer, inner, lam, params, method="exact")
    cg = hypergradient(outer, inner, lam, params, method="cg", steps=4)  # 4 inner parameters
    assert exact.shape == (1,) and torch.allclose(exact, cg, rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------ randomized truncation
def _rt_oracle(seed: int = 0, kappa: float = 4.0):
    from bilevel.solvers.oracles import SecondOrderOracle

    inst, outer, inner, x, y = _setup(seed, kappa, d_x=2, d_y=3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    counts = OracleCounts()
    oracle = SecondOrderOracle(inner, xt, yt, counts)
    b = torch.func.grad(outer, argnums=1)(xt, yt)
    return inst, oracle, b


def test_randomized_truncation_is_unbiased_by_exact_enumeration() -> None:
    """Tier 0: E[v] = sum_n P(N = n) v(n) over n <= 200, vs H^-1 b.

    With lr = 1/L, kappa = 4 the series contracts by c = 0.75 per term and the neglected tail
    is at most of order c^200 ~ 1e-25 (relative), so the tolerance 1e-12 is rounding only.
    """
    from bilevel.solvers.linear_solvers import (
        truncated_series_at_level,
        truncation_level_probabilities,
    )

    inst, oracle, b = _rt_oracle()
    lr, p, n_max = 1.0 / float(inst.constants.L), 0.3, 200
    probs = truncation_level_probabilities(p, n_max)
    mean = sum(pn * truncated_series_at_level(oracle, b, lr, p, n) for n, pn in enumerate(probs))
    truth = torch.linalg.solve(torch.from_numpy(inst.as_numpy()["A"]), b)
    assert torch.linalg.vector_norm(mean - truth) <= 1e-12 * torch.linalg.vector_norm(truth)
    # planted failure: the unweighted truncated sum (no 1/P(N >= q)) is biased
    plain = sum(pn * truncated_series_at_level(oracle, b, lr, 0.0, n) for n, pn in enumerate(probs))
    assert torch.linalg.vector_norm(plain - truth) > 1e-2 * torch.linalg.vector_norm(truth)


def test_randomized_truncation_refuses_infinite_variance() -> None:
    _inst, outer, inner, x, y = _setup(0, 100.0)
    with pytest.raises(ValueError, match=r"infinite variance: needs \(1 - lr\*mu\)\^2 < 1 - p"):
        _run(outer, inner, x, y, method="rt", p=0.01, lr=0.001, mu=1.0)


def _tier1(method: str, n: int, **opts) -> bool:
    """Fixed-seed Bonferroni z-test at alpha = 1e-6 of E[estimate] = exact hypergradient."""
    from bilevel.proofs_checks.statistics import bonferroni_z_test

    _inst, outer, inner, x, y = _setup(11, 4.0, d_x=2, d_y=3)
    truth = _run(outer, inner, x, y, method="exact")
    gen = torch.Generator().manual_seed(20261122)
    samples = np.stack(
        [
            _run(outer, inner, x, y, method=method, generator=gen, **opts)
            if method == "rt"
            else _run(outer, inner, x, y, method=method, **opts)
            for _ in range(n)
        ]
    )
    return bonferroni_z_test(samples, truth, alpha=1e-6).rejected


def test_randomized_truncation_passes_the_z_test_and_biased_estimators_fail_it() -> None:
    inst = QuadraticBilevel.random(2, 3, 4.0, 11)
    lr = 1.0 / float(inst.constants.L)
    # variance condition: (1 - lr mu)^2 = 0.5625 < 1 - p = 0.7
    assert not _tier1("rt", 2000, p=0.3, lr=lr, mu=float(inst.constants.mu))
    assert _tier1("fo", 2)
    assert _tier1("neumann", 2, steps=2, lr=lr)


def test_z_test_catches_a_planted_missing_reweighting(monkeypatch) -> None:
    """Planted bias: randomized truncation without the 1/P(N >= q) weights, same n and seed."""
    from bilevel.solvers import linear_solvers

    original = linear_solvers.truncated_series_at_level
    monkeypatch.setattr(
        linear_solvers,
        "truncated_series_at_level",
        lambda oracle, b, lr, p, level: original(oracle, b, lr, 0.0, level),
    )
    inst = QuadraticBilevel.random(2, 3, 4.0, 11)
    lr = 1.0 / float(inst.constants.L)
    assert _tier1("rt", 2000, p=0.3, lr=lr, mu=float(inst.constants.mu))


# ------------------------------------------------------------------ bad input
def _bad(call, exc, match):
    _inst, outer, inner, x, y = _setup(0, 10.0)
    with pytest.raises(exc, match=match):
        call(outer, inner, torch.from_numpy(x), torch.from_numpy(y))


@pytest.mark.parametrize(
    ("kw", "exc", "match"),
    [
        ({"method": "newton"}, ValueError, "unknown method 'newton'"),
        ({"method": "cg", "steps": 3, "lr": 0.1}, TypeError, "takes no option"),
        ({"method": "cg"}, TypeError, "needs option"),
        ({"method": "cg", "steps": -1}, ValueError, "steps must be a non-negative integer"),
        ({"method": "neumann", "steps": 2, "lr": -0.1}, ValueError, "lr must be a positive"),
        ({"method": "itd", "steps": 2.5, "lr": 0.1}, ValueError, "steps must be"),
        (
            {"method": "cg", "steps": 2, "v0": torch.zeros(4, dtype=torch.float64)},
            ValueError,
            "v0 has 4 entries",
        ),
    ],
)
def test_bad_options_raise_before_work(kw, exc, match) -> None:
    _bad(lambda f, g, x, y: hypergradient(f, g, x, y, **kw), exc, match)


def test_non_scalar_objective_and_bad_variables_raise() -> None:
    x = torch.zeros(2, dtype=torch.float64)
    y = torch.zeros(3, dtype=torch.float64)
    with pytest.raises(ValueError, match="outer\\(x, y\\) must return a scalar"):
        hypergradient(lambda a, b: b, lambda a, b: (b**2).sum(), x, y, method="fo")
    with pytest.raises(ValueError, match="x and y must share dtype"):
        hypergradient(lambda a, b: b.sum(), lambda a, b: b.sum(), x.float(), y, method="fo")
    with pytest.raises(ValueError, match="NaN or inf"):
        hypergradient(lambda a, b: b.sum(), lambda a, b: b.sum(), x, y * np.nan, method="fo")
    with pytest.raises(TypeError, match="must be a tensor"):
        hypergradient(lambda a, b: b.sum(), lambda a, b: b.sum(), [1.0], y, method="fo")


def test_indefinite_hessian_is_refused_by_exact_and_cg() -> None:
    D = torch.diag(torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64))

    def inner(x, y):
        return 0.5 * y @ D @ y - y @ x

    def outer(x, y):
        return (y**2).sum()

    x, y = torch.ones(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    with pytest.raises(ValueError, match="not positive definite"):
        hypergradient(outer, inner, x, y, method="exact")
    with pytest.raises(ValueError, match=r"non-positive curvature .* at CG step"):
        hypergradient(outer, inner, x, y, method="cg", steps=3)


def test_divergence_names_the_quantity_and_the_step() -> None:
    _inst, outer, inner, x, y = _setup(0, 100.0)
    with pytest.raises(FloatingPointError, match="ITD inner iterate y_t became NaN/inf at step"):
        _run(outer, inner, x, y * 1e300, method="itd", steps=50, lr=1.0)


@pytest.mark.parametrize(
    ("method", "quantity"),
    [("neumann", "Neumann term"), ("itd", "ITD inner iterate y_t")],
)
def test_divergence_names_the_first_non_finite_step(method, quantity):
    """g = L y^2 / 2 with lr L = 1 + 1e10: the t-th iterate / q-th term is (-1e10)^t y_0 (b).

    In float64 (max 1.8e308) 1e10^t overflows first at t = 31, so the error must name step 31.
    """
    L = 1.0
    inner = lambda x, y: 0.5 * L * (y**2).sum() - (x * y).sum()  # noqa: E731
    outer = lambda x, y: (y**2).sum()  # noqa: E731
    x, y = torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64)  # b = 2
    with pytest.raises(FloatingPointError, match=f"{quantity}.* at step 31;"):
        hypergradient(outer, inner, x, y, method=method, steps=40, lr=(1 + 1e10) / L)


class _CountedSaved:
    """A tensor saved by autograd, counted in ``live`` while the graph holds it."""

    def __init__(self, tensor: torch.Tensor, ledger: dict[str, int]):
        self.tensor, self.ledger = tensor, ledger
        self.nbytes = tensor.numel() * tensor.element_size()
        ledger["live"] += self.nbytes
        ledger["peak"] = max(ledger["peak"], ledger["live"])

    def __del__(self):
        self.ledger["live"] -= self.nbytes


def _peak_saved_bytes(fn) -> int:
    ledger = {"live": 0, "peak": 0}
    with torch.autograd.graph.saved_tensors_hooks(
        lambda t: _CountedSaved(t, ledger), lambda saved: saved.tensor
    ):
        fn()
    return ledger["peak"]


def test_checkpointed_itd_keeps_the_saved_graph_flat_in_T() -> None:
    """Peak bytes held by autograd graphs: T-fold for plain ITD, one step's for checkpointing,
    at most k steps' for segments of k.

    The stored iterates (T + 1 vectors of d_y) are the checkpoint's only growth, and they are
    not graph memory; the graph of plain ITD holds a few tensors per step, so it must grow.
    """
    gen = torch.Generator().manual_seed(4)
    d_y = 50
    A = torch.eye(d_y, dtype=torch.float64) * 2.0
    B = torch.randn(d_y, 3, generator=gen, dtype=torch.float64)
    inner = lambda x, y: 0.5 * y @ (A @ y) - y @ (B @ x)  # noqa: E731
    outer = lambda x, y: 0.5 * (y**2).sum()  # noqa: E731
    x, y, lr = np.ones(3), np.zeros(d_y), 0.25

    def peak(steps: int, checkpoint: bool | int) -> int:
        return _peak_saved_bytes(
            lambda: _run(
                outer, inner, x, y, method="itd", steps=steps, lr=lr, checkpoint=checkpoint
            )
        )

    assert peak(40, False) >= 3 * peak(10, False) > 0
    assert 0 < peak(40, True) <= peak(10, True)
    assert peak(40, True) < peak(40, 4) <= 4 * peak(40, True)


def test_cg_with_device_scalars_matches_host_scalars_and_names_the_bad_step() -> None:
    """The accelerator CG loop (scalars read every 8 steps), run on the CPU so CI covers it.

    Same iterates up to rounding: the two loops round differently (fused and unfused updates),
    and CG amplifies rounding differences like kappa^2 u (module docstring), so they are held to
    the contract's CG envelope 100 kappa^2 u; early stop at convergence; the first bad
    curvature named. Steps 10-12 (= d_y) are left out: there the residual is near rounding level
    and the two loops' iterates differ by up to 1.6e-9 (measured), the last Krylov directions
    being built from rounding noise; by step 13 both have converged and agree to 2e-13.
    """
    from bilevel.solvers import linear_solvers as ls
    from bilevel.solvers.oracles import SecondOrderOracle

    _, _, inner, x, y = _setup(5, 100.0, d_y=12)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    b = torch.from_numpy(np.linspace(1.0, 2.0, 12))
    for steps in (0, 3, 8, 9, 30):
        oracle = SecondOrderOracle(inner, xt, yt, OracleCounts())
        host = ls._cg_host_scalars(oracle, b, steps, None, 1e-14)
        device = ls._cg_device_scalars(oracle, b, steps, None, 1e-14)
        assert _close(host.numpy(), device.numpy(), 0.0, 100 * 100.0**2 * U64), steps
    A = torch.diag(torch.tensor([1.0, 2.0, -3.0], dtype=torch.float64))
    indefinite = SecondOrderOracle(
        lambda x, y: 0.5 * y @ (A @ y) - x @ y, A[0], A[0] * 0, OracleCounts()
    )
    with pytest.raises(ValueError, match=r"non-positive curvature .* at CG step 0"):
        ls._cg_device_scalars(indefinite, A[2] / 3, 5, None, 1e-14)


def test_float32_cg_stops_at_its_residual_floor_instead_of_dividing_zero_by_zero() -> None:
    """500 CG steps asked on d_y = 5 in float32: CG converges in about d_y steps, then the
    residual sits at the float32 floor; the default tol (eps of the dtype) stops it there, so
    fewer than 500 HVPs are spent, the result is finite, and it matches the exact value to
    the float32 CG envelope 100 kappa^2 u32 (module docstring of linear_solvers) against
    the float64 dense solve at the same (x, y)."""
    inst, _, _, x, y = _setup(6, 10.0)
    outer, inner = quadratic_objectives(inst, dtype=torch.float32)
    counts = OracleCounts()
    out = hypergradient(
        outer,
        inner,
        torch.as_tensor(x, dtype=torch.float32),
        torch.as_tensor(y, dtype=torch.float32),
        method="cg",
        steps=500,
        counts=counts,
    )
    assert bool(torch.isfinite(out).all()) and counts.hvp < 500
    exact = _run(*quadratic_objectives(inst), x, y, method="exact")  # float64, at the same y
    u32 = float(np.finfo(np.float32).eps) / 2
    assert _close(out.double().numpy(), exact, 1.0, 100 * 10.0**2 * u32)


class _DiagonalOracle:
    """H = diag(a) in float32, recording every p^T H p that rounds to exactly 0."""

    def __init__(self, diagonal: list[float]) -> None:
        self.diagonal = torch.tensor(diagonal, dtype=torch.float32)
        self.zero_curvatures = 0

    def hvp(self, p: torch.Tensor) -> torch.Tensor:
        out = self.diagonal * p
        self.zero_curvatures += int(torch.dot(p, out).item() == 0.0)
        return out


@pytest.mark.parametrize("path", ["_cg_host_scalars", "_cg_device_scalars"])
def test_cg_run_past_convergence_stops_where_the_curvature_underflows(path: str) -> None:
    """tol = 0 asks for all 60 steps of CG on H = diag(0.05, 0.02, 0.3) in float32. After
    convergence the recursive residual keeps shrinking until p^T H p rounds to 0 (asserted to
    happen, so the test exercises the case): with r^T r below tiny/eps and below the residual
    floor that is convergence, not an indefinite H. The answer is then held to the float32 CG
    envelope 100 kappa^2 u32 (kappa = 15) against b / a."""
    from bilevel.solvers import linear_solvers as ls

    oracle = _DiagonalOracle([0.05, 0.02, 0.3])
    b = torch.ones(3, dtype=torch.float32)
    v = getattr(ls, path)(oracle, b, 60, None, 0.0)
    assert oracle.zero_curvatures >= 1
    u32 = float(np.finfo(np.float32).eps) / 2
    exact = (b.double() / oracle.diagonal.double()).numpy()
    assert _close(v.double().numpy(), exact, 0.0, 100 * 15.0**2 * u32)


@pytest.mark.parametrize("path", ["_cg_host_scalars", "_cg_device_scalars"])
def test_cg_refuses_a_curvature_that_underflows_before_any_progress(path: str) -> None:
    """H = 1e-10 I and b = 1e-20 (1, 1, 1) in float32: p^T H p = 3e-50 rounds to 0 at step 0,
    where r = b has not moved from its start. Returning v = 0 would be silently wrong (the
    solution is 1e-10 (1, 1, 1)); CG raises and names the underflow."""
    from bilevel.solvers import linear_solvers as ls

    oracle = _DiagonalOracle([1e-10, 1e-10, 1e-10])
    b = torch.full((3,), 1e-20, dtype=torch.float32)
    with pytest.raises(ValueError, match=r"at CG step 0.*underflowed"):
        getattr(ls, path)(oracle, b, 5, None, 0.0)


def test_finiteness_check_names_the_bad_leaf_and_accepts_finite_entries_whose_sum_overflows() -> (
    None
):
    """The input check reads one sum; a sum that overflows (two entries of 1e308) is finite
    data and must pass, an inf in the second leaf of a tuple must be named as y[1]."""
    from bilevel.solvers._flat import flatten

    huge = torch.tensor([1e308, 1e308], dtype=torch.float64)
    flat, _ = flatten(huge, "x")
    assert torch.equal(flat, huge)
    good = torch.zeros(2, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"y\[1\] contains NaN or inf"):
        flatten((good, torch.tensor([1.0, -float("inf")], dtype=torch.float64)), "y")
    with pytest.raises(ValueError, match=r"y\[0\] contains NaN or inf"):
        flatten((torch.tensor([float("inf"), -float("inf")], dtype=torch.float64), good), "y")


@pytest.mark.parametrize("method", ["fo", "exact", "itd", "cg", "neumann"])
def test_a_nan_outer_objective_raises_instead_of_returning_nan(method) -> None:
    """The docstring promises FloatingPointError on NaN; fo, exact and itd used to return
    [nan, nan] for an outer objective that evaluates to NaN."""
    from bilevel.solvers import hypergradient

    A = torch.tensor([[2.0, 0.0], [0.0, 4.0]], dtype=torch.float64)

    def inner(x, y):
        return 0.5 * y @ A @ y - y @ x

    def outer(x, y):
        return ((y**2).sum() + x.sum()) * torch.tensor(float("nan"), dtype=torch.float64)

    options = {
        "cg": {"steps": 3},
        "neumann": {"steps": 3, "lr": 0.2},
        "itd": {"steps": 3, "lr": 0.2},
    }
    x = torch.ones(2, dtype=torch.float64)
    with pytest.raises(FloatingPointError, match="NaN/inf"):
        hypergradient(
            outer,
            inner,
            x,
            torch.zeros(2, dtype=torch.float64),
            method=method,
            **options.get(method, {}),
        )
