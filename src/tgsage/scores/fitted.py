"""Fitted combiners: scikit-learn regressors that learn mature accuracy from a few labels.

``ridge(f1, f2, ...)``, ``forest(...)`` and ``gbm(...)`` are scores whose value is a model's
prediction of the *rank* of mature accuracy (its percentile among the labelled rows; only the
order matters for ranking, and ranks make a broken cell at 10% no outlier). Features are any
scores (base names or expressions, e.g. ``rank(synflow)``) plus ``ops``, the spec encoding of
:mod:`tgsage.scores.encoding`.

* ``ridge``: :class:`~sklearn.linear_model.RidgeCV` on the features' percentile ranks among
  the training rows (a new row's feature is its percentile against them); the penalty is chosen
  by efficient leave-one-out on the training rows only. Unmeasured features count as the median.
* ``forest``: :class:`~sklearn.ensemble.RandomForestRegressor` (200 trees, half the features
  per split) on the raw features;
* ``gbm``: :class:`~sklearn.ensemble.GradientBoostingRegressor` (200 rounds of depth-3 trees,
  learning rate 0.05, 80% subsamples) on the raw features.

Trees get unmeasured features as the training rows' median.

Training rows are at most ``FitOptions.labels`` labelled rows drawn with the options' seed: of
the reference population when one is given (a search's labelled sample, or the selection half
of a study), else of the other folds of a K-fold split of the population itself, so every row
is predicted by a model that never saw its label.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tgsage.errors import InputError
from tgsage.scores.grammar import OPS, Call, Ref
from tgsage.scores.population import FitOptions, Population, percentiles, percentiles_against


def _make_model(kind: str, seed: int) -> Any:
    if kind == "ridge":
        from sklearn.linear_model import RidgeCV

        return RidgeCV(alphas=np.logspace(-3, 3, 13))
    if kind == "forest":
        from sklearn.ensemble import RandomForestRegressor

        return RandomForestRegressor(
            n_estimators=200, min_samples_leaf=2, max_features=0.5, random_state=seed, n_jobs=1
        )
    if kind == "gbm":
        from sklearn.ensemble import GradientBoostingRegressor

        # not HistGradientBoosting: its OpenMP threads crawl on a shared, loaded CPU
        return GradientBoostingRegressor(
            n_estimators=200,
            learning_rate=0.05,
            max_depth=3,
            min_samples_leaf=3,
            subsample=0.8,
            random_state=seed,
        )
    raise InputError(f"unknown fitted combiner {kind!r}")


def _features(call: Call, pop: Population, ref: Population | None, fit: FitOptions) -> np.ndarray:
    """Feature columns of ``pop`` (ranks and nested scores evaluated against ``ref``)."""
    from tgsage.scores.population import _Evaluator

    ev = _Evaluator(pop, ref, fit)
    cols = [ev.node(a)[:, None] for a in call.args if not (isinstance(a, Ref) and a.name == OPS)]
    return np.hstack(cols) if cols else np.zeros((pop.n, 0))


def _ops(call: Call, *pops: Population) -> list[np.ndarray]:
    """The ``ops`` encoding of each population (one vocabulary for all), if asked for."""
    if not any(isinstance(a, Ref) and a.name == OPS for a in call.args):
        return [np.zeros((p.n, 0)) for p in pops]
    from tgsage.scores.encoding import encode_specs

    specs: list[Any] = []
    for p in pops:
        if p.specs is None:
            raise InputError(f"{call.func}(..., ops) needs the architectures' specs")
        specs += p.specs
    x, _ = encode_specs(specs)
    out, start = [], 0
    for p in pops:
        out.append(x[start : start + p.n])
        start += p.n
    return out


def _fit_and_predict(
    kind: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, seed: int
) -> np.ndarray:
    y = percentiles(y_train)
    if kind == "ridge":
        tr = np.column_stack([percentiles(c) for c in x_train.T]) if x_train.size else x_train
        te = (
            np.column_stack(
                [percentiles_against(x_test[:, j], x_train[:, j]) for j in range(x_train.shape[1])]
            )
            if x_train.size
            else x_test
        )
        tr, te = np.nan_to_num(tr, nan=0.5), np.nan_to_num(te, nan=0.5)
    else:
        tr = np.where(np.isinf(x_train), np.sign(x_train) * 1e300, x_train)
        te = np.where(np.isinf(x_test), np.sign(x_test) * 1e300, x_test)
        with np.errstate(all="ignore"):
            med = np.nanmedian(np.where(np.isnan(tr), np.nan, tr), axis=0) if tr.size else []
        med = np.nan_to_num(np.asarray(med, dtype=np.float64), nan=0.0)
        tr = np.where(np.isnan(tr), med, tr)
        te = np.where(np.isnan(te), med, te)
    model = _make_model(kind, seed)
    model.fit(tr, y)
    return np.asarray(model.predict(te), dtype=np.float64)


def _labelled(pop: Population) -> np.ndarray:
    if pop.target is None:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.isfinite(pop.target))


def fit_predict(call: Call, pop: Population, ref: Population | None, fit: FitOptions) -> np.ndarray:
    """Predictions of a fitted combiner for every row of ``pop`` (module docstring)."""
    rng = np.random.default_rng([fit.seed, 0xF17])
    if fit.labels < 2:
        raise InputError(f"a fitted combiner needs at least 2 labels, got labels={fit.labels}")
    if ref is not None:
        lab = _labelled(ref)
        if lab.size < 2:
            raise InputError(
                f"{call.func}(): the reference population has {lab.size} labelled "
                "architectures; a fitted combiner needs mature accuracies to learn from"
            )
        take = rng.permutation(lab)[: fit.labels]
        train = ref.subset(take)
        x_tr = _features(call, train, None, fit)
        x_te = _features(call, pop, train, fit)
        o_tr, o_te = _ops(call, train, pop)
        return _fit_and_predict(
            call.func,
            np.hstack([x_tr, o_tr]),
            train.target,  # type: ignore[arg-type]
            np.hstack([x_te, o_te]),
            fit.seed,
        )
    lab = _labelled(pop)
    if lab.size < 2 * max(fit.folds, 2):
        raise InputError(
            f"{call.func}(): cross-validation needs mature accuracies for at least "
            f"{2 * max(fit.folds, 2)} architectures, {lab.size} have one"
        )
    x = _features(call, pop, None, fit)
    (o,) = _ops(call, pop)
    x = np.hstack([x, o])
    folds = max(2, int(fit.folds))
    fold_of = np.empty(pop.n, dtype=np.int64)
    fold_of[rng.permutation(pop.n)] = np.arange(pop.n) % folds
    out = np.full(pop.n, np.nan)
    for k in range(folds):
        test = np.flatnonzero(fold_of == k)
        pool = lab[fold_of[lab] != k]
        take = rng.permutation(pool)[: fit.labels]
        y = pop.target[take]  # type: ignore[index]
        out[test] = _fit_and_predict(call.func, x[take], y, x[test], fit.seed + k)
    return out


__all__ = ["fit_predict"]
