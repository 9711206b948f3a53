"""Reference populations: how a search scores ONE candidate with a population-relative score.

``rank(x)``, ``meanrank``, ``logrank`` and fitted combiners compare a candidate with other
architectures. Inside a search the other candidates are a moving target (each worker sees a
different history, and a rank among those seen so far drifts as the search goes on), so a
search compares every candidate with one fixed *reference population*: ``n`` architectures
drawn from the space with the search seed, measured once with exactly the candidate's
measurement (the base scores the expression's population terms read) and cached in the run
folder as JSON lines, one architecture per line, so a crashed build resumes and every worker
of the search shares the same reference.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tgsage.errors import InputError
from tgsage.scores.population import Population

Measure = Callable[[Any], Mapping[str, float]]


def reference_specs(space: Any, n: int, seed: int) -> list[Any]:
    """The ``n`` seeded random architectures of a search's reference (the same ones the first
    rank(proxy) searches used, so their cached values stay valid)."""
    rng = np.random.default_rng([seed, 0x5EED])
    return [space.random_spec(rng) for _ in range(n)]


def build_reference(
    specs: list[Any],
    measure: Callable[[int, Any], Mapping[str, float]],
    names: tuple[str, ...],
    *,
    cache: Path | None = None,
    targets: list[float | None] | None = None,
) -> Population:
    """Measure ``names`` on ``specs`` (``measure(i, spec) -> {name: value}``), reusing the cache.

    Rows whose cached values lack one of ``names`` are measured again. A value that is None
    (undefined, as JSON caches store NaN) counts as NaN: unmeasured, so that architecture is
    left out of that name's ranks. A name undefined for every reference architecture is
    refused: nothing could be ranked against it.
    """
    done: dict[str, dict[str, float]] = {}
    if cache is not None and cache.is_file():
        for line in cache.read_text().splitlines():
            try:
                row = json.loads(line)
                done[str(row["spec_hash"])] = {k: _number(v) for k, v in row["values"].items()}
            except (ValueError, KeyError, TypeError, AttributeError):
                continue  # a torn line: measured again
    rows = []
    for i, spec in enumerate(specs):
        have = done.get(spec.spec_hash)
        if have is None or any(n not in have for n in names):
            have = {k: _number(v) for k, v in measure(i, spec).items()}
            if cache is not None:
                from tgsage.jsonl import append_jsonl

                append_jsonl(cache, {"spec_hash": spec.spec_hash, "values": have})
        rows.append(have)
    pop = Population.from_rows(rows, specs=specs, target=targets)
    for name in names:
        col = pop.values.get(name)
        if col is None or all(math.isnan(v) for v in col):
            raise InputError(
                f"score {name!r} was undefined (NaN) for all {len(specs)} reference "
                "architectures; choose another score"
            )
    return pop


def _number(value: Any) -> float:
    """A measured value as a float; None (undefined) is NaN."""
    return math.nan if value is None else float(value)


def reference_path(run_dir: Path, names: tuple[str, ...], n: int, seed: int) -> Path:
    """Where a search caches its reference population (one file per set of names)."""
    key = "_".join(sorted(names)) or "none"
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in key)[:80]
    return Path(run_dir) / f"reference_{safe}_n{n}_seed{seed}.jsonl"


__all__ = ["Measure", "build_reference", "reference_path", "reference_specs"]
