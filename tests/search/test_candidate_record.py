"""One candidate-record schema: what the objective writes, the worker copies on reuse, and the
search and experiment readers read back - and records stored under older names still read."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from tgsage.candidate_record import (
    COST,
    MEASURED,
    RECORD_FIELDS,
    from_record,
    reused_record,
    to_record,
)
from tgsage.evaluate import CandidateResult
from tgsage.experiments.records import records_from_study
from tgsage.search import count_trials, leaderboard, load_config
from tgsage.search.objective import SimulatedObjective
from tgsage.spaces import get_space


def test_a_result_is_recorded_under_one_set_of_names() -> None:
    r = CandidateResult(
        status="ok",
        score=0.7,
        accuracy=0.5,
        tg=0.2,
        per_layer={"L1": 0.2},
        params=1234,
        examples=640,
        steps=10,
        train_seconds=1.5,
        loss_sum=12.0,
        loss_steps=10,
        amp="bfloat16",
        channels_last=True,
        guidance={"pearson": {"L1": 0.2}, "cka": {"L1": 0.6}},
    )
    rec = to_record(r)
    assert rec["amp"] == "bfloat16" and rec["channels_last"] is True  # how it ran
    assert rec["guidance"]["cka"] == {"L1": 0.6}
    assert rec["P"] == 0.5 and rec["TG"] == 0.2 and rec["params"] == 1234 and rec["score"] == 0.7
    assert not {"accuracy", "tg", "params_count", "failure_reason", "status"} & set(rec)
    assert "no_path" not in rec and "best_match" not in rec  # False and empty are left out
    dead = to_record(CandidateResult(status="ok", score=0.1, accuracy=0.1, tg=0.0, no_path=True))
    assert dead["no_path"] is True and dead["TG"] == 0.0  # marked, not a silent TG = 0
    assert set(rec) <= set(RECORD_FIELDS)
    failed = to_record(
        CandidateResult(status="failed", failure_reason="diverged", message="x" * 5000)
    )
    assert failed["failure_reason"] == "diverged" and len(failed["message"]) == 2000
    assert "score" not in failed and "P" not in failed


def test_older_names_are_read_as_aliases() -> None:
    old = {"params_count": 99, "accuracy": 0.4, "tg": 0.1, "spec_hash": "h"}
    assert from_record(old) == {"params": 99, "P": 0.4, "TG": 0.1, "spec_hash": "h"}
    both = {"params_count": 1, "params": 2}
    assert from_record(both) == {"params": 2}  # the current name wins


def test_a_reused_candidate_copies_measurements_not_cost() -> None:
    original = {"P": 0.5, "params_count": 7, "examples": 640, "train_seconds": 3.0, "worker": "w"}
    rec = reused_record(original, number=4)
    assert rec["P"] == 0.5 and rec["params"] == 7 and rec["reused_from"] == 4
    assert all(rec[k] == 0 for k in COST) and "worker" not in rec


def test_the_simulated_objective_writes_the_schema(sim_config, tmp_path: Path) -> None:
    space = get_space("layer")
    for extra in ({}, {"proxy": "synflow", "beta": 0.5}, {"score": "proxy", "proxy": "naswot"}):
        objective = SimulatedObjective(load_config(sim_config(**extra)))
        outcome = objective(space.random_spec(0))
        assert set(outcome.attrs) <= set(RECORD_FIELDS), set(outcome.attrs) - set(RECORD_FIELDS)
    assert set(MEASURED) & set(COST) == set()


def test_a_search_stored_with_the_old_names_still_reads(tmp_path: Path) -> None:
    """Trials as searches before this schema wrote them: params_count, and a stopped worker's
    candidate as failure_reason 'interrupted' (now: given back, not a failure)."""
    dist = {"x": CategoricalDistribution([0, 1])}
    study = optuna.create_study(direction="maximize")
    study.add_trials(
        [
            create_trial(
                params={"x": 0},
                distributions=dist,
                value=0.9,
                user_attrs={"spec_hash": "a", "P": 0.9, "params_count": 11, "examples": 64},
            ),
            create_trial(
                state=TrialState.FAIL,
                params={"x": 1},
                distributions=dist,
                user_attrs={"spec_hash": "b", "failure_reason": "interrupted", "examples": 0},
            ),
        ]
    )
    trials = study.get_trials()
    counts = count_trials(trials)
    assert counts.complete == 1 and counts.failed == 0 and counts.lost == counts.interrupted == 1
    (row,) = leaderboard(trials)
    assert row.p == pytest.approx(0.9) and row.examples == 64
    first = records_from_study(study)[0]
    assert first.accuracy == pytest.approx(0.9) and first.extra["params"] == 11
