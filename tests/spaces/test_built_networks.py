"""Built networks against hand-computed oracles: the spatial rule, the head, FLOPs, presets."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tgsage.errors import SpecError
from tgsage.features import FeatureNet
from tgsage.spaces import (
    PUBLISHED_CIFAR10_PARAMS,
    ConvLayer,
    LayerSpec,
    build_model,
    count_flops,
    count_params,
    get_cell_preset,
    get_space,
)


@pytest.fixture(autouse=True)
def _few_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(old)


def _mismatch_spec() -> LayerSpec:
    return LayerSpec(
        (
            ConvLayer(32, 3, 3, 2, "relu", "none", (-1,)),  # 8x8 -> 4x4
            ConvLayer(64, 1, 3, 2, "identity", "none", (0,)),  # 4x4 -> 2x2
            ConvLayer(32, 3, 1, 1, "relu", "none", (-1, 0, 1)),  # image 8x8 + 4x4 + 2x2
        )
    )


def test_spatial_mismatch_pools_larger_inputs_to_the_smallest() -> None:
    torch.manual_seed(0)
    model = build_model(_mismatch_spec(), num_classes=3, input_shape=(3, 8, 8), width_mult=0.25)
    x = torch.randn(2, 3, 8, 8)
    _, feats = model.forward_with_features(x)
    assert feats["layer0"].shape == (2, 8, 4, 4)
    assert feats["layer1"].shape == (2, 16, 2, 2)
    # oracle: avg_pool2d with kernel = stride = ratio, concatenated in source order
    inp = torch.cat([F.avg_pool2d(x, 4), F.avg_pool2d(feats["layer0"], 2), feats["layer1"]], 1)
    conv = model.layers[2][0]
    want = torch.relu(F.conv2d(inp, conv.weight, conv.bias, padding=(1, 0)))
    torch.testing.assert_close(feats["layer2"], want)


def test_head_concatenates_pooled_unconsumed_layers() -> None:
    torch.manual_seed(0)
    spec = LayerSpec(
        (
            ConvLayer(32, 3, 3, 1, "relu", "batchnorm", (-1,)),
            ConvLayer(64, 3, 3, 2, "relu", "none", (-1,)),  # nobody consumes it
            ConvLayer(32, 1, 1, 1, "identity", "none", (0,)),  # last layer
        )
    )
    assert spec.head_inputs == (1, 2)
    model = build_model(spec, num_classes=5, input_shape=(3, 8, 8), width_mult=0.125).eval()
    x = torch.randn(2, 3, 8, 8)
    logits, feats = model.forward_with_features(x)
    pooled = torch.cat([feats["layer1"].mean((2, 3)), feats["layer2"].mean((2, 3))], 1)
    torch.testing.assert_close(logits, model.classifier(pooled))
    assert model.classifier.in_features == 8 + 4
    assert isinstance(model, FeatureNet)
    torch.testing.assert_close(model(x), logits)


def test_layer_flops_and_params_match_hand_count() -> None:
    spec = _mismatch_spec()
    model = build_model(spec, num_classes=10, input_shape=(3, 8, 8))
    # conv MACs = H_out * W_out * C_out * C_in * kh * kw ; linear = in * out
    macs = 4 * 4 * 32 * 3 * 9 + 2 * 2 * 64 * 32 * 3 + 2 * 2 * 32 * (3 + 32 + 64) * 3 + 32 * 10
    assert count_flops(model) == macs
    params = (32 * 3 * 9 + 32) + (64 * 32 * 3 + 64) + (32 * 99 * 3 + 32) + (32 * 10 + 10)
    assert count_params(model) == params


def test_width_multiplier_scales_channels() -> None:
    spec = get_space("layer").random_spec(2)
    full = build_model(spec, 10, (3, 16, 16), 1.0)
    half = build_model(spec, 10, (3, 16, 16), 0.5)
    for layer, f, h in zip(spec.layers, full.layers, half.layers, strict=True):
        assert f[0].out_channels == layer.filters
        assert h[0].out_channels == layer.filters // 2
    assert count_params(half) < count_params(full)


@pytest.mark.parametrize("name", ["nasnet_a", "pnasnet_5"])
def test_preset_cifar10_param_counts_within_10_percent(name: str) -> None:
    model = build_model(get_cell_preset(name), num_classes=10, input_shape=(3, 32, 32))
    published = PUBLISHED_CIFAR10_PARAMS[name]
    assert abs(count_params(model) - published) / published < 0.10


def test_presets_match_published_genotypes() -> None:
    """Oracle: the cells as listed in the DARTS genotypes (op, input) pairs, 0 = prev_prev."""
    nasnet_normal = [
        ("sep_conv_5x5", 1),
        ("sep_conv_3x3", 0),
        ("sep_conv_5x5", 0),
        ("sep_conv_3x3", 0),
        ("avg_pool_3x3", 1),
        ("identity", 0),
        ("avg_pool_3x3", 0),
        ("avg_pool_3x3", 0),
        ("sep_conv_3x3", 1),
        ("identity", 1),
    ]
    nasnet_reduce = [
        ("sep_conv_5x5", 1),
        ("sep_conv_7x7", 0),
        ("max_pool_3x3", 1),
        ("sep_conv_7x7", 0),
        ("avg_pool_3x3", 1),
        ("sep_conv_5x5", 0),
        ("identity", 3),
        ("avg_pool_3x3", 2),
        ("sep_conv_3x3", 2),
        ("max_pool_3x3", 1),
    ]
    pnas = [
        ("sep_conv_5x5", 0),
        ("max_pool_3x3", 0),
        ("sep_conv_7x7", 1),
        ("max_pool_3x3", 1),
        ("sep_conv_5x5", 1),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 4),
        ("max_pool_3x3", 1),
        ("sep_conv_3x3", 0),
        ("identity", 1),
    ]

    def pairs(cell):
        return [sorted([(b.op_a, b.input_a), (b.op_b, b.input_b)]) for b in cell.blocks]

    def expect(flat):
        return [sorted(flat[i : i + 2]) for i in range(0, len(flat), 2)]

    n, p = get_cell_preset("nasnet_a"), get_cell_preset("pnasnet_5")
    assert pairs(n.normal) == expect(nasnet_normal)
    assert pairs(n.reduction) == expect(nasnet_reduce)
    assert pairs(p.normal) == expect(pnas) and p.reduction is None
    # output concatenation: NASNet normal = prev_prev + 5 blocks (6 @ 768), reduction = unused
    assert n.normal.output_sources(n.concat) == (0, 2, 3, 4, 5, 6)
    assert n.reduction.output_sources(n.concat) == (4, 5, 6)
    assert p.normal.output_sources(p.concat) == (2, 3, 4, 5, 6)


def test_nasnet_a_cifar_shapes() -> None:
    """NASNet-A 6 @ 768: 20 cells; the last cell has 6 * 128 = 768 channels at 8x8."""
    model = build_model(get_cell_preset("nasnet_a"), 10, (3, 32, 32), width_mult=1.0)
    assert len(model.feature_names) == 3 * 6 + 2
    assert model.classifier.in_features == 768
    model = build_model(get_cell_preset("pnasnet_5"), 10, (3, 32, 32))
    assert len(model.feature_names) == 9  # PNAS layout: 3N cells including the reductions


def test_cell_net_resolution_halves_at_reductions() -> None:
    spec = get_space("cell", num_cells=1).random_spec(7)
    model = build_model(spec, 4, (3, 16, 16), width_mult=0.125)
    _, feats = model.forward_with_features(torch.randn(2, 3, 16, 16))
    sizes = [f.shape[-1] for f in feats.values()]
    assert sizes == [16, 8, 8, 4, 4]
    c = 4  # round(32 * 0.125)
    widths = [f.shape[1] for f in feats.values()]
    for w, stage in zip(widths, [0, 1, 1, 2, 2], strict=True):
        assert w % (c * 2**stage) == 0


def test_cell_flops_count_convs() -> None:
    model = build_model(get_cell_preset("pnasnet_5"), 10, (3, 8, 8), width_mult=0.125)
    stem = 8 * 8 * 18 * 3 * 9  # 3 * round(48 / 8) = 18 channels
    flops = count_flops(model)
    assert flops > stem
    # conv work scales with the pixel count (the linear head does not)
    assert count_flops(model, (3, 16, 16)) == pytest.approx(4 * flops, rel=0.02)


def test_build_model_rejects_bad_arguments() -> None:
    spec = get_cell_preset("pnasnet_5")
    with pytest.raises(SpecError, match="input_shape"):
        build_model(spec, 10, (32, 32))
    with pytest.raises(SpecError, match="num_classes"):
        build_model(spec, 0)
    with pytest.raises(SpecError, match="width_mult"):
        build_model(spec, 10, width_mult=0)
    assert count_params(build_model(spec.to_json(), 10)) == count_params(build_model(spec, 10))
