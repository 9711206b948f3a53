"""Gram matrices, linear CKA and the relation similarity against numpy oracles written here."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tgsage.errors import InputError
from tgsage.rsa.kernels import (
    Grams,
    cka_grams,
    compare_grams,
    gram_matrices,
    relation_grams,
)


def cka_oracle(x: np.ndarray, y: np.ndarray) -> float:
    """Kornblith et al.'s linear CKA of the column-centred features, in float64."""
    xc = x - x.mean(axis=0)
    yc = y - y.mean(axis=0)
    num = np.linalg.norm(xc.T @ yc, "fro") ** 2
    return float(num / (np.linalg.norm(xc.T @ xc, "fro") * np.linalg.norm(yc.T @ yc, "fro")))


def diswot_relation_distance(x: np.ndarray, y: np.ndarray) -> float:
    """DisWOT / similarity-preserving KD: || rownorm(XX^T) - rownorm(YY^T) ||_F^2 / n^2."""
    gx, gy = x @ x.T, y @ y.T
    gx = gx / np.linalg.norm(gx, axis=1, keepdims=True)
    gy = gy / np.linalg.norm(gy, axis=1, keepdims=True)
    return float(((gx - gy) ** 2).sum() / x.shape[0] ** 2)


def _layers(seed: int, n: int = 20):
    rng = np.random.default_rng(seed)
    a = {"a1": rng.normal(size=(n, 7)), "a2": rng.normal(size=(n, 30)) ** 2}
    base = rng.normal(size=(n, 5))
    b = {
        "b1": base @ rng.normal(size=(5, 12)),
        "b2": np.maximum(base @ rng.normal(size=(5, 9)), 0),
        "b3": a["a1"] @ rng.normal(size=(7, 4)) + 0.1 * rng.normal(size=(n, 4)),
    }
    return a, b


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cka_matches_the_feature_formula(seed) -> None:
    a, b = _layers(seed)
    got = cka_grams(gram_matrices(a), gram_matrices(b)).numpy()
    want = np.array([[cka_oracle(x, y) for y in b.values()] for x in a.values()])
    assert np.allclose(got, want, atol=1e-6)
    # invariant to orthogonal transforms and isotropic scaling of the features
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(7, 7)))
    rotated = gram_matrices({"r": 3.0 * a["a1"] @ q})
    assert cka_grams(gram_matrices({"x": a["a1"]}), rotated).item() == pytest.approx(1.0)


@pytest.mark.parametrize("seed", [0, 3])
def test_relation_similarity_ranks_like_diswot_distance(seed) -> None:
    a, b = _layers(seed)
    n = 20
    got = relation_grams(gram_matrices(a), gram_matrices(b)).numpy()
    dist = np.array([[diswot_relation_distance(x, y) for y in b.values()] for x in a.values()])
    # the documented identity: distance = (2 - 2 r) / n
    assert np.allclose(dist, (2 - 2 * got) / n, atol=1e-9)
    assert relation_grams(gram_matrices({"x": a["a1"]})).item() == pytest.approx(1.0)


def test_triangles_round_trip_and_group_order_is_checked() -> None:
    a, _ = _layers(5)
    g = gram_matrices(a)
    back = Grams.from_triangles(g.triangles().numpy(), g.names)
    assert torch.allclose(back.matrices, g.matrices)
    assert back["a2"].names == ("a2",)
    with pytest.raises(InputError, match="not the upper triangle"):
        Grams.from_triangles(np.zeros((1, 7)), ["x"])
    g1 = Grams(g.matrices, g.names, conditions=(0, 1))
    g2 = Grams(g.matrices, g.names, conditions=(1, 0))
    with pytest.raises(InputError, match="group orders"):
        cka_grams(g1, g2)
    small = gram_matrices({"s": np.ones((5, 3))})
    with pytest.raises(InputError, match="numbers of images"):
        relation_grams(g, small)
    with pytest.raises(InputError, match="unknown Gram comparison"):
        compare_grams(g, g, "pearson")


def test_degenerate_layers_follow_the_documented_rule() -> None:
    a, _ = _layers(6)
    const = gram_matrices({"c": np.ones((20, 4))})  # centred Gram is zero
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert cka_grams(const, gram_matrices(a)).abs().max().item() == 0.0
    assert any("no variance" in str(x.message) for x in w)
    dead = np.zeros((20, 4))
    dead[:10] = np.random.default_rng(0).normal(size=(10, 4))  # half the images all-zero
    r = relation_grams(gram_matrices({"d": dead})).item()
    assert r == pytest.approx(0.5)  # the zero rows contribute 0 to the mean


@settings(max_examples=30, deadline=None)
@given(st.integers(3, 12), st.integers(1, 10), st.integers(0, 10_000))
def test_gram_is_x_xt_in_float64(n, d, seed) -> None:
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    g = gram_matrices({"x": x}).matrices[0].numpy()
    assert g.dtype == np.float64
    assert np.allclose(g, x.astype(np.float64) @ x.astype(np.float64).T, rtol=1e-5, atol=1e-5)
