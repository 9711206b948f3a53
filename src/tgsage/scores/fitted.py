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

import warnings
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


def _ops(call: Call, pop: Population, vocab: list[str] | None = None) -> tuple[np.ndarray, Any]:
    """The ``ops`` encoding of a population (and its vocabulary), if the call asks for it."""
    if not any(isinstance(a, Ref) and a.name == OPS for a in call.args):
        return np.zeros((pop.n, 0)), None
    from tgsage.scores.encoding import encode_specs

    if pop.specs is None:
        raise InputError(f"{call.func}(..., ops) needs the architectures' specs")
    return encode_specs(pop.specs, vocab)


Predictor = Any  # (x_test) -> predictions


def _tree_input(x: np.ndarray) -> np.ndarray:
    """Features as the trees see them. scikit-learn's trees cast to float32, where a score
    beyond 3.4e38 (synflow of a deep network; the +-inf of a singular kernel) would be infinite
    and refused. Trees split on order only, so a strictly increasing map changes nothing else:
    the signed log ``sign(x) log(1 + |x|)`` keeps every finite float64 finite (at most 710),
    and +-inf go just beyond every finite value. NaN stays NaN (imputed by the caller)."""
    with np.errstate(all="ignore"):
        z = np.sign(x) * np.log1p(np.abs(x))
    return np.where(np.isinf(z), np.sign(z) * 1e4, z)


def _fit(kind: str, x_train: np.ndarray, y_train: np.ndarray, seed: int) -> Predictor:
    """A fitted model as a function of new feature rows (module docstring)."""
    y = percentiles(y_train)
    model = _make_model(kind, seed)
    cols = range(x_train.shape[1])
    if kind == "ridge":
        tr = np.column_stack([percentiles(x_train[:, j]) for j in cols]) if cols else x_train
        model.fit(np.nan_to_num(tr, nan=0.5), y)

        def predict_ridge(x: np.ndarray) -> np.ndarray:
            te = (
                np.column_stack([percentiles_against(x[:, j], x_train[:, j]) for j in cols])
                if cols
                else x
            )
            return np.asarray(model.predict(np.nan_to_num(te, nan=0.5)), dtype=np.float64)

        return predict_ridge
    tr = _tree_input(x_train)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column: median NaN -> 0
        med = np.nanmedian(tr, axis=0) if tr.size else np.zeros(tr.shape[1])
    med = np.nan_to_num(np.asarray(med, dtype=np.float64), nan=0.0)
    model.fit(np.where(np.isnan(tr), med, tr), y)

    def predict_tree(x: np.ndarray) -> np.ndarray:
        te = _tree_input(x)
        return np.asarray(model.predict(np.where(np.isnan(te), med, te)), dtype=np.float64)

    return predict_tree


def _labelled(pop: Population) -> np.ndarray:
    if pop.target is None:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.isfinite(pop.target))


def fit_predict(call: Call, pop: Population, ref: Population | None, fit: FitOptions) -> np.ndarray:
    """Predictions of a fitted combiner for every row of ``pop`` (module docstring)."""
    if fit.labels < 2:
        raise InputError(f"a fitted combiner needs at least 2 labels, got labels={fit.labels}")
    if ref is not None:
        key = (call, fit.labels, fit.seed)
        if key not in ref.fits:  # fitted once per reference, reused for every candidate
            lab = _labelled(ref)
            if lab.size < 2:
                raise InputError(
                    f"{call.func}(): the reference population has {lab.size} labelled "
                    "architectures; a fitted combiner needs mature accuracies to learn from"
                )
            rng = np.random.default_rng([fit.seed, 0xF17])
            train = ref.subset(rng.permutation(lab)[: fit.labels])
            o_tr, vocab = _ops(call, train)
            x_tr = np.hstack([_features(call, train, None, fit), o_tr])
            ref.fits[key] = (train, vocab, _fit(call.func, x_tr, train.target, fit.seed))
        train, vocab, predict = ref.fits[key]
        o_te, _ = _ops(call, pop, vocab)
        return predict(np.hstack([_features(call, pop, train, fit), o_te]))
    rng = np.random.default_rng([fit.seed, 0xF17])
    lab = _labelled(pop)
    if lab.size < 2 * max(fit.folds, 2):
        raise InputError(
            f"{call.func}(): cross-validation needs mature accuracies for at least "
            f"{2 * max(fit.folds, 2)} architectures, {lab.size} have one"
        )
    o, _ = _ops(call, pop)
    x = np.hstack([_features(call, pop, None, fit), o])
    folds = max(2, int(fit.folds))
    fold_of = np.empty(pop.n, dtype=np.int64)
    fold_of[rng.permutation(pop.n)] = np.arange(pop.n) % folds
    out = np.full(pop.n, np.nan)
    for k in range(folds):
        test = np.flatnonzero(fold_of == k)
        pool = lab[fold_of[lab] != k]
        take = rng.permutation(pool)[: fit.labels]
        predict = _fit(call.func, x[take], pop.target[take], fit.seed + k)  # type: ignore[index]
        out[test] = predict(x[test])
    return out


__all__ = ["fit_predict"]
