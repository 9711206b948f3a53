"""TPE with the paper's settings, on Optuna's univariate TPESampler configured like hyperopt.

The paper ran hyperopt's TPE (supplementary "TPE Search Algorithm"): 20 random start-up
candidates, 24 EI candidates drawn from l(x), linear forgetting of the oldest observations
(LF = 25) and a good set of size ``sqrt(N/4)``. We use Optuna's :class:`TPESampler`, which
implements the same estimator, with every hyperopt setting Optuna exposes pinned explicitly:

==========================  =====================================  =========================
setting                     hyperopt 0.2 / 0.3 (``tpe.suggest``)   here (Optuna TPESampler)
==========================  =====================================  =========================
start-up                    20 random (``n_startup_jobs``)         ``n_startup_trials=20``
EI candidates               24 (``n_EI_candidates``)               ``n_ei_candidates=24``
good-set size               ``min(ceil(0.25 sqrt N), 25)``         ``gamma`` (see below)
forgetting weights          ``linear_forgetting_weights(N, 25)``   same function, ``weights``
prior weight                1.0                                    ``prior_weight=1.0``
magic clip / endpoints      on / off                               same
univariate                  yes                                    ``multivariate=False``
running trials              counted as worst (infinite loss)       ``constant_liar=True``
==========================  =====================================  =========================

``gamma="hyperopt"`` (default) is hyperopt's ``min(ceil(0.25 * sqrt(N)), 25)``; ``"paper"``
is the paper's ``sqrt(N/4)``, rounded up and capped at 25 like hyperopt's split, i.e.
hyperopt's formula with ``gamma=0.5``; a callable ``N -> int`` is used as is. ``N`` is the
number of completed candidates (in both libraries).

Known differences that no Optuna option removes: Optuna's categorical Parzen estimator spreads
the prior weight over the kernels (hyperopt adds it once to the counts), and failed candidates
(Optuna state FAIL) are ignored, whereas hyperopt counts a trial reported with status "fail"
as infinitely bad. ``gamma`` / ``weights`` / ``prior_weight`` / ``consider_*`` are deprecated
in Optuna 4.9 and scheduled for removal in 6.0, hence the pin ``optuna>=4.0,<6``; their
FutureWarnings are silenced here because relying on them is deliberate.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, ClassVar

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution
from optuna.samplers import TPESampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from tgsage import optuna_api as api
from tgsage.errors import ConfigError
from tgsage.spaces import FixedSuggester, SearchSpace
from tgsage.strategies.base import Strategy, clean_score, trial_seed
from tgsage.strategies.random_search import reseed

GAMMA_CAP = 25
LINEAR_FORGETTING = 25


def hyperopt_gamma(n: int) -> int:
    """hyperopt's good-set size: ``min(ceil(0.25 * sqrt(n)), 25)``."""
    return min(math.ceil(0.25 * math.sqrt(n)), GAMMA_CAP)


def paper_gamma(n: int) -> int:
    """The paper's ``sqrt(n / 4)``, rounded up and capped like hyperopt (= its gamma 0.5)."""
    return min(math.ceil(math.sqrt(n / 4)), GAMMA_CAP)


GAMMAS: dict[str, Callable[[int], int]] = {"hyperopt": hyperopt_gamma, "paper": paper_gamma}


def linear_forgetting_weights(n: int, lf: int = LINEAR_FORGETTING) -> np.ndarray:
    """Weights of ``n`` observations, oldest first: the newest ``lf`` get 1, older ones a
    linear ramp from ``1/n`` (Bergstra et al. 2013; hyperopt's ``linear_forgetting_weights``)."""
    if n < lf:
        return np.ones(n)
    return np.concatenate([np.linspace(1.0 / n, 1.0, num=n - lf), np.ones(lf)])


TPE_PAPER_SETTINGS: dict[str, Any] = {
    "n_startup_trials": 20,
    "n_ei_candidates": 24,
    "gamma": "hyperopt",
    "linear_forgetting": LINEAR_FORGETTING,
    "prior_weight": 1.0,
    "consider_magic_clip": True,
    "consider_endpoints": False,
    "multivariate": False,
    "constant_liar": True,
}


def resolve_gamma(gamma: str | Callable[[int], int]) -> Callable[[int], int]:
    if callable(gamma):
        return gamma
    if gamma not in GAMMAS:
        raise ConfigError(f"gamma: {gamma!r} is not one of {tuple(GAMMAS)!r} or a callable")
    return GAMMAS[gamma]


class _Proposal:
    """The history one proposal samples from: split once, read per parameter (the trials'
    numbers as arrays, to gather each parameter's observations in one step)."""

    def __init__(self, number: int, n_finished: int, below: list, above: list) -> None:
        self.number, self.n_finished, self.below, self.above = number, n_finished, below, above
        self.numbers = {
            "below": np.fromiter((t.number for t in below), dtype=np.int64, count=len(below)),
            "above": np.fromiter((t.number for t in above), dtype=np.int64, count=len(above)),
        }


class _Column:
    """One parameter's internal values by trial number (NaN: the trial lacks it) and whether
    each is settled: read from a finished trial, whose params never change. Running trials
    (the constant liar's) are read again at every proposal, as they may gain the parameter."""

    def __init__(self) -> None:
        self.values = np.full(0, np.nan)
        self.settled = np.zeros(0, dtype=bool)

    def grow(self, size: int) -> None:
        if size > len(self.values):
            size = max(size, 2 * len(self.values))
            old = len(self.values)
            self.values = np.concatenate([self.values, np.full(size - old, np.nan)])
            self.settled = np.concatenate([self.settled, np.zeros(size - old, dtype=bool)])


@functools.lru_cache(maxsize=256)
def _cached_weights(n: int, lf: int) -> np.ndarray:
    """linear_forgetting_weights, computed once per ``n`` (read-only; Optuna copies it)."""
    w = linear_forgetting_weights(n, lf)
    w.setflags(write=False)
    return w


class PaperTPESampler(TPESampler):
    """Optuna's TPESampler with the paper's settings, reseeded at every trial.

    The seed of trial ``k`` is ``trial_seed(seed, k)`` (or ``next_seed`` when set, which the
    in-process :class:`TPEStrategy` uses), so workers sharing a storage draw different
    start-up candidates and a trial's draw does not depend on which worker runs it.

    Optuna's univariate TPE reads the study and splits it into good and other trials again for
    every parameter it samples, O(N log N) each: 0.28 s per cell-space proposal at N = 1,000.
    This sampler does that once per proposal (the history does not change within one) and
    keeps each finished trial's internal parameter values, then builds the same Parzen
    estimators from the same observations in the same order: the draws are identical to
    Optuna's (``split_per_parameter=True`` runs Optuna's own path, the check of that claim).
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        gamma: str | Callable[[int], int] = "hyperopt",
        n_startup_trials: int = 20,
        n_ei_candidates: int = 24,
        linear_forgetting: int = LINEAR_FORGETTING,
        constant_liar: bool = True,
        split_per_parameter: bool = False,
    ) -> None:
        for name, value, low in (
            ("n_startup_trials", n_startup_trials, 0),
            ("n_ei_candidates", n_ei_candidates, 1),
            ("linear_forgetting", linear_forgetting, 1),
        ):
            if type(value) is not int or value < low:
                raise ConfigError(f"{name}: {value!r} must be an integer >= {low}")
        s = TPE_PAPER_SETTINGS
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            super().__init__(
                prior_weight=s["prior_weight"],
                consider_magic_clip=s["consider_magic_clip"],
                consider_endpoints=s["consider_endpoints"],
                n_startup_trials=n_startup_trials,
                n_ei_candidates=n_ei_candidates,
                gamma=resolve_gamma(gamma),
                weights=partial(_cached_weights, lf=linear_forgetting),
                seed=trial_seed(seed, -1),
                multivariate=s["multivariate"],
                constant_liar=bool(constant_liar),
            )
        self.base_seed = int(seed)
        self.next_seed: int | None = None
        self.split_per_parameter = bool(split_per_parameter)
        self._proposal: _Proposal | None = None
        self._columns: dict[tuple[str, tuple[Any, ...]], _Column] = {}

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        s = trial_seed(self.base_seed, trial.number) if self.next_seed is None else self.next_seed
        self.next_seed = None
        reseed(self, s)
        reseed(api.tpe_startup_sampler(self), s)
        self._proposal = None
        super().before_trial(study, trial)

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: Any
    ) -> Any:
        if self.split_per_parameter or len(study.directions) != 1:
            return super().sample_independent(study, trial, param_name, param_distribution)
        p = self._history(study, trial)
        if p.n_finished < api.tpe_settings(self)[1]:
            return api.tpe_startup_sampler(self).sample_independent(
                study, trial, param_name, param_distribution
            )
        below = self._observations(p, "below", param_name, param_distribution)
        above = self._observations(p, "above", param_name, param_distribution)
        return api.tpe_sample_one(self, param_name, param_distribution, below, above)

    def _history(self, study: Study, trial: FrozenTrial) -> _Proposal:
        """The trials of this proposal (running ones as the constant liar's worst), split."""
        if self._proposal is not None and self._proposal.number == trial.number:
            return self._proposal
        gamma, _, liar = api.tpe_settings(self)
        states = (TrialState.COMPLETE, TrialState.PRUNED)
        trials = study.get_trials(deepcopy=False, states=(*states, TrialState.RUNNING))
        finished = [t for t in trials if t.state in states]
        used = [t for t in trials if t.number != trial.number] if liar else finished
        n = sum(t.state != TrialState.RUNNING for t in used)
        below, above = api.tpe_split(study, used, gamma(n))
        self._proposal = _Proposal(trial.number, len(finished), below, above)
        return self._proposal

    def _observations(self, p: _Proposal, part: str, name: str, dist: Any) -> np.ndarray:
        """Internal values of ``name`` over the ``part`` ("below"/"above") trials that have it,
        in their order: one gather from the parameter's column; only trials not yet settled
        there (new ones, running ones) are read."""
        trials, numbers = getattr(p, part), p.numbers[part]
        key = (name, tuple(dist.choices))
        col = self._columns.get(key)
        if col is None:
            col = self._columns[key] = _Column()
        if len(numbers):
            col.grow(int(numbers.max()) + 1)
            for i in np.flatnonzero(~col.settled[numbers]):
                t = trials[i]
                if name in t.params:
                    col.values[t.number] = dist.to_internal_repr(t.params[name])
                col.settled[t.number] = t.state.is_finished()
        out = col.values[numbers]
        return out[~np.isnan(out)]


def _key(params: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, repr(v)) for k, v in params.items()))


class TPEStrategy(Strategy):
    """TPE ask/tell over a private in-memory Optuna study.

    ``ask`` runs ``study.ask()`` + ``space.sample(trial)`` and keeps the trial running (so the
    constant liar sees it); ``tell`` finishes the oldest outstanding trial with the same params,
    or adds a completed trial when the params were never asked here (replaying a history).
    Failures are recorded as FAIL trials, which Optuna's TPE ignores.
    """

    name: ClassVar[str] = "tpe"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        *,
        gamma: str | Callable[[int], int] = "hyperopt",
        n_startup_trials: int = 20,
        n_ei_candidates: int = 24,
        linear_forgetting: int = LINEAR_FORGETTING,
        constant_liar: bool = True,
    ) -> None:
        super().__init__(space, seed)
        self._options = {
            "gamma": gamma,
            "n_startup_trials": n_startup_trials,
            "n_ei_candidates": n_ei_candidates,
            "linear_forgetting": linear_forgetting,
            "constant_liar": constant_liar,
        }
        self._sampler = self.sampler()
        storage = optuna.storages.InMemoryStorage()
        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(max(verbosity, optuna.logging.WARNING))
        try:  # a private study is an implementation detail: no "study created" log line
            storage.create_new_study([StudyDirection.MAXIMIZE], "tgsage-tpe")
        finally:
            optuna.logging.set_verbosity(verbosity)
        self.study = optuna.Study(study_name="tgsage-tpe", storage=storage, sampler=self._sampler)
        self._pending: dict[tuple[tuple[str, str], ...], deque[optuna.Trial]] = defaultdict(deque)

    def sampler(self, history_filter: Any = None) -> PaperTPESampler:
        """The paper-configured TPESampler (it reads the study itself; FAIL trials are ignored
        by Optuna's TPE, so ``history_filter`` has nothing to do)."""
        return PaperTPESampler(self.seed, **self._options)

    def ask(self, seed: int) -> dict[str, Any]:
        self._sampler.next_seed = trial_seed(seed, 0)
        trial = self.study.ask()
        params = self.canonical(self.space.sample(trial))
        self._pending[_key(params)].append(trial)
        return params

    def tell(self, params: Mapping[str, Any], score: float | None) -> None:
        score = clean_score(score)
        state = TrialState.FAIL if score is None else TrialState.COMPLETE
        pending = self._pending.get(_key(params))
        if pending:
            trial = pending.popleft()
            self.study.tell(trial, score, state=state)
        else:
            fixed = FixedSuggester(params)
            self.space.sample(fixed)  # raises SpecError for params outside the space
            dists = {name: CategoricalDistribution(list(opts)) for name, opts in fixed.asked}
            self.study.add_trial(
                optuna.trial.create_trial(
                    params=fixed.params, distributions=dists, value=score, state=state
                )
            )
        self.n_told += 1
