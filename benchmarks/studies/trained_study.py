"""The trained predictivity study of NAS-Bench-201 cells on the CIFAR-10 subset (issue 12).

The "study setting" (benchmarks/results/README.md, "Trained study setting") in code: every
cell of a seeded sample of the NATS-Bench table is trained ONCE at width 0.5 with the cpu_demo
preset (seed 0), and at 0, 500, 2,500, 5,000, 10,000 and 20,000 examples its P (1,000
validation images), training-loss sums (SoTL, SoTL-E) and guidance of every teacher (RDM
Pearson, linear CKA, relation similarity; 500 probe images) are recorded; the seven zero-cost
proxies are measured at initialisation. Mature accuracy is the table's 200-epoch test accuracy.
One JSON line per (cell, seed), appended and fsynced, so the study resumes where it stopped
and grows over sessions; the weights at every budget go to ``--ckpt-dir`` so teachers added
later can score the same networks (``--rescore``).

    python benchmarks/studies/trained_study.py --data-dir DATA --table TABLE.csv \
        --teachers-dir runs/teachers --out benchmarks/results/trained_nb201_c10.jsonl \
        --ckpt-dir runs/ckpt [--cells 200] [--threads 1]

DATA is the folder holding ``cifar-10-batches-py`` (extracted from the data archive).
``--init-only`` measures the untrained networks only (TG, TG-cka, TG-rel of every teacher and
the proxies at budget 0, no P), a few seconds per cell, into its own ``--out`` file.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from trained_teachers import TEACHERS, study_data

from tgsage.data.base import DataSplits
from tgsage.data.probe import ProbeSet
from tgsage.experiments import load_nb201_table, read_pool_records, run_predictivity
from tgsage.models import get_model
from tgsage.teacher import Teacher, teacher_from_network

BUDGETS = ("0ex", "500ex", "2500ex", "5000ex", "10000ex", "20000ex")
PROXIES = ("params", "flops", "grad_norm", "snip", "synflow", "naswot", "jacob_cov")
COMPARISONS = ("pearson", "cka", "relation")
SETTING = {
    "width_mult": 0.5,
    "preset": "cpu_demo",
    "seed": 0,
    "probe_images": 500,
    "teacher_subsamples": 10,
    "order_seed": 201,
}


def study_probe(data) -> ProbeSet:
    """The first 500 validation images (per-image RDMs and Gram matrices)."""
    return ProbeSet.from_images(data.val, max_images=SETTING["probe_images"])


def study_cells(table: str, n: int) -> list[str]:
    """The first ``n`` cells (arch strings) of the zero-cost study's fixed order: the rows of
    the table permuted by ``numpy.random.default_rng(201)``, so the trained cells are also the
    first cells of ``zero_cost_nb201_<dataset>.jsonl`` and the study grows by appending.
    The selection / report halves are the zero-cost analysis's (``split_of`` there)."""
    with open(table, newline="") as fh:
        rows = list(csv.DictReader(fh))
    perm = np.random.default_rng(SETTING["order_seed"]).permutation(len(rows))
    return [rows[i]["ArchitectureString"] for i in perm[:n]]


def teacher_files(teachers_dir: Path, data, probe: ProbeSet) -> dict[str, Teacher]:
    """Teacher files for every trained teacher checkpoint found (built once, then loaded)."""
    out: dict[str, Teacher] = {}
    for meta in sorted(teachers_dir.glob("*.json"), key=lambda p: p.stat().st_mtime):
        info = json.loads(meta.read_text())
        name = info["name"]
        base = next((k for k in TEACHERS if name.startswith(k + "-")), None)
        weights = meta.with_suffix(".pt")
        if base is None or not weights.exists():
            continue
        path = teachers_dir / f"{name}.teacher.npz"
        if not path.exists():
            net = get_model(info["model"], num_classes=data.num_classes, **info["model_options"])
            net.load_state_dict(torch.load(weights, map_location="cpu"))
            t = teacher_from_network(
                net,
                probe,
                subsamples=SETTING["teacher_subsamples"],
                device="cpu",
                provenance={"test_accuracy": info["test_accuracy"], "recipe": info},
            )
            t.save(path)
        out[name] = Teacher.load(path)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--table", required=True, help="nats-bench-tss-dev.csv")
    ap.add_argument("--teachers-dir", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--ckpt-dir", type=Path, default=None)
    ap.add_argument("--cells", type=int, default=200)
    ap.add_argument(
        "--archs",
        type=Path,
        help="score these cells instead of the order's first --cells (arch strings, one a line)",
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--teachers", default="", help="comma-separated names (default: all)")
    ap.add_argument(
        "--init-only",
        action="store_true",
        help="untrained networks only (budget 0: TG variants and proxies, no P): cheap, at scale",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = study_data(args.data_dir)
    probe = study_probe(data)
    teachers = teacher_files(args.teachers_dir, data, probe)
    if args.teachers:
        teachers = {k: teachers[k] for k in args.teachers.split(",")}
    truth = load_nb201_table(args.table, dataset="cifar10")
    pool = study_cells(args.table, args.cells)
    if args.archs is not None:  # e.g. the cascade study's random cells (cascade_nb201.py cells)
        pool = list(
            dict.fromkeys(a.strip() for a in args.archs.read_text().splitlines() if a.strip())
        )
    print(f"{len(pool)} cells, teachers {list(teachers)}", flush=True)
    t0 = time.time()

    def progress(rec) -> None:
        n = len(read_pool_records(args.out))
        print(f"{n} done, {rec.spec_hash} {rec.status} {rec.seconds:.0f}s "
              f"({time.time() - t0:.0f}s)", flush=True)  # fmt: skip

    budgets = BUDGETS
    if args.init_only:  # P of an untrained network is chance: skip its validation pass
        data = DataSplits(train=data.train, val=data.train.subset(slice(0, 0)), test=None)
        budgets = ("0ex",)
    run_predictivity(
        pool,
        data,
        teachers,
        budgets=budgets,
        ground_truth=truth,
        proxies=PROXIES,
        comparisons=COMPARISONS,
        config=SETTING["preset"],
        width_mult=SETTING["width_mult"],
        device="cpu",
        seed=SETTING["seed"],
        store=args.out,
        probe=probe,
        checkpoint_dir=args.ckpt_dir,
        on_record=progress,
        channels_last=True,
        amp="off",  # float32: the setting stays fixed whatever the trainer's default becomes
    )


if __name__ == "__main__":
    main()
