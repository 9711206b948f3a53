"""A candidate drawn in memory (DraftTrial) is the candidate Optuna's trial would have drawn:
every strategy's sampler, the same study history, the same trial number, the same choices."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution

from tgsage.search.draft import DraftTrial
from tgsage.search.strategy import make_sampler
from tgsage.spaces import FixedSuggester, get_space

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _study(space, strategy: str, history: list[tuple[dict, float]]) -> optuna.Study:
    study = optuna.create_study(direction="maximize", sampler=make_sampler(strategy, space, 7))
    for params, value in history:
        fixed = FixedSuggester(params)
        space.sample(fixed)
        dists = {k: CategoricalDistribution(list(c)) for k, c in fixed.asked}
        study.add_trial(
            optuna.trial.create_trial(params=fixed.params, distributions=dists, value=value)
        )
    return study


@pytest.mark.parametrize("strategy", ["random", "tpe", "rl", "evolution"])
@pytest.mark.parametrize("space_name", ["layer", "cell"])
def test_a_draft_draws_what_an_optuna_trial_draws(strategy: str, space_name: str) -> None:
    space = get_space(space_name, max_layers=5) if space_name == "layer" else get_space("cell")
    rng = np.random.default_rng(0)
    history = [
        (space.spec_to_params(space.random_spec(rng)), float(rng.random())) for _ in range(25)
    ]
    by_trial, by_draft = _study(space, strategy, history), _study(space, strategy, history)
    for _ in range(3):
        trial = by_trial.ask()
        spec = space.sample(trial)
        draft = DraftTrial(by_draft, trial.number)
        assert space.sample(draft) == spec
        assert draft.params == trial.params
        assert draft.distributions == by_trial.trials[-1].distributions
        by_trial.tell(trial, 0.5)
        by_draft.add_trial(
            optuna.trial.create_trial(
                params=draft.params, distributions=draft.distributions, value=0.5
            )
        )
