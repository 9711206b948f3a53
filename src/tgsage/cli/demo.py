"""``tgsage demo``: the whole pipeline on synthetic objects."""

from __future__ import annotations

from pathlib import Path

import typer

from tgsage.cli.common import console, err_console, friendly_errors
from tgsage.cli.display import RichObserver


@friendly_errors
def demo(
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        help="Demo settings (YAML); default: built-in, the same as configs/demo.yaml.",
    ),
    run_dir: Path | None = typer.Option(None, help="Run folder (default runs/demo)."),
    device: str | None = typer.Option(None, help="auto, cpu, cuda, ..."),
    seed: int | None = typer.Option(None, help="Seed of data, teacher and search."),
    tiny: bool = typer.Option(
        False, "--tiny", help="A seconds-long smoke run (tiny images, 6 candidates)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """The whole pipeline on synthetic objects: teacher, cascade search (screen, then P+TG at
    short training, then the survivors trained longer), the chosen network against random
    architectures trained the same way, report.

    About 4 CPU-minutes (6 minutes of wall time on a busy 2-core machine); re-running reuses
    what is cached in the run folder.
    """
    from tgsage.demo import DemoConfig, comparison_line, run_demo

    if tiny:
        cfg = DemoConfig.tiny(run_dir or Path("runs/demo-tiny"))
    else:
        cfg = DemoConfig.load(config, run_dir=run_dir, device=device, seed=seed)
    out = run_demo(cfg, RichObserver(bars=not quiet))
    result = out["comparison"]
    console.print(f"\n[bold]{comparison_line(result)}[/]", soft_wrap=True)
    if result["chosen"]["test_accuracy"] is None:
        err_console.print(
            "[bold red]the chosen network did not finish its training[/]; see "
            f"{cfg.run_dir / 'comparison.json'}",
            soft_wrap=True,
        )
        raise typer.Exit(code=1)
    console.print(f"[bold green]done.[/] report: {out['report']}")


def register(app: typer.Typer) -> None:
    """Add ``demo`` to ``app``."""
    app.command("demo")(demo)
