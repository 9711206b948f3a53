"""Cell networks for final training: ImageNet stems, auxiliary head, drop-path, published counts.

Oracles: the papers' parameter counts (NASNet-A 3.3M / PNASNet-5 3.2M on CIFAR-10, 5.3M / 5.1M
in the mobile ImageNet setting), hand-derived spatial sizes and head sizes, and Monte Carlo
statistics of drop-path against its definition.
"""

from __future__ import annotations

import pytest
import torch

from tgsage.errors import SpecError
from tgsage.spaces import (
    PUBLISHED_PARAMS,
    CellSpec,
    build_model,
    count_params,
    get_cell_preset,
    get_space,
    spec_from_json,
)
from tgsage.spaces.cell_ops import drop_path


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _aux_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.auxiliary_head.parameters())


@pytest.mark.parametrize(
    ("setting", "classes", "shape"),
    [("cifar10", 10, (3, 32, 32)), ("imagenet_mobile", 1000, (3, 224, 224))],
)
@pytest.mark.parametrize("name", ["nasnet_a", "pnasnet_5"])
def test_published_param_counts_with_auxiliary_head(name, setting, classes, shape) -> None:
    """Built for final training (auxiliary head on); the papers count without the head."""
    model = build_model(get_cell_preset(name, setting=setting), classes, shape, auxiliary=True)
    published = PUBLISHED_PARAMS[setting][name]
    without_head = count_params(model) - _aux_params(model)
    assert abs(without_head - published) / published < 0.10
    plain = build_model(get_cell_preset(name, setting=setting), classes, shape)
    assert count_params(plain) == without_head


def test_auxiliary_head_size_is_hand_derived() -> None:
    """NASNet-A CIFAR: the head reads the last stage-2 cell (6 x 64 = 384 channels at 16x16);
    5x5 pool stride 3 -> 4x4, so its second conv has a 4x4 kernel."""
    model = build_model(get_cell_preset("nasnet_a"), 10, (3, 32, 32), auxiliary=True)
    cin, c1, c2, k = 384, 128, 768, 4
    want = cin * c1 + 2 * c1 + c1 * c2 * k * k + 2 * c2 + c2 * 10 + 10
    assert _aux_params(model) == want
    # CIFAR layout N=6: stage 1 = cells 0-5, stage 2 = reduction + 6 normal = cells 6-12
    assert model._aux_index == 12


def test_imagenet_stems_reach_the_first_stage_at_the_papers_sizes() -> None:
    """224 px: stride-2 conv (112), two stem reduction cells (56, 28), stages 28 / 14 / 7.
    64 px without the stem cells (paper 4.4): 32 / 16 / 8."""
    cell = get_space("cell", num_cells=1).random_spec(3)
    for stem, size, want in (
        ("imagenet", 224, [28, 14, 14, 7, 7]),
        ("imagenet64", 64, [32, 16, 16, 8, 8]),
    ):
        spec = cell.with_network(stem=stem, stem_multiplier=1)
        model = build_model(spec, 5, (3, size, size), width_mult=0.125).eval()
        with torch.no_grad():
            _, feats = model.forward_with_features(torch.randn(1, 3, size, size))
        assert [f.shape[-1] for f in feats.values()] == want
        assert len(model.stem_cells) == (2 if stem == "imagenet" else 0)
        assert model.stem[0].stride == (2, 2)
        assert model.stem[0].out_channels == 4  # round(32 * 1 * 0.125)


def test_mobile_stem_cells_have_quarter_and_half_filters() -> None:
    model = build_model(get_cell_preset("nasnet_a", setting="imagenet_mobile"), 1000, (3, 224, 224))
    # TF-slim: int(44 * 0.25) = 11 and int(44 * 0.5) = 22 filters per block in the stem cells
    assert [m.pre_p[1].out_channels for m in model.stem_cells] == [11, 22]
    assert model.stem[0].out_channels == 32


def test_stem_is_part_of_the_spec_but_not_of_old_hashes() -> None:
    spec = get_cell_preset("pnasnet_5")
    assert '"stem"' not in spec.to_json()  # default stem: JSON (and hash) unchanged
    mobile = get_cell_preset("pnasnet_5", setting="imagenet_mobile")
    assert mobile.stem == "imagenet" and (mobile.num_cells, mobile.filters) == (3, 54)
    assert spec_from_json(mobile.to_json()) == mobile
    assert mobile.spec_hash != spec.spec_hash
    with pytest.raises(SpecError, match="stem"):
        CellSpec(spec.normal, stem="mobile")
    with pytest.raises(SpecError, match="setting"):
        get_cell_preset("pnasnet_5", setting="imagenet")


def test_search_space_with_imagenet64_stem() -> None:
    space = get_space("cell", num_cells=2, stem="imagenet64")
    spec = space.random_spec(0)
    assert spec.stem == "imagenet64"
    assert space.spec_to_params(spec)
    with pytest.raises(SpecError, match="stem"):
        get_space("cell").spec_to_params(spec)


def test_auxiliary_logits_only_in_training_mode() -> None:
    torch.manual_seed(0)
    spec = get_space("cell", num_cells=1).random_spec(5)
    model = build_model(spec, 7, (3, 16, 16), width_mult=0.125, auxiliary=True)
    x = torch.randn(3, 3, 16, 16)
    model.train()
    out = model(x)
    assert isinstance(out, tuple) and [o.shape for o in out] == [(3, 7), (3, 7)]
    logits, feats = model.forward_with_features(x)  # features never carry the auxiliary head
    assert isinstance(logits, torch.Tensor) and "auxiliary" not in feats
    model.eval()
    with torch.no_grad():
        plain = model(x)
        torch.testing.assert_close(plain, model.forward_with_features(x)[0])
    assert isinstance(plain, torch.Tensor) and plain.shape == (3, 7)


def test_auxiliary_head_only_in_the_cell_space() -> None:
    with pytest.raises(SpecError, match="auxiliary"):
        build_model(get_space("nb201").random_spec(0), 10, auxiliary=True)


def test_drop_path_statistics_match_its_definition() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(20000, 3, 2, 2, generator=gen) + 1.0
    torch.manual_seed(1)
    y = drop_path(x, 0.3)
    dropped = (y == 0).flatten(1).all(1)
    assert (y == 0).flatten(1).any(1).eq(dropped).all()  # whole samples, never parts
    assert dropped.float().mean().item() == pytest.approx(0.3, abs=0.015)
    kept = ~dropped
    torch.testing.assert_close(y[kept], x[kept] / 0.7)
    assert drop_path(x, 0.0) is x


def test_drop_path_scales_with_depth_and_is_off_in_eval() -> None:
    torch.manual_seed(0)
    spec = get_space("cell", num_cells=1).random_spec(11).with_network(stem="imagenet")
    model = build_model(spec, 4, (3, 32, 32), width_mult=0.125)
    model.set_drop_path(0.4)
    every = [*model.stem_cells, *model.cells]
    assert [m.drop_prob for m in every] == pytest.approx([0.4 * (i + 1) / 7 for i in range(7)])
    assert model.drop_path_rate == pytest.approx(0.4)
    x = torch.randn(4, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        on = model(x)
        model.set_drop_path(0.0)
        torch.testing.assert_close(model(x), on, rtol=0, atol=0)
    with pytest.raises(ValueError, match="rate"):
        model.set_drop_path(1.0)


def test_drop_path_changes_training_outputs_and_spares_identities() -> None:
    spec = get_cell_preset("nasnet_a", num_cells=1, filters=8)
    model = build_model(spec, 4, (3, 16, 16)).train()
    x = torch.randn(8, 3, 16, 16)
    torch.manual_seed(0)
    base = model(x)
    model.set_drop_path(0.9)
    torch.manual_seed(0)
    assert not torch.allclose(model(x), base)
    cell = model.cells[0]
    ops = [op for blk in cell.cell.blocks for op in (blk.op_a, blk.op_b)]
    assert cell.droppable == tuple(op != "identity" for op in ops)
