"""``argmin``: autograd through an inner solution equals ``hypergradient``.

The tolerance 1e-10 (float64) is rounding: backward runs the same linear solver on the same
oracle as ``hypergradient``, so the two differ only in the order of a few float64 additions
(measured: bitwise equal for the implicit methods, 2e-16 for ITD). A wrong backward (a sign,
a missing mixed product, v from the wrong right-hand side) is off by O(1) on these problems.
"""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call

from bilevel.solvers import OracleCounts, argmin, hypergradient

TOL = 1e-10
CASES = [
    ("cg", {"steps": 50}),
    ("exact", {}),
    ("neumann", {"steps": 30, "lr": 0.05}),
    ("fo", {}),
    ("itd", {"steps": 20, "lr": 0.05}),
    ("rt", {"p": 0.2, "lr": 0.05, "mu": 6.0, "level": 7}),
]


def _quadratic(seed: int, n: int = 4, m: int = 6):
    gen = torch.Generator().manual_seed(seed)
    A = torch.randn(m, m, dtype=torch.float64, generator=gen)
    A = A @ A.T + m * torch.eye(m, dtype=torch.float64)
    B = torch.randn(n, m, dtype=torch.float64, generator=gen)
    P = torch.randn(m, m, dtype=torch.float64, generator=gen)
    P = P @ P.T

    def inner(x, y):
        return 0.5 * y @ A @ y - x @ B @ y + (x**2).sum()

    def outer(x, y):
        return 0.5 * y @ P @ y + (x * y[:n]).sum() + (x**3).sum()

    x = torch.randn(n, dtype=torch.float64, generator=gen)
    y = torch.randn(m, dtype=torch.float64, generator=gen)  # any point: both use the same y
    return outer, inner, x, y


def _backward_gradient(outer, inner, x, y, method, options):
    x = x.clone().requires_grad_(True)
    outer(x, argmin(inner, x, y, method=method, **options)).backward()
    return x.grad


@pytest.mark.parametrize(("method", "options"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_backward_equals_hypergradient_on_a_random_quadratic(method, options, seed) -> None:
    outer, inner, x, y = _quadratic(seed)
    got = _backward_gradient(outer, inner, x, y, method, options)
    want = hypergradient(outer, inner, x, y, method=method, **options)
    assert float((got - want).abs().max()) <= TOL * max(1.0, float(want.abs().max()))


def test_a_wrong_backward_would_be_caught() -> None:
    """The test above can fail: dropping the implicit term (the FO answer) or flipping its sign
    moves the gradient by O(1) here, far above 1e-10."""
    outer, inner, x, y = _quadratic(0)
    exact = hypergradient(outer, inner, x, y, method="exact")
    first_order = hypergradient(outer, inner, x, y, method="fo")
    assert float((exact - first_order).abs().max()) > 1e-2


def test_tuple_and_dict_trees_match_the_flat_tensor() -> None:
    outer, inner, x, y = _quadratic(3)
    want = hypergradient(outer, inner, x, y, method="cg", steps=50)
    xa, xb = x[:1].clone().requires_grad_(True), x[1:].clone().requires_grad_(True)
    ya, yb = y[:2], y[2:]

    def tuple_outer(xt, yt):
        return outer(torch.cat(xt), torch.cat(yt))

    def tuple_inner(xt, yt):
        return inner(torch.cat(xt), torch.cat(yt))

    solution = argmin(tuple_inner, (xa, xb), (ya, yb), method="cg", steps=50)
    assert isinstance(solution, tuple) and solution[0].shape == (2,)
    tuple_outer((xa, xb), solution).backward()
    assert float((torch.cat([xa.grad, xb.grad]) - want).abs().max()) <= TOL
    xd = {"a": x[:1].clone().requires_grad_(True), "b": x[1:].clone().requires_grad_(True)}

    def dict_outer(xt, yt):
        return outer(torch.cat([xt["a"], xt["b"]]), torch.cat([yt["p"], yt["q"]]))

    def dict_inner(xt, yt):
        return inner(torch.cat([xt["a"], xt["b"]]), torch.cat([yt["p"], yt["q"]]))

    solution = argmin(dict_inner, xd, {"p": ya, "q": yb}, method="cg", steps=50)
    dict_outer(xd, solution).backward()
    assert float((torch.cat([xd["a"].grad, xd["b"].grad]) - want).abs().max()) <= TOL


def _logistic_hpo(seed: int = 0):
    """Per-feature L2 weights exp(x_j) of an nn.Linear logistic model on generated data."""
    gen = torch.Generator().manual_seed(seed)
    d, n = 5, 80
    w_true = torch.randn(d, dtype=torch.float64, generator=gen)
    features = torch.randn(2 * n, d, dtype=torch.float64, generator=gen)
    labels = features @ w_true + 0.5 * torch.randn(2 * n, dtype=torch.float64, generator=gen) > 0
    labels = labels.to(torch.float64)
    train, val = (features[:n], labels[:n]), (features[n:], labels[n:])
    model = torch.nn.Linear(d, 1).to(torch.float64)

    def loss(params, split):
        logits = functional_call(model, params, (split[0],)).squeeze(-1)
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, split[1])

    def inner(x, params):
        penalty = 0.5 * (torch.exp(x["log_l2"]) * params["weight"].squeeze(0) ** 2).sum()
        return loss(params, train) + penalty

    def outer(x, params):
        return loss(params, val)

    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    x = {"log_l2": torch.full((d,), -1.0, dtype=torch.float64)}
    return outer, inner, x, params


def _solve_inner(inner, x, params, steps: int = 300):
    """Gradient descent at a step below 1/L: L <= 1/4 trace([A 1]^T [A 1] / n) + max_j exp(x_j)
    (about 1.5 + max exp(x) for these N(0, 1) features); the step uses 5 + max exp(x)."""
    lr = 1 / (5.0 + float(torch.exp(x["log_l2"].detach()).max()))
    params = {k: v.detach().clone() for k, v in params.items()}
    for _ in range(steps):
        leaves = {k: v.requires_grad_(True) for k, v in params.items()}
        grads = torch.autograd.grad(
            inner({k: v.detach() for k, v in x.items()}, leaves), list(leaves.values())
        )
        params = {k: (v - lr * g).detach() for (k, v), g in zip(leaves.items(), grads, strict=True)}
    return params


def test_logistic_hpo_on_nn_linear_parameters() -> None:
    outer, inner, x, params = _logistic_hpo()
    y = _solve_inner(inner, x, params)
    want = hypergradient(outer, inner, x, y, method="cg", steps=50)
    x_leaf = {"log_l2": x["log_l2"].clone().requires_grad_(True)}
    outer(x_leaf, argmin(inner, x_leaf, y, method="cg", steps=50)).backward()
    assert float((x_leaf["log_l2"].grad - want["log_l2"]).abs().max()) <= TOL
    assert float(want["log_l2"].abs().max()) > 1e-6  # a non-trivial hypergradient


def test_adam_over_x_lowers_the_validation_loss() -> None:
    """20 Adam steps on the log-weights, each from a re-solved inner problem (warm start)."""
    outer, inner, x, params = _logistic_hpo(1)
    log_l2 = x["log_l2"].clone().requires_grad_(True)
    optimizer = torch.optim.Adam([log_l2], lr=0.2)
    y = _solve_inner(inner, {"log_l2": log_l2}, params)
    start = float(outer({"log_l2": log_l2}, y))
    for _ in range(20):
        y = _solve_inner(inner, {"log_l2": log_l2}, y, steps=100)
        optimizer.zero_grad()
        outer({"log_l2": log_l2}, argmin(inner, {"log_l2": log_l2}, y, steps=30)).backward()
        optimizer.step()
    end = float(outer({"log_l2": log_l2}, _solve_inner(inner, {"log_l2": log_l2}, y)))
    assert end < start - 1e-3, (start, end)


def test_backward_counts_its_oracle_calls() -> None:
    outer, inner, x, y = _quadratic(0)
    counts = OracleCounts()
    x = x.clone().requires_grad_(True)
    outer(x, argmin(inner, x, y, method="cg", steps=7, counts=counts)).backward()
    reference = OracleCounts()
    hypergradient(outer, inner, x.detach(), y, method="cg", steps=7, counts=reference)
    assert counts.grad_outer == 0 and reference.grad_outer == 1  # backward never calls f
    assert (counts.grad_inner, counts.hvp, counts.mixed) == (
        reference.grad_inner,
        reference.hvp,
        reference.mixed,
    )
    assert counts.hvp > 0


def test_no_gradient_reaches_y_and_x_without_grad_passes_through() -> None:
    _, inner, x, y = _quadratic(0)
    y_leaf = y.clone().requires_grad_(True)
    solution = argmin(inner, x, y_leaf, steps=5)  # x does not require grad: y comes back, detached
    assert not solution.requires_grad and torch.equal(solution, y)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"method": "newton"}, ValueError, "unknown method"),
        ({"method": "cg"}, TypeError, "needs option"),
        ({"method": "itd", "steps": 3, "lr": 0.1, "checkpoint": True}, ValueError, "checkpoint"),
        ({"method": "cg", "steps": -1}, ValueError, "non-negative"),
        ({"method": "neumann", "steps": 3, "lr": 0.0}, ValueError, "positive"),
    ],
)
def test_bad_options_are_refused_before_any_work(kwargs, error, match) -> None:
    _, inner, x, y = _quadratic(0)
    with pytest.raises(error, match=match):
        argmin(inner, x.requires_grad_(True), y, **kwargs)


def test_bad_points_are_refused() -> None:
    _, inner, x, y = _quadratic(0)
    with pytest.raises(ValueError, match="share dtype"):
        argmin(inner, x, y.float(), steps=5)
    with pytest.raises(ValueError, match="NaN"):
        argmin(inner, x, torch.full_like(y, float("nan")), steps=5)
    with pytest.raises(TypeError, match="x must be a tensor"):
        argmin(inner, 3.0, y, steps=5)


def test_an_indefinite_inner_hessian_fails_loudly_in_backward() -> None:
    """g concave in y: the dense solve refuses a Hessian that is not positive definite."""
    x = torch.ones(2, dtype=torch.float64, requires_grad=True)
    y = torch.zeros(2, dtype=torch.float64)

    def inner(x, y):
        return -0.5 * (y**2).sum() + x @ y

    with pytest.raises((ValueError, FloatingPointError), match="positive definite"):
        (argmin(inner, x, y, method="exact") ** 2).sum().backward()
