r"""Wrong SOBA implementations (subclasses of ``bilevel.solvers.soba.SOBA``), each with one
realistic bug, and the claims that must refute them."""

from __future__ import annotations

from dataclasses import dataclass, replace

from bilevel.solvers.oracles import OracleCounts, SecondOrderOracle, outer_gradients
from bilevel.solvers.soba import SOBA, SOBAState

from . import Mutant

_HERE = "bilevel.proofs_checks.gallery.soba"


@dataclass(frozen=True)
class SOBAImplicitSignFlipped(SOBA):
    """SOBA adding the implicit term (the paper's v = -H^-1 grad_y f sign convention mixed with
    bilevel's): x-direction grad_x f + (d^2 g/dx dy) v."""

    def step_vectors(self, state: SOBAState) -> SOBAState:
        after = super().step_vectors(state)
        gamma = self.steps_at(state.iteration)[1]
        direction = (state.x - after.x) / gamma
        grad_x_f, _ = outer_gradients(
            lambda a, b: self.outer(a, b, None), state.x, state.y, OracleCounts()
        )
        mixed_part = direction - grad_x_f
        return replace(after, x=state.x - gamma * (direction - 2 * mixed_part))


@dataclass(frozen=True)
class SOBASequentialUpdates(SOBA):
    """SOBA evaluating v's and x's directions at the new y_{k+1} (FSLA's order, a Gauss-Seidel
    sweep) instead of at (x_k, y_k, v_k)."""

    def step_vectors(self, state: SOBAState) -> SOBAState:
        xi, zeta = self.sampler(self.generator), self.sampler(self.generator)
        x, v, counts, k = state.x, state.v, state.counts, state.iteration
        rho, gamma = self.steps_at(k)
        g = lambda a, b: self.inner(a, b, xi)  # noqa: E731
        f = lambda a, b: self.outer(a, b, zeta)  # noqa: E731
        y = state.y - rho * SecondOrderOracle(g, x, state.y, counts).grad_y_inner
        oracle = SecondOrderOracle(g, x, y, counts)
        grad_x_f, grad_y_f = outer_gradients(f, x, y, counts)
        v_next = v - rho * (oracle.hvp(v) - grad_y_f)
        x_next = x - gamma * (grad_x_f - oracle.mixed(v))
        return SOBAState(x_next, y, k + 1, counts, v=v_next)


@dataclass(frozen=True)
class SOBADecayIgnored(SOBA):
    """SOBA whose ``schedule`` is not applied: constant steps whatever is asked."""

    def steps_at(self, k: int) -> tuple[float, float]:
        return self.inner_lr, self.outer_lr


MUTANTS: tuple[Mutant, ...] = (
    Mutant("soba-implicit-sign", "soba", f"{_HERE}:SOBAImplicitSignFlipped",
           "the implicit term's sign flipped (v's sign convention differs between papers)",
           ("soba/update-rule", "soba/stationary-point")),
    Mutant("soba-sequential", "soba", f"{_HERE}:SOBASequentialUpdates",
           "directions of v and x taken at the new y (Gauss-Seidel for Jacobi updates)",
           ("soba/update-rule",)),
    Mutant("soba-decay-ignored", "soba", f"{_HERE}:SOBADecayIgnored",
           "the decreasing step schedule never applied",
           ("soba/update-rule",)),
)  # fmt: skip
