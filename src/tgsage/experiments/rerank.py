"""Re-ranking (paper 4.3): train a search's top-k longer, keep the best, account the cost.

The search's premature score only approximately predicts mature accuracy, so the top ``k``
distinct candidates by score are trained for a longer budget and the one with the best
longer-budget validation accuracy is chosen. The total cost of search plus re-ranking is the
paper's ``M1*E1 + M2*E2`` in examples processed by SGD, computed from what each run actually
processed: ``sum_i E1_i + sum_j E2_j`` (M1 candidates sampled by the search - failed ones
included, since they were trained too - and M2 = the re-ranked candidates).

:func:`rerank_search` does all of it for a stored search (its records, data and training
settings) and writes ``rerank.json`` into the run folder; :func:`read_rerank` reads it back;
:func:`best_candidate` is what a search found (its re-ranking's choice, else its best score).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tgsage.errors import ConfigError, InputError, SpecError
from tgsage.experiments.jsonio import plain_json, write_json
from tgsage.experiments.records import CandidateRecord, as_candidate_records
from tgsage.observer import Observer

if TYPE_CHECKING:
    from tgsage.search.locate import SearchRun

#: The file a search's re-ranking is stored in, inside its run folder.
RERANK_FILE = "rerank.json"

SAMPLED_STATES = ("ok", "failed")


@dataclass
class LongRun:
    """What a longer training of one candidate gave (``train_fn``'s answer)."""

    accuracy: float | None
    examples: int
    status: str = "ok"
    failure_reason: str | None = None

    @classmethod
    def coerce(cls, value: Any) -> LongRun:
        """From a LongRun, a dict, or an object like TrainResult/CandidateResult."""
        if isinstance(value, LongRun):
            return value
        get = value.get if isinstance(value, Mapping) else (lambda k: getattr(value, k, None))
        acc = get("accuracy")
        if acc is None:
            acc = get("val_accuracy")
        examples = get("examples")
        if examples is None:
            raise InputError("train_fn must report the examples it trained on (the cost)")
        status = str(get("status") or "ok")
        return cls(
            None if acc is None else float(acc), int(examples), status, get("failure_reason")
        )


@dataclass
class RerankEntry:
    """One re-ranked candidate: its search record and its longer run."""

    number: int
    spec_hash: str | None
    score: float | None
    premature_accuracy: float | None
    accuracy: float | None  # after the longer budget
    examples: int
    status: str


@dataclass
class RerankResult:
    """The chosen candidate and the cost breakdown ``M1*E1 + M2*E2`` (examples)."""

    best: CandidateRecord | None
    best_accuracy: float | None
    entries: list[RerankEntry] = field(default_factory=list)
    m1: int = 0
    e1_total: int = 0
    m2: int = 0
    e2_total: int = 0

    @property
    def e1(self) -> float:
        """Mean examples per sampled candidate (the paper's E1)."""
        return self.e1_total / self.m1 if self.m1 else 0.0

    @property
    def e2(self) -> float:
        """Mean examples per re-ranked candidate (the paper's E2)."""
        return self.e2_total / self.m2 if self.m2 else 0.0

    @property
    def total(self) -> int:
        return self.e1_total + self.e2_total

    def cost_table(self) -> list[dict[str, Any]]:
        """Rows for a report: search, re-ranking, total."""
        return [
            {
                "stage": "search",
                "M": self.m1,
                "E (mean examples)": round(self.e1, 1),
                "examples": self.e1_total,
            },
            {
                "stage": "rerank",
                "M": self.m2,
                "E (mean examples)": round(self.e2, 1),
                "examples": self.e2_total,
            },
            {
                "stage": "total",
                "M": self.m1 + self.m2,
                "E (mean examples)": "",
                "examples": self.total,
            },
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "best": None if self.best is None else self.best.as_dict(),
            "best_accuracy": self.best_accuracy,
            "entries": [asdict(e) for e in self.entries],
            "m1": self.m1,
            "e1": self.e1,
            "e1_total": self.e1_total,
            "m2": self.m2,
            "e2": self.e2,
            "e2_total": self.e2_total,
            "total": self.total,
        }


def top_k(records: Iterable[Any], k: int, by: str = "score") -> list[CandidateRecord]:
    """The ``k`` best distinct (by spec hash) scored candidates; ties go to the lower trial
    number, and a reused result never displaces its original."""
    recs = [r for r in as_candidate_records(records) if r.ok and r.value(by) is not None]
    recs.sort(key=lambda r: (-(r.value(by) or 0.0), r.number))
    out, seen = [], set()
    for r in recs:
        key = r.spec_hash or f"#{r.number}"
        if key in seen:
            continue
        seen.add(key)
        out.append(r)
        if len(out) == k:
            break
    return out


def rerank(
    records: Iterable[Any],
    k: int,
    train_fn: Callable[[CandidateRecord], Any],
    *,
    by: str = "score",
    order: Sequence[int] | None = None,
) -> RerankResult:
    """Train the top ``k`` by ``by`` with ``train_fn`` and keep the best longer-run accuracy.

    ``order``: trial numbers best first, when the records' scores do not compare with each
    other (a cascade's rungs: :attr:`tgsage.search.cascade.CascadeState.ranked`); the top
    ``k`` are then the first ``k`` of it.

    ``train_fn(record)`` trains the candidate for the longer budget and returns a
    :class:`LongRun`, a dict or a TrainResult-like object with the validation accuracy
    (``accuracy`` or ``val_accuracy``) and ``examples``; see :func:`make_train_fn`. A failed
    long run still counts toward the cost. Ties in longer-run accuracy go to the higher score.
    """
    if k < 1:
        raise InputError(f"rerank: k must be >= 1, got {k}")
    recs = as_candidate_records(records)
    sampled = [r for r in recs if r.status in SAMPLED_STATES]
    result = RerankResult(
        best=None, best_accuracy=None, m1=len(sampled), e1_total=sum(r.cost for r in sampled)
    )
    best_key: tuple[float, int] | None = None
    if order is None:
        chosen = top_k(sampled, k, by)
    else:
        by_number = {r.number: r for r in sampled if r.ok}
        chosen = [by_number[n] for n in order if n in by_number][:k]
    for rank, rec in enumerate(chosen):
        run = LongRun.coerce(train_fn(rec))
        ok = run.status == "ok" and run.accuracy is not None
        result.entries.append(
            RerankEntry(
                rec.number,
                rec.spec_hash,
                rec.score,
                rec.accuracy,
                run.accuracy,
                run.examples,
                "ok" if ok else "failed",
            )
        )
        result.m2 += 1
        result.e2_total += run.examples
        if ok and (best_key is None or (run.accuracy, -rank) > best_key):  # type: ignore[operator]
            best_key = (run.accuracy, -rank)  # type: ignore[assignment]
            result.best, result.best_accuracy = rec, run.accuracy
    return result


def make_train_fn(
    data: Any,
    budget: str = "mature",
    config: Any = None,
    *,
    width_mult: float = 1.0,
    device: Any = "auto",
    seed: int = 0,
    **train_overrides: Any,
) -> Callable[[CandidateRecord], LongRun]:
    """A ``train_fn`` for :func:`rerank` that builds the record's spec and trains it for
    ``budget`` (the validation accuracy of ``data.val`` is the re-ranking criterion).

    Weights are initialised under ``seed`` for every candidate (the caller's RNG untouched),
    so a candidate's long run does not depend on its rank or on the other candidates."""
    from tgsage.evaluate import build_candidate
    from tgsage.train import train_model

    def train(rec: CandidateRecord) -> LongRun:
        if not rec.spec:
            return LongRun(None, 0, "failed", "no_spec")
        try:
            model, _ = build_candidate(rec.spec, data, width_mult, seed=seed)
        except (SpecError, InputError) as exc:
            return LongRun(None, 0, "failed", f"invalid_architecture: {exc}")
        res = train_model(model, data, budget, config, device=device, seed=seed, **train_overrides)
        return LongRun(res.val_accuracy, res.examples, res.status, res.failure_reason)

    return train


# ---------------------------------------------------------------------- a stored search
def rerank_settings(
    config: Any,
    *,
    preset: str | None = None,
    width_mult: float | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """How a search's candidates are trained longer: its own preset, ``train_options``, width,
    device, seed and data unless overridden (an explicit ``preset`` drops its train_options)."""
    from tgsage.search.config import SPACE_PRESETS

    return {
        "preset": preset
        if preset is not None
        else (config.train or SPACE_PRESETS.get(config.space)),
        "train_options": {} if preset is not None else dict(config.train_options),
        "width_mult": width_mult if width_mult is not None else config.width_mult,
        "device": device if device is not None else config.device,
        "seed": config.seed,
        "data": {"name": config.data.name, **config.data.options},
    }


def rerank_search(
    run: SearchRun,
    k: int = 10,
    budget: str = "mature",
    *,
    preset: str | None = None,
    width_mult: float | None = None,
    device: str | None = None,
    out: Path | None = None,
    observer: Observer | None = None,
) -> RerankResult:
    """Re-rank a stored search (:func:`tgsage.search.locate.resolve_run`): train its top ``k``
    for ``budget`` on its own data and settings (see :func:`rerank_settings`), and write the
    result to ``out`` (default ``<run_dir>/rerank.json``). ``observer`` sees each training."""
    from tgsage.data.registry import get_dataset
    from tgsage.experiments.records import records_from_study
    from tgsage.train import get_preset

    if k < 1:
        raise InputError(f"rerank: k must be >= 1, got {k}")
    observer = observer or Observer()
    cfg = run.config
    records = records_from_study(run.study)
    if not any(x.ok and x.score is not None for x in records):
        raise InputError(f"study {cfg.name!r} has no scored candidates to re-rank yet")
    settings = rerank_settings(cfg, preset=preset, width_mult=width_mult, device=device)
    train_cfg = get_preset(settings["preset"], **settings["train_options"])
    data = get_dataset(cfg.data.name, **cfg.data.options)
    try:
        total: int | None = train_cfg.examples_for(budget, len(data.train))
    except ConfigError:  # the trainer reports a bad budget itself, per candidate
        total = None

    def train(rec: CandidateRecord) -> LongRun:
        with observer.training(f"trial {rec.number}", total) as cb:
            fn = make_train_fn(
                data,
                budget,
                train_cfg,
                width_mult=settings["width_mult"],
                device=settings["device"],
                seed=cfg.seed,
                **({"progress": cb} if cb is not None else {}),
            )
            return fn(rec)

    order = None
    if cfg.cascade is not None:  # rung scores (a proxy, P after 1 epoch, ...) do not compare
        from tgsage.search.cascade import cascade_state, make_plan

        plan = make_plan(cfg.cascade, cfg.n_candidates, cfg.score)
        state = cascade_state(run.study.get_trials(deepcopy=False), plan, cfg.max_retries)
        order = [n for _, _, n in state.ranked]
    result = rerank(records, k, train, order=order)
    payload = rerank_payload(result, budget=budget, k=k, study=cfg.name, settings=settings)
    write_json(out if out is not None else run.run_dir / RERANK_FILE, payload)
    return result


def rerank_payload(
    result: RerankResult, *, budget: str, k: int, study: str, settings: dict[str, Any]
) -> dict[str, Any]:
    """What ``rerank.json`` holds: the chosen spec, each candidate's longer run, the cost."""
    best = result.best
    chosen = None
    if best is not None:
        chosen = {
            "trial": best.number,
            "spec_hash": best.spec_hash,
            "spec": json.loads(best.spec) if best.spec else None,
            "score": best.score,
            "premature_accuracy": best.accuracy,
            "accuracy": result.best_accuracy,
        }
    cost = {
        "M1": result.m1,
        "E1": result.e1,
        "E1_total": result.e1_total,
        "M2": result.m2,
        "E2": result.e2,
        "E2_total": result.e2_total,
        "total": result.total,
    }
    return plain_json(
        {
            "study": study,
            "budget": budget,
            "k": k,
            "settings": settings,
            "chosen": chosen,
            "candidates": [asdict(e) for e in result.entries],
            "cost": cost,
        }
    )


def read_rerank(path: Path, records: Iterable[Any]) -> RerankResult:
    """A RerankResult from ``rerank.json`` (its chosen trial looked up in ``records``)."""
    try:
        data = json.loads(path.read_text())
        cost, chosen = data["cost"], data.get("chosen")
        entries = [RerankEntry(**e) for e in data["candidates"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"{path} is not a rerank result written by `tgsage rerank` ({exc}); "
            "delete it or run `tgsage rerank` again"
        ) from None
    best = None
    if chosen is not None:
        by_number = {r.number: r for r in as_candidate_records(records)}
        best = by_number.get(chosen["trial"]) or CandidateRecord(
            number=chosen["trial"], spec_hash=chosen.get("spec_hash"), score=chosen.get("score")
        )
    return RerankResult(
        best=best,
        best_accuracy=None if chosen is None else chosen["accuracy"],
        entries=entries,
        m1=int(cost["M1"]),
        e1_total=int(cost["E1_total"]),
        m2=int(cost["M2"]),
        e2_total=int(cost["E2_total"]),
    )


# ---------------------------------------------------------------------- what a search found
@dataclass(frozen=True)
class BestCandidate:
    """The architecture a search found: its re-ranking's choice when ``rerank.json`` chose
    one, else a cascade's answer (the best of its last rung), else its highest-scoring
    completed candidate (ties: the lower trial number)."""

    spec: Any  # an ArchSpec
    source: str  # "rerank", "cascade" or "search"
    number: int | None
    score: float | None
    run_dir: Path
    search_config: Any = None

    @property
    def origin(self) -> str:
        return f"{self.source} of {self.run_dir} (trial {self.number})"


def _cascade_answer(run: Any, path: Path) -> BestCandidate:
    from tgsage.search.cascade import answer_trial, make_plan
    from tgsage.spaces.specs import spec_from_json

    cfg = run.config
    plan = make_plan(cfg.cascade, cfg.n_candidates, cfg.score)
    trial = answer_trial(run.study.get_trials(deepcopy=False), plan, cfg.max_retries)
    if trial is None:
        raise ConfigError(
            f"{path}: the cascade has not settled its last rung yet; run the same search "
            "command again to finish it"
        )
    return BestCandidate(
        spec_from_json(trial.user_attrs["spec"]), "cascade", trial.number, trial.value, path, cfg
    )


def best_candidate(run_dir: str | Path) -> BestCandidate:
    """The best candidate of the search whose run folder is ``run_dir`` (what ``train_final``
    trains when given a search)."""
    from tgsage.experiments.records import records_from_study
    from tgsage.search.locate import resolve_run
    from tgsage.spaces.specs import spec_from_dict, spec_from_json

    path = Path(run_dir)
    run = resolve_run(str(path))
    rerank_path = path / RERANK_FILE
    if rerank_path.is_file():
        try:
            chosen = json.loads(rerank_path.read_text()).get("chosen")
        except (OSError, ValueError, AttributeError) as exc:
            raise InputError(
                f"{rerank_path} is not a rerank result written by `tgsage rerank` ({exc}); "
                "delete it or run `tgsage rerank` again"
            ) from None
        if chosen and chosen.get("spec"):
            return BestCandidate(
                spec_from_dict(chosen["spec"]),
                "rerank",
                chosen.get("trial"),
                chosen.get("score"),
                path,
                run.config,
            )
    if run.config.cascade is not None:  # scores of different rungs do not compare
        return _cascade_answer(run, path)
    top = top_k(records_from_study(run.study), 1)
    if not top:
        raise ConfigError(f"{path}: the search has no completed candidate yet; nothing to train")
    best = top[0]
    if not best.spec:
        raise InputError(f"{path}: trial {best.number} carries no spec")
    return BestCandidate(
        spec_from_json(best.spec), "search", best.number, best.score, path, run.config
    )
