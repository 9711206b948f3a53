"""Predictivity statistics against scipy, brute force and hand-derived values."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from tgsage.experiments import (
    BudgetPoint,
    PoolRecord,
    alpha_sweep,
    correlation_estimates,
    kendall_tau_b,
    pearson,
    precision_at_k,
    predictivity_table,
    spearman,
)

BUDGETS = ("0.5ep", "1ep", "2ep")
LAYERS = ("L1", "L2", "L3")


def toy_pool(n: int = 30, seed: int = 0) -> list[PoolRecord]:
    """A fixed pool: mature accuracy, and scores that predict it better with more budget.

    Values are rounded to 2 decimals so that ties occur (exercising tie handling)."""
    rng = np.random.default_rng(seed)
    mature = rng.uniform(0.3, 0.8, n)
    recs = []
    for i in range(n):
        points = []
        for j, b in enumerate(BUDGETS):
            noise = 0.15 / (j + 1)
            p = round(float(mature[i] * 0.5 + rng.normal(0, noise)), 2)
            per = {name: round(float(mature[i] * 0.3 + rng.normal(0, 0.1)), 2) for name in LAYERS}
            tg = float(np.mean(list(per.values())))
            points.append(BudgetPoint(b, 10 * (j + 1), 640 * (j + 1), j + 1.0, p, tg, per))
        recs.append(
            PoolRecord(
                spec_hash=f"h{i:02d}",
                spec="{}",
                points=points,
                mature_accuracy=round(float(mature[i]), 2),
                index=i,
            )
        )
    recs.append(
        PoolRecord(
            spec_hash="failed",
            spec="{}",
            status="failed",
            failure_reason="diverged",
            mature_accuracy=0.99,
            points=[BudgetPoint("1ep", 10, 640, 1.0, 0.99)],
        )
    )
    return recs


def columns(recs, budget, score, alpha=1.0):
    xs, ys = [], []
    for r in recs:
        if r.ok:
            xs.append(r.value(budget, score, alpha))
            ys.append(r.mature_accuracy)
    return np.array(xs), np.array(ys)


def brute_precision(x, y, k):
    """Top-k by value descending, ties to the earlier index, by plain sorting."""
    n = len(x)
    top_x = sorted(range(n), key=lambda i: (-x[i], i))[:k]
    top_y = sorted(range(n), key=lambda i: (-y[i], i))[:k]
    return len(set(top_x) & set(top_y)) / k


def test_table_matches_scipy_on_the_toy_pool():
    recs = toy_pool()
    rows = predictivity_table(recs, k=5, n_boot=200, seed=0)
    scores = {"P", "TG", "P+TG", "TG-deep", "S_L1", "S_L2", "S_L3"}
    expected = {(b, s) for b in BUDGETS for s in scores}
    expected |= {(b, "P-slope") for b in BUDGETS[1:]}  # needs two checkpoints
    assert {(r.budget, r.score) for r in rows} == expected
    for row in rows:
        x, y = columns(recs, row.budget, row.score)
        assert row.n == 30  # the failed record is excluded
        assert row.pearson == pytest.approx(sps.pearsonr(x, y).statistic, abs=1e-12)
        assert row.spearman == pytest.approx(sps.spearmanr(x, y).statistic, abs=1e-12)
        assert row.kendall == pytest.approx(sps.kendalltau(x, y).statistic, abs=1e-12)
        assert row.precision_at_k == pytest.approx(brute_precision(x, y, 5))


def test_predictivity_improves_with_budget_for_p():
    rows = {(r.budget, r.score): r for r in predictivity_table(toy_pool(60), n_boot=50)}
    assert rows[("2ep", "P")].pearson > rows[("0.5ep", "P")].pearson


def test_bootstrap_interval_contains_point_and_is_reproducible():
    recs = toy_pool()
    a = predictivity_table(recs, scores=["P", "P+TG"], n_boot=300, seed=7)
    b = predictivity_table(recs, scores=["P", "P+TG"], n_boot=300, seed=7)
    c = predictivity_table(recs, scores=["P", "P+TG"], n_boot=300, seed=8)
    assert [r.as_dict() for r in a] == [r.as_dict() for r in b]
    assert [r.pearson_low for r in a] != [r.pearson_low for r in c]
    for r in a:
        for m in ("pearson", "spearman", "kendall"):
            e = r.estimate(m)
            assert e.low <= e.value <= e.high
            assert -1 <= e.low < e.high <= 1
        assert 0 <= r.precision_at_k_low <= r.precision_at_k_high <= 1


def test_row_does_not_depend_on_other_scores():
    recs = toy_pool()
    alone = predictivity_table(recs, scores=["TG"], n_boot=100, seed=3)
    together = predictivity_table(recs, scores=["P", "TG"], n_boot=100, seed=3)
    assert alone[0].as_dict() == next(r for r in together if r.score == "TG").as_dict()


def test_bootstrap_matches_a_loop_over_scipy():
    rng = np.random.default_rng(0)
    x = np.round(rng.normal(size=25), 1)
    y = np.round(x + rng.normal(size=25), 1)
    idx = rng.integers(0, 25, size=(40, 25))
    xb, yb = x[idx], y[idx]
    for i in range(40):
        assert pearson(xb, yb)[i] == pytest.approx(sps.pearsonr(xb[i], yb[i]).statistic)
        assert spearman(xb, yb)[i] == pytest.approx(sps.spearmanr(xb[i], yb[i]).statistic)
        assert kendall_tau_b(xb, yb)[i] == pytest.approx(sps.kendalltau(xb[i], yb[i]).statistic)


def test_kendall_large_pool_path_matches_scipy():
    rng = np.random.default_rng(1)
    x = np.round(rng.normal(size=(3, 150)), 1)
    y = np.round(x + rng.normal(size=(3, 150)), 1)
    got = kendall_tau_b(x, y)
    for i in range(3):
        assert got[i] == pytest.approx(sps.kendalltau(x[i], y[i]).statistic)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=3, max_size=12),
    st.integers(1, 6),
)
def test_precision_at_k_brute_force(pairs, k):
    x = np.array([p[0] for p in pairs], dtype=float)
    y = np.array([p[1] for p in pairs], dtype=float)
    k = min(k, len(pairs))
    assert precision_at_k(x, y, k) == pytest.approx(brute_precision(x, y, k))


def test_precision_at_k_by_hand():
    # scores rank items 0,1,2 on top; truth ranks 0,3,1 on top -> 2 of 3 found
    score = np.array([0.9, 0.8, 0.7, 0.1, 0.0])
    truth = np.array([0.95, 0.5, 0.1, 0.6, 0.2])
    assert precision_at_k(score, truth, 3) == pytest.approx(2 / 3)
    # ties: equal scores keep pool order, so item 0 beats item 1 for the single top slot
    assert precision_at_k(np.array([1.0, 1.0, 0.0]), np.array([0.0, 1.0, 0.5]), 1) == 0.0


def test_constant_scores_give_nan_not_an_error():
    est = correlation_estimates(np.ones(10), np.arange(10.0), n_boot=20)
    assert np.isnan(est["pearson"].value) and np.isnan(est["kendall"].value)
    est = correlation_estimates([0.5], [0.7], n_boot=20)
    assert np.isnan(est["spearman"].value) and est["precision_at_k"].value == 1.0


def test_alpha_sweep_matches_direct_computation():
    recs = toy_pool()
    alphas = [0.0, 0.5, 1.0, 3.0]
    rows = alpha_sweep(recs, alphas)
    assert len(rows) == len(alphas) * len(BUDGETS)
    for row in rows:
        p, y = columns(recs, row.budget, "P")
        tg, _ = columns(recs, row.budget, "TG")
        x = p + row.alpha * tg
        assert row.n == 30
        assert row.pearson == pytest.approx(sps.pearsonr(x, y).statistic, abs=1e-12)
        assert row.spearman == pytest.approx(sps.spearmanr(x, y).statistic, abs=1e-12)
        assert row.kendall == pytest.approx(sps.kendalltau(x, y).statistic, abs=1e-12)
    # alpha 0 is P alone
    table = {(r.budget, r.score): r for r in predictivity_table(recs, scores=["P"], n_boot=10)}
    for row in rows:
        if row.alpha == 0.0:
            assert row.pearson == pytest.approx(table[(row.budget, "P")].pearson)


def test_missing_values_are_left_out_per_row():
    recs = toy_pool(10)
    recs[0].points[0].tg = None
    recs[0].points[0].per_layer = {}
    rows = {(r.budget, r.score): r for r in predictivity_table(recs, n_boot=10)}
    assert rows[("0.5ep", "P")].n == 10
    assert rows[("0.5ep", "TG")].n == 9
    assert rows[("1ep", "TG")].n == 10


def test_pairwise_kendall_equals_definition_on_all_pairs():
    x = [3, 1, 2, 2, 5]
    y = [1, 2, 2, 3, 4]
    conc = disc = tx = ty = 0
    for i, j in itertools.combinations(range(5), 2):
        dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
        conc += dx * dy > 0
        disc += dx * dy < 0
        tx += dx == 0 and dy != 0
        ty += dy == 0 and dx != 0
    n0 = 10
    both = sum(1 for i, j in itertools.combinations(range(5), 2) if x[i] == x[j] and y[i] == y[j])
    n1, n2 = tx + both, ty + both
    want = (conc - disc) / np.sqrt((n0 - n1) * (n0 - n2))
    assert kendall_tau_b(np.array(x, float), np.array(y, float))[0] == pytest.approx(want)


# ---------------------------------------------------------------------- zero-cost proxies
def _with_proxies(recs: list[PoolRecord], seed: int = 3) -> list[PoolRecord]:
    rng = np.random.default_rng(seed)
    for r in recs:
        # one proxy loosely tied to mature accuracy, one unrelated; ties in "params"
        r.proxies = {
            "synflow": float((r.mature_accuracy or 0) + rng.normal(0, 0.1)),
            "params": float(rng.integers(0, 5)),
        }
    return recs


def test_proxy_scores_get_one_budget_free_row_matching_scipy() -> None:
    recs = _with_proxies(toy_pool())
    rows = predictivity_table(recs, n_boot=50)
    proxy_rows = [r for r in rows if r.budget == "init"]
    assert [(r.budget, r.score) for r in proxy_rows] == [("init", "synflow"), ("init", "params")]
    ok = [r for r in recs if r.ok]
    y = [r.mature_accuracy for r in ok]
    for row in proxy_rows:
        x = [r.proxies[row.score] for r in ok]
        assert row.spearman == pytest.approx(sps.spearmanr(x, y).statistic)
        assert row.kendall == pytest.approx(sps.kendalltau(x, y).statistic)
    # the budget-dependent scores are still there for every budget
    assert {(r.budget, r.score) for r in rows} >= {(b, "P+TG") for b in BUDGETS}


def test_rank_combination_equals_hand_built_score() -> None:
    recs = _with_proxies(toy_pool(25, seed=4))
    recs[3].proxies["synflow"] = float("nan")  # not measured: left out of that score
    beta, alpha = 0.5, 2.0
    rows = predictivity_table(
        recs,
        scores=["P+TG+rank(synflow)", "P+rank(Z:params)"],
        budgets=["1ep"],
        alpha=alpha,
        beta=beta,
        n_boot=20,
    )
    keep = [r for i, r in enumerate(recs) if i != 3 and r.ok]
    p = np.array([r.point("1ep").accuracy for r in keep])
    tg = np.array([r.point("1ep").tg for r in keep])
    syn = np.array([r.proxies["synflow"] for r in keep])
    y = np.array([r.mature_accuracy for r in keep])
    # ranks by brute force: 1 + number below + half the ties (average rank), over n
    ranks = np.array([(np.sum(syn < v) + (np.sum(syn == v) + 1) / 2) for v in syn]) / syn.size
    combo = p + alpha * tg + beta * ranks
    assert rows[0].n == 24
    assert rows[0].spearman == pytest.approx(sps.spearmanr(combo, y).statistic)
    assert rows[0].pearson == pytest.approx(sps.pearsonr(combo, y).statistic)
    assert rows[1].n == 25  # params was measured everywhere


def test_side_by_side_grid_places_every_row() -> None:
    from tgsage.experiments import side_by_side

    rows = predictivity_table(_with_proxies(toy_pool()), n_boot=20)
    grid = side_by_side(rows, "kendall")
    assert grid.budgets == list(BUDGETS)
    assert grid.value.shape == (len(grid.scores), len(BUDGETS))
    for r in rows:
        i = grid.scores.index(r.score)
        cols = range(len(BUDGETS)) if r.budget == "init" else [BUDGETS.index(r.budget)]
        for j in cols:
            assert grid.value[i, j] == pytest.approx(r.kendall, nan_ok=True)
            assert grid.n[i, j] == r.n
    with pytest.raises(Exception, match="metric"):
        side_by_side(rows, "r2")


# ---------------------------------------------------------------------- nDCG and paired
def test_ndcg_matches_a_brute_force_definition() -> None:
    from tgsage.experiments import ndcg_at_k

    rng = np.random.default_rng(7)
    for _ in range(20):
        n, k = int(rng.integers(3, 15)), int(rng.integers(1, 6))
        y = rng.uniform(0.85, 0.95, n)
        x = rng.normal(size=n)
        gain = [2 ** (100 * v) - 1 for v in y]
        order = sorted(range(n), key=lambda i: (-x[i], i))[: min(k, n)]
        ideal = sorted(gain, reverse=True)[: min(k, n)]
        dcg = sum(gain[i] / np.log2(r + 2) for r, i in enumerate(order))
        best = sum(g / np.log2(r + 2) for r, g in enumerate(ideal))
        assert ndcg_at_k(x, y, k) == pytest.approx(dcg / best)
    assert ndcg_at_k(y, y, 3) == pytest.approx(1.0)


def test_paired_difference_is_zero_for_equal_scores_and_signed() -> None:
    from tgsage.experiments import paired_difference

    rng = np.random.default_rng(0)
    y = rng.normal(size=80)
    good = y + 0.3 * rng.normal(size=80)
    bad = y + 3.0 * rng.normal(size=80)
    same = paired_difference(good, good, y)
    assert same.difference == 0 and same.low == 0 and same.high == 0
    d = paired_difference(good, bad, y, n_boot=500)
    assert d.a == pytest.approx(sps.spearmanr(good, y).statistic)
    assert d.difference == pytest.approx(d.a - d.b) and d.low > 0
    k = paired_difference(good, bad, y, metric="kendall", n_boot=50)
    assert k.a == pytest.approx(sps.kendalltau(good, y).statistic)


def test_paired_interval_is_the_percentile_interval_of_a_scipy_loop_over_joint_resamples():
    # both scores resampled together (same architectures in each resample), the 95% interval
    # the 2.5th-97.5th percentiles of the per-resample differences; ties included
    from tgsage.experiments import paired_difference

    rng = np.random.default_rng(5)
    y = np.round(rng.normal(size=30), 1)
    a = np.round(y + 0.5 * rng.normal(size=30), 1)
    b = np.round(y + 1.5 * rng.normal(size=30), 1)
    d = paired_difference(a, b, y, n_boot=300, seed=11)
    idx = np.random.default_rng(11).integers(0, 30, size=(300, 30))
    loop = np.array(
        [sps.spearmanr(a[i], y[i]).statistic - sps.spearmanr(b[i], y[i]).statistic for i in idx]
    )
    loop = loop[np.isfinite(loop)]
    assert d.difference == pytest.approx(
        sps.spearmanr(a, y).statistic - sps.spearmanr(b, y).statistic
    )
    assert (d.low, d.high) == pytest.approx(tuple(np.percentile(loop, [2.5, 97.5])))
    assert d.n == 30
