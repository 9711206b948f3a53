"""The streaming identity equals the dense RDM path; the automatic choice behaves."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tgsage.errors import InputError
from tgsage.rsa import StreamingSimilarity, compare_features
from tgsage.rsa.streaming import dense_bytes, streaming_bytes


def make(n: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n, 10))
    t = {"T1": base @ rng.standard_normal((10, 25)), "T2": np.maximum(base, 0) ** 2}
    c = {
        "C1": base[:, :4] + rng.standard_normal((n, 4)),
        "C2": np.abs(base @ rng.standard_normal((10, 13))),
        "C3": rng.standard_normal((n, 3)),
    }
    return t, c


@pytest.mark.parametrize(
    "comparison,rdm_method",
    [("pearson", "correlation"), ("pearson", "cosine"), ("cka", "correlation")],
)
def test_stream_equals_dense_f64(comparison: str, rdm_method: str) -> None:
    t, c = make()
    dense, s1 = compare_features(
        t, c, comparison=comparison, rdm_method=rdm_method, strategy="dense"
    )
    stream, s2 = compare_features(
        t, c, comparison=comparison, rdm_method=rdm_method, strategy="stream", batch_size=37
    )
    assert (s1, s2) == ("dense", "stream")
    np.testing.assert_allclose(stream.numpy(), dense.numpy(), atol=1e-9)


def test_stream_equals_dense_f32_with_subsampled_teacher() -> None:
    t, c = make(400, seed=1)
    t32 = {k: torch.from_numpy(v.astype(np.float32)) for k, v in t.items()}
    c32 = {k: torch.from_numpy(v.astype(np.float32)) for k, v in c.items()}
    kw = dict(teacher_subsamples=10, subsample_size=6, seed=4)
    dense, _ = compare_features(t32, c32, strategy="dense", **kw)
    stream, _ = compare_features(t32, c32, strategy="stream", batch_size=64, **kw)
    np.testing.assert_allclose(stream.numpy(), dense.numpy(), atol=1e-5)


def test_accumulator_fed_by_batches() -> None:
    t, c = make(200, seed=2)
    acc = StreamingSimilarity()
    for s in range(0, 200, 50):
        acc.update(
            {k: v[s : s + 50] for k, v in t.items()}, {k: v[s : s + 50] for k, v in c.items()}
        )
    dense, _ = compare_features(t, c, strategy="dense")
    assert acc.teacher_layers == ("T1", "T2") and acc.candidate_layers == ("C1", "C2", "C3")
    np.testing.assert_allclose(acc.similarity().numpy(), dense.numpy(), atol=1e-9)


def test_constant_rows_follow_the_same_rule_streaming() -> None:
    t, c = make(100, seed=3)
    c["C1"][10:20] = 2.5  # dead images
    dense, _ = compare_features(t, c, strategy="dense")
    stream, _ = compare_features(t, c, strategy="stream", batch_size=16)
    np.testing.assert_allclose(stream.numpy(), dense.numpy(), atol=1e-9)


def test_auto_picks_stream_when_dense_does_not_fit() -> None:
    t, c = make(600, seed=4)
    need_dense = dense_bytes(600, 5)
    need_stream = streaming_bytes([25, 10], [4, 13, 3])
    assert need_stream < need_dense
    _, used = compare_features(t, c, memory_limit=need_dense - 1)
    assert used == "stream"
    _, used = compare_features(t, c, memory_limit=need_dense * 10, strategy="dense")
    assert used == "dense"
    with pytest.raises(InputError, match="neither path fits"):
        compare_features(t, c, memory_limit=10)


def test_rank_comparisons_refuse_to_stream() -> None:
    t, c = make(50)
    with pytest.raises(InputError, match="dense path only"):
        compare_features(t, c, comparison="spearman", strategy="stream")
    with pytest.raises(InputError, match="cannot stream"):
        StreamingSimilarity("spearman")


def test_mismatched_image_counts_between_teacher_and_candidate() -> None:
    t, c = make(50)
    c["C1"] = c["C1"][:49]
    with pytest.raises(InputError, match="same probe images"):
        compare_features(t, c)
    acc = StreamingSimilarity()
    with pytest.raises(InputError, match="different numbers of images"):
        acc.update({"T": np.random.randn(5, 3)}, {"C": np.random.randn(4, 3)})
