r"""Solvers for the linear system H v = b of approximate implicit differentiation (AID).

H = d^2 g / dy^2 at (x, y), available only through Hessian-vector products of a
``SecondOrderOracle``; b = grad_y f. Each function states the iterate it returns.

- ``conjugate_gradient``: K steps of CG from v_0 (Hestenes-Stiefel); v_K minimises the H-norm
  error over v_0 + span{r_0, H r_0, ..., H^{K-1} r_0}; ||v_K - v*||_H <= 2 rho^K ||v_0 - v*||_H,
  rho = (sqrt kappa - 1)/(sqrt kappa + 1) [Hestenes & Stiefel 1952; spec 7.6].
- ``neumann``: v_Q = eta sum_{q=0}^{Q-1} (I - eta H)^q b, Q terms, equal to Q steps of GD on
  1/2 v^T H v - b^T v from 0 [Ji et al. 2021; spec 7.4]; error (I - eta H)^Q H^-1 b.
- ``randomized_truncation``: v = eta sum_{q=0}^{N} (I - eta H)^q b / P(N >= q) with
  P(N >= q) = (1 - p)^q, an unbiased estimate of H^-1 b when the series converges, with finite
  variance iff max_i (1 - eta lambda_i)^2 < 1 - p [spec 7.7; VERIFICATION.md section 2].
- ``dense_solve``: the exact v = H^-1 b from the dense Hessian (small problems).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
from torch.func import hessian

from ._flat import check_finite_replayed, check_not_growing
from .oracles import OracleCounts, SecondOrderOracle

#: above this many inner variables, ``dense_solve`` refuses (the Hessian has d_y^2 entries).
DENSE_MAX_DIM = 4096


#: On an accelerator CG reads its scalars on the host every this many iterations (on the CPU,
#: where a read costs about a microsecond, every iteration); between reads the iteration runs
#: without synchronising, and an iteration after convergence is a no-op.
CG_HOST_READ_EVERY_ON_ACCELERATOR = 8


def conjugate_gradient(
    oracle: SecondOrderOracle,
    b: torch.Tensor,
    steps: int,
    v0: torch.Tensor | None = None,
    tol: float | None = None,
) -> torch.Tensor:
    """K = ``steps`` CG iterations on H v = b from ``v0`` (zeros by default).

    alpha_k = r_k^T r_k / p_k^T H p_k, v_{k+1} = v_k + alpha_k p_k, r_{k+1} = r_k - alpha_k H p_k,
    p_{k+1} = r_{k+1} + (r_{k+1}^T r_{k+1} / r_k^T r_k) p_k (Hestenes & Stiefel 1952).
    Stops once ||r_k|| <= tol ||b|| (``tol`` defaults to the dtype's machine epsilon, the
    residual floor: float32 stops there instead of dividing 0 by 0). Raises ``ValueError`` when
    p^T H p <= 0 (H not positive definite along p) and ``FloatingPointError`` on NaN/inf, naming
    the step. The scalars stay on the device; they are read on the host every iteration on the
    CPU and every ``CG_HOST_READ_EVERY_ON_ACCELERATOR`` iterations elsewhere (the iterations
    after convergence in between are no-ops, but their HVPs are spent and counted).
    """
    tol = torch.finfo(b.dtype).eps if tol is None else tol
    if b.device.type == "cpu":
        return _cg_host_scalars(oracle, b, steps, v0, tol)
    return _cg_device_scalars(oracle, b, steps, v0, tol)


def _cg_host_scalars(
    oracle: SecondOrderOracle, b: torch.Tensor, steps: int, v0: torch.Tensor | None, tol: float
) -> torch.Tensor:
    """CG with its scalars read on the host each iteration (a read costs ~1 us on the CPU)."""
    v = torch.zeros_like(b) if v0 is None else v0.clone()
    r = b.clone() if v0 is None else b - oracle.hvp(v)
    p = r.clone()
    # scalars are read once per iteration as Python floats: one host read each for rr and
    # p^T H p, which also serve as the NaN/inf checks (a NaN anywhere reaches both).
    rr = torch.dot(r, r).item()
    b_norm = torch.linalg.vector_norm(b).item()
    threshold, underflow = (tol * b_norm) ** 2, _underflow_residual(b.dtype, b_norm)
    for k in range(steps):
        if rr <= threshold:
            break
        Hp = oracle.hvp(p)
        curvature = torch.dot(p, Hp).item()
        if not 0.0 < curvature < math.inf:  # NaN fails both comparisons
            if curvature == 0.0 and rr <= underflow:
                break  # converged into the underflow range: p^T H p rounded to 0, not H
            _check_cg_curvatures([curvature], k)
        step = rr / curvature
        v.add_(p, alpha=step)
        r.add_(Hp, alpha=-step)
        rr_next = torch.dot(r, r).item()
        if not math.isfinite(rr_next):
            raise FloatingPointError(
                f"CG residual became NaN/inf at step {k}; likely cause: an ill-conditioned or "
                "non-finite inner Hessian"
            )
        torch.add(r, p, alpha=rr_next / rr, out=p)  # p <- r + beta p, one elementwise pass
        rr = rr_next
    return v


def _cg_device_scalars(
    oracle: SecondOrderOracle, b: torch.Tensor, steps: int, v0: torch.Tensor | None, tol: float
) -> torch.Tensor:
    """CG with device scalars, read on the host every ``CG_HOST_READ_EVERY_ON_ACCELERATOR``."""
    read_every = CG_HOST_READ_EVERY_ON_ACCELERATOR
    v = torch.zeros_like(b) if v0 is None else v0.clone()
    r = b.clone() if v0 is None else b - oracle.hvp(v)
    p = r.clone()
    rr = torch.dot(r, r)
    b_norm = torch.linalg.vector_norm(b).item()
    threshold, underflow = (tol * b_norm) ** 2, _underflow_residual(b.dtype, b_norm)
    # about ten small kernels an iteration besides the HVP (launch-bound at small sizes):
    # 0-d scalars broadcast in addcmul, inactive (converged) iterations are no-ops via where
    curvatures: list[torch.Tensor] = []
    actives: list[torch.Tensor] = []
    for k in range(steps):
        if k % read_every == 0:
            _check_cg_curvatures(_host(curvatures, actives), k - len(curvatures))
            curvatures, actives = [], []
            if rr.item() <= threshold:
                break
        Hp = oracle.hvp(p)
        curvature = torch.dot(p, Hp)
        # converged (or converged into the underflow range, where p^T H p rounds to 0)
        active = (rr > threshold) & ~((curvature == 0) & (rr <= underflow))
        curvatures.append(curvature)
        actives.append(active)
        step = torch.where(active, rr / curvature, 0.0)
        v.addcmul_(step, p)
        r.addcmul_(step, Hp, value=-1.0)
        rr_next = torch.dot(r, r)
        p = torch.addcmul(r, torch.where(active, rr_next / rr, 0.0), p)
        rr = torch.where(active, rr_next, rr)
    _check_cg_curvatures(_host(curvatures, actives), steps - len(curvatures))
    if not bool(torch.isfinite(rr)):
        raise FloatingPointError(
            "CG residual became NaN/inf; likely cause: an ill-conditioned or non-finite inner "
            "Hessian"
        )
    return v


def _host(curvatures: list[torch.Tensor], actives: list[torch.Tensor]) -> list[float]:
    """One host read of the curvatures of the active (not yet converged) iterations."""
    if not curvatures:
        return []
    return torch.where(torch.stack(actives), torch.stack(curvatures), 1.0).tolist()


def _underflow_residual(dtype: torch.dtype, b_norm: float) -> float:
    """r^T r at or below which a p^T H p of exactly 0 means convergence, not a singular H.

    Both: r^T r <= tiny / eps, where p^T H p >= lambda_min ||p||^2 (||p|| about ||r|| once
    converged) falls below the smallest normal number for any lambda_min >= eps relative to one,
    so it may round to 0 with H positive definite; and r^T r <= (eps ||b||)^2, the residual
    floor, so CG has already converged (without it, a badly scaled H whose curvature underflows
    from the first step would return v = 0 silently instead of raising).
    """
    info = torch.finfo(dtype)
    return min(info.tiny / info.eps, (info.eps * b_norm) ** 2)


def _check_cg_curvatures(curvatures: list[float], first_step: int) -> None:
    """Raise on the first p_k^T H p_k that is NaN/inf or <= 0, k counted from ``first_step``."""
    for k, curvature in enumerate(curvatures, start=first_step):
        if not math.isfinite(curvature):
            raise FloatingPointError(
                f"CG curvature p^T H p became NaN/inf at step {k}; likely cause: a non-finite "
                "inner Hessian or an overflowing right-hand side"
            )
        if curvature <= 0:
            underflow = " (or p^T H p underflowed: rescale g)" if curvature == 0 else ""
            raise ValueError(
                f"non-positive curvature p^T H p = {curvature:.3e} at CG step {k}: the "
                f"Hessian of the inner objective in y is not positive definite at this y{underflow}"
            )


def neumann_terms(
    oracle: SecondOrderOracle, b: torch.Tensor, lr: float, count: int
) -> Iterator[torch.Tensor]:
    """The first ``count`` terms (I - eta H)^q b, q = 0..count-1 (count - 1 HVPs)."""
    term = b
    for q in range(count):
        if q > 0:
            term = torch.add(term, oracle.hvp(term), alpha=-lr)
        yield term


def neumann(oracle: SecondOrderOracle, b: torch.Tensor, steps: int, lr: float) -> torch.Tensor:
    """v_Q = eta sum_{q=0}^{Q-1} (I - eta H)^q b with Q = ``steps``, eta = ``lr``."""
    v = torch.zeros_like(b)
    term = b
    for term in neumann_terms(oracle, b, lr, steps):
        v.add_(term, alpha=lr)
    check_finite_replayed(
        v,
        lambda: neumann_terms(oracle, b, lr, steps),
        "Neumann term (I - eta H)^q b",
        "lr above 2 / L",
        first_step=0,
    )
    check_terms_contract(b, term, steps, "Neumann term (I - eta H)^q b")
    return v


#: ||(I - eta H)^q b|| <= ||b|| for symmetric H with 0 <= eta lambda <= 2; the slack covers
#: rounding (q eps ||b||, far below 1% for q < 10^4 even in float32)
TERM_SLACK = 1.01


def check_terms_contract(
    b: torch.Tensor, last: torch.Tensor, steps: int, quantity: str, floor: float = 0.0
) -> None:
    """Raise when the last series term is longer than b: the series diverges (eta lambda_max
    above 2, or H not positive semi-definite), long before a term overflows. Terms below
    ``floor`` (the rounding level of the quantity) are not judged."""
    check_not_growing(
        b, last, TERM_SLACK, quantity, steps,
        "lr (eta) above 2 / L, or an inner Hessian that is not positive definite (g not convex "
        "in y): every term of a convergent series is no longer than grad_y f",
        floor=floor,
    )  # fmt: skip


def truncated_series_at_level(
    oracle: SecondOrderOracle, b: torch.Tensor, lr: float, p: float, level: int
) -> torch.Tensor:
    """eta sum_{q=0}^{level} (I - eta H)^q b / (1 - p)^q: the estimate given N = ``level``."""
    v = torch.zeros_like(b)
    term = b
    for q, term in enumerate(neumann_terms(oracle, b, lr, level + 1)):
        v.add_(term, alpha=lr / (1.0 - p) ** q)
    check_terms_contract(b, term, level, "randomized-truncation term (I - eta H)^q b")
    check_finite_replayed(
        v,
        lambda: neumann_terms(oracle, b, lr, level + 1),
        "randomized-truncation term (I - eta H)^q b",
        "variance condition or lr above 2 / L",
        first_step=0,
    )
    return v


def truncation_level_probabilities(p: float, max_level: int) -> list[float]:
    """P(N = n) = p (1 - p)^n for n = 0..max_level (geometric level, P(N >= q) = (1 - p)^q)."""
    return [p * (1.0 - p) ** n for n in range(max_level + 1)]


def sample_truncation_level(p: float, generator: torch.Generator | None) -> int:
    """N = floor(log U / log(1 - p)), U ~ Uniform(0, 1] drawn on the CPU from ``generator``."""
    u = 1.0 - torch.rand((), generator=generator, dtype=torch.float64).item()
    return math.floor(math.log(u) / math.log1p(-p))


def check_finite_variance(lr: float, p: float, mu: float, L: float | None) -> None:
    """Refuse randomized truncation unless max(|1 - eta mu|, |1 - eta L|)^2 < 1 - p."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must lie in (0, 1), got {p}")
    if not mu > 0:
        raise ValueError(
            f"mu (a lower bound on the inner Hessian's spectrum) must be > 0, got {mu}"
        )
    contraction = abs(1 - lr * mu) if L is None else max(abs(1 - lr * mu), abs(1 - lr * L))
    if contraction**2 >= 1.0 - p:
        raise ValueError(
            f"randomized truncation has infinite variance: needs (1 - lr*mu)^2 < 1 - p, got "
            f"({contraction:.6g})^2 = {contraction**2:.6g} >= {1 - p:.6g}; raise p or lr"
        )


def randomized_truncation(
    oracle: SecondOrderOracle,
    b: torch.Tensor,
    lr: float,
    p: float,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Unbiased estimate of H^-1 b: draws N, returns ``truncated_series_at_level``."""
    level = sample_truncation_level(p, generator)
    return truncated_series_at_level(oracle, b, lr, p, level)


def dense_solve(
    inner: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    b: torch.Tensor,
    counts: OracleCounts,
) -> torch.Tensor:
    """v = H^-1 b with H the dense Hessian (Cholesky); raises if H is not positive definite."""
    if y.numel() > DENSE_MAX_DIM:
        raise ValueError(
            f"method='exact' forms the dense {y.numel()}x{y.numel()} Hessian; it is limited to "
            f"{DENSE_MAX_DIM} inner variables: use method='cg'"
        )
    H = hessian(inner, argnums=1)(x, y)
    counts.hvp += y.numel()
    chol, info = torch.linalg.cholesky_ex(H)
    if info.item() != 0:
        smallest = torch.linalg.eigvalsh(H).min().item()
        raise ValueError(
            f"the Hessian of the inner objective in y is not positive definite (smallest "
            f"eigenvalue {smallest:.3e}); the implicit hypergradient is undefined at this y"
        )
    return torch.cholesky_solve(b.unsqueeze(-1), chol).squeeze(-1)
