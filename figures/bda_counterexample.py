r"""Figure 6: BDA against the lower-level-singleton method (RHG) on the non-singleton
counterexample (Liu et al.; spec 7.10). Left: the outer solution x_K reached with K inner steps
(measured) with the exact argmin phi_K, RHG's limit 1/2 and the official geometric schedule's
stall 1/(1 + c^2) (``bilevel.analysis.bda``). Right: the non-singleton residual e_K / e_0 of
the inner iterate (measured) against its Gamma-function closed form and the asymptote
K^(-a s_u) / Gamma(1 - a s_u).

Data: ``bda/counterexample-minimiser``, ``bda/aggregation-residual``,
``bda/geometric-schedule-stalls``.
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp
from matplotlib.figure import Figure

from bilevel.analysis import bda as exact

from .data import ClaimData
from .style import OKABE_ITO, PREDICTION, legend, new_figure, style

NAME = "bda-counterexample"
CLAIMS = (
    "bda/counterexample-minimiser",
    "bda/aggregation-residual",
    "bda/geometric-schedule-stalls",
)


def draw(data: dict[str, ClaimData]) -> Figure:
    fig, (left, right) = new_figure(columns=2, height=2.9, ncols=2)
    runs = sorted(data["bda/counterexample-minimiser"].runs, key=lambda r: r[0]["K"])
    Ks = [p["K"] for p, _ in runs]
    a, step = runs[0][0]["aggregation"], runs[0][0]["step"]
    grid = sorted({int(k) for k in np.geomspace(1, max(Ks), 25)} | set(Ks))
    half = sp.nsimplify(step)
    closed = [
        float(exact.aggregated_minimiser(exact.harmonic_schedule(sp.nsimplify(a), K), half, half))
        for K in grid
    ]
    left.semilogx(grid, closed, color=PREDICTION, lw=0.8, label=r"$\arg\min\varphi_K$ (exact)")
    look = style("BDA")
    left.semilogx(
        Ks,
        [m["x"] for _, m in runs],
        linestyle="none",
        marker=look["marker"],
        color=look["color"],
        label=rf"BDA, $\alpha_k = {a:g}/(k+1)$",
    )
    rhg = float(exact.lower_level_singleton_minimiser())
    left.axhline(rhg, **{k: v for k, v in style("RHG").items() if k != "marker"}, lw=1.0)
    stall = data["bda/geometric-schedule-stalls"].runs[0][1]
    geo = style("BDA (official schedule)")
    left.axhline(
        stall["x"],
        color=geo["color"],
        lw=1.0,
        ls="--",
        label=rf"official schedule, $1/(1+c^2)$={stall['limit']:.3f}",
    )
    left.axhline(1.0, color=OKABE_ITO["black"], lw=0.6, ls=":", label=r"$x^\star = 1$")
    left.set_xlabel(r"inner steps $K$")
    left.set_ylabel(r"outer solution $x_K$")
    left.set_ylim(0.4, 1.05)
    legend(left, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=2)

    m = data["bda/aggregation-residual"].runs[0][1]
    p = m["power"]
    ks = np.geomspace(1, max(m["Ks"]), 60)
    gamma_form = [float(exact.harmonic_residual_gamma(sp.nsimplify(p), 1, sp.Float(k))) for k in ks]
    right.loglog(ks, gamma_form, color=PREDICTION, lw=0.8, label="Gamma closed form")
    right.loglog(
        ks,
        ks ** (-p) / math.gamma(1 - p),
        color=PREDICTION,
        lw=0.8,
        ls=":",
        label=rf"$K^{{-{p:g}}}/\Gamma(1-{p:g})$",
    )
    right.loglog(
        m["Ks"],
        m["ratios"],
        linestyle="none",
        marker=look["marker"],
        color=look["color"],
        label="BDA (measured)",
    )
    right.set_xlabel(r"inner steps $K$")
    right.set_ylabel(r"residual $e_K/e_0$")
    legend(right, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=2)
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.36, top=0.97, wspace=0.32)
    return fig
