"""Ground-truth self-checks run by ``bilevel verify``.

Each check compares a closed form of ``bilevel.analysis`` with an independent computation
(``bilevel.proofs_checks.reference``) or proves an identity exactly, and states its tolerance
and where the tolerance comes from. A check returns a ``CheckResult``; the runner collects them
into the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import sympy as sp

from .reference import autograd_hypergradient, simulate_cg_exact, simulate_itd, simulate_neumann
from .slots import implementation

#: float64 comparisons against backward-stable references: c * kappa * u with kappa <= 1e4.
FLOAT_REL_TOL = 1e-10
#: bounds use float64 spectral constants (relative accuracy ~1e-13 at these sizes).
BOUND_SLACK = 1e-9


@dataclass(frozen=True)
class CheckResult:
    """One line of the report: what was checked, the expectation, the measurement, the verdict."""

    check: str
    source: str
    expected: str
    measured: str
    passed: bool
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SelfCheck:
    """A ground-truth check; ``slot`` names the closed forms it checks (``slots``)."""

    name: str
    source: str
    run: Callable[[], tuple[str, str, bool]]
    slot: str = "quadratic-bilevel"


def _quadratic():
    """The ``quadratic-bilevel`` slot's class (``bilevel.analysis.QuadraticBilevel``)."""
    return implementation("quadratic-bilevel")


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def _instance(kappa: float = 100.0, seed: int = 0):
    return _quadratic().random(d_x=3, d_y=5, kappa=kappa, seed=seed)


def _point(inst, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed + 1)
    return rng.standard_normal(inst.d_x), rng.standard_normal(inst.d_y)


def check_ift_symbolic() -> tuple[str, str, bool]:
    a, b, c = sp.symbols("a b c", real=True)
    s = sp.symbols("s0:4", real=True)
    inst = _quadratic()(
        A=sp.Matrix([[a, b], [b, c]]),
        B=sp.Matrix([s[0], s[1]]),
        c=sp.Matrix(sp.symbols("c0:2", real=True)),
        P=sp.Matrix([[s[2], s[3]], [s[3], s[2]]]),
        p=sp.Matrix(sp.symbols("p0:2", real=True)),
        R=sp.Matrix([[sp.Symbol("R0", real=True)]]),
        r=sp.Matrix([sp.Symbol("r0", real=True)]),
        S=sp.Matrix([sp.symbols("S0:2", real=True)]),
    )
    ok = inst.prove_hypergradient_identity()
    return "simplify(IFT - substitution) = 0", "0 (symbolic 2x2 A)", ok


def check_ift_exact() -> tuple[str, str, bool]:
    inst = _quadratic().random(d_x=6, d_y=6, kappa=1e4, seed=0)
    diff = inst.hypergradient() - inst.hypergradient_by_substitution()
    nonzero = sum(sp.expand(v) != 0 for v in diff)
    return "0 nonzero entries (exact rationals, d=6)", f"{nonzero} nonzero entries", nonzero == 0


def check_autograd() -> tuple[str, str, bool]:
    worst = 0.0
    for kappa in (1.0, 1e2, 1e4):
        inst = _instance(kappa)
        x, _ = _point(inst)
        ref = autograd_hypergradient(inst.as_numpy(), x)
        worst = max(worst, _rel(inst.hypergradient(backend="numpy")(x), ref))
    return f"rel err <= {FLOAT_REL_TOL:g}", f"{worst:.2e}", worst <= FLOAT_REL_TOL


#: per step-size family: closed form, boxed error, bound (``QuadraticBilevel`` methods called as
#: ``(n, step, y, backend=...)``) and the independent simulation of the same procedure.
STEP_FAMILIES = {
    "itd": ("itd_hypergradient", "itd_error", "itd_error_bound", simulate_itd),
    "neumann": ("neumann_hypergradient", "neumann_error", "neumann_error_bound", simulate_neumann),
}


def estimator_outputs(
    inst,
    blocks: dict,
    kind: str,
    n: int,
    step: float,
    x: np.ndarray,
    y: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(closed form, simulation, boxed error, bound) of ``kind`` ("itd", "neumann", "cg") at
    n steps; ITD starts from y, Neumann and CG are evaluated at y (CG ignores ``step``)."""
    if kind == "cg":
        return (
            inst.cg_hypergradient(n, y, backend="numpy")(x),
            simulate_cg_exact(blocks, x, y, n),
            inst.cg_error(n, y, backend="numpy")(x),
            inst.cg_error_bound(n, y, backend="numpy")(x),
        )
    estimate, error, bound, simulate = STEP_FAMILIES[kind]
    return (
        getattr(inst, estimate)(n, step, y, backend="numpy")(x),
        simulate(blocks, x, y, n, step),
        getattr(inst, error)(n, step, y, backend="numpy")(x),
        getattr(inst, bound)(n, step, y, backend="numpy")(x),
    )


def _estimator_check(kind: str) -> tuple[str, str, bool]:
    worst_sim, worst_ratio = 0.0, 0.0
    for kappa in (1.0, 1e2, 1e4):
        inst = _instance(kappa)
        x, y = _point(inst)
        b, truth = inst.as_numpy(), inst.hypergradient(backend="numpy")(x)
        step = 1.0 / float(inst.constants.L)
        for n in (0, 1, 3, 5, 10, 30) if kind != "cg" else range(inst.d_y + 1):
            est, sim, err, bound = estimator_outputs(inst, b, kind, n, step, x, y)
            scale = max(np.linalg.norm(truth), np.linalg.norm(est))
            worst_sim = max(worst_sim, float(np.linalg.norm(est - sim) / scale))
            # float64 constants put q off by ~kappa u (absolute): slack 1e-12 * scale
            slack = 1e-12 * (scale + np.linalg.norm(y) + 1.0)
            worst_ratio = max(worst_ratio, float(np.linalg.norm(err) / (bound + slack)))
    tol = 4e-16 * 5 if kind == "cg" else FLOAT_REL_TOL
    ok = worst_sim <= tol and worst_ratio <= 1 + BOUND_SLACK
    expected = f"|closed - simulated| <= {tol:g}; err/bound <= 1"
    return expected, f"{worst_sim:.2e}; max err/bound {worst_ratio:.3f}", ok


def check_itd_neumann_identity() -> tuple[str, str, bool]:
    inst = _instance(100.0)
    step = sp.Rational(1, 2 * int(np.ceil(float(inst.constants.L))))
    ok = all(inst.prove_itd_neumann_identity(T, step) for T in (0, 1, 5))
    return "ITD(T) - Neumann(T) at y_T = 0 exactly", "0 for T = 0, 1, 5", ok


def penalty_bias_reference(b: dict, x: np.ndarray, lam: float) -> np.ndarray:
    """The penalty reformulation's bias computed from its definition in numpy: the x-gradient
    of L*_lam(x) = min_y f + lam (g(x, y) - min_z g(x, z)) at its saddle, y_lam = (P + lam A)^-1
    (lam (B x + c) - p - S^T x), z = y* = A^-1 (B x + c), minus grad Phi(x) (IFT). With
    g = 1/2 y^T A y - y^T (B x + c), grad_x g(x, y) = -B^T y."""
    rhs = b["B"] @ x + b["c"]
    y_star = np.linalg.solve(b["A"], rhs)
    y_lam = np.linalg.solve(b["P"] + lam * b["A"], lam * rhs - b["p"] - b["S"].T @ x)
    grad_x_f = b["R"] @ x + b["r"]
    direction = grad_x_f + b["S"] @ y_lam + lam * (-b["B"].T @ y_lam + b["B"].T @ y_star)
    grad_y_f = b["P"] @ y_star + b["p"] + b["S"].T @ x
    grad_phi = grad_x_f + b["S"] @ y_star + b["B"].T @ np.linalg.solve(b["A"], grad_y_f)
    return direction - grad_phi


def check_penalty_bias() -> tuple[str, str, bool]:
    inst = _instance(10.0)
    x, _ = _point(inst)
    k = inst.constants
    blocks = {key: np.asarray(v, dtype=float) for key, v in inst.as_numpy().items()}
    blocks = {key: v.ravel() if key in ("c", "p", "r") else v for key, v in blocks.items()}
    lam0 = 2 * float(k.norm_P / k.mu) + 1
    lams = [lam0 * 10**j for j in range(4)]
    closed = [np.asarray(inst.penalty_error(lam, backend="numpy")(x)).ravel() for lam in lams]
    references = [penalty_bias_reference(blocks, x, lam) for lam in lams]
    # the reference forms lam (y* - y_lam) from two solves, each good to ~kappa u ||y||: its own
    # absolute error is below 10 lam kappa u ||B|| (||y*|| + 1), which bounds the comparison
    y_star = np.linalg.solve(blocks["A"], blocks["B"] @ x + blocks["c"])
    scale = float(k.kappa) * float(np.linalg.norm(blocks["B"], 2)) * (np.linalg.norm(y_star) + 1)
    unit = np.finfo(np.float64).eps / 2
    gaps = [
        float(np.linalg.norm(c - r)) / (10 * lam * scale * unit)
        for lam, c, r in zip(lams, closed, references, strict=True)
    ]
    worst = max(gaps)
    scaled = [lam * np.linalg.norm(c) for lam, c in zip(lams, closed, strict=True)]
    bounds_ok = all(
        np.linalg.norm(c) <= inst.penalty_error_bound(lam, backend="numpy")(x) * (1 + BOUND_SLACK)
        for lam, c in zip(lams, closed, strict=True)
    )
    flat = abs(scaled[-1] / scaled[-2] - 1) < 0.01
    measured = f"|closed - definition| / envelope <= {worst:.2g}; lam*||bias|| = " + ", ".join(
        f"{v:.4g}" for v in scaled
    )
    expected = (
        "closed form = numpy definition within 10 lam kappa u ||B|| (||y*|| + 1); "
        "lam*||bias|| -> const; bias <= bound"
    )
    return expected, measured, worst <= 1 and bounds_ok and flat


def check_pl_game() -> tuple[str, str, bool]:
    game = implementation("pl-game").random(m=4, d_x=2, d_y=4, rank=2, seed=0)
    ok = (
        game.prove_surrogate_selection_invariance()
        and game.prove_surrogate_is_gd_selection_gradient(np.ones(4))
    )
    return (
        "surrogate invariant on S(x); = grad along GD selection",
        f"proven; PL mu = sigma_min+^2 = {game.pl_constant():.4g}",
        ok,
    )


def check_scalar_pl() -> tuple[str, str, bool]:
    """The class's empirical PL constant >= the certified 1/32, and equal to the minimum of
    1/2 h'^2 / h with h' differentiated by sympy from h itself (an independent derivative) on
    the same grid, to 1e-12."""
    game = implementation("scalar-pl")()
    emp = game.pl_constant_empirical()
    u = sp.Symbol("u", real=True)
    h = game.h(u)
    ratio = sp.lambdify(u, sp.diff(h, u) ** 2 / (2 * h), "numpy")
    grid = np.linspace(-50.0, 50.0, 2_000_001)
    independent = float(ratio(grid[grid != 0.0]).min())
    ok = emp >= 1 / 32 and abs(emp - independent) <= 1e-12
    return (
        "min 1/2 h'^2 / h >= 1/32, = the sympy-derivative minimum",
        f"{emp:.4f} on [-50, 50] (independent {independent:.4f})",
        ok,
    )


SELF_CHECKS: tuple[SelfCheck, ...] = (
    SelfCheck("hypergradient: IFT == substitution (symbolic)", "spec 7.2", check_ift_symbolic),
    SelfCheck("hypergradient: IFT == substitution (exact, d=6)", "spec 7.2", check_ift_exact),
    SelfCheck("hypergradient: lambdified == torch autograd", "spec 7.2", check_autograd),
    SelfCheck(
        "ITD closed form == simulation; error <= bound", "spec 7.3", lambda: _estimator_check("itd")
    ),
    SelfCheck(
        "Neumann closed form == simulation; error <= bound",
        "spec 7.4",
        lambda: _estimator_check("neumann"),
    ),
    SelfCheck(
        "CG Krylov form == exact CG; error <= bound", "spec 7.6", lambda: _estimator_check("cg")
    ),
    SelfCheck("ITD(T) == Neumann(T) at y_T", "spec 7.5", check_itd_neumann_identity),
    SelfCheck("penalty reformulation bias O(1/lambda)", "spec 7.8", check_penalty_bias),
    SelfCheck("PL game surrogate hypergradient", "spec 7.11", check_pl_game, "pl-game"),
    SelfCheck(
        "scalar PL constant of y^2 + 3 sin^2 y", "Karimi et al. 2016", check_scalar_pl, "scalar-pl"
    ),
)


def run_self_check(check: SelfCheck) -> CheckResult:
    """Run one self-check; an exception is a failed check whose message is the measurement."""
    start = time.perf_counter()
    try:
        expected, measured, passed = check.run()
    except Exception as exc:  # a crash is reported as a failure, not hidden
        expected, measured, passed = "runs", f"{type(exc).__name__}: {exc}", False
    return CheckResult(
        check.name, check.source, expected, measured, bool(passed), time.perf_counter() - start
    )
