"""Lost workers: heartbeats, the stale-candidate sweep, and retries with the same choices.

A worker beats while it evaluates a candidate. On an RDB storage (PostgreSQL) that is Optuna's
own heartbeat table and :func:`optuna.storages.fail_stale_trials`; the journal file has no
heartbeat support in Optuna 5, so the beat is a trial system attribute (``tgsage:heartbeat``,
epoch seconds) and :func:`sweep_stale` fails RUNNING trials whose last beat (or start) is older
than the grace period. Either way the trial is set to FAIL through the storage's
compare-and-set, so of several workers sweeping at once exactly one succeeds, and only that one
queues the retry (a WAITING trial with the same params, ``retry_of`` = the lost trial's number).

A RUNNING trial whose ``worker`` is a process on this host that no longer exists is lost at
once (no grace period) when ``local_pid_check`` is on: that is how a restarted search picks up
the candidates of its own killed workers immediately.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import fail_stale_trials
from optuna.trial import FrozenTrial, TrialState

from tgsage import optuna_api as api
from tgsage.search.records import HEARTBEAT_ATTR

log = logging.getLogger("tgsage.search")
HOST = socket.gethostname()


def worker_name(pid: int | None = None) -> str:
    return f"{HOST}:{pid if pid is not None else os.getpid()}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def local_dead(t: FrozenTrial) -> bool:
    """True if the trial's worker is a process on this host that no longer runs."""
    host, _, pid = str(t.user_attrs.get("worker", "")).rpartition(":")
    if host != HOST or not pid.isdigit() or int(pid) == os.getpid():
        return False
    return not pid_alive(int(pid))


def enqueue_retry(
    study: optuna.Study, lost: FrozenTrial, max_retries: int, counted: bool = True
) -> bool:
    """Queue ``lost`` again with the same choices; False when it was retried too often.

    ``counted=False`` (a candidate given back by a worker asked to stop) always queues it and
    does not count the attempt against ``max_retries``, which guards against candidates that
    kill their worker."""
    previous = list(lost.system_attrs.get("retry_history", []))
    history = [*previous, lost.number] if counted else previous
    if counted and len(history) > max_retries:
        log.warning("trial %d lost %d times; not retried again", lost.number, len(history))
        return False
    system = {
        "failed_trial": lost.system_attrs.get("failed_trial", lost.number),
        "retry_history": history,
    }
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            params=lost.params,
            distributions=lost.distributions,
            user_attrs={"retry_of": lost.number},
            system_attrs=system,
        )
    )
    return True


def fail_and_retry(study: optuna.Study, trial_id: int, max_retries: int) -> bool:
    """FAIL a lost RUNNING trial (compare-and-set) and, if this call won, queue its retry."""
    try:
        if not api.set_state(study, trial_id, TrialState.FAIL):
            return False
    except UpdateFinishedTrialError:
        return False  # finished meanwhile, or another worker swept it first
    lost = api.get_trial(study, trial_id)
    log.warning(
        "trial %d lost (worker %s); retrying it", lost.number, lost.user_attrs.get("worker", "?")
    )
    enqueue_retry(study, lost, max_retries)
    return True


def rdb_retry_callback(max_retries: int) -> Callable[[optuna.Study, FrozenTrial], None]:
    """The ``heartbeat_stale_trial_callback`` for RDBStorage (Optuna already failed the trial)."""

    def callback(study: optuna.Study, trial: FrozenTrial) -> None:
        log.warning(
            "trial %d lost (no heartbeat from %s); retrying it",
            trial.number,
            trial.user_attrs.get("worker", "?"),
        )
        enqueue_retry(study, trial, max_retries)

    return callback


def sweep_stale(
    study: optuna.Study,
    trials: Sequence[FrozenTrial],
    grace_period: float,
    max_retries: int,
    local_pid_check: bool = True,
    heartbeats: bool = True,
) -> int:
    """Fail and retry lost RUNNING trials; returns how many this call swept.

    ``heartbeats=False`` skips the (RDB) heartbeat-table query and checks local pids only.
    """
    swept = 0
    rdb = api.uses_rdb_heartbeat(api.storage_of(study))
    if rdb and heartbeats:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "experimental"
            fail_stale_trials(study)  # Optuna's heartbeat table; our callback queues retries
    now_epoch, now_local, me = time.time(), datetime.now(), worker_name()
    for t in trials:
        if t.state != TrialState.RUNNING:
            continue
        if t.user_attrs.get("worker") == me:
            continue  # this very process is alive
        stale = local_pid_check and local_dead(t)
        if not stale and not rdb:
            beat = t.system_attrs.get(HEARTBEAT_ATTR)
            if beat is not None:
                age = now_epoch - float(beat)
            elif t.datetime_start is not None:
                age = (now_local - t.datetime_start).total_seconds()
            else:
                age = 0.0
            stale = age > grace_period
        if stale:
            swept += fail_and_retry(study, api.trial_id(t), max_retries)
    return swept


class Heartbeat:
    """A daemon thread that beats for one trial until stopped."""

    def __init__(self, study: optuna.Study, trial_id: int, interval: float) -> None:
        self.study, self.trial_id, self.interval = study, trial_id, interval
        self.rdb = api.uses_rdb_heartbeat(api.storage_of(study))
        self.lost = False  # set when the trial was finished by someone else (swept)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="tgsage-heartbeat")

    def beat(self) -> None:
        try:
            if self.rdb:
                api.record_heartbeat(api.storage_of(self.study), self.trial_id)
            else:
                api.set_system_attr(self.study, self.trial_id, HEARTBEAT_ATTR, time.time())
        except UpdateFinishedTrialError:
            self.lost = True
            self._stop.set()
        except Exception as exc:  # a transient storage error must not kill the worker
            log.warning("heartbeat of trial id %d failed: %s", self.trial_id, exc)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()

    def start(self) -> Heartbeat:
        self.beat()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


@contextlib.contextmanager
def heartbeat(study: optuna.Study, trial_id: int, interval: float) -> Iterator[Heartbeat]:
    hb = Heartbeat(study, trial_id, interval).start()
    try:
        yield hb
    finally:
        hb.stop()
