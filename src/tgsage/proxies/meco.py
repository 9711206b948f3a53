"""MeCo (Jiang, Wang, Bie, "MeCo: Zero-Shot NAS with One Data and Single Forward Pass via
Minimum Eigenvalue of Correlation", NeurIPS 2023).

For one image, every layer's feature map is C channels of H*W values; the smallest eigenvalue
of their C x C Pearson correlation matrix is large when no channel is (nearly) a mix of the
others, which the paper ties to fast convergence and good generalisation. MeCo sums it over
the layers. The reference code hooks every module; here each *distinct* 4-D feature map the
network computes is counted once (a container returning its last child's output is the same
map; an in-place ReLU's output is a new one), so the score does not depend on how the code
nests modules. As the paper, one image: the first of the minibatch (the maps come from the
shared train-mode forward of the whole minibatch, so BN uses its statistics); scoring all 64
images of a batch would cost about as much again as the forward itself.

``meco_opt`` is the reference code's optimised variant: per layer, 8 seeded random channels,
their smallest eigenvalue times C / 8 (all channels when C <= 8).
"""

from __future__ import annotations

import torch
from torch import nn

from tgsage.proxies.base import finite_or_nan, register_proxy
from tgsage.proxies.onepass import declare_needs, min_corr_eigenvalues, shared_train_pass

__all__ = ["meco", "meco_opt", "min_corr_eigenvalues"]

declare_needs("meco", {"meco"})
declare_needs("meco_opt", {"meco"})


def _meco_value(model: nn.Module, images: torch.Tensor, field: str) -> float:
    result = shared_train_pass(model, images, None, {"meco"})
    value = getattr(result, field)
    if not bool(torch.isfinite(result.logits).all()) or value is None:
        return float("nan")
    return finite_or_nan(value)


@register_proxy("meco", False, "sum over feature maps of min eig of channel correlation")
def meco(model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None) -> float:
    """NaN when the network's outputs are not finite."""
    return _meco_value(model, images, "meco")


@register_proxy("meco_opt", False, "MeCo on 8 random channels per map, times C/8")
def meco_opt(model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None) -> float:
    """NaN when the network's outputs are not finite."""
    return _meco_value(model, images, "meco_opt")
