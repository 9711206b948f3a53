"""Cascades in real processes: a worker killed with SIGKILL mid-rung (journal and PostgreSQL),
and a whole cascade killed mid-rung and resumed. Nothing may be lost or trained twice, and
every rung must end with exactly its planned number of candidates."""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from tgsage.search import SearchSummary, load_config, run_search
from tgsage.search.cascade import cascade_state, make_plan
from tgsage.search.storage import load_study

Factory = Callable[..., dict[str, Any]]
pytestmark = pytest.mark.slow
BUDGETS = ["1000ex", "3000ex", "9000ex"]


def _trials(cfg: dict[str, Any]) -> list[optuna.trial.FrozenTrial]:
    c = load_config(cfg)
    return load_study(c.storage_url, c.name)[0].get_trials()


def _wait_for(pred: Callable[[], Any], timeout: float = 300.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


def _training_worker(cfg: dict[str, Any], max_age: float = 1.5) -> tuple[int, int] | None:
    """(pid, trial number) of a worker that has just started training a survivor: at most
    ``max_age`` seconds before this poll began to read (a slow read on a loaded machine must not
    make a trial look younger than it is), so the kill lands mid-training."""
    now = datetime.datetime.now()
    try:
        trials = _trials(cfg)
    except Exception:
        return None

    def first_holder(t: optuna.trial.FrozenTrial) -> bool:
        """Not a duplicate promotion (those are closed as surplus when claimed)."""
        key = (t.user_attrs["spec_hash"], t.user_attrs.get("budget"))
        return "surplus" not in t.user_attrs and not any(
            o.number < t.number
            and (o.user_attrs.get("spec_hash"), o.user_attrs.get("budget")) == key
            and "surplus" not in o.user_attrs
            and o.state != TrialState.FAIL
            for o in trials
        )

    young = [
        t
        for t in trials
        if t.state == TrialState.RUNNING
        and int(t.user_attrs.get("rung", 0)) >= 1
        and "spec_hash" in t.user_attrs
        and t.datetime_start is not None
        and (now - t.datetime_start).total_seconds() < max_age
        and first_holder(t)
    ]
    if not young:
        return None
    t = max(young, key=lambda t: t.datetime_start)
    return int(t.user_attrs["worker"].rsplit(":", 1)[1]), t.number


def _check(cfg: dict[str, Any]) -> list[optuna.trial.FrozenTrial]:
    """Exact rung sizes, nothing left running or queued, no (cell, budget) evaluated twice."""
    c = load_config(cfg)
    trials = _trials(cfg)
    plan = make_plan(c.cascade, c.n_candidates, c.score)
    state = cascade_state(trials, plan, c.max_retries)
    assert state.finished
    for rung in plan.all_rungs():
        assert state.rung(*rung.role).complete == rung.size, rung
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    evaluated = Counter(
        (t.user_attrs["spec_hash"], t.user_attrs.get("budget"))
        for t in trials
        if t.state == TrialState.COMPLETE and "reused_from" not in t.user_attrs
    )
    assert max(evaluated.values()) == 1
    return trials


def _kill_mid_rung(sim_config: Factory, **storage: Any) -> None:
    cfg = sim_config(
        space="nb201",
        n_candidates=24,
        workers=3,
        simulate={"sleep": 5.0, "examples": 1000},
        local_pid_check=False,  # exercise heartbeats, not pid checks
        grace_period=10,  # a live worker's heartbeat may lag seconds on a loaded machine
        cascade={"budgets": BUDGETS, "keep": [6, 3, 2]},
        **storage,
    )
    result: list[SearchSummary] = []
    thread = threading.Thread(target=lambda: result.append(run_search(cfg)))
    thread.start()
    # within half of a simulated training's 5 s: the kill lands mid-training even under load
    pid, number = _wait_for(lambda: _training_worker(cfg, max_age=2.5))
    os.kill(pid, signal.SIGKILL)
    thread.join(timeout=300)
    assert result and sorted(result[0].worker_exit_codes) == [-9, 0, 0]
    trials = _check(cfg)
    killed = trials[number]
    assert killed.state == TrialState.FAIL and "failure_reason" not in killed.user_attrs
    # its survivor was trained again (once) at the same rung, and finished there
    again = [
        t
        for t in trials
        if t.state == TrialState.COMPLETE
        and t.user_attrs.get("spec_hash") == killed.user_attrs["spec_hash"]
        and t.user_attrs.get("budget") == killed.user_attrs["budget"]
    ]
    assert len(again) == 1 and again[0].number > number
    # cost: the plan's examples (a continued survivor pays the difference), plus whatever the
    # killed attempt had recorded (nothing, unless the kill landed between its record and tell)
    spent = sum(int(t.user_attrs.get("examples", 0)) for t in trials)
    assert spent == 6 * 1000 + 3 * 2000 + 2 * 6000 + int(killed.user_attrs.get("examples", 0))


def test_cascade_worker_killed_mid_rung_on_journal(sim_config: Factory) -> None:
    _kill_mid_rung(sim_config)


@pytest.mark.postgres
def test_cascade_worker_killed_mid_rung_on_postgres(sim_config: Factory, postgres_url: str) -> None:
    _kill_mid_rung(sim_config, storage=postgres_url)


def test_whole_cascade_killed_mid_rung_and_resumed(sim_config: Factory, tmp_path: Path) -> None:
    cfg = sim_config(
        space="nb201",
        n_candidates=24,
        workers=2,
        simulate={"sleep": 1.0, "examples": 1000},
        cascade={"budgets": BUDGETS, "keep": [6, 3, 2]},
    )
    path = tmp_path / "search.json"
    path.write_text(json.dumps(cfg))
    code = "import sys; from tgsage.search import run_search; run_search(sys.argv[1])"
    parent = subprocess.Popen([sys.executable, "-c", code, str(path)])
    # any survivor in training will do (everything is killed at once); a narrow "just
    # started" window can be missed entirely when a read takes seconds under load
    _wait_for(lambda: _training_worker(cfg, max_age=10.0))
    run_dir = Path(cfg["run_dir"])
    pids = [int(p.stem.split("-")[1]) for p in run_dir.glob("worker-*.log")]
    for pid in [*pids, parent.pid]:  # everything at once: no clean-up possible
        os.kill(pid, signal.SIGKILL)
    parent.wait()
    summary = run_search(path)
    assert summary.resumed
    trials = _check(cfg)
    assert any(t.state == TrialState.FAIL for t in trials)  # the killed attempts
    assert sum(int(t.user_attrs.get("examples", 0)) for t in trials) >= 6 * 1000 + 3 * 2000
