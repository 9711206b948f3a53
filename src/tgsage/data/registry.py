"""Datasets by name: ``get_dataset("synthetic" | "cifar10" | "cifar100" | "folder", **kwargs)``.

One factory per name (timm style) so configs and the command line pick data with a string.
Real datasets default to the cache folder ``$TGSAGE_DATA`` (or ``~/.cache/tgsage``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tgsage.data.base import DataSplits
from tgsage.data.cifar import load_cifar
from tgsage.data.folders import load_image_folder
from tgsage.data.synthetic import RenderConfig, make_synthetic_objects
from tgsage.errors import DataError
from tgsage.registry import Registry

DatasetFactory = Callable[..., DataSplits]
#: Data sets by name; add your own with :func:`register_dataset`.
DATASETS: Registry[DatasetFactory] = Registry("dataset", DataError)


def default_root() -> Path:
    """Where downloaded / extracted datasets live: $TGSAGE_DATA or ~/.cache/tgsage."""
    return Path(os.environ.get("TGSAGE_DATA", "~/.cache/tgsage")).expanduser()


def register_dataset(
    name: str, factory: DatasetFactory | None = None, *, replace: bool = False
) -> Any:
    """Add a factory ``(**kwargs) -> DataSplits`` under ``name`` (also a decorator)."""
    return DATASETS.register(name, factory, replace=replace)


def list_datasets() -> list[str]:
    """Registered dataset names, sorted."""
    return sorted(DATASETS)


def get_dataset(name: str, **kwargs: Any) -> DataSplits:
    """Build a registered dataset; keyword arguments go to its loader."""
    return DATASETS.create(name, **kwargs)


@register_dataset("synthetic")
def _synthetic(
    n_train: int = 9000,
    n_val: int = 1000,
    n_test: int = 0,
    render: dict[str, Any] | None = None,
    **kwargs: Any,
):
    """``render``: difficulty knobs (:class:`~tgsage.data.synthetic.RenderConfig` fields)
    as plain values, so a YAML or search config can ask for easier or harder objects."""
    if render:
        kwargs["config"] = RenderConfig.from_options(render)
    return make_synthetic_objects(n_train, n_val, n_test, **kwargs)


@register_dataset("cifar10")
def _cifar10(root: str | Path | None = None, **kwargs: Any) -> DataSplits:
    return load_cifar("cifar10", root if root is not None else default_root(), **kwargs)


@register_dataset("cifar100")
def _cifar100(root: str | Path | None = None, **kwargs: Any) -> DataSplits:
    return load_cifar("cifar100", root if root is not None else default_root(), **kwargs)


@register_dataset("folder")
def _folder(root: str | Path | None = None, **kwargs: Any) -> DataSplits:
    if root is None:
        raise DataError("dataset 'folder' needs root=<folder with one sub-folder per class>")
    return load_image_folder(root, **kwargs)
