"""Predictivity of training-free scores on NAS-Bench-201, from the records of
``zero_cost_nb201.py``: agreement with NAS-Bench-Suite-Zero, single scores, and label-free
combinations chosen on one half of the cells and reported on the other.

    python benchmarks/studies/zero_cost_analysis.py --data-dir ../shared/data \\
        --records benchmarks/results/zero_cost_nb201_cifar10.jsonl \\
        benchmarks/results/zero_cost_nb201_cifar10_az2.jsonl --dataset cifar10

``--target cifar100`` ranks the same scores against the CIFAR-100 column (scores computed on
CIFAR-10 images, as NAS-Bench-Suite-Zero's). Single scores and the published aggregations
involve no choice, so they are also reported on every cell with records.

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
of vkdnw_single, az_expressivity, az_trainability, jacob_cov, flops. Score subsets are found by
greedy forward selection (equal weights), weights by weighted forward selection over a grid
(``WEIGHT_GRID``), both on the selection half only.

Undefined (NaN) and -inf scores rank last. Combinations are score-vocabulary expressions
(``tgsage.scores``: ``logrank(...)``, ``meanrank(...)``, weighted sums; ranks are mid-rank
percentiles within the half), metrics and paired differences come from
``tgsage.experiments.stats``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

import numpy as np
from zero_cost_nb201 import SUPERSEDING, read_records

from tgsage.experiments.stats import correlation_estimates, paired_difference, spearman
from tgsage.proxies import AGGREGATIONS
from tgsage.scores import Population, evaluate, parse_score, percentiles

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
    "AZ-NAS": AGGREGATIONS["az_nas"],
    "VKDNW_agg": AGGREGATIONS["vkdnw_agg"],
    "jacob_cov+params": "logrank(jacob_cov, params)",
}
K = 50
N_BOOT = 1000
METRIC_NAMES = {
    "spearman": "Spearman",
    "kendall": "Kendall",
    "ndcg_at_k": f"nDCG@{K}",
    "precision_at_k": f"precision@{K}",
}


# ---------------------------------------------------------------------- data
def load_records(paths: list[Path], dataset: str, seed: int) -> dict[str, dict[str, float]]:
    """``{arch: {score: value}}`` merging the score sets of ``seed``."""
    out: dict[str, dict[str, float]] = {}
    records = [r for path in paths for r in read_records(path)]
    records.sort(key=lambda r: r["score_set"] in SUPERSEDING)  # stable: corrections last
    for r in records:
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


def population(recs: dict[str, dict[str, float]], archs: list[str], names: list[str]):
    """The archs' scores as a score-vocabulary Population; undefined (NaN) -> -inf (last)."""
    rows = [
        {n: (-math.inf if math.isnan(recs[a][n]) else recs[a][n]) for n in names} for a in archs
    ]
    return Population.from_rows(rows)


def _rho(score: np.ndarray, acc: np.ndarray) -> float:
    return float(spearman(percentiles(score), acc))


# ---------------------------------------------------------------------- selection
def greedy(pop: Population, names: list[str], acc: np.ndarray, func: str, max_terms: int = 8):
    """Forward selection of the scores whose ``func(...)`` (logrank or meanrank) has the best
    Spearman on this population."""
    chosen: list[str] = []
    best = -math.inf
    while len(chosen) < max_terms:
        trial = {
            n: _rho(evaluate(f"{func}({', '.join([*chosen, n])})", pop), acc)
            for n in names
            if n not in chosen
        }
        if not trial:
            break
        name, value = max(trial.items(), key=lambda kv: kv[1])
        if value <= best + 1e-4:
            break
        chosen.append(name)
        best = value
    return f"{func}({', '.join(chosen)})", best


def weighted(weights: dict[str, float]) -> str:
    """A weighted log-rank sum as an expression."""
    return " + ".join(f"{w:g}*logrank({n})" for n, w in weights.items() if w)


WEIGHT_GRID = (0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5)


def weighted_forward(pop: Population, names: list[str], acc: np.ndarray, max_terms: int = 6):
    """Forward selection of a weighted log-rank sum: start from the best single score
    (weight 1), then repeatedly add the (score, weight in ``WEIGHT_GRID``) that raises the
    Spearman on this population most, while it rises by more than 1e-4; finally one
    coordinate pass over the chosen weights."""
    singles = {n: _rho(pop.column(n), acc) for n in names}
    first = max(singles, key=singles.get)
    weights, best = {first: 1.0}, singles[first]
    while len(weights) < max_terms:
        trial = {
            (n, w): _rho(evaluate(weighted(weights | {n: w}), pop), acc)
            for n in names
            if n not in weights
            for w in WEIGHT_GRID
        }
        if not trial:
            break
        (n, w), value = max(trial.items(), key=lambda kv: kv[1])
        if value <= best + 1e-4:
            break
        weights[n], best = w, value
    for n in list(weights)[1:]:
        for w in (0.0, *WEIGHT_GRID):
            value = _rho(evaluate(weighted(weights | {n: w}), pop), acc)
            if value > best + 1e-5:
                weights[n], best = w, value
    return weighted(weights), best


# ---------------------------------------------------------------------- report
def fmt(e) -> str:
    return f"{e.value:.3f} [{e.low:.3f}, {e.high:.3f}]"


def suite_zero_agreement(data_dir: Path, recs: dict[str, dict[str, float]]) -> dict:
    with open(data_dir / SUITE_ZERO, newline="") as fh:
        suite = {r["net_str"]: r for r in csv.DictReader(fh)}
    shared = [a for a in recs if a in suite]
    out = {}
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
        rho = float(spearman(percentiles(np.where(np.isnan(x), -np.inf, x)), percentiles(y)))
        out[ours] = (rho, len(pairs))
        print(f"| {ours} | {theirs} | {rho:.3f} | {len(pairs)} |")
    acc = np.array([float(suite[a]["val_acc"]) for a in shared])
    cols = {n: np.array([float(suite[a][n]) for a in shared]) for n in ("jacov", "params")}
    lr = evaluate("logrank(jacov, params)", Population(cols, len(shared)))
    print(
        f"\nOn those cells, Suite-Zero's own logrank(jacov, params) vs its val_acc: "
        f"Spearman {_rho(lr, acc):.3f}"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--records", type=Path, nargs="+", required=True)
    parser.add_argument("--dataset", choices=sorted(ACCURACY), default="cifar10")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--without", default="", help="comma-separated scores to leave out")
    parser.add_argument(
        "--target",
        choices=sorted(ACCURACY),
        default=None,
        help="whose 200-epoch test accuracy to rank against (default: --dataset's)",
    )
    args = parser.parse_args()
    target = args.target or args.dataset
    recs = load_records(args.records, args.dataset, args.seed)
    rows = load_table(args.data_dir)
    truth = {r["ArchitectureString"]: float(r[ACCURACY[target]]) for r in rows}
    half = split_of(rows)
    summary: dict = {}
    if args.dataset == "cifar10":
        summary["suite_zero"] = suite_zero_agreement(args.data_dir, recs)
    left_out = {n.strip() for n in args.without.split(",") if n.strip()}
    names = sorted({n for r in recs.values() for n in r} - left_out)
    complete = [a for a, r in recs.items() if a in truth and all(n in r for n in names)]
    parts = {h: [a for a in complete if half[a] == h] for h in ("selection", "report")}
    print(
        f"\n{len(recs)} cells with records; {len(complete)} with every score "
        f"({', '.join(names)}); selection {len(parts['selection'])}, "
        f"report {len(parts['report'])}"
    )
    sel = population(recs, parts["selection"], names)
    rep = population(recs, parts["report"], names)
    acc_sel = np.array([truth[a] for a in parts["selection"]])
    acc_rep = np.array([truth[a] for a in parts["report"]]) / 100  # fractions (nDCG's gain)
    # ---- choose on the selection half
    combos = {k: v for k, v in PUBLISHED.items() if set(parse_score(v).names) <= set(names)}
    g_lr, v_lr = greedy(sel, names, acc_sel, "logrank")
    g_mr, v_mr = greedy(sel, names, acc_sel, "meanrank")
    w, v_w = weighted_forward(sel, names, acc_sel)
    combos |= {"greedy log-rank sum": g_lr, "greedy mean rank": g_mr, "weighted log-rank sum": w}
    print("\n## Chosen on the selection half\n")
    print(f"- greedy log-rank sum: `{g_lr}` (selection Spearman {v_lr:.3f})")
    print(f"- greedy mean rank: `{g_mr}` (selection Spearman {v_mr:.3f})")
    print(f"- weighted log-rank sum: `{w}` (selection Spearman {v_w:.3f})")
    summary["chosen"] = {"logrank": g_lr, "meanrank": g_mr, "weighted": w}
    # ---- report: ranks within the report half
    scored = {n: percentiles(rep.column(n)) for n in names}
    scored |= {label: percentiles(evaluate(text, rep)) for label, text in combos.items()}
    print(
        f"\n## Report half ({len(acc_rep)} cells), scores on {args.dataset} images, "
        f"{target} 200-epoch test accuracy\n"
    )
    print("| score | " + " | ".join(METRIC_NAMES.values()) + " |")
    print("|---|---|---|---|---|")
    order = sorted(scored, key=lambda s: -float(spearman(scored[s], acc_rep)))
    summary["report"] = {}
    for s in order:
        est = correlation_estimates(scored[s], acc_rep, k=K, n_boot=N_BOOT, seed=0)
        summary["report"][s] = {m: [est[m].value, est[m].low, est[m].high] for m in METRIC_NAMES}
        print(f"| {s} | " + " | ".join(fmt(est[m]) for m in METRIC_NAMES) + " |")
    best = order[0]
    print("\n## Paired differences on the report half (bootstrap, 2,000 resamples)\n")
    print("| comparison | Spearman difference [95%] | nDCG@50 difference [95%] |")
    print("|---|---|---|")
    singles = [s for s in order if s in names]
    others = [o for o in ("VKDNW_agg", "AZ-NAS", "jacob_cov+params") if o in scored]
    others += [singles[0]] if singles else []
    summary["paired"] = {}
    for other in others:
        if other == best:
            continue
        d = {
            m: paired_difference(scored[best], scored[other], acc_rep, metric=m, k=K, seed=1)
            for m in ("spearman", "ndcg_at_k")
        }
        summary["paired"][f"{best} - {other}"] = {m: v.as_dict() for m, v in d.items()}
        print(
            f"| {best} - {other} | {d['spearman'].difference:+.3f} [{d['spearman'].low:+.3f}, "
            f"{d['spearman'].high:+.3f}] | {d['ndcg_at_k'].difference:+.3f} "
            f"[{d['ndcg_at_k'].low:+.3f}, {d['ndcg_at_k'].high:+.3f}] |"
        )
    # ---- every cell, for what involves no choice: single scores, published aggregations
    fixed = names + [k for k in PUBLISHED if k in combos]
    every = population(recs, complete, names)
    acc_all = np.array([truth[a] for a in complete]) / 100
    print(f"\n## Every cell ({len(complete)}): single scores and published aggregations\n")
    print("| score | " + " | ".join(METRIC_NAMES.values()) + " |")
    print("|---|---|---|---|---|")
    x_all = {n: percentiles(every.column(n)) for n in names}
    x_all |= {k: percentiles(evaluate(PUBLISHED[k], every)) for k in fixed if k in PUBLISHED}
    summary["every_cell"] = {}
    for s in sorted(x_all, key=lambda s: -float(spearman(x_all[s], acc_all))):
        est = correlation_estimates(x_all[s], acc_all, k=K, n_boot=N_BOOT, seed=0)
        summary["every_cell"][s] = {
            m: [est[m].value, est[m].low, est[m].high] for m in METRIC_NAMES
        }
        print(f"| {s} | " + " | ".join(fmt(est[m]) for m in METRIC_NAMES) + " |")
    if args.json:
        summary["target"] = target
        summary["n"] = {h: len(v) for h, v in parts.items()} | {"every": len(complete)}
        args.json.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
