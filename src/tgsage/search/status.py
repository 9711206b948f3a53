"""Progress of a search read from its storage: counts, cost so far, the leaderboard.

Plain data (``SearchStatus.as_dict`` for JSON) and one plain-text line; the command line renders
the tables (:mod:`tgsage.cli.display`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import optuna

from tgsage.search.config import SearchConfig
from tgsage.search.records import Counts, Row, count_trials, leaderboard
from tgsage.search.storage import load_study, redact


@dataclass
class SearchStatus:
    """One snapshot of a search (``as_dict`` for JSON)."""

    study: str
    storage: str
    n_candidates: int
    counts: Counts
    leaderboard: list[Row] = field(default_factory=list)
    strategy: str = ""
    score: str = ""
    space: str = ""
    #: a cascade search: one row per (bracket, rung) (:meth:`RungState.as_dict`), else empty
    rungs: list[dict[str, Any]] = field(default_factory=list)
    cascade_finished: bool | None = None  # a cascade: every bracket's last rung settled

    @property
    def complete(self) -> int:
        return self.counts.complete

    @property
    def cost(self) -> int:
        return self.counts.cost

    @property
    def finished(self) -> bool:
        if self.cascade_finished is not None:
            return self.cascade_finished
        return self.counts.complete >= self.n_candidates

    @property
    def planned(self) -> int:
        """Candidates the search will complete: n_candidates, or every rung's size."""
        return sum(r["size"] for r in self.rungs) if self.rungs else self.n_candidates

    @property
    def done(self) -> int:
        """Progress toward :attr:`planned` (a rung counts at most its size)."""
        if not self.rungs:
            return min(self.complete, self.n_candidates)
        return sum(min(r["complete"], r["size"]) for r in self.rungs)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["finished"] = self.finished
        return d


def status_of(
    study: optuna.Study, config: SearchConfig, storage_url: str | None = None, top: int = 5
) -> SearchStatus:
    trials = study.get_trials(deepcopy=False)
    rungs: list[dict[str, Any]] = []
    finished = None
    ranked = trials
    if config.cascade is not None:
        from tgsage.search.cascade import cascade_state, deepest_budget, make_plan

        plan = make_plan(config.cascade, config.n_candidates, config.score)
        state = cascade_state(trials, plan, config.max_retries)
        rungs = [r.as_dict() for r in state.rungs.values()]
        finished = state.finished
        budget = deepest_budget(trials, plan.budgets)  # scores of one rung compare
        ranked = [t for t in trials if t.user_attrs.get("budget") == budget]
    return SearchStatus(
        study=study.study_name,
        storage=redact(storage_url or config.storage_url),
        n_candidates=config.n_candidates,
        counts=count_trials(trials),
        leaderboard=leaderboard(ranked, top),
        strategy=config.strategy,
        score=config.score,
        space=config.space,
        rungs=rungs,
        cascade_finished=finished,
    )


def search_status(storage: str, study: str, top: int = 5) -> SearchStatus:
    """The status of study ``study`` in the storage at URL ``storage``."""
    s, config = load_study(storage, study)
    return status_of(s, config, storage, top)


def summary_line(s: SearchStatus) -> str:
    """Counts and cost in one line: "3/10 completed, 2 running, 0 failed, cost 900 examples"."""
    c = s.counts
    if s.rungs:
        parts = [f"{s.done}/{s.planned} completed over {len(s.rungs)} rungs"]
        parts.append(f"{c.running} running")
    else:
        parts = [f"{c.complete}/{s.n_candidates} completed", f"{c.running} running"]
    if c.waiting:
        parts.append(f"{c.waiting} queued")
    parts.append(f"{c.failed} failed")
    if c.lost:
        parts.append(f"{c.lost} lost (retried: {c.retried})")
    if c.reused:
        parts.append(f"{c.reused} reused")
    parts.append(f"cost {c.cost:,} examples")
    return ", ".join(parts)


def rung_lines(s: SearchStatus) -> list[str]:
    """A cascade's rungs, one line each: "bracket 0 rung 1 (5000ex, p+tg): 9/9 done, 3
    promoted, 45,000 examples, best 0.7312"."""
    out = []
    for r in s.rungs:
        where = f"{r.get('stage') or r['budget'] or 'screen'}, {r['score']}"
        best = f", best {r['best']['value']:.4g}" if r["best"] else ""
        out.append(
            f"bracket {r['bracket']} rung {r['rung']} ({where}): "
            f"{min(r['complete'], r['size'])}/{r['size']} done, {r['running']} running, "
            f"{r['failed']} failed, {r['promoted']} promoted, {r['examples']:,} examples{best}"
        )
    return out
