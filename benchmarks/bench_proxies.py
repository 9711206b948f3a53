"""Cost of each zero-cost proxy and of all of them together, against one SGD training step.

Baseline (same run, same model, same batch): one SGD step (momentum 0.9) of the candidate,
i.e. forward + cross-entropy + backward + update on a batch of 64. Candidates: random
NAS-Bench-201 cells (C = 16, N = 5) and random layer-space specs (N_L = 10). Every cost is
timed through ``compute_proxies`` (input checks and the model build excluded: the model is
passed in) after one warm-up call of everything, in ``--repeats`` round-robin rounds (the SGD
step and every item once per round, so load from other processes hits them alike); the
ratio is the median over rounds and candidates of (item / SGD step of the same round):

- each proxy alone (what a user pays for that one score);
- every proxy in one call (the data-based ones share one train-mode forward and its backward
  passes; VKDNW runs its own eval pass with K - 1 backward passes for K classes);
- every proxy but VKDNW in one call (one forward, three backward passes), without
  az_trainability too (two backward passes), and the sum of the single calls (the cost without
  the shared pass).

    python benchmarks/bench_proxies.py                    # 3 NB201 cells, 2 layer specs
    python benchmarks/bench_proxies.py --quick            # 1 of each, width 0.25, 16x16
    python benchmarks/bench_proxies.py --device cuda      # on a GPU
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tgsage.data.pipeline import resolve_device
from tgsage.proxies import compute_proxies, list_proxies
from tgsage.spaces import build_model, get_space

#: The proxies tgsage had before the shared pass (BENCHMARKS section 10 timed them together).
FIRST_SEVEN = ["params", "flops", "grad_norm", "snip", "jacob_cov", "naswot", "synflow"]


def _timed(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Median seconds of ``repeats`` calls of ``fn``."""
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _sgd_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    net = copy.deepcopy(model).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        opt.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 spec per space, small nets")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--nb201", type=int, default=3, help="NB201 cells")
    parser.add_argument("--layer", type=int, default=2, help="layer-space specs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dev = resolve_device(args.device)
    counts = (1, 1) if args.quick else (args.nb201, args.layer)
    width, size = (0.25, 16) if args.quick else (1.0, 32)
    spaces = [
        ("nb201 C=16 N=5" if not args.quick else "nb201", get_space("nb201"), counts[0]),
        ("layer N_L=10", get_space("layer", max_layers=10), counts[1]),
    ]
    names = list_proxies()
    no_fisher = [n for n in names if not n.startswith("vkdnw")]
    two_backward = [n for n in no_fisher if n != "az_trainability"]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 3, size, size, generator=gen).to(dev)
    y = torch.randint(0, 10, (args.batch,), generator=gen).to(dev)
    print(
        f"torch {torch.__version__}, device {dev}"
        + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else "")
        + f", threads={args.threads}, batch {args.batch}, {size}x{size}, width {width}, "
        f"10 classes, median of {args.repeats} round-robin rounds per candidate"
    )
    print(f"{'space':<15} {'proxy':<31} {'ms':>9} {'x SGD step':>10}")
    for label, space, n_specs in spaces:
        if n_specs == 0:
            continue
        rng = np.random.default_rng(0)
        ratios: dict[str, list[float]] = {}
        millis: dict[str, list[float]] = {}
        for _ in range(n_specs):
            spec = space.random_spec(rng)
            torch.manual_seed(0)
            model = build_model(spec, 10, (3, size, size), width, device=dev)

            def run(which: list[str], model: nn.Module = model) -> Callable[[], object]:
                return lambda: compute_proxies(model, x, y, which, device=dev)

            items: dict[str, Callable[[], object]] = {"SGD step": _sgd_step(model, x, y)}
            items |= {n: run([n]) for n in names}
            items["the first seven, 1 call"] = run(FIRST_SEVEN)
            items["all but vkdnw, 1 call"] = run(no_fisher)
            items["all but vkdnw, az_trainability"] = run(two_backward)
            items["all, 1 call"] = run(names)
            for fn in items.values():  # warm-up of every code path
                fn()
            for _ in range(args.repeats):  # round robin: load changes hit every item alike
                t = {k: _timed(fn, dev, 1) for k, fn in items.items()}
                t["all but vkdnw, sum alone"] = sum(t[n] for n in no_fisher)
                for k, v in t.items():
                    ratios.setdefault(k, []).append(v / t["SGD step"])
                    millis.setdefault(k, []).append(v * 1e3)
        for k in ratios:
            print(f"{label:<15} {k:<31} {np.median(millis[k]):9.1f} {np.median(ratios[k]):10.2f}")


if __name__ == "__main__":
    main()
