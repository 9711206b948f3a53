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

    @property
    def complete(self) -> int:
        return self.counts.complete

    @property
    def cost(self) -> int:
        return self.counts.cost

    @property
    def finished(self) -> bool:
        return self.counts.complete >= self.n_candidates

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["finished"] = self.finished
        return d


def status_of(
    study: optuna.Study, config: SearchConfig, storage_url: str | None = None, top: int = 5
) -> SearchStatus:
    trials = study.get_trials(deepcopy=False)
    return SearchStatus(
        study=study.study_name,
        storage=redact(storage_url or config.storage_url),
        n_candidates=config.n_candidates,
        counts=count_trials(trials),
        leaderboard=leaderboard(trials, top),
        strategy=config.strategy,
        score=config.score,
        space=config.space,
    )


def search_status(storage: str, study: str, top: int = 5) -> SearchStatus:
    """The status of study ``study`` in the storage at URL ``storage``."""
    s, config = load_study(storage, study)
    return status_of(s, config, storage, top)


def summary_line(s: SearchStatus) -> str:
    """Counts and cost in one line: "3/10 completed, 2 running, 0 failed, cost 900 examples"."""
    c = s.counts
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
