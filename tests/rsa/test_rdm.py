"""RDMs against scipy's pdist (the independent oracle) and the documented edge rules."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist, squareform

from tgsage.errors import InputError
from tgsage.rsa import RDMs, compute_rdms, group_means
from tgsage.rsa.rdm import n_conditions_from_pairs, upper_gram


@pytest.fixture
def feats() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.standard_normal((120, 37)) * rng.uniform(0.1, 5, size=(120, 1)) + 3.0


@pytest.mark.parametrize("method", ["correlation", "cosine", "euclidean"])
def test_matches_scipy_pdist_f64(feats: np.ndarray, method: str) -> None:
    rdm = compute_rdms(feats, method)
    np.testing.assert_allclose(rdm.numpy()[0], pdist(feats, method), rtol=0, atol=1e-10)


@pytest.mark.parametrize("method", ["correlation", "cosine", "euclidean"])
def test_matches_scipy_pdist_f32(feats: np.ndarray, method: str) -> None:
    rdm = compute_rdms(torch.from_numpy(feats.astype(np.float32)), method)
    expected = pdist(feats.astype(np.float32).astype(np.float64), method)
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(rdm.numpy()[0], expected, rtol=0, atol=1e-5 * scale)
    assert rdm.dissimilarities.dtype == torch.float32


def test_many_panels_equal_one_product() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((700, 9))
    small_panels = upper_gram(torch.from_numpy(x), max_panel_bytes=8 * 700 * 5)  # 5-row panels
    iu = np.triu_indices(700, k=1)
    np.testing.assert_allclose(small_panels.numpy(), (x @ x.T)[iu], atol=1e-10)


def test_many_layers_at_once_keep_order_and_names(feats: np.ndarray) -> None:
    layers = {"conv1": feats, "conv2": feats[:, :5] ** 2, "fc": feats.reshape(120, 37, 1)}
    rdms = compute_rdms(layers)
    assert rdms.names == ("conv1", "conv2", "fc")
    for i, x in enumerate(layers.values()):
        np.testing.assert_allclose(
            rdms.numpy()[i], pdist(x.reshape(120, -1), "correlation"), atol=1e-10
        )


def test_trailing_dims_are_flattened() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((20, 3, 4, 4))
    np.testing.assert_allclose(
        compute_rdms(x).numpy()[0], pdist(x.reshape(20, -1), "correlation"), atol=1e-10
    )


def test_square_form_matches_scipy(feats: np.ndarray) -> None:
    m = compute_rdms(feats).matrices()[0].numpy()
    np.testing.assert_allclose(m, squareform(pdist(feats, "correlation")), atol=1e-10)
    back = RDMs.from_matrices(m)
    np.testing.assert_allclose(back.numpy(), compute_rdms(feats).numpy(), atol=1e-12)


def test_grouped_rdm_averages_rows_in_sorted_label_order() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((60, 11))
    labels = rng.choice(np.array(["dog", "cat", "car", "tree"]), size=60)
    rdm = compute_rdms(x, groups=labels)
    order = sorted(set(labels.tolist()))
    means = np.stack([x[labels == g].mean(axis=0) for g in order])
    assert rdm.conditions == tuple(order)
    np.testing.assert_allclose(rdm.numpy()[0], pdist(means, "correlation"), atol=1e-10)


def test_grouped_rdm_respects_explicit_order() -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((30, 6))
    labels = np.repeat([0, 1, 2], 10)
    rdm = compute_rdms(x, groups=labels, group_order=[2, 0, 1])
    means = np.stack([x[labels == g].mean(axis=0) for g in (2, 0, 1)])
    np.testing.assert_allclose(rdm.numpy()[0], pdist(means, "correlation"), atol=1e-10)


def test_group_means_accumulate_in_chunks() -> None:
    x = torch.randn(1000, 5, dtype=torch.float32)
    labels = torch.arange(1000) % 7
    means, order = group_means(x, labels, chunk_rows=33)
    ref = np.stack([x.numpy()[labels.numpy() == g].astype(np.float64).mean(0) for g in range(7)])
    assert order == tuple(range(7))
    np.testing.assert_allclose(means.numpy(), ref, atol=1e-6)


# ----------------------------------------------------------------- edge rules


def test_constant_rows_are_at_distance_one_from_everything() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 8))
    x[2] = 0.7  # a dead / constant image
    x[4] = -3.0
    m = compute_rdms(x).matrices()[0].numpy()
    assert np.isfinite(m).all()
    np.testing.assert_allclose(m[2, [0, 1, 3, 4, 5]], 1.0)
    np.testing.assert_allclose(m[4, [0, 1, 2, 3, 5]], 1.0)
    assert m[2, 2] == 0.0
    # the other entries are untouched by the rule
    keep = [0, 1, 3, 5]
    np.testing.assert_allclose(
        m[np.ix_(keep, keep)], squareform(pdist(x[keep], "correlation")), atol=1e-10
    )


def test_constant_rows_f32_with_large_offset() -> None:
    x = torch.full((4, 100), 1234.5678, dtype=torch.float32)
    x[0] += torch.linspace(0, 1, 100)
    m = compute_rdms(x).matrices()[0]
    assert torch.isfinite(m).all()
    assert torch.allclose(m[1:, 1:], 1 - torch.eye(3))


def test_zero_rows_under_cosine() -> None:
    x = np.eye(4)
    x[3] = 0
    m = compute_rdms(x, "cosine").matrices()[0].numpy()
    np.testing.assert_allclose(m[3, :3], 1.0)


def test_one_feature_layer_gives_all_ones_under_correlation() -> None:
    x = np.arange(10.0)[:, None]
    rdm = compute_rdms(x)
    np.testing.assert_array_equal(rdm.numpy()[0], np.ones(45))
    # euclidean remains well defined for one feature
    np.testing.assert_allclose(compute_rdms(x, "euclidean").numpy()[0], pdist(x), atol=1e-12)


def test_one_group_is_an_error() -> None:
    with pytest.raises(InputError, match="at least 2"):
        compute_rdms(np.random.randn(10, 3), groups=np.zeros(10))


def test_empty_group_is_an_error_naming_it() -> None:
    with pytest.raises(InputError, match=r"\['zebra'\]"):
        compute_rdms(
            np.random.randn(4, 3), groups=["a", "b", "a", "b"], group_order=["a", "b", "zebra"]
        )


def test_unknown_label_is_an_error() -> None:
    with pytest.raises(InputError, match="not in group_order"):
        compute_rdms(np.random.randn(4, 3), groups=["a", "b", "c", "b"], group_order=["a", "b"])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_is_a_clear_error(bad: float) -> None:
    x = np.random.randn(10, 4)
    x[7, 2] = bad
    with pytest.raises(InputError, match=r"layer 'conv3'.*image 7"):
        compute_rdms({"conv3": x})


def test_layers_with_different_image_counts_are_an_error() -> None:
    with pytest.raises(InputError, match="same probe images"):
        compute_rdms({"a": np.random.randn(10, 4), "b": np.random.randn(9, 4)})


def test_unknown_method_is_an_error() -> None:
    with pytest.raises(InputError, match="unknown RDM method"):
        compute_rdms(np.random.randn(5, 3), "manhattan")


def test_triangle_length_inverse() -> None:
    assert n_conditions_from_pairs(4950) == 100
    with pytest.raises(InputError):
        n_conditions_from_pairs(10_000)


# ----------------------------------------------------------------- subsampling


def test_subsample_average_equals_mean_of_separate_rdms() -> None:
    rng = np.random.default_rng(6)
    x = rng.standard_normal((40, 50))
    avg = compute_rdms({"L": x}, subsamples=10, subsample_size=7, seed=3)
    from tgsage.rsa.rdm import subsample_indices

    idx = subsample_indices(50, 10, 7, seed=3).numpy()  # layer 0 uses seed + 0
    separate = np.mean([pdist(x[:, i], "correlation") for i in idx], axis=0)
    np.testing.assert_allclose(avg.numpy()[0], separate, atol=1e-10)
    assert avg.metadata["subsamples"] == 10 and avg.metadata["subsample_size"] == 7
    assert all(len(set(row)) == 7 for row in idx)  # without replacement


def test_subsampling_is_seeded() -> None:
    x = np.random.default_rng(7).standard_normal((20, 30))
    a = compute_rdms(x, subsamples=4, seed=1).numpy()
    b = compute_rdms(x, subsamples=4, seed=1).numpy()
    c = compute_rdms(x, subsamples=4, seed=2).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_numpy_and_torch_inputs_agree() -> None:
    x = np.random.default_rng(8).standard_normal((25, 10))
    np.testing.assert_allclose(
        compute_rdms(x).numpy(), compute_rdms(torch.from_numpy(x)).numpy(), atol=0
    )


def test_masked_path_for_huge_triangles_equals_gather_path(monkeypatch) -> None:
    rng = np.random.default_rng(9)
    x = torch.from_numpy(rng.standard_normal((300, 7)))
    gathered = upper_gram(x, max_panel_bytes=8 * 300 * 40)
    monkeypatch.setattr("tgsage.rsa.rdm._INDEX_CACHE_LIMIT", 0)  # as for n of ~6,000 and up
    masked = upper_gram(x, max_panel_bytes=8 * 300 * 40)
    iu = np.triu_indices(300, k=1)
    np.testing.assert_allclose(masked.numpy(), (x.numpy() @ x.numpy().T)[iu], atol=1e-12)
    np.testing.assert_array_equal(masked.numpy(), gathered.numpy())


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"subsamples": 0}, "subsamples must be at least 1"),
        ({"subsamples": -2}, "subsamples must be at least 1"),
        ({"subsamples": 2, "subsample_size": 0}, "subsample_size must be at least 1"),
    ],
)
def test_subsampling_settings_below_one_are_refused(kw: dict, message: str) -> None:
    """subsamples=0 was a ZeroDivisionError; subsample_size=0 silently meant the default."""
    with pytest.raises(InputError, match=message):
        compute_rdms(np.ones((4, 3)), **kw)


@pytest.mark.parametrize("shape", [(0, 5), (0,), (0, 3, 4, 4), (5, 0)])
def test_empty_activations_are_refused(shape: tuple[int, ...]) -> None:
    """No images was a RuntimeError from torch's reshape ("0 elements ... ambiguous")."""
    with pytest.raises(InputError, match="empty activations"):
        compute_rdms({"conv1": np.zeros(shape)})
