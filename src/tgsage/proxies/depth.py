"""Depth baseline: the number of layers with weights (the VKDNW paper ranks by it first)."""

from __future__ import annotations

import torch
from torch import nn

from tgsage.proxies.base import register_proxy


@register_proxy("trainable_layers", False, "number of layers that hold weights of their own")
def trainable_layers(
    model: nn.Module, images: torch.Tensor | None = None, labels: torch.Tensor | None = None
) -> float:
    """Modules with at least one parameter of their own (conv, linear, affine norm layers):
    the depth count the VKDNW paper ranks by first ("number of trainable layers")."""
    return float(sum(1 for m in model.modules() if any(True for _ in m.parameters(False))))
