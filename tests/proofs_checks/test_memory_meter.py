"""The live-tensor memory meter behind ``ufom/memory-and-cost-in-r`` and the FO-BLO family
strategy: exact byte counts, derived by hand from the tensors each function keeps."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings

from bilevel.proofs_checks.memory import peak_live_bytes
from bilevel.proofs_checks.strategies import fo_blo_instance, fo_blo_members


def test_a_kept_list_counts_every_vector_and_a_loop_that_frees_counts_one() -> None:
    x = torch.zeros(1000, dtype=torch.float64)

    def keep(n: int) -> list[torch.Tensor]:
        return [x + i for i in range(n)]

    def overwrite(n: int) -> torch.Tensor:
        y = x
        for i in range(n):
            y = y + i  # the previous y is freed as soon as it is rebound
        return y

    kept = [peak_live_bytes(lambda n=n: keep(n))[0] for n in (4, 8)]
    assert kept[1] - kept[0] == 4 * 8000  # four more float64 1000-vectors, exactly
    looped = [peak_live_bytes(lambda n=n: overwrite(n))[0] for n in (4, 8)]
    assert looped[0] == looped[1] <= 2 * 8000  # at most the old and the new y at once


@settings(max_examples=20, deadline=None)
@given(member=fo_blo_members())
def test_fo_blo_members_are_exact_valid_instances(member: dict) -> None:
    inst = fo_blo_instance(member)
    assert 2 <= inst.tasks <= 4 and 1 <= inst.dim <= 3 and 1 <= inst.r <= 6
    for a in inst.A:  # 0 < alpha lambda <= 1/2: the adaptation contracts
        eigenvalues = np.linalg.eigvalsh(np.array(a * inst.alpha, dtype=float))
        assert (eigenvalues > 0).all() and (eigenvalues <= 0.5 + 1e-12).all()
