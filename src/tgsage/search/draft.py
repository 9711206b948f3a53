"""A candidate's choices drawn in memory, then written to its trial in one storage operation.

``study.ask()`` followed by ``space.sample(trial)`` writes every sampled choice as its own
storage operation (about 115 for a layer-space candidate: as many transactions on PostgreSQL,
as many journal appends with an fsync each). A :class:`DraftTrial` answers the space's
questions from the study's sampler exactly as an Optuna trial would - ``before_trial``, the
relative search space and ``sample_relative``, then ``sample_independent`` per choice, with the
trial's own number - but keeps the answers in memory; the worker then writes them with
:func:`tgsage.optuna_api.set_params`, all at once. Only the samplers' public interface is used,
so every strategy drives a draft unchanged (see :mod:`tgsage.search.worker` for the claim).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution, check_distribution_compatibility
from optuna.trial import FrozenTrial, TrialState

from tgsage import optuna_api as api


class DraftTrial:
    """Answers ``suggest_categorical`` from ``study.sampler`` for trial number ``number``."""

    def __init__(self, study: optuna.Study, number: int) -> None:
        self.study, self.sampler, self.number = study, study.sampler, number
        self.params: dict[str, Any] = {}
        self.distributions: dict[str, CategoricalDistribution] = {}
        self.started = datetime.datetime.now()
        self._frozen = self._freeze()
        self.sampler.before_trial(study, self._frozen)
        self._relative_space = self.sampler.infer_relative_search_space(study, self._frozen)
        self._relative = (
            self.sampler.sample_relative(study, self._frozen, self._relative_space)
            if self._relative_space
            else {}
        )

    def _freeze(self) -> FrozenTrial:
        return FrozenTrial(
            number=self.number,
            state=TrialState.RUNNING,
            value=None,
            datetime_start=self.started,
            datetime_complete=None,
            params=dict(self.params),
            distributions=dict(self.distributions),
            user_attrs={},
            system_attrs={},
            intermediate_values={},
            trial_id=-1,
        )

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        dist = CategoricalDistribution(tuple(choices))
        if name in self.params:  # asked twice: the same answer, as an Optuna trial gives
            check_distribution_compatibility(self.distributions[name], dist)
            return self.params[name]
        relative = self._relative_space.get(name)
        if name in self._relative and relative is not None and relative == dist:
            value = self._relative[name]
        else:
            value = self.sampler.sample_independent(self.study, self._frozen, name, dist)
        self.params[name], self.distributions[name] = value, dist
        self._frozen = self._freeze()
        return value


def spec_attrs(spec: Any) -> dict[str, Any]:
    """The attributes that name a candidate's architecture in its trial."""
    return {"spec": spec.to_json(), "spec_hash": spec.spec_hash}


def draw_and_store(study: optuna.Study, space: Any, number: int, trial_id: int) -> Any:
    """A new candidate for trial ``number``: its choices drawn in memory (:class:`DraftTrial`)
    and stored with its spec in one storage operation; returns the spec."""
    draft = DraftTrial(study, number)
    spec = space.sample(draft)
    api.set_params(study, trial_id, draft.params, draft.distributions, spec_attrs(spec))
    return spec


__all__ = ["DraftTrial", "draw_and_store", "spec_attrs"]
