r"""Figure 8: complexity exponents. Left: Hessian-vector products to reach a fixed accuracy
against the condition number kappa, CG and the Neumann series, with the fitted log-log slopes
beside the predicted exponents 1/2 and 1 (Ji, Yang & Liang, ICML 2021; spec 7.12). Right:
oracle calls for the running minimum of E||grad F|| (mean over 8 seeds) to reach eps against
1/eps for MSGBiO and VR-MSGBiO on the PL game, with the fitted log-log slope (solid) and the
bounds eps^-4 and eps^-3 (dotted, from the first point). The bounds are worst-case upper bounds;
the claims ``msgbio/sample-complexity`` and ``vr-msgbio/sample-complexity`` report the interval.

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
        envelope = np.minimum.accumulate(np.mean([m["norms"] for _, m in runs], axis=0))
        eps = np.geomspace(envelope[len(envelope) // 16], envelope[-1], 8)
        hits = np.array([calls[np.argmax(envelope <= e)] for e in eps])
        slope, intercept = np.polyfit(np.log(1 / eps), np.log(hits), 1)
        look = style(method)
        right.loglog(
            1 / eps,
            hits,
            linestyle="none",
            marker=look["marker"],
            color=look["color"],
            label=rf"{method}: fit $\epsilon^{{-{slope:.1f}}}$ (bound $\epsilon^{{-{bound:g}}}$)",
        )
        right.loglog(1 / eps, np.exp(intercept) * (1 / eps) ** slope, color=look["color"], lw=0.8)
        anchor = hits[0] * (eps[0] / eps) ** bound
        right.loglog(1 / eps, anchor, color=look["color"], lw=0.8, ls=":")
    right.set_xlabel(r"$1/\epsilon$")
    right.set_ylabel(r"oracle calls to $\mathbb{E}\|\nabla F\| \leq \epsilon$")
    legend(right, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=1)
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.36, top=0.97, wspace=0.32)
    return fig
