"""Training-free scores for thousands of NAS-Bench-201 cells: a resumable, cached study.

``compute`` scores NB201 cells (from the data folder's ``nats-bench-tss-dev.csv``, in a fixed
seeded order so every prefix is a uniform random sample) with every registered zero-cost
proxy, at the benchmark's width (C = 16, N = 5), on a fixed seeded minibatch of real training
images per seed, and appends one JSON line per (arch, dataset, seed, score set) to the records
file; a rerun skips what is there, so the study grows over sessions. ``analyze`` (see
``zero_cost_analysis.py``) turns the records into the predictivity report.

    python benchmarks/studies/zero_cost_nb201.py --data-dir ../shared/data --dataset cifar10 \\
        --cells 4000 --seeds 0 --out benchmarks/results/zero_cost_nb201.jsonl

Run it at one thread in the background (``nohup ... &``); the record schema is in
``benchmarks/results/README.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
import tarfile
import time
from pathlib import Path

import numpy as np
import torch

from tgsage.data.cifar import load_cifar
from tgsage.proxies import compute_proxies, list_proxies
from tgsage.spaces.nb201 import DEFAULT_CELLS, DEFAULT_CHANNELS, NB201Spec

TABLE = "nats-bench-tss-dev.csv"
ARCHIVES = {
    "cifar10": ("cifar-10-python-subset.tar.xz", "cifar-10-batches-py"),
    "cifar100": ("cifar-100-python.tar.xz", "cifar-100-python"),
}
ORDER_SEED = 201  # the fixed order in which cells are scored
#: Score sets: a name for a group of proxies with fixed definitions and the initialisation they
#: are scored under (bump the name when either changes). VKDNW is scored as its authors do, on a
#: He-normal re-initialised network (its eval-mode Fisher depends on the weight scale); the
#: rest on tgsage's (PyTorch's default) initialisation, as NAS-Bench-Suite-Zero.
SCORE_SETS: dict[str, tuple[list[str], str | None]] = {
    "zc1": ([n for n in list_proxies() if not n.startswith("vkdnw")], None),
    "fisher1": (["vkdnw", "vkdnw_single"], "kaiming_normal"),
    # AZ-NAS's three terms again, after the block-input fix (zc1 records made before it paired
    # a cell with itself when a later cell read it through skip_connect); they supersede zc1's
    "az2": (["az_expressivity", "az_progressivity", "az_trainability"], None),
}
SUPERSEDING = ("az2",)  # score sets whose values replace earlier sets' of the same names


def read_table(data_dir: Path) -> list[dict[str, str]]:
    with open(data_dir / TABLE, newline="") as fh:
        return list(csv.DictReader(fh))


def cell_order(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """The table's rows in the study's fixed seeded order."""
    perm = np.random.default_rng(ORDER_SEED).permutation(len(rows))
    return [rows[i] for i in perm]


def dataset_folder(data_dir: Path, dataset: str, cache_dir: Path) -> Path:
    """The extracted dataset folder (extracted from the data folder's archive once)."""
    archive, folder = ARCHIVES[dataset]
    target = cache_dir / folder
    if not target.is_dir():
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tarfile.open(data_dir / archive, "r:xz") as tar:
            tar.extractall(cache_dir, filter="data")
    return target


def minibatch(
    data_dir: Path, dataset: str, cache_dir: Path, seed: int, batch: int
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """A fixed seeded minibatch of training images (uint8) and labels for ``seed``."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the CIFAR-10 subset has 2 of 5 training batches
        splits = load_cifar(dataset, dataset_folder(data_dir, dataset, cache_dir), val_size=0)
    train = splits.train
    gen = torch.Generator().manual_seed(10_000 + seed)
    idx = torch.randperm(len(train.labels), generator=gen)[:batch].sort().values
    return train.images[idx], train.labels[idx], train.num_classes


def read_records(path: Path) -> list[dict]:
    """Every complete record of a records file (a line cut by a crash is skipped)."""
    records = []
    if path.is_file():
        with open(path) as fh:
            for line in fh:
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # empty, or cut by a crash: scored again
    return records


def done_keys(path: Path) -> set[tuple[str, str, int, str]]:
    return {(r["arch"], r["dataset"], r["seed"], r["score_set"]) for r in read_records(path)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="e.g. ../shared/data")
    parser.add_argument("--dataset", choices=sorted(ARCHIVES), default="cifar10")
    parser.add_argument("--cells", type=int, default=1000, help="first N cells of the order")
    parser.add_argument("--start", type=int, default=0, help="skip the first N of the order")
    parser.add_argument(
        "--archs",
        type=Path,
        help="score these cells instead (a file of NB201 arch strings, one per line)",
    )
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--score-sets", default="zc1,fisher1", help=f"of {sorted(SCORE_SETS)}")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--normalize", default="per_image", choices=["per_image", "unit"])
    parser.add_argument("--cache-dir", type=Path, default=Path("~/.cache/tgsage").expanduser())
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/zero_cost_nb201.jsonl")
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    sets = [s.strip() for s in args.score_sets.split(",") if s.strip()]
    rows = cell_order(read_table(args.data_dir))[args.start : args.start + args.cells]
    if args.archs is not None:
        wanted = [a.strip() for a in args.archs.read_text().splitlines() if a.strip()]
        by_arch = {r["ArchitectureString"]: r for r in read_table(args.data_dir)}
        missing = [a for a in wanted if a not in by_arch]
        if missing:
            raise SystemExit(f"--archs: {len(missing)} cells not in the table, e.g. {missing[0]}")
        rows = [by_arch[a] for a in dict.fromkeys(wanted)]
    done = done_keys(args.out)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    batches = {
        s: minibatch(args.data_dir, args.dataset, args.cache_dir, s, args.batch) for s in seeds
    }
    todo = [
        (row, seed, name)
        for row in rows
        for seed in seeds
        for name in sets
        if (row["ArchitectureString"], args.dataset, seed, name) not in done
    ]
    print(
        f"{len(todo)} records to compute ({len(rows)} cells x {seeds} x {sets}; "
        f"{len(done)} records already in {args.out})",
        flush=True,
    )
    t_start = time.perf_counter()
    for k, (row, seed, name) in enumerate(todo):
        images, labels, classes = batches[seed]
        spec = NB201Spec.from_arch_string(row["ArchitectureString"])
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        names, init = SCORE_SETS[name]
        scores = compute_proxies(
            spec,
            images,
            labels,
            names,
            init=init,
            num_classes=classes,
            device="cpu",
            seed=seed,
            normalize=args.normalize,
            timings=timings,
        )
        record = {
            "arch": row["ArchitectureString"],
            "index": int(row["Index"]),
            "dataset": args.dataset,
            "seed": seed,
            "score_set": name,
            "batch": args.batch,
            "channels": DEFAULT_CHANNELS,
            "cells_per_stage": DEFAULT_CELLS,
            "normalize": args.normalize,
            "init": init or "default",
            "scores": {n: float(f"{v:.9g}") for n, v in scores.items()},
            "seconds": {n: round(t, 3) for n, t in timings.items()},
            "seconds_total": round(time.perf_counter() - t0, 3),
            "threads": args.threads,
            "torch": torch.__version__,
        }
        with open(args.out, "a") as fh:
            fh.write(json.dumps(record, allow_nan=True, separators=(",", ":")) + "\n")
        if (k + 1) % 10 == 0 or k + 1 == len(todo):
            rate = (time.perf_counter() - t_start) / (k + 1)
            print(
                f"{k + 1}/{len(todo)} records, {rate:.1f} s each, eta "
                f"{rate * (len(todo) - k - 1) / 3600:.1f} h",
                flush=True,
            )


if __name__ == "__main__":
    main()
