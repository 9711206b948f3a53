"""Teacher ResNet and the model registry: published parameter counts, FeatureNet contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tgsage.errors import ConfigError
from tgsage.features import FeatureNet
from tgsage.models import get_model, list_models

torch.set_num_threads(1)


def _params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# He et al. 2016, Table 6 (CIFAR-10, option A shortcuts): parameters in millions.
@pytest.mark.parametrize(("n", "millions"), [(3, 0.27), (5, 0.46), (7, 0.66), (9, 0.85), (18, 1.7)])
def test_resnet_param_counts_match_he_et_al(n, millions):
    count = _params(get_model("resnet_cifar", n=n, num_classes=10))
    digits = 1 if millions >= 1 else 2
    assert round(count / 1e6, digits) == millions


def test_resnet20_exact_count_by_hand():
    # conv1 432 + bn 32; stack1: 3 blocks x (2 x 2304 + 2 x 32); stack2: first block
    # 16*32*9 + 32*32*9 + 64, two more 2 x (9216 + 64); stack3 likewise at 64; fc 64*10+10.
    s1 = 3 * (2 * 2304 + 64)
    s2 = (4608 + 9216 + 128) + 2 * (2 * 9216 + 128)
    s3 = (18432 + 36864 + 256) + 2 * (2 * 36864 + 256)
    assert _params(get_model("resnet20_cifar")) == 432 + 32 + s1 + s2 + s3 + 650


def test_option_b_adds_projection_params():
    a = _params(get_model("resnet_cifar", n=3, shortcut="A"))
    b = _params(get_model("resnet_cifar", n=3, shortcut="B"))
    assert b - a == (16 * 32 + 64) + (32 * 64 + 128)


def test_resnet_features_and_depth():
    m = get_model("resnet_cifar", n=2, num_classes=7, width_mult=0.5).eval()
    assert m.depth == 14 and m.widths == (8, 16, 32)
    x = torch.randn(3, 3, 32, 32)
    logits, feats = m.forward_with_features(x)
    assert list(feats) == ["stack1", "stack2", "stack3"]
    assert feats["stack1"].shape == (3, 8, 32, 32)
    assert feats["stack2"].shape == (3, 16, 16, 16)
    assert feats["stack3"].shape == (3, 32, 8, 8)
    assert logits.shape == (3, 7)
    torch.testing.assert_close(m(x), logits)


def test_shortcut_a_is_identity_subsample_with_zero_channels():
    from tgsage.models.resnet_cifar import _ShortcutA

    x = torch.randn(2, 4, 6, 6)
    y = _ShortcutA(4, 8, 2)(x)
    assert y.shape == (2, 8, 3, 3)
    torch.testing.assert_close(y[:, 2:6], x[:, :, ::2, ::2])
    assert y[:, :2].abs().sum() == 0 and y[:, 6:].abs().sum() == 0


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_is_a_featurenet(name):
    kwargs = {"width_mult": 0.25, "n": 1} if name == "resnet_cifar" else {}
    if name in ("resnet20_cifar", "resnet56_cifar"):
        kwargs = {"width_mult": 0.25}
    m = get_model(name, num_classes=5, **kwargs).eval()
    assert isinstance(m, FeatureNet)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        logits, feats = m.forward_with_features(x)
    assert logits.shape == (2, 5)
    assert tuple(feats) == m.feature_names and len(feats) >= 1
    assert all(v.shape[0] == 2 for v in feats.values())


def test_registry_errors_name_choices():
    assert {"resnet_cifar", "small_cnn"} <= set(list_models())
    with pytest.raises(ConfigError, match="resnet_cifar"):
        get_model("resnet_imaginary")
    with pytest.raises(ConfigError, match="shortcut"):
        get_model("resnet_cifar", shortcut="C")


def test_resnet_relus_are_modules_so_naswot_sees_them():
    """NASWOT hooks nn.ReLU modules: 2 per block + the stem's, and a finite log-determinant."""
    from tgsage.proxies import compute_proxies

    torch.manual_seed(0)
    net = get_model("resnet_cifar", n=1, num_classes=10, width_mult=0.25)
    assert sum(isinstance(m, torch.nn.ReLU) for m in net.modules()) == 2 * 3 + 1
    x = torch.randn(16, 3, 16, 16)
    assert np.isfinite(compute_proxies(net, x, names="naswot", device="cpu")["naswot"])
