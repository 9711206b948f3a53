"""Specs: canonical JSON round trip, hash stability, normalisation, one clear error per field."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tgsage.errors import SpecError
from tgsage.spaces import (
    Block,
    Cell,
    CellSpec,
    ConvLayer,
    LayerSpec,
    get_cell_preset,
    get_space,
    spec_from_json,
)

SPACES = [("layer", {"max_layers": 20}), ("cell", {}), ("cell", {"separate_reduction": True})]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), which=st.sampled_from(range(len(SPACES))))
def test_json_round_trip_is_exact(seed: int, which: int) -> None:
    name, kw = SPACES[which]
    spec = get_space(name, **kw).random_spec(seed)
    text = spec.to_json()
    back = spec_from_json(text)
    assert back == spec
    assert back.to_json() == text
    assert back.spec_hash == spec.spec_hash
    # canonical: equal to a re-dump with sorted keys and no whitespace
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    assert spec.spec_hash == hashlib.sha256(text.encode()).hexdigest()[:16]


def test_hash_is_stable_across_versions() -> None:
    """A fixed spec's hash is pinned: changing it would orphan every cached result."""
    spec = LayerSpec((ConvLayer(32, 3, 3, 1, "relu", "batchnorm", (-1,)),))
    assert spec.to_json() == (
        '{"kind":"layer","layers":[{"activation":"relu","filters":32,"inputs":[-1],'
        '"kernel_h":3,"kernel_w":3,"norm":"batchnorm","stride":1}]}'
    )
    assert spec.spec_hash == hashlib.sha256(spec.to_json().encode()).hexdigest()[:16]


def test_same_layer_architecture_written_two_ways_hashes_the_same() -> None:
    a = json.loads(get_space("layer", max_layers=5).random_spec(3).to_json())
    a["layers"].append(
        {
            "filters": 64,
            "kernel_h": 5,
            "kernel_w": 1,
            "stride": 2,
            "activation": "identity",
            "norm": "none",
            "inputs": [0, -1, 0],
        }
    )
    b = json.loads(json.dumps(a))
    b["layers"][-1]["inputs"] = [-1, 0]  # reordered, duplicate dropped
    text_b = json.dumps(b, indent=2)  # other whitespace and key order
    sa, sb = spec_from_json(json.dumps(a)), spec_from_json(text_b)
    assert sa == sb and sa.spec_hash == sb.spec_hash


def test_same_cell_written_two_ways_hashes_the_same() -> None:
    cell1 = Cell(
        (Block(1, "sep_conv_3x3", 0, "identity"), Block(2, "max_pool_3x3", 0, "avg_pool_3x3"))
    )
    cell2 = Cell(
        (Block(0, "identity", 1, "sep_conv_3x3"), Block(0, "avg_pool_3x3", 2, "max_pool_3x3"))
    )
    a, b = CellSpec(cell1), CellSpec(cell2)
    assert a == b and a.spec_hash == b.spec_hash
    # optional fields at their defaults may be omitted
    d = json.loads(a.to_json())
    for k in ("num_cells", "filters", "stem_multiplier", "concat", "layout"):
        del d[k]
    del d["normal"]["concat_prev"]
    assert spec_from_json(json.dumps(d)).spec_hash == a.spec_hash
    # but a real difference changes the hash
    assert CellSpec(cell1, filters=48).spec_hash != a.spec_hash


def test_presets_round_trip() -> None:
    for name in ("nasnet_a", "pnasnet_5"):
        spec = get_cell_preset(name)
        assert spec_from_json(spec.to_json()) == spec


def _layer_json(**override) -> str:
    layer = {
        "filters": 32,
        "kernel_h": 3,
        "kernel_w": 3,
        "stride": 1,
        "activation": "relu",
        "norm": "none",
        "inputs": [-1],
    }
    layers = [layer, {**layer, "inputs": [0]}]
    layers[1].update(override)
    return json.dumps({"kind": "layer", "layers": layers})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_layer_json(kernel_h=4), "layers[1].kernel_h: 4 is not one of (1, 3, 5, 7)"),
        (_layer_json(filters=True), "layers[1].filters: True is not one of (32, 64, 128)"),
        (_layer_json(activation="gelu"), "layers[1].activation: 'gelu' is not one of"),
        (_layer_json(inputs=[1]), "layers[1].inputs: 1 is not -1 (the image) or an earlier"),
        (_layer_json(inputs=[]), "layers[1].inputs: empty"),
        (_layer_json(extra=1), "layers[1].extra: unknown field"),
        ('{"kind": "layer", "layers": [', "spec: not valid JSON"),
        ('{"kind": "resnet"}', "kind: 'resnet' is not one of"),
        ('{"kind": "layer"}', "spec.layers: missing"),
        ('{"kind": "layer", "layers": []}', "layers: empty"),
        ("[1, 2]", "spec: expected a JSON object"),
    ],
)
def test_invalid_layer_specs_name_the_field(text: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        spec_from_json(text)
    assert message in str(info.value)


def _cell_json(block: dict | None = None, **top) -> str:
    blocks = [{"input_a": 0, "op_a": "identity", "input_b": 1, "op_b": "sep_conv_3x3"}]
    blocks.append(block or {"input_a": 2, "op_a": "max_pool_3x3", "input_b": 1, "op_b": "identity"})
    return json.dumps({"kind": "cell", "normal": {"blocks": blocks}, **top})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            _cell_json({"input_a": 3, "op_a": "identity", "input_b": 0, "op_b": "identity"}),
            "normal.blocks[1].input_b: 3 is out of range (must be in [0, 2])",
        ),
        (
            _cell_json({"input_a": 0, "op_a": "conv_9x9", "input_b": 0, "op_b": "identity"}),
            "normal.blocks[1].op_a: 'conv_9x9' is not one of",
        ),
        (
            _cell_json({"input_a": 0, "op_a": "identity", "input_b": 0}),
            "normal.blocks[1].op_b: missing",
        ),
        (_cell_json(num_cells=0), "num_cells: 0 is out of range"),
        (_cell_json(concat="some"), "concat: 'some' is not one of ('unused', 'all')"),
        (_cell_json(layout="resnet"), "layout: 'resnet' is not one of"),
    ],
)
def test_invalid_cell_specs_name_the_field(text: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        spec_from_json(text)
    assert message in str(info.value)


def test_spec_outside_the_space_is_refused() -> None:
    spec = get_space("layer", max_layers=20).sample(_Const({"num_layers": 15}))
    with pytest.raises(SpecError, match="max_layers=10"):
        get_space("layer", max_layers=10).spec_to_params(spec)
    with pytest.raises(SpecError, match="separate reduction"):
        get_space("cell").spec_to_params(get_cell_preset("nasnet_a"))
    with pytest.raises(SpecError, match="kind"):
        get_space("cell").coerce(spec)


class _Const:
    """Suggester answering from a dict, else the first option."""

    def __init__(self, answers: dict) -> None:
        self.answers = answers

    def suggest_categorical(self, name, choices):
        return self.answers.get(name, choices[0])
