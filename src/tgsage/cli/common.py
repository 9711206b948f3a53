"""Pieces shared by CLI commands: consoles, error handling, data options, spec parsing."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from tgsage.errors import ConfigError, SpecError, TgsageError

if TYPE_CHECKING:  # the commands import the library lazily: `tgsage --version` stays fast
    from tgsage.data.base import DataSplits

DATA_HELP = "Dataset: synthetic (no download), cifar10, cifar100, folder."
THREADS_HELP = (
    "CPU threads for torch (default: torch's, one per core). Use 1 on a machine busy with "
    "other work: there torch's default ran many times slower (BENCHMARKS section 8)."
)


def threads_option() -> Any:
    """``--threads N`` (or ``TGSAGE_THREADS``), shared by the commands that train or run
    networks in this process."""
    return typer.Option(None, "--threads", min=1, envvar="TGSAGE_THREADS", help=THREADS_HELP)


def use_threads(n: int | None) -> None:
    """Set torch's CPU threads for this process when the user chose a number."""
    if n is not None:
        import torch

        torch.set_num_threads(n)


console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(fn: F) -> F:
    """One line instead of a traceback: tgsage's own errors and files the system refuses (a
    read-only run folder, a full disk) exit 2; Ctrl-C says what became of the work and exits
    130, as a shell expects."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TgsageError as exc:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(code=2) from None
        except OSError as exc:
            if exc.filename is None:  # not about a path the user gave: a bug, show it
                raise
            err_console.print(f"[bold red]error:[/] {escape(os_error_line(exc))}", soft_wrap=True)
            raise typer.Exit(code=2) from None
        except KeyboardInterrupt as exc:
            err_console.print(
                f"[bold yellow]{escape(str(exc) or 'interrupted')}[/]", soft_wrap=True
            )
            raise typer.Exit(code=130) from None

    return wrapper  # type: ignore[return-value]


def os_error_line(exc: OSError) -> str:
    """``cannot write /run/x: Permission denied; <fix>`` for an OSError about a path."""
    import errno

    fixes = {
        errno.EACCES: "make it writable (or readable) or choose another folder",
        errno.EPERM: "make it writable (or readable) or choose another folder",
        errno.EROFS: "choose another folder",
        errno.ENOSPC: "free some disk space",
        errno.ENOENT: "check the path",
        errno.ENOTDIR: "a file stands where a folder is expected; check the path",
        errno.EISDIR: "a folder stands where a file is expected; check the path",
    }
    fix = fixes.get(exc.errno or 0, "check the path and its permissions")
    return f"cannot use {exc.filename}: {exc.strerror or type(exc).__name__}; {fix}"


def load_data(
    name: str,
    root: Path | None,
    train_size: int | None,
    val_size: int | None,
    resolution: int | None,
    seed: int,
) -> DataSplits:
    """A dataset from the registry with the CLI's common options."""
    from tgsage.data.base import DataSplits
    from tgsage.data.registry import get_dataset

    kwargs: dict[str, Any] = {}
    if name == "synthetic":
        kwargs["seed"] = seed
        if train_size is not None:
            kwargs["n_train"] = train_size
        if val_size is not None:
            kwargs["n_val"] = val_size
        if resolution is not None:
            kwargs["resolution"] = resolution
    else:
        if root is not None:
            kwargs["root"] = root
        if val_size is not None:
            kwargs["val_size"] = val_size
    splits = get_dataset(name, **kwargs)
    if name != "synthetic" and train_size is not None and train_size < len(splits.train):
        splits = DataSplits(splits.train.subset(slice(0, train_size)), splits.val, splits.test)
    return splits


def expected_examples(budget: str, n_train: int, preset: Any) -> int | None:
    """Examples a budget will process with a preset (a progress total); None if the budget or
    preset is invalid (the trainer itself reports that, with the full message)."""
    from tgsage.train import get_preset

    try:
        return get_preset(preset).examples_for(budget, n_train)
    except TgsageError:
        return None


def read_spec(value: str) -> Any:
    """A spec from a JSON file, inline JSON, ``preset:NAME`` or ``random:SPACE[:SEED]``."""
    from tgsage.spaces import get_cell_preset, get_space
    from tgsage.spaces.specs import spec_from_json

    if value.startswith("preset:"):
        return get_cell_preset(value.removeprefix("preset:"))
    if value.startswith("random:"):
        parts = value.split(":")
        if len(parts) > 3 or not parts[1]:
            raise SpecError(
                f"{value!r}: write random:SPACE or random:SPACE:SEED, e.g. random:layer:3"
            )
        try:
            seed = int(parts[2]) if len(parts) > 2 else 0
        except ValueError:
            raise SpecError(
                f"{value!r}: the seed {parts[2]!r} is not an integer; write random:SPACE:SEED, "
                "e.g. random:layer:3"
            ) from None
        return get_space(parts[1]).random_spec(seed)
    path = Path(value)
    if path.suffix == ".json" or path.exists():
        if not path.exists():
            raise ConfigError(f"spec file {path} not found")
        return spec_from_json(path.read_text())
    try:
        json.loads(value)
    except json.JSONDecodeError:
        raise SpecError(
            f"{value!r} is neither a spec file, inline JSON, 'preset:NAME' nor 'random:SPACE'"
        ) from None
    return spec_from_json(value)
