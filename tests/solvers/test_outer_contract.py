"""The contract every registered outer algorithm passes (``bilevel.solvers.registry``, kind
"outer"): one case per registry id, checked to cover the registry, so a new algorithm without
a case fails here.

On the strongly convex quadratic ``convex_phi_instance(3, 5, kappa=10, seed=0)`` (deterministic:
stochastic algorithms get the batch None, the full data), each algorithm

- makes the progress its theory gives at these steps: ||grad Phi(x_K)|| <= ``bound`` x
  ||grad Phi(x_0)|| (each case says where its bound comes from; the rates themselves are the
  claims' business, ``bilevel verify``);
- gives the same iterates for x and y as dicts, tuples and 2-D tensors as for 1-D tensors
  (1e-12 relative: the same float64 operations, only reshaped), and in float32 to 1e-4;
- leaves the state it is given unchanged (its tensors and its ``OracleCounts``);
- refuses positional construction, and bad starting points and budgets before any work;
- runs on every available device (CUDA when present) to 1e-10 of the CPU run.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from bilevel.proofs_checks.instances import convex_phi_instance, hyperobjective_hessian
from bilevel.solvers import registry
from bilevel.solvers.problems import QuadraticProblem

INSTANCE = convex_phi_instance(3, 5, 10.0, 0)
L_G = float(INSTANCE.constants.L)
MU_G = float(INSTANCE.constants.mu)
_EIGS = np.linalg.eigvalsh(hyperobjective_hessian(INSTANCE))
MU_PHI, L_PHI = float(_EIGS.min()), float(_EIGS.max())
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


@dataclass(frozen=True)
class Case:
    build: Callable[[Callable, Callable], object]  # (outer(x, y), inner(x, y)) -> algorithm
    iterations: int
    bound: float  # on ||grad Phi(x_K)|| / ||grad Phi(x_0)||
    why: str
    batched: bool = False
    meta: bool = False  # UFOM-SGD: x = theta of a meta-learning problem, no y


def _gd_iterations(target: float, step_scale: float = 1.0) -> int:
    """K with (1 - step_scale mu_Phi / L_Phi)^K <= target: GD on Phi at step step_scale / L_Phi."""
    return math.ceil(math.log(target) / math.log(1 - step_scale * MU_PHI / L_PHI))


def _soba(f, g):
    from bilevel.solvers import SOBA

    return SOBA(
        outer=f,
        inner=g,
        sampler=lambda gen: None,
        generator=torch.Generator(),
        inner_lr=1 / L_G,
        outer_lr=0.5 / L_PHI,
    )


GD_WHY = "exact-hypergradient GD on Phi at step 1/L_Phi contracts by 1 - mu_Phi/L_Phi; 1e3 slack"
CASES: dict[str, Case] = {
    "aid-bio": Case(
        lambda f, g: registry.get("aid-bio").load()(
            outer=f, inner=g, inner_steps=20, inner_lr=1 / L_G, outer_lr=1 / L_PHI,
            solver_steps=10),
        _gd_iterations(1e-6), 1e-3, GD_WHY),
    "itd-bio": Case(
        lambda f, g: registry.get("itd-bio").load()(
            outer=f, inner=g, inner_steps=60, inner_lr=1 / L_G, outer_lr=1 / L_PHI),
        _gd_iterations(1e-6), 1e-3,
        GD_WHY + "; ITD's error (1 - mu/L)^60 ~ 2e-3 of the hypergradient at warm start"),
    "stocbio-bio": Case(
        lambda f, g: registry.get("stocbio-bio").load()(
            outer=f, inner=g, sampler=lambda gen: None, generator=torch.Generator(),
            inner_steps=20, inner_lr=1 / L_G, outer_lr=1 / L_PHI, solver_steps=60,
            solver_lr=1 / L_G),
        _gd_iterations(1e-6), 1e-3, GD_WHY + "; Neumann bias (1 - mu/L)^61", batched=True),
    "accbio": Case(
        lambda f, g: registry.get("accbio").load()(
            outer=f, inner=g, inner_steps=20, inner_lr=1 / L_G, outer_lr=1 / L_PHI,
            kappa_y=L_G / MU_G, kappa_x=L_PHI / MU_PHI, solver_steps=10),
        _gd_iterations(1e-6), 1e-3, "Nesterov on Phi is at least as fast as GD there"),
    "bda": Case(
        lambda f, g: registry.get("bda").load()(
            outer=f, inner=g, inner_steps=60, upper_lr=0.5 / L_G, inner_lr=1 / L_G,
            outer_lr=1 / L_PHI, aggregation=0.5, warm_start_y=True),
        _gd_iterations(1e-2), 0.2,
        "aggregation a/(k+1) decays: y_K -> y*(x) like K^(-a s_u) (spec 7.10), a biased "
        "hypergradient; GD-like progress to that bias"),
    "minimax-gda": Case(
        lambda f, g: registry.get("minimax-gda").load()(
            outer=f, inner=g, penalty=20.0, outer_lr=0.5 / (20 * L_G),
            inner_lr=0.5 / (20 * L_G), auxiliary_lr=0.5 / (20 * L_G), stage_iterations=4000),
        4000, 0.2, "the penalty's stationary point is O(1/lambda) from x* (spec 7.8)"),
    "mgbio": Case(
        lambda f, g: registry.get("mgbio").load()(
            outer=f, inner=g, inner_lr=1 / L_G, solver_lr=1 / L_G, outer_lr=0.5 / L_PHI,
            momentum=0.5, inner_steps=5),
        _gd_iterations(1e-6, 0.5), 1e-3, "single loop at half GD's step; 1e3 slack"),
    "msgbio": Case(
        lambda f, g: registry.get("msgbio").load()(
            outer=f, inner=g, sampler=lambda gen: None, generator=torch.Generator(),
            inner_lr=1 / L_G, solver_lr=1 / L_G, outer_lr=0.5 / L_PHI, schedule_k=1.0,
            schedule_m=1.0, schedule_c=1.0),
        3000, 0.2, "eta_t ~ t^-1/2 decays: sublinear progress", batched=True),
    "vr-msgbio": Case(
        lambda f, g: registry.get("vr-msgbio").load()(
            outer=f, inner=g, sampler=lambda gen: None, generator=torch.Generator(),
            inner_lr=1 / L_G, solver_lr=1 / L_G, outer_lr=0.5 / L_PHI, schedule_k=1.0,
            schedule_m=1.0, schedule_c=1.0),
        3000, 0.2, "eta_t ~ t^-1/3 decays: sublinear progress", batched=True),
    "fsla": Case(
        lambda f, g: registry.get("fsla").load()(
            outer=f, inner=g, sampler=lambda gen: None, generator=torch.Generator(),
            inner_lr=1 / L_G, outer_lr=0.5 / L_PHI),
        _gd_iterations(1e-6, 0.5), 1e-3, "single loop at half GD's step; 1e3 slack", batched=True),
    "soba": Case(_soba, _gd_iterations(1e-6, 0.5), 1e-3,
                 "single loop at half GD's step; 1e3 slack", batched=True),
    "ufom-sgd": Case(
        lambda f, g: registry.get("ufom-sgd").load()(
            inner=f, outer=g, sampler=lambda gen: torch.randn(3, dtype=torch.float64, generator=gen),
            generator=torch.Generator().manual_seed(0), inner_steps=2, inner_lr=0.1,
            outer_lr=1.0, method="exact"),
        400, 0.2, "SGD with gamma_0/(k+1) on a strongly convex meta-objective", meta=True),
}  # fmt: skip


def _problem(device: str = "cpu", dtype=torch.float64):
    problem = QuadraticProblem.from_blocks(INSTANCE.as_numpy(), dtype=dtype, device=device)
    grad_np = INSTANCE.hypergradient(backend="numpy")

    def grad_phi(x):
        flat = x if isinstance(x, torch.Tensor) else _cat_x(x)
        return torch.as_tensor(np.asarray(grad_np(flat.detach().cpu().double().numpy()), float))

    return problem, grad_phi


def _meta_losses():
    """Tasks c ~ N(0, I): train loss 1/2 ||phi - c||^2 + 1/2 ||phi||^2, test 1/2 ||phi - c||^2."""

    def train(phi, task):
        flat = phi if isinstance(phi, torch.Tensor) else _cat_x(phi)
        return 0.5 * ((flat - task) ** 2).sum() + 0.5 * (flat**2).sum()

    def test(phi, task):
        flat = phi if isinstance(phi, torch.Tensor) else _cat_x(phi)
        return 0.5 * ((flat - task) ** 2).sum()

    return train, test


def _cat_x(x):
    return torch.cat([x["a"].reshape(-1), x["b"].reshape(-1)])


def _cat_y(y):
    return torch.cat([y[0].reshape(-1), y[1].reshape(-1)])


def _as_tree(x, y):
    return {"a": x[:1].clone(), "b": x[1:].clone().reshape(1, 2)}, (
        y[:2].clone(),
        y[2:].clone().reshape(3, 1),
    )


def _objectives(case: Case, problem, tree: bool):
    f, g = problem.outer, problem.inner
    if tree:
        f_flat, g_flat = f, g
        f = lambda x, y: f_flat(_cat_x(x), _cat_y(y))  # noqa: E731
        g = lambda x, y: g_flat(_cat_x(x), _cat_y(y))  # noqa: E731
    if case.batched:
        return (lambda x, y, batch, f=f: f(x, y)), (lambda x, y, batch, g=g: g(x, y))
    return f, g


def _build(case: Case, problem, tree: bool = False):
    if case.meta:
        return case.build(*_meta_losses())
    return case.build(*_objectives(case, problem, tree))


def _start(case: Case, device="cpu", dtype=torch.float64):
    x0 = torch.ones(3, dtype=dtype, device=device)
    y0 = None if case.meta else torch.zeros(5, dtype=dtype, device=device)
    return x0, y0


def _iterates(algo, x0, y0, steps: int) -> list[torch.Tensor]:
    state = algo.init(x0, y0)
    xs = []
    for _ in range(steps):
        state = algo.step(state)
        xs.append(state.x if isinstance(state.x, torch.Tensor) else _cat_x(state.x))
    return xs


def test_every_registered_outer_algorithm_has_a_contract_case() -> None:
    assert set(CASES) == set(registry.ids("outer"))


@pytest.mark.parametrize("method", sorted(CASES))
def test_progress_on_the_strongly_convex_quadratic(method: str) -> None:
    case = CASES[method]
    problem, grad_phi = _problem()
    algo = _build(case, problem)
    x0, y0 = _start(case)
    if case.meta:  # the meta-objective's gradient: theta* = E[c] / 2 = 0 here, grad ~ theta
        state, _ = algo.run(x0, None, iterations=case.iterations)
        ratio = float(torch.linalg.vector_norm(state.x)) / float(torch.linalg.vector_norm(x0))
    else:
        state, trace = algo.run(x0, y0, iterations=case.iterations, grad_phi=grad_phi)
        ratio = trace[-1]["grad_norm"] / trace[0]["grad_norm"]
    assert state.iteration == case.iterations
    assert ratio <= case.bound, (
        f"{method}: ||grad Phi|| ratio {ratio:.3g} > {case.bound} ({case.why})"
    )


@pytest.mark.parametrize("method", sorted(CASES))
def test_trees_give_the_same_iterates(method: str) -> None:
    case = CASES[method]
    problem, _ = _problem()
    x0, y0 = _start(case)
    flat = _iterates(_build(case, problem), x0, y0, 5)
    x_tree, y_tree = _as_tree(x0, y0 if y0 is not None else torch.zeros(5, dtype=torch.float64))
    tree_algo = _build(case, problem, tree=True)
    if case.meta:
        tree = _iterates(tree_algo, x_tree, None, 5)
    else:
        tree = _iterates(tree_algo, x_tree, y_tree, 5)
        state = tree_algo.init(x_tree, y_tree)
        stepped = tree_algo.step(state)
        assert isinstance(stepped.x, dict) and stepped.x["b"].shape == (1, 2)
        assert isinstance(stepped.y, tuple) and stepped.y[1].shape == (3, 1)
    for a, b in zip(flat, tree, strict=True):
        assert float((a - b).abs().max()) <= 1e-12 * max(1.0, float(a.abs().max()))


@pytest.mark.parametrize("method", sorted(CASES))
def test_float32_follows_float64(method: str) -> None:
    case = CASES[method]
    problem64, _ = _problem()
    problem32, _ = _problem(dtype=torch.float32)
    x64 = _iterates(_build(case, problem64), *_start(case), 5)[-1]
    x32 = _iterates(_build(case, problem32), *_start(case, dtype=torch.float32), 5)[-1]
    assert x32.dtype == torch.float32
    assert float((x32.double() - x64).abs().max()) <= 1e-4 * max(1.0, float(x64.abs().max()))


@pytest.mark.parametrize("method", sorted(CASES))
def test_a_step_leaves_its_input_state_unchanged(method: str) -> None:
    case = CASES[method]
    problem, _ = _problem()
    algo = _build(case, problem)
    state = algo.step(algo.init(*_start(case)))
    before = copy.deepcopy(state)
    algo.step(state)
    assert state.counts == before.counts and state.iteration == before.iteration
    for name, value in vars(before).items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(getattr(state, name), value), f"step changed state.{name}"


@pytest.mark.parametrize("method", sorted(CASES))
def test_construction_is_keyword_only(method: str) -> None:
    cls = registry.get(method).load()
    with pytest.raises(TypeError):
        cls(lambda x, y: x.sum(), lambda x, y: y.sum())


@pytest.mark.parametrize("method", sorted(CASES))
@pytest.mark.parametrize(
    ("budget", "match"),
    [
        ({"iterations": -1}, "non-negative"),
        ({"oracle_calls": -5}, "non-negative"),
        ({"seconds": -1.0}, "seconds"),
        ({"seconds": float("nan")}, "seconds"),
        ({}, "give a budget"),
    ],
)
def test_bad_budgets_are_refused(method: str, budget: dict, match: str) -> None:
    case = CASES[method]
    problem, _ = _problem()
    with pytest.raises(ValueError, match=match):
        _build(case, problem).run(*_start(case), **budget)


@pytest.mark.parametrize("method", sorted(CASES))
def test_bad_starting_points_are_refused(method: str) -> None:
    case = CASES[method]
    problem, _ = _problem()
    algo = _build(case, problem)
    x0, y0 = _start(case)
    with pytest.raises(ValueError, match="NaN"):
        algo.init(torch.full_like(x0, float("nan")), y0)
    with pytest.raises(TypeError, match="must be a tensor"):
        algo.init([1.0, 2.0, 3.0], y0)
    if not case.meta:
        with pytest.raises(ValueError, match="share dtype"):
            algo.init(x0, y0.float())


@pytest.mark.parametrize("method", sorted(CASES))
def test_oracle_call_budget_stops_the_run(method: str) -> None:
    case = CASES[method]
    problem, _ = _problem()
    state, _ = _build(case, problem).run(*_start(case), oracle_calls=50)
    assert 50 <= state.counts.total and state.iteration >= 1


@pytest.mark.parametrize("device", [d for d in DEVICES if d != "cpu"])
@pytest.mark.parametrize("method", sorted(CASES))
def test_devices_agree_with_the_cpu(method: str, device: str) -> None:
    case = CASES[method]
    cpu = _iterates(_build(case, _problem()[0]), *_start(case), 5)[-1]
    other = _iterates(_build(case, _problem(device)[0]), *_start(case, device), 5)[-1]
    assert float((other.cpu() - cpu).abs().max()) <= 1e-10 * max(1.0, float(cpu.abs().max()))


def test_run_outer_accepts_an_algorithm_of_ones_own() -> None:
    """A user's algorithm need not derive from OuterAlgorithm (tutorial 4): init, step and
    outer are enough for run_outer's budgets and trace."""
    from dataclasses import dataclass, replace

    from bilevel.solvers import OuterState, run_outer

    @dataclass(frozen=True)
    class Halving:
        def outer(self, x, y):
            return (x**2).sum()

        def init(self, x, y):
            return OuterState(x.clone(), y.clone())

        def step(self, state):
            return replace(state, x=state.x / 2, iteration=state.iteration + 1)

    state, trace = run_outer(Halving(), torch.ones(2), torch.zeros(1), iterations=3)
    assert state.iteration == 3 and [r["outer_value"] for r in trace] == [2.0, 0.5, 0.125, 0.03125]
