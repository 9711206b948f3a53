"""Candidate evaluation: a spec or module -> premature training -> P, TG, score, cost.

One call trains the candidate for the premature budget, measures its validation accuracy P,
extracts the probe-set activations of every exposed layer in one no-grad pass (bounded memory),
compares its RDMs with the teacher's, and returns P, the teacher x candidate similarity matrix,
S_i, TG, the score and the cost (examples processed by SGD, and seconds spent training versus
scoring). Failures (invalid architecture, divergence, out of memory, NaN activations) come back
as a failed result with the reason, never as an exception.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch

from tgsage.data.base import DataSplits
from tgsage.data.pipeline import get_augmentation
from tgsage.data.probe import ProbeSet
from tgsage.errors import InputError, SpecError, TgsageError
from tgsage.features import as_feature_net
from tgsage.rsa import combined_score
from tgsage.teacher import Teacher, network_rdms
from tgsage.train import Trainer
from tgsage.train.loop import Progress, _is_oom

ScoreKind = Literal["p", "tg", "p+tg"]
SCORES: tuple[str, ...] = ("p", "tg", "p+tg")


@dataclass
class CandidateResult:
    """Everything measured for one candidate (plain data; ``as_dict`` for storage)."""

    status: Literal["ok", "failed"]
    score: float | None = None
    accuracy: float | None = None  # P: premature validation accuracy, a fraction
    tg: float | None = None
    per_layer: dict[str, float] = field(default_factory=dict)  # S_i per teacher layer
    best_match: dict[str, str] = field(default_factory=dict)
    similarity: list[list[float]] = field(default_factory=list)
    teacher_layers: list[str] = field(default_factory=list)
    candidate_layers: list[str] = field(default_factory=list)
    score_kind: str = "p+tg"
    alpha: float = 1.0
    examples: int = 0  # cost in the paper's unit: examples processed by SGD
    steps: int = 0
    # Sum of training losses (SoTL, Ru et al. 2021) as in TrainResult: the sum of the per-step
    # mean training losses, the steps it covers, and the same per epoch (SoTL-E = last epoch).
    loss_sum: float | None = None
    loss_steps: int = 0
    epoch_loss_sums: list[float] = field(default_factory=list)
    epoch_loss_steps: list[int] = field(default_factory=list)
    train_seconds: float = 0.0
    eval_seconds: float = 0.0  # validation accuracy pass
    score_seconds: float = 0.0  # activations + RDMs + TG
    failure_reason: str | None = None
    message: str | None = None
    spec_hash: str | None = None
    params: int | None = None
    device: str = "cpu"
    proxies: dict[str, float] = field(default_factory=dict)  # zero-cost proxies at init
    proxy_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _score(kind: str, accuracy: float, tg: float | None, alpha: float) -> float:
    if kind == "p":
        return float(accuracy)
    if tg is None:
        raise InputError(f"score {kind!r} needs a teacher")
    return float(tg) if kind == "tg" else combined_score(accuracy, tg, alpha)


def _failure_reason(exc: BaseException, tgsage_reason: str) -> str | None:
    """Why scoring failed: ``tgsage_reason`` for our own errors, "out_of_memory" for OOM, None
    for anything else (a bug: re-raise it)."""
    if isinstance(exc, TgsageError):
        return tgsage_reason
    return "out_of_memory" if _is_oom(exc) else None


def measure_proxies(
    net: torch.nn.Module,
    data: DataSplits,
    names: Sequence[str],
    *,
    device: torch.device | str,
    normalize: str = "per_image",
    batch: int = 64,
    seed: int = 0,
) -> dict[str, float]:
    """Zero-cost proxies of ``net`` as it is now, on one seeded minibatch of training images
    (the same images for every candidate with the same ``seed``, so values compare)."""
    from tgsage.data.pipeline import normalize_images
    from tgsage.proxies import compute_proxies

    n = len(data.train)
    idx = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[: min(batch, n)]
    images = normalize_images(data.train.images[idx].to(device), normalize)
    labels = data.train.labels[idx].to(device)
    values = compute_proxies(
        net, images, labels, list(names), num_classes=data.num_classes, device=device, seed=seed
    )
    return {k: float(v) for k, v in values.items()}


def build_candidate(
    candidate: Any, data: DataSplits, width_mult: float = 1.0, seed: int | None = None
) -> tuple[torch.nn.Module, str | None]:
    """A FeatureNet from a spec (object, dict or JSON) or an nn.Module; plus the spec hash.

    With ``seed`` the weights are initialised from it without touching the caller's RNG, so a
    spec builds the same network whatever ran before it."""
    if isinstance(candidate, torch.nn.Module):
        return candidate, None
    from tgsage.spaces import build_model
    from tgsage.spaces.specs import ArchSpec, spec_from_dict, spec_from_json

    spec = candidate
    if isinstance(spec, str):
        spec = spec_from_json(spec)
    elif isinstance(spec, Mapping):
        spec = spec_from_dict(spec)
    if not isinstance(spec, ArchSpec):
        raise SpecError(
            f"candidate: expected a spec, its JSON or an nn.Module, got {type(candidate).__name__}"
        )
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        model = build_model(
            spec,
            num_classes=data.num_classes,
            input_shape=data.train.image_shape,
            width_mult=width_mult,
        )
    return model, spec.spec_hash


def evaluate_candidate(
    candidate: Any,
    data: DataSplits,
    teacher: Teacher | None = None,
    *,
    budget: str = "2ep",
    config: Any = None,
    score: str = "p+tg",
    alpha: float = 1.0,
    probe: ProbeSet | None = None,
    layers: list[str] | None = None,
    width_mult: float = 1.0,
    device: str | torch.device | None = "auto",
    seed: int = 0,
    batch_size: int = 250,
    progress: Callable[[Progress], None] | None = None,
    proxies: Sequence[str] = (),
    proxy_batch: int = 64,
    **train_overrides: Any,
) -> CandidateResult:
    """Train ``candidate`` briefly and score it; see the module docstring.

    Args:
        candidate: an architecture spec (object, dict or JSON) or any ``nn.Module`` (then
            ``layers`` names the submodules to compare unless it is a FeatureNet).
        data: train/validation splits; P is measured on ``data.val``.
        teacher: the teacher (needed for ``score`` "tg" and "p+tg").
        budget: premature budget ("2ep", "0.2ep", "500steps", "20000ex").
        config: a training preset name or TrainConfig (default: the layer-space preset).
        score: "p+tg" (default), "p" or "tg".
        probe: probe images (default: the teacher's own, which always match).
        proxies: zero-cost proxies (:mod:`tgsage.proxies`) to measure on the untrained
            network before training, from ``proxy_batch`` seeded training images.
    """
    if score not in SCORES:
        raise InputError(f"score must be one of {SCORES}, not {score!r}")
    if score != "p" and teacher is None:
        raise InputError(f"score {score!r} needs a teacher; pass teacher=... or score='p'")
    probe = probe if probe is not None else (teacher.probe if teacher is not None else None)
    if teacher is not None:
        if probe is None:
            raise InputError("the teacher file carries no probe images; pass probe=...")
        teacher.check_probe(probe.fingerprint)
    result = CandidateResult(status="failed", score_kind=score, alpha=alpha)
    try:
        model, result.spec_hash = build_candidate(candidate, data, width_mult)
        net = as_feature_net(model, layers)
    except (SpecError, InputError) as exc:
        result.failure_reason, result.message = "invalid_architecture", str(exc)
        return result
    result.params = sum(p.numel() for p in net.parameters())
    trainer = Trainer(
        net, data, config, device=device, seed=seed, progress=progress, **train_overrides
    )
    result.device = str(trainer.device)
    normalize = get_augmentation(trainer.config.augment).normalize
    if proxies:
        t0 = time.perf_counter()
        try:
            result.proxies = measure_proxies(
                net,
                data,
                proxies,
                device=trainer.device,
                normalize=normalize,
                batch=proxy_batch,
                seed=seed,
            )
        except (TgsageError, RuntimeError) as exc:
            if (reason := _failure_reason(exc, "proxy_error")) is None:
                raise
            result.failure_reason, result.message = reason, str(exc)
            return result
        result.proxy_seconds = time.perf_counter() - t0
    train = trainer.train_until(budget)
    result.examples, result.steps = train.examples, train.steps
    result.loss_sum, result.loss_steps = train.loss_sum, train.loss_steps
    result.epoch_loss_sums, result.epoch_loss_steps = train.epoch_loss_sums, train.epoch_loss_steps
    result.train_seconds, result.eval_seconds = train.seconds, train.eval_seconds
    if not train.ok:
        result.failure_reason, result.message = train.failure_reason, train.message
        return result
    accuracy = float(train.val_accuracy) if train.val_accuracy is not None else math.nan
    result.accuracy = accuracy
    t0 = time.perf_counter()
    if teacher is not None and probe is not None:
        try:
            rdms = network_rdms(
                net,
                probe,
                grouping=teacher.grouping,
                method=teacher.method,
                device=trainer.device,
                batch_size=batch_size,
                normalize=normalize,
            )
            guidance = teacher.guidance(rdms, probe.fingerprint)
        except (TgsageError, RuntimeError) as exc:
            kind = "nan_activations" if "NaN" in str(exc) else "scoring_error"
            if (reason := _failure_reason(exc, kind)) is None:
                raise
            result.failure_reason, result.message = reason, str(exc)
            return result
        result.tg = guidance.tg
        result.per_layer = dict(zip(guidance.teacher_layers, guidance.per_layer, strict=True))
        result.best_match = dict(zip(guidance.teacher_layers, guidance.best_match, strict=True))
        result.similarity = guidance.similarity.tolist()
        result.teacher_layers = list(guidance.teacher_layers)
        result.candidate_layers = list(guidance.candidate_layers)
    result.score_seconds = time.perf_counter() - t0
    if math.isnan(accuracy):
        result.failure_reason, result.message = "no_validation", "no validation accuracy"
        return result
    result.score = _score(score, accuracy, result.tg, alpha)
    result.status = "ok"
    return result
