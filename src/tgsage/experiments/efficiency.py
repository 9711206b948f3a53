"""Search efficiency (paper 4.2, Table 1, Fig. 4): best found so far against cost invested.

:func:`best_so_far` turns one search's candidates, in completion order, into a step function
(cumulative cost, best value so far). :func:`compare_searches` puts several searches per label
(seeds) on one cost grid and averages them (mean +- std), e.g. P-guided vs P+TG-guided at equal
cost. Failed candidates add their cost but never a value.

The paper's Fig. 4 tracks "the maximum mature performance among the search's current top-5":
``best_so_far(records, by="mature_accuracy", select_top=5, select_by="score")``.
"""

from __future__ import annotations

import heapq
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from tgsage.errors import InputError
from tgsage.experiments.records import CandidateRecord, as_candidate_records

COSTS = ("examples", "candidates", "seconds")


class BestSoFar(NamedTuple):
    """A search's progress: after the i-th completed candidate, ``cost[i]`` had been spent and
    ``best[i]`` was the best value found (NaN before the first valid value)."""

    cost: np.ndarray
    best: np.ndarray
    number: np.ndarray  # trial numbers, completion order


def _completion_order(records: Iterable[Any]) -> list[CandidateRecord]:
    recs = [r for r in as_candidate_records(records) if r.status in ("ok", "failed")]
    return sorted(recs, key=lambda r: (r.order is None, r.order or 0.0, r.number))


def _cost(r: CandidateRecord, cost: str) -> float:
    if cost == "examples":
        return float(r.cost)
    if cost == "candidates":
        return 1.0
    if cost == "seconds":
        return float((r.train_seconds or 0.0) + (r.score_seconds or 0.0))
    raise InputError(f"cost must be one of {COSTS}, not {cost!r}")


def best_so_far(
    records: Iterable[Any],
    by: str = "score",
    cost: str = "examples",
    *,
    select_top: int | None = None,
    select_by: str = "score",
) -> BestSoFar:
    """Cumulative cost and best ``by`` so far, one entry per completed candidate.

    Args:
        records: CandidateRecords or dicts (status "ok"/"failed"; others are ignored), put
            in completion order (``order``, else trial number).
        by: the value tracked: "score", "accuracy"/"P", "tg", "mature_accuracy", ...
        cost: "examples" (the paper's unit), "candidates" or "seconds".
        select_top: if given, the value at each point is the best ``by`` among the current
            top ``select_top`` candidates by ``select_by`` (ties: lower trial number) - what a
            search would return then - rather than the best ``by`` over all seen.
    """
    recs = _completion_order(records)
    c = np.cumsum([_cost(r, cost) for r in recs], dtype=np.float64)
    numbers = np.asarray([r.number for r in recs], dtype=np.int64)
    vals = np.asarray(
        [np.nan if not r.ok or r.value(by) is None else r.value(by) for r in recs], dtype=np.float64
    )
    if select_top is None:
        best = np.fmax.accumulate(vals) if vals.size else vals
        return BestSoFar(c, best, numbers)
    if select_top < 1:
        raise InputError(f"select_top must be >= 1, got {select_top}")
    heap: list[tuple[float, int, float]] = []  # min-heap of the current top by select_by
    best = np.full(len(recs), np.nan)
    for i, r in enumerate(recs):
        key = r.value(select_by) if r.ok else None
        if key is not None:
            item = (key, -r.number, vals[i])
            if len(heap) < select_top:
                heapq.heappush(heap, item)
            elif item[:2] > heap[0][:2]:
                heapq.heapreplace(heap, item)
        tracked = [v for _, _, v in heap if np.isfinite(v)]
        best[i] = max(tracked) if tracked else np.nan
    return BestSoFar(c, best, numbers)


def step_values(curve: BestSoFar, grid: np.ndarray, hold: bool = False) -> np.ndarray:
    """The step function of ``curve`` read at ``grid`` costs: the last value reached at or
    below each cost (NaN before the first candidate, and past the run's end unless ``hold``)."""
    grid = np.asarray(grid, dtype=np.float64)
    if curve.cost.size == 0:
        return np.full(grid.shape, np.nan)
    idx = np.searchsorted(curve.cost, grid, side="right") - 1
    out = np.where(idx >= 0, curve.best[np.clip(idx, 0, None)], np.nan)
    if not hold:
        out = np.where(grid <= curve.cost[-1], out, np.nan)
    return out


@dataclass
class SearchCurve:
    """Several runs of one kind of search on a common cost grid."""

    label: str
    grid: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    n_runs: np.ndarray  # runs contributing at each grid point
    runs: np.ndarray  # (runs, grid) step values

    def at(self, cost: float) -> tuple[float, float, int]:
        """(mean, std, runs) at the last grid point not beyond ``cost``."""
        i = int(np.searchsorted(self.grid, cost, side="right") - 1)
        if i < 0:
            return float("nan"), float("nan"), 0
        return float(self.mean[i]), float(self.std[i]), int(self.n_runs[i])


def compare_searches(
    groups: Mapping[str, Sequence[Iterable[Any]]],
    by: str = "score",
    cost: str = "examples",
    *,
    grid: Sequence[float] | np.ndarray | None = None,
    n_grid: int = 200,
    until: str = "shortest",
    select_top: int | None = None,
    select_by: str = "score",
) -> dict[str, SearchCurve]:
    """Mean +- std (sample std, ddof=1) of best-so-far across each label's runs on one grid.

    ``groups``: label -> list of runs, each run a list of records. The default grid has
    ``n_grid`` points from 0 to the cost of the shortest run of all (``until="shortest"``:
    equal cost for every search), or of the longest (``"longest"``; a run then contributes
    only up to its own end). Runs hold their value between candidates (step function).
    """
    curves = {
        label: [
            best_so_far(run, by, cost, select_top=select_top, select_by=select_by) for run in runs
        ]
        for label, runs in groups.items()
    }
    ends = [c.cost[-1] for cs in curves.values() for c in cs if c.cost.size]
    if grid is None:
        if not ends:
            raise InputError("compare_searches: no completed candidates in any run")
        if until not in ("shortest", "longest"):
            raise InputError(f"until must be 'shortest' or 'longest', not {until!r}")
        hi = min(ends) if until == "shortest" else max(ends)
        grid = np.linspace(0.0, hi, n_grid)
    g = np.asarray(grid, dtype=np.float64)
    out = {}
    for label, cs in curves.items():
        runs = np.vstack([step_values(c, g) for c in cs]) if cs else np.full((0, g.size), np.nan)
        n = np.isfinite(runs).sum(axis=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(runs, axis=0) if runs.size else np.full(g.size, np.nan)
            std = np.nanstd(runs, axis=0, ddof=1) if runs.shape[0] > 1 else np.zeros(g.size)
        std = np.where(n > 1, std, 0.0)
        out[label] = SearchCurve(label, g, mean, std, n, runs)
    return out


def table_at_cost(
    curves: Mapping[str, SearchCurve], cost: float | None = None
) -> list[dict[str, Any]]:
    """Table-1 style rows: each label's mean +- std at ``cost`` (default: the grid's end)."""
    rows = []
    for label, c in curves.items():
        at = float(c.grid[-1]) if cost is None else float(cost)
        mean, std, n = c.at(at)
        rows.append({"search": label, "cost": at, "mean": mean, "std": std, "runs": n})
    return rows
