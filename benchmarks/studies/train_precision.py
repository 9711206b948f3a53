"""Does the training fast path change P? Premature accuracy after a fixed budget, float32 vs fast.

``run`` trains NAS-Bench-201 cells (4 by default, drawn in a fixed seeded order from the data
folder's ``nats-bench-tss-dev.csv`` among cells whose 200-epoch CIFAR-10 accuracy is above 80%,
so none is a broken cell that never learns) at C = 8 (width 0.5, the studies' CPU size), each
with several seeds (seed = weight initialisation and data order), once on the plain float32
NCHW path (``amp="off", channels_last=False``) and once on the default fast path (bf16 autocast
and channels-last on this CPU), with the ``cpu_demo`` preset on the CIFAR-10 subset, and
records P (validation accuracy), the sum of training losses and the training time. One JSON line
per (arch, seed, path, budget); a rerun skips what is there. ``report`` compares the paths:
the paired difference fast - fp32 (same cell, same seed, same initial weights and batches)
against the seed-to-seed spread of P.

    python benchmarks/studies/train_precision.py run --data-dir ../shared/data \\
        --out benchmarks/results/train_precision_nb201.jsonl
    python benchmarks/studies/train_precision.py report \\
        --out benchmarks/results/train_precision_nb201.jsonl

Run it in the background at one thread (``nohup ... &``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from zero_cost_nb201 import cell_order, dataset_folder, read_records, read_table

from tgsage.data.cifar import load_cifar
from tgsage.evaluate import build_candidate
from tgsage.spaces.nb201 import NB201Spec
from tgsage.train import Trainer

PATHS = {"fp32": {"amp": "off", "channels_last": False}, "fast": {}}


def pick_cells(data_dir: Path, n: int, min_acc: float) -> list[dict[str, str]]:
    rows = [r for r in cell_order(read_table(data_dir))]
    return [r for r in rows if float(r["CIFAR10TestAccuracy200Epochs"]) > min_acc][:n]


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the CIFAR-10 subset has 2 of 5 training batches
        folder = dataset_folder(args.data_dir, "cifar10", args.cache_dir)
        splits = load_cifar("cifar10", folder, val_size=args.val_size, seed=0)
    done = {(r["arch"], r["seed"], r["path"], r["budget"]) for r in read_records(args.out)}
    budget = f"{args.examples}ex"
    for row in pick_cells(args.data_dir, args.cells, args.min_acc):
        arch = row["ArchitectureString"]
        for seed in [int(s) for s in args.seeds.split(",")]:
            for path, switches in PATHS.items():
                if (arch, seed, path, budget) in done:
                    continue
                spec = NB201Spec.from_arch_string(arch)
                model, _ = build_candidate(spec, splits, width_mult=args.width, seed=seed)
                trainer = Trainer(model, splits, "cpu_demo", device="cpu", seed=seed, **switches)
                t0 = time.perf_counter()
                res = trainer.train_until(budget)
                rec = {
                    "arch": arch,
                    "index": int(row["Index"]),
                    "acc200": float(row["CIFAR10TestAccuracy200Epochs"]),
                    "seed": seed,
                    "path": path,
                    "budget": budget,
                    "width": args.width,
                    "status": res.status,
                    "p": res.val_accuracy,
                    "loss_sum": res.loss_sum,
                    "loss_steps": res.loss_steps,
                    "amp": res.amp,
                    "channels_last": res.channels_last,
                    "train_seconds": round(res.seconds, 2),
                    "seconds_total": round(time.perf_counter() - t0, 2),
                    "n_train": len(splits.train),
                    "n_val": len(splits.val) if splits.val is not None else 0,
                    "threads": args.threads,
                    "torch": torch.__version__,
                }
                args.out.parent.mkdir(parents=True, exist_ok=True)
                with open(args.out, "a") as fh:
                    fh.write(json.dumps(rec) + "\n")
                print(json.dumps(rec), flush=True)


def report(args: argparse.Namespace) -> None:
    recs = [r for r in read_records(args.out) if r["status"] == "ok"]
    by = {(r["arch"], r["seed"], r["path"]): r for r in recs}
    archs = sorted({r["arch"] for r in recs}, key=lambda a: -by_any(recs, a)["acc200"])
    diffs, spreads, time_ratio, cells = [], [], [], []
    print(
        f"{'cell (200-epoch acc)':>22s} {'P fp32 mean (sd)':>18s} {'P fast mean (sd)':>18s} "
        f"{'fast - fp32 per seed':>28s}"
    )
    for arch in archs:
        seeds = sorted({r["seed"] for r in recs if r["arch"] == arch})
        pairs = [
            (by[(arch, s, "fp32")], by[(arch, s, "fast")])
            for s in seeds
            if (arch, s, "fp32") in by and (arch, s, "fast") in by
        ]
        if not pairs:
            continue
        p32 = np.array([a["p"] for a, _ in pairs])
        pf = np.array([b["p"] for _, b in pairs])
        d = pf - p32
        diffs.extend(d.tolist())
        cells.extend([arch] * len(d))
        sd32, sdf = (p32.std(ddof=1), pf.std(ddof=1)) if len(pairs) > 1 else (math.nan,) * 2
        spreads.extend([sd32, sdf] if len(pairs) > 1 else [])
        time_ratio.extend(a["train_seconds"] / b["train_seconds"] for a, b in pairs)
        print(
            f"{by_any(recs, arch)['index']:>13d} ({by_any(recs, arch)['acc200']:5.2f}) "
            f"{p32.mean():8.4f} ({sd32:.4f}) {pf.mean():8.4f} ({sdf:.4f}) "
            f"{' '.join(f'{x:+.4f}' for x in d):>28s}"
        )
    if not diffs:
        print("no complete pairs yet")
        return
    d = np.array(diffs)
    rng = np.random.default_rng(0)
    boots = [rng.choice(d, len(d)).mean() for _ in range(2000)]
    lo, hi = np.percentile(boots, [2.5, 97.5])
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    sd_seed = math.sqrt(np.mean(np.square(spreads))) if spreads else float("nan")
    print(
        f"\n{len(d)} pairs on {len(set(cells))} cells: mean fast - fp32 = {d.mean():+.4f} "
        f"[95% paired t {d.mean() - half:+.4f}, {d.mean() + half:+.4f}; bootstrap over pairs "
        f"{lo:+.4f}, {hi:+.4f}], |diff| mean "
        f"{np.abs(d).mean():.4f}, sd of diffs {d.std(ddof=1):.4f}; seed-to-seed sd of P within "
        f"a cell (pooled over both paths) {sd_seed:.4f}"
    )
    print(f"training time fp32 / fast: median {np.median(time_ratio):.2f}x")
    f, p_f = stats.f_oneway(*[d[np.array(cells) == a] for a in dict.fromkeys(cells)])
    print(
        f"does the shift depend on the cell? one-way ANOVA of fast - fp32 by cell: "
        f"F = {f:.2f}, p = {p_f:.3f}"
    )
    ranking_agreement(by, archs)


def ranking_agreement(by: dict, archs: list[str]) -> None:
    """Does the fast path reorder cells more than a new seed does? Spearman over cells of P
    between the paths at the same seed, against Spearman between two seeds on one path (the
    noise floor of any ranking by P)."""
    seeds = sorted({s for (_, s, _) in by})
    full = [s for s in seeds if all((a, s, p) in by for a in archs for p in ("fp32", "fast"))]
    if len(full) < 2 or len(archs) < 4:
        print("ranking agreement: needs every cell on both paths for at least 2 seeds")
        return

    def column(seed: int, path: str) -> np.ndarray:
        return np.array([by[(a, seed, path)]["p"] for a in archs])

    def rho(x: np.ndarray, y: np.ndarray) -> float:
        return float(stats.spearmanr(x, y).statistic)

    across_paths = [rho(column(s, "fp32"), column(s, "fast")) for s in full]
    across_seeds = {
        path: [
            rho(column(s, path), column(t, path)) for i, s in enumerate(full) for t in full[i + 1 :]
        ]
        for path in ("fp32", "fast")
    }
    means = {path: np.mean([column(s, path) for s in full], axis=0) for path in ("fp32", "fast")}
    print(
        f"ranking of {len(archs)} cells by P, seeds {full}: Spearman fp32 vs fast at the same "
        f"seed mean {np.mean(across_paths):.3f} (min {min(across_paths):.3f}); two seeds on "
        f"fp32 {np.mean(across_seeds['fp32']):.3f}, on fast {np.mean(across_seeds['fast']):.3f}; "
        f"seed-mean P fp32 vs fast {rho(means['fp32'], means['fast']):.3f}"
    )


def by_any(recs: list[dict], arch: str) -> dict:
    return next(r for r in recs if r["arch"] == arch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--data-dir", type=Path, required=True, help="e.g. ../shared/data")
    r.add_argument("--cells", type=int, default=4)
    r.add_argument("--min-acc", type=float, default=80.0)
    r.add_argument("--seeds", default="0,1,2")
    r.add_argument("--examples", type=int, default=10_000)
    r.add_argument("--val-size", type=int, default=2_000)
    r.add_argument("--width", type=float, default=0.5)
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--cache-dir", type=Path, default=Path("~/.cache/tgsage").expanduser())
    for p in (r, sub.add_parser("report")):
        p.add_argument(
            "--out", type=Path, default=Path("benchmarks/results/train_precision_nb201.jsonl")
        )
    args = parser.parse_args()
    run(args) if args.command == "run" else report(args)


if __name__ == "__main__":
    main()
