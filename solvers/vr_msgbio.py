r"""VR-MSGBiO: MSGBiO with STORM variance reduction (Huang, arXiv:2303.03944; spec 3.3,
[substitute] template). The iterate updates are MSGBiO's; each estimator is

    u_{t+1} = grad_y g(x_{t+1}, y_{t+1}; xi_{t+1}) + (1 - beta_{t+1}) (u_t - grad_y g(x_t, y_t; xi_{t+1}))

(the same sample at both points; likewise for the v-residual p and the direction m), with
eta_t = k / (m0 + t)^(1/3) and beta_{t+1} = c eta_t^2. Claimed [abs]: O~(eps^-3) samples for
E||grad F|| <= eps (registry ``vr-msgbio/samples``). Without noise every STORM
correction vanishes and the estimators are the fresh full gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._pl_surrogate import grad_y_inner, residual_and_direction
from .msgbio import MSGBiO


@dataclass(frozen=True, kw_only=True)
class VRMSGBiO(MSGBiO):
    power = 1 / 3
    name = "VR-MSGBiO"

    def beta(self, t: int) -> float:
        """beta_t = c eta_{t-1}^2."""
        return self.schedule_c * self.eta(t - 1) ** 2

    def _estimators(self, state, point, fresh, batch, t: int) -> tuple:
        """STORM: fresh + (1 - beta) (old estimate - the same batch at the previous point)."""
        beta, counts = self.beta(t), state.counts
        previous_u = grad_y_inner(self.inner, state.x, state.y, batch, counts)
        previous_p, previous_m = residual_and_direction(
            self.outer, self.inner, state.x, state.y, state.v, batch, counts, self.clip
        )
        old = (state.u, state.p, state.m)
        previous = (previous_u, previous_p, previous_m)
        return tuple(f + (1 - beta) * (o - q) for f, o, q in zip(fresh, old, previous, strict=True))
