"""Named network factories (timm-style): ``get_model(name, **kwargs)`` and ``list_models()``.

Every registered model implements :class:`tgsage.features.FeatureNet`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from tgsage.errors import ConfigError
from tgsage.models.resnet_cifar import ResNetCifar
from tgsage.models.small_cnn import SmallCNN
from tgsage.models.whitened_cnn import WhitenedCNN
from tgsage.registry import Registry

ModelFactory = Callable[..., nn.Module]
#: Networks by name; add your own with :func:`register_model`.
MODELS: Registry[ModelFactory] = Registry("model", ConfigError)


def register_model(name: str, factory: ModelFactory | None = None, *, replace: bool = False) -> Any:
    """Add a factory ``(**kwargs) -> nn.Module`` under ``name`` (also a decorator)."""
    return MODELS.register(name, factory, replace=replace)


def list_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(MODELS)


def get_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model, e.g. ``get_model("resnet_cifar", n=9, num_classes=100)``."""
    return MODELS.create(name, **kwargs)


@register_model("resnet_cifar")
def resnet_cifar(
    n: int = 9,
    num_classes: int = 10,
    width_mult: float = 1.0,
    shortcut: str = "A",
    in_channels: int = 3,
) -> ResNetCifar:
    """CIFAR ResNet with 6n + 2 layers (n = 9: the paper's ResNet-56 teacher)."""
    return ResNetCifar(n, num_classes, width_mult, shortcut, in_channels)


@register_model("resnet20_cifar")
def resnet20_cifar(**kwargs: Any) -> ResNetCifar:
    """ResNet-20 (n = 3)."""
    return resnet_cifar(n=3, **kwargs)


@register_model("resnet56_cifar")
def resnet56_cifar(**kwargs: Any) -> ResNetCifar:
    """ResNet-56 (n = 9), the paper's teacher."""
    return resnet_cifar(n=9, **kwargs)


@register_model("small_cnn")
def small_cnn(
    num_classes: int = 10, width: int = 32, depth: int = 3, in_channels: int = 3
) -> SmallCNN:
    """A small plain CNN for CPU demos, tests and benchmarks."""
    return SmallCNN(num_classes, width, depth, in_channels)


@register_model("whitened_cnn")
def whitened_cnn(
    num_classes: int = 10, base_width: int = 64, in_channels: int = 3, patch: int = 2
) -> WhitenedCNN:
    """Fast CIFAR teacher (airbench-style): frozen patch-whitening layer + 3 conv groups.
    Call ``init_whitening(train_images)`` before training."""
    return WhitenedCNN(num_classes, base_width, in_channels, patch)


__all__ = [
    "MODELS",
    "ResNetCifar",
    "SmallCNN",
    "WhitenedCNN",
    "get_model",
    "list_models",
    "register_model",
]
