"""The matrix-vector kernels under the logistic problem's HVP, timed in each library present.

One HVP of the logistic problem (n = 4000 training rows, d = 500) is X v, a diagonal scaling,
and X^T u: two passes over a 16 MB float64 matrix. This script times those two products alone
with every backend it can import: torch (its wheel links MKL), numpy (OpenBLAS) and JAX (XLA's
CPU dot), so that a gap between bilevel and JAX can be split into "the BLAS kernel" and "the
rest" (eager dispatch, CG's vector updates). Run it in both environments and read the rows side
by side: ``python benchmarks/gemv_kernels.py`` and ``.venv-jax/bin/python
benchmarks/gemv_kernels.py``; times are medians of interleaved samples, in ms.
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np

ROWS, COLS = 4000, 500
SAMPLES, CALLS = 7, 60


def median_ms(fn: Callable[[], object]) -> float:
    for _ in range(10):
        fn()
    samples = []
    for _ in range(SAMPLES):
        start = time.perf_counter()
        for _ in range(CALLS):
            fn()
        samples.append((time.perf_counter() - start) / CALLS * 1e3)
    return statistics.median(samples)


def kernels(dtype: str) -> dict[str, Callable[[], object]]:
    """name -> zero-argument call, for each importable backend."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((ROWS, COLS)).astype(dtype)
    v, u = rng.standard_normal(COLS).astype(dtype), rng.standard_normal(ROWS).astype(dtype)
    calls = {"numpy X v": lambda: X @ v, "numpy X^T u": lambda: X.T @ u}
    if importlib.util.find_spec("torch"):
        import torch

        Xt, vt, ut = (torch.from_numpy(a) for a in (X, v, u))
        Xf = Xt.T.contiguous().T  # the same matrix stored column-major
        calls |= {"torch X v": lambda: Xt @ vt, "torch X^T u": lambda: Xt.T @ ut,
                  "torch X v (column-major X)": lambda: Xf @ vt}  # fmt: skip
    if importlib.util.find_spec("jax"):
        import jax

        jax.config.update("jax_enable_x64", True)
        Xj, vj, uj = (jax.device_put(a) for a in (X, v, u))
        mv, rmv = jax.jit(lambda A, w: A @ w), jax.jit(lambda A, w: w @ A)  # u^T X = (X^T u)^T
        calls |= {"JAX X v": lambda: mv(Xj, vj).block_until_ready(),
                  "JAX X^T u": lambda: rmv(Xj, uj).block_until_ready()}  # fmt: skip
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtypes", default="float64,float32")
    args = parser.parse_args()
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())  # fmt: skip
    print(f"Machine: {cpu}; X is {ROWS} x {COLS}, row-major unless said; median ms of "
          f"{SAMPLES} samples of {CALLS} calls.\n")  # fmt: skip
    print("| kernel | " + " | ".join(args.dtypes.split(",")) + " |")
    print("|---|" + "---|" * len(args.dtypes.split(",")))
    tables = {d: kernels(d) for d in args.dtypes.split(",")}
    for name in tables[args.dtypes.split(",")[0]]:
        cells = [f"{median_ms(tables[d][name]):.3f}" for d in tables]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
