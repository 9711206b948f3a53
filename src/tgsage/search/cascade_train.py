"""The real cascade evaluator: a zero-cost screen, then premature training continued by rung.

``screen(spec)`` builds the untrained network (weights seeded by the search seed) and measures
the screen's zero-cost proxy on one seeded minibatch. ``train(spec, budget, score, previous)``
trains it to ``budget`` with :func:`tgsage.evaluate.evaluate_candidate` and scores it; with
``previous`` (the budget this search last trained the candidate to) the run resumes that
checkpoint, so the cost is the difference. TG is measured whenever the search has a teacher,
whatever the rung's score, so every record can serve P- and TG-ranked rungs alike.

With ``cascade.cache`` every evaluation is also appended to an :class:`EvaluationCache`, and a
cached one is looked up instead of being run: the cost charged is the recorded one
(``cached: true`` on the trial), as if the search had run it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any

from tgsage.search.cascade_eval import Checkpoints, checkpoint_root
from tgsage.search.config import SearchConfig
from tgsage.search.evaluation_cache import EvaluationCache, file_fingerprint, fingerprint
from tgsage.search.objective import Outcome

log = logging.getLogger("tgsage.search")

# what a cached training record carries over to the trial (run totals are turned into costs)
_RESULT_KEYS = (
    "scores",
    "P",
    "TG",
    "per_layer",
    "best_match",
    "params",
    "steps",
    "device",
    "teacher_layers",
    "candidate_layers",
)


def rung_value(score: str, scores: Mapping[str, float | None], alpha: float = 1.0) -> float:
    """A rung's score of one candidate from its measured base scores (NaN when one it
    reads was not measured)."""
    from tgsage.scores import parse_score, score_one

    return score_one(parse_score(score, alpha=alpha), scores)


def rung_needs(config: SearchConfig) -> tuple[set[str], list[str]]:
    """The base score names the cascade's rung scores read, and the teacher comparisons
    they need ("pearson", "cka", "relation")."""
    from tgsage.scores import parse_name, parse_score

    assert config.cascade is not None
    names: set[str] = set()
    for text in config.cascade.rung_scores or [config.score]:
        names |= set(parse_score(text, alpha=config.alpha).names)
    comps = {parse_name(n).comparison for n in names if parse_name(n).needs_teacher}
    return names, sorted(c for c in comps if c is not None)


def setting_of(config: SearchConfig, data: Any, screen: bool = False) -> dict[str, Any]:
    """Everything that changes an evaluation's numbers (teacher apart): for a screen the
    untrained network and its minibatch, for training also the validation images and the
    training config."""
    from tgsage.data.pipeline import get_augmentation
    from tgsage.data.probe import fingerprint_images

    train = config.train_config
    setting = {
        "space": config.space,
        "space_options": config.space_options,
        "images": fingerprint_images(data.train.images),
        "width_mult": config.width_mult,
        "seed": config.seed,
    }
    if screen:
        return setting | {"kind": "screen", "normalize": get_augmentation(train.augment).normalize}
    return setting | {
        "val": fingerprint_images(data.val.images) if data.val is not None else None,
        "train": train.model_dump(mode="json"),
    }


class TrainingCascade:
    """Screens and trains candidates for a cascade search (see the module docstring)."""

    def __init__(self, config: SearchConfig, **trainer_options: Any) -> None:
        """``trainer_options`` go to the :class:`~tgsage.train.Trainer` (e.g.
        ``channels_last=True``); they must not change the numbers (they are not part of the
        cache's setting)."""
        from tgsage.data.registry import get_dataset
        from tgsage.teacher import Teacher

        assert config.cascade is not None
        self.config = config
        self.trainer_options = trainer_options
        self.data = get_dataset(config.data.name, **config.data.options)
        self.teacher = Teacher.load(config.teacher) if config.teacher is not None else None
        self.train_config = config.train_config
        self.teacher_id = file_fingerprint(config.teacher) if config.teacher is not None else None
        self.needs, self.comparisons = rung_needs(config)
        cache_path = config.cascade.cache
        self.cache: EvaluationCache | None = None
        self.screen_cache: EvaluationCache | None = None
        if cache_path is not None:
            self.cache = EvaluationCache(cache_path, fingerprint(setting_of(config, self.data)))
            self.screen_cache = EvaluationCache(
                cache_path, fingerprint(setting_of(config, self.data, screen=True))
            )
        self.checkpoints = Checkpoints(checkpoint_root(config))
        self._screen_refs: dict[tuple[str, ...], Any] = {}

    # ------------------------------------------------------------------ helpers
    def _examples(self, budget: str) -> int:
        return self.train_config.examples_for(budget, len(self.data.train))

    def _normalize(self) -> str:
        from tgsage.data.pipeline import get_augmentation

        return get_augmentation(self.train_config.augment).normalize

    def _usable(self, rec: Mapping[str, Any]) -> bool:
        """A cached training record holds every score the rungs read, TG of this teacher."""
        if rec.get("status") != "ok":
            return True  # a failure of the candidate itself: not trained again
        scores = rec.get("scores") or {}
        if any(n not in scores for n in self.needs):
            return False
        return self.teacher is None or rec.get("teacher") == self.teacher_id

    def _rescore(self, spec: Any, budget: str) -> dict[str, Any] | None:
        """Scores of a cached run that lacks some (another teacher's TG, a comparison not
        measured), from its checkpoint at ``budget``: no training; the record keeps the
        original run's costs. None when there is no such checkpoint."""
        import torch

        if self.cache is None:
            return None
        old = self.cache.get(spec.spec_hash, budget)
        found = self.checkpoints.best_below(spec.spec_hash, self._examples(budget) + 1)
        if old is None or found is None or found[0] != self._examples(budget):
            return None
        try:
            state = torch.load(found[1], map_location="cpu", weights_only=True)
        except Exception:
            return None
        c0 = time.process_time()
        r = self._evaluate(spec, budget, state)
        if not r.ok:
            return None
        rec = dict(old) | self._measured(r)
        rec["rescore_cpu_seconds"] = time.process_time() - c0
        return self.cache.put(spec.spec_hash, budget, rec)

    def _evaluate(self, spec: Any, budget: str, state: dict[str, Any] | None, **kw: Any) -> Any:
        """Train ``spec`` to ``budget`` (from the trainer ``state`` when given) and measure
        every score this search compares: one call for fresh runs, continuations and
        rescoring, so all three measure the same things the same way."""
        from tgsage.evaluate import evaluate_candidate

        c = self.config
        return evaluate_candidate(
            spec,
            self.data,
            self.teacher,
            budget=budget,
            config=self.train_config,
            score="P",
            comparisons=self.comparisons,
            width_mult=c.width_mult,
            device=c.device,
            seed=c.seed,
            resume=state,
            **kw,
            **self.trainer_options,
        )

    def _measured(self, r: Any) -> dict[str, Any]:
        """What a run measured (not its cost): scores, P, TG and the teacher's details."""
        out: dict[str, Any] = {"scores": dict(r.scores), "P": r.accuracy}
        if r.tg is not None:
            out |= {
                "TG": r.tg,
                "per_layer": r.per_layer,
                "best_match": r.best_match,
                "teacher": self.teacher_id,
                "teacher_layers": r.teacher_layers,
                "candidate_layers": r.candidate_layers,
            }
        return out

    def measure_screen(self, spec: Any, names: list[str]) -> dict[str, Any]:
        """Zero-cost proxies ``names`` of the seeded untrained network merged into its screen
        record (cached when the search has a cache): ``proxies`` {name: value}, ``cpu``
        {"build": CPU seconds to build the network, name: CPU seconds of the call that
        measured it, charged to the first name of that call}, ``seconds`` {same keys: wall
        seconds}."""
        from tgsage.data.pipeline import resolve_device
        from tgsage.evaluate import build_candidate, measure_proxies

        c, h = self.config, spec.spec_hash
        rec = self.screen_cache.get(h, None) if self.screen_cache is not None else None
        rec = dict(rec) if rec is not None else {"status": "ok", "proxies": {}}
        todo = [n for n in names if n not in rec["proxies"]]
        if not todo:
            return rec
        device = resolve_device(c.device)
        cpu, wall = dict(rec.get("cpu") or {}), dict(rec.get("seconds") or {})
        t0, c0 = time.perf_counter(), time.process_time()
        model, _ = build_candidate(spec, self.data, c.width_mult, seed=c.seed)
        model = model.to(device)
        wall["build"], cpu["build"] = time.perf_counter() - t0, time.process_time() - c0
        # one call for all: the proxies share their forward and backward passes; the time is
        # charged to the first (the others' 0 s, as the one-pass code itself does)
        t0, c0 = time.perf_counter(), time.process_time()
        values = measure_proxies(
            model, self.data, todo, device=device, normalize=self._normalize(), seed=c.seed
        )
        wall_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
        for i, name in enumerate(todo):
            wall[name], cpu[name] = (wall_s, cpu_s) if i == 0 else (0.0, 0.0)
        rec["proxies"] = dict(rec["proxies"]) | {n: values[n] for n in todo}
        rec["cpu"], rec["seconds"] = cpu, wall
        if self.screen_cache is not None:
            rec = self.screen_cache.put(h, None, rec)
        return rec

    def screen(self, spec: Any, score: str | None = None) -> Outcome:
        """An untrained rung: ``score`` (default ``cascade.screen``; a prescreen passes its
        own) of the seeded untrained network. A proxy name is that
        proxy's value; an expression over proxies (``logrank(meco, synflow)``,
        ``1*logrank(meco) + 0.2*logrank(zico)``) is evaluated with its ranks taken against the
        search's reference architectures (:meth:`screen_reference`), so every candidate's
        value is fixed when it is measured and the rung ranks them like any proxy. All the
        expression's proxies come from one shared pass."""
        from tgsage.scores import parse_score, score_one

        text = score if score is not None else self.config.cascade.screen  # type: ignore[union-attr]
        expr = parse_score(text)
        names = list(expr.names)
        had = self.screen_cache.get(spec.spec_hash, None) if self.screen_cache else None
        cached = had is not None and all(n in (had.get("proxies") or {}) for n in names)
        w0, c0 = time.perf_counter(), time.process_time()
        ref = self.screen_reference(expr)
        ref_wall, ref_cpu = time.perf_counter() - w0, time.process_time() - c0
        rec = self.measure_screen(spec, names)
        values = {n: rec["proxies"].get(n) for n in names}

        def cost(key: str) -> float:  # building the network + these proxies
            times = rec.get(key) or {}
            return float(times.get("build") or 0.0) + sum(float(times.get(n) or 0.0) for n in names)

        attrs: dict[str, Any] = {
            "examples": 0,
            "train_seconds": 0.0,
            # the reference, measured once per worker process, is charged where it was built
            "score_seconds": cost("seconds") + ref_wall,
            "cpu_seconds": cost("cpu") + ref_cpu,
            "proxies": values,
        }
        if cached:
            attrs["cached"] = True
        bad = [n for n, v in values.items() if v is None or math.isnan(float(v))]
        if text in values:
            z = values[text]
        elif bad:
            z = None
        else:
            from tgsage.search.objective import reference_fit

            fit = reference_fit(self.config)
            z = score_one(expr, {n: float(v) for n, v in values.items()}, ref, fit, spec=spec)
        if z is None or not math.isfinite(float(z)):
            what = f"{', '.join(bad)} undefined" if bad else f"{text} is {z}"
            return Outcome(
                False, None, attrs | {"failure_reason": "proxy_undefined", "message": what}
            )
        return Outcome(True, float(z), attrs | {"score": float(z)})

    def screen_reference(self, expr: Any) -> Any:
        """The architectures a screen expression's ranks (and fitted terms) compare a
        candidate with: ``proxy_reference`` seeded random architectures of the space (drawn
        from ``ground_truth`` with their accuracies when set), screened like candidates and
        cached in the run folder, so every worker ranks against the same reference
        (:mod:`tgsage.scores.reference`). None when the expression needs none."""
        if not expr.population:
            return None
        names = expr.population_names  # what the ranks read, as for a flat search
        if names not in self._screen_refs:  # one per screen (a prescreen may need its own)
            from tgsage.search.objective import search_reference

            self._screen_refs[names] = search_reference(
                self.config,
                names,
                lambda _i, s: self.measure_screen(s, list(names))["proxies"],
                tag=("screen",),
            )
        return self._screen_refs[names]

    # ------------------------------------------------------------------ train
    def train(self, spec: Any, budget: str, score: str, previous: str | None = None) -> Outcome:
        """Train to ``budget`` (continuing ``previous`` when it has a checkpoint) and score."""
        h = spec.spec_hash
        rec = self.cache.get(h, budget) if self.cache is not None else None
        if rec is not None and not self._usable(rec):
            rec = self._rescore(spec, budget)
        cached = rec is not None
        base = self.cache.get(h, previous) if self.cache is not None and previous else None
        if rec is None:
            rec, base = self._run(spec, budget, previous)
        start_ex = int(base["examples"]) if base is not None and base.get("status") == "ok" else 0
        start_s = float(base["train_seconds"]) if start_ex else 0.0
        start_cpu = float(base.get("cpu_seconds") or 0.0) if start_ex else 0.0
        attrs: dict[str, Any] = {
            "examples": max(0, int(rec.get("examples") or 0) - start_ex),
            "train_seconds": max(0.0, float(rec.get("train_seconds") or 0.0) - start_s),
            "cpu_seconds": max(0.0, float(rec.get("cpu_seconds") or 0.0) - start_cpu),
            "eval_seconds": float(rec.get("eval_seconds") or 0.0),
            "score_seconds": float(rec.get("score_seconds") or 0.0),
        }
        if start_ex:
            attrs["resumed_from"] = start_ex
        if cached:
            attrs["cached"] = True
        if rec.get("params") is None and rec.get("params_count") is not None:
            rec = rec | {"params": rec["params_count"]}  # cached before the record schema
        attrs |= {k: rec[k] for k in _RESULT_KEYS if rec.get(k) is not None}
        if rec.get("status") != "ok":
            return Outcome(
                False,
                None,
                attrs
                | {
                    "failure_reason": rec.get("failure_reason") or "failed",
                    "message": rec.get("message") or "",
                },
            )
        value = rung_value(score, rec.get("scores") or {}, self.config.alpha)
        if not math.isfinite(value):
            return Outcome(
                False,
                None,
                attrs | {"failure_reason": "no_score", "message": f"{score} is {value}"},
            )
        return Outcome(True, value, attrs | {"score": value})

    def _run(
        self, spec: Any, budget: str, previous: str | None
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Train for real; returns the run-total record and the record it continued."""
        import torch

        h = spec.spec_hash
        state, base = None, None
        before = self.cache.get(h, previous) if self.cache is not None and previous else None
        if previous is not None:
            found = self.checkpoints.best_below(h, self._examples(budget))
            if found is not None and found[0] == self._examples(previous):
                try:
                    state = torch.load(found[1], map_location="cpu", weights_only=True)
                    base = {
                        "status": "ok",
                        "examples": int(state["examples"]),
                        "train_seconds": float(state["seconds"]),
                        "cpu_seconds": float((before or {}).get("cpu_seconds") or 0.0),
                    }
                except Exception as exc:  # a torn or foreign file: train from the start
                    log.warning(
                        "checkpoint %s unreadable (%s); training from scratch", found[1], exc
                    )
                    state = None

        def save(trainer: Any) -> None:
            self.checkpoints.save(
                h, int(trainer.examples), lambda p: torch.save(trainer.state_dict(), p)
            )

        c0 = time.process_time()
        r = self._evaluate(
            spec, budget, state, on_trained=save if self.checkpoints.root is not None else None
        )
        rec: dict[str, Any] = {
            "status": r.status,
            "examples": r.examples,
            "steps": r.steps,
            "train_seconds": r.train_seconds,
            "eval_seconds": r.eval_seconds,
            "score_seconds": r.score_seconds,
            "cpu_seconds": (base or {}).get("cpu_seconds", 0.0) + time.process_time() - c0,
            "params": r.params,
            "device": r.device,
        } | self._measured(r)
        if not r.ok:
            rec |= {"failure_reason": r.failure_reason, "message": (r.message or "")[:2000]}
        if self.cache is not None:
            rec = self.cache.put(h, budget, rec)
        return rec, base


__all__ = ["TrainingCascade", "setting_of"]
