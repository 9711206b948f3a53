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
        False, "--tiny", help="A seconds-long smoke run (tiny images, 4 candidates)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """The whole pipeline on synthetic objects: teacher, search (TPE, P+TG), rerank, report.

    About 4 minutes on a 2-core CPU; re-running reuses what is cached in the run folder.
    """
    from tgsage.demo import DemoConfig, run_demo

    if tiny:
        cfg = DemoConfig.tiny(run_dir or Path("runs/demo-tiny"))
    else:
        cfg = DemoConfig.load(config, run_dir=run_dir, device=device, seed=seed)
    out = run_demo(cfg, RichObserver(bars=not quiet))
    if out["rerank"].get("chosen") is None:
        err_console.print(
            "[bold red]no re-ranked candidate finished its longer training[/]; see "
            f"{cfg.run_dir / 'rerank.json'}",
            soft_wrap=True,
        )
        raise typer.Exit(code=1)
    console.print(f"\n[bold green]done.[/] report: {out['report']}")


def register(app: typer.Typer) -> None:
    """Add ``demo`` to ``app``."""
    app.command("demo")(demo)
