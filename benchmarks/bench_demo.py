"""The demo teacher's training throughput: one torch thread against every core, in one run.

The demo's teacher (ResNet-20 at half width, ``cpu_demo``, batch 64, 16x16 synthetic objects)
trained at about 100 examples per CPU-second in an earlier timing on a busy 2-core machine.
This measures why: the same training steps with ``torch.set_num_threads(1)`` (what the demo
uses on 2 cores with 2 search workers; ``tgsage.demo.demo_threads``) and with every core
(torch's default), each on the default fast path (bf16 autocast where the CPU has it,
channels-last) and on plain float32 NCHW. Settings are interleaved over ``repeats`` rounds so
drifting load hits all alike; the median examples/s of wall time and of process CPU time are
printed with ratios against one thread on the default path, and the load average before and
after (other processes on the cores are what makes extra threads lose).

    python benchmarks/bench_demo.py                # about a minute on an idle machine
    python benchmarks/bench_demo.py --steps 4 --repeats 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from tgsage.data.registry import get_dataset
from tgsage.demo import EASY_RENDER
from tgsage.models import get_model
from tgsage.train import Trainer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6, help="timed steps per setting and round")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    splits = get_dataset(
        "synthetic", n_train=1280, n_val=64, resolution=16, render=dict(EASY_RENDER), seed=0
    )
    settings = [
        (threads, path) for threads in sorted({1, cores}) for path in ("default", "fp32 NCHW")
    ]
    trainers = {}
    for threads, path in settings:
        torch.manual_seed(0)
        model = get_model("resnet_cifar", n=3, num_classes=splits.num_classes, width_mult=0.5)
        plain = {"amp": "off", "channels_last": False} if path == "fp32 NCHW" else {}
        trainer = Trainer(model, splits, "cpu_demo", device="cpu", eval_at_end=False, **plain)
        torch.set_num_threads(threads)
        trainer.train_until("2steps")  # warm-up
        trainers[threads, path] = trainer
    print(f"load average before: {os.getloadavg()[0]:.2f}; {cores} cores")
    wall: dict[tuple[int, str], list[float]] = {s: [] for s in settings}
    cpu: dict[tuple[int, str], list[float]] = {s: [] for s in settings}
    for _ in range(args.repeats):
        for s in settings:
            torch.set_num_threads(s[0])
            trainer = trainers[s]
            examples = args.steps * trainer.config.batch_size
            w, c = time.perf_counter(), time.process_time()
            trainer.train_until(f"{trainer.steps + args.steps}steps")
            wall[s].append(examples / (time.perf_counter() - w))
            cpu[s].append(examples / (time.process_time() - c))
    base = statistics.median(wall[1, "default"])
    base_cpu = statistics.median(cpu[1, "default"])
    print(f"path of 'default' here: {trainers[1, 'default'].execution.describe()}")
    for s in settings:
        mw, mc = statistics.median(wall[s]), statistics.median(cpu[s])
        print(
            f"threads={s[0]} {s[1]:>9}: {mw:7.0f} examples/s wall (x{mw / base:.2f}), "
            f"{mc:7.0f} per CPU-second (x{mc / base_cpu:.2f})"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
