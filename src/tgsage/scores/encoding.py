"""Simple spec encodings, the ``ops`` feature of fitted combiners.

* NAS-Bench-201 cells: the operation on each of the 6 edges, one-hot (6 x 5), the count of
  each operation over the cell (5) - the "operation counts per edge type" - and simple graph
  features of the four input-to-output paths (:data:`NB201_PATHS`): whether each is alive (no
  ``none`` edge) and its count of each other operation if so (4 x 5), plus the number of alive
  paths and the max / min / total number of convolutions on them (4).
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


#: The four input-to-output paths of a NAS-Bench-201 cell, as edge indices (EDGES order).
NB201_PATHS: tuple[tuple[int, ...], ...] = ((3,), (0, 4), (1, 5), (0, 2, 5))
_PATH_OPS = ("nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3", "skip_connect")


def _nb201(specs: Sequence[Any]) -> tuple[np.ndarray, list[str]]:
    from tgsage.spaces.nb201 import EDGE_NAMES, NB201_OPS

    n_ops = len(NB201_OPS)
    rows = []
    for s in specs:
        onehot = np.zeros(len(EDGE_NAMES) * n_ops)
        counts = np.zeros(n_ops)
        for e, op in enumerate(s.ops):
            k = NB201_OPS.index(op)
            onehot[e * n_ops + k] = 1.0
            counts[k] += 1.0
        paths = []
        alive_convs = []
        for path in NB201_PATHS:
            ops = [s.ops[e] for e in path]
            alive = float("none" not in ops)
            paths += [alive] + [alive * ops.count(o) for o in _PATH_OPS]
            if alive:
                alive_convs.append(ops.count("nor_conv_3x3") + ops.count("nor_conv_1x1"))
        summary = [
            float(len(alive_convs)),
            float(max(alive_convs, default=0)),
            float(min(alive_convs, default=0)),
            float(sum(alive_convs)),
        ]
        rows.append(np.concatenate([onehot, counts, paths, summary]))
    names = [f"{edge}={op}" for edge in EDGE_NAMES for op in NB201_OPS]
    names += [f"count:{op}" for op in NB201_OPS]
    for p in NB201_PATHS:
        tag = "path" + "-".join(map(str, p))
        names += [f"{tag}:alive"] + [f"{tag}:{o}" for o in _PATH_OPS]
    names += ["paths:alive", "paths:max_convs", "paths:min_convs", "paths:sum_convs"]
    return np.array(rows, dtype=np.float64).reshape(len(specs), len(names)), names


def encode_specs(
    specs: Sequence[Any], vocab: Sequence[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """(len(specs), n_features) float64 encoding and the feature names (module docstring).
    ``vocab``: the generic encoding's feature names to use (e.g. those of a training set;
    features outside it are dropped); ignored for NAS-Bench-201 cells."""
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
    vocab = list(vocab) if vocab is not None else sorted(set().union(*counts))
    x = np.array([[c.get(v, 0) for v in vocab] for c in counts], dtype=np.float64)
    return x, vocab


__all__ = ["encode_specs"]
