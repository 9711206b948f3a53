"""Dataset registry: names, dispatch to the loaders, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from cifar_fakes import make_cifar10, make_cifar100
from PIL import Image

from tgsage.data.registry import get_dataset, list_datasets, register_dataset
from tgsage.errors import DataError


def test_list_datasets() -> None:
    assert {"synthetic", "cifar10", "cifar100", "folder"} <= set(list_datasets())


def test_synthetic_by_name() -> None:
    s = get_dataset("synthetic", n_train=16, n_val=8, resolution=16, seed=2)
    assert s.train.images.shape == (16, 3, 16, 16) and s.num_classes == 8


def test_cifar_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_cifar10(tmp_path, n_per_batch=10)
    make_cifar100(tmp_path)
    assert len(get_dataset("cifar10", root=tmp_path).train) == 45
    monkeypatch.setenv("TGSAGE_DATA", str(tmp_path))
    assert get_dataset("cifar100", val_size=10).num_classes == 100


def test_folder_by_name(tmp_path: Path) -> None:
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.new("RGB", (10, 10), (i * 50, 0, 0)).save(tmp_path / cls / f"{i}.png")
    s = get_dataset("folder", root=tmp_path, size=8, val_size=2)
    assert s.train.images.shape == (4, 3, 8, 8)
    assert torch.equal(
        torch.bincount(torch.cat([s.train.labels, s.val.labels])), torch.tensor([3, 3])
    )


def test_errors() -> None:
    with pytest.raises(DataError, match="unknown dataset 'mnist'"):
        get_dataset("mnist")
    with pytest.raises(DataError, match="bad option.*synthetic"):
        get_dataset("synthetic", n_trian=5)
    with pytest.raises(DataError, match="root="):
        get_dataset("folder")
    with pytest.raises(DataError, match="already registered"):
        register_dataset("synthetic")(lambda: None)
