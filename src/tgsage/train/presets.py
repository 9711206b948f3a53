"""Training configurations: the paper's optimisers and schedules as named, overridable presets.

A :class:`TrainConfig` is plain data (pydantic, frozen, JSON-able so the tracker can store it);
``get_preset("cifar_layer_space", lr=0.05)`` returns a copy with overrides. Learning-rate
schedules are functions of the *epoch position* (examples seen / training-set size), so a
premature run is exactly the start of the mature run with the same preset, and resuming a run
needs no scheduler state.

Sources (paper = Bashivan et al. ICCV 2019 supplementary; "ours" = not stated in the paper, the
standard choice we made):

=====================  =====================================================================
cifar_layer_space      paper: SGD, Nesterov momentum 0.9, lr 0.1 divided by 10 every 100
                       epochs, 300 epochs (45k train). ours: batch 128, weight decay 1e-4
                       (Zoph & Le 2017, whose space the paper follows).
cifar_cell_search /    paper (final CIFAR training): SGD Nesterov 0.9, lr 0.025, one-period
cifar_cell_rerank /    cosine decay, L2 weight decay 5e-4, global-norm clipping at 5, 600 epochs
cifar_cell_final       (final) / 300 epochs (rerank). ours: batch 128; search training is the
                       start of the 300-epoch rerank schedule.
imagenet_neural        paper (ImageNet training): RMSProp decay 0.9, momentum 0.9, lr 0.1 x0.1
                       every 15 epochs, 40 epochs, batch 128, clipping at global norm 10, weight
                       decay 4e-5; search budget 1/5 epoch (= 2000 steps). ours: eps 1.0
                       (TF-slim's default for this recipe; torch adds it outside the square
                       root), pad-4 crop + flip augmentation for 64x64 images.
resnet_cifar_teacher   He et al. 2016 CIFAR recipe (the paper does not state it): SGD momentum
                       0.9, lr 0.1, weight decay 1e-4, batch 128, lr /10 at 32k and 48k
                       iterations, stop at 64k = epochs 91, 136.5, 182 on 45k images.
nas_bench_201          Dong & Yang 2020 (NAS-Bench-201, Table 2 / NATS-Bench "200" setting): SGD
                       Nesterov 0.9, lr 0.1 cosine-annealed to 0, weight decay 5e-4, batch 256,
                       200 epochs, random crop (pad 4) + flip; what its accuracies are after.
cpu_demo               ours: SGD Nesterov 0.9, lr 0.05, weight decay 5e-4, batch 64, cosine over
                       15 epochs; for minutes-long CPU runs.
=====================  =====================================================================

``aux_weight`` (default 0.4, NASNet's and Inception's) weighs the loss of auxiliary logits, used
only when a model returns ``(logits, aux_logits)`` in training mode (a cell network built with
``auxiliary=True``); other models ignore it.

Every preset runs its steps on the fast path by default (``amp="auto"``, ``channels_last="auto"``,
``compile=False``; see :mod:`tgsage.train.execution`): override those fields to change how steps
run without changing the recipe.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, Literal

import torch
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from tgsage.errors import ConfigError
from tgsage.registry import Registry
from tgsage.train.budget import Budget, examples_for_steps


class TrainConfig(BaseModel):
    """Optimiser, schedule, batch size and augmentation of one training recipe, and how its
    steps run: ``amp``, ``channels_last`` and ``compile`` (see :mod:`tgsage.train.execution`;
    the defaults take the fast path where it is measured to help, and every result records
    what was used)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    optimizer: Literal["sgd", "rmsprop", "adam", "adamw"] = "sgd"
    lr: float = Field(0.1, gt=0)
    momentum: float = Field(0.9, ge=0)
    nesterov: bool = True
    weight_decay: float = Field(0.0, ge=0)
    rmsprop_alpha: float = Field(0.9, gt=0, lt=1)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float | None = Field(None, gt=0)
    batch_size: int = Field(128, ge=1)
    schedule: Literal["constant", "step", "multistep", "cosine"] = "constant"
    step_epochs: float | None = Field(None, gt=0)
    milestones: tuple[float, ...] = ()
    gamma: float = Field(0.1, gt=0)
    epochs: float = Field(300.0, gt=0)
    warmup_epochs: float = Field(0.0, ge=0)
    grad_clip: float | None = Field(None, gt=0)
    augment: str = "cifar"
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    aux_weight: float = Field(0.4, ge=0)
    drop_last: bool = False
    amp: Literal["auto", "bf16", "fp16", "off"] = "auto"
    channels_last: bool | Literal["auto"] = "auto"
    compile: bool = False
    description: str = ""

    @field_validator("amp", mode="before")
    @classmethod
    def _amp_from_bool(cls, value: Any) -> Any:
        # YAML reads `amp=off` as false and `amp=on` as true
        if value is None or value is False:
            return "off"
        return "auto" if value is True else value

    @model_validator(mode="after")
    def _schedule_complete(self) -> TrainConfig:
        if self.schedule == "step" and self.step_epochs is None:
            raise ValueError("schedule 'step' needs step_epochs (decay every that many epochs)")
        if self.schedule == "multistep" and not self.milestones:
            raise ValueError("schedule 'multistep' needs milestones (epochs at which to decay)")
        return self

    def replace(self, **overrides: Any) -> TrainConfig:
        """A validated copy with some fields changed (unknown names raise ConfigError)."""
        return _build({**self.model_dump(), **overrides})

    def drop_last_for(self, n_train: int) -> bool:
        """Whether training on ``n_train`` images drops the last partial batch: when the preset
        says so, or when that batch would hold a single image (which breaks batch norm)."""
        return self.drop_last or (n_train % self.batch_size == 1 and n_train > 1)

    def steps_for(self, budget: str | Budget | None, n_train: int) -> int:
        """Optimizer steps ``budget`` means on ``n_train`` images ("mature"/None = ``epochs``).
        The one budget rule: the Trainer and every progress total use it."""
        return Budget.parse(budget, mature_epochs=self.epochs).to_steps(
            n_train, self.batch_size, self.drop_last_for(n_train)
        )

    def examples_for(self, budget: str | Budget | None, n_train: int) -> int:
        """Examples (the cost unit) that training for ``budget`` on ``n_train`` images processes."""
        steps = self.steps_for(budget, n_train)
        return examples_for_steps(steps, n_train, self.batch_size, self.drop_last_for(n_train))

    def lr_factor(self, epoch: float) -> float:
        """Multiplier of ``lr`` at epoch position ``epoch`` (fractional epochs seen so far)."""
        factor = SCHEDULES[self.schedule](self, epoch)
        if self.warmup_epochs > 0 and epoch < self.warmup_epochs:
            factor *= epoch / self.warmup_epochs
        return factor

    def lr_at(self, epoch: float) -> float:
        return self.lr * self.lr_factor(epoch)


def _step(cfg: TrainConfig, epoch: float) -> float:
    if cfg.step_epochs is None:
        raise ConfigError("schedule 'step' needs step_epochs (decay every that many epochs)")
    return cfg.gamma ** math.floor(epoch / cfg.step_epochs + 1e-9)


def _multistep(cfg: TrainConfig, epoch: float) -> float:
    return cfg.gamma ** sum(epoch >= m - 1e-9 for m in cfg.milestones)


def _cosine(cfg: TrainConfig, epoch: float) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * min(epoch, cfg.epochs) / cfg.epochs))


#: Learning-rate schedules: name -> (config, epoch position) -> multiplier of lr.
SCHEDULES: dict[str, Callable[[TrainConfig, float], float]] = {
    "constant": lambda cfg, epoch: 1.0,
    "step": _step,
    "multistep": _multistep,
    "cosine": _cosine,
}


def _sgd(params: Iterable[torch.nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        params,
        lr=cfg.lr,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov and cfg.momentum > 0,
        weight_decay=cfg.weight_decay,
    )


def _rmsprop(params: Iterable[torch.nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(
        params,
        lr=cfg.lr,
        alpha=cfg.rmsprop_alpha,
        eps=cfg.eps if cfg.eps is not None else 1e-8,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
    )


def _adam(params: Iterable[torch.nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(
        params,
        lr=cfg.lr,
        betas=cfg.betas,
        eps=cfg.eps if cfg.eps is not None else 1e-8,
        weight_decay=cfg.weight_decay,
    )


#: Optimisers: name -> (parameters, config) -> torch optimizer.
OPTIMIZERS: dict[
    str, Callable[[Iterable[torch.nn.Parameter], TrainConfig], torch.optim.Optimizer]
] = {"sgd": _sgd, "rmsprop": _rmsprop, "adam": _adam, "adamw": _adam}


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer the config names, over the model's trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    return OPTIMIZERS[cfg.optimizer](params, cfg)


def _build(fields: dict[str, Any]) -> TrainConfig:
    try:
        return TrainConfig(**fields)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}"
            for err in e.errors()
        )
        raise ConfigError(f"invalid training config: {problems}") from None


_BUILT_IN: dict[str, TrainConfig] = {
    "cifar_layer_space": TrainConfig(
        optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4,
        batch_size=128, schedule="step", step_epochs=100, gamma=0.1, epochs=300,
        augment="cifar",
        description="Paper 4.2 / supp.: layer-space CIFAR training, SGD Nesterov, 0.1 /10 "
        "every 100 epochs, 300 epochs (batch and weight decay: ours).",
    ),
    "cifar_cell_search": TrainConfig(
        optimizer="sgd", lr=0.025, momentum=0.9, nesterov=True, weight_decay=5e-4,
        batch_size=128, schedule="cosine", epochs=300, grad_clip=5.0, augment="cifar",
        description="Paper 4.3: premature cell-space training = start of the rerank schedule.",
    ),
    "cifar_cell_rerank": TrainConfig(
        optimizer="sgd", lr=0.025, momentum=0.9, nesterov=True, weight_decay=5e-4,
        batch_size=128, schedule="cosine", epochs=300, grad_clip=5.0, augment="cifar",
        description="Paper 4.3: top-10 cells trained 300 epochs on 45k images.",
    ),
    "cifar_cell_final": TrainConfig(
        optimizer="sgd", lr=0.025, momentum=0.9, nesterov=True, weight_decay=5e-4,
        batch_size=128, schedule="cosine", epochs=600, grad_clip=5.0, augment="cifar",
        description="Supp.: final CIFAR training, 600 epochs, cosine from 0.025, wd 5e-4, "
        "clip 5.",
    ),
    "imagenet_neural": TrainConfig(
        optimizer="rmsprop", lr=0.1, momentum=0.9, rmsprop_alpha=0.9, eps=1.0,
        weight_decay=4e-5, batch_size=128, schedule="step", step_epochs=15, gamma=0.1,
        epochs=40, grad_clip=10.0, augment="crop_flip",
        description="Paper 4.4 / supp.: ImageNet (64x64) RMSProp recipe; search budget 1/5 ep.",
    ),
    "resnet_cifar_teacher": TrainConfig(
        optimizer="sgd", lr=0.1, momentum=0.9, nesterov=False, weight_decay=1e-4,
        batch_size=128, schedule="multistep", milestones=(91.0, 136.5), gamma=0.1,
        epochs=182.0, augment="cifar",
        description="He et al. 2016 ResNet CIFAR recipe (32k/48k/64k iterations at b=128).",
    ),
    "nas_bench_201": TrainConfig(
        optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4,
        batch_size=256, schedule="cosine", epochs=200, augment="cifar",
        description="NAS-Bench-201's training recipe (200 epochs, cosine from 0.1, batch 256).",
    ),
    "cpu_demo": TrainConfig(
        optimizer="sgd", lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4,
        batch_size=64, schedule="cosine", epochs=15, augment="cifar",
        description="Ours: short CPU runs for demos and tests.",
    ),
}  # fmt: skip

#: Training presets by name (``PRESETS.register(name, TrainConfig(...))`` adds one).
PRESETS: Registry[TrainConfig] = Registry("training preset", ConfigError)
for _name, _config in _BUILT_IN.items():
    PRESETS.register(_name, _config)


def list_presets() -> list[str]:
    """Names of the registered training presets, sorted."""
    return sorted(PRESETS)


def parse_train_options(items: Iterable[str]) -> dict[str, Any]:
    """``["epochs=30", "lr=0.05"]`` -> ``{"epochs": 30, "lr": 0.05}``: preset overrides written
    ``KEY=VALUE``, values read as YAML (30, 0.05, true, [1, 2])."""
    import yaml

    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"train option {item!r}: expected KEY=VALUE, e.g. epochs=30")
        try:
            overrides[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ConfigError(f"train option {item!r}: cannot read the value ({exc})") from None
    return overrides


def get_preset(name: str | TrainConfig | None = None, **overrides: Any) -> TrainConfig:
    """A preset by name (default "cifar_layer_space") or a config, with keyword overrides."""
    if isinstance(name, TrainConfig):
        base = name
    else:
        base = PRESETS.get(name or "cifar_layer_space")
    return base.replace(**overrides) if overrides else base
