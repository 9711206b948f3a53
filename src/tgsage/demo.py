"""The demo: the whole TG-SAGE pipeline at small scale on synthetic objects.

1. build a teacher: train the paper's CIFAR ResNet (ResNet-20 at half width) on synthetic
   objects and store its RDMs on the validation (probe) images;
2. search the layer space with TPE, scoring candidates by P + alpha * TG after a short
   (premature) training, with local worker processes on a journal-file storage;
3. rerank: train the top-k candidates longer and pick the best (cost M1*E1 + M2*E2);
4. report: figures and one HTML page.

Every stage is cached in the run folder: re-running reuses the teacher, resumes (or skips) the
search, and reuses the rerank when its settings did not change. ``DemoConfig.tiny()`` is a
seconds-long version for tests. Progress goes to an :class:`~tgsage.observer.Observer` (the
command line's draws bars; the default only logs).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tgsage.errors import ConfigError
from tgsage.observer import Observer


class DemoConfig(BaseModel):
    """Settings of every demo stage (``configs/demo.yaml`` holds the same defaults)."""

    model_config = ConfigDict(extra="forbid")

    run_dir: Path = Path("runs/demo")
    seed: int = 0
    device: str = "auto"
    data: dict[str, Any] = Field(
        default_factory=lambda: {
            "name": "synthetic",
            "n_train": 3000,
            "n_val": 500,
            "resolution": 32,
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
            "space_options": {"max_layers": 8},
            "strategy": "tpe",
            "score": "p+tg",
            "alpha": 1.0,
            "budget": "1ep",
            "train": "cpu_demo",
            "width_mult": 0.25,
            "n_candidates": 24,
            "workers": 2,
        }
    )
    rerank_k: int = Field(3, ge=1)
    rerank_budget: str = "4ep"

    @classmethod
    def tiny(cls, run_dir: str | Path) -> DemoConfig:
        """A seconds-long demo for tests (tiny images, few candidates, one worker)."""
        return cls(
            run_dir=Path(run_dir),
            device="cpu",
            data={"name": "synthetic", "n_train": 192, "n_val": 64, "resolution": 16},
            teacher_n=1,
            teacher_width=0.25,
            teacher_budget="20steps",
            subsamples=3,
            search={
                "space": "layer",
                "space_options": {"max_layers": 4},
                "strategy": "tpe",
                "score": "p+tg",
                "budget": "10steps",
                "train": "cpu_demo",
                "width_mult": 0.25,
                "n_candidates": 4,
                "workers": 1,
            },
            rerank_k=2,
            rerank_budget="20steps",
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
    teacher = teacher_from_network(
        model,
        ProbeSet.from_images(splits.val),
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


def rerank_stage(cfg: DemoConfig, observer: Observer | None = None) -> dict[str, Any]:
    """Stage 3: :func:`~tgsage.experiments.rerank_search` of the demo's search; reused when
    ``rerank.json`` has the same k and budget. Returns what ``rerank.json`` holds."""
    from tgsage.experiments import RERANK_FILE, rerank_search
    from tgsage.search.locate import resolve_run

    observer = observer or Observer()
    path = cfg.run_dir / RERANK_FILE
    if path.exists():
        cached = json.loads(path.read_text())
        if (
            cached.get("k") == cfg.rerank_k
            and cached.get("budget") == cfg.rerank_budget
            and cached.get("chosen") is not None
        ):
            return cached
    result = rerank_search(
        resolve_run(str(cfg.run_dir)),
        cfg.rerank_k,
        cfg.rerank_budget,
        out=path,
        observer=observer,
    )
    if result.best is not None:
        observer.message(
            f"[3/4] rerank: chose trial {result.best.number} ({result.best.spec_hash}), "
            f"accuracy {result.best_accuracy:.4f} at {cfg.rerank_budget}; cost "
            f"{result.total:,} examples in all; wrote {path}"
        )
    return json.loads(path.read_text())


def run_demo(cfg: DemoConfig, observer: Observer | None = None) -> dict[str, Any]:
    """Run (or resume) all four stages; returns where everything is. ``rerank["chosen"]`` is
    None when no re-ranked candidate finished its longer training."""
    from tgsage.report import report_search_run
    from tgsage.search import load_config, run_search
    from tgsage.search.locate import resolve_run

    observer = observer or Observer()
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    teacher = build_teacher(cfg, observer)
    observer.message("[2/4] search: TPE over the layer space, score P + alpha*TG")
    search = load_config(search_config(cfg, teacher))
    with observer.search(search.name, search.n_candidates) as on_status:
        summary = run_search(search, on_status)
    if not summary.finished:
        raise ConfigError(
            f"the demo search stopped early ({summary.message or 'see the log'}); "
            f"see {cfg.run_dir / 'search.log'}"
        )
    observer.message(f"[3/4] rerank: top {cfg.rerank_k} trained for {cfg.rerank_budget}")
    rerank = rerank_stage(cfg, observer)
    observer.message("[4/4] report")
    report = report_search_run(resolve_run(str(cfg.run_dir)), observer=observer)
    observer.message(f"wrote {report.html} ({len(report.files) - 1} figures)")
    return {
        "run_dir": str(cfg.run_dir),
        "teacher": str(teacher),
        "report": str(report.html),
        "rerank": rerank,
        "search": summary,
    }
