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


def cascade_view(run: SearchRun) -> dict[str, Any]:
    """A cascade's rungs, its survivors' score trajectories, its answer and the trials of its
    deepest rung reached (what :func:`build_search_report` shows for a cascade)."""
    from optuna.trial import TrialState

    from tgsage.search.cascade import cascade_state, deepest_budget, make_plan

    config = run.config
    assert config.cascade is not None
    plan = make_plan(config.cascade, config.n_candidates, config.score)
    trials = run.study.get_trials(deepcopy=False)
    state = cascade_state(trials, plan, config.max_retries)
    level = {b: i for i, b in enumerate(plan.budgets)}
    paths: dict[str, list[tuple[int, float]]] = {}
    for t in trials:
        budget = t.user_attrs.get("budget")
        if t.state == TrialState.COMPLETE and budget in level and t.value is not None:
            h = str(t.user_attrs.get("spec_hash"))
            if (level[budget], t.value) not in paths.setdefault(h, []):
                paths[h].append((level[budget], float(t.value)))
    deepest = deepest_budget(trials, plan.budgets)
    answer = state.answer
    return {
        "rungs": [r.as_dict() for r in state.rungs.values()],
        "trajectories": paths,
        "budgets": list(plan.budgets),
        "answer": answer[0] if answer else None,
        "deepest": [
            t.number
            for t in trials
            if t.user_attrs.get("budget") == deepest and t.state == TrialState.COMPLETE
        ],
    }


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
    cascade = cascade_view(run) if run.config.cascade is not None else None
    if cascade is not None:  # the leaderboard ranks one rung: scores of rungs differ in kind
        deepest = set(cascade["deepest"])
        records = [r for r in records if r.number in deepest]
    files = build_search_report(
        records,
        out_dir if out_dir is not None else run.run_dir / "report",
        teacher,
        rerank=rerank,
        title=f"tgsage search report: {run.config.name}",
        subtitle=f"storage {dashboard_target(run.storage)}",
        leaderboard_size=top,
        cascade=cascade,
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
