"""Small CIFAR files in the real python-version format, for tests (no download)."""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np


def _dump(path: Path, obj: dict, bytes_keys: bool, protocol: int) -> None:
    if bytes_keys:
        obj = {k.encode(): v for k, v in obj.items()}
    with path.open("wb") as fh:
        pickle.dump(obj, fh, protocol=protocol)


def make_cifar10(
    root: Path,
    n_per_batch: int = 20,
    batches=(1, 2, 3, 4, 5),
    test: bool = True,
    bytes_keys: bool = False,
    protocol: int = 4,
    seed: int = 0,
) -> dict:
    """Write cifar-10-batches-py under root; returns the arrays written (in file order)."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    out: dict = {"train_x": [], "train_y": []}
    for b in batches:
        x = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
        y = rng.integers(0, 10, n_per_batch).tolist()
        _dump(
            folder / f"data_batch_{b}",
            {"batch_label": f"batch {b}", "data": x, "labels": y},
            bytes_keys,
            protocol,
        )
        out["train_x"].append(x)
        out["train_y"].append(y)
    out["train_x"] = np.concatenate(out["train_x"]) if batches else None
    out["train_y"] = np.concatenate(out["train_y"]) if batches else None
    if test:
        x = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
        y = rng.integers(0, 10, n_per_batch).tolist()
        _dump(folder / "test_batch", {"data": x, "labels": y}, bytes_keys, protocol)
        out["test_x"], out["test_y"] = x, np.array(y)
    names = [f"class{i}" for i in range(10)]
    _dump(
        folder / "batches.meta",
        {"label_names": [n.encode() if bytes_keys else n for n in names]},
        bytes_keys,
        protocol,
    )
    return out


def make_cifar100(
    root: Path, n_train: int = 60, n_test: int = 20, bytes_keys: bool = False, seed: int = 0
) -> dict:
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        fine = rng.integers(0, 100, n)
        coarse = fine // 5
        _dump(
            folder / split,
            {"data": x, "fine_labels": fine.tolist(), "coarse_labels": coarse.tolist()},
            bytes_keys,
            4,
        )
        out[split] = (x, fine, coarse)
    _dump(
        folder / "meta",
        {
            "fine_label_names": [f"f{i}" for i in range(100)],
            "coarse_label_names": [f"c{i}" for i in range(20)],
        },
        bytes_keys,
        4,
    )
    return out


def make_archive(src_root: Path, folder: str, archive: Path) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src_root / folder, arcname=folder)
    return archive
