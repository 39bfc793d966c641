r"""Data hyper-cleaning (Franceschi et al. 2017; Ji, Yang & Liang 2021 experiments).

A fraction of the training labels is replaced by a different class drawn at random. x in R^n
holds one logit per training sample, y the flattened weights W (d x C) of a linear classifier:

    g(x, y) = mean_i sigmoid(x_i) CE(a_i^T W, b_i) + reg ||W||^2,
    f(x, y) = mean_{validation} CE(a^T W, b),

so the outer problem learns to down-weight the corrupted samples. Reported: test accuracy, and
the F1 score of flagging sample i as corrupted when sigmoid(x_i) < 1/2. Data: scikit-learn's
bundled digits (10 classes, 64 features), seeded split, standardised on the training split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn.functional import cross_entropy

from .logistic import sklearn_datasets


@dataclass(frozen=True)
class HyperCleaningProblem:
    train: tuple[torch.Tensor, torch.Tensor]
    validation: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    corrupted: torch.Tensor  # bool, one per training sample
    n_classes: int
    reg: float = 1e-3

    @property
    def dims(self) -> tuple[int, int]:
        """(d_x, d_y) = (training samples, features x classes)."""
        return self.train[0].shape[0], self.train[0].shape[1] * self.n_classes

    def _weights(self, y: torch.Tensor) -> torch.Tensor:
        return y.reshape(self.train[0].shape[1], self.n_classes)

    def inner(self, x: torch.Tensor, y: torch.Tensor, rows=None) -> torch.Tensor:
        """The weighted training loss; ``rows`` (indices) averages over a minibatch instead."""
        features, labels = self.train
        weights = torch.sigmoid(x)
        if rows is not None:
            features, labels, weights = features[rows], labels[rows], weights[rows]
        W = self._weights(y)
        losses = cross_entropy(features @ W, labels, reduction="none")
        return (weights * losses).mean() + self.reg * (W**2).sum()

    def outer(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        features, labels = self.validation
        return cross_entropy(features @ self._weights(y), labels)

    def accuracy(self, y: torch.Tensor, split: str = "test") -> float:
        features, labels = getattr(self, split)
        predicted = (features @ self._weights(y)).argmax(1)
        return float((predicted == labels).double().mean())

    def detection_f1(self, x: torch.Tensor) -> float:
        flagged = torch.sigmoid(x) < 0.5
        true_positive = float((flagged & self.corrupted).sum())
        if true_positive == 0:
            return 0.0
        precision = true_positive / float(flagged.sum())
        recall = true_positive / float(self.corrupted.sum())
        return 2 * precision * recall / (precision + recall)


def load_hyper_cleaning(
    *,
    corruption: float = 0.5,
    seed: int = 0,
    fractions: tuple[float, float] = (0.5, 0.25),
    reg: float = 1e-3,
    dtype: torch.dtype = torch.float64,
) -> HyperCleaningProblem:
    """Digits with round(corruption x n_train) training labels replaced (needs scikit-learn)."""
    if not 0 <= corruption < 1:
        raise ValueError(f"corruption must lie in [0, 1), got {corruption}")
    load_digits = sklearn_datasets().load_digits

    data = load_digits()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data.target))
    n_train, n_val = int(fractions[0] * len(order)), int(fractions[1] * len(order))
    parts = np.split(order, [n_train, n_train + n_val])
    mean, std = data.data[parts[0]].mean(0), data.data[parts[0]].std(0)
    std = np.where(std > 0, std, 1.0)
    labels = data.target.copy()
    bad = rng.choice(n_train, size=round(corruption * n_train), replace=False)
    train_labels = labels[parts[0]].copy()
    train_labels[bad] = (train_labels[bad] + rng.integers(1, 10, size=bad.size)) % 10
    corrupted = np.zeros(n_train, dtype=bool)
    corrupted[bad] = True

    def split(rows: np.ndarray, targets: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        feats = torch.as_tensor((data.data[rows] - mean) / std, dtype=dtype)
        return feats, torch.as_tensor(targets, dtype=torch.int64)

    return HyperCleaningProblem(
        split(parts[0], train_labels),
        split(parts[1], labels[parts[1]]),
        split(parts[2], labels[parts[2]]),
        torch.as_tensor(corrupted),
        10,
        reg,
    )
