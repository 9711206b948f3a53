"""Predictivity of training-free scores on NAS-Bench-201, from the records of
``zero_cost_nb201.py``: agreement with NAS-Bench-Suite-Zero, single scores, and label-free
combinations chosen on one half of the cells and reported on the other.

    python benchmarks/studies/zero_cost_analysis.py --data-dir ../shared/data \\
        --records benchmarks/results/zero_cost_nb201_cifar10.jsonl --dataset cifar10

**Split (fixed, written down before looking):** a seeded permutation (``SPLIT_SEED = 2012``) of
all rows of ``nats-bench-tss-dev.csv``; a cell is in the *selection* half when its position in
that permutation is even, in the *report* half when odd. Combinations, weights and score
subsets are chosen on the selection half only; every number reported on the report half comes
from ranks computed within the report half (a user ranks their own population).

**Metrics** against the 200-epoch test accuracy of the table: Spearman, Kendall tau-b,
nDCG@k with the exponential gain ``2^acc - 1`` (accuracy in percent, as the VKDNW paper's nDCG)
and precision@k (the share of the true top k in the predicted top k); 95% percentile bootstrap
intervals over cells (1,000 resamples); paired differences on the same resamples.
**Combinations** (all label-free at use): sums of log-ranks (AZ-NAS's aggregation), mean
ranks, and weighted log-rank sums. The published aggregations are fixed in advance: AZ-NAS =
log-ranks of az_expressivity, az_progressivity, az_trainability, flops; VKDNW_agg = log-ranks
of vkdnw_single, az_expressivity, az_trainability, jacob_cov, flops. Score subsets and weights
are found by greedy forward selection / coordinate search on the selection half.

Undefined (NaN) and -inf scores rank last. The rank-aggregation code lives here until the
score vocabulary (``tgsage.scores``) offers it.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

import numpy as np
import scipy.stats as sps
from zero_cost_nb201 import read_records

from tgsage.experiments.stats import bootstrap_indices, kendall_tau_b, precision_at_k, spearman

SPLIT_SEED = 2012
TABLE = "nats-bench-tss-dev.csv"
SUITE_ZERO = "nb201-zero-cost-cifar10.csv"
ACCURACY = {"cifar10": "CIFAR10TestAccuracy200Epochs", "cifar100": "CIFAR100TestAccuracy200Epochs"}
#: Our proxy name -> NAS-Bench-Suite-Zero column.
SUITE_NAMES = {
    "synflow": "synflow",
    "naswot": "nwot",
    "jacob_cov": "jacov",
    "grad_norm": "grad_norm",
    "snip": "snip",
    "params": "params",
    "flops": "flops",
}
PUBLISHED = {
    "AZ-NAS": ["az_expressivity", "az_progressivity", "az_trainability", "flops"],
    "VKDNW_agg": ["vkdnw_single", "az_expressivity", "az_trainability", "jacob_cov", "flops"],
    "jacob_cov+params": ["jacob_cov", "params"],
}
K = 50
N_BOOT = 1000


# ---------------------------------------------------------------------- data
def load_records(paths: list[Path], dataset: str, seed: int) -> dict[str, dict[str, float]]:
    """``{arch: {score: value}}`` merging the score sets of ``seed``."""
    out: dict[str, dict[str, float]] = {}
    for path in paths:
        for r in read_records(path):
            if r["dataset"] == dataset and r["seed"] == seed:
                out.setdefault(r["arch"], {}).update(r["scores"])
    return out


def load_table(data_dir: Path) -> list[dict[str, str]]:
    with open(data_dir / TABLE, newline="") as fh:
        return list(csv.DictReader(fh))


def split_of(rows: list[dict[str, str]]) -> dict[str, str]:
    """``{arch: "selection" | "report"}`` by the fixed seeded rule."""
    perm = np.random.default_rng(SPLIT_SEED).permutation(len(rows))
    return {
        rows[i]["ArchitectureString"]: ("selection" if pos % 2 == 0 else "report")
        for pos, i in enumerate(perm)
    }


# ---------------------------------------------------------------------- ranks and metrics
def ranks(v: np.ndarray) -> np.ndarray:
    """Average ranks, 1 = worst; NaN and -inf rank last (tied)."""
    v = np.where(np.isnan(v), -np.inf, v)
    return sps.rankdata(v, axis=-1)


def log_rank_sum(columns: list[np.ndarray], weights: list[float] | None = None) -> np.ndarray:
    """AZ-NAS's aggregation: sum of (weighted) log(rank / n)."""
    n = columns[0].shape[-1]
    weights = weights or [1.0] * len(columns)
    return sum(w * np.log(ranks(c) / n) for w, c in zip(weights, columns, strict=True))


def mean_rank(columns: list[np.ndarray]) -> np.ndarray:
    return sum(ranks(c) for c in columns) / len(columns)


def ndcg_at_k(score: np.ndarray, acc: np.ndarray, k: int) -> np.ndarray:
    """nDCG@k with gain 2^acc - 1 (acc in percent), rows along the last axis."""
    score = np.atleast_2d(score)
    acc = np.atleast_2d(acc)
    gain = np.exp2(acc) - 1
    k = min(k, score.shape[-1])
    disc = 1 / np.log2(np.arange(2, k + 2))
    pred = np.argsort(-np.where(np.isnan(score), -np.inf, score), axis=-1, kind="stable")[:, :k]
    ideal = np.sort(gain, axis=-1)[:, ::-1][:, :k]
    dcg = (np.take_along_axis(gain, pred, axis=-1) * disc).sum(-1)
    return dcg / (ideal * disc).sum(-1)


def _spearman(s: np.ndarray, a: np.ndarray) -> np.ndarray:
    return spearman(np.where(np.isnan(s), -np.inf, s), a)


def metrics(score: np.ndarray, acc: np.ndarray, idx: np.ndarray) -> dict[str, tuple]:
    """Point value and 95% bootstrap interval of each metric (resamples ``idx``)."""
    s = np.where(np.isnan(score), -np.inf, score)
    rank_s = ranks(s)  # -inf is not a number Kendall or the bootstrap can order
    out = {}
    fns = {
        "spearman": lambda x, y: _spearman(x, y),
        "kendall": lambda x, y: kendall_tau_b(x, y),
        f"ndcg@{K}": lambda x, y: ndcg_at_k(x, y, K),
        f"precision@{K}": lambda x, y: precision_at_k(x, y, min(K, x.shape[-1])),
    }
    for name, fn in fns.items():
        point = float(np.ravel(fn(rank_s, acc))[0])
        boot = np.ravel(fn(rank_s[idx], acc[idx]))
        lo, hi = np.nanpercentile(boot, [2.5, 97.5])
        out[name] = (point, float(lo), float(hi))
    return out


def paired_difference(a: np.ndarray, b: np.ndarray, acc: np.ndarray, idx: np.ndarray) -> tuple:
    """Spearman(a) - Spearman(b) with a paired bootstrap interval."""
    ra, rb = ranks(a), ranks(b)
    point = float(_spearman(ra, acc) - _spearman(rb, acc))
    diff = _spearman(ra[idx], acc[idx]) - _spearman(rb[idx], acc[idx])
    lo, hi = np.nanpercentile(diff, [2.5, 97.5])
    return point, float(lo), float(hi)


# ---------------------------------------------------------------------- selection
def greedy(
    cols: dict[str, np.ndarray], acc: np.ndarray, combine: str, max_terms: int = 8
) -> tuple[list[str], float]:
    """Forward selection of the score subset whose log-rank sum (or mean rank) has the best
    Spearman on these cells."""
    chosen: list[str] = []
    best = -math.inf
    agg = log_rank_sum if combine == "logrank" else mean_rank
    while len(chosen) < max_terms:
        trial = {
            n: float(_spearman(agg([cols[c] for c in [*chosen, n]]), acc))
            for n in cols
            if n not in chosen
        }
        if not trial:
            break
        name, value = max(trial.items(), key=lambda kv: kv[1])
        if value <= best + 1e-4:
            break
        chosen.append(name)
        best = value
    return chosen, best


def fit_weights(
    cols: dict[str, np.ndarray], names: list[str], acc: np.ndarray, rounds: int = 3
) -> tuple[list[float], float]:
    """Coordinate search of log-rank weights on a grid (Spearman is piecewise constant)."""
    grid = [0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0]
    weights = [1.0] * len(names)
    columns = [cols[n] for n in names]
    best = float(_spearman(log_rank_sum(columns, weights), acc))
    for _ in range(rounds):
        improved = False
        for i in range(len(names)):
            for w in grid:
                trial = [*weights[:i], w, *weights[i + 1 :]]
                if not any(trial):
                    continue
                value = float(_spearman(log_rank_sum(columns, trial), acc))
                if value > best + 1e-5:
                    best, weights, improved = value, trial, True
        if not improved:
            break
    return weights, best


# ---------------------------------------------------------------------- report
def fmt(t: tuple) -> str:
    return f"{t[0]:.3f} [{t[1]:.3f}, {t[2]:.3f}]"


def suite_zero_agreement(data_dir: Path, recs: dict[str, dict[str, float]]) -> None:
    path = data_dir / SUITE_ZERO
    with open(path, newline="") as fh:
        suite = {r["net_str"]: r for r in csv.DictReader(fh)}
    shared = [a for a in recs if a in suite]
    print(f"\n## Agreement with NAS-Bench-Suite-Zero ({len(shared)} shared cells)\n")
    print("| proxy | Suite-Zero column | Spearman between implementations | n |")
    print("|---|---|---|---|")
    for ours, theirs in SUITE_NAMES.items():
        pairs = [
            (recs[a][ours], float(suite[a][theirs]))
            for a in shared
            if ours in recs[a] and suite[a][theirs] not in ("", "nan")
        ]
        if len(pairs) < 3:
            continue
        x, y = np.array(pairs).T
        rho = float(_spearman(x, y))
        print(f"| {ours} | {theirs} | {rho:.3f} | {len(pairs)} |")
    acc = np.array([float(suite[a]["val_acc"]) for a in shared])
    lr = log_rank_sum(
        [
            np.array([float(suite[a]["jacov"]) for a in shared]),
            np.array([float(suite[a]["params"]) for a in shared]),
        ]
    )
    print(
        f"\nOn those cells, Suite-Zero's own jacov+params log-rank sum vs its val_acc: "
        f"Spearman {float(_spearman(lr, acc)):.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--records", type=Path, nargs="+", required=True)
    parser.add_argument("--dataset", choices=sorted(ACCURACY), default="cifar10")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    recs = load_records(args.records, args.dataset, args.seed)
    rows = load_table(args.data_dir)
    truth = {r["ArchitectureString"]: float(r[ACCURACY[args.dataset]]) for r in rows}
    half = split_of(rows)
    if args.dataset == "cifar10":
        suite_zero_agreement(args.data_dir, recs)
    names = sorted({n for r in recs.values() for n in r})
    complete = [a for a, r in recs.items() if a in truth and all(n in r for n in names)]
    parts = {h: [a for a in complete if half[a] == h] for h in ("selection", "report")}
    print(
        f"\n{len(recs)} cells with records; {len(complete)} with every score "
        f"({', '.join(names)}); selection {len(parts['selection'])}, "
        f"report {len(parts['report'])}"
    )

    def columns(archs: list[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        cols = {n: np.array([recs[a][n] for a in archs], dtype=np.float64) for n in names}
        return cols, np.array([truth[a] for a in archs])

    sel, acc_sel = columns(parts["selection"])
    rep, acc_rep = columns(parts["report"])
    idx = bootstrap_indices(len(acc_rep), N_BOOT, seed=0)
    # ---- choose on the selection half
    combos: dict[str, tuple[list[str], list[float] | None, str]] = {
        k: (v, None, "logrank") for k, v in PUBLISHED.items() if all(n in names for n in v)
    }
    g_lr, v_lr = greedy(sel, acc_sel, "logrank")
    g_mr, v_mr = greedy(sel, acc_sel, "meanrank")
    w, v_w = fit_weights(sel, g_lr, acc_sel)
    combos["greedy log-rank sum"] = (g_lr, None, "logrank")
    combos["greedy mean rank"] = (g_mr, None, "meanrank")
    combos["weighted log-rank sum"] = (g_lr, w, "logrank")
    print("\n## Chosen on the selection half\n")
    print(f"- greedy log-rank sum: {g_lr} (selection Spearman {v_lr:.3f})")
    print(f"- greedy mean rank: {g_mr} (selection Spearman {v_mr:.3f})")
    print(f"- weighted log-rank sum: {dict(zip(g_lr, w, strict=True))} (selection {v_w:.3f})")
    # ---- report
    results: dict[str, dict] = {}
    scored: dict[str, np.ndarray] = {}
    for n in names:
        scored[n] = rep[n]
    for label, (members, weights, kind) in combos.items():
        cols = [rep[m] for m in members]
        scored[label] = log_rank_sum(cols, weights) if kind == "logrank" else mean_rank(cols)
    print(f"\n## Report half ({len(acc_rep)} cells), {args.dataset} 200-epoch test accuracy\n")
    print(f"| score | Spearman | Kendall | nDCG@{K} | precision@{K} |")
    print("|---|---|---|---|---|")
    order = sorted(scored, key=lambda s: -float(_spearman(ranks(scored[s]), acc_rep)))
    for s in order:
        m = metrics(scored[s], acc_rep, idx)
        results[s] = m
        print(f"| {s} | " + " | ".join(fmt(m[k]) for k in m) + " |")
    best = order[0]
    print("\n## Paired differences of Spearman on the report half (bootstrap)\n")
    print("| comparison | difference [95%] |")
    print("|---|---|")
    for other in [o for o in ("VKDNW_agg", "AZ-NAS", "jacob_cov+params") if o in scored]:
        if other != best:
            d = paired_difference(scored[best], scored[other], acc_rep, idx)
            results[f"{best} - {other}"] = {"spearman": d}
            print(f"| {best} - {other} | {fmt(d)} |")
    singles = [s for s in order if s in names]
    if singles and singles[0] != best:
        d = paired_difference(scored[best], scored[singles[0]], acc_rep, idx)
        print(f"| {best} - {singles[0]} (best single) | {fmt(d)} |")
    if args.json:
        args.json.write_text(json.dumps({"n_report": len(acc_rep), "results": results}, indent=1))


if __name__ == "__main__":
    main()
