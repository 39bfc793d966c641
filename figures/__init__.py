"""Paper figures drawn from the verification engine's saved results (``bilevel figures``).

One module per figure, each with ``NAME``, ``CLAIMS`` (the claims whose runs it draws) and
``draw(data) -> Figure``; ``style`` is shared by all, ``data`` loads (and if needed computes,
through the engine's cache) the runs. No figure runs a solver itself.
"""

from __future__ import annotations

from importlib import import_module

MODULES = (
    "hypergradient_error",
    "estimator_bias",
    "outer_convergence",
    "hyper_cleaning",
    "momentum_family",
    "fom_vs_ufom",
    "bda_counterexample",
    "complexity_exponents",
    "lower_bound",
)


def registry() -> dict:
    """NAME -> figure module, in gallery order."""
    modules = [import_module(f"{__name__}.{m}") for m in MODULES]
    return {m.NAME: m for m in modules}


def render(module, data):
    """``module.draw(data)`` inside the shared style's rc context (every text in style)."""
    import matplotlib

    from .style import RC

    with matplotlib.rc_context(RC):
        return module.draw(data)
