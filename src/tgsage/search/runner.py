"""``run_search``: check everything, open the tracker, start N local workers, watch them.

Before any work starts the config is validated, the storage opened (an unreachable database is
one ConfigError), the space, strategy, data set name, training preset and teacher file checked.
A study that already exists under the same name is resumed (its stale candidates are retried,
only the missing ones are run); a different config under the same name is refused.

Workers are separate processes (``python -m tgsage.search``) so a crash or ``kill -9`` of one
never takes the others down; each logs to ``<run_dir>/worker-<pid>.log``, the search itself to
``<run_dir>/search.log``. While they run, the parent reads a :class:`SearchStatus` snapshot
from storage every ``poll`` seconds and hands it to ``on_status`` (the command line draws a
progress bar and the live top-5 from it; the library itself draws nothing).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tgsage.errors import ConfigError, TgsageError
from tgsage.search.config import SearchConfig, load_config
from tgsage.search.faults import rdb_retry_callback, sweep_stale
from tgsage.search.objective import check_objective
from tgsage.search.records import Row
from tgsage.search.status import SearchStatus, status_of, summary_line
from tgsage.search.storage import create_or_load_study, open_storage, redact, storage_kind
from tgsage.search.strategy import make_sampler

log = logging.getLogger("tgsage.search")


class SearchInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) stopped :func:`run_search`: the workers were stopped, their candidates
    queued again (same choices), and the message says how far the search got."""


@dataclass
class SearchSummary:
    """What a search run did (``complete`` counts the whole study, resumed runs included)."""

    study: str
    storage: str
    run_dir: str
    n_candidates: int
    complete: int
    failed: int
    lost: int
    retried: int
    reused: int
    surplus: int
    cost_examples: int
    seconds: float
    resumed: bool
    finished: bool
    best: Row | None = None
    worker_exit_codes: list[int] = field(default_factory=list)
    message: str = ""
    #: the counts in one line (:func:`tgsage.search.status.summary_line`); a cascade's counts
    #: rung trials against its planned rung sizes, not against ``n_candidates``
    line: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def preflight(config: SearchConfig) -> Any:
    """Every cheap check before work starts; returns the opened storage."""
    from tgsage.spaces import get_space

    space = get_space(config.space, **config.space_options)
    try:
        make_sampler(config.strategy, space, config.seed, **config.strategy_options)
    except TgsageError:
        raise
    except Exception as exc:
        raise ConfigError(f"strategy_options: {exc}") from None
    check_objective(config)
    _check_writable(config.resolved_run_dir)
    rdb = storage_kind(config.storage_url) != "journal"
    return open_storage(
        config.storage_url,
        heartbeat_interval=config.heartbeat_interval if rdb else None,
        grace_period=config.grace_period if rdb else None,
        retry_callback=rdb_retry_callback(config.max_retries) if rdb else None,
    )


def _check_writable(run_dir: Path) -> None:
    """The run folder takes the logs (and the default journal): refuse a read-only one before
    anything starts, rather than failing on the first log line."""
    existing = run_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    targets = [existing] + [
        run_dir / f for f in ("search.log", "search.journal", "workers.stderr") if run_dir.exists()
    ]
    for path in targets:
        if path.exists() and not os.access(path, os.W_OK):
            raise ConfigError(
                f"{'run folder' if path.is_dir() else 'file'} {path} is not writable (a search "
                "writes its logs and journal there); make it writable or choose another run_dir"
            )


def _setup_logging(run_dir: Path) -> logging.Handler:
    run_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(run_dir / "search.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def worker_command(config: SearchConfig, threads: int) -> list[str]:
    """The command line of one local worker process (read back by :func:`worker_process`)."""
    return [
        sys.executable,
        "-m",
        "tgsage.search",
        "--storage",
        config.storage_url,
        "--study",
        config.name,
        "--log-dir",
        str(config.resolved_run_dir),
        "--parent-pid",
        str(os.getpid()),
        "--torch-threads",
        str(threads),
    ]


def worker_process(argv: list[str] | None = None) -> int:
    """Body of ``python -m tgsage.search``: one worker started by :func:`start_workers`;
    returns its exit code (0 done, 1 stopped by failures, 2 a tgsage error, 128 + the signal
    when stopped by one: its candidate was given back).

    The arguments are a private protocol between the runner and its workers (built by
    :func:`worker_command`); people join a search with ``tgsage worker`` instead. The module
    path stays inside the search package so a worker never imports the command line."""
    import argparse

    from tgsage.search.worker import run_worker

    ap = argparse.ArgumentParser(
        prog="python -m tgsage.search",
        description="One worker process of run_search (to join a search: tgsage worker).",
    )
    ap.add_argument("--storage", required=True)
    ap.add_argument("--study", required=True)
    ap.add_argument("--worker-id")
    ap.add_argument("--max-candidates", type=int)
    ap.add_argument("--log-dir")
    ap.add_argument("--parent-pid", type=int)
    ap.add_argument("--torch-threads", type=int)
    args = ap.parse_args(argv)
    try:
        summary = run_worker(
            args.storage,
            args.study,
            args.worker_id,
            args.max_candidates,
            log_dir=args.log_dir,
            parent_pid=args.parent_pid,
            torch_threads=args.torch_threads,
        )
    except TgsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if summary.stopped_by == "interrupted":  # the shell's convention: 128 + the signal
        return 128 + summary.signal if summary.signal is not None else 0
    return 0 if summary.stopped_by in ("done", "max_candidates") else 1


def start_workers(config: SearchConfig, n: int) -> list[subprocess.Popen[bytes]]:
    """``n`` worker processes for the configured study, logging into its run folder."""
    run_dir = config.resolved_run_dir
    threads = config.torch_threads or max(1, (os.cpu_count() or 1) // max(1, n))
    cmd = worker_command(config, threads)
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS=str(threads))
    procs = []
    with open(run_dir / "workers.stderr", "ab") as err:
        for _ in range(n):
            procs.append(
                subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env
                )
            )
    return procs


def _stop(procs: list[subprocess.Popen[bytes]], timeout: float = 15.0) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _sweep_own(cfg: SearchConfig, storage: Any, procs: list[subprocess.Popen[bytes]]) -> None:
    """After a stop: queue again the candidates of workers that had to be killed (their trials
    would otherwise stay RUNNING until a later run's sweep)."""
    if not procs or not cfg.local_pid_check:
        return
    try:
        import optuna

        study = optuna.load_study(study_name=cfg.name, storage=storage)
        sweep_stale(
            study, study.get_trials(deepcopy=False), cfg.grace_period, cfg.max_retries, True
        )
    except Exception as exc:  # the storage may be what failed; a later run sweeps them
        log.warning("could not queue the candidates of stopped workers again: %s", exc)


def run_search(
    config: SearchConfig | dict[str, Any] | str | Path,
    on_status: Callable[[SearchStatus], None] | None = None,
    *,
    poll: float = 0.5,
    **overrides: Any,
) -> SearchSummary:
    """Run (or resume) a search with ``config.workers`` local worker processes.

    ``on_status(status)`` is called with a fresh :class:`SearchStatus` every ``poll`` seconds
    while workers run (e.g. to draw progress). ``overrides`` replace config fields (None values
    are ignored). Returns a summary; raises ConfigError before any work when the config, the
    storage or the inputs are invalid.
    """
    if "progress" in overrides or isinstance(on_status, bool):
        overrides.pop("progress", None)
        on_status = None if isinstance(on_status, bool) else on_status
        warnings.warn(
            "run_search(progress=...) is gone: the library draws nothing; pass "
            "on_status=callback to follow a search",
            DeprecationWarning,
            stacklevel=2,
        )
    cfg = load_config(config, **overrides)
    storage = preflight(cfg)
    run_dir = cfg.resolved_run_dir
    handler = _setup_logging(run_dir)
    t0 = time.monotonic()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        study, resumed = create_or_load_study(cfg, storage)
        log.info(
            "%s search %r on %s: %d candidates, %d workers",
            "resuming" if resumed else "starting",
            cfg.name,
            redact(cfg.storage_url),
            cfg.n_candidates,
            cfg.workers,
        )
        swept = sweep_stale(
            study,
            study.get_trials(deepcopy=False),
            cfg.grace_period,
            cfg.max_retries,
            cfg.local_pid_check,
        )
        if swept:
            log.info("%d candidates of stopped workers queued again", swept)
        status = status_of(study, cfg)
        message = ""
        if not status.finished:
            procs = start_workers(cfg, cfg.workers)
            log.info("workers started: %s", [p.pid for p in procs])
            while True:
                status = status_of(study, cfg)
                if on_status is not None:
                    on_status(status)
                if all(p.poll() is not None for p in procs):
                    break
                time.sleep(poll)
            status = status_of(study, cfg)
            if on_status is not None:
                on_status(status)
            codes = [p.returncode for p in procs]
            log.info("workers exited with %s", codes)
            if not status.finished:
                message = _why_unfinished(cfg, status, codes)
                log.error(message)
        summary = _summary(cfg, status, resumed, time.monotonic() - t0, procs, message)
        log.info("search %r: %s", cfg.name, summary_line(status))
        return summary
    except KeyboardInterrupt:
        log.warning("interrupted; run the same command again to resume")
        _stop(procs)
        _sweep_own(cfg, storage, procs)
        raise SearchInterrupted(_interrupted_message(cfg, storage)) from None
    finally:
        log.removeHandler(handler)
        handler.close()


def _interrupted_message(cfg: SearchConfig, storage: Any) -> str:
    """One line for Ctrl-C: how far the search got and how to go on."""
    try:
        import optuna

        study = optuna.load_study(study_name=cfg.name, storage=storage)
        done = f"{status_of(study, cfg).complete}/{cfg.n_candidates} candidates completed; "
    except Exception:  # not created yet, or the storage is what failed
        done = ""
    return (
        f"search {cfg.name!r} interrupted: {done}candidates in training were queued again; "
        "run the same command to resume"
    )


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _why_unfinished(cfg: SearchConfig, s: SearchStatus, codes: list[int]) -> str:
    if s.counts.failed > cfg.failure_limit:
        top = max(s.counts.reasons.items(), key=lambda kv: kv[1])[0] if s.counts.reasons else "?"
        return (
            f"stopped: {s.counts.failed} candidates failed (limit {cfg.failure_limit}; "
            f"most often: {top}); see {cfg.resolved_run_dir}/worker-*.log"
        )
    stopped = sorted({_signal_name(c - 128) for c in codes if c > 128})
    if stopped and all(c == 0 or c > 128 for c in codes):
        return (
            f"the workers were stopped ({', '.join(stopped)}) with {s.complete}/"
            f"{s.n_candidates} candidates completed; their candidates were queued again: run "
            "the same command again to resume"
        )
    return (
        f"all workers exited (codes {codes}) with {s.complete}/{s.n_candidates} candidates "
        f"completed; see {cfg.resolved_run_dir}/workers.stderr and worker-*.log, then run "
        "the same command again to resume"
    )


def _summary(
    cfg: SearchConfig,
    s: SearchStatus,
    resumed: bool,
    seconds: float,
    procs: list[subprocess.Popen[bytes]],
    message: str,
) -> SearchSummary:
    c = s.counts
    return SearchSummary(
        study=cfg.name,
        storage=redact(cfg.storage_url),
        run_dir=str(cfg.resolved_run_dir),
        n_candidates=cfg.n_candidates,
        complete=c.complete,
        failed=c.failed,
        lost=c.lost,
        retried=c.retried,
        reused=c.reused,
        surplus=c.surplus,
        cost_examples=c.cost,
        seconds=seconds,
        resumed=resumed,
        finished=s.finished,
        best=s.leaderboard[0] if s.leaderboard else None,
        worker_exit_codes=[p.returncode for p in procs],
        message=message,
        line=summary_line(s),
    )
