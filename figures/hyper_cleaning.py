r"""Figure 4: data hyper-cleaning on scikit-learn's digits with 50% corrupted training labels
(linear model, one sigmoid weight per training sample): test accuracy against oracle calls
(gradients, Hessian-vector and mixed products together; left) and against seconds (right) for
the minimax reformulation with multi-stage GDA (first-order oracles only; lambda = 10, 20, 40)
and AID-BiO, ITD-BiO and stocBiO. The legend gives each method's second-order calls; the dotted
line is the unweighted model's accuracy.

Data: ``hyper-cleaning/minimax-matches-aid`` (one data seed; seconds as measured when the runs
were executed).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from bilevel.proofs_checks.claims.hyper_cleaning import METHODS, UNWEIGHTED_ACCURACY

from .data import ClaimData
from .style import PREDICTION, new_figure, style

NAME = "hyper-cleaning"
CLAIMS = ("hyper-cleaning/minimax-matches-aid",)


def draw(data: dict[str, ClaimData]) -> Figure:
    fig, (calls_ax, time_ax) = new_figure(columns=2, height=2.5, ncols=2)
    claim = data["hyper-cleaning/minimax-matches-aid"]
    for method in METHODS:
        (m,) = claim.measurements(method=method)
        look = style(method)
        calls = np.add(m["first_order_calls"], m["second_order_calls"])
        label = f"{method} ({m['second_order_calls'][-1]} 2nd-order)"
        calls_ax.plot(calls[1:], m["accuracy"][1:], color=look["color"], lw=1.0, label=label)
        time_ax.plot(m["seconds"][1:], m["accuracy"][1:], color=look["color"], lw=1.0)
    for ax in (calls_ax, time_ax):
        ax.axhline(UNWEIGHTED_ACCURACY, color=PREDICTION, lw=0.7, ls=":")
        ax.set_xscale("log")
        ax.set_ylabel("test accuracy")
    calls_ax.set_xlabel("oracle calls")
    time_ax.set_xlabel("seconds")
    fig.legend(
        *calls_ax.get_legend_handles_labels(), loc="lower center", ncol=4, frameon=False, fontsize=7
    )
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.3, top=0.97, wspace=0.25)
    return fig
