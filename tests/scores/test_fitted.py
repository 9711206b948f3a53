"""Fitted combiners: they learn, they never see the label of a row they predict, and the
``ops`` encoding is what it says."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from tgsage.errors import InputError
from tgsage.scores import FitOptions, Population, evaluate
from tgsage.scores.encoding import encode_specs
from tgsage.spaces.nb201 import EDGE_NAMES, NB201_OPS, NB201Spec


def _toy(n: int = 120, seed: int = 0) -> tuple[Population, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    y = x @ np.array([1.0, 0.5, 0.0]) + 0.3 * rng.normal(size=n)
    pop = Population.from_rows([{"a": a, "b": b, "c": c} for a, b, c in x], target=y)
    return pop, y


@pytest.mark.parametrize("kind", ["ridge", "forest", "gbm"])
def test_cross_validated_fits_beat_the_best_single_feature(kind) -> None:
    pop, y = _toy()
    pred = evaluate(f"{kind}(a, b, c)", pop, fit=FitOptions(labels=60, folds=4))
    assert np.isfinite(pred).all()
    single = sps.spearmanr(pop.column("a"), y).statistic
    fitted = sps.spearmanr(pred, y).statistic
    assert fitted > single if kind == "ridge" else fitted > single - 0.1


@pytest.mark.parametrize("kind", ["ridge", "forest", "gbm"])
def test_a_rows_prediction_never_depends_on_its_own_label(kind) -> None:
    pop, _y = _toy(40, seed=1)
    fit = FitOptions(labels=100, folds=4, seed=3)
    base = evaluate(f"{kind}(a, b)", pop, fit=fit)
    for i in (0, 27):
        changed = Population(pop.values, pop.n, None, pop.target.copy())
        changed.target[i] = -100.0  # an absurd label on row i only
        assert evaluate(f"{kind}(a, b)", changed, fit=fit)[i] == pytest.approx(base[i])


def test_at_most_labels_rows_train_each_fit() -> None:
    pop, y = _toy(200, seed=2)
    ref = pop.subset(np.arange(100))
    test = pop.subset(np.arange(100, 200))
    # with 10 labels a ridge on 3 features still learns, but less than with 100
    few = evaluate("ridge(a, b, c)", test, ref, FitOptions(labels=10))
    many = evaluate("ridge(a, b, c)", test, ref, FitOptions(labels=100))
    s_few = sps.spearmanr(few, y[100:]).statistic
    s_many = sps.spearmanr(many, y[100:]).statistic
    assert s_many > 0.8 and s_many >= s_few - 0.02
    # reference labels, not the test rows' labels, are what the model learns from
    blind = Population(test.values, test.n, None, np.full(test.n, np.nan))
    assert np.allclose(evaluate("ridge(a, b, c)", blind, ref, FitOptions(labels=100)), many)


def test_fits_refuse_without_labels() -> None:
    pop, _ = _toy(30)
    unlabelled = Population(pop.values, pop.n)
    with pytest.raises(InputError, match="mature accuracies"):
        evaluate("ridge(a)", unlabelled)
    with pytest.raises(InputError, match="labelled"):
        evaluate("ridge(a)", pop, unlabelled)


def test_nb201_ops_encoding_is_one_hot_per_edge_plus_counts() -> None:
    specs = [
        NB201Spec(("nor_conv_3x3",) * 6),
        NB201Spec(("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3", "none")),
    ]
    x, names = encode_specs(specs)
    assert x.shape == (2, len(EDGE_NAMES) * len(NB201_OPS) + len(NB201_OPS) + 4 * 5 + 4)
    assert (x[:, : 6 * 5].reshape(2, 6, 5).sum(axis=2) == 1).all()  # one op per edge
    counts = dict(zip(names[30:35], x[1, 30:35], strict=True))
    assert counts == {
        "count:none": 2,
        "count:skip_connect": 1,
        "count:nor_conv_1x1": 1,
        "count:nor_conv_3x3": 1,
        "count:avg_pool_3x3": 1,
    }
    assert x[0, names.index("edge3<-2=nor_conv_3x3")] == 1
    # paths of cell 1 (edges 1<-0 none, 2<-0 skip, 2<-1 1x1, 3<-0 3x3, 3<-1 pool, 3<-2 none):
    # 0->3 alive with one 3x3 conv; every other path crosses a none edge
    f = dict(zip(names, x[1], strict=True))
    assert (f["path3:alive"], f["path3:nor_conv_3x3"]) == (1, 1)
    assert f["path0-4:alive"] == f["path1-5:alive"] == f["path0-2-5:alive"] == 0
    assert (f["paths:alive"], f["paths:max_convs"], f["paths:sum_convs"]) == (1, 1, 1)
    g = dict(zip(names, x[0], strict=True))  # all 3x3: 4 alive paths with 1, 2, 2, 3 convs
    assert (g["paths:alive"], g["paths:max_convs"], g["paths:min_convs"]) == (4, 3, 1)
    assert g["paths:sum_convs"] == 8


def test_generic_ops_encoding_counts_string_fields() -> None:
    x, names = encode_specs(
        [
            {"layers": [{"act": "relu", "k": 3}, {"act": "identity", "k": 5}]},
            {"layers": [{"act": "relu", "k": 3}]},
        ]
    )
    got = {n: list(x[:, i]) for i, n in enumerate(names)}
    assert got == {"layers.act=identity": [1, 0], "layers.act=relu": [1, 1], "len:layers": [2, 1]}


def test_fitted_combiner_with_ops_learns_an_op_effect() -> None:
    rng = np.random.default_rng(0)
    specs = [NB201Spec(tuple(str(o) for o in rng.choice(NB201_OPS, 6))) for _ in range(150)]
    # accuracy driven by the number of 3x3 convs: a spec-only signal
    y = np.array([s.ops.count("nor_conv_3x3") for s in specs]) + 0.2 * rng.normal(size=150)
    noise = rng.normal(size=150)
    pop = Population.from_rows([{"z": v} for v in noise], specs=specs, target=y)
    pred = evaluate("ridge(z, ops)", pop, fit=FitOptions(labels=100, folds=5))
    assert sps.spearmanr(pred, y).statistic > 0.8
    assert abs(sps.spearmanr(evaluate("ridge(z)", pop), y).statistic) < 0.4


def test_tree_features_keep_their_order_and_stay_finite_in_float32() -> None:
    from tgsage.scores.fitted import _tree_input

    x = np.array([-np.inf, -1e300, -3e38, -1.0, -1e-30, 0.0, 1e-30, 0.5, 1.0, 4e38, 1e300, np.inf])
    z = _tree_input(x).astype(np.float32)  # what scikit-learn's trees see
    assert np.isfinite(z).all()
    assert (np.diff(z) > 0).all()
    assert np.isnan(_tree_input(np.array([np.nan]))).all()


@pytest.mark.parametrize("kind", ["forest", "gbm"])
def test_trees_take_scores_beyond_float32_and_infinities(kind) -> None:
    # synflow of a deep network exceeds float32's range, a singular kernel scores -inf: the
    # trees must rank as well as on a tame monotone copy of the same feature
    pop, y = _toy(80, seed=2)
    a = pop.column("a")
    big = np.exp(250.0 * (a - a.min()) / (a.max() - a.min()))  # up to 1e108
    big[np.argmin(a)] = -np.inf
    big[np.argmax(a)] = np.inf
    wild = Population.from_rows([{"big": v} for v in big], target=y)
    fit = FitOptions(labels=60, folds=4)
    pred_wild = evaluate(f"{kind}(big)", wild, fit=fit)
    pred_tame = evaluate(f"{kind}(a)", pop, fit=fit)
    assert np.isfinite(pred_wild).all()
    rho_wild = sps.spearmanr(pred_wild, y).statistic
    rho_tame = sps.spearmanr(pred_tame, y).statistic
    assert rho_wild > 0.5 and abs(rho_wild - rho_tame) < 0.1
