"""An append-only cache of candidate evaluations shared by repeated searches.

NAS benchmarks make many searches affordable by evaluating each (architecture, budget, seed)
once and looking the result up afterwards. ``EvaluationCache`` does that for tgsage: one JSON
line per evaluation, keyed by the *setting* (a fingerprint of everything that changes the
numbers: space, data, width, training config, seed; and, for TG, the teacher), the spec hash
and the budget (None for a training-free screen). Records hold **run totals** (examples and
training seconds since initialisation), so a search that continues a candidate from a smaller
budget is charged the difference, exactly as if it had trained it itself.

Appends take an exclusive ``flock`` and are flushed and fsynced, so many worker processes can
share one file and a killed writer leaves at most one torn last line, which readers skip.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tgsage.errors import ConfigError


def fingerprint(value: Any) -> str:
    """A short stable hash of a JSON-able value (keys sorted)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_fingerprint(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _clean(value: Any) -> Any:
    """JSON-safe and compact: non-finite floats become None, floats keep 7 significant digits
    (beyond what a re-run reproduces)."""
    if isinstance(value, float):
        return float(f"{value:.7g}") if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


class EvaluationCache:
    """Evaluations by (setting, spec hash, budget); see the module docstring."""

    def __init__(self, path: str | Path, setting: str) -> None:
        self.path = Path(path)
        self.setting = setting
        self._entries: dict[tuple[str, str | None], dict[str, Any]] = {}
        self._offset = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the folder of the evaluation cache {self.path}: {exc}"
            ) from None

    def refresh(self) -> None:
        """Read lines appended since the last read (by this or any other process)."""
        if not self.path.exists():
            return
        with open(self.path, "rb") as fh:
            fh.seek(self._offset)
            data = fh.read()
        end = data.rfind(b"\n") + 1  # a line still being written is read next time
        for line in data[:end].splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a torn line of a killed writer
            if isinstance(rec, dict) and rec.get("setting") == self.setting:
                self._entries[(str(rec.get("spec_hash")), rec.get("budget"))] = rec
        self._offset += end

    def get(self, spec_hash: str, budget: str | None) -> dict[str, Any] | None:
        key = (spec_hash, budget)
        if key not in self._entries:
            self.refresh()
        return self._entries.get(key)

    def put(self, spec_hash: str, budget: str | None, record: Mapping[str, Any]) -> dict[str, Any]:
        rec = _clean(
            {"setting": self.setting, "spec_hash": spec_hash, "budget": budget} | dict(record)
        )
        line = (json.dumps(rec, sort_keys=True) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
            os.fsync(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        self._entries[(spec_hash, budget)] = rec
        return rec

    def __len__(self) -> int:
        self.refresh()
        return len(self._entries)


__all__ = ["EvaluationCache", "file_fingerprint", "fingerprint"]
