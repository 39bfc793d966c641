r"""Figure 5: the momentum family for a PL lower level against its baselines (Huang; spec 3,
7.11). Left: ||grad F|| (the surrogate along the GD selection) on the rank-deficient PL game
against oracle calls: deterministic MGBiO and double-loop AID-BiO (Neumann solver), and the
stochastic MSGBiO and VR-MSGBiO with one-row minibatches (mean over 8 seeds). Right:
hyper-representation learning (8 tasks, rank 3, noise floor 0.04), validation loss of MGBiO
against double-loop AID-BiO at the same oracle calls.

Data: ``momentum/beats-double-loop``, ``msgbio/sample-complexity``,
``vr-msgbio/sample-complexity``.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from .data import ClaimData
from .style import PREDICTION, legend, new_figure, style

NAME = "momentum-family"
CLAIMS = ("momentum/beats-double-loop", "msgbio/sample-complexity", "vr-msgbio/sample-complexity")


def draw(data: dict[str, ClaimData]) -> Figure:
    fig, (game, representation) = new_figure(columns=2, height=2.5, ncols=2)
    baselines = data["momentum/beats-double-loop"]
    for ax, problem in ((game, "pl-game"), (representation, "hyper-representation")):
        for method in ("MGBiO", "AID-BiO"):
            (m,) = baselines.measurements(problem=problem, method=method)
            look = style(method)
            ax.loglog(
                m["calls"][1:],
                m["values"][1:],
                color=look["color"],
                lw=1.0,
                label=f"{method}" + (" (double loop)" if method == "AID-BiO" else ""),
            )
    for claim, method in (
        ("msgbio/sample-complexity", "MSGBiO"),
        ("vr-msgbio/sample-complexity", "VR-MSGBiO"),
    ):
        runs = data[claim].runs
        steps = np.asarray(runs[0][1]["steps"], dtype=float)
        mean = np.mean([m["norms"] for _, m in runs], axis=0)
        look = style(method)
        game.loglog(
            steps * runs[0][1]["per_step"],
            mean,
            color=look["color"],
            lw=1.0,
            label=f"{method} (stochastic)",
        )
    representation.axhline(0.04, color=PREDICTION, lw=0.7, ls=":", label="noise floor")
    game.set_title("PL game")
    game.set_xlabel("oracle calls")
    game.set_ylabel(r"$\|\nabla F(x_t)\|$")
    representation.set_ylim(bottom=0.025)
    representation.set_title("hyper-representation")
    representation.set_xlabel("oracle calls")
    representation.set_ylabel("validation loss")
    legend(game, loc="lower left")
    legend(representation, loc="upper right")
    fig.tight_layout(pad=0.3)
    return fig
