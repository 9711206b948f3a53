"""Final training at CPU scale: a found NAS-Bench-201 cell under ``cifar_final`` against the same
cell under its search preset (``nas_bench_201``), equal epochs, same data, same held-out split.

1. Find a cell: a tgsage search of the NB201 space scored by synflow alone (``score: proxy``, no
   training), ``--candidates`` completed candidates, TPE, seed 0; its best candidate is the cell.
2. Train it with each recipe via :func:`tgsage.train.final.train_final` for ``--epochs`` epochs
   (the schedule laid over that length), at ``--width-mult``, on the CIFAR-10 subset's training
   images plus validation images (``train_on="auto"``), and report accuracy on the official
   10,000 test images. Arms: ``cifar_final`` (SGD Nesterov lr 0.025 cosine, batch 128, wd 5e-4,
   clip 5, cutout 16; an NB201 network has no auxiliary head or drop-path) and ``search`` (the
   ``nas_bench_201`` recipe the search's space uses: lr 0.1 cosine, batch 256, wd 5e-4, crop +
   flip).

Resumable at two levels: each run checkpoints every epoch into ``OUT/<arm>-s<seed>`` (a killed
study continues mid-run), and each finished run appends one JSONL record to ``--records``
(skipped when present). One thread; run it under ``nohup``.

    python benchmarks/studies/final_training.py --data-dir ../shared/data --out RUNS_DIR \
        --epochs 15 --width-mult 0.5 --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import tarfile
import time
from pathlib import Path
from typing import Any

import torch

from tgsage.data.base import DataSplits
from tgsage.data.cifar import load_cifar
from tgsage.experiments import best_candidate
from tgsage.train.final import FinalPreset, train_final

ARCHIVE = "cifar-10-python-subset.tar.xz"


def _data(data_dir: Path, out: Path, train_size: int, val_size: int) -> DataSplits:
    root = out / "data"
    if not (root / "cifar-10-batches-py").exists():
        root.mkdir(parents=True, exist_ok=True)
        with tarfile.open(data_dir / ARCHIVE) as tar:
            tar.extractall(root, filter="data")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # batches 3-5 are not in the subset
        splits = load_cifar("cifar10", root, val_size=val_size, seed=0)
    train = splits.train.subset(slice(0, train_size))
    return DataSplits(train, splits.val, splits.test)


def _search(out: Path, data_root: Path, candidates: int) -> Any:
    from tgsage.search import run_search

    cfg = {
        "name": "final-study-nb201-synflow",
        "space": "nb201",
        "strategy": "tpe",
        "score": "proxy",
        "proxy": "synflow",
        "budget": "0ep",
        "data": {"name": "cifar10", "root": str(data_root), "val_size": 1000},
        "n_candidates": candidates,
        "workers": 1,
        "seed": 0,
        "device": "cpu",
        "run_dir": str(out / "search"),
    }
    run_search(cfg)
    return best_candidate(out / "search")


def _published(table: Path, spec: Any) -> float | None:
    """The cell's published 200-epoch CIFAR-10 test accuracy, if the table has it."""
    if not table.exists():
        return None
    from tgsage.experiments import load_nb201_table

    truth = load_nb201_table(table, dataset="cifar10")
    return truth.get(spec.spec_hash)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, required=True, help="folder with " + ARCHIVE)
    ap.add_argument("--out", type=Path, required=True, help="runs folder (bulky outputs)")
    ap.add_argument("--records", type=Path, default=Path("benchmarks/results/final_training.jsonl"))
    ap.add_argument("--candidates", type=int, default=64)
    ap.add_argument("--epochs", type=float, default=15)
    ap.add_argument("--width-mult", type=float, default=0.5)
    ap.add_argument("--train-size", type=int, default=19000)
    ap.add_argument("--val-size", type=int, default=1000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    data = _data(args.data_dir, args.out, args.train_size, args.val_size)
    best = _search(args.out, args.out / "data", args.candidates)
    arch = best.spec.to_arch_string()
    published = _published(args.data_dir / "nats-bench-tss-dev.csv", best.spec)
    print(f"found: {arch} (trial {best.number}, synflow score {best.score}); published {published}")
    arms = {
        "cifar_final": "cifar_final",
        "search": FinalPreset(train="nas_bench_201", description="the search space's preset"),
    }
    done = set()
    if args.records.exists():
        for line in args.records.read_text().splitlines():
            r = json.loads(line)
            done.add(
                (r["arch"], r["arm"], r["seed"], r["epochs"], r["width_mult"], r["train_images"])
            )
    for seed in args.seeds:
        for arm, preset in arms.items():
            n_train = len(data.train) + len(data.val)
            key = (arch, arm, seed, args.epochs, args.width_mult, n_train)
            if key in done:
                continue
            t0 = time.time()
            res = train_final(
                best.spec,
                data,
                preset,
                args.out / f"{arm}-s{seed}",
                epochs=args.epochs,
                width_mult=args.width_mult,
                device="cpu",
                seed=seed,
                on_epoch=lambda e, arm=arm, seed=seed: print(
                    f"{arm} s{seed} epoch {e.epoch}: loss {e.loss:.3f} ({e.seconds:.0f} s)",
                    flush=True,
                ),
            )
            record = {
                "arch": arch,
                "arm": arm,
                "seed": seed,
                "epochs": args.epochs,
                "width_mult": args.width_mult,
                "train_images": n_train,
                "held_out": res.held_out,
                "held_out_images": len(data.test) if data.test is not None else len(data.val),
                "accuracy": res.accuracy,
                "status": res.status,
                "config": res.config.model_dump(mode="json"),
                "epoch_losses": [round(h.loss, 5) for h in res.history],
                "examples": res.examples,
                "train_seconds": round(res.seconds, 1),
                "wall_seconds": round(time.time() - t0, 1),
                "params": res.params,
                "published_200ep_test_accuracy": published,
                "search": {"candidates": args.candidates, "score": "synflow", "trial": best.number},
                "notes": res.notes,
            }
            args.records.parent.mkdir(parents=True, exist_ok=True)
            with args.records.open("a") as fh:
                fh.write(json.dumps(record) + "\n")
            print(json.dumps({k: record[k] for k in ("arm", "seed", "accuracy", "train_seconds")}))


if __name__ == "__main__":
    main()
