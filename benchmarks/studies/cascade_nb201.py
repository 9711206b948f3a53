"""Search efficiency on NAS-Bench-201 CIFAR-10 with tabular truth (issue 13, item 2).

Every search's answer is judged by its published 200-epoch test accuracy (a NATS-Bench table,
e.g. ``../shared/data/nats-bench-tss-dev.csv``), so many seeds are affordable: every evaluation
(screen of a cell; training of a cell to a budget, seed 0) is done once, kept in an
append-only evaluation cache (:class:`tgsage.search.evaluation_cache.EvaluationCache`) and
reused by every later search, which is charged its recorded cost, as if it had run it.

Methods (each over ``--seeds``; a search seed changes the proposals, never the training seed):

- ``screen``: ``--screen-n`` random cells scored by the zero-cost screen; answer = the best;
- ``cascade-p`` / ``cascade-ptg``: tgsage's cascade (``tgsage.search.cascade``, one worker,
  in-memory storage) with rungs ranked by P or by P + TG;
- ``random-p``, ``re-p``, ``tpe-p`` and the ``-ptg`` twins: random search, regularised
  evolution and TPE training every proposal to ``--baseline-budget`` and guided by P or P + TG,
  until ``--baseline-cost`` examples; with ``--shared-startup N`` the first N distinct cells of
  ``re-*`` and ``tpe-*`` come from ``random-p``'s random stream (RE's initial population and TPE's
  start-up are random anyway: common random numbers, shared trainings).

Cells missing from the table (933 of 15,625 in the dev table) are treated as outside the
space: a cascade's screen fails them at no cost, a baseline re-proposes.

Commands (all resumable; results append to ``--searches``)::

    python benchmarks/studies/cascade_nb201.py screen  --data-root DATA --table TABLE ...
    python benchmarks/studies/cascade_nb201.py run     --methods cascade-p,cascade-ptg ...
    python benchmarks/studies/cascade_nb201.py report  --out FIGURE.png [--table TABLE]
    python benchmarks/studies/cascade_nb201.py bounds  --data-root DATA --table TABLE
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent / "results"

METHODS = (
    "screen",
    "cascade-p",
    "cascade-ptg",
    "random-p",
    "random-ptg",
    "re-p",
    "re-ptg",
    "tpe-p",
    "tpe-ptg",
)


# ---------------------------------------------------------------------------- setting
def search_config(args: argparse.Namespace, **over: Any) -> Any:
    """The study's search config: the trained study's setting (data, width, preset, teacher,
    budgets), the cascade's plan, and the evaluation cache."""
    from tgsage.search import load_config

    cfg: dict[str, Any] = {
        "name": over.pop("name", "study"),
        "space": "nb201",
        "strategy": "random",
        "objective": "train",
        "score": "p+tg" if args.teacher is not None else "p",
        "n_candidates": args.screen_n,
        "data": {"name": "cifar10", "root": args.data_root, "val_size": 1000, "seed": 0},
        "teacher": args.teacher,
        "train": args.preset,
        "width_mult": args.width,
        "device": "cpu",
        "seed": 0,
        "max_failures": 100_000,
        "run_dir": str(args.work / "runs"),
        "cascade": {
            "screen": args.screen,
            "budgets": args.budgets,
            "keep": args.keep,
            "eta": args.eta,
            "cache": str(args.cache),
            "checkpoints": str(args.work / "checkpoints"),
        },
    }
    if args.prescreen is not None:
        cfg["cascade"] |= {"prescreen": args.prescreen, "prescreen_keep": args.prescreen_keep}
    cfg.update(over)
    return load_config(cfg)


class StudyEvaluator:
    """The cascade's real evaluator, restricted to the cells of the truth table."""

    def __init__(self, config: Any, truth: Any) -> None:
        from tgsage.search.cascade_train import TrainingCascade

        # the trained study's setting: channels-last on the CPU (same values up to rounding)
        self.inner = TrainingCascade(config, channels_last=True)
        self.truth = truth
        self.trained = 0  # evaluations actually run (not read from the cache)

    def _outside(self) -> Any:
        from tgsage.search.objective import Outcome

        return Outcome(
            False,
            None,
            {"examples": 0, "cpu_seconds": 0.0, "failure_reason": "not_in_table", "message": ""},
        )

    def screen(self, spec: Any, score: str | None = None) -> Any:
        if spec.spec_hash not in self.truth:
            return self._outside()
        return self.inner.screen(spec, score)

    def train(self, spec: Any, budget: str, score: str, previous: str | None = None) -> Any:
        if spec.spec_hash not in self.truth:
            return self._outside()
        before = len(self.inner.cache) if self.inner.cache is not None else 0
        out = self.inner.train(spec, budget, score, previous)
        if self.inner.cache is not None and len(self.inner.cache) > before:
            self.trained += 1
        return out


def load_truth(args: argparse.Namespace) -> Any:
    from tgsage.experiments import load_nb201_table

    return load_nb201_table(args.table, dataset="cifar10")


# ---------------------------------------------------------------------------- screen
def cmd_screen(args: argparse.Namespace) -> None:
    """Measure the zero-cost proxies of every table cell once (resumable)."""
    import torch

    torch.set_num_threads(args.threads)
    truth = load_truth(args)
    ev = StudyEvaluator(search_config(args), truth).inner
    names = args.proxies.split(",")
    specs = list(truth.specs)
    rng = np.random.default_rng(0)
    rng.shuffle(specs)  # any prefix is a random sample of the table
    t0, done = time.time(), 0
    for i, spec in enumerate(specs):
        rec = ev.screen_cache.get(spec.spec_hash, None) if ev.screen_cache else None
        if rec is not None and all(n in (rec.get("proxies") or {}) for n in names):
            continue
        ev.measure_screen(spec, names)
        done += 1
        if done % 100 == 0:
            print(
                f"{i + 1}/{len(specs)} cells, {done} measured, {time.time() - t0:.0f} s", flush=True
            )
    print(f"screen done: {len(specs)} cells ({done} measured now)", flush=True)


# ---------------------------------------------------------------------------- searches
def _truth_by_hash(truth: Any) -> dict[str, float]:
    return {h: float(truth[h]) for h in truth}


def cascade_events(trials: Sequence[Any], budgets: Sequence[str], acc: dict[str, float]) -> list:
    """[examples, cpu seconds, incumbent's true accuracy] after each finished trial, in order.

    The incumbent is what the cascade would answer at that moment: the best-scored cell of
    the deepest rung with any result (the screen before any training; with a prescreen, the
    prescreen before the screen)."""
    from optuna.trial import TrialState

    done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.FAIL)]
    done.sort(key=lambda t: (t.datetime_complete, t.number))
    level = {None: 0, **{b: i + 1 for i, b in enumerate(budgets)}}
    best: dict[int, tuple[float, int, str]] = {}
    events = []
    for t in done:
        a = t.user_attrs
        if t.state == TrialState.COMPLETE and t.value is not None:
            lv = int(a["rung"]) if "rung" in a else level[a.get("budget")]  # deeper: later
            key = (float(t.value), -t.number, a["spec_hash"])
            if lv not in best or key[:2] > best[lv][:2]:
                best[lv] = key
        inc = best[max(best)][2] if best else None
        events.append(
            [
                int(a.get("examples", 0) or 0),
                float(a.get("cpu_seconds", 0.0) or 0.0),
                acc.get(inc) if inc is not None else None,
            ]
        )
    return events


def run_cascade(args: argparse.Namespace, seed: int, score: str, truth: Any) -> dict[str, Any]:
    import optuna

    from tgsage.search.cascade_worker import CascadeWorker

    cfg = search_config(args, name=f"{score}-{seed}-{uuid.uuid4().hex[:6]}", score=score)
    cfg = cfg.model_copy(update={"seed": seed})  # proposals; training stays at seed 0
    ev = StudyEvaluator(cfg.model_copy(update={"seed": 0}), truth)
    study = optuna.create_study(
        storage=optuna.storages.InMemoryStorage(), study_name=cfg.name, direction="maximize"
    )
    worker = CascadeWorker(study, cfg, f"study-{seed}", evaluator=ev, poll=0.001)
    worker.run()
    trials = study.get_trials(deepcopy=False)
    acc = _truth_by_hash(truth)
    events = cascade_events(trials, cfg.cascade.budgets, acc)
    return {"events": events, "trained": ev.trained}


def run_screen_only(args: argparse.Namespace, seed: int, truth: Any) -> dict[str, Any]:
    """The screen alone: ``screen_n`` random cells of the table, the best by the proxy."""
    cfg = search_config(args)
    ev = StudyEvaluator(cfg, truth)
    acc = _truth_by_hash(truth)
    rng = np.random.default_rng(seed)
    specs = list(truth.specs)
    pick = rng.choice(len(specs), size=args.screen_n, replace=False)
    best, events = None, []
    for i in pick:
        out = ev.screen(specs[i])
        if out.ok and (best is None or out.score > best[0]):
            best = (out.score, specs[i].spec_hash)
        events.append([0, out.attrs.get("cpu_seconds", 0.0), acc[best[1]] if best else None])
    return {"events": events, "trained": 0}


def random_stream(seed: int, truth: Any, k: int) -> list[Any]:
    """The first ``k`` distinct table cells of ``random-p``'s proposal stream for ``seed``
    (also the shared start-up of ``re-*`` and ``tpe-*``): uniform random cells of the table,
    trained by those searches at their budget, so the evaluation cache holds their P, TG and
    SoTL (``cells`` command)."""
    from tgsage.spaces import get_space
    from tgsage.strategies import get_strategy
    from tgsage.strategies.base import trial_seed

    space = get_space("nb201")
    stream = get_strategy("random", space, seed=seed)
    acc = _truth_by_hash(truth)
    out: dict[str, Any] = {}
    asked = 0
    while len(out) < k:
        spec = space.params_to_spec(stream.ask(trial_seed(seed, asked)))
        asked += 1
        if spec.spec_hash in acc:
            out.setdefault(spec.spec_hash, spec)
    return list(out.values())


def cmd_cells(args: argparse.Namespace) -> None:
    """Print the arch strings of ``random_stream`` (``--random-n`` cells per seed)."""
    truth = load_truth(args)
    for seed in _parse_seeds(args.seeds):
        for spec in random_stream(seed, truth, args.random_n):
            print(spec.to_arch_string())


def cmd_train_cells(args: argparse.Namespace) -> None:
    """Train ``random_stream`` cells ``--first`` .. ``--random-n`` - 1 of each seed to
    ``--baseline-budget`` (continuing a smaller cached budget's checkpoint), so the evaluation
    cache holds trained scores of more uniform random cells (BENCHMARKS 18.12)."""
    import torch

    torch.set_num_threads(args.threads)
    truth = load_truth(args)
    ev = StudyEvaluator(search_config(args), truth)
    budgets = ("5000ex", "10000ex", "20000ex")
    for seed in _parse_seeds(args.seeds):
        for spec in random_stream(seed, truth, args.random_n)[args.first :]:
            cache = ev.inner.cache
            done = [b for b in budgets if cache is not None and cache.get(spec.spec_hash, b)]
            if args.baseline_budget in done:
                continue
            below = [
                b for b in done if _budget_examples(b) < _budget_examples(args.baseline_budget)
            ]
            t0 = time.time()
            out = ev.train(spec, args.baseline_budget, "p+tg", below[-1] if below else None)
            print(
                f"seed {seed} {spec.spec_hash}: {'ok' if out.ok else 'failed'}, "
                f"{out.attrs.get('examples', 0):,} examples, {time.time() - t0:.0f} s",
                flush=True,
            )


def run_baseline(args: argparse.Namespace, seed: int, method: str, truth: Any) -> dict[str, Any]:
    """A flat search: every proposal trained to ``baseline_budget`` and scored by P or P+TG."""
    from tgsage.spaces import get_space
    from tgsage.strategies import get_strategy
    from tgsage.strategies.base import trial_seed

    kind, score = method.split("-")
    name = {"random": "random", "re": "evolution", "tpe": "tpe"}[kind]
    opts: dict[str, Any] = {}
    if name == "evolution":
        opts = {"population": args.re_population, "sample_size": args.re_sample}
    if name == "tpe":
        opts = {"n_startup_trials": args.tpe_startup}
    cfg = search_config(args)
    ev = StudyEvaluator(cfg, truth)
    acc = _truth_by_hash(truth)
    space = get_space("nb201")
    strategy = get_strategy(name, space, seed=seed, **opts)
    # RE's initial population and TPE's start-up trials are uniform random proposals; drawn
    # from one shared random stream (random-p's), the same seed's RE and TPE runs start from
    # the same cells: common random numbers, and their trainings are reused from the cache
    starter = get_strategy("random", space, seed=seed) if name != "random" else strategy
    startup = args.shared_startup if name != "random" else 0
    seen: dict[str, float | None] = {}
    events, spent, asked, best = [], 0, 0, None
    while spent < args.baseline_cost:
        if args.max_new is not None and ev.trained >= args.max_new:
            return {"events": events, "trained": ev.trained, "incomplete": True}
        ask = starter if len(seen) < startup else strategy
        params = ask.ask(trial_seed(seed, asked))
        asked += 1
        spec = space.params_to_spec(params)
        h = spec.spec_hash
        if h not in acc:
            continue  # outside the table: not part of the space here
        if h in seen:  # a repeated proposal is looked up, at no cost (the engine's dedup)
            value, ex, cpu = seen[h], 0, 0.0
        else:
            out = ev.train(spec, args.baseline_budget, "p" if score == "p" else "p+tg")
            value = out.score if out.ok else None
            ex, cpu = int(out.attrs.get("examples", 0)), float(out.attrs.get("cpu_seconds", 0))
            seen[h] = value
        strategy.tell(params, value)
        spent += ex
        if value is not None and (best is None or value > best[0]):
            best = (value, h)
        events.append([ex, cpu, acc[best[1]] if best else None])
    return {"events": events, "trained": ev.trained}


def compact_events(events: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """The same curve in fewer events: one event per change of the incumbent, carrying the
    costs of the events since the previous change (so cumulative costs at every change, the
    totals and the final answer are exactly those of ``events``; :func:`curve` reads both
    alike)."""
    out: list[list[Any]] = []
    pending = [0, 0.0]
    for ex, cpu, acc in events:
        pending = [pending[0] + ex, pending[1] + cpu]
        if not out or acc != out[-1][2]:
            out.append([pending[0], round(pending[1], 6), acc])
            pending = [0, 0.0]
    if pending != [0, 0.0]:
        out.append([pending[0], round(pending[1], 6), out[-1][2] if out else None])
    return out


def _parse_seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def _done(path: Path) -> set[tuple[str, int, str]]:
    if not path.exists():
        return set()
    keys = set()
    for line in path.read_text().splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue
        keys.add((r["method"], r["seed"], r["key"]))
    return keys


def method_key(args: argparse.Namespace, method: str) -> str:
    """The settings a method's result depends on (a changed setting is a new result)."""
    common = {"width": args.width, "preset": args.preset, "teacher": Path(args.teacher).name}
    if method == "screen":
        return json.dumps({"screen": args.screen, "n": args.screen_n}, sort_keys=True)
    if method.startswith("cascade"):
        plan = {"screen": args.screen, "n": args.screen_n, "budgets": args.budgets}
        if args.prescreen is not None:
            plan |= {"prescreen": args.prescreen, "prescreen_keep": args.prescreen_keep}
        plan |= {"keep": args.keep, "eta": args.eta}
        return json.dumps(common | plan, sort_keys=True)
    base = {"budget": args.baseline_budget, "cost": args.baseline_cost}
    if method.startswith("re"):
        base |= {"population": args.re_population, "sample": args.re_sample}
    if method.startswith("tpe"):
        base |= {"tpe_startup": args.tpe_startup}
    if method.startswith(("re", "tpe")) and args.shared_startup:
        base |= {"shared_startup": args.shared_startup}
    return json.dumps(common | base, sort_keys=True)


def cmd_run(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    truth = load_truth(args)
    done = _done(args.searches)
    for method in args.methods.split(","):
        if method not in METHODS:
            sys.exit(f"unknown method {method!r}; choose from {METHODS}")
        key = method_key(args, method)
        for seed in _parse_seeds(args.seeds):
            if (method, seed, key) in done:
                continue
            t0 = time.time()
            if method == "screen":
                res = run_screen_only(args, seed, truth)
            elif method.startswith("cascade"):
                res = run_cascade(args, seed, "p" if method == "cascade-p" else "p+tg", truth)
            else:
                res = run_baseline(args, seed, method, truth)
            if res.get("incomplete"):
                print(f"{method} seed {seed}: stopped at --max-new trainings", flush=True)
                return
            res["events"] = compact_events(res["events"])
            final = res["events"][-1][2] if res["events"] else None
            rec = {"method": method, "seed": seed, "key": key, "wall": time.time() - t0} | res
            with open(args.searches, "a") as fh:
                fh.write(json.dumps(rec) + "\n")
            ex = sum(e[0] for e in res["events"])
            print(
                f"{method} seed {seed}: answer {final}, {ex:,} examples, "
                f"{res['trained']} trained now, {time.time() - t0:.0f} s",
                flush=True,
            )


# ---------------------------------------------------------------------------- report
def _load_searches(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Results by method name, the latest per seed; a cascade with a prescreen is a variant
    of its own (``cascade-ptg-2stage``), never mixed with the one-stage runs."""
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        out.setdefault(_label(r), {})[r["seed"]] = r
    return {m: [v[s] for s in sorted(v)] for m, v in out.items()}


def _label(record: dict[str, Any]) -> str:
    """The method, with ``-2stage`` for a cascade that ran a prescreen before its screen."""
    two_stage = "prescreen" in json.loads(record["key"])
    return record["method"] + ("-2stage" if two_stage else "")


def _names(runs: dict[str, Any]) -> list[str]:
    """Methods in the study's order, each followed by its variants."""
    return [n for m in METHODS for n in (m, f"{m}-2stage") if n in runs]


def curve(events: Sequence[Sequence[Any]], unit: int, grid: np.ndarray) -> np.ndarray:
    """The incumbent's accuracy read at each grid cost (NaN before the first answer;
    held after the search's end)."""
    costs = np.cumsum([e[unit] for e in events], dtype=np.float64)
    vals = np.array([np.nan if e[2] is None else e[2] for e in events])
    idx = np.searchsorted(costs, grid, side="right") - 1
    return np.where(idx >= 0, vals[np.clip(idx, 0, None)], np.nan)


def bootstrap_ci(x: np.ndarray, n: int = 10_000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    means = rng.choice(x, size=(n, x.size), replace=True).mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def cmd_bounds(args: argparse.Namespace) -> None:
    """Table-only context for the searches (no training): per seed, the screen's ``screen_n``
    random cells of the table (the ``screen`` method's sample) and its ``keep[0]`` survivors;
    what a rung picking among them at random gets on average, and what a rung that always
    picked the truly best survivor (an oracle) gets; and the best of ``--random-n`` random
    cells judged by their true accuracy (an oracle-scored random search with as many trainings
    as ``random-p`` affords). Bounds, not results: no method here trains anything."""
    from tgsage.search.cascade_train import TrainingCascade

    truth = load_truth(args)
    acc = _truth_by_hash(truth)
    screen = TrainingCascade(search_config(args)).screen_cache
    assert screen is not None
    specs = list(truth.specs)
    rows: dict[str, list[float]] = {}
    for seed in _parse_seeds(args.seeds):
        rng = np.random.default_rng(seed)
        pick = [specs[i].spec_hash for i in rng.choice(len(specs), args.screen_n, replace=False)]
        value = {h: (screen.get(h, None) or {}).get("proxies", {}).get(args.screen) for h in pick}
        ranked = sorted((h for h in pick if value[h] is not None), key=lambda h: -value[h])
        top = [acc[h] for h in ranked[: args.keep[0]]]
        rows.setdefault("screen's pick (top-1)", []).append(top[0])
        rows.setdefault(f"random survivor of the top {args.keep[0]} (expected)", []).append(
            float(np.mean(top))
        )
        rows.setdefault(f"oracle survivor of the top {args.keep[0]}", []).append(max(top))
        rnd = np.random.default_rng(10_000 + seed).choice(len(specs), args.random_n, replace=False)
        rows.setdefault(f"oracle-scored best of {args.random_n} random cells", []).append(
            max(acc[specs[i].spec_hash] for i in rnd)
        )
    seeds = _parse_seeds(args.seeds)
    curves = (
        oracle_evolution(truth, seeds, args.oracle_evaluations, args.re_population, args.re_sample)
        * 100
    )
    mean = curves.mean(axis=0)
    examples = _budget_examples(args.baseline_budget)
    reached = np.flatnonzero(mean >= args.target)
    print(
        f"\nregularised evolution (population {args.re_population}, sample {args.re_sample}) "
        f"with the TRUE accuracy as fitness, {len(seeds)} seeds, {examples:,} examples per "
        "evaluation (an optimistic bound for re-p):"
    )
    print("| evaluations | examples | mean best-so-far | 95% CI of the mean |")
    print("|---|---|---|---|")
    for n in (5, 10, 20, 50, 100, 200, 500, 1000, 2000):
        if n <= curves.shape[1]:
            lo, hi = bootstrap_ci(curves[:, n - 1])
            print(f"| {n} | {n * examples:,} | {mean[n - 1]:.2f} | [{lo:.2f}, {hi:.2f}] |")
    if reached.size:
        n = int(reached[0]) + 1
        print(
            f"mean best-so-far first >= {args.target:.2f} after {n} evaluations "
            f"= {n * examples:,} examples"
        )
    else:
        print(f"mean best-so-far never reached {args.target:.2f} in {curves.shape[1]} evaluations")
    if args.p_spearman is not None:
        model = oracle_evolution(
            truth, seeds, args.oracle_evaluations, args.re_population, args.re_sample,
            spearman=args.p_spearman,
        ) * 100  # fmt: skip
        m = model.mean(axis=0)
        print(
            f"\nthe same evolution guided by a MODEL of P with Spearman {args.p_spearman} "
            f"(Gaussian copula; {examples:,} examples per evaluation):"
        )
        print("| evaluations | examples | mean best-so-far | 95% CI of the mean |")
        print("|---|---|---|---|")
        for n in (5, 10, 18, 20, 50, 100, 200, 500, 1000, 2000):
            if n <= model.shape[1]:
                lo, hi = bootstrap_ci(model[:, n - 1])
                print(f"| {n} | {n * examples:,} | {m[n - 1]:.2f} | [{lo:.2f}, {hi:.2f}] |")
        hit = np.flatnonzero(m >= args.target)
        print(
            f"model mean first >= {args.target:.2f} after {int(hit[0]) + 1} evaluations"
            if hit.size
            else f"model mean never reached {args.target:.2f} in {m.size} evaluations"
        )
    all_acc = np.array(list(acc.values())) * 100
    print(
        f"table: {all_acc.size} cells, mean {all_acc.mean():.2f}, median {np.median(all_acc):.2f}, "
        f"99th percentile {np.percentile(all_acc, 99):.2f}, best {all_acc.max():.2f}"
    )
    print(f"\n| bound ({len(_parse_seeds(args.seeds))} seeds) | mean | 95% CI of the mean |")
    print("|---|---|---|")
    for name, vals in rows.items():
        a = np.array(vals) * 100
        lo, hi = bootstrap_ci(a)
        print(f"| {name} | {a.mean():.2f} | [{lo:.2f}, {hi:.2f}] |")


def _budget_examples(budget: str) -> int:
    """Examples of an example-denominated budget such as ``20000ex``."""
    from tgsage.train.budget import Budget

    b = Budget.parse(budget)
    if b.unit != "examples":
        raise SystemExit(f"--baseline-budget {budget}: give it in examples (e.g. 20000ex)")
    return int(b.amount)


def oracle_evolution(
    truth: Any,
    seeds: Sequence[int],
    evaluations: int,
    population: int,
    sample: int,
    spearman: float | None = None,
) -> np.ndarray:
    """Best-so-far true accuracy (seeds x evaluations) of tgsage's regularised evolution when
    each candidate's fitness is its true 200-epoch accuracy, with no noise: what RE guided by
    P could reach if P ranked perfectly. Cells outside the table are proposed again at no
    cost, as in the ``re-p`` baseline.

    With ``spearman``, a model of a noisy P instead (a Gaussian copula): fitness = r z + sqrt(1
    - r^2) e, z the normal score of the cell's rank in the table, e a standard normal fixed
    per cell and seed (P is one training's value), r the Pearson correlation of normal scores
    that gives this Spearman (2 sin(pi rho / 6)); the incumbent is the best cell by fitness,
    judged by its true accuracy. Its noise is the same across the range, while a real P may
    tell apart the top cells less well than the bad ones: optimistic for the modelled RE."""
    from scipy.stats import norm, rankdata

    from tgsage.spaces import get_space
    from tgsage.strategies.evolution import EvolutionStrategy

    space = get_space("nb201")
    hashes = list(_truth_by_hash(truth))
    accs = np.array([_truth_by_hash(truth)[h] for h in hashes])
    z = dict(zip(hashes, norm.ppf((rankdata(accs) - 0.5) / accs.size), strict=True))
    r = None if spearman is None else 2 * np.sin(np.pi * spearman / 6)
    curves = np.zeros((len(seeds), evaluations))
    for row, seed in enumerate(seeds):
        strategy = EvolutionStrategy(space, seed, population=population, sample_size=sample)
        rng = np.random.default_rng(20_000 + seed)
        noise: dict[str, float] = {}
        best, best_acc, done = -np.inf, -np.inf, 0
        while done < evaluations:
            params = strategy.ask(int(rng.integers(2**31)))
            spec = strategy.to_spec(params)
            acc = truth.lookup(spec)
            if acc is None:
                continue
            fit = acc
            if r is not None:
                e = noise.setdefault(spec.spec_hash, float(rng.standard_normal()))
                fit = r * z[spec.spec_hash] + np.sqrt(1 - r * r) * e
            strategy.tell(params, fit)
            if fit > best:
                best, best_acc = fit, acc
            curves[row, done] = best_acc
            done += 1
    return curves


def cmd_report(args: argparse.Namespace) -> None:
    runs = _load_searches(args.searches)
    total = {m: [float(np.sum([e[0] for e in r["events"]])) for r in rs] for m, rs in runs.items()}
    cpu = {m: [float(np.sum([e[1] for e in r["events"]])) for r in rs] for m, rs in runs.items()}
    final = {m: np.array([r["events"][-1][2] for r in rs], dtype=float) for m, rs in runs.items()}
    print(
        "| method | seeds | final accuracy (mean +- std) | 95% CI of the mean | examples (mean) "
        "| CPU seconds (mean) |"
    )
    print("|---|---|---|---|---|---|")
    for m in _names(runs):
        a = final[m] * 100
        lo, hi = bootstrap_ci(a)
        print(
            f"| {m} | {a.size} | {a.mean():.2f} +- {a.std(ddof=1) if a.size > 1 else 0:.2f} | "
            f"[{lo:.2f}, {hi:.2f}] | {np.mean(total[m]):,.0f} | {np.mean(cpu[m]):,.0f} |"
        )
    pairs = [(f"{k}-p", f"{k}-ptg") for k in ("cascade", "random", "re", "tpe")]
    pairs += [(m, f"{m}-2stage") for m in ("cascade-p", "cascade-ptg")]  # the prescreen's gain
    pairs += [(m, "cascade-ptg") for m in METHODS if m not in ("cascade-p", "cascade-ptg")]
    for a_m, b_m in pairs:  # teacher guidance on/off, then the cascade against each method
        if a_m not in runs or b_m not in runs:
            continue
        a = {r["seed"]: r["events"][-1][2] for r in runs[a_m]}
        b = {r["seed"]: r["events"][-1][2] for r in runs[b_m]}
        seeds = sorted(set(a) & set(b))
        if len(seeds) < 2:
            continue
        d = np.array([b[s] - a[s] for s in seeds]) * 100
        lo, hi = bootstrap_ci(d)
        print(
            f"paired over {len(seeds)} seeds, {b_m} minus {a_m}: mean {d.mean():+.3f} "
            f"points, 95% bootstrap CI [{lo:+.3f}, {hi:+.3f}]; {b_m} better on "
            f"{int((d > 0).sum())}, equal on {int((d == 0).sum())}, worse on {int((d < 0).sum())}"
        )
    if args.out is not None:
        bound = None
        if args.table is not None:  # the oracle-fitness evolution of `bounds`, as a reference
            seeds = _parse_seeds(args.seeds)
            curves = oracle_evolution(
                load_truth(args), seeds, args.oracle_evaluations, args.re_population,
                args.re_sample,
            )  # fmt: skip
            bound = (_budget_examples(args.baseline_budget), curves * 100)
        plot(runs, args.out, bound)


def plot(
    runs: dict[str, list[dict[str, Any]]],
    out: Path,
    bound: tuple[int, np.ndarray] | None = None,
) -> None:
    """Best found against cost, the paper's Fig. 4 form: mean over seeds with a 95% band (of
    the mean), in examples and in CPU seconds; one colour per search in both panels (P + TG
    dashed).
    ``bound``: (examples per evaluation, seeds x evaluations best-so-far) of regularised
    evolution with the true accuracy as fitness, drawn in the examples panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # one colour per search (screen, cascade, random, re, tpe); P + TG dashed beside its P twin
    families = list(dict.fromkeys(m.split("-")[0] for m in METHODS))
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colours = {m: palette[families.index(m.split("-")[0]) % len(palette)] for m in _names(runs)}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for ax, unit, label in ((axes[0], 0, "examples"), (axes[1], 1, "CPU seconds")):
        ends = [np.sum([e[unit] for e in r["events"]]) for rs in runs.values() for r in rs]
        hi = max(ends) if ends else 1.0
        if unit == 0 and bound is not None:
            hi = max(hi, bound[0] * bound[1].shape[1])
        grid = np.geomspace(max(hi * 1e-4, 1.0), hi, 400)
        for m in _names(runs):
            if unit == 0 and m == "screen":  # the screen costs no examples
                continue
            ys = np.vstack([curve(r["events"], unit, grid) for r in runs[m]]) * 100
            n = np.isfinite(ys).sum(axis=0)
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # grid points before any answer
                mean = np.nanmean(ys, axis=0)
                sem = np.nanstd(ys, axis=0, ddof=1) / np.sqrt(np.maximum(n, 1))
            end = max(np.sum([e[unit] for e in r["events"]]) for r in runs[m])
            ok = (n >= max(2, 0.5 * len(runs[m]))) & (grid <= end)  # drawn up to its cost
            c = colours.get(m)
            ls = ":" if m.endswith("-2stage") else "--" if m.endswith("-ptg") else "-"
            ax.plot(grid[ok], mean[ok], color=c, ls=ls, label=f"{m} ({len(runs[m])} seeds)")
            lo, up = (mean - 1.96 * sem)[ok], (mean + 1.96 * sem)[ok]
            ax.fill_between(grid[ok], lo, up, color=c, alpha=0.2)
        if unit == 0 and bound is not None:
            per, curves = bound
            x = per * np.arange(1, curves.shape[1] + 1)
            mean = curves.mean(axis=0)
            sem = curves.std(axis=0, ddof=1) / np.sqrt(curves.shape[0])
            ax.plot(x, mean, color="k", ls="--", lw=1,
                    label=f"RE, true accuracy as fitness ({curves.shape[0]} seeds; a bound)")  # fmt: skip
            ax.fill_between(x, mean - 1.96 * sem, mean + 1.96 * sem, color="k", alpha=0.1)
        ax.axhline(94.37, color="k", lw=0.6, ls=":")
        ax.set_xscale("log")
        ax.set_xlabel(f"search cost ({label})")
        ax.set_ylabel("test accuracy of the answer (%)")
        ax.set_ylim(87, 94.6)
    handles: dict[str, Any] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    fig.legend(handles.values(), handles.keys(), fontsize=7, loc="lower center", ncol=4)
    fig.suptitle("NAS-Bench-201 CIFAR-10: best found vs cost (mean over seeds, 95% band)")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(out, dpi=120)
    print(f"figure: {out}")


# ---------------------------------------------------------------------------- CLI
def main(argv: Iterable[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "command", choices=("screen", "run", "report", "bounds", "cells", "train-cells")
    )
    ap.add_argument("--data-root", help="extracted CIFAR-10 folder (the study's 20,000 images)")
    ap.add_argument("--table", help="NATS-Bench table (e.g. ../shared/data/nats-bench-tss-dev.csv)")
    ap.add_argument("--teacher", help="teacher file of the trained study's setting")
    ap.add_argument(
        "--work", type=Path, help="folder for checkpoints and scratch (outside the repo)"
    )
    ap.add_argument("--cache", type=Path, default=RESULTS / "cascade_nb201_evals.jsonl")
    ap.add_argument("--searches", type=Path, default=RESULTS / "cascade_nb201_searches.jsonl")
    ap.add_argument("--width", type=float, default=0.5)
    ap.add_argument("--preset", default="cpu_demo")
    ap.add_argument("--screen", default="synflow")
    ap.add_argument(
        "--proxies", default="synflow,params", help="screen command: proxies to measure"
    )
    ap.add_argument("--screen-n", type=int, default=3000)
    ap.add_argument("--prescreen", help="cascades: a cheaper score before --screen")
    ap.add_argument("--prescreen-keep", type=int, default=300)
    ap.add_argument("--budgets", type=lambda s: s.split(","), default=["5000ex", "20000ex"])
    ap.add_argument("--keep", type=lambda s: [int(k) for k in s.split(",")], default=[9, 3])
    ap.add_argument("--eta", type=float, default=3.0)
    ap.add_argument("--baseline-budget", default="20000ex")
    ap.add_argument("--baseline-cost", type=int, default=400_000)
    ap.add_argument("--re-population", type=int, default=10)
    ap.add_argument("--re-sample", type=int, default=3)
    ap.add_argument("--tpe-startup", type=int, default=20, help="TPE's random start-up trials")
    ap.add_argument(
        "--shared-startup",
        type=int,
        default=0,
        help="re/tpe: the first N distinct cells from random-p's stream (common random numbers)",
    )
    ap.add_argument("--methods", default="screen,cascade-p,cascade-ptg")
    ap.add_argument("--seeds", default="0-19")
    ap.add_argument("--max-new", type=int, help="stop a run after this many trainings")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--random-n", type=int, default=5, help="bounds: random cells per seed")
    ap.add_argument("--first", type=int, default=0, help="train-cells: skip each seed's first N")
    ap.add_argument(
        "--oracle-evaluations", type=int, default=1000, help="bounds: RE with true fitness"
    )
    ap.add_argument("--target", type=float, default=94.0, help="bounds: accuracy to reach (%%)")
    ap.add_argument(
        "--p-spearman", type=float, help="bounds: also RE guided by a model of P (its Spearman)"
    )
    ap.add_argument("--out", type=Path, help="report: the figure")
    args = ap.parse_args(list(argv) if argv is not None else None)
    if args.command in ("screen", "run", "train-cells") and (
        args.data_root is None or args.table is None or args.work is None
    ):
        ap.error("screen and run need --data-root, --table and --work")
    if args.command == "bounds" and None in (args.data_root, args.table, args.work):
        ap.error("bounds needs --data-root, --table and --work (the screen cache setting)")
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
    commands = {"screen": cmd_screen, "run": cmd_run, "report": cmd_report, "bounds": cmd_bounds}
    commands["cells"] = cmd_cells
    commands["train-cells"] = cmd_train_cells
    commands[args.command](args)


if __name__ == "__main__":
    main()
