"""Simple spec encodings, the ``ops`` feature of fitted combiners.

* NAS-Bench-201 cells: the operation on each of the 6 edges, one-hot (6 x 5), plus the count of
  each operation over the cell (5) - the "operation counts per edge type".
* Any other space: counts of every (field, string value) pair in the spec's JSON (e.g. how
  many blocks use ``sep_conv_3x3``, how many layers use ``relu``), plus the length of every list,
  over a vocabulary taken from the specs being encoded together (so every row has the same
  columns).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from tgsage.errors import InputError


def _walk(value: Any, path: str) -> Iterator[tuple[str, int]]:
    """(feature, amount) pairs: 1 per (field, string value), a list's length per list."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from _walk(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, (list, tuple)):
        yield f"len:{path}", len(value)
        for v in value:
            yield from _walk(v, path)
    elif isinstance(value, str):
        yield f"{path}={value}", 1


def _nb201(specs: Sequence[Any]) -> tuple[np.ndarray, list[str]]:
    from tgsage.spaces.nb201 import EDGE_NAMES, NB201_OPS

    n_ops = len(NB201_OPS)
    x = np.zeros((len(specs), len(EDGE_NAMES) * n_ops + n_ops))
    for i, s in enumerate(specs):
        for e, op in enumerate(s.ops):
            k = NB201_OPS.index(op)
            x[i, e * n_ops + k] = 1.0
            x[i, len(EDGE_NAMES) * n_ops + k] += 1.0
    names = [f"{edge}={op}" for edge in EDGE_NAMES for op in NB201_OPS]
    return x, names + [f"count:{op}" for op in NB201_OPS]


def encode_specs(specs: Sequence[Any]) -> tuple[np.ndarray, list[str]]:
    """(len(specs), n_features) float64 encoding and the feature names (module docstring)."""
    from tgsage.spaces.nb201 import NB201Spec
    from tgsage.spaces.specs import ArchSpec

    if not specs:
        return np.zeros((0, 0)), []
    if any(s is None for s in specs):
        raise InputError("the 'ops' feature needs every architecture's spec")
    if all(isinstance(s, NB201Spec) for s in specs):
        return _nb201(specs)
    counts = []
    for s in specs:
        d = s.to_dict() if isinstance(s, ArchSpec) else s
        c: Counter[str] = Counter()
        for key, amount in _walk(d, ""):
            c[key] += amount
        counts.append(c)
    vocab = sorted(set().union(*counts))
    x = np.array([[c.get(v, 0) for v in vocab] for c in counts], dtype=np.float64)
    return x, vocab


__all__ = ["encode_specs"]
