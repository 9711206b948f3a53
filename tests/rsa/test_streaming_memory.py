"""Bounded streaming memory: passes over the same batches give the dense path's values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tgsage.errors import InputError
from tgsage.rsa import StreamingSimilarity, compare_features
from tgsage.rsa.streaming import plan_blocks, stream_batches, streaming_bytes


def make(n: int = 240, seed: int = 0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n, 12))
    t = {
        "T1": base @ rng.standard_normal((12, 70)),
        "T2": np.maximum(base @ rng.standard_normal((12, 45)), 0),
    }
    c = {
        "C1": base[:, :5] @ rng.standard_normal((5, 40)) + rng.standard_normal((n, 40)),
        "C2": np.abs(base @ rng.standard_normal((12, 33))),
        "C3": rng.standard_normal((n, 9)),
    }
    cast = {k: torch.from_numpy(v.astype(dtype)) for k, v in {**t, **c}.items()}
    return {k: cast[k] for k in t}, {k: cast[k] for k in c}


def batches_of(t, c, size):
    n = next(iter(t.values())).shape[0]
    return [
        ({k: v[s : s + size] for k, v in t.items()}, {k: v[s : s + size] for k, v in c.items()})
        for s in range(0, n, size)
    ]


@pytest.mark.parametrize(
    "comparison,rdm_method,subsamples",
    [
        ("pearson", "correlation", None),
        ("pearson", "cosine", None),
        ("pearson", "correlation", 4),
        ("cka", "correlation", None),
    ],
)
def test_many_passes_equal_dense(comparison, rdm_method, subsamples) -> None:
    t, c = make()
    kw = dict(comparison=comparison, rdm_method=rdm_method, teacher_subsamples=subsamples)
    dense, _ = compare_features(t, c, strategy="dense", subsample_size=20, seed=3, **kw)
    whole = streaming_bytes([70, 45], [40, 33, 9])
    acc = stream_batches(
        batches_of(t, c, 50), max_memory=whole // 6, subsample_size=20, seed=3, **kw
    )
    assert acc.n_passes is not None and acc.n_passes >= 4
    np.testing.assert_allclose(acc.similarity().numpy(), dense.numpy(), atol=1e-9)


def test_float32_activations_exact_to_1e6_and_memory_stays_in_budget() -> None:
    t, c = make(400, seed=1, dtype=np.float32)
    dense, _ = compare_features(t, c, strategy="dense")
    budget = 30_000  # bytes: a small fraction of the one-pass 120 kB
    acc = StreamingSimilarity(max_memory=budget)
    batches = batches_of(t, c, 64)
    for _ in acc.passes():
        for tb, cb in batches:
            acc.update(tb, cb)
            assert acc._plan is not None
            held = [b.acc for b in acc._plan[acc._pass] if b.acc is not None]
            largest = max(a.numel() for a in held)
            assert 8 * sum(a.numel() for a in held) + 4 * largest <= budget
    np.testing.assert_allclose(acc.similarity().numpy(), dense.numpy(), atol=1e-6)


def test_compare_features_streams_within_a_small_memory_limit() -> None:
    t, c = make(300, seed=2)
    dense, _ = compare_features(t, c, strategy="dense")
    stream, used = compare_features(t, c, strategy="stream", memory_limit=20_000, batch_size=70)
    assert used == "stream"
    np.testing.assert_allclose(stream.numpy(), dense.numpy(), atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(1, 300), min_size=1, max_size=3),
    st.lists(st.integers(1, 300), min_size=1, max_size=4),
    st.integers(0, 10**7),
)
def test_plan_covers_every_element_once_within_budget(dims_t, dims_c, extra) -> None:
    budget = 12 * max(dims_t + dims_c) + extra
    passes = plan_blocks(dims_t, dims_c, budget)
    gram = {(True, i): 0.0 for i in range(len(dims_t))} | {
        (False, j): 0.0 for j in range(len(dims_c))
    }
    cross = np.zeros((len(dims_t), len(dims_c)))
    for blocks in passes:
        sizes = [b.size for b in blocks]
        assert 8 * sum(sizes) + 4 * max(sizes) <= budget
        for b in blocks:
            if b.left == b.right:
                gram[b.left] += b.weight * b.size
                assert b.rows.start <= b.cols.start  # upper triangle only
            else:
                cross[b.left[1], b.right[1]] += b.size
    for (teacher, i), total in gram.items():
        assert total == (dims_t if teacher else dims_c)[i] ** 2
    assert (cross == np.outer(dims_t, dims_c)).all()


def test_passes_may_reorder_images_but_not_change_them() -> None:
    t, c = make(120, seed=3)
    dense, _ = compare_features(t, c, strategy="dense")
    acc = StreamingSimilarity(max_memory=20_000)
    for p in acc.passes():  # a shuffled loader: another order every pass
        order = np.random.default_rng(p).permutation(120)
        for s in range(0, 120, 40):
            idx = torch.from_numpy(order[s : s + 40])
            acc.update({k: v[idx] for k, v in t.items()}, {k: v[idx] for k, v in c.items()})
    np.testing.assert_allclose(acc.similarity().numpy(), dense.numpy(), atol=1e-9)
    acc = StreamingSimilarity(max_memory=20_000)
    with pytest.raises(InputError, match="same images"):
        for p in acc.passes():  # augmentation or dropout: other values every pass
            torch.manual_seed(p)
            noisy = {k: v + 0.1 * torch.randn(v.shape, dtype=v.dtype) for k, v in t.items()}
            acc.update(noisy, c)


def test_one_pass_use_explains_how_to_bound_memory() -> None:
    t, c = make(60)
    acc = StreamingSimilarity(max_memory=20_000)
    with pytest.raises(InputError, match="once per pass"):
        acc.update(t, c)
    one_shot = iter(batches_of(t, c, 30))
    with pytest.raises(InputError, match="once per pass"):
        stream_batches(one_shot, max_memory=20_000)
    with pytest.raises(InputError, match="one row"):
        StreamingSimilarity(max_memory=100).update(t, c)
    acc = StreamingSimilarity()
    acc.update(t, c)
    with pytest.raises(InputError, match="before the first update"):
        next(acc.passes())
    dense, _ = compare_features(t, c, strategy="dense")
    np.testing.assert_allclose(acc.similarity().numpy(), dense.numpy(), atol=1e-9)
