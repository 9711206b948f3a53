"""Architecture specs as plain data: canonical JSON, a stable hash, strict field checks.

A spec is a frozen dataclass. Its JSON form has sorted keys and no whitespace, so the same
architecture always serialises to the same bytes; ``spec_hash`` (sha256 of that text) is what
the tracker uses to deduplicate candidates and cache results. Equivalent ways of writing an
architecture (input sets in another order, operands of a commutative add swapped, optional
fields left at their default) are normalised when the spec is constructed, so they compare and
hash equal.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

from tgsage.errors import SpecError

HASH_CHARS = 16


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace; refuses NaN/inf so the text is portable."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )


def same_value(a: Any, b: Any) -> bool:
    """Equality that does not confuse ``True`` with ``1`` (JSON and Python both would)."""
    return type(a) is type(b) and a == b


def check_choice(field: str, value: Any, options: Sequence[Any]) -> Any:
    """Return ``value`` if it is (type-strictly) one of ``options``, else raise SpecError."""
    if not any(same_value(value, o) for o in options):
        raise SpecError(f"{field}: {value!r} is not one of {tuple(options)!r}")
    return value


def check_int(field: str, value: Any, lo: int, hi: int | None = None) -> int:
    """An integer in ``[lo, hi]`` (``hi`` None: unbounded)."""
    if type(value) is not int:
        raise SpecError(f"{field}: {value!r} is not an integer")
    if value < lo or (hi is not None and value > hi):
        bound = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise SpecError(f"{field}: {value!r} is out of range (must be {bound})")
    return value


def check_keys(field: str, data: Any, required: set[str], optional: set[str] = frozenset()) -> None:
    """A JSON object with exactly the known keys."""
    if not isinstance(data, Mapping):
        raise SpecError(f"{field}: expected a JSON object, got {type(data).__name__}")
    missing = sorted(required - data.keys())
    if missing:
        raise SpecError(f"{field}.{missing[0]}: missing")
    unknown = sorted(data.keys() - required - optional)
    if unknown:
        raise SpecError(f"{field}.{unknown[0]}: unknown field")


def check_list(field: str, value: Any) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise SpecError(f"{field}: expected a list, got {type(value).__name__}")
    return list(value)


class ArchSpec:
    """Mixin for spec dataclasses: ``to_json`` / ``from_json`` / ``spec_hash``."""

    kind: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        raise NotImplementedError

    def to_json(self) -> str:
        return canonical_json({"kind": self.kind, **self.to_dict()})

    @classmethod
    def from_json(cls, text: str | bytes) -> Self:
        spec = spec_from_json(text)
        if not isinstance(spec, cls):
            raise SpecError(f"kind: expected {cls.kind!r}, got {spec.kind!r}")
        return spec

    @property
    def spec_hash(self) -> str:
        """Short hex sha256 of the canonical JSON: stable across runs, machines and versions."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:HASH_CHARS]

    @property
    def has_path(self) -> bool:
        """Whether the input reaches the output: True unless the space can cut every path (as
        NAS-Bench-201's ``none`` edges can); such a network's output ignores its input."""
        return True


SPEC_KINDS: dict[str, type[ArchSpec]] = {}


def register_spec(cls: type[ArchSpec]) -> type[ArchSpec]:
    SPEC_KINDS[cls.kind] = cls
    return cls


def spec_from_dict(data: Any) -> ArchSpec:
    """Build whichever spec ``data["kind"]`` names."""
    if not isinstance(data, Mapping):
        raise SpecError(f"spec: expected a JSON object, got {type(data).__name__}")
    kind = data.get("kind")
    if kind not in SPEC_KINDS:
        raise SpecError(f"kind: {kind!r} is not one of {tuple(sorted(SPEC_KINDS))!r}")
    body = {k: v for k, v in data.items() if k != "kind"}
    return SPEC_KINDS[kind].from_dict(body)


def spec_from_json(text: str | bytes) -> ArchSpec:
    """Parse a spec written by ``to_json`` (or by hand); bad JSON raises SpecError."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as exc:
        raise SpecError(f"spec: not valid JSON ({exc})") from None
    return spec_from_dict(data)
