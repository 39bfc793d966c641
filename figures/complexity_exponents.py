r"""Figure 8: complexity exponents. Left: Hessian-vector products to reach a fixed accuracy
against the condition number kappa, CG and the Neumann series, with the fitted log-log slopes
beside the predicted exponents 1/2 and 1 (Ji, Yang & Liang, ICML 2021; spec 7.12). Right:
E||grad F(x_t)|| against oracle calls for MSGBiO and VR-MSGBiO on the PL game (mean over seeds),
with the worst-case decay rates implied by the bounds eps^-4 and eps^-3 (slopes -1/4 and -1/3)
as reference lines; measured curves below or steeper than them are consistent with the bounds.

Data: ``ji2021/cg-hvp-complexity``, ``ji2021/neumann-hvp-complexity``,
``msgbio/sample-complexity``, ``vr-msgbio/sample-complexity``.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from .data import ClaimData
from .style import legend, new_figure, style

NAME = "complexity-exponents"
CLAIMS = (
    "ji2021/cg-hvp-complexity",
    "ji2021/neumann-hvp-complexity",
    "msgbio/sample-complexity",
    "vr-msgbio/sample-complexity",
)


def draw(data: dict[str, ClaimData]) -> Figure:
    fig, (left, right) = new_figure(columns=2, height=3.0, ncols=2)
    for claim, method, predicted in (
        ("ji2021/cg-hvp-complexity", "CG", 0.5),
        ("ji2021/neumann-hvp-complexity", "Neumann", 1.0),
    ):
        runs = sorted(data[claim].runs, key=lambda r: r[0]["kappa"])
        kappas = np.array([p["kappa"] for p, _ in runs])
        hvps = np.array([m["hvp"] for _, m in runs], dtype=float)
        slope = float(np.polyfit(np.log(kappas), np.log(hvps), 1)[0])
        look = style(method)
        left.loglog(
            kappas,
            hvps,
            linestyle="none",
            marker=look["marker"],
            color=look["color"],
            label=rf"{method}: fit $\kappa^{{{slope:.2f}}}$ (theory $\kappa^{{{predicted:g}}}$)",
        )
        anchor = hvps[0] / kappas[0] ** predicted
        left.loglog(kappas, anchor * kappas**predicted, color=look["color"], lw=0.8, ls="--")
    left.set_xlabel(r"condition number $\kappa$")
    left.set_ylabel("Hessian-vector products")
    legend(left, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=1)
    for claim, method, bound in (
        ("msgbio/sample-complexity", "MSGBiO", 4.0),
        ("vr-msgbio/sample-complexity", "VR-MSGBiO", 3.0),
    ):
        runs = data[claim].runs
        steps = np.asarray(runs[0][1]["steps"], dtype=float)
        calls = steps * runs[0][1]["per_step"]
        mean = np.mean([m["norms"] for _, m in runs], axis=0)
        look = style(method)
        right.loglog(
            calls, mean, color=look["color"], lw=0.9, label=f"{method} ({len(runs)} seeds)"
        )
        ref = mean[len(mean) // 16] * (calls / calls[len(calls) // 16]) ** (-1 / bound)
        right.loglog(
            calls,
            ref,
            color=look["color"],
            lw=0.8,
            ls=":",
            label=rf"rate of $\epsilon^{{-{bound:g}}}$",
        )
    right.set_xlabel("oracle calls")
    right.set_ylabel(r"$\mathbb{E}\|\nabla F(x_t)\|$")
    legend(right, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=2)
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.36, top=0.97, wspace=0.32)
    return fig
