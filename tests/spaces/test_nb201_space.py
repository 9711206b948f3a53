"""NAS-Bench-201 space: arch strings, the built network against published counts, the space.

Published numbers used as oracles (NAS-Bench-201 benchmark file NAS-Bench-201-v1_1-096897,
``params`` in MB = 1e6 parameters and ``flop`` in MFLOPs, min / max over all 15,625 cells, as
tabulated from the file in public code, e.g. HPOBench/EvoXBench NB201 loaders): CIFAR-10
0.073306 / 1.531546 params and 7.78305 / 220.11969 MFLOPs; CIFAR-100 0.079156 / 1.537396;
ImageNet16-120 0.080456 / 1.538696. 6466 cells are unique up to isomorphism (Ning et al., "A
Surgery of the Neural Architecture Evaluators", 2021, Sec. 6.2: "6466 unique structures (out
of 15625) after de-isomorphism").
"""

from __future__ import annotations

import itertools

import numpy as np
import optuna
import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tgsage.errors import SpecError
from tgsage.features import FeatureNet
from tgsage.spaces import (
    NB201_OPS,
    FixedSuggester,
    NB201Net,
    NB201Space,
    NB201Spec,
    RandomSuggester,
    build_model,
    count_flops,
    count_params,
    get_space,
    list_spaces,
    spec_from_json,
)
from tgsage.spaces.nb201 import NUM_ARCHS, NB201Cell
from tgsage.spaces.pruning import skip_dead_work
from tgsage.strategies import get_strategy, run_strategy

optuna.logging.set_verbosity(optuna.logging.WARNING)
CELLS = st.tuples(*[st.sampled_from(NB201_OPS)] * 6)
EDGE_NAMES = ["edge1<-0", "edge2<-0", "edge2<-1", "edge3<-0", "edge3<-1", "edge3<-2"]


@pytest.fixture(autouse=True)
def _few_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def official_string(o: tuple[str, ...]) -> str:
    """The benchmark's format, written out by hand."""
    return f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|"


# ----- spec and arch strings -----


@settings(max_examples=60, deadline=None)
@given(ops=CELLS)
def test_arch_string_parses_and_round_trips(ops: tuple[str, ...]) -> None:
    text = official_string(ops)
    spec = NB201Spec.from_arch_string(text)
    assert spec.ops == ops
    assert spec.to_arch_string() == text
    assert str(spec) == text
    back = spec_from_json(spec.to_json())
    assert back == spec and back.spec_hash == spec.spec_hash
    assert NB201Spec.from_dict(spec.to_dict()) == spec


def test_published_strings_and_unique_strings() -> None:
    # two rows of the official NATS-Bench topology table: (arch_str, its UniqueString)
    rows = [
        (
            "|avg_pool_3x3~0|+|none~0|nor_conv_1x1~1|+|nor_conv_1x1~0|none~1|nor_conv_1x1~2|",
            "#+(#+((0)@avg_pool_3x3)@nor_conv_1x1)@nor_conv_1x1+(0)@nor_conv_1x1",
        ),
        (
            "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+|nor_conv_1x1~0|nor_conv_1x1~1|"
            "skip_connect~2|",
            "((0)@nor_conv_3x3)@nor_conv_1x1+((0)@nor_conv_3x3)@nor_conv_3x3+0+(0)@nor_conv_1x1",
        ),
    ]
    for text, unique in rows:
        spec = NB201Spec.from_arch_string(text)
        assert spec.to_arch_string() == text
        assert spec.isomorphism_key() == unique


def test_spec_hash_is_the_cell_and_distinct_over_the_space() -> None:
    specs = NB201Space.all_specs()
    assert len(specs) == 15625
    assert len({s.spec_hash for s in specs}) == 15625
    assert len({s.to_arch_string() for s in specs}) == 15625
    assert len(NB201Space.all_specs(unique=True)) == 6466  # published, see module doc
    a = NB201Spec(["nor_conv_3x3"] * 6)  # lists are normalised to tuples
    assert a.ops == ("nor_conv_3x3",) * 6
    assert (
        a.to_json()
        == '{"kind":"nb201","ops":'
        + str(["nor_conv_3x3"] * 6).replace("'", '"').replace(" ", "")
        + "}"
    )


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("|nor_conv_3x3~0|+|none~0|none~1|", "2 node group"),
        (
            "|conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|",
            "bad token 'conv_3x3~0'.*not one of",
        ),
        (
            "|none~0|+|none~1|none~0|+|none~0|none~1|none~2|",
            "bad token 'none~1'.*input 0 of node 2",
        ),
        ("|none~0|+|none~0|none~1|+|none~0|none~1|", "node 3 .* 2 edge"),
        ("|none~0|+none~0|none~1|+|none~0|none~1|none~2|", "must start and end with '\\|'"),
        ("|none0|+|none~0|none~1|+|none~0|none~1|none~2|", "bad token 'none0'"),
        ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|avg_pool_3x3~3|", "4 edge"),
        ("|none~0|+||+|none~0|none~1|none~2|", "node 2"),
    ],
)
def test_malformed_arch_strings_name_the_problem(text: str, match: str) -> None:
    with pytest.raises(SpecError, match=match):
        NB201Spec.from_arch_string(text)


def test_bad_specs_raise_spec_error() -> None:
    with pytest.raises(SpecError, match="5 ops given"):
        NB201Spec(("none",) * 5)
    with pytest.raises(SpecError, match=r"ops\[2\] \(edge2<-1\): 'sep_conv_3x3'"):
        NB201Spec(("none", "none", "sep_conv_3x3", "none", "none", "none"))
    with pytest.raises(SpecError, match="unknown field"):
        spec_from_json('{"kind":"nb201","ops":["none","none","none","none","none","none"],"x":1}')
    with pytest.raises(SpecError, match="expected a str"):
        NB201Spec.from_arch_string(3)  # type: ignore[arg-type]


# ----- the network -----

PER_STAGE_C = (16, 32, 64)


def expected_params(ops: tuple[str, ...], num_classes: int = 10, n: int = 5) -> int:
    """Hand count of the benchmark network (C=16): stem, 2 ResNet reductions, head, edges."""
    stem = 3 * 16 * 9 + 2 * 16
    reductions = sum(
        (cin * cout * 9 + 2 * cout) + (cout * cout * 9 + 2 * cout) + cin * cout
        for cin, cout in ((16, 32), (32, 64))
    )
    head = 2 * 64 + 64 * num_classes + num_classes
    per_edge = {
        "nor_conv_3x3": lambda c: 9 * c * c + 2 * c,
        "nor_conv_1x1": lambda c: c * c + 2 * c,
    }
    edges = sum(n * per_edge[op](c) for op in ops if op in per_edge for c in PER_STAGE_C)
    return stem + reductions + head + edges


def test_parameter_and_flop_counts_match_the_published_benchmark() -> None:
    largest = build_model(NB201Spec(("nor_conv_3x3",) * 6))
    assert count_params(largest) == 1_531_546  # published 1.531546 MB (CIFAR-10)
    # published 220.11969 MFLOPs also counts the classifier's 10 bias adds; we count mult-adds
    assert abs(count_flops(largest) - 220_119_690) <= 10
    for op in ("none", "skip_connect", "avg_pool_3x3"):
        smallest = build_model(NB201Spec((op,) * 6))
        assert count_params(smallest) == 73_306  # published 0.073306 MB
        assert abs(count_flops(smallest) - 7_783_050) <= 10  # published 7.78305 MFLOPs
    big = NB201Spec(("nor_conv_3x3",) * 6)
    small = NB201Spec(("none",) * 6)
    assert count_params(build_model(big, num_classes=100)) == 1_537_396
    assert count_params(build_model(small, num_classes=100)) == 79_156
    assert count_params(build_model(big, num_classes=120, input_shape=(3, 16, 16))) == 1_538_696
    assert count_params(build_model(small, num_classes=120)) == 80_456


@settings(max_examples=25, deadline=None)
@given(ops=CELLS, classes=st.sampled_from([10, 100, 120]))
def test_parameter_count_matches_the_hand_count(ops: tuple[str, ...], classes: int) -> None:
    assert count_params(build_model(NB201Spec(ops), num_classes=classes)) == expected_params(
        ops, classes
    )


def test_feature_names_and_shapes_at_32_and_16() -> None:
    spec = NB201Spec.from_arch_string(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|"
        "skip_connect~2|"
    )
    net = build_model(spec, num_classes=7)
    assert isinstance(net, FeatureNet)
    names = [f"cell{i}" for i in range(5)] + ["reduce1"] + [f"cell{i}" for i in range(5, 10)]
    names += ["reduce2"] + [f"cell{i}" for i in range(10, 15)]
    assert net.feature_names == tuple(names)
    for res in (32, 16):
        x = torch.randn(3, 3, res, res)
        logits, feats = net.forward_with_features(x)
        assert logits.shape == (3, 7) and list(feats) == names
        for name, t in feats.items():
            stage = 0 if name in names[:5] else 1 if name in names[5:11] else 2
            side = res // 2**stage
            assert t.shape == (3, PER_STAGE_C[stage], side, side), name
        loss = F.cross_entropy(logits, torch.tensor([0, 1, 2]))
        net.zero_grad()
        loss.backward()
        assert torch.isfinite(loss)
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
        assert torch.equal(net(x), net.forward_with_features(x)[0])


def test_small_builds_any_resolution_and_depth() -> None:
    spec = NB201Spec(
        ("nor_conv_3x3", "avg_pool_3x3", "skip_connect", "none", "nor_conv_1x1", "skip_connect")
    )
    net = NB201Net(spec, num_classes=4, in_channels=1, width_mult=0.25, num_cells=1)
    assert net.feature_names == ("cell0", "reduce1", "cell1", "reduce2", "cell2")
    for h, w in ((7, 9), (1, 1), (5, 5)):
        logits, feats = net.forward_with_features(torch.randn(2, 1, h, w))
        assert logits.shape == (2, 4)
        assert feats["cell2"].shape[1] == 16  # 4 * round(16 * 0.25)
        assert feats["reduce1"].shape[-2:] == ((h + 1) // 2, (w + 1) // 2)


def test_cell_computes_the_dag_sum_with_uncounted_padding() -> None:
    # parameter-free cell, checked against the node equations written out by hand
    spec = NB201Spec(
        ("skip_connect", "avg_pool_3x3", "skip_connect", "none", "avg_pool_3x3", "skip_connect")
    )
    cell = NB201Cell(spec, 3)
    x = torch.randn(2, 3, 5, 6)

    def pool(t: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(t, 3, stride=1, padding=1, count_include_pad=False)

    n1 = x
    n2 = pool(x) + n1
    n3 = pool(n1) + n2
    torch.testing.assert_close(cell(x), n3)
    # corner of a pooled map: mean of the 4 pixels inside the image (padding not counted)
    assert torch.allclose(pool(x)[:, :, 0, 0], x[:, :, :2, :2].mean(dim=(2, 3)))
    zero = NB201Cell(NB201Spec(("nor_conv_3x3", "none", "none", "skip_connect", "none", "none")), 3)
    torch.testing.assert_close(zero(x), x)  # node 3 = skip(node 0); node 1, 2 unused
    dead = NB201Cell(NB201Spec(("skip_connect",) * 3 + ("none",) * 3), 3)
    assert torch.count_nonzero(dead(x)) == 0


# ----- the space -----


def test_registry_builder_and_options() -> None:
    assert "nb201" in list_spaces()
    space = get_space("nb201")
    assert isinstance(space, NB201Space) and space.config() == {"space": "nb201"}
    spec = space.random_spec(0)
    assert isinstance(build_model(spec.to_json(), width_mult=0.25), NB201Net)
    assert space.coerce(spec.to_dict() | {"kind": "nb201"}) == spec
    with pytest.raises(SpecError, match="bad option for space 'nb201'"):
        get_space("nb201", blocks=3)
    with pytest.raises(SpecError, match="'layer' spec given to the 'nb201' space"):
        space.spec_to_params(get_space("layer").random_spec(0))


def test_choices_and_sampling_determinism() -> None:
    space = get_space("nb201")
    fixed = FixedSuggester({}, fallback=RandomSuggester(0))
    space.sample(fixed)
    assert fixed.asked == [(n, NB201_OPS) for n in EDGE_NAMES]
    a = [space.random_spec(s) for s in range(20)]
    assert a == [space.random_spec(s) for s in range(20)]
    assert len({s.spec_hash for s in a}) > 15
    # uniform: each op about 1/5 of 6 * 400 draws
    counts = np.zeros(len(NB201_OPS))
    rng = np.random.default_rng(1)
    for _ in range(400):
        for op in space.random_spec(rng).ops:
            counts[NB201_OPS.index(op)] += 1
    assert np.all(np.abs(counts / counts.sum() - 0.2) < 0.04)


@settings(max_examples=40, deadline=None)
@given(ops=CELLS, seed=st.integers(0, 2**31))
def test_params_inverse_mutation_and_controller_tokens(ops: tuple[str, ...], seed: int) -> None:
    space = NB201Space()
    spec = NB201Spec(ops)
    params = space.spec_to_params(spec)
    assert params == dict(zip(EDGE_NAMES, ops, strict=True))
    assert space.params_to_spec(params) == spec
    child = space.mutate(spec, seed)
    assert sum(a != b for a, b in zip(spec.ops, child.ops, strict=True)) == 1
    tokens = space.encode(spec)
    assert [t.choices for t in tokens] == [(NB201_OPS.index(o),) for o in ops]
    assert space.decode(tokens) == spec
    steps = space.controller_steps(spec)
    assert [s.name for s in steps] == EDGE_NAMES
    assert all(len(s.heads) == 1 and s.heads[0].name == "op" and not s.links for s in steps)


def test_optuna_trial_drives_the_space() -> None:
    space = get_space("nb201")
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    study.optimize(lambda t: space.sample(t).ops.count("nor_conv_3x3") / 6, n_trials=8)
    for trial in study.trials:
        assert space.params_to_spec(trial.params).ops.count("nor_conv_3x3") / 6 == trial.value


@pytest.mark.parametrize("name", ["random", "tpe", "rl", "evolution"])
def test_every_strategy_drives_the_space(name: str) -> None:
    space = get_space("nb201")
    options = {"evolution": {"population": 8, "sample_size": 3}}.get(name, {})

    def objective(spec: NB201Spec) -> float:
        return spec.ops.count("nor_conv_3x3") / 6 + 0.01 * spec.ops.count("skip_connect")

    runs = []
    for _ in range(2):
        strategy = get_strategy(name, space, seed=5, **options)
        runs.append(run_strategy(strategy, objective, 24, seed=5))
    for params, score in runs[0]:
        spec = space.params_to_spec(params)
        assert params == space.spec_to_params(spec) and score == objective(spec)
    assert len({repr(sorted(p.items())) for p, _ in runs[0]}) > 12
    if name != "tpe":  # TPE's asks depend on running trials; the others are replayable
        assert runs[0] == runs[1]


def test_has_path_agrees_with_the_network() -> None:
    """Oracle: the cell's output ignores its input exactly when no chain of non-``none``
    edges joins them. Only none vs not-none matters, so the 64 cells over {none,
    skip_connect} cover every connectivity pattern; a random conv cell checks the rest."""
    torch.manual_seed(0)
    x, y = torch.randn(2, 2, 4, 4), torch.randn(2, 2, 4, 4)
    for ops in itertools.product(("none", "skip_connect"), repeat=6):
        spec = NB201Spec(ops)
        cell = NB201Cell(spec, 2).eval()
        with torch.no_grad():
            depends = not torch.equal(cell(x), cell(y))
        assert spec.has_path == depends, ops
    assert not NB201Spec(("none",) * 6).has_path
    assert not NB201Spec(("nor_conv_3x3", "none", "none", "none", "none", "none")).has_path
    assert NB201Spec(("none", "none", "none", "avg_pool_3x3", "none", "none")).has_path
    assert sum(not s.has_path for s in NB201Space.all_specs()) == sum(
        not NB201Spec(tuple("none" if o == "none" else "skip_connect" for o in s.ops)).has_path
        for s in NB201Space.all_specs()
    )


# ----- dead nodes: skipped in training steps, bit-identical -----


def _reaches_output(ops: tuple[str, ...]) -> set[int]:
    """Oracle: nodes joined to node 3 by a chain of non-``none`` edges, from the transitive
    closure of the adjacency matrix (a different algorithm from the cell's backward sweep)."""
    adj = np.zeros((4, 4), dtype=int)
    for (to, i), op in zip(((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)), ops, strict=True):
        adj[i, to] = op != "none"
    reach = np.eye(4, dtype=int)
    for _ in range(4):
        reach = np.minimum(reach + reach @ adj, 1)
    return {j for j in range(4) if reach[j, 3]}


def test_dead_nodes_are_the_nodes_without_a_path_to_the_output() -> None:
    # liveness depends on none vs not-none only: the 64 patterns cover all 15,625 cells
    seen = 0
    for ops in itertools.product(("none", "skip_connect"), repeat=6):
        expected = {1, 2} - _reaches_output(ops)
        assert set(NB201Cell(NB201Spec(ops), 2).dead_nodes) == expected, ops
        seen += bool(expected)
    assert seen > 0
    share = sum(bool(NB201Cell(s, 1).dead_nodes) for s in NB201Space.all_specs()) / NUM_ARCHS
    # node 2 is dead when 3<-2 is none (1/5); else node 1 when 3<-1 and 2<-1 are: 4/5 * 1/25
    assert share == pytest.approx(1 / 5 + 4 / 5 / 25)  # 23.2%


@settings(max_examples=25, deadline=None)
@given(ops=CELLS, seed=st.integers(0, 2**16))
@example(
    ops=("nor_conv_1x1", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3", "none", "none"), seed=0
)
def test_skipping_dead_work_is_bit_identical_and_skips_it(ops: tuple[str, ...], seed: int) -> None:
    """Within ``skip_dead_work`` the logits, the loss and every parameter's gradient are
    exactly those of the whole graph; dead nodes' modules do not run."""
    spec = NB201Spec(ops)
    torch.manual_seed(seed)
    net = NB201Net(spec, num_classes=3, channels=4, num_cells=1).train()
    twin = NB201Net(spec, num_classes=3, channels=4, num_cells=1).train()
    twin.load_state_dict(net.state_dict())
    x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 3, (4,))
    ran: list[str] = []
    cell = net.blocks[0]
    dead_edges = {k for j in cell.dead_nodes for k, _ in cell.incoming[j - 1]}
    for k in dead_edges:
        cell.edges[k].register_forward_hook(lambda *_, k=k: ran.append(k))
    with skip_dead_work():
        loss = F.cross_entropy(net(x), y)
    assert ran == []  # skipped ...
    full = F.cross_entropy(twin(x), y)
    assert torch.equal(loss, full)
    loss.backward()
    full.backward()
    for (name, p), q in zip(net.named_parameters(), twin.parameters(), strict=True):
        assert (p.grad is None) == (q.grad is None), name
        if p.grad is not None:
            assert torch.equal(p.grad, q.grad), name
    net(x)
    assert sorted(ran) == sorted(dead_edges)  # ... only within the block
