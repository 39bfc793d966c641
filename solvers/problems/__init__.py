"""Problems the outer algorithms run on: deterministic and minibatch oracles, seeded samplers.

- ``quadratic``: the torch twin of ``bilevel.analysis.QuadraticBilevel`` (same blocks, spec 7.1);
- ``logistic``: L2-regularised logistic regression with one exp-parametrised weight per feature
  on scikit-learn's bundled breast-cancer or digits data (train / validation / test splits,
  standardised on the training split);
- ``hyper_cleaning``: data hyper-cleaning on digits with a stated fraction of corrupted labels
  (per-sample sigmoid weights, linear model; test accuracy and the F1 of detecting corruption);
- ``sinusoid``: few-shot sinusoid regression tasks for MAML / ANIL;
- ``pl_game``: the rank-deficient least-squares PL game of spec 7.11 (MGBiO family);
- ``hyper_representation``: a shared representation (x) with per-task heads (y) on synthetic
  multi-task regression.
"""

from .hyper_cleaning import HyperCleaningProblem, load_hyper_cleaning
from .hyper_representation import HyperRepresentationProblem, make_hyper_representation
from .logistic import LogisticHyperparameterProblem, load_logistic_problem
from .pl_game import PLGameProblem
from .quadratic import QuadraticProblem

__all__ = [
    "HyperCleaningProblem",
    "HyperRepresentationProblem",
    "LogisticHyperparameterProblem",
    "PLGameProblem",
    "QuadraticProblem",
    "load_hyper_cleaning",
    "load_logistic_problem",
    "make_hyper_representation",
]
