"""Scoring overhead of candidate evaluation: activations + RDMs + TG vs premature training.

The paper scores each candidate on 5,000 probe images after 2 epochs on 45,000 (90,000 SGD
examples): probe/training = 5.6%. This benchmark keeps that ratio at CPU scale (500 probe
images, 2 epochs of 4,500 synthetic-object images at 32x32) and reports, per random layer-space
candidate, training seconds, scoring seconds and their ratio (target: scoring < 10% of
training). The baseline is the training time measured in the same run.

Usage::

    python benchmarks/bench_evaluate.py            # 4 candidates, ~5-10 minutes on 2 cores
    python benchmarks/bench_evaluate.py --quick    # 2 small candidates, about a minute
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from tgsage.data.probe import ProbeSet
from tgsage.data.synthetic import make_synthetic_objects
from tgsage.evaluate import evaluate_candidate
from tgsage.models import get_model
from tgsage.spaces import get_space
from tgsage.teacher import teacher_from_network
from tgsage.train import train_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--candidates", type=int, default=4)
    p.add_argument("--width-mult", type=float, default=0.5)
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    n_train, n_val, k = (900, 100, 2) if args.quick else (4500, 500, args.candidates)
    t0 = time.perf_counter()
    data = make_synthetic_objects(n_train, n_val, resolution=32, seed=0)
    probe = ProbeSet.from_images(data.val)
    net = get_model("resnet_cifar", n=1, num_classes=data.num_classes, width_mult=0.5)
    train_model(net, data, "1ep", "cpu_demo", device=args.device, raise_on_failure=True)
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}; data + teacher "
        f"{time.perf_counter() - t0:.0f} s; {n_train} train, {n_val} probe images"
    )
    space = get_space("layer", max_layers=10)
    for grouping in (None, "object"):
        teacher = teacher_from_network(net, probe, grouping=grouping, device=args.device)
        ratios = []
        print(
            f"\nteacher RDMs over {teacher.rdms.n_conditions} conditions "
            f"({grouping or 'images'}), 3 teacher layers"
        )
        print(f"{'candidate':>18} {'layers':>6} {'train s':>8} {'score s':>8} {'score/train':>11}")
        for i in range(k):
            spec = space.random_spec(100 + i)
            res = evaluate_candidate(
                spec,
                data,
                teacher,
                budget="2ep",
                config="cpu_demo",
                width_mult=args.width_mult,
                device=args.device,
                seed=i,
            )
            if not res.ok:
                print(f"{spec.spec_hash:>18} failed: {res.failure_reason}")
                continue
            ratio = res.score_seconds / res.train_seconds
            ratios.append(ratio)
            print(
                f"{spec.spec_hash:>18} {len(res.candidate_layers):>6} "
                f"{res.train_seconds:>8.1f} {res.score_seconds:>8.2f} {100 * ratio:>10.1f}%"
            )
        if ratios:
            print(f"median scoring overhead: {100 * statistics.median(ratios):.1f}% of training")


if __name__ == "__main__":
    main()
