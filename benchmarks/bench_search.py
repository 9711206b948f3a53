"""Search engine benchmarks: worker throughput and per-candidate storage overhead.

1. Throughput: ``run_search`` with 1, 2, 4, 8 local worker processes on simulated candidates
   (fixed sleep), per storage (journal file, PostgreSQL if reachable, SQLite with 1 worker).
   Reports candidates/s over the working phase (first trial start to last completion) and over
   the whole call (with process start-up), the speed-up against 1 worker on the same storage
   (ideal = number of workers), and lost candidates (requested - completed; must be 0).
2. Overhead: the engine's time per candidate (sweep, count, claim, slot check, draw the choices,
   dedup lookup, heartbeat, the record, tell; objective sleep 0) with 100 and 1,000 completed
   candidates already in the study, per strategy and storage. Baseline in the same run, on the
   same study and storage with the same sampler: Optuna's own loop (``study.ask()``,
   ``space.sample(trial)`` - one storage write per choice - the same attributes one by one,
   ``study.tell``); ratio = engine / baseline.

    python benchmarks/bench_search.py            # full
    python benchmarks/bench_search.py --quick    # a short run
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import optuna

from tgsage import optuna_api as api
from tgsage.search import Worker, create_or_load_study, load_config, run_search
from tgsage.search.runner import preflight
from tgsage.spaces import get_space

PG = os.environ.get("TGSAGE_TEST_POSTGRES_URL", "postgresql://tgsage:tgsage@127.0.0.1:5432/tgsage")
optuna.logging.set_verbosity(optuna.logging.ERROR)


def pg_ok() -> bool:
    try:
        import psycopg2

        psycopg2.connect(PG, connect_timeout=3).close()
        return True
    except Exception:
        return False


def storage_url(kind: str, tmp: Path) -> str | None:
    if kind == "journal":
        return None  # default: <run_dir>/search.journal
    if kind == "sqlite":
        return f"sqlite:///{tmp}/{uuid.uuid4().hex[:8]}.db"
    return PG


def throughput(kinds: list[str], workers: list[int], n: int, sleep: float, tmp: Path) -> None:
    print(f"\n## Throughput: {n} simulated candidates of {sleep:g} s each\n")
    print(
        "| storage | workers | working phase s | cand/s | speed-up (ideal) | wall s (with "
        "start-up) | completed | lost | surplus |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for kind in kinds:
        base = None
        for w in workers:
            if kind == "sqlite" and w > 1:
                continue
            cfg = {
                "name": f"bench-{uuid.uuid4().hex[:8]}",
                "objective": "simulate",
                "simulate": {"sleep": sleep},
                "n_candidates": n,
                "workers": w,
                "run_dir": str(tmp / uuid.uuid4().hex[:8]),
                "strategy": "random",
                "storage": storage_url(kind, tmp),
            }
            t0 = time.perf_counter()
            s = run_search(cfg)
            wall = time.perf_counter() - t0
            c = load_config(cfg)
            study = optuna.load_study(study_name=c.name, storage=preflight(c))
            done = [
                t
                for t in study.get_trials()
                if t.datetime_complete is not None and t.datetime_start is not None
            ]
            span = (
                max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)
            ).total_seconds()
            rate = s.complete / span
            base = base or rate
            print(
                f"| {kind} | {w} | {span:.1f} | {rate:.2f} | {rate / base:.2f} ({w}) | "
                f"{wall:.1f} | {s.complete} | {n - s.complete} | {s.surplus} |",
                flush=True,
            )


def _prefill(study: optuna.Study, space_name: str, count: int, seed: int) -> None:
    """``count`` COMPLETE trials with real space params (random specs, fake scores)."""
    mem = optuna.create_study(
        sampler=optuna.samplers.RandomSampler(seed=seed), direction="maximize"
    )
    space = get_space(space_name)
    trials = []
    for i in range(count):
        t = mem.ask()
        spec = space.sample(t)
        frozen = api.get_trial(mem, api.trial_id(t))
        trials.append(
            optuna.trial.create_trial(
                params=frozen.params,
                distributions=frozen.distributions,
                value=(i * 7919 % 1000) / 1000,
                user_attrs={"spec_hash": spec.spec_hash, "examples": 1000, "P": 0.5},
            )
        )
        mem.tell(t, 0.0)
    study.add_trials(trials)


RECORD = {  # what a simulated candidate records (tgsage.candidate_record names)
    "P": 0.5,
    "TG": 0.4,
    "per_layer": {"layer0": 0.4, "layer1": 0.3, "layer2": 0.5},
    "examples": 1000,
    "train_seconds": 0.0,
    "score_seconds": 0.0,
    "score": 0.9,
}


def optuna_loop(study: optuna.Study, space_name: str, strategy: str, k: int) -> float:
    """ms per candidate of Optuna's own path on ``study``: ask, sample, attributes, tell."""
    from tgsage.search.strategy import make_sampler

    space = get_space(space_name)
    study.sampler = make_sampler(strategy, space, 0)
    t0 = time.perf_counter()
    for _ in range(k):
        trial = study.ask()
        spec = space.sample(trial)
        attrs = {"worker": "w", "spec": spec.to_json(), "spec_hash": spec.spec_hash} | RECORD
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        study.tell(trial, 0.5)
    return (time.perf_counter() - t0) / k * 1000


def overhead(kinds: list[str], strategies: list[str], sizes: list[int], k: int, tmp: Path) -> None:
    print(f"\n## Engine overhead per candidate (ms; mean over {k} candidates, one worker)\n")
    print("| strategy | completed | storage | engine | Optuna's loop | ratio |")
    print("|---|---|---|---|---|---|")
    for strategy in strategies:
        for kind in kinds:
            cfg_d = {
                "name": f"ovh-{uuid.uuid4().hex[:8]}",
                "objective": "simulate",
                "n_candidates": 10**6,
                "run_dir": str(tmp / uuid.uuid4().hex[:8]),
                "strategy": strategy,
                "storage": storage_url(kind, tmp),
            }
            cfg = load_config(cfg_d)
            study, _ = create_or_load_study(cfg, preflight(cfg))
            have = 0
            for size in sizes:
                _prefill(study, cfg.space, size - have, seed=size)
                w = Worker(cfg.storage_url, cfg.name, max_candidates=2)
                w.run()  # warm: the sampler's first read of the history (RL replays it)
                w.max_candidates = k
                t0 = time.perf_counter()
                w.run()
                engine = (time.perf_counter() - t0) / k * 1000
                base = optuna_loop(study, cfg.space, strategy, k)
                have = size + 2 * k + 2
                print(
                    f"| {strategy} | {size:,} | {kind} | {engine:.1f} | {base:.1f} | "
                    f"{engine / base:.2f} |",
                    flush=True,
                )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-overhead", action="store_true")
    ap.add_argument("--storages", help="comma list of journal,sqlite,postgres (default: all)")
    ap.add_argument("--strategies", help="overhead: comma list (default: all registered)")
    ap.add_argument("--sizes", default="100,1000", help="overhead: completed candidates")
    args = ap.parse_args()
    kinds = ["journal", "sqlite"] + (["postgres"] if pg_ok() else [])
    if args.storages:
        kinds = [k for k in args.storages.split(",") if k in kinds]
    if "postgres" not in kinds:
        print("PostgreSQL not reachable: postgres rows skipped", file=sys.stderr)
    try:
        from tgsage.strategies import list_strategies

        strategies = list(list_strategies())
    except ImportError:
        strategies = ["random", "tpe"]
    if args.strategies:
        strategies = args.strategies.split(",")
    print(f"cpu cores: {os.cpu_count()}, optuna {optuna.__version__}")
    with tempfile.TemporaryDirectory(prefix="bench-search-") as d:
        tmp = Path(d)
        if not args.skip_throughput:
            if args.quick:
                throughput(kinds, [1, 2, 4], n=12, sleep=0.5, tmp=tmp)
            else:
                throughput(kinds, [1, 2, 4, 8], n=32, sleep=1.0, tmp=tmp)
        if not args.skip_overhead:
            if args.quick:
                overhead(kinds, ["random", "tpe"], [100], k=5, tmp=tmp)
            else:
                sizes = [int(x) for x in args.sizes.split(",")]
                overhead(kinds, strategies, sizes, k=10, tmp=tmp)


if __name__ == "__main__":
    main()
