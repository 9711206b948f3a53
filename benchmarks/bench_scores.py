"""Cost of teacher guidance per candidate, against one SGD training step (issue 12).

What a user pays for TG, TG-cka and TG-rel on top of training: one no-grad pass of the probe
images through the candidate, its RDMs and/or Gram matrices, and the comparison with the
teacher's (``tgsage.evaluate.measure_guidance``). Baseline (same run, same candidate): one SGD
step (momentum 0.9, batch 64, forward + cross-entropy + backward + update). Candidates: random
NAS-Bench-201 cells (N = 5) at the study's width (C = 8) or the benchmark's (C = 16), 32x32
images; teacher: the study's whitened CNN (base width 32, untrained - the cost does not depend
on its weights) with 500 per-image probe images (the study setting). Timed in ``--repeats``
round-robin rounds (the SGD step and every item once per round, so load from other processes
hits them alike); the ratio is the median over rounds and cells of (item / SGD step of the
same round). SoTL, SoTL-E and P-slope are free by construction (sums of losses the training
computes anyway; P at one extra checkpoint).

    python benchmarks/bench_scores.py                      # 3 cells at C = 8, 500 probe images
    python benchmarks/bench_scores.py --width-mult 1.0     # C = 16
    python benchmarks/bench_scores.py --quick              # 1 cell, 100 probe images
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from tgsage.data.probe import ProbeSet
from tgsage.evaluate import measure_guidance
from tgsage.models import get_model
from tgsage.spaces import build_model, get_space
from tgsage.teacher import teacher_from_network

ITEMS = {
    "TG (RDM Pearson)": ("pearson",),
    "TG-cka": ("cka",),
    "TG-rel": ("relation",),
    "all three": ("pearson", "cka", "relation"),
}


def _sgd_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    net = copy.deepcopy(model).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        opt.step()

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=3)
    ap.add_argument("--probe", type=int, default=500)
    ap.add_argument("--width-mult", type=float, default=0.5)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.cells, args.probe, args.repeats = 1, 100, 2
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.probe, 3, 32, 32), dtype=torch.uint8, generator=g)
    probe = ProbeSet(images, {"class": torch.arange(args.probe) % 10})
    torch.manual_seed(0)
    tnet = get_model("whitened_cnn", base_width=32)
    teacher = teacher_from_network(tnet, probe, subsamples=10, device="cpu")
    x = torch.randn(64, 3, 32, 32)
    y = torch.randint(0, 10, (64,), generator=g)
    space = get_space("nb201")
    ratios: dict[str, list[float]] = {k: [] for k in ITEMS}
    step_times = []
    for c in range(args.cells):
        spec = space.random_spec(c)
        net = build_model(spec, num_classes=10, input_shape=(3, 32, 32), width_mult=args.width_mult)
        step = _sgd_step(net, x, y)
        net.eval()
        step()  # warm-up
        for comps in ITEMS.values():
            measure_guidance(net, probe, {"t": teacher}, comps, device="cpu")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            step()
            t_step = time.perf_counter() - t0
            step_times.append(t_step)
            for name, comps in ITEMS.items():
                t0 = time.perf_counter()
                measure_guidance(net, probe, {"t": teacher}, comps, device="cpu")
                ratios[name].append((time.perf_counter() - t0) / t_step)
    print(
        f"NB201 cells x{args.cells} at width {args.width_mult}, {args.probe} probe images, "
        f"{args.repeats} rounds; SGD step (batch 64) median {np.median(step_times) * 1e3:.0f} ms"
    )
    print("| guidance | cost / one SGD step (median [min, max]) |")
    print("|---|---|")
    for name, r in ratios.items():
        print(f"| {name} | {np.median(r):.1f} [{np.min(r):.1f}, {np.max(r):.1f}] |")


if __name__ == "__main__":
    main()
