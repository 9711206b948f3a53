"""The report of a stored search: its records, teacher and re-ranking, in one call.

``tgsage report`` and the demo both use :func:`report_search_run`; the figures and the page
themselves come from :func:`~tgsage.report.builders.build_search_report`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tgsage.errors import TgsageError
from tgsage.experiments.records import CandidateRecord, records_from_study
from tgsage.experiments.rerank import RERANK_FILE, RerankResult, read_rerank
from tgsage.observer import Observer
from tgsage.report.builders import build_search_report, cost_rows

if TYPE_CHECKING:
    from tgsage.search.locate import SearchRun


@dataclass
class RunReport:
    """What :func:`report_search_run` wrote and the numbers a caller prints about it."""

    files: list[Path]  # the figures, then report.html last
    candidates: int
    scored: int
    best: CandidateRecord | None
    total_examples: int  # search plus re-ranking, when there was one
    rerank: RerankResult | None

    @property
    def html(self) -> Path:
        return self.files[-1]


def report_search_run(
    run: SearchRun,
    out_dir: Path | None = None,
    *,
    top: int = 20,
    observer: Observer | None = None,
) -> RunReport:
    """Figures and ``report.html`` for a stored search (default folder ``<run_dir>/report``),
    with its teacher's RDMs when the teacher file is still there and the cost of its
    ``rerank.json`` when one was written. A missing teacher is told to ``observer``."""
    from tgsage.search.locate import dashboard_target
    from tgsage.teacher import Teacher

    observer = observer or Observer()
    records = records_from_study(run.study)
    teacher: Any = None
    if run.config.teacher is not None:
        path = Path(run.config.teacher)
        if not path.exists():
            observer.message(f"note: teacher file {path} not found; teacher RDM heatmaps skipped")
        else:
            try:
                teacher = Teacher.load(path)
            except TgsageError as exc:
                observer.message(f"note: {exc}; teacher RDM heatmaps skipped")
    rerank_path = run.run_dir / RERANK_FILE
    rerank = read_rerank(rerank_path, records) if rerank_path.exists() else None
    files = build_search_report(
        records,
        out_dir if out_dir is not None else run.run_dir / "report",
        teacher,
        rerank=rerank,
        title=f"tgsage search report: {run.config.name}",
        subtitle=f"storage {dashboard_target(run.storage)}",
        leaderboard_size=top,
    )
    scored = [x for x in records if x.ok and x.score is not None]
    best = max(scored, key=lambda x: (x.score, -x.number), default=None)
    return RunReport(
        files=files,
        candidates=len(records),
        scored=len(scored),
        best=best,
        total_examples=cost_rows(records, rerank)[-1]["examples"],
        rerank=rerank,
    )
