"""Evaluating a score expression over a population of measured architectures.

A :class:`Population` is a table: one row per architecture, one column per base score name
(NaN where not measured), optionally each row's spec and its mature accuracy (the label a
fitted combiner learns from). :func:`evaluate` returns the expression's value for every row.

**Ranks.** ``rank(x)`` is a mid-rank percentile in (0, 1): within a population, the row with
the i-th smallest x (ties share their mean rank) gets ``(i - 1/2) / n``. Against a *reference*
population R of m rows (a search scores one candidate at a time, so "within the population"
means "among a fixed, seeded sample of architectures of the space"), a value v gets its
mid-rank among R plus itself: ``(#{R < v} + #{R <= v} + 1) / (2 (m + 1))``. Both stay inside
(0, 1), so ``logrank`` is always finite. NaN is "not measured" and stays NaN; -inf (NASWOT's
singular kernel) ranks lowest.

**Fitted combiners** (``ridge``, ``forest``, ``gbm``) learn the rank of mature accuracy from
labelled rows (:mod:`tgsage.scores.fitted`): from the reference population's labels when a
reference is given, otherwise by K-fold cross-validation within the population (every row is
predicted by a model that never saw it), each fit using at most ``FitOptions.labels`` rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tgsage.errors import InputError
from tgsage.scores.grammar import FIT_FUNCS, OPS, Call, Const, Expression, Node, Ref, Sum
from tgsage.scores.grammar import parse_score as _parse


@dataclass
class Population:
    """Base score columns for n architectures (+ optional specs and mature accuracies)."""

    values: dict[str, np.ndarray]
    n: int
    specs: list[Any] | None = None
    target: np.ndarray | None = None  # mature accuracy, NaN where unknown
    # fitted combiners trained on this population as a reference (reused for every candidate)
    fits: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_rows(
        cls,
        rows: Sequence[Mapping[str, float | None]],
        specs: Sequence[Any] | None = None,
        target: Sequence[float | None] | None = None,
    ) -> Population:
        """From one mapping of base score values per architecture (missing -> NaN)."""
        n = len(rows)
        keys: dict[str, None] = {}
        for r in rows:
            keys.update(dict.fromkeys(r))
        values = {k: np.full(n, np.nan) for k in keys}
        for i, r in enumerate(rows):
            for k, v in r.items():
                if v is not None:
                    values[k][i] = float(v)
        if specs is not None and len(specs) != n:
            raise InputError(f"{len(specs)} specs for {n} rows")
        t = None
        if target is not None:
            if len(target) != n:
                raise InputError(f"{len(target)} targets for {n} rows")
            t = np.array([np.nan if v is None else float(v) for v in target])
        return cls(values, n, list(specs) if specs is not None else None, t)

    def column(self, name: str) -> np.ndarray:
        try:
            return self.values[name]
        except KeyError:
            have = ", ".join(sorted(self.values)) or "none"
            hint = (
                "; to subtract two scores write 'a - b' with spaces"
                if "-" in name and name not in self.values
                else ""
            )
            raise InputError(
                f"score {name!r} was not measured for these architectures (measured: {have}){hint}"
            ) from None

    def subset(self, idx: np.ndarray) -> Population:
        idx = np.asarray(idx)
        return Population(
            {k: v[idx] for k, v in self.values.items()},
            int(idx.size),
            [self.specs[i] for i in idx] if self.specs is not None else None,
            self.target[idx] if self.target is not None else None,
        )


@dataclass(frozen=True)
class FitOptions:
    """How fitted combiners train: at most ``labels`` labelled rows per fit, ``folds``-fold
    cross-validation within a population without a reference, and a seed."""

    labels: int = 100
    folds: int = 5
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------- ranks
def percentiles(x: np.ndarray) -> np.ndarray:
    """Mid-rank percentiles in (0, 1) within ``x`` (ties share; NaN stays NaN)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.full(x.shape, np.nan)
    ok = ~np.isnan(x)
    m = int(ok.sum())
    if m:
        from scipy.stats import rankdata

        out[ok] = (rankdata(x[ok]) - 0.5) / m
    return out


def percentiles_against(x: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Each value's mid-rank percentile among ``reference`` plus itself (module docstring)."""
    ref = np.sort(np.asarray(reference, dtype=np.float64)[~np.isnan(reference)])
    x = np.asarray(x, dtype=np.float64)
    if ref.size == 0:
        raise InputError("the reference population has no measured value for this score")
    lo = np.searchsorted(ref, x, side="left")
    hi = np.searchsorted(ref, x, side="right")
    out = (lo + hi + 1) / (2 * (ref.size + 1))
    return np.where(np.isnan(x), np.nan, out)


# ---------------------------------------------------------------------- evaluation
def evaluate(
    score: str | Expression,
    population: Population,
    reference: Population | None = None,
    fit: FitOptions | None = None,
) -> np.ndarray:
    """The value of ``score`` for every row of ``population`` (float64, NaN = undefined).

    ``reference``: the population that ranks and fitted combiners refer to (default: the
    population itself, with cross-validated fits).
    """
    expr = _parse(score) if isinstance(score, str) else score
    return _Evaluator(population, reference, fit or FitOptions()).node(expr.node)


class _Evaluator:
    def __init__(self, pop: Population, ref: Population | None, fit: FitOptions) -> None:
        self.pop, self.ref, self.fit = pop, ref, fit

    def node(self, node: Node) -> np.ndarray:
        if isinstance(node, Ref):
            if node.name == OPS:
                raise InputError("'ops' is a feature of a fitted combiner only")
            return self.pop.column(node.name).astype(np.float64)
        if isinstance(node, Const):
            return np.full(self.pop.n, node.value)
        if isinstance(node, Sum):
            out = np.full(self.pop.n, node.const)
            for w, n in node.terms:
                out = out + w * self.node(n)
            return out
        assert isinstance(node, Call)
        if node.func in FIT_FUNCS:
            from tgsage.scores.fitted import fit_predict

            return fit_predict(node, self.pop, self.ref, self.fit)
        ranks = [self.rank(a) for a in node.args]
        if node.func == "rank" or node.func == "meanrank":
            return np.mean(ranks, axis=0)
        with np.errstate(divide="ignore"):
            return np.sum(np.log(ranks), axis=0)  # logrank

    def rank(self, node: Node) -> np.ndarray:
        x = self.node(node)
        if self.ref is None:
            return percentiles(x)
        r = _Evaluator(self.ref, None, self.fit).node(node)
        return percentiles_against(x, r)


def values_of(
    score: str | Expression,
    rows: Sequence[Mapping[str, float | None]],
    reference: Sequence[Mapping[str, float | None]] | None = None,
) -> np.ndarray:
    """Shortcut: ``evaluate`` over plain rows of base score values."""
    pop = Population.from_rows(rows)
    ref = Population.from_rows(reference) if reference is not None else None
    return evaluate(score, pop, ref)


def score_one(
    score: str | Expression,
    values: Mapping[str, float | None],
    reference: Population | None = None,
    fit: FitOptions | None = None,
    spec: Any = None,
) -> float:
    """One candidate's score; population-relative parts are taken against ``reference``
    (required when the expression has ``rank``, aggregations or fitted combiners)."""
    expr = _parse(score) if isinstance(score, str) else score
    if expr.population and reference is None:
        raise InputError(
            f"score {str(expr)!r} ranks a candidate among other architectures; "
            "give a reference population"
        )
    pop = Population.from_rows([values], specs=[spec] if spec is not None else None)
    v = float(evaluate(expr, pop, reference, fit)[0])
    return v if not math.isnan(v) else float("nan")


__all__ = [
    "FitOptions",
    "Population",
    "evaluate",
    "percentiles",
    "percentiles_against",
    "score_one",
    "values_of",
]
