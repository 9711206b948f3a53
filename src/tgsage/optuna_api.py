"""Every use of Optuna's private API in tgsage, in one place.

The search engine and the strategies need a few things Optuna's public API does not give: the
storage behind a study (to write a trial's attributes and state by id, with the storage's
compare-and-set), a trial's storage id, the RDB storage behind Optuna's caching wrapper (for
its heartbeat table), the journal file's lock base class (to plug in ``flock``), and a
sampler's random state (to reseed it per trial). Each is one function here; nothing else in
tgsage touches an underscore name of Optuna.
``tests/search/test_optuna_api.py`` exercises every function on the in-memory, journal and
SQLite storages, so an Optuna release that moves one of them fails there, loudly and by name,
instead of somewhere inside a running search (run here with Optuna 5.0; pyproject allows
>=4.0,<6).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna
from optuna.storages import BaseStorage, RDBStorage
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
    """The storage under Optuna's ``_CachedStorage`` wrapper (RDB storages are wrapped)."""
    return getattr(storage, "_backend", storage)


def uses_rdb_heartbeat(storage: BaseStorage) -> bool:
    """True for an RDB storage with heartbeats on (Optuna's heartbeat table detects loss)."""
    b = backend(storage)
    return isinstance(b, RDBStorage) and b.heartbeat_interval is not None


def get_trial(study: optuna.Study, tid: int) -> FrozenTrial:
    return storage_of(study).get_trial(tid)


def set_user_attrs(study: optuna.Study, tid: int, attrs: Mapping[str, Any]) -> None:
    """Store ``attrs`` (None values skipped) as user attributes of trial ``tid``."""
    storage = storage_of(study)
    for key, value in attrs.items():
        if value is not None:
            storage.set_trial_user_attr(tid, key, value)


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
    "get_trial",
    "journal_lock_base",
    "record_heartbeat",
    "reseed",
    "set_state",
    "set_system_attr",
    "set_user_attrs",
    "storage_of",
    "tpe_startup_sampler",
    "trial_id",
    "uses_rdb_heartbeat",
]
