"""Tutorial 5: hyperparameter optimisation with ``argmin`` and ``torch.optim.Adam``.

Per-feature L2 weights exp(x_j) of an ``nn.Linear`` logistic model on scikit-learn's bundled
breast-cancer data (the built-in split: train / validation / test). Each outer step re-solves
the training problem from the last weights (warm start, plain gradient descent), then
``argmin`` attaches the solution to x through the implicit function theorem, so the validation
loss's ``backward()`` leaves the hypergradient in ``x.grad`` and Adam steps on x. Exits 1 if
the validation loss did not go down.
"""

from __future__ import annotations

import sys

import torch
from torch.func import functional_call

from bilevel.solvers import argmin
from bilevel.solvers.problems import load_logistic_problem

torch.manual_seed(0)  # the nn.Linear initialisation: the run is reproducible
problem = load_logistic_problem("breast_cancer", seed=0)
features, labels = problem.train
model = torch.nn.Linear(problem.dim, 1).to(torch.float64)


def loss(params: dict, split) -> torch.Tensor:
    a, b = split  # labels in {-1, +1}
    logits = functional_call(model, params, (a,)).squeeze(-1)
    return torch.nn.functional.softplus(-b * logits).mean()


def inner(x: dict, params: dict) -> torch.Tensor:
    weight = params["weight"].squeeze(0)
    return loss(params, problem.train) + 0.5 * (torch.exp(x["log_l2"]) * weight**2).sum()


def outer(x: dict, params: dict) -> torch.Tensor:
    return loss(params, problem.validation)


def solve_inner(x: dict, params: dict, steps: int) -> dict:
    """Gradient descent on the training loss at a step below 1 / L (L <= 1/4 max ||a_i||^2 + 1
    + max exp(x)), from ``params``; returns detached parameters."""
    lr = 1.0 / (
        0.25 * float((features**2).sum(1).max()) + 1 + float(torch.exp(x["log_l2"].detach()).max())
    )
    fixed = {k: v.detach() for k, v in x.items()}
    params = {k: v.detach().clone() for k, v in params.items()}
    for _ in range(steps):
        leaves = {k: v.requires_grad_(True) for k, v in params.items()}
        grads = torch.autograd.grad(inner(fixed, leaves), list(leaves.values()))
        params = {k: (v - lr * g).detach() for (k, v), g in zip(leaves.items(), grads, strict=True)}
    return params


x = {"log_l2": torch.zeros(problem.dim, dtype=torch.float64, requires_grad=True)}
optimizer = torch.optim.Adam(x.values(), lr=0.1)
params = solve_inner(x, dict(model.named_parameters()), steps=300)
start = float(outer(x, params))
for _ in range(20):
    params = solve_inner(x, params, steps=50)
    optimizer.zero_grad()
    outer(x, argmin(inner, x, params, method="cg", steps=20)).backward()
    optimizer.step()
end = float(outer(x, solve_inner(x, params, steps=300)))
print(f"validation loss {start:.4f} -> {end:.4f} after 20 Adam steps on the log-weights")
sys.exit(0 if end < start else 1)
