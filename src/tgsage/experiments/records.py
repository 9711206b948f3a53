"""Plain records the experiments and reports work on, and readers for them.

Two kinds of rows:

* :class:`CandidateRecord` - one candidate of a search (an Optuna trial, a row of a table):
  spec, P, TG, S_i, score, cost in examples, timings, status. ``records_from_study`` reads
  them from an Optuna study defensively (a missing user attribute becomes None), so the
  experiments never depend on the search engine's internals; ``as_candidate_records`` accepts
  plain dicts with the same keys (or the trial attribute names ``P``/``TG``).
* :class:`PoolRecord` - one architecture of a predictivity pool: P, TG and S_i measured at
  several premature budgets along one training run, then its mature accuracy. Stored as JSON
  lines (one record per line, appended and fsynced after each architecture).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from tgsage.candidate_record import from_record
from tgsage.errors import InputError
from tgsage.jsonl import append_jsonl, read_jsonl  # noqa: F401  (re-exported: public since 0.1)

# Old prefixes of per-layer S_i and zero-cost proxy names ("S:<layer>", "Z:<proxy>"); the
# score vocabulary (tgsage.scores) now spells them "S_<layer>" and "<proxy>" and reads both.
LAYER_PREFIX = "S:"
PROXY_PREFIX = "Z:"


def _num(value: Any) -> float | None:
    """A finite float or None (None, NaN, strings that are not numbers -> None)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _int(value: Any) -> int | None:
    x = _num(value)
    return None if x is None else int(x)


def _float_dict(value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping):
        return {}
    out = {}
    for k, v in value.items():
        x = _num(v)
        if x is not None:
            out[str(k)] = x
    return out


@dataclass
class CandidateRecord:
    """One search candidate as plain data (None = not measured / not recorded).

    ``status`` is "ok" (scored), "failed" (evaluated but failed: counts toward cost, never
    toward statistics) or another trial state in lower case ("running", "waiting", "pruned").
    ``order`` is the completion order key (a timestamp, else the trial number).
    """

    number: int
    status: str = "ok"
    spec: str | None = None
    spec_hash: str | None = None
    score: float | None = None
    accuracy: float | None = None  # P, premature validation accuracy (fraction)
    tg: float | None = None
    per_layer: dict[str, float] = field(default_factory=dict)
    similarity: list[list[float]] | None = None
    teacher_layers: list[str] | None = None
    candidate_layers: list[str] | None = None
    examples: int | None = None
    train_seconds: float | None = None
    score_seconds: float | None = None
    failure_reason: str | None = None
    mature_accuracy: float | None = None
    reused_from: int | None = None
    order: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def cost(self) -> int:
        return int(self.examples or 0)

    def value(self, name: str) -> float | None:
        """A numeric field by name: score, accuracy/P, tg/TG, mature_accuracy, S:<layer>..."""
        key = {"P": "accuracy", "TG": "tg", "p": "accuracy", "tg": "tg"}.get(name, name)
        for prefix in (LAYER_PREFIX, "S_"):
            if key.startswith(prefix):
                return self.per_layer.get(key[len(prefix) :])
        if key in _CANDIDATE_NUMERIC:
            return _num(getattr(self, key))
        return _num(self.extra.get(name))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_mapping(cls, row: Mapping[str, Any], number: int | None = None) -> CandidateRecord:
        """From a plain dict using either our field names or the stored record names
        (:mod:`tgsage.candidate_record`, older names included)."""
        row = from_record(row)
        known = {f.name for f in fields(cls)}
        aliases = {
            "P": "accuracy",
            "TG": "tg",
            "value": "score",
            "state": "status",
            "datetime_complete": "order",
        }
        data: dict[str, Any] = {}
        extra: dict[str, Any] = dict(row.get("extra") or {})
        for k, v in row.items():
            key = aliases.get(k, k)
            if key == "extra":
                continue
            if key in known:
                data.setdefault(key, v)
            else:
                extra[k] = v
        num = data.get("number", number)
        rec = cls(number=int(num) if num is not None else 0)
        rec.status = str(data.get("status") or "ok").lower()
        if rec.status == "complete":
            rec.status = "ok"
        elif rec.status == "fail":
            rec.status = "failed"
        for k in ("spec", "spec_hash", "failure_reason"):
            v = data.get(k)
            rec.__setattr__(k, None if v is None else str(v) if k != "spec" else _spec_text(v))
        for k in _CANDIDATE_NUMERIC:
            setattr(rec, k, _num(data.get(k)))
        rec.examples = _int(data.get("examples"))
        rec.reused_from = _int(data.get("reused_from"))
        rec.order = _order(data.get("order"))
        rec.per_layer = _float_dict(data.get("per_layer"))
        rec.similarity = _matrix(data.get("similarity"))
        rec.teacher_layers = _names(data.get("teacher_layers"))
        rec.candidate_layers = _names(data.get("candidate_layers"))
        rec.extra = extra
        return rec


_CANDIDATE_NUMERIC = (
    "score",
    "accuracy",
    "tg",
    "train_seconds",
    "score_seconds",
    "mature_accuracy",
)


def _spec_text(spec: Any) -> str | None:
    if spec is None:
        return None
    if isinstance(spec, str):
        return spec
    if hasattr(spec, "to_json"):
        return str(spec.to_json())
    if isinstance(spec, Mapping):
        return json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return None


def _order(value: Any) -> float | None:
    if value is None:
        return None
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    return _num(value)


def _matrix(value: Any) -> list[list[float]] | None:
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        return None
    try:
        rows = [[float(x) for x in row] for row in value]
    except (TypeError, ValueError):
        return None
    return rows if len({len(r) for r in rows}) == 1 else None


def _names(value: Any) -> list[str] | None:
    if not isinstance(value, Sequence) or isinstance(value, str):
        return None
    return [str(v) for v in value]


def as_candidate_records(table: Iterable[Any]) -> list[CandidateRecord]:
    """CandidateRecords from records, dicts or objects with ``as_dict()`` (row i -> number i)."""
    out = []
    for i, row in enumerate(table):
        if isinstance(row, CandidateRecord):
            out.append(row)
        elif isinstance(row, Mapping):
            out.append(CandidateRecord.from_mapping(row, number=i))
        elif hasattr(row, "as_dict"):
            out.append(CandidateRecord.from_mapping(row.as_dict(), number=i))
        else:
            raise InputError(
                f"row {i}: expected a CandidateRecord or a dict, got {type(row).__name__}"
            )
    return out


def records_from_study(study: Any) -> list[CandidateRecord]:
    """One CandidateRecord per trial of an Optuna study (any storage), in trial order.

    Reads ``trial.value`` as the score (falling back to the ``score`` user attribute) and the
    candidate's record (:mod:`tgsage.candidate_record`: ``P`` into ``accuracy``, ``TG`` into
    ``tg``, ``per_layer``, ``similarity``, ``examples``, timings, ``failure_reason``, ...; the
    rest, e.g. ``params``, into ``extra``), ``spec``, ``spec_hash``, ``reused_from`` and (if a
    later step stored it) ``mature_accuracy``; anything missing becomes None. COMPLETE -> "ok", FAIL -> "failed",
    other states in lower case. Slots handed back unevaluated (``surplus``) are left out.
    """
    out = []
    for t in study.get_trials(deepcopy=False):
        attrs = dict(getattr(t, "user_attrs", {}) or {})
        if attrs.get("surplus"):
            continue
        row = {k: v for k, v in attrs.items()}
        state = getattr(getattr(t, "state", None), "name", "complete")
        row["status"] = state
        value = getattr(t, "value", None) if state == "COMPLETE" else None
        row["score"] = value if value is not None else attrs.get("score")
        complete = getattr(t, "datetime_complete", None)
        row["order"] = complete if complete is not None else None
        rec = CandidateRecord.from_mapping(row, number=t.number)
        rec.number = int(t.number)
        if rec.order is None and rec.status in ("ok", "failed"):
            rec.order = float(rec.number)
        out.append(rec)
    return out


# ---------------------------------------------------------------------- predictivity pool
@dataclass
class BudgetPoint:
    """Measurements of one architecture after a premature budget (totals since the start)."""

    budget: str
    steps: int
    examples: int
    epochs: float
    accuracy: float | None  # P
    tg: float | None = None
    per_layer: dict[str, float] = field(default_factory=dict)
    train_seconds: float = 0.0
    score_seconds: float = 0.0
    # sums of the per-step training losses: all steps so far, and the last epoch's worth
    loss_sum: float | None = None
    loss_last_epoch: float | None = None
    loss_steps: int = 0
    # S_i of every teacher and comparison: {teacher: {comparison: {teacher layer: S_i}}};
    # ``tg``/``per_layer`` above repeat the record's first teacher's RDM-Pearson values
    guidance: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)


@dataclass
class PoolRecord:
    """One architecture of a predictivity pool: premature points, then mature accuracy."""

    spec_hash: str
    spec: str
    status: str = "ok"
    points: list[BudgetPoint] = field(default_factory=list)
    mature_budget: str | None = None
    mature_accuracy: float | None = None
    mature_examples: int | None = None
    mature_steps: int | None = None
    params: int | None = None
    seconds: float = 0.0
    failure_reason: str | None = None
    message: str | None = None
    index: int = 0  # position in the pool (tie-break order)
    seed: int = 0
    proxies: dict[str, float] = field(default_factory=dict)  # zero-cost proxies at init
    mature_source: str = "trained"  # or "table": mature accuracy read from a benchmark table
    default_teacher: str | None = None  # whose guidance TG / S_i are when several were measured

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def budgets(self) -> list[str]:
        return [p.budget for p in self.points]

    def point(self, budget: str) -> BudgetPoint | None:
        for p in self.points:
            if p.budget == budget:
                return p
        return None

    @property
    def teachers(self) -> list[str]:
        """Names of the teachers measured on this record, the default first."""
        seen: dict[str, None] = {}
        for p in self.points:
            default = self._default_teacher(p)
            if default is not None:
                seen.setdefault(default, None)
            seen.update(dict.fromkeys(sorted(p.guidance)))
        return list(seen)

    def scores_at(self, budget: str, teacher: str | None = None) -> dict[str, float]:
        """Every base score (:mod:`tgsage.scores.names`) measured at ``budget``, by its
        canonical name: P, TG, S_<layer>, the TG variants, SoTL, SoTL-E, P-slope and the
        zero-cost proxies (those at any budget). ``teacher``: whose guidance (default: the
        first). Values that are not finite numbers are left out, except -inf proxies."""
        from tgsage.scores.names import layer_name, tg_name

        out: dict[str, float] = {}
        for k, v in self.proxies.items():
            x = None if v is None else float(v)
            if x is not None and not math.isnan(x):
                out[k] = x
        p = self.point(budget)
        if p is None:
            return out
        put = {"P": _num(p.accuracy)}
        if p.loss_sum is not None:
            put["SoTL"] = _neg(p.loss_sum)
        if p.loss_last_epoch is not None:
            put["SoTL-E"] = _neg(p.loss_last_epoch)
        put["P-slope"] = self._p_slope(p)
        name = teacher if teacher is not None else self._default_teacher(p)
        guidance = p.guidance.get(name) if name is not None else None
        if teacher is not None and guidance is None:
            if teacher in self.teachers or not self.teachers:
                guidance = {}
            else:
                raise InputError(
                    f"teacher {teacher!r} was not measured; this record has {self.teachers}"
                )
        if guidance is None:  # records without per-teacher guidance: the one teacher's TG
            guidance = {"pearson": dict(p.per_layer)} if p.per_layer else {}
            if not p.per_layer and p.tg is not None:
                put["TG"] = _num(p.tg)
        for comparison, per_layer in guidance.items():
            vals = [_num(v) for v in per_layer.values()]
            if per_layer and all(v is not None for v in vals):
                put[tg_name(comparison)] = float(np.mean(vals))  # type: ignore[arg-type]
                put[tg_name(comparison, deep=True)] = vals[-1]  # type: ignore[assignment]
            for layer, v in per_layer.items():
                put[layer_name(layer, comparison)] = _num(v)
        out.update({k: v for k, v in put.items() if v is not None})
        return out

    def _default_teacher(self, p: BudgetPoint) -> str | None:
        """The teacher whose RDM-Pearson S_i the point's ``per_layer`` repeats (records store
        guidance in a JSON object, whose order is not kept)."""
        if self.default_teacher is not None or not p.guidance:
            return self.default_teacher
        for name, g in p.guidance.items():
            if g.get("pearson") == p.per_layer:
                return name
        return next(iter(p.guidance))

    def _p_slope(self, upto: BudgetPoint) -> float | None:
        """Least-squares slope of P vs examples (per 10,000) over points up to ``upto``."""
        pts = [
            (q.examples, q.accuracy)
            for q in self.points
            if q.examples <= upto.examples and _num(q.accuracy) is not None
        ]
        xs = np.array([e for e, _ in pts], dtype=np.float64) / 1e4
        if len(pts) < 2 or np.ptp(xs) == 0:
            return None
        ys = np.array([a for _, a in pts], dtype=np.float64)
        return float(np.polyfit(xs, ys, 1)[0])

    def value(self, budget: str, score: str, alpha: float = 1.0) -> float | None:
        """One score at a budget: a base name (``P``, ``TG``, ``S_<layer>``, ``SoTL``,
        ``synflow`` ...; old spellings ``S:<layer>``, ``Z:<proxy>`` too) or an expression
        without population terms (``P+TG`` is ``P + alpha*TG``); see :mod:`tgsage.scores`."""
        from tgsage.scores import Population, evaluate, parse_score

        expr = parse_score(score, alpha=alpha)
        if expr.population:
            raise InputError(
                f"score {score!r} ranks architectures among others; use predictivity_table"
            )
        values = self.scores_at(budget)
        if not expr.names or any(n not in values for n in expr.names):
            if expr.is_base() or all(n in _KNOWN_FIXED or n in values for n in expr.names):
                return None
            missing = [n for n in expr.names if n not in values]
            raise InputError(
                f"unknown score {missing[0]!r}; measured here: {sorted(values) or 'none'}"
            )
        return _num(evaluate(expr, Population.from_rows([values]))[0])

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PoolRecord:
        known = {f.name for f in fields(cls)}
        body = {k: v for k, v in data.items() if k in known and k != "points"}
        body["proxies"] = {
            k: float(v) if v is not None else math.nan
            for k, v in (body.get("proxies") or {}).items()
        }
        pfields = {f.name for f in fields(BudgetPoint)}
        points = [
            BudgetPoint(**{k: v for k, v in p.items() if k in pfields})
            for p in data.get("points", [])
        ]
        return cls(points=points, **body)


def _neg(x: Any) -> float | None:
    v = _num(x)
    return None if v is None else -v


_KNOWN_FIXED = frozenset({"P", "TG", "SoTL", "SoTL-E", "P-slope", "TG-cka", "TG-rel", "TG-deep"})


def read_pool_records(path: str | Path) -> list[PoolRecord]:
    """PoolRecords stored by :func:`tgsage.experiments.run_predictivity` (the last one per
    architecture and training seed)."""
    by_key: dict[tuple[str, int], PoolRecord] = {}
    for row in read_jsonl(path):
        rec = PoolRecord.from_dict(row)
        by_key[(rec.spec_hash, rec.seed)] = rec
    return list(by_key.values())
