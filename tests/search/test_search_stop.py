"""Stopping politely, with real processes and real (tiny) training: SIGTERM to one worker
mid-candidate, SIGINT to the search's process group (Ctrl-C), SIGKILL of the search process
only. Each time the candidate being trained is given back with the same choices (not counted
as a failure), the stopped workers exit within seconds, nothing is left RUNNING, and the search
(resumed where it had to be) ends with exactly N completed candidates.

Training is real because the defect was there: the trainer's ``except Exception`` swallowed the
stop and recorded it as a failed candidate.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from optuna.trial import TrialState
from search_procs import (
    CandidateInTraining,
    alive,
    check_finished,
    trials_of,
    wait_for,
    worker_pids,
)

from tgsage.search import SearchSummary, count_trials, run_search

Factory = Callable[..., dict[str, Any]]
pytestmark = pytest.mark.slow
STORAGES = ["journal", pytest.param("postgres", marks=pytest.mark.postgres)]
TINY = {"name": "synthetic", "n_train": 256, "n_val": 64, "resolution": 16}


def _config(
    sim_config: Factory, request: pytest.FixtureRequest, storage: str, **kw: Any
) -> dict[str, Any]:
    """A search that really trains: tiny nets on tiny synthetic data, seconds per candidate."""
    if storage == "postgres":
        kw["storage"] = request.getfixturevalue("postgres_url")
    return sim_config(
        objective="train",
        score="p",
        train="cpu_demo",
        budget="6000ex",  # about 1 s of training per candidate on an idle core
        train_options={"epochs": 30},
        space_options={"max_layers": 3},
        width_mult=0.25,
        device="cpu",
        torch_threads=1,
        data=TINY,
        # Killed workers are found by their dead pids at once; a heartbeat gap on a loaded
        # machine must not also count as a loss here (that is tested in test_search_faults).
        heartbeat_interval=2,
        grace_period=120,
        **kw,
    )


def _both_workers(cfg: dict[str, Any]) -> list[int] | None:
    pids = worker_pids(Path(cfg["run_dir"]))
    return pids if len(pids) == 2 else None


def _given_back(trials: list[Any], reason: str) -> list[Any]:
    """The interrupted attempts; each is not a failure and has one retry, same choices."""
    stopped = [t for t in trials if "interrupted" in t.user_attrs]
    for t in stopped:
        assert t.state == TrialState.FAIL and t.user_attrs["interrupted"] == reason
        assert "failure_reason" not in t.user_attrs
        (retry,) = [r for r in trials if r.user_attrs.get("retry_of") == t.number]
        assert retry.params == t.params
    counts = count_trials(trials)
    assert counts.failed == 0 and counts.running == 0
    assert counts.interrupted == len(stopped) and counts.lost == len(stopped)
    return stopped


def _check_resumed(cfg: dict[str, Any], n: int, stopped: list[Any]) -> None:
    trials = check_finished(cfg, n)
    given_back = {t.number for t in stopped}
    for t in stopped:
        (retry,) = [r for r in trials if r.user_attrs.get("retry_of") == t.number]
        if retry.number in given_back:
            continue  # the retry was itself given back by the stop; its own retry is checked
        assert retry.state == TrialState.COMPLETE and retry.params == t.params
        assert retry.user_attrs["spec_hash"] == t.user_attrs["spec_hash"]
    assert count_trials(trials).failed == 0


def _why(cfg: dict[str, Any], out: bytes, err: bytes) -> str:
    """What the search process said and logged: why it exited as it did."""
    logs = sorted(Path(cfg["run_dir"]).glob("*.log"))
    tails = "".join(f"--- {p.name}\n" + "".join(p.read_text().splitlines(True)[-15:]) for p in logs)
    return f"stdout: {out.decode()!r}\nstderr: {err.decode()!r}\n{tails}"


def _start_parent(cfg: dict[str, Any], tmp_path: Path, code: str) -> tuple[Path, Any]:
    path = tmp_path / "search.json"
    path.write_text(json.dumps(cfg))
    parent = subprocess.Popen(
        [sys.executable, "-c", code, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, as a shell job would have
    )
    return path, parent


@pytest.mark.parametrize("storage", STORAGES)
def test_sigterm_to_one_worker_gives_its_candidate_back(
    sim_config: Factory, request: pytest.FixtureRequest, storage: str
) -> None:
    n = 4
    cfg = _config(sim_config, request, storage, n_candidates=n, workers=2)
    result: list[SearchSummary] = []
    thread = threading.Thread(target=lambda: result.append(run_search(cfg)))
    thread.start()
    pid, number = wait_for(CandidateInTraining(cfg), timeout=300, every=0.05)
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not alive(pid), timeout=10)  # the stopped worker exits within seconds
    thread.join(timeout=180)
    summary = result[0]
    assert summary.finished and summary.complete == n and summary.failed == 0
    assert sorted(summary.worker_exit_codes) == [0, 128 + signal.SIGTERM]
    trials = trials_of(cfg)
    stopped = _given_back(trials, "SIGTERM")
    assert [t.number for t in stopped] == [number]
    _check_resumed(cfg, n, stopped)  # the other worker finished the search, retry included


@pytest.mark.parametrize("storage", STORAGES)
def test_sigint_to_the_process_group_stops_everything_and_resumes(
    sim_config: Factory, request: pytest.FixtureRequest, storage: str, tmp_path: Path
) -> None:
    n = 6  # candidates left after the one interrupted: the search cannot end first
    cfg = _config(sim_config, request, storage, n_candidates=n, workers=2)
    # A foreground job in a terminal takes Ctrl-C. A test run started in the background of a
    # non-interactive shell (`pytest ... &`, nohup) passes SIGINT down ignored, and ignored it
    # stays in every child, as it should: the search then rightly runs to its end. So the
    # search process here takes SIGINT as a terminal's foreground job would.
    code = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from tgsage.cli import app; app(['search', sys.argv[1], '-q'])"
    )
    path, parent = _start_parent(cfg, tmp_path, code)
    pids = wait_for(lambda: _both_workers(cfg), timeout=120)
    wait_for(CandidateInTraining(cfg), timeout=300, every=0.05)
    os.killpg(parent.pid, signal.SIGINT)  # Ctrl-C in the terminal: the whole foreground group
    out, err = parent.communicate(timeout=30)
    wait_for(lambda: not any(alive(p) for p in pids), timeout=10)
    assert parent.returncode == 130, _why(cfg, out, err)
    lines = [line for line in err.decode().splitlines() if line.strip()]  # one console line
    assert len(lines) == 1 and "interrupted" in lines[0] and "resume" in lines[0], lines
    stopped = _given_back(trials_of(cfg), "SIGINT")
    assert stopped  # the candidate in training was given back
    summary = run_search(path)
    assert summary.resumed and summary.finished and summary.complete == n
    _check_resumed(cfg, n, stopped)


@pytest.mark.parametrize("storage", STORAGES)
def test_sigkill_of_the_search_process_stops_its_workers(
    sim_config: Factory, request: pytest.FixtureRequest, storage: str, tmp_path: Path
) -> None:
    n = 6  # candidates left after the one interrupted: the search cannot end first
    cfg = _config(sim_config, request, storage, n_candidates=n, workers=2)
    code = "import sys; from tgsage.search import run_search; run_search(sys.argv[1])"
    path, parent = _start_parent(cfg, tmp_path, code)
    pids = wait_for(lambda: _both_workers(cfg), timeout=120)
    wait_for(CandidateInTraining(cfg), timeout=300, every=0.05)
    os.kill(parent.pid, signal.SIGKILL)  # the parent only: its workers must notice
    parent.wait()
    died = time.monotonic()
    wait_for(lambda: not any(alive(p) for p in pids), timeout=10)
    assert time.monotonic() - died < 10  # no orphan alive 10 s after its parent died
    stopped = _given_back(trials_of(cfg), "SIGTERM")
    assert stopped
    summary = run_search(path)
    assert summary.resumed and summary.finished and summary.complete == n
    _check_resumed(cfg, n, stopped)


def test_an_ignored_sigint_stays_ignored_while_a_worker_handles_stops() -> None:
    """`nohup tgsage search ... &` ignores Ctrl-C on purpose: the worker's handlers keep it so,
    while SIGTERM still stops the worker."""
    from tgsage.search.stop import StopRequest

    before_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    before_term = signal.getsignal(signal.SIGTERM)
    try:
        stop = StopRequest()
        with stop.installed():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            assert not stop.requested
            os.kill(os.getpid(), signal.SIGTERM)
            wait_for(lambda: stop.requested, timeout=5, every=0.01)
            assert stop.reason == "SIGTERM" and stop.signum == signal.SIGTERM
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) == before_term
    finally:
        signal.signal(signal.SIGINT, before_int)
