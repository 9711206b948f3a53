"""The Optuna internals tgsage relies on (tgsage.optuna_api), exercised on every storage
kind: an Optuna release that moves one of them fails here, by name, not inside a search."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from tgsage import optuna_api as api
from tgsage.search.storage import FlockLock, open_storage

pytestmark = [
    pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning"),
    pytest.mark.filterwarnings("ignore:Heartbeat of storage"),
]


@pytest.fixture(params=["memory", "journal", "sqlite", "sqlite-heartbeat", "postgres"])
def study(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[optuna.Study]:
    kind = request.param
    if kind == "memory":
        storage = None
    elif kind == "journal":
        storage = open_storage(f"journal:{tmp_path / 's.journal'}")
    elif kind == "postgres":  # skipped when no server answers
        storage = open_storage(request.getfixturevalue("postgres_url"))
    else:
        beat = {"heartbeat_interval": 60, "grace_period": 120} if "heartbeat" in kind else {}
        storage = open_storage(f"sqlite:///{tmp_path / 's.db'}", **beat)
    s = optuna.create_study(storage=storage, direction="maximize")
    s.kind = kind  # type: ignore[attr-defined]
    yield s


def test_every_private_use_works(study: optuna.Study) -> None:
    trial = study.ask()
    tid = api.trial_id(trial)
    storage = api.storage_of(study)
    assert isinstance(tid, int) and storage.get_trial(tid).number == trial.number
    api.set_user_attrs(study, tid, {"P": 0.5, "skipped": None, "spec": "{}"})
    api.set_system_attr(study, tid, "tgsage:heartbeat", 12.5)
    frozen = api.get_trial(study, tid)
    assert frozen.user_attrs == {"P": 0.5, "spec": "{}"}  # None values are not stored
    assert frozen.system_attrs["tgsage:heartbeat"] == 12.5
    assert api.trial_id(frozen) == tid
    heartbeat = study.kind == "sqlite-heartbeat"  # type: ignore[attr-defined]
    assert api.uses_rdb_heartbeat(storage) is heartbeat
    if study.kind.startswith("sqlite"):  # type: ignore[attr-defined]
        assert isinstance(api.backend(storage), RDBStorage)  # under Optuna's cache wrapper
    if heartbeat:
        api.record_heartbeat(storage, tid)
        optuna.storages.fail_stale_trials(study)  # it just beat: not stale
        assert api.get_trial(study, tid).state == TrialState.RUNNING
    # compare-and-set: the first finisher wins, a second sees the trial finished
    assert api.set_state(study, tid, TrialState.FAIL) is True
    with pytest.raises(UpdateFinishedTrialError):
        api.set_state(study, tid, TrialState.FAIL)
    assert api.get_trial(study, tid).state == TrialState.FAIL


def test_journal_lock_base_is_optunas() -> None:
    from optuna.storages.journal import JournalFileBackend

    base = api.journal_lock_base()
    assert issubclass(FlockLock, base)
    assert {"acquire", "release"} <= set(vars(base))
    JournalFileBackend  # noqa: B018 - the backend that takes such a lock still exists


def test_a_missing_internal_is_a_named_error() -> None:
    class NoStorage:
        pass

    with pytest.raises(api.OptunaAPIChanged, match=r"NoStorage._storage.*Optuna"):
        api.storage_of(NoStorage())  # type: ignore[arg-type]


def test_reseeding_a_sampler_repeats_its_draws() -> None:
    from optuna.distributions import CategoricalDistribution

    dist = CategoricalDistribution(list(range(1000)))
    study = optuna.create_study()
    trial = study.ask()
    for sampler in (
        optuna.samplers.RandomSampler(seed=1),
        api.tpe_startup_sampler(optuna.samplers.TPESampler(seed=1)),
    ):
        draws = []
        for _ in range(2):
            api.reseed(sampler, 42)
            draws.append([sampler.sample_independent(study, trial, "x", dist) for _ in range(5)])
        assert draws[0] == draws[1] and len(set(draws[0])) > 1
    assert isinstance(
        api.tpe_startup_sampler(optuna.samplers.TPESampler()), optuna.samplers.RandomSampler
    )


def test_choices_and_attributes_in_one_operation(study: optuna.Study) -> None:
    """set_params stores what trial.suggest_* would, readable by Optuna as usual."""
    from optuna.distributions import CategoricalDistribution

    from tgsage.optuna_api import create_trial, set_params

    first = study.ask()
    first.suggest_categorical("a", [1, 2, 3])  # an earlier trial fixes the distribution
    study.tell(first, 1.0)
    template = optuna.trial.FrozenTrial(
        number=-1,
        state=TrialState.RUNNING,
        value=None,
        datetime_start=first.datetime_start,
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs={"worker": "w"},
        system_attrs={},
        intermediate_values={},
        trial_id=-1,
    )
    tid, number = create_trial(study, template)
    assert number == 1 and api.get_trial(study, tid).user_attrs == {"worker": "w"}
    dists = {"a": CategoricalDistribution([1, 2, 3]), "b": CategoricalDistribution(["x", "y"])}
    set_params(study, tid, {"a": 3, "b": "y"}, dists, {"spec": "{}", "spec_hash": "h"})
    got = api.get_trial(study, tid)
    assert got.params == {"a": 3, "b": "y"} and got.distributions == dists
    assert got.user_attrs == {"worker": "w", "spec": "{}", "spec_hash": "h"}
    study.tell(number, 2.0)
    assert [t.params["a"] for t in study.get_trials()] == [first.params["a"], 3]


def test_journal_writes_are_one_append(tmp_path: Path) -> None:
    """On the journal, a candidate's choices and its attributes each cost one append (one lock,
    one fsync), not one per choice: counted on the file backend itself."""
    from optuna.distributions import CategoricalDistribution
    from optuna.storages import JournalStorage

    storage = open_storage(f"journal:{tmp_path / 's.journal'}")
    assert isinstance(api.backend(storage), JournalStorage)  # its log file is not a storage
    study = optuna.create_study(storage=storage, direction="maximize")
    tid = api.trial_id(study.ask())
    file_backend = storage._backend  # type: ignore[attr-defined]
    calls: list[int] = []
    append = file_backend.append_logs
    file_backend.append_logs = lambda logs: (calls.append(len(logs)), append(logs))[1]
    dists = {f"c{i}": CategoricalDistribution([0, 1, 2]) for i in range(20)}
    api.set_params(study, tid, {k: i % 3 for i, k in enumerate(dists)}, dists, {"spec": "{}"})
    api.set_user_attrs(study, tid, {"P": 0.5, "TG": 0.25, "examples": 10})
    assert calls == [21, 3]  # two appends, holding 20 + 1 and 3 records
    got = api.get_trial(study, tid)
    assert got.params == {k: i % 3 for i, k in enumerate(dists)}
    assert got.user_attrs == {"spec": "{}", "P": 0.5, "TG": 0.25, "examples": 10}


def test_finish_trial_stores_record_and_state_once(study: optuna.Study) -> None:
    """finish_trial = set_user_attrs + tell's state write; a second finisher is refused and the
    first result stays."""
    trial = study.ask()
    tid = api.trial_id(trial)
    api.finish_trial(study, tid, TrialState.COMPLETE, 0.75, {"P": 0.5, "none": None})
    got = api.get_trial(study, tid)
    assert (got.state, got.value, got.user_attrs) == (TrialState.COMPLETE, 0.75, {"P": 0.5})
    assert got.datetime_complete is not None
    with pytest.raises(UpdateFinishedTrialError):
        api.finish_trial(study, tid, TrialState.FAIL, None, {"P": 0.1})
    again = study.get_trials()[0]  # the journal's later reads do not trip over the refusal
    assert (again.state, again.value, again.user_attrs) == (TrialState.COMPLETE, 0.75, {"P": 0.5})
    failed = api.trial_id(study.ask())
    api.finish_trial(study, failed, TrialState.FAIL, None, {"failure_reason": "diverged"})
    assert api.get_trial(study, failed).state == TrialState.FAIL
    assert api.get_trial(study, failed).values is None


def test_journal_batch_on_a_trial_finished_elsewhere_raises_once(tmp_path: Path) -> None:
    """Two processes on one journal: B finishes A's trial (a sweep), then A writes a batch of
    records to it. A gets UpdateFinishedTrialError once, and its next reads work (the journal
    replays each refused record of A's as an error; all of them are consumed there)."""
    path = f"journal:{tmp_path / 's.journal'}"
    a = optuna.create_study(storage=open_storage(path), study_name="s", direction="maximize")
    b = optuna.load_study(storage=open_storage(path), study_name="s")
    tid = api.trial_id(a.ask())
    assert api.set_state(b, tid, TrialState.FAIL)
    with pytest.raises(UpdateFinishedTrialError):
        api.set_user_attrs(a, tid, {"P": 0.5, "TG": 0.25, "score": 0.75})
    assert [t.state for t in a.get_trials()] == [TrialState.FAIL]
    with pytest.raises(UpdateFinishedTrialError):
        api.finish_trial(a, tid, TrialState.COMPLETE, 1.0, {"P": 0.5, "TG": 0.25})
    assert [(t.state, t.user_attrs) for t in a.get_trials()] == [(TrialState.FAIL, {})]
    a.ask()  # and it goes on writing
    assert len(b.get_trials()) == 2
