"""Define-by-run choices: suggesters, Optuna, params inverse, mutation, controller tokens."""

from __future__ import annotations

from collections import Counter

import numpy as np
import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tgsage.errors import SpecError
from tgsage.spaces import (
    OPS,
    FixedSuggester,
    RandomSuggester,
    StepToken,
    get_space,
    list_spaces,
)

SPACE_ARGS = [
    ("layer", {"max_layers": 10}),
    ("layer", {"max_layers": 20}),
    ("cell", {}),
    ("cell", {"separate_reduction": True, "blocks": 3}),
]


def test_registry() -> None:
    assert set(list_spaces()) == {"layer", "cell", "nb201"}
    assert get_space("layer", max_layers=20).max_layers == 20
    with pytest.raises(SpecError, match="unknown space 'dag'; choose one of: cell, layer, nb201"):
        get_space("dag")
    with pytest.raises(SpecError, match="bad option for space 'cell'"):
        get_space("cell", colour="red")


def test_choice_names_are_flat_and_stable() -> None:
    layer = get_space("layer", max_layers=10)
    fixed = FixedSuggester({}, fallback=RandomSuggester(0))
    spec = layer.sample(fixed)
    names = [n for n, _ in fixed.asked]
    n = len(spec.layers)
    assert names[0] == "num_layers"
    expected = 1 + 6 * n + sum(i + 1 for i in range(1, n))  # image + i earlier layers, i >= 1
    assert len(names) == expected
    assert "layer0/in/image" not in names  # layer 0 always reads the image
    if n > 3:
        assert "layer3/in/layer1" in names and "layer3/filters" in names
    cell = get_space("cell", blocks=5)
    fixed = FixedSuggester({}, fallback=RandomSuggester(0))
    cell.sample(fixed)
    names = [n for n, _ in fixed.asked]
    assert len(names) == 5 * 4 + 2
    assert "cell/block2/op_a" in names
    assert dict(fixed.asked)["cell/block2/input_a"] == (0, 1, 2, 3)
    assert dict(fixed.asked)["cell/block2/op_a"] == OPS


def test_random_suggester_is_seeded_and_covers_options() -> None:
    space = get_space("cell")
    a = [space.random_spec(s).spec_hash for s in range(5)]
    assert a == [space.random_spec(s).spec_hash for s in range(5)]
    assert len(set(a)) == 5
    r = RandomSuggester(1)
    counts = Counter(r.suggest_categorical("x", ["a", "b", "c"]) for _ in range(3000))
    assert set(counts) == {"a", "b", "c"} and min(counts.values()) > 900


@pytest.mark.parametrize(("name", "kw"), SPACE_ARGS)
def test_params_inverse(name: str, kw: dict) -> None:
    space = get_space(name, **kw)
    for seed in range(20):
        rec = RandomSuggester(seed)
        spec = space.sample(rec)
        params = space.spec_to_params(spec)
        assert space.params_to_spec(params) == spec
        # what the suggester answered reproduces the same spec too
        assert space.params_to_spec(rec.params) == spec


def test_fixed_suggester_errors_name_the_choice() -> None:
    space = get_space("layer", max_layers=10)
    with pytest.raises(SpecError, match="num_layers: missing"):
        space.params_to_spec({})
    with pytest.raises(SpecError, match=r"num_layers: 11 is not one of"):
        space.params_to_spec({"num_layers": 11})
    params = space.spec_to_params(space.random_spec(0))
    with pytest.raises(SpecError, match="layer99/filters: not an active choice"):
        space.params_to_spec({**params, "layer99/filters": 32})


def test_optuna_trial_drives_both_spaces() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for name in ("layer", "cell"):
        space = get_space(name)
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=3))
        specs = []

        def objective(trial: optuna.Trial, space=space, specs=specs) -> float:
            spec = space.sample(trial)
            specs.append(spec)
            # the trial's params replay to the spec (they may differ from spec_to_params only
            # where two answers mean the same architecture: an empty input set, operand order)
            assert space.params_to_spec(trial.params) == spec
            assert set(trial.params) == set(space.spec_to_params(spec))
            return float(len(spec.to_json()))

        study.optimize(objective, n_trials=6)
        assert len(specs) == 6
        # TPE warm start: a spec's params can be enqueued and replayed exactly
        study.enqueue_trial(space.spec_to_params(specs[0]))
        study.optimize(objective, n_trials=1)
        assert specs[-1] == specs[0]


def _layer_diff(space, a, b) -> set[str]:
    pa, pb = space.spec_to_params(a), space.spec_to_params(b)
    return {k for k in pa.keys() & pb.keys() if pa[k] != pb[k] or type(pa[k]) is not type(pb[k])}


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_layer_mutation_changes_exactly_one_choice(seed: int) -> None:
    space = get_space("layer", max_layers=10)
    rng = np.random.default_rng(seed)
    spec = space.random_spec(rng)
    child = space.mutate(spec, rng)
    space.validate(child)
    assert child != spec
    diff = _layer_diff(space, spec, child)
    assert len(diff) == 1
    (name,) = diff
    if name == "num_layers":
        n = min(len(spec.layers), len(child.layers))
        assert child.layers[:n] == spec.layers[:n]  # surviving layers untouched


def _operands(spec, which: str) -> list[Counter]:
    cell = getattr(spec, which)
    return [Counter([(b.input_a, b.op_a), (b.input_b, b.op_b)]) for b in cell.blocks]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_cell_mutation_changes_exactly_one_operand_or_flag(seed: int) -> None:
    space = get_space("cell", separate_reduction=True)
    rng = np.random.default_rng(seed)
    spec = space.random_spec(rng)
    child = space.mutate(spec, rng)
    space.validate(child)
    changes = 0
    for which in ("normal", "reduction"):
        for old, new in zip(_operands(spec, which), _operands(child, which), strict=True):
            if old != new:
                (o,) = (old - new).elements()
                (n,) = (new - old).elements()
                assert (o[0] == n[0]) != (o[1] == n[1])  # input or op changed, not both
                changes += 1
        for flag in ("concat_prev", "concat_prev_prev"):
            changes += getattr(getattr(spec, which), flag) != getattr(getattr(child, which), flag)
    assert changes == 1


def test_mutation_is_uniform_over_choices() -> None:
    """Each active choice is picked about equally often (cell space: 10 choices for B=2:
    per block 2 inputs + 2 ops, plus 2 flags), told apart by the operand multisets."""
    space = get_space("cell", blocks=2)
    spec = space.random_spec(0)
    rng = np.random.default_rng(0)
    counts: Counter = Counter()
    for _ in range(1000):
        child = space.mutate(spec, rng)
        for b, (old, new) in enumerate(
            zip(_operands(spec, "normal"), _operands(child, "normal"), strict=True)
        ):
            if old != new:
                (o,) = (old - new).elements()
                (n,) = (new - old).elements()
                counts[f"block{b}/{'input' if o[0] != n[0] else 'op'}"] += 1
        for flag in ("concat_prev", "concat_prev_prev"):
            counts[flag] += spec.normal.__getattribute__(flag) != child.normal.__getattribute__(
                flag
            )
    expected = {
        "block0/input": 200,
        "block0/op": 200,
        "block1/input": 200,
        "block1/op": 200,
        "concat_prev": 100,
        "concat_prev_prev": 100,
    }
    assert sum(counts.values()) == 1000
    for key, e in expected.items():
        assert abs(counts[key] - e) < 4 * np.sqrt(e), (key, counts)


def test_layer_mutation_skips_the_empty_input_no_op() -> None:
    """Switching off a layer's only (image) connection gives the same spec: never chosen."""
    space = get_space("layer", max_layers=2)
    params = {"num_layers": 2, "layer1/in/image": True, "layer1/in/layer0": False}
    for h, opts in (
        ("filters", 32),
        ("kernel_h", 1),
        ("kernel_w", 1),
        ("stride", 1),
        ("activation", "relu"),
        ("norm", "none"),
    ):
        params[f"layer0/{h}"] = params[f"layer1/{h}"] = opts
    spec = space.params_to_spec(params)
    rng = np.random.default_rng(0)
    for _ in range(200):
        assert space.mutate(spec, rng) != spec


@pytest.mark.parametrize(("name", "kw"), SPACE_ARGS)
def test_encode_decode_round_trip(name: str, kw: dict) -> None:
    space = get_space(name, **kw)
    for seed in range(15):
        spec = space.random_spec(seed)
        tokens = space.encode(spec)
        assert space.decode(tokens) == spec
        steps = space.controller_steps(spec)
        assert len(steps) == len(tokens)
        for step, token in zip(steps, tokens, strict=True):
            assert len(step.heads) == len(token.choices)
            assert len(step.links) == len(token.links)


def test_layer_controller_steps_match_the_supplementary() -> None:
    space = get_space("layer", max_layers=10)
    spec = space.random_spec(5)
    n = len(spec.layers)
    steps = space.controller_steps(spec)
    assert len(steps) == n + 1  # step 0 = number of layers, then one per layer
    assert [h.name for h in steps[0].heads] == ["num_layers"]
    for i, step in enumerate(steps[1:]):
        assert [h.name for h in step.heads] == [
            "filters",
            "kernel_h",
            "kernel_w",
            "stride",
            "activation",
            "norm",
        ]
        # links to the image (step 0's state) and every earlier layer (step j + 1)
        assert [lk.source_step for lk in step.links] == ([] if i == 0 else list(range(i + 1)))
        token_links = space.encode(spec)[i + 1].links
        if i > 0:
            chosen = {
                lk.source_step - 1 for lk, on in zip(step.links, token_links, strict=True) if on
            }
            assert chosen == set(spec.layers[i].inputs)


def test_cell_controller_has_one_step_per_block() -> None:
    space = get_space("cell", blocks=5)
    steps = space.controller_steps(space.random_spec(0))
    assert [s.name for s in steps] == [f"cell/block{b}" for b in range(5)] + ["cell/output"]


def test_decode_rejects_bad_tokens() -> None:
    space = get_space("layer", max_layers=3)
    good = space.encode(space.random_spec(0))
    with pytest.raises(SpecError, match="out of range"):
        space.decode([StepToken((7,)), *good[1:]])
    with pytest.raises(SpecError, match="ends before step"):
        space.decode(good[:1])
    with pytest.raises(SpecError, match="past the last step"):
        space.decode([*good, good[-1]])
