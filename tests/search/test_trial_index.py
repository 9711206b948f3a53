"""TrialIndex (the worker's incremental counts, slots and dedup) against full passes.

Oracle: count_trials / slots_ahead / find_done, the brute-force passes over the same trials.
Histories are random (hypothesis) or written by another process into a real storage while
the index is being updated (journal and PostgreSQL).
"""

from __future__ import annotations

import multiprocessing
import random
import time
import uuid
from pathlib import Path

import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from optuna.trial import FrozenTrial, TrialState

from tgsage import optuna_api as api
from tgsage.search.records import TrialIndex, count_trials, find_done, slots_ahead
from tgsage.search.storage import open_storage

HASHES = ["a", "b", "c", "d"]
FINAL = [TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED]


def _attrs(rng: random.Random, number: int) -> dict:
    """A mix of what the engine records: hashes (few, so duplicates), reuses, retries, costs,
    failures with reasons, lost and interrupted attempts, surplus slots."""
    a: dict = {"spec_hash": rng.choice(HASHES), "examples": rng.choice([0, 100, 250])}
    if number and rng.random() < 0.3:
        a["reused_from"] = rng.randrange(number)
    if rng.random() < 0.2:
        a["retry_of"] = rng.randrange(number + 1)
    return a


def _final_attrs(rng: random.Random, state: TrialState) -> dict:
    if state == TrialState.PRUNED:
        return {"surplus": rng.random() < 0.8}
    if state == TrialState.FAIL:
        return rng.choice(
            [
                {},
                {"failure_reason": "diverged"},
                {"failure_reason": "invalid"},
                {"interrupted": "x"},
            ]
        )
    return {}


def _check(index: TrialIndex, trials: list[FrozenTrial]) -> None:
    assert index.counts() == count_trials(trials)
    top = max((t.number for t in trials), default=0) + 2
    for k in range(top):
        assert index.slots_ahead(k) == slots_ahead(trials, k)
    for h in [*HASHES, "never"]:
        for exclude in (-1, *range(top)):
            want, got = find_done(trials, h, exclude), index.find_done(h, exclude)
            assert (got and got.number) == (want and want.number)


def _frozen(number: int, state: TrialState, attrs: dict, value: float | None) -> FrozenTrial:
    return FrozenTrial(
        number=number,
        state=state,
        value=value,
        datetime_start=None,
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs=attrs,
        system_attrs={},
        intermediate_values={},
        trial_id=number,
    )


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6), rounds=st.integers(1, 12))
def test_index_equals_full_passes_over_a_growing_history(seed: int, rounds: int) -> None:
    """Trials appear RUNNING or WAITING, finish later in any order; the index sees the study
    after every round (finished trials are frozen objects, as a storage returns them)."""
    rng = random.Random(seed)
    trials: list[FrozenTrial] = []
    index = TrialIndex()
    for _ in range(rounds):
        for i, t in enumerate(trials):
            if not t.state.is_finished() and rng.random() < 0.5:
                if t.state == TrialState.WAITING:
                    trials[i] = _frozen(t.number, TrialState.RUNNING, t.user_attrs, None)
                    continue
                state = rng.choice(FINAL)
                value = rng.random() if state == TrialState.COMPLETE else None
                trials[i] = _frozen(t.number, state, t.user_attrs | _final_attrs(rng, state), value)
        for _ in range(rng.randrange(4)):
            n = len(trials)
            state = rng.choice([TrialState.RUNNING, TrialState.WAITING, *FINAL])
            value = rng.random() if state == TrialState.COMPLETE else None
            attrs = _attrs(rng, n) | _final_attrs(rng, state)
            trials.append(_frozen(n, state, attrs, value))
        index.update(list(trials))
        _check(index, trials)


def _writer(url: str, name: str, seed: int, n: int) -> None:
    """Another process: claims trials and finishes them later, in a shuffled order."""
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    rng = random.Random(seed)
    running: list[int] = []
    for _ in range(n):
        tid = api.trial_id(study.ask())
        api.set_user_attrs(study, tid, _attrs(rng, 0))
        running.append(tid)
        while running and rng.random() < 0.6:
            done = running.pop(rng.randrange(len(running)))
            state = rng.choice(FINAL)
            value = rng.random() if state == TrialState.COMPLETE else None
            api.finish_trial(study, done, state, value, _final_attrs(rng, state))


@pytest.mark.parametrize("kind", ["journal", "postgres"])
def test_index_follows_another_process(kind: str, tmp_path: Path, request) -> None:  # type: ignore[no-untyped-def]
    url = (
        f"journal:{tmp_path / 's.journal'}"
        if kind == "journal"
        else request.getfixturevalue("postgres_url")
    )
    name = f"idx-{uuid.uuid4().hex[:12]}"
    study = optuna.create_study(storage=open_storage(url), study_name=name)
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=_writer, args=(url, name, 7, 60))
    proc.start()
    index, reads = TrialIndex(), 0
    while True:
        alive = proc.is_alive()
        trials = study.get_trials(deepcopy=False)
        index.update(trials)
        _check(index, trials)
        reads += 1
        if not alive:
            break
        time.sleep(0.02)  # leave the writer the CPU
    proc.join()
    assert proc.exitcode == 0 and reads > 1
    assert len(trials) == 60 and count_trials(trials).complete > 0
