"""The strategy contract: registry, errors, valid/reproducible asks, tells, evolution rules."""

from __future__ import annotations

import itertools
import math
from typing import ClassVar

import numpy as np
import optuna
import pytest
import torch

from tgsage.errors import ConfigError, SpecError
from tgsage.spaces import get_space
from tgsage.strategies import (
    EvolutionStrategy,
    TrialSeededRandomSampler,
    get_strategy,
    list_strategies,
    run_strategy,
    trial_seed,
)

torch.set_num_threads(1)
optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACES = {
    "layer": lambda: get_space("layer", max_layers=4),
    "cell": lambda: get_space("cell", blocks=2),
    "cell2": lambda: get_space("cell", blocks=2, separate_reduction=True),
}
NAMES = ["random", "tpe", "rl", "evolution"]


def test_registry_lists_the_four_strategies() -> None:
    assert list_strategies() == NAMES


def test_unknown_name_and_bad_options_raise_config_error() -> None:
    space = SPACES["layer"]()
    with pytest.raises(ConfigError, match="'annealing'"):
        get_strategy("annealing", space)
    with pytest.raises(ConfigError, match="'populaton'"):
        get_strategy("evolution", space, populaton=10)
    with pytest.raises(ConfigError, match="gamma"):
        get_strategy("tpe", space, gamma="median")
    with pytest.raises(ConfigError, match="sample_size"):
        get_strategy("evolution", space, population=4, sample_size=5)
    with pytest.raises(ConfigError, match="temperature"):
        get_strategy("rl", space, temperature=0)
    with pytest.raises(ConfigError, match="n_startup_trials"):
        get_strategy("tpe", space, n_startup_trials=-1)
    with pytest.raises(ConfigError, match="space"):
        get_strategy("random", "layer")  # type: ignore[arg-type]


@pytest.mark.parametrize("space_name", sorted(SPACES))
@pytest.mark.parametrize("name", NAMES)
def test_asks_are_canonical_valid_reproducible_and_seed_dependent(
    name: str, space_name: str
) -> None:
    space = SPACES[space_name]()
    strategy = get_strategy(name, space, seed=3)
    # tell a short random history so evolution and rl are past their start-up
    rng = np.random.default_rng(0)
    for i in range(25):
        params = space.spec_to_params(space.random_spec(rng))
        strategy.tell(params, None if i % 7 == 0 else float(rng.random()))
    asks = [strategy.ask(s) for s in range(6)]
    for params in asks:
        assert params == space.spec_to_params(space.params_to_spec(params))  # canonical + valid
    if name != "tpe":  # TPE keeps each ask as a running trial, which changes the next ask
        assert strategy.ask(4) == asks[4]
    assert len({repr(sorted(p.items())) for p in asks}) > 1


def test_tpe_ask_is_reproducible_from_the_same_history() -> None:
    space = SPACES["layer"]()
    hist = run_strategy(get_strategy("random", space), lambda s: len(s.layers) / 4, 30)
    asks = []
    for _ in range(2):
        tpe = get_strategy("tpe", space, seed=1)
        for params, score in hist:
            tpe.tell(params, score)
        asks.append([tpe.ask(s) for s in (5, 6)])
    assert asks[0] == asks[1]
    assert asks[0][0] != asks[0][1]


def test_tpe_tell_finishes_the_asked_trial_and_records_failures() -> None:
    space = SPACES["cell"]()
    tpe = get_strategy("tpe", space, seed=0)
    a, b = tpe.ask(1), tpe.ask(2)
    states = [t.state for t in tpe.study.trials]
    assert states == [optuna.trial.TrialState.RUNNING] * 2
    tpe.tell(b, 0.25)
    tpe.tell(a, None)
    t0, t1 = tpe.study.trials
    assert t0.state == optuna.trial.TrialState.FAIL and t1.value == 0.25
    tpe.tell(space.spec_to_params(space.random_spec(9)), 0.5)  # never asked: added
    assert len(tpe.study.trials) == 3 and tpe.study.trials[2].value == 0.5
    with pytest.raises(SpecError):
        tpe.tell({"cell/block0/op_a": "nope"}, 1.0)


def test_run_strategy_batches_asks_before_tells() -> None:
    space = SPACES["layer"]()

    class Recorder(EvolutionStrategy):
        events: ClassVar[list[str]] = []

        def ask(self, seed: int):  # type: ignore[no-untyped-def]
            self.events.append("ask")
            return super().ask(seed)

        def tell(self, params, score):  # type: ignore[no-untyped-def]
            self.events.append("tell")
            super().tell(params, score)

    hist = run_strategy(Recorder(space), lambda s: 1.0, 7, batch=3)
    assert len(hist) == 7
    assert Recorder.events == ["ask"] * 3 + ["tell"] * 3 + ["ask"] * 3 + ["tell"] * 3 + [
        "ask",
        "tell",
    ]


def test_trial_seed_mixes_both_inputs_and_fits_randomstate() -> None:
    seeds = {trial_seed(s, n) for s in range(5) for n in range(200)}
    assert len(seeds) == 1000
    assert all(0 <= s < 2**32 for s in seeds)
    assert trial_seed(7, 3) == trial_seed(7, 3)
    np.random.RandomState(trial_seed(-1, -5))  # accepted


def test_evolution_first_population_is_random_then_single_mutations() -> None:
    space = SPACES["layer"]()
    evo = get_strategy("evolution", space, seed=0, population=6, sample_size=3)
    rng = np.random.default_rng(1)
    members = []
    for i in range(6):
        assert evo.n_told == i
        params = evo.ask(100 + i)
        members.append(params)
        evo.tell(params, float(rng.random()))
    for s in range(20):
        child = evo.ask(s)
        parents = [p for p, _ in evo.population]
        # the child differs from some population member in exactly one choice
        assert any(len(space.changed_choices(p, child)) == 1 for p in parents)


def test_evolution_parent_is_best_of_sample_and_population_ages() -> None:
    space = SPACES["layer"]()
    evo = get_strategy("evolution", space, seed=0, population=4, sample_size=4)
    specs = [space.spec_to_params(space.random_spec(i)) for i in range(5)]
    # sample_size == population with replacement: the best member is drawn with p = 1-(3/4)^4
    for p, score in zip(specs[:4], [0.1, 0.9, None, 0.3], strict=True):
        evo.tell(p, score)
    assert [s for _, s in evo.population] == [0.1, 0.9, -math.inf, 0.3]
    hits = sum(len(space.changed_choices(specs[1], evo.ask(s))) == 1 for s in range(200))
    assert hits > 0.6 * 200  # expected ~68% + chance coincidences
    evo.tell(specs[4], 0.0)  # the oldest (0.1) ages out
    assert [s for _, s in evo.population] == [0.9, -math.inf, 0.3, 0.0]


def test_evolution_all_failed_sample_falls_back_to_random() -> None:
    space = SPACES["layer"]()
    evo = get_strategy("evolution", space, seed=0, population=3, sample_size=2)
    for i in range(3):
        evo.tell(space.spec_to_params(space.random_spec(i)), None)
    asks = [evo.ask(s) for s in range(10)]
    assert all(a == space.spec_to_params(space.params_to_spec(a)) for a in asks)
    assert len({repr(sorted(a.items())) for a in asks}) == 10


def test_random_sampler_reseeds_per_trial_number() -> None:
    space = SPACES["layer"]()
    runs = []
    for _ in range(2):
        study = optuna.create_study(sampler=TrialSeededRandomSampler(seed=4))
        study.optimize(lambda t: float(len(space.sample(t).layers)), n_trials=5)
        runs.append([t.params for t in study.trials])
    assert runs[0] == runs[1]
    assert runs[0][0] != runs[0][1]
    # a second worker on another study with the same seed draws trial k like the first
    other = optuna.create_study(sampler=TrialSeededRandomSampler(seed=4))
    other.enqueue_trial({})  # trial 0 is still sampled by the sampler
    other.optimize(lambda t: float(len(space.sample(t).layers)), n_trials=1)
    assert other.trials[0].params == runs[0][0]


def test_strategies_never_crash_on_failures_and_nan() -> None:
    space = SPACES["cell"]()
    for name in NAMES:
        strategy = get_strategy(name, space, seed=0, **({"batch_size": 2} if name == "rl" else {}))
        scores = itertools.cycle([None, float("nan"), 0.5, float("-inf")])
        hist = run_strategy(strategy, lambda s, it=scores: next(it), 12, batch=2)
        assert len(hist) == 12


@pytest.mark.parametrize("name", NAMES)
def test_config_and_fresh_copy(name: str) -> None:
    space = SPACES["layer"]()
    opts = {
        "tpe": {"gamma": "paper"},
        "rl": {"temperature": 2.0},
        "evolution": {"population": 7},
    }.get(name, {})
    strategy = get_strategy(name, space, seed=11, **opts)
    strategy.tell(strategy.ask(0), 1.0)
    copy = strategy.fresh()
    assert (
        copy.config() == strategy.config() == {"strategy": name, "seed": 11, **strategy.options()}
    )
    assert all(strategy.options()[k] == v for k, v in opts.items())
    assert copy.n_told == 0 and strategy.n_told == 1
