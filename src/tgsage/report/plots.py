"""Report figures: search progress against cost, scatter plots, RDMs, similarity matrices and
predictivity curves. Each function writes one PNG and returns its path (no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tgsage.errors import InputError
from tgsage.experiments.efficiency import BestSoFar, SearchCurve
from tgsage.report._figure import new_figure, save

COLORS = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def _array(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def plot_best_so_far(
    curves: BestSoFar | SearchCurve | Mapping[str, BestSoFar | SearchCurve],
    path: str | Path,
    *,
    title: str = "Best found so far",
    xlabel: str = "cost (examples processed by SGD)",
    ylabel: str = "best value",
) -> Path:
    """Best-so-far against cost (paper Fig. 4, right): one step line per search; a
    :class:`SearchCurve` (several seeds) is drawn as its mean with a +-1 std band."""
    if isinstance(curves, BestSoFar | SearchCurve):
        curves = {"search": curves}
    fig = new_figure()
    ax = fig.add_subplot()
    for i, (label, c) in enumerate(curves.items()):
        color = COLORS[i % len(COLORS)]
        if isinstance(c, SearchCurve):
            ax.plot(
                c.grid,
                c.mean,
                color=color,
                label=f"{label} (n={c.runs.shape[0]})",
                drawstyle="steps-post",
            )
            ax.fill_between(
                c.grid,
                c.mean - c.std,
                c.mean + c.std,
                color=color,
                alpha=0.2,
                step="post",
                linewidth=0,
            )
        else:
            ax.plot(
                c.cost,
                c.best,
                color=color,
                label=label,
                drawstyle="steps-post",
                marker=".",
                markersize=3,
            )
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return save(fig, path)


def plot_scatter(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    path: str | Path,
    labels: Sequence[str] | None = None,
    *,
    xlabel: str = "score",
    ylabel: str = "accuracy",
    title: str | None = None,
    highlight: Sequence[int] = (),
) -> Path:
    """Scatter of two per-candidate quantities (e.g. premature score vs mature accuracy, paper
    Fig. 3 top), with Pearson r in the title; ``labels`` annotate up to 30 points and
    ``highlight`` (indices) marks e.g. the chosen candidates."""
    xa, ya = _array(x), _array(y)
    if xa.shape != ya.shape:
        raise InputError(f"scatter: x has {xa.size} values and y {ya.size}")
    keep = np.isfinite(xa) & np.isfinite(ya)
    fig = new_figure(5.2, 4.4)
    ax = fig.add_subplot()
    ax.scatter(xa[keep], ya[keep], s=18, alpha=0.75, color=COLORS[0], edgecolors="none")
    hi = [i for i in highlight if 0 <= i < xa.size and keep[i]]
    if hi:
        ax.scatter(
            xa[hi],
            ya[hi],
            s=60,
            facecolors="none",
            edgecolors=COLORS[1],
            linewidths=1.5,
            label="selected",
        )
        ax.legend(fontsize=8)
    if labels is not None and keep.sum() <= 30:
        for i in np.flatnonzero(keep):
            ax.annotate(
                str(labels[i]),
                (xa[i], ya[i]),
                fontsize=6,
                xytext=(3, 3),
                textcoords="offset points",
            )
    r = ""
    if keep.sum() >= 2 and np.std(xa[keep]) > 0 and np.std(ya[keep]) > 0:
        r = f" (r = {np.corrcoef(xa[keep], ya[keep])[0, 1]:.3f}, n = {int(keep.sum())})"
    ax.set(xlabel=xlabel, ylabel=ylabel, title=(title or f"{ylabel} vs {xlabel}") + r)
    ax.grid(alpha=0.3)
    return save(fig, path)


def _rdm_panels(rdm: Any, labels: Sequence[str] | None) -> list[tuple[str, np.ndarray]]:
    if hasattr(rdm, "matrices") and hasattr(rdm, "names"):  # tgsage.rsa.RDMs
        mats = _array(rdm.matrices())
        return list(zip(rdm.names, mats, strict=True))
    if isinstance(rdm, Mapping):
        return [(str(k), _array(v)) for k, v in rdm.items()]
    m = _array(rdm)
    if m.ndim == 3:
        names = labels if labels is not None and len(labels) == m.shape[0] else None
        return [(names[i] if names else f"RDM {i}", m[i]) for i in range(m.shape[0])]
    return [("RDM", m)]


def plot_rdm_heatmap(
    rdm: Any,
    path: str | Path,
    labels: Sequence[str] | None = None,
    *,
    title: str = "RDM",
    cmap: str = "viridis",
) -> Path:
    """Heatmap(s) of RDMs: one square matrix, a stack (k, n, n), a {name: matrix} dict or an
    :class:`~tgsage.rsa.RDMs` (one panel per layer). ``labels`` name the conditions (ticks are
    drawn for up to 40)."""
    panels = _rdm_panels(rdm, labels)
    for name, m in panels:
        if m.ndim != 2 or m.shape[0] != m.shape[1]:
            raise InputError(f"RDM {name!r}: expected a square matrix, got shape {m.shape}")
    k = len(panels)
    cols = min(k, 4)
    rows = -(-k // cols)
    fig = new_figure(3.4 * cols + 0.6, 3.2 * rows + 0.4)
    finite = np.concatenate([m[np.isfinite(m)].ravel() for _, m in panels] or [np.zeros(1)])
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    image = None
    for i, (name, m) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        image = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        n = m.shape[0]
        cond = (
            labels
            if labels is not None and len(labels) == n and not (k > 1 and len(labels) == k)
            else None
        )
        if cond is not None and n <= 40:
            ax.set_xticks(range(n), [str(c) for c in cond], rotation=90, fontsize=5)
            ax.set_yticks(range(n), [str(c) for c in cond], fontsize=5)
        else:
            ax.set_xticks([])
            ax.set_yticks([])
    if image is not None:
        fig.colorbar(image, ax=fig.axes, shrink=0.8, label="1 - Pearson r")
    fig.suptitle(title)
    return save(fig, path)


def plot_similarity_matrix(
    sim: Any,
    teacher_layers: Sequence[str],
    candidate_layers: Sequence[str],
    path: str | Path,
    *,
    title: str = "Teacher x candidate RDM similarity",
) -> Path:
    """The teacher x candidate similarity matrix; each teacher layer's best candidate layer
    (its S_i) is outlined and the values are printed when the matrix is small."""
    m = _array(sim)
    if m.shape != (len(teacher_layers), len(candidate_layers)):
        raise InputError(
            f"similarity matrix of shape {m.shape} for {len(teacher_layers)} "
            f"teacher and {len(candidate_layers)} candidate layers"
        )
    t, c = m.shape
    fig = new_figure(max(4.0, 0.55 * c + 2.5), max(2.6, 0.5 * t + 1.8))
    ax = fig.add_subplot()
    image = ax.imshow(m, cmap="magma", aspect="auto", interpolation="nearest")
    ax.set_xticks(range(c), list(candidate_layers), rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(t), list(teacher_layers), fontsize=8)
    ax.set(xlabel="candidate layer", ylabel="teacher layer", title=title)
    for i in range(t):
        if not np.isfinite(m[i]).any():
            continue
        j = int(np.nanargmax(m[i]))
        ax.add_patch(_rect(j, i))
        if t * c <= 200:
            for jj in range(c):
                ax.text(
                    jj,
                    i,
                    f"{m[i, jj]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if m[i, jj] < np.nanmax(m) * 0.6 else "black",
                )
    fig.colorbar(image, ax=ax, label="RDM similarity")
    return save(fig, path)


def _rect(x: int, y: int) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, edgecolor="cyan", linewidth=2)


def _budget_axis(rows: Sequence[Any]) -> list[str]:
    seen: dict[str, None] = {}
    for r in rows:
        seen.setdefault(_get(r, "budget"), None)
    return list(seen)


def _get(row: Any, key: str) -> Any:
    return row[key] if isinstance(row, Mapping) else getattr(row, key)


def plot_predictivity(
    table: Sequence[Any],
    path: str | Path,
    *,
    metric: str = "pearson",
    alpha_rows: Sequence[Any] | None = None,
    title: str = "Prediction of mature accuracy",
) -> Path:
    """Correlation with mature accuracy against premature budget, one line per score with its
    bootstrap interval as a band (paper Fig. 3, bottom); with ``alpha_rows`` a second panel
    shows the alpha sweep (paper Fig. 2). ``table``: PredictivityRow objects or dicts."""
    if not table:
        raise InputError("plot_predictivity: the table is empty (no measured architectures?)")
    panels = 2 if alpha_rows else 1
    fig = new_figure(6.0 * panels, 4.2)
    _predictivity_panel(fig.add_subplot(1, panels, 1), table, metric, title)
    if alpha_rows:
        _alpha_panel(fig.add_subplot(1, 2, 2), alpha_rows, metric)
    return save(fig, path)


METRIC_LABELS = {
    "pearson": "Pearson r",
    "spearman": "Spearman rho",
    "kendall": "Kendall tau",
    "precision_at_k": "precision@k",
}


def _predictivity_panel(ax: Any, table: Sequence[Any], metric: str, title: str) -> None:
    """Lines over budgets with bootstrap bands; budget-free rows (zero-cost proxies, budget
    "init") as horizontal dotted lines with their band across the whole axis."""
    budgets = [b for b in _budget_axis(table) if b != "init"] or ["init"]
    scores: dict[str, None] = {}
    for r in table:
        scores.setdefault(_get(r, "score"), None)
    xs = np.arange(len(budgets))
    for i, score in enumerate(scores):
        rows = {_get(r, "budget"): r for r in table if _get(r, "score") == score}
        color = COLORS[i % len(COLORS)]
        if set(rows) == {"init"}:
            r = rows["init"]
            ends = np.array([xs[0] - 0.2, xs[-1] + 0.2])
            ax.plot(ends, [_get(r, metric)] * 2, ":", color=color, linewidth=1.6, label=score)
            ax.fill_between(
                ends,
                _get(r, f"{metric}_low"),
                _get(r, f"{metric}_high"),
                color=color,
                alpha=0.06,
                linewidth=0,
            )
            continue
        y = np.array([_get(rows[b], metric) if b in rows else np.nan for b in budgets], float)
        lo = np.array(
            [_get(rows[b], f"{metric}_low") if b in rows else np.nan for b in budgets], float
        )
        hi = np.array(
            [_get(rows[b], f"{metric}_high") if b in rows else np.nan for b in budgets], float
        )
        style = "--" if score.startswith(("S_", "S-")) else "-"
        ax.plot(xs, y, style, marker="o", color=color, label=score)
        ax.fill_between(xs, lo, hi, color=color, alpha=0.12, linewidth=0)
    ax.set_xticks(xs, budgets)
    ax.set(
        xlabel="premature budget",
        ylabel=f"{METRIC_LABELS.get(metric, metric)} with mature accuracy",
        title=title,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def plot_predictivity_panels(
    table: Sequence[Any],
    path: str | Path,
    *,
    metrics: Sequence[str] = ("spearman", "kendall", "precision_at_k"),
    title: str = "Every score against mature accuracy",
) -> Path:
    """Side by side, one panel per metric: each score (P, TG, P+TG, S_i, zero-cost proxies as
    dotted horizontal lines) against the premature budget, with bootstrap 95% bands."""
    if not table:
        raise InputError("plot_predictivity_panels: the table is empty")
    fig = new_figure(5.2 * len(metrics), 4.4)
    for i, metric in enumerate(metrics):
        _predictivity_panel(
            fig.add_subplot(1, len(metrics), i + 1),
            table,
            metric,
            f"{title}: {METRIC_LABELS.get(metric, metric)}"
            if i == 0
            else METRIC_LABELS.get(metric, metric),
        )
    return save(fig, path)


def _alpha_panel(ax: Any, rows: Sequence[Any], metric: str) -> None:
    budgets = _budget_axis(rows)
    alphas = sorted({float(_get(r, "alpha")) for r in rows})
    xs = np.arange(len(budgets))
    m = metric if metric in ("pearson", "spearman", "kendall") else "pearson"
    for i, a in enumerate(alphas):
        by_b = {_get(r, "budget"): _get(r, m) for r in rows if float(_get(r, "alpha")) == a}
        y = [by_b.get(b, np.nan) for b in budgets]
        ax.plot(xs, y, marker="o", color=COLORS[i % len(COLORS)], label=f"alpha={a:g}")
    ax.set_xticks(xs, budgets)
    ax.set(
        xlabel="premature budget",
        ylabel=f"{m} of P + alpha*TG",
        title="Effect of the TG weight alpha",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def plot_alpha_sweep(rows: Sequence[Any], path: str | Path, metric: str = "pearson") -> Path:
    """The alpha sweep alone (paper Fig. 2): correlation of P + alpha*TG per budget."""
    if not rows:
        raise InputError("plot_alpha_sweep: no rows")
    fig = new_figure()
    _alpha_panel(fig.add_subplot(), rows, metric)
    return save(fig, path)


def _stage(r: Any) -> str:
    """A rung's label: its budget, or "prescreen" / "screen" for the untrained rungs."""
    return str(r.get("stage") or r["budget"] or "screen")


def plot_cascade(
    rungs: Sequence[Mapping[str, Any]],
    trajectories: Mapping[str, Sequence[tuple[int, float]]],
    path: str | Path,
    *,
    budgets: Sequence[str] = (),
    answer: str | None = None,
) -> Path:
    """A cascade at a glance: candidates and examples per rung (left; every bracket's rungs
    in turn), and the score of every trained survivor at each budget it reached (right; the
    answer in bold). ``rungs`` are ``SearchStatus.rungs`` rows; ``trajectories`` map a spec
    hash to ``[(i, score), ...]`` with ``i`` the index of the budget in ``budgets``."""
    fig = new_figure(11.0, 4.2)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    labels = [f"b{r['bracket']} r{r['rung']}\n{_stage(r)}" for r in rungs]
    x = np.arange(len(rungs))
    done = [min(r["complete"], r["size"]) for r in rungs]
    left.bar(x, done, color=COLORS[0])
    left.set_yscale("log")
    left.set_xticks(x, labels, fontsize=7)
    left.set_ylabel("candidates completed")
    for xi, r, n in zip(x, rungs, done, strict=True):
        left.annotate(
            f"{r['examples']:,} ex",
            (xi, max(n, 1)),
            ha="center",
            va="bottom",
            fontsize=7,
        )
    left.set_title("rungs: candidates and examples")
    for h, points in trajectories.items():
        if not points:
            continue
        xs, ys = zip(*sorted(points), strict=True)
        bold = h == answer
        right.plot(
            xs,
            ys,
            marker="o",
            color=COLORS[1] if bold else "0.6",
            linewidth=2.0 if bold else 0.8,
            alpha=1.0 if bold else 0.7,
            label=f"answer {h[:8]}" if bold else None,
            zorder=3 if bold else 1,
        )
    trained = sorted({p[0] for pts in trajectories.values() for p in pts})
    if trained:
        names = [budgets[i] if i < len(budgets) else str(i) for i in trained]
        right.set_xticks(trained, names, fontsize=7)
        right.set_xlabel("training budget")
    right.set_ylabel("score at the rung")
    right.set_title("survivors' scores across rungs")
    if answer is not None:
        right.legend(fontsize=7)
    return save(fig, path)
