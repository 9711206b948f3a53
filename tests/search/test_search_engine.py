"""Worker logic in one process: exact-N claims under races, dedup, sweeps, counts, status."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from tgsage import optuna_api as api
from tgsage.search import (
    Worker,
    count_trials,
    create_or_load_study,
    leaderboard,
    load_config,
    search_status,
)
from tgsage.search.faults import HOST, sweep_stale
from tgsage.search.records import HEARTBEAT_ATTR, slots_ahead
from tgsage.search.runner import preflight

Factory = Callable[..., dict[str, Any]]


def _new_study(cfg_dict: dict[str, Any]) -> tuple[optuna.Study, Any]:
    cfg = load_config(cfg_dict)
    study, _ = create_or_load_study(cfg, preflight(cfg))
    return study, cfg


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


class FirstChoice(optuna.samplers.BaseSampler):
    """Always the first choice: every candidate is the same spec (dedup oracle)."""

    def infer_relative_search_space(self, study, trial):
        return {}

    def sample_relative(self, study, trial, search_space):
        return {}

    def sample_independent(self, study, trial, name, dist):
        return dist.choices[0]


def _race(url_cfg: dict[str, Any], threads: int) -> list[optuna.trial.FrozenTrial]:
    study, cfg = _new_study(url_cfg)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            Worker(cfg.storage_url, cfg.name, poll=0.01).run()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=120)
    assert not errors, errors
    return study.get_trials(deepcopy=False)


def _check_exact(trials: list[optuna.trial.FrozenTrial], n: int) -> None:
    c = count_trials(trials)
    assert c.complete == n
    assert c.running == 0 and c.waiting == 0
    # every surplus claim was handed back before anything was evaluated (its choices were
    # drawn before the claim, in memory: they cost nothing)
    for t in trials:
        if t.state == TrialState.PRUNED:
            assert t.user_attrs["surplus"] is True and t.value is None
            assert not {"examples", "P", "score", "failure_reason"} & set(t.user_attrs)


@pytest.mark.slow
def test_racing_workers_complete_exactly_n_on_journal(sim_config: Factory) -> None:
    trials = _race(sim_config(n_candidates=30), threads=6)
    _check_exact(trials, 30)


@pytest.mark.postgres
@pytest.mark.slow
def test_racing_workers_complete_exactly_n_on_postgres(
    sim_config: Factory, postgres_url: str
) -> None:
    trials = _race(sim_config(n_candidates=16, storage=postgres_url), threads=4)
    _check_exact(trials, 16)


def test_claim_lost_in_a_race_is_handed_back_unevaluated(sim_config: Factory) -> None:
    study, cfg = _new_study(sim_config(n_candidates=1))
    w = Worker(cfg.storage_url, cfg.name, poll=0.01)
    rival = optuna.load_study(study_name=cfg.name, storage=preflight(cfg))
    claim = w._claim

    def claim_after_rival(counts):  # type: ignore[no-untyped-def]
        w._claim = claim  # another worker claims between pre-check and claim ...
        t = rival.ask()
        t.set_user_attr("worker", f"{HOST}:{_dead_pid()}")  # ... and then dies
        return claim(counts)

    w._claim = claim_after_rival  # type: ignore[method-assign]
    summary = w.run()
    trials = study.get_trials()
    assert (trials[0].state, trials[0].user_attrs.get("surplus")) == (TrialState.FAIL, None)
    handed_back = [t for t in trials if t.state == TrialState.PRUNED]
    assert handed_back and all(t.user_attrs["surplus"] for t in handed_back)
    assert all("examples" not in t.user_attrs for t in handed_back)  # never evaluated
    assert summary.surplus == len(handed_back) and summary.evaluated == 1
    assert count_trials(trials).complete == 1


def test_slots_ahead_counts_only_earlier_active_trials() -> None:
    def mk(number: int, state: TrialState, surplus: bool = False) -> optuna.trial.FrozenTrial:
        t = optuna.trial.create_trial(
            state=state,
            value=1.0 if state == TrialState.COMPLETE else None,
            user_attrs={"surplus": True} if surplus else {},
        )
        t.number = number
        return t

    trials = [
        mk(0, TrialState.COMPLETE),
        mk(1, TrialState.FAIL),
        mk(2, TrialState.WAITING),
        mk(3, TrialState.PRUNED, True),
        mk(4, TrialState.RUNNING),
        mk(5, TrialState.COMPLETE),
    ]
    assert [slots_ahead(trials, k) for k in range(7)] == [0, 1, 1, 2, 2, 3, 4]


def test_duplicate_specs_are_reused_not_retrained(sim_config: Factory) -> None:
    study, cfg = _new_study(sim_config(n_candidates=5, simulate={"examples": 700}))
    w = Worker(cfg.storage_url, cfg.name)
    w.study.sampler = FirstChoice()
    summary = w.run()
    assert (summary.evaluated, summary.reused) == (1, 4)
    trials = study.get_trials()
    original = trials[0]
    assert original.user_attrs["examples"] == 700 and "reused_from" not in original.user_attrs
    for t in trials[1:]:
        assert t.state == TrialState.COMPLETE
        assert t.user_attrs["reused_from"] == original.number
        assert t.user_attrs["examples"] == 0
        assert t.value == original.value
        assert t.user_attrs["spec_hash"] == original.user_attrs["spec_hash"]
        assert t.user_attrs["per_layer"] == original.user_attrs["per_layer"]
    status = search_status(cfg.storage_url, cfg.name)
    assert status.cost == 700 and status.counts.reused == 4
    assert len(status.leaderboard) == 1  # one row per distinct spec


def test_failed_candidates_do_not_count_but_cost(sim_config: Factory) -> None:
    study, cfg = _new_study(sim_config(n_candidates=6, simulate={"fail_fraction": 0.5}))
    Worker(cfg.storage_url, cfg.name).run()
    trials = study.get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(complete) == 6 and failed
    assert all(t.user_attrs["failure_reason"] == "simulated_failure" for t in failed)
    c = count_trials(trials)
    assert c.failed == len(failed) and c.cost == 1000 * (len(complete) + len(failed))


def _running_trial(study: optuna.Study, worker: str) -> optuna.trial.FrozenTrial:
    from tgsage.spaces import get_space

    trial = study.ask()
    get_space("layer").sample(trial)
    trial.set_user_attr("worker", worker)
    trial.set_user_attr("spec_hash", "x")
    return api.get_trial(study, api.trial_id(trial))


def test_dead_local_worker_is_retried_once_with_same_params(sim_config: Factory) -> None:
    study, cfg = _new_study(sim_config())
    lost = _running_trial(study, f"{HOST}:{_dead_pid()}")
    other = optuna.load_study(study_name=cfg.name, storage=preflight(cfg))  # a 2nd worker
    snapshot = other.get_trials(deepcopy=False)
    assert sweep_stale(study, study.get_trials(deepcopy=False), 60, 3) == 1
    assert sweep_stale(other, snapshot, 60, 3) == 0  # stale snapshot: loses the CAS
    trials = study.get_trials()
    assert trials[lost.number].state == TrialState.FAIL
    retries = [t for t in trials if t.user_attrs.get("retry_of") == lost.number]
    assert len(retries) == 1
    assert retries[0].state == TrialState.WAITING and retries[0].params == lost.params
    # the retry is popped first and replays the same choices
    w = Worker(cfg.storage_url, cfg.name)
    w.max_candidates = 1
    w.run()
    done = study.get_trials()[retries[0].number]
    assert done.state == TrialState.COMPLETE and done.params == lost.params


def test_heartbeat_grace_period_on_journal(sim_config: Factory) -> None:
    study, _cfg = _new_study(sim_config(local_pid_check=False))
    fresh = _running_trial(study, "elsewhere:1")
    stale = _running_trial(study, "elsewhere:2")
    api.set_system_attr(study, api.trial_id(fresh), HEARTBEAT_ATTR, time.time())
    api.set_system_attr(study, api.trial_id(stale), HEARTBEAT_ATTR, time.time() - 10)
    assert sweep_stale(study, study.get_trials(deepcopy=False), 5, 3, False) == 1
    states = {t.number: t.state for t in study.get_trials()}
    assert states[fresh.number] == TrialState.RUNNING
    assert states[stale.number] == TrialState.FAIL


def test_retries_stop_at_max_retries(sim_config: Factory) -> None:
    study, _cfg = _new_study(sim_config(max_retries=1))
    first = _running_trial(study, f"{HOST}:{_dead_pid()}")
    sweep_stale(study, study.get_trials(deepcopy=False), 60, 1)
    retry = study.ask()  # pops the retry
    assert retry.user_attrs["retry_of"] == first.number
    retry.set_user_attr("worker", f"{HOST}:{_dead_pid()}")
    assert sweep_stale(study, study.get_trials(deepcopy=False), 60, 1) == 1
    c = count_trials(study.get_trials())
    assert (c.lost, c.waiting, c.retried) == (2, 0, 1)


@pytest.mark.postgres
@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_postgres_heartbeat_marks_lost_and_retries(sim_config: Factory, postgres_url: str) -> None:
    from tgsage.search.worker import open_study

    _, cfg = _new_study(
        sim_config(
            storage=postgres_url, local_pid_check=False, heartbeat_interval=1, grace_period=2
        )
    )
    study, _ = open_study(cfg.storage_url, cfg.name)
    lost = _running_trial(study, "elsewhere:1")
    api.record_heartbeat(api.storage_of(study), api.trial_id(lost))
    assert sweep_stale(study, study.get_trials(deepcopy=False), 2, 3, False) == 0
    time.sleep(3.2)
    sweep_stale(study, study.get_trials(deepcopy=False), 2, 3, False)
    trials = study.get_trials()
    assert trials[lost.number].state == TrialState.FAIL
    retries = [t for t in trials if t.user_attrs.get("retry_of") == lost.number]
    assert len(retries) == 1 and retries[0].params == lost.params


def test_counts_and_leaderboard_by_hand() -> None:
    def mk(state: TrialState, value: float | None = None, **attrs: Any) -> Any:
        return optuna.trial.create_trial(state=state, value=value, user_attrs=attrs)

    trials = [
        mk(TrialState.COMPLETE, 0.5, spec_hash="a", examples=10, P=0.4, TG=0.1),
        mk(TrialState.COMPLETE, 0.9, spec_hash="b", examples=20),
        mk(TrialState.COMPLETE, 0.9, spec_hash="b", examples=0, reused_from=1),
        mk(TrialState.FAIL, failure_reason="diverged", examples=5),
        mk(TrialState.FAIL),
        mk(TrialState.PRUNED, surplus=True),
        mk(TrialState.WAITING, retry_of=4),
        mk(TrialState.COMPLETE, 0.7, spec_hash="c", examples=30),
    ]
    for i, t in enumerate(trials):
        t.number = i
    c = count_trials(trials)
    assert (c.complete, c.failed, c.lost, c.surplus, c.waiting, c.reused, c.retried) == (
        4,
        1,
        1,
        1,
        1,
        1,
        1,
    )
    assert c.cost == 65 and c.reasons == {"diverged": 1}
    rows = leaderboard(trials, top=5)
    assert [(r.number, r.spec_hash) for r in rows] == [(1, "b"), (7, "c"), (0, "a")]
    assert rows[2].p == 0.4 and rows[2].examples == 10


def test_restart_with_other_config_is_refused(sim_config: Factory) -> None:
    from tgsage.errors import ConfigError

    base = sim_config()
    _new_study(base)
    _new_study({**base, "n_candidates": 20})  # may change on restart
    with pytest.raises(ConfigError, match="strategy"):
        _new_study({**base, "strategy": "tpe"})


def test_unreachable_database_is_one_clear_error(sim_config: Factory) -> None:
    from tgsage.errors import ConfigError
    from tgsage.search import run_search

    url = "postgresql://tgsage:s3cret@127.0.0.1:1/nowhere"
    with pytest.raises(ConfigError, match="cannot reach the database") as info:
        run_search(sim_config(storage=url))
    assert "s3cret" not in str(info.value)
    assert not os.path.exists(sim_config()["run_dir"])  # no work started, no run folder


class _Refused(Exception):
    """What sqlalchemy raises when the server refuses a connection (``orig``: the driver's)."""

    def __init__(self, message: str) -> None:
        super().__init__("(psycopg2.OperationalError) ...")
        self.orig = message


@pytest.mark.parametrize(
    ("message", "calls", "opens"),
    [
        ("FATAL:  sorry, too many clients already", 3, True),
        ("FATAL:  remaining connection slots are reserved for superuser", 3, True),
        ('FATAL:  password authentication failed for user "tgsage"', 1, False),
        ('FATAL:  database "nowhere" does not exist', 1, False),
    ],
)
def test_a_full_server_is_asked_again_other_refusals_are_not(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    message: str,
    calls: int,
    opens: bool,
) -> None:
    import tgsage.search.storage as storage
    from tgsage.errors import ConfigError

    seen: list[float] = []
    slept: list[float] = []

    def rdb(url: str, **kw: Any) -> str:
        seen.append(1.0)
        if len(seen) < 3:
            raise _Refused(message)
        return "storage"

    monkeypatch.setattr(storage, "RDBStorage", rdb)
    monkeypatch.setattr(storage.time, "sleep", slept.append)
    url = "postgresql://tgsage:s3cret@127.0.0.1/tgsage"
    if opens:
        assert storage.open_storage(url) == "storage"
        assert slept == [0.5, 1.0]  # backoff
        assert "no free connection" in caplog.text and "s3cret" not in caplog.text
    else:
        with pytest.raises(ConfigError, match="cannot reach the database"):
            storage.open_storage(url)
        assert slept == []
    assert len(seen) == calls


def test_a_server_full_for_longer_than_busy_wait_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tgsage.search.storage as storage
    from tgsage.errors import ConfigError

    slept: list[float] = []

    def rdb(url: str, **kw: Any) -> str:
        raise _Refused("FATAL:  sorry, too many clients already")

    monkeypatch.setattr(storage, "RDBStorage", rdb)
    monkeypatch.setattr(storage.time, "sleep", slept.append)
    with pytest.raises(ConfigError, match="too many clients"):
        storage.open_storage("postgresql://u:p@127.0.0.1/db", busy_wait=10.0)
    assert sum(slept) == pytest.approx(10.0) and slept[:4] == [0.5, 1.0, 2.0, 4.0]


def test_choices_distribution_roundtrip_for_retry() -> None:
    # enqueue_retry relies on Optuna replaying categorical params of a WAITING trial
    study = optuna.create_study()
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            params={"a": 3},
            distributions={"a": CategoricalDistribution([1, 3])},
        )
    )
    t = study.ask()
    assert t.suggest_categorical("a", [1, 3]) == 3


@pytest.mark.slow
def test_train_objective_records_real_evaluations(
    sim_config: Factory, tmp_path: Any, tiny_teacher_net: Any, tiny_probe: Any
) -> None:
    """objective=train: evaluate_candidate's P, S_i, TG, score and cost land in the trial."""
    import torch

    from tgsage.teacher import teacher_from_network

    teacher = teacher_from_network(tiny_teacher_net, tiny_probe, subsamples=None, device="cpu")
    teacher.save(tmp_path / "teacher.npz")
    torch.set_num_threads(1)
    study, cfg = _new_study(
        sim_config(
            objective="train",
            n_candidates=2,
            score="p+tg",
            alpha=0.5,
            teacher=str(tmp_path / "teacher.npz"),
            budget="64ex",
            train="cpu_demo",
            space_options={"max_layers": 2},
            width_mult=0.25,
            device="cpu",
            data={"name": "synthetic", "n_train": 256, "n_val": 64, "resolution": 16},
        )
    )
    w = Worker(cfg.storage_url, cfg.name)
    w.run()
    done = [t for t in study.get_trials() if t.state == TrialState.COMPLETE]
    assert len(done) == 2
    for t in done:
        a = t.user_attrs
        assert a["examples"] == 64 and 0.0 <= a["P"] <= 1.0
        assert set(a["per_layer"]) == set(teacher.layers)
        assert a["TG"] == pytest.approx(sum(a["per_layer"].values()) / len(a["per_layer"]))
        assert t.value == pytest.approx(a["P"] + 0.5 * a["TG"])
        assert len(a["similarity"]) == len(teacher.layers)
