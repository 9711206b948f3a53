"""ImageNet-style image folders (``root/<class>/*.jpg``), resized into one uint8 tensor.

Either ``root`` holds ``train/`` and ``val/`` (optionally ``test/``) folders each with one
sub-folder per class, or it holds the class folders directly and a seeded random validation
split is taken. Images are decoded with Pillow in a thread pool (decoding releases the GIL),
converted to RGB and resized to ``size x size`` (paper 4.4 used 64x64 ImageNet images).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from tgsage.data.base import DataSplits, ImageSet
from tgsage.data.cifar import split_indices
from tgsage.errors import DataError

IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".gif",
    ".webp",
    ".tif",
    ".tiff",
    ".ppm",
)


def _pil():  # imported lazily: only image folders need Pillow
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow ships with matplotlib
        raise DataError("reading image folders needs Pillow: pip install pillow") from None
    return Image


def scan_folder(
    root: Path,
    class_names: tuple[str, ...] | None = None,
    extensions: tuple[str, ...] = IMAGE_EXTENSIONS,
) -> tuple[list[Path], list[int], tuple[str, ...]]:
    """Sorted image paths, their class indices and the class names (sorted sub-folder names)."""
    if not root.is_dir():
        raise DataError(
            f"image folder {root} does not exist; pass the folder that holds one "
            "sub-folder per class"
        )
    found = tuple(sorted(p.name for p in root.iterdir() if p.is_dir()))
    names = class_names if class_names is not None else found
    extra = sorted(set(found) - set(names))
    if extra:
        raise DataError(
            f"{root} has class folders {extra} that the training set lacks; "
            "make the split folders hold the same classes"
        )
    exts = {e.lower() for e in extensions}
    paths: list[Path] = []
    labels: list[int] = []
    for idx, name in enumerate(names):
        if not (root / name).is_dir():
            continue
        files = sorted(p for p in (root / name).iterdir() if p.suffix.lower() in exts)
        paths += files
        labels += [idx] * len(files)
    if not paths:
        raise DataError(
            f"no images ({', '.join(sorted(exts))}) found under {root}/<class>/; "
            "expected ImageNet-style folders root/<class_name>/<image>"
        )
    return paths, labels, names


def load_image(path: Path, size: int, mode: str = "crop") -> np.ndarray:
    """One image as uint8 (3, size, size): RGB; ``crop`` keeps aspect (resize + centre crop),
    ``stretch`` resizes the whole image."""
    image_mod = _pil()
    try:
        with image_mod.open(path) as im:
            im = im.convert("RGB")
            if mode == "crop":
                w, h = im.size
                s = min(w, h)
                left, top = (w - s) // 2, (h - s) // 2
                im = im.crop((left, top, left + s, top + s))
            im = im.resize((size, size), image_mod.Resampling.BILINEAR, reducing_gap=3.0)
            return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)
    except OSError as exc:
        raise DataError(
            f"could not read image {path} ({exc}); remove or replace the file"
        ) from None


def load_images(paths: list[Path], size: int, mode: str = "crop", workers: int = 4) -> torch.Tensor:
    """Decode and resize many images into one uint8 tensor (N, 3, size, size)."""
    if mode not in ("crop", "stretch"):
        raise DataError(f"resize mode must be 'crop' or 'stretch', got {mode!r}")
    out = np.empty((len(paths), 3, size, size), dtype=np.uint8)

    def work(i: int) -> None:
        out[i] = load_image(paths[i], size, mode)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(work, range(len(paths))))
    return torch.from_numpy(out)


def _image_set(
    root: Path, names: tuple[str, ...] | None, size: int, mode: str, workers: int, split: str
) -> ImageSet:
    paths, labels, names = scan_folder(root, names)
    y = torch.tensor(labels, dtype=torch.int64)
    return ImageSet(
        images=load_images(paths, size, mode, workers),
        labels=y,
        num_classes=len(names),
        name=f"{root.name}-{split}",
        groups={"class": y},
        class_names=names,
    )


def load_image_folder(
    root: str | Path,
    size: int = 64,
    val_size: int | None = None,
    seed: int = 0,
    mode: str = "crop",
    workers: int = 4,
) -> DataSplits:
    """Train / val (/ test) ImageSets from an image-folder tree, resized to ``size``.

    With ``train/`` and ``val/`` sub-folders those are used as given (class indices follow the
    sorted class names of ``train/``). Otherwise ``val_size`` images (default 10%) are drawn at
    random (seeded) from the class folders for validation.
    """
    root = Path(root).expanduser()
    if (root / "train").is_dir() and (root / "val").is_dir():
        train = _image_set(root / "train", None, size, mode, workers, "train")
        names = train.class_names
        val = _image_set(root / "val", names, size, mode, workers, "val")
        test = (
            _image_set(root / "test", names, size, mode, workers, "test")
            if (root / "test").is_dir()
            else None
        )
        return DataSplits(train=train, val=val, test=test)
    full = _image_set(root, None, size, mode, workers, "all")
    tr, va = split_indices(len(full), val_size, seed)
    train, val = full.subset(tr), full.subset(va)
    return DataSplits(
        train=ImageSet(
            train.images,
            train.labels,
            train.num_classes,
            f"{root.name}-train",
            train.groups,
            train.class_names,
        ),
        val=ImageSet(
            val.images, val.labels, val.num_classes, f"{root.name}-val", val.groups, val.class_names
        ),
    )
