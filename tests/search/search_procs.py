"""Helpers for the real-process search tests: read a study, wait, check a finished search."""

from __future__ import annotations

import datetime
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from tgsage import optuna_api as api
from tgsage.search import count_trials, load_config
from tgsage.search.storage import load_study


def trials_of(cfg: dict[str, Any]) -> list[optuna.trial.FrozenTrial]:
    """The study's trials, read through a storage closed right after (a PostgreSQL connection
    pool per call would pile up connections on a server shared by many tests)."""
    c = load_config(cfg)
    study = load_study(c.storage_url, c.name)[0]
    try:
        return study.get_trials()
    finally:
        engine = getattr(api.backend(api.storage_of(study)), "engine", None)
        if engine is not None:
            engine.dispose()


def wait_for(pred: Callable[[], Any], timeout: float = 60.0, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out")


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def worker_pids(run_dir: Path) -> list[int]:
    """Pids of the workers that logged into ``run_dir`` (``worker-<pid>.log``)."""
    return sorted(int(p.stem.split("-")[1]) for p in run_dir.glob("worker-*.log"))


def check_finished(cfg: dict[str, Any], n: int) -> list[optuna.trial.FrozenTrial]:
    """Exactly ``n`` COMPLETE, nothing RUNNING or WAITING, no spec trained twice."""
    trials = trials_of(cfg)
    c = count_trials(trials)
    assert c.complete == n, c
    assert c.running == 0 and c.waiting == 0
    evaluated = [
        t.user_attrs["spec_hash"]
        for t in trials
        if t.state == TrialState.COMPLETE and "reused_from" not in t.user_attrs
    ]
    assert len(evaluated) == len(set(evaluated))
    for t in trials:
        if t.state == TrialState.COMPLETE and "reused_from" in t.user_attrs:
            assert (
                trials[t.user_attrs["reused_from"]].user_attrs["spec_hash"]
                == t.user_attrs["spec_hash"]
            )
    return trials


class CandidateInTraining:
    """A poll for a candidate a signal can safely interrupt mid-evaluation: (worker pid, trial
    number) of a RUNNING candidate of a worker that has completed one before (so its data are
    loaded and the candidate is training), at least 0.3 s old and younger than ``hi`` of a
    typical candidate's duration (so its tell is far). The typical duration is measured from
    the completed candidates (a worker's first, which includes loading, left out), so the
    window fits an idle machine and a loaded one alike. The study is opened once (opening a
    storage per poll is slow and, on PostgreSQL, holds connections)."""

    def __init__(self, cfg: dict[str, Any], min_complete: int = 1, hi: float = 0.6) -> None:
        self.cfg, self.min_complete, self.hi = cfg, min_complete, hi
        self.study: optuna.Study | None = None

    def __call__(self) -> tuple[int, int] | None:
        if self.study is None:
            try:
                c = load_config(self.cfg)
                self.study = load_study(c.storage_url, c.name)[0]
            except Exception:
                return None
        trials = self.study.get_trials(deepcopy=False)
        done = [
            t
            for t in trials
            if t.state == TrialState.COMPLETE
            and t.datetime_start
            and t.datetime_complete
            and "reused_from" not in t.user_attrs
        ]
        if not done or len(done) < self.min_complete:
            return None
        first: dict[str, int] = {}
        for t in sorted(done, key=lambda t: t.number):
            first.setdefault(t.user_attrs["worker"], t.number)
        took = [
            (t.datetime_complete - t.datetime_start).total_seconds()  # type: ignore[operator]
            for t in done
            if t.number != first[t.user_attrs["worker"]]
        ] or [(t.datetime_complete - t.datetime_start).total_seconds() for t in done]  # type: ignore[operator]
        limit, now = max(0.6, self.hi * statistics.median(took)), datetime.datetime.now()
        for t in sorted(trials, key=lambda t: -t.number):
            if t.state != TrialState.RUNNING or "spec_hash" not in t.user_attrs:
                continue
            if t.user_attrs.get("worker") not in first:
                continue
            age = (now - t.datetime_start).total_seconds() if t.datetime_start else 0.0
            if 0.3 <= age < limit:
                return int(t.user_attrs["worker"].rsplit(":", 1)[1]), t.number
        return None
