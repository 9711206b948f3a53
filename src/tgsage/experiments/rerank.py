"""Re-ranking (paper 4.3): train a search's top-k longer, keep the best, account the cost.

The search's premature score only approximately predicts mature accuracy, so the top ``k``
distinct candidates by score are trained for a longer budget and the one with the best
longer-budget validation accuracy is chosen. The total cost of search plus re-ranking is the
paper's ``M1*E1 + M2*E2`` in examples processed by SGD, computed from what each run actually
processed: ``sum_i E1_i + sum_j E2_j`` (M1 candidates sampled by the search - failed ones
included, since they were trained too - and M2 = the re-ranked candidates).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from tgsage.errors import InputError, SpecError
from tgsage.experiments.records import CandidateRecord, as_candidate_records

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
) -> RerankResult:
    """Train the top ``k`` by ``by`` with ``train_fn`` and keep the best longer-run accuracy.

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
    for rank, rec in enumerate(top_k(sampled, k, by)):
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
