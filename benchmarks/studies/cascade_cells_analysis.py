"""Issue 12 (b) with trained scores, and the teacher-guidance ablation, on uniform random cells.

The cascade study's baselines (``cascade_nb201.py``) train uniform random cells of the
NATS-Bench table: ``random-p`` the first 5 cells of each seed's random stream for 20,000
examples, ``re-*`` / ``tpe-*`` the first 10 (their shared random start-up) for 5,000 examples;
every training is in the evaluation cache with its P (1,000 validation images), TG and TG-deep
(the whitened teacher, 0.84), SoTL and SoTL-E. Those cells (``random_stream``; 10 per seed,
200 over seeds 0-19) are a random sample of the space with trained scores at two budgets, at
no extra training cost. Their training-free scores come from the zero-cost study's records
(``zero_cost_nb201.py --archs``: full width, CIFAR-10 images, the same definitions as
BENCHMARKS 18), so every score of the zero-cost study is a feature here.

**Split:** the zero-cost analysis's (``split_of``: a seeded permutation of the table's rows), so
the label-free prior - the combination chosen on the zero-cost study's selection half - never
saw a report cell. Which teacher-guidance score and weight joins the prior is chosen on the
selection-half cells here; fitted combiners learn from the selection-half cells (at most
``--labels``) and are reported on the report-half cells, paired.

    python benchmarks/studies/cascade_cells_analysis.py --data-dir ../shared/data \\
        --cache benchmarks/results/cascade_nb201_evals.jsonl \\
        --zero-cost benchmarks/results/zero_cost_nb201_cifar10.jsonl \\
        --zero-cost benchmarks/results/zero_cost_nb201_cifar10_az2.jsonl \\
        --zero-cost benchmarks/results/zero_cost_nb201_cifar10_cascade_cells.jsonl \\
        --seeds 0-19 --out analysis.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cascade_nb201 import _parse_seeds, random_stream
from trained_analysis import N_BOOT, WEIGHTS_TG, estimates, fmt, nan_last
from zero_cost_analysis import TABLE, load_records, load_table, split_of

from tgsage.experiments import correlation_estimates, load_nb201_table, paired_difference
from tgsage.scores import FitOptions, Population, evaluate, parse_score
from tgsage.spaces.nb201 import NB201Spec

PRIOR = (
    "1*logrank(zc_meco) + 0.2*logrank(zc_az_trainability) + 0.2*logrank(zc_synflow) "
    "+ 0.1*logrank(zc_az_progressivity) + 0.1*logrank(zc_jacob_cov)"
)  # README "Which score to use when", chosen on the zero-cost study's selection half
TRAINED = ["P", "TG", "TG-deep", "SoTL", "SoTL-E"]
GUIDANCE = ["TG", "TG-deep"]
INIT = ["TG", "TG-deep", "TG-cka", "TG-cka-deep", "TG-rel", "TG-rel-deep"]  # of the untrained net
TEACHER = "whitened32-10ep"  # the cascade study's teacher (test accuracy 0.84)


def init_by_teacher(path: Path, cells: list[str], acc: dict[str, float]) -> dict[str, Any]:
    """Untrained teacher guidance of the cells for every teacher in the records (descriptive):
    ``{teacher: {score: estimates}}``, to set against the teachers' accuracies."""
    from tgsage.experiments import read_pool_records

    by_hash = {NB201Spec.from_arch_string(a).spec_hash: a for a in cells}
    recs = [r for r in read_pool_records(path) if r.ok and r.spec_hash in by_hash]
    out: dict[str, Any] = {}
    for t in recs[0].teachers if recs else []:
        for n in ("TG", "TG-cka", "TG-rel"):
            x = np.array([r.scores_at("0ex", t).get(n, np.nan) for r in recs])
            y = np.array([acc[by_hash[r.spec_hash]] for r in recs])
            ok = np.isfinite(x)
            out.setdefault(t, {})[n] = estimates(x[ok], y[ok]) | {"n": int(ok.sum())}
    return out


def init_scores(path: Path | None) -> dict[str, dict[str, float]]:
    """``{spec hash: {"init_<name>": value}}`` from ``trained_study.py --init-only --archs``
    records: teacher guidance of the untrained network (the same teacher as the cascade)."""
    if path is None:
        return {}
    from tgsage.experiments import read_pool_records

    out = {}
    for r in read_pool_records(path):
        if r.ok:
            s = r.scores_at("0ex", TEACHER)
            out[r.spec_hash] = {f"init_{n}": float(s[n]) for n in INIT if n in s}
    return out


def trained_scores(cache: Path) -> dict[tuple[str, str], dict[str, float]]:
    """``{(spec hash, budget): scores}`` of the cache's completed trainings."""
    out: dict[tuple[str, str], dict[str, float]] = {}
    for line in cache.read_text().splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if r.get("budget") and r.get("status") == "ok" and r.get("scores"):
            out[(r["spec_hash"], r["budget"])] = {
                k: float(v) for k, v in r["scores"].items() if v is not None
            }
    return out


def singles(cells: list[str], trained: dict, acc: dict, budget: str) -> dict:
    """Every score's predictivity over every cell with it (descriptive: nothing chosen), and
    the guidance scores paired against P on the same cells."""
    out: dict[str, Any] = {}
    recs = [
        (s, acc[a])
        for a in cells
        if (s := trained.get((NB201Spec.from_arch_string(a).spec_hash, budget))) is not None
    ]
    if len(recs) < 10:
        return out
    y = np.array([t for _, t in recs])
    col = {n: np.array([s.get(n, np.nan) for s, _ in recs]) for n in TRAINED}
    col["P+TG"] = col["P"] + col["TG"]
    for name, x in col.items():
        ok = np.isfinite(x)
        if ok.sum() >= 10:
            out[f"{name}@{budget}"] = estimates(x[ok], y[ok]) | {"n": int(ok.sum())}
    # paired against P on the same cells: does guidance rank them better than accuracy does?
    for n in ("TG", "TG-deep", "P+TG", "SoTL"):
        d = paired_difference(col[n], col["P"], y, n_boot=N_BOOT, seed=1)
        out[f"{n} - P @{budget}"] = d.as_dict() | {"n": len(recs)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True, type=Path, help=f"holds {TABLE}")
    ap.add_argument("--cache", required=True, type=Path, help="the cascade study's evaluations")
    ap.add_argument("--zero-cost", type=Path, action="append", required=True)
    ap.add_argument("--seeds", default="0-19")
    ap.add_argument("--per-seed", type=int, default=10, help="cells of each seed's stream")
    ap.add_argument("--budget", default="5000ex", help="the trained scores' budget")
    ap.add_argument("--labels", type=int, default=100)
    ap.add_argument("--init", type=Path, help="trained_study.py --init-only records of the cells")
    ap.add_argument("--prior", default=PRIOR)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    rows = load_table(args.data_dir)
    half = split_of(rows)
    acc = {r["ArchitectureString"]: float(r["CIFAR10TestAccuracy200Epochs"]) / 100 for r in rows}
    truth = load_nb201_table(args.data_dir / TABLE, dataset="cifar10")
    cells = list(
        dict.fromkeys(
            spec.to_arch_string()
            for seed in _parse_seeds(args.seeds)
            for spec in random_stream(seed, truth, args.per_seed)
        )
    )
    trained = trained_scores(args.cache)
    zc = load_records(args.zero_cost, "cifar10", 0)
    init = init_scores(args.init)
    result: dict[str, Any] = {"cells": len(cells), "budget": args.budget, "labels": args.labels}
    print(f"{len(cells)} random cells (seeds {args.seeds}, {args.per_seed} each)")

    # ---- single scores, every cell with them (20,000 examples: random-p's 5 per seed)
    result["single"] = singles(cells, trained, acc, args.budget)
    result["single"] |= singles(cells, trained, acc, "20000ex")
    if args.init is not None:
        result["init by teacher"] = init_by_teacher(args.init, cells, acc)
        for t, scores in result["init by teacher"].items():
            line = ", ".join(f"{n} {fmt(e['spearman'])}" for n, e in scores.items())
            print(f"  untrained, teacher {t}: {line}")
    for name in [f"init_{n}" for n in INIT]:
        pairs = [
            (init[h][name], acc[a])
            for a in cells
            if (h := NB201Spec.from_arch_string(a).spec_hash) in init and name in init[h]
        ]
        if len(pairs) >= 10:
            x, y = np.array(pairs).T
            result["single"][name] = estimates(x, y) | {"n": len(pairs)}
    for key, e in result["single"].items():
        if "spearman" in e:
            print(f"  {key} (n={e['n']}): {fmt(e['spearman'])}")
        else:
            print(
                f"  paired {key} (n={e['n']}): {e['difference']:+.3f} [{e['low']:+.3f}, {e['high']:+.3f}]"
            )

    # ---- combined, selection half -> report half
    hashes = {a: NB201Spec.from_arch_string(a).spec_hash for a in cells}
    usable = [a for a in cells if (hashes[a], args.budget) in trained and a in zc]
    if init:
        usable = [a for a in usable if hashes[a] in init]
    zc_names = sorted(set.intersection(*(set(zc[a]) for a in usable)))
    table_rows, specs, split, target = [], [], [], []
    for a in usable:
        v = {f"zc_{k}": nan_last(zc[a][k]) for k in zc_names}
        s = trained[(hashes[a], args.budget)]
        v |= {k: s[k] for k in TRAINED}
        v |= init.get(hashes[a], {})
        table_rows.append(v)
        specs.append(NB201Spec.from_arch_string(a))
        split.append(half[a])
        target.append(acc[a])
    idx = {h: np.flatnonzero(np.array(split) == h) for h in ("selection", "report")}
    result["n"] = {h: int(i.size) for h, i in idx.items()}
    print(f"{len(usable)} cells with trained and zero-cost scores: {result['n']}")
    pop = Population.from_rows(table_rows, specs=specs, target=target)
    sel, rep = pop.subset(idx["selection"]), pop.subset(idx["report"])
    prior = args.prior
    free = ", ".join(f"zc_{k}" for k in zc_names)
    tg = ", ".join(GUIDANCE)
    train_only = "P, SoTL, SoTL-E"

    def rho(expr: str, on: Population) -> float:
        est = correlation_estimates(evaluate(expr, on), on.target, n_boot=0)
        return float(est["spearman"].value)

    # the label-free prior plus one trained score: which one and its weight, chosen on the
    # selection half (as BENCHMARKS 18 chose the prior's own weights on its selection half)
    choices = {}
    for extra in (GUIDANCE, ["P"], ["SoTL"]):
        grid = {(n, w): f"({prior}) + {w:g}*logrank({n})" for n in extra for w in WEIGHTS_TG}
        best = max(grid, key=lambda k: rho(grid[k], sel))
        choices[extra[0] if extra != GUIDANCE else "TG"] = (grid[best], best, rho(grid[best], sel))
    result["chosen on the selection half"] = {
        k: {"expression": e, "score": b[0], "weight": b[1], "selection_spearman": r}
        for k, (e, b, r) in choices.items()
    }
    for k, (e, _, r) in choices.items():
        print(f"  chosen (+{k}): {e} (selection {r:.3f})")

    def ensemble(features: str) -> str:
        forest = f"forest({prior}, {features}, ops)"
        gbm = f"gbm({prior}, {features}, ops)"
        return f"meanrank({forest}, {gbm}, {prior})"

    variants = {
        "label-free prior": prior,
        "prior + TG (chosen)": choices["TG"][0],
        "prior + P (chosen)": choices["P"][0],
        "prior + SoTL (chosen)": choices["SoTL"][0],
        "ensemble, training-free": ensemble(free),
        "ensemble + TG": ensemble(f"{free}, {tg}"),
        "ensemble + P, SoTL (no TG)": ensemble(f"{free}, {train_only}"),
        "ensemble + P, SoTL, TG": ensemble(f"{free}, {train_only}, {tg}"),
        **(
            {
                "ensemble + TG at init": ensemble(
                    f"{free}, {', '.join(f'init_{n}' for n in INIT)}"
                ),
                "init_TG-cka": "init_TG-cka",
                "init_TG-rel": "init_TG-rel",
            }
            if init
            else {}
        ),
        "P": "P",
        "TG": "TG",
        "P + TG": "P + TG",
        "SoTL": "SoTL",
    }
    preds, result["report"] = {}, {}
    for name, expr in variants.items():
        parse_score(expr)
        preds[name] = evaluate(expr, rep, sel, FitOptions(labels=args.labels, seed=0))
        result["report"][name] = {"expression": expr, **estimates(preds[name], rep.target)}
        print(f"  report {name}: {fmt(result['report'][name]['spearman'])}", flush=True)
    pairs = [
        ("prior + TG (chosen)", "label-free prior"),
        ("prior + P (chosen)", "label-free prior"),
        ("prior + SoTL (chosen)", "label-free prior"),
        ("ensemble + TG", "ensemble, training-free"),
        ("ensemble + P, SoTL, TG", "ensemble, training-free"),
        ("ensemble + P, SoTL, TG", "ensemble + P, SoTL (no TG)"),
        *([("ensemble + TG at init", "ensemble, training-free")] if init else []),
        ("ensemble, training-free", "label-free prior"),
        ("P + TG", "P"),
    ]
    result["paired"] = {}
    for a, b in pairs:
        d = {
            m: paired_difference(
                preds[a], preds[b], rep.target, metric=m, k=10, n_boot=N_BOOT, seed=1
            )
            for m in ("spearman", "ndcg_at_k")
        }
        result["paired"][f"{a} - {b}"] = {m: v.as_dict() for m, v in d.items()}
        s = d["spearman"]
        print(f"  paired {a} - {b}: {s.difference:+.3f} [{s.low:+.3f}, {s.high:+.3f}]")
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
