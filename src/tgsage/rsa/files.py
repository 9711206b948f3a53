"""Reading activations saved by users: ``.npz`` (one array per layer) or ``.npy`` (one layer)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tgsage.data.npz import NPY_MAGIC, read_npz
from tgsage.errors import DataError


def load_activations(path: str | Path) -> dict[str, np.ndarray]:
    """Layers in file order from an ``.npz`` (name -> array) or ``.npy`` file; no pickle."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file; pass the path of an .npz or .npy activation file")
    fix = "save activations with numpy.savez(path, layer1=array1, ...) (no pickled objects)"
    if p.suffix != ".npy" and not _is_npy(p):
        layers = read_npz(p, "activation file", fix)
    else:
        try:
            layers = {p.stem: np.load(p, allow_pickle=False)}
        except (ValueError, OSError, EOFError) as exc:
            raise DataError(f"{p}: not a readable .npy array file ({exc}); {fix}") from None
    if not layers:
        raise DataError(f"{p}: the file holds no arrays")
    return layers


def _is_npy(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(len(NPY_MAGIC)) == NPY_MAGIC
    except OSError:
        return False
