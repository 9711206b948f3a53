"""Teacher guidance: S_i = max_j sim(T_i, C_j), TG = mean S_i, score = P + alpha TG."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as st
from scipy.spatial.distance import pdist

from tgsage.errors import InputError, ProbeMismatchError
from tgsage.rsa import combined_score, compute_rdms, score_against_teacher, teacher_guidance


def test_guidance_from_matrix_by_hand() -> None:
    sim = np.array([[0.1, 0.5, 0.3], [0.7, 0.2, 0.7], [-0.2, -0.1, -0.3]])
    g = teacher_guidance(sim, ["L1", "L2", "L3"], ["c1", "c2", "c3"])
    assert g.per_layer == pytest.approx((0.5, 0.7, -0.1))
    assert g.best_match == ("c2", "c1", "c2")  # ties go to the first layer
    assert g.tg == pytest.approx((0.5 + 0.7 - 0.1) / 3)
    assert g.score(0.4, alpha=2.0) == pytest.approx(0.4 + 2 * g.tg)
    d = g.as_dict()
    assert d["per_layer"] == {"L1": 0.5, "L2": 0.7, "L3": -0.1}


def test_score_against_teacher_from_features_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    base = rng.standard_normal((50, 6))
    t = {"L1": base @ rng.standard_normal((6, 20)), "L2": np.maximum(base, 0) + 0.1 * base**2}
    c = {"a": base[:, :3] + rng.standard_normal((50, 3)), "b": base @ rng.standard_normal((6, 9))}
    g = score_against_teacher(compute_rdms(t), c)
    expected = [
        max(st.pearsonr(pdist(tv, "correlation"), pdist(cv, "correlation"))[0] for cv in c.values())
        for tv in t.values()
    ]
    assert g.per_layer == pytest.approx(expected, abs=1e-10)
    assert g.tg == pytest.approx(np.mean(expected), abs=1e-10)


def test_grouped_teacher_needs_groups_and_uses_its_order() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40, 10))
    labels = np.arange(40) % 8
    teacher = compute_rdms({"IT": x}, groups=labels, group_order=list(range(7, -1, -1)))
    with pytest.raises(InputError, match="groups"):
        score_against_teacher(teacher, {"c": x})
    g = score_against_teacher(teacher, {"c": x}, groups=labels)
    assert g.tg == pytest.approx(1.0)


def test_probe_fingerprint_mismatch_is_refused() -> None:
    x = np.random.randn(12, 5)
    teacher = compute_rdms({"L1": x}).with_metadata(probe_fingerprint="0123abcd")
    with pytest.raises(ProbeMismatchError, match="0123abcd.*ffff0000"):
        score_against_teacher(teacher, {"c": x}, probe_fingerprint="ffff0000")
    assert score_against_teacher(
        teacher, {"c": x}, probe_fingerprint="0123abcd"
    ).tg == pytest.approx(1.0)


def test_bad_inputs() -> None:
    with pytest.raises(InputError, match="NaN"):
        teacher_guidance([[0.1, np.nan]])
    with pytest.raises(InputError, match="non-empty"):
        teacher_guidance(np.zeros((0, 3)))
    with pytest.raises(InputError, match="finite"):
        combined_score(float("nan"), 0.3)
