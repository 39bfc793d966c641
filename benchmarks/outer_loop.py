"""AID-BiO inside a real outer loop: time to a stated validation loss, bilevel against the same
loop written with each peer, measured in one run.

Problem: ``hypergradient.logistic_problem`` (n = 5000, d = 500; x = log of one weight decay per
feature, y the weights), float64 or float32. The loop (Ji, Yang & Liang 2021, Algorithm 1), 100
outer iterations from x0 = log(1e-2), y0 = 0:

    y <- D = 10 gradient steps on g(x, .) from the previous y (step 1),
    v <- N = 10 CG steps on H v = grad_y f from the previous v,
    x <- x - beta (grad_x f - (d^2 g / dx dy) v),   beta = 100.

- bilevel: ``bilevel.solvers.AIDBiO`` (warm y and v; its own oracles and checks), and the same
  with ``low_precision=torch.float32`` (its CG in float32 rounds refined in float64);
- plain torch.autograd: the same loop in a few lines (``peers.plain_cg``'s recurrence, warm v);
- TorchOpt: the inner GD loop above, then ``custom_root`` with ``solve_cg(maxiter=10)`` (its
  implicit layer keeps no v between calls: each solve starts from 0, as a TorchOpt user's would);
- BOAT: its CG core (``op_utils.conjugate_gradient``, cold v for the same reason);
- JAX (jit): the loop's step as one jitted function with warm y and v, in ``.venv-jax``.

The target is stated before the runs are timed: the validation loss L0 at x0, and L100 of an
exact loop (Newton's method for y, a dense solve for v: the AID-BiO update with exact inner
quantities), target = L0 - 0.9 (L0 - L100). Each library's time to the target is the summed
time of its outer steps up to the first iterate whose validation loss is <= target (the loss
evaluation is not timed); the median of 3 runs.

Run: ``python benchmarks/outer_loop.py [--dtype float32] [--out FILE.md]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from hypergradient import logistic_arrays, logistic_problem
from time_to_accuracy import dense_reference, machine, newton_solution, run_jax_peer

from bilevel.solvers import AIDBiO

ITERATIONS, INNER_STEPS, SOLVER_STEPS = 100, 10, 10
INNER_LR, OUTER_LR, REPEATS = 1.0, 100.0, 3


def _grad(fn, x, y, wrt: str) -> torch.Tensor:
    xl, yl = x.detach().requires_grad_(wrt == "x"), y.detach().requires_grad_(wrt == "y")
    with torch.enable_grad():  # TorchOpt runs its inner solver under no_grad
        return torch.autograd.grad(fn(xl, yl), xl if wrt == "x" else yl)[0]


def inner_gd(inner, x, y, steps: int = INNER_STEPS, lr: float = INNER_LR) -> torch.Tensor:
    for _ in range(steps):
        y = y - lr * _grad(inner, x, y, "y")
    return y


def cg_hypergradient(outer, inner, x, y, v, steps: int = SOLVER_STEPS):
    """(hypergradient, v) by the plain CG recurrence from v (what a user writes)."""
    xl, yl = x.detach().requires_grad_(True), y.detach().requires_grad_(True)
    grad_y = torch.autograd.grad(inner(xl, yl), yl, create_graph=True)[0]
    grad_x_f, b = torch.autograd.grad(outer(xl, yl), (xl, yl), allow_unused=True)
    grad_x_f = torch.zeros_like(x) if grad_x_f is None else grad_x_f
    r = b - torch.autograd.grad(grad_y, yl, v, retain_graph=True)[0]
    p, rr = r.clone(), r @ r
    for _ in range(steps):
        hp = torch.autograd.grad(grad_y, yl, p, retain_graph=True)[0]
        alpha = rr / (p @ hp)
        v, r = v + alpha * p, r - alpha * hp
        rr, rr_old = r @ r, rr
        p = r + (rr / rr_old) * p
    mixed = torch.autograd.grad(grad_y, xl, v)[0]
    return grad_x_f - mixed, v.detach()


# ---------------------------------------------------------------- the loops ------------------
# each: (outer, inner, x0, y0) -> a step function state -> state, and state -> x, y


def bilevel_loop(outer, inner, x0, y0, low_precision: torch.dtype | None = None):
    algo = AIDBiO(outer=outer, inner=inner, inner_steps=INNER_STEPS, inner_lr=INNER_LR,
                  outer_lr=OUTER_LR, solver="cg", solver_steps=SOLVER_STEPS,
                  low_precision=low_precision)  # fmt: skip
    return algo.init(x0, y0), algo.step, lambda s: (s.x, s.y)


def bilevel_float32_rounds_loop(outer, inner, x0, y0):
    """AIDBiO with its CG in float32 rounds refined in float64 (float64 runs only: on a float32
    problem AIDBiO refuses ``low_precision=torch.float32`` itself)."""
    return bilevel_loop(outer, inner, x0, y0, low_precision=torch.float32)


def plain_loop(outer, inner, x0, y0):
    def step(state):
        x, y, v = state
        y = inner_gd(inner, x, y)
        estimate, v = cg_hypergradient(outer, inner, x, y, v)
        return x - OUTER_LR * estimate, y, v

    return (x0, y0, torch.zeros_like(y0)), step, lambda s: (s[0], s[1])


def torchopt_loop(outer, inner, x0, y0):
    import torchopt

    def optimality(solution, xx):
        return torch.func.grad(inner, argnums=1)(xx, solution)

    @torchopt.diff.implicit.custom_root(
        optimality, argnums=1, solve=torchopt.linear_solve.solve_cg(maxiter=SOLVER_STEPS)
    )
    def solve_inner(y_start, xx):
        return inner_gd(inner, xx.detach(), y_start.detach())

    def step(state):
        x, y = state
        xx = x.detach().requires_grad_(True)
        y_new = solve_inner(y, xx)
        (estimate,) = torch.autograd.grad(outer(xx, y_new), xx)
        return x - OUTER_LR * estimate, y_new.detach()

    return (x0, y0), step, lambda s: s


def boat_loop(outer, inner, x0, y0):
    from boat_torch.utils import op_utils

    def fixed_point_map(params, loss):
        grads = torch.autograd.grad(loss, params, create_graph=True)
        return [p - INNER_LR * g for p, g in zip(params, grads, strict=True)]

    def step(state):
        x, y = state
        y = inner_gd(inner, x, y)
        xx, yy = x.detach().requires_grad_(True), y.detach().requires_grad_(True)
        (estimate,) = op_utils.conjugate_gradient(
            [yy], [xx], outer(xx, yy), inner(xx, yy), SOLVER_STEPS, fixed_point_map, 0.0
        )
        return x - OUTER_LR * estimate, y

    return (x0, y0), step, lambda s: s


LOOPS: dict[str, Callable] = {
    "bilevel (AIDBiO)": bilevel_loop,
    "bilevel (AIDBiO, float32 CG rounds)": bilevel_float32_rounds_loop,
    "plain torch.autograd": plain_loop,
    "TorchOpt (implicit, cold v)": torchopt_loop,
    "BOAT (CG core, cold v)": boat_loop,
}


def exact_loop(outer, inner, x0, y0) -> list[float]:
    """Validation losses of the AID-BiO update with exact inner quantities (float64): y by
    Newton's method, the hypergradient by the dense implicit-function formula."""
    x, y, losses = x0, y0, [float(outer(x0, y0))]
    for _ in range(ITERATIONS):
        y = newton_solution(inner, x, y, tol=1e-12)
        x = x - OUTER_LR * dense_reference(outer, inner, x, y)
        losses.append(float(outer(x, y)))
    return losses


def timed_run(make, outer, inner, x0, y0, target: float) -> dict:
    state, step, point = make(outer, inner, x0, y0)
    elapsed, losses, reached = 0.0, [], None
    for k in range(1, ITERATIONS + 1):
        start = time.perf_counter()
        state = step(state)
        elapsed += time.perf_counter() - start
        x, y = point(state)
        losses.append(float(outer(x, y)))
        if reached is None and losses[-1] <= target:
            reached = {"iteration": k, "seconds": elapsed}
    return {"reached": reached, "total": elapsed, "final": losses[-1]}


def jax_loop(dtype_name: str, target: float) -> list[dict] | str:
    feats, labels, _ = logistic_arrays(5000, 500)
    arrays = {"kind": "logistic", "feats": feats, "labels": labels, "split": 4000,
              "x": np.full(500, np.log(1e-2)), "y": np.zeros(500), "exact": np.zeros(500),
              "lr": INNER_LR, "cap_cg": 0, "cap_itd": 0}  # fmt: skip
    settings = {"iterations": ITERATIONS, "inner_steps": INNER_STEPS, "inner_lr": INNER_LR,
                "solver_steps": SOLVER_STEPS, "outer_lr": OUTER_LR, "target": target,
                "repeats": REPEATS}  # fmt: skip
    ok, answer = run_jax_peer(
        arrays, ["--dtype", dtype_name, "--outer-loop", json.dumps(settings)]
    )
    return answer if ok else str(answer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    dtype, started = getattr(torch, args.dtype), time.time()
    outer, inner, x0, _, _ = logistic_problem(5000, 500, "cpu", dtype)
    y0 = torch.zeros(500, dtype=dtype)
    outer64, inner64, *_ = logistic_problem(5000, 500, "cpu", torch.float64)
    exact = exact_loop(outer64, inner64, x0.double(), y0.double())
    target = exact[0] - 0.9 * (exact[0] - exact[-1])
    print(f"L0 = {exact[0]:.6f}, exact L100 = {exact[-1]:.6f}, target {target:.6f}", flush=True)
    results: dict[str, list[dict] | str] = {}
    for _ in range(REPEATS):  # rounds: every library once per round
        for name, make in LOOPS.items():
            if make is bilevel_float32_rounds_loop and dtype != torch.float64:
                continue  # float32 rounds refine float64 problems only
            try:
                run = timed_run(make, outer, inner, x0, y0, target)
                results.setdefault(name, []).append(run)  # type: ignore[union-attr]
            except Exception as exc:  # a peer that fails is reported, never hidden
                results[name] = f"{type(exc).__name__}: {exc}"[:90]
            print(name, results[name] if isinstance(results[name], str) else run, flush=True)
    results["JAX (jit, warm y and v)"] = jax_loop(args.dtype, target)
    lines = [
        f"Machine: {machine()}; one run of {time.time() - started:.0f} s.\n",
        f"Logistic HPO, {args.dtype}: AID-BiO, D = {INNER_STEPS}, N = {SOLVER_STEPS}, beta = "
        f"{OUTER_LR:g}, {ITERATIONS} iterations. L0 = {exact[0]:.5f}; exact AID-BiO reaches "
        f"{exact[-1]:.5f}; target L0 - 0.9 (L0 - L100) = {target:.5f}.\n",
        "| library | iterations to target | seconds to target | x bilevel | 100 iterations (s) "
        "| final loss |",
        "|---|---|---|---|---|---|",
    ]
    ours = None
    for name, runs in results.items():
        if isinstance(runs, str):
            lines.append(f"| {name} | failed: `{runs}` | | | | |")
            continue
        hits = [r["reached"] for r in runs if r["reached"]]
        total = statistics.median(r["total"] for r in runs)
        if len(hits) < len(runs):
            lines.append(f"| {name} | not reached | | | {total:.2f} | {runs[0]['final']:.5f} |")
            continue
        seconds = statistics.median(h["seconds"] for h in hits)
        ours = seconds if ours is None else ours
        lines.append(f"| {name} | {hits[0]['iteration']} | {seconds:.2f} | {seconds / ours:.2f}x "
                     f"| {total:.2f} | {runs[0]['final']:.5f} |")  # fmt: skip
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
