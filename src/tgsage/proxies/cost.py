"""Size baselines: parameter count, multiply-adds and depth, the proxies every zero-cost proxy
must beat to be worth its cost (Abdelfattah et al. 2021 report the first two alongside the
others; the VKDNW paper ranks by the number of layers with weights first)."""

from __future__ import annotations

import torch
from torch import nn

from tgsage.proxies.base import preserved, register_proxy
from tgsage.spaces import count_flops, count_params


@register_proxy("params", False, "number of parameters")
def params(model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None) -> float:
    return float(count_params(model))


@register_proxy("flops", False, "multiply-adds of conv and matmul for one image")
def flops(model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None) -> float:
    """Counted by ``tgsage.spaces.count_flops`` for one image of the batch's shape."""
    with preserved(model, train=False):
        return float(count_flops(model, tuple(images.shape[1:])))
