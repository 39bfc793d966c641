r"""Wrong meta-learning implementations (MAML / FO-MAML / ANIL, meta-training): each has its
slot's default signature and one realistic bug. Test doubles for ``bilevel verify --mutants``.
"""

from __future__ import annotations

from typing import Any

from bilevel.solvers.maml import meta_gradient


def maml_as_fomaml(params, support_loss, query_loss, tasks, **options) -> Any:
    """MAML whose adaptation Jacobian is dropped (computes FO-MAML when asked for MAML)."""
    if options.get("method", "maml") == "maml":
        options = {**options, "method": "fomaml"}
    return meta_gradient(params, support_loss, query_loss, tasks, **options)


def anil_adapts_body(params, support_loss, query_loss, tasks, **options) -> Any:
    """ANIL that adapts every parameter, the body included (``adapt_keys`` not passed on)."""
    if options.get("method") == "anil":
        options = {**options, "method": "maml", "adapt_keys": None}
    return meta_gradient(params, support_loss, query_loss, tasks, **options)


def maml_rebuilds_each_prefix(params, support_loss, query_loss, tasks, **options) -> Any:
    """A meta-gradient that rebuilds the inner trajectory for every prefix t = 1..N (a loop
    that re-runs the adaptation from theta at each step and keeps the last): the right value
    at N (N - 1) / 2 extra inner steps, a cost quadratic in N."""
    steps = options.get("steps", 1)
    for t in range(1, steps):
        meta_gradient(params, support_loss, query_loss, tasks, **{**options, "steps": t})
    return meta_gradient(params, support_loss, query_loss, tasks, **options)


def meta_train_ascent(
    params,
    support_loss,
    query_loss,
    sample_tasks,
    generator,
    *,
    iterations,
    steps,
    lr,
    meta_lr,
    method="maml",
    adapt_keys=None,
) -> Any:
    """Meta-training with the meta-update's sign flipped (theta + meta_lr * g)."""
    from torch.func import vmap

    from bilevel.solvers.maml import adapt

    theta = {k: v.detach().clone() for k, v in params.items()}
    losses = []
    for _ in range(iterations):
        tasks = sample_tasks(generator)

        def adapted_loss(support, query, theta=theta):
            return query_loss(adapt(theta, support_loss, support, steps, lr, adapt_keys), query)

        losses.append(float(vmap(adapted_loss)(*tasks).mean()))
        gradient = meta_gradient(
            theta,
            support_loss,
            query_loss,
            tasks,
            steps=steps,
            lr=lr,
            method=method,
            adapt_keys=adapt_keys,
        )
        theta = {k: v + meta_lr * gradient[k] for k, v in theta.items()}
    return theta, losses


def ufom_missing_inverse_q(theta, train_loss, test_loss, task, **options) -> Any:
    """UFOM's correction without its 1/q: g_FO + xi (g_ex - g_FO) (the weight of the official
    toy's first draft)."""
    from dataclasses import replace

    from bilevel.solvers.ufom import ufom_estimate

    result = ufom_estimate(theta, train_loss, test_loss, task, **options)
    return replace(result, estimate=result.exact) if result.drawn else result


def fom_unadapted(theta, train_loss, test_loss, task, **options) -> Any:
    """FOM (q = 0) whose gradient is taken at theta instead of at the adapted phi_r (the
    adaptation's result dropped)."""
    from bilevel.solvers.ufom import ufom_estimate

    if options.get("q") == 0:
        options = {**options, "steps": 0}
    return ufom_estimate(theta, train_loss, test_loss, task, **options)


def ufom_keeps_trajectory(theta, train_loss, test_loss, task, **options) -> Any:
    """UFOM that keeps phi_0..phi_{r-1} for its backward HVPs instead of recomputing them (O(r)
    memory), and counts as if it had recomputed them (the paper's constant-memory accounting)."""
    from bilevel.solvers.oracles import OracleCounts
    from bilevel.solvers.ufom import ufom_estimate

    counts, mine = options.pop("counts", None), OracleCounts()
    result = ufom_estimate(theta, train_loss, test_loss, task, counts=mine, recompute=False,
                           **options)  # fmt: skip
    if counts is not None:
        r = options["steps"]
        counts.grad_outer += mine.grad_outer
        counts.grad_inner += mine.grad_inner + (r * (r - 1) // 2 if result.drawn else 0)
        counts.hvp += mine.hvp
    return result


def ufom_hvps_uncounted(theta, train_loss, test_loss, task, **options) -> Any:
    """UFOM that does not count the recomputed adaptations of its correction (its cost then
    looks like r + 1 + q r instead of r + 1 + q (r(r-1)/2 + r))."""
    from bilevel.solvers.oracles import OracleCounts
    from bilevel.solvers.ufom import ufom_estimate

    counts, mine = options.pop("counts", None), OracleCounts()
    result = ufom_estimate(theta, train_loss, test_loss, task, counts=mine, **options)
    if counts is not None:
        counts.grad_outer += mine.grad_outer
        counts.grad_inner += options["steps"]
        counts.hvp += mine.hvp
    return result


def meta_train_method_dropped(params, support_loss, query_loss, sample_tasks, generator, **kw):
    """Meta-training that does not pass ``method`` to the meta-gradient (MAML whatever is asked;
    the ANIL head restriction kept)."""
    from bilevel.solvers.maml import meta_train

    kw["method"] = "maml"
    return meta_train(params, support_loss, query_loss, sample_tasks, generator, **kw)
