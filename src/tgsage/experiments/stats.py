"""How well a cheap score predicts mature accuracy (paper 4.1, Figs. 2-3), with intervals.

For every (premature budget, score) pair, :func:`predictivity_table` reports the Pearson r,
Spearman rho, Kendall tau-b and precision@k of the score against the target (mature accuracy)
over the architectures that have both values, each with a percentile bootstrap 95% interval.

Bootstrap: architectures are resampled with replacement, ``n_boot`` times, from a seeded
``numpy.random.Generator``; every statistic of one (budget, score) pair uses the same
resamples. The whole bootstrap is array operations, no Python loop over resamples:

* Pearson: centred sums over a (n_boot, n) array;
* Spearman: ``scipy.stats.rankdata(..., axis=1)`` ranks every resample at once (average ranks
  for ties, as scipy's ``spearmanr``), then the Pearson formula on the ranks;
* Kendall tau-b: for pools up to :data:`PAIRWISE_MAX_N` architectures, pairwise signs
  ``sign(x_i - x_j) * sign(y_i - y_j)`` summed over pairs for all resamples at once (chunked
  to ~``chunk_elements`` floats); above that, scipy's O(n log n) ``kendalltau`` in a loop over
  resamples is faster than the O(n^2) arrays (measured: ~0.3 s per 1000 resamples at n=116
  to 500). ``n_boot_kendall`` can lower the Kendall resample count for very large pools;
* precision@k: top-k masks from one stable argsort per resample.

Resamples in which a statistic is undefined (a constant score, e.g. every resample of a tiny
pool drawing one architecture) are left out of that interval (``nanpercentile``).

precision@k = |true top-k ∩ predicted top-k| / k, true top-k by the target, predicted top-k by
the score, both descending. Ties are broken by pool order (the record that comes first in the
input wins), which makes the value deterministic; k is capped at the number of architectures.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from tgsage.errors import InputError
from tgsage.experiments.records import PoolRecord

METRICS = ("pearson", "spearman", "kendall", "precision_at_k", "ndcg_at_k")
DEFAULT_CHUNK = 4_000_000
INIT = "init"  # the budget label of zero-cost proxies (measured once, at initialisation)
PAIRWISE_MAX_N = 100  # measured crossover: pairwise arrays win below, scipy's loop above


# ---------------------------------------------------------------------- point statistics
def pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r along the last axis (NaN where either side is constant)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    sx = np.sqrt((xc * xc).sum(axis=-1))
    sy = np.sqrt((yc * yc).sum(axis=-1))
    # "constant" relative to the data's scale: float centring leaves ~1 ulp residues
    tol = 1e-12 * np.sqrt(x.shape[-1])
    ok = (sx > tol * np.abs(x).max(axis=-1)) & (sy > tol * np.abs(y).max(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * yc).sum(axis=-1) / (sx * sy)
    r = np.where(ok, r, np.nan)
    return np.clip(r, -1.0, 1.0)


def spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman rho along the last axis: Pearson of average ranks (scipy's definition)."""
    return pearson(sps.rankdata(x, axis=-1), sps.rankdata(y, axis=-1))


def kendall_tau_b(x: np.ndarray, y: np.ndarray, chunk_elements: int = DEFAULT_CHUNK) -> np.ndarray:
    """Kendall tau-b along the last axis (scipy's default variant), by pairwise signs.

    tau-b = sum_ij s_x s_y / sqrt(sum_ij s_x^2 * sum_ij s_y^2) with s = sign of the pair
    difference; pairs tied in x drop out of the x term, as in scipy.
    """
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    b, n = x.shape
    out = np.full(b, np.nan)
    if n < 2:
        return out
    if n > PAIRWISE_MAX_N:  # scipy's O(n log n) per row beats O(n^2) array work here
        for i in range(b):
            out[i] = sps.kendalltau(x[i], y[i]).statistic
        return out
    iu, ju = np.triu_indices(n, 1)  # each pair once
    step = max(1, chunk_elements // iu.size)
    for s in range(0, b, step):
        sx = np.sign(x[s : s + step, iu] - x[s : s + step, ju]).astype(np.float32)
        sy = np.sign(y[s : s + step, iu] - y[s : s + step, ju]).astype(np.float32)
        num = np.einsum("bp,bp->b", sx, sy, dtype=np.float64)
        den = np.sqrt(
            np.abs(sx).sum(axis=1, dtype=np.float64) * np.abs(sy).sum(axis=1, dtype=np.float64)
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            out[s : s + step] = np.where(den > 0, num / den, np.nan)
    return out


def _top_mask(v: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask of the k largest per row; ties to the lower index (stable sort)."""
    order = np.argsort(-v, axis=-1, kind="stable")[..., :k]
    mask = np.zeros(v.shape, dtype=bool)
    np.put_along_axis(mask, order, True, axis=-1)
    return mask


def precision_at_k(score: np.ndarray, target: np.ndarray, k: int) -> np.ndarray:
    """Fraction of the true top-k (by ``target``) inside the predicted top-k (by ``score``)."""
    score = np.asarray(score, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    k = min(int(k), score.shape[-1])
    if k < 1:
        raise InputError(f"precision@k needs k >= 1, got {k}")
    hit = _top_mask(score, k) & _top_mask(target, k)
    return hit.sum(axis=-1) / k


def ndcg_at_k(score: np.ndarray, target: np.ndarray, k: int) -> np.ndarray:
    """nDCG@k along the last axis: the discounted gain of the top-k by ``score`` over that of
    the true top-k, gain ``2^(100 a) - 1`` for a mature accuracy ``a`` (a fraction; the
    zero-cost analysis's gain on accuracies in percent), discount ``1 / log2(rank + 1)``. The
    gain weighs the very best architectures most: 1.0 means the predicted top-k holds the
    best architectures in the right order. Ties in ``score`` go to the lower index."""
    score = np.asarray(score, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    k = min(int(k), score.shape[-1])
    if k < 1:
        raise InputError(f"nDCG@k needs k >= 1, got {k}")
    gain = np.exp2(100.0 * target) - 1.0
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    pred = np.argsort(-score, axis=-1, kind="stable")[..., :k]
    ideal = -np.sort(-gain, axis=-1)[..., :k]
    dcg = (np.take_along_axis(gain, pred, axis=-1) * disc).sum(-1)
    best = (ideal * disc).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(best > 0, dcg / best, np.nan)


# ---------------------------------------------------------------------- bootstrap
@dataclass
class Estimate:
    """A point estimate with its percentile bootstrap interval."""

    value: float
    low: float
    high: float


def bootstrap_indices(n: int, n_boot: int, seed: int | np.random.Generator = 0) -> np.ndarray:
    """(n_boot, n) resampling indices (architectures drawn with replacement)."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return rng.integers(0, n, size=(n_boot, n))


def _interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return float("nan"), float("nan")
    q = 100 * (1 - level) / 2
    lo, hi = np.percentile(finite, [q, 100 - q])
    return float(lo), float(hi)


def correlation_estimates(
    score: Sequence[float] | np.ndarray,
    target: Sequence[float] | np.ndarray,
    *,
    k: int = 5,
    n_boot: int = 1000,
    n_boot_kendall: int | None = None,
    seed: int | np.random.Generator = 0,
    level: float = 0.95,
) -> dict[str, Estimate]:
    """Pearson, Spearman, Kendall tau-b, precision@k and nDCG@k of ``score`` vs ``target``
    with percentile bootstrap intervals (see the module docstring)."""
    x = np.asarray(score, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise InputError(f"score and target must be 1-D of one length, got {x.shape} and {y.shape}")
    n = x.size
    point = {
        "pearson": float(pearson(x, y)) if n >= 2 else float("nan"),
        "spearman": float(spearman(x, y)) if n >= 2 else float("nan"),
        "kendall": float(kendall_tau_b(x, y)[0]) if n >= 2 else float("nan"),
        "precision_at_k": float(precision_at_k(x, y, k)) if n >= 1 else float("nan"),
        "ndcg_at_k": float(ndcg_at_k(x, y, k)) if n >= 1 else float("nan"),
    }
    if n < 2 or n_boot < 1:
        return {m: Estimate(v, float("nan"), float("nan")) for m, v in point.items()}
    idx = bootstrap_indices(n, n_boot, seed)
    xb, yb = x[idx], y[idx]
    nk = n_boot if n_boot_kendall is None else max(1, min(n_boot, n_boot_kendall))
    boot = {
        "pearson": pearson(xb, yb),
        "spearman": spearman(xb, yb),
        "kendall": kendall_tau_b(xb[:nk], yb[:nk]),
        "precision_at_k": precision_at_k(xb, yb, k),
        "ndcg_at_k": ndcg_at_k(xb, yb, k),
    }
    return {m: Estimate(point[m], *_interval(boot[m], level)) for m in METRICS}


@dataclass
class PairedDifference:
    """``metric(a) - metric(b)`` on the same architectures, with a paired bootstrap interval
    (both scores see the same resamples)."""

    metric: str
    a: float
    b: float
    difference: float
    low: float
    high: float
    n: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_METRIC_FNS = {
    "pearson": lambda x, y, k: pearson(x, y),
    "spearman": lambda x, y, k: spearman(x, y),
    "kendall": lambda x, y, k: kendall_tau_b(x, y),
    "precision_at_k": lambda x, y, k: precision_at_k(x, y, k),
    "ndcg_at_k": lambda x, y, k: ndcg_at_k(x, y, k),
}


def paired_difference(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    target: Sequence[float] | np.ndarray,
    *,
    metric: str = "spearman",
    k: int = 5,
    n_boot: int = 2000,
    seed: int | np.random.Generator = 0,
    level: float = 0.95,
) -> PairedDifference:
    """How much better score ``a`` predicts ``target`` than score ``b`` does (paired
    bootstrap over architectures: both scores are resampled together)."""
    if metric not in _METRIC_FNS:
        raise InputError(f"metric must be one of {METRICS}, not {metric!r}")
    xa, xb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    if not (xa.shape == xb.shape == y.shape) or y.ndim != 1:
        raise InputError(f"a, b and target must be 1-D of one length: {xa.shape}, {xb.shape}")
    fn = _METRIC_FNS[metric]
    va, vb = float(np.ravel(fn(xa, y, k))[0]), float(np.ravel(fn(xb, y, k))[0])
    idx = bootstrap_indices(y.size, n_boot, seed)
    diff = np.ravel(fn(xa[idx], y[idx], k)) - np.ravel(fn(xb[idx], y[idx], k))
    return PairedDifference(metric, va, vb, va - vb, *_interval(diff, level), int(y.size))


# ---------------------------------------------------------------------- tables over a pool
@dataclass
class PredictivityRow:
    """How well one score at one budget predicts the target over ``n`` architectures."""

    budget: str
    score: str
    n: int
    k: int
    pearson: float
    pearson_low: float
    pearson_high: float
    spearman: float
    spearman_low: float
    spearman_high: float
    kendall: float
    kendall_low: float
    kendall_high: float
    precision_at_k: float
    precision_at_k_low: float
    precision_at_k_high: float
    ndcg_at_k: float = float("nan")
    ndcg_at_k_low: float = float("nan")
    ndcg_at_k_high: float = float("nan")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def estimate(self, metric: str) -> Estimate:
        return Estimate(
            getattr(self, metric), getattr(self, f"{metric}_low"), getattr(self, f"{metric}_high")
        )


def _pool(records: Iterable[Any]) -> list[PoolRecord]:
    out = []
    for r in records:
        rec = r if isinstance(r, PoolRecord) else PoolRecord.from_dict(r)
        if rec.ok:
            out.append(rec)
    return out


def pool_budgets(records: Iterable[Any]) -> list[str]:
    """Budgets in the order they first appear (the order they were trained in)."""
    seen: dict[str, None] = {}
    for r in _pool(records):
        for b in r.budgets:
            seen.setdefault(b, None)
    return list(seen)


def pool_scores(records: Iterable[Any]) -> list[str]:
    """The default scores: P, TG, P+TG, the TG variants, S_<layer> of every teacher layer,
    SoTL, SoTL-E, P-slope and every zero-cost proxy - whatever the records measured."""
    recs = _pool(records)
    seen: dict[str, None] = {}
    for r in recs:
        for b in r.budgets:
            seen.update(dict.fromkeys(r.scores_at(b)))
        seen.update(dict.fromkeys(r.scores_at("")))  # proxies of records without budgets
    from tgsage.scores.names import parse_name

    fams: dict[str, list[str]] = {}
    for name in seen:
        fams.setdefault(parse_name(name).family, []).append(name)
    scores = ["P"] if "P" in seen else []
    if "TG" in seen:
        scores += ["TG", "P+TG"] if "P" in seen else ["TG"]
    scores += [n for n in fams.get("TG", []) if n != "TG"]
    scores += [n for n in fams.get("S", []) if n.startswith("S_")]
    scores += [n for n in fams.get("S", []) if not n.startswith("S_")]
    scores += [n for n in ("SoTL", "SoTL-E", "P-slope") if n in seen]
    return scores + fams.get("proxy", [])


def is_proxy_score(score: str) -> bool:
    """Whether ``score`` reads zero-cost proxies only (one value per architecture, any budget:
    reported once, with budget ``"init"``)."""
    from tgsage.scores import parse_name, parse_score

    names = parse_score(score).names
    return bool(names) and all(parse_name(n).is_proxy for n in names)


def pool_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks within the pool scaled to (0, 1] (average ranks for ties): puts a proxy on the
    scale of an accuracy, so ``P + alpha*TG + beta*rank(proxy)`` mixes like terms."""
    return sps.rankdata(x) / max(x.size, 1)


def _spec(text: str | None) -> Any:
    from tgsage.spaces.specs import spec_from_json

    return spec_from_json(text) if text else None


def pool_population(
    records: Iterable[Any],
    budget: str,
    names: Sequence[str] = (),
    *,
    teacher: str | None = None,
    specs: bool = False,
) -> tuple[Any, list[PoolRecord]]:
    """The :class:`~tgsage.scores.Population` of the ok records that have mature accuracy and
    every base score in ``names`` at ``budget`` (pool order), and those records."""
    from tgsage.scores import Population

    rows, kept = [], []
    for r in _pool(records):
        if r.mature_accuracy is None:
            continue
        vals = r.scores_at(budget, teacher)
        if any(n not in vals for n in names):
            continue
        rows.append(vals)
        kept.append(r)
    pop = Population.from_rows(
        rows,
        specs=[_spec(r.spec) for r in kept] if specs else None,
        target=[r.mature_accuracy for r in kept],
    )
    return pop, kept


def _columns(
    recs: list[PoolRecord],
    budget: str,
    scores: Sequence[str],
    target: str,
    alpha: float = 1.0,
    beta: float = 1.0,
    *,
    teacher: str | None = None,
    fit: Any = None,
    reference: Sequence[Any] | None = None,
) -> tuple[list[np.ndarray], np.ndarray]:
    """The scores and the target of the architectures that have every base score the
    expressions read, in pool order (pool order is the tie-break order of precision@k).

    Scores are :mod:`tgsage.scores` expressions; population terms (``rank``, ``meanrank``,
    ``logrank``) are taken over the architectures kept, fitted combiners are cross-validated
    within them (or trained on ``reference`` records). The old ``"<base>+rank(<proxy>)"`` is
    ``base + beta * rank(proxy)`` and ``P+TG`` is ``P + alpha*TG``.
    """
    from tgsage.scores import evaluate, parse_score

    if target != "mature_accuracy":
        raise InputError(f"unknown target {target!r}; the target is 'mature_accuracy'")
    exprs = [parse_score(s, alpha=alpha, beta=beta) for s in scores]
    names = list(dict.fromkeys(n for e in exprs for n in e.names))
    ops = any(e.uses_ops for e in exprs)
    pop, kept = pool_population(recs, budget, names, teacher=teacher, specs=ops)
    ref = None
    if reference is not None:
        ref, _ = pool_population(reference, budget, names, teacher=teacher, specs=ops)
    y = np.array([r.mature_accuracy for r in kept], dtype=np.float64)
    if not kept:
        return [np.zeros(0) for _ in exprs], y
    for n in names:
        pop.column(n)  # an unmeasured name fails here, naming what was measured
    return [evaluate(e, pop, ref, fit) for e in exprs], y


def predictivity_table(
    records: Iterable[Any],
    target: str = "mature_accuracy",
    scores: Sequence[str] | None = None,
    *,
    budgets: Sequence[str] | None = None,
    k: int = 5,
    alpha: float = 1.0,
    beta: float = 1.0,
    n_boot: int = 1000,
    n_boot_kendall: int | None = None,
    seed: int = 0,
    level: float = 0.95,
    teacher: str | None = None,
    fit: Any = None,
    reference: Iterable[Any] | None = None,
) -> list[PredictivityRow]:
    """One row per (budget, score): correlations and precision@k with bootstrap intervals.

    ``records`` are :class:`PoolRecord` (or their dicts); failed ones are left out, and so is
    an architecture missing the score at that budget (``n`` says how many remained).
    ``scores`` default: P, TG, P+TG (with ``alpha``), S:<layer> for every teacher layer and
    Z:<proxy> for every zero-cost proxy measured. A proxy alone does not depend on the budget:
    it gets one row, with budget ``"init"``. ``"<score>+rank(<proxy>)"`` adds
    ``beta * pool_ranks(proxy)`` (e.g. ``"P+TG+rank(synflow)"``).
    Every (budget, score) pair uses its own generator seeded from ``seed`` and the pair, so a
    row does not change when other scores are added.

    Scores are any :mod:`tgsage.scores` expressions (``"P + 0.5*TG"``, ``"meanrank(synflow,
    TG)"``, ``"ridge(synflow, naswot, P, ops)"``). ``teacher`` picks whose guidance TG and
    S_i are (records measured against several). Fitted combiners are cross-validated within
    the pool with ``fit`` (:class:`~tgsage.scores.FitOptions`: at most ``labels`` labelled
    architectures per fit), or trained on the labelled ``reference`` records (e.g. the
    selection half of a study) and reported on ``records``.
    """
    recs = _pool(records)
    ref = _pool(reference) if reference is not None else None
    budgets = list(budgets) if budgets is not None else pool_budgets(recs)
    defaulted = scores is None
    scores = list(scores) if scores is not None else pool_scores(recs)
    pairs = [(INIT, s) for s in scores if is_proxy_score(s)]
    pairs += [(b, s) for b in budgets for s in scores if not is_proxy_score(s)]
    rows = []
    for budget, score in pairs:
        bi = 2**31 if budget == INIT else budgets.index(budget)
        (x,), y = _columns(
            recs, budget, [score], target, alpha, beta, teacher=teacher, fit=fit, reference=ref
        )
        ok = ~np.isnan(x)
        x, y = x[ok], y[ok]
        if defaulted and x.size == 0:
            continue  # e.g. P-slope at the first budget: not defined there
        rng = np.random.default_rng([seed, bi, _stable_id(score)])
        est = correlation_estimates(
            x, y, k=k, n_boot=n_boot, n_boot_kendall=n_boot_kendall, seed=rng, level=level
        )
        flat: dict[str, float] = {}
        for m in METRICS:
            e = est[m]
            flat[m], flat[f"{m}_low"], flat[f"{m}_high"] = e.value, e.low, e.high
        rows.append(
            PredictivityRow(
                budget=budget, score=score, n=int(x.size), k=min(k, int(x.size)), **flat
            )
        )
    return rows


@dataclass
class SideBySide:
    """One metric of a predictivity table as a (score x budget) grid, for side-by-side
    comparison; zero-cost proxies (budget "init") repeat their one value in every column."""

    metric: str
    scores: list[str]
    budgets: list[str]
    value: np.ndarray  # (len(scores), len(budgets)); NaN where not measured
    low: np.ndarray
    high: np.ndarray
    n: np.ndarray  # architectures behind each cell (0 = none)


def side_by_side(rows: Sequence[PredictivityRow], metric: str = "spearman") -> SideBySide:
    """Arrange :func:`predictivity_table` rows as a score x budget grid of ``metric``."""
    if metric not in METRICS:
        raise InputError(f"metric must be one of {METRICS}, not {metric!r}")
    budgets = list(dict.fromkeys(r.budget for r in rows if r.budget != INIT))
    scores = list(dict.fromkeys(r.score for r in rows))
    shape = (len(scores), max(len(budgets), 1))
    value, low, high = (np.full(shape, np.nan) for _ in range(3))
    n = np.zeros(shape, dtype=np.int64)
    for r in rows:
        i = scores.index(r.score)
        cols = range(shape[1]) if r.budget == INIT else [budgets.index(r.budget)]
        for j in cols:
            value[i, j], low[i, j] = getattr(r, metric), getattr(r, f"{metric}_low")
            high[i, j], n[i, j] = getattr(r, f"{metric}_high"), r.n
    return SideBySide(metric, scores, budgets or [INIT], value, low, high, n)


def _stable_id(text: str) -> int:
    """A process-independent integer for a string (``hash`` is salted per process)."""
    return int.from_bytes(text.encode("utf-8")[:16].ljust(16, b"\0"), "little") % (2**63)


@dataclass
class AlphaRow:
    """Correlation of P + alpha * TG with the target at one budget (paper Fig. 2)."""

    budget: str
    alpha: float
    n: int
    pearson: float
    spearman: float
    kendall: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def alpha_sweep(
    records: Iterable[Any],
    alphas: Sequence[float] = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0),
    *,
    budgets: Sequence[str] | None = None,
    target: str = "mature_accuracy",
) -> list[AlphaRow]:
    """Pearson, Spearman and Kendall tau-b of P + alpha*TG vs the target, per alpha and budget.

    All alphas of one budget are scored in one array operation ((n_alpha, n) scores).
    """
    recs = _pool(records)
    budgets = list(budgets) if budgets is not None else pool_budgets(recs)
    a = np.asarray(list(alphas), dtype=np.float64)
    rows = []
    for budget in budgets:
        (p, tg), y1 = _columns(recs, budget, ["P", "TG"], target)
        x = p[None, :] + a[:, None] * tg[None, :]
        y = np.broadcast_to(y1, x.shape)
        n = int(p.size)
        if n >= 2:
            pr, sr, kt = pearson(x, y), spearman(x, y), kendall_tau_b(x, y)
        else:
            pr = sr = kt = np.full(a.size, np.nan)
        rows += [
            AlphaRow(budget, float(a[i]), n, float(pr[i]), float(sr[i]), float(kt[i]))
            for i in range(a.size)
        ]
    return rows
