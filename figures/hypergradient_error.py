r"""Figure 1: hypergradient error against the number of steps for ITD (T), AID-Neumann (Q) and
AID-CG (K) on quadratic instances, two condition numbers each; measured points with the
derived closed-form error (ITD; spec 7.3) and the error bounds (Ji, Yang & Liang, ICML 2021;
spec 7.3, 7.4, 7.6) overlaid.

Data: claims ``ji2021/itd-error-closed-form``, ``ji2021/aid-neumann-linear-rate``,
``ji2021/aid-cg-rate`` (quick grids; CG at y* on a Chebyshev spectrum, n = 2000, with the
CG factor of the bound). Filled markers: the smaller kappa; open: the larger.
"""

from __future__ import annotations

from matplotlib.figure import Figure

from .data import ClaimData
from .style import PREDICTION, legend, new_figure, style

NAME = "hypergradient-error"
CLAIMS = (
    "ji2021/itd-error-closed-form",
    "ji2021/aid-neumann-linear-rate",
    "ji2021/aid-cg-rate",
)


def _series(ax, method, claim: ClaimData, xlabel: str, where: str) -> None:
    look = style(method)
    for i, (params, m) in enumerate(claim.runs):
        steps = m["steps"]
        every = max(1, len(steps) // 20)
        ax.semilogy(
            steps,
            [max(e, 1e-17) for e in m["errors"]],
            linestyle="none",
            marker=look["marker"],
            markevery=every,
            color=look["color"],
            markerfacecolor=look["color"] if i == 0 else "white",
            label=rf"$\kappa={params['kappa']:g}$",
        )
        if "closed" in m:
            ax.semilogy(
                steps,
                m["closed"],
                color=PREDICTION,
                lw=0.7,
                ls="-",
                label="closed form" if i == 0 else None,
            )
        ax.semilogy(
            steps, m["bounds"], color=PREDICTION, lw=0.7, ls=":", label="bound" if i == 0 else None
        )
    ax.set_xlabel(xlabel)
    ax.set_title(method)
    legend(ax, loc=where)


def draw(data: dict[str, ClaimData]) -> Figure:
    fig, (itd, neumann, cg) = new_figure(columns=2, height=2.2, ncols=3)
    _series(itd, "ITD", data["ji2021/itd-error-closed-form"], r"inner steps $T$", "lower left")
    _series(
        neumann,
        "AID-Neumann",
        data["ji2021/aid-neumann-linear-rate"],
        r"Neumann terms $Q$",
        "upper right",
    )
    _series(cg, "AID-CG", data["ji2021/aid-cg-rate"], r"CG steps $K$", "lower right")
    itd.set_ylabel(r"$\|\hat\nabla\Phi - \nabla\Phi\|$")
    fig.tight_layout(pad=0.3)
    return fig
