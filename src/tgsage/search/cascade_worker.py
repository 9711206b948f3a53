"""A cascade worker: add due promotions, claim a (candidate, rung), screen or train it, record.

The loop of one worker process of a cascade search (``config.cascade`` set); the decisions
come from the pure functions of :mod:`tgsage.search.cascade`, the fault handling
(heartbeats, the sweep of lost workers' trials and their retries) from the engine, so a
cascade is resumable and kill-safe exactly as a flat search:

1. read the trials, sweep lost ones, compute the cascade state; stop when every bracket's
   last rung is settled (or too many candidates failed);
2. add the promotions that are due and missing (idempotent; see invariant 2);
3. if nothing is queued and no screen slot is free, wait (a rung is still being trained);
4. ``study.ask()`` pops the oldest queued trial (a promotion or a retry) or makes a new one;
   :func:`~tgsage.search.cascade.claim` grants it its role or closes it as surplus;
5. reuse a twin (same architecture, same budget) or wait for a running one, else screen or
   train it, and tell the result.
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from tgsage import optuna_api as api
from tgsage.candidate_record import MEASURED
from tgsage.optuna_api import storage_of, uses_rdb_heartbeat
from tgsage.search.cascade import (
    CascadePlan,
    Promotion,
    cascade_state,
    claim,
    make_plan,
    previous_budget,
    screen_open,
    twin,
)
from tgsage.search.cascade_eval import CascadeEvaluator, make_cascade_evaluator
from tgsage.search.config import SearchConfig
from tgsage.search.draft import draw_and_store, spec_attrs
from tgsage.search.faults import enqueue_retry, heartbeat, sweep_stale
from tgsage.search.objective import Outcome, guarded
from tgsage.search.records import write_result
from tgsage.search.stop import StopRequest, StopWorker

log = logging.getLogger("tgsage.search")

REUSED_ATTRS = (*MEASURED, "resumed_from", "cached", "teacher")


def plan_of(config: SearchConfig) -> CascadePlan:
    assert config.cascade is not None
    return make_plan(config.cascade, config.n_candidates, config.score)


def rung0_only(trial: FrozenTrial) -> bool:
    """History filter of the strategy: it learns from screen scores only (one scale)."""
    return int(trial.user_attrs.get("rung", 0)) == 0


class CascadeWorker:
    """One worker's loop over (candidate, rung) trials of a cascade study."""

    def __init__(
        self,
        study: optuna.Study,
        config: SearchConfig,
        name: str,
        *,
        evaluator: CascadeEvaluator | None = None,
        max_candidates: int | None = None,
        poll: float = 0.5,
        stop: StopRequest | None = None,
    ) -> None:
        from tgsage import strategies
        from tgsage.search.worker import WorkerSummary
        from tgsage.spaces import get_space

        self.study, self.config, self.name = study, config, name
        self.plan = plan_of(config)
        self.space = get_space(config.space, **config.space_options)
        strategy = strategies.get_strategy(
            config.strategy, self.space, seed=int(config.seed), **config.strategy_options
        )
        self.study.sampler = strategy.sampler(history_filter=rung0_only)
        self._evaluator = evaluator
        self.max_candidates, self.poll = max_candidates, poll
        self.stop = stop if stop is not None else StopRequest()
        self.summary = WorkerSummary(name)
        self._last_rdb_sweep = 0.0

    @property
    def evaluator(self) -> CascadeEvaluator:
        if self._evaluator is None:
            self._evaluator = make_cascade_evaluator(self.config)
        return self._evaluator

    # ------------------------------------------------------------------ storage helpers
    def _attrs(self, trial_id: int, attrs: dict[str, Any]) -> None:
        """All of ``attrs`` (None values skipped) in one storage operation."""
        api.set_user_attrs(self.study, trial_id, attrs)

    def _sweep(self, trials: list[FrozenTrial]) -> None:
        c = self.config
        table = True
        if uses_rdb_heartbeat(storage_of(self.study)):
            table = time.monotonic() - self._last_rdb_sweep >= c.heartbeat_interval
            if table:
                self._last_rdb_sweep = time.monotonic()
        self.summary.swept += sweep_stale(
            self.study, trials, c.grace_period, c.max_retries, c.local_pid_check, heartbeats=table
        )

    def _promote(self, trials: list[FrozenTrial], missing: list[Promotion]) -> None:
        by_number = {t.number: t for t in trials}
        for p in missing:
            src = by_number[p.source]
            rung = self.plan.rung(p.bracket, p.rung)
            self.study.add_trial(
                optuna.trial.create_trial(
                    state=TrialState.WAITING,
                    params=src.params,
                    distributions=src.distributions,
                    user_attrs={
                        "bracket": p.bracket,
                        "rung": p.rung,
                        "budget": rung.budget,
                        "spec": src.user_attrs.get("spec"),
                        "spec_hash": p.spec_hash,
                        "promoted_from": p.source,
                    }
                    | ({} if rung.trained else {"screen": rung.score}),
                )
            )
            log.info(
                "bracket %d: %s promoted to rung %d (%s)",
                p.bracket,
                p.spec_hash,
                p.rung,
                rung.stage or rung.budget,
            )

    def _surplus(self, trial: optuna.Trial) -> None:
        self.study._storage.set_trial_user_attr(trial._trial_id, "surplus", True)
        self.study.tell(trial, state=TrialState.PRUNED)
        self.summary.surplus += 1

    def _record(self, trial: optuna.Trial, outcome: Outcome) -> None:
        write_result(
            self.study, trial.number, trial._trial_id, outcome.ok, outcome.score, outcome.attrs
        )

    def _interrupted(self, trial: optuna.Trial, reason: str) -> None:
        """Give the candidate back as the engine does (tgsage.search.stop): FAIL with
        ``interrupted`` set, not a failure, and a retry in the same role, not counted."""
        try:
            self.study._storage.set_trial_user_attr(trial._trial_id, "interrupted", reason)
            self.study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:
            return
        enqueue_retry(
            self.study,
            self.study._storage.get_trial(trial._trial_id),
            self.config.max_retries,
            counted=False,
        )

    # ------------------------------------------------------------------ one trial
    def _claim(self, trial: optuna.Trial) -> tuple[int, int] | None:
        """The role granted to ``trial`` (declared in its attributes), or None (surplus)."""
        deadline = time.monotonic() + self.config.grace_period + self.config.heartbeat_interval
        while True:
            decision, role = claim(self.study.get_trials(deepcopy=False), trial.number, self.plan)
            if decision != "wait" or time.monotonic() > deadline:
                break
            time.sleep(min(self.poll, 0.05))
        if decision != "ok":
            self._surplus(trial)
            return None
        assert role is not None
        rung = self.plan.rung(*role)
        attrs = {"bracket": role[0], "rung": role[1], "budget": rung.budget}
        if not rung.trained:  # untrained rungs differ by their score (prescreen, screen)
            attrs["screen"] = rung.score
        self._attrs(trial._trial_id, attrs)
        return role

    def _evaluate(self, trial: optuna.Trial, role: tuple[int, int]) -> str:
        rung = self.plan.rung(*role)
        if trial.params:  # a promotion or a retry: its choices are stored already
            spec = self.space.sample(trial)
            self._attrs(trial._trial_id, spec_attrs(spec))
        else:  # a new proposal: drawn in memory, stored with its spec in one operation
            spec = draw_and_store(self.study, self.space, trial.number, trial._trial_id)
        h = spec.spec_hash
        while True:
            other = twin(
                self.study.get_trials(deepcopy=False),
                trial.number,
                h,
                rung.budget,
                None if rung.trained else rung.score,
            )
            if other is None or other.state != TrialState.RUNNING:
                break
            time.sleep(self.poll)  # a lower-numbered trial is training it: wait, then reuse
        if other is not None:
            attrs = {k: other.user_attrs[k] for k in REUSED_ATTRS if k in other.user_attrs}
            attrs.update(examples=0, train_seconds=0.0, score_seconds=0.0, reused_from=other.number)
            attrs.pop("resumed_from", None)
            if other.state == TrialState.COMPLETE:
                self._record(trial, Outcome(True, other.value, attrs))
            else:
                attrs |= {k: other.user_attrs.get(k) for k in ("failure_reason", "message")}
                self._record(trial, Outcome(False, None, attrs))
            log.info(
                "trial %d: %s at %s reused from trial %d",
                trial.number,
                h,
                rung.budget,
                other.number,
            )
            return "reused"
        prev = None
        if rung.budget is not None and self.config.cascade.continue_training:  # type: ignore[union-attr]
            trials = self.study.get_trials(deepcopy=False)
            prev = previous_budget(trials, h, rung.budget, self.plan.budgets)
        with self.stop.interruptible():  # pure computation: a stop may cut it short
            if rung.budget is None:
                outcome = guarded(trial.number, lambda: self.evaluator.screen(spec, rung.score))
            else:
                outcome = guarded(
                    trial.number,
                    lambda: self.evaluator.train(spec, rung.budget, rung.score, prev),
                )
        self._record(trial, outcome)
        log.info(
            "trial %d: bracket %d rung %d (%s) %s %s",
            trial.number,
            role[0],
            role[1],
            rung.stage or rung.budget or "screen",
            h,
            f"{outcome.score:.4f}" if outcome.ok else outcome.attrs.get("failure_reason"),
        )
        return "evaluated" if outcome.ok else "failed"

    # ------------------------------------------------------------------ loop
    def run(self) -> Any:
        c = self.config
        done_here = 0
        while True:
            if self.stop.requested:
                self.summary.stopped_by, self.summary.signal = "interrupted", self.stop.signum
                break
            trials = self.study.get_trials(deepcopy=False)
            self._sweep(trials)
            state = cascade_state(trials, self.plan, c.max_retries)
            if state.finished:
                self._drain(trials)
                break
            failed = sum(r.failed for r in state.rungs.values())
            if failed > c.failure_limit:
                self.summary.stopped_by = "failures"
                log.error("%d candidates failed (limit %d); stopping", failed, c.failure_limit)
                break
            if self.max_candidates is not None and done_here >= self.max_candidates:
                self.summary.stopped_by = "max_candidates"
                break
            if state.missing:
                self._promote(trials, state.missing)
                continue
            queued = any(t.state == TrialState.WAITING for t in trials)
            if not queued and not screen_open(trials, self.plan):
                time.sleep(self.poll)  # a rung is being trained elsewhere: its barrier
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                trial = self.study.ask()
            self.study._storage.set_trial_user_attr(trial._trial_id, "worker", self.name)
            try:
                with heartbeat(self.study, trial._trial_id, c.heartbeat_interval):
                    role = self._claim(trial)
                    if role is None:
                        continue
                    kind = self._evaluate(trial, role)
            except StopWorker as stop:
                self._interrupted(trial, stop.reason)
                self.summary.stopped_by, self.summary.signal = "interrupted", stop.signum
                break
            except KeyboardInterrupt:  # no handler installed (not run_worker): give back
                self._interrupted(trial, "KeyboardInterrupt")
                raise
            except UpdateFinishedTrialError:
                log.warning("trial %d was declared lost while this worker ran it", trial.number)
                continue
            done_here += 1
            if kind == "reused":
                self.summary.reused += 1
            elif kind == "failed":
                self.summary.failed += 1
            else:
                self.summary.evaluated += 1
        log.info("worker %s stops (%s): %s", self.name, self.summary.stopped_by, self.summary)
        return self.summary

    def _drain(self, trials: list[FrozenTrial]) -> None:
        """Close queued trials a finished cascade no longer needs (duplicate promotions,
        retries of rungs already settled), so that nothing is left waiting."""
        waiting = sum(t.state == TrialState.WAITING for t in trials)
        for _ in range(waiting):
            if not any(
                t.state == TrialState.WAITING for t in self.study.get_trials(deepcopy=False)
            ):
                return
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._surplus(self.study.ask())


__all__ = ["CascadeWorker", "plan_of", "rung0_only"]
