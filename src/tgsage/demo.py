"""The demo: the whole TG-SAGE pipeline at small scale on synthetic objects, with a result.

1. build a teacher: train the paper's CIFAR ResNet (ResNet-20 at half width) on synthetic
   objects and store its RDMs on the validation (probe) images, and the probe set itself
   (``probe.npz``, for teachers built later on the same data);
2. search the layer space with a cascade (:mod:`tgsage.search.cascade`): screen many
   proposals with a free zero-cost score, train the best few briefly and keep those with the
   highest P + alpha * TG, train the survivors to the end of the schedule and keep the best
   (local worker processes on a journal-file storage);
3. compare: train the chosen network and a few random architectures of the same space the
   same way (same budget, schedule, seed and data) and test them all on held-out images the
   search never saw - did the search help?
4. report: figures and one HTML page.

Every stage is cached in the run folder: re-running reuses the teacher, resumes (or skips) the
search, and reuses the comparison when its settings did not change. ``DemoConfig.tiny()`` is a
seconds-long version for tests. Progress goes to an :class:`~tgsage.observer.Observer` (the
command line's draws bars; the default only logs).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tgsage.errors import ConfigError
from tgsage.observer import Observer

#: Synthetic objects that small networks learn within a few epochs at 16x16 (smaller poses
#: and backgrounds than the default renderer; see tgsage.data.synthetic.RenderConfig)
EASY_RENDER = {
    "rotation": 15.0,
    "shift": 0.2,
    "scale": [0.6, 0.85],
    "foreshorten": 0.85,
    "bg_contrast": [0.05, 0.15],
}

#: The stage-3 result inside the run folder
COMPARISON_FILE = "comparison.json"
#: The teacher's probe set (the validation images) inside the run folder: the probe of any
#: later teacher built for searches on the demo's data (``tgsage teacher build --probe``)
PROBE_FILE = "probe.npz"


class DemoConfig(BaseModel):
    """Settings of every demo stage (``configs/demo.yaml`` holds the same defaults)."""

    model_config = ConfigDict(extra="forbid")

    run_dir: Path = Path("runs/demo")
    seed: int = 0
    device: str = "auto"
    data: dict[str, Any] = Field(
        default_factory=lambda: {
            "name": "synthetic",
            "n_train": 6000,
            "n_val": 512,
            "n_test": 1024,
            "resolution": 16,
            "render": dict(EASY_RENDER),
        }
    )
    teacher_n: int = Field(3, ge=1, description="ResNet blocks per stack (6n+2 layers).")
    teacher_width: float = Field(0.5, gt=0)
    teacher_budget: str = "mature"
    teacher_preset: str = "cpu_demo"
    grouping: str | None = "object"
    subsamples: int = Field(10, ge=1)
    search: dict[str, Any] = Field(
        default_factory=lambda: {
            "space": "layer",
            "space_options": {"max_layers": 6},
            "strategy": "tpe",
            "score": "p+tg",
            "alpha": 1.0,
            "train": "cpu_demo",
            "train_options": {"epochs": 5},
            "width_mult": 0.25,
            "n_candidates": 32,
            "workers": 2,
            "cascade": {"screen": "synflow", "budgets": ["1ep", "5ep"], "keep": [8, 3]},
        }
    )
    baselines: int = Field(
        4, ge=1, description="Random architectures trained like the chosen one, to compare."
    )

    @classmethod
    def tiny(cls, run_dir: str | Path) -> DemoConfig:
        """A seconds-long demo for tests (tiny images, few candidates, one worker)."""
        return cls(
            run_dir=Path(run_dir),
            device="cpu",
            data={
                "name": "synthetic",
                "n_train": 192,
                "n_val": 64,
                "n_test": 64,
                "resolution": 16,
                "render": dict(EASY_RENDER),
            },
            teacher_n=1,
            teacher_width=0.25,
            teacher_budget="20steps",
            subsamples=3,
            search={
                "space": "layer",
                "space_options": {"max_layers": 4},
                "strategy": "tpe",
                "score": "p+tg",
                "train": "cpu_demo",
                "width_mult": 0.25,
                "n_candidates": 6,
                "workers": 1,
                "cascade": {"screen": "synflow", "budgets": ["5steps", "10steps"], "keep": [3, 1]},
            },
            baselines=2,
        )

    @classmethod
    def load(cls, path: str | Path | None = None, **overrides: Any) -> DemoConfig:
        """Defaults, updated from a YAML file, then from non-None keyword overrides."""
        import yaml
        from pydantic import ValidationError

        values: dict[str, Any] = {}
        if path is not None:
            p = Path(path)
            if not p.exists():
                raise ConfigError(f"demo config {p} not found")
            values = yaml.safe_load(p.read_text()) or {}
            if not isinstance(values, dict):
                raise ConfigError(f"{p}: expected a mapping of demo settings")
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigError(f"invalid demo config: {problems}") from None

    def teacher_key(self) -> str:
        """Hash of everything the teacher depends on (decides whether the cache is valid)."""
        keys = (
            "seed",
            "data",
            "teacher_n",
            "teacher_width",
            "teacher_budget",
            "teacher_preset",
            "grouping",
            "subsamples",
        )
        blob = json.dumps({k: getattr(self, k) for k in keys}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def demo_threads(cfg: DemoConfig) -> int:
    """Torch threads of the demo's in-process training (teacher, comparison): what one of the
    search's workers gets, ``cpu_count // workers``. Not torch's default of every core: on a
    2-core machine shared with other work, the teacher's steps ran 25x slower with two OpenMP
    threads than with one (BENCHMARKS section 8)."""
    workers = int(cfg.search.get("workers", 1) or 1)
    return max(1, (os.cpu_count() or 1) // max(1, workers))


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _data(cfg: DemoConfig) -> Any:
    from tgsage.data.registry import get_dataset

    options = {k: v for k, v in cfg.data.items() if k != "name"}
    if cfg.data.get("name", "synthetic") == "synthetic":
        options.setdefault("seed", cfg.seed)
    return get_dataset(cfg.data.get("name", "synthetic"), **options)


def build_teacher(cfg: DemoConfig, observer: Observer | None = None) -> Path:
    """Stage 1: the teacher file (reused when it was built with the same settings)."""
    from tgsage.data.probe import ProbeSet
    from tgsage.models import get_model
    from tgsage.teacher import Teacher, teacher_from_network
    from tgsage.train import Trainer

    observer = observer or Observer()
    path = cfg.run_dir / "teacher.npz"
    key = cfg.teacher_key()
    if path.exists():
        cached = Teacher.load(path)
        if cached.provenance.get("demo_key") == key:
            if cached.probe is not None and not (cfg.run_dir / PROBE_FILE).exists():
                cached.probe.save(cfg.run_dir / PROBE_FILE)
            observer.message(
                f"[1/4] teacher: reusing {path} "
                f"(val accuracy {cached.provenance.get('val_accuracy', float('nan')):.3f})"
            )
            return path
    splits = _data(cfg)
    model = get_model(
        "resnet_cifar",
        n=cfg.teacher_n,
        num_classes=splits.num_classes,
        width_mult=cfg.teacher_width,
    )
    trainer = Trainer(model, splits, cfg.teacher_preset, device=cfg.device, seed=cfg.seed)
    total = trainer.expected_examples(cfg.teacher_budget)
    with observer.training(f"[1/4] teacher ResNet-{6 * cfg.teacher_n + 2}", total) as cb:
        trainer.progress = cb
        result = trainer.train_until(cfg.teacher_budget, raise_on_failure=True)
    probe = ProbeSet.from_images(splits.val)
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    probe.save(cfg.run_dir / PROBE_FILE)
    teacher = teacher_from_network(
        model,
        probe,
        grouping=cfg.grouping,
        subsamples=cfg.subsamples,
        seed=cfg.seed,
        device=cfg.device,
        provenance={
            "model": f"resnet_cifar(n={cfg.teacher_n}, width_mult={cfg.teacher_width})",
            "val_accuracy": result.val_accuracy,
            "train_examples": result.examples,
            "demo_key": key,
        },
    )
    teacher.save(path)
    observer.message(
        f"[1/4] teacher: val accuracy {result.val_accuracy:.3f} after "
        f"{result.examples:,} examples; wrote {path}"
    )
    return path


def search_config(cfg: DemoConfig, teacher: Path) -> dict[str, Any]:
    """Stage 2's search config (a plain dict for :func:`tgsage.search.run_search`)."""
    return {
        "name": "demo",
        **cfg.search,
        "data": dict(cfg.data),
        "teacher": str(teacher),
        "run_dir": str(cfg.run_dir),
        "seed": cfg.seed,
        "device": cfg.device,
    }


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def compare_stage(cfg: DemoConfig, observer: Observer | None = None) -> dict[str, Any]:
    """Stage 3: the search's answer against ``cfg.baselines`` random architectures of the same
    space, each trained from scratch the way the cascade trained its last rung (its budget,
    schedule, width, seed and data) and tested on the test split, which the search never saw.
    Reused when ``comparison.json`` holds the same settings. Returns what it holds."""
    from tgsage.data.registry import get_dataset
    from tgsage.evaluate import evaluate_candidate
    from tgsage.experiments import best_candidate
    from tgsage.spaces import get_space
    from tgsage.train import Trainer

    observer = observer or Observer()
    best = best_candidate(cfg.run_dir)
    search = best.search_config
    assert search.cascade is not None
    budget = search.cascade.budgets[-1]
    space = get_space(search.space, **search.space_options)
    chosen = best.spec.spec_hash
    randoms, i = [], 0
    while len(randoms) < cfg.baselines:  # distinct architectures, none of them the answer
        spec = space.random_spec(cfg.seed * 1_000_003 + i)
        i += 1
        if spec.spec_hash != chosen and all(spec.spec_hash != r.spec_hash for r in randoms):
            randoms.append(spec)
    key = {
        "chosen": chosen,
        "random": [r.spec_hash for r in randoms],
        "budget": budget,
        "train": search.train_config.model_dump(mode="json"),
        "width_mult": search.width_mult,
        "seed": search.seed,
        "data": search.data.model_dump(mode="json"),
    }
    path = cfg.run_dir / COMPARISON_FILE
    if path.exists():
        cached = json.loads(path.read_text())
        if cached.get("key") == key:
            return cached
    data = get_dataset(search.data.name, **search.data.options)
    if data.test is None or len(data.test) == 0:
        raise ConfigError("the demo compares on held-out images: set data.n_test above 0")
    total = search.train_config.examples_for(budget, len(data.train))

    def train(spec: Any, label: str) -> dict[str, Any]:
        tested: list[float] = []

        def on_trained(trainer: Trainer) -> None:
            tested.append(trainer.evaluate(data.test))

        with observer.training(label, total) as cb:
            r = evaluate_candidate(
                spec,
                data,
                None,
                budget=budget,
                config=search.train_config,
                score="P",
                width_mult=search.width_mult,
                device=search.device,
                seed=search.seed,
                on_trained=on_trained,
                **({"progress": cb} if cb is not None else {}),
            )
        return {
            "spec_hash": spec.spec_hash,
            "spec": spec.to_json(),
            "status": r.status,
            "val_accuracy": r.accuracy,
            "test_accuracy": tested[0] if tested and r.ok else None,
            "examples": r.examples,
            "params": r.params,
        }

    answer = train(best.spec, f"[3/4] chosen ({chosen})")
    others = [train(s, f"[3/4] random {k + 1}/{len(randoms)}") for k, s in enumerate(randoms)]
    accs = [o["test_accuracy"] for o in others if o["test_accuracy"] is not None]
    out = {
        "key": key,
        "budget": budget,
        "trial": best.number,
        "chosen": answer,
        "random": others,
        "median_random": _median(accs) if accs else None,
        "chance": 1.0 / data.num_classes,
        "examples": answer["examples"] + sum(o["examples"] for o in others),
    }
    path.write_text(json.dumps(out, indent=1))
    return out


def comparison_line(result: dict[str, Any]) -> str:
    """ "chosen network: test accuracy 0.52; median of 4 random architectures 0.23 (...)"."""
    chosen = result["chosen"]["test_accuracy"]
    median = result["median_random"]
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    return (
        f"chosen network: test accuracy {fmt(chosen)}; median of {len(result['random'])} "
        f"random architectures trained the same way ({result['budget']}): {fmt(median)} "
        f"(chance {result['chance']:.3f})"
    )


def run_demo(cfg: DemoConfig, observer: Observer | None = None) -> dict[str, Any]:
    """Run (or resume) all four stages; returns where everything is and ``comparison`` (what
    ``comparison.json`` holds: the chosen network's and the random ones' test accuracies)."""
    from tgsage.report import report_search_run
    from tgsage.search import load_config, run_search
    from tgsage.search.locate import resolve_run

    observer = observer or Observer()
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    threads = demo_threads(cfg)
    with _torch_threads(threads):
        teacher = build_teacher(cfg, observer)
    search = load_config(search_config(cfg, teacher))
    c = search.cascade
    what = (
        f"a cascade over the {search.space} space: {search.n_candidates} proposals screened by "
        f"{c.screen}, then {' -> '.join(c.budgets)} scored by {search.score}"
        if c is not None
        else f"{search.strategy} over the {search.space} space, score {search.score}"
    )
    observer.message(f"[2/4] search: {what}")
    with observer.search(search.name, search.n_candidates) as on_status:
        summary = run_search(search, on_status)
    if not summary.finished:
        raise ConfigError(
            f"the demo search stopped early ({summary.message or 'see the log'}); "
            f"see {cfg.run_dir / 'search.log'}"
        )
    observer.message(
        f"[3/4] compare: the chosen network and {cfg.baselines} random architectures, "
        "trained the same way, tested on held-out images"
    )
    with _torch_threads(threads):
        comparison = compare_stage(cfg, observer)
    observer.message(f"[3/4] {comparison_line(comparison)}")
    observer.message("[4/4] report")
    report = report_search_run(resolve_run(str(cfg.run_dir)), observer=observer)
    observer.message(f"wrote {report.html} ({len(report.files) - 1} figures)")
    return {
        "run_dir": str(cfg.run_dir),
        "teacher": str(teacher),
        "report": str(report.html),
        "comparison": comparison,
        "search": summary,
    }
