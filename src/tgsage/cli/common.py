"""Pieces shared by CLI commands: consoles, error handling, data options, spec parsing."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console

from tgsage.errors import ConfigError, SpecError, TgsageError

if TYPE_CHECKING:  # the commands import the library lazily: `tgsage --version` stays fast
    from tgsage.data.base import DataSplits

DATA_HELP = "Dataset: synthetic (no download), cifar10, cifar100, folder."
console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(fn: F) -> F:
    """Turn tgsage's own errors into one red line and exit code 2 instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TgsageError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
            raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]


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
        seed = int(parts[2]) if len(parts) > 2 else 0
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
