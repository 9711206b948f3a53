"""Random search: every active choice uniform, independently (the baseline of every comparison)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from optuna.samplers import RandomSampler

from tgsage import optuna_api as api
from tgsage.spaces import RandomSuggester, SearchSpace
from tgsage.strategies.base import Strategy, as_rng, trial_seed

if TYPE_CHECKING:
    from optuna.study import Study
    from optuna.trial import FrozenTrial


def reseed(sampler: Any, seed: int) -> None:
    """Reseed an Optuna sampler's random state (see :func:`tgsage.optuna_api.reseed`)."""
    api.reseed(sampler, seed)


class TrialSeededRandomSampler(RandomSampler):
    """Optuna's RandomSampler reseeded at every trial with ``trial_seed(seed, trial.number)``.

    A plain seeded RandomSampler gives every worker process the same draws; reseeding per
    trial number makes draws differ across workers and reproducible whichever worker runs
    which trial. (Not for ``study.optimize(n_jobs > 1)`` threads, which share one sampler.)
    """

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed=trial_seed(seed, -1))
        self.base_seed = int(seed)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        reseed(self, trial_seed(self.base_seed, trial.number))
        super().before_trial(study, trial)


class RandomStrategy(Strategy):
    """Uniform over the space; stateless (tells, failures included, only count)."""

    name: ClassVar[str] = "random"

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        super().__init__(space, seed)
        self._options: dict[str, Any] = {}

    def ask(self, seed: int) -> dict[str, Any]:
        return self.canonical(self.space.sample(RandomSuggester(as_rng(seed))))

    def tell(self, params: Mapping[str, Any], score: float | None) -> None:
        self.n_told += 1

    def sampler(self, history_filter: Any = None) -> TrialSeededRandomSampler:
        """Optuna's RandomSampler, reseeded per trial (there is no history to filter)."""
        return TrialSeededRandomSampler(self.seed)
