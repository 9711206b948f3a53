"""``tgsage report`` / ``tgsage rerank`` / ``tgsage predictivity``: thin commands over the API.

``register(app)`` adds the three commands to a Typer app (:mod:`tgsage.cli.main` calls it). All the work
is done by :mod:`tgsage.experiments` and :mod:`tgsage.report`; these functions only find the
inputs (a search's study and stored config, a pool, a teacher), call the library and print.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from tgsage.cli.common import (
    DATA_HELP,
    console,
    err_console,
    expected_examples,
    friendly_errors,
    load_data,
    threads_option,
    use_threads,
)
from tgsage.cli.display import LazyProgress, RichObserver
from tgsage.errors import InputError


def resolve_run(target: str | None, storage: str | None = None, study: str | None = None) -> Any:
    """The search a command names (see :func:`tgsage.search.locate.resolve_run`)."""
    from tgsage.search.locate import resolve_run as resolve

    return resolve(target, storage, study)


def dashboard_command(storage: str) -> str:
    """How to open ``storage`` in optuna-dashboard (journal files: the bare path)."""
    from tgsage.search.locate import dashboard_target

    return f"optuna-dashboard {dashboard_target(storage)}"


def _fmt(x: float | None, digits: int = 4) -> str:
    return (
        "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"
    )


# ---------------------------------------------------------------------- report
@friendly_errors
def report(
    run: str | None = typer.Argument(
        None, help="A search's run folder or config file (instead of --storage/--study)."
    ),
    storage: str | None = typer.Option(None, help="Storage URL of the search."),
    study: str | None = typer.Option(None, help="Study name (default: the only one)."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Report folder (default: <run_dir>/report)."
    ),
    top: int = typer.Option(20, help="Leaderboard rows."),
) -> None:
    """Figures and one self-contained report.html for a search (plus its rerank, if run)."""
    from tgsage.report import report_search_run

    r = resolve_run(run, storage, study)
    rep = report_search_run(r, out, top=top, observer=RichObserver(bars=False))
    console.print(f"wrote {rep.html} ({len(rep.files) - 1} figures)", soft_wrap=True)
    best = rep.best
    console.print(
        f"{r.config.name}: {rep.candidates} candidates ({rep.scored} scored), best score "
        + (f"{best.score:.4f} (trial {best.number})" if best is not None else "-")
        + f", total cost {rep.total_examples:,} examples"
        + (f" (rerank of {rep.rerank.m2} included)" if rep.rerank is not None else ""),
        soft_wrap=True,
    )
    console.print(
        f"browse the trials: pip install optuna-dashboard && {dashboard_command(r.storage)}",
        soft_wrap=True,
        markup=False,
    )


# ---------------------------------------------------------------------- rerank
@friendly_errors
def rerank_cmd(
    run: str | None = typer.Argument(
        None, help="A search's run folder or config file (instead of --storage/--study)."
    ),
    k: int = typer.Option(10, "--k", "-k", help="Candidates to train longer (distinct specs)."),
    budget: str = typer.Option("mature", help="Longer budget: 20ep, 300ep, mature, 5000steps."),
    storage: str | None = typer.Option(None, help="Storage URL of the search."),
    study: str | None = typer.Option(None, help="Study name (default: the only one)."),
    preset: str | None = typer.Option(None, help="Training preset (default: the search's)."),
    width_mult: float | None = typer.Option(None, help="Width multiplier (default: the search's)."),
    device: str | None = typer.Option(None, help="auto, cpu, cuda, ... (default: the search's)."),
    threads: int | None = threads_option(),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Result file (default: <run_dir>/rerank.json)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Train the search's top-k longer, keep the best, print the cost M1*E1 + M2*E2."""
    use_threads(threads)
    from tgsage.experiments import RERANK_FILE, rerank_search

    if k < 1:
        raise InputError(f"--k must be >= 1, got {k}")
    r = resolve_run(run, storage, study)
    path = out if out is not None else r.run_dir / RERANK_FILE
    result = rerank_search(
        r,
        k,
        budget,
        preset=preset,
        width_mult=width_mult,
        device=device,
        out=path,
        observer=RichObserver(bars=not quiet),
    )
    print_rerank(result, r.config.name, budget)
    if result.best is None:
        err_console.print(
            f"[bold red]no candidate finished the longer training[/]; see {path}", soft_wrap=True
        )
        raise typer.Exit(code=1)
    console.print(
        f"chosen: trial {result.best.number} ({result.best.spec_hash}), accuracy "
        f"{result.best_accuracy:.4f} at {budget}; wrote {path}",
        soft_wrap=True,
    )


def print_rerank(result: Any, study: str, budget: str) -> None:
    """The re-ranked candidates, the chosen one, and the cost table M1*E1 + M2*E2."""
    table = Table(title=f"re-ranking the top {result.m2} of {study} at {budget}")
    for col in (
        "rank",
        "trial",
        "spec_hash",
        "score",
        "P",
        f"accuracy @ {budget}",
        "examples",
        "status",
    ):
        table.add_column(col, justify="right" if col not in ("spec_hash", "status") else "left")
    for i, e in enumerate(result.entries, start=1):
        chosen = result.best is not None and e.number == result.best.number
        table.add_row(
            str(i),
            str(e.number),
            str(e.spec_hash),
            _fmt(e.score),
            _fmt(e.premature_accuracy),
            _fmt(e.accuracy),
            f"{e.examples:,}",
            "chosen" if chosen else e.status,
            style="bold green" if chosen else None,
        )
    console.print(table)
    cost = Table(title="cost in examples processed by SGD")
    for col in ("stage", "M", "E (mean examples)", "examples"):
        cost.add_column(col, justify="left" if col == "stage" else "right")
    for row in result.cost_table():
        cost.add_row(*(f"{v:,}" if isinstance(v, int) else str(v) for v in row.values()))
    console.print(cost)
    console.print(
        f"total = M1*E1 + M2*E2 = {result.m1} x {result.e1:,.1f} + {result.m2} x "
        f"{result.e2:,.1f} = {result.total:,} examples",
        soft_wrap=True,
    )


# ---------------------------------------------------------------------- predictivity
@contextlib.contextmanager
def _pool_progress(
    n: int, done: int, per_arch: int | None, enabled: bool
) -> Iterator[tuple[Any, Any]]:
    """Two bars: architectures measured, and examples of the one being trained."""
    if not enabled:
        yield None, None
        return
    cols = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ]
    with LazyProgress(*cols) as bar:

        def tasks() -> tuple[Any, Any]:  # shown once work starts (bad input: one error line)
            if not bar.task_ids:
                bar.add_task("architectures", total=n, completed=done)
                bar.add_task("training", total=per_arch)
            return bar.task_ids[0], bar.task_ids[1]

        def on_train(p: Any) -> None:
            bar.update(tasks()[1], completed=p.examples)

        def on_record(rec: Any) -> None:
            archs, current = tasks()
            bar.advance(archs)
            bar.reset(current, total=per_arch)
            if not rec.ok:
                bar.console.print(f"{rec.spec_hash}: failed ({rec.failure_reason})")

        yield on_train, on_record


@friendly_errors
def predictivity(
    pool: str = typer.Option(
        ...,
        help="random:SPACE:N[:SEED] | table:N[:SEED] (sampled from "
        "--ground-truth) | specs.jsonl (one spec JSON or NAS-Bench-201 "
        "arch string a line) | RUN_DIR[:TOP] (a search's top candidates).",
    ),
    teacher: list[Path] = typer.Option(
        [],
        help="Teacher file (its probe images are scored); repeat for several teachers measured "
        "on the same networks (the first gives TG in the table). Without one: P and proxies.",
    ),
    comparisons: str = typer.Option(
        "pearson",
        help="Teacher comparisons measured at every budget: pearson (RDMs), cka, relation "
        "(comma-separated; TG-cka, TG-rel and their S_i join the table).",
    ),
    labels: int = typer.Option(
        100, help="Fitted combiners (ridge/forest/gbm): at most this many labelled cells per fit."
    ),
    folds: int = typer.Option(5, help="Fitted combiners: cross-validation folds."),
    data: str = typer.Option("synthetic", help=DATA_HELP),
    data_root: Path | None = typer.Option(None, help="Folder holding the dataset files."),
    train_size: int | None = typer.Option(None, help="Training images."),
    val_size: int | None = typer.Option(None, help="Validation images."),
    resolution: int | None = typer.Option(None, help="Synthetic image size."),
    budgets: str = typer.Option("0.2ep,1ep,2ep", help="Premature budgets, comma-separated."),
    mature: str = typer.Option(
        "mature", help="Mature budget: mature (the preset's length) or e.g. 20ep."
    ),
    preset: str | None = typer.Option(None, help="Training preset (default: layer space)."),
    train_option: list[str] = typer.Option(
        [],
        "--train-option",
        help="Override a preset field, KEY=VALUE (repeatable), e.g. epochs=30.",
    ),
    alpha: float = typer.Option(1.0, help="Weight of TG in P+TG."),
    proxies: str = typer.Option(
        "",
        help="Zero-cost proxies measured at initialisation, "
        "comma-separated, or 'all' (see tgsage.proxies).",
    ),
    ground_truth: Path | None = typer.Option(
        None,
        help="NAS-Bench-201 / NATS-Bench accuracy "
        "table (CSV): mature accuracy from the table, "
        "no mature training.",
    ),
    gt_dataset: str = typer.Option(
        "cifar10", help="Column of --ground-truth: cifar10, cifar100, imagenet16 or a column name."
    ),
    combine: str = typer.Option(
        "",
        help="Extra scores, comma-separated tgsage.scores expressions, e.g. "
        "'P+TG+rank(synflow)', 'P + 0.5*TG-cka', 'meanrank(synflow, naswot)', "
        "'ridge(synflow, naswot, P, ops)'.",
    ),
    beta: float = typer.Option(1.0, help="Weight of a trailing +rank(X) in old-style scores."),
    k: int = typer.Option(5, "--k", "-k", help="precision@k."),
    width_mult: float = typer.Option(1.0, help="Width multiplier for CPU runs."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, ..."),
    threads: int | None = threads_option(),
    seed: int = typer.Option(0, help="Seed (data, weights, random pool, bootstrap)."),
    out: Path = typer.Option(Path("runs/predictivity"), "--out", "-o", help="Output folder."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """How well P, TG, P+TG, each S_i and zero-cost proxies predict mature accuracy
    (resumable)."""
    use_threads(threads)
    from tgsage.experiments import (
        alpha_sweep,
        pool_from_string,
        predictivity_table,
        run_predictivity,
    )
    from tgsage.experiments.jsonio import write_json
    from tgsage.experiments.predictivity import pool_summary, require_measured
    from tgsage.experiments.records import read_pool_records
    from tgsage.experiments.stats import pool_scores
    from tgsage.report import build_predictivity_report
    from tgsage.teacher import Teacher
    from tgsage.train import get_preset, parse_train_options

    budget_list = [b.strip() for b in budgets.split(",") if b.strip()]
    proxy_list = [p.strip() for p in proxies.split(",") if p.strip()]
    if proxy_list == ["all"]:
        from tgsage.proxies import list_proxies

        proxy_list = list_proxies()
    if not budget_list and not proxy_list:
        raise InputError(
            "--budgets: give at least one premature budget, e.g. 0.2ep,1ep,2ep (or only --proxies)"
        )
    teachers = {}
    for path in teacher:
        name = path.name.removesuffix(".npz").removesuffix(".teacher")
        teachers[name if name not in teachers else str(path)] = Teacher.load(path)
    comparison_list = [c.strip() for c in comparisons.split(",") if c.strip()]
    gt = None
    if ground_truth is not None:
        from tgsage.experiments.ground_truth import load_nb201_table

        gt = load_nb201_table(ground_truth, dataset=gt_dataset)
    specs = pool_from_string(pool, seed, gt)
    splits = load_data(data, data_root, train_size, val_size, resolution, seed)
    store = out / "pool.jsonl"
    stored = {r.spec_hash for r in read_pool_records(store)}
    done = sum(s.spec_hash in stored for s in specs)
    if done:
        console.print(
            f"resuming: {done} of {len(specs)} architectures already in {store}", soft_wrap=True
        )
    train_cfg = get_preset(preset, **parse_train_options(train_option))
    longest = budget_list[-1] if gt is not None and budget_list else mature
    per_arch = expected_examples(longest, len(splits.train), train_cfg) if budget_list else 0
    with _pool_progress(len(specs), done, per_arch, not quiet) as (on_train, on_record):
        extra = {"progress": on_train} if on_train is not None else {}
        recs = run_predictivity(
            specs,
            splits,
            teachers or None,
            budgets=budget_list,
            mature=mature,
            config=train_cfg,
            alpha=alpha,
            width_mult=width_mult,
            device=device,
            seed=seed,
            store=store,
            on_record=on_record,
            proxies=proxy_list,
            ground_truth=gt,
            comparisons=comparison_list,
            **extra,
        )
    require_measured(recs)
    from tgsage.scores import split_scores

    extra_scores = split_scores(combine)
    from tgsage.scores import FitOptions

    rows = predictivity_table(
        recs,
        scores=pool_scores(recs) + extra_scores,
        k=k,
        alpha=alpha,
        beta=beta,
        seed=seed,
        fit=FitOptions(labels=labels, folds=folds, seed=seed),
    )
    sweep = alpha_sweep(recs) if any(p.tg is not None for r in recs for p in r.points) else []
    summary = pool_summary(recs)
    table_path = write_json(
        out / "predictivity.json",
        {
            "pool": pool,
            "teacher": [str(p) for p in teacher] or None,
            "comparisons": comparison_list,
            "fit": {"labels": labels, "folds": folds},
            "budgets": budget_list,
            "mature": "table" if gt is not None else mature,
            "ground_truth": None
            if gt is None
            else {
                "path": str(ground_truth),
                "dataset": gt_dataset,
                "column": gt.column,
                "scale": gt.scale,
                "rows": len(gt),
            },
            "proxies": proxy_list,
            "preset": preset,
            "train_options": train_option,
            "alpha": alpha,
            "beta": beta,
            "k": k,
            "summary": summary,
            "rows": [r.as_dict() for r in rows],
            "alpha_sweep": [a.as_dict() for a in sweep],
        },
    )
    files = build_predictivity_report(
        recs, out, table=rows, alpha_rows=sweep or None, alpha=alpha, k=k, seed=seed
    )
    from tgsage.experiments.stats import side_by_side

    grid = side_by_side(rows, "spearman")
    table = Table(
        title=f"Spearman with mature accuracy [95% CI] ({summary['ok']} "
        f"architectures, {summary['failed']} failed"
        f"{'; mature accuracy from the table' if gt is not None else ''})"
    )
    table.add_column("score")
    for b in grid.budgets:
        table.add_column(b, justify="right", no_wrap=True)
    for i, score in enumerate(grid.scores):
        table.add_row(
            score,
            *[
                "-"
                if not math.isfinite(grid.value[i, j])
                else f"{_fmt(grid.value[i, j], 2)} [{_fmt(grid.low[i, j], 2)}, {_fmt(grid.high[i, j], 2)}]"
                for j in range(len(grid.budgets))
            ],
        )
    console.print(table)
    console.print(
        f"Pearson, Kendall, precision@{k} and nDCG@{k} per row: {table_path} and the report",
        soft_wrap=True,
    )
    console.print(f"wrote {store}, {table_path} and {files[-1]}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``report``, ``rerank`` and ``predictivity`` to ``app``."""
    app.command("report")(report)
    app.command("rerank")(rerank_cmd)
    app.command("predictivity")(predictivity)
