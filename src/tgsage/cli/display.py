"""Rich renderings shared by several commands: training bars, the live search display, the
search status tables, and the :class:`RichObserver` that library calls report to."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from tgsage.cli.common import console
from tgsage.observer import Observer, StatusCallback, TrainingCallback

if TYPE_CHECKING:
    from tgsage.search.status import SearchStatus


@contextlib.contextmanager
def training_progress(
    description: str, total_examples: int | None, enabled: bool = True
) -> Iterator[Any]:
    """A rich progress bar fed by the trainer's Progress callback (examples processed)."""
    if not enabled:
        yield None
        return
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f} ex"),
        TextColumn("loss {task.fields[loss]:.3f}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with LazyProgress(*columns, transient=False) as bar:

        def update(p: Any) -> None:
            if not bar.task_ids:
                bar.add_task(description, total=total_examples, loss=float("nan"))
            bar.update(bar.task_ids[0], completed=p.examples, loss=p.loss)

        yield update


class LazyProgress(Progress):
    """A rich Progress that appears with its first task: a command that fails on bad input
    before any work starts prints its one error line, not an empty bar above it."""

    def __enter__(self) -> LazyProgress:
        return self  # started by the first add_task; __exit__ stops it (a no-op if never)

    def add_task(self, *args: Any, **kwargs: Any) -> TaskID:
        if not self.live.is_started:
            self.start()
        return super().add_task(*args, **kwargs)


@contextlib.contextmanager
def search_display(
    name: str, n_candidates: int, enabled: bool = True, out: Console | None = None
) -> Iterator[StatusCallback | None]:
    """A progress bar and the live top-5 of a running search, fed by ``run_search``'s
    ``on_status`` snapshots (yields None when disabled)."""
    if not enabled:
        yield None
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        auto_refresh=False,
    )
    task = progress.add_task(name, total=n_candidates, info="")
    with Live(console=out or console, refresh_per_second=4, transient=False) as live:
        from tgsage.search.status import summary_line

        def update(s: SearchStatus) -> None:
            progress.update(
                task,
                total=s.planned,
                completed=s.done,
                info=summary_line(s).split(", ", 1)[1],
            )
            parts: list[RenderableType] = [progress]
            if s.rungs:
                parts.append(rung_table(s.rungs))
            parts.append(leaderboard_table(s.leaderboard, "top 5"))
            live.update(Group(*parts), refresh=True)

        yield update


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def leaderboard_table(rows: list[Any], title: str = "leaderboard") -> Table:
    """The search's best candidates (``tgsage.search.Row``): score, P, TG, cost, spec, worker."""
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


def rung_table(rungs: list[dict[str, Any]], title: str = "cascade rungs") -> Table:
    """A cascade's rungs (``SearchStatus.rungs``): size, progress, promotions, cost, best."""
    table = Table(title=title, title_justify="left")
    columns = ("bracket", "rung", "budget", "score", "size", "done", "running", "failed")
    columns += ("promoted", "examples", "CPU s", "best")
    for col in columns:
        table.add_column(col, justify="left" if col in ("budget", "score") else "right")
    for r in rungs:
        best = r["best"]
        table.add_row(
            str(r["bracket"]),
            str(r["rung"]),
            r.get("stage") or r["budget"] or "screen",
            r["score"],
            str(r["size"]),
            str(min(r["complete"], r["size"])),
            str(r["running"] + r["waiting"]),
            str(r["failed"]),
            str(r["promoted"]),
            f"{r['examples']:,}",
            f"{r['cpu_seconds']:,.0f}",
            "-" if best is None else f"{best['value']:.4g} ({best['spec_hash'][:8]})",
        )
    return table


def render_status(s: SearchStatus) -> RenderableType:
    """Header, counts, cost, failure reasons and the leaderboard of a search."""
    from tgsage.search.status import summary_line

    head = Text.assemble(
        (f"{s.study}", "bold"),
        f"  {s.space} space, {s.strategy}, score {s.score}  ({s.storage})\n",
        summary_line(s),
    )
    parts: list[RenderableType] = [head]
    if s.counts.reasons:
        parts.append(Text("failures: " + json.dumps(s.counts.reasons)))
    title = f"top {len(s.leaderboard)} by score"
    if s.rungs:
        parts.append(rung_table(s.rungs))
        title += " at the deepest rung reached"
    parts.append(leaderboard_table(s.leaderboard, title))
    return Group(*parts)


class RichObserver(Observer):
    """What the commands pass to library calls: news printed, training bars and the live
    search display drawn (bars only when ``bars``; news always)."""

    def __init__(self, bars: bool = True, out: Console | None = None) -> None:
        self.bars = bars
        self.out = out or console

    def message(self, text: str) -> None:
        self.out.print(text, soft_wrap=True, markup=False)

    def training(
        self, description: str, total_examples: int | None
    ) -> AbstractContextManager[TrainingCallback | None]:
        return training_progress(description, total_examples, self.bars)

    def search(self, name: str, n_candidates: int) -> AbstractContextManager[StatusCallback | None]:
        return search_display(name, n_candidates, self.bars, self.out)
