"""Fuzzing of the public entry points (issue 10): every call returns a finite result of the right
shape and dtype or raises a documented exception whose message names what was wrong.

Documented exceptions: ``ValueError`` / ``TypeError`` (bad input, found before any work),
``FloatingPointError`` (NaN/inf produced at a named step), and for comparators
``AssertionError`` (the claim refuted, with its statistic). Anything else (``RuntimeError`` from
inside torch, ``IndexError``, ``AttributeError``, a NaN result) is a bug this file finds.
The number of examples per test is ``FUZZ_EXAMPLES`` (recorded in the closing note).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bilevel.proofs_checks import cli
from bilevel.proofs_checks.comparators import (
    assert_close_to_closed_form,
    assert_expectation_exact,
    assert_unbiased,
    assert_unbiased_sequential,
)
from bilevel.proofs_checks.statistics import ledger
from bilevel.solvers import (
    BDA,
    FSLA,
    SOBA,
    AccBiO,
    AIDBiO,
    ITDBiO,
    MGBiO,
    MinimaxGDA,
    MSGBiO,
    StocBiO,
    VRMSGBiO,
    hypergradient,
    registry,
)

FUZZ_EXAMPLES = 300
DOCUMENTED = (ValueError, TypeError, FloatingPointError)
#: words a documented error message must contain at least one of: the argument or the quantity
NAMES = re.compile(
    r"\b(x|y|v0|outer|inner|method|steps|lr|p|mu|tol|checkpoint|inner_steps|inner_lr|"
    r"outer_lr|neumann_lr|solver_lr|lam|eta_[xyz]|momentum|aggregation|kappa_y|"
    r"Hessian|curvature|detectable_bias|alpha|beta|target|sample|condition_number|"
    r"option|lr_[a-z]+|[a-z]+_lr|measured|predicted|probabilities|outcomes|"
    r"[A-Za-z_-]+ (iterate|term|residual))\b"
)

# ------------------------------------------------------------------ inputs


poisons = st.sampled_from([None, None, None, "nan", "inf"])


def _curvature(y: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "indefinite":
        return torch.where(torch.arange(y.numel()) % 2 == 0, 1.0, -1.0).to(y.dtype).reshape(y.shape)
    return torch.ones_like(y) * (0.0 if kind == "flat" else 1.0)


def _inner(kind: str):
    if kind == "none":
        return None
    if kind == "vector":
        return lambda x, y: y * x.sum()
    if kind == "float":
        return lambda x, y: 1.0
    if kind == "one-argument":
        return lambda y: (y**2).sum()
    return lambda x, y: 0.5 * (_curvature(y, kind) * y * y).sum() - y.sum() * x.sum()


def outer(x, y):
    return 0.5 * (y * y).sum() + 0.5 * (x * x).sum()


def _check_documented(error: BaseException) -> None:
    assert isinstance(error, DOCUMENTED), f"undocumented {type(error).__name__}: {error}"
    message = str(error)
    assert message and NAMES.search(message), f"message names nothing: {message!r}"
    event(f"raised {type(error).__name__}")


# ------------------------------------------------------------------ hypergradient
#
# Each example starts from a valid call and applies at most one mutation (half of the examples
# none), so that both the result path and every kind of refusal are exercised.

VALID_OPTIONS = {
    "exact": {},
    "fo": {},
    "cg": {"steps": 5, "tol": None},
    "neumann": {"steps": 5, "lr": 0.5},
    "rt": {"p": 0.5, "lr": 0.5, "mu": 1.0},  # (1 - lr mu)^2 = 0.25 < 1 - p: finite variance
    "itd": {"steps": 5, "lr": 0.5, "checkpoint": "sqrt"},
    "stocbio": {"steps": 5, "lr": 0.5, "sampler": lambda generator: None},
}
BAD_OPTION_VALUES = {
    "steps": [-3, 2.5, "3", None, True],
    "lr": [-1.0, 0.0, math.nan, math.inf, "0.1"],
    "p": [-0.5, 0.0, 1.0, math.nan],
    "mu": [-1.0, 0.0],
    "checkpoint": ["bogus", 0, -1, 2.5],
    "tol": [-1.0, math.nan],
}
BAD_TENSORS = {
    "empty": lambda dtype: torch.zeros(0, dtype=dtype),
    "int": lambda dtype: torch.arange(3),
    "nan": lambda dtype: torch.tensor([0.5, math.nan, 1.0], dtype=dtype),
    "inf": lambda dtype: torch.tensor([math.inf, 1.0], dtype=dtype),
    "not a tensor": lambda dtype: [1.0, 2.0],
    "other dtype": lambda dtype: torch.ones(3, dtype=torch.float16),
}
MUTATIONS = ["none"] * 8 + ["x", "y", "inner", "option", "unknown option", "method"]


@st.composite
def hypergradient_calls(draw):
    method = draw(st.sampled_from(sorted(VALID_OPTIONS)))
    dtype = draw(st.sampled_from([torch.float64, torch.float32]))
    x_shape = draw(st.sampled_from([(1,), (3,), (2, 2), ()]))
    y_shape = draw(st.sampled_from([(1,), (4,), (2, 3)]))
    x = torch.linspace(-1.0, 1.0, math.prod(x_shape), dtype=dtype).reshape(x_shape)
    y = torch.linspace(0.5, -0.5, math.prod(y_shape), dtype=dtype).reshape(y_shape)
    options, inner_kind = dict(VALID_OPTIONS[method]), "pd"
    mutation = draw(st.sampled_from(MUTATIONS))
    if mutation == "x":
        x = BAD_TENSORS[draw(st.sampled_from(sorted(BAD_TENSORS)))](dtype)
    elif mutation == "y":
        y = BAD_TENSORS[draw(st.sampled_from(sorted(BAD_TENSORS)))](dtype)
    elif mutation == "inner":
        inner_kind = draw(st.sampled_from(["indefinite", "flat", "vector", "float",
                                           "one-argument", "none"]))  # fmt: skip
    elif mutation == "option":
        name = draw(st.sampled_from(sorted(BAD_OPTION_VALUES)))
        options[name] = draw(st.sampled_from(BAD_OPTION_VALUES[name]))
    elif mutation == "unknown option":
        options["stepz"] = 3
    elif mutation == "method":
        method = draw(st.sampled_from(["bogus", "", "CG", None]))
    return method, x, y, inner_kind, options, mutation


def _batched(fn):
    """``fn`` for the stochastic (x, y, batch) protocol; one of the wrong arity stays wrong."""
    if fn is None or fn.__code__.co_argcount != 2:
        return fn
    return lambda x, y, batch: fn(x, y)


def _objectives(method, inner_kind):
    inner = _inner(inner_kind)
    return (_batched(outer), _batched(inner)) if method == "stocbio" else (outer, inner)


@settings(max_examples=FUZZ_EXAMPLES)
@given(call=hypergradient_calls())
def test_hypergradient_returns_a_finite_result_or_a_documented_error(call):
    method, x, y, inner_kind, options, mutation = call
    f, g = _objectives(method, inner_kind)
    try:
        result = hypergradient(f, g, x, y, method=method, **options)
    except Exception as error:
        _check_documented(error)
        assert mutation != "none", f"a valid call was refused: {error}"
        return
    event("returned a result")
    assert isinstance(result, torch.Tensor)
    assert result.shape == x.shape and result.dtype == x.dtype
    assert bool(torch.isfinite(result).all())
    # a call that was made invalid must not return (the flat inner and the zero option values
    # that a method ignores are the exceptions: the refusal then happens in a method using them)
    if mutation in ("x", "y", "unknown option", "method"):
        pytest.fail(f"mutation {mutation} was accepted")


# ------------------------------------------------------------------ outer algorithms


def _algorithm(name: str, lr, steps, inner_fn):
    f, g = outer, inner_fn

    def sampler(generator):
        return None

    fb, gb = _batched(outer), _batched(inner_fn)

    gen = torch.Generator().manual_seed(0)
    builders = {
        "aid-bio": lambda: AIDBiO(outer=f, inner=g, inner_steps=steps, inner_lr=lr, outer_lr=lr),
        "itd-bio": lambda: ITDBiO(outer=f, inner=g, inner_steps=steps, inner_lr=lr, outer_lr=lr),
        "stocbio-bio": lambda: StocBiO(
            outer=fb,
            inner=gb,
            sampler=sampler,
            generator=gen,
            inner_steps=steps,
            inner_lr=lr,
            outer_lr=lr,
            solver_steps=steps,
            solver_lr=lr,
        ),
        "accbio": lambda: AccBiO(
            outer=f, inner=g, inner_steps=steps, inner_lr=lr, outer_lr=lr, kappa_y=10.0
        ),
        "fsla": lambda: FSLA(
            outer=fb,
            inner=gb,
            sampler=sampler,
            generator=gen,
            inner_lr=lr,
            outer_lr=lr,
            momentum=0.5,
        ),
        "minimax-gda": lambda: MinimaxGDA(
            outer=f, inner=g, penalty=5.0, outer_lr=lr, inner_lr=lr, auxiliary_lr=lr
        ),
        "mgbio": lambda: MGBiO(
            outer=f, inner=g, inner_lr=lr, solver_lr=lr, outer_lr=lr, momentum=0.5
        ),
        "msgbio": lambda: MSGBiO(
            outer=fb,
            inner=gb,
            sampler=sampler,
            generator=gen,
            inner_lr=lr,
            solver_lr=lr,
            outer_lr=lr,
        ),
        "vr-msgbio": lambda: VRMSGBiO(
            outer=fb,
            inner=gb,
            sampler=sampler,
            generator=gen,
            inner_lr=lr,
            solver_lr=lr,
            outer_lr=lr,
        ),
        "bda": lambda: BDA(
            outer=f, inner=g, inner_steps=steps, upper_lr=lr, inner_lr=lr, outer_lr=lr
        ),
        "soba": lambda: SOBA(
            outer=fb, inner=gb, sampler=sampler, generator=gen, inner_lr=lr, outer_lr=lr
        ),
    }
    return builders[name]()


#: outer algorithms of the registry fuzzed elsewhere, with the reason
FUZZED_ELSEWHERE = {"ufom-sgd": "meta-learning (x = theta, no y): tests/solvers/test_ufom.py"}
ALGORITHMS = [m for m in registry.ids("outer") if m not in FUZZED_ELSEWHERE]


def test_every_registered_outer_algorithm_is_fuzzed() -> None:
    """A new registry entry without a builder here fails (``_algorithm`` raises KeyError)."""
    for name in ALGORITHMS:
        assert _algorithm(name, 0.1, 3, _inner("pd")) is not None


@settings(max_examples=FUZZ_EXAMPLES)
@given(
    name=st.sampled_from(ALGORITHMS),
    mutation=st.sampled_from(["none"] * 6 + ["lr", "steps", "x", "y", "inner"]),
    bad=st.integers(0, 5),
    dtype=st.sampled_from([torch.float64, torch.float32]),
)
def test_outer_algorithms_return_finite_iterates_or_a_documented_error(name, mutation, bad, dtype):
    lr, steps = 0.1, 3
    x, y = torch.linspace(-1, 1, 3, dtype=dtype), torch.linspace(1, 2, 4, dtype=dtype)
    inner_kind = "pd"
    if mutation == "lr":
        lr = BAD_OPTION_VALUES["lr"][bad % 5]
    elif mutation == "steps":
        steps = BAD_OPTION_VALUES["steps"][bad % 5]
    elif mutation in ("x", "y"):
        bad_tensor = BAD_TENSORS[sorted(BAD_TENSORS)[bad]](dtype)
        x, y = (bad_tensor, y) if mutation == "x" else (x, bad_tensor)
    elif mutation == "inner":
        inner_kind = ["indefinite", "flat", "vector", "float", "one-argument", "none"][bad]
    try:
        algorithm = _algorithm(name, lr, steps, _inner(inner_kind))
        state = algorithm.init(x, y)
        for _ in range(3):
            state = algorithm.step(state)
    except Exception as error:
        _check_documented(error)
        assert mutation != "none", f"a valid run was refused: {error}"
        return
    event("returned a result")
    assert state.x.shape == x.shape and state.x.dtype == x.dtype
    assert bool(torch.isfinite(state.x).all()) and bool(torch.isfinite(state.y).all())
    if mutation in ("x", "y", "lr"):
        pytest.fail(f"mutation {mutation} was accepted")


# ------------------------------------------------------------------ comparators


def _rows(n: int, d: int, poison: str | None) -> np.ndarray:
    rows = np.random.default_rng(n * 7 + d).standard_normal((n, d))
    if poison and rows.size:
        rows[0, 0] = float(poison)
    return rows


arrays = st.builds(_rows, st.sampled_from([0, 1, 2, 50, 400]), st.sampled_from([1, 3]), poisons)
targets = st.sampled_from([np.zeros(1), np.zeros(3), np.array([np.nan]), np.zeros((2, 2)), 0.0])
levels = st.sampled_from([1e-6, 0.0, 1.5, -1.0, math.nan])


@settings(max_examples=FUZZ_EXAMPLES)
@given(
    comparator=st.sampled_from(["unbiased", "sequential", "exact", "closed-form"]),
    rows=arrays,
    target=targets,
    level=levels,
    size=st.sampled_from([0.5, 0.0, -1.0, math.nan, math.inf]),
)
def test_comparators_give_a_verdict_or_a_documented_error(comparator, rows, target, level, size):
    """Samples cycle through ``rows`` (possibly empty or poisoned); ``level`` is alpha, tol or
    the condition number, ``size`` the detectable bias or the steps."""
    counter = iter(range(10**9))

    def sample(generator):
        return rows[next(counter) % len(rows)]  # ZeroDivisionError on no rows: caught below

    def run():
        if comparator == "unbiased":
            return assert_unbiased(
                sample, target, detectable_bias=size, alpha=level, max_samples=2000
            )
        if comparator == "sequential":
            return assert_unbiased_sequential(
                sample, target, detectable_bias=size, alpha=level, max_samples=2000
            )
        if comparator == "exact":
            weights = np.full(len(rows), 1.0 / max(len(rows), 1))
            return assert_expectation_exact(zip(weights, rows, strict=True), target, tol=level)
        return assert_close_to_closed_form(
            rows.mean(axis=0) if len(rows) else rows, target, condition_number=level
        )

    try:
        with ledger(keep=False):  # a rejection is an accepted outcome here: no false alarm
            run()
        event("returned a verdict")
    except AssertionError as refutation:  # a verdict: refuted (or inconclusive), with numbers
        event("refuted")
        assert str(refutation)
    except ZeroDivisionError:
        assert len(rows) == 0  # the fuzz's own sampler on no rows, before any comparator check
    except Exception as error:
        _check_documented(error)


# ------------------------------------------------------------------ command line

tokens = st.sampled_from([
    "--only", "nonexistent/*", "ufom/unbiased-exact", "--workers", "-1", "abc", "0", "--grid",
    "--quick", "--full", "--format", "bmp", "png", "--claims", "not.a.module", "--latex",
    "--markdown", "--list", "--cache", "--executor", "dask", "--address", "nowhere:1", "--bogus",
])  # fmt: skip


@settings(
    max_examples=FUZZ_EXAMPLES // 3, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(command=st.sampled_from(["verify", "claims", "figures", "bogus", ""]),
       rest=st.lists(tokens, max_size=5))  # fmt: skip
def test_the_cli_answers_bad_arguments_with_one_line_and_a_nonzero_status(
    command, rest, tmp_path_factory, capsys
):
    out = tmp_path_factory.mktemp("cli")
    argv = [command, *rest] if command else rest
    if command in ("verify", "figures") and "--only" not in rest:
        argv += ["--only", "nonexistent/*"]  # never the whole suite
    if command in ("verify", "figures"):
        argv += ["--out", str(out), "--no-progress"] if command == "verify" else ["--out", str(out)]
    try:
        status = cli.main(argv)
    except SystemExit as exit_:  # argparse's usage errors
        status = exit_.code
    err = capsys.readouterr().err
    event(f"status {status}")
    assert isinstance(status, int)
    assert "Traceback" not in err, err
    if status != 0:
        last = [line for line in err.splitlines() if line.strip()]
        assert last, f"status {status} without a message for {argv}"


@pytest.mark.parametrize("argv", [["verify", "--only", "nonexistent/*", "--workers", "-2"]])
def test_cli_errors_are_one_line(argv, capsys, tmp_path):
    status = cli.main([*argv, "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and err[0].startswith("bilevel verify:"), err


# ------------------------------------------------------------------ the issue's unclear errors

_A3 = torch.diag(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
_X3, _Y3 = torch.ones(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)


def _quad_inner(x, y):
    return 0.5 * y @ _A3 @ y - x @ y


def _quad_outer(x, y):
    return 0.5 * (y**2).sum()


def _aid(**kw):
    defaults = {"outer": _quad_outer, "inner": _quad_inner, "inner_steps": 3, "inner_lr": 0.1,
                "outer_lr": 0.1}  # fmt: skip
    return AIDBiO(**{**defaults, **kw})


UNCLEAR_BEFORE = {
    "wrong x length": (
        lambda: hypergradient(
            _quad_outer, _quad_inner, torch.ones(4, dtype=torch.float64), _Y3, method="cg", steps=3
        ),
        "called with x: float64 tensor of shape \\(4,\\)",
    ),
    "float32 inputs, float64 data": (
        lambda: hypergradient(
            _quad_outer, _quad_inner, _X3.float(), _Y3.float(), method="cg", steps=3
        ),
        "float32 tensor .* \\(its own tensors must match",
    ),
    "dict x for a tensor objective": (
        lambda: hypergradient(_quad_outer, _quad_inner, {"a": _X3}, _Y3, method="cg", steps=3),
        "called with x: dict",
    ),
    "numpy generator": (
        lambda: hypergradient(
            _quad_outer,
            _quad_inner,
            _X3,
            _Y3,
            method="rt",
            p=0.5,
            lr=0.2,
            mu=1.0,
            generator=np.random.default_rng(0),
        ),
        "must be a torch.Generator",
    ),
    "meta-device y": (
        lambda: hypergradient(
            _quad_outer, _quad_inner, _X3, torch.ones(3, device="meta"), method="cg", steps=3
        ),
        "meta device",
    ),
    "AIDBiO outer returning a vector": (
        lambda: _aid(outer=lambda x, y: y**2).run(_X3, _Y3, iterations=2),
        "must return a scalar",
    ),
    "AIDBiO outer_lr = 1e300": (
        lambda: _aid(outer_lr=1e300).run(_X3, _Y3, iterations=5),
        "outer_lr or inner_lr is far too large",
    ),
    "AIDBiO NaN outer": (
        lambda: _aid(outer=lambda x, y: (y**2).sum() * float("nan")).run(_X3, _Y3, iterations=2),
        "outer objective's gradient",
    ),
    "AccBiO kappa_y = inf": (
        lambda: AccBiO(
            outer=_quad_outer,
            inner=_quad_inner,
            inner_steps=3,
            inner_lr=0.1,
            outer_lr=0.1,
            kappa_y=float("inf"),
        ),
        "kappa_y is a condition number",
    ),
    "a batched objective refusing batch=None": (
        lambda: StocBiO(
            outer=lambda x, y, b: _quad_outer(x, y) * b,
            inner=lambda x, y, b: _quad_inner(x, y) * b,
            sampler=lambda g: 1.0,
            generator=torch.Generator(),
            inner_steps=2,
            inner_lr=0.1,
            outer_lr=0.1,
            solver_steps=2,
            solver_lr=0.1,
        ).run(_X3, _Y3, iterations=2),
        "must accept batch=None",
    ),
    "CG with a negative or NaN tol": (
        lambda: hypergradient(_quad_outer, _quad_inner, _X3, _Y3, method="cg", steps=3, tol=-1.0),
        "tol .* must be a finite number >= 0",
    ),
    "grad_phi returning NaN": (
        lambda: _aid().run(_X3, _Y3, iterations=2, grad_phi=lambda x: x * float("nan")),
        "grad_phi",
    ),
}


@pytest.mark.parametrize("case", sorted(UNCLEAR_BEFORE))
def test_the_issues_unclear_errors_name_their_cause(case: str) -> None:
    call, message = UNCLEAR_BEFORE[case]
    with pytest.raises((ValueError, TypeError, RuntimeError, FloatingPointError), match=message):
        call()
