"""Ground truth of bilevel.analysis.quadratic against independent computations.

Tolerances. Closed forms are evaluated in exact rational arithmetic and rounded once; the
independent computations (numpy simulations, torch autograd through ``torch.linalg.solve``) are
float64 and backward stable, so their relative error is at most about c * kappa * u with
u = 1.1e-16, kappa <= 1e4 and a modest constant c (dimensions <= 6, at most 30 steps): below
1e-10. Bounds use float64 eigenvalues and norms (relative accuracy ~1e-13 on these sizes), so a
bound is asserted with a relative slack of 1e-9.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bilevel.analysis import QuadraticBilevel
from bilevel.proofs_checks.reference import (
    autograd_hypergradient,
    simulate_cg_exact,
)
from bilevel.proofs_checks.selfchecks import STEP_FAMILIES, estimator_outputs

REL_TOL = 1e-10
# each example builds exact rational closed forms (0.1-0.3 s); 12 seeds per property keep the
# file under a minute, and @example pins the hard cases (kappa = 1, kappa = 1e4).
HEAVY_EXAMPLES = 12
BOUND_SLACK = 1e-9

seeds = st.integers(min_value=0, max_value=2**32 - 1)
kappas = st.sampled_from([1.0, 3.0, 10.0, 100.0, 1e3, 1e4])
dims = st.integers(min_value=1, max_value=6)


def _instance(d_x: int, d_y: int, kappa: float, seed: int) -> QuadraticBilevel:
    return QuadraticBilevel.random(d_x, d_y, kappa if d_y > 1 else 1.0, seed)


def _rel_close(a: np.ndarray, b: np.ndarray, scale: float | None = None) -> bool:
    ref = max(np.linalg.norm(b), scale or 0.0, 1e-300)
    return bool(np.linalg.norm(np.asarray(a) - np.asarray(b)) <= REL_TOL * ref)


def _symbolic_instance(d_x: int, d_y: int) -> QuadraticBilevel:
    def sym(name: str, rows: int, cols: int, symmetric: bool = False) -> sp.Matrix:
        entries = sp.symbols(f"{name}0:{rows * cols}", real=True)
        m = sp.Matrix(rows, cols, entries)
        if symmetric:
            m = sp.Matrix(rows, cols, lambda i, j: m[min(i, j), max(i, j)])
        return m

    # A = diag(a_i) + 0 keeps positive definiteness an assumption sympy can state; the other
    # blocks are fully symbolic.
    a = sp.symbols(f"a0:{d_y}", positive=True)
    A = sym("A", d_y, d_y, symmetric=True) if d_y <= 2 else sp.diag(*a)
    return QuadraticBilevel(
        A=A,
        B=sym("B", d_y, d_x),
        c=sym("c", d_y, 1),
        P=sym("P", d_y, d_y, symmetric=True),
        p=sym("p", d_y, 1),
        R=sym("R", d_x, d_x, symmetric=True),
        r=sym("r", d_x, 1),
        S=sym("S", d_x, d_y),
    )


# ---------------------------------------------------------------------- the two derivations
@pytest.mark.parametrize(("d_x", "d_y"), [(1, 1), (1, 2), (2, 2), (2, 3), (3, 3)])
def test_ift_equals_substitution_symbolically(d_x: int, d_y: int) -> None:
    assert _symbolic_instance(d_x, d_y).prove_hypergradient_identity()


@settings(max_examples=HEAVY_EXAMPLES)
@given(seed=seeds, d_x=dims, d_y=dims, kappa=kappas)
def test_ift_equals_substitution_in_exact_arithmetic(seed, d_x, d_y, kappa) -> None:
    inst = _instance(d_x, d_y, kappa, seed)
    diff = inst.hypergradient() - inst.hypergradient_by_substitution()
    assert all(sp.expand(v) == 0 for v in diff)  # exact rationals: no simplify needed


def test_identity_check_detects_a_wrong_hypergradient(monkeypatch) -> None:
    inst = QuadraticBilevel.random(2, 3, 10.0, seed=1)
    wrong = inst.grad_x_outer(inst.x, inst._y_star)  # the implicit term dropped
    monkeypatch.setattr(QuadraticBilevel, "_hypergradient_ift", wrong)
    with pytest.raises(ArithmeticError, match="does not vanish"):
        inst.prove_hypergradient_identity()


def test_hessian_is_jacobian_of_hypergradient_symbolically() -> None:
    inst = _symbolic_instance(2, 2)
    jac = inst.hypergradient().jacobian(inst.x)
    assert (jac - inst.hessian()).applyfunc(sp.simplify) == sp.zeros(2, 2)


# ---------------------------------------------------------------------- numeric backends
@settings(max_examples=HEAVY_EXAMPLES)
@given(seed=seeds, d_x=dims, d_y=dims, kappa=kappas)
@example(seed=0, d_x=3, d_y=5, kappa=1e4)
@example(seed=0, d_x=3, d_y=5, kappa=1.0)
def test_lambdified_hypergradient_matches_torch_autograd(seed, d_x, d_y, kappa) -> None:
    inst = _instance(d_x, d_y, kappa, seed)
    x = np.random.default_rng(seed).standard_normal(d_x)
    reference = autograd_hypergradient(inst.as_numpy(), x)
    via_numpy = inst.hypergradient(backend="numpy")(x)
    via_torch = inst.hypergradient(backend="torch")(torch.from_numpy(x))
    assert via_torch.dtype == torch.float64
    assert _rel_close(via_numpy, reference)
    assert _rel_close(via_torch.numpy(), reference)


def test_torch_backend_keeps_autograd() -> None:
    inst = QuadraticBilevel.random(2, 3, 10.0, seed=3)
    x = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    phi = inst.value(backend="torch")(x)
    (grad,) = torch.autograd.grad(phi, x)
    assert _rel_close(grad.numpy(), inst.hypergradient(backend="numpy")(np.zeros(2)))


# ---------------------------------------------------------------------- estimators vs simulations
def _exact(inst: QuadraticBilevel, x: np.ndarray) -> np.ndarray:
    return inst.hypergradient(backend="numpy")(x)


@pytest.mark.parametrize("family", sorted(STEP_FAMILIES))
@settings(max_examples=HEAVY_EXAMPLES)
@given(seed=seeds, d_x=st.integers(1, 4), d_y=st.integers(1, 5), kappa=kappas)
@example(seed=7, d_x=2, d_y=5, kappa=1e4)
def test_step_family_closed_form_matches_simulation_and_obeys_bound(
    family, seed, d_x, d_y, kappa
) -> None:
    """ITD from y0 / Neumann at y: closed form == simulation, boxed error, bound at every n."""
    inst = _instance(d_x, d_y, kappa, seed)
    b, rng = inst.as_numpy(), np.random.default_rng(seed)
    x, y = rng.standard_normal(d_x), rng.standard_normal(d_y)
    step = 1.0 / float(inst.constants.L)
    truth = _exact(inst, x)
    for n in (0, 1, 2, 5, 13, 30):
        closed, simulated, boxed, bound = estimator_outputs(inst, b, family, n, step, x, y)
        assert _rel_close(closed, simulated, np.linalg.norm(truth))
        assert _rel_close(boxed, closed - truth, np.linalg.norm(truth))
        # float64 constants put q = |1 - step mu| off by ~kappa u <= 1e-12 (absolute), which
        # matters when q is 0 in exact arithmetic (kappa = 1, step = 1/L)
        slack = 1e-12 * (np.linalg.norm(truth) + np.linalg.norm(y) + 1.0)
        assert np.linalg.norm(boxed) <= bound * (1 + BOUND_SLACK) + slack


def test_neumann_truncation_error_at_the_inner_solution_obeys_its_bound() -> None:
    inst = _instance(3, 5, 100.0, 0)
    x = np.random.default_rng(0).standard_normal(3)
    eta = 1.0 / float(inst.constants.L)
    # at y* the error is the pure truncation term and the bound decays like (1 - eta mu)^Q
    y_star = inst.inner_solution(backend="numpy")(x)
    errors = [
        np.linalg.norm(inst.neumann_error(Q, eta, y_star, backend="numpy")(x)) for Q in range(8)
    ]
    bounds = [inst.neumann_error_bound(Q, eta, y_star, backend="numpy")(x) for Q in range(8)]
    assert all(e <= bd * (1 + BOUND_SLACK) + 1e-12 for e, bd in zip(errors, bounds, strict=True))


@settings(max_examples=HEAVY_EXAMPLES)
@given(seed=seeds, d_x=st.integers(1, 4), d_y=st.integers(1, 5), kappa=kappas)
@example(seed=7, d_x=2, d_y=5, kappa=1e4)
def test_cg_closed_form_matches_simulation_and_obeys_bound(seed, d_x, d_y, kappa) -> None:
    inst = _instance(d_x, d_y, kappa, seed)
    b, rng = inst.as_numpy(), np.random.default_rng(seed)
    x, y = rng.standard_normal(d_x), rng.standard_normal(d_y)
    truth = _exact(inst, x)
    scale = np.linalg.norm(truth) + np.linalg.norm(simulate_cg_exact(b, x, y, d_y))
    for K in range(d_y + 2):
        closed = inst.cg_hypergradient(K, y, backend="numpy")(x)
        simulated = simulate_cg_exact(b, x, y, K)
        # both sides are the same real number rounded once: equal up to one ulp per entry
        assert np.allclose(closed, simulated, rtol=4e-16, atol=4e-16 * scale)
        err = inst.cg_error(K, y, backend="numpy")(x)
        assert _rel_close(err, closed - truth, scale)
        bound = inst.cg_error_bound(K, y, backend="numpy")(x)
        assert np.linalg.norm(err) <= bound * (1 + BOUND_SLACK)
    # CG terminates after d_y steps: at y* it then equals the exact hypergradient
    y_star = inst.inner_solution(backend="numpy")(x)
    assert _rel_close(inst.cg_hypergradient(d_y, y_star, backend="numpy")(x), truth)


def test_cg_terminates_at_number_of_distinct_eigenvalues() -> None:
    A = sp.diag(1, 1, 4, 4)  # two distinct eigenvalues: CG is exact after 2 steps
    inst = QuadraticBilevel(
        A,
        sp.ones(4, 1),
        sp.zeros(4, 1),
        sp.eye(4),
        sp.ones(4, 1),
        sp.eye(1),
        sp.zeros(1, 1),
        sp.zeros(1, 4),
    )
    y = sp.Matrix([1, 2, 3, 4])
    exact = inst.neumann_hypergradient(0, 1, y) + inst.B.T * inst.A_inv * inst.grad_y_outer(
        inst.x, y
    )
    assert (inst.cg_hypergradient(2, y) - exact).applyfunc(sp.simplify) == sp.zeros(1, 1)
    assert (inst.cg_hypergradient(1, y) - exact).applyfunc(sp.simplify) != sp.zeros(1, 1)


@settings(max_examples=HEAVY_EXAMPLES)
@given(seed=seeds, d_x=st.integers(1, 4), d_y=st.integers(1, 5), kappa=kappas)
def test_first_order_is_neumann_with_zero_terms(seed, d_x, d_y, kappa) -> None:
    inst = _instance(d_x, d_y, kappa, seed)
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal(d_x), rng.standard_normal(d_y)
    fo = inst.first_order_hypergradient(y, backend="numpy")(x)
    assert np.array_equal(fo, inst.neumann_hypergradient(0, 0.5, y, backend="numpy")(x))
    err = inst.first_order_error(y, backend="numpy")(x)
    assert _rel_close(err, fo - _exact(inst, x), np.linalg.norm(fo))
    assert np.linalg.norm(err) <= inst.first_order_error_bound(y, backend="numpy")(x) * (
        1 + BOUND_SLACK
    )


# ---------------------------------------------------------------------- identities
@pytest.mark.parametrize("T", [0, 1, 2, 3])
def test_itd_equals_neumann_at_y_T_symbolically(T: int) -> None:
    inst = _symbolic_instance(1, 2)
    alpha = sp.Symbol("alpha", positive=True)
    assert inst.prove_itd_neumann_identity(T, alpha)


@settings(max_examples=HEAVY_EXAMPLES)
@given(seed=seeds, kappa=kappas, T=st.integers(0, 12))
def test_itd_equals_neumann_at_y_T_exactly(seed, kappa, T) -> None:
    inst = _instance(2, 4, kappa, seed)
    alpha = sp.Rational(1, 2 * int(np.ceil(float(inst.constants.L))))  # exact step <= 1/(2L)
    assert inst.prove_itd_neumann_identity(T, alpha)


def test_itd_neumann_identity_fails_for_an_off_by_one_neumann() -> None:
    """Planted failure: Neumann with T + 1 terms (stocBiO's indexing) is not ITD(T)."""
    inst = QuadraticBilevel.random(2, 3, 10.0, seed=0)
    y0 = np.ones(3)
    y_T = inst.itd_inner_iterate(4, sp.Rational(1, 20), y0)
    step = sp.Rational(1, 20)
    itd = inst.itd_hypergradient(4, step, y0)
    assert all(sp.expand(v) == 0 for v in itd - inst.neumann_hypergradient(4, step, y_T))
    assert any(sp.expand(v) != 0 for v in itd - inst.neumann_hypergradient(5, step, y_T))


# ---------------------------------------------------------------------- penalty reformulation
@settings(max_examples=HEAVY_EXAMPLES)
@given(seed=seeds, d_x=st.integers(1, 3), d_y=st.integers(1, 4), kappa=st.sampled_from([1.0, 10.0]))
def test_penalty_bias_closed_form_and_one_over_lambda(seed, d_x, d_y, kappa) -> None:
    inst = _instance(d_x, d_y, kappa, seed)
    x = np.random.default_rng(seed).standard_normal(d_x)
    truth = _exact(inst, x)
    k = inst.constants
    lam_min = 2 * float(k.norm_P / k.mu) + 1.0
    ratios = []
    for lam in (lam_min, 10 * lam_min, 100 * lam_min):
        grad = inst.penalty_hypergradient(lam, backend="numpy")(x)
        boxed = inst.penalty_error(lam, backend="numpy")(x)
        assert _rel_close(boxed, grad - truth, np.linalg.norm(truth))
        bound = inst.penalty_error_bound(lam, backend="numpy")(x)
        assert np.linalg.norm(boxed) <= bound * (1 + BOUND_SLACK)
        ratios.append(lam * np.linalg.norm(boxed))
    # lam * bias -> ||(S A^-1 + B^T A^-1 P A^-1) g*||: the O(1/lam) leading term (spec 7.8)
    b = inst.as_numpy()
    Ai = np.linalg.inv(b["A"])
    y_star = Ai @ (b["B"] @ x + b["c"])
    g_star = b["P"] @ y_star + b["p"] + b["S"].T @ x
    lead = np.linalg.norm((b["S"] @ Ai + b["B"].T @ Ai @ b["P"] @ Ai) @ g_star)
    assert abs(ratios[-1] - lead) <= abs(ratios[0] - lead) + 1e-9 * max(lead, 1.0)


# ---------------------------------------------------------------------- construction
@settings(max_examples=HEAVY_EXAMPLES)
@given(seed=seeds, d_y=st.integers(2, 8), kappa=st.sampled_from([1.0, 10.0, 1e4]))
def test_random_instance_has_the_requested_condition_number(seed, d_y, kappa) -> None:
    A = QuadraticBilevel.random(1, d_y, kappa, seed).as_numpy()["A"]
    eigs = np.linalg.eigvalsh(A)
    assert abs(eigs.max() / eigs.min() / kappa - 1) <= 1e-10
    again = QuadraticBilevel.random(1, d_y, kappa, seed).as_numpy()["A"]
    assert np.array_equal(A, again)


# ---------------------------------------------------------------------- bad input
def _blocks(d_x=2, d_y=3):
    inst = QuadraticBilevel.random(d_x, d_y, 10.0, seed=0).as_numpy()
    return dict(inst)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"A": np.triu(np.ones((3, 3))) + 3 * np.eye(3)}, "A must be symmetric"),
        ({"A": -np.eye(3)}, "A must be positive definite"),
        ({"A": np.diag([1.0, 0.0, 2.0])}, "A must be positive definite"),
        ({"B": np.ones((2, 2))}, "B has shape"),
        ({"c": np.ones(4)}, "c has shape"),
        ({"P": np.ones((3, 2))}, "P has shape"),
        ({"S": np.ones((3, 2))}, "S has shape"),
        ({"R": np.array([[1.0, 2.0], [0.0, 1.0]])}, "R must be symmetric"),
        ({"c": np.array([1.0, np.nan, 0.0])}, "not finite"),
    ],
)
def test_bad_instances_raise_naming_the_argument(change, match) -> None:
    blocks = _blocks()
    blocks.update(change)
    with pytest.raises(ValueError, match=match):
        QuadraticBilevel(**blocks)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda i: i.itd_hypergradient(-1, 0.1), "T must be a non-negative integer"),
        (lambda i: i.itd_hypergradient(2.5, 0.1), "T must be a non-negative integer"),
        (lambda i: i.neumann_hypergradient(-3, 0.1), "Q must be a non-negative integer"),
        (lambda i: i.cg_hypergradient(-1), "K must be a non-negative integer"),
        (lambda i: i.itd_hypergradient(2, -0.1), "alpha must be a positive"),
        (lambda i: i.neumann_hypergradient(2, 0), "eta must be a positive"),
        (lambda i: i.penalty_hypergradient(-1), "lam must be a positive"),
        (lambda i: i.hypergradient(backend="jax"), "backend must be one of"),
        (lambda i: i.neumann_hypergradient(1, 0.1, y=np.ones(5)), "y has shape"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(call, match) -> None:
    with pytest.raises(ValueError, match=match):
        call(QuadraticBilevel.random(2, 3, 10.0, seed=0))


def test_penalty_refuses_lambda_below_the_convexity_threshold() -> None:
    inst = QuadraticBilevel(
        np.eye(2),
        np.ones((2, 1)),
        np.zeros(2),
        -4 * np.eye(2),
        np.zeros(2),
        np.eye(1),
        np.zeros(1),
        np.zeros((1, 2)),
    )
    with pytest.raises(ValueError, match="P \\+ lam A must be positive definite"):
        inst.penalty_hypergradient(2)
