"""Paper figures drawn from the verification engine's saved results (``bilevel figures``).

One module per figure, each with ``NAME``, ``CLAIMS`` (the claims whose runs it draws) and
``draw(data) -> Figure``; ``style`` is shared by all, ``data`` loads (and if needed computes,
through the engine's cache) the runs. No figure runs a solver itself.
"""

from __future__ import annotations

import pkgutil
import re
from importlib import import_module

#: the file formats a figure is saved in (``style.METADATA`` has one entry each); defined here,
#: not in ``style``, so that ``bilevel verify``'s argument parser never imports matplotlib
FORMATS = ("png", "pdf", "svg")


def registry() -> dict:
    """NAME -> figure module, ordered by the figure number of each module's docstring ("Figure
    N: ..."): every module of this package with ``NAME``, ``CLAIMS`` and ``draw`` is found,
    none is listed by hand."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        module = import_module(f"{__name__}.{info.name}")
        if all(hasattr(module, a) for a in ("NAME", "CLAIMS", "draw")):
            found.append((_figure_number(module), module))
    return {m.NAME: m for _, m in sorted(found, key=lambda pair: pair[0])}


def _figure_number(module) -> tuple[int, str]:
    match = re.match(r"\s*Figure (\d+)", module.__doc__ or "")
    return (int(match.group(1)) if match else 10**6, module.NAME)


def render(module, data):
    """``module.draw(data)`` inside the shared style's rc context (every text in style)."""
    import matplotlib

    from .style import RC

    with matplotlib.rc_context(RC):
        return module.draw(data)
