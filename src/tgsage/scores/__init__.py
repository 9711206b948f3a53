"""Scores are one vocabulary: every cheap predictor of mature accuracy is a named score.

P, TG, S_i, the TG variants (linear CKA, relation similarity, deepest layer; untrained = TG at
budget 0), learning-curve signals (SoTL, SoTL-E, P-slope), zero-cost proxies and combinations
of them are all written the same way, and the same text works in
:func:`tgsage.evaluate.evaluate_candidate`, :func:`tgsage.experiments.predictivity_table`,
search configs (``score:``) and reports::

    from tgsage.scores import parse_score, evaluate, Population
    expr = parse_score("P + 0.5*TG + rank(synflow)")
    expr.names          # ('P', 'TG', 'synflow'): what must be measured
    evaluate(expr, Population.from_rows(rows))   # one value per architecture

* :mod:`tgsage.scores.names` - the base names and what each needs;
* :mod:`tgsage.scores.grammar` - the one expression grammar (weighted sums, ``rank``,
  ``meanrank``, ``logrank``, ``ridge``/``forest``/``gbm``), old spellings included;
* :mod:`tgsage.scores.population` - evaluation over a population or against a reference
  population (how a search ranks a single candidate);
* :mod:`tgsage.scores.fitted` - combiners fitted on a few labelled architectures;
* :mod:`tgsage.scores.encoding` - the ``ops`` spec encoding.
"""

from tgsage.scores.grammar import (
    FIT_FUNCS,
    FUNCS,
    OPS,
    RANK_FUNCS,
    Expression,
    parse_score,
    split_scores,
)
from tgsage.scores.names import (
    COMPARISONS,
    ScoreName,
    canonical,
    layer_name,
    list_score_names,
    parse_name,
    tg_name,
)
from tgsage.scores.population import (
    FitOptions,
    Population,
    evaluate,
    percentiles,
    percentiles_against,
    score_one,
    values_of,
)

__all__ = [
    "COMPARISONS",
    "FIT_FUNCS",
    "FUNCS",
    "OPS",
    "RANK_FUNCS",
    "Expression",
    "FitOptions",
    "Population",
    "ScoreName",
    "canonical",
    "evaluate",
    "layer_name",
    "list_score_names",
    "parse_name",
    "parse_score",
    "percentiles",
    "percentiles_against",
    "score_one",
    "split_scores",
    "tg_name",
    "values_of",
]
