"""Search spaces: the layer space, the cell space and NAS-Bench-201, as buildable, hashable specs.

``get_space("layer", max_layers=10)`` / ``get_space("cell", blocks=5)`` / ``get_space("nb201")``
give a :class:`SearchSpace` that any strategy drives through ``sample(suggest)`` (an
``optuna.Trial`` works as ``suggest``); ``build_model(spec, ...)`` turns a spec into a
``FeatureNet``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tgsage.errors import SpecError
from tgsage.registry import Registry
from tgsage.spaces.build import build_model, count_flops, count_params
from tgsage.spaces.cell_ops import OPS
from tgsage.spaces.cell_space import Block, Cell, CellNet, CellSpace, CellSpec
from tgsage.spaces.choices import (
    ControllerStep,
    FixedSuggester,
    Head,
    Link,
    RandomSuggester,
    SearchSpace,
    StepToken,
    Suggester,
)
from tgsage.spaces.layer_space import ConvLayer, LayerNet, LayerSpace, LayerSpec
from tgsage.spaces.nb201 import NB201_OPS, NB201Net, NB201Space, NB201Spec
from tgsage.spaces.presets import (
    PUBLISHED_CIFAR10_PARAMS,
    PUBLISHED_PARAMS,
    get_cell_preset,
    get_preset,
    list_cell_presets,
    list_presets,
)
from tgsage.spaces.specs import ArchSpec, canonical_json, spec_from_dict, spec_from_json

#: Search spaces by name; add your own (any :class:`SearchSpace` factory) with
#: :func:`register_space`.
SPACES: Registry[Callable[..., SearchSpace]] = Registry("space", SpecError)
SPACES.register("layer", LayerSpace)
SPACES.register("cell", CellSpace)
SPACES.register("nb201", NB201Space)


def register_space(
    name: str, factory: Callable[..., SearchSpace] | None = None, *, replace: bool = False
) -> Any:
    """Add a space factory ``(**options) -> SearchSpace`` under ``name`` (also a decorator);
    searches then name it in their config (``space: NAME``)."""
    return SPACES.register(name, factory, replace=replace)


def get_space(name: str, **options: Any) -> SearchSpace:
    """The search space registered as ``name``, configured by ``options``."""
    return SPACES.create(name, **options)


def list_spaces() -> list[str]:
    """Registered space names, in registration order."""
    return SPACES.names()


__all__ = [
    "NB201_OPS",
    "OPS",
    "PUBLISHED_CIFAR10_PARAMS",
    "PUBLISHED_PARAMS",
    "SPACES",
    "ArchSpec",
    "Block",
    "Cell",
    "CellNet",
    "CellSpace",
    "CellSpec",
    "ControllerStep",
    "ConvLayer",
    "FixedSuggester",
    "Head",
    "LayerNet",
    "LayerSpace",
    "LayerSpec",
    "Link",
    "NB201Net",
    "NB201Space",
    "NB201Spec",
    "RandomSuggester",
    "SearchSpace",
    "StepToken",
    "Suggester",
    "build_model",
    "canonical_json",
    "count_flops",
    "count_params",
    "get_cell_preset",
    "get_preset",
    "get_space",
    "list_cell_presets",
    "list_presets",
    "list_spaces",
    "register_space",
    "spec_from_dict",
    "spec_from_json",
]
