"""``tgsage search`` / ``tgsage worker`` / ``tgsage status``: thin commands over the API.

``register(app)`` adds the three commands to a Typer app (:mod:`tgsage.cli.main` calls it).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from tgsage.cli.common import console, err_console, friendly_errors
from tgsage.cli.display import leaderboard_table, render_status, search_display


@friendly_errors
def search(
    config: Path = typer.Argument(..., help="Search config (YAML)."),
    workers: int | None = typer.Option(None, "--workers", "-w", help="Local worker processes."),
    n_candidates: int | None = typer.Option(
        None, "--n-candidates", "-n", help="Completed candidates wanted."
    ),
    storage: str | None = typer.Option(
        None,
        help="Storage URL: journal:PATH (default: "
        "<run_dir>/search.journal), postgresql://..., "
        "sqlite:///FILE (one worker only).",
    ),
    name: str | None = typer.Option(None, help="Study name."),
    run_dir: Path | None = typer.Option(None, help="Run folder (logs, default journal)."),
    strategy: str | None = typer.Option(None, help="random, tpe, rl, evolution."),
    score: str | None = typer.Option(
        None, help="p, tg, p+tg, or proxy (a zero-cost proxy alone, no training)."
    ),
    proxy: str | None = typer.Option(
        None, help="Zero-cost proxy: synflow, naswot, jacob_cov, grad_norm, snip, params, flops."
    ),
    beta: float | None = typer.Option(None, help="Add beta * rank(proxy) to the score."),
    budget: str | None = typer.Option(None, help="Premature budget, e.g. 2ep."),
    objective: str | None = typer.Option(None, help="train, or simulate (fake, for tests)."),
    seed: int | None = typer.Option(None, help="Seed."),
    device: str | None = typer.Option(None, help="auto, cpu, cuda, ..."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No live progress display."),
) -> None:
    """Run (or resume) a search with N local workers; Ctrl-C stops it, rerunning resumes."""
    from tgsage.search.config import load_config
    from tgsage.search.runner import run_search

    cfg = load_config(
        config,
        workers=workers,
        n_candidates=n_candidates,
        storage=storage,
        name=name,
        run_dir=run_dir,
        strategy=strategy,
        score=score,
        budget=budget,
        objective=objective,
        seed=seed,
        device=device,
        proxy=proxy,
        beta=beta,
    )
    with search_display(cfg.name, cfg.n_candidates, not (quiet or as_json)) as on_status:
        summary = run_search(cfg, on_status)
    if as_json:
        typer.echo(json.dumps(summary.as_dict(), indent=2, default=str))
    else:
        console.print(
            f"{summary.study}: {summary.line}, {summary.seconds:.0f} s"
            f"{' (resumed)' if summary.resumed else ''}; logs in {summary.run_dir}"
        )
        if summary.best is not None:
            console.print(leaderboard_table([summary.best], "best candidate"))
    if not summary.finished:
        err_console.print(f"[bold red]search not finished:[/] {summary.message}")
        raise typer.Exit(code=1)


@friendly_errors
def worker(
    storage: str = typer.Option(..., help="Storage URL of the running search."),
    study: str = typer.Option(..., help="Study name."),
    max_candidates: int | None = typer.Option(None, help="Stop after this many candidates."),
    worker_id: str | None = typer.Option(None, help="Name in the records (default host:pid)."),
    log_dir: Path | None = typer.Option(
        None, help="Log folder (default: the run folder if it exists here)."
    ),
) -> None:
    """Join a running search from this process or machine; work until it is complete."""
    from tgsage.search.worker import run_worker

    s = run_worker(storage, study, worker_id, max_candidates, log_dir=log_dir)
    console.print(
        f"worker {s.worker}: {s.evaluated} evaluated, {s.reused} reused, "
        f"{s.failed} failed ({s.stopped_by})"
    )
    if s.stopped_by == "failures":
        raise typer.Exit(code=1)


@friendly_errors
def status(
    target: str | None = typer.Argument(
        None, help="A run folder or config file (reads its storage), instead of --storage/--study."
    ),
    storage: str | None = typer.Option(None, help="Storage URL."),
    study: str | None = typer.Option(None, help="Study name (default: the only one)."),
    top: int = typer.Option(5, help="Leaderboard rows."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Progress, cost so far (examples) and the leaderboard of a search."""
    from tgsage.search.locate import resolve_run
    from tgsage.search.status import search_status

    run = resolve_run(target, storage, study)
    s = search_status(run.storage, run.study.study_name, top)
    if as_json:
        typer.echo(json.dumps(s.as_dict(), indent=2, default=str))
    else:
        console.print(render_status(s))


def register(app: typer.Typer) -> None:
    """Add ``search``, ``worker`` and ``status`` to ``app``."""
    app.command("search")(search)
    app.command("worker")(worker)
    app.command("status")(status)
