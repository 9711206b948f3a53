"""Final training: from a found architecture to a trained, exported network (paper's recipes).

A search ends with a spec; :func:`train_final` trains it the way the paper trained its final
networks, checkpointing after every epoch so a killed run resumes exactly where it stopped, then
measures accuracy on the held-out split and saves the network (:mod:`tgsage.export`).

Final presets (:data:`FINAL_PRESETS`; every field can be overridden):

===============  ===================================================================================
cifar_final      supplementary, "CIFAR Training": SGD Nesterov 0.9, lr 0.025 with one cosine period
                 over 600 epochs, weight decay 5e-4, gradient clipping at global norm 5, all 50,000
                 training images (train + val) and the test set as the held-out split. Cell
                 networks at NASNet-A's CIFAR size (N=6, F=32, stem 3F). Ours, from the NASNet
                 reference code the paper follows: auxiliary head with loss weight 0.4, drop-path
                 rate 0.4 (keep probability 0.6) growing linearly over training, cutout 16x16.
imagenet_mobile  supplementary, "Imagenet Training": RMSProp (decay 0.9, momentum 0.9, eps 1),
                 lr 0.1 x0.1 every 15 epochs, 40 epochs, batch 128, clipping at global norm 10,
                 weight decay 4e-5, no dropout, no drop-path; 224x224 images, the ImageNet stem,
                 the mobile setting (N=4, F=44, 32 stem filters; published cells use their own
                 mobile N and F). Ours: auxiliary head with weight 0.4 (NASNet mobile's).
imagenet64       the same recipe at 64x64 with the stem of paper 4.4 (no stem reduction cells).
===============  ===================================================================================

Cell-space specs take the preset's network settings (a search runs small networks, N=2); a
published cell given as ``preset:NAME`` takes its own published N and F for the preset's
setting; ``num_cells=`` / ``filters=`` override both. Layer-space and NAS-Bench-201 networks have
no auxiliary head or drop-path: they train with the preset's optimiser, schedule and
augmentation only (the result says so in ``notes``).

Drop-path follows DARTS's schedule at NASNet's depth scaling: during epoch ``e`` of ``E`` the
rate is ``drop_path * e / E`` (so 0 in the first epoch), and cell ``i`` of ``L`` drops each
non-identity op's output with ``rate * (i + 1) / L`` (:meth:`CellNet.set_drop_path`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from tgsage.data.base import DataSplits, ImageSet
from tgsage.errors import ConfigError, DataError, SpecError, TrainingError
from tgsage.registry import Registry
from tgsage.train.budget import Budget
from tgsage.train.evaluation import evaluate_accuracy
from tgsage.train.loop import Progress, Trainer
from tgsage.train.presets import TrainConfig, get_preset

CHECKPOINT_FILE = "checkpoint.pt"
RESULT_FILE = "final.json"
CHECKPOINT_FORMAT = "tgsage-final-checkpoint/1"
TrainOn = Literal["auto", "train", "train+val"]


@dataclass(frozen=True)
class FinalPreset:
    """A final-training recipe: the training config, the network size, the extras."""

    train: str
    train_options: Mapping[str, Any] = field(default_factory=dict)
    network: Mapping[str, Any] = field(default_factory=dict)
    setting: str = "cifar10"
    auxiliary: bool = False
    drop_path: float = 0.0
    image_size: int = 32
    description: str = ""

    def config(self, **overrides: Any) -> TrainConfig:
        """The training config with the preset's and the caller's overrides."""
        return get_preset(self.train, **{**self.train_options, **overrides})


_BUILT_IN: dict[str, FinalPreset] = {
    "cifar_final": FinalPreset(
        train="cifar_cell_final",
        train_options={"augment": "cifar_cutout", "aux_weight": 0.4},
        network={"num_cells": 6, "filters": 32, "stem": "cifar", "stem_multiplier": 3},
        setting="cifar10",
        auxiliary=True,
        drop_path=0.4,
        image_size=32,
        description="Supp. CIFAR training (600 ep cosine from 0.025, Nesterov, wd 5e-4, clip 5, "
        "train+val) with NASNet's auxiliary head (0.4), drop-path 0.4 and cutout 16.",
    ),
    "imagenet_mobile": FinalPreset(
        train="imagenet_neural",
        train_options={"aux_weight": 0.4},
        network={"num_cells": 4, "filters": 44, "stem": "imagenet", "stem_multiplier": 1},
        setting="imagenet_mobile",
        auxiliary=True,
        drop_path=0.0,
        image_size=224,
        description="Supp. ImageNet training (RMSProp, 0.1 x0.1 / 15 ep, 40 ep, clip 10, wd 4e-5) "
        "of the mobile network at 224 px with the auxiliary head (0.4).",
    ),
    "imagenet64": FinalPreset(
        train="imagenet_neural",
        train_options={"aux_weight": 0.4},
        network={"num_cells": 4, "filters": 44, "stem": "imagenet64", "stem_multiplier": 1},
        setting="imagenet_mobile",
        auxiliary=True,
        drop_path=0.0,
        image_size=64,
        description="Paper 4.4's 64x64 setting: the ImageNet recipe with the stem without "
        "stem reduction cells.",
    ),
}

#: Final presets by name (``FINAL_PRESETS.register(name, FinalPreset(...))`` adds one).
FINAL_PRESETS: Registry[FinalPreset] = Registry("final preset", ConfigError)
for _name, _preset in _BUILT_IN.items():
    FINAL_PRESETS.register(_name, _preset)


def list_final_presets() -> list[str]:
    return sorted(FINAL_PRESETS)


def get_final_preset(name: str | FinalPreset) -> FinalPreset:
    if isinstance(name, FinalPreset):
        return name
    return FINAL_PRESETS.get(name)


# ----------------------------------------------------------------------------- what to train
def resolve_spec(target: Any, setting: str = "cifar10") -> tuple[Any, str]:
    """An ArchSpec from a spec, its dict or JSON, a spec file, ``preset:NAME`` (in
    ``setting``), ``random:SPACE[:SEED]`` or a search's :func:`~tgsage.experiments.best_candidate`;
    plus where it came from."""
    from tgsage.spaces import get_cell_preset, get_space
    from tgsage.spaces.specs import ArchSpec, spec_from_dict, spec_from_json

    if isinstance(target, ArchSpec):
        return target, "spec"
    if isinstance(getattr(target, "spec", None), ArchSpec):  # tgsage.experiments.best_candidate
        return target.spec, str(getattr(target, "origin", "spec"))
    if isinstance(target, Mapping):
        return spec_from_dict(target), "spec"
    if not isinstance(target, str | Path):
        raise SpecError(
            f"target: expected a spec, a spec file or a search's best candidate, got {target!r}"
        )
    text = str(target)
    if text.startswith("preset:"):
        return get_cell_preset(text.removeprefix("preset:"), setting=setting), text
    if text.startswith("random:"):
        parts = text.split(":")
        try:
            seed = int(parts[2]) if len(parts) > 2 else 0
        except ValueError:
            raise SpecError(f"{text!r}: the seed after random:SPACE: must be an integer") from None
        return get_space(parts[1]).random_spec(seed), text
    path = Path(text)
    if path.is_dir():
        raise SpecError(
            f"{text!r} is a folder; for the best candidate of a search's run folder pass "
            f"tgsage.experiments.best_candidate({text!r})"
        )
    if path.is_file():
        return spec_from_json(path.read_text()), str(path)
    if text.lstrip().startswith("{"):
        return spec_from_json(text), "spec"
    raise SpecError(
        f"{text!r} is neither a spec file, inline JSON, 'preset:NAME' nor 'random:SPACE[:SEED]'"
    )


def final_spec(
    spec: Any,
    preset: FinalPreset,
    *,
    published: bool = False,
    num_cells: int | None = None,
    filters: int | None = None,
) -> Any:
    """The spec at final size: cell specs take the preset's network settings (published cells
    keep their own N and F) and ``num_cells`` / ``filters`` override; other spaces unchanged."""
    from tgsage.spaces import CellSpec

    if not isinstance(spec, CellSpec):
        if num_cells is not None or filters is not None:
            raise ConfigError(
                f"num_cells / filters apply to cell-space networks, not {spec.kind!r} specs"
            )
        return spec
    net = dict(preset.network)
    if published:
        net.pop("num_cells", None)
        net.pop("filters", None)
    if num_cells is not None:
        net["num_cells"] = num_cells
    if filters is not None:
        net["filters"] = filters
    return spec.with_network(**net)


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class EpochRecord:
    """One finished epoch: mean training loss, learning rate at its end, drop-path rate."""

    epoch: int
    loss: float
    lr: float
    drop_path: float
    examples: int
    seconds: float


@dataclass
class FinalResult:
    """What a final training gave; ``accuracy`` is on the held-out split ``held_out``."""

    spec: Any
    preset: str
    config: TrainConfig
    status: Literal["ok", "failed"]
    epochs: float
    held_out: str
    accuracy: float | None
    examples: int
    seconds: float
    params: int
    history: list[EpochRecord] = field(default_factory=list)
    out_dir: Path | None = None
    resumed_from: int | None = None
    notes: list[str] = field(default_factory=list)
    failure_reason: str | None = None
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def as_dict(self) -> dict[str, Any]:
        return {
            "spec": json.loads(self.spec.to_json()),
            "preset": self.preset,
            "config": self.config.model_dump(mode="json"),
            "status": self.status,
            "epochs": self.epochs,
            "held_out": self.held_out,
            "accuracy": self.accuracy,
            "examples": self.examples,
            "seconds": self.seconds,
            "params": self.params,
            "history": [asdict(h) for h in self.history],
            "out_dir": str(self.out_dir) if self.out_dir is not None else None,
            "resumed_from": self.resumed_from,
            "notes": list(self.notes),
            "failure_reason": self.failure_reason,
            "message": self.message,
        }


def model_from_checkpoint(out_dir: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """The network of an unfinished (or finished) final training at its last saved epoch, in
    eval mode, and the checkpoint's identity (spec, build arguments, epoch)."""
    from tgsage.spaces import build_model

    path = Path(out_dir) / CHECKPOINT_FILE
    if not path.exists():
        raise DataError(f"{path} not found: no final training has checkpointed into {out_dir}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    ident = state.get("identity", {})
    if ident.get("format") != CHECKPOINT_FORMAT:
        raise DataError(f"{path} is not a tgsage final-training checkpoint")
    model = build_model(
        ident["spec"],
        ident["num_classes"],
        tuple(ident["input_shape"]),
        ident["width_mult"],
        auxiliary=ident["auxiliary"],
    )
    model.load_state_dict(state["trainer"]["model"])
    return model.eval(), {**ident, "epoch": int(state["epoch"])}


# ----------------------------------------------------------------------------- training
def _concat(a: ImageSet, b: ImageSet, name: str) -> ImageSet:
    if a.image_shape != b.image_shape or a.num_classes != b.num_classes:
        raise DataError(
            f"cannot train on {a.name} + {b.name}: image shapes {a.image_shape} / "
            f"{b.image_shape} or class counts differ; use train_on='train'"
        )
    groups = {k: torch.cat([a.groups[k], b.groups[k]]) for k in a.groups if k in b.groups}
    return ImageSet(
        torch.cat([a.images, b.images]),
        torch.cat([a.labels, b.labels]),
        a.num_classes,
        name,
        groups,
        a.class_names,
    )


def _splits(data: DataSplits, train_on: TrainOn) -> tuple[ImageSet, ImageSet, str]:
    """(training images, held-out images, held-out name). The paper's final runs train on all
    50,000 CIFAR training images and report the test set; without a test split the validation
    split is held out."""
    if train_on not in ("auto", "train", "train+val"):
        raise ConfigError(f"train_on must be 'auto', 'train' or 'train+val', got {train_on!r}")
    if data.test is not None and len(data.test) > 0:
        if train_on == "train":
            return data.train, data.test, "test"
        return _concat(data.train, data.val, "train+val"), data.test, "test"
    if train_on == "train+val":
        raise ConfigError("train_on='train+val' needs a test split to hold out; this data has none")
    return data.train, data.val, "val"


def _fingerprint(images: ImageSet, max_images: int = 20_000) -> str:
    """A short hash of the training set (a checkpoint resumes only on the same data): its shape,
    every label and up to ``max_images`` evenly spaced images (bounded time on ImageNet)."""
    h = hashlib.sha256()
    h.update(repr((tuple(images.images.shape), images.num_classes)).encode())
    step = max(1, len(images) // max_images)
    h.update(images.images[::step].contiguous().numpy().tobytes())
    h.update(images.labels.to(torch.int64).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _set_drop_path(model: nn.Module, rate: float) -> None:
    setter = getattr(model, "set_drop_path", None)
    if setter is not None:
        setter(rate)


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train_final(
    target: Any,
    data: DataSplits,
    preset: str | FinalPreset = "cifar_final",
    out_dir: str | Path | None = None,
    *,
    epochs: float | None = None,
    num_cells: int | None = None,
    filters: int | None = None,
    width_mult: float = 1.0,
    auxiliary: bool | None = None,
    drop_path: float | None = None,
    train_options: Mapping[str, Any] | None = None,
    train_on: TrainOn = "auto",
    device: str | torch.device | None = "auto",
    seed: int = 0,
    resume: bool = True,
    onnx: bool = False,
    progress: Callable[[Progress], None] | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    check_every: int = 20,
) -> FinalResult:
    """Train ``target`` with a final preset; checkpoint every epoch into ``out_dir``.

    ``target``: a spec (object, dict, JSON or file), ``"preset:nasnet_a"``,
    ``"random:SPACE:SEED"`` or a search's best candidate
    (:func:`tgsage.experiments.best_candidate` of its run folder). ``epochs`` shortens or lengthens the schedule (the cosine or step
    schedule is laid over the new length); ``train_options`` overrides any
    :class:`TrainConfig` field. With ``out_dir``, an interrupted run started again with the
    same arguments resumes from its last finished epoch and ends with the same weights as an
    uninterrupted run (same seed, CPU, deterministic ops); the trained network is saved there
    (``model.safetensors`` + ``model.json``, and ``model.onnx`` with ``onnx=True``) with
    ``final.json``. Returns a :class:`FinalResult`; a failed run (divergence, out of memory) is
    returned with ``status="failed"`` and its checkpoint of the last good epoch kept.
    """
    from tgsage.spaces import build_model, count_params
    from tgsage.spaces.specs import ArchSpec

    fp = get_final_preset(preset)
    preset_name = preset if isinstance(preset, str) else "custom"
    spec, origin = resolve_spec(target, fp.setting)
    if not isinstance(spec, ArchSpec):
        raise SpecError(f"target: could not read an architecture from {target!r}")
    published = isinstance(target, str) and target.startswith("preset:")
    spec = final_spec(spec, fp, published=published, num_cells=num_cells, filters=filters)
    overrides = dict(train_options or {})
    if epochs is not None:
        overrides["epochs"] = epochs
    cfg = fp.config(**overrides)
    aux = fp.auxiliary if auxiliary is None else bool(auxiliary)
    rate = fp.drop_path if drop_path is None else float(drop_path)
    if not 0.0 <= rate < 1.0:
        raise ConfigError(f"drop_path must be in [0, 1), got {rate!r}")
    notes: list[str] = []
    if spec.kind != "cell":
        if aux:
            notes.append(f"no auxiliary head: {spec.kind!r} networks have none")
        if rate > 0:
            notes.append(f"no drop-path: {spec.kind!r} networks have no cells to drop")
        aux, rate = False, 0.0
    train_set, held_out, held_name = _splits(data, train_on)
    shape = train_set.image_shape
    if spec.kind == "cell" and shape[1] != fp.image_size:
        notes.append(
            f"images are {shape[1]}x{shape[2]}; preset {preset_name} is designed for "
            f"{fp.image_size}x{fp.image_size}"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(spec, train_set.num_classes, shape, width_mult, auxiliary=aux)
    params = count_params(model) - sum(
        p.numel() for p in getattr(model, "auxiliary_head", nn.Identity()).parameters()
    )
    trainer = Trainer(
        model,
        train_set,
        cfg,
        device=device,
        seed=seed,
        progress=progress,
        eval_at_end=False,
        check_every=check_every,
    )
    identity = {
        "format": CHECKPOINT_FORMAT,
        "spec": spec.to_json(),
        "num_classes": int(train_set.num_classes),
        "input_shape": list(shape),
        "width_mult": float(width_mult),
        "auxiliary": aux,
        "drop_path": rate,
        "held_out": held_name,
        "data": _fingerprint(train_set),
        "config": cfg.model_dump(mode="json"),
        "seed": int(seed),
    }
    out = Path(out_dir) if out_dir is not None else None
    ckpt_path = out / CHECKPOINT_FILE if out is not None else None
    history: list[EpochRecord] = []
    start_epoch, resumed_from = 0, None
    if resume and ckpt_path is not None and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        theirs = state.get("identity", {})
        changed = [k for k in identity if theirs.get(k) != identity[k]]
        if changed:
            raise ConfigError(
                f"{ckpt_path} belongs to another run (different {', '.join(changed)}); give "
                "another output folder, or resume=False (--restart) to start over"
            )
        trainer.load_state_dict(state["trainer"])
        start_epoch = resumed_from = int(state["epoch"])
        history = [EpochRecord(**h) for h in state["history"]]
    total_epochs = cfg.epochs
    n_epochs = math.ceil(total_epochs - 1e-9)
    failure: TrainingError | None = None
    for e in range(start_epoch, n_epochs):
        _set_drop_path(model, rate * e / total_epochs)
        steps_before, examples_before = trainer.steps, trainer.examples
        seconds_before = trainer.seconds
        res = trainer.train_until(Budget.epochs(min(e + 1, total_epochs)))
        if not res.ok:
            failure = TrainingError(res.failure_reason or "error", res.message or "failed")
            break
        losses = trainer.losses[steps_before:]
        record = EpochRecord(
            epoch=e + 1,
            loss=math.fsum(losses) / len(losses) if losses else float("nan"),
            lr=cfg.lr_at(trainer.epochs),
            drop_path=rate * e / total_epochs,
            examples=trainer.examples - examples_before,
            seconds=trainer.seconds - seconds_before,
        )
        history.append(record)
        if ckpt_path is not None:
            out.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
            _atomic_save(
                {
                    "identity": identity,
                    "epoch": e + 1,
                    "history": [asdict(h) for h in history],
                    "trainer": trainer.state_dict(),
                },
                ckpt_path,
            )
        if on_epoch is not None:
            on_epoch(record)
    _set_drop_path(model, 0.0)
    accuracy = None
    if failure is None:
        accuracy = evaluate_accuracy(model, held_out, trainer.device)
    result = FinalResult(
        spec=spec,
        preset=preset_name,
        config=cfg,
        status="ok" if failure is None else "failed",
        epochs=trainer.epochs,
        held_out=held_name,
        accuracy=accuracy,
        examples=trainer.examples,
        seconds=trainer.seconds,
        params=params,
        history=history,
        out_dir=out,
        resumed_from=resumed_from,
        notes=notes,
        failure_reason=failure.reason if failure else None,
        message=str(failure) if failure else None,
    )
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        if failure is None:
            from tgsage.export import save_model

            save_model(
                model,
                out,
                spec,
                num_classes=train_set.num_classes,
                input_shape=shape,
                width_mult=width_mult,
                metrics={f"{held_name}_accuracy": accuracy, "epochs": trainer.epochs},
                provenance={
                    "origin": origin,
                    "preset": preset_name,
                    "train_config": cfg.model_dump(mode="json"),
                    "drop_path": rate,
                    "seed": seed,
                    "train_images": len(train_set),
                    "seconds": round(trainer.seconds, 3),
                },
                onnx=onnx,
            )
        (out / RESULT_FILE).write_text(json.dumps(result.as_dict(), indent=2) + "\n")
    return result


__all__ = [
    "FINAL_PRESETS",
    "EpochRecord",
    "FinalPreset",
    "FinalResult",
    "final_spec",
    "get_final_preset",
    "list_final_presets",
    "model_from_checkpoint",
    "resolve_spec",
    "train_final",
]
