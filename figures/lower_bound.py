r"""Figure 9: a Krylov inner solver's error against its oracle calls on the zero-chain hard
instance, above the lower-bound curve ||v*_{K+2:n}|| (Nesterov 2004, Thm 2.1.13; the argument of
Ji & Liang's lower bounds, spec 6.6). The solver drawn is CG (the claim
``lower-bounds/cg-zero-chain``); AccBiO on Ji & Liang's own instance is not measured yet.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from .data import ClaimData
from .style import PREDICTION, legend, new_figure, style

NAME = "lower-bound"
CLAIMS = ("lower-bounds/cg-zero-chain",)


def draw(data: dict[str, ClaimData]) -> Figure:
    fig, (ax,) = new_figure(columns=1, height=2.3)
    params, m = data["lower-bounds/cg-zero-chain"].runs[0]
    solution = np.asarray(m["solution"])
    errors = [float(np.linalg.norm(np.asarray(v) - solution)) for v in m["iterates"]]
    bound = [float(np.linalg.norm(solution[k + 1 :])) for k in m["calls"]]
    look = style("CG")
    ax.semilogy(
        m["calls"],
        errors,
        linestyle="none",
        marker=look["marker"],
        color=look["color"],
        label="CG (measured)",
    )
    ax.semilogy(
        m["calls"],
        bound,
        color=PREDICTION,
        lw=0.8,
        ls="--",
        label=r"lower bound $\|v^\star_{K+2:n}\|$",
    )
    ax.set_xlabel("Hessian-vector products")
    ax.set_ylabel(r"$\|v_K - v^\star\|$")
    ax.set_title(rf"zero chain, $n={params['n']}$, $\mu={params['mu']:g}$")
    legend(ax)
    fig.tight_layout(pad=0.3)
    return fig
