"""Our Optuna TPE configuration against hyperopt's own ``tpe.suggest`` (the paper's TPE).

Checked against what hyperopt 0.3 exposes: its default constants, ``ap_split_trials`` (the
good/bad split), ``linear_forgetting_weights``, and the start-up behaviour of ``fmin`` with
``tpe.suggest`` vs ``rand.suggest``. On the Optuna side we inspect what the sampler really
uses (its gamma and weights callables, and the good sets it builds, captured from Optuna's
``_split_trials``), not our own helper functions alone.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import optuna
import pytest

from tgsage.spaces import get_space
from tgsage.strategies import (
    TPE_PAPER_SETTINGS,
    PaperTPESampler,
    TrialSeededRandomSampler,
    hyperopt_gamma,
    linear_forgetting_weights,
    paper_gamma,
)

hyperopt = pytest.importorskip("hyperopt")
from hyperopt import STATUS_OK, Trials, fmin, hp, rand, tpe  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)

A = [0, 1, 2, 3]
B = ["x", "y", "z"]
C = [False, True]


def loss(a: int, b: str, c: bool) -> float:
    return -(a + 2 * (b == "z") + 0.5 * c) + 0.01 * np.sin(7 * a + 3 * len(b) + c)


def hyperopt_run(algo, n: int, seed: int) -> list[tuple]:  # type: ignore[no-untyped-def]
    space = {"a": hp.choice("a", A), "b": hp.choice("b", B), "c": hp.choice("c", C)}
    trials = Trials()
    fmin(
        lambda d: {"loss": loss(d["a"], d["b"], d["c"]), "status": STATUS_OK},
        space,
        algo=algo,
        max_evals=n,
        trials=trials,
        rstate=np.random.default_rng(seed),
        show_progressbar=False,
    )
    return [tuple(t["misc"]["vals"][k][0] for k in "abc") for t in trials.trials]


def optuna_run(sampler, n: int) -> list[tuple]:  # type: ignore[no-untyped-def]
    def objective(trial: optuna.Trial) -> float:
        a = trial.suggest_categorical("a", A)
        b = trial.suggest_categorical("b", B)
        c = trial.suggest_categorical("c", C)
        return -loss(a, b, c)  # maximise the score = minimise hyperopt's loss

    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=n)
    return [
        (A.index(t.params["a"]), B.index(t.params["b"]), C.index(t.params["c"]))
        for t in study.trials
    ]


def hyperopt_tpe():  # type: ignore[no-untyped-def]
    s = TPE_PAPER_SETTINGS
    return partial(
        tpe.suggest,
        n_startup_jobs=s["n_startup_trials"],
        n_EI_candidates=s["n_ei_candidates"],
        prior_weight=s["prior_weight"],
        gamma=0.25,
    )


def test_paper_settings_equal_hyperopt_defaults_and_what_the_sampler_uses() -> None:
    s = TPE_PAPER_SETTINGS
    assert s["n_startup_trials"] == tpe._default_n_startup_jobs == 20
    assert s["n_ei_candidates"] == tpe._default_n_EI_candidates == 24
    assert s["prior_weight"] == tpe._default_prior_weight
    assert s["linear_forgetting"] == tpe.DEFAULT_LF == tpe._default_linear_forgetting
    sampler = PaperTPESampler(0)
    params = sampler._parzen_estimator_parameters
    assert sampler._n_startup_trials == 20 and sampler._n_ei_candidates == 24
    assert params.prior_weight == 1.0
    assert params.consider_magic_clip is True and params.consider_endpoints is False
    assert sampler._multivariate is False  # univariate, as hyperopt
    assert sampler._constant_liar is True  # running trials count as bad, as in hyperopt


@pytest.mark.parametrize("seed", [0, 1])
def test_start_up_is_random_for_exactly_20_candidates_in_both_libraries(seed: int) -> None:
    n = 60
    h_tpe, h_rand = hyperopt_run(hyperopt_tpe(), n, seed), hyperopt_run(rand.suggest, n, seed)
    o_tpe = optuna_run(PaperTPESampler(seed), n)
    o_rand = optuna_run(TrialSeededRandomSampler(seed), n)

    def mean_score(run: list[tuple]) -> float:
        return float(np.mean([-loss(A[a], B[b], C[c]) for a, b, c in run]))

    for tpe_run, rand_run in ((h_tpe, h_rand), (o_tpe, o_rand)):
        # the first 20 suggestions are the random suggester's own draws ...
        assert tpe_run[:20] == rand_run[:20]
        # ... afterwards TPE takes over and proposes much better candidates
        assert sum(a != b for a, b in zip(tpe_run[20:], rand_run[20:], strict=True)) > 20
        assert mean_score(tpe_run[20:]) > mean_score(rand_run[20:]) + 0.8
    # and the two TPEs are about equally good (max score 5.5, random ~2.4, TPE ~3.6-4.0)
    assert abs(mean_score(h_tpe[20:]) - mean_score(o_tpe[20:])) < 0.5


def test_gamma_functions_equal_hyperopt_split_sizes() -> None:
    rng = np.random.default_rng(0)
    for n in [*range(400), 999, 1000, 2499, 2500, 2501, 4000]:
        losses = rng.permutation(n).astype(float)
        idxs = np.arange(n)
        for ours, g in ((hyperopt_gamma, 0.25), (paper_gamma, 0.5)):
            below, above = tpe.ap_split_trials(idxs, idxs, idxs, losses, gamma=g)
            assert ours(n) == len(below), (n, g)
            assert len(below) + len(above) == n
    # the paper's sqrt(N/4) is hyperopt's formula with gamma = 0.5, not its default 0.25
    assert paper_gamma(100) == 5 and hyperopt_gamma(100) == 3


@pytest.mark.parametrize("gamma,hyperopt_gamma_value", [("hyperopt", 0.25), ("paper", 0.5)])
def test_optuna_builds_the_same_good_sets_as_hyperopt(
    gamma: str, hyperopt_gamma_value: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    import optuna.samplers._tpe.sampler as tpe_module

    recorded: list[tuple[list[int], list[float], set[int]]] = []
    split = tpe_module._split_trials

    def recording_split(study, trials, n_below):  # type: ignore[no-untyped-def]
        below, above = split(study, trials, n_below)
        done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
        recorded.append(
            ([t.number for t in done], [t.value for t in done], {t.number for t in below})
        )
        return below, above

    monkeypatch.setattr(tpe_module, "_split_trials", recording_split)
    space = get_space("layer", max_layers=2)
    rng = np.random.default_rng(3)
    values = rng.permutation(200).astype(float)  # distinct scores, no ties
    study = optuna.create_study(direction="maximize", sampler=PaperTPESampler(0, gamma=gamma))
    study.optimize(lambda t: (space.sample(t), values[t.number])[1], n_trials=120)
    assert recorded  # TPE ran after the start-up
    sizes = set()
    for numbers, vals, below in recorded:
        idx = np.array(numbers)
        h_below, _ = tpe.ap_split_trials(idx, idx, idx, -np.array(vals), gamma=hyperopt_gamma_value)
        assert below == set(h_below.tolist())
        sizes.add(len(below))
    assert len(sizes) >= 2  # the good set grew with N (here ~100 completed trials)


def test_forgetting_weights_equal_hyperopt() -> None:
    sampler_weights = PaperTPESampler(0)._parzen_estimator_parameters.weights
    for n in range(0, 300):
        want = tpe.linear_forgetting_weights(n, 25)
        np.testing.assert_allclose(sampler_weights(n), want, rtol=0, atol=0)
        for lf in (1, 5, 40):
            np.testing.assert_allclose(
                linear_forgetting_weights(n, lf), tpe.linear_forgetting_weights(n, lf)
            )
    custom = PaperTPESampler(0, linear_forgetting=7)._parzen_estimator_parameters.weights
    np.testing.assert_allclose(custom(50), tpe.linear_forgetting_weights(50, 7))


@pytest.mark.parametrize(("space_name", "running"), [("cell", 3), ("layer", 0)])
def test_one_split_per_proposal_draws_exactly_what_optuna_draws(
    space_name: str, running: int
) -> None:
    """The sampler splits the history once per proposal; Optuna's own path splits it for every
    parameter. Same seeds, same history (with running trials for the constant liar): every
    parameter of every proposal is identical."""
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import TrialState

    from tgsage.spaces import FixedSuggester
    from tgsage.strategies.tpe import PaperTPESampler

    space = get_space(space_name) if space_name == "cell" else get_space("layer", max_layers=5)
    rng = np.random.default_rng(3)
    history = [space.spec_to_params(space.random_spec(rng)) for _ in range(60)]
    values = rng.random(len(history)).tolist()
    studies = []
    for per_parameter in (False, True):
        sampler = PaperTPESampler(seed=5, split_per_parameter=per_parameter)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        for i, params in enumerate(history):
            fixed = FixedSuggester(params)
            space.sample(fixed)
            dists = {k: CategoricalDistribution(list(c)) for k, c in fixed.asked}
            state = TrialState.RUNNING if i >= len(history) - running else TrialState.COMPLETE
            study.add_trial(
                optuna.trial.create_trial(
                    params=fixed.params,
                    distributions=dists,
                    value=values[i] if state == TrialState.COMPLETE else None,
                    state=state,
                )
            )
        studies.append(study)
    for _ in range(6):
        drawn = []
        for study in studies:
            trial = study.ask()
            drawn.append(space.spec_to_params(space.sample(trial)))
        assert drawn[0] == drawn[1]
        score = float(rng.random())
        for study in studies:  # the same outcome in both histories
            study.tell(study.trials[-1].number, score)
