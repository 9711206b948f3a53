"""Probe sets: the fixed, ordered images whose activations make the RDMs.

A teacher RDM and a candidate RDM are only comparable when both were measured on the same
images in the same order, so a probe set carries a ``fingerprint``: a short SHA-256 over the
image tensor's shape, dtype and bytes, in order. Any change of content or order changes it.
Probe sets are stored as NPZ without pickle, and the fingerprint is checked on load.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from tgsage.data.base import ImageSet
from tgsage.data.npz import read_npz
from tgsage.errors import DataError, ProbeMismatchError

FINGERPRINT_CHARS = 16


def fingerprint_images(images: torch.Tensor | np.ndarray) -> str:
    """Short hex SHA-256 of an image array's shape, dtype and bytes (C order)."""
    arr = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else images
    arr = np.ascontiguousarray(arr)
    h = hashlib.sha256()
    h.update(repr(tuple(int(s) for s in arr.shape)).encode())
    h.update(arr.dtype.str.encode())
    h.update(memoryview(arr).cast("B"))
    return h.hexdigest()[:FINGERPRINT_CHARS]


def _shape(shape: Sequence[int]) -> str:
    return "x".join(str(s) for s in shape)


@dataclass(frozen=True)
class ProbeSet:
    """Fixed ordered images (uint8 N, C, H, W), labelings for grouped RDMs, stimulus ids.

    ``labelings`` maps a name (``"label"``, ``"category"``, ``"object"``, ...) to int64 (N,)
    labels. ``stimulus_ids`` name each image so neural recordings can be aligned to it
    (default ``"0" .. "N-1"``).
    """

    images: torch.Tensor
    labelings: dict[str, torch.Tensor] = field(default_factory=dict)
    stimulus_ids: tuple[str, ...] = ()
    name: str = "probe"

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise DataError(
                f"probe set {self.name!r}: images must be uint8 (N, C, H, W), got "
                f"{self.images.dtype} {tuple(self.images.shape)}"
            )
        n = len(self)
        for key, lab in self.labelings.items():
            if lab.shape != (n,):
                raise DataError(
                    f"probe set {self.name!r}: labeling {key!r} has shape "
                    f"{tuple(lab.shape)}, expected ({n},)"
                )
        if not self.stimulus_ids:
            object.__setattr__(self, "stimulus_ids", tuple(str(i) for i in range(n)))
        if len(self.stimulus_ids) != n:
            raise DataError(
                f"probe set {self.name!r}: {len(self.stimulus_ids)} stimulus ids for {n} images"
            )
        if len(set(self.stimulus_ids)) != n:
            raise DataError(f"probe set {self.name!r}: stimulus ids must be unique")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def check_image_shape(self, shape: Sequence[int], what: str = "the data") -> None:
        """Refuse probe images of another shape than the images a network is trained on (a
        network with global pooling would accept them and measure nonsense)."""
        mine, theirs = tuple(int(s) for s in self.images.shape[1:]), tuple(int(s) for s in shape)
        if mine != theirs:
            raise ProbeMismatchError(
                f"probe set {self.name!r} has images of shape {_shape(mine)} but {what} has "
                f"{_shape(theirs)}; build the teacher on probe images at the data's resolution"
            )

    @property
    def fingerprint(self) -> str:
        """16-hex-char SHA-256 of the images (shape, dtype, bytes, order); cached."""
        cached = self.__dict__.get("_fingerprint")
        if cached is None:
            cached = fingerprint_images(self.images)
            object.__setattr__(self, "_fingerprint", cached)
        return cached

    @classmethod
    def from_images(
        cls,
        images: ImageSet,
        max_images: int | None = None,
        name: str | None = None,
        stimulus_ids: Sequence[str] | None = None,
    ) -> ProbeSet:
        """The first ``max_images`` images of an ImageSet (all by default), in order.

        Labelings are the set's labels (as ``"label"``) plus all its groups.
        """
        n = len(images) if max_images is None else min(int(max_images), len(images))
        labelings = {"label": images.labels[:n].clone()}
        labelings |= {k: v[:n].clone() for k, v in images.groups.items()}
        ids = tuple(stimulus_ids[:n]) if stimulus_ids is not None else ()
        return cls(
            images=images.images[:n].contiguous(),
            labelings=labelings,
            stimulus_ids=ids,
            name=name or images.name,
        )

    def subset(self, index: torch.Tensor | Sequence[int]) -> ProbeSet:
        """A probe set of the selected images in the given order (new fingerprint)."""
        idx = torch.as_tensor(index, dtype=torch.long)
        return ProbeSet(
            images=self.images[idx].contiguous(),
            labelings={k: v[idx] for k, v in self.labelings.items()},
            stimulus_ids=tuple(self.stimulus_ids[i] for i in idx.tolist()),
            name=self.name,
        )

    def float_batches(self, batch_size: int = 256, device: torch.device | str = "cpu"):
        """Yield float32 batches in [0, 1] on ``device``, in probe order."""
        for i in range(0, len(self), batch_size):
            yield self.images[i : i + batch_size].to(device).float().div_(255)

    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """Plain arrays (images, ids, name, fingerprint, ``labeling.<name>``) for an NPZ."""
        arrays = {
            "images": self.images.cpu().numpy(),
            "stimulus_ids": np.array(self.stimulus_ids, dtype=str),
            "fingerprint": np.array(self.fingerprint),
            "name": np.array(self.name),
        }
        arrays |= {f"labeling.{k}": v.cpu().numpy() for k, v in self.labelings.items()}
        return {prefix + k: v for k, v in arrays.items()}

    @classmethod
    def from_arrays(
        cls, data: dict[str, np.ndarray], prefix: str = "", source: str = "arrays"
    ) -> ProbeSet:
        """Inverse of :meth:`to_arrays`; refuses images that no longer match the fingerprint."""
        data = {k.removeprefix(prefix): v for k, v in data.items() if k.startswith(prefix)}
        if "images" not in data:
            raise DataError(f"{source}: missing probe images; write probe sets with ProbeSet.save")
        probe = cls(
            images=torch.from_numpy(data["images"]),
            labelings={
                k.removeprefix("labeling."): torch.from_numpy(v.astype(np.int64))
                for k, v in data.items()
                if k.startswith("labeling.")
            },
            stimulus_ids=tuple(str(s) for s in data.get("stimulus_ids", np.array([], str))),
            name=str(data.get("name", "probe")),
        )
        stored = str(data["fingerprint"]) if "fingerprint" in data else probe.fingerprint
        if probe.fingerprint != stored:
            raise DataError(
                f"{source}: images have fingerprint {probe.fingerprint} but the "
                f"file records {stored}; the file is corrupt or was edited, rebuild it"
            )
        return probe

    def save(self, path: str | Path) -> Path:
        """Write an NPZ (no pickle): images, ``labeling.<name>`` arrays, ids, fingerprint."""
        path = Path(path)
        with path.open("wb") as fh:
            np.savez_compressed(fh, **self.to_arrays())
        return path

    @classmethod
    def load(cls, path: str | Path) -> ProbeSet:
        """Read a saved probe set; refuses a file whose images no longer match its fingerprint."""
        path = Path(path)
        data = read_npz(path, "probe-set file", "write probe sets with ProbeSet.save")
        if "fingerprint" not in data:
            raise DataError(f"{path}: missing 'fingerprint'; write probe sets with ProbeSet.save")
        return cls.from_arrays(data, source=str(path))
