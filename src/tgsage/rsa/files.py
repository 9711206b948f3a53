"""Reading activations saved by users: ``.npz`` (one array per layer) or ``.npy`` (one layer)."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from tgsage.errors import DataError


def load_activations(path: str | Path) -> dict[str, np.ndarray]:
    """Layers in file order from an ``.npz`` (name -> array) or ``.npy`` file; no pickle."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file; pass the path of an .npz or .npy activation file")
    try:
        if p.suffix == ".npy":
            return {p.stem: np.load(p, allow_pickle=False)}
        with np.load(p, allow_pickle=False) as z:
            if not isinstance(z, np.lib.npyio.NpzFile):
                return {p.stem: np.asarray(z)}
            layers = {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
        raise DataError(
            f"{p}: not a readable .npz/.npy array file ({exc}); save activations with "
            "numpy.savez(path, layer1=array1, ...) (no pickled objects)"
        ) from exc
    if not layers:
        raise DataError(f"{p}: the file holds no arrays")
    return layers
