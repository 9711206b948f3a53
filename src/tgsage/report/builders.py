"""Standard reports: a search (leaderboard, cost, progress, RDMs, drawings) and a predictivity
pool (correlation curves, alpha sweep, scatter plots), each as PNGs plus one HTML page."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tgsage.errors import TgsageError
from tgsage.experiments.efficiency import best_so_far
from tgsage.experiments.predictivity import pool_summary
from tgsage.experiments.records import CandidateRecord, PoolRecord, as_candidate_records
from tgsage.experiments.rerank import RerankResult, top_k
from tgsage.experiments.stats import (
    AlphaRow,
    PredictivityRow,
    alpha_sweep,
    pool_budgets,
    predictivity_table,
    side_by_side,
)
from tgsage.report.drawings import draw_spec
from tgsage.report.html import Section, write_html_report
from tgsage.report.plots import (
    plot_best_so_far,
    plot_cascade,
    plot_predictivity,
    plot_predictivity_panels,
    plot_rdm_heatmap,
    plot_scatter,
    plot_similarity_matrix,
)

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------- tables
def side_by_side_rows(
    table: Sequence[PredictivityRow], metric: str = "spearman"
) -> list[dict[str, Any]]:
    """One row per score, one column per budget: "value [low, high]" of ``metric``."""
    grid = side_by_side(table, metric)
    rows = []
    for i, score in enumerate(grid.scores):
        row: dict[str, Any] = {"score": score}
        for j, b in enumerate(grid.budgets):
            v, lo, hi = grid.value[i, j], grid.low[i, j], grid.high[i, j]
            row[b] = (
                "-"
                if not np.isfinite(v)
                else (
                    f"{v:.2f} [{lo:.2f}, {hi:.2f}]"
                    if np.isfinite(lo) and np.isfinite(hi)
                    else f"{v:.2f}"
                )
            )
        rows.append(row)
    return rows


def leaderboard_rows(
    records: Iterable[Any], top: int = 20, by: str = "score"
) -> list[dict[str, Any]]:
    """The best distinct candidates by ``by``: rank, trial, hash, score, P, TG, S_i, cost."""
    rows = []
    for rank, r in enumerate(top_k(records, top, by), start=1):
        row: dict[str, Any] = {
            "rank": rank,
            "trial": r.number,
            "spec_hash": r.spec_hash or "",
            "score": r.score,
            "P": r.accuracy,
            "TG": r.tg,
        }
        for name, v in r.per_layer.items():
            row[f"S_{name}"] = v
        if r.mature_accuracy is not None:
            row["mature_accuracy"] = r.mature_accuracy
        row["examples"] = r.examples
        rows.append(row)
    return rows


def cost_rows(records: Iterable[Any], rerank: RerankResult | None = None) -> list[dict[str, Any]]:
    """The search's cost in the paper's terms: M1 candidates x E1 examples (+ M2 x E2)."""
    recs = [r for r in as_candidate_records(records) if r.status in ("ok", "failed")]
    m1 = len(recs)
    e1 = sum(r.cost for r in recs)
    failed = sum(not r.ok for r in recs)
    reused = sum(r.reused_from is not None for r in recs)
    secs = sum((r.train_seconds or 0.0) + (r.score_seconds or 0.0) for r in recs)
    rows: list[dict[str, Any]] = [
        {
            "stage": "search (M1 x E1)",
            "candidates": m1,
            "failed": failed,
            "reused": reused,
            "mean examples": e1 / m1 if m1 else 0.0,
            "examples": e1,
            "seconds": secs,
        },
    ]
    total = e1
    if rerank is not None:
        rows.append(
            {
                "stage": "rerank (M2 x E2)",
                "candidates": rerank.m2,
                "failed": sum(e.status != "ok" for e in rerank.entries),
                "reused": 0,
                "mean examples": rerank.e2,
                "examples": rerank.e2_total,
                "seconds": None,
            }
        )
        total += rerank.e2_total
    rows.append(
        {
            "stage": "total",
            "candidates": None,
            "failed": None,
            "reused": None,
            "mean examples": None,
            "examples": total,
            "seconds": None,
        }
    )
    return rows


def _rung_row(r: Mapping[str, Any]) -> dict[str, Any]:
    best = r.get("best")
    return {
        "bracket": r["bracket"],
        "rung": r["rung"],
        "budget": r.get("stage") or r["budget"] or "screen",
        "score": r["score"],
        "size": r["size"],
        "completed": min(r["complete"], r["size"]),
        "failed": r["failed"],
        "promoted": r["promoted"],
        "examples": r["examples"],
        "CPU seconds": r.get("cpu_seconds"),
        "best": None if best is None else f"{best['spec_hash']} ({best['value']:.4g})",
    }


def _similarity(
    best: CandidateRecord | None, given: Any
) -> tuple[np.ndarray, list[str], list[str]] | None:
    if given is not None:
        if hasattr(given, "similarity") and hasattr(given, "teacher_layers"):  # Guidance
            sim = given.similarity
            return (
                np.asarray(sim.tolist() if hasattr(sim, "tolist") else sim, float),
                list(given.teacher_layers),
                list(given.candidate_layers),
            )
        if isinstance(given, Mapping):
            return (
                np.asarray(given["similarity"], float),
                list(given["teacher_layers"]),
                list(given["candidate_layers"]),
            )
        sim, t, c = given
        return np.asarray(sim, float), list(t), list(c)
    if best is not None and best.similarity and best.teacher_layers and best.candidate_layers:
        return np.asarray(best.similarity, float), best.teacher_layers, best.candidate_layers
    return None


# ---------------------------------------------------------------------- search report
def build_search_report(
    records: Iterable[Any],
    out_dir: str | Path,
    teacher: Any = None,
    best_similarity: Any = None,
    *,
    candidate_rdms: Any = None,
    rerank: RerankResult | None = None,
    title: str = "tgsage search report",
    subtitle: str | None = None,
    drawings: int = 3,
    leaderboard_size: int = 20,
    cascade: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write the standard search figures and ``report.html`` into ``out_dir``.

    Args:
        records: the search's candidates (CandidateRecords, e.g. from
            :func:`~tgsage.experiments.records_from_study`, or dicts).
        teacher: a :class:`~tgsage.teacher.Teacher` -> heatmaps of its RDMs.
        best_similarity: the best candidate's teacher x candidate similarity (a Guidance, a
            dict with ``similarity``/``teacher_layers``/``candidate_layers``, or a tuple);
            default: the one stored with the best record, if any.
        candidate_rdms: RDMs of the best candidate (e.g. ``network_rdms``) -> heatmaps.
        rerank: a :class:`~tgsage.experiments.RerankResult` -> its cost in the cost table.
        drawings: how many of the best architectures to draw.
        cascade: a cascade search's rungs: ``rungs`` (``SearchStatus.rungs`` rows),
            ``trajectories`` (spec hash -> [(budget index, score), ...]), ``budgets`` and
            ``answer`` (spec hash) -> a rung table and figure; ``records`` should then be the
            candidates of the deepest rung (their scores compare).

    Returns the written files (PNGs, then the HTML page last).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    recs = as_candidate_records(records)
    files: list[Path] = []
    sections: list[Section] = []
    ok = [r for r in recs if r.ok]
    leaders = top_k(recs, max(drawings, 1))
    best = leaders[0] if leaders else None
    n_fail = sum(r.status == "failed" for r in recs)
    summary = (
        f"{len(ok)} scored candidates, {n_fail} failed, "
        f"{sum(r.cost for r in recs):,} examples processed by SGD."
    )
    if best is not None:
        summary += (
            f" Best: trial {best.number} ({best.spec_hash}) with score "
            f"{best.score:.4f}"
            + (f", P {best.accuracy:.4f}" if best.accuracy is not None else "")
            + (f", TG {best.tg:.4f}" if best.tg is not None else "")
            + "."
        )
    sections.append(Section("Summary", summary))
    if cascade is not None:
        files.append(
            plot_cascade(
                cascade["rungs"],
                cascade.get("trajectories", {}),
                out / "cascade.png",
                budgets=cascade.get("budgets", ()),
                answer=cascade.get("answer"),
            )
        )
        sections.append(
            Section(
                "Cascade",
                "Rung 0 screens proposals with a training-free score; each later rung trains "
                "the survivors of the rung below to its budget (continuing their runs) and "
                "promotes the best; the best of the last rung is the answer. Examples and CPU "
                "seconds are each rung's own cost.",
                [files[-1]],
                captions=[
                    "Left: candidates completed and examples spent per rung. Right: every "
                    "trained survivor's score at each budget it reached; the answer in bold."
                ],
                table=[_rung_row(r) for r in cascade["rungs"]],
            )
        )

    # progress against cost (paper Fig. 4, right)
    imgs, caps = [], []
    if ok:
        curves = {"best score": best_so_far(recs, "score")}
        files.append(plot_best_so_far(curves, out / "best_so_far.png", ylabel="best score so far"))
        imgs.append(files[-1])
        caps.append(
            "Best score found so far against examples processed (all candidates, "
            "failed ones included in the cost)."
        )
        if any(r.mature_accuracy is not None for r in ok):
            mature = {
                "max mature accuracy of the top 5": best_so_far(
                    recs, "mature_accuracy", select_top=5
                )
            }
            files.append(
                plot_best_so_far(mature, out / "best_so_far_mature.png", ylabel="mature accuracy")
            )
            imgs.append(files[-1])
            caps.append("Paper Fig. 4: best mature accuracy among the search's current top 5.")
    sections.append(Section("Progress against cost", None, imgs, captions=caps))

    # scatter plots
    imgs, caps = [], []
    labels = [str(r.number) for r in ok]
    sel = [i for i, r in enumerate(ok) if best is not None and r.number == best.number]
    pairs = [
        ("accuracy", "score", "P (premature accuracy)", "score", "scatter_score_p.png"),
        ("tg", "accuracy", "TG", "P (premature accuracy)", "scatter_p_tg.png"),
        ("score", "mature_accuracy", "score", "mature accuracy", "scatter_score_mature.png"),
    ]
    for xk, yk, xl, yl, name in pairs:
        x = np.array([np.nan if r.value(xk) is None else r.value(xk) for r in ok], float)
        y = np.array([np.nan if r.value(yk) is None else r.value(yk) for r in ok], float)
        if (np.isfinite(x) & np.isfinite(y)).sum() >= 2:
            files.append(
                plot_scatter(x, y, out / name, labels, xlabel=xl, ylabel=yl, highlight=sel)
            )
            imgs.append(files[-1])
            caps.append(f"{yl} vs {xl}; the best candidate is circled.")
    if imgs:
        sections.append(Section("Scores and accuracies", None, imgs, captions=caps))

    # RDMs and similarity
    imgs, caps = [], []
    if teacher is not None:
        files.append(
            plot_rdm_heatmap(
                teacher.rdms, out / "teacher_rdms.png", title=f"Teacher RDMs ({teacher.source})"
            )
        )
        imgs.append(files[-1])
        caps.append(
            f"Teacher RDMs, {teacher.rdms.n_conditions} conditions"
            + (f" grouped by {teacher.grouping}" if teacher.grouping else "")
            + "."
        )
    if candidate_rdms is not None:
        files.append(
            plot_rdm_heatmap(
                candidate_rdms, out / "candidate_rdms.png", title="Best candidate's RDMs"
            )
        )
        imgs.append(files[-1])
        caps.append("RDMs of the best candidate's layers.")
    sim = _similarity(best, best_similarity)
    if sim is not None:
        files.append(plot_similarity_matrix(*sim, out / "best_similarity.png"))
        imgs.append(files[-1])
        caps.append(
            "Teacher x candidate RDM similarity of the best candidate; the outlined "
            "cell of each row is that teacher layer's S_i."
        )
    if imgs:
        sections.append(Section("Representations", None, imgs, captions=caps))

    # drawings
    imgs, caps = [], []
    for rank, r in enumerate(leaders[:drawings], start=1):
        if not r.spec:
            continue
        try:
            paths = draw_spec(
                r.spec,
                out / f"architecture_{rank}.png",
                title=f"#{rank}: trial {r.number} (score {r.score:.4f})",
            )
        except TgsageError as exc:
            log.warning("could not draw trial %d: %s", r.number, exc)
            continue
        files += paths
        imgs += paths
        caps += [f"#{rank} trial {r.number}, spec {r.spec_hash}"] * len(paths)
    if imgs:
        sections.append(Section("Best architectures", None, imgs, captions=caps))

    sections.append(Section("Leaderboard", None, table=leaderboard_rows(recs, leaderboard_size)))
    text = "Cost in examples processed by SGD (paper 4.3: M1*E1 + M2*E2)."
    if rerank is not None and rerank.best is not None:
        text += (
            f" Re-ranking the top {rerank.m2} chose trial {rerank.best.number} "
            f"({rerank.best.spec_hash}) at accuracy {rerank.best_accuracy:.4f}."
        )
    sections.append(Section("Cost", text, table=cost_rows(recs, rerank)))
    if rerank is not None:
        sections.append(Section("Re-ranking", None, table=[e.__dict__ for e in rerank.entries]))
    files.append(write_html_report(out / "report.html", title, sections, subtitle))
    return files


# ---------------------------------------------------------------------- predictivity report
def _default_budget(budgets: Sequence[str]) -> str:
    return "2ep" if "2ep" in budgets else budgets[len(budgets) // 2]


def build_predictivity_report(
    records: Sequence[PoolRecord | Mapping[str, Any]],
    out_dir: str | Path,
    *,
    table: Sequence[PredictivityRow] | None = None,
    alpha_rows: Sequence[AlphaRow] | None = None,
    alphas: Sequence[float] = (0.0, 0.5, 1.0, 2.0, 4.0),
    budget: str | None = None,
    alpha: float = 1.0,
    k: int = 5,
    n_boot: int = 1000,
    seed: int = 0,
    title: str = "tgsage predictivity report",
) -> list[Path]:
    """Figures and ``report.html`` for a predictivity pool (paper Figs. 2-3): correlation of
    each score with mature accuracy per budget (bands: bootstrap 95% intervals), the alpha
    sweep, P and P+TG against mature accuracy at ``budget``, and the tables."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    recs = [r if isinstance(r, PoolRecord) else PoolRecord.from_dict(r) for r in records]
    ok = [r for r in recs if r.ok]
    table = (
        list(table)
        if table is not None
        else predictivity_table(recs, k=k, alpha=alpha, n_boot=n_boot, seed=seed)
    )
    if alpha_rows is None and any(p.tg is not None for r in ok for p in r.points):
        alpha_rows = alpha_sweep(recs, alphas)
    files: list[Path] = []
    s = pool_summary(recs)
    sections = [
        Section(
            "Pool",
            f"{s['ok']} architectures measured, {s['failed']} failed "
            f"{s['failure_reasons'] or ''}; {s['examples']:,} examples to maturity.",
        )
    ]
    imgs, caps = [], []
    if table:
        for metric in ("pearson", "spearman"):
            files.append(
                plot_predictivity(
                    table, out / f"predictivity_{metric}.png", metric=metric, alpha_rows=alpha_rows
                )
            )
            imgs.append(files[-1])
            caps.append(
                f"{metric} correlation with mature accuracy per premature budget "
                "(bands: bootstrap 95% intervals); right: the alpha sweep."
            )
    budgets = pool_budgets(ok)
    if budgets:
        b = budget or _default_budget(budgets)
        y = [r.mature_accuracy for r in ok]
        for score in ("P", "P+TG"):
            x = [r.value(b, score, alpha) for r in ok]
            if sum(v is not None for v in x) >= 2:
                xa = np.array([np.nan if v is None else v for v in x], float)
                name = "scatter_" + score.replace("+", "_") + ".png"
                files.append(
                    plot_scatter(
                        xa,
                        np.array(y, float),
                        out / name,
                        xlabel=f"{score} at {b}",
                        ylabel="mature accuracy",
                    )
                )
                imgs.append(files[-1])
                caps.append(f"Paper Fig. 3 (top): {score} at {b} vs mature accuracy.")
    if table:
        files.append(plot_predictivity_panels(table, out / "predictivity_side_by_side.png"))
        imgs.append(files[-1])
        caps.append(
            "Every score side by side: Spearman, Kendall and precision@k with mature "
            "accuracy per budget (bands: bootstrap 95% intervals; dotted: zero-cost "
            "proxies, measured once at initialisation)."
        )
    if imgs:
        sections.append(Section("Predictivity", None, imgs, captions=caps))
    truth = {r.mature_source for r in ok}
    if truth == {"table"}:
        sections.append(
            Section(
                "Mature accuracy",
                "Read from the ground-truth table (published accuracies), not trained here.",
            )
        )
    for metric in ("spearman", "kendall", "precision_at_k") if table else ():
        sections.append(
            Section(
                f"Side by side: {metric}",
                "value [95% bootstrap interval]; rows: scores, columns: premature budgets.",
                table=side_by_side_rows(table, metric),
            )
        )
    sections.append(
        Section("Correlations with mature accuracy", None, table=[r.as_dict() for r in table])
    )
    if alpha_rows:
        sections.append(Section("Alpha sweep", None, table=[r.as_dict() for r in alpha_rows]))
    files.append(write_html_report(out / "report.html", title, sections))
    return files
