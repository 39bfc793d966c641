r"""Multi-step MAML, FO-MAML and ANIL meta-gradients over ``nn.Module`` parameters (torch.func).

For task tau with support loss l_tau and query loss L_tau, N adaptation steps from theta:
phi_0 = theta, phi_{j+1} = phi_j - alpha grad l_tau(phi_j), and the meta-objective
M(theta) = mean_tau L_tau(phi_N(theta)) [Finn et al. 2017; Ji, Yang & Liang 2022 (multi-step
MAML); spec 6.7, 7.9]. Its gradient is

    MAML:    mean_tau prod_{j=N-1..0} (I - alpha hess l_tau(phi_j)) grad L_tau(phi_N),
    FO-MAML: mean_tau grad L_tau(phi_N)   (the Jacobian of phi_N dropped: biased, spec 7.9),
    ANIL:    MAML with only the ``adapt`` parameters (the head) adapted; the body enters the
             query loss directly (Raghu et al. 2020; Ji et al. 2020).

``meta_gradient`` differentiates through the N steps with ``torch.func.grad`` and maps over the
tasks of a meta-batch with ``torch.func.vmap``; ``loss(params, data)`` is a function of a dict of
parameters (``torch.func.functional_call(model, params, inputs)`` for a module) and one task's
data (a tuple of tensors, stacked over tasks along dim 0 for the meta-batch).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.func import grad, vmap

from ._flat import check_step_size, check_steps

Params = dict[str, torch.Tensor]
Loss = Callable[[Params, Any], torch.Tensor]


def adapt(
    params: Params,
    support_loss: Loss,
    support: Any,
    steps: int,
    lr: float,
    adapt_keys: Iterable[str] | None = None,
) -> Params:
    """phi_N: ``steps`` GD steps on the support loss, only on ``adapt_keys`` (all by default)."""
    keys = set(params) if adapt_keys is None else set(adapt_keys)
    phi = dict(params)
    for _ in range(steps):
        grads = grad(support_loss)(phi, support)
        phi = {k: (v - lr * grads[k]) if k in keys else v for k, v in phi.items()}
    return phi


def meta_gradient(
    params: Params,
    support_loss: Loss,
    query_loss: Loss,
    tasks: tuple[Any, Any],
    *,
    steps: int,
    lr: float,
    method: str = "maml",
    adapt_keys: Iterable[str] | None = None,
) -> Params:
    """The meta-gradient of ``method`` ("maml", "fomaml", "anil") averaged over a meta-batch.

    ``tasks = (support_data, query_data)``, each a tensor or tuple of tensors with the task index
    first. ANIL needs ``adapt_keys`` (the head); MAML and FO-MAML adapt every parameter unless
    ``adapt_keys`` is given.
    """
    check_steps(steps, "steps")
    check_step_size(lr, "lr")
    if method not in ("maml", "fomaml", "anil"):
        raise ValueError(f"unknown method {method!r}; choose maml, fomaml or anil")
    if method == "anil" and adapt_keys is None:
        raise ValueError("ANIL adapts only the head: give adapt_keys (the head's parameter names)")
    keys = None if adapt_keys is None else tuple(adapt_keys)
    unknown = set(keys or ()) - set(params)
    if unknown:
        raise ValueError(f"adapt_keys not in params: {', '.join(sorted(unknown))}")

    def task_objective(theta: Params, support: Any, query: Any) -> torch.Tensor:
        phi = adapt(theta, support_loss, support, steps, lr, keys)
        if method == "fomaml":  # identity Jacobian: theta + stop_grad(phi - theta)
            phi = {k: theta[k] + (phi[k] - theta[k]).detach() for k in theta}
        return query_loss(phi, query)

    per_task = vmap(grad(task_objective), in_dims=(None, 0, 0))(params, *tasks)
    return {k: v.mean(0) for k, v in per_task.items()}


def meta_train(
    params: Params,
    support_loss: Loss,
    query_loss: Loss,
    sample_tasks: Callable[[torch.Generator], tuple[Any, Any]],
    generator: torch.Generator,
    *,
    iterations: int,
    steps: int,
    lr: float,
    meta_lr: float,
    method: str = "maml",
    adapt_keys: Iterable[str] | None = None,
) -> tuple[Params, list[float]]:
    """theta <- theta - meta_lr * meta_gradient on a fresh meta-batch per iteration.

    Returns the final parameters and the meta-batch query losses after adaptation (one per
    iteration, measured before the update), all sampling from ``generator``.
    """
    check_steps(iterations, "iterations")
    check_step_size(meta_lr, "meta_lr")
    keys = None if adapt_keys is None else tuple(adapt_keys)
    theta = {k: v.detach().clone() for k, v in params.items()}
    losses = []
    for _ in range(iterations):
        tasks = sample_tasks(generator)
        losses.append(
            float(_adapted_query_loss(theta, support_loss, query_loss, tasks, steps, lr, keys))
        )
        gradient = meta_gradient(
            theta,
            support_loss,
            query_loss,
            tasks,
            steps=steps,
            lr=lr,
            method=method,
            adapt_keys=keys,
        )
        theta = {k: v - meta_lr * gradient[k] for k, v in theta.items()}
    return theta, losses


def _adapted_query_loss(theta, support_loss, query_loss, tasks, steps, lr, keys) -> torch.Tensor:
    def one(support: Any, query: Any) -> torch.Tensor:
        return query_loss(adapt(theta, support_loss, support, steps, lr, keys), query)

    return vmap(one)(*tasks).mean()
