"""The tracker: Optuna storages opened from a URL, with one clear error when they can't be.

- ``journal:PATH`` (or a plain path): an append-only journal file, the embedded single-machine
  default (many processes on one machine, or on a shared file system).
- ``postgresql://user:pass@host/db``: many machines; Optuna's RDB heartbeats detect lost workers.
- ``sqlite:///file.db``: a single process only (SQLite locks the whole file on every write).

``open_storage`` checks that the storage answers (connects, creates tables) before any work
starts; a missing driver, an unreachable server or an unwritable folder is a ConfigError that
names the URL (password hidden) and the fix.
"""

from __future__ import annotations

import logging
import re
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

from tgsage import optuna_api as api
from tgsage.errors import ConfigError
from tgsage.search.config import SearchConfig, config_from_json, is_journal_url, journal_path

CONFIG_ATTR = "tgsage_config"
log = logging.getLogger("tgsage.search")
warnings.filterwarnings("ignore", message=".*Heartbeat of storage is supposed to be used.*")
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


class FlockLock(api.journal_lock_base()):  # type: ignore[misc]
    """A blocking ``flock`` on ``<journal>.flock`` for the journal file's appends.

    Optuna's default symlink lock polls with a backoff of up to 1 s, which starves writers
    (heartbeats included) when many workers append at once, and leaves a stale lock behind a
    worker killed while holding it. The kernel queues ``flock`` waiters and drops the lock of a
    dead process. (Linux NFS clients emulate ``flock`` with POSIX locks.)
    """

    def __init__(self, journal: str) -> None:
        self._path = journal + ".flock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        import fcntl
        import os

        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        import fcntl
        import os

        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def redact(url: str) -> str:
    """The URL with its password replaced by ***."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def storage_kind(url: str) -> str:
    """ "journal", "postgresql", "sqlite" or another SQLAlchemy dialect name."""
    if is_journal_url(url):
        return "journal"
    return url.split("://", 1)[0].split("+", 1)[0]


def _driver_url(url: str) -> str:
    """Pick an installed PostgreSQL driver: SQLAlchemy 2.1 maps postgresql:// to psycopg 3."""
    if not url.startswith(("postgresql://", "postgres://")):
        return url
    import importlib.util

    rest = url.split("://", 1)[1]
    for module, dialect in (("psycopg", "postgresql+psycopg"), ("psycopg2", "postgresql+psycopg2")):
        if importlib.util.find_spec(module) is not None:
            return f"{dialect}://{rest}"
    return url


def open_storage(
    url: str,
    *,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    retry_callback: Any = None,
    connect_timeout: int = 10,
    busy_wait: float = 60.0,
) -> BaseStorage:
    """An Optuna storage for ``url``; heartbeats are enabled on RDB storages when given.

    A database server with no free connection is asked again for up to ``busy_wait`` seconds
    (many workers starting at once against a shared server) before it is a ConfigError.
    """
    kind = storage_kind(url)
    if kind == "journal":
        path = journal_path(url)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path), FlockLock(str(path))))
        except OSError as exc:
            raise ConfigError(
                f"cannot open the journal file {path}: {exc.strerror or exc}; "
                "choose a writable run_dir or storage path"
            ) from None
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if kind == "postgresql":
        engine_kwargs["connect_args"] = {"connect_timeout": connect_timeout}
    elif kind == "sqlite":
        db = url.removeprefix("sqlite:///")
        if db and db != ":memory:":
            Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
    waited, attempt = 0.0, 0
    while True:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(
                    _driver_url(url),
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period,
                    heartbeat_stale_trial_callback=retry_callback,
                )
        except ImportError:
            hint = (
                "pip install psycopg2-binary (or tgsage[postgres])"
                if kind == "postgresql"
                else f"install the database driver for {kind!r}"
            )
            raise ConfigError(f"no database driver for {redact(url)}: {hint}") from None
        except Exception as exc:  # sqlalchemy errors: unreachable server, bad credentials, ...
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            if _server_full(reason) and waited < busy_wait:
                pause = min(0.5 * 2**attempt, 4.0, busy_wait - waited)  # 0.5, 1, 2, 4, 4, ... s
                attempt += 1
                log.warning("%s has no free connection; trying again in %.1f s", redact(url), pause)
                time.sleep(pause)
                waited += pause
                continue
            raise ConfigError(
                f"cannot reach the database {redact(url)}: {reason}; start the "
                "server or fix the storage URL (nothing was run)"
            ) from None


def _server_full(reason: str) -> bool:
    """The server refused a connection for want of a free slot (PostgreSQL's ``too many clients
    already``, ``remaining connection slots are reserved``; MySQL's ``Too many connections``): a
    passing state when many workers share a server, unlike a wrong host, password or database."""
    low = reason.lower()
    return any(text in low for text in ("too many clients", "connection slots", "too many conn"))


def create_or_load_study(config: SearchConfig, storage: BaseStorage) -> tuple[optuna.Study, bool]:
    """The study for ``config`` (created if new); refuses a changed config under the same name.

    Fields a restart may change (n_candidates, workers, ...) are updated in the stored config.
    Returns the study and whether it already existed.
    """
    existing = config.name in optuna.get_all_study_names(storage)
    study = optuna.create_study(
        storage=storage, study_name=config.name, direction="maximize", load_if_exists=True
    )
    if existing and CONFIG_ATTR in study.user_attrs:
        stored = config_from_json(study.user_attrs[CONFIG_ATTR])
        diff = stored.differences(config)
        if diff:
            raise ConfigError(
                f"study {config.name!r} already exists in {redact(config.storage_url)} with a "
                f"different config ({', '.join(diff)} differ); resume it with the same config "
                "or choose another name"
            )
    study.set_user_attr(CONFIG_ATTR, config.to_json())
    return study, existing


def load_study(
    url: str, study_name: str, storage: BaseStorage | None = None
) -> tuple[optuna.Study, SearchConfig]:
    """An existing tgsage study and its stored config (ConfigError if either is missing)."""
    if storage is None:
        if is_journal_url(url) and not journal_path(url).exists():
            raise ConfigError(f"no journal file at {journal_path(url)}; is the storage URL right?")
        storage = open_storage(url)
    names = optuna.get_all_study_names(storage)
    if study_name not in names:
        raise ConfigError(
            f"no study {study_name!r} in {redact(url)}; studies there: {names or 'none'}"
        )
    study = optuna.load_study(study_name=study_name, storage=storage)
    if CONFIG_ATTR not in study.user_attrs:
        raise ConfigError(
            f"study {study_name!r} in {redact(url)} was not created by "
            "`tgsage search` (it has no stored config)"
        )
    return study, config_from_json(study.user_attrs[CONFIG_ATTR])


def study_names(url: str) -> list[str]:
    return optuna.get_all_study_names(open_storage(url))
