"""Reading tgsage's NPZ files (teachers, probe sets, RDMs, recordings) without pickle.

Every way such a file can be wrong - missing, a folder, unreadable, empty, not an NPZ archive
at all, a truncated or corrupted archive, an archive holding pickled objects - is one
:class:`~tgsage.errors.DataError` that says which of these it is and how to fix it, instead of
numpy's and zipfile's own exceptions (``BadZipFile``, ``Bad CRC-32``, ``EOFError``, or "pickled
data" for random bytes).
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from tgsage.errors import DataError

ZIP_MAGIC = b"PK\x03\x04"
NPY_MAGIC = b"\x93NUMPY"


def read_npz(path: str | Path, what: str, fix: str) -> dict[str, np.ndarray]:
    """All arrays of the NPZ file ``path``; ``what`` names the file's role ("teacher file")
    and ``fix`` says how to get a good one, both used in the error messages."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{what} {path} not found; {fix}")
    if path.is_dir():
        raise DataError(f"{what} {path} is a folder, not a file; {fix}")
    try:
        with path.open("rb") as fh:
            head = fh.read(len(NPY_MAGIC))
    except OSError as exc:
        raise DataError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if not head:
        raise DataError(f"{what} {path} is empty (0 bytes); {fix}")
    if not head.startswith(ZIP_MAGIC):
        kind = "a single .npy array" if head.startswith(NPY_MAGIC) else "not an NPZ archive"
        article = "an" if what[:1].lower() in "aeiou" else "a"
        raise DataError(f"{path} is not {article} {what} ({kind}); {fix}")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "pickle" in detail:
            detail = "it holds pickled objects, which tgsage never loads"
        raise DataError(
            f"{what} {path} is damaged (truncated or corrupted: {detail}); {fix}"
        ) from None


__all__ = ["read_npz"]
