r"""The registry of bilevel's algorithms and estimators: one entry per method.

Each entry names a method by a short id (``"cg"``, ``"aid-bio"``, ...), the object that
implements it as ``"module:attribute"`` (imported only when asked for), its kind, and its
paper. Claims obtain their implementations through this registry (their *implementation slots*,
``bilevel.proofs_checks.slots``), the figures take their styles from it, and the docs' API page
and the tests iterate over it: a new method is one entry here.

Kinds and the call signature an implementation of each must have:

- ``"estimator"``: ``fn(outer, inner, x, y, *, counts=None, **options) -> Tree``, the
  hypergradient at the inner point y (``bilevel.solvers.estimators``);
- ``"outer"``: a class constructed with the default's keyword arguments, with
  ``init(x, y) -> state``, ``step(state) -> state`` and ``run(x, y, **budget)``;
- ``"meta"``: a function with the default's signature (the meta-gradient and meta-training
  functions of ``bilevel.solvers.maml`` and ``bilevel.solvers.ufom``).
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any

KINDS = ("estimator", "outer", "meta")


@dataclass(frozen=True)
class Method:
    """One registered method: ``id``, ``target`` ("module:attribute"), ``kind``, ``paper``."""

    id: str
    target: str
    kind: str
    paper: str
    summary: str

    def load(self) -> Any:
        """The implementing object (imported on first use)."""
        return load_target(self.target)

    def signature(self) -> str:
        """The call signature a replacement must accept (the default's)."""
        return target_signature(self.target)


def target_signature(target: str) -> str:
    """``name(signature)`` of the object ``target`` ("module:attr") names."""
    name = target.rsplit(":", 1)[1]
    try:
        return f"{name}{inspect.signature(load_target(target))}"
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return name


def load_target(target: str) -> Any:
    """Import ``"package.module:attribute"`` (dotted attributes allowed) and return it."""
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"an implementation is named MODULE:ATTR, got {target!r}")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r} (from {target!r}): {exc}") from exc
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise ValueError(f"{module_name!r} has no attribute {attribute!r}") from exc
    return obj


_S = "bilevel.solvers"
JI2021 = "Ji, Yang & Liang, ICML 2021"

REGISTRY: tuple[Method, ...] = (
    Method("exact", f"{_S}.estimators:exact", "estimator", "Pedregosa 2016",
           "dense solve v = H^-1 grad_y f (small problems)"),
    Method("cg", f"{_S}.estimators:cg", "estimator", JI2021,
           "AID with K conjugate-gradient steps on H v = grad_y f"),
    Method("neumann", f"{_S}.estimators:neumann", "estimator", JI2021,
           "AID with the Q-term Neumann series eta sum_q (I - eta H)^q grad_y f"),
    Method("rt", f"{_S}.estimators:rt", "estimator", "Ghadimi & Wang 2018",
           "randomized truncation of the Neumann series (unbiased)"),
    Method("fo", f"{_S}.estimators:fo", "estimator", JI2021,
           "first-order estimate grad_x f (v = 0)"),
    Method("itd", f"{_S}.estimators:itd", "estimator", JI2021,
           "reverse mode through T inner gradient steps (checkpoint modes included)"),
    Method("stocbio", f"{_S}.estimators:stocbio", "estimator", "Ji, Yang & Liang 2021",
           "stochastic Neumann hypergradient with fresh minibatches"),
    Method("aid-bio", f"{_S}.aid_bio:AIDBiO", "outer", JI2021,
           "warm-started AID-BiO (CG or Neumann linear solves)"),
    Method("itd-bio", f"{_S}.itd_bio:ITDBiO", "outer", JI2021,
           "ITD-BiO (and FO-ITD-BiO with first_order=True)"),
    Method("stocbio-bio", f"{_S}.stocbio_bio:StocBiO", "outer", JI2021,
           "stocBiO: stochastic AID-BiO with Neumann hypergradients"),
    Method("accbio", f"{_S}.accbio:AccBiO", "outer", "Ji & Liang, JMLR 2023",
           "accelerated bilevel optimization (Nesterov outer, accelerated inner)"),
    Method("maml", f"{_S}.maml:meta_gradient", "meta", "Ji, Yang & Liang, JMLR 2022",
           "multi-step MAML / FO-MAML / ANIL meta-gradients (torch.func)"),
    Method("meta-train", f"{_S}.maml:meta_train", "meta", "Finn et al. 2017; Raghu et al. 2020",
           "meta-training loop of MAML, FO-MAML and ANIL"),
    Method("ufom", f"{_S}.ufom:ufom_estimate", "meta",
           "Likhosherstov, Song, Choromanski, Davis & Weller, ICML 2021",
           "UFOM: FOM plus a q-Bernoulli correction, unbiased (FOM at q = 0)"),
    Method("ufom-sgd", f"{_S}.ufom:UFOMSGD", "outer",
           "Likhosherstov, Song, Choromanski, Davis & Weller, ICML 2021",
           "SGD on the meta-objective with UFOM (or FOM) estimates"),
    Method("bda", f"{_S}.bda:BDA", "outer", "Liu, Mu, Yuan, Zeng & Zhang, ICML 2020",
           "Bi-level Descent Aggregation"),
    Method("minimax-gda", f"{_S}.minimax_gda:MinimaxGDA", "outer",
           "Wang, Pan, Pi & Zhang, arXiv:2305.13153",
           "multi-stage GDA on the minimax (penalty) reformulation"),
    Method("mgbio", f"{_S}.mgbio:MGBiO", "outer", "Huang, arXiv:2303.03944",
           "momentum hypergradient method for a PL lower level (deterministic)"),
    Method("msgbio", f"{_S}.msgbio:MSGBiO", "outer", "Huang, arXiv:2303.03944",
           "stochastic MGBiO (STORM-free momentum)"),
    Method("vr-msgbio", f"{_S}.vr_msgbio:VRMSGBiO", "outer", "Huang, arXiv:2303.03944",
           "variance-reduced MSGBiO (STORM momentum)"),
    Method("fsla", f"{_S}.fsla:FSLA", "outer", "Li, Gu & Huang, AAAI 2022",
           "fully single-loop algorithm (STORM on the hypergradient)"),
    Method("soba", f"{_S}.soba:SOBA", "outer", "Dagreou, Ablin, Vaiter & Moreau, NeurIPS 2022",
           "single loop: one stochastic step of y, v and x per iteration"),
)  # fmt: skip

_BY_ID = {m.id: m for m in REGISTRY}


def get(method_id: str) -> Method:
    """The entry ``method_id``, or a ``ValueError`` listing the known ids."""
    try:
        return _BY_ID[method_id]
    except KeyError:
        known = ", ".join(sorted(_BY_ID))
        raise ValueError(f"unknown method {method_id!r}; registered: {known}") from None


def ids(kind: str | None = None) -> tuple[str, ...]:
    """The registered ids (of one ``kind`` when given), in registry order."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of {KINDS}")
    return tuple(m.id for m in REGISTRY if kind is None or m.kind == kind)
