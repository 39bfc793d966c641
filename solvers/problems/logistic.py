r"""L2-regularised logistic regression, one regularisation weight per feature (hyperparameter
optimisation; Pedregosa 2016, Ji et al. 2021 experiments).

x in R^d are log-weights, y in R^d the model:
g(x, y) = mean_{i in train} softplus(-b_i a_i^T y) + 1/2 sum_j exp(x_j) y_j^2,
f(x, y) = mean_{i in validation} softplus(-b_i a_i^T y), labels b_i in {-1, +1}.
g is exp(min x)-strongly convex in y. Data: scikit-learn's bundled breast-cancer (binary) or
digits (class ``positive_digit`` against the rest), split by a seeded permutation into train /
validation / test, standardised with the training mean and deviation. Minibatch oracles take a
tensor of row indices drawn by ``sampler(generator)`` from the training (inner) or validation
(outer) rows; ``batch=None`` is the full split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

DATASETS = ("breast_cancer", "digits")


class LogisticBatch(NamedTuple):
    """One minibatch of both splits: training rows for g, validation rows for f."""

    train: torch.Tensor
    validation: torch.Tensor


@dataclass(frozen=True)
class LogisticHyperparameterProblem:
    train: tuple[torch.Tensor, torch.Tensor]
    validation: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]

    @property
    def dim(self) -> int:
        return self.train[0].shape[1]

    @staticmethod
    def _loss(
        split: tuple[torch.Tensor, torch.Tensor], y: torch.Tensor, rows, name: str
    ) -> torch.Tensor:
        features, labels = split
        if rows is not None:
            if rows.numel() and int(rows.max()) >= features.shape[0]:
                raise IndexError(
                    f"batch row {int(rows.max())} is outside the {name} split "
                    f"({features.shape[0]} rows): rows drawn for another split? "
                    "problem.sampler(b) draws a LogisticBatch with rows of both"
                )
            features, labels = features[rows], labels[rows]
        return torch.nn.functional.softplus(-labels * (features @ y)).mean()

    def inner(self, x: torch.Tensor, y: torch.Tensor, batch=None) -> torch.Tensor:
        rows = batch.train if isinstance(batch, LogisticBatch) else batch
        return self._loss(self.train, y, rows, "train") + 0.5 * (torch.exp(x) * y**2).sum()

    def outer(self, x: torch.Tensor, y: torch.Tensor, batch=None) -> torch.Tensor:
        rows = batch.validation if isinstance(batch, LogisticBatch) else batch
        return self._loss(self.validation, y, rows, "validation")

    def accuracy(self, y: torch.Tensor, split: str = "test") -> float:
        features, labels = getattr(self, split)
        return float((torch.sign(features @ y) == labels).double().mean())

    def sampler(self, batch_size: int, split: str | None = None):
        """A sampler for the stochastic algorithms: ``split=None`` draws a ``LogisticBatch``
        (``batch_size`` training rows for g, then as many validation rows for f, uniformly with
        replacement); ``split="train"`` or ``"validation"`` draws row indices of that split."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        if split not in (None, "train", "validation"):
            raise ValueError(f"split must be None, 'train' or 'validation', got {split!r}")
        sizes = {name: getattr(self, name)[0].shape[0] for name in ("train", "validation")}

        def rows(name: str, generator: torch.Generator) -> torch.Tensor:
            return torch.randint(0, sizes[name], (batch_size,), generator=generator)

        if split is not None:
            return lambda generator: rows(split, generator)
        return lambda generator: LogisticBatch(
            rows("train", generator), rows("validation", generator)
        )


def sklearn_datasets():
    """``sklearn.datasets`` (the bundled data sets), or an ``ImportError`` naming the extra."""
    try:
        from sklearn import datasets
    except ImportError as exc:
        raise ImportError(
            "the bundled data sets (breast cancer, digits) need scikit-learn, a dependency of "
            "bilevel that is missing from this environment: pip install scikit-learn"
        ) from exc
    return datasets


def load_logistic_problem(
    dataset: str = "breast_cancer",
    *,
    seed: int = 0,
    fractions: tuple[float, float] = (0.5, 0.25),
    positive_digit: int = 0,
    dtype: torch.dtype = torch.float64,
    device: str = "cpu",
) -> LogisticHyperparameterProblem:
    """Train / validation fractions as given, the rest test (needs scikit-learn)."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {DATASETS}")
    if not (0 < fractions[0] and 0 < fractions[1] and sum(fractions) < 1):
        raise ValueError(f"fractions must be positive with sum < 1, got {fractions}")
    datasets = sklearn_datasets()
    if dataset == "breast_cancer":
        data = datasets.load_breast_cancer()
        features, labels = data.data, 2.0 * data.target - 1.0
    else:
        data = datasets.load_digits()
        features, labels = data.data, np.where(data.target == positive_digit, 1.0, -1.0)
    order = np.random.default_rng(seed).permutation(len(labels))
    n_train = int(fractions[0] * len(labels))
    n_val = int(fractions[1] * len(labels))
    parts = np.split(order, [n_train, n_train + n_val])
    mean, std = features[parts[0]].mean(0), features[parts[0]].std(0)
    std = np.where(std > 0, std, 1.0)  # constant pixels (digits) stay 0 after centring
    t = lambda a: torch.as_tensor(a, dtype=dtype, device=device)  # noqa: E731
    splits = [(t((features[i] - mean) / std), t(labels[i])) for i in parts]
    return LogisticHyperparameterProblem(*splits)
