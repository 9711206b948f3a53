"""Progress of a search read from its storage: counts, cost so far, the leaderboard."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import optuna
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

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


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def leaderboard_table(rows: list[Row], title: str = "leaderboard") -> Table:
    table = Table(title=title, title_justify="left")
    for col, just in (
        ("#", "right"),
        ("trial", "right"),
        ("score", "right"),
        ("P", "right"),
        ("TG", "right"),
        ("examples", "right"),
        ("spec", "left"),
        ("worker", "left"),
    ):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for i, r in enumerate(rows, 1):
        spec = r.spec_hash + (f" (= #{r.reused_from})" if r.reused_from is not None else "")
        table.add_row(
            str(i),
            str(r.number),
            _fmt(r.score),
            _fmt(r.p),
            _fmt(r.tg),
            f"{r.examples:,}",
            spec,
            r.worker,
        )
    return table


def summary_line(s: SearchStatus) -> str:
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


def render_status(s: SearchStatus) -> RenderableType:
    """A rich renderable: header, counts, cost, failure reasons and the leaderboard."""
    head = Text.assemble(
        (f"{s.study}", "bold"),
        f"  {s.space} space, {s.strategy}, score {s.score}  ({s.storage})\n",
        summary_line(s),
    )
    parts: list[RenderableType] = [head]
    if s.counts.reasons:
        parts.append(Text("failures: " + json.dumps(s.counts.reasons)))
    parts.append(leaderboard_table(s.leaderboard, f"top {len(s.leaderboard)} by score"))
    return Group(*parts)
