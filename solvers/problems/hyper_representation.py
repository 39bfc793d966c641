r"""Hyper-representation learning on synthetic multi-task regression (Franceschi et al. 2018;
Ji et al. 2021; spec 6.8 / 3.5).

T tasks share a representation W in R^{p x k} (the outer variable x, flattened); each task t
has a linear head h_t in R^k (the inner variable y stacks the T heads). With task data
(A_t, b_t) split into train and validation rows:

    g(x, y) = sum_t [ mean_train (A_t W h_t - b_t)^2 / 2 + reg ||h_t||^2 / 2 ],
    f(x, y) = sum_t mean_validation (A_t W h_t - b_t)^2 / 2.

g is reg-strongly convex in y. ``inner_on`` / ``outer_on`` are the same losses on a minibatch of
rows (shared by the tasks), for the stochastic methods. Data: b_t = A_t W* h*_t + noise with
Gaussian A_t, a random orthonormal W* (p x k) and Gaussian heads, all from ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class HyperRepresentationProblem:
    train: tuple[torch.Tensor, torch.Tensor]  # (T, n_train, p), (T, n_train)
    validation: tuple[torch.Tensor, torch.Tensor]
    rank: int
    reg: float

    @property
    def dims(self) -> tuple[int, int]:
        """(d_x, d_y) = (p k, T k)."""
        tasks, _, p = self.train[0].shape
        return p * self.rank, tasks * self.rank

    def _predictions(self, split, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        features, _ = split
        tasks, _, p = features.shape
        W, heads = x.reshape(p, self.rank), y.reshape(tasks, self.rank)
        return torch.einsum("tnp,pk,tk->tn", features, W, heads)

    def _loss(self, split, x, y) -> torch.Tensor:
        return 0.5 * ((self._predictions(split, x, y) - split[1]) ** 2).mean(1).sum()

    def inner(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self._loss(self.train, x, y) + 0.5 * self.reg * (y**2).sum()

    def outer(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self._loss(self.validation, x, y)

    def inner_on(self, x: torch.Tensor, y: torch.Tensor, rows: torch.Tensor | None):
        """g on the training rows ``rows`` of every task (an index tensor; ``None``: all): the
        minibatch objective g(x, y; xi) of the stochastic methods, unbiased for g when ``rows``
        is drawn uniformly (the mean over rows is the only data-dependent part)."""
        return self._loss(_rows(self.train, rows), x, y) + 0.5 * self.reg * (y**2).sum()

    def outer_on(self, x: torch.Tensor, y: torch.Tensor, rows: torch.Tensor | None):
        """f on the validation rows ``rows`` of every task (``None``: all)."""
        return self._loss(_rows(self.validation, rows), x, y)


def _rows(split: tuple[torch.Tensor, torch.Tensor], rows: torch.Tensor | None):
    features, targets = split
    return split if rows is None else (features[:, rows], targets[:, rows])


def make_hyper_representation(
    *,
    tasks: int = 8,
    features: int = 20,
    rank: int = 3,
    n_train: int = 30,
    n_validation: int = 30,
    noise: float = 0.1,
    reg: float = 0.1,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> HyperRepresentationProblem:
    if not 1 <= rank <= features:
        raise ValueError(f"need 1 <= rank <= features, got rank={rank}, features={features}")
    rng = np.random.default_rng(seed)
    W_star, _ = np.linalg.qr(rng.standard_normal((features, rank)))
    heads = rng.standard_normal((tasks, rank))
    A = rng.standard_normal((tasks, n_train + n_validation, features))
    b = np.einsum("tnp,pk,tk->tn", A, W_star, heads) + noise * rng.standard_normal(A.shape[:2])
    t = lambda a: torch.as_tensor(a, dtype=dtype)  # noqa: E731
    return HyperRepresentationProblem(
        (t(A[:, :n_train]), t(b[:, :n_train])),
        (t(A[:, n_train:]), t(b[:, n_train:])),
        rank,
        reg,
    )
