"""The explorer side: an Optuna sampler per worker from :mod:`tgsage.strategies`.

Every worker builds the same strategy from the search seed; samplers that learn (TPE, RL,
evolution) read the study's finished trials, so all workers share one policy without a central
explorer process, and reseed per trial so concurrent workers propose different candidates.
"""

from __future__ import annotations

from typing import Any

import optuna

from tgsage import strategies
from tgsage.errors import ConfigError
from tgsage.spaces import SearchSpace


def list_strategy_names() -> list[str]:
    return list(strategies.list_strategies())


def make_sampler(
    name: str, space: SearchSpace, seed: int, **options: Any
) -> optuna.samplers.BaseSampler:
    """The sampler of strategy ``name`` (ConfigError naming the choices if unknown)."""
    if name not in strategies.list_strategies():
        raise ConfigError(
            f"strategy: unknown strategy {name!r}; choose one of {list_strategy_names()}"
        )
    try:
        return strategies.get_strategy(name, space, seed=seed, **options).sampler()
    except TypeError as exc:
        raise ConfigError(f"strategy_options: {exc}") from None
