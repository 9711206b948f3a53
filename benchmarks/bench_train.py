"""Premature-training throughput: tgsage's trainer against a plain fp32 eager PyTorch loop.

For NAS-Bench-201 cells at C = 8 and C = 16, layer-space and cell-space networks at the widths
the studies use (32x32 images, batch 64), in one run:

* **plain fp32 loop (baseline)**: what a careful script does: NCHW float32, eager, SGD Nesterov,
  the same crop + flip + per-image standardisation (tgsage's vectorised batch augmentation, so
  the baseline does not lose time in a per-image Python loop);
* **tgsage fp32**: ``train_model`` with the fast path off (``amp="off", channels_last=False``),
  which shows the trainer's own overhead;
* **tgsage default**: ``train_model`` as it runs by default (on this CPU: bf16 autocast with
  float32 master weights, channels-last; see ``tgsage.train.execution``);
* with ``--compile``, also ``compile=True``: its compile time and steady throughput.

Same initial weights, same random data, same steps; examples/s is best-of-``repeats`` wall time
over ``steps`` steps after ``warmup`` steps, methods interleaved so drifting load hits all alike;
the ratio of best process CPU times is printed too (with one thread the measure least disturbed
by other processes; with two it also counts the threads' spin-waits).
The machine's peak is measured in the same run as GEMM FLOP/s (square matmuls, fp32 and bf16),
and each step's achieved FLOP/s (3 x forward multiply-adds x 2 x batch: forward + backward
counted as twice the forward) is reported as a fraction of the peak of its own precision.

    python benchmarks/bench_train.py                     # ~5-10 min, 2 threads
    python benchmarks/bench_train.py --quick             # about a minute
    python benchmarks/bench_train.py --compile --only nb201-C8-conv
    python benchmarks/bench_train.py --threads 1 --nb201-random 12 --only none   # uniform cells
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tgsage.data.base import ImageSet
from tgsage.data.pipeline import AUGMENTATIONS, augment_batch
from tgsage.spaces import build_model, get_space
from tgsage.spaces.build import count_flops
from tgsage.spaces.nb201 import NB201Spec
from tgsage.train import Trainer

NB201_CELLS = {
    "conv": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "mixed": "|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|avg_pool_3x3~0|none~1|none~2|",
    "pool": "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|",
}  # fmt: skip


@dataclass
class Case:
    name: str
    family: str
    build: Callable[[], torch.nn.Module]


def cases(nb201_random: int = 0) -> list[Case]:
    out = []
    for width, c in ((0.5, 8), (1.0, 16)):
        for kind, arch in NB201_CELLS.items():
            spec = NB201Spec.from_arch_string(arch)
            out.append(Case(f"nb201-C{c}-{kind}", f"NB201 C={c}", _builder(spec, width)))
    nb201 = get_space("nb201")
    for i in range(nb201_random):  # uniform cells: the studies' population, not hand-picked
        spec = nb201.random_spec(i)
        out.append(Case(f"nb201-C8-u{i}", "NB201 C=8 uniform", _builder(spec, 0.5)))
    layer = get_space("layer")
    for width in (0.25, 0.5):
        for seed in (0, 1):
            out.append(
                Case(
                    f"layer-w{width}-s{seed}",
                    "layer space",
                    _builder(layer.random_spec(seed), width),
                )
            )
    out.append(
        Case("cell-w0.25-s0", "cell space", _builder(get_space("cell").random_spec(0), 0.25))
    )
    return out


def _builder(spec: object, width: float) -> Callable[[], torch.nn.Module]:
    def build() -> torch.nn.Module:
        torch.manual_seed(0)
        return build_model(spec, 10, (3, 32, 32), width_mult=width)

    return build


def make_data(n: int = 2048, seed: int = 0) -> ImageSet:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 10, (n,), generator=g)
    return ImageSet(images=images, labels=labels, num_classes=10, name="bench")


def plain_loop(
    model: torch.nn.Module, data: ImageSet, warmup: int, steps: int
) -> tuple[float, float]:
    """(wall, process CPU) seconds of ``steps`` steps of a plain fp32 eager loop, after
    ``warmup`` steps."""
    opt = torch.optim.SGD(
        model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4
    )
    model.train()
    perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
    aug = AUGMENTATIONS["cifar"]
    t0 = c0 = 0.0
    for i in range(warmup + steps):
        if i == warmup:
            t0, c0 = time.perf_counter(), time.process_time()
        idx = perm[(i * 64) % len(data) :][:64]
        x = augment_batch(data.images[idx], aug, None)
        loss = F.cross_entropy(model(x), data.labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t0, time.process_time() - c0


def tgsage_run(
    model: torch.nn.Module, data: ImageSet, warmup: int, steps: int, **switches: object
) -> tuple[float, float, float, str]:
    """(wall and CPU seconds of ``steps`` steps after ``warmup`` ones, wall seconds of the
    warm-up steps, what ran)."""
    t = Trainer(
        model,
        data,
        "cpu_demo",
        device="cpu",
        batch_size=64,
        schedule="constant",
        eval_at_end=False,
        **switches,  # type: ignore[arg-type]
    )
    w0 = time.perf_counter()
    t.train_until(f"{warmup}steps", raise_on_failure=True)
    w1, c1 = time.perf_counter(), time.process_time()
    t.train_until(f"{warmup + steps}steps", raise_on_failure=True)
    w2, c2 = time.perf_counter(), time.process_time()
    return w2 - w1, c2 - c1, w1 - w0, t.execution.describe()


def gemm_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    """Best FLOP/s of an n x n x n matmul in ``dtype`` (2 n^3 FLOPs)."""
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    torch.mm(a, b)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one case per family, fewer steps")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--only", action="append", default=None, help="case name (repeatable)")
    ap.add_argument("--compile", action="store_true", help="also time compile=True")
    ap.add_argument(
        "--nb201-random",
        type=int,
        default=0,
        help="also N uniform random NAS-Bench-201 cells at C = 8 (cases nb201-C8-u0 ..)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    steps = args.steps or (6 if args.quick else 12)
    repeats = args.repeats or (1 if args.quick else 3)
    todo = cases(args.nb201_random)
    if args.only:
        todo = [c for c in todo if c.name in args.only or c.name.startswith("nb201-C8-u")]
    elif args.quick:
        todo = [c for c in todo if c.name in ("nb201-C8-mixed", "layer-w0.5-s0", "cell-w0.25-s0")]
    data = make_data()

    peak = {"fp32": gemm_peak(torch.float32), "bf16": gemm_peak(torch.bfloat16)}
    print(
        f"torch {torch.__version__}, {args.threads} threads, CPU capability "
        f"{torch.backends.cpu.get_cpu_capability()}; batch 64, 32x32, {steps} steps after "
        f"{args.warmup}, best of {repeats}"
    )
    print(
        f"GEMM peak (2048^3 matmul): fp32 {peak['fp32'] / 1e9:.1f} GFLOP/s, "
        f"bf16 {peak['bf16'] / 1e9:.1f} GFLOP/s"
    )
    methods: dict[str, Callable[[torch.nn.Module], tuple[float, float, float, str]]] = {
        "plain": lambda m: (*plain_loop(m, data, args.warmup, steps), 0.0, "float32, NCHW"),
        "tgsage fp32": lambda m: tgsage_run(
            m, data, args.warmup, steps, amp="off", channels_last=False
        ),
        "tgsage default": lambda m: tgsage_run(m, data, args.warmup, steps),
    }
    print(
        f"\n{'case':18s} {'MMAC/img':>8s} {'plain ex/s':>10s} {'tgsage fp32':>11s} {'ratio':>5s} "
        f"{'default':>8s} {'ratio':>5s} {'cpu-t ratio':>11s}  {'%peak plain':>11s} "
        f"{'%peak dflt':>10s}  default ran"
    )
    ratios: dict[str, list[float]] = {}
    for case in todo:
        macs = count_flops(case.build())
        best = {k: math.inf for k in methods}
        best_cpu = {k: math.inf for k in methods}
        ran = ""
        for _ in range(repeats):
            for name, fn in methods.items():
                secs, cpu, _, what = fn(case.build())
                best[name] = min(best[name], secs)
                best_cpu[name] = min(best_cpu[name], cpu)
                if name == "tgsage default":
                    ran = what
        rate = {k: 64 * steps / v for k, v in best.items()}
        r_cpu = best_cpu["plain"] / best_cpu["tgsage default"]
        step_flops = 3 * 2 * macs * 64
        dflt_peak = peak["bf16"] if "bf16" in ran else peak["fp32"]
        frac_plain = rate["plain"] / 64 * step_flops / peak["fp32"]
        frac_dflt = rate["tgsage default"] / 64 * step_flops / dflt_peak
        r_fp32 = rate["tgsage fp32"] / rate["plain"]
        r_dflt = rate["tgsage default"] / rate["plain"]
        ratios.setdefault(case.family, []).append(r_dflt)
        print(
            f"{case.name:18s} {macs / 1e6:8.1f} {rate['plain']:10.0f} {rate['tgsage fp32']:11.0f} "
            f"{r_fp32:5.2f} {rate['tgsage default']:8.0f} {r_dflt:5.2f} {r_cpu:11.2f}  "
            f"{100 * frac_plain:10.1f}% "
            f"{100 * frac_dflt:9.1f}%  {ran}{_dead_note(case)}",
            flush=True,
        )
        if args.compile:
            secs, _, warm, what = tgsage_run(case.build(), data, args.warmup, steps, compile=True)
            _, _, warm_eager, _ = tgsage_run(case.build(), data, args.warmup, steps)
            gain = best["tgsage default"] / secs
            print(
                f"{'':18s} compile=True: {64 * steps / secs:.0f} ex/s ({gain:.2f}x default), "
                f"first {args.warmup} steps {warm:.1f} s vs {warm_eager:.1f} s eager; compile "
                f"repaid after ~{_repaid(warm - warm_eager, best['tgsage default'], secs, steps):,.0f} "
                f"examples ({what})",
                flush=True,
            )
    print("\ngeometric mean of default / plain per family:")
    for family, rs in ratios.items():
        gm = math.exp(sum(math.log(r) for r in rs) / len(rs))
        print(f"  {family:12s} {gm:.2f}x  (min {min(rs):.2f}, {len(rs)} cases)")


def _dead_note(case: Case) -> str:
    """ ", N dead nodes" for NAS-Bench-201 cells that training steps skip nodes of."""
    dead = sum(len(getattr(m, "dead_nodes", ())) for m in case.build().modules())
    return f"; {dead} dead nodes skipped" if dead else ""


def _repaid(extra: float, eager_secs: float, compiled_secs: float, steps: int) -> float:
    """Examples after which ``extra`` seconds of compile time are won back (inf if never)."""
    saved_per_example = (eager_secs - compiled_secs) / (64 * steps)
    return extra / saved_per_example if saved_per_example > 0 else math.inf


if __name__ == "__main__":
    main()
