r"""Figure 7 (toy part): FO-BLO (FOM) failing to reach a stationary point on the UFOM paper's
two-task toy while the unbiased estimator UFOM does (Likhosherstov et al., ICML 2021; spec 4.6).
Left: the SGD iterates theta_k with the exact fixed points theta_FO ~ 5.7589 and
theta* ~ 2.8403; right: |M'(theta_k)| from the closed form of spec 7.9 (quadratic region), FOM
plateauing at sqrt(2 D) = 0.3464.

Data: ``ufom/toy-fixed-points`` (quick grid: one seed per method, 1500 iterations,
gamma_k = 10/(k + 1), q = 0.1); M' from ``bilevel.analysis.meta_learning``.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from bilevel.analysis.meta_learning import ufom_divergence_toy

from .data import ClaimData
from .style import PREDICTION, legend, new_figure, style

NAME = "fom-vs-ufom"
CLAIMS = ("ufom/toy-fixed-points",)
LABELS = {"fom": "FOM", "ufom": "UFOM"}


def draw(data: dict[str, ClaimData]) -> Figure:
    toy, numbers = ufom_divergence_toy()
    slope = toy.exact_gradient(backend="numpy")
    fig, (left, right) = new_figure(columns=2, height=2.3, ncols=2)
    for params, m in data["ufom/toy-fixed-points"].runs:
        look = style(LABELS[m["method"]])
        steps = np.arange(1, len(m["thetas"]) + 1) * m["trace_every"]
        label = f"{look['label']} (seed {params['seed']})"
        left.semilogx(steps, m["thetas"], color=look["color"], lw=0.9, label=label)
        derivative = [abs(float(slope(np.array([t]))[0])) for t in m["thetas"]]
        right.loglog(steps, derivative, color=look["color"], lw=0.9, label=label)
    for value, name, ls in (
        (numbers["theta_FO"], r"$\theta_{FO}$", "--"),
        (numbers["theta_star"], r"$\theta^\star$", ":"),
    ):
        left.axhline(
            float(value), color=PREDICTION, lw=0.8, ls=ls, label=f"{name} = {float(value):.4f}"
        )
    right.axhline(np.sqrt(0.12), color=PREDICTION, lw=0.8, ls="--", label=r"$\sqrt{2D}$")
    left.set_xlabel("SGD iteration $k$")
    left.set_ylabel(r"$\theta_k$")
    right.set_xlabel("SGD iteration $k$")
    right.set_ylabel(r"$|\mathcal{M}'(\theta_k)|$")
    legend(left)
    legend(right, loc="lower left")
    fig.tight_layout(pad=0.3)
    return fig
