"""JSON-lines files that survive crashes: each line is fsynced, and a line torn by a crash costs
only itself. Every resumable record file in tgsage (pool records, study records, score caches)
goes through these two functions, at the bottom of the layers so any part may use them."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def append_jsonl(path: str | Path, row: Mapping[str, Any]) -> None:
    """Append one JSON line and fsync, so a crash right after loses nothing written.

    If an earlier write was torn (the file does not end in a newline), the new line starts on
    a line of its own, so only the torn record is lost.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(row, sort_keys=True, allow_nan=True) + "\n"
    with open(path, "a+b") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() > 0:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                text = "\n" + text
        fh.write(text.encode("utf-8"))
        fh.flush()
        os.fsync(fh.fileno())


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file (none if it does not exist yet).

    Lines that are not valid JSON objects (a write torn by a crash) are skipped with one
    warning: the architectures they held are simply measured again.
    """
    path = Path(path)
    if not path.exists():
        return []
    rows, bad = [], []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if isinstance(row, dict):
            rows.append(row)
        else:
            bad.append(i + 1)
    if bad:
        warnings.warn(
            f"{path}: skipped {len(bad)} unreadable line(s) {bad[:5]} (torn writes "
            "from an interrupted run); those entries will be redone",
            stacklevel=2,
        )
    return rows
