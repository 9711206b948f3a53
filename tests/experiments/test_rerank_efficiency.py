"""Re-ranking cost arithmetic, best-so-far curves and the Optuna adapter, all by hand."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from tgsage.experiments import (
    CandidateRecord,
    as_candidate_records,
    best_so_far,
    compare_searches,
    records_from_study,
    rerank,
    table_at_cost,
    top_k,
)


def search_table() -> list[dict]:
    # number, score, examples, status; #4 reuses #1's result (same spec hash, no cost)
    return [
        {"number": 0, "score": 0.5, "P": 0.4, "examples": 100, "spec_hash": "a"},
        {"number": 1, "score": 0.9, "P": 0.6, "examples": 100, "spec_hash": "b"},
        {
            "number": 2,
            "status": "failed",
            "examples": 50,
            "spec_hash": "c",
            "failure_reason": "diverged",
        },
        {"number": 3, "score": 0.7, "P": 0.5, "examples": 100, "spec_hash": "d"},
        {"number": 4, "score": 0.9, "P": 0.6, "examples": 0, "spec_hash": "b", "reused_from": 1},
        {"number": 5, "score": 0.7, "P": 0.55, "examples": 100, "spec_hash": "e"},
    ]


def test_top_k_ties_by_trial_number_and_distinct_specs():
    assert [r.number for r in top_k(search_table(), 3)] == [1, 3, 5]
    assert [r.number for r in top_k(search_table(), 10)] == [1, 3, 5, 0]


def test_rerank_cost_arithmetic_by_hand():
    long_acc = {1: 0.6, 3: 0.8, 5: 0.8}
    long_ex = {1: 1000, 3: 1000, 5: 1200}
    calls = []

    def fake_train(rec: CandidateRecord) -> dict:
        calls.append(rec.number)
        return {"accuracy": long_acc[rec.number], "examples": long_ex[rec.number]}

    res = rerank(search_table(), 3, fake_train)
    assert calls == [1, 3, 5]
    # 3 and 5 tie at 0.8 after the longer run: the one ranked higher by score (3, lower trial
    # number at an equal score) wins
    assert res.best is not None and res.best.number == 3 and res.best_accuracy == 0.8
    assert res.m1 == 6  # every sampled candidate: ok, failed and reused
    assert res.e1_total == 100 + 100 + 50 + 100 + 0 + 100 == 450
    assert res.e1 == pytest.approx(75.0)
    assert res.m2 == 3 and res.e2_total == 3200 and res.e2 == pytest.approx(3200 / 3)
    assert res.total == 3650
    table = {row["stage"]: row for row in res.cost_table()}
    assert table["total"]["examples"] == 3650 and table["rerank"]["M"] == 3
    assert res.as_dict()["total"] == 3650


def test_rerank_failed_long_run_costs_but_never_wins():
    def fake_train(rec):
        if rec.number == 1:
            return {
                "accuracy": None,
                "examples": 300,
                "status": "failed",
                "failure_reason": "diverged",
            }
        return {"val_accuracy": 0.1, "examples": 200}

    res = rerank(search_table(), 2, fake_train)
    assert res.best.number == 3
    assert [e.status for e in res.entries] == ["failed", "ok"]
    assert res.e2_total == 500 and res.total == 950


def test_rerank_in_a_given_order_ignores_scores_and_failed_trials():
    """A cascade's rungs score differently: the caller's order decides, not the scores; a
    failed trial named in the order is skipped, and the cost still counts every sample."""
    trained: list[int] = []

    def fake_train(rec):
        trained.append(rec.number)
        return {"accuracy": 0.1 * rec.number, "examples": 10}

    res = rerank(search_table(), 2, fake_train, order=[2, 0, 5, 1])
    assert trained == [0, 5]  # 2 failed; 0 comes first although its score is the lowest
    assert res.best.number == 5 and res.m1 == 6 and res.e2_total == 20


def test_rerank_rejects_bad_k():
    with pytest.raises(ValueError, match="k must be"):
        rerank(search_table(), 0, lambda r: {"accuracy": 1.0, "examples": 1})


def completion_table() -> list[dict]:
    return [
        {"number": 0, "score": 0.2, "examples": 10, "order": 3.0, "mature_accuracy": 0.7},
        {"number": 1, "score": 0.5, "examples": 20, "order": 1.0, "mature_accuracy": 0.3},
        {"number": 2, "status": "failed", "examples": 30, "order": 2.0},
        {"number": 3, "score": 0.4, "examples": 40, "order": 5.0, "mature_accuracy": 0.6},
        {"number": 4, "score": 0.9, "examples": 50, "order": 4.0, "mature_accuracy": 0.1},
        {"number": 5, "status": "running", "examples": 0},
    ]


def test_best_so_far_by_hand():
    curve = best_so_far(completion_table())
    assert curve.number.tolist() == [1, 2, 0, 4, 3]
    assert curve.cost.tolist() == [20, 50, 60, 110, 150]
    assert curve.best.tolist() == [0.5, 0.5, 0.5, 0.9, 0.9]
    count = best_so_far(completion_table(), by="mature_accuracy", cost="candidates")
    assert count.cost.tolist() == [1, 2, 3, 4, 5]
    assert count.best.tolist() == [0.3, 0.3, 0.7, 0.7, 0.7]


def test_best_so_far_of_the_current_top_k():
    top1 = best_so_far(completion_table(), by="mature_accuracy", select_top=1)
    assert top1.best.tolist() == [0.3, 0.3, 0.3, 0.1, 0.1]
    top2 = best_so_far(completion_table(), by="mature_accuracy", select_top=2)
    assert top2.best.tolist() == [0.3, 0.3, 0.7, 0.3, 0.3]


def test_best_so_far_nan_until_first_value():
    rows = [
        {"number": 0, "status": "failed", "examples": 5},
        {"number": 1, "score": 0.3, "examples": 5},
    ]
    curve = best_so_far(rows)
    assert math.isnan(curve.best[0]) and curve.best[1] == 0.3


def run(costs, values):
    return [
        {"number": i, "score": v, "examples": c}
        for i, (c, v) in enumerate(zip(np.diff([0, *costs]), values, strict=True))
    ]


def test_compare_searches_on_an_explicit_grid_by_hand():
    groups = {"A": [run([10, 20], [0.1, 0.5]), run([5, 30], [0.2, 0.3])], "B": [run([30], [0.9])]}
    out = compare_searches(groups, grid=[0, 5, 10, 25, 30])
    a = out["A"]
    # run 1 ends at cost 20: it holds 0.1 from 10 and is left out past its end (25, 30)
    assert a.n_runs.tolist() == [0, 1, 2, 1, 1]
    np.testing.assert_allclose(a.mean, [np.nan, 0.2, 0.15, 0.2, 0.3])
    np.testing.assert_allclose(a.std, [0, 0, np.std([0.1, 0.2], ddof=1), 0, 0])
    assert a.runs.shape == (2, 5)
    assert out["B"].n_runs.tolist() == [0, 0, 0, 0, 1]
    assert np.isnan(out["B"].mean[:4]).all() and out["B"].mean[4] == 0.9


def test_compare_searches_default_grid_is_equal_cost():
    groups = {"A": [run([10, 20], [0.1, 0.5])], "B": [run([5, 30], [0.2, 0.3])]}
    out = compare_searches(groups, n_grid=5)
    assert out["A"].grid.tolist() == [0, 5, 10, 15, 20]
    rows = table_at_cost(out)
    assert rows[0] == {"search": "A", "cost": 20.0, "mean": 0.5, "std": 0.0, "runs": 1}
    assert rows[1]["mean"] == 0.2


def test_records_from_a_hand_made_optuna_study():
    study = optuna.create_study(direction="maximize")
    dist = {"x": CategoricalDistribution([0, 1])}
    study.add_trial(
        create_trial(
            state=TrialState.COMPLETE,
            value=1.2,
            params={"x": 0},
            distributions=dist,
            user_attrs={
                "spec": '{"kind":"layer"}',
                "spec_hash": "abc",
                "P": 0.4,
                "TG": 0.8,
                "per_layer": {"L1": 0.7, "L2": 0.9},
                "examples": 640,
                "similarity": [[0.1, 0.7], [0.9, 0.2]],
                "teacher_layers": ["L1", "L2"],
                "candidate_layers": ["layer0", "layer1"],
                "train_seconds": 1.5,
            },
        )
    )
    study.add_trial(
        create_trial(
            state=TrialState.FAIL,
            params={"x": 1},
            distributions=dist,
            user_attrs={"failure_reason": "diverged", "examples": 100},
        )
    )
    study.add_trial(
        create_trial(state=TrialState.COMPLETE, value=0.3, params={"x": 1}, distributions=dist)
    )  # no attributes at all
    study.add_trial(
        create_trial(
            state=TrialState.PRUNED,
            params={"x": 1},
            distributions=dist,
            user_attrs={"surplus": True},
        )
    )
    recs = records_from_study(study)
    assert [r.number for r in recs] == [0, 1, 2]
    r0, r1, r2 = recs
    assert (r0.status, r0.score, r0.accuracy, r0.tg, r0.examples) == ("ok", 1.2, 0.4, 0.8, 640)
    assert r0.per_layer == {"L1": 0.7, "L2": 0.9} and r0.spec_hash == "abc"
    assert r0.similarity == [[0.1, 0.7], [0.9, 0.2]] and r0.candidate_layers[1] == "layer1"
    assert r0.value("S:L2") == 0.9 and r0.value("P") == 0.4 and r0.train_seconds == 1.5
    assert (r1.status, r1.failure_reason, r1.cost, r1.score) == ("failed", "diverged", 100, None)
    assert r2.score == 0.3 and r2.accuracy is None and r2.spec is None and r2.per_layer == {}
    assert r2.examples is None and r2.cost == 0
    assert r0.order is not None  # completion time
    # the adapter's records feed the experiments directly
    assert best_so_far(recs).best.tolist() == [1.2, 1.2, 1.2]


def test_plain_dicts_tolerate_junk():
    (rec,) = as_candidate_records(
        [{"score": "n/a", "P": float("nan"), "per_layer": "x", "examples": "12", "weird": 1}]
    )
    assert rec.score is None and rec.accuracy is None and rec.per_layer == {}
    assert rec.examples == 12 and rec.extra == {"weird": 1}


def test_rerank_training_is_seeded_per_candidate(tiny_objects) -> None:
    """The same spec gets the same long run whatever was trained before it (weights seeded
    per candidate), and the caller's RNG is left alone."""
    import torch

    from tgsage.experiments import CandidateRecord, make_train_fn
    from tgsage.spaces import get_space

    torch.set_num_threads(1)
    spec = get_space("layer", max_layers=2).random_spec(seed=3)
    rec = CandidateRecord(number=0, spec=spec.to_json())
    train = make_train_fn(tiny_objects, "8steps", "cpu_demo", width_mult=0.25, device="cpu", seed=5)
    first = train(rec)
    torch.manual_seed(123)
    torch.rand(7)  # a different global RNG state, as after other candidates
    state = torch.random.get_rng_state()
    second = train(rec)
    assert first.accuracy == second.accuracy and first.examples == second.examples == 8 * 64
    assert torch.equal(torch.random.get_rng_state(), state)
