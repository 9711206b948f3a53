"""Cascade (multi-fidelity) search: screen many proposals for free, train the promising few.

A cascade is successive halving with a free first rung:

- **rung 0, the screen**: ``n_candidates`` proposals of the strategy are scored by a
  training-free score (a zero-cost proxy, or an expression over proxies ranked against a
  fixed reference of random architectures; no training, cost 0 examples) and the best
  ``keep`` distinct architectures go on;
- **an optional prescreen** before it: with ``prescreen`` set, rung 0 scores every proposal
  with that (cheaper) training-free score and only its best ``prescreen_keep`` are scored by
  ``screen`` (rung 1), e.g. synflow on 3,000 proposals, then a stronger but costlier
  combination on synflow's top 300; the trained rungs follow;
- **rungs 1..R**: the survivors are trained to growing budgets (``budgets``), scored by the
  search's score (P, TG, P + alpha*TG, ...) and the top ``1/eta`` go on; training at rung r
  continues the run of rung r-1 from its checkpoint when there is one, so a survivor of every
  rung costs the last budget, not the sum of all budgets;
- **the last rung is the rerank**: its best architecture is the search's answer.

With ``hyperband: true`` the plan is Li et al.'s Hyperband: brackets that start training at
each budget in turn, from many candidates at the smallest budget to a few at the largest;
``rounds: k`` runs the whole plan k times, the strategy proposing each round's screen from
every screen score so far.

How a cascade maps onto Optuna (the storage is the scheduler's only state)
-------------------------------------------------------------------------
One trial per (candidate, rung). A trial's *role* is ``(bracket, rung)`` (user attributes
``bracket`` and ``rung``; a retry of a lost trial inherits the role of the trial it retries).
Rung-0 trials are new trials asked from the strategy's sampler; a promotion is a WAITING trial
added with the survivor's params and its role (``study.add_trial``), which the next free
worker pops with ``study.ask()``. Optuna's ``SuccessiveHalvingPruner``/``HyperbandPruner`` are
not used for the decision: they are asynchronous (ASHA) and promote a trial when it is in the
top 1/eta of the values *seen so far* at its rung, so the number promoted per rung is not
fixed, and one trial would have to live through all rungs (a worker killed at the last rung
loses every rung's work). The synchronous rule here is what successive halving means; its
invariants, which every state of the storage satisfies whatever the workers do:

1. *Exactly the planned number per rung.* A rung-0 trial holds a screen slot of its bracket
   (slots are granted in trial-number order, as in the engine's slot protocol: a new trial is
   surplus when ``quota`` active rung-0 trials of every bracket precede it). A rung r > 0 is
   *settled* when it has its planned number of completed distinct architectures (or the
   ranking of rung r-1 is exhausted). Promotion out of rung r happens only once rung r is
   settled, so the ranking it uses never changes.
2. *Promotion is a pure function of the settled rung*: walk rung r's distinct architectures
   best first (ties: spec hash) and take them until ``size(r+1)`` of the taken ones have not
   failed at rung r+1 (a candidate that fails at rung r+1 is replaced by the next best).
   Every worker computes the same list, so promotion is idempotent: any worker adds the
   promotions that have no trial yet; two workers adding the same one at once leave two
   trials with one role and one architecture, and the higher-numbered one is closed as
   surplus when claimed (PRUNED, no cost), before anything is trained.
3. *No architecture is trained twice for the same budget.* A claimed (architecture, budget)
   that another trial has completed is reused (cost 0); one that a lower-numbered trial is
   training now is waited for, then reused.
4. *Cost*: each trained trial records the examples it actually processed (the continuation
   only, when it resumed a checkpoint) and its seconds; a rung's cost is their sum.

The functions below are pure: they read a list of FrozenTrials and return decisions, so every
worker, the status command and the tests see one truth.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

from optuna.trial import FrozenTrial, TrialState
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tgsage.errors import ConfigError
from tgsage.search.records import is_lost

ROLE_ATTRS = ("bracket", "rung")
ACTIVE = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)


class CascadeConfig(BaseModel):
    """The ``cascade:`` block of a search config (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    prescreen: str | None = Field(
        None,
        description="Optional cheaper training-free score run on every proposal before "
        "screen; only its best prescreen_keep are scored by screen.",
    )
    prescreen_keep: int | None = Field(
        None,
        ge=1,
        description="Survivors of the prescreen (default: n_candidates / eta).",
    )
    screen: str = Field(
        "synflow",
        description="Training-free score of rung 0: a zero-cost proxy name, or an expression "
        "over proxies (e.g. 'logrank(meco, synflow)'; ranks against proxy_reference random "
        "architectures).",
    )
    budgets: list[str] = Field(
        ..., min_length=1, description="Training budgets of rungs 1..R, increasing."
    )
    eta: float = Field(3.0, gt=1.0, description="Each trained rung keeps the top 1/eta.")
    keep: int | list[int] | None = Field(
        None,
        description="Survivors of the screen (int; later rungs shrink by eta) or the size "
        "of every trained rung (list, one per budget). Default: n_candidates / eta.",
    )
    rung_scores: list[str] | None = Field(
        None, description="Score of each trained rung (default: the search's score)."
    )
    hyperband: bool = Field(False, description="Hyperband brackets instead of one cascade.")
    rounds: int = Field(1, ge=1, description="How many times the plan runs.")
    continue_training: bool = Field(
        True, description="Rung r resumes rung r-1's checkpoint instead of starting again."
    )
    cache: Path | None = Field(
        None,
        description="JSONL evaluation cache shared by repeated searches (see "
        "tgsage.search.evaluation_cache); checkpoints go beside it.",
    )
    checkpoints: Path | None = Field(
        None,
        description="Folder of the training checkpoints rungs continue from (default: "
        "<cache>.checkpoints with a cache, else <run_dir>/checkpoints).",
    )

    @field_validator("budgets")
    @classmethod
    def _budgets(cls, v: list[str]) -> list[str]:
        from tgsage.train import Budget

        parsed = []
        for b in v:
            try:
                parsed.append(Budget.parse(b))
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        units = {p.unit for p in parsed}
        if len(units) > 1:
            raise ValueError(f"budgets must share one unit (steps, epochs or examples), got {v}")
        if any(b.amount <= a.amount for a, b in pairwise(parsed)):
            raise ValueError(f"budgets must increase strictly, got {v}")
        if parsed[0].amount <= 0:
            raise ValueError("the first budget must be positive (rung 0 is the screen)")
        return v

    @model_validator(mode="after")
    def _shape(self) -> CascadeConfig:
        r = len(self.budgets)
        if isinstance(self.keep, list):
            if len(self.keep) != r:
                raise ValueError(f"keep lists one size per budget ({r}), got {len(self.keep)}")
            if any(k < 1 for k in self.keep) or any(b > a for a, b in pairwise(self.keep)):
                raise ValueError(f"keep sizes must be >= 1 and non-increasing, got {self.keep}")
        elif self.keep is not None and self.keep < 1:
            raise ValueError("keep must be >= 1")
        if self.hyperband and self.keep is not None:
            raise ValueError("hyperband sizes its brackets itself: leave keep out")
        if self.rung_scores is not None and len(self.rung_scores) != r:
            raise ValueError(f"rung_scores lists one score per budget ({r})")
        if self.prescreen_keep is not None and self.prescreen is None:
            raise ValueError("prescreen_keep needs a prescreen (a training-free score)")
        return self


@dataclass(frozen=True)
class Rung:
    """One rung of one bracket: its size (completed distinct architectures wanted) and
    budget (None for the screen)."""

    bracket: int
    index: int  # untrained rungs first (the screen, or a prescreen and the screen), then trained
    size: int
    budget: str | None
    score: str
    stage: str = ""  # "prescreen", "screen" or the budget: what status and reports show

    @property
    def role(self) -> tuple[int, int]:
        return (self.bracket, self.index)

    @property
    def trained(self) -> bool:
        return self.budget is not None


@dataclass(frozen=True)
class CascadePlan:
    """Every bracket's rungs; ``rungs[b][0]`` is bracket b's first untrained rung (its screen,
    or its prescreen)."""

    rungs: tuple[tuple[Rung, ...], ...]
    budgets: tuple[str, ...]

    @property
    def brackets(self) -> int:
        return len(self.rungs)

    def rung(self, bracket: int, index: int) -> Rung:
        return self.rungs[bracket][index]

    def all_rungs(self) -> list[Rung]:
        return [r for b in self.rungs for r in b]

    @property
    def screen_total(self) -> int:
        return sum(b[0].size for b in self.rungs)

    def nominal_examples(self, examples: Mapping[str, int], continued: bool = True) -> int:
        """The plan's cost in examples if every rung is full: sum of size x examples, where a
        continued survivor pays only the difference to the budget of its previous rung."""
        total = 0
        for b in self.rungs:
            prev = 0
            for r in b:
                if r.budget is None:
                    continue  # untrained rungs cost no examples
                e = examples[r.budget]
                total += r.size * (e - prev if continued else e)
                prev = e if continued else 0
        return total


def make_plan(config: CascadeConfig, n_candidates: int, score: str = "p+tg") -> CascadePlan:
    """The rungs of a cascade (successive halving or Hyperband) screening ``n_candidates``
    proposals per bracket."""
    budgets = list(config.budgets)
    scores = list(config.rung_scores) if config.rung_scores else [score] * len(budgets)
    eta, r_max = config.eta, len(budgets)
    shapes: list[list[tuple[int, int]]] = []  # per bracket: (budget index, size)
    if config.hyperband:
        s_max = r_max - 1
        for s in range(s_max, -1, -1):
            n = math.ceil((s_max + 1) / (s + 1) * eta**s)
            start = r_max - 1 - s
            sizes = [max(1, math.floor(n / eta**i)) for i in range(s + 1)]
            shapes.append([(start + i, k) for i, k in enumerate(sizes)])
    else:
        if isinstance(config.keep, list):
            sizes = list(config.keep)
        else:
            first = config.keep if config.keep is not None else max(1, int(n_candidates // eta))
            sizes = [first]
            for _ in budgets[1:]:
                sizes.append(max(1, math.floor(sizes[-1] / eta)))
        shapes.append(list(enumerate(sizes)))
    rungs: list[tuple[Rung, ...]] = []
    for _ in range(config.rounds):
        for shape in shapes:
            b = len(rungs)
            screened = n_candidates
            row = []
            if config.prescreen is not None:
                screened = (
                    config.prescreen_keep
                    if config.prescreen_keep is not None
                    else max(1, int(n_candidates // eta))
                )
                if screened > n_candidates:
                    raise ConfigError(
                        f"cascade: the prescreen keeps {screened} of only {n_candidates} "
                        "proposals; raise n_candidates or lower prescreen_keep"
                    )
                row.append(Rung(b, 0, n_candidates, None, config.prescreen, "prescreen"))
            if shape[0][1] > screened:
                what = "proposals" if config.prescreen is None else "prescreen survivors"
                fix = "n_candidates" if config.prescreen is None else "prescreen_keep"
                raise ConfigError(
                    f"cascade: the screen keeps {shape[0][1]} of only {screened} {what}; "
                    f"raise {fix} or lower keep"
                )
            row.append(Rung(b, len(row), screened, None, config.screen, "screen"))
            first = len(row)
            row += [
                Rung(b, first + i, k, budgets[bi], scores[bi], budgets[bi])
                for i, (bi, k) in enumerate(shape)
            ]
            rungs.append(tuple(row))
    return CascadePlan(tuple(rungs), tuple(budgets))


# ---------------------------------------------------------------------------- roles
def _is_surplus(t: FrozenTrial) -> bool:
    return bool(t.user_attrs.get("surplus"))


def _declared(t: FrozenTrial) -> tuple[int, int] | None:
    a = t.user_attrs
    if "rung" in a and "bracket" in a:
        return int(a["bracket"]), int(a["rung"])
    return None


def role_of(t: FrozenTrial, by_number: Mapping[int, FrozenTrial]) -> tuple[int, int] | None:
    """``(bracket, rung)`` of a trial: its own attributes, else (a retry of a lost trial)
    those of the trial it retries; None for a fresh trial that has not declared one yet."""
    role = _declared(t)
    if role is not None:
        return role
    origin = t.system_attrs.get("failed_trial")
    if origin is None:
        origin = t.user_attrs.get("retry_of")
    if origin is not None and int(origin) in by_number:
        return _declared(by_number[int(origin)])
    return None


def spec_hash_of(t: FrozenTrial, by_number: Mapping[int, FrozenTrial]) -> str | None:
    h = t.user_attrs.get("spec_hash")
    if h is None:
        origin = t.system_attrs.get("failed_trial", t.user_attrs.get("retry_of"))
        if origin is not None and int(origin) in by_number:
            h = by_number[int(origin)].user_attrs.get("spec_hash")
    return None if h is None else str(h)


def is_failed(t: FrozenTrial) -> bool:
    """A FAIL a worker recorded (the candidate itself failed), not a lost or stopped worker."""
    return t.state == TrialState.FAIL and not is_lost(t)


# ---------------------------------------------------------------------------- state
@dataclass
class RungState:
    """One rung as the storage has it now."""

    rung: Rung
    complete: int = 0  # completed trials (reused ones included)
    distinct: int = 0  # completed distinct architectures
    running: int = 0
    waiting: int = 0
    failed: int = 0
    lost: int = 0
    reused: int = 0
    examples: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    settled: bool = False
    ranking: list[tuple[str, float, int]] = field(default_factory=list)  # hash, value, trial
    promoted: list[str] = field(default_factory=list)  # hashes sent to the next rung

    @property
    def best(self) -> tuple[str, float, int] | None:
        return self.ranking[0] if self.ranking else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "bracket": self.rung.bracket,
            "rung": self.rung.index,
            "budget": self.rung.budget,
            "stage": self.rung.stage or self.rung.budget or "screen",
            "score": self.rung.score,
            "size": self.rung.size,
            "complete": self.complete,
            "distinct": self.distinct,
            "running": self.running,
            "waiting": self.waiting,
            "failed": self.failed,
            "lost": self.lost,
            "reused": self.reused,
            "examples": self.examples,
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
            "settled": self.settled,
            "promoted": len(self.promoted),
            "best": None
            if not self.ranking
            else {
                "spec_hash": self.ranking[0][0],
                "value": self.ranking[0][1],
                "trial": self.ranking[0][2],
            },
        }


@dataclass(frozen=True)
class Promotion:
    """A survivor of ``source`` (a settled rung) that has no trial at ``rung`` yet."""

    bracket: int
    rung: int
    spec_hash: str
    source: int  # trial number of its completed trial at the rung below (params, spec)


@dataclass
class CascadeState:
    """The whole cascade from one snapshot of the trials."""

    plan: CascadePlan
    rungs: dict[tuple[int, int], RungState]
    missing: list[Promotion]  # promotions to add (idempotent)
    finished: bool

    def rung(self, bracket: int, index: int) -> RungState:
        return self.rungs[(bracket, index)]

    @property
    def answer(self) -> tuple[str, float, int] | None:
        """Best architecture of the last rungs: (spec hash, score, trial number)."""
        tops = [
            self.rungs[b[-1].role].best
            for b in self.plan.rungs
            if self.rungs[b[-1].role].settled and self.rungs[b[-1].role].best is not None
        ]
        tops = [t for t in tops if t is not None]
        return max(tops, key=lambda t: (t[1], -t[2])) if tops else None

    @property
    def ranked(self) -> list[tuple[str, float, int]]:
        """Every scored architecture, best first by the cascade's own order: those that
        reached a bracket's last rung first, then the next rung down, ...; by score within a
        depth (scores of different rungs are different scores and never compared). Each
        architecture once, at the deepest rung it reached: (spec hash, score, trial number)."""
        entries = []
        for bracket in self.plan.rungs:
            last = bracket[-1].index
            for rung in bracket:
                for h, v, n in self.rungs[rung.role].ranking:
                    entries.append((last - rung.index, -v, n, h, v))
        out, seen = [], set()
        for _, _, n, h, v in sorted(entries):
            if h not in seen:
                seen.add(h)
                out.append((h, v, n))
        return out

    @property
    def examples(self) -> int:
        return sum(r.examples for r in self.rungs.values())

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.rungs.values())


def _ranking(done: Iterable[tuple[FrozenTrial, str]]) -> list[tuple[str, float, int]]:
    """Distinct architectures best first (ties: spec hash); the earliest trial names each."""
    best: dict[str, tuple[float, int]] = {}
    for t, h in done:
        if t.value is None or math.isnan(t.value):
            continue
        if h not in best or t.number < best[h][1]:
            best[h] = (float(t.value), t.number)
    return sorted(((h, v, n) for h, (v, n) in best.items()), key=lambda x: (-x[1], x[0]))


def cascade_state(
    trials: Sequence[FrozenTrial], plan: CascadePlan, max_retries: int = 3
) -> CascadeState:
    """Read the cascade off a snapshot of the study's trials (see the module docstring).

    ``max_retries``: a survivor whose trials at a rung were lost more often than this counts
    as failed there (the engine stops retrying it).
    """
    by_number = {t.number: t for t in trials}
    members: dict[tuple[int, int], list[tuple[FrozenTrial, str | None]]] = {}
    for t in trials:
        if _is_surplus(t):
            continue
        role = role_of(t, by_number)
        if role is not None:
            members.setdefault(role, []).append((t, spec_hash_of(t, by_number)))
    states: dict[tuple[int, int], RungState] = {}
    missing: list[Promotion] = []
    for bracket in plan.rungs:
        below: RungState | None = None
        for rung in bracket:
            st = RungState(rung)
            ts = members.get(rung.role, [])
            done = []
            for t, h in ts:
                st.examples += int(t.user_attrs.get("examples", 0) or 0)
                st.seconds += float(t.user_attrs.get("train_seconds", 0.0) or 0.0) + float(
                    t.user_attrs.get("score_seconds", 0.0) or 0.0
                )
                st.cpu_seconds += float(t.user_attrs.get("cpu_seconds", 0.0) or 0.0)
                if t.state == TrialState.COMPLETE:
                    st.complete += 1
                    st.reused += "reused_from" in t.user_attrs
                    if h is not None:
                        done.append((t, h))
                elif t.state == TrialState.RUNNING:
                    st.running += 1
                elif t.state == TrialState.WAITING:
                    st.waiting += 1
                elif is_failed(t):
                    st.failed += 1
                elif is_lost(t):
                    st.lost += 1
            st.ranking = _ranking(done)
            st.distinct = len(st.ranking)
            if rung.index == 0:
                st.settled = st.complete >= rung.size and st.running == 0 and st.waiting == 0
            elif below is not None and below.settled:
                _promote(below, st, ts, max_retries, missing)
            states[rung.role] = st
            below = st
    finished = all(states[b[-1].role].settled for b in plan.rungs)
    return CascadeState(plan, states, missing, finished)


def _promote(
    below: RungState,
    st: RungState,
    ts: list[tuple[FrozenTrial, str | None]],
    max_retries: int,
    missing: list[Promotion],
) -> None:
    """Fill ``below.promoted`` (the walk of invariant 2), list missing trials, settle ``st``."""
    by_hash: dict[str, list[FrozenTrial]] = {}
    for t, h in ts:
        if h is not None:
            by_hash.setdefault(h, []).append(t)
    ok = 0
    open_ = False
    for h, _, source in below.ranking:
        if ok >= st.rung.size:
            break
        below.promoted.append(h)
        attempts = by_hash.get(h, [])
        if any(t.state == TrialState.COMPLETE for t in attempts):
            ok += 1
        elif any(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in attempts):
            ok += 1
            open_ = True
        elif any(is_failed(t) for t in attempts) or sum(map(is_lost, attempts)) > max_retries:
            continue  # failed here: the next best takes its place
        else:
            ok += 1
            open_ = True
            missing.append(Promotion(st.rung.bracket, st.rung.index, h, source))
    st.settled = not open_ and st.running == 0 and st.waiting == 0


# ---------------------------------------------------------------------------- claims
Decision = Literal["ok", "surplus", "wait"]


def claim(
    trials: Sequence[FrozenTrial], number: int, plan: CascadePlan
) -> tuple[Decision, tuple[int, int] | None]:
    """May trial ``number`` (just claimed with ``study.ask()``) do work, and in which role?

    - a promotion or a retry has its role; it is surplus when a lower-numbered active trial
      holds the same role for the same architecture (rung > 0) or when its bracket's screen
      slots are all held by lower-numbered trials (rung 0);
    - a fresh trial takes a screen slot of the first bracket with one free below it, and is
      surplus when there is none; it must ``wait`` while a lower-numbered fresh trial has not
      declared its role yet (a few milliseconds, or until a lost worker's trial is swept).
    """
    by_number = {t.number: t for t in trials}
    me = by_number[number]
    role = role_of(me, by_number)
    active_before = [
        t for t in trials if t.number < number and t.state in ACTIVE and not _is_surplus(t)
    ]
    if role is not None and role[1] > 0:
        h = spec_hash_of(me, by_number)
        for t in active_before:
            if role_of(t, by_number) == role and spec_hash_of(t, by_number) == h:
                return "surplus", role
        return "ok", role
    if role is None and any(
        t.state == TrialState.RUNNING and role_of(t, by_number) is None for t in active_before
    ):
        return "wait", None
    held: dict[int, int] = {}
    for t in active_before:
        r = role_of(t, by_number)
        if r is not None and r[1] == 0:
            held[r[0]] = held.get(r[0], 0) + 1
    brackets = [role[0]] if role is not None else range(plan.brackets)
    for b in brackets:
        if held.get(b, 0) < plan.rung(b, 0).size:
            return "ok", (b, 0)
    return "surplus", role


def answer_trial(
    trials: Sequence[FrozenTrial], plan: CascadePlan, max_retries: int = 3
) -> FrozenTrial | None:
    """The completed trial naming the cascade's answer (the best of its settled last rungs;
    :attr:`CascadeState.answer`), or None while no last rung is settled."""
    answer = cascade_state(trials, plan, max_retries).answer
    if answer is None:
        return None
    return next(t for t in trials if t.number == answer[2])


def screen_open(trials: Sequence[FrozenTrial], plan: CascadePlan) -> bool:
    """True while some bracket's screen has fewer active rung-0 trials than its quota (a new
    proposal may get a slot)."""
    by_number = {t.number: t for t in trials}
    held: dict[int, int] = {}
    for t in trials:
        if t.state in ACTIVE and not _is_surplus(t):
            r = role_of(t, by_number)
            if r is not None and r[1] == 0:
                held[r[0]] = held.get(r[0], 0) + 1
    return any(held.get(b, 0) < plan.rung(b, 0).size for b in range(plan.brackets))


def deepest_budget(trials: Sequence[FrozenTrial], budgets: Sequence[str]) -> str | None:
    """The largest budget with a completed trial (None: only the screen has results), whose
    scores the leaderboard ranks (scores of different rungs do not compare)."""
    done = {t.user_attrs.get("budget") for t in trials if t.state == TrialState.COMPLETE}
    found = [b for b in budgets if b in done]
    return found[-1] if found else None


def previous_budget(
    trials: Sequence[FrozenTrial], spec_hash: str, budget: str, budgets: Sequence[str]
) -> str | None:
    """The largest budget below ``budget`` at which this study completed ``spec_hash`` (the
    run a continued training resumes), or None."""
    below = set(budgets[: list(budgets).index(budget)]) if budget in budgets else set()
    done = {
        t.user_attrs.get("budget")
        for t in trials
        if t.state == TrialState.COMPLETE and t.user_attrs.get("spec_hash") == spec_hash
    }
    found = [b for b in budgets if b in below and b in done]
    return found[-1] if found else None


TRANSIENT = frozenset({"interrupted", "error"})  # failures worth another attempt


def twin(
    trials: Sequence[FrozenTrial],
    number: int,
    spec_hash: str,
    budget: str | None,
    screen: str | None = None,
) -> FrozenTrial | None:
    """Another trial that evaluated the same architecture at the same budget (an original:
    COMPLETE, or FAIL for a reason of the candidate itself), or is evaluating it now (RUNNING,
    lower number): reuse its result, or wait for it. Untrained rungs (``budget`` None) match
    by their training-free score too (``screen``; a trial recorded without one, from a
    cascade without a prescreen, matches any)."""
    found = None
    for t in trials:
        a = t.user_attrs
        if t.number == number or a.get("spec_hash") != spec_hash or a.get("budget") != budget:
            continue
        if budget is None and screen is not None and a.get("screen", screen) != screen:
            continue
        if "reused_from" in a:
            continue
        if t.state == TrialState.COMPLETE or (
            is_failed(t) and a["failure_reason"] not in TRANSIENT
        ):
            return t
        if t.state == TrialState.RUNNING and t.number < number and found is None:
            found = t
    return found


__all__ = [
    "CascadeConfig",
    "CascadePlan",
    "CascadeState",
    "Promotion",
    "Rung",
    "RungState",
    "answer_trial",
    "cascade_state",
    "claim",
    "deepest_budget",
    "make_plan",
    "previous_budget",
    "role_of",
    "screen_open",
    "twin",
]
