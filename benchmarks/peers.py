"""bilevel against the PyTorch peers, in one run: time of one hypergradient and its relative error.

Problem: L2-regularised logistic regression with one exp-parametrised weight per feature
(synthetic, n = 5000, d = 500, fixed seed; ``hypergradient.logistic_problem``), at an inner point
from 200 gradient steps. Methods at equal oracle budgets:

- AID-CG, K = 50: ``bilevel`` (``method="cg"``), a plain double-backward loop (the code a user
  writes with ``torch.autograd``), and TorchOpt's implicit differentiation
  (``torchopt.diff.implicit.custom_root`` with ``solve_cg(maxiter=50)``);
- AID-Neumann, Q = 50: ``bilevel`` and TorchOpt (``solve_inv(ns=True, maxiter=50)``);
- ITD, T = 50: ``bilevel`` (``method="itd"``) and higher (``innerloop_ctx`` with SGD).
- Betty (``betty-ml`` 0.1.1): its own ``betty.hypergradient.cg`` and ``neumann`` functions,
  called with a minimal stand-in for the two ``Problem`` levels they read (``_BettyLevel``:
  parameters, the inner loss, the config), so that its Engine's training loop is not timed;
- BOAT (``boat-torch`` 1.1.1): its functional cores ``boat_torch.utils.op_utils
  .conjugate_gradient`` and ``neumann`` (what its CG and NS operations call), with its
  fixed-point map y - lr grad_y g; for ITD its ``NGD`` dynamical system and ``RAD`` operation
  (differentiable SGD through higher, then reverse mode), as ``BOAT.run_iter`` drives them.

A peer that is not installed or fails is reported with its error. The optional ``bench`` extra
installs TorchOpt and higher; ``make bench-peers`` adds Betty and BOAT with ``--no-deps``
(boat-torch pins numpy <= 1.26.4 and pulls torchvision, neither needed by these functions).
Run: ``python benchmarks/peers.py [--dtype float32] [--out FILE.md]``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from hypergradient import logistic_problem, median_time

from bilevel.solvers import hypergradient

STEPS = 50


def _inner_solution(inner, x, y, steps: int = 200, lr: float = 1.0) -> torch.Tensor:
    for _ in range(steps):
        leaf = y.detach().requires_grad_(True)
        (gradient,) = torch.autograd.grad(inner(x, leaf), leaf)
        y = (leaf - lr * gradient).detach()
    return y


def plain_cg(outer, inner, x, y, steps: int) -> torch.Tensor:
    """What a user writes: linearise grad_y g once, CG with HVPs by autograd, one mixed VJP."""
    xl, yl = x.detach().requires_grad_(True), y.detach().requires_grad_(True)
    grad_y = torch.autograd.grad(inner(xl, yl), yl, create_graph=True)[0]
    grad_x_f, b = torch.autograd.grad(outer(xl, yl), (xl, yl), allow_unused=True)
    grad_x_f = torch.zeros_like(x) if grad_x_f is None else grad_x_f
    v = torch.zeros_like(b)
    r = b.clone()
    p = r.clone()
    rr = r @ r
    for _ in range(steps):
        hp = torch.autograd.grad(grad_y, yl, p, retain_graph=True)[0]
        alpha = rr / (p @ hp)
        v = v + alpha * p
        r = r - alpha * hp
        rr_new = r @ r
        p = r + (rr_new / rr) * p
        rr = rr_new
    mixed = torch.autograd.grad(grad_y, xl, v)[0]
    return grad_x_f - mixed


def torchopt_implicit(outer, inner, x, y, solver) -> Callable[[], torch.Tensor]:
    import torchopt

    def optimality(solution, xx):
        return torch.func.grad(inner, argnums=1)(xx, solution)

    @torchopt.diff.implicit.custom_root(optimality, argnums=1, solve=solver)
    def solve_inner(y0, xx):
        return y0.detach()  # y is the inner solution already

    def run() -> torch.Tensor:
        xx = x.detach().requires_grad_(True)
        return torch.autograd.grad(outer(xx, solve_inner(y, xx)), xx)[0]

    return run


class _Variable(torch.nn.Module):
    """One tensor as the single parameter ``value`` of a module (what higher and BOAT unroll)."""

    def __init__(self, value: torch.Tensor) -> None:
        super().__init__()
        self.value = torch.nn.Parameter(value.detach().clone())


def higher_itd(outer, inner, x, y, steps: int, lr: float) -> Callable[[], torch.Tensor]:
    import higher

    module = _Variable(y)
    optimizer = torch.optim.SGD(module.parameters(), lr=lr)

    def run() -> torch.Tensor:
        xx = x.detach().requires_grad_(True)
        with higher.innerloop_ctx(module, optimizer, copy_initial_weights=True) as (
            fmodel,
            diffopt,
        ):
            for _ in range(steps):
                diffopt.step(inner(xx, fmodel.value))
            return torch.autograd.grad(outer(xx, fmodel.value), xx)[0]

    return run


def boat_rad(outer, inner, x, y, steps: int, lr: float) -> Callable[[], torch.Tensor]:
    """BOAT's NGD dynamical system (``steps`` differentiable SGD steps through higher) and its
    RAD operation (reverse-mode through the trajectory), as ``BOAT.run_iter`` drives them."""
    import higher
    from boat_torch.gm_ol import NGD
    from boat_torch.na_ol import RAD

    lower, upper = _Variable(y), _Variable(x)
    optimizer = torch.optim.SGD(lower.parameters(), lr=lr)

    def lower_objective(feed, upper_model, lower_model):
        return inner(upper_model.value, lower_model.value)

    def upper_objective(feed, upper_model, lower_model, params=None):
        return outer(upper_model.value, lower_model.value if params is None else params[0])

    dynamics = NGD(
        lower_objective,
        upper_objective,
        lower,
        upper,
        steps,
        {"lower_level_opt": optimizer, "na_op": ["RAD"]},
    )
    reverse = RAD(
        lower_objective,
        upper_objective,
        lower,
        upper,
        list(lower.parameters()),
        list(upper.parameters()),
        {"gm_op": ["NGD"]},
    )

    def run() -> torch.Tensor:
        upper.value.grad = None
        with higher.innerloop_ctx(lower, optimizer, copy_initial_weights=False) as (
            fmodel,
            diffopt,
        ):
            dynamics.optimize({}, {}, fmodel, diffopt, 0)
            reverse.compute_gradients({}, {}, fmodel)
        return upper.value.grad.detach().clone()

    return run


class _BettyLevel:
    """The attributes of a ``betty.problems.Problem`` that ``betty.hypergradient.cg`` and
    ``neumann`` read: its parameters, its loss (``training_step_exec``), ``paths`` and config."""

    def __init__(self, params: list[torch.Tensor], loss=None, config=None) -> None:
        self.params, self.loss, self.config = params, loss, config
        self.paths: list = []
        self.cur_batch = None

    def training_step_exec(self, batch) -> torch.Tensor:
        return self.loss()

    def trainable_parameters(self) -> list[torch.Tensor]:
        return self.params

    def parameters(self) -> list[torch.Tensor]:
        return self.params


def betty_implicit(
    outer, inner, x, y, method: str, steps: int = STEPS
) -> Callable[[], torch.Tensor]:
    """grad_x f + Betty's implicit term (its functions return -(d^2 g/dx dy) H^-1 grad_y f)."""
    from betty import hypergradient as betty_hypergradient
    from betty.configs import Config

    config = Config(cg_iterations=steps, cg_alpha=1.0, neumann_iterations=steps, neumann_alpha=1.0)
    solve = getattr(betty_hypergradient, method)

    def run() -> torch.Tensor:
        xx, yy = x.detach().requires_grad_(True), y.detach().requires_grad_(True)
        grad_x_f, grad_y_f = torch.autograd.grad(outer(xx, yy), (xx, yy), allow_unused=True)
        grad_x_f = torch.zeros_like(xx) if grad_x_f is None else grad_x_f
        lower = _BettyLevel([yy], lambda: inner(xx, yy), config)
        (implicit,) = solve([grad_y_f], lower, _BettyLevel([xx]))
        return grad_x_f + implicit

    return run


def boat_implicit(
    outer, inner, x, y, method: str, lr: float = 1.0, steps: int = STEPS
) -> Callable[[], torch.Tensor]:
    """BOAT's ``conjugate_gradient`` / ``neumann`` on the fixed-point map y - lr grad_y g."""
    from boat_torch.utils import op_utils

    solve = getattr(op_utils, method)

    def fixed_point_map(params: list[torch.Tensor], loss: torch.Tensor) -> list[torch.Tensor]:
        grads = torch.autograd.grad(loss, params, create_graph=True)
        return [p - lr * g for p, g in zip(params, grads, strict=True)]

    def run() -> torch.Tensor:
        xx, yy = x.detach().requires_grad_(True), y.detach().requires_grad_(True)
        (grad,) = solve([yy], [xx], outer(xx, yy), inner(xx, yy), steps, fixed_point_map, 0.0)
        return grad

    return run


def rows(dtype: torch.dtype, repeats: int) -> list[tuple[str, str, float, float | str]]:
    outer, inner, x, y, _ = logistic_problem(5000, 500, "cpu", dtype)
    y = _inner_solution(inner, x, y)
    # the reference: the same problem and point in float64
    outer64, inner64, _, _, _ = logistic_problem(5000, 500, "cpu", torch.float64)
    exact = hypergradient(outer64, inner64, x.double(), y.double(), method="exact")
    candidates: list[tuple[str, str, Callable[[], Callable[[], torch.Tensor]]]] = [
        (
            "AID-CG K=50",
            "bilevel",
            lambda: lambda: hypergradient(outer, inner, x, y, method="cg", steps=STEPS, tol=0.0),
        ),
        (
            "AID-CG K=50",
            "plain torch.autograd",
            lambda: lambda: plain_cg(outer, inner, x, y, STEPS),
        ),
        (
            "AID-CG K=50",
            "TorchOpt (implicit, CG)",
            lambda: torchopt_implicit(
                outer,
                inner,
                x,
                y,
                __import__("torchopt").linear_solve.solve_cg(maxiter=STEPS, rtol=0.0, atol=0.0),
            ),
        ),
        ("AID-CG K=50", "Betty (cg)", lambda: betty_implicit(outer, inner, x, y, "cg")),
        (
            "AID-CG K=50",
            "BOAT (CG core)",
            lambda: boat_implicit(outer, inner, x, y, "conjugate_gradient"),
        ),
        (
            "AID-Neumann Q=50",
            "bilevel",
            lambda: (
                lambda: hypergradient(outer, inner, x, y, method="neumann", steps=STEPS, lr=1.0)
            ),
        ),
        (
            "AID-Neumann Q=50",
            "TorchOpt (implicit, NS)",
            lambda: torchopt_implicit(
                outer,
                inner,
                x,
                y,
                __import__("torchopt").linear_solve.solve_inv(ns=True, maxiter=STEPS, alpha=1.0),
            ),
        ),
        (
            "AID-Neumann Q=50",
            "Betty (neumann)",
            lambda: betty_implicit(outer, inner, x, y, "neumann"),
        ),
        (
            "AID-Neumann Q=50",
            "BOAT (NS core)",
            lambda: boat_implicit(outer, inner, x, y, "neumann"),
        ),
        (
            "ITD T=50",
            "bilevel",
            lambda: lambda: hypergradient(outer, inner, x, y, method="itd", steps=STEPS, lr=1.0),
        ),
        ("ITD T=50", "higher (unrolled SGD)", lambda: higher_itd(outer, inner, x, y, STEPS, 1.0)),
        ("ITD T=50", "BOAT (NGD + RAD)", lambda: boat_rad(outer, inner, x, y, STEPS, 1.0)),
    ]
    out = []
    for method, library, build in candidates:
        try:
            fn = build()
            value = fn()
            error = float((value.double() - exact).norm() / exact.norm())
            out.append((method, library, median_time(fn, repeats, "cpu"), error))
        except Exception as exc:  # a peer that fails is reported, never hidden
            out.append((method, library, float("nan"), f"{type(exc).__name__}: {exc}"[:80]))
    return out


def table(results, dtype_name: str) -> str:
    lines = [
        f"| method ({dtype_name}) | library | ms | relative error | vs bilevel |",
        "|---|---|---|---|---|",
    ]
    ours = {m: t for m, lib, t, _ in results if lib == "bilevel"}
    for method, library, seconds, error in results:
        ratio = seconds / ours[method] if seconds == seconds else float("nan")
        err = f"{error:.1e}" if isinstance(error, float) else error
        lines.append(f"| {method} | {library} | {seconds * 1e3:.1f} | {err} | {ratio:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    text = table(rows(getattr(torch, args.dtype), args.repeats), args.dtype)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
