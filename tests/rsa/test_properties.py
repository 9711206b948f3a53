"""Property tests (hypothesis) of the RSA engine."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as hst
from hypothesis.extra.numpy import arrays
from scipy.spatial.distance import pdist

from tgsage.rsa import compare, compare_features, compute_rdms, teacher_guidance

finite = hst.floats(-100, 100, allow_nan=False, width=64)
shapes = hst.tuples(hst.integers(3, 25), hst.integers(2, 12))


@settings(max_examples=40, deadline=None)
@given(
    arrays(np.float64, shapes, elements=finite),
    hst.sampled_from(["correlation", "cosine", "euclidean"]),
)
def test_rdm_symmetric_zero_diagonal_finite(x: np.ndarray, method: str) -> None:
    m = compute_rdms(x, method).matrices()[0].numpy()
    assert np.isfinite(m).all()
    np.testing.assert_array_equal(m, m.T)
    np.testing.assert_array_equal(np.diag(m), 0)


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, shapes, elements=hst.floats(-10, 10, width=64)), hst.data())
def test_correlation_rdm_invariant_to_row_affine_maps(x: np.ndarray, data) -> None:
    n = x.shape[0]
    # keep rows well away from constant, where the documented rule applies instead
    x = x + np.linspace(0, 1, x.shape[1])[None, :] * 3
    scale = np.array(data.draw(hst.lists(hst.floats(0.1, 10), min_size=n, max_size=n)))
    shift = np.array(data.draw(hst.lists(hst.floats(-50, 50), min_size=n, max_size=n)))
    y = x * scale[:, None] + shift[:, None]
    np.testing.assert_allclose(compute_rdms(y).numpy(), compute_rdms(x).numpy(), atol=1e-8)
    np.testing.assert_allclose(compute_rdms(x).numpy()[0], pdist(x, "correlation"), atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(hst.integers(0, 2**31 - 1), hst.integers(2, 6), hst.permutations(list(range(5))))
def test_tg_invariant_to_permuting_candidate_layers(seed: int, k_t: int, perm: list[int]) -> None:
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((15, 4))
    t = compute_rdms({f"T{i}": base @ rng.standard_normal((4, 6)) for i in range(k_t)})
    cand = {
        f"C{j}": base @ rng.standard_normal((4, 5)) + rng.standard_normal((15, 5)) for j in range(5)
    }
    names = list(cand)
    permuted = {names[p]: cand[names[p]] for p in perm}
    g1 = teacher_guidance(compare(t, compute_rdms(cand)), t.names)
    g2 = teacher_guidance(compare(t, compute_rdms(permuted)), t.names)
    assert abs(g1.tg - g2.tg) < 1e-12
    np.testing.assert_allclose(g1.per_layer, g2.per_layer, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(hst.integers(0, 2**31 - 1), hst.integers(1, 8), hst.integers(1, 9))
def test_subsample_average_equals_mean_of_k_rdms(seed: int, k: int, m: int) -> None:
    from tgsage.rsa.rdm import subsample_indices

    x = np.random.default_rng(seed).standard_normal((12, 9))
    avg = compute_rdms(x, subsamples=k, subsample_size=m, seed=seed % 1000).numpy()[0]
    idx = subsample_indices(9, k, m, seed % 1000).numpy()
    # one-feature subsamples are all-constant: distance 1 by the documented rule
    sep = [pdist(x[:, i], "correlation") if len(i) > 1 else np.ones(66) for i in idx]
    np.testing.assert_allclose(avg, np.mean(sep, axis=0), atol=1e-10)


@settings(max_examples=25, deadline=None)
@given(
    hst.integers(0, 2**31 - 1),
    hst.integers(4, 60),
    hst.integers(1, 30),
    hst.sampled_from(["pearson", "cka"]),
)
def test_streaming_equals_dense(seed: int, n: int, batch: int, comparison: str) -> None:
    rng = np.random.default_rng(seed)
    t = {"T1": rng.standard_normal((n, 7)), "T2": rng.standard_normal((n, 3))}
    c = {"C1": t["T1"] @ rng.standard_normal((7, 5)) + rng.standard_normal((n, 5))}
    dense, _ = compare_features(t, c, comparison=comparison, strategy="dense")
    stream, _ = compare_features(t, c, comparison=comparison, strategy="stream", batch_size=batch)
    np.testing.assert_allclose(stream.numpy(), dense.numpy(), atol=1e-8)
