"""Strategy overhead per candidate (ask + tell, no objective) at 100 and 1,000 completed ones.

Two paths per strategy, both on an in-memory Optuna storage where one is involved:

- ask/tell: ``strategy.ask(seed)`` + ``strategy.tell(params, score)`` after ``N`` tells;
- sampler: ``study.ask()`` + ``space.sample(trial)`` + ``study.tell(trial, value)`` with
  ``strategy.sampler()`` on a study that already holds ``N`` completed trials (the engine's
  path). "replay" is the first ask of a fresh sampler there: a new worker rebuilding the
  policy from the whole history (RL / evolution only).

Baseline (same run, same study path): Optuna's plain ``RandomSampler``. The history is random
candidates with a cheap score; the strategies' cost depends on N, not on how it was made.

    python benchmarks/bench_strategies.py            # layer (N_L=10) and cell (B=5), N=100, 1000
    python benchmarks/bench_strategies.py --quick    # layer space only, fewer repeats
    python benchmarks/bench_strategies.py --strategies tpe --spaces cell   # TPE vs Optuna's path

"tpe-optuna" is the same sampler running Optuna's own path (the history split again for every
parameter): the baseline of TPE's one-split-per-proposal cache, same run, same draws.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import optuna
import torch

from tgsage.spaces import SearchSpace, get_space
from tgsage.strategies import get_strategy, list_strategies, trial_seed
from tgsage.strategies.tpe import PaperTPESampler


def cheap_score(params: dict) -> float:
    return float(sum(hash(repr(v)) % 97 for v in params.values()) / (97 * len(params)))


def history(space: SearchSpace, n: int) -> list[tuple[dict, float]]:
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        params = space.spec_to_params(space.random_spec(rng))
        out.append((params, cheap_score(params)))
    return out


def filled_study(space: SearchSpace, hist: list[tuple[dict, float]], sampler) -> optuna.Study:  # type: ignore[no-untyped-def]
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for params, value in hist:
        trial = optuna.trial.create_trial(
            params=params,
            distributions=_distributions(space, params),
            value=value,
        )
        study.add_trial(trial)
    return study


def _distributions(space: SearchSpace, params: dict) -> dict:
    from tgsage.spaces import FixedSuggester

    fx = FixedSuggester(params)
    space.sample(fx)
    return {n: optuna.distributions.CategoricalDistribution(list(o)) for n, o in fx.asked}


def timed(fn: Callable[[int], None], reps: int) -> float:
    """Median seconds of ``fn(i)`` over ``reps`` calls."""
    times = []
    for i in range(reps):
        t0 = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def bench_ask_tell(space: SearchSpace, name: str, hist, reps: int) -> float:  # type: ignore[no-untyped-def]
    strategy = get_strategy(name, space, seed=0)
    for params, value in hist:
        strategy.tell(params, value)

    def step(i: int) -> None:
        params = strategy.ask(trial_seed(1, len(hist) + i))
        strategy.tell(params, cheap_score(params))

    return timed(step, reps)


def bench_sampler(space: SearchSpace, sampler, hist, reps: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    study = filled_study(space, hist, sampler)
    t0 = time.perf_counter()
    first = study.ask()
    space.sample(first)
    replay = time.perf_counter() - t0
    study.tell(first, 0.0)

    def step(i: int) -> None:
        trial = study.ask()
        spec = space.sample(trial)
        study.tell(trial, cheap_score(space.spec_to_params(spec)))

    return timed(step, reps), replay


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="layer space only, fewer repeats")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--strategies", help="comma list (default: all registered)")
    parser.add_argument("--spaces", help="comma list of layer,cell (default: both)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spaces = {"layer N_L=10": get_space("layer", max_layers=10)}
    if not args.quick:
        spaces["cell B=5"] = get_space("cell", blocks=5)
    if args.spaces:
        spaces = {k: v for k, v in spaces.items() if k.split()[0] in args.spaces.split(",")}
    names = args.strategies.split(",") if args.strategies else list(list_strategies())
    sizes = (100, 1000)
    for space in spaces.values():  # warm-up: imports, caches, first torch calls
        bench_sampler(space, optuna.samplers.RandomSampler(0), history(space, 30), 5)
        bench_ask_tell(space, "rl", history(space, 10), 5)
    print(
        f"torch {torch.__version__}, optuna {optuna.__version__}, threads={args.threads}; "
        "medians in ms per candidate (ask + tell, objective excluded)"
    )
    header = (
        f"{'space':<13} {'strategy':<10} {'N':>5} {'ask/tell':>9} {'sampler':>9} "
        f"{'replay':>8} {'baseline':>9} {'ratio':>7}"
    )
    print(header)
    for label, space in spaces.items():
        for n in sizes:
            hist = history(space, n)
            reps = 5 if args.quick else 15
            base, _ = bench_sampler(space, optuna.samplers.RandomSampler(0), hist, reps)
            for name in names:
                r = max(3, reps // 3) if name == "tpe" and n >= 1000 else reps
                at = bench_ask_tell(space, name, hist, r)
                sampler = get_strategy(name, space, seed=0).sampler()
                sp, replay = bench_sampler(space, sampler, hist, r)
                replay_s = f"{replay * 1e3:8.1f}" if name in ("rl", "evolution") else f"{'-':>8}"
                print(
                    f"{label:<13} {name:<10} {n:>5} {at * 1e3:9.2f} {sp * 1e3:9.2f} "
                    f"{replay_s} {base * 1e3:9.2f} {sp / base:7.1f}",
                    flush=True,
                )
                if name == "tpe":  # Optuna's own path: the history split for every parameter
                    ref, _ = bench_sampler(
                        space, PaperTPESampler(seed=0, split_per_parameter=True), hist, r
                    )
                    print(
                        f"{label:<13} {'tpe-optuna':<10} {n:>5} {'-':>9} {ref * 1e3:9.2f} "
                        f"{'-':>8} {base * 1e3:9.2f} {ref / base:7.1f}   "
                        f"(one split per proposal: {ref / sp:.1f}x faster)",
                        flush=True,
                    )
    print(
        "(ratio = sampler path / plain Optuna RandomSampler on the same study; replay = first "
        "ask of a fresh StrategySampler, rebuilding the policy from all N trials)"
    )


if __name__ == "__main__":
    main()
