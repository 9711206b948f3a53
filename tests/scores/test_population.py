"""Evaluating scores over populations, against oracles written here (scipy, brute force)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from tgsage.errors import InputError
from tgsage.scores import (
    Population,
    evaluate,
    percentiles,
    percentiles_against,
    score_one,
    values_of,
)


def brute_mid_rank(x: list[float]) -> list[float]:
    """(number below + (ties incl. itself + 1)/2 - 1/2) / n, by counting."""
    n = len(x)
    return [(sum(y < v for y in x) + (sum(y == v for y in x) + 1) / 2 - 0.5) / n for v in x]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-3, 3).map(float), min_size=1, max_size=30))
def test_percentiles_are_mid_ranks(x) -> None:
    got = percentiles(np.array(x))
    assert np.allclose(got, brute_mid_rank(x))
    assert np.allclose(got, (sps.rankdata(x) - 0.5) / len(x))
    assert ((got > 0) & (got < 1)).all()


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(-3, 3).map(float), min_size=1, max_size=20),
    st.integers(-4, 4).map(float),
)
def test_percentile_against_a_reference_adds_the_value_itself(ref, v) -> None:
    got = percentiles_against(np.array([v]), np.array(ref))[0]
    # mid-rank of v among ref + [v], minus a half, over m + 1
    expected = brute_mid_rank([*ref, v])[-1]
    assert got == pytest.approx(expected)
    assert 0 < got < 1


def test_nan_is_unmeasured_and_minus_inf_ranks_lowest() -> None:
    got = percentiles(np.array([1.0, np.nan, -np.inf, 3.0]))
    assert math.isnan(got[1])
    assert list(np.argsort(got[[0, 2, 3]])) == [1, 0, 2]
    assert np.allclose(got[[0, 2, 3]], [0.5, 1 / 6, 5 / 6])


ROWS = [
    {"P": 0.1, "TG": 0.5, "synflow": 3.0, "naswot": 10.0},
    {"P": 0.3, "TG": 0.2, "synflow": 1.0, "naswot": 30.0},
    {"P": 0.2, "TG": 0.1, "synflow": 2.0, "naswot": 20.0},
    {"P": 0.4, "TG": 0.3, "synflow": 5.0, "naswot": 5.0},
]


def test_weighted_sums_and_rank_terms_match_hand_values() -> None:
    p = np.array([r["P"] for r in ROWS])
    tg = np.array([r["TG"] for r in ROWS])
    syn = np.array([r["synflow"] for r in ROWS])
    nw = np.array([r["naswot"] for r in ROWS])
    r_syn = (sps.rankdata(syn) - 0.5) / 4
    r_nw = (sps.rankdata(nw) - 0.5) / 4
    assert np.allclose(values_of("P + 0.5*TG", ROWS), p + 0.5 * tg)
    assert np.allclose(values_of("P - TG", ROWS), p - tg)
    assert np.allclose(values_of("P+TG+2*rank(synflow)", ROWS), p + tg + 2 * r_syn)
    assert np.allclose(values_of("meanrank(synflow, naswot)", ROWS), (r_syn + r_nw) / 2)
    assert np.allclose(values_of("logrank(synflow, naswot)", ROWS), np.log(r_syn) + np.log(r_nw))
    # rank of an expression ranks its values
    assert np.allclose(values_of("rank(P + TG)", ROWS), (sps.rankdata(p + tg) - 0.5) / 4)


def test_a_single_candidate_is_ranked_against_the_reference() -> None:
    ref = Population.from_rows(ROWS)
    cand = {"P": 0.25, "TG": 0.0, "synflow": 2.5}
    # synflow 2.5 lies above 2 of the 4 reference values: (2 + 2 + 1) / (2 * 5)
    assert score_one("rank(synflow)", cand, ref) == pytest.approx(0.5)
    assert score_one("P + rank(synflow)", cand, ref) == pytest.approx(0.75)
    assert score_one("P + 0.5*TG", cand) == pytest.approx(0.25)
    with pytest.raises(InputError, match="reference population"):
        score_one("rank(synflow)", cand)


def test_missing_scores_are_nan_and_unknown_names_fail_clearly() -> None:
    rows = [dict(ROWS[0]), {"P": 0.3}]
    out = values_of("P + TG", rows)
    assert out[0] == pytest.approx(0.6) and math.isnan(out[1])
    with pytest.raises(InputError, match="not measured"):
        values_of("P + snip", rows)
    with pytest.raises(InputError, match="a - b"):
        values_of("P-TG", rows)  # one name; subtraction needs spaces


def test_population_checks_lengths() -> None:
    with pytest.raises(InputError):
        Population.from_rows(ROWS, specs=[None])
    with pytest.raises(InputError):
        Population.from_rows(ROWS, target=[0.1])
    pop = Population.from_rows(ROWS, target=[0.9, None, 0.5, 0.7])
    assert math.isnan(pop.target[1])
    sub = pop.subset(np.array([3, 0]))
    assert sub.n == 2 and list(sub.column("P")) == [0.4, 0.1]
    assert np.allclose(evaluate("TG", sub), [0.3, 0.5])
