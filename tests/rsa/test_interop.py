"""tgsage against rsatoolbox (an independent implementation), and conversions both ways."""

from __future__ import annotations

import numpy as np
import pytest

from tgsage.rsa import compare, compute_rdms, from_rsatoolbox, to_rsatoolbox

rsatoolbox = pytest.importorskip("rsatoolbox")


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((30, 16)), rng.standard_normal((30, 16))


@pytest.mark.parametrize("method", ["correlation", "euclidean"])
def test_rdm_matches_rsatoolbox_calc_rdm(data, method: str) -> None:
    x, _ = data
    ours = compute_rdms(x, method).numpy()[0]
    theirs = rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(x), method=method).get_vectors()[0]
    if method == "euclidean":  # rsatoolbox: squared distance divided by the feature count
        ours = ours**2 / x.shape[1]
    np.testing.assert_allclose(ours, theirs, atol=1e-10)


@pytest.mark.parametrize(
    "ours,theirs", [("pearson", "corr"), ("spearman", "spearman"), ("kendall_a", "tau-a")]
)
def test_comparison_matches_rsatoolbox_compare(data, ours: str, theirs: str) -> None:
    x, y = data
    a, b = compute_rdms({"x": x}), compute_rdms({"y": y + x})
    expected = rsatoolbox.rdm.compare(to_rsatoolbox(a), to_rsatoolbox(b), method=theirs)[0, 0]
    assert compare(a, b, ours).item() == pytest.approx(expected, abs=1e-10)


def test_round_trip_through_rsatoolbox(data) -> None:
    x, y = data
    rdms = compute_rdms({"x": x, "y": y}, groups=np.arange(30) % 6)
    back = from_rsatoolbox(to_rsatoolbox(rdms))
    assert back.names == ("x", "y")
    assert back.conditions == rdms.conditions
    np.testing.assert_allclose(back.numpy(), rdms.numpy(), atol=0)
