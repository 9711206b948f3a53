"""Data benchmarks: synthetic-object rendering speed and how hard the task is.

1. Rendering throughput (images/s) of the batched renderer vs the same renderer driven one image
   at a time (the per-item-loop baseline), at 32x32 and 64x64.
2. Difficulty: test accuracy on the 8 categories of a linear classifier on pixels (the
   baseline) vs a small CNN, both trained with the same plain hand-written torch loop.
   "Architecture matters" means the CNN beats the linear model clearly.

Run:  python benchmarks/bench_data.py          (full: 10k train images, ~10 min on 1 CPU core)
      python benchmarks/bench_data.py --quick  (smaller, ~2 min)
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from tgsage.data.synthetic import SyntheticObjects, make_synthetic_objects


def throughput(res: int, n: int, chunk: int) -> float:
    lib = SyntheticObjects(0)
    ids = torch.arange(n) % 64
    lib.render(ids[:8], res, seed=0, chunk=chunk)  # warm-up
    t0 = time.perf_counter()
    lib.render(ids, res, seed=1, chunk=chunk)
    return n / (time.perf_counter() - t0)


def small_cnn(num_classes: int) -> nn.Module:
    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(
        *block(3, 32),
        nn.MaxPool2d(2),
        *block(32, 64),
        nn.MaxPool2d(2),
        *block(64, 128),
        *block(128, 128),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(128, num_classes),
    )


def linear_model(in_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    c, h, w = in_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, num_classes))


def standardize(x: torch.Tensor) -> torch.Tensor:
    """Per-image standardisation, as in the paper's CIFAR preprocessing."""
    x = x.float() / 255
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    s = x.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-3)
    return (x - m) / s


def train_eval(
    model: nn.Module,
    xtr: torch.Tensor,
    ytr: torch.Tensor,
    xte: torch.Tensor,
    yte: torch.Tensor,
    epochs: int,
    lr: float,
    wd: float,
    batch: int = 128,
    seed: int = 0,
    augment: bool = False,
) -> tuple[float, float, float]:
    """Plain loop: AdamW + cosine schedule; returns (train acc, test acc, seconds)."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    steps = epochs * ((len(xtr) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(xtr), generator=g)
        for i in range(0, len(xtr), batch):
            idx = perm[i : i + batch]
            xb = xtr[idx]
            if augment:  # random horizontal flip of the whole batch half
                flip = torch.rand(len(idx), generator=g) < 0.5
                xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
            loss = loss_fn(model(xb), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    secs = time.perf_counter() - t0

    @torch.no_grad()
    def acc(x: torch.Tensor, y: torch.Tensor) -> float:
        model.eval()
        pred = torch.cat([model(x[i : i + 512]).argmax(1) for i in range(0, len(x), 512)])
        return float((pred == y).float().mean())

    return acc(xtr, ytr), acc(xte, yte), secs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller run (~2 min)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    print("== rendering throughput (images/s, 1 thread) ==")
    print(f"{'res':>5} {'batched':>10} {'per-image':>10} {'speed-up':>9}")
    for res, n in ((32, 2048 if args.quick else 8192), (64, 512 if args.quick else 2048)):
        fast = throughput(res, n, chunk=64)
        slow = throughput(res, max(64, n // 16), chunk=1)
        print(f"{res:>5} {fast:>10.0f} {slow:>10.0f} {fast / slow:>8.1f}x")

    n_train, n_test = (4000, 2000) if args.quick else (10000, 2000)
    cnn_epochs = 8 if args.quick else 15
    t0 = time.perf_counter()
    splits = make_synthetic_objects(n_train, 0, n_test, resolution=32, seed=args.seed)
    gen_s = time.perf_counter() - t0
    assert splits.test is not None
    xtr, ytr = standardize(splits.train.images), splits.train.labels
    xte, yte = standardize(splits.test.images), splits.test.labels
    print(
        f"\n== difficulty: 8 categories, 32x32, {n_train} train / {n_test} test "
        f"(generated in {gen_s:.1f} s) =="
    )
    print(f"{'model':>12} {'train acc':>10} {'test acc':>9} {'seconds':>8}")
    lin = train_eval(
        linear_model((3, 32, 32), 8),
        xtr,
        ytr,
        xte,
        yte,
        epochs=30,
        lr=2e-3,
        wd=1e-2,
        seed=args.seed,
    )
    print(f"{'linear':>12} {lin[0]:>10.3f} {lin[1]:>9.3f} {lin[2]:>8.1f}")
    cnn = train_eval(
        small_cnn(8),
        xtr,
        ytr,
        xte,
        yte,
        epochs=cnn_epochs,
        lr=3e-3,
        wd=5e-4,
        seed=args.seed,
        augment=True,
    )
    print(f"{'small CNN':>12} {cnn[0]:>10.3f} {cnn[1]:>9.3f} {cnn[2]:>8.1f}")
    print(f"chance = 0.125; CNN / linear test accuracy = {cnn[1] / max(lin[1], 1e-9):.2f}x")


if __name__ == "__main__":
    main()
