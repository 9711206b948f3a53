"""Search strategies: random, TPE (paper settings), RL (LSTM controller), regularised evolution.

``get_strategy("tpe", space, seed=0, gamma="paper")`` gives a :class:`Strategy` with
``ask(seed) -> params`` / ``tell(params, score)`` (scores are maximised; None = failed) and
``sampler()``, an Optuna sampler for workers that share a storage: TPE and random use Optuna's
own samplers; RL and evolution replay the study's finished trials into a local strategy
(:class:`StrategySampler`), so every worker holds the same policy.
"""

from __future__ import annotations

from typing import Any

from tgsage.errors import ConfigError
from tgsage.registry import Registry
from tgsage.spaces import SearchSpace
from tgsage.strategies.base import Strategy, option_names, run_strategy, trial_seed
from tgsage.strategies.evolution import EvolutionStrategy
from tgsage.strategies.random_search import RandomStrategy, TrialSeededRandomSampler
from tgsage.strategies.rl import RLStrategy
from tgsage.strategies.sampler import StrategySampler
from tgsage.strategies.tpe import (
    TPE_PAPER_SETTINGS,
    PaperTPESampler,
    TPEStrategy,
    hyperopt_gamma,
    linear_forgetting_weights,
    paper_gamma,
)

#: Strategies by name; add your own :class:`Strategy` subclass with :func:`register_strategy`.
STRATEGIES: Registry[type[Strategy]] = Registry("strategy", ConfigError)
STRATEGIES.register("random", RandomStrategy)
STRATEGIES.register("tpe", TPEStrategy)
STRATEGIES.register("rl", RLStrategy)
STRATEGIES.register("evolution", EvolutionStrategy)


def register_strategy(
    name: str, cls: type[Strategy] | None = None, *, replace: bool = False
) -> Any:
    """Add a :class:`Strategy` subclass under ``name`` (also a class decorator); searches then
    name it in their config (``strategy: NAME``, its keyword options in ``strategy_options``)."""
    return STRATEGIES.register(name, cls, replace=replace)


def get_strategy(name: str, space: SearchSpace, seed: int = 0, **options: Any) -> Strategy:
    """The strategy registered as ``name`` over ``space``; ``options`` are its keyword options."""
    cls = STRATEGIES.get(name)
    allowed = option_names(cls)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(
            f"strategy option {unknown[0]!r}: not an option of {name!r} "
            f"(options: {', '.join(allowed) or 'none'})"
        )
    return cls(space, seed=seed, **options)


def list_strategies() -> list[str]:
    """Registered strategy names, in registration order."""
    return STRATEGIES.names()


__all__ = [
    "STRATEGIES",
    "TPE_PAPER_SETTINGS",
    "EvolutionStrategy",
    "PaperTPESampler",
    "RLStrategy",
    "RandomStrategy",
    "Strategy",
    "StrategySampler",
    "TPEStrategy",
    "TrialSeededRandomSampler",
    "get_strategy",
    "hyperopt_gamma",
    "linear_forgetting_weights",
    "list_strategies",
    "paper_gamma",
    "register_strategy",
    "run_strategy",
    "trial_seed",
]
