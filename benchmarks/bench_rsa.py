"""RSA engine benchmark: TG scoring of 3 teacher layers against 10 candidate layers.

Three measurements, each against a baseline measured in the same run:

(a) rsatoolbox ``calc_rdm`` + ``compare`` on the same data (n=2,000 images, d=2,000 features per
    layer): wall-clock ratio (target: tgsage at least 30x faster on a 2-core machine).
(b) the GEMM bound ``n^2 * sum(d) / R`` at n=5,000, d=10,000, where R is this machine's
    matrix-product rate (2*m*n*k / t) measured now: ratio of tgsage's time to the bound
    (target: within 1.5x). The bound is the time of the symmetric half of the Gram products.
(c) peak memory (max RSS of a fresh process) of the streaming path at n=50,000, d=4,000, with
    activations produced batch by batch (never all held), against the dense path's estimate;
    for 3 x 3 layers both with all accumulators at once (one pass) and within a memory bound
    (``--max-memory``, default 1 GiB: several passes over the same batches), with the time of
    each (same run, fresh processes); ``--streaming-runs`` picks some of them (the 3 x 3 runs
    take half an hour each on a loaded 2-core machine). Before them, exactness: the bounded
    streaming path against dense RDMs on a case that fits (n=4,000, 3 x 3 layers of 1,000
    float32 features, a bound forcing several passes): max |difference| of the 3 x 3
    similarities.

Usage::

    python benchmarks/bench_rsa.py            # full sizes (several minutes, ~6 GB RAM)
    python benchmarks/bench_rsa.py --quick    # small sizes, seconds
    python benchmarks/bench_rsa.py --device cuda   # (b) on a GPU when there is one
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
import torch

from tgsage import rsa
from tgsage.rsa.streaming import dense_bytes, streaming_bytes


def layers(n: int, d: int, k: int, seed: int, device: str = "cpu") -> dict[str, torch.Tensor]:
    gen = torch.Generator(device=device).manual_seed(seed)
    base = torch.randn(n, 64, generator=gen, device=device)
    out = {}
    for i in range(k):
        w = torch.randn(64, d, generator=gen, device=device)
        out[f"L{i}"] = torch.relu(base @ w + 2 * torch.randn(n, d, generator=gen, device=device))
    return out


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def tgsage_tg(
    teacher: dict, candidate: dict, repeats: int = 1, device: str = "cpu"
) -> tuple[float, float, rsa.Guidance]:
    """(first-call seconds, best-of-``repeats`` seconds, guidance). A search scores candidate
    after candidate in one process, so the warm figure is the representative one."""
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        t_rdms = rsa.compute_rdms(teacher)
        g = rsa.score_against_teacher(t_rdms, candidate)
        sync(device)
        times.append(time.perf_counter() - t0)
    return times[0], min(times), g


def bench_rsatoolbox(n: int, d: int) -> dict:
    import rsatoolbox

    teacher = layers(n, d, 3, seed=1)
    candidate = layers(n, d, 10, seed=2)
    cold, ours, g = tgsage_tg(teacher, candidate, repeats=3)

    t0 = time.perf_counter()
    t_r = [
        rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(v.numpy()), method="correlation")
        for v in teacher.values()
    ]
    c_r = [
        rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(v.numpy()), method="correlation")
        for v in candidate.values()
    ]
    sim = np.array([[rsatoolbox.rdm.compare(a, b, method="corr")[0, 0] for b in c_r] for a in t_r])
    theirs = time.perf_counter() - t0
    err = float(np.abs(sim - g.similarity.numpy()).max())
    return {
        "n": n,
        "d": d,
        "tgsage_s": ours,
        "tgsage_cold_s": cold,
        "rsatoolbox_s": theirs,
        "speedup": theirs / ours,
        "max_abs_diff": err,
    }


def gemm_rate(m: int, k: int, device: str, repeats: int = 3) -> float:
    a = torch.randn(m, k, device=device)
    b = torch.randn(k, m, device=device)
    a @ b
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * m * m * k / best


def bench_gemm_bound(n: int, d: int, device: str) -> dict:
    teacher = layers(n, d, 3, seed=3, device=device)
    candidate = layers(n, d, 10, seed=4, device=device)
    rate = gemm_rate(min(n, 2048), d, device)
    cold, ours, g = tgsage_tg(teacher, candidate, repeats=2, device=device)
    bound = n * n * (3 + 10) * d / rate
    return {
        "n": n,
        "d": d,
        "device": device,
        "gemm_gflops": rate / 1e9,
        "tgsage_s": ours,
        "tgsage_cold_s": cold,
        "bound_s": bound,
        "ratio_to_bound": ours / bound,
        "tg": g.tg,
    }


def peak_rss_bytes() -> int:
    """This process's own high-water RSS (VmHWM; ru_maxrss would include the parent's peak,
    which Linux carries across fork and exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def streaming_child(n: int, d: int, batch: int, k_t: int, k_c: int, max_memory: int) -> None:
    """Runs in a fresh process so max RSS is this path's alone. ``max_memory`` 0: no bound
    (all accumulators in one pass)."""
    from tgsage.rsa.streaming import stream_batches

    gen = torch.Generator().manual_seed(0)
    w_t = [torch.randn(32, d, generator=gen) for _ in range(k_t)]
    w_c = [torch.randn(32, d, generator=gen) for _ in range(k_c)]

    def batches():  # regenerated identically for every pass, as a forward pass would be
        g = torch.Generator().manual_seed(1)
        for _ in range(0, n, batch):
            base = torch.randn(batch, 32, generator=g)
            yield (
                {f"T{i}": torch.relu(base @ w) for i, w in enumerate(w_t)},
                {f"C{j}": torch.relu(base @ w) for j, w in enumerate(w_c)},
            )

    t0 = time.perf_counter()
    acc = stream_batches(batches, max_memory=max_memory or 2**62)
    sim = acc.similarity()
    seconds = time.perf_counter() - t0
    rss = peak_rss_bytes()
    print(
        json.dumps(
            {
                "n": acc.n,
                "d": d,
                "passes": acc.n_passes,
                "max_memory_gb": max_memory / 2**30,
                "teacher_layers": k_t,
                "candidate_layers": k_c,
                "seconds": seconds,
                "peak_rss_gb": rss / 2**30,
                "accumulators_gb": streaming_bytes([d] * k_t, [d] * k_c) / 2**30,
                "dense_path_would_need_gb": dense_bytes(n, k_t + k_c) / 2**30,
                "sim_mean": float(sim.mean()),
            }
        )
    )


def streaming_vs_dense(n: int, d: int) -> dict:
    """Bounded streaming (a sixth of its one-pass accumulators: several passes) against dense
    RDMs on the same float32 activations, 3 teacher x 3 candidate layers."""
    from tgsage.rsa.streaming import stream_batches

    teacher, candidate = layers(n, d, 3, seed=5), layers(n, d, 3, seed=6)
    dense, _ = rsa.compare_features(teacher, candidate, strategy="dense")
    batches = [
        ({k: v[s : s + 512] for k, v in teacher.items()},
         {k: v[s : s + 512] for k, v in candidate.items()})
        for s in range(0, n, 512)
    ]  # fmt: skip
    acc = stream_batches(batches, max_memory=streaming_bytes([d] * 3, [d] * 3) // 6)
    diff = (acc.similarity().double() - dense.double()).abs().max().item()
    return {"n": n, "d": d, "passes": acc.n_passes, "max_abs_diff": diff}


def bench_streaming(n: int, d: int, k_t: int, k_c: int, max_memory: int = 0) -> dict:
    cmd = [sys.executable, __file__, "--streaming-child"]
    cmd += [str(v) for v in (n, d, k_t, k_c, max_memory)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--only", choices=["a", "b", "c"], default=None)
    p.add_argument("--max-memory", type=float, default=1.0, help="(c) bound in GiB")
    p.add_argument(
        "--streaming-runs",
        default="1x1,3x3,3x3-bounded",
        help="(c) comma-separated: 1x1, 3x3 (no bound), 3x3-bounded",
    )
    p.add_argument("--streaming-child", nargs=5, type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.streaming_child:
        n, d, k_t, k_c, max_memory = args.streaming_child
        streaming_child(n, d, 1024, k_t, k_c, max_memory)
        return
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {args.device}")
    if args.only in (None, "a"):
        n, d = (500, 500) if args.quick else (2000, 2000)
        r = bench_rsatoolbox(n, d)
        print(
            f"(a) 3x10 layers, n={n}, d={d}: tgsage {r['tgsage_s']:.2f} s (first call "
            f"{r['tgsage_cold_s']:.2f} s), rsatoolbox {r['rsatoolbox_s']:.2f} s -> "
            f"{r['speedup']:.1f}x faster (first call "
            f"{r['rsatoolbox_s'] / r['tgsage_cold_s']:.1f}x; max |diff| "
            f"{r['max_abs_diff']:.1e})"
        )
    if args.only in (None, "b"):
        n, d = (1000, 2000) if args.quick else (5000, 10000)
        r = bench_gemm_bound(n, d, args.device)
        print(
            f"(b) 3x10 layers, n={n}, d={d} on {r['device']}: GEMM rate "
            f"{r['gemm_gflops']:.0f} GFLOP/s, bound {r['bound_s']:.2f} s, tgsage "
            f"{r['tgsage_s']:.2f} s (first call {r['tgsage_cold_s']:.2f} s) -> "
            f"{r['ratio_to_bound']:.2f}x the bound"
        )
    if args.only in (None, "c"):
        r = streaming_vs_dense(*((1000, 200) if args.quick else (4000, 1000)))
        print(
            f"(c) exactness, n={r['n']}, 3x3 layers, d={r['d']}: bounded streaming "
            f"({r['passes']} passes) vs dense RDMs, max |similarity difference| "
            f"{r['max_abs_diff']:.1e}",
            flush=True,
        )
        n, d = (5000, 500) if args.quick else (50000, 4000)
        bound = int(args.max_memory * 2**30 / (64 if args.quick else 1))
        wanted = {"1x1": (1, 1, 0), "3x3": (3, 3, 0), "3x3-bounded": (3, 3, bound)}
        runs = [wanted[k] for k in args.streaming_runs.split(",")]
        results = {}
        for k_t, k_c, mem in runs:
            r = results[(k_t, mem)] = bench_streaming(n, d, k_t, k_c, mem)
            limit = f"max_memory {mem / 2**30:.2f} GiB" if mem else "no bound"
            print(
                f"(c) streaming {k_t}x{k_c} layers, n={r['n']}, d={d}, {limit}: {r['passes']} "
                f"pass(es), peak RSS {r['peak_rss_gb']:.2f} GB (one-pass accumulators "
                f"{r['accumulators_gb']:.2f} GB; dense path would need "
                f"{r['dense_path_would_need_gb']:.1f} GB), {r['seconds']:.1f} s",
                flush=True,
            )
        if (3, 0) not in results or (3, bound) not in results:
            return
        one, bounded = results[(3, 0)], results[(3, bound)]
        print(
            f"(c) 3x3 bounded vs one pass: peak RSS {bounded['peak_rss_gb']:.2f} vs "
            f"{one['peak_rss_gb']:.2f} GB, time {bounded['seconds'] / one['seconds']:.2f}x, "
            f"max |similarity mean difference| "
            f"{abs(bounded['sim_mean'] - one['sim_mean']):.1e}"
        )


if __name__ == "__main__":
    main()
