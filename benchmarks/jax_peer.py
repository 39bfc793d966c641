"""The JAX peer of ``time_to_accuracy.py``, run in its own environment (``.venv-jax``).

Reads the problem that ``time_to_accuracy.py`` wrote (``--data FILE.npz``: its arrays, the
inner solution, the float64 reference and the step), builds the same objectives in ``jax.numpy``
and, for each target relative error, finds the fewest steps K by the same search and times one
jitted call at that K (compilation excluded: a warm-up call first). Methods, written as a JAX
user writes them:

- AID-CG: ``jax.linearize`` of grad_y g at y (one linearisation, its linear map as the HVP),
  K CG steps in ``lax.fori_loop`` (K a traced bound: one compilation for every K), then the
  mixed product as the gradient in x of <grad_y g(x, y), v>;
- ITD: K gradient steps from y in ``lax.fori_loop`` (static K) and reverse mode through them.

With ``--outer-loop SETTINGS`` (JSON), runs ``outer_loop.py``'s AID-BiO loop instead: one
jitted outer step (D gradient steps on y from the previous y, N CG steps from the previous v,
the x step), timed over the iterations up to the target validation loss, ``repeats`` times.

Prints the rows as JSON on stdout. Only numpy and jax are imported.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from search import steps_to

TARGETS = (1e-3, 1e-6, 1e-10)


def objectives(data, jnp, jax):
    kind = str(data["kind"])
    if kind == "logistic":
        feats, labels, split = data["feats"], data["labels"], int(data["split"])
        tr_f, tr_l, va_f, va_l = feats[:split], labels[:split], feats[split:], labels[split:]

        def inner(x, y):
            loss = jnp.mean(jax.nn.softplus(-tr_l * (tr_f @ y)))
            return loss + 0.5 * jnp.sum(jnp.exp(x) * y**2)

        def outer(x, y):
            return jnp.mean(jax.nn.softplus(-va_l * (va_f @ y)))

        return outer, inner
    if kind == "quadratic":
        A, B = data["A"], data["B"]

        def inner(x, y):
            return 0.5 * y @ (A @ y) - y @ (B @ x)

        def outer(x, y):
            return 0.5 * jnp.sum((y - 1) ** 2) + 0.5 * jnp.sum(x**2)

        return outer, inner
    if kind == "mlp":
        feats, labels, sizes = data["feats"], data["labels"], [int(s) for s in data["sizes"]]
        shapes = list(zip(sizes[1:], sizes[:-1], strict=True))
        n_train = int(data["split"])

        def logits(y, inputs):
            h, start = inputs, 0
            for layer, (o, i) in enumerate(shapes):
                w = y[start : start + o * i].reshape(o, i)
                b = y[start + o * i : start + o * i + o]
                h = h @ w.T + b
                h = jnp.tanh(h) if layer < len(shapes) - 1 else h
                start += o * i + o
            return h

        def cross_entropy(z, target):
            return jnp.mean(jax.nn.logsumexp(z, axis=1) - jnp.take_along_axis(
                z, target[:, None], axis=1)[:, 0])  # fmt: skip

        def inner(x, y):
            loss = cross_entropy(logits(y, feats[:n_train]), labels[:n_train])
            return loss + 0.5 * jnp.sum(jnp.exp(x)) * (y @ y)

        def outer(x, y):
            return cross_entropy(logits(y, feats[n_train:]), labels[n_train:])

        return outer, inner
    raise ValueError(f"unknown problem kind {kind!r}")


def cg_steps(hvp, v, r, steps, lax):
    """``steps`` CG iterations on H v = b from v, with r = b - H v (the loop both modes run)."""

    def body(_, state):
        v, r, p, rr = state
        hp = hvp(p)
        alpha = rr / (p @ hp)
        v, r = v + alpha * p, r - alpha * hp
        rr_new = r @ r
        return v, r, r + (rr_new / rr) * p, rr_new

    return lax.fori_loop(0, steps, body, (v, r, r, r @ r))[0]


def build(outer, inner, jax, jnp, lax, lr: float):
    grad_y_g = jax.grad(inner, argnums=1)

    @jax.jit
    def cg(x, y, steps):
        gx_f, b = jax.grad(outer, argnums=(0, 1))(x, y)
        _, hvp = jax.linearize(lambda yy: grad_y_g(x, yy), y)
        v = cg_steps(hvp, jnp.zeros_like(b), b, steps, lax)
        mixed = jax.grad(lambda xx: grad_y_g(xx, y) @ v)(x)
        return gx_f - mixed

    def itd(steps: int):
        def phi(x, y0):
            y = lax.fori_loop(0, steps, lambda _, yy: yy - lr * grad_y_g(x, yy), y0)
            return outer(x, y)

        return jax.jit(jax.grad(phi))

    return cg, itd


def outer_loop(outer, inner, x, y, settings: dict, jax, jnp, lax) -> list[dict]:
    grad_y_g = jax.grad(inner, argnums=1)
    d, n, lr = settings["inner_steps"], settings["solver_steps"], settings["inner_lr"]

    @jax.jit
    def step(x, y, v):
        y = lax.fori_loop(0, d, lambda _, yy: yy - lr * grad_y_g(x, yy), y)
        gx_f, b = jax.grad(outer, argnums=(0, 1))(x, y)
        _, hvp = jax.linearize(lambda yy: grad_y_g(x, yy), y)
        v = cg_steps(hvp, v, b - hvp(v), n, lax)
        mixed = jax.grad(lambda xx: grad_y_g(xx, y) @ v)(x)
        return x - settings["outer_lr"] * (gx_f - mixed), y, v

    value = jax.jit(outer)
    step(x, y, jnp.zeros_like(y))[0].block_until_ready()  # compile
    runs = []
    for _ in range(settings["repeats"]):
        xs, ys, vs, elapsed, reached = x, y, jnp.zeros_like(y), 0.0, None
        for k in range(1, settings["iterations"] + 1):
            start = time.perf_counter()
            xs, ys, vs = step(xs, ys, vs)
            xs.block_until_ready()
            elapsed += time.perf_counter() - start
            loss = float(value(xs, ys))
            if reached is None and loss <= settings["target"]:
                reached = {"iteration": k, "seconds": elapsed}
        runs.append({"reached": reached, "total": elapsed, "final": loss})
    return runs


def median_seconds(fn, repeats: int) -> float:
    def sample(n):
        start = time.perf_counter()
        for _ in range(n):
            fn().block_until_ready()
        return (time.perf_counter() - start) / n

    n = max(1, math.ceil(0.005 / max(sample(1), 1e-7)))
    return statistics.median(sample(n) for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--dtype", choices=("float64", "float32"), required=True)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--outer-loop", default=None, help="JSON settings of outer_loop.py")
    args = parser.parse_args()
    import jax

    jax.config.update("jax_enable_x64", args.dtype == "float64")
    import jax.numpy as jnp
    from jax import lax

    raw = np.load(args.data)
    dtype = np.float64 if args.dtype == "float64" else np.float32
    data = {k: (raw[k].astype(dtype) if raw[k].dtype == np.float64 else raw[k]) for k in raw}
    data = {k: (jnp.asarray(v) if k not in ("kind", "split", "sizes") else v)
            for k, v in data.items()}  # fmt: skip
    outer, inner = objectives(data, jnp, jax)
    x, y, exact = data["x"], data["y"], np.asarray(raw["exact"])
    if args.outer_loop:
        json.dump(outer_loop(outer, inner, x, y, json.loads(args.outer_loop), jax, jnp, lax),
                  sys.stdout)  # fmt: skip
        return
    lr, caps = float(raw["lr"]), {"cg": int(raw["cap_cg"]), "itd": int(raw["cap_itd"])}
    cg, itd = build(outer, inner, jax, jnp, lax, lr)
    itd_cache: dict[int, object] = {}

    def itd_call(k: int):
        if k not in itd_cache:
            itd_cache[k] = itd(k)
        return lambda: itd_cache[k](x, y)

    makers = {"AID-CG": ("cg", lambda k: (lambda: cg(x, y, k))), "ITD": ("itd", itd_call)}
    rows = []
    for family, (cap_key, make) in makers.items():
        for target in TARGETS:
            def error(k, make=make):
                value = np.asarray(make(k)(), dtype=np.float64)
                return float(np.linalg.norm(value - exact) / np.linalg.norm(exact))

            steps, err = steps_to(error, target, caps[cap_key])
            row = {"family": family, "target": target, "steps": steps, "error": err}
            if steps is not None:
                row["seconds"] = median_seconds(make(steps), args.repeats)
            rows.append(row)
            print(f"jax {family} e={target:g}: K={steps} err {err:.1e}", file=sys.stderr)
    json.dump(rows, sys.stdout)


if __name__ == "__main__":
    main()
