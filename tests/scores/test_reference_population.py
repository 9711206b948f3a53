"""A search's reference population (``tgsage.scores.reference``): undefined values, the cache."""

from __future__ import annotations

import math

import pytest

from tgsage.errors import InputError
from tgsage.scores.reference import build_reference, reference_specs
from tgsage.spaces import get_space


def test_undefined_values_are_unmeasured_and_survive_the_cache(tmp_path) -> None:
    """A proxy undefined for some reference architectures (None, as a JSON cache stores NaN)
    is NaN (unmeasured) in the population, and the cached file gives back the same population without
    measuring again."""
    specs = reference_specs(get_space("nb201"), 6, seed=3)
    values = {s.spec_hash: float(i) for i, s in enumerate(specs)}
    undefined = {specs[1].spec_hash, specs[4].spec_hash}

    def measure(_i, spec):
        h = spec.spec_hash
        return {"a": None if h in undefined else values[h], "b": values[h]}

    cache = tmp_path / "reference.jsonl"
    pop = build_reference(specs, measure, ("a", "b"), cache=cache)
    a = pop.values["a"]
    assert [math.isnan(v) for v in a] == [s.spec_hash in undefined for s in specs]
    assert [v for v in a if not math.isnan(v)] == [0.0, 2.0, 3.0, 5.0]
    assert list(pop.values["b"]) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]

    def must_not_run(_i, _spec):
        raise AssertionError("measured again although cached")

    again = build_reference(specs, must_not_run, ("a", "b"), cache=cache)
    assert [math.isnan(v) for v in again.values["a"]] == [math.isnan(v) for v in a]
    assert list(again.values["b"]) == list(pop.values["b"])


def test_a_score_undefined_everywhere_is_refused() -> None:
    specs = reference_specs(get_space("nb201"), 3, seed=0)
    with pytest.raises(InputError, match="undefined .* for all 3 reference"):
        build_reference(specs, lambda _i, _s: {"a": None}, ("a",))
