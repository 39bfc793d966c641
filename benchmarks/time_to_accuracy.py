"""Time to a hypergradient of stated accuracy: bilevel against its peers, measured in one run.

For each problem, dtype, method family (AID-CG, AID-Neumann, ITD) and library, and each target
relative error e in {1e-3, 1e-6, 1e-10} against the exact hypergradient at the inner solution:

1. the fewest steps K (CG iterations, Neumann terms, unrolled steps) whose output has relative
   error <= e, found by doubling and bisection on K (the error is taken to be monotone in K past
   its first crossing; a doubling that lowers the error by less than 1 % from K >= 64 on is
   rounding's floor, and a K past the family's cap ends the search too: "not reached", with the
   best error printed); the K of the library before it, where one exists, is
   probed first and walked from, so that the libraries that run the same recurrence cost two
   probes;
2. the median time of one call at that K (``hypergradient.median_time``, autoranged samples).

The time to an accuracy is thus the time of the cheapest call that reaches it. Problems:

- ``logistic``: L2-regularised logistic regression with one exp-parametrised weight per feature
  (``hypergradient.logistic_problem``, n = 5000, d = 500); inner solution by Newton's method in
  float64 (dense Hessian, gradient norm <= 1e-13); reference: the implicit-function formula with
  the dense Hessian and mixed Jacobian (``torch.func``) and ``torch.linalg.solve``, float64.
- ``quadratic``: ``hypergradient.quadratic_problem`` (d = 1000, cond(A) = 100); inner solution
  and reference as above (exact up to rounding).
- ``mlp``: a 64-300-300-10 tanh MLP on scikit-learn's bundled digits (300 training, 300
  validation images; 112,810 inner parameters as one flat vector), inner loss cross-entropy +
  1/2 exp(x) ||w||^2 with one weight decay exp(x) = 0.1, outer loss the validation
  cross-entropy; inner solution by L-BFGS and Newton-CG in float64 (max |grad| <= 1e-10),
  reference: the plain CG loop in float64 run until its relative
  residual is <= 1e-13 (the Hessian is too large to form: 1.3e10 entries).

float32 rows solve the float32 problem at the float64 inner solution rounded to float32, and are
compared against the float64 reference; an accuracy below float32's rounding shows as a floor.

JAX runs in its own environment (``make bench-jax`` creates ``.venv-jax``; its script is
``jax_peer.py``, started from here as a subprocess on the same data, so that its rows are
measured in the same run); when that environment is missing, its rows say so.

Run: ``python benchmarks/time_to_accuracy.py [--problems logistic,quadratic,mlp]
[--dtypes float64,float32] [--out FILE.md]``.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from hypergradient import logistic_arrays, logistic_problem, quadratic_arrays, quadratic_problem
from peers import betty_implicit, boat_implicit, boat_rad, higher_itd, plain_cg, torchopt_implicit
from search import steps_to

from bilevel.solvers import hypergradient

TARGETS = (1e-3, 1e-6, 1e-10)
JAX_PYTHON = Path(__file__).parent.parent / ".venv-jax" / "bin" / "python"
Fn = Callable[[], torch.Tensor]


@dataclass(frozen=True)
class Problem:
    name: str
    outer: Callable
    inner: Callable
    x: torch.Tensor
    y: torch.Tensor  # the inner solution (float64 solve, cast to the problem's dtype)
    lr: float  # 1/L: the Neumann step and the unrolled step
    exact: torch.Tensor  # float64 reference
    max_steps: dict[str, int]  # per family: the largest K probed
    inner_parameters: int
    arrays: dict  # the data, as float64 numpy arrays, for the JAX peer


# ---------------------------------------------------------------- references (float64) ------


def dense_reference(outer, inner, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """grad_x f - (d^2 g / dy dx)^T H^-1 grad_y f with the dense H and mixed Jacobian."""
    hessian = torch.func.hessian(inner, argnums=1)(x, y)
    mixed = torch.func.jacrev(torch.func.grad(inner, argnums=1), argnums=0)(x, y)  # (d_y, d_x)
    grad_x_f, grad_y_f = torch.func.grad(outer, argnums=(0, 1))(x, y)
    return grad_x_f - mixed.T @ torch.linalg.solve(hessian, grad_y_f)


def newton_solution(inner, x: torch.Tensor, y: torch.Tensor, tol: float = 1e-13) -> torch.Tensor:
    for _ in range(50):
        gradient = torch.func.grad(inner, argnums=1)(x, y)
        if gradient.norm() <= tol:
            return y
        y = y - torch.linalg.solve(torch.func.hessian(inner, argnums=1)(x, y), gradient)
    raise RuntimeError(f"Newton's method: ||grad_y g|| = {gradient.norm():.2e} after 50 steps")


def cg_reference(outer, inner, x: torch.Tensor, y: torch.Tensor, rtol: float = 1e-13) -> Fn:
    """The plain CG loop of ``peers.plain_cg`` run until ||r|| <= rtol ||b||."""
    xl, yl = x.detach().requires_grad_(True), y.detach().requires_grad_(True)
    grad_y = torch.autograd.grad(inner(xl, yl), yl, create_graph=True)[0]
    grad_x_f, b = torch.autograd.grad(outer(xl, yl), (xl, yl), allow_unused=True)
    grad_x_f = torch.zeros_like(x) if grad_x_f is None else grad_x_f
    v, r = torch.zeros_like(b), b.clone()
    p, rr = r.clone(), r @ r
    for _ in range(20_000):
        if rr.sqrt() <= rtol * b.norm():
            mixed = torch.autograd.grad(grad_y, xl, v)[0]
            return (grad_x_f - mixed).detach()
        hp = torch.autograd.grad(grad_y, yl, p, retain_graph=True)[0]
        alpha = rr / (p @ hp)
        v, r = v + alpha * p, r - alpha * hp
        rr, rr_old = r @ r, rr
        p = r + (rr / rr_old) * p
    raise RuntimeError("reference CG did not reach its residual tolerance in 20000 steps")


def largest_eigenvalue(inner, x: torch.Tensor, y: torch.Tensor, iterations: int = 100) -> float:
    """Power iteration on the inner Hessian (HVPs by double backward)."""
    yl = y.detach().requires_grad_(True)
    grad_y = torch.autograd.grad(inner(x, yl), yl, create_graph=True)[0]
    v = torch.randn(y.shape, dtype=y.dtype, generator=torch.Generator().manual_seed(0))
    value = 0.0
    for _ in range(iterations):
        v = v / v.norm()
        hv = torch.autograd.grad(grad_y, yl, v, retain_graph=True)[0]
        value = float(v @ hv)
        v = hv
    return value


# ---------------------------------------------------------------- problems -------------------


def logistic(dtype: torch.dtype) -> Problem:
    outer, inner, x, y0, _ = logistic_problem(5000, 500, "cpu", torch.float64)
    y = newton_solution(inner, x, y0)
    exact = dense_reference(outer, inner, x, y)
    lr = 1.0 / largest_eigenvalue(inner, x, y)
    o, i, *_ = logistic_problem(5000, 500, "cpu", dtype)
    caps = {"cg": 2048, "neumann": 8192, "itd": 4096}
    feats, labels, _ = logistic_arrays(5000, 500)
    arrays = {"kind": "logistic", "feats": feats, "labels": labels, "split": 4000}
    return Problem("logistic", o, i, x.to(dtype), y.to(dtype), lr, exact, caps, 500, arrays)


def quadratic(dtype: torch.dtype) -> Problem:
    outer, inner, x, y0, lr = quadratic_problem(1000, 100.0, "cpu", torch.float64)
    y = newton_solution(inner, x, y0)
    exact = dense_reference(outer, inner, x, y)
    o, i, *_ = quadratic_problem(1000, 100.0, "cpu", dtype)
    caps = {"cg": 2048, "neumann": 8192, "itd": 8192}
    A, B, *_ = quadratic_arrays(1000, 100.0)
    arrays = {"kind": "quadratic", "A": A, "B": B}
    return Problem("quadratic", o, i, x.to(dtype), y.to(dtype), lr, exact, caps, 1000, arrays)


MLP_SIZES = (64, 300, 300, 10)
MLP_WEIGHT_DECAY = 1e-1
MLP_TRAIN = 300  # training images (as many validate)


def mlp_arrays() -> dict:
    """The digits images (scaled to [0, 1]) and labels in a fixed shuffled order: the first
    ``MLP_TRAIN`` train, as many after them validate."""
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(labels))[: 2 * MLP_TRAIN]
    return {"kind": "mlp", "feats": images[order] / 16.0, "labels": labels[order],
            "split": MLP_TRAIN, "sizes": np.asarray(MLP_SIZES)}  # fmt: skip


def mlp_objectives(dtype: torch.dtype):
    """(outer, inner, x, y0) of the digits MLP; y is the flat vector of all weights."""
    arrays = mlp_arrays()
    feats = torch.as_tensor(arrays["feats"], dtype=dtype)
    targets = torch.as_tensor(arrays["labels"], dtype=torch.long)
    train, valid = slice(0, MLP_TRAIN), slice(MLP_TRAIN, 2 * MLP_TRAIN)
    shapes = [(o, i) for i, o in itertools.pairwise(MLP_SIZES)]
    sizes = [o * i + o for o, i in shapes]

    def logits(y: torch.Tensor, data: torch.Tensor) -> torch.Tensor:
        h, start = data, 0
        for layer, ((o, i), size) in enumerate(zip(shapes, sizes, strict=True)):
            w = y[start : start + o * i].reshape(o, i)
            b = y[start + o * i : start + size]
            h = h @ w.T + b
            h = torch.tanh(h) if layer < len(shapes) - 1 else h
            start += size
        return h

    def inner(x, y):
        loss = torch.nn.functional.cross_entropy(logits(y, feats[train]), targets[train])
        return loss + 0.5 * torch.exp(x).sum() * (y @ y)

    def outer(x, y):
        return torch.nn.functional.cross_entropy(logits(y, feats[valid]), targets[valid])

    rng = np.random.default_rng(1)
    y0 = torch.cat(
        [torch.as_tensor(rng.standard_normal(o * i) / np.sqrt(i), dtype=dtype) for o, i in shapes]
        + [torch.zeros(o, dtype=dtype) for o, _ in shapes]
    )
    # biases after weights within each layer: rebuild in the layout logits() reads
    parts, w_at, b_at = [], 0, sum(o * i for o, i in shapes)
    for o, i in shapes:
        parts += [y0[w_at : w_at + o * i], y0[b_at : b_at + o]]
        w_at, b_at = w_at + o * i, b_at + o
    x = torch.full((1,), math.log(MLP_WEIGHT_DECAY), dtype=dtype)
    return outer, inner, x, torch.cat(parts)


def mlp_solution(inner, x: torch.Tensor, y: torch.Tensor, tol: float = 1e-10) -> torch.Tensor:
    """A local minimiser of g(x, .): 300 L-BFGS steps, then Newton-CG steps (CG to a relative
    residual of 1e-3, stopped early at non-positive curvature; Armijo backtracking) until
    max |grad_y g| <= tol."""
    y = y.detach().clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([y], lr=1.0, max_iter=300, history_size=50,
                                  line_search_fn="strong_wolfe")  # fmt: skip

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = inner(x, y)
        loss.backward()
        return loss

    optimizer.step(closure)
    y = y.detach()
    for _ in range(30):
        yl = y.detach().requires_grad_(True)
        gradient = torch.autograd.grad(inner(x, yl), yl, create_graph=True)[0]
        if gradient.abs().max() <= tol:
            return y
        b = gradient.detach()
        d, r = torch.zeros_like(b), b.clone()
        p, rr = r.clone(), r @ r
        for _ in range(500):
            hp = torch.autograd.grad(gradient, yl, p, retain_graph=True)[0]
            curvature = p @ hp
            if curvature <= 0:
                break
            alpha = rr / curvature
            d, r = d + alpha * p, r - alpha * hp
            rr, rr_old = r @ r, rr
            if rr.sqrt() <= 1e-3 * b.norm():
                break
            p = r + (rr / rr_old) * p
        d = b if not d.any() else d  # negative curvature at once: a gradient step
        value, slope, step = float(inner(x, y)), float(b @ d), 1.0
        while float(inner(x, y - step * d)) > value - 1e-4 * step * slope and step > 1e-10:
            step /= 2  # Armijo backtracking: the problem is nonconvex
        y = y - step * d
    raise RuntimeError(f"Newton-CG: max |grad_y g| = {gradient.abs().max():.2e} > {tol}")


@functools.cache
def mlp_reference() -> tuple[torch.Tensor, ...]:
    """(x, the inner solution, the reference, 1/L) of the MLP in float64, solved once a run."""
    outer, inner, x, y0 = mlp_objectives(torch.float64)
    y = mlp_solution(inner, x, y0)
    return x, y, cg_reference(outer, inner, x, y), 1.0 / largest_eigenvalue(inner, x, y)


def mlp(dtype: torch.dtype) -> Problem:
    x, y, exact, lr = mlp_reference()
    o, i, *_ = mlp_objectives(dtype)
    caps = {"cg": 2048, "neumann": 2048, "itd": 512}
    return Problem("mlp", o, i, x.to(dtype), y.to(dtype), lr, exact, caps, y.numel(), mlp_arrays())


PROBLEMS = {"logistic": logistic, "quadratic": quadratic, "mlp": mlp}


# ---------------------------------------------------------------- candidates -----------------


def candidates(p: Problem) -> list[tuple[str, str, Callable[[int], Fn]]]:
    """(family, library, steps -> zero-argument call) for every implementation timed."""
    o, i, x, y, lr = p.outer, p.inner, p.x, p.y, p.lr

    def torchopt_solver(name: str, steps: int):
        import torchopt

        if name == "cg":
            return torchopt.linear_solve.solve_cg(maxiter=steps, rtol=0.0, atol=0.0)
        return torchopt.linear_solve.solve_inv(ns=True, maxiter=steps, alpha=lr)

    mixed = [
        ("AID-CG, float32 rounds", "bilevel",
         lambda k: lambda: hypergradient(o, i, x, y, method="cg", steps=k, tol=0.0,
                                         low_precision=torch.float32)),
    ] if x.dtype == torch.float64 else []
    return [
        ("AID-CG", "bilevel",
         lambda k: lambda: hypergradient(o, i, x, y, method="cg", steps=k, tol=0.0)),
        *mixed,
        ("AID-CG", "plain torch.autograd", lambda k: lambda: plain_cg(o, i, x, y, k)),
        ("AID-CG", "TorchOpt", lambda k: torchopt_implicit(o, i, x, y, torchopt_solver("cg", k))),
        ("AID-CG", "BOAT", lambda k: boat_implicit(o, i, x, y, "conjugate_gradient", steps=k)),
        ("AID-CG", "Betty", lambda k: betty_implicit(o, i, x, y, "cg", steps=k)),
        ("AID-Neumann", "bilevel",
         lambda k: lambda: hypergradient(o, i, x, y, method="neumann", steps=k, lr=lr)),
        ("AID-Neumann", "TorchOpt",
         lambda k: torchopt_implicit(o, i, x, y, torchopt_solver("ns", k))),
        ("AID-Neumann", "BOAT",
         lambda k: boat_implicit(o, i, x, y, "neumann", lr=lr, steps=k)),
        ("ITD", "bilevel",
         lambda k: lambda: hypergradient(o, i, x, y, method="itd", steps=k, lr=lr)),
        ("ITD", "higher", lambda k: higher_itd(o, i, x, y, k, lr)),
        ("ITD", "BOAT", lambda k: boat_rad(o, i, x, y, k, lr)),
    ]  # fmt: skip


# ---------------------------------------------------------------- the search -----------------


def relative_error(value: torch.Tensor, exact: torch.Tensor) -> float:
    return float((value.double() - exact).norm() / exact.norm())


# ---------------------------------------------------------------- rows -----------------------


def interleaved_times(calls: dict, rounds: int) -> dict:
    """Median seconds per call of each ``calls[key]``, sampled in ``rounds`` rounds that visit
    every key in turn (so that a slow spell of the machine hits every library alike); a sample
    times as many back-to-back calls as fill 5 ms, like ``hypergradient.median_time``."""
    def sample(fn, n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - start) / n

    counts = {key: max(1, math.ceil(0.005 / max(sample(fn, 1), 1e-7))) for key, fn in calls.items()}
    samples: dict = {key: [] for key in calls}
    for _ in range(rounds):
        for key, fn in calls.items():
            samples[key].append(sample(fn, counts[key]))
    return {key: float(np.median(values)) for key, values in samples.items()}


def measure(p: Problem, dtype_name: str, repeats: int, progress=print) -> list[dict]:
    """Search every library's K per family and target, then time the calls that reached their
    target interleaved, one target and family at a time."""
    rows, hints, makers = [], {}, {}
    for family, library, make in candidates(p):
        family_key = {"AID-CG": "cg", "AID-Neumann": "neumann", "ITD": "itd"}[family.split(",")[0]]
        for target in TARGETS:
            row = {"problem": p.name, "dtype": dtype_name, "family": family,
                   "library": library, "target": target}  # fmt: skip
            try:
                steps, err = steps_to(
                    lambda k, make=make: relative_error(make(k)(), p.exact),
                    target, p.max_steps[family_key], hints.get((family, target)),
                )  # fmt: skip
                row.update(steps=steps, error=err)
                if steps is not None:
                    hints.setdefault((family, target), steps)
                    makers[len(rows)] = make(steps)
            except Exception as exc:  # a peer that fails or is missing is reported, never hidden
                row["failed"] = f"{type(exc).__name__}: {exc}"[:90]
            rows.append(row)
    for target in TARGETS:
        for family in dict.fromkeys(r["family"] for r in rows):
            keys = [k for k in makers if (rows[k]["target"], rows[k]["family"]) == (target, family)]
            for key, seconds in interleaved_times({k: makers[k] for k in keys}, repeats).items():
                rows[key]["seconds"] = seconds
    for row in rows:
        progress(_describe(row))
    return rows


def _describe(row: dict) -> str:
    head = f"{row['problem']} {row['dtype']} {row['family']} {row['library']} e={row['target']:g}"
    if "failed" in row:
        return f"{head}: {row['failed']}"
    if row["steps"] is None:
        return f"{head}: not reached (best {row['error']:.1e})"
    return f"{head}: K={row['steps']} err {row['error']:.1e} {row['seconds'] * 1e3:.2f} ms"


def jax_rows(p: Problem, dtype_name: str, repeats: int) -> list[dict]:
    """The JAX peer's rows, measured by ``jax_peer.py`` in its own environment on the same data,
    inner solution and reference (handed over in an .npz file)."""
    base = {"problem": p.name, "dtype": dtype_name, "library": "JAX (jit)"}

    def failed(why: str) -> list[dict]:
        return [{**base, "family": f, "target": t, "failed": why[:90]}
                for f in ("AID-CG", "ITD") for t in TARGETS]  # fmt: skip

    arrays = {**p.arrays, "x": p.x.double().numpy(), "y": p.y.double().numpy(),
              "exact": p.exact.numpy(), "lr": p.lr, "cap_cg": p.max_steps["cg"],
              "cap_itd": p.max_steps["itd"]}  # fmt: skip
    ok, answer = run_jax_peer(arrays, ["--dtype", dtype_name, "--repeats", str(repeats)])
    return [{**base, **row} for row in answer] if ok else failed(answer)


def run_jax_peer(arrays: dict, arguments: list[str]) -> tuple[bool, object]:
    """(True, the parsed JSON that ``jax_peer.py`` printed) or (False, why it could not run):
    ``arrays`` go to it as an .npz file, in ``.venv-jax``, on the CPU."""
    if not JAX_PYTHON.exists():
        return False, "no .venv-jax (make bench-jax)"
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "problem.npz"
        np.savez(data, **arrays)
        done = subprocess.run(
            [str(JAX_PYTHON), str(Path(__file__).parent / "jax_peer.py"), "--data", str(data),
             *arguments],
            capture_output=True, text=True, check=False, timeout=3600,
            env={**os.environ, "JAX_PLATFORMS": "cpu"},
        )  # fmt: skip
    if done.returncode != 0:
        return False, (done.stderr.strip().splitlines() or ["no output"])[-1][:90]
    return True, json.loads(done.stdout)


# ---------------------------------------------------------------- tables ---------------------


def _cell(row: dict) -> str:
    if "failed" in row:
        return "failed"
    if row["steps"] is None:
        return f"not reached (floor {row['error']:.0e})"
    return f"{row['seconds'] * 1e3:.1f} ms (K={row['steps']})"


def table(rows: list[dict]) -> str:
    """One table per (problem, dtype): a row per family and library, a column per target with
    the time, K and the ratio to the fastest row of any family at that target."""
    out = []
    for key in dict.fromkeys((r["problem"], r["dtype"]) for r in rows):
        block = [r for r in rows if (r["problem"], r["dtype"]) == key]
        fastest = {t: min((r["seconds"] for r in block if r["target"] == t and "seconds" in r),
                          default=None) for t in TARGETS}  # fmt: skip
        out += [f"\n### {key[0]}, {key[1]}\n",
                "| method | library | " + " | ".join(f"e = {t:g}" for t in TARGETS) + " |",
                "|---|---|" + "---|" * len(TARGETS)]  # fmt: skip
        for family, library in dict.fromkeys((r["family"], r["library"]) for r in block):
            cells = []
            for t in TARGETS:
                row = next(r for r in block if (r["family"], r["library"], r["target"])
                           == (family, library, t))  # fmt: skip
                cell = _cell(row)
                if "seconds" in row and fastest[t]:
                    cell += f", {row['seconds'] / fastest[t]:.2f}x"
                cells.append(cell)
            out.append(f"| {family} | {library} | " + " | ".join(cells) + " |")
        failures = [r for r in block if "failed" in r]
        for r in dict((r["library"], r) for r in failures).values():
            out.append(f"\n{r['library']} failed: `{r['failed']}`")
    return "\n".join(out)


def verdict(rows: list[dict]) -> str:
    """bilevel's best time against the fastest of any library, per problem, dtype and target."""
    lines = ["\n### bilevel against the fastest library\n",
             "| problem | dtype | target | bilevel (best method) | fastest other | ratio |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for key in dict.fromkeys((r["problem"], r["dtype"], r["target"]) for r in rows):
        block = [r for r in rows if (r["problem"], r["dtype"], r["target"]) == key and
                 "seconds" in r]  # fmt: skip
        ours = [r for r in block if r["library"] == "bilevel"]
        theirs = [r for r in block if r["library"] != "bilevel"]
        if not ours:
            lines.append(f"| {key[0]} | {key[1]} | {key[2]:g} | not reached | | |")
            continue
        best = min(ours, key=lambda r: r["seconds"])
        if not theirs:
            lines.append(f"| {key[0]} | {key[1]} | {key[2]:g} | {best['seconds'] * 1e3:.1f} ms "
                         f"({best['family']}) | none reached | |")  # fmt: skip
            continue
        rival = min(theirs, key=lambda r: r["seconds"])
        lines.append(
            f"| {key[0]} | {key[1]} | {key[2]:g} | {best['seconds'] * 1e3:.1f} ms "
            f"({best['family']}) | {rival['seconds'] * 1e3:.1f} ms ({rival['library']}, "
            f"{rival['family']}) | {best['seconds'] / rival['seconds']:.2f}x |"
        )
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), Python {platform.python_version()}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", default="logistic,quadratic,mlp")
    parser.add_argument("--dtypes", default="float64,float32")
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also save the raw rows")
    args = parser.parse_args()
    started, rows = time.time(), []
    for name in args.problems.split(","):
        for dtype_name in args.dtypes.split(","):
            p = PROBLEMS[name](getattr(torch, dtype_name))
            print(f"# {name} {dtype_name}: {p.inner_parameters} inner parameters, step {p.lr:.3g}",
                  flush=True)  # fmt: skip
            rows += measure(p, dtype_name, args.repeats, lambda s: print(s, flush=True))
            for row in jax_rows(p, dtype_name, args.repeats):
                rows.append(row)
                print(_describe(row) if "steps" in row or "failed" in row else row, flush=True)
            if args.json:
                args.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    text = (f"Machine: {machine()}; measured in one run of {time.time() - started:.0f} s.\n"
            + table(rows) + "\n" + verdict(rows))  # fmt: skip
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
