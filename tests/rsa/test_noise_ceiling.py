"""Split-half noise ceilings (tgsage.rsa.ceiling) against hand-derived values and brute force
written here with numpy/scipy: every split of the repetitions, scipy's RDMs and correlations."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist
from scipy.stats import pearsonr, spearmanr

from tgsage.data.neural import Recording
from tgsage.data.probe import ProbeSet
from tgsage.errors import DataError
from tgsage.rsa import spearman_brown, split_half_noise_ceiling
from tgsage.teacher import teacher_from_recording


def _kendall_tau_a(x: np.ndarray, y: np.ndarray) -> float:
    """(concordant - discordant) / all pairs, by looping over every pair of entries."""
    n = len(x)
    s = sum(np.sign(x[i] - x[j]) * np.sign(y[i] - y[j]) for i in range(n) for j in range(i + 1, n))
    return float(s / (n * (n - 1) / 2))


def _halves_similarity(a: np.ndarray, b: np.ndarray, metric: str, comparison: str) -> float:
    da, db = pdist(a, metric), pdist(b, metric)
    if comparison == "pearson":
        return float(pearsonr(da, db)[0])
    if comparison == "spearman":
        return float(spearmanr(da, db)[0])
    return _kendall_tau_a(da, db)


def test_noise_ceiling_hand_computed() -> None:
    """Two repetitions: the only split is rep 0 vs rep 1, so r is their Pearson correlation."""
    rep0 = np.array([1.0, 2.0, 3.0, 4.0])
    rep1 = np.array([1.0, 3.0, 2.0, 4.0])  # r = 4 / 5 = 0.8 by hand
    rec = Recording(np.stack([rep0, rep1])[:, :, None], ["a", "b", "c", "d"], ["IT"])
    nc = split_half_noise_ceiling(rec, n_splits=5, seed=0)["IT"]
    assert nc.site_reliability[0] == pytest.approx(2 * 0.8 / 1.8)  # 0.888...
    assert nc.site_median == pytest.approx(16 / 18)
    assert spearman_brown(0.5) == pytest.approx(2 / 3)


def test_rdm_noise_ceiling_matches_scipy_oracle() -> None:
    rng = np.random.default_rng(1)
    resp = rng.normal(size=(2, 6, 5)).astype(np.float32).astype(np.float64)
    rec = Recording(resp, [str(i) for i in range(6)], ["V4"] * 5)
    nc = split_half_noise_ceiling(rec, n_splits=3)["V4"]
    r = pearsonr(pdist(resp[0], "correlation"), pdist(resp[1], "correlation"))[0]
    assert nc.rdm_split_half == pytest.approx(r, abs=1e-9)
    assert nc.rdm_reliability == pytest.approx(2 * r / (1 + r), abs=1e-9)


def test_noise_ceiling_matches_known_reliability() -> None:
    """signal var 1 + noise var 4, R = 10: full-mean reliability = 1 / (1 + 4 / 10)."""
    rng = np.random.default_rng(2)
    s, n, r = 1500, 20, 10
    signal = rng.normal(size=(s, n))
    resp = signal[None] + 2.0 * rng.normal(size=(r, s, n))
    rec = Recording(resp, [str(i) for i in range(s)], ["IT"] * n)
    nc = split_half_noise_ceiling(rec, n_splits=4, seed=0, rdm=False)["IT"]
    assert np.isnan(nc.rdm_reliability)
    expected = 1 / (1 + 4 / 10)
    assert nc.site_median == pytest.approx(expected, abs=0.02)
    assert np.all(np.abs(nc.site_reliability - expected) < 0.05)
    # unequal repetition counts (NaN padded) still work; fewer reps -> lower reliability
    resp2 = resp.copy()
    resp2[4:, :, :] = np.nan  # only 4 repetitions
    rec2 = Recording(resp2, rec.stimulus_id, rec.region)
    assert split_half_noise_ceiling(rec2, n_splits=4, rdm=False)["IT"].site_median == pytest.approx(
        1 / (1 + 4 / 4), abs=0.03
    )


def test_noise_ceiling_needs_repetitions() -> None:
    rec = Recording(np.zeros((5, 2)), [str(i) for i in range(5)], ["IT", "IT"])
    with pytest.raises(DataError, match="repetitions"):
        split_half_noise_ceiling(rec)


def test_grouped_rdm_noise_ceiling_matches_oracle() -> None:
    rng = np.random.default_rng(4)
    resp = rng.normal(size=(2, 12, 6)).astype(np.float32).astype(np.float64)
    cats = np.array(list("abcd") * 3)
    rec = Recording(resp, [str(i) for i in range(12)], ["IT"] * 6, stimulus_meta={"c": cats})
    nc = split_half_noise_ceiling(rec, n_splits=2, group="c")["IT"]
    means = [np.stack([resp[k][cats == c].mean(axis=0) for c in "abcd"]) for k in (0, 1)]
    r = pearsonr(pdist(means[0], "correlation"), pdist(means[1], "correlation"))[0]
    assert nc.rdm_split_half == pytest.approx(r, abs=1e-7)
    # the same grouping given as integer codes (e.g. a probe labeling) gives the same value
    codes = torch.tensor([ord(c) - ord("a") for c in cats])
    by_codes = split_half_noise_ceiling(rec, n_splits=2, group=codes)["IT"]
    assert by_codes.rdm_split_half == pytest.approx(r, abs=1e-7)
    with pytest.raises(DataError, match="group codes"):
        split_half_noise_ceiling(rec, group=np.zeros(3, dtype=int))


@pytest.mark.parametrize(
    ("method", "comparison"),
    [("euclidean", "spearman"), ("cosine", "kendall_a"), ("correlation", "spearman")],
)
def test_two_repetitions_ceiling_is_the_brute_force_one(method: str, comparison: str) -> None:
    """With two repetitions every split compares repetition 0 with repetition 1."""
    rng = np.random.default_rng(5)
    resp = rng.normal(size=(2, 7, 4)) + rng.normal(size=(1, 7, 4))  # shared signal + noise
    resp = resp.astype(np.float32).astype(np.float64)  # recordings are stored in float32
    rec = Recording(resp, [f"s{i}" for i in range(7)], ["IT"] * 4)
    nc = split_half_noise_ceiling(rec, n_splits=3, method=method, comparison=comparison)["IT"]
    r = _halves_similarity(resp[0], resp[1], method, comparison)
    assert (nc.method, nc.comparison) == (method, comparison)
    assert nc.rdm_split_half == pytest.approx(r, abs=1e-9)
    assert nc.rdm_reliability == pytest.approx(2 * r / (1 + r), abs=1e-9)


def test_four_repetitions_ceiling_is_a_mean_over_the_three_brute_force_partitions() -> None:
    """Four repetitions split 2 + 2 in one of three ways; each random split is one of them, so
    the ceiling over 6 splits is (k1 v1 + k2 v2 + k3 v3) / 6 for counts k summing to 6."""
    rng = np.random.default_rng(6)
    resp = rng.normal(size=(4, 8, 5)) + 1.5 * rng.normal(size=(1, 8, 5))
    resp = resp.astype(np.float32).astype(np.float64)  # recordings are stored in float32
    rec = Recording(resp, [f"s{i}" for i in range(8)], ["V4"] * 5)
    got = split_half_noise_ceiling(rec, n_splits=6, seed=3, method="cosine", comparison="spearman")[
        "V4"
    ].rdm_split_half
    values = []
    for a in ((0, 1), (0, 2), (0, 3)):
        b = tuple(sorted({0, 1, 2, 3} - set(a)))
        halves = resp[list(a)].mean(axis=0), resp[list(b)].mean(axis=0)
        values.append(_halves_similarity(*halves, "cosine", "spearman"))
    means = [
        float(np.dot(k, values)) / 6 for k in itertools.product(range(7), repeat=3) if sum(k) == 6
    ]
    assert min(abs(m - got) for m in means) < 1e-9
    assert len(set(np.round(values, 6))) == 3  # the partitions differ: the check can fail


def test_recording_teacher_stores_the_ceiling_of_its_own_method_and_comparison() -> None:
    """The bug fixed: the stored ceiling used correlation RDMs and Pearson whatever was asked."""
    rng = np.random.default_rng(7)
    n = 9
    resp = rng.normal(size=(2, n, 6)) + 2 * rng.normal(size=(1, n, 6))
    resp = resp.astype(np.float32).astype(np.float64)  # recordings are stored in float32
    ids = [f"img{i}" for i in range(n)]
    rec = Recording(resp, ids, ["V4"] * 3 + ["IT"] * 3)
    probe = ProbeSet(torch.zeros((n, 3, 4, 4), dtype=torch.uint8), stimulus_ids=tuple(ids))
    asked = teacher_from_recording(rec, probe, method="euclidean", comparison="kendall_a")
    default = teacher_from_recording(rec, probe)
    for region, sites in (("V4", slice(0, 3)), ("IT", slice(3, 6))):
        r = _halves_similarity(resp[0][:, sites], resp[1][:, sites], "euclidean", "kendall_a")
        assert asked.noise_ceiling[region] == pytest.approx(2 * r / (1 + r), abs=1e-9)
        p = _halves_similarity(resp[0][:, sites], resp[1][:, sites], "correlation", "pearson")
        assert default.noise_ceiling[region] == pytest.approx(2 * p / (1 + p), abs=1e-9)
        assert abs(asked.noise_ceiling[region] - default.noise_ceiling[region]) > 1e-3
