r"""Peak bytes of live tensors during a call, counted exactly on any device.

``peak_live_bytes(fn)`` runs ``fn()`` under a ``TorchDispatchMode`` that sees every tensor an
operator returns (autograd's saved tensors and a kept trajectory included: they are operator
outputs too). Each new storage adds its ``nbytes`` when it appears and removes them when it is
freed (a ``weakref.finalize`` on the storage), so the running sum is the memory held by tensors
made inside the call, and its maximum is the peak. The count is exact and deterministic (no
allocator rounding, no sampling), which makes "memory does not grow with r" a test of integers:
a state of b bytes retained per step adds b per step, however small. Storages made before the
call (the inputs) are not counted.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode  # no public path (torch 2.4-2.13)


@dataclass
class _Ledger:
    live: dict[int, int] = field(default_factory=dict)
    current: int = 0
    peak: int = 0

    def add(self, storage: torch.UntypedStorage) -> None:
        key = id(storage)
        size = storage.nbytes()
        if key in self.live or size == 0:
            return
        self.live[key] = size
        self.current += size
        self.peak = max(self.peak, self.current)
        weakref.finalize(storage, self.remove, key)

    def remove(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)


class _LiveBytes(TorchDispatchMode):
    def __init__(self, ledger: _Ledger) -> None:
        super().__init__()
        self.ledger = ledger

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for leaf in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(leaf, torch.Tensor):
                self.ledger.add(leaf.untyped_storage())
        return out


def peak_live_bytes(fn: Callable[[], Any]) -> tuple[int, Any]:
    """(peak bytes of the tensors made during ``fn()`` and alive at once, fn's result)."""
    ledger = _Ledger()
    with _LiveBytes(ledger):
        result = fn()
    return ledger.peak, result
