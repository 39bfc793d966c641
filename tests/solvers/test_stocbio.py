"""stocBiO's stochastic Neumann estimate: exact expectations by enumeration (tier 0).

A finite batch distribution: two equally likely inner Hessians A_0, A_1 (g_B = 1/2 y^T A_B y -
y^T (B x + c)), f deterministic. Every sequence of batch draws is enumerated, so the expectation
is computed exactly (no statistics); it is compared with the closed forms of spec 7.7 / 6.4 at
1e-12 relative (float64 sums of at most 2^5 terms of O(1) vectors).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from bilevel.solvers import OracleCounts, hypergradient

rng = np.random.default_rng(0)
D_X, D_Y = 2, 3


def _spd(scale: float) -> np.ndarray:
    m = rng.standard_normal((D_Y, D_Y))
    return m @ m.T / D_Y + scale * np.eye(D_Y)


A_BATCH = [_spd(1.0), _spd(2.0)]
B, c = rng.standard_normal((D_Y, D_X)), rng.standard_normal(D_Y)
P, p_vec, S = np.eye(D_Y), rng.standard_normal(D_Y), rng.standard_normal((D_X, D_Y))
T = {k: torch.as_tensor(v) for k, v in dict(B=B, c=c, P=P, p=p_vec, S=S).items()}
A_T = [torch.as_tensor(a) for a in A_BATCH]


def inner(x, y, batch):
    return 0.5 * y @ (A_T[batch] @ y) - y @ (T["B"] @ x + T["c"])


def outer(x, y, batch):
    return 0.5 * y @ (T["P"] @ y) + T["p"] @ y + 0.5 * (x**2).sum() + x @ (T["S"] @ y)


def _scripted(sequence):
    draws = iter(sequence)
    return lambda generator: next(draws)


def _expectation(variant: str, Q: int, lr: float, x, y) -> np.ndarray:
    n_draws = Q + 2 if variant == "paper" else 3
    total = np.zeros(D_X)
    for seq in itertools.product(range(2), repeat=n_draws):
        out = hypergradient(
            outer,
            inner,
            x,
            y,
            method="stocbio",
            steps=Q,
            lr=lr,
            sampler=_scripted(seq),
            variant=variant,
        )
        total += out.numpy()
    return total / 2**n_draws


@pytest.mark.parametrize("Q", [0, 1, 3])
def test_paper_variant_expectation_is_the_q_plus_one_term_neumann_sum(Q: int) -> None:
    x, y = torch.from_numpy(rng.standard_normal(D_X)), torch.from_numpy(rng.standard_normal(D_Y))
    lr = 0.2
    a_bar = sum(A_BATCH) / 2
    b = P @ y.numpy() + p_vec + S.T @ x.numpy()
    m_bar = np.eye(D_Y) - lr * a_bar
    v = (np.eye(D_Y) - np.linalg.matrix_power(m_bar, Q + 1)) @ np.linalg.solve(a_bar, b)
    expected = x.numpy() + S @ y.numpy() + B.T @ v  # grad_x f - (-B^T) E v   (spec 7.7)
    got = _expectation("paper", Q, lr, x, y)
    assert np.linalg.norm(got - expected) <= 1e-12 * np.linalg.norm(expected)


def test_reference_code_variant_matches_its_closed_form_and_differs_from_the_paper() -> None:
    x, y = torch.from_numpy(rng.standard_normal(D_X)), torch.from_numpy(rng.standard_normal(D_Y))
    lr, Q = 0.2, 4
    b = P @ y.numpy() + p_vec + S.T @ x.numpy()
    v_code = []
    for a in A_BATCH:  # v = eta M^Q b + (1/eta) M (I - M^Q) A^-1 b   (spec 6.4)
        m = np.eye(D_Y) - lr * a
        mq = np.linalg.matrix_power(m, Q)
        v_code.append(lr * mq @ b + m @ (np.eye(D_Y) - mq) @ np.linalg.solve(a, b) / lr)
    expected = x.numpy() + S @ y.numpy() + B.T @ (sum(v_code) / 2)
    got = _expectation("reference_code", Q, lr, x, y)
    assert np.linalg.norm(got - expected) <= 1e-12 * np.linalg.norm(expected)
    paper = _expectation("paper", Q, lr, x, y)
    assert np.linalg.norm(got - paper) > 0.1 * np.linalg.norm(paper)


def test_stocbio_counts_and_bad_variant() -> None:
    x, y = torch.zeros(D_X, dtype=torch.float64), torch.zeros(D_Y, dtype=torch.float64)
    counts = OracleCounts()
    gen = torch.Generator().manual_seed(0)
    sampler = lambda g: int(torch.randint(2, (), generator=g))  # noqa: E731
    hypergradient(
        outer,
        inner,
        x,
        y,
        method="stocbio",
        steps=5,
        lr=0.1,
        sampler=sampler,
        generator=gen,
        counts=counts,
    )
    assert counts.hvp == 5 and counts.mixed == 1 and counts.grad_outer == 1
    with pytest.raises(ValueError, match="unknown stocBiO variant"):
        hypergradient(
            outer,
            inner,
            x,
            y,
            method="stocbio",
            steps=1,
            lr=0.1,
            sampler=sampler,
            variant="official",
        )
    with pytest.raises(TypeError, match="needs option"):
        hypergradient(outer, inner, x, y, method="stocbio", steps=1, lr=0.1)


def test_bsa_variant_is_unbiased_for_the_q_term_neumann_sum() -> None:
    """Tier 0 over the level p in {0..Q-1} (probability 1/Q each) and the p Hessian batches:
    E v = eta sum_{k<Q} (I - eta A_bar)^k b (spec 6.4), compared at 1e-12 relative."""
    from bilevel.solvers.oracles import outer_gradients
    from bilevel.solvers.stocbio import bsa_product

    x, y = torch.from_numpy(rng.standard_normal(D_X)), torch.from_numpy(rng.standard_normal(D_Y))
    lr, Q = 0.2, 4
    _, b = outer_gradients(lambda a, c: outer(a, c, None), x, y, OracleCounts())
    mean = np.zeros(D_Y)
    for level in range(Q):
        for seq in itertools.product(range(2), repeat=level):
            draws = iter(seq)

            def draw_inner(draws=draws):
                batch = next(draws)
                return lambda a, c: inner(a, c, batch)

            v = bsa_product(draw_inner, x, y, b, lr, Q, level, OracleCounts())
            mean += v.numpy() / Q / 2**level
    m_bar = np.eye(D_Y) - lr * sum(A_BATCH) / 2
    expected = lr * sum(np.linalg.matrix_power(m_bar, k) for k in range(Q)) @ b.numpy()
    assert np.linalg.norm(mean - expected) <= 1e-12 * np.linalg.norm(expected)
    gen = torch.Generator().manual_seed(0)
    sampler = lambda g: int(torch.randint(2, (), generator=g))  # noqa: E731
    counts = OracleCounts()
    for _ in range(50):
        hypergradient(
            outer,
            inner,
            x,
            y,
            method="stocbio",
            steps=Q,
            lr=lr,
            sampler=sampler,
            generator=gen,
            variant="bsa",
            counts=counts,
        )
    assert 0 < counts.hvp < 50 * (Q - 1)  # levels uniform on 0..Q-1: mean (Q - 1)/2 HVPs
    with pytest.raises(ValueError, match="needs steps"):
        hypergradient(
            outer,
            inner,
            x,
            y,
            method="stocbio",
            steps=0,
            lr=lr,
            sampler=sampler,
            generator=gen,
            variant="bsa",
        )
