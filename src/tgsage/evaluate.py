"""Candidate evaluation: a spec or module -> premature training -> P, TG, score, cost.

One call trains the candidate for the premature budget, measures its validation accuracy P,
extracts the probe-set activations of every exposed layer in one no-grad pass (bounded memory),
compares its RDMs (and, for CKA and relation guidance, its Gram matrices) with the teacher's,
and returns P, the teacher x candidate similarity matrix, S_i, TG, every other base score the
requested score reads (:mod:`tgsage.scores`: TG variants, SoTL, SoTL-E, P-slope, zero-cost
proxies), the score and the cost (examples processed by SGD, and seconds spent training versus
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
from tgsage.rsa import Guidance
from tgsage.teacher import Teacher, group_order, probe_activations
from tgsage.train import Trainer
from tgsage.train.loop import Progress, _is_oom

ScoreKind = Literal["p", "tg", "p+tg"]
#: The paper's three scores; any :mod:`tgsage.scores` expression is accepted too.
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
    amp: str | None = None  # how training steps ran: autocast dtype (None = float32) ...
    channels_last: bool = False  # ... and memory layout (TrainResult's fields)
    proxies: dict[str, float] = field(default_factory=dict)  # zero-cost proxies at init
    proxy_seconds: float = 0.0
    # every base score measured, by its tgsage.scores name (P, TG, TG-cka, S_<layer>, SoTL...)
    scores: dict[str, float] = field(default_factory=dict)
    # S_i of every comparison measured: {comparison: {teacher layer: S_i}}
    guidance: dict[str, dict[str, float]] = field(default_factory=dict)
    # The input cannot reach the output (e.g. a NAS-Bench-201 cell of ``none`` edges): its
    # P is a constant guess and its TG 0 by construction, not a measurement of anything.
    no_path: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def loss_scores(losses: Sequence[float], steps_per_epoch: int) -> dict[str, float]:
    """SoTL and SoTL-E (minus the sums of training losses; :mod:`tgsage.scores.names`) from
    the per-step losses of a run. Sums in float64; an empty run has neither."""
    if not losses:
        return {}
    last = losses[-max(1, int(steps_per_epoch)) :]
    return {"SoTL": -math.fsum(losses), "SoTL-E": -math.fsum(last)}


def measure_guidance(
    net: torch.nn.Module,
    probe: ProbeSet,
    teachers: Mapping[str, Teacher],
    comparisons: Sequence[str] = ("pearson",),
    *,
    device: str | torch.device | None = "auto",
    batch_size: int = 250,
    normalize: str = "per_image",
) -> dict[str, dict[str, Guidance]]:
    """Teacher guidance of ``net`` against every teacher and comparison, from one pass of the
    probe images per chunk of layers: ``{teacher: {comparison: Guidance}}``.

    ``"pearson"`` is each teacher's own RDM comparison (the paper's); ``"cka"`` and
    ``"relation"`` compare Gram matrices (:mod:`tgsage.rsa.kernels`; the teacher file must
    carry them). Teachers must share the probe images; teachers with different groupings
    cost one pass each.
    """
    from tgsage.data.pipeline import resolve_device
    from tgsage.rsa import RDMs, compute_rdms
    from tgsage.rsa.kernels import KERNEL_COMPARISONS, gram_matrices

    unknown = [c for c in comparisons if c not in ("pearson", *KERNEL_COMPARISONS)]
    if unknown:
        raise InputError(f"unknown comparisons {unknown}; use 'pearson', 'cka' or 'relation'")
    for t in teachers.values():
        t.check_probe(probe.fingerprint)
    kernels = [c for c in comparisons if c in KERNEL_COMPARISONS]
    dev = resolve_device(device)
    fnet = as_feature_net(net)
    out: dict[str, dict[str, Guidance]] = {name: {} for name in teachers}
    by_grouping: dict[str | None, list[str]] = {}
    for name, t in teachers.items():
        by_grouping.setdefault(t.grouping, []).append(name)
    for _grouping, names in by_grouping.items():
        labels = teachers[names[0]].group_labels(probe)
        order = group_order(labels)
        methods = sorted({teachers[n].method for n in names}) if "pearson" in comparisons else []
        rdms: dict[str, Any] = {}
        grams: Any = None
        for feats in probe_activations(
            fnet,
            probe,
            labels=labels,
            device=dev,
            batch_size=batch_size,
            normalize=normalize,
        ):
            for m in methods:
                part = compute_rdms(feats, m)
                rdms[m] = part if m not in rdms else rdms[m].concat(part)
            if kernels:
                g = gram_matrices(feats, conditions=order)
                grams = g if grams is None else grams.concat(g)
            del feats
        for name in names:
            t = teachers[name]
            if "pearson" in comparisons:
                r = rdms[t.method]
                r = RDMs(r.dissimilarities, r.names, r.n_conditions, r.method, order, r.metadata)
                out[name]["pearson"] = t.guidance(r, probe.fingerprint)
            for c in kernels:
                out[name][c] = t.kernel_guidance(grams, probe.fingerprint, c)
    return out


def guidance_scores(guidance: Mapping[str, Guidance]) -> dict[str, float]:
    """Base score values of one teacher's guidance: TG, TG-deep and S_<layer> per comparison."""
    from tgsage.scores.names import layer_name, tg_name

    out: dict[str, float] = {}
    for comparison, g in guidance.items():
        out[tg_name(comparison)] = float(g.tg)
        out[tg_name(comparison, deep=True)] = float(g.per_layer[-1])
        for layer, v in zip(g.teacher_layers, g.per_layer, strict=True):
            out[layer_name(layer, comparison)] = float(v)
    return out


def _needs(expr: Any, proxies: Sequence[str]) -> tuple[list[str], list[str], bool, bool]:
    """What a score needs: proxies to measure, comparisons, training, P at half budget."""
    from tgsage.scores import parse_name

    names = [parse_name(n) for n in expr.names]
    want = list(dict.fromkeys([*proxies, *(n.name for n in names if n.is_proxy)]))
    comps = list(dict.fromkeys(n.comparison for n in names if n.needs_teacher))
    train = any(n.needs_training or n.needs_teacher for n in names)
    slope = any(n.family == "P-slope" for n in names)
    return want, comps, train, slope  # type: ignore[return-value]


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
    reference: Any = None,
    comparisons: Sequence[str] = (),
    fit: Any = None,
    resume: Mapping[str, Any] | None = None,
    on_trained: Callable[[Trainer], None] | None = None,
    **train_overrides: Any,
) -> CandidateResult:
    """Train ``candidate`` briefly and score it; see the module docstring.

    Args:
        candidate: an architecture spec (object, dict or JSON) or any ``nn.Module`` (then
            ``layers`` names the submodules to compare unless it is a FeatureNet).
        data: train/validation splits; P is measured on ``data.val``.
        teacher: the teacher (needed for scores that read TG or S_i).
        budget: premature budget ("2ep", "0.2ep", "500steps", "20000ex"; "0ex" scores the
            untrained network).
        config: a training preset name or TrainConfig (default: the layer-space preset).
        score: "p+tg" (default), "p", "tg", or any :mod:`tgsage.scores` expression, e.g.
            ``"P + 0.5*TG-cka"``, ``"SoTL-E"``, ``"TG + rank(synflow)"``. ``alpha`` weighs TG
            in the old spelling ``p+tg``. A score made of zero-cost proxies only trains
            nothing.
        probe: probe images (default: the teacher's own, which always match).
        proxies: zero-cost proxies (:mod:`tgsage.proxies`) to measure on the untrained
            network before training, from ``proxy_batch`` seeded training images (those the
            score names are measured anyway).
        reference: a :class:`~tgsage.scores.Population` that ``rank``/``meanrank``/
            ``logrank``/fitted terms compare the candidate with (required for them).
        comparisons: extra teacher comparisons to measure ("cka", "relation"), recorded in
            ``result.scores`` even if the score does not read them.
        fit: :class:`~tgsage.scores.FitOptions` of fitted terms (learned from the labelled
            rows of ``reference``).
        resume: a :meth:`Trainer.state_dict` of this candidate's run (same config and seed)
            to continue from instead of training from the start; the result's examples and
            seconds are then the run's totals, the resumed part included.
        on_trained: called with the trainer after successful training (e.g. to save a
            checkpoint with ``trainer.state_dict()``).
    """
    from tgsage.scores import parse_score, score_one

    expr = parse_score(score, alpha=alpha)
    want, comps, needs_training, slope = _needs(expr, proxies)
    if teacher is not None:
        comps = list(dict.fromkeys(["pearson", *comps, *comparisons]))
    elif comps:
        raise InputError(f"score {score!r} needs a teacher; pass teacher=... or score='p'")
    if want:
        from tgsage.proxies import get_proxy

        for name in want:
            get_proxy(name)  # an unknown name fails now, before any work
    if expr.population and reference is None:
        raise InputError(
            f"score {score!r} compares the candidate with other architectures; pass "
            "reference=<tgsage.scores.Population> (a search builds one from its seed)"
        )
    probe = probe if probe is not None else (teacher.probe if teacher is not None else None)
    if teacher is not None:
        if probe is None:
            raise InputError("the teacher file carries no probe images; pass probe=...")
        teacher.check_probe(probe.fingerprint)
    if probe is not None:
        probe.check_image_shape(data.train.image_shape)
    result = CandidateResult(status="failed", score_kind=str(expr), alpha=alpha)
    try:
        model, result.spec_hash = build_candidate(candidate, data, width_mult, seed=seed)
        net = as_feature_net(model, layers)
    except (SpecError, InputError) as exc:
        result.failure_reason, result.message = "invalid_architecture", str(exc)
        return result
    result.params = sum(p.numel() for p in net.parameters())
    result.no_path = not getattr(getattr(model, "spec", None), "has_path", True)
    trainer = Trainer(
        net, data, config, device=device, seed=seed, progress=progress, **train_overrides
    )
    result.device = str(trainer.device)
    normalize = get_augmentation(trainer.config.augment).normalize
    if want:
        t0 = time.perf_counter()
        try:
            result.proxies = measure_proxies(
                net,
                data,
                want,
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
        result.scores.update(result.proxies)
    accuracy = math.nan
    p_half, p0_examples = math.nan, 0
    if resume is not None:
        trainer.load_state_dict(dict(resume))
    if needs_training or teacher is not None:
        if slope:
            half = trainer.train_until(f"{trainer.budget_steps(budget) // 2}steps")
            if half.ok:
                p_half = trainer.evaluate()
                p0_examples = half.examples
        train = trainer.train_until(budget)
        result.examples, result.steps = train.examples, train.steps
        result.amp, result.channels_last = train.amp, train.channels_last
        result.loss_sum, result.loss_steps = train.loss_sum, train.loss_steps
        result.epoch_loss_sums = train.epoch_loss_sums
        result.epoch_loss_steps = train.epoch_loss_steps
        result.train_seconds, result.eval_seconds = train.seconds, train.eval_seconds
        if not train.ok:
            result.failure_reason, result.message = train.failure_reason, train.message
            return result
        if on_trained is not None:
            on_trained(trainer)
        if train.val_accuracy is not None:
            accuracy = float(train.val_accuracy)
        elif train.steps == 0 and data.val is not None and len(data.val):
            accuracy = trainer.evaluate()  # a zero budget: P of the untrained network
        result.accuracy = accuracy
        result.scores["P"] = accuracy
        result.scores.update(loss_scores(train.losses, trainer.budget_steps("1ep")))
        if slope and train.examples > p0_examples:
            result.scores["P-slope"] = (accuracy - p_half) / (train.examples - p0_examples) * 1e4
    t0 = time.perf_counter()
    if teacher is not None and probe is not None:
        try:
            g = measure_guidance(
                net,
                probe,
                {"teacher": teacher},
                comps,
                device=trainer.device,
                batch_size=batch_size,
                normalize=normalize,
            )["teacher"]
        except (TgsageError, RuntimeError) as exc:
            kind = "nan_activations" if "NaN" in str(exc) else "scoring_error"
            if (reason := _failure_reason(exc, kind)) is None:
                raise
            result.failure_reason, result.message = reason, str(exc)
            return result
        guidance = g["pearson"]
        result.tg = guidance.tg
        result.per_layer = dict(zip(guidance.teacher_layers, guidance.per_layer, strict=True))
        result.best_match = dict(zip(guidance.teacher_layers, guidance.best_match, strict=True))
        result.similarity = guidance.similarity.tolist()
        result.teacher_layers = list(guidance.teacher_layers)
        result.candidate_layers = list(guidance.candidate_layers)
        result.guidance = {
            c: dict(zip(x.teacher_layers, x.per_layer, strict=True)) for c, x in g.items()
        }
        result.scores.update(guidance_scores(g))
    result.score_seconds = time.perf_counter() - t0
    if (needs_training or teacher is not None) and math.isnan(accuracy):
        result.failure_reason, result.message = "no_validation", "no validation accuracy"
        return result
    missing = [n for n in expr.names if n not in result.scores]
    if missing:
        result.failure_reason = "score_undefined"
        result.message = f"score {score!r}: {missing} could not be measured for this candidate"
        return result
    value = score_one(expr, result.scores, reference, fit, spec=_spec_of(candidate))
    if not math.isfinite(value):
        result.failure_reason = "score_undefined"
        result.message = f"score {score!r} is {value} for this candidate"
        return result
    result.score = value
    result.status = "ok"
    return result


def _spec_of(candidate: Any) -> Any:
    if isinstance(candidate, torch.nn.Module):
        return None
    from tgsage.spaces.specs import ArchSpec, spec_from_dict, spec_from_json

    if isinstance(candidate, ArchSpec):
        return candidate
    return spec_from_json(candidate) if isinstance(candidate, str) else spec_from_dict(candidate)
