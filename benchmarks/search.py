"""The step search shared by ``time_to_accuracy.py`` and ``jax_peer.py`` (pure Python, so that
the JAX environment, which has no torch, imports it too)."""

from __future__ import annotations

import math
from collections.abc import Callable

STALL = 0.99  # a doubling of K that keeps >= 99 % of the error: rounding's floor


def steps_to(error: Callable[[int], float], target: float, cap: int, hint: int | None = None):
    """(fewest K with error(K) <= target, its error) or (None, the best error seen): doubling
    from 1 (or from a peer's K, ``hint``) to a bracket, then bisection; a non-finite error or
    one that a doubling from K >= 64 on no longer lowers by 1 % ends the search as a floor."""
    seen: dict[int, float] = {}

    def e(k: int) -> float:
        if k not in seen:
            seen[k] = error(k)
        return seen[k]

    def floor() -> tuple[None, float]:
        finite = [v for v in seen.values() if math.isfinite(v)]
        return None, min(finite, default=float("nan"))

    if hint is not None and e(hint) <= target:  # walk down from a peer's K
        k = hint
        for _ in range(4):
            if k == 1 or e(k - 1) > target:
                return k, seen[k]
            k -= 1
        low, high = 0, k
    else:
        low = hint or 0
        k = 2 * hint if hint else 1
        while True:
            if k > cap:
                return floor()
            value = e(k)
            if not math.isfinite(value):
                return floor()
            if value <= target:
                high = k
                break
            if k >= 64 and low in seen and value >= STALL * seen[low]:
                return floor()
            low, k = k, 2 * k
    while high - low > 1:  # error(low) > target >= error(high); low = 0: not probed
        mid = (low + high) // 2
        if e(mid) <= target:
            high = mid
        else:
            low = mid
    return high, seen[high]
