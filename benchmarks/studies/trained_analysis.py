"""Issue 12, items 5-6: which cheap score ranks NAS-Bench-201 cells best, with and without
training, teacher guidance and labels - chosen on one half of the cells, reported on the other.

    python benchmarks/studies/trained_analysis.py --data-dir ../shared/data \\
        --trained benchmarks/results/trained_nb201_c10.jsonl \\
        --zero-cost benchmarks/results/zero_cost_nb201_cifar10.jsonl \\
        --zero-cost benchmarks/results/zero_cost_nb201_cifar10_az2.jsonl --out analysis.json

**Split:** the zero-cost analysis's (``split_of``: seeded permutation 2012 of the table's rows,
even positions = selection half, odd = report half). Every expression, feature set and model
is chosen on the selection half; numbers are reported on the report half, with ranks taken
within it.

**A. Fitted combiners without training, at scale** (``--datasets cifar10,cifar100``):
features (``--features``) = the 13 NAS-Bench-Suite-Zero proxies of the data folder's table
(``sz_<name>``), or tgsage's own scores from the ``--zero-cost`` records (``zc_<name>``: every
score all recorded cells have), or both; computed on CIFAR-10 images (``--images cifar100``
reads the records computed on CIFAR-100 images instead) and used for every target; plus the
spec encoding ``ops``. The label-free prior is the log-rank sum of
jacob_cov and params of the same source, or ``--prior`` (e.g. the label-free combination that
``zero_cost_analysis.py`` chose on the selection half). A fixed
menu of combiners is scored by 5-fold cross-validation inside the selection half (every fold
fitted on at most ``--labels`` cells); the best is then fitted on ``--labels`` cells of the
selection half (label draws ``0 .. --label-seeds - 1``) and reported on every report-half cell
with those features: Spearman / Kendall / nDCG@50 / precision@50 with 95% bootstrap
intervals (label draw 0) and the spread over draws; the label-free prior beside it, paired.

**B. Trained scores** (``--trained``, the study's records): single scores (P, TG and its
variants for every teacher, SoTL, SoTL-E, P-slope) at every budget over all trained cells
(descriptive: nothing is chosen), TG's predictivity against teacher accuracy, and the combiners
with and without the trained scores (and without teacher guidance: the ablation), fitted on the
selection-half trained cells and reported on the report-half trained cells, paired. Their
training-free features are the 7 proxies measured on the trained networks themselves plus the
zero-cost study's scores where every trained cell has them.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from zero_cost_analysis import load_records, load_table, split_of

from tgsage.experiments import (
    correlation_estimates,
    paired_difference,
    read_pool_records,
)
from tgsage.scores import FitOptions, Population, evaluate, parse_score
from tgsage.spaces.nb201 import NB201Spec

SUITE_ZERO = "nb201-zero-cost-cifar10.csv"
SZ = [
    "epe_nas", "fisher", "flops", "grad_norm", "grasp", "jacov", "l2_norm", "nwot", "params",
    "plain", "snip", "synflow", "zen",
]  # fmt: skip
ACCURACY = {"cifar10": "CIFAR10TestAccuracy200Epochs", "cifar100": "CIFAR100TestAccuracy200Epochs"}
K = 50
N_BOOT = 1000
WEIGHTS_TG = (0.1, 0.2, 0.35, 0.5, 0.75, 1.0)  # of one TG score added to the label-free prior
TRAINED = ["P", "TG", "TG-cka", "TG-rel", "TG-deep", "SoTL", "SoTL-E", "P-slope"]


def menu(free: str, prior: str) -> dict[str, str]:
    """The combiners compared on the selection half (``free``: feature list without ops;
    ``prior``: the label-free log-rank pair they start from)."""
    forest = f"forest({prior}, {free}, ops)"
    gbm = f"gbm({prior}, {free}, ops)"
    return {
        "ridge": f"ridge({prior}, {free}, ops)",
        "forest": forest,
        "gbm": gbm,
        "ensemble": f"meanrank({forest}, {gbm}, {prior})",
    }


# ---------------------------------------------------------------------- data
def suite_zero(data_dir: Path) -> dict[str, dict[str, float]]:
    with open(data_dir / SUITE_ZERO, newline="") as fh:
        return {r["net_str"]: {f"sz_{n}": float(r[n]) for n in SZ} for r in csv.DictReader(fh)}


def features(args: argparse.Namespace) -> tuple[dict[str, dict[str, float]], list[str], str]:
    """``{arch: {feature: value}}`` of ``--features``, the feature names and the label-free
    prior: Suite-Zero's 13 proxies (``sz_<name>``), this study's own zero-cost records
    (``zc_<name>``: the scores every cell recorded on ``--images`` has), or both (cells with both)."""
    tables: list[dict[str, dict[str, float]]] = []
    names: list[str] = []
    if args.features in ("suite-zero", "both"):
        tables.append(suite_zero(args.data_dir))
        names += [f"sz_{n}" for n in SZ]
    if args.features in ("zero-cost", "both"):
        own = load_records(args.zero_cost, args.images, 0)
        common = sorted(set.intersection(*(set(v) for v in own.values()))) if own else []
        tables.append(  # undefined (NaN) ranks last, as in zero_cost_analysis
            {a: {f"zc_{k}": nan_last(v[k]) for k in common} for a, v in own.items()}
        )
        names += [f"zc_{k}" for k in common]
    archs = set.intersection(*(set(t) for t in tables))
    merged = {a: {k: v for t in tables for k, v in t[a].items()} for a in archs}
    src = "sz" if args.features != "zero-cost" else "zc"
    pair = ("jacov", "params") if src == "sz" else ("jacob_cov", "params")
    return merged, names, args.prior or f"logrank({src}_{pair[0]}, {src}_{pair[1]})"


def nan_last(value: float) -> float:
    return -math.inf if math.isnan(value) else value


def population(
    archs: list[str], features: dict[str, dict[str, float]], acc: dict[str, float]
) -> Population:
    return Population.from_rows(
        [features[a] for a in archs],
        specs=[NB201Spec.from_arch_string(a) for a in archs],
        target=[acc[a] for a in archs],
    )


def estimates(x: np.ndarray, y: np.ndarray, seed: int = 0) -> dict[str, list[float]]:
    est = correlation_estimates(x, y, k=K, n_boot=N_BOOT, n_boot_kendall=200, seed=seed)
    return {m: [round(e.value, 4), round(e.low, 4), round(e.high, 4)] for m, e in est.items()}


def fmt(e: list[float]) -> str:
    return f"{e[0]:.3f} [{e[1]:.3f}, {e[2]:.3f}]"


def cv_choice(expressions: dict[str, str], sel: Population, labels: int) -> dict[str, float]:
    """Spearman of each expression's 5-fold cross-validated predictions in the selection half."""
    out = {}
    for name, expr in expressions.items():
        pred = evaluate(expr, sel, fit=FitOptions(labels=labels, folds=5, seed=0))
        out[name] = float(correlation_estimates(pred, sel.target, n_boot=0)["spearman"].value)
        print(f"  selection CV {name}: {out[name]:.4f}", flush=True)
    return out


# ---------------------------------------------------------------------- A
def part_a(args: argparse.Namespace, dataset: str, rows: list[dict[str, str]]) -> dict[str, Any]:
    half = split_of(rows)
    acc = {r["ArchitectureString"]: float(r[ACCURACY[dataset]]) / 100 for r in rows}
    feats, names, prior = features(args)
    archs = [r["ArchitectureString"] for r in rows if r["ArchitectureString"] in feats]
    sel = population([a for a in archs if half[a] == "selection"], feats, acc)
    rep = population([a for a in archs if half[a] == "report"], feats, acc)
    head = f"features {args.features} ({args.images} images)"
    print(f"\n## A. {dataset}, {head}: {sel.n} selection / {rep.n} report cells", flush=True)
    exprs = menu(", ".join(names), prior)
    cv = cv_choice(exprs, sel, args.labels)
    best = max(cv, key=cv.get)  # type: ignore[arg-type]
    x_prior = evaluate(prior, rep)
    draws = []
    for s in range(args.label_seeds):
        draws.append(evaluate(exprs[best], rep, sel, FitOptions(labels=args.labels, seed=s)))
    rhos = [float(correlation_estimates(d, rep.target, n_boot=0)["spearman"].value) for d in draws]
    out = {
        "dataset": dataset,
        "features": args.features,
        "images": args.images,
        "cells": {"selection": sel.n, "report": rep.n},
        "selection_cv": cv,
        "chosen": best,
        "expression": exprs[best],
        "labels": args.labels,
        "report": estimates(draws[0], rep.target),
        "spearman_over_label_draws": {
            "mean": float(np.mean(rhos)),
            "min": float(np.min(rhos)),
            "max": float(np.max(rhos)),
            "draws": rhos,
        },
        "label_free": {"expression": prior, **estimates(x_prior, rep.target)},
        "paired_vs_label_free": paired_difference(
            draws[0], x_prior, rep.target, n_boot=N_BOOT
        ).as_dict(),
    }
    print(
        f"  chosen {best}: report Spearman {fmt(out['report']['spearman'])}; over "
        f"{len(rhos)} label draws {np.mean(rhos):.4f} ({np.min(rhos):.4f}-{np.max(rhos):.4f})"
    )
    print(f"  label-free {prior}: {fmt(out['label_free']['spearman'])}", flush=True)  # fmt: skip
    return out


# ---------------------------------------------------------------------- B
def part_b(args: argparse.Namespace, rows: list[dict[str, str]]) -> dict[str, Any]:
    recs = [r for r in read_pool_records(args.trained) if r.ok]
    half = split_of(rows)
    zc = load_records(args.zero_cost, "cifar10", 0) if args.zero_cost else {}
    by_arch = {NB201Spec.from_arch_string(a).spec_hash: a for a in half}
    accuracy = {}
    if args.teachers_dir is not None:
        for meta in args.teachers_dir.glob("*.json"):
            info = json.loads(meta.read_text())
            accuracy[info["name"]] = info["test_accuracy"]
    teachers = sorted(recs[0].teachers, key=lambda t: accuracy.get(t, 0)) if recs else []
    budgets = recs[0].budgets if recs else []
    print(f"\n## B. {len(recs)} trained cells, teachers {teachers} {accuracy}", flush=True)
    out: dict[str, Any] = {
        "cells": len(recs),
        "teachers": teachers,
        "teacher_accuracy": accuracy,
        "single": {},
    }
    y = np.array([r.mature_accuracy for r in recs])
    # single scores over all trained cells (descriptive)
    for t in teachers:
        for b in budgets:
            for name in TRAINED:
                x = np.array([r.scores_at(b, t).get(name, np.nan) for r in recs])
                ok = ~np.isnan(x)
                if ok.sum() >= 5 and (name.startswith("TG") or t == teachers[-1]):
                    key = f"{name}@{b}" + (f"|{t}" if name.startswith("TG") else "")
                    out["single"][key] = estimates(x[ok], y[ok])
    for name in sorted(recs[0].proxies) if recs else []:
        x = np.array([r.proxies.get(name, np.nan) for r in recs])
        ok = np.isfinite(x)
        if ok.sum() >= 5:
            out["single"][f"{name} (width 0.5)"] = estimates(x[ok], y[ok])
    for key, e in out["single"].items():
        print(f"  {key}: {fmt(e['spearman'])}")
    # combiners with and without trained scores, selection-half trained cells -> report half.
    # Training-free features: the 7 proxies measured on the trained (width 0.5) networks, plus
    # the zero-cost study's scores (zc_<name>) when every trained cell has them.
    last = budgets[-1] if budgets else None
    strong = teachers[-1] if teachers else None
    zc_names = sorted(set.intersection(*(set(zc.get(by_arch[r.spec_hash], {})) for r in recs)))
    rows_b, specs, split, acc = [], [], [], []
    for r in recs:
        arch = by_arch[r.spec_hash]
        v = {f"zc_{k}": nan_last(zc[arch][k]) for k in zc_names}
        v.update(r.scores_at(last, strong))
        rows_b.append(v)
        specs.append(NB201Spec.from_arch_string(arch))
        split.append(half[arch])
        acc.append(r.mature_accuracy)
    idx = {h: np.flatnonzero(np.array(split) == h) for h in ("selection", "report")}
    out["combined"] = {
        "budget": last,
        "teacher": strong,
        "cells": {h: int(i.size) for h, i in idx.items()},
        "zero_cost_features": zc_names,
    }
    if min(i.size for i in idx.values()) < 10:
        print("  too few trained cells in one half for the fitted comparison", flush=True)
        return out
    pop = Population.from_rows(rows_b, specs=specs, target=acc)
    sel, rep = pop.subset(idx["selection"]), pop.subset(idx["report"])
    proxies = ["synflow", "naswot", "jacob_cov", "params", "flops", "grad_norm", "snip"]
    free = ", ".join(proxies + [f"zc_{k}" for k in zc_names])
    prior = args.prior or "logrank(jacob_cov, params)"

    def measured(names: list[str]) -> list[str]:  # init-only records have no P, SoTL, ...
        return [n for n in names if n in rows_b[0] and np.isfinite(sel.column(n)).any()]

    trained = ", ".join(measured(["P", "SoTL", "SoTL-E", "P-slope"]))
    tg_names = measured(["TG", "TG-cka", "TG-rel", "TG-deep", "TG-cka-deep", "TG-rel-deep"])
    tg = ", ".join(tg_names)
    # the label-free prior plus one teacher-guidance score: which one and its weight are
    # chosen on the selection half (Spearman), then reported on the report half
    with_tg = {(n, w): f"({prior}) + {w:g}*logrank({n})" for n in tg_names for w in WEIGHTS_TG}
    sel_rho = {
        k: float(correlation_estimates(evaluate(e, sel), sel.target, n_boot=0)["spearman"].value)
        for k, e in with_tg.items()
    }
    best_tg = max(sel_rho, key=sel_rho.get)  # type: ignore[arg-type]
    out["combined"]["prior + TG choice (selection half)"] = {
        "score": best_tg[0],
        "weight": best_tg[1],
        "selection_spearman": sel_rho[best_tg],
    }
    variants = {
        "label-free prior": prior,
        "label-free prior + TG": with_tg[best_tg],
        "training-free": f"forest({prior}, {free}, ops)",
        "training-free + TG": f"forest({prior}, {free}, {tg}, ops)",
    }
    if trained:
        variants |= {
            "with P, SoTL, TG": f"forest({prior}, {free}, {trained}, {tg}, ops)",
            "with P, SoTL (no TG)": f"forest({prior}, {free}, {trained}, ops)",
            "P + TG": "P + TG",
            "P alone": "P",
        }
    variants |= {n + " alone": n for n in tg_names}
    preds = {}
    for name, expr in variants.items():
        parse_score(expr)
        preds[name] = evaluate(expr, rep, sel, FitOptions(labels=args.labels, seed=0))
        out["combined"][name] = {"expression": expr, **estimates(preds[name], rep.target)}
        print(f"  report {name}: {fmt(out['combined'][name]['spearman'])}", flush=True)
    print(f"  chosen on the selection half: {with_tg[best_tg]} ({sel_rho[best_tg]:.3f})")
    pairs = [("label-free prior + TG", "label-free prior"), ("training-free + TG", "training-free")]
    if trained:
        pairs += [
            ("with P, SoTL, TG", "training-free"),
            ("with P, SoTL, TG", "with P, SoTL (no TG)"),
        ]
    out["paired"] = {
        f"{a} - {b}": paired_difference(preds[a], preds[b], rep.target, n_boot=N_BOOT).as_dict()
        for a, b in pairs
    }
    for k, d in out["paired"].items():
        print(f"  paired {k}: {d['difference']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True, type=Path)
    ap.add_argument("--trained", type=Path, default=None)
    ap.add_argument("--teachers-dir", type=Path, default=None, help="teacher <name>.json files")
    ap.add_argument("--zero-cost", type=Path, action="append", default=[])
    ap.add_argument("--labels", type=int, default=100)
    ap.add_argument("--label-seeds", type=int, default=5)
    ap.add_argument("--datasets", default="cifar10,cifar100")
    ap.add_argument(
        "--images",
        choices=("cifar10", "cifar100"),
        default="cifar10",
        help="part A: read the --zero-cost records computed on these images",
    )
    ap.add_argument(
        "--features",
        choices=("suite-zero", "zero-cost", "both"),
        default="suite-zero",
        help="part A's training-free features: Suite-Zero's, the --zero-cost records', or both",
    )
    ap.add_argument(
        "--prior",
        default=None,
        help="part A's label-free prior (an expression over the features; default: the "
        "log-rank sum of jacob_cov and params); choose it on the selection half only",
    )
    ap.add_argument("--skip-a", action="store_true")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    rows = load_table(args.data_dir)
    result: dict[str, Any] = {"labels": args.labels}
    if not args.skip_a:
        result["A"] = [part_a(args, d, rows) for d in args.datasets.split(",")]
    if args.trained is not None:
        result["B"] = part_b(args, rows)
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
