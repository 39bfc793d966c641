r"""``hypergradient``: every hypergradient estimator of the seed papers behind one function.

Conventions (they agree with ``bilevel.analysis.QuadraticBilevel``): H is the Hessian of g in y
at the given ``y``; (d^2 g / dx dy) is the mixed second derivative (a d_x x d_y matrix); b =
grad_y f(x, y). Every implicit method returns

    grad_x f(x, y) - (d^2 g / dx dy) v,      v ~ H^-1 b,

and differs only in how v is obtained:

- ``"exact"``: dense solve v = H^-1 b (small problems; refuses above ``DENSE_MAX_DIM``).
- ``"cg"`` (``steps=K``, ``v0=None``, ``tol=None``, ``low_precision=None``): K conjugate-gradient
  iterations from v_0; ``low_precision=torch.float32`` runs them in float32, refined by
  working-precision residuals to the working precision's accuracy (``bilevel.solvers.refinement``).
- ``"neumann"`` (``steps=Q``, ``lr=eta``): v_Q = eta sum_{q=0}^{Q-1} (I - eta H)^q b.
- ``"rt"`` (``p``, ``lr=eta``, ``mu``, ``L=None``, ``generator``, ``level=None``): randomized
  truncation, unbiased for the ``"exact"`` value; refuses configurations with infinite
  variance. ``level=n`` returns the estimate given the truncation level N = n (no draw; it
  occurs with probability p (1 - p)^n), for exact expectations over N.
- ``"fo"``: v = 0, the first-order estimate grad_x f(x, y).
- ``"itd"`` (``steps=T``, ``lr=alpha``, ``checkpoint=False``): reverse mode through T steps of GD
  on g from ``y`` (held constant in x): d/dx f(x, y_T(x)); ``checkpoint`` = True, an int k,
  ``"auto"``, ``"sqrt"``, ``"binomial"`` or ``BinomialCheckpoints(slots=c)`` trades inner
  gradients for memory (``bilevel.solvers.itd``, ``bilevel.solvers.revolve``).
- ``"stocbio"`` (``steps=Q``, ``lr=eta``, ``sampler``, ``generator``, ``variant="paper"`` or
  ``"reference_code"`` or ``"bsa"``): stochastic oracles ``outer(x, y, batch)``, ``inner(x, y, batch)``;
  the paper's Q+1-term Neumann sum with a fresh batch per HVP, the official code's
  single-batch form, or Ghadimi & Wang's randomized truncation (see ``bilevel.solvers.stocbio``).

References: Pedregosa 2016 (AID), Ji, Yang & Liang ICML 2021 (AID-BiO, ITD-BiO), Ghadimi &
Wang 2018 (randomized truncation); spec sections 1, 6.2-6.4, 7.3-7.7.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from . import linear_solvers, refinement
from ._flat import (
    Tree,
    batched_flat_objective,
    check_same_dtype_and_device,
    check_step_size,
    check_steps,
    flat_objective,
    flatten,
)
from ._outer import check_objectives
from .itd import check_checkpoint, itd_hypergradient_and_iterate
from .oracles import OracleCounts, SecondOrderOracle, outer_gradients
from .stocbio import stocbio_hypergradient

_OPTIONS: dict[str, dict[str, Any]] = {
    "exact": {},
    "cg": {"steps": None, "v0": None, "tol": None, "low_precision": None},
    "neumann": {"steps": None, "lr": None},
    "rt": {"p": None, "lr": None, "mu": None, "L": None, "generator": None, "level": None},
    "fo": {},
    "itd": {"steps": None, "lr": None, "checkpoint": False},
    "stocbio": {"steps": None, "lr": None, "sampler": None, "generator": None, "variant": "paper"},
}
_REQUIRED = {
    "cg": ("steps",),
    "neumann": ("steps", "lr"),
    "rt": ("p", "lr", "mu"),
    "itd": ("steps", "lr"),
    "stocbio": ("steps", "lr", "sampler"),
}

METHODS = tuple(_OPTIONS)


def resolve_options(method: str, options: dict[str, Any]) -> dict[str, Any]:
    if method not in _OPTIONS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    unknown = set(options) - set(_OPTIONS[method])
    if unknown:
        allowed = ", ".join(_OPTIONS[method]) or "none"
        raise TypeError(
            f"method={method!r} takes no option(s) {', '.join(sorted(unknown))}; its options: "
            f"{allowed}"
        )
    missing = [name for name in _REQUIRED.get(method, ()) if options.get(name) is None]
    if missing:
        raise TypeError(f"method={method!r} needs option(s) {', '.join(missing)}")
    resolved = {**_OPTIONS[method], **options}
    tol = resolved.get("tol")
    if tol is not None and (
        isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 <= tol < float("inf")
    ):
        raise ValueError(f"tol (CG's residual tolerance) must be a finite number >= 0, got {tol!r}")
    generator = resolved.get("generator")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator (all draws go through it), got "
            f"{type(generator).__module__}.{type(generator).__name__}"
        )
    if "steps" in _REQUIRED.get(method, ()):
        check_steps(resolved["steps"], "steps")
    if "lr" in _REQUIRED.get(method, ()):
        check_step_size(resolved["lr"], "lr")
    if method == "itd":
        check_checkpoint(resolved["checkpoint"], resolved["steps"])
    if method == "rt":
        linear_solvers.check_finite_variance(
            resolved["lr"], resolved["p"], resolved["mu"], resolved["L"]
        )
        if resolved["level"] is not None:
            check_steps(resolved["level"], "level")
    return resolved


def resolve_v0(opts: dict[str, Any], y_flat: torch.Tensor) -> None:
    """CG's warm start ``v0`` (any tree shaped like y) as a flat vector, and its
    ``low_precision`` checked against y's dtype: validated before any oracle call, like every
    option."""
    if opts.get("low_precision") is not None:
        refinement.check_low_precision(opts["low_precision"], y_flat.dtype)
    if opts.get("v0") is not None:
        v0 = flatten(opts["v0"], "v0")[0]
        if v0.shape != y_flat.shape:
            raise ValueError(f"v0 has {v0.numel()} entries, y has {y_flat.numel()}")
        opts["v0"] = v0


def hypergradient(
    outer: Callable[[Tree, Tree], torch.Tensor],
    inner: Callable[[Tree, Tree], torch.Tensor],
    x: Tree,
    y: Tree,
    *,
    method: str,
    counts: OracleCounts | None = None,
    **options: Any,
) -> Tree:
    """Estimate grad Phi(x) at the inner point ``y``; the result has the structure of ``x``.

    Args:
        outer: f(x, y) -> scalar tensor.
        inner: g(x, y) -> scalar tensor.
        x: a tensor, a tuple/list or a dict of tensors (one dtype and device).
        y: the inner point, the same kinds as ``x`` (the same dtype and device).
        method: one of ``METHODS`` (see the module docstring for each one's options).
        counts: an ``OracleCounts`` that the call's oracle calls are added to.

    Raises:
        ValueError / TypeError: unknown method or option, bad shapes, steps < 0, lr <= 0,
            a non-scalar objective, a Hessian that is not positive definite, infinite variance.
        FloatingPointError: NaN or inf produced at some step (the message names it).

    Example:
        >>> import torch
        >>> A = torch.tensor([[2.0, 0.0], [0.0, 4.0]], dtype=torch.float64)
        >>> inner = lambda x, y: 0.5 * y @ A @ y - y @ x
        >>> outer = lambda x, y: 0.5 * (y ** 2).sum()
        >>> x, y = torch.ones(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
        >>> hypergradient(outer, inner, x, y, method="exact")
        tensor([0., 0.], dtype=torch.float64)
    """
    opts = resolve_options(method, options)
    check_objectives(outer, inner, 3 if method == "stocbio" else 2, "hypergradient")
    x_flat, x_spec = flatten(x, "x")
    y_flat, y_spec = flatten(y, "y")
    check_same_dtype_and_device(x_flat, y_flat)
    resolve_v0(opts, y_flat)
    counts = OracleCounts() if counts is None else counts
    if method == "stocbio":
        fb = batched_flat_objective(outer, x_spec, y_spec, "outer")
        gb = batched_flat_objective(inner, x_spec, y_spec, "inner")
        result = stocbio_hypergradient(
            fb,
            gb,
            x_flat,
            y_flat,
            opts["steps"],
            opts["lr"],
            opts["sampler"],
            opts["generator"],
            opts["variant"],
            counts,
        )
        return x_spec.unflatten(_finite_result(result, method))
    f = flat_objective(outer, x_spec, y_spec, "outer")
    g = flat_objective(inner, x_spec, y_spec, "inner")
    result = _estimate(method, opts, f, g, x_flat, y_flat, counts)
    return x_spec.unflatten(_finite_result(result, method))


def _finite_result(result: torch.Tensor, method: str) -> torch.Tensor:
    """The estimate, or ``FloatingPointError`` if any entry is NaN or inf (the docstring's
    promise; a NaN outer objective used to come back as [nan, nan] from fo, exact and itd)."""
    if not bool(torch.isfinite(result).all()):
        raise FloatingPointError(
            f"hypergradient (method={method!r}) is NaN/inf; likely cause: the outer or inner "
            "objective (or its gradient) is not finite at (x, y), or a step size above 2 / L"
        )
    return result


def _estimate(
    method: str,
    opts: dict[str, Any],
    f: Callable,
    g: Callable,
    x: torch.Tensor,
    y: torch.Tensor,
    counts: OracleCounts,
) -> torch.Tensor:
    if method == "itd":
        estimate, _ = itd_hypergradient_and_iterate(
            f, g, x, y, opts["steps"], opts["lr"], counts, checkpoint=opts["checkpoint"]
        )
        return estimate
    grad_x_f, grad_y_f = outer_gradients(f, x, y, counts)
    if method == "fo":
        return grad_x_f
    v, oracle = solve_linear_system(method, opts, g, x, y, grad_y_f, counts)
    return grad_x_f - oracle.mixed(v)


def solve_linear_system(
    method: str,
    opts: dict[str, Any],
    g: Callable,
    x: torch.Tensor,
    y: torch.Tensor,
    b: torch.Tensor,
    counts: OracleCounts,
) -> tuple[torch.Tensor, SecondOrderOracle]:
    """(v, the second-order oracle at (x, y)) with v ~ H^-1 b by ``method`` ("exact", "cg",
    "neumann" or "rt", options resolved): the one place each implicit method finds v, shared by
    ``hypergradient`` and the backward pass of ``argmin``."""
    if method == "exact":
        v = linear_solvers.dense_solve(g, x, y, b, counts)
        return v, SecondOrderOracle(g, x, y, counts)
    oracle = SecondOrderOracle(g, x, y, counts)
    if method == "cg" and opts["low_precision"] is not None:
        v = refinement.refined_conjugate_gradient(
            oracle, g, x, y, opts["low_precision"], b, opts["steps"], opts["v0"], opts["tol"]
        )
    elif method == "cg":
        v = linear_solvers.conjugate_gradient(oracle, b, opts["steps"], opts["v0"], opts["tol"])
    elif method == "neumann":
        v = linear_solvers.neumann(oracle, b, opts["steps"], opts["lr"])
    elif method == "rt" and opts["level"] is not None:  # "rt" given its level N
        v = linear_solvers.truncated_series_at_level(
            oracle, b, opts["lr"], opts["p"], opts["level"]
        )
    elif method == "rt":  # its variance condition was checked with the options
        v = linear_solvers.randomized_truncation(
            oracle, b, opts["lr"], opts["p"], opts["generator"]
        )
    else:
        raise ValueError(f"method {method!r} solves no linear system")
    return v, oracle
