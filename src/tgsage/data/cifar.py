"""CIFAR-10 / CIFAR-100 from the standard "python version" files.

Reads a directory the user names (``cifar-10-batches-py`` / ``cifar-100-python`` or its parent)
or downloads the official archive with MD5 verification. The files are pickles; they are read
with a restricted unpickler that can only rebuild builtin containers and numpy arrays, so a
tampered file cannot execute code. Split: the paper holds out 5k of the 50k training images
for validation (a seeded random 10%, or a given count); the test split comes from the test file.
"""

from __future__ import annotations

import hashlib
import pickle
import shutil
import tarfile
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tgsage.data.base import DataSplits, ImageSet
from tgsage.errors import DataError


@dataclass(frozen=True)
class CifarSpec:
    """Where one CIFAR variant lives: archive, folder, file names and label keys."""

    name: str
    url: str
    md5: str
    folder: str
    train_files: tuple[str, ...]
    test_file: str
    meta_file: str
    label_key: str
    names_key: str


CIFAR_SPECS: dict[str, CifarSpec] = {
    "cifar10": CifarSpec(
        name="CIFAR-10",
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        md5="c58f30108f718f92721af3b95e74349a",
        folder="cifar-10-batches-py",
        train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test_file="test_batch",
        meta_file="batches.meta",
        label_key="labels",
        names_key="label_names",
    ),
    "cifar100": CifarSpec(
        name="CIFAR-100",
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        md5="eb9058c3a382ffc7106e4002c42a8d85",
        folder="cifar-100-python",
        train_files=("train",),
        test_file="test",
        meta_file="meta",
        label_key="fine_labels",
        names_key="fine_label_names",
    ),
}

# Globals a CIFAR pickle may reference: numpy array reconstruction and harmless builtins.
_ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    [(mod, "_reconstruct") for mod in ("numpy.core.multiarray", "numpy._core.multiarray")]
    + [(mod, "scalar") for mod in ("numpy.core.multiarray", "numpy._core.multiarray")]
    + [(mod, "_frombuffer") for mod in ("numpy.core.numeric", "numpy._core.numeric")]
    + [("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")]
    + [
        ("builtins", n)
        for n in (
            "dict",
            "list",
            "tuple",
            "set",
            "frozenset",
            "bytearray",
            "bytes",
            "str",
            "int",
            "float",
            "complex",
            "bool",
            "slice",
            "range",
        )
    ]
)


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that refuses every global except numpy array rebuilding and safe builtins."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR file")


def _normalise_name(name: str) -> str:
    key = name.lower().replace("-", "").replace("_", "")
    if key not in CIFAR_SPECS:
        raise DataError(f"unknown CIFAR variant {name!r}; use 'cifar10' or 'cifar100'")
    return key


def read_cifar_file(path: str | Path) -> dict[str, Any]:
    """One CIFAR pickle as a dict with str keys (official files have bytes keys)."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            obj = _RestrictedUnpickler(fh, encoding="bytes").load()
    except FileNotFoundError:
        raise DataError(f"CIFAR file {path} not found") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DataError(
            f"{path} is not a readable CIFAR python-version file ({exc}); re-extract the "
            "official archive or pass download=True"
        ) from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a pickled dict, found {type(obj).__name__}")
    return {(k.decode("latin1") if isinstance(k, bytes) else str(k)): v for k, v in obj.items()}


def _images(batch: dict[str, Any], path: Path) -> np.ndarray:
    if "data" not in batch:
        raise DataError(f"{path}: no 'data' entry; is this a CIFAR python-version file?")
    data = np.asarray(batch["data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(
            f"{path}: 'data' must be uint8 N x 3072 (channel-major 32x32 RGB), got "
            f"{data.dtype} {data.shape}"
        )
    return data.reshape(-1, 3, 32, 32)


def _labels(batch: dict[str, Any], key: str, n: int, path: Path) -> np.ndarray:
    if key not in batch:
        raise DataError(f"{path}: missing label entry {key!r}")
    labels = np.asarray(batch[key], dtype=np.int64)
    if labels.shape != (n,):
        raise DataError(f"{path}: {n} images but {key!r} has shape {labels.shape}")
    return labels


def _find_dir(spec: CifarSpec, root: Path) -> Path | None:
    for cand in (root / spec.folder, root):
        if any((cand / f).is_file() for f in (*spec.train_files, spec.test_file)):
            return cand
    return None


def _missing_message(spec: CifarSpec, root: Path, missing: str) -> str:
    archive = Path(spec.url).name
    return (
        f"{spec.name} file {missing!r} not found under {root} (looked in {root / spec.folder} "
        f"and {root}); extract the archive with `tar -xzf {archive} -C {root}` or pass "
        "download=True"
    )


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download_cifar(
    name: str, root: str | Path, url: str | None = None, md5: str | None = None
) -> Path:
    """Download (if needed), verify and extract the official archive; returns the data folder.

    An archive already in ``root`` is verified and reused. ``url`` / ``md5`` override the
    official ones (mirrors, tests).
    """
    spec = CIFAR_SPECS[_normalise_name(name)]
    url = url or spec.url
    md5 = md5 or spec.md5
    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    archive = root / Path(spec.url).name
    if not archive.is_file():
        part = archive.with_name(archive.name + ".part")
        try:
            with urllib.request.urlopen(url, timeout=60) as resp, part.open("wb") as out:
                shutil.copyfileobj(resp, out, length=1 << 20)
        except OSError as exc:
            part.unlink(missing_ok=True)
            raise DataError(
                f"could not download {spec.name} from {url} ({exc}); check the network or "
                f"download it by hand into {root}"
            ) from None
        part.replace(archive)
    got = _md5(archive)
    if got != md5:
        archive.unlink()
        raise DataError(
            f"checksum mismatch for {archive}: expected MD5 {md5}, got {got}; the file was "
            "corrupt or incomplete and has been deleted, retry the download"
        )
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(root, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise DataError(f"could not extract {archive} ({exc}); delete it and retry") from None
    folder = _find_dir(spec, root)
    if folder is None:
        raise DataError(f"{archive} did not contain the {spec.name} folder {spec.folder!r}")
    return folder


def split_indices(n: int, val_size: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded random (train, val) index split, each in ascending order.

    ``val_size=None`` holds out 10% (5,000 of CIFAR's 50,000 as in the paper).
    """
    k = round(0.1 * n) if val_size is None else int(val_size)
    if not 0 <= k < n:
        raise DataError(f"validation size {k} must lie in [0, {n}) for {n} training images")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    return perm[k:].sort().values, perm[:k].sort().values


def load_cifar(
    name: str,
    root: str | Path,
    download: bool = False,
    val_size: int | None = None,
    seed: int = 0,
    label: str = "fine",
    url: str | None = None,
    md5: str | None = None,
) -> DataSplits:
    """CIFAR-10 or CIFAR-100 as train / val / test ImageSets (uint8, 32x32).

    ``root`` is the extracted folder or its parent. ``label`` picks CIFAR-100's "fine" (100) or
    "coarse" (20) classes; groups always hold ``"class"`` (and ``"fine"``/``"coarse"``).
    Missing CIFAR-10 training batches are skipped with a warning.
    """
    key = _normalise_name(name)
    spec = CIFAR_SPECS[key]
    root = Path(root).expanduser()
    folder = _find_dir(spec, root)
    if folder is None:
        if not download:
            raise DataError(_missing_message(spec, root, spec.train_files[0]))
        folder = download_cifar(key, root, url=url, md5=md5)
    present = [f for f in spec.train_files if (folder / f).is_file()]
    if not present:
        raise DataError(_missing_message(spec, root, spec.train_files[0]))
    if len(present) < len(spec.train_files):
        missing = sorted(set(spec.train_files) - set(present))
        warnings.warn(
            f"{spec.name}: only {', '.join(present)} found in {folder}; loading those "
            f"(missing: {', '.join(missing)})",
            stacklevel=2,
        )
    label_key = spec.label_key
    if key == "cifar100":
        if label not in ("fine", "coarse"):
            raise DataError(f"CIFAR-100 label must be 'fine' or 'coarse', got {label!r}")
        label_key = f"{label}_labels"

    def read(files: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        imgs, labs = [], {}
        for f in files:
            path = folder / f
            batch = read_cifar_file(path)
            x = _images(batch, path)
            imgs.append(x)
            keys = ("fine_labels", "coarse_labels") if key == "cifar100" else ("labels",)
            for lk in keys:
                labs.setdefault(lk, []).append(_labels(batch, lk, len(x), path))
        return np.concatenate(imgs), {k: np.concatenate(v) for k, v in labs.items()}

    names = _class_names(folder / spec.meta_file, label_key.replace("labels", "label_names"))
    num_classes = {"labels": 10, "fine_labels": 100, "coarse_labels": 20}[label_key]
    x_all, y_all = read(present)
    tr, va = split_indices(len(x_all), val_size, seed)

    def image_set(x: np.ndarray, ys: dict[str, np.ndarray], split: str) -> ImageSet:
        groups = {k.removesuffix("_labels"): torch.from_numpy(v) for k, v in ys.items()}
        if key == "cifar10":
            groups = {"class": groups.pop("labels")}
        else:
            groups["class"] = groups[label]
        return ImageSet(
            images=torch.from_numpy(np.ascontiguousarray(x)),
            labels=torch.from_numpy(ys[label_key]).clone(),
            num_classes=num_classes,
            name=f"{key}-{split}",
            groups=groups,
            class_names=names,
        )

    train = image_set(x_all[tr.numpy()], {k: v[tr.numpy()] for k, v in y_all.items()}, "train")
    val = image_set(x_all[va.numpy()], {k: v[va.numpy()] for k, v in y_all.items()}, "val")
    test = None
    if (folder / spec.test_file).is_file():
        x_te, y_te = read([spec.test_file])
        test = image_set(x_te, y_te, "test")
    else:
        warnings.warn(
            f"{spec.name}: no {spec.test_file!r} in {folder}; test split is None", stacklevel=2
        )
    return DataSplits(train=train, val=val, test=test)


def _class_names(path: Path, key: str) -> tuple[str, ...] | None:
    if not path.is_file():
        return None
    meta = read_cifar_file(path)
    names = meta.get(key)
    if names is None:
        return None
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
