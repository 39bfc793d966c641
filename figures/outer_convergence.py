r"""Figure 3: outer convergence of AID-BiO, ITD-BiO, stocBiO and AccBiO against oracle calls
(left) and seconds (right). Top: ||grad Phi(x_k)|| on a quadratic with strongly convex Phi
(kappa = 10, three instance seeds); bottom: validation loss of L2-regularised logistic
regression with one weight per feature on scikit-learn's breast cancer (two split seeds),
divided by its value after the first outer iteration (the first inner solve). Lines
against oracle calls are medians over seeds with the 10-90% band (with two or three seeds: the
min-max range); against seconds every run is its own line (timings differ per run).

Data: ``outer/quadratic-convergence``, ``outer/logistic-validation-loss``. Seconds are those
measured when each run was executed (single runs, one machine), read back from the cache.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from .data import ClaimData
from .style import legend, new_figure, style

NAME = "outer-convergence"
CLAIMS = ("outer/quadratic-convergence", "outer/logistic-validation-loss")
METHODS = ("AID-BiO", "ITD-BiO", "stocBiO", "AccBiO")


def _band(runs: list[dict], xkey: str, ykey: str, start: int, relative: bool):
    """Median and 10-90% band of y over seeds on a common log-spaced x grid (step-wise: the
    value of the last iterate at or before each x); ``relative`` divides each run by its value
    at ``start`` (seeds with different data splits become comparable)."""
    xs = [np.asarray(r[xkey][start:], dtype=float) for r in runs]
    ys = [np.asarray(r[ykey][start:], dtype=float) for r in runs]
    if relative:
        ys = [y / y[0] for y in ys]
    low = max(max(x[0] for x in xs), 1e-9)
    high = min(x[-1] for x in xs)
    grid = np.geomspace(max(low, 1e-6), high, 60)
    values = np.array(
        [y[np.searchsorted(x, grid, side="right") - 1] for x, y in zip(xs, ys, strict=True)]
    )
    return grid, np.median(values, 0), np.quantile(values, 0.1, 0), np.quantile(values, 0.9, 0)


def draw(data: dict[str, ClaimData]) -> Figure:
    fig, axes = new_figure(columns=2, height=4.4, ncols=2, nrows=2)
    grid = (axes[:2], axes[2:])
    panels = (
        ("outer/quadratic-convergence", "grad_norm", r"$\|\nabla\Phi(x_k)\|$", 0, False),
        (
            "outer/logistic-validation-loss",
            "outer_value",
            "relative validation loss",
            1,
            True,
        ),
    )
    for row, (claim, key, ylabel, start, relative) in enumerate(panels):
        for col, xkey in enumerate(("calls", "seconds")):
            ax = grid[row][col]
            for method in METHODS:
                runs = data[claim].measurements(method=method)
                look = style(method)
                if xkey == "calls":  # deterministic x: median and band over seeds
                    x, median, low, high = _band(runs, xkey, key, max(start, 1), relative)
                    ax.plot(x, median, color=look["color"], label=method, lw=1.0)
                    ax.fill_between(x, low, high, color=look["color"], alpha=0.2, linewidth=0)
                    continue
                for i, run in enumerate(runs):  # timings differ per run: one line each
                    y = np.asarray(run[key][1:], dtype=float)
                    y = y / y[max(start, 1) - 1] if relative else y
                    ax.plot(
                        run[xkey][1:],
                        y,
                        color=look["color"],
                        lw=0.7,
                        alpha=0.8,
                        label=method if i == 0 else None,
                    )
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("oracle calls" if xkey == "calls" else "seconds")
            ax.set_ylabel(ylabel)
    grid[0][0].set_title("quadratic, strongly convex $\\Phi$")
    grid[1][0].set_title("logistic regression, breast cancer")
    legend(grid[0][1], loc="lower left")
    fig.tight_layout(pad=0.3)
    return fig
