"""What a worker does with one candidate: ``train`` (the real evaluation) or ``simulate``.

``train`` calls :func:`tgsage.evaluate.evaluate_candidate` (premature training, P, per-layer
S_i, TG, score, cost); the data and the teacher are loaded once per worker process.
``simulate`` is a cheap stand-in for tests and benchmarks: it sleeps a fixed time and derives P
and TG from the spec hash, so identical specs get identical results, as in real training.
"""

from __future__ import annotations

import hashlib
import logging
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tgsage.candidate_record import to_record
from tgsage.search.config import SearchConfig


@dataclass
class Outcome:
    """One evaluation: the score (None when failed) and the attributes to store."""

    ok: bool
    score: float | None
    attrs: dict[str, Any] = field(default_factory=dict)


class Objective(Protocol):
    def __call__(self, spec: Any) -> Outcome: ...


def guarded(number: int, evaluate: Callable[[], Outcome]) -> Outcome:
    """``evaluate()``, with an exception recorded as the candidate's failure (a bug or an
    environment error must fail one candidate, not hang or kill the worker)."""
    try:
        return evaluate()
    except Exception as exc:
        logging.getLogger("tgsage.search").error(
            "trial %d: evaluation raised\n%s", number, traceback.format_exc()
        )
        message = f"{type(exc).__name__}: {exc}"[:2000]
        return Outcome(False, None, {"failure_reason": "error", "message": message})


def _unit(text: str, salt: str) -> float:
    """A deterministic number in [0, 1) from ``text``."""
    digest = hashlib.sha256(f"{salt}:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


class SimulatedObjective:
    """P, TG from the spec hash; fixed sleep; deterministic failures (``fail_fraction``)."""

    def __init__(self, config: SearchConfig) -> None:
        self.config = config

    def __call__(self, spec: Any) -> Outcome:
        sim, h = self.config.simulate, spec.spec_hash
        t0 = time.perf_counter()
        if sim.sleep:
            time.sleep(sim.sleep)
        seconds = time.perf_counter() - t0
        base = {"examples": sim.examples, "train_seconds": seconds, "score_seconds": 0.0}
        if _unit(h, "fail") < sim.fail_fraction:
            return Outcome(
                False,
                None,
                base | {"failure_reason": "simulated_failure", "message": "simulated failure"},
            )
        p = 0.1 + 0.8 * _unit(h, "P")
        per_layer = {f"layer{i}": round(_unit(h, f"S{i}"), 6) for i in range(3)}
        tg = sum(per_layer.values()) / len(per_layer)
        kind, alpha = self.config.score, self.config.alpha
        if kind not in ("p", "tg", "p+tg", "proxy"):
            return self._expression(h, base)
        if kind == "proxy":
            z = _unit(h, "Z")
            return Outcome(True, z, base | {"proxies": {self.config.proxy: z}, "score": z})
        score = p if kind == "p" else tg if kind == "tg" else p + alpha * tg
        attrs = base | {"P": p, "TG": tg, "per_layer": per_layer}
        if self.config.proxy is not None and self.config.beta:
            z = _unit(h, "Z")
            score += self.config.beta * z
            attrs |= {"proxies": {self.config.proxy: z}, "proxy_rank": z}
        return Outcome(True, score, attrs | {"score": score})

    def _values(self, key: str) -> dict[str, float]:
        """Simulated base scores of one architecture (deterministic in ``key``)."""
        from tgsage.scores import parse_name, parse_score

        out: dict[str, float] = {}
        for name in parse_score(self.config.score).names:
            kind = parse_name(name)
            scale = -100.0 if kind.family in ("SoTL", "SoTL-E") else 1.0
            out[name] = scale * _unit(key, name)
        return out

    def _expression(self, h: str, base: dict[str, Any]) -> Outcome:
        """Any other score expression, over simulated base scores (ranks against a simulated
        reference of ``proxy_reference`` architectures)."""
        from tgsage.scores import FitOptions, Population, parse_score, score_one

        c = self.config
        expr = parse_score(c.score)
        ref = None
        if expr.population:
            n = c.proxy_reference
            ref = Population.from_rows(
                [self._values(f"ref{i}") for i in range(n)],
                target=[_unit(f"ref{i}", "mature") for i in range(n)],
            )
        values = self._values(h)
        score = score_one(expr, values, ref, FitOptions(labels=c.proxy_reference))
        attrs = base | {"scores": values, "score": score}
        if "P" in values:
            attrs["P"] = values["P"]
        if "TG" in values:
            attrs["TG"] = values["TG"]
        return Outcome(True, score, attrs)


def search_reference(
    config: SearchConfig,
    names: tuple[str, ...],
    measure: Callable[[int, Any], Mapping[str, float]],
    tag: tuple[str, ...] = (),
) -> Any:
    """A search's reference population for ``names`` (:mod:`tgsage.scores.reference`):
    ``proxy_reference`` seeded random architectures of the space, or drawn from
    ``ground_truth`` with their accuracies (so a fitted score learns from them), measured with
    ``measure(i, spec)`` and cached in the run folder (``tag`` keeps apart references of the
    same names measured differently, e.g. a cascade's screen)."""
    from tgsage.scores.reference import build_reference, reference_path, reference_specs
    from tgsage.spaces import get_space

    c = config
    tag = tag + (("labelled",) if c.ground_truth is not None else ())
    cache: Path | None = reference_path(c.resolved_run_dir, names + tag, c.proxy_reference, c.seed)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
    except OSError:
        cache = None  # a worker on another machine without the run folder
    targets = None
    if c.ground_truth is not None:  # a labelled reference, drawn from the table
        from tgsage.spaces.ground_truth import load_nb201_table

        truth = load_nb201_table(c.ground_truth, dataset=c.ground_truth_dataset)
        specs = truth.sample(min(c.proxy_reference, len(truth)), seed=c.seed)
        targets = [truth.lookup(s) for s in specs]
    else:
        specs = reference_specs(get_space(c.space, **c.space_options), c.proxy_reference, c.seed)
    return build_reference(specs, measure, names, cache=cache, targets=targets)


def reference_fit(config: SearchConfig) -> Any:
    """Fitted scores learn from every labelled reference architecture."""
    from tgsage.scores import FitOptions

    return FitOptions(labels=config.proxy_reference, seed=config.seed)


class TrainObjective:
    """Premature training and scoring with :func:`tgsage.evaluate.evaluate_candidate`."""

    def __init__(self, config: SearchConfig) -> None:
        from tgsage.data.registry import get_dataset
        from tgsage.teacher import Teacher

        self.config = config
        needs_teacher = config.teacher is not None and config.needs_teacher
        self.teacher = Teacher.load(config.teacher) if needs_teacher else None
        self.data = get_dataset(config.data.name, **config.data.options)
        self.train = config.train_config
        if _trains(config):
            _check_budget(config, self.data)
        self._reference: Any = None

    def reference(self, expr: Any) -> Any:
        """The reference population that ``rank``/``meanrank``/``logrank`` and fitted scores
        compare a candidate with: ``proxy_reference`` seeded random architectures of the space
        (drawn from ``ground_truth`` with their accuracies when set: a fitted score learns from
        them), measured once with the candidates' own measurement and cached in the run folder
        (:mod:`tgsage.scores.reference`). None when the score needs none."""
        if not expr.population:
            return None
        if self._reference is None:
            c, names = self.config, expr.population_names
            self._reference = search_reference(
                c, names, lambda i, s: self._measure(s, names, c.seed + i)
            )
        return self._reference

    def _measure(self, spec: Any, names: tuple[str, ...], seed: int) -> dict[str, float]:
        """Base scores ``names`` of one architecture: proxies of the untrained network (built
        from ``seed``), or a premature evaluation like a candidate's when any name needs one."""
        from tgsage.scores import parse_name
        from tgsage.scores.grammar import Ref

        if all(parse_name(n).is_proxy for n in names):
            return self._proxies(spec, names, seed)[0]
        return dict(self._evaluate(spec, " + ".join(str(Ref(n)) for n in names)).scores)

    def _evaluate(self, spec: Any, score: str, **extra: Any) -> Any:
        """Premature training and scoring of one architecture, as the config says."""
        from tgsage.evaluate import evaluate_candidate

        c = self.config
        return evaluate_candidate(
            spec,
            self.data,
            self.teacher,
            budget=c.budget,
            config=self.train,
            score=score,
            width_mult=c.width_mult,
            device=c.device,
            seed=c.seed,
            **extra,
        )

    def _proxies(
        self, spec: Any, names: tuple[str, ...], seed: int
    ) -> tuple[dict[str, float], int]:
        """Zero-cost proxies of the untrained network built from ``seed`` (its minibatch is
        the search seed's), and its parameter count."""
        from tgsage.data.pipeline import get_augmentation, resolve_device
        from tgsage.evaluate import build_candidate, measure_proxies

        c = self.config
        device = resolve_device(c.device)
        model, _ = build_candidate(spec, self.data, c.width_mult, seed=seed)
        values = measure_proxies(
            model.to(device),
            self.data,
            list(names),
            device=device,
            normalize=get_augmentation(self.train.augment).normalize,
            seed=c.seed,
        )
        return values, sum(p.numel() for p in model.parameters())

    def _proxy_only(self, spec: Any, expr: Any) -> Outcome:
        """A score of zero-cost proxies only: no training at all; the untrained network."""
        import math
        import time

        from tgsage.scores import score_one

        t0 = time.perf_counter()
        values, params = self._proxies(spec, expr.names, self.config.seed)
        z = score_one(expr, values, self.reference(expr), reference_fit(self.config), spec=spec)
        attrs: dict[str, Any] = {
            "examples": 0,
            "steps": 0,
            "train_seconds": 0.0,
            "score_seconds": time.perf_counter() - t0,
            "proxies": values,
            "scores": values,
            "params": params,
        }
        if not math.isfinite(z):
            return Outcome(
                False,
                None,
                attrs | {"failure_reason": "proxy_undefined", "message": f"{expr} is {z}"},
            )
        return Outcome(True, float(z), attrs | {"score": float(z)})

    def __call__(self, spec: Any) -> Outcome:
        from tgsage.scores import parse_name, parse_score, percentiles_against

        c = self.config
        expr = parse_score(c.score_expression)
        if all(parse_name(n).is_proxy for n in expr.names):
            return self._proxy_only(spec, expr)
        reference = self.reference(expr)
        r = self._evaluate(spec, str(expr), reference=reference, fit=reference_fit(self.config))
        attrs = to_record(r)
        if not r.ok:
            return Outcome(False, None, attrs)
        if c.proxy is not None and c.beta != 0 and reference is not None:
            v = r.proxies.get(c.proxy, float("nan"))
            attrs["proxy_rank"] = float(percentiles_against([v], reference.column(c.proxy))[0])
        attrs["score"] = r.score
        return Outcome(True, r.score, attrs)


def make_objective(config: SearchConfig) -> Objective:
    if config.objective == "simulate":
        return SimulatedObjective(config)
    return TrainObjective(config)


def check_objective(config: SearchConfig) -> None:
    """Everything a ``train`` objective needs, checked once in the search process before any
    study is created or worker started: the dataset opens, the preset and its overrides exist,
    the budget fits the preset's schedule, the proxy exists, the teacher file loads and its
    probe images have the data's shape. A mistake is one error here, not a failure of every
    candidate."""
    from tgsage.errors import ConfigError

    if config.objective != "train":
        return
    from tgsage.data.registry import list_datasets

    if config.data.name not in list_datasets():
        raise ConfigError(
            f"data.name: unknown dataset {config.data.name!r}; choose one of {list_datasets()}"
        )
    if config.train is not None:
        from tgsage.train import list_presets

        if config.train not in list_presets():
            raise ConfigError(
                f"train: unknown training preset {config.train!r}; choose one of {list_presets()}"
            )
    if config.train_options:
        try:
            config.train_config  # noqa: B018 - validates the overrides
        except ConfigError as exc:
            raise ConfigError(f"train_options: {exc}") from None
    if config.proxy is not None:
        from tgsage.errors import TgsageError
        from tgsage.proxies import get_proxy

        try:
            get_proxy(config.proxy)
        except TgsageError as exc:
            raise ConfigError(f"proxy: {exc}") from None
    data = _open_data(config)
    if _trains(config):
        _check_budget(config, data)
    if config.teacher is not None and config.needs_teacher:
        from tgsage.teacher import Teacher

        if not config.teacher.exists():
            raise ConfigError(
                f"teacher: file {config.teacher} not found; build one with `tgsage teacher build`"
            )
        teacher = Teacher.load(config.teacher)
        if teacher.probe is not None:
            teacher.probe.check_image_shape(data.train.image_shape, f"data {config.data.name!r}")


def _trains(config: SearchConfig) -> bool:
    """Whether candidates are trained at all (not when the score is zero-cost proxies only)."""
    from tgsage.scores import parse_name, parse_score

    return not all(parse_name(n).is_proxy for n in parse_score(config.score_expression).names)


def _open_data(config: SearchConfig) -> Any:
    """The configured dataset, opened as a worker will (a missing, empty or unreadable folder
    is a DataError naming it)."""
    from tgsage.data.registry import get_dataset
    from tgsage.errors import DataError

    try:
        return get_dataset(config.data.name, **config.data.options)
    except DataError as exc:
        raise DataError(f"data: {exc}") from None


def _check_budget(config: SearchConfig, data: Any) -> None:
    """The premature budget against the training preset on this data (e.g. a budget past the
    end of a cosine schedule, a batch larger than the training set)."""
    import torch

    from tgsage.train import Trainer

    Trainer(torch.nn.Identity(), data, config.train_config, device="cpu").check_budget(
        config.budget
    )
