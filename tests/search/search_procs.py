"""Helpers for the real-process search tests: read a study, wait, check a finished search."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from tgsage.search import count_trials, load_config
from tgsage.search.storage import load_study


def trials_of(cfg: dict[str, Any]) -> list[optuna.trial.FrozenTrial]:
    c = load_config(cfg)
    return load_study(c.storage_url, c.name)[0].get_trials()


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
