"""Where one Hessian-vector product's time goes: HVP variants against the device's own limit.

A CG or Neumann hypergradient is K HVPs plus a few gradients (``hypergradient.py`` shows ours
within 1.0-1.1x of that count), so a faster hypergradient needs a faster HVP. This script times,
in one run and on one problem:

- ``bilevel (cached linearisation)``: ``SecondOrderOracle.hvp``, one backward pass through the
  graph of grad_y g recorded once (what CG, Neumann and ITD use);
- ``plain double backward``: grad_y g rebuilt with ``create_graph=True`` at every product (the
  loop users write, and TorchOpt's implicit differentiation);
- ``torch.func reverse-over-reverse`` and ``forward-over-reverse`` (``vjp`` / ``jvp`` of
  ``grad``), eager and under ``torch.compile`` (the whole closure, gradient included: a compiled
  function cannot reuse an autograd graph recorded outside it), and ``torch.func.linearize`` (the
  tangent map v -> H v traced once with the primal values as constants), eager and compiled;
- units measured in the same run: one gradient grad_y g (plain autograd); for logistic, the two
  matrix-vector products any HVP X^T D X v must do (X v and u^T X), timed alone (the floor).

Throughput: FLOPs of one HVP (``torch.utils.flop_counter.FlopCounterMode`` on the cached variant)
per second, against the device's dense-matmul throughput measured in the same run.

Problems: ``logistic`` (n = 5000, d = 500, the hypergradient benchmark's problem) and ``mlp``,
an MLP regression whose flat parameter vector is the inner variable and whose per-layer log
weight decays are x, with about ``--params`` parameters (10^6 and 10^7 on a GPU; 10^5 and 10^6
on the CPU). Run: ``python benchmarks/hvp.py [--device cuda] [--dtype float32] [--compile]
[--out FILE.md]``.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch.func import grad, jvp, linearize, vjp
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).parent))
from hypergradient import logistic_problem, median_time

from bilevel.solvers import OracleCounts
from bilevel.solvers.oracles import SecondOrderOracle


def mlp_problem(params: int, device: str, dtype: torch.dtype, batch: int = 256, seed: int = 0):
    """inner(x, w) = mean ||MLP_w(a) - b||^2 / 2 + sum_l exp(x_l) ||W_l||^2 / 2, 3 layers.

    Width h solves h^2 + 64 h ~ params (input 32, output 32, hidden layers of width h).
    Returns (inner, x, w, width).
    """
    gen = torch.Generator(device="cpu").manual_seed(seed)
    width = max(8, int((-64 + math.sqrt(64**2 + 4 * params)) / 2))
    shapes = [(32, width), (width, width), (width, 32)]
    sizes = [a * b for a, b in shapes]
    a = torch.randn(batch, 32, generator=gen, dtype=dtype).to(device)
    b = torch.randn(batch, 32, generator=gen, dtype=dtype).to(device)
    w = torch.cat([torch.randn(s, generator=gen, dtype=dtype) / math.sqrt(r) for s, (r, _) in
                   zip(sizes, shapes, strict=True)]).to(device)  # fmt: skip
    x = torch.full((3,), math.log(1e-3), dtype=dtype, device=device)

    def layers(flat: torch.Tensor) -> list[torch.Tensor]:
        return [p.view(shape) for p, shape in zip(flat.split(sizes), shapes, strict=True)]

    def inner(hyper: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
        weights = layers(flat)
        h = a
        for k, weight in enumerate(weights):
            h = h @ weight
            if k < len(weights) - 1:
                h = torch.tanh(h)
        fit = 0.5 * ((h - b) ** 2).sum(dim=1).mean()
        return fit + 0.5 * sum(torch.exp(hyper[k]) * (wk**2).sum() for k, wk in enumerate(weights))

    return inner, x, w, width


def logistic_with_floor(device: str, dtype: torch.dtype):
    _, inner, x, y, _ = logistic_problem(5000, 500, device, dtype)
    feats = torch.randn(4000, 500, dtype=dtype, device=device)
    u, v = (
        torch.randn(4000, dtype=dtype, device=device),
        torch.randn(500, dtype=dtype, device=device),
    )
    return inner, x, y, lambda: (feats @ v, u @ feats)


def hvp_variants(inner, x, y, compile_too: bool) -> dict[str, Callable[[torch.Tensor], object]]:
    """name -> v -> H v, every variant computing the same product."""
    oracle = SecondOrderOracle(inner, x, y, OracleCounts())

    def double_backward(v: torch.Tensor) -> torch.Tensor:
        leaf = y.detach().requires_grad_(True)
        with torch.enable_grad():
            (g,) = torch.autograd.grad(inner(x, leaf), leaf, create_graph=True)
            (hv,) = torch.autograd.grad(g, leaf, v)
        return hv

    grad_y = grad(lambda w: inner(x, w))

    def rev_rev(v: torch.Tensor) -> torch.Tensor:
        return vjp(grad_y, y)[1](v)[0]

    def fwd_rev(v: torch.Tensor) -> torch.Tensor:
        return jvp(grad_y, (y,), (v,))[1]

    linearized = linearize(grad_y, y)[1]  # the tangent map v -> H v, traced once
    variants = {
        "bilevel (cached linearisation)": oracle.hvp,
        "plain double backward": double_backward,
        "torch.func reverse-over-reverse": rev_rev,
        "torch.func forward-over-reverse": fwd_rev,
        "torch.func.linearize (traced tangent map)": linearized,
    }
    if compile_too:
        variants["torch.compile reverse-over-reverse"] = torch.compile(rev_rev)
        variants["torch.compile forward-over-reverse"] = torch.compile(fwd_rev)
        variants["torch.compile of the linearized map"] = torch.compile(linearized)
    return variants


def matmul_flops_per_second(device: str, dtype: torch.dtype, repeats: int) -> float:
    n = 2048 if device == "cuda" else 1024
    a = torch.randn(n, n, dtype=dtype, device=device)
    return 2 * n**3 / median_time(lambda: a @ a, repeats, device)


def gradient_seconds(inner, x, y, repeats: int, device: str) -> float:
    def gradient() -> torch.Tensor:
        leaf = y.detach().requires_grad_(True)
        with torch.enable_grad():
            return torch.autograd.grad(inner(x, leaf), leaf)[0]

    return median_time(gradient, repeats, device)


def bench(name: str, inner, x, y, floor, args) -> list[str]:
    device, dtype = args.device, getattr(torch, args.dtype)
    v = torch.randn(y.shape, dtype=dtype, device=device)
    variants = hvp_variants(inner, x, y, args.compile)
    reference = variants["bilevel (cached linearisation)"](v)
    with FlopCounterMode(display=False) as counter:
        variants["bilevel (cached linearisation)"](v)
    flops = counter.get_total_flops()
    peak = matmul_flops_per_second(device, dtype, args.repeats)
    grad_s = gradient_seconds(inner, x, y, args.repeats, device)
    rows = [f"| {name} | (unit) one gradient grad_y g | {grad_s * 1e3:.3f} | 1.00 | - | - |"]
    if floor is not None:
        floor_s = median_time(floor, args.repeats, device)
        rows.append(
            f"| {name} | (floor) X v and u^T X alone | {floor_s * 1e3:.3f} | "
            f"{floor_s / grad_s:.2f} | - | - |"
        )
    for label, fn in variants.items():
        diff = fn(v) - reference
        err = float(torch.linalg.vector_norm(diff) / torch.linalg.vector_norm(reference))
        seconds = median_time(lambda fn=fn: fn(v), args.repeats, device)
        rate = flops / seconds
        throughput = (
            f"{rate / 1e9:.1f} GFLOP/s ({100 * rate / peak:.0f}% of matmul)"
            if flops  # the flop counter sees matrix products only (none in matrix-vector HVPs)
            else "- (matrix-vector: memory-bound)"
        )
        rows.append(
            f"| {name} | {label} | {seconds * 1e3:.3f} | {seconds / grad_s:.2f} | "
            f"{throughput} | {err:.1e} |"
        )
    rows.append(f"| {name} | (device dense matmul) | - | - | {peak / 1e9:.1f} GFLOP/s | - |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--params", type=int, nargs="*", default=None)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile variants")
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    sizes = args.params or ([10**6, 10**7] if args.device == "cuda" else [10**5, 10**6])
    lines = [
        f"device {args.device}"
        + (f" ({torch.cuda.get_device_name()})" if args.device == "cuda" else "")
        + f", {args.dtype}, torch {torch.__version__}, {torch.get_num_threads()} threads",
        "",
        "| problem | HVP variant | ms | in gradients | throughput | rel. diff. vs cached |",
        "|---|---|---|---|---|---|",
    ]
    inner, x, y, floor = logistic_with_floor(args.device, dtype)
    lines += bench("logistic n=5000 d=500", inner, x, y, floor, args)
    for params in sizes:
        inner, x, w, width = mlp_problem(params, args.device, dtype)
        lines += bench(f"mlp {w.numel():.2e} params (width {width})", inner, x, w, None, args)
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
