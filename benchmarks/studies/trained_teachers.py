"""Train the teachers of the trained predictivity study (issue 12, items 2 and 5).

Teachers of increasing accuracy on the study's CIFAR-10 subset (see
``benchmarks/results/README.md``, "Trained study setting"): the same 19,000 training images
the candidates train on, accuracy on the official 10,000 test images. Weights go to
``--out/<name>-<budget>.pt`` with a JSON sidecar (accuracy, time, recipe); teacher files are built from
them by ``trained_study.py``. Resumable: a teacher whose ``.pt`` exists is skipped.

    python benchmarks/studies/trained_teachers.py --data-dir DATA --out runs/teachers \
        [--only NAME] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from tgsage.data.pipeline import get_augmentation, normalize_images
from tgsage.data.registry import get_dataset
from tgsage.models import get_model
from tgsage.train import Trainer
from tgsage.train.evaluation import evaluate_accuracy

# name -> (model, model options, preset, preset overrides, budget, checkpoints). The whitened
# CNN's lr was chosen by one 1.5-epoch probe: lr 0.8 with logits scaled by 1/9 reached 0.667
# validation accuracy, lr 0.2 with unscaled logits 0.398. Its checkpoints after 1 and 3 epochs
# (same run) are the weaker teachers: one architecture, three levels of accuracy.
TEACHERS: dict[str, tuple[str, dict, str, dict, str, tuple[str, ...]]] = {
    "whitened32": (
        "whitened_cnn",
        {"base_width": 32},
        "cpu_demo",
        {
            "epochs": 10,
            "lr": 0.8,
            "batch_size": 256,
            "label_smoothing": 0.2,
            "warmup_epochs": 1,
            "weight_decay": 5e-4,
        },
        "10ep",
        ("1ep", "3ep"),
    ),
    # BENCHMARKS sec. 15's teacher: ResNet-20 half width, 15 epochs cosine
    "resnet20h": ("resnet20_cifar", {"width_mult": 0.5}, "cpu_demo", {}, "15ep", ()),
}


def study_data(data_dir: str):
    """The study's CIFAR-10 subset: 19,000 train / 1,000 validation (seed 0) + official test."""
    return get_dataset("cifar10", root=data_dir, val_size=1000, seed=0)


def train_teacher(name: str, data, out: Path, device: str = "cpu") -> list[dict]:
    """Train one teacher; save weights and a JSON summary at each checkpoint and the end."""
    model_name, opts, preset, overrides, budget, checkpoints = TEACHERS[name]
    torch.manual_seed(0)
    net = get_model(model_name, num_classes=data.num_classes, **opts)
    trainer = Trainer(
        net, data, preset, device=device, seed=0, channels_last=True, amp="off", **overrides
    )
    normalize = get_augmentation(trainer.config.augment).normalize
    if hasattr(net, "init_whitening"):
        net.init_whitening(normalize_images(data.train.images[:5000], normalize))
    t0 = time.perf_counter()
    infos = []
    for point in (*checkpoints, budget):
        tag = f"{name}-{point}"
        res = trainer.train_until(point).raise_if_failed()
        test_acc = evaluate_accuracy(net, data.test, device, normalize=normalize)
        info = {
            "name": tag,
            "model": model_name,
            "model_options": opts,
            "preset": preset,
            "overrides": overrides,
            "budget": point,
            "examples": res.examples,
            "val_accuracy": res.val_accuracy,
            "test_accuracy": test_acc,
            "train_seconds": res.seconds,
            "wall_seconds": time.perf_counter() - t0,
            "params": sum(p.numel() for p in net.parameters()),
        }
        torch.save(net.state_dict(), out / f"{tag}.pt")
        (out / f"{tag}.json").write_text(json.dumps(info, indent=1))
        print(json.dumps(info), flush=True)
        infos.append(info)
    return infos


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--only", action="append")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    data = study_data(args.data_dir)
    for name in args.only or list(TEACHERS):
        if (args.out / f"{name}-{TEACHERS[name][4]}.pt").exists():
            print(f"{name}: done already", flush=True)
            continue
        train_teacher(name, data, args.out)


if __name__ == "__main__":
    main()
