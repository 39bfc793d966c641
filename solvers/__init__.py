"""Hypergradient estimators and outer algorithms in torch (CPU and CUDA; no sympy).

``hypergradient(outer, inner, x, y, method=...)`` is the entry point; ``OracleCounts`` records
gradient, Hessian-vector and mixed-product calls for complexity checks.
"""

from . import estimators, registry
from ._outer import Layout, OuterAlgorithm, OuterState, run_outer
from .accbio import AccBiO
from .argmin import argmin
from .aid_bio import AIDBiO
from .fsla import FSLA
from .hypergradient import METHODS, hypergradient
from .itd_bio import ITDBiO
from .maml import meta_gradient
from .oracles import OracleCounts, SecondOrderOracle
from .revolve import BinomialCheckpoints
from .stability import Smoothness, estimate_inner_smoothness
from .stocbio_bio import StocBiO

__all__ = [
    "FSLA",
    "METHODS",
    "AIDBiO",
    "AccBiO",
    "BinomialCheckpoints",
    "ITDBiO",
    "OracleCounts",
    "OuterState",
    "SecondOrderOracle",
    "Smoothness",
    "StocBiO",
    "estimate_inner_smoothness",
    "estimators",
    "hypergradient",
    "meta_gradient",
    "registry",
    "run_outer",
]
