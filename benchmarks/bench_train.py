"""Training throughput: tgsage.train.train_model vs a plain hand-written PyTorch loop.

Same model (small CNN, same initial weights), same random 32x32 data held in memory, same batch
size, same optimizer (SGD Nesterov, constant lr) and the same augmentation (pad 4 + random
crop, flip, per-image standardisation). The baseline does what a plain script does: shuffle
indices each epoch, slice the uint8 tensor, augment image by image in Python, step. A third
row uses the baseline loop with tgsage's vectorised batch augmentation, to separate pipeline
gains from trainer overhead.

    python benchmarks/bench_train.py            # ~1-2 min on one CPU core
    python benchmarks/bench_train.py --quick    # a few seconds
"""

from __future__ import annotations

import argparse
import math
import random
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from tgsage.data.base import ImageSet
from tgsage.data.pipeline import AUGMENTATIONS, augment_batch
from tgsage.models import get_model
from tgsage.train import train_model


def make_data(n: int, num_classes: int, seed: int = 0) -> ImageSet:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, num_classes, (n,), generator=g)
    return ImageSet(images=images, labels=labels, num_classes=num_classes, name="bench")


def make_model(args: argparse.Namespace) -> torch.nn.Module:
    torch.manual_seed(0)
    return get_model("small_cnn", num_classes=10, width=args.width, depth=3)


def make_opt(model: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4
    )


def augment_per_image(x: torch.Tensor) -> torch.Tensor:
    """The simple way: pad, crop, flip and standardise each image in a Python loop."""
    out = []
    for img in x:
        img = F.pad(img, (4, 4, 4, 4))
        dy, dx = random.randint(0, 8), random.randint(0, 8)
        img = img[:, dy : dy + 32, dx : dx + 32]
        if random.random() < 0.5:
            img = img.flip(2)
        img = img.float()
        img = (img - img.mean()) / max(img.std(correction=0).item(), 1 / math.sqrt(img.numel()))
        out.append(img)
    return torch.stack(out)


def plain_loop(
    model: torch.nn.Module,
    data: ImageSet,
    steps: int,
    batch: int,
    lr: float,
    augment: Callable[[torch.Tensor], torch.Tensor],
) -> int:
    opt = make_opt(model, lr)
    model.train()
    n, done, examples = len(data), 0, 0
    while done < steps:
        perm = torch.randperm(n)
        for i in range(0, n, batch):
            if done == steps:
                break
            idx = perm[i : i + batch]
            x, y = augment(data.images[idx]), data.labels[idx]
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
            examples += len(idx)
    return examples


def vectorised_augment(x: torch.Tensor) -> torch.Tensor:
    return augment_batch(x, AUGMENTATIONS["cifar"], None)


def run_tgsage(model: torch.nn.Module, data: ImageSet, steps: int, batch: int, lr: float) -> int:
    res = train_model(
        model,
        data,
        f"{steps}steps",
        "cpu_demo",
        device="cpu",
        batch_size=batch,
        lr=lr,
        schedule="constant",
        eval_at_end=False,
        amp="off",
        channels_last=False,
    )
    assert res.ok, res.message
    return res.examples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short run (smoke test)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    steps = args.steps or (8 if args.quick else 40)
    repeats = args.repeats or (1 if args.quick else 5)
    data = make_data(4096, 10)
    lr = 0.05

    methods: dict[str, Callable[[torch.nn.Module], int]] = {
        "plain loop, per-image aug (baseline)": lambda m: plain_loop(
            m, data, steps, args.batch, lr, augment_per_image
        ),
        "plain loop, tgsage batch aug": lambda m: plain_loop(
            m, data, steps, args.batch, lr, vectorised_augment
        ),
        "tgsage train_model": lambda m: run_tgsage(m, data, steps, args.batch, lr),
    }
    for fn in methods.values():  # warm-up (allocator, thread pools)
        fn(make_model(args))
    times: dict[str, list[float]] = {k: [] for k in methods}
    cpu: dict[str, list[float]] = {k: [] for k in methods}
    examples: dict[str, int] = {}
    for _ in range(repeats):  # interleaved so drifting machine load hits all methods alike
        for name, fn in methods.items():
            model = make_model(args)
            t0, c0 = time.perf_counter(), time.process_time()
            examples[name] = fn(model)
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)

    base = "plain loop, per-image aug (baseline)"
    # Best-of-r wall time and process CPU time: the machine is shared, and with one torch
    # thread CPU time is the measure least disturbed by other processes' load.
    wall = {k: examples[k] / min(v) for k, v in times.items()}
    proc = {k: examples[k] / min(v) for k, v in cpu.items()}
    print(
        f"small_cnn width {args.width}, 32x32, batch {args.batch}, {steps} steps, best of "
        f"{repeats}, torch threads {args.threads}, CPU"
    )
    print(
        f"{'method':38s} {'examples':>8s} {'wall s':>7s} {'ex/s':>7s} {'ratio':>6s} "
        f"{'cpu s':>7s} {'ex/cpu-s':>8s} {'ratio':>6s}"
    )
    for k in methods:
        print(
            f"{k:38s} {examples[k]:8d} {min(times[k]):7.3f} {wall[k]:7.1f} "
            f"{wall[k] / wall[base]:6.2f} {min(cpu[k]):7.3f} {proc[k]:8.1f} "
            f"{proc[k] / proc[base]:6.2f}"
        )


if __name__ == "__main__":
    main()
