"""``tgsage report`` / ``tgsage rerank`` / ``tgsage predictivity``: thin commands over the API.

``register(app)`` adds the three commands to a Typer app (:mod:`tgsage.cli.main` calls it). All the work
is done by :mod:`tgsage.experiments` and :mod:`tgsage.report`; these functions only find the
inputs (a search's study and stored config, a pool, a teacher), call the library and print.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tgsage.cli.common import (
    DATA_HELP,
    console,
    err_console,
    expected_examples,
    friendly_errors,
    key_values,
    load_data,
    training_progress,
)
from tgsage.errors import InputError, TgsageError
from tgsage.search.locate import SearchRun, resolve_run  # noqa: F401 - re-exported

RERANK_FILE = "rerank.json"


def dashboard_command(storage: str) -> str:
    """How to open ``storage`` in optuna-dashboard (journal files: the bare path)."""
    from tgsage.search.config import is_journal_url, journal_path
    from tgsage.search.storage import redact

    target = str(journal_path(storage)) if is_journal_url(storage) else redact(storage)
    return f"optuna-dashboard {target}"


# ---------------------------------------------------------------------- rerank.json
def _jsonable(value: Any) -> Any:
    """Plain JSON: non-finite floats become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def rerank_payload(
    result: Any, *, budget: str, k: int, study: str, settings: dict[str, Any]
) -> dict[str, Any]:
    """What ``rerank.json`` holds: the chosen spec, each candidate's longer run, the cost."""
    best = result.best
    chosen = None
    if best is not None:
        chosen = {
            "trial": best.number,
            "spec_hash": best.spec_hash,
            "spec": json.loads(best.spec) if best.spec else None,
            "score": best.score,
            "premature_accuracy": best.accuracy,
            "accuracy": result.best_accuracy,
        }
    cost = {
        "M1": result.m1,
        "E1": result.e1,
        "E1_total": result.e1_total,
        "M2": result.m2,
        "E2": result.e2,
        "E2_total": result.e2_total,
        "total": result.total,
    }
    return _jsonable(
        {
            "study": study,
            "budget": budget,
            "k": k,
            "settings": settings,
            "chosen": chosen,
            "candidates": [asdict(e) for e in result.entries],
            "cost": cost,
        }
    )


def read_rerank(path: Path, records: list[Any]) -> Any:
    """A RerankResult from ``rerank.json`` (its chosen trial looked up in ``records``)."""
    from tgsage.experiments import CandidateRecord, RerankEntry, RerankResult

    try:
        data = json.loads(path.read_text())
        cost, chosen = data["cost"], data.get("chosen")
        entries = [RerankEntry(**e) for e in data["candidates"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"{path} is not a rerank result written by `tgsage rerank` ({exc}); "
            "delete it or run `tgsage rerank` again"
        ) from None
    best = None
    if chosen is not None:
        by_number = {r.number: r for r in records}
        best = by_number.get(chosen["trial"]) or CandidateRecord(
            number=chosen["trial"], spec_hash=chosen.get("spec_hash"), score=chosen.get("score")
        )
    return RerankResult(
        best=best,
        best_accuracy=None if chosen is None else chosen["accuracy"],
        entries=entries,
        m1=int(cost["M1"]),
        e1_total=int(cost["E1_total"]),
        m2=int(cost["M2"]),
        e2_total=int(cost["E2_total"]),
    )


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
    from tgsage.experiments import records_from_study
    from tgsage.report import build_search_report, cost_rows
    from tgsage.teacher import Teacher

    r = resolve_run(run, storage, study)
    records = records_from_study(r.study)
    teacher = None
    if r.config.teacher is not None:
        path = Path(r.config.teacher)
        if not path.exists():
            console.print(
                f"note: teacher file {path} not found; teacher RDM heatmaps skipped", soft_wrap=True
            )
        else:
            try:
                teacher = Teacher.load(path)
            except TgsageError as exc:
                console.print(f"note: {exc}; teacher RDM heatmaps skipped", soft_wrap=True)
    rerank_result = None
    rerank_path = r.run_dir / RERANK_FILE
    if rerank_path.exists():
        rerank_result = read_rerank(rerank_path, records)
    out_dir = out if out is not None else r.run_dir / "report"
    files = build_search_report(
        records,
        out_dir,
        teacher,
        rerank=rerank_result,
        title=f"tgsage search report: {r.config.name}",
        subtitle=f"storage {dashboard_command(r.storage).split()[-1]}",
        leaderboard_size=top,
    )
    html = files[-1]
    scored = [x for x in records if x.ok and x.score is not None]
    best = max(scored, key=lambda x: (x.score, -x.number), default=None)
    total = cost_rows(records, rerank_result)[-1]["examples"]
    console.print(f"wrote {html} ({len(files) - 1} figures)", soft_wrap=True)
    console.print(
        f"{r.config.name}: {len(records)} candidates ({len(scored)} scored), best score "
        + (f"{best.score:.4f} (trial {best.number})" if best is not None else "-")
        + f", total cost {total:,} examples"
        + (f" (rerank of {rerank_result.m2} included)" if rerank_result is not None else ""),
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
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Result file (default: <run_dir>/rerank.json)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Train the search's top-k longer, keep the best, print the cost M1*E1 + M2*E2."""
    from tgsage.data.registry import get_dataset
    from tgsage.experiments import CandidateRecord, make_train_fn, records_from_study, rerank

    if k < 1:
        raise InputError(f"--k must be >= 1, got {k}")
    r = resolve_run(run, storage, study)
    cfg = r.config
    records = records_from_study(r.study)
    if not any(x.ok and x.score is not None for x in records):
        raise InputError(f"study {cfg.name!r} has no scored candidates to re-rank yet")
    from tgsage.search.config import SPACE_PRESETS

    settings = {
        "preset": preset if preset is not None else (cfg.train or SPACE_PRESETS.get(cfg.space)),
        "train_options": {} if preset is not None else dict(cfg.train_options),
        "width_mult": width_mult if width_mult is not None else cfg.width_mult,
        "device": device if device is not None else cfg.device,
        "seed": cfg.seed,
        "data": {"name": cfg.data.name, **cfg.data.options},
    }
    from tgsage.train import get_preset

    train_cfg = get_preset(settings["preset"], **settings["train_options"])
    data = get_dataset(cfg.data.name, **cfg.data.options)
    total = expected_examples(budget, len(data.train), train_cfg)

    def train(rec: CandidateRecord) -> Any:
        with training_progress(f"trial {rec.number}", total, not quiet) as cb:
            extra = {"progress": cb} if cb is not None else {}
            fn = make_train_fn(
                data,
                budget,
                train_cfg,
                width_mult=settings["width_mult"],
                device=settings["device"],
                seed=cfg.seed,
                **extra,
            )
            return fn(rec)

    result = rerank(records, k, train)
    table = Table(title=f"re-ranking the top {result.m2} of {cfg.name} at {budget}")
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
    payload = rerank_payload(result, budget=budget, k=k, study=cfg.name, settings=settings)
    path = out if out is not None else r.run_dir / RERANK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2))
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


# ---------------------------------------------------------------------- predictivity
def parse_pool(value: str, seed: int, ground_truth: Any = None) -> list[Any]:
    """``random:SPACE:N[:SEED]``, ``table:N[:SEED]`` (a sample of the ground-truth table), a
    specs file (one spec JSON per line) or ``RUN_DIR[:TOP]``."""
    from tgsage.experiments import (
        pool_from_records,
        pool_from_specs,
        random_pool,
        records_from_study,
    )

    if value.startswith("table:"):
        if ground_truth is None:
            raise InputError(
                f"--pool {value!r} samples the ground-truth table: pass "
                "--ground-truth TABLE.csv too"
            )
        parts = value.split(":")
        try:
            n = int(parts[1])
            pool_seed = int(parts[2]) if len(parts) > 2 else seed
        except (IndexError, ValueError):
            raise InputError(f"--pool {value!r}: expected table:N[:SEED], e.g. table:60") from None
        if len(parts) > 3 or n < 1:
            raise InputError(f"--pool {value!r}: expected table:N[:SEED] with N >= 1")
        return list(ground_truth.sample(n, seed=pool_seed))
    if value.startswith("random:"):
        parts = value.split(":")
        try:
            n = int(parts[2])
            pool_seed = int(parts[3]) if len(parts) > 3 else seed
        except (IndexError, ValueError):
            raise InputError(
                f"--pool {value!r}: expected random:SPACE:N[:SEED], e.g. random:layer:50"
            ) from None
        if len(parts) > 4 or n < 1:
            raise InputError(f"--pool {value!r}: expected random:SPACE:N[:SEED] with N >= 1")
        return random_pool(parts[1], n, seed=pool_seed)
    path = Path(value)
    if path.is_file() or path.suffix in (".jsonl", ".json", ".txt"):
        if not path.is_file():
            raise InputError(f"--pool: specs file {path} not found")
        lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
        if not lines:
            raise InputError(f"--pool: {path} holds no specs (one spec JSON per line)")
        return pool_from_specs(lines)
    run, top = value, None
    head, sep, tail = value.rpartition(":")
    if sep and tail.isdigit() and not Path(value).exists():
        run, top = head, int(tail)
    if not Path(run).is_dir():
        raise InputError(
            f"--pool {value!r}: not random:SPACE:N[:SEED], a specs file, nor a "
            "search's run folder[:TOP]"
        )
    records = records_from_study(resolve_run(run).study)
    specs = pool_from_records(records, top=top)
    if not specs:
        raise InputError(f"--pool {value!r}: the search has no scored candidates")
    return specs


def train_config(preset: str | None, options: list[str]) -> Any:
    """The preset with ``KEY=VALUE`` overrides (values parsed as YAML: 30, 0.05, true, [1, 2])."""
    from tgsage.train import get_preset

    return get_preset(preset, **key_values(options, "--train-option"))


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
    with Progress(*cols) as bar:
        archs = bar.add_task("architectures", total=n, completed=done)
        current = bar.add_task("training", total=per_arch)

        def on_train(p: Any) -> None:
            bar.update(current, completed=p.examples)

        def on_record(rec: Any) -> None:
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
    teacher: Path | None = typer.Option(
        None, help="Teacher file (its probe images are scored); without one only P and proxies."
    ),
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
        help="Extra scores SCORE+rank(PROXY), comma-separated, "
        "e.g. 'P+TG+rank(synflow)' (beta * pool rank of the proxy).",
    ),
    beta: float = typer.Option(1.0, help="Weight of rank(PROXY) in --combine scores."),
    k: int = typer.Option(5, "--k", "-k", help="precision@k."),
    width_mult: float = typer.Option(1.0, help="Width multiplier for CPU runs."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, ..."),
    seed: int = typer.Option(0, help="Seed (data, weights, random pool, bootstrap)."),
    out: Path = typer.Option(Path("runs/predictivity"), "--out", "-o", help="Output folder."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """How well P, TG, P+TG, each S_i and zero-cost proxies predict mature accuracy
    (resumable)."""
    from tgsage.experiments import alpha_sweep, predictivity_table, run_predictivity
    from tgsage.experiments.predictivity import pool_summary
    from tgsage.experiments.records import read_pool_records
    from tgsage.experiments.stats import pool_scores
    from tgsage.report import build_predictivity_report
    from tgsage.teacher import Teacher

    budget_list = [b.strip() for b in budgets.split(",") if b.strip()]
    proxy_list = [p.strip() for p in proxies.split(",") if p.strip()]
    if proxy_list == ["all"]:
        from tgsage.proxies import list_proxies

        proxy_list = list_proxies()
    if not budget_list and not proxy_list:
        raise InputError(
            "--budgets: give at least one premature budget, e.g. 0.2ep,1ep,2ep (or only --proxies)"
        )
    t = Teacher.load(teacher) if teacher is not None else None
    gt = None
    if ground_truth is not None:
        from tgsage.experiments.ground_truth import load_nb201_table

        gt = load_nb201_table(ground_truth, dataset=gt_dataset)
    specs = parse_pool(pool, seed, gt)
    splits = load_data(data, data_root, train_size, val_size, resolution, seed)
    store = out / "pool.jsonl"
    stored = {r.spec_hash for r in read_pool_records(store)}
    done = sum(s.spec_hash in stored for s in specs)
    if done:
        console.print(
            f"resuming: {done} of {len(specs)} architectures already in {store}", soft_wrap=True
        )
    train_cfg = train_config(preset, train_option)
    longest = budget_list[-1] if gt is not None and budget_list else mature
    per_arch = expected_examples(longest, len(splits.train), train_cfg) if budget_list else 0
    with _pool_progress(len(specs), done, per_arch, not quiet) as (on_train, on_record):
        extra = {"progress": on_train} if on_train is not None else {}
        recs = run_predictivity(
            specs,
            splits,
            t,
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
            **extra,
        )
    extra_scores = [c.strip() for c in combine.split(",") if c.strip()]
    rows = predictivity_table(
        recs, scores=pool_scores(recs) + extra_scores, k=k, alpha=alpha, beta=beta, seed=seed
    )
    sweep = alpha_sweep(recs) if any(p.tg is not None for r in recs for p in r.points) else []
    summary = pool_summary(recs)
    table_path = out / "predictivity.json"
    table_path.write_text(
        json.dumps(
            _jsonable(
                {
                    "pool": pool,
                    "teacher": None if teacher is None else str(teacher),
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
                }
            ),
            indent=2,
        )
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
        f"Pearson, Kendall and precision@{k} per row: {table_path} and the report", soft_wrap=True
    )
    console.print(f"wrote {store}, {table_path} and {files[-1]}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``report``, ``rerank`` and ``predictivity`` to ``app``."""
    app.command("report")(report)
    app.command("rerank")(rerank_cmd)
    app.command("predictivity")(predictivity)
