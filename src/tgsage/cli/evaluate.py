"""``tgsage evaluate``: train one candidate briefly and score it."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from tgsage.cli.common import (
    DATA_HELP,
    console,
    err_console,
    expected_examples,
    friendly_errors,
    load_data,
    read_spec,
    threads_option,
    use_threads,
)
from tgsage.cli.display import training_progress


@friendly_errors
def evaluate(
    spec: str = typer.Argument(
        ...,
        help="Spec JSON file, inline JSON, preset:NAME or "
        "random:layer[:SEED] / random:cell[:SEED].",
    ),
    teacher: Path | None = typer.Option(None, help="Teacher file (needed for tg and p+tg)."),
    data: str = typer.Option("synthetic", help=DATA_HELP),
    data_root: Path | None = typer.Option(None, help="Folder holding the dataset files."),
    train_size: int | None = typer.Option(None, help="Training images."),
    val_size: int | None = typer.Option(None, help="Validation images."),
    resolution: int | None = typer.Option(None, help="Synthetic image size."),
    budget: str = typer.Option("2ep", help="Premature budget: 2ep, 0.2ep, 500steps, 20000ex."),
    preset: str | None = typer.Option(None, help="Training preset (default: layer space)."),
    score: str = typer.Option(
        "p+tg",
        help="p, tg, p+tg or any score expression, e.g. 'P + 0.5*TG-cka', 'SoTL-E', "
        "'TG-rel-deep' (ranks and fitted terms need a population: use predictivity or search).",
    ),
    comparisons: str = typer.Option(
        "", help="Extra teacher comparisons to report: cka, relation (comma-separated)."
    ),
    alpha: float = typer.Option(1.0, help="Weight of TG."),
    width_mult: float = typer.Option(1.0, help="Width multiplier for CPU runs."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, ..."),
    threads: int | None = threads_option(),
    seed: int = typer.Option(0, help="Seed."),
    as_json: bool = typer.Option(False, "--json", help="Print the full result as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train one candidate briefly and report P, per-layer S_i, TG, score and cost."""
    use_threads(threads)
    from tgsage.evaluate import evaluate_candidate
    from tgsage.teacher import Teacher

    arch = read_spec(spec)
    t = Teacher.load(teacher) if teacher is not None else None
    splits = load_data(data, data_root, train_size, val_size, resolution, seed)
    total = expected_examples(budget, len(splits.train), preset)
    with training_progress("candidate", total, not (quiet or as_json)) as cb:
        result = evaluate_candidate(
            arch,
            splits,
            t,
            budget=budget,
            config=preset,
            score=score,
            alpha=alpha,
            width_mult=width_mult,
            device=device,
            seed=seed,
            progress=cb,
            comparisons=[c.strip() for c in comparisons.split(",") if c.strip()],
        )
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=2))
    else:
        table = Table(title=f"candidate {result.spec_hash or ''}")
        table.add_column("measure")
        table.add_column("value", justify="right")
        table.add_row("status", result.status if result.ok else f"failed: {result.failure_reason}")
        if result.accuracy is not None:
            table.add_row("P (val accuracy)", f"{result.accuracy:.4f}")
        for name, s in result.per_layer.items():
            table.add_row(f"S {name} (best: {result.best_match[name]})", f"{s:.4f}")
        if result.tg is not None:
            table.add_row("TG", f"{result.tg:.4f}")
        shown = {"P", "TG"} | {f"S_{name}" for name in result.per_layer}
        for name, v in result.scores.items():
            if name not in shown:
                table.add_row(name, f"{v:.4g}")
        if result.score is not None:
            table.add_row(f"score ({result.score_kind})", f"{result.score:.4f}")
        table.add_row("cost (examples)", f"{result.examples:,}")
        table.add_row(
            "train / score seconds", f"{result.train_seconds:.1f} / {result.score_seconds:.1f}"
        )
        console.print(table)
        if not result.ok:
            err_console.print(f"[bold red]candidate failed:[/] {result.message}")
    if not result.ok:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    """Add ``evaluate`` to ``app``."""
    app.command("evaluate")(evaluate)
