"""A small ``nn.Module`` bilevel problem shared by the module-parameter tests: ridge regression
of a ``Linear(3, 1)`` on 20 random points, x the log of the penalty, the first 10 points
validating."""

from __future__ import annotations

import torch


def linear_model_problem():
    """(outer, inner, x = log lambda = 0, y = the module's parameters as a dict), float64."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1, dtype=torch.float64)
    data = torch.randn(20, 3, dtype=torch.float64)
    target = torch.randn(20, 1, dtype=torch.float64)
    params = {k: v.detach() for k, v in model.named_parameters()}

    def inner(log_lam, p):
        pred = torch.func.functional_call(model, p, (data,))
        reg = sum((w**2).sum() for w in p.values())
        return ((pred - target) ** 2).mean() + torch.exp(log_lam).squeeze() * reg

    def outer(log_lam, p):
        pred = torch.func.functional_call(model, p, (data[:10],))
        return ((pred - target[:10]) ** 2).mean()

    return outer, inner, torch.zeros(1, dtype=torch.float64), params
