"""A worker: claim a slot, sample a candidate, reuse or evaluate it, record it; repeat.

Exactly ``n_candidates`` COMPLETE trials, however many workers race:

1. *Pre-check.* Count COMPLETE and RUNNING trials; with ``complete >= n`` the worker stops, with
   ``complete + running >= n`` it waits (a running candidate may still fail or be lost).
2. *Claim.* With retries queued, ``study.ask()`` pops the oldest WAITING trial (it keeps its
   choices); otherwise the worker creates a new RUNNING trial in one storage operation.
3. *Verify.* Count the trials numbered before the claimed one that are COMPLETE, RUNNING or
   WAITING. If there are ``n`` or more, the claim lost a race: the trial is closed as PRUNED
   with ``surplus=True`` before anything is sampled or evaluated (no cost; a popped retry is
   queued again). Trial numbers follow creation order on every storage (the journal is one
   ordered log; RDBStorage locks the study row while numbering), and a trial's state only moves
   forward, so at any moment at most ``n`` trials hold a slot and COMPLETE can never exceed
   ``n``; failed and lost candidates free their slot for a new one.
4. *Draw.* A new claim's choices are drawn in memory by the study's sampler, with the trial's
   own number (:class:`~tgsage.search.draft.DraftTrial`), and stored with the spec in one
   storage operation - not one per choice (:func:`tgsage.optuna_api.set_params`).
5. *Evaluate and record* (below), the result in one operation and then ``tell``.

Reads: two per candidate (the pre-check, and the slot check after the claim), taken into a
:class:`~tgsage.search.records.TrialIndex` that tallies each finished trial once, so counting,
the slot check and the dedup lookup cost no pass over the study's history.

Dedup: before evaluating, the worker looks for a COMPLETE trial with the same spec hash (in
the slot check's read, taken just before the candidate was drawn); its
result is copied (value and attributes, ``reused_from`` = the original's number, cost 0
examples). Two workers that sample the same new spec at the same moment both evaluate it (the
race is not worth a lock); both results are recorded, and later duplicates reuse the first.
Reused candidates count toward ``n_candidates`` (they are candidates the strategy proposed).

Stopping (SIGTERM, SIGINT, the death of the search process; see :mod:`tgsage.search.stop`):
the candidate being evaluated is given back - its trial is closed as FAIL with ``interrupted``
set (not a failure: it counts with the lost attempts) and a WAITING retry with the same
choices is queued - and the worker exits. A stop never interrupts a storage write.
"""

from __future__ import annotations

import datetime
import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from tgsage import optuna_api as api
from tgsage.candidate_record import reused_record
from tgsage.errors import TgsageError
from tgsage.search.config import SearchConfig
from tgsage.search.draft import draw_and_store, spec_attrs
from tgsage.search.faults import (
    enqueue_retry,
    heartbeat,
    rdb_retry_callback,
    sweep_stale,
    worker_name,
)
from tgsage.search.objective import Objective, Outcome, guarded, make_objective
from tgsage.search.records import Counts, TrialIndex, find_done, is_surplus, write_result
from tgsage.search.stop import StopRequest, StopWorker
from tgsage.search.storage import load_study, open_storage, storage_kind
from tgsage.search.strategy import make_sampler

log = logging.getLogger("tgsage.search")
optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclass
class WorkerSummary:
    worker: str
    evaluated: int = 0
    reused: int = 0
    failed: int = 0
    surplus: int = 0
    swept: int = 0
    stopped_by: str = "done"  # done, failures, max_candidates, interrupted
    signal: int | None = None  # the signal that stopped it (interrupted)


def open_study(storage_url: str, study_name: str) -> tuple[optuna.Study, SearchConfig]:
    """The study with heartbeats configured from its stored config (RDB storages)."""
    study, config = load_study(storage_url, study_name)
    if storage_kind(storage_url) != "journal":
        storage = open_storage(
            storage_url,
            heartbeat_interval=config.heartbeat_interval,
            grace_period=config.grace_period,
            retry_callback=rdb_retry_callback(config.max_retries),
        )
        study = optuna.load_study(study_name=study_name, storage=storage)
    return study, config


def _worker_seed(config: SearchConfig, worker: str) -> int:
    """The search seed, the same in every worker.

    Every tgsage sampler reseeds itself per trial from (seed, trial number), so concurrent
    workers still propose different candidates, while learning strategies (RL, evolution) start
    from the same initial policy in every worker and replay the same history: one policy for
    the whole search, reproducible from the seed. ``worker`` is unused on purpose.
    """
    del worker
    return int(config.seed)


@dataclass(frozen=True)
class Claim:
    """A trial this worker holds: its number, storage id and the candidate's spec (None until
    a new claim's choices are drawn)."""

    number: int
    trial_id: int
    spec: Any

    @property
    def attrs(self) -> dict[str, Any]:
        return spec_attrs(self.spec)


class Worker:
    """One worker process's loop over candidates (see the module docstring)."""

    def __init__(
        self,
        storage_url: str,
        study_name: str,
        worker_id: str | None = None,
        max_candidates: int | None = None,
        poll: float = 0.5,
        stop: StopRequest | None = None,
    ) -> None:
        self.stop = stop if stop is not None else StopRequest()
        self.study, self.config = open_study(storage_url, study_name)
        self.storage_url, self.max_candidates, self.poll = storage_url, max_candidates, poll
        self.name = worker_id or worker_name()
        from tgsage.spaces import get_space

        self.space = get_space(self.config.space, **self.config.space_options)
        self.study.sampler = make_sampler(
            self.config.strategy,
            self.space,
            _worker_seed(self.config, self.name),
            **self.config.strategy_options,
        )
        self.objective: Objective | None = None
        self.summary = WorkerSummary(self.name)
        self._last_rdb_sweep = 0.0
        self.index = TrialIndex()  # counts, slots and dedup without a full pass per candidate

    def _read(self) -> None:
        """One read of the study's trials into the index."""
        self.index.update(self.study.get_trials(deepcopy=False))

    # ------------------------------------------------------------------ helpers
    def _sweep(self, trials: list[FrozenTrial]) -> None:
        """Sweep lost candidates; the RDB heartbeat table is queried once per interval."""
        c = self.config
        table = True
        if api.uses_rdb_heartbeat(api.storage_of(self.study)):
            table = time.monotonic() - self._last_rdb_sweep >= c.heartbeat_interval
            if table:
                self._last_rdb_sweep = time.monotonic()
        self.summary.swept += sweep_stale(
            self.study, trials, c.grace_period, c.max_retries, c.local_pid_check, heartbeats=table
        )

    def _claim(self, counts: Counts) -> Claim:
        """A trial for this worker's next candidate: a queued retry (WAITING) is popped with
        ``study.ask()`` and replays its choices at once; otherwise an empty RUNNING trial is
        created in one storage operation and its choices are drawn later, in memory
        (:meth:`_draw`), once the slot is verified."""
        name = {"worker": self.name}
        if counts.waiting:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna: heartbeats outside Study.optimize
                trial = self.study.ask()
            spec = self.space.sample(trial)
            claim = Claim(trial.number, api.trial_id(trial), spec)
            api.set_user_attrs(self.study, claim.trial_id, name | spec_attrs(spec))
            return claim
        template = optuna.trial.FrozenTrial(
            number=-1,  # the storage numbers it
            state=TrialState.RUNNING,
            value=None,
            datetime_start=datetime.datetime.now(),
            datetime_complete=None,
            params={},
            distributions={},
            user_attrs=name,
            system_attrs={},
            intermediate_values={},
            trial_id=-1,
        )
        tid, number = api.create_trial(self.study, template)
        return Claim(number, tid, None)

    def _draw(self, claim: Claim) -> Claim:
        """The candidate of a new claim: its choices drawn by the sampler with the trial's
        number (:func:`~tgsage.search.draft.draw_and_store`), stored with its spec in one operation."""
        if claim.spec is not None:
            return claim
        spec = draw_and_store(self.study, self.space, claim.number, claim.trial_id)
        return Claim(claim.number, claim.trial_id, spec)

    def _surplus(self, claim: Claim, why: str = "slot lost in a race") -> None:
        frozen = api.get_trial(self.study, claim.trial_id)
        api.set_user_attrs(self.study, claim.trial_id, {"surplus": True})
        if "failed_trial" in frozen.system_attrs:  # a popped retry: put it back in the queue
            self.study.add_trial(
                optuna.trial.create_trial(
                    state=TrialState.WAITING,
                    params=frozen.params,
                    distributions=frozen.distributions,
                    system_attrs=frozen.system_attrs,
                    user_attrs={"retry_of": frozen.user_attrs.get("retry_of", frozen.number)},
                )
            )
        self.study.tell(claim.number, state=TrialState.PRUNED, skip_if_finished=True)
        self.summary.surplus += 1
        log.info("trial %d: %s; handed back", claim.number, why)

    def _record(self, claim: Claim, outcome: Outcome) -> None:
        write_result(
            self.study, claim.number, claim.trial_id, outcome.ok, outcome.score, outcome.attrs
        )

    def _evaluate(self, claim: Claim) -> str:
        spec, h, trial = claim.spec, claim.spec.spec_hash, claim
        done = self.index.find_done(h, trial.number)  # as of the slot check, just before
        if done is not None:
            self._record(
                trial, Outcome(True, done.value, reused_record(done.user_attrs, done.number))
            )
            log.info(
                "trial %d: spec %s already evaluated in trial %d; result reused",
                trial.number,
                h,
                done.number,
            )
            return "reused"
        with self.stop.interruptible():  # pure computation: a stop may cut it short
            if self.objective is None:  # data, teacher: a TgsageError here stops the worker
                self.objective = make_objective(self.config)
            objective = self.objective
            outcome = guarded(trial.number, lambda: objective(spec))
        self._record(trial, outcome)
        log.info(
            "trial %d: spec %s %s",
            trial.number,
            h,
            f"score {outcome.score:.4f}"
            if outcome.ok
            else f"failed ({outcome.attrs.get('failure_reason')})",
        )
        return "evaluated" if outcome.ok else "failed"

    def _interrupted(self, trial: Claim, reason: str) -> None:
        """Give the candidate back: FAIL with ``interrupted`` set (no failure reason, so it is
        not a failed candidate) and a retry with the same choices, not counted as a loss."""
        tid = trial.trial_id
        try:
            api.set_user_attrs(self.study, tid, {"interrupted": reason})
            if not api.set_state(self.study, tid, TrialState.FAIL):
                return
        except UpdateFinishedTrialError:
            return  # finished meanwhile, or swept by another worker (which queued the retry)
        frozen = api.get_trial(self.study, tid)
        enqueue_retry(self.study, frozen, self.config.max_retries, counted=False)
        log.info("trial %d interrupted (%s); its choices are queued again", trial.number, reason)

    # ------------------------------------------------------------------ loop
    def run(self) -> WorkerSummary:
        c, n = self.config, self.config.n_candidates
        log.info("worker %s joined study %r (%d candidates wanted)", self.name, c.name, n)
        done_here = 0
        while True:
            if self.stop.requested:
                self._stopped(str(self.stop.reason))
                break
            self._read()
            self._sweep(self.index.unfinished)  # only RUNNING trials can be lost
            counts = self.index.counts()
            if counts.complete >= n:
                break
            if counts.failed > c.failure_limit:
                self.summary.stopped_by = "failures"
                log.error(
                    "%d candidates failed (limit %d); stopping", counts.failed, c.failure_limit
                )
                break
            if self.max_candidates is not None and done_here >= self.max_candidates:
                self.summary.stopped_by = "max_candidates"
                break
            if counts.complete + counts.running >= n:
                time.sleep(self.poll)
                continue
            trial = self._claim(counts)
            try:
                with heartbeat(self.study, trial.trial_id, c.heartbeat_interval) as hb:
                    self._read()  # after the claim: every trial numbered before it
                    if self.index.slots_ahead(trial.number) >= n:
                        self._surplus(trial)
                        time.sleep(self.poll)
                        continue
                    trial = self._draw(trial)
                    kind = self._evaluate(trial)
            except StopWorker as stop:
                self._interrupted(trial, stop.reason)
                self._stopped(stop.reason)
                break
            except KeyboardInterrupt:  # no handler installed (not run_worker): give back, re-raise
                self._interrupted(trial, "KeyboardInterrupt")
                raise
            except TgsageError as exc:  # the objective cannot start here (data, teacher, budget)
                self._interrupted(trial, "error")
                log.error("worker %s cannot evaluate candidates: %s", self.name, exc)
                raise
            except UpdateFinishedTrialError:
                log.warning(
                    "trial %d was declared lost while this worker ran it (no heartbeat "
                    "for %d s); its result was discarded",
                    trial.number,
                    c.grace_period,
                )
                continue
            if hb.lost:
                log.warning("trial %d was declared lost while running", trial.number)
            done_here += 1
            if kind == "reused":
                self.summary.reused += 1
            elif kind == "failed":
                self.summary.failed += 1
            else:
                self.summary.evaluated += 1
        log.info("worker %s stops (%s): %s", self.name, self.summary.stopped_by, self.summary)
        return self.summary

    def _stopped(self, reason: str) -> None:
        self.summary.stopped_by, self.summary.signal = "interrupted", self.stop.signum
        log.info("worker %s asked to stop (%s)", self.name, reason)


def setup_worker_logging(log_dir: Path | None, name: str = "worker") -> Path | None:
    """Log to ``<log_dir>/worker-<pid>.log`` (INFO), and warnings to stderr."""
    logger = logging.getLogger("tgsage.search")
    logger.setLevel(logging.INFO)
    path = None
    if log_dir is not None:
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
            path = log_dir / f"{name}-{os.getpid()}.log"
            handler: logging.Handler = logging.FileHandler(path)
            handler.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s [%(process)d] %(message)s")
            )
            logger.addHandler(handler)
        except OSError:
            path = None
    return path


def run_worker(
    storage_url: str,
    study_name: str,
    worker_id: str | None = None,
    max_candidates: int | None = None,
    *,
    log_dir: str | Path | None = None,
    parent_pid: int | None = None,
    torch_threads: int | None = None,
) -> WorkerSummary:
    """Join the study and work until it has its candidates (or ``max_candidates`` here).

    SIGTERM, SIGINT (when called from the main thread) and the death of ``parent_pid`` stop the
    worker cleanly: its current candidate is given back to the queue (see
    :mod:`tgsage.search.stop`) and the summary says ``stopped_by="interrupted"``. ``log_dir``
    defaults to the study's run folder when it exists.
    """
    from tgsage.search.cascade_worker import CascadeWorker  # it imports this module

    stop = StopRequest()
    with stop.installed():  # from the start: a stop while torch loads is honoured, not lost
        if parent_pid is not None:
            stop.watch_parent(parent_pid)
        worker: Worker | CascadeWorker = Worker(
            storage_url, study_name, worker_id, max_candidates, stop=stop
        )
        if worker.config.cascade is not None:  # one trial per (candidate, rung) instead
            worker = CascadeWorker(
                worker.study, worker.config, worker.name, max_candidates=max_candidates, stop=stop
            )
        run_dir = worker.config.resolved_run_dir
        target = Path(log_dir) if log_dir is not None else (run_dir if run_dir.exists() else None)
        setup_worker_logging(target)
        threads = torch_threads or worker.config.torch_threads
        if threads is None:
            threads = max(1, (os.cpu_count() or 1) // max(1, worker.config.workers))
        import torch

        torch.set_num_threads(threads)
        return worker.run()


__all__ = [
    "StopWorker",
    "Worker",
    "WorkerSummary",
    "find_done",
    "is_surplus",
    "open_study",
    "run_worker",
]
