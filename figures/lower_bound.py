r"""Figure 9: lower bounds on zero-chain instances (Nesterov 2004, Thm 2.1.13; the structure of
Ji & Liang's lower bounds, spec 6.6). Left: AccBiO's outer error ||x_k - x*|| against its
gradients of f on a bilevel problem whose Phi is the zero chain (each gradient reveals at most
one coordinate), above the curve ||x*_{k+2:n}|| and below Nesterov's accelerated upper bound
(dotted). Right: CG's error on AID's linear system against its Hessian-vector products, above
||v*_{K+2:n}|| and below 2 sqrt(kappa) rho^K ||v*||. Ji & Liang's exact hard instance was
not retrieved; this one has the same zero-chain structure.

Data: ``lower-bounds/accbio-zero-chain``, ``lower-bounds/cg-zero-chain``.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from .data import ClaimData
from .style import PREDICTION, legend, new_figure, style

NAME = "lower-bound"
CLAIMS = ("lower-bounds/accbio-zero-chain", "lower-bounds/cg-zero-chain")


def _panel(ax, claim: ClaimData, method: str, xlabel: str, ylabel: str, tail: str) -> None:
    params, m = claim.runs[0]
    solution = np.asarray(m["solution"])
    errors = [float(np.linalg.norm(np.asarray(v) - solution)) for v in m["iterates"]]
    bound = [float(np.linalg.norm(solution[k + 1 :])) for k in m["calls"]]
    look = style(method)
    every = max(1, len(errors) // 30)
    ax.semilogy(
        m["calls"],
        errors,
        linestyle="none",
        marker=look["marker"],
        markevery=every,
        color=look["color"],
        label=f"{method} (measured)",
    )
    ax.semilogy(
        m["calls"],
        bound,
        color=PREDICTION,
        lw=0.8,
        ls="--",
        label=rf"lower bound $\|{tail}^\star_{{k+2:n}}\|$",
    )
    if "upper" in m:
        ax.semilogy(
            m["calls"], m["upper"], color=PREDICTION, lw=0.8, ls=":", label="upper bound (rate)"
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(rf"zero chain, $n={params['n']}$, $\mu={params['mu']:g}$")
    legend(ax, loc="lower left")


def draw(data: dict[str, ClaimData]) -> Figure:
    fig, (outer, inner) = new_figure(columns=2, height=2.4, ncols=2)
    _panel(
        outer,
        data["lower-bounds/accbio-zero-chain"],
        "AccBiO",
        "gradients of $f$",
        r"$\|x_k - x^\star\|$",
        "x",
    )
    _panel(
        inner,
        data["lower-bounds/cg-zero-chain"],
        "CG",
        "Hessian-vector products",
        r"$\|v_K - v^\star\|$",
        "v",
    )
    fig.tight_layout(pad=0.3)
    return fig
