"""Every use of Optuna's private API in tgsage, in one place.

The search engine and the strategies need a few things Optuna's public API does not give: the
storage behind a study (to write a trial's attributes and state by id, with the storage's
compare-and-set, and a whole trial or several attributes in one operation), a trial's storage
id, the RDB storage behind Optuna's caching wrapper (for its heartbeat table), the journal
file's lock base class (to plug in ``flock``), a sampler's random state (to reseed it per
trial), and TPE's split and Parzen-estimator steps (to split the history once per proposal
instead of once per parameter). Each is one function here; nothing else in tgsage touches an
underscore name of Optuna.
``tests/search/test_optuna_api.py`` exercises every function on the in-memory, journal and
SQLite storages, so an Optuna release that moves one of them fails there, loudly and by name,
instead of somewhere inside a running search (run here with Optuna 5.0; pyproject allows
>=4.0,<6).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.trial import FrozenTrial, TrialState

from tgsage.errors import TgsageError


class OptunaAPIChanged(TgsageError, RuntimeError):
    """An Optuna internal tgsage relies on is gone: this Optuna release is not supported."""


def _need(obj: Any, name: str, what: str) -> Any:
    try:
        return getattr(obj, name)
    except AttributeError:
        raise OptunaAPIChanged(
            f"Optuna {optuna.__version__} has no {what} ({type(obj).__name__}.{name}), which "
            "tgsage's search engine uses; install an Optuna version tgsage supports "
            "(see pyproject.toml)"
        ) from None


def storage_of(study: optuna.Study) -> BaseStorage:
    """The storage a study reads and writes (``Study._storage``)."""
    return _need(study, "_storage", "study storage")


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """A trial's id in its storage (``_trial_id``), which the storage's methods take."""
    return int(_need(trial, "_trial_id", "trial storage id"))


def backend(storage: BaseStorage) -> BaseStorage:
    """The storage under Optuna's ``_CachedStorage`` wrapper (RDB storages are wrapped).

    Only a wrapped *storage* is unwrapped: a ``JournalStorage``'s ``_backend`` is its log file
    (not a storage), and taking it for the storage sent every journal write down the slow path
    of one append and one fsync per choice."""
    inner = getattr(storage, "_backend", None)
    return inner if isinstance(inner, BaseStorage) else storage


def uses_rdb_heartbeat(storage: BaseStorage) -> bool:
    """True for an RDB storage with heartbeats on (Optuna's heartbeat table detects loss)."""
    b = backend(storage)
    return isinstance(b, RDBStorage) and b.heartbeat_interval is not None


def get_trial(study: optuna.Study, tid: int) -> FrozenTrial:
    return storage_of(study).get_trial(tid)


def study_id(study: optuna.Study) -> int:
    """A study's id in its storage (``Study._study_id``)."""
    return int(_need(study, "_study_id", "study storage id"))


def create_trial(study: optuna.Study, template: FrozenTrial) -> tuple[int, int]:
    """Write a whole trial - state, params with their distributions, attributes - in one storage
    operation (one transaction on an RDB storage, one journal record): what Optuna does for
    ``Study.add_trial``, here returning the new trial's ``(id, number)``."""
    storage = storage_of(study)
    tid = storage.create_new_trial(study_id(study), template_trial=template)
    return tid, storage.get_trial_number_from_id(tid)


def set_params(
    study: optuna.Study,
    tid: int,
    params: Mapping[str, Any],
    distributions: Mapping[str, Any],
    attrs: Mapping[str, Any] | None = None,
) -> None:
    """Store a candidate's choices (``params`` in their external form, with ``distributions``)
    and user ``attrs`` in trial ``tid`` in one storage operation where the storage allows (one
    RDB transaction, one journal append) - what ``trial.suggest_*`` writes one per choice."""
    attrs = {k: v for k, v in (attrs or {}).items() if v is not None}
    internal = {k: distributions[k].to_internal_repr(v) for k, v in params.items()}
    storage = storage_of(study)
    b = backend(storage)
    if isinstance(b, JournalStorage):
        _journal_write(b, tid, internal, distributions, attrs)
    elif isinstance(b, RDBStorage):
        _rdb_write(storage, b, study, tid, internal, distributions, attrs)
    else:
        for k, v in internal.items():
            storage.set_trial_param(tid, k, v, distributions[k])
        set_user_attrs(study, tid, attrs)


def set_user_attrs(study: optuna.Study, tid: int, attrs: Mapping[str, Any]) -> None:
    """Store ``attrs`` (None values skipped) as user attributes of trial ``tid``, all in one
    storage operation where the storage allows (one RDB transaction, one journal append with
    one fsync) rather than one per attribute."""
    attrs = {k: v for k, v in attrs.items() if v is not None}
    storage = storage_of(study)
    b = backend(storage)
    if len(attrs) > 1 and isinstance(b, JournalStorage):
        _journal_write(b, tid, {}, {}, attrs)
    elif len(attrs) > 1 and isinstance(b, RDBStorage):
        _rdb_write(storage, b, study, tid, {}, {}, attrs)
    else:
        for key, value in attrs.items():
            storage.set_trial_user_attr(tid, key, value)


def _journal_write(
    storage: JournalStorage,
    tid: int,
    internal: Mapping[str, Any],
    distributions: Mapping[str, Any],
    attrs: Mapping[str, Any],
    finish: tuple[TrialState, list[float] | None] | None = None,
) -> None:
    """One append (one lock, one write, one fsync) of the journal records Optuna would write one
    by one (SET_TRIAL_PARAM, SET_TRIAL_USER_ATTR, then SET_TRIAL_STATE_VALUES for ``finish``);
    the journal replays them exactly so.

    If another process finished the trial first, replaying each record of ours raises
    ``UpdateFinishedTrialError`` and consumes it; all of them are consumed here and the error
    raised once, so no later read of the journal trips over the rest of the batch."""
    import datetime

    from optuna.distributions import distribution_to_json
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.storages.journal._storage import JournalOperation

    with _need(storage, "_thread_lock", "journal thread lock"):
        worker = _need(storage, "_replay_result", "journal replay state").worker_id
        head = {"worker_id": worker, "trial_id": tid}
        logs = [
            head
            | {
                "op_code": JournalOperation.SET_TRIAL_PARAM,
                "param_name": name,
                "param_value_internal": value,
                "distribution": distribution_to_json(distributions[name]),
            }
            for name, value in internal.items()
        ] + [
            head | {"op_code": JournalOperation.SET_TRIAL_USER_ATTR, "user_attr": {key: value}}
            for key, value in attrs.items()
        ]
        if finish is not None:
            now = datetime.datetime.now(tz=datetime.UTC)
            logs.append(
                head
                | {
                    "op_code": JournalOperation.SET_TRIAL_STATE_VALUES,
                    "state": finish[0],
                    "values": finish[1],
                    "datetime_complete": now.isoformat(timespec="microseconds"),
                }
            )
        _need(storage, "_backend", "journal backend").append_logs(logs)
        sync = _need(storage, "_sync_with_backend", "journal sync")
        finished_first: UpdateFinishedTrialError | None = None
        for _ in range(len(logs) + 1):
            try:
                sync()
                break
            except UpdateFinishedTrialError as exc:
                finished_first = finished_first or exc
        if finished_first is not None:
            raise finished_first


def finish_trial(
    study: optuna.Study,
    tid: int,
    state: TrialState,
    value: float | None,
    attrs: Mapping[str, Any],
) -> None:
    """Store user ``attrs`` (None values skipped) and finish trial ``tid`` in ``state`` (with
    ``value`` when COMPLETE) in one storage operation where the storage allows (one RDB
    transaction, one journal append): ``set_user_attrs`` then ``Study.tell``'s state write,
    without ``tell`` reading the trial back. ``UpdateFinishedTrialError`` when another process
    finished the trial first (it keeps that state); the sampler's ``after_trial`` is the
    caller's to run."""
    attrs = {k: v for k, v in attrs.items() if v is not None}
    values = None if value is None else [float(value)]
    storage = storage_of(study)
    b = backend(storage)
    if isinstance(b, JournalStorage):
        _journal_write(b, tid, {}, {}, attrs, finish=(state, values))
    elif isinstance(b, RDBStorage):
        _rdb_write(storage, b, study, tid, {}, {}, attrs, finish=(state, values))
    else:
        set_user_attrs(study, tid, attrs)
        if not storage.set_trial_state_values(tid, state, values):
            from optuna.exceptions import UpdateFinishedTrialError

            raise UpdateFinishedTrialError(f"trial id {tid} was finished by another process")


def _rdb_write(
    storage: BaseStorage,
    rdb: RDBStorage,
    study: optuna.Study,
    tid: int,
    internal: Mapping[str, Any],
    distributions: Mapping[str, Any],
    attrs: Mapping[str, Any],
    finish: tuple[TrialState, list[float] | None] | None = None,
) -> None:
    """What Optuna's ``set_trial_param`` and ``set_trial_user_attr`` write (and, for
    ``finish``, ``set_trial_state_values``: the trial is then locked as Optuna locks it there), in one session and
    one commit: the trial is read and checked updatable once (Optuna reads it again for every
    choice and attribute), the choices are one multi-row insert and the attributes one
    multi-row upsert on PostgreSQL, SQLite and MySQL (other dialects: Optuna's per-attribute
    path, same session). A choice's distribution is checked against the study's earlier one as
    Optuna does; the caching wrapper's record of each parameter's distribution (which spares
    that query) is kept up to date as its own ``set_trial_param`` does."""
    import json

    from optuna.distributions import (
        check_distribution_compatibility,
        distribution_to_json,
        json_to_distribution,
    )
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    known: dict[str, Any] = {}
    seen: Any = {}  # the wrapper's cached trials: their distributions spare the query below
    cache = getattr(storage, "_studies", None)  # _CachedStorage: distributions seen per study
    if cache is not None and study_id(study) in cache:
        known = cache[study_id(study)].param_distribution
        seen = getattr(cache[study_id(study)], "trials", {})
    find = _need(models.TrialModel, "find_or_raise_by_id", "RDB trial lookup")
    check = _need(rdb, "check_trial_is_updatable", "RDB updatable check")
    with _create_scoped_session(rdb.scoped_session, True) as session:
        trial = find(tid, session, for_update=finish is not None)
        check(tid, trial.state)
        for name in internal:
            previous = known.get(name)
            if previous is None:  # a stored trial's (all were checked against the first)
                previous = next(
                    (t.distributions[name] for t in seen.values() if name in t.distributions),
                    None,
                )
            if previous is None:  # a name this process has not seen: the study's first record
                row = (
                    session.query(models.TrialParamModel.distribution_json)
                    .join(models.TrialModel)
                    .filter(models.TrialModel.study_id == trial.study_id)
                    .filter(models.TrialParamModel.param_name == name)
                    .first()
                )
                previous = json_to_distribution(row[0]) if row is not None else None
            if previous is not None:
                check_distribution_compatibility(previous, distributions[name])
        if internal:
            session.execute(
                models.TrialParamModel.__table__.insert(),
                [
                    {
                        "trial_id": tid,
                        "param_name": name,
                        "param_value": value,
                        "distribution_json": distribution_to_json(distributions[name]),
                    }
                    for name, value in internal.items()
                ],
            )
        if attrs:
            model = models.TrialUserAttributeModel
            rows = [
                {"trial_id": tid, "key": k, "value_json": json.dumps(v)} for k, v in attrs.items()
            ]
            upsert = _upsert(rdb.engine.name, model, rows)
            if upsert is not None:
                session.execute(upsert)
            else:
                set_attr = _need(rdb, "_set_trial_attr_without_commit", "RDB attribute upsert")
                for key, value in attrs.items():
                    set_attr(session, model, tid, key, value)
        if finish is not None:
            import datetime

            state, values = finish
            set_value = _need(rdb, "_set_trial_value_without_commit", "RDB value write")
            for objective, v in enumerate(values or []):
                set_value(session, trial, objective, v)
            trial.state = state
            trial.datetime_complete = datetime.datetime.now()
    for name in internal:
        known.setdefault(name, distributions[name])


def _upsert(dialect: str, model: Any, rows: list[dict[str, Any]]) -> Any:
    """One multi-row insert-or-update of attribute ``rows`` (keyed by trial and key), as
    Optuna's per-attribute statement for the dialect; None where the dialect has none."""
    import sqlite3

    if dialect == "postgresql" or (dialect == "sqlite" and sqlite3.sqlite_version_info >= (3, 24)):
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        stmt = insert(model).values(rows)
        return stmt.on_conflict_do_update(
            index_elements=[model.trial_id, model.key],
            set_={"value_json": stmt.excluded.value_json},
        )
    if dialect == "mysql":
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        stmt = mysql_insert(model).values(rows)
        return stmt.on_duplicate_key_update(value_json=stmt.inserted.value_json)
    return None


def set_system_attr(study: optuna.Study, tid: int, key: str, value: Any) -> None:
    storage_of(study).set_trial_system_attr(tid, key, value)


def set_state(study: optuna.Study, tid: int, state: TrialState) -> bool:
    """Finish trial ``tid`` in ``state`` through the storage's compare-and-set: False (or
    ``UpdateFinishedTrialError``) when another process finished it first."""
    return bool(storage_of(study).set_trial_state_values(tid, state))


def record_heartbeat(storage: BaseStorage, tid: int) -> None:
    """One beat in Optuna's RDB heartbeat table."""
    _need(storage, "record_heartbeat", "heartbeat support")(tid)


def reseed(sampler: Any, seed: int) -> None:
    """Reseed an Optuna sampler's random state (``_rng``: a ``LazyRandomState`` in Optuna >= 3.1,
    a bare ``RandomState`` before)."""
    rng = _need(sampler, "_rng", "sampler random state")
    getattr(rng, "rng", rng).seed(seed)


def tpe_startup_sampler(sampler: optuna.samplers.TPESampler) -> optuna.samplers.BaseSampler:
    """The RandomSampler a TPESampler draws its start-up candidates from (``_random_sampler``)."""
    return _need(sampler, "_random_sampler", "TPE start-up sampler")


def tpe_settings(sampler: optuna.samplers.TPESampler) -> tuple[Any, int, bool]:
    """A TPESampler's ``(gamma, n_startup_trials, constant_liar)``."""
    return (
        _need(sampler, "_gamma", "TPE gamma"),
        int(_need(sampler, "_n_startup_trials", "TPE start-up count")),
        bool(_need(sampler, "_constant_liar", "TPE constant liar")),
    )


def tpe_split(
    study: optuna.Study, trials: list[FrozenTrial], n_below: int
) -> tuple[list[FrozenTrial], list[FrozenTrial]]:
    """TPE's split of ``trials`` into the good (below) and the rest, each in number order."""
    try:
        from optuna.samplers._tpe.sampler import _split_trials
    except ImportError:
        raise OptunaAPIChanged(
            f"Optuna {optuna.__version__} moved TPE's _split_trials; install an Optuna version "
            "tgsage supports"
        ) from None
    return _split_trials(study, trials, n_below)


def tpe_sample_one(
    sampler: optuna.samplers.TPESampler,
    name: str,
    distribution: Any,
    below: np.ndarray,
    above: np.ndarray,
) -> Any:
    """One parameter drawn by TPE from the internal-representation observations of the good and
    the other trials: the Parzen estimators, the EI candidates and their comparison exactly as
    ``TPESampler`` builds them (single objective), minus its per-parameter pass over the study."""
    space = {name: distribution}
    cls = _need(sampler, "_parzen_estimator_cls", "TPE Parzen estimator")
    params = _need(sampler, "_parzen_estimator_parameters", "TPE estimator settings")
    mpe_below = cls({name: below}, space, params)
    mpe_above = cls({name: above}, space, params)
    rng = _need(sampler, "_rng", "sampler random state").rng
    samples = mpe_below.sample(rng, int(_need(sampler, "_n_ei_candidates", "TPE EI count")))
    acquisition = _need(sampler, "_compute_acquisition_func", "TPE acquisition")
    best = _need(type(sampler), "_compare", "TPE comparison")(
        samples, acquisition(samples, mpe_below, mpe_above)
    )
    return distribution.to_external_repr(best[name])


def journal_lock_base() -> type:
    """The base class of a journal file lock (``optuna.storages.journal._file``)."""
    try:
        from optuna.storages.journal._file import BaseJournalFileLock
    except ImportError:
        raise OptunaAPIChanged(
            f"Optuna {optuna.__version__} moved BaseJournalFileLock "
            "(optuna.storages.journal._file); install an Optuna version tgsage supports"
        ) from None
    return BaseJournalFileLock


__all__ = [
    "OptunaAPIChanged",
    "backend",
    "create_trial",
    "finish_trial",
    "get_trial",
    "journal_lock_base",
    "record_heartbeat",
    "reseed",
    "set_params",
    "set_state",
    "set_system_attr",
    "set_user_attrs",
    "storage_of",
    "study_id",
    "tpe_sample_one",
    "tpe_settings",
    "tpe_split",
    "tpe_startup_sampler",
    "trial_id",
    "uses_rdb_heartbeat",
]
