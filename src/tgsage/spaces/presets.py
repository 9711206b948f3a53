"""Published cells expressed in the cell space: NASNet-A (Zoph et al. 2018) and PNASNet-5
(Liu et al. 2018), with their CIFAR-10 and mobile ImageNet network settings.

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

Settings (``setting=``): ``"cifar10"`` (above) and ``"imagenet_mobile"``, the papers' mobile
ImageNet networks (224x224, 1000 classes, the ImageNet stem with 32 stem filters): NASNet-A
N=4, F=44, 5.3M parameters; PNASNet-5 N=3, F=54, 5.1M (TG-SAGE's Table 3 lists F=56, 5.4M).

Published parameter counts exclude the auxiliary head (a training device, discarded after
training); build with ``auxiliary=True`` for final training and count without it to compare.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from tgsage.errors import SpecError
from tgsage.registry import Registry
from tgsage.spaces.cell_space import Block, Cell, CellSpec


def _cell(pairs: list[tuple[tuple[str, int], tuple[str, int]]], **flags: bool) -> Cell:
    return Cell(tuple(Block(ia, oa, ib, ob) for (oa, ia), (ob, ib) in pairs), **flags)


SETTINGS = ("cifar10", "imagenet_mobile")

#: Network settings of each published cell in each setting.
NETWORKS: dict[str, dict[str, dict[str, Any]]] = {
    "nasnet_a": {
        "cifar10": {"num_cells": 6, "filters": 32},
        "imagenet_mobile": {
            "num_cells": 4,
            "filters": 44,
            "stem": "imagenet",
            "stem_multiplier": 1,
        },
    },
    "pnasnet_5": {
        "cifar10": {"num_cells": 3, "filters": 48},
        "imagenet_mobile": {
            "num_cells": 3,
            "filters": 54,
            "stem": "imagenet",
            "stem_multiplier": 1,
        },
    },
}

#: Published parameter counts (auxiliary head excluded) per setting; mobile ImageNet counts
#: are for 1000 classes.
PUBLISHED_PARAMS: dict[str, dict[str, int]] = {
    "cifar10": {"nasnet_a": 3_300_000, "pnasnet_5": 3_200_000},
    "imagenet_mobile": {"nasnet_a": 5_300_000, "pnasnet_5": 5_100_000},
}


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


#: Published cells by name: factories of their CIFAR-10 spec (see :func:`get_cell_preset`).
PRESETS: Registry[Callable[..., CellSpec]] = Registry("cell preset", SpecError)
PRESETS.register("nasnet_a", nasnet_a)
PRESETS.register("pnasnet_5", pnasnet_5)

#: Published CIFAR-10 parameter counts (auxiliary head excluded) at the default N, F.
PUBLISHED_CIFAR10_PARAMS: dict[str, int] = PUBLISHED_PARAMS["cifar10"]


def get_cell_preset(name: str, setting: str = "cifar10", **overrides: Any) -> CellSpec:
    """A published cell as a spec in one of :data:`SETTINGS` (its published N, F and stem);
    ``num_cells`` / ``filters`` / ``stem`` / ``stem_multiplier`` override single settings."""
    factory = PRESETS.get(name)
    if setting not in SETTINGS:
        raise SpecError(f"setting: {setting!r} is not one of {SETTINGS!r}")
    network = {**NETWORKS[name][setting], **overrides}
    unknown = sorted(set(network) - {"num_cells", "filters", "stem", "stem_multiplier"})
    if unknown:
        raise SpecError(f"preset {name}: unknown setting {unknown[0]!r}")
    base = factory()
    return base.with_network(**network)


def list_cell_presets() -> list[str]:
    """Names of the published cells, in registration order."""
    return PRESETS.names()


def get_preset(name: str, setting: str = "cifar10", **overrides: Any) -> CellSpec:
    """Deprecated name of :func:`get_cell_preset` (``tgsage.train`` has training presets)."""
    warnings.warn(
        "tgsage.spaces.get_preset is now get_cell_preset", DeprecationWarning, stacklevel=2
    )
    return get_cell_preset(name, setting, **overrides)


def list_presets() -> list[str]:
    """Deprecated name of :func:`list_cell_presets`."""
    warnings.warn(
        "tgsage.spaces.list_presets is now list_cell_presets", DeprecationWarning, stacklevel=2
    )
    return list_cell_presets()
