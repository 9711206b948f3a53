"""Published cells expressed in the cell space: NASNet-A (Zoph et al. 2018) and PNASNet-5
(Liu et al. 2018), with their CIFAR-10 network settings.

Index convention: 0 = the cell before the previous one (NASNet's ``h_{i-1}``), 1 = the previous
cell (``h_i``), ``2 + j`` = block ``j``. The cells were checked against the papers' figures and
the public genotypes (DARTS ``genotypes.py``, the TF-slim ``nasnet_utils``/``pnasnet`` cells).

- NASNet-A: separate normal and reduction cells, NASNet's "unused blocks" output rule. The
  normal cell also concatenates ``h_{i-1}`` (the reference code does; it is what makes the
  CIFAR model "6 @ 768": six branches of 128 channels in the last stage), expressed with the
  ``concat_prev_prev`` force flag. CIFAR-10: N=6, F=32, 3.3M parameters.
- PNASNet-5: one cell, reused with stride 2 at reductions; every block is concatenated
  (``concat="all"``); ``layout="pnas"``: the reduction cells are counted among the ``3N``
  cells (9 cells for N=3; with NASNet's ``3N + 2`` it would be 4.3M). CIFAR-10: N=3, F=48,
  3.2M parameters.

Published parameter counts exclude the auxiliary head; the networks here have none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tgsage.errors import SpecError
from tgsage.spaces.cell_space import Block, Cell, CellSpec


def _cell(pairs: list[tuple[tuple[str, int], tuple[str, int]]], **flags: bool) -> Cell:
    return Cell(tuple(Block(ia, oa, ib, ob) for (oa, ia), (ob, ib) in pairs), **flags)


def nasnet_a(num_cells: int = 6, filters: int = 32) -> CellSpec:
    normal = _cell(
        [
            (("sep_conv_5x5", 1), ("sep_conv_3x3", 0)),
            (("sep_conv_5x5", 0), ("sep_conv_3x3", 0)),
            (("avg_pool_3x3", 1), ("identity", 0)),
            (("avg_pool_3x3", 0), ("avg_pool_3x3", 0)),
            (("sep_conv_3x3", 1), ("identity", 1)),
        ],
        concat_prev_prev=True,
    )
    reduction = _cell(
        [
            (("sep_conv_5x5", 1), ("sep_conv_7x7", 0)),
            (("max_pool_3x3", 1), ("sep_conv_7x7", 0)),
            (("avg_pool_3x3", 1), ("sep_conv_5x5", 0)),
            (("identity", 3), ("avg_pool_3x3", 2)),
            (("sep_conv_3x3", 2), ("max_pool_3x3", 1)),
        ]
    )
    return CellSpec(normal, reduction, num_cells=num_cells, filters=filters, concat="unused")


def pnasnet_5(num_cells: int = 3, filters: int = 48) -> CellSpec:
    cell = _cell(
        [
            (("sep_conv_5x5", 0), ("max_pool_3x3", 0)),
            (("sep_conv_7x7", 1), ("max_pool_3x3", 1)),
            (("sep_conv_5x5", 1), ("sep_conv_3x3", 1)),
            (("sep_conv_3x3", 4), ("max_pool_3x3", 1)),
            (("sep_conv_3x3", 0), ("identity", 1)),
        ]
    )
    return CellSpec(cell, None, num_cells=num_cells, filters=filters, concat="all", layout="pnas")


PRESETS: dict[str, Callable[..., CellSpec]] = {"nasnet_a": nasnet_a, "pnasnet_5": pnasnet_5}

#: Published CIFAR-10 parameter counts (auxiliary head excluded) at the default N, F.
PUBLISHED_CIFAR10_PARAMS: dict[str, int] = {"nasnet_a": 3_300_000, "pnasnet_5": 3_200_000}


def get_preset(name: str, **overrides: Any) -> CellSpec:
    """A published cell as a spec; ``num_cells`` / ``filters`` override the CIFAR-10 defaults
    (the paper's Table 3 ImageNet-mobile settings are N=4, F=44 and N=3, F=56)."""
    if name not in PRESETS:
        raise SpecError(f"preset: {name!r} is not one of {tuple(PRESETS)!r}")
    return PRESETS[name](**overrides)


def list_presets() -> list[str]:
    return list(PRESETS)
