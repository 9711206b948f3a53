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
) -> None:
    """One append (one lock, one write, one fsync) of the journal records Optuna would write one
    by one (SET_TRIAL_PARAM, SET_TRIAL_USER_ATTR); the journal replays them exactly so."""
    from optuna.distributions import distribution_to_json
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
        _need(storage, "_backend", "journal backend").append_logs(logs)
        _need(storage, "_sync_with_backend", "journal sync")()


def _rdb_write(
    storage: BaseStorage,
    rdb: RDBStorage,
    study: optuna.Study,
    tid: int,
    internal: Mapping[str, Any],
    distributions: Mapping[str, Any],
    attrs: Mapping[str, Any],
) -> None:
    """The inserts and upserts Optuna does per choice and per attribute, in one session and one
    commit; the caching wrapper's record of each parameter's distribution is kept up to date as
    its own ``set_trial_param`` does."""
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    known: dict[str, Any] = {}
    cache = getattr(storage, "_studies", None)  # _CachedStorage: distributions seen per study
    if cache is not None and study_id(study) in cache:
        known = cache[study_id(study)].param_distribution
    set_param = _need(rdb, "_set_trial_param_without_commit", "RDB parameter insert")
    set_attr = _need(rdb, "_set_trial_attr_without_commit", "RDB attribute upsert")
    with _create_scoped_session(rdb.scoped_session, True) as session:
        for name, value in internal.items():
            set_param(session, tid, name, value, distributions[name], known.get(name))
        for key, value in attrs.items():
            set_attr(session, models.TrialUserAttributeModel, tid, key, value)
    for name in internal:
        known.setdefault(name, distributions[name])


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
