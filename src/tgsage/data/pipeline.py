"""Fast input pipeline for in-memory :class:`~tgsage.data.base.ImageSet` s.

Why not a ``DataLoader``: every dataset tgsage trains on fits in memory as one uint8 tensor, so
the fastest pipeline keeps it that way. The tensor is moved to the training device once; a batch
is an index slice of a seeded permutation; augmentation (pad + random crop, horizontal flip) is one
gather on the whole batch, and per-image standardisation is three reductions. No worker
processes, no per-image Python, and the same code runs on CPU and GPU.

Randomness is drawn on the CPU from ``torch.Generator`` s: the permutation seeded by
``(seed, epoch)``, each batch's crop offsets and flips by ``(seed, epoch, batch)``. So a given
seed yields the same batches on every device, and any batch can be regenerated from its
position alone (a run resumed from a checkpoint continues the exact same stream).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from tgsage.data.base import ImageSet
from tgsage.errors import ConfigError
from tgsage.registry import Registry

Normalize = Literal["per_image", "unit"]


@dataclass(frozen=True)
class Augmentation:
    """What happens to a uint8 batch on its way to the network.

    ``pad``: zero padding on each side before a random crop back to the original size (0 = no
    crop). ``flip``: random horizontal flip with probability 1/2. ``normalize``: ``"per_image"``
    is ``tf.image.per_image_standardization`` (the paper's CIFAR preprocessing); ``"unit"``
    scales to [0, 1].
    """

    pad: int = 0
    flip: bool = False
    normalize: Normalize = "per_image"
    cutout: int = 0

    @property
    def is_random(self) -> bool:
        return self.pad > 0 or self.flip or self.cutout > 0


#: Named augmentation presets. "cifar" is the paper's (supplementary, "Datasets"): zero-pad to
#: 40x40, random 32x32 crop, random flip, per-image standardisation. It works at any image size.
AUGMENTATIONS: Registry[Augmentation] = Registry("augmentation", ConfigError)
AUGMENTATIONS.register("cifar", Augmentation(pad=4, flip=True))
AUGMENTATIONS.register("cifar_cutout", Augmentation(pad=4, flip=True, cutout=16))
AUGMENTATIONS.register("crop_flip", Augmentation(pad=4, flip=True))
AUGMENTATIONS.register("flip", Augmentation(flip=True))
AUGMENTATIONS.register("none", Augmentation())


def get_augmentation(augment: str | Augmentation | None) -> Augmentation:
    """Resolve a preset name (see :data:`AUGMENTATIONS`; add your own with
    ``AUGMENTATIONS.register``) or pass an :class:`Augmentation` on."""
    if augment is None:
        return AUGMENTATIONS["none"]
    if isinstance(augment, Augmentation):
        return augment
    return AUGMENTATIONS.get(augment)


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` (or None) means CUDA when available, else CPU. A device this machine does not
    have (``cuda`` on a CPU-only torch, ``cuda:3`` with two GPUs, a misspelt name) is a
    ConfigError naming what is there, not a failure deep inside the first tensor move."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise ConfigError(
            f"device {device!r} is not a device name; use auto, cpu, cuda or cuda:N"
        ) from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(
                f"device {device!r}: this torch sees no CUDA GPU (a CPU-only build or no GPU "
                "here); use device 'cpu' or 'auto'"
            )
        if dev.index is not None and dev.index >= count:
            raise ConfigError(
                f"device {device!r}: there {'is' if count == 1 else 'are'} only {count} CUDA "
                f"GPU{'s' if count > 1 else ''} (cuda:0..cuda:{count - 1}); use one of them or auto"
            )
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(
            f"device {device!r}: MPS is not available here; use device 'cpu' or 'auto'"
        )
    return dev


def standardize(x: torch.Tensor) -> torch.Tensor:
    """Per-image standardisation with ``tf.image.per_image_standardization`` semantics.

    ``(x - mean) / max(std, 1 / sqrt(num_elements))`` per image, over all of C, H, W, with the
    population standard deviation. The floor keeps constant images finite (they map to zeros).
    """
    # Two passes (mean, then the norm of the centred values): as accurate as torch.std but
    # ~10x faster on CPU, and in place on the fresh float copy.
    out = x.float() if x.dtype != torch.float32 else x.clone()
    if out.shape[0] == 0:
        return out
    flat = out.view(out.shape[0], -1) if out.is_contiguous() else out.reshape(out.shape[0], -1)
    n = flat.shape[1]
    flat.sub_(flat.mean(dim=1, keepdim=True))
    std = torch.linalg.vector_norm(flat, dim=1, keepdim=True).div_(math.sqrt(n))
    flat.div_(std.clamp_min_(1.0 / math.sqrt(n)))
    return flat.view_as(out)


def normalize_images(x: torch.Tensor, mode: Normalize = "per_image") -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32, normalised as the network saw it in training."""
    if mode == "per_image":
        return standardize(x)
    if mode == "unit":
        return x.float().div_(255.0)
    raise ConfigError(f"unknown normalisation {mode!r}; choose 'per_image' or 'unit'")


def crop_flip(
    x: torch.Tensor,
    pad: int,
    offsets: torch.Tensor | None,
    flips: torch.Tensor | None,
) -> torch.Tensor:
    """Zero-pad by ``pad``, crop at per-sample ``offsets`` (N, 2) = (dy, dx), flip where ``flips``.

    One ``gather`` on the whole batch (flat per-channel indices; much faster on CPU than 4-D
    advanced indexing); works on any dtype and device. ``offsets`` lie in [0, 2 * pad];
    ``flips`` is a bool (N,) mask.
    """
    n, c, h, w = x.shape
    dev = x.device
    if pad > 0:
        x = F.pad(x, (pad, pad, pad, pad))
    wp = w + 2 * pad
    if offsets is None:
        offsets = torch.full((n, 2), pad, dtype=torch.long)
    offsets = offsets.to(dev)
    rows = offsets[:, 0:1] + torch.arange(h, device=dev)  # (N, H)
    cols_fwd = torch.arange(w, device=dev)
    if flips is not None:
        cols_rel = torch.where(flips.to(dev).view(n, 1), cols_fwd.flip(0), cols_fwd)
    else:
        cols_rel = cols_fwd.expand(n, w)
    cols = offsets[:, 1:2] + cols_rel  # (N, W)
    flat_idx = (rows.view(n, h, 1) * wp + cols.view(n, 1, w)).view(n, 1, h * w)
    src = x.reshape(n, c, -1)
    return src.gather(2, flat_idx.expand(n, c, h * w)).view(n, c, h, w)


def augment_batch(
    x: torch.Tensor, augmentation: Augmentation, generator: torch.Generator | None
) -> torch.Tensor:
    """Apply ``augmentation`` to a uint8 batch on its device; returns float32 (N, C, H, W).

    Random draws come from ``generator`` (a CPU generator), so results do not depend on the
    device.
    """
    if augmentation.pad > 0 or augmentation.flip:
        n = x.shape[0]
        offsets = (
            torch.randint(0, 2 * augmentation.pad + 1, (n, 2), generator=generator)
            if augmentation.pad > 0
            else None
        )
        flips = torch.rand(n, generator=generator) < 0.5 if augmentation.flip else None
        x = crop_flip(x, augmentation.pad, offsets, flips)
    x = normalize_images(x, augmentation.normalize)
    if augmentation.cutout > 0:
        n, _, h, w = x.shape
        centres = torch.stack(
            [
                torch.randint(0, h, (n,), generator=generator),
                torch.randint(0, w, (n,), generator=generator),
            ],
            dim=1,
        )
        x = cutout(x, augmentation.cutout, centres)
    return x


def cutout(x: torch.Tensor, size: int, centres: torch.Tensor) -> torch.Tensor:
    """Zero a ``size`` x ``size`` square per image centred at ``centres`` (N, 2) = (y, x),
    clipped at the border (rows ``y - size // 2`` to ``y - size // 2 + size``); in place on
    ``x`` (N, C, H, W), which is returned. One mask product for the whole batch."""
    h, w = x.shape[-2:]
    c = centres.to(x.device)
    lo = c - size // 2
    rows = torch.arange(h, device=x.device)
    cols = torch.arange(w, device=x.device)
    in_rows = (rows >= lo[:, 0:1]) & (rows < lo[:, 0:1] + size)  # (N, H)
    in_cols = (cols >= lo[:, 1:2]) & (cols < lo[:, 1:2] + size)  # (N, W)
    keep = ~(in_rows[:, :, None] & in_cols[:, None, :])
    return x.mul_(keep[:, None].to(x.dtype))


def _seeded_generator(*keys: int) -> torch.Generator:
    """A CPU generator with a reproducible seed mixed from integer keys (seed, epoch, batch)."""
    h = 0x9E3779B97F4A7C15
    for k in keys:
        h = ((h ^ (int(k) & 0xFFFFFFFFFFFFFFFF)) * 0x100000001B3 + 0x632BE59BD9B4E019) % (2**64)
        h ^= h >> 29
    g = torch.Generator()
    g.manual_seed(h % (2**63 - 1))
    return g


def device_images(imageset: ImageSet, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The uint8 images and labels on ``device`` (one transfer; no copy if already there)."""
    return imageset.images.to(device), imageset.labels.to(device)


class BatchIterator:
    """Batches of one epoch over an in-memory image set, augmented on the device.

    Yields ``(x, y)``: x float32 (N, C, H, W) normalised (channels_last memory format if asked),
    y int64 labels, both on ``device``. The order is a permutation seeded by ``(seed, epoch)``
    (or the stored order when ``shuffle=False``). The images are moved to the device once per
    iterator; pass ``images``/``labels`` already on the device to skip even that.
    """

    def __init__(
        self,
        imageset: ImageSet,
        batch_size: int,
        device: str | torch.device | None = "auto",
        augment: str | Augmentation | None = "none",
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        channels_last: bool = False,
        epoch: int = 0,
        start_batch: int = 0,
        images: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.imageset = imageset
        self.batch_size = int(batch_size)
        self.device = resolve_device(device)
        self.augmentation = get_augmentation(augment)
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.channels_last = channels_last
        self.epoch = epoch
        self.start_batch = start_batch
        if images is None or labels is None:
            images, labels = device_images(imageset, self.device)
        self._images = images
        self._labels = labels

    def __len__(self) -> int:
        n = len(self.imageset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.imageset)
        order = None
        if self.shuffle:
            perm_gen = _seeded_generator(self.seed, self.epoch)
            order = torch.randperm(n, generator=perm_gen).to(self.device)
        for b in range(self.start_batch, len(self)):
            lo, hi = b * self.batch_size, min((b + 1) * self.batch_size, n)
            if order is None:
                xb, yb = self._images[lo:hi], self._labels[lo:hi]
            else:
                idx = order[lo:hi]
                xb, yb = self._images[idx], self._labels[idx]
            gen = (
                _seeded_generator(self.seed, self.epoch, b + 1)
                if self.augmentation.is_random
                else None
            )
            x = augment_batch(xb, self.augmentation, gen)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, yb

    def with_epoch(self, epoch: int, start_batch: int = 0) -> BatchIterator:
        """The same iterator for another epoch (from ``start_batch``), sharing device tensors."""
        clone = replace_iterator(self)
        clone.epoch = epoch
        clone.start_batch = start_batch
        return clone


def replace_iterator(it: BatchIterator) -> BatchIterator:
    """A shallow copy sharing the device tensors (used to step through epochs cheaply)."""
    new = BatchIterator.__new__(BatchIterator)
    new.__dict__.update(it.__dict__)
    return new


def iterate_batches(
    imageset: ImageSet,
    batch_size: int,
    device: str | torch.device | None = "auto",
    augment: str | Augmentation | None = "none",
    shuffle: bool = False,
    seed: int = 0,
    drop_last: bool = False,
    channels_last: bool = False,
    epoch: int = 0,
    start_batch: int = 0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of ``(x, y)`` batches; see :class:`BatchIterator`."""
    return iter(
        BatchIterator(
            imageset,
            batch_size,
            device=device,
            augment=augment,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
            channels_last=channels_last,
            epoch=epoch,
            start_batch=start_batch,
        )
    )


def prepare_images(
    images: torch.Tensor,
    device: str | torch.device | None = "auto",
    normalize: Normalize = "per_image",
) -> torch.Tensor:
    """Deterministic (evaluation-time) preprocessing of uint8 images: move, then normalise."""
    return normalize_images(images.to(resolve_device(device)), normalize)


__all__ = [
    "AUGMENTATIONS",
    "Augmentation",
    "BatchIterator",
    "augment_batch",
    "crop_flip",
    "cutout",
    "get_augmentation",
    "iterate_batches",
    "normalize_images",
    "prepare_images",
    "resolve_device",
    "standardize",
]
