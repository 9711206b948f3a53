"""Experiment results as JSON files (``rerank.json``, ``predictivity.json``): plain values only,
and a file is either the old one or the complete new one, never half written."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any


def plain_json(value: Any) -> Any:
    """A copy made of JSON types: non-finite floats become null (strict JSON has no NaN),
    tuples become lists, keys become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_json(v) for v in value]
    return value


def write_json(path: Path, payload: Any) -> Path:
    """Write ``plain_json(payload)`` to ``path`` (parents created; replaced atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(plain_json(payload), indent=2))
    os.replace(tmp, path)
    return path
