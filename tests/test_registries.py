"""One registry helper behind every choice by name: data sets, models, spaces, strategies,
proxies, training presets, published cells and final-training presets."""

from __future__ import annotations

from typing import Any

import pytest

from tgsage.data.registry import DATASETS
from tgsage.errors import ConfigError, DataError, InputError, SpecError
from tgsage.models import MODELS
from tgsage.proxies import PROXIES
from tgsage.registry import Registry
from tgsage.spaces import SPACES, LayerSpace, get_space, list_spaces, register_space
from tgsage.spaces.presets import PRESETS as CELL_PRESETS
from tgsage.strategies import (
    STRATEGIES,
    RandomStrategy,
    get_strategy,
    list_strategies,
    register_strategy,
)
from tgsage.train import FINAL_PRESETS
from tgsage.train import PRESETS as TRAIN_PRESETS

ALL: list[tuple[Registry[Any], str, type[Exception]]] = [
    (DATASETS, "dataset", DataError),
    (MODELS, "model", ConfigError),
    (SPACES, "space", SpecError),
    (STRATEGIES, "strategy", ConfigError),
    (PROXIES, "proxy", InputError),
    (TRAIN_PRESETS, "training preset", ConfigError),
    (CELL_PRESETS, "cell preset", SpecError),
    (FINAL_PRESETS, "final preset", ConfigError),
]


@pytest.mark.parametrize(("registry", "kind", "error"), ALL, ids=[k for _, k, _ in ALL])
def test_every_registry_is_one_helper_with_one_error_style(registry, kind, error) -> None:
    assert isinstance(registry, Registry) and registry.kind == kind
    names = registry.names()
    assert names and set(names) == set(registry) and len(registry) == len(names)
    with pytest.raises(error) as caught:
        registry.get("no-such-thing")
    assert str(caught.value) == (
        f"unknown {kind} 'no-such-thing'; choose one of: {', '.join(sorted(names))}"
    )
    with pytest.raises(error, match="already registered"):
        registry.register(names[0], registry[names[0]])


def test_register_as_call_or_decorator_replace_and_unregister() -> None:
    r: Registry[int] = Registry("number")
    assert r.register("one", 1) == 1

    @r.register("double")
    def double(x: int) -> int:
        return 2 * x

    assert r.names() == ["one", "double"] and r["double"] is double and "one" in r
    assert dict(r.items()) == {"one": 1, "double": double}
    r.register("one", 11, replace=True)
    assert r.get("one") == 11 and r.unregister("one") == 11 and r.names() == ["double"]
    with pytest.raises(ConfigError, match="unknown number 'one'; choose one of: double"):
        r.unregister("one")
    with pytest.raises(ConfigError, match="bad option for number 'double'"):
        r.create("double", y=3)
    assert r.create("double", 4) == 8


def test_users_register_their_own_space() -> None:
    @register_space("tiny_layers")
    def tiny_layers(**options: Any) -> LayerSpace:
        return LayerSpace(max_layers=2, **options)

    try:
        assert "tiny_layers" in list_spaces()
        space = get_space("tiny_layers")
        assert isinstance(space, LayerSpace) and space.max_layers == 2
        with pytest.raises(SpecError, match="bad option for space 'tiny_layers'"):
            get_space("tiny_layers", colour="red")
    finally:
        SPACES.unregister("tiny_layers")
    assert "tiny_layers" not in list_spaces()


def test_users_register_their_own_strategy() -> None:
    @register_strategy("my_random")
    class MyRandom(RandomStrategy):
        pass

    try:
        assert "my_random" in list_strategies()
        strategy = get_strategy("my_random", get_space("layer", max_layers=3), seed=1)
        assert isinstance(strategy, MyRandom)
        assert strategy.ask(0) == get_strategy("random", strategy.space, seed=1).ask(0)
    finally:
        STRATEGIES.unregister("my_random")


def test_old_cell_preset_names_still_work_but_warn() -> None:
    from tgsage.spaces import get_cell_preset, get_preset, list_cell_presets, list_presets

    with pytest.warns(DeprecationWarning, match="get_cell_preset"):
        old = get_preset("nasnet_a")
    assert old == get_cell_preset("nasnet_a")
    with pytest.warns(DeprecationWarning, match="list_cell_presets"):
        assert list_presets() == list_cell_presets() == ["nasnet_a", "pnasnet_5"]
