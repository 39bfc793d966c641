"""The theorem registry: conventions, exponents, and every [derived] entry against a direct
numeric computation on random instances."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from bilevel.analysis import theorems as th
from bilevel.analysis.theorems import REGISTRY, convert_convention, exponents, get


@pytest.mark.parametrize("entry", [e for e in REGISTRY if e.convention], ids=lambda e: e.id)
def test_convention_round_trip_is_the_identity(entry) -> None:
    other = "norm" if entry.convention == "squared" else "squared"
    there = convert_convention(entry.expression, entry.convention, other)
    back = convert_convention(there, other, entry.convention)
    assert sp.simplify(sp.expand_log(back - entry.expression, force=True)) == 0
    if th.eps in entry.expression.free_symbols and entry.convention == "squared":
        assert exponents(there)[th.eps] == 2 * exponents(entry.expression)[th.eps]


def test_exponents_order_the_seeds_as_the_papers_claim() -> None:
    inv = lambda e: -exponents(get(e).expression)[th.eps]  # noqa: E731  power of 1/eps
    assert inv("vr-msgbio/samples") < inv("msgbio/samples")  # 3 < 4
    assert inv("mgbio/gradients") < inv("mgbio/previous-deterministic")  # 2 < 3 (norm)
    aid = th.in_convention(get("aid-bio/Gc(g)"), "norm")
    assert exponents(aid) == {th.kappa: 4, th.eps: -2}  # Chen & Zhang's kappa^4 eps^-2 reading
    assert exponents(get("stocbio/HV").expression)[th.kappa] == 6
    assert th.log_factors(get("stocbio/HV").expression) and not th.log_factors(aid)
    assert exponents(get("maml/steps").expression)[th.N] == 1


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), dim=st.integers(2, 8))
def test_gd_contraction_is_the_spectral_radius(seed: int, dim: int) -> None:
    rng = np.random.default_rng(seed)
    lam = np.sort(rng.uniform(0.1, 10.0, dim))
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    A = (q * lam) @ q.T
    step = rng.uniform(0.01, 1.9 / lam[-1])
    predicted = float(
        get("gd/contraction").expression.subs({th.eta: step, th.mu: lam[0], th.L: lam[-1]})
    )
    measured = max(abs(np.linalg.eigvals(np.eye(dim) - step * A)))
    assert abs(predicted - measured) <= 1e-12 * max(1.0, measured)


@pytest.mark.parametrize("kappa", [2.0, 10.0, 100.0, 1000.0])
@pytest.mark.parametrize("ratio", [1e-3, 1e-8])
def test_gd_iterations_to_delta_against_running_gd(kappa: float, ratio: float) -> None:
    """On the slowest mode (lambda = mu = 1, L = kappa, eta = 1/L) GD's error is exactly
    C_0 (1 - 1/kappa)^T: the formula's T is the first step with error <= delta."""
    c0, target = 3.0, 3.0 * ratio
    T = int(
        get("gd/iterations-to-delta").expression.subs(
            {th.C0: c0, th.delta: target, th.kappa: kappa}
        )
    )
    error, steps = c0, 0
    while error > target:
        error *= 1 - 1 / kappa
        steps += 1
    assert T == steps


@pytest.mark.parametrize("kappa", [10.0, 100.0, 1e4])
def test_cg_iterations_to_delta_bounds_running_cg(kappa: float) -> None:
    """The CG formula is an upper bound: CG on a Chebyshev spectrum (its worst case) reaches
    ||v_K - v*||_H <= delta in at most that many steps, and needs at least a third of them."""
    n, rng = 3000, np.random.default_rng(0)
    i = np.arange(1, n + 1)
    lam = (kappa + 1) / 2 + (kappa - 1) / 2 * np.cos(np.pi * (2 * i - 1) / (2 * n))
    b = rng.standard_normal(n)
    v_star = b / lam
    h_norm = lambda e: math.sqrt(float(e @ (lam * e)))  # noqa: E731
    c0, target = h_norm(v_star), 1e-8 * h_norm(v_star)
    bound = int(
        get("cg/iterations-to-delta").expression.subs(
            {th.C0: c0, th.delta: target, th.kappa: kappa}
        )
    )
    v, r = np.zeros(n), b.copy()
    direction, steps = r.copy(), 0
    while h_norm(v - v_star) > target:
        Ap = lam * direction
        alpha = (r @ r) / (direction @ Ap)
        v, r_new = v + alpha * direction, r - alpha * Ap
        direction = r_new + (r_new @ r_new) / (r @ r) * direction
        r, steps = r_new, steps + 1
    assert bound / 3 <= steps <= bound


@settings(max_examples=20, deadline=None)
@given(a_s=st.floats(0.05, 0.95), K=st.integers(1, 400))
def test_bda_gamma_formula_equals_the_recursion(a_s: float, K: int) -> None:
    entry = get("bda/aggregation-error").expression
    predicted = float(entry.subs({th.a: a_s, th.s_u: 1, th.K: K}).evalf(30))
    product = float(np.prod([1 - a_s / (k + 1) for k in range(K)]))
    assert abs(predicted - product) <= 1e-12 * product


@pytest.mark.parametrize(("rho", "p", "finite"), [(0.8, 0.3, True), (0.9, 0.3, False)])
def test_rt_variance_condition_against_the_second_moment(rho, p, finite) -> None:
    """1-D: estimate(n) = eta b sum_{q<=n} (rho/(1-p))^q, P(N = n) = p (1-p)^n; the partial sums
    of E[estimate^2] converge iff rho^2/(1-p) < 1 (the registry's condition)."""
    condition = float(
        get("rt/finite-variance").expression.subs({th.eta: 1.0, th.mu: 1 - rho, th.p: p})
    )
    assert (condition < 1) is finite
    r = rho / (1 - p)

    def log_term(n: int) -> float:  # log of P(N = n) estimate(n)^2, estimate(n) = (r^(n+1)-1)/(r-1)
        log_estimate = (
            math.log(abs(r ** (n + 1) - 1) / abs(r - 1))
            if n < 600
            else ((n + 1) * math.log(r) - math.log(r - 1) if r > 1 else -math.log(1 - r))
        )
        return math.log(p) + n * math.log(1 - p) + 2 * log_estimate

    # the series' terms vanish geometrically iff finite; otherwise they grow without bound
    assert (log_term(3000) < math.log(1e-12)) is finite
    assert (log_term(3000) > log_term(1500) > 0) is not finite


def test_stocbio_bias_factor_by_enumeration() -> None:
    """1-D, Hessian batches h in {0.5, 1.5} equally likely (mean 1): E[v_Q] from all 2^Q draws
    equals (1 - (1 - eta)^(Q+1)) b, i.e. bias factor (1 - eta mu)^(Q+1) with mu = mean h."""
    import itertools

    eta, b, Q = 0.4, 1.0, 6
    total = 0.0
    for draw in itertools.product((0.5, 1.5), repeat=Q):
        s = b
        for h in draw:
            s = b + (1 - eta * h) * s
        total += eta * s / 2**Q
    factor = float(
        get("stocbio/expectation-bias").expression.subs({th.eta: eta, th.mu: 1.0, th.q_level: Q})
    )
    assert abs(total - (1 - factor) * b) <= 1e-14


def test_latex_and_markdown_tables_render() -> None:
    from matplotlib.mathtext import MathTextParser

    latex = th.latex_table()
    rows = [line for line in latex.splitlines() if line.endswith(r"\\")]
    assert latex.startswith(r"\begin{tabular}") and r"\toprule" in latex and r"\bottomrule" in latex
    assert len(rows) == 1 + len(REGISTRY) and all(r.count(" & ") == 5 for r in rows)
    parser = MathTextParser("path")
    for entry in REGISTRY:  # every expression parses as TeX math (matplotlib's mathtext)
        parser.parse(f"${sp.latex(entry.expression)}$")
    markdown = th.markdown_table().splitlines()
    assert len(markdown) == 2 + len(REGISTRY) and all(m.count("|") >= 7 for m in markdown)


def _numeric_blocks(inst):
    b = inst.as_numpy()
    x = np.linspace(-1.0, 1.0, inst.d_x)
    y_star = np.asarray(inst.inner_solution("numpy")(x), dtype=float).ravel()
    g_star = b["P"] @ y_star + b["p"] + b["S"].T @ x
    subs = {
        th.A_m: sp.Matrix(b["A"]),
        th.B_m: sp.Matrix(b["B"]),
        th.S_m: sp.Matrix(b["S"]),
        th.P_m: sp.Matrix(b["P"]),
        th.g_star: sp.Matrix(g_star),
        th.d_x: inst.d_x,
        th.d_y: inst.d_y,
    }
    return b, x, y_star, subs


def _evaluate(expression, subs) -> np.ndarray:
    return np.array(sp.N(expression.subs(subs).doit()), dtype=float).ravel()


def test_fo_itd_bias_matches_the_first_order_error_at_the_solution() -> None:
    from bilevel.analysis import QuadraticBilevel

    inst = QuadraticBilevel.random(d_x=2, d_y=3, kappa=10.0, seed=7)
    _, x, y_star, subs = _numeric_blocks(inst)
    predicted = _evaluate(get("fo-itd/bias").expression, subs)
    measured = np.asarray(inst.first_order_error(y_star, backend="numpy")(x), dtype=float).ravel()
    assert np.allclose(predicted, measured, rtol=1e-10, atol=1e-12)
    assert np.linalg.norm(predicted) > 1e-3  # a bias that T cannot remove


def test_penalty_leading_bias_is_the_first_order_term() -> None:
    """lam * (exact bias) - lam * (leading term) = O(1/lam): it shrinks tenfold per decade."""
    from bilevel.analysis import QuadraticBilevel

    inst = QuadraticBilevel.random(d_x=2, d_y=3, kappa=10.0, seed=8)
    _, x, _, subs = _numeric_blocks(inst)
    gaps = []
    for lam in (1e3, 1e4, 1e5):
        leading = _evaluate(get("penalty/leading-bias").expression, {**subs, th.lam: lam})
        exact = np.asarray(inst.penalty_error(lam, backend="numpy")(x), dtype=float).ravel()
        gaps.append(lam * np.linalg.norm(exact - leading))
    assert 8 < gaps[0] / gaps[1] < 12 and 8 < gaps[1] / gaps[2] < 12


def test_ufom_second_moment_by_enumerating_the_switch() -> None:
    rng = np.random.default_rng(3)
    g_ex, g_fo = rng.standard_normal(4), rng.standard_normal(4)
    for q in (0.1, 0.5, 1.0):
        second = (1 - q) * np.sum(g_fo**2) + q * np.sum((g_fo + (g_ex - g_fo) / q) ** 2)
        mean = (1 - q) * g_fo + q * (g_fo + (g_ex - g_fo) / q)
        predicted = float(
            get("ufom/second-moment").expression.subs(
                {th.V2: np.sum(g_ex**2), th.D2: np.sum((g_ex - g_fo) ** 2), th.q_level: q}
            )
        )
        assert np.allclose(mean, g_ex) and abs(second - predicted) <= 1e-12 * second


@settings(max_examples=30, deadline=None)
@given(
    c_det=st.floats(1, 20),
    c_rnd=st.floats(1, 60),
    v2=st.floats(0.1, 10),
    share=st.floats(0.01, 0.99),
)
def test_ufom_q_star_minimises_the_cost_deviation_product(c_det, c_rnd, v2, share) -> None:
    from scipy.optimize import minimize_scalar

    d2 = share * 2 * c_rnd * v2 / (c_det + c_rnd)  # interior regime: q* < 1
    values = {th.C_det: c_det, th.C_rnd: c_rnd, th.V2: v2, th.D2: d2}
    q_star = float(get("ufom/optimal-q").expression.subs(values))
    objective = sp.lambdify(th.q_level, get("ufom/cost-times-deviation").expression.subs(values))
    numeric = minimize_scalar(
        objective, bounds=(1e-9, 1.0), method="bounded", options={"xatol": 1e-12}
    ).x
    assert 0 < q_star < 1 and abs(q_star - numeric) <= 1e-5


def _gda_step(b, lam, etas, w, dx, dy):
    """One simultaneous GDA step written from the gradients of L (independent of M)."""
    x, y, z = w[:dx], w[dx : dx + dy], w[dx + dy :]
    gx = b["R"] @ x + b["r"] + b["S"] @ y + lam * (-b["B"].T @ y + b["B"].T @ z)
    gy = b["P"] @ y + b["p"] + b["S"].T @ x + lam * (b["A"] @ y - b["B"] @ x - b["c"])
    gz_ascent = -lam * (b["A"] @ z - b["B"] @ x - b["c"])
    return np.concatenate([x - etas[0] * gx, y - etas[1] * gy, z + etas[2] * gz_ascent])


@pytest.mark.parametrize("eta_scale", [0.5, 2.5])
def test_gda_iteration_matrix_and_its_stability(eta_scale: float) -> None:
    """M from the analysis equals the Jacobian of an independent GDA step, and rho(M) < 1
    exactly when GDA from a random start approaches the fixed point."""
    from bilevel.analysis import QuadraticBilevel

    inst = QuadraticBilevel.random(d_x=2, d_y=2, kappa=4.0, seed=5)
    b = {
        k: v.astype(float).reshape(v.shape[0], -1).squeeze(-1)
        if v.ndim == 2 and v.shape[1] == 1
        else v.astype(float)
        for k, v in inst.as_numpy().items()
    }
    lam = 5.0
    L_block = float(np.linalg.eigvalsh(b["P"] + lam * b["A"]).max())
    etas = (0.01, eta_scale / L_block, eta_scale / (lam * float(inst.constants.L)))
    M, m = inst.gda_iteration(lam, *etas)
    M, m = np.array(M, dtype=float), np.array(m, dtype=float).ravel()
    n = inst.d_x + 2 * inst.d_y
    w0 = np.random.default_rng(0).standard_normal(n)
    step = lambda w: _gda_step(b, lam, etas, w, inst.d_x, inst.d_y)  # noqa: E731
    jac = np.column_stack([step(np.eye(n)[i]) - step(np.zeros(n)) for i in range(n)])
    assert np.allclose(jac, M, atol=1e-12) and np.allclose(step(np.zeros(n)), m, atol=1e-12)
    rho = max(abs(np.linalg.eigvals(M)))
    fixed = np.linalg.solve(np.eye(n) - M, m)
    w = w0
    for _ in range(12_000):  # rho = 0.9976 in the stable case: 0.9976^12000 ~ 1e-13
        w = step(w)
        if np.linalg.norm(w) > 1e8:
            break
    converged = bool(np.linalg.norm(w - fixed) < 1e-6 * np.linalg.norm(w0 - fixed))
    assert bool(rho < 1) is converged and (eta_scale < 1) is converged


def test_smoothness_constant_is_cubic_in_kappa() -> None:
    """L_Phi (spec 6.1) with mu = L / kappa and the other constants fixed has degree 3 in kappa,
    the Theta(kappa^3) of the registry's [recall] entry."""
    expr = get("hyperobjective/smoothness-constant").expression.subs(th.mu, th.L / th.kappa)
    assert sp.degree(sp.expand(expr), th.kappa) == 3
    assert exponents(get("hyperobjective/smoothness").expression)[th.kappa] == 3


@pytest.mark.parametrize(("h", "Q"), [(1.0, 5), (2.0, 40)])
def test_stocbio_reference_code_sum_by_direct_summation(h: float, Q: int) -> None:
    eta = 0.3
    M = 1 - eta * h
    direct = eta * M**Q + sum(M**k for k in range(1, Q + 1))
    predicted = float(
        get("stocbio/reference-code-sum").expression.subs({th.eta: eta, th.M_ref: M, th.q_level: Q})
    )
    assert abs(direct - predicted) <= 1e-12 * abs(direct)
    if Q == 40:  # the limit 1/(eta h) - 1, not the paper's 1/h
        assert abs(predicted - (1 / (eta * h) - 1)) < 1e-6 and abs(predicted - 1 / h) > 0.1


def test_maml_and_fom_stationary_points_solve_their_mean_directions() -> None:
    """1-D toy: theta* zeroes (1/2) sum (1 - alpha a_i)^(2r) (a_i theta - b_i), theta_FO zeroes
    the same with power r (spec 7.9); they differ for heterogeneous tasks."""
    values = {th.alpha: 0.1, th.r_steps: 3, th.a_1: 1.0, th.a_2: 4.0, th.b_1: 2.0, th.b_2: -1.0}
    for entry_id, power in (("maml/exact-stationary-point", 6), ("fom/stationary-point", 3)):
        theta = float(get(entry_id).expression.subs(values))
        direction = sum(
            (1 - 0.1 * ai) ** power * (ai * theta - bi) for ai, bi in ((1.0, 2.0), (4.0, -1.0))
        )
        assert abs(direction) < 1e-12
    exact = float(get("maml/exact-stationary-point").expression.subs(values))
    assert abs(exact - float(get("fom/stationary-point").expression.subs(values))) > 0.05


@pytest.mark.parametrize("entry_id", ["gd/contraction", "neumann/contraction"])
def test_neumann_and_gd_share_the_iteration_matrix(entry_id: str) -> None:
    """The Neumann error after Q terms is (I - eta A)^Q A^-1 b: its decay factor per term is the
    spectral radius of I - eta A, the same expression as GD's."""
    rng = np.random.default_rng(11)
    lam = np.array([0.5, 2.0, 5.0])
    b, step = rng.standard_normal(3), 0.3
    errors = [np.linalg.norm(((1 - step * lam) ** Q) * b / lam) for Q in (200, 201)]
    predicted = float(get(entry_id).expression.subs({th.eta: step, th.mu: 0.5, th.L: 5.0}))
    assert abs(errors[1] / errors[0] - predicted) < 1e-12


def test_cg_contraction_bounds_cg_and_is_nearly_tight_on_chebyshev_spectra() -> None:
    kappa, n = 400.0, 4000
    i = np.arange(1, n + 1)
    lam = (kappa + 1) / 2 + (kappa - 1) / 2 * np.cos(np.pi * (2 * i - 1) / (2 * n))
    b = np.ones(n)
    v_star = b / lam
    h = lambda e: math.sqrt(float(e @ (lam * e)))  # noqa: E731
    rho = float(get("cg/contraction").expression.subs(th.kappa, kappa))
    v, r = np.zeros(n), b.copy()
    direction, ratios = r.copy(), []
    for k in range(1, 61):
        Ap = lam * direction
        alpha = (r @ r) / (direction @ Ap)
        v, r_new = v + alpha * direction, r - alpha * Ap
        direction = r_new + (r_new @ r_new) / (r @ r) * direction
        r = r_new
        ratios.append(h(v - v_star) / (2 * rho**k * h(v_star)))
    assert max(ratios) <= 1 + 1e-9 and max(ratios[-10:]) > 0.1  # a bound, and nearly tight


def test_bda_asymptotic_rate() -> None:
    exact, asymptotic = get("bda/aggregation-error").expression, get("bda/aggregation-rate")
    values = {th.a: 0.6, th.s_u: 1.0}
    ratios = [
        float((exact / asymptotic.expression).subs({**values, th.K: k}).evalf(30))
        for k in (10, 1000, 100000)
    ]
    assert abs(ratios[-1] - 1) < 1e-4 and abs(ratios[-1] - 1) < abs(ratios[0] - 1)


def test_ufom_expected_cost_matches_the_budget_normalisation() -> None:
    """commands.py: meta_iters = 100000 * 45 / (9 + 36 q) for r = 8, i.e. C_det + q C_rnd with
    C_det = r + 1 = 9 and C_rnd = r(r-1)/2 + r = 36 (spec 4.2)."""
    r = 8
    cost = get("ufom/expected-cost").expression.subs(
        {th.C_det: r + 1, th.C_rnd: r * (r - 1) // 2 + r}
    )
    assert sp.simplify(cost - (9 + 36 * th.q_level)) == 0
