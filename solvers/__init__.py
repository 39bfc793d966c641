"""Hypergradient estimators and outer algorithms in torch (CPU and CUDA; no sympy).

- ``hypergradient(outer, inner, x, y, method=...)``: every estimator behind one function
  (``estimators`` holds them one by one, as the registry names them);
- ``argmin(inner, x, y, method=...)``: an inner solution that autograd differentiates through
  the implicit function theorem (any ``torch.optim`` optimizer can then drive x);
- the outer algorithms, one class each, all following the ``OuterAlgorithm`` protocol
  (``init`` / ``step`` / ``run`` over tensors and trees of tensors, one vocabulary);
- ``OracleCounts`` records gradient, Hessian-vector and mixed-product calls;
- ``registry``: one entry per method (id, implementation, kind, paper).
"""

from . import estimators, registry
from ._outer import Layout, OuterAlgorithm, OuterState, run_outer
from .accbio import AccBiO
from .aid_bio import AIDBiO
from .argmin import argmin
from .bda import BDA
from .fsla import FSLA
from .hypergradient import METHODS, hypergradient
from .itd_bio import ITDBiO
from .maml import meta_gradient, meta_train
from .mgbio import MGBiO
from .minimax_gda import MinimaxGDA
from .msgbio import MSGBiO
from .oracles import OracleCounts, SecondOrderOracle
from .revolve import BinomialCheckpoints
from .soba import SOBA
from .stability import ProvenRangeWarning, Smoothness, estimate_inner_smoothness
from .stocbio_bio import StocBiO
from .ufom import UFOMSGD, ufom_estimate
from .vr_msgbio import VRMSGBiO

__all__ = [
    "BDA",
    "FSLA",
    "METHODS",
    "SOBA",
    "UFOMSGD",
    "AIDBiO",
    "AccBiO",
    "BinomialCheckpoints",
    "ITDBiO",
    "Layout",
    "MGBiO",
    "MSGBiO",
    "MinimaxGDA",
    "OracleCounts",
    "OuterAlgorithm",
    "OuterState",
    "ProvenRangeWarning",
    "SecondOrderOracle",
    "Smoothness",
    "StocBiO",
    "VRMSGBiO",
    "argmin",
    "estimate_inner_smoothness",
    "estimators",
    "hypergradient",
    "meta_gradient",
    "meta_train",
    "registry",
    "run_outer",
    "ufom_estimate",
]
