r"""Figure 2: estimator bias. Left and middle: the running mean of each estimator's error,
projected on a unit direction u, against the number of samples, with its 1e-6 simultaneous
confidence band (z = 5.33 times the running standard error) and the closed-form bias (dashed);
left FOM and UFOM (q = 0.25) on quadratic meta-learning tasks (spec 7.9), middle stocBiO's
stochastic Neumann sum (Q = 3) and randomized truncation (p = 0.3) on a quadratic bilevel
instance (spec 7.7). Right: UFOM's expected cost per estimate against q, counted exactly over
tasks and the Bernoulli draw from the estimator's own oracle counts, with the derived
C_det + q C_rnd (spec 4.2; r = 5 steps, C_rnd = r(r - 1)/2 + r with recomputation).

Data: ``estimators/mean-equals-predicted-bias``, ``ufom/optimal-q-sweep``.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from .data import ClaimData
from .style import PREDICTION, legend, new_figure, style

NAME = "estimator-bias"
CLAIMS = ("estimators/mean-equals-predicted-bias", "ufom/optimal-q-sweep")
Z = 5.33
STYLE = {"fom": "FOM", "ufom": "UFOM", "stocbio": "stocBiO", "rt": "randomized truncation"}
LABEL = {"fom": "FOM", "ufom": "UFOM", "stocbio": "stocBiO, $Q=3$", "rt": "randomized trunc."}


def _running(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = np.arange(1, values.size + 1)
    mean = np.cumsum(values) / n
    second = np.cumsum(values**2) / n
    sd = np.sqrt(np.maximum(second - mean**2, 0.0) * n / np.maximum(n - 1, 1))
    return n, mean, Z * sd / np.sqrt(n)


def draw(data: dict[str, ClaimData]) -> Figure:
    fig, (meta, bilevel, cost) = new_figure(columns=2, height=2.5, ncols=3)
    claim = data["estimators/mean-equals-predicted-bias"]
    for ax, names in ((meta, ("fom", "ufom")), (bilevel, ("stocbio", "rt"))):
        for name in names:
            (m,) = claim.measurements(estimator=name)
            n, mean, half = _running(np.asarray(m["projections"]))
            look = style(STYLE[name])
            start = 20  # the first standard errors come from a handful of samples
            ax.plot(n[start:], mean[start:], color=look["color"], lw=1.0, label=LABEL[name])
            ax.fill_between(
                n[start:],
                (mean - half)[start:],
                (mean + half)[start:],
                color=look["color"],
                alpha=0.2,
                linewidth=0,
            )
            ax.axhline(m["predicted"], color=look["color"], lw=0.8, ls="--")
        ax.axhline(0.0, color=PREDICTION, lw=0.6, ls=":")
        ax.set_xscale("log")
        ax.set_xlabel("samples $n$")
        legend(ax, loc="upper right")
    meta.set_ylabel(r"running mean of $\langle \hat g - \nabla, u\rangle$")
    meta.set_title("meta-learning (spec 7.9)")
    bilevel.set_title("bilevel quadratic (spec 7.7)")
    sweep = data["ufom/optimal-q-sweep"].runs[0]
    params, m = sweep
    r = params["steps"]
    qs = np.array([row["q"] for row in m["rows"]])
    measured = np.array([row["cost"] for row in m["rows"]])
    q_line = np.linspace(0, 1, 50)
    look = style("UFOM")
    cost.plot(
        q_line,
        r + 1 + q_line * (r * (r - 1) / 2 + r),
        color=PREDICTION,
        lw=0.8,
        ls="--",
        label=r"$C_{det} + q\,C_{rnd}$",
    )
    cost.plot(
        qs,
        measured,
        linestyle="none",
        marker=look["marker"],
        color=look["color"],
        label="UFOM (counted)",
    )
    cost.set_xlabel("$q$")
    cost.set_ylabel("oracle calls per estimate")
    cost.set_title(f"expected cost, $r={r}$")
    legend(cost, loc="upper left")
    fig.tight_layout(pad=0.3)
    return fig
