"""Benchmark of one hypergradient per method, in units of the oracles measured in the same run.

For each problem and method: median wall time of one ``hypergradient`` call, its relative error
against the exact (dense) value, its oracle counts, and the ratio

    time / (hvp * t_HVP + mixed * t_HVP + grad_inner * t_grad_g + grad_outer * t_grad_f),

the distance from the oracle-count limit (1.0 = no overhead beyond the oracles themselves; for
ITD one VJP per step replaces the HVP + mixed pair).
Targets (issue 3): CG and Neumann within 1.3x, ITD within 1.5x. Run: ``make bench`` or
``python benchmarks/hypergradient.py [--quick] [--out FILE.md]``. Peak memory is reported on
CUDA (``torch.cuda.max_memory_allocated``); on the CPU, for ITD, the MiB saved by the autograd
graph (``saved_graph_mib``), which is what checkpointing is meant to keep flat in T.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from bilevel.solvers import OracleCounts, hypergradient
from bilevel.solvers.oracles import SecondOrderOracle


def quadratic_problem(d: int, kappa: float, device: str, dtype: torch.dtype, seed: int = 0):
    """g = 1/2 y^T A y - y^T B x, f = 1/2 ||y - 1||^2 + 1/2 ||x||^2 with cond(A) = kappa."""
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    q = q * np.sign(np.diag(r))
    spectrum = np.geomspace(1.0, kappa, d)
    t = lambda a: torch.as_tensor(a, dtype=dtype, device=device)  # noqa: E731
    A, B = t((q * spectrum) @ q.T), t(rng.standard_normal((d, 10)) / np.sqrt(d))
    inner = lambda x, y: 0.5 * y @ (A @ y) - y @ (B @ x)  # noqa: E731
    outer = lambda x, y: 0.5 * ((y - 1) ** 2).sum() + 0.5 * (x**2).sum()  # noqa: E731
    x, y = t(rng.standard_normal(10)), t(rng.standard_normal(d))
    return outer, inner, x, y, 1.0 / kappa  # step 1/L with L = kappa


def logistic_problem(n: int, d: int, device: str, dtype: torch.dtype, seed: int = 0):
    """L2-regularised logistic regression, one exp-parametrised weight per feature."""
    rng = np.random.default_rng(seed)
    t = lambda a: torch.as_tensor(a, dtype=dtype, device=device)  # noqa: E731
    feats = t(rng.standard_normal((n, d)))
    labels = torch.sign(feats @ t(rng.standard_normal(d)) + t(rng.standard_normal(n)))
    tr, va = slice(0, n * 4 // 5), slice(n * 4 // 5, n)

    def inner(x, y):
        loss = torch.nn.functional.softplus(-labels[tr] * (feats[tr] @ y)).mean()
        return loss + 0.5 * (torch.exp(x) * y**2).sum()

    def outer(x, y):
        return torch.nn.functional.softplus(-labels[va] * (feats[va] @ y)).mean()

    x = torch.full((d,), float(np.log(1e-2)), dtype=dtype, device=device)
    y = t(0.01 * rng.standard_normal(d))
    return outer, inner, x, y, 1.0 / (0.25 * float(np.linalg.norm(rng.standard_normal(1))) + 1.0)


def median_time(fn: Callable[[], object], repeats: int, device: str) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def saved_graph_mib(fn: Callable[[], object]) -> float:
    """MiB of tensors the autograd graph saves while ``fn`` runs (unique storages).

    A CPU stand-in for peak memory where the memory is the unrolled graph (ITD): measured with
    ``torch.autograd.graph.saved_tensors_hooks``. ``torch.func`` transforms refuse such hooks,
    so it applies to ITD only.
    """
    seen: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values()) / 2**20


def oracle_unit_times(outer, inner, x, y, repeats: int, device: str) -> dict[str, float]:
    grad_g = torch.func.grad(inner, argnums=1)
    grad_f = torch.func.grad(outer, argnums=(0, 1))
    oracle = SecondOrderOracle(inner, x, y, OracleCounts())
    v = torch.ones_like(y)
    return {
        "grad_g": median_time(lambda: grad_g(x, y), repeats, device),
        "grad_f": median_time(lambda: grad_f(x, y), repeats, device),
        "hvp": median_time(lambda: oracle.hvp(v), repeats, device),
        "linearise": median_time(
            lambda: SecondOrderOracle(inner, x, y, OracleCounts()), repeats, device
        ),
    }


METHODS = [
    ("exact", {}),
    ("cg K=10", {"method": "cg", "steps": 10, "tol": 0.0}),
    ("cg K=50", {"method": "cg", "steps": 50, "tol": 0.0}),
    ("neumann Q=10", {"method": "neumann", "steps": 10}),
    ("neumann Q=50", {"method": "neumann", "steps": 50}),
    ("itd T=10", {"method": "itd", "steps": 10}),
    ("itd T=50", {"method": "itd", "steps": 50}),
    ("itd T=50 ckpt", {"method": "itd", "steps": 50, "checkpoint": True}),
    ("itd T=200", {"method": "itd", "steps": 200}),
    ("itd T=200 ckpt", {"method": "itd", "steps": 200, "checkpoint": True}),
]


def bench_problem(name, outer, inner, x, y, lr, repeats, device) -> list[str]:
    units = oracle_unit_times(outer, inner, x, y, repeats, device)
    exact = None
    if y.numel() <= 1000:
        exact = hypergradient(outer, inner, x, y, method="exact")
    rows = []
    for label, opts in METHODS:
        if label == "exact" and exact is None:
            continue
        kw = {"method": "exact"} if label == "exact" else dict(opts)
        if kw["method"] in ("neumann", "itd"):
            kw["lr"] = lr
        counts = OracleCounts()
        out = hypergradient(outer, inner, x, y, counts=counts, **kw)
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        seconds = median_time(
            lambda kw=kw: hypergradient(outer, inner, x, y, **kw), repeats, device
        )
        if device == "cuda":
            peak = f"{torch.cuda.max_memory_allocated() / 2**20:.1f}"
        elif kw["method"] == "itd":
            graph = saved_graph_mib(lambda kw=kw: hypergradient(outer, inner, x, y, **kw))
            peak = f"graph {graph:.2f}"
        else:
            peak = "n/a"
        # ITD's backward pass through one GD step is a single VJP that yields the HVP and the
        # mixed product together, so its limit charges one HVP-cost per step, not two.
        mixed_cost = 0.0 if kw["method"] == "itd" else counts.mixed * units["hvp"]
        limit = (
            counts.hvp * units["hvp"]
            + mixed_cost
            + counts.grad_inner * units["grad_g"]
            + counts.grad_outer * units["grad_f"]
        )
        err = (
            f"{(torch.linalg.vector_norm(out - exact) / torch.linalg.vector_norm(exact)).item():.1e}"
            if exact is not None
            else "n/a"
        )
        ratio = f"{seconds / limit:.2f}" if label != "exact" else "-"
        rows.append(
            f"| {name} | {label} | {seconds * 1e3:.2f} | {ratio} | {counts.hvp} | {err} | {peak} |"
        )
    unit_row = (
        f"| {name} | (units) | grad_g {units['grad_g'] * 1e3:.3f} ms, grad_f "
        f"{units['grad_f'] * 1e3:.3f} ms, HVP {units['hvp'] * 1e3:.3f} ms, linearise "
        f"{units['linearise'] * 1e3:.3f} ms | | | | |"
    )
    return [unit_row, *rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default=None, help="also write the table to this file")
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    sizes = [100] if args.quick else [100, 1000, 4000]
    lines = [
        f"device {args.device}, {args.dtype}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads",
        "",
        "| problem | method | ms | time / oracle limit | HVPs | rel. error vs exact | MiB (CUDA peak; CPU: ITD graph) |",
        "|---|---|---|---|---|---|---|",
    ]
    for d in sizes:
        outer, inner, x, y, lr = quadratic_problem(d, 100.0, args.device, dtype)
        lines += bench_problem(
            f"quadratic d={d}", outer, inner, x, y, lr, args.repeats, args.device
        )
    n, d = (1000, 100) if args.quick else (5000, 500)
    outer, inner, x, y, _ = logistic_problem(n, d, args.device, dtype)
    lines += bench_problem(
        f"logistic n={n} d={d}", outer, inner, x, y, 1.0, args.repeats, args.device
    )
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
