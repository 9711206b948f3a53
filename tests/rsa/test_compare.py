"""RDM comparisons and CKA against scipy, brute force and direct formulas."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.stats as st
import torch
from scipy.spatial.distance import pdist

from tgsage.errors import InputError, ProbeMismatchError
from tgsage.rsa import average_ranks, cka, compare, compute_rdms, kendall_tau_a


def brute_kendall_tau_a(x: np.ndarray, y: np.ndarray) -> float:
    """Definition: mean over all pairs of sign(x_i - x_j) * sign(y_i - y_j)."""
    n = len(x)
    total = sum(
        np.sign(x[i] - x[j]) * np.sign(y[i] - y[j]) for i, j in itertools.combinations(range(n), 2)
    )
    return total / (n * (n - 1) / 2)


@pytest.fixture
def layers() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    base = rng.standard_normal((40, 12))
    teacher = {
        "T1": base @ rng.standard_normal((12, 30)),
        "T2": np.tanh(base @ rng.standard_normal((12, 20))),
    }
    cand = {
        f"C{j}": base @ rng.standard_normal((12, 15)) + rng.standard_normal((40, 15)) * j
        for j in range(4)
    }
    return teacher, cand


@pytest.mark.parametrize("method,oracle", [("pearson", st.pearsonr), ("spearman", st.spearmanr)])
def test_all_pairs_match_scipy(layers, method, oracle) -> None:
    teacher, cand = layers
    sim = compare(compute_rdms(teacher), compute_rdms(cand), method).numpy()
    assert sim.shape == (2, 4)
    for i, t in enumerate(teacher.values()):
        for j, c in enumerate(cand.values()):
            expected = oracle(pdist(t, "correlation"), pdist(c, "correlation"))[0]
            assert sim[i, j] == pytest.approx(expected, abs=1e-10)


def test_pearson_f32_within_1e5(layers) -> None:
    teacher, cand = layers
    sim = compare(
        compute_rdms({k: v.astype(np.float32) for k, v in teacher.items()}),
        compute_rdms({k: v.astype(np.float32) for k, v in cand.items()}),
    ).numpy()
    for i, t in enumerate(teacher.values()):
        for j, c in enumerate(cand.values()):
            expected = st.pearsonr(pdist(t, "correlation"), pdist(c, "correlation"))[0]
            assert sim[i, j] == pytest.approx(expected, abs=1e-5)


def test_kendall_tau_a_matches_brute_force_with_ties() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 5, 60).astype(float)  # many ties
    y = x + rng.integers(0, 3, 60)
    assert kendall_tau_a(x, y) == pytest.approx(brute_kendall_tau_a(x, y), abs=1e-12)
    z = rng.standard_normal(60)
    assert kendall_tau_a(z, y) == pytest.approx(brute_kendall_tau_a(z, y), abs=1e-12)


def test_kendall_in_compare_matches_brute_force(layers) -> None:
    teacher, cand = layers
    t = compute_rdms({"T1": teacher["T1"][:15]})
    c = compute_rdms({"C1": cand["C1"][:15]})
    expected = brute_kendall_tau_a(t.numpy()[0], c.numpy()[0])
    assert compare(t, c, "kendall_a").item() == pytest.approx(expected, abs=1e-12)


def test_average_ranks_match_scipy_rankdata() -> None:
    rng = np.random.default_rng(2)
    v = rng.integers(0, 20, size=(3, 500)).astype(np.float32)
    np.testing.assert_array_equal(
        average_ranks(torch.from_numpy(v)).numpy(), st.rankdata(v, axis=1)
    )


def test_self_comparison_is_symmetric_with_unit_diagonal(layers) -> None:
    rdms = compute_rdms(layers[1])
    sim = compare(rdms).numpy()
    np.testing.assert_allclose(sim, sim.T, atol=1e-12)
    np.testing.assert_allclose(np.diag(sim), 1.0, atol=1e-12)


def test_constant_rdm_compares_as_zero_with_warning() -> None:
    rng = np.random.default_rng(3)
    one_feature = compute_rdms({"fc1": rng.standard_normal((10, 1))})  # all ones
    other = compute_rdms({"x": rng.standard_normal((10, 5))})
    for method in ("pearson", "spearman", "kendall_a"):
        with pytest.warns(RuntimeWarning, match="fc1"):
            assert compare(one_feature, other, method).item() == 0.0


def test_mismatched_conditions_are_refused() -> None:
    a = compute_rdms(np.random.randn(10, 3))
    b = compute_rdms(np.random.randn(11, 3))
    with pytest.raises(InputError, match="10 vs 11"):
        compare(a, b)


def test_mismatched_probe_fingerprints_are_refused_naming_both() -> None:
    x = np.random.randn(10, 3)
    a = compute_rdms(x).with_metadata(probe_fingerprint="aaaa1111")
    b = compute_rdms(x).with_metadata(probe_fingerprint="bbbb2222")
    with pytest.raises(ProbeMismatchError, match="aaaa1111.*bbbb2222"):
        compare(a, b)


def test_too_few_conditions_for_a_comparison() -> None:
    a = compute_rdms(np.random.randn(2, 3))
    with pytest.raises(InputError, match="at least 3"):
        compare(a, a)


# ----------------------------------------------------------------- CKA


def cka_feature_space(x: np.ndarray, y: np.ndarray) -> float:
    """Kornblith et al. (2019) eq. for linear CKA, computed directly in numpy."""
    x = x - x.mean(0)
    y = y - y.mean(0)
    return np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))


def test_cka_matches_feature_space_formula(layers) -> None:
    teacher, cand = layers
    sim = cka(teacher, cand).numpy()
    for i, t in enumerate(teacher.values()):
        for j, c in enumerate(cand.values()):
            assert sim[i, j] == pytest.approx(cka_feature_space(t, c), abs=1e-10)


def test_cka_invariances() -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((50, 8))
    q, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    y = 3.0 * x @ q + 5.0  # rotation, isotropic scale, offset
    assert cka(x, y).item() == pytest.approx(1.0, abs=1e-10)


def test_cka_with_groups_averages_first() -> None:
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((30, 4)), rng.standard_normal((30, 6))
    labels = np.arange(30) % 5
    mx = np.stack([x[labels == g].mean(0) for g in range(5)])
    my = np.stack([y[labels == g].mean(0) for g in range(5)])
    assert cka(x, y, groups=labels).item() == pytest.approx(cka_feature_space(mx, my), abs=1e-10)
