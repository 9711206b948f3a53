"""Time to sample + build + one forward pass per candidate, per search space, on CPU.

Baseline (same run): building and running a plain hand-written ``nn.Sequential`` of ten
3x3 conv-BN-ReLU layers (32 filters, same width multiplier and input), i.e. what one small
CNN costs in torch without any spec machinery.

    python benchmarks/bench_spaces.py            # 50 candidates per setting
    python benchmarks/bench_spaces.py --quick    # 10 candidates per setting
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn

from tgsage.spaces import build_model, get_space


def _baseline(width_mult: float, shape: tuple[int, int, int], batch: int) -> float:
    t0 = time.perf_counter()
    c = max(1, round(32 * width_mult))
    layers: list[nn.Module] = []
    cin = shape[0]
    for _ in range(10):
        layers += [nn.Conv2d(cin, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
        cin = c
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10))
    with torch.no_grad():
        model(torch.randn(batch, *shape))
    return time.perf_counter() - t0


def _candidates(space, n: int, width_mult: float, shape, batch: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = torch.randn(batch, *shape)
    times = np.zeros((n, 3))
    for i in range(n):
        t0 = time.perf_counter()
        spec = space.random_spec(rng)
        t1 = time.perf_counter()
        model = build_model(spec, num_classes=10, input_shape=shape, width_mult=width_mult)
        t2 = time.perf_counter()
        with torch.no_grad():
            model.forward_with_features(x)
        t3 = time.perf_counter()
        times[i] = (t1 - t0, t2 - t1, t3 - t2)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 candidates per setting")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    n = 10 if args.quick else 50
    settings = [
        ("tiny CPU", 0.125, (3, 16, 16), 8),
        ("paper size", 1.0, (3, 32, 32), 8),
    ]
    spaces = [
        ("layer N_L=10", get_space("layer", max_layers=10)),
        ("layer N_L=20", get_space("layer", max_layers=20)),
        ("cell B=5 N=2", get_space("cell", blocks=5, num_cells=2)),
    ]
    print(
        f"torch {torch.__version__}, threads={args.threads}, {n} candidates per row, medians in ms"
    )
    header = f"{'space':<14} {'setting':<11} {'sample':>7} {'build':>8} {'forward':>8} "
    print(header + f"{'total':>8} {'baseline':>9} {'ratio':>6}")
    for label, wm, shape, batch in settings:
        base = float(np.median([_baseline(wm, shape, batch) for _ in range(max(5, n // 5))]))
        for name, space in spaces:
            t = _candidates(space, n, wm, shape, batch) * 1e3
            med = np.median(t, axis=0)
            total = float(np.median(t.sum(axis=1)))
            print(
                f"{name:<14} {label:<11} {med[0]:7.2f} {med[1]:8.1f} {med[2]:8.1f} "
                f"{total:8.1f} {base * 1e3:9.1f} {total / (base * 1e3):6.1f}"
            )
    print(
        "(tiny CPU: width_mult 0.125, 16x16, batch 8; paper size: width 1.0, 32x32, batch 8;"
        " forward = forward_with_features, no grad; ratio = total / baseline)"
    )


if __name__ == "__main__":
    main()
