r"""Figure 7: FO-BLO (FOM) failing to reach a stationary point on the UFOM paper's
two-task toy while the unbiased estimator UFOM does (Likhosherstov et al., ICML 2021; spec 4.6).
Left: the SGD iterates theta_k with the exact fixed points theta_FO ~ 5.7589 and
theta* ~ 2.8403; right: |M'(theta_k)| from the closed form of spec 7.9 (quadratic region), FOM
plateauing at sqrt(2 D) = 0.3464. Third panel: MAML, FO-MAML (one adaptation step) and ANIL
(head only, five steps) meta-training on 5-shot sinusoid regression, the post-adaptation query
loss (moving average over 20 meta-batches of 8 tasks).

Data: ``ufom/toy-fixed-points`` (quick grid: one seed per method, 1500 iterations,
gamma_k = 10/(k + 1), q = 0.1); M' from ``bilevel.analysis.meta_learning``;
``ji2022-maml/sinusoid-meta-training``.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from bilevel.analysis.meta_learning import ufom_divergence_toy

from .data import ClaimData
from .style import PREDICTION, legend, new_figure, style

NAME = "fom-vs-ufom"
CLAIMS = ("ufom/toy-fixed-points", "ji2022-maml/sinusoid-meta-training")
META = {"maml": "MAML", "fomaml": "FO-MAML", "anil": "ANIL"}
LABELS = {"fom": "FOM", "ufom": "UFOM"}


def draw(data: dict[str, ClaimData]) -> Figure:
    toy, numbers = ufom_divergence_toy()
    slope = toy.exact_gradient(backend="numpy")
    fig, (left, right, meta) = new_figure(columns=2, height=2.4, ncols=3)
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
    for params, m in data["ji2022-maml/sinusoid-meta-training"].runs:
        label = META[m["method"]]
        losses = np.asarray(m["losses"])
        window = 20  # moving average over meta-batches
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        steps = np.arange(window, losses.size + 1)
        meta.plot(
            steps,
            smooth,
            color=style(label)["color"],
            lw=1.0,
            label=f"{label} ({params['steps']} step{'s' if params['steps'] > 1 else ''})",
        )
    meta.set_xlabel("meta-iteration")
    meta.set_ylabel("query loss after adaptation")
    meta.set_title("sinusoid regression, 5-shot")
    left.set_title("two-task toy: iterates")
    right.set_title("two-task toy: stationarity")
    legend(left)
    legend(right, loc="lower left")
    legend(meta, loc="upper right")
    fig.tight_layout(pad=0.3)
    return fig
