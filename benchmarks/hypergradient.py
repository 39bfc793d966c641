"""Benchmark of one hypergradient per method, in units of the oracles measured in the same run.

For each problem and method: median wall time of one ``hypergradient`` call, its relative error
against the exact (dense) value, its oracle counts, and the ratio

    time / (hvp * t_HVP + mixed * t_mixed + grad_inner * t_grad_g + grad_outer * t_grad_f),

the distance from the oracle-count limit (1.0 = no overhead beyond the oracles themselves; for
ITD one VJP per step replaces the HVP + mixed pair).
Targets (issue 3): CG and Neumann within 1.3x, ITD within 1.5x. Run: ``make bench`` or
``python benchmarks/hypergradient.py [--quick] [--out FILE.md]``. Peak memory is reported on
CUDA (``torch.cuda.max_memory_allocated`` above what was allocated before the call) and on the
CPU (the rise of ``VmHWM`` above ``VmRSS`` in a fresh process, ``cpu_peak_mib``): the memory that
``checkpoint=True`` keeps flat in T for ITD.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import math
import multiprocessing
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from tqdm import tqdm

from bilevel.solvers import OracleCounts, hypergradient
from bilevel.solvers.oracles import SecondOrderOracle


def quadratic_arrays(d: int, kappa: float, seed: int = 0) -> tuple[np.ndarray, ...]:
    """(A, B, x, y) of ``quadratic_problem`` as float64 arrays."""
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    q = q * np.sign(np.diag(r))
    spectrum = np.geomspace(1.0, kappa, d)
    A, B = (q * spectrum) @ q.T, rng.standard_normal((d, 10)) / np.sqrt(d)
    return A, B, rng.standard_normal(10), rng.standard_normal(d)


def quadratic_problem(d: int, kappa: float, device: str, dtype: torch.dtype, seed: int = 0):
    """g = 1/2 y^T A y - y^T B x, f = 1/2 ||y - 1||^2 + 1/2 ||x||^2 with cond(A) = kappa."""
    t = lambda a: torch.as_tensor(a, dtype=dtype, device=device)  # noqa: E731
    A, B, x, y = (t(a) for a in quadratic_arrays(d, kappa, seed))
    inner = lambda x, y: 0.5 * y @ (A @ y) - y @ (B @ x)  # noqa: E731
    outer = lambda x, y: 0.5 * ((y - 1) ** 2).sum() + 0.5 * (x**2).sum()  # noqa: E731
    return outer, inner, x, y, 1.0 / kappa  # step 1/L with L = kappa


def logistic_arrays(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features, labels in {-1, 1}, the initial y) of ``logistic_problem``, float64."""
    rng = np.random.default_rng(seed)
    feats = rng.standard_normal((n, d))
    labels = np.sign(feats @ rng.standard_normal(d) + rng.standard_normal(n))
    return feats, labels, 0.01 * rng.standard_normal(d)


def logistic_problem(n: int, d: int, device: str, dtype: torch.dtype, seed: int = 0):
    """L2-regularised logistic regression, one exp-parametrised weight per feature; the first
    4/5 of the rows train, the rest validate."""
    t = lambda a: torch.as_tensor(a, dtype=dtype, device=device)  # noqa: E731
    feats, labels, y = (t(a) for a in logistic_arrays(n, d, seed))
    tr, va = slice(0, n * 4 // 5), slice(n * 4 // 5, n)

    def inner(x, y):
        loss = torch.nn.functional.softplus(-labels[tr] * (feats[tr] @ y)).mean()
        return loss + 0.5 * (torch.exp(x) * y**2).sum()

    def outer(x, y):
        return torch.nn.functional.softplus(-labels[va] * (feats[va] @ y)).mean()

    x = torch.full((d,), float(np.log(1e-2)), dtype=dtype, device=device)
    return outer, inner, x, y, 1.0


MIN_SAMPLE_SECONDS = 0.005
MEMORY_REPEATS = 3


def median_time(fn: Callable[[], object], repeats: int, device: str) -> float:
    """Median over ``repeats`` samples of the time of one ``fn()`` call. A sample times as many
    back-to-back calls as fill ``MIN_SAMPLE_SECONDS`` (timeit's autorange): one call of a 40 us
    HVP is within the clock's and the interpreter's jitter, and the ratios divide by it."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def sample(calls: int) -> float:
        sync()
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        sync()
        return (time.perf_counter() - start) / calls

    calls = max(1, math.ceil(MIN_SAMPLE_SECONDS / max(sample(1), 1e-7)))  # also the warm-up
    return statistics.median(sample(calls) for _ in range(repeats))


def build_problem(spec: tuple, device: str, dtype: torch.dtype):
    """("quadratic", d) or ("logistic", n, d) -> (outer, inner, x, y, lr)."""
    if spec[0] == "quadratic":
        return quadratic_problem(spec[1], 100.0, device, dtype)
    outer, inner, x, y, _ = logistic_problem(spec[1], spec[2], device, dtype)
    return outer, inner, x, y, 1.0


def _proc_status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _return_free_heap_to_the_os() -> None:
    """glibc keeps freed heap pages resident (the problem's set-up temporaries: a QR of a
    1000 x 1000 matrix); a call reusing them would not raise the RSS, and its peak would read
    too low. ``malloc_trim(0)`` hands them back first (no-op off glibc)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_rss_mib(fn: Callable[[], object]) -> float:
    """Peak resident memory of ``fn()`` above the resident memory before it, in MiB.

    Linux only (NaN elsewhere): writing 5 to ``/proc/self/clear_refs`` resets the high-water
    mark ``VmHWM``, which then records the peak of the call (torch has no CPU counterpart of
    ``torch.cuda.max_memory_allocated``). Run in a fresh process (``cpu_peak_mib``): memory the
    allocator kept from earlier calls would be reused without raising the mark.
    """
    _return_free_heap_to_the_os()
    try:
        before = _proc_status_kib("VmRSS")
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
            clear.write("5")
    except OSError:
        return float("nan")
    fn()
    return max(_proc_status_kib("VmHWM") - before, 0) / 1024


def _cpu_peak_child(spec: tuple, dtype_name: str, options: dict) -> float:
    torch.set_num_threads(1)
    dtype = getattr(torch, dtype_name)
    # the same method once on a tiny problem of the same kind first: loads the code paths
    # (autograd's double backward alone costs ~35 MiB of one-off pages, each kernel more) while
    # leaving the allocator almost empty
    tiny = ("quadratic", 2) if spec[0] == "quadratic" else ("logistic", 50, 5)
    warm_outer, warm_inner, wx, wy, warm_lr = build_problem(tiny, "cpu", dtype)
    hypergradient(warm_outer, warm_inner, wx, wy, **_with_lr(options, warm_lr))
    outer, inner, x, y, lr = build_problem(spec, "cpu", dtype)
    kw = _with_lr(options, lr)
    return peak_rss_mib(lambda: hypergradient(outer, inner, x, y, **kw))


def cpu_peak_mib(spec: tuple, dtype_name: str, options: dict) -> float:
    """``peak_rss_mib`` of one call in a fresh spawned process (about 2 s each)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(_cpu_peak_child, spec, dtype_name, options).result()


def _fill_cpu_peak(line: str, problems: dict[str, tuple], dtype_name: str) -> str:
    """Replace the 'nan' memory cell of a table row by the median ``cpu_peak_mib`` of its method
    over ``MEMORY_REPEATS`` fresh processes: a process now and then holds ~2 MiB more (measured
    0.47 or 2.5 MiB for the same d = 1000 ITD call), an outlier the median drops."""
    cells = line.split(" | ")
    if len(cells) < 3 or not line.endswith("| nan |"):
        return line
    name, label = cells[0].removeprefix("| "), cells[1]
    options = dict(METHODS)[label]
    peaks = [cpu_peak_mib(problems[name], dtype_name, options) for _ in range(MEMORY_REPEATS)]
    return line.removesuffix("| nan |") + f"| {statistics.median(peaks):.2f} |"


def _with_lr(options: dict, lr: float) -> dict:
    kw = {"method": "exact"} if not options else dict(options)
    if kw["method"] in ("neumann", "itd"):
        kw["lr"] = lr
    return kw


def autograd_gradient(fn, x, y, wrt: str):
    """One gradient of ``fn`` at (x, y) in y (``wrt="y"``) or in (x, y) (``"xy"``), plain autograd.

    The unit of a gradient oracle: the cheapest way torch computes it (``torch.func.grad``
    costs about 2.5x more at d = 100 on the CPU, which would flatter every ratio).
    """
    x_leaf, y_leaf = x.detach().requires_grad_(wrt == "xy"), y.detach().requires_grad_(True)
    with torch.enable_grad():
        value = fn(x_leaf, y_leaf)
    return torch.autograd.grad(
        value, (x_leaf, y_leaf) if wrt == "xy" else y_leaf, allow_unused=True
    )


def input_mib(outer, inner, x, y) -> float:
    """MiB of the tensors a call reads: x, y and those the objectives close over (the data)."""
    cells = [*(outer.__closure__ or ()), *(inner.__closure__ or ())]
    tensors = {id(t): t for t in (x, y, *(c.cell_contents for c in cells)) if torch.is_tensor(t)}
    return sum(t.untyped_storage().nbytes() for t in tensors.values()) / 2**20


def oracle_unit_times(outer, inner, x, y, repeats: int, device: str) -> dict[str, float]:
    oracle = SecondOrderOracle(inner, x, y, OracleCounts())
    v = torch.ones_like(y)
    return {
        "grad_g": median_time(lambda: autograd_gradient(inner, x, y, "y"), repeats, device),
        "grad_f": median_time(lambda: autograd_gradient(outer, x, y, "xy"), repeats, device),
        "hvp": median_time(lambda: oracle.hvp(v), repeats, device),
        "mixed": median_time(lambda: oracle.mixed(v), repeats, device),
        "linearise": median_time(
            lambda: SecondOrderOracle(inner, x, y, OracleCounts()), repeats, device
        ),
    }


ITD_STEPS = (10, 50, 200)
ITD_CHECKPOINTS = {
    "": {},
    " ckpt": {"checkpoint": True},
    " ckpt auto": {"checkpoint": "auto"},
    " ckpt sqrt": {"checkpoint": "sqrt"},
    " ckpt binomial": {"checkpoint": "binomial"},
}
METHODS = [
    ("exact", {}),
    ("cg K=10", {"method": "cg", "steps": 10, "tol": 0.0}),
    ("cg K=50", {"method": "cg", "steps": 50, "tol": 0.0}),
    ("neumann Q=10", {"method": "neumann", "steps": 10}),
    ("neumann Q=50", {"method": "neumann", "steps": 50}),
    *(
        (f"itd T={steps}{suffix}", {"method": "itd", "steps": steps, **option})
        for steps in ITD_STEPS
        for suffix, option in ITD_CHECKPOINTS.items()
    ),
]


def bench_problem(name: str, spec: tuple, args: argparse.Namespace) -> list[str]:
    device, dtype = args.device, getattr(torch, args.dtype)
    outer, inner, x, y, lr = build_problem(spec, device, dtype)
    units = oracle_unit_times(outer, inner, x, y, args.repeats, device)
    exact = None
    if y.numel() <= 1000:
        exact = hypergradient(outer, inner, x, y, method="exact")
    rows = []
    for label, opts in METHODS:
        if label == "exact" and exact is None:
            continue
        kw = _with_lr(opts, lr)
        counts = OracleCounts()
        out = hypergradient(outer, inner, x, y, counts=counts, **kw)
        seconds = median_time(
            lambda kw=kw: hypergradient(outer, inner, x, y, **kw), args.repeats, device
        )
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            hypergradient(outer, inner, x, y, **kw)
            torch.cuda.synchronize()
            peak = (torch.cuda.max_memory_allocated() - base) / 2**20
        else:
            peak = float("nan")  # measured after all timings, in fresh processes (main)
        # ITD's backward pass through one GD step is a single VJP that yields the HVP and the
        # mixed product together, so its limit charges one HVP-cost per step, not two.
        mixed_cost = 0.0 if kw["method"] == "itd" else counts.mixed * units["mixed"]
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
            f"| {name} | {label} | {seconds * 1e3:.2f} | {ratio} | {counts.hvp} | "
            f"{counts.grad_inner} | {err} | {peak:.1f} |"
        )
    unit_row = (
        f"| {name} | (units) | grad_g {units['grad_g'] * 1e3:.3f} ms, grad_f "
        f"{units['grad_f'] * 1e3:.3f} ms, HVP {units['hvp'] * 1e3:.3f} ms, mixed "
        f"{units['mixed'] * 1e3:.3f} ms, linearise "
        f"{units['linearise'] * 1e3:.3f} ms; inputs {input_mib(outer, inner, x, y):.2f} MiB "
        "| | | | | |"
    )
    return [unit_row, *rows]


def _ratio(numerator: float, denominator: float) -> str:
    """numerator / denominator to 2 decimals, or "-" below the 0.01 MiB the table resolves."""
    return f"{numerator / denominator:.2f}" if denominator >= 0.01 else "-"


def checkpoint_summary(lines: list[str]) -> list[str]:
    """Per problem and ITD variant: extra peak memory at the smallest and largest T, their
    ratio alone and with the inputs counted, and time against plain ITD at the largest T."""
    rows: dict[tuple[str, str], tuple[float, float]] = {}
    inputs: dict[str, float] = {}
    for line in lines:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) < 8:
            continue
        if cells[1] == "(units)" and "inputs " in cells[2]:
            inputs[cells[0]] = float(cells[2].split("inputs ")[1].split()[0])
        elif cells[1].startswith("itd T="):
            rows[cells[0], cells[1]] = float(cells[2]), float(cells[7])
    first, last = ITD_STEPS[0], ITD_STEPS[-1]
    out = [
        "",
        f"ITD memory from T = {first} to T = {last} (extra: above the memory before the call; "
        "with inputs: plus the data, x and y the call reads)",
        "",
        f"| problem | variant | extra MiB T={first} | extra MiB T={last} | extra ratio | "
        f"ratio with inputs | time / plain ITD at T={last} |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in inputs:
        plain_ms = rows.get((name, f"itd T={last}"), (float("nan"),))[0]
        for suffix in ITD_CHECKPOINTS:
            small, large = (
                rows.get((name, f"itd T={first}{suffix}")),
                rows.get((name, f"itd T={last}{suffix}")),
            )
            if small is None or large is None:
                continue
            base = inputs[name]
            out.append(
                f"| {name} | {suffix.strip() or 'plain'} | {small[1]:.2f} | {large[1]:.2f} | "
                f"{_ratio(large[1], small[1])} | "
                f"{_ratio(large[1] + base, small[1] + base)} | {large[0] / plain_ms:.2f} |"
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default=None, help="also write the table to this file")
    args = parser.parse_args()
    sizes = [100] if args.quick else [100, 1000, 4000]
    n, d = (1000, 100) if args.quick else (5000, 500)
    problems = [(f"quadratic d={k}", ("quadratic", k)) for k in sizes]
    problems.append((f"logistic n={n} d={d}", ("logistic", n, d)))
    memory = "CUDA peak allocated" if args.device == "cuda" else "CPU peak RSS"
    lines = [
        f"device {args.device}"
        + (f" ({torch.cuda.get_device_name()})" if args.device == "cuda" else "")
        + f", {args.dtype}, torch {torch.__version__}, {torch.get_num_threads()} threads",
        "",
        "| problem | method | ms | time / oracle limit | HVPs | inner grads | rel. error vs exact "
        f"| extra MiB ({memory}) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, spec in tqdm(problems, desc="problems", file=sys.stderr):
        lines += bench_problem(name, spec, args)
    if args.device == "cpu":  # peak memory after the timings, so no process runs beside them
        lines = [_fill_cpu_peak(line, dict(problems), args.dtype) for line in lines]
    lines += checkpoint_summary(lines)
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
