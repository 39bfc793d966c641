r"""Figure 10: SOBA without noise (Dagreou, Ablin, Vaiter & Moreau, NeurIPS 2022). The
hypergradient norm ||grad Phi(x_k)|| of deterministic SOBA at constant steps on two quadratic
instances with strongly convex Phi (markers), against the slope of rho(M)^k, the rate of its
update's affine map computed in numpy (dashed, anchored at the last iterate): the single
loop converges linearly to argmin Phi.

Data: ``soba/stationary-point``.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from .data import ClaimData
from .style import PREDICTION, legend, new_figure, style

NAME = "soba-convergence"
CLAIMS = ("soba/stationary-point",)


def draw(data: dict[str, ClaimData]) -> Figure:
    fig, (ax,) = new_figure(columns=1, height=2.4)
    claim = data["soba/stationary-point"]
    look = style("SOBA")
    for index, (params, m) in enumerate(claim.runs):
        norms = np.asarray(m["grad_norms"])
        k = np.arange(norms.size)
        every = max(1, norms.size // 25)
        ax.semilogy(k, norms, linestyle="none", marker="os"[index % 2], markersize=3,
                    markevery=every, color=look["color"], fillstyle="full" if index == 0 else "none",
                    label=f"SOBA, seed {params['seed']}")  # fmt: skip
        # the predicted slope, anchored at the last iterate (the rate, not the constant)
        ax.semilogy(k, norms[-1] * m["rho"] ** (k - k[-1]), color=PREDICTION, lw=0.8, ls="--",
                    label=r"$\propto\rho(M)^k$ (numpy rule)" if index == 0 else None)  # fmt: skip
    ax.set_xlabel("iteration $k$")
    ax.set_ylabel(r"$\|\nabla\Phi(x_k)\|$")
    ax.set_title("deterministic SOBA, constant steps")
    legend(ax, loc="lower left")
    fig.tight_layout(pad=0.3)
    return fig
