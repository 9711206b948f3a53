"""Time of each zero-cost proxy on typical candidates, against one SGD training step.

Baseline (same run, same model, same batch): one SGD step (momentum 0.9) of the candidate,
i.e. forward + cross-entropy + backward + update on a batch of 64. A proxy is worth using
when it costs about a step or less while the accuracy it predicts costs thousands of steps.
Candidates: random layer-space specs (N_L = 10) and, when the space is registered, random
NAS-Bench-201 cells (N = 5; C = 16 times the width). Times are medians over repeats after one warm-up call;
each proxy is timed through ``compute_proxies`` (input checks included).

    python benchmarks/bench_proxies.py                 # 3 specs per space, paper size 32x32
    python benchmarks/bench_proxies.py --quick         # 1 spec, width 0.25, 16x16 images
    python benchmarks/bench_proxies.py --device cuda   # on a GPU
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
from tgsage.spaces import build_model, get_space, list_spaces


def _timed(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Median seconds of ``fn`` after one warm-up call."""
    fn()
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
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dev = resolve_device(args.device)
    n_specs, repeats = (1, 3) if args.quick else (3, 5)
    width, size = (0.25, 16) if args.quick else (1.0, 32)
    spaces = [("layer N_L=10", get_space("layer", max_layers=10))]
    if "nb201" in list_spaces():
        spaces.append(("nb201 N=5", get_space("nb201")))
    names = list_proxies()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 3, size, size, generator=gen).to(dev)
    y = torch.randint(0, 10, (args.batch,), generator=gen).to(dev)
    print(
        f"torch {torch.__version__}, device {dev}"
        + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else "")
        + f", threads={args.threads}, batch {args.batch}, {size}x{size}, width {width}, "
        f"{n_specs} spec(s) per space, median of {repeats} after a warm-up"
    )
    print(f"{'space':<15} {'proxy':<12} {'ms':>9} {'x SGD step':>10}")
    for label, space in spaces:
        rng = np.random.default_rng(0)
        step_ms, proxy_ms, all_ms = [], {n: [] for n in names}, []
        for _ in range(n_specs):
            spec = space.random_spec(rng)
            torch.manual_seed(0)
            model = build_model(spec, 10, (3, size, size), width, device=dev)
            step_ms.append(_timed(_sgd_step(model, x, y), dev, repeats) * 1e3)
            for n in names:

                def run(n: str = n, model: nn.Module = model) -> object:
                    return compute_proxies(model, x, y, [n], device=dev)

                proxy_ms[n].append(_timed(run, dev, repeats) * 1e3)

            def run_all(model: nn.Module = model) -> object:
                return compute_proxies(model, x, y, device=dev)

            all_ms.append(_timed(run_all, dev, repeats) * 1e3)
        base = np.array(step_ms)
        print(f"{label:<15} {'SGD step':<12} {np.median(base):9.1f} {1.0:10.2f}")
        for n, t in [*((n, np.array(proxy_ms[n])) for n in names), ("all, 1 call", all_ms)]:
            t = np.asarray(t)
            print(f"{label:<15} {n:<12} {np.median(t):9.1f} {np.median(t / base):10.2f}")


if __name__ == "__main__":
    main()
