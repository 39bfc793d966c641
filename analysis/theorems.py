r"""The theorem registry: the seeds' complexities, rates and conditions as sympy objects.

Each ``Entry`` carries its provenance: the paper (and a BibTeX key), the theorem or equation, the
assumptions, the expression, the spec's evidence tag ([abs] read in the abstract, [code] read in
the official code, [derived] derived and checked here, [recall] / [substitute] reconstructions,
[text] second-hand text) and a one-line statement. Complexity entries also carry the stationarity
convention: ``"squared"`` (||grad Phi||^2 <= eps) or ``"norm"`` (||grad Phi|| <= eps);
``convert_convention`` moves a bound between the two (eps -> eps^2 or eps -> sqrt(eps)).

Complexities are monomials in positive symbols (kappa, eps, N, ...) times explicit log factors;
``exponents`` reads the powers with ``as_powers_dict`` (never ``sympy.O``, which drops kappa).
Spec: ``../shared/spec/algorithms.md`` (sections cited per entry).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

kappa, eps, delta, N = sp.symbols("kappa epsilon delta N", positive=True)
mu, L, eta, p, q_level = sp.symbols("mu L eta p q", positive=True)
mu_x, mu_y, kappa_y = sp.symbols("mu_x mu_y kappa_y", positive=True)
C0, K, a, s_u = sp.symbols("C_0 K a s_u", positive=True)
lam = sp.Symbol("lambda", positive=True)
V2, D2, C_det, C_rnd = sp.symbols("V^2 D^2 C_det C_rnd", positive=True)
d_x, d_y = sp.symbols("d_x d_y", integer=True, positive=True)
A_m, P_m = sp.MatrixSymbol("A", d_y, d_y), sp.MatrixSymbol("P", d_y, d_y)
B_m, S_m = sp.MatrixSymbol("B", d_y, d_x), sp.MatrixSymbol("S", d_x, d_y)
g_star = sp.MatrixSymbol("g^*", d_y, 1)  # grad_y f at (x, y*(x))

EVIDENCE = ("abs", "code", "derived", "recall", "substitute", "text")
CONVENTIONS = ("squared", "norm")
KINDS = ("complexity", "lower-bound", "rate", "condition", "estimator")


@dataclass(frozen=True)
class Entry:
    id: str
    paper: str
    cite_key: str
    where: str
    kind: str
    statement: str
    expression: sp.Expr
    evidence: str
    assumptions: tuple[str, ...] = ()
    convention: str | None = None  # complexity / lower-bound entries only
    oracle: str | None = None
    notes: str = ""
    tags: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.evidence not in EVIDENCE:
            raise ValueError(f"{self.id}: evidence must be one of {EVIDENCE}")
        if self.kind not in KINDS:
            raise ValueError(f"{self.id}: kind must be one of {KINDS}")
        needs_convention = self.kind in ("complexity", "lower-bound")
        if needs_convention and self.convention not in CONVENTIONS:
            raise ValueError(f"{self.id}: a complexity needs a convention in {CONVENTIONS}")


def convert_convention(expression: sp.Expr, source: str, target: str) -> sp.Expr:
    """A complexity for ||grad||^2 <= eps ("squared") restated for ||grad|| <= eps ("norm") by
    eps -> eps^2, and back by eps -> sqrt(eps) (the two are inverse substitutions)."""
    if source not in CONVENTIONS or target not in CONVENTIONS:
        raise ValueError(f"conventions must be in {CONVENTIONS}, got {source!r}, {target!r}")
    if source == target:
        return expression
    replacement = eps**2 if source == "squared" else sp.sqrt(eps)
    return sp.powsimp(sp.expand_log(expression.subs(eps, replacement), force=True), force=True)


def exponents(expression: sp.Expr) -> dict[sp.Symbol, sp.Rational]:
    """Powers of the symbols of a monomial complexity (log factors and constants dropped)."""
    powers: dict[sp.Symbol, sp.Rational] = {}
    for factor in sp.Mul.make_args(sp.powsimp(expression, force=True)):
        if factor.has(sp.log) or factor.is_number:
            continue
        for base, power in factor.as_powers_dict().items():
            if isinstance(base, sp.Symbol):
                powers[base] = powers.get(base, sp.Integer(0)) + sp.nsimplify(power)
    return powers


def log_factors(expression: sp.Expr) -> list[sp.Expr]:
    """The log factors of a complexity (the tilde of O-tilde)."""
    return [f for f in sp.Mul.make_args(expression) if f.has(sp.log)]


def _cx(
    id_: str,
    paper: str,
    key: str,
    where: str,
    statement: str,
    expr: sp.Expr,
    evidence: str,
    convention: str,
    oracle: str | None = None,
    kind: str = "complexity",
    **kw,
) -> Entry:
    return Entry(
        id_,
        paper,
        key,
        where,
        kind,
        statement,
        expr,
        evidence,
        convention=convention,
        oracle=oracle,
        **kw,
    )


JI21 = ("Ji, Yang & Liang 2021", "ji2021bilevel")
HUANG = ("Huang 2023 (MGBiO)", "huang2023momentum")
JL23 = ("Ji & Liang 2023", "ji2023lower")
SC_SC = ("strongly convex upper level", "strongly convex lower level")

COMPLEXITIES: tuple[Entry, ...] = (
    *(
        _cx(
            f"aid-bio/{o}",
            *JI21,
            "Thm (AID-BiO), spec 6.2",
            f"AID-BiO {o} calls",
            e,
            "recall",
            "squared",
            o,
            assumptions=("lower level mu-strongly convex", "smooth f, g"),
        )
        for o, e in (
            ("Gc(f)", kappa**3 / eps),
            ("Gc(g)", kappa**4 / eps),
            ("JV", kappa**3 / eps),
            ("HV", kappa ** sp.Rational(7, 2) / eps),
        )
    ),
    *(
        _cx(
            f"itd-bio/{o}",
            *JI21,
            "Thm (ITD-BiO), spec 6.3",
            f"ITD-BiO {o} calls",
            e,
            "recall",
            "squared",
            o,
            assumptions=("lower level mu-strongly convex", "smooth f, g"),
        )
        for o, e in (
            ("Gc(f)", kappa**3 / eps),
            ("Gc(g)", kappa**4 / eps * sp.log(1 / eps)),
            ("JV", kappa**4 / eps * sp.log(1 / eps)),
            ("HV", kappa**4 / eps * sp.log(1 / eps)),
        )
    ),
    *(
        _cx(
            f"stocbio/{o}",
            *JI21,
            "Thm (stocBiO), spec 6.4",
            f"stocBiO {o} samples",
            e,
            "recall",
            "squared",
            o,
            assumptions=("stochastic f, g", "lower level strongly convex"),
        )
        for o, e in (
            ("Gc(F)", kappa**5 / eps**2),
            ("Gc(G)", kappa**9 / eps**2),
            ("JV", kappa**5 / eps**2),
            ("HV", kappa**6 / eps**2 * sp.log(kappa / eps)),
        )
    ),
    *(
        _cx(
            id_,
            *HUANG,
            where,
            statement,
            expr,
            "abs",
            "norm",
            oracle,
            assumptions=("lower level PL",),
        )
        for id_, where, statement, expr, oracle in (
            (
                "mgbio/gradients",
                "abstract, spec 3.1",
                "MGBiO gradient complexity",
                eps**-2,
                "gradient",
            ),
            (
                "mgbio/previous-deterministic",
                "abstract (improvement by eps^-1), spec 3.1",
                "previous best deterministic PL bilevel complexity",
                eps**-3,
                "gradient",
            ),
            (
                "msgbio/samples",
                "abstract, spec 3.1",
                "MSGBiO sample complexity",
                eps**-4 * sp.log(1 / eps),
                "sample",
            ),
            (
                "vr-msgbio/samples",
                "abstract, spec 3.1",
                "VR-MSGBiO sample complexity",
                eps**-3 * sp.log(1 / eps),
                "sample",
            ),
        )
    ),
    _cx(
        "lower-bound/sc-sc",
        *JL23,
        "abstract, spec 6.6",
        "SC-SC lower bound (second-order oracles)",
        1 / (sp.sqrt(mu_x) * mu_y) * sp.log(1 / eps),
        "abs",
        "norm",
        "HV/JV",
        kind="lower-bound",
        assumptions=SC_SC,
    ),
    _cx(
        "accbio/upper-bound-sc-sc",
        *JL23,
        "abstract, spec 6.6",
        "AccBiO SC-SC upper bound, matching the lower bound up to logarithms",
        1 / (sp.sqrt(mu_x) * mu_y) * sp.log(1 / eps),
        "abs",
        "norm",
        "HV/JV",
        assumptions=(*SC_SC, "inner problem quadratic", "constant inner condition number"),
        notes="the abstract's optimality statement; the general upper bound (SC-SC, C-SC, "
        "NC-SC) was not retrieved. Measured by lower-bounds/accbio-zero-chain: AccBiO's error "
        "lies between the zero-chain lower bound and Nesterov's accelerated upper bound",
    ),
    _cx(
        "lower-bound/c-sc",
        *JL23,
        "abstract, spec 6.6",
        "C-SC lower bound, regime 1/mu_y <= eps^-1.5",
        1 / (sp.sqrt(eps) * mu_y) * sp.log(1 / eps),
        "abs",
        "norm",
        "HV/JV",
        kind="lower-bound",
        assumptions=("convex upper level", "strongly convex lower"),
    ),
    _cx(
        "lower-bound/nc-sc-chen-zhang",
        "Chen & Zhang 2025 (later)",
        "chen2025lower",
        "abstract, spec 6.6 (later bound)",
        "NC-SC lower bound (later work)",
        kappa_y ** sp.Rational(5, 2) / eps**2,
        "abs",
        "norm",
        "first-order",
        kind="lower-bound",
    ),
    _cx(
        "lower-bound/nc-sc-ji-2025",
        "Ji 2025 (later)",
        "ji2025lower",
        "Thm 1, spec 6.6 (later bound)",
        "NC-SC lower bound, first-order zero-respecting (later work)",
        kappa ** sp.Rational(3, 2) / eps**2,
        "text",
        "norm",
        "first-order",
        kind="lower-bound",
    ),
    _cx(
        "maml/steps",
        "Ji, Yang & Liang 2022 (MAML)",
        "ji2022maml",
        "abstract, spec 6.7",
        "multi-step MAML complexity grows linearly in the inner steps N",
        N / eps**2,
        "abs",
        "squared",
        "gradient",
        assumptions=("inner step ~ 1/(N L)",),
        notes="only the linear growth in N is sourced; the eps power is the nonconvex default",
    ),
)

RATES: tuple[Entry, ...] = (
    Entry(
        "gd/contraction",
        "spec 7.3, 7.12",
        "spec",
        "7.12",
        "rate",
        "GD (ITD) on a mu-strongly convex L-smooth quadratic contracts by max|1 - eta lambda|",
        sp.Max(sp.Abs(1 - eta * mu), sp.Abs(1 - eta * L)),
        "derived",
        ("0 < eta < 2/L",),
    ),
    Entry(
        "neumann/contraction",
        "spec 7.4",
        "spec",
        "7.4",
        "rate",
        "the Neumann series error contracts like the GD iteration matrix",
        sp.Max(sp.Abs(1 - eta * mu), sp.Abs(1 - eta * L)),
        "derived",
        ("0 < eta < 2/L",),
    ),
    Entry(
        "cg/contraction",
        "Hestenes & Stiefel 1952",
        "hestenes1952",
        "spec 7.6",
        "rate",
        "CG's error in the H-norm contracts by (sqrt(kappa) - 1)/(sqrt(kappa) + 1)",
        (sp.sqrt(kappa) - 1) / (sp.sqrt(kappa) + 1),
        "derived",
    ),
    Entry(
        "gd/iterations-to-delta",
        "spec 7.12",
        "spec",
        "7.12",
        "rate",
        "GD / Neumann steps (eta = 1/L) to bring C_0 below delta",
        sp.ceiling(sp.log(C0 / delta) / -sp.log(1 - 1 / kappa)),
        "derived",
        ("delta < C_0",),
    ),
    Entry(
        "cg/iterations-to-delta",
        "spec 7.12",
        "spec",
        "7.12",
        "rate",
        "CG steps to bring 2 sqrt(kappa) C_0 rho^K below delta (an upper bound)",
        sp.ceiling(
            sp.log(2 * sp.sqrt(kappa) * C0 / delta)
            / -sp.log((sp.sqrt(kappa) - 1) / (sp.sqrt(kappa) + 1))
        ),
        "derived",
    ),
    Entry(
        "bda/aggregation-error",
        "Liu et al. 2020 (BDA)",
        "liu2020bda",
        "spec 7.10",
        "rate",
        "BDA's aggregation error with alpha_k = a/(k+1): e_K / e_0 = prod_k (1 - a s_u/(k+1))",
        sp.gamma(K + 1 - a * s_u) / (sp.gamma(1 - a * s_u) * sp.gamma(K + 1)),
        "derived",
        ("0 < a s_u < 1",),
        notes="~ K^(-a s_u) / Gamma(1 - a s_u)",
    ),
    Entry(
        "hyperobjective/smoothness",
        *JI21,
        "spec 6.1",
        "rate",
        "the hyper-objective is L_Phi-smooth with L_Phi = Theta(kappa^3)",
        kappa**3,
        "recall",
    ),
)

ESTIMATORS: tuple[Entry, ...] = (
    Entry(
        "rt/finite-variance",
        "Ghadimi & Wang 2018",
        "ghadimi2018",
        "spec 7.7, VERIFICATION.md 2",
        "condition",
        "randomized truncation with P(N >= q) = (1-p)^q has finite variance iff this is < 1",
        (1 - eta * mu) ** 2 / (1 - p),
        "derived",
        ("eta <= 1/L",),
    ),
    Entry(
        "stocbio/expectation-bias",
        *JI21,
        "spec 6.4, 7.7",
        "estimator",
        "stocBiO's Q+1-term Neumann sum with fresh batches has bias factor (1 - eta mu)^(Q+1)",
        (1 - eta * mu) ** (q_level + 1),
        "derived",
        ("independent Hessian batches",),
    ),
)

UFOM = ("Debiasing a first-order heuristic (UFOM)", "ufom")
#: the toy script's q*: the root in (0, 1) of 2 C_rnd (V^2 - D^2) q^2 + C_rnd D^2 q - C_det D^2
UFOM_Q_STAR = (-C_rnd * D2 + sp.sqrt(C_rnd**2 * D2**2 + 8 * C_rnd * (V2 - D2) * C_det * D2)) / (
    4 * C_rnd * (V2 - D2)
)

ESTIMATORS += (
    Entry(
        "fo-itd/bias",
        "spec 7.3",
        "spec",
        "7.3",
        "estimator",
        "FO-ITD (Jacobian dropped) keeps the bias -B^T A^-1 g* whatever T",
        -B_m.T * A_m.I * g_star,
        "derived",
        ("quadratic instance (spec 7.1)",),
    ),
    Entry(
        "penalty/leading-bias",
        "Minimax reformulation (MinimaxOPT)",
        "minimaxopt",
        "spec 7.8",
        "estimator",
        "the penalty / minimax hypergradient's bias, to first order in 1/lambda",
        -(S_m * A_m.I + B_m.T * A_m.I * P_m * A_m.I) * g_star / lam,
        "derived",
        ("quadratic instance", "P + lambda A positive definite"),
    ),
    Entry(
        "ufom/second-moment",
        *UFOM,
        "spec 4.2, 7.9",
        "estimator",
        "UFOM's second moment: ||g_ex||^2 + (1/q - 1) ||g_ex - g_FO||^2 (V^2, D^2 their sups)",
        V2 + (1 / q_level - 1) * D2,
        "derived",
        ("xi ~ Bernoulli(q)",),
    ),
    Entry(
        "ufom/cost-times-deviation",
        *UFOM,
        "spec 4.3 (toy.py)",
        "estimator",
        "expected cost per step times the root second moment, minimised by q*",
        (C_det + q_level * C_rnd) * sp.sqrt(V2 + (1 / q_level - 1) * D2),
        "derived",
    ),
    Entry(
        "ufom/optimal-q",
        *UFOM,
        "spec 4.3 (toy.py simulate_bounds)",
        "estimator",
        "q* in (0, 1) when D^2 < 2 C_rnd V^2 / (C_det + C_rnd), else 1",
        UFOM_Q_STAR,
        "code",
    ),
    Entry(
        "gda/linear-convergence",
        "Minimax reformulation (MinimaxOPT)",
        "minimaxopt",
        "spec 2.4(b)",
        "condition",
        "simultaneous GDA at fixed lambda converges linearly iff rho(M_GDA) < 1 "
        "(QuadraticBilevel.gda_iteration builds M_GDA)",
        sp.Function("rho")(sp.Symbol("M_GDA")),
        "derived",
        ("quadratic instance",),
    ),
)

alpha, r_steps, M_ref = sp.symbols("alpha r M", positive=True)
a_1, a_2, b_1, b_2 = sp.symbols("a_1 a_2 b_1 b_2", positive=True)
tau_, rho_hess, M_f = sp.symbols("tau rho_H M_f", positive=True)
L_Phi = L + (2 * L**2 + tau_ * M_f**2) / mu + (rho_hess * L * M_f + L**3 + tau_ * M_f * L) / mu**2
L_Phi += rho_hess * L**2 * M_f / mu**3


def _toy_stationary(power: sp.Expr) -> sp.Expr:
    weights = [(1 - alpha * ai) ** power for ai in (a_1, a_2)]
    return (weights[0] * b_1 + weights[1] * b_2) / (weights[0] * a_1 + weights[1] * a_2)


ESTIMATORS += (
    Entry(
        "ufom/expected-cost",
        *UFOM,
        "spec 4.2 (commands.py budget)",
        "estimator",
        "UFOM's expected cost per meta-step: C_det + q C_rnd gradient calls",
        C_det + q_level * C_rnd,
        "code",
        ("C_det = r + 1, C_rnd = r(r-1)/2 + r",),
    ),
    Entry(
        "stocbio/reference-code-sum",
        *JI21,
        "spec 6.4 (official stocBiO.py)",
        "estimator",
        "the official code's single-batch sum eta M^Q v0 + sum_{k=1}^Q M^k v0, M = 1 - eta h "
        "(scalar form), which tends to v0/(eta h) - v0, not v0/h",
        eta * M_ref**q_level + M_ref * (1 - M_ref**q_level) / (1 - M_ref),
        "derived",
        ("one Hessian batch reused",),
        notes="times v0; M = 1 - eta h",
    ),
    Entry(
        "maml/exact-stationary-point",
        *UFOM,
        "spec 7.9 (1-D toy)",
        "estimator",
        "MAML's stationary point of the two-task 1-D toy with r inner steps",
        _toy_stationary(2 * r_steps),
        "derived",
        ("two tasks, probability 1/2 each",),
    ),
    Entry(
        "fom/stationary-point",
        *UFOM,
        "spec 7.9 (1-D toy)",
        "estimator",
        "FOM's fixed point of the same toy: different unless the tasks are homogeneous",
        _toy_stationary(r_steps),
        "derived",
        ("two tasks, probability 1/2 each",),
    ),
    Entry(
        "anil/cheaper-than-maml",
        "Ji et al. 2020 (ANIL)",
        "ji2020anil",
        "abstract, spec 6.7",
        "condition",
        "ANIL's complexity is below MAML's (gradient and second-order calls)",
        sp.StrictLessThan(sp.Symbol("C_ANIL"), sp.Symbol("C_MAML")),
        "abs",
    ),
)

RATES += (
    Entry(
        "bda/aggregation-rate",
        "Liu et al. 2020 (BDA)",
        "liu2020bda",
        "spec 7.10",
        "rate",
        "asymptotically e_K / e_0 ~ K^(-a s_u) / Gamma(1 - a s_u): sublinear",
        K ** (-a * s_u) / sp.gamma(1 - a * s_u),
        "derived",
        ("0 < a s_u < 1",),
    ),
    Entry(
        "hyperobjective/smoothness-constant",
        *JI21,
        "spec 6.1",
        "rate",
        "L_Phi in terms of L, M (bound on grad_y f), rho (Hessian Lipschitz), tau, mu",
        L_Phi,
        "recall",
        ("lower level mu-strongly convex", "Lipschitz Hessians"),
    ),
)

RATES += (
    Entry(
        "soba/single-loop",
        "Dagreou, Ablin, Vaiter & Moreau 2022 (SOBA)",
        "dagreou2022framework",
        "Algorithm 1; Theorem 1",
        "rate",
        "decreasing steps rho_k ~ k^(-2/5), gamma_k ~ k^(-3/5): (1/K) sum E||grad h(x_k)||^2 = "
        "O(K^(-2/5)); without noise the update's fixed point has grad Phi(x) = 0 (D_y = 0 gives "
        "y = y*(x), D_v = 0 gives v = H^-1 grad_y f, D_x = 0 gives grad Phi(x) = 0)",
        K ** sp.Rational(-2, 5),
        "recall",
        ("lower level strongly convex", "Lipschitz gradients and Hessians", "bounded variance"),
        notes="the fixed-point statement is derived from the update rule (checked by "
        "soba/stationary-point); the rate is recalled, not checked",
    ),
)

REGISTRY: tuple[Entry, ...] = (*COMPLEXITIES, *RATES, *ESTIMATORS)


def get(entry_id: str) -> Entry:
    for entry in REGISTRY:
        if entry.id == entry_id:
            return entry
    raise KeyError(f"no registry entry {entry_id!r}; see bilevel claims")


def in_convention(entry: Entry, convention: str) -> sp.Expr:
    """The entry's complexity in the given stationarity convention."""
    if entry.convention is None:
        raise ValueError(f"{entry.id} is not a complexity")
    return convert_convention(entry.expression, entry.convention, convention)


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "_": r"\_",
    "#": r"\#",
    "$": r"\$",
    "^": r"\^{}",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
}


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped (one pass: no escape is re-escaped)."""
    return "".join(_LATEX_SPECIAL.get(char, char) for char in text)


def latex_table(entries: tuple[Entry, ...] = REGISTRY) -> str:
    """A booktabs table: one row per entry, with the expression in math mode and a citation."""
    lines = [
        r"\begin{tabular}{llllll}",
        r"\toprule",
        r"id & expression & convention & evidence & source & statement \\",
        r"\midrule",
    ]
    for e in entries:
        source = rf"\cite{{{e.cite_key}}}, {latex_escape(e.where)}"
        lines.append(
            rf"{latex_escape(e.id)} & ${sp.latex(e.expression)}$ & {e.convention or '--'} & "
            rf"[{e.evidence}] & {source} & {latex_escape(e.statement)} \\"
        )
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def markdown_table(entries: tuple[Entry, ...] = REGISTRY) -> str:
    rows = [
        "| id | expression | convention | evidence | source | statement |",
        "|---|---|---|---|---|---|",
    ]
    for e in entries:
        cells = (
            e.id,
            f"${sp.latex(e.expression)}$",
            e.convention or "-",
            f"[{e.evidence}]",
            f"{e.paper}, {e.where}",
            e.statement,
        )
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"
