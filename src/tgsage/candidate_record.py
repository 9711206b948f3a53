"""One stored candidate: the names an evaluation result is recorded under, everywhere.

The search engine writes each candidate into an Optuna trial's user attributes, and the
experiments and reports read them back; both go through this module, so a field has one name
on disk whatever wrote it:

=====================  ===================================================================
``P`` ``TG``           premature accuracy (a fraction) and teacher guidance
``score``              the candidate's score (any :mod:`tgsage.scores` expression)
``scores``             every base score measured, by its :mod:`tgsage.scores` name
``per_layer``          S_i per teacher layer; ``best_match`` the candidate layer of each;
                       ``guidance`` S_i of every comparison measured ({comparison: {layer: S_i}})
``similarity``         teacher x candidate matrix (``teacher_layers`` x ``candidate_layers``)
``params``             parameter count
``proxies``            zero-cost proxies at initialisation; ``proxy_rank`` rank(proxy) in [0, 1]
``loss_sum`` ...       training-loss sums (SoTL): ``loss_steps``, ``epoch_loss_sums``,
                       ``epoch_loss_steps``
``no_path``            true when the input cannot reach the output (NAS-Bench-201 none cells)
``examples``           cost: examples processed by SGD (0 for a reused result); ``steps``
``train_seconds``      timings: also ``eval_seconds``, ``score_seconds``, ``proxy_seconds``
``device``             where it ran; ``amp`` the autocast dtype of training steps (absent:
                       float32), ``channels_last`` (absent: false)
``failure_reason``     why a candidate failed, with ``message``
=====================  ===================================================================

:func:`to_record` makes such a record from a
:class:`~tgsage.evaluate.CandidateResult` (whose Python attributes keep their names:
``accuracy`` is stored as ``P``, ``tg`` as ``TG``); :func:`from_record` reads one back,
accepting the names older records used (``params_count``, ``accuracy``, ``tg``), so searches
stored before this schema stay readable. The engine's own attributes (``spec``,
``spec_hash``, ``worker``, ``reused_from``, ...) are listed in :mod:`tgsage.search.records`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Measured fields: what a reused candidate copies from the original evaluation.
MEASURED = (
    "P",
    "TG",
    "score",
    "scores",
    "per_layer",
    "guidance",
    "best_match",
    "similarity",
    "teacher_layers",
    "candidate_layers",
    "params",
    "proxies",
    "proxy_rank",
    "loss_sum",
    "loss_steps",
    "epoch_loss_sums",
    "epoch_loss_steps",
    "no_path",
    "steps",
    "device",
    "amp",
    "channels_last",
)
#: Cost fields: zero for a reused candidate (nothing was trained for it).
COST = ("examples", "train_seconds", "eval_seconds", "score_seconds", "proxy_seconds")
FAILURE = ("failure_reason", "message")
RECORD_FIELDS = MEASURED + COST + FAILURE
#: Names older records used -> the one name.
ALIASES = {"params_count": "params", "accuracy": "P", "tg": "TG"}
#: CandidateResult attribute -> record name, where they differ.
_FROM_RESULT = {"accuracy": "P", "tg": "TG"}
MESSAGE_CHARS = 2000


def _present(value: Any) -> bool:
    """Stored at all: None, empty containers and False flags are left out."""
    return value is not None and value is not False and value != {} and value != []


def to_record(result: Any) -> dict[str, Any]:
    """The record of a :class:`~tgsage.evaluate.CandidateResult` (or any object with its
    attributes): measured fields, cost, and for a failed one its reason and message. The score
    is recorded only for a successful result."""
    ok = bool(getattr(result, "ok", True))
    out: dict[str, Any] = {}
    for attr in (*_FROM_RESULT, *RECORD_FIELDS):
        name = _FROM_RESULT.get(attr, attr)
        if attr in ("P", "TG") or (name == "score" and not ok):
            continue
        value = getattr(result, attr, None)
        if _present(value) and (attr != "loss_steps" or value):
            out[name] = value
    if ok:
        out.pop("failure_reason", None)
        out.pop("message", None)
    else:
        out["failure_reason"] = out.get("failure_reason") or "failed"
        out["message"] = str(out.get("message") or "")[:MESSAGE_CHARS]
    return out


def from_record(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """A stored record with every field under its one name (older names read as aliases; the
    current name wins when both are present). Other keys pass through unchanged."""
    out = {ALIASES.get(k, k): v for k, v in attrs.items() if k not in ALIASES}
    for old, new in ALIASES.items():
        if old in attrs and new not in out:
            out[new] = attrs[old]
    return out


def reused_record(original: Mapping[str, Any], number: int) -> dict[str, Any]:
    """The record of a candidate whose spec was already evaluated in trial ``number``: the
    measured fields of that ``original`` record, zero cost, and ``reused_from``."""
    measured = from_record(original)
    out = {k: measured[k] for k in MEASURED if k in measured}
    out.update(dict.fromkeys(COST, 0.0), examples=0, reused_from=number)
    return out


__all__ = [
    "ALIASES",
    "COST",
    "MEASURED",
    "RECORD_FIELDS",
    "from_record",
    "reused_record",
    "to_record",
]
