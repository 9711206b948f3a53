"""The ``tgsage`` app: the root command and every command group, wired in one place."""

from __future__ import annotations

import typer

from tgsage import __version__
from tgsage.cli import compare, demo, evaluate, experiments, search, teacher, train

app = typer.Typer(
    name="tgsage",
    help="Teacher-guided neural architecture search (TG-SAGE).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"tgsage {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version."
    ),
) -> None:
    """Teacher-guided neural architecture search (TG-SAGE)."""


for group in (compare, teacher, evaluate, demo, search, experiments, train):
    group.register(app)
