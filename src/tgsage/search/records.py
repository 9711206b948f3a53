"""How a candidate is stored in an Optuna trial, and how trials are counted.

One candidate = one trial. ``trial.value`` is the score; the user attributes hold the
candidate's record (:mod:`tgsage.candidate_record`: ``P``, ``TG``, ``score``, ``per_layer``,
``params``, ``examples``, timings, ``failure_reason``, ...), written by :func:`write_result`
and read by :func:`read_result` (older names read as aliases), plus the engine's own:

=================  ===========================================================================
``spec``           canonical spec JSON; ``spec_hash`` its stable hash
``worker``         ``host:pid`` of the worker that claimed it
``reused_from``    number of the trial whose result was reused (dedup by spec hash)
``retry_of``       number of the trial this one retries (its worker was lost or stopped)
``interrupted``    why the worker stopped mid-candidate (e.g. ``SIGTERM``); the trial was given back
``surplus``        True on a slot given back unevaluated (see :mod:`tgsage.search.worker`)
=================  ===========================================================================

States: COMPLETE = a completed candidate (counts toward ``n_candidates``, reused ones included);
FAIL with a ``failure_reason`` = a failed candidate (counts toward cost, not toward
``n_candidates``); FAIL without one = its worker was lost (killed) or stopped (``interrupted``)
before the candidate was done; a retry with the same choices was queued (WAITING) unless
``max_retries`` was reached (stops do not count toward it); PRUNED with ``surplus`` = a slot
claimed in a race and handed back before any evaluation (no cost).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from tgsage import optuna_api as api
from tgsage.candidate_record import from_record

HEARTBEAT_ATTR = "tgsage:heartbeat"


def write_result(
    study: optuna.Study, number: int, trial_id: int, ok: bool, score: Any, record: Any
) -> None:
    """Store a candidate's ``record`` (:mod:`tgsage.candidate_record` names) in its trial and
    finish it, COMPLETE with ``score`` or FAIL, in one storage operation (what
    ``set_user_attrs`` + ``Study.tell`` write, without ``tell`` reading the trial back; a NaN
    score is a FAIL, as ``tell`` makes it). The sampler's ``after_trial`` runs first, as in
    ``tell``, with the trial's number, id and record (tgsage's samplers read no more).
    ``UpdateFinishedTrialError`` when another worker finished the trial first (it was declared
    lost meanwhile); the trial keeps that state."""
    value = float(score) if ok and score is not None else None
    state = TrialState.COMPLETE if value is not None and not math.isnan(value) else TrialState.FAIL
    if state == TrialState.FAIL:
        value = None
    frozen = FrozenTrial(
        number=number,
        state=TrialState.RUNNING,
        value=None,
        datetime_start=None,
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs=dict(record),
        system_attrs={},
        intermediate_values={},
        trial_id=trial_id,
    )
    try:
        study.sampler.after_trial(study, frozen, state, None if value is None else [value])
    finally:
        api.finish_trial(study, trial_id, state, value, record)


def read_result(t: FrozenTrial) -> dict[str, Any]:
    """The trial's record under the current names (``P``, ``params``, ...; older names read as
    aliases), its engine attributes, and ``number``, ``state`` and ``value``."""
    return from_record(t.user_attrs) | {"number": t.number, "state": t.state, "value": t.value}


def is_surplus(t: FrozenTrial) -> bool:
    return bool(t.user_attrs.get("surplus"))


def is_lost(t: FrozenTrial) -> bool:
    """A FAIL whose worker died or was stopped: an attempt, not a failed candidate.

    (Searches run before version 0.1.0 recorded a stop as ``failure_reason: interrupted``.)"""
    if t.state != TrialState.FAIL:
        return False
    return t.user_attrs.get("failure_reason", "interrupted") == "interrupted"


def is_interrupted(t: FrozenTrial) -> bool:
    """A candidate given back by a worker that was asked to stop (SIGTERM, Ctrl-C, ...)."""
    a = t.user_attrs
    return t.state == TrialState.FAIL and (
        "interrupted" in a or a.get("failure_reason") == "interrupted"
    )


def trial_cost(t: FrozenTrial) -> int:
    return int(t.user_attrs.get("examples", 0) or 0)


@dataclass
class Counts:
    """Trials of a study by role (see the module docstring)."""

    complete: int = 0
    running: int = 0
    waiting: int = 0
    failed: int = 0  # candidates that failed (invalid, diverged, ...)
    lost: int = 0  # attempts whose worker died or was stopped (retried with the same choices)
    interrupted: int = 0  # of those, attempts given back by a stopped worker
    surplus: int = 0
    reused: int = 0
    retried: int = 0  # trials that are retries of lost attempts
    cost: int = 0  # examples over all trials
    reasons: dict[str, int] = field(default_factory=dict)


def _tally(c: Counts, t: FrozenTrial) -> None:
    c.cost += trial_cost(t)
    if "retry_of" in t.user_attrs and not is_surplus(t):
        c.retried += 1
    if t.state == TrialState.COMPLETE:
        c.complete += 1
        c.reused += "reused_from" in t.user_attrs
    elif t.state == TrialState.RUNNING:
        c.running += 1
    elif t.state == TrialState.WAITING:
        c.waiting += 1
    elif t.state == TrialState.PRUNED:
        c.surplus += is_surplus(t)
    elif t.state == TrialState.FAIL:
        if is_lost(t):
            c.lost += 1
            c.interrupted += is_interrupted(t)
        else:
            c.failed += 1
            reason = str(t.user_attrs["failure_reason"])
            c.reasons[reason] = c.reasons.get(reason, 0) + 1


def count_trials(trials: Iterable[FrozenTrial]) -> Counts:
    c = Counts()
    for t in trials:
        _tally(c, t)
    return c


ACTIVE = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)


def holds_slot(t: FrozenTrial) -> bool:
    return t.state in ACTIVE and not is_surplus(t)


def slots_ahead(trials: Sequence[FrozenTrial], number: int) -> int:
    """Trials numbered before ``number`` that hold (or will hold) a candidate slot."""
    return sum(1 for t in trials if t.number < number and holds_slot(t))


def find_done(trials: Iterable[FrozenTrial], spec_hash: str, exclude: int) -> FrozenTrial | None:
    """The original COMPLETE trial of ``spec_hash`` (follows reuse chains), if any: the first
    by number that is not itself a reuse, else the first reuse."""
    found = None
    for t in trials:
        if (
            t.state == TrialState.COMPLETE
            and t.number != exclude
            and t.user_attrs.get("spec_hash") == spec_hash
        ):
            if "reused_from" not in t.user_attrs:
                return t
            found = found or t
    return found


class TrialIndex:
    """:func:`count_trials`, :func:`slots_ahead` and :func:`find_done` over a study's trials,
    kept up to date from one read per call of :meth:`update` instead of a full pass each.

    A finished trial (COMPLETE, FAIL, PRUNED) never changes again in any Optuna storage (its
    attributes, state and value are refused), so each is tallied once, when it is first seen
    finished; RUNNING and WAITING trials are re-read every time. The answers equal the full
    passes over the same trials (tests/search/test_trial_index.py checks them against those,
    across processes).
    """

    def __init__(self) -> None:
        self._finished: set[int] = set()  # numbers tallied
        self._base = Counts()  # of the finished trials
        self._complete_slots: list[int] = []  # sorted numbers of finished slot holders
        self._originals: dict[str, list[int]] = {}  # spec hash -> sorted numbers, not reuses
        self._reuses: dict[str, list[int]] = {}  # spec hash -> sorted numbers of reuses
        self._trials: dict[int, FrozenTrial] = {}  # the COMPLETE ones the maps point to
        self.unfinished: list[FrozenTrial] = []

    def update(self, trials: Iterable[FrozenTrial]) -> None:
        """Take in a fresh read of all the study's trials."""
        unfinished = []
        for t in trials:
            if t.number in self._finished:
                continue
            if t.state.is_finished():
                self._add(t)
            else:
                unfinished.append(t)
        self.unfinished = unfinished

    def _add(self, t: FrozenTrial) -> None:
        self._finished.add(t.number)
        _tally(self._base, t)
        if holds_slot(t):
            bisect.insort(self._complete_slots, t.number)
        h = t.user_attrs.get("spec_hash")
        if t.state == TrialState.COMPLETE and h is not None:
            kind = self._reuses if "reused_from" in t.user_attrs else self._originals
            bisect.insort(kind.setdefault(h, []), t.number)
            self._trials[t.number] = t

    def counts(self) -> Counts:
        c = Counts(**{k: v for k, v in vars(self._base).items() if k != "reasons"})
        c.reasons = dict(self._base.reasons)
        for t in self.unfinished:
            _tally(c, t)
        return c

    def slots_ahead(self, number: int) -> int:
        done = bisect.bisect_left(self._complete_slots, number)
        return done + sum(1 for t in self.unfinished if t.number < number and holds_slot(t))

    def find_done(self, spec_hash: str, exclude: int) -> FrozenTrial | None:
        for kind in (self._originals, self._reuses):
            for number in kind.get(spec_hash, ())[:2]:
                if number != exclude:
                    return self._trials[number]
        return None


@dataclass
class Row:
    """One leaderboard line."""

    number: int
    score: float
    p: float | None
    tg: float | None
    examples: int
    spec_hash: str
    reused_from: int | None
    worker: str
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def leaderboard(trials: Iterable[FrozenTrial], top: int = 5) -> list[Row]:
    """The best completed candidates by score, one row per distinct spec (originals first)."""
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    done.sort(key=lambda t: (-t.value, "reused_from" in t.user_attrs, t.number))  # type: ignore
    rows, seen = [], set()
    for t in done:
        h = t.user_attrs.get("spec_hash", "")
        if h in seen:
            continue
        seen.add(h)
        a = read_result(t)
        rows.append(
            Row(
                number=t.number,
                score=float(t.value),
                p=a.get("P"),
                tg=a.get("TG"),
                examples=trial_cost(t),
                spec_hash=h,
                reused_from=a.get("reused_from"),
                worker=str(a.get("worker", "")),
                seconds=float(a.get("train_seconds", 0.0) or 0.0)
                + float(a.get("score_seconds", 0.0) or 0.0),
            )
        )
        if len(rows) >= top:
            break
    return rows
