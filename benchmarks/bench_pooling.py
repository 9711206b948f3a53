"""AvgPool3x3 (depthwise conv of ones / window counts) vs torch's exclude-padding avg_pool2d.

Prints forward+backward time of the 3x3 exclude-padding average pool at several widths, and one
SGD step of a pooling-heavy NAS-Bench-201 cell network, each with the ratio against torch's
``AvgPool2d(3, 1, 1, count_include_pad=False)`` measured in the same run (the baseline runs
through ``native_pooling()``, which makes AvgPool3x3 call torch's kernel).

    python benchmarks/bench_pooling.py [--quick] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from tgsage.spaces import build_model
from tgsage.spaces.nb201 import NB201Spec
from tgsage.spaces.pooling import AvgPool3x3, native_pooling


def timed(fn, repeats: int, device: torch.device) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    repeats = 3 if args.quick else 7
    widths = (8, 32) if args.quick else (8, 16, 32, 64)
    print(f"{'case':<38}{'torch ms':>10}{'ours ms':>10}{'speed-up':>10}")
    pool = AvgPool3x3(1)
    for c in widths:
        x = torch.randn(64, c, 32, 32, device=dev, requires_grad=True)

        def step(x: torch.Tensor = x) -> None:
            pool(x).sum().backward()

        ours = timed(step, repeats, dev)
        with native_pooling():
            base = timed(step, repeats, dev)
        print(
            f"{f'pool fwd+bwd (64, {c}, 32, 32)':<38}{base * 1e3:>10.1f}{ours * 1e3:>10.1f}"
            f"{base / ours:>9.2f}x"
        )
    spec = NB201Spec.from_arch_string(
        "|avg_pool_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|skip_connect~0|avg_pool_3x3~1|"
        "avg_pool_3x3~2|"
    )
    torch.manual_seed(0)
    net = build_model(spec, num_classes=10, width_mult=0.5).to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    xb = torch.randn(64, 3, 32, 32, device=dev)
    yb = torch.randint(0, 10, (64,), device=dev)

    def sgd() -> None:
        opt.zero_grad()
        F.cross_entropy(net(xb), yb).backward()
        opt.step()

    ours = timed(sgd, repeats, dev)
    with native_pooling():
        base = timed(sgd, repeats, dev)
    print(
        f"{'NB201 pooling-heavy cell, SGD step':<38}{base * 1e3:>10.1f}{ours * 1e3:>10.1f}"
        f"{base / ours:>9.2f}x"
    )


if __name__ == "__main__":
    main()
