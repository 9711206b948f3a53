"""AZ-NAS's training-free components (Lee, Ham, "AZ-NAS: Assembling Zero-Cost Proxies for
Network Architecture Search", CVPR 2024).

AZ-NAS looks at the network's blocks (for tgsage's networks the exposed features, e.g. every
NAS-Bench-201 cell and reduction block, preceded by the first block's input, e.g. the stem's
output; for other modules the 4-D outputs of the direct children), in one train-mode pass:

- ``az_expressivity``: per block output, the entropy of the normalised eigenvalue spectrum of
  the channel covariance over all positions and images (isotropic features express more),
  summed over blocks;
- ``az_progressivity``: the smallest increase of that entropy from one block to the next
  (expressivity should grow with depth);
- ``az_trainability``: per block, ``-s - 1/s + 2`` for the spectral norm ``s`` of the block's
  backward map estimated with random sign cotangents (best at ``s = 1``: gradients neither
  explode nor vanish), averaged over blocks; an identity block scores ``-inf``;
- complexity is ``flops``.

AZ-NAS ranks a population by the sum of the log-ranks of the four (see the score vocabulary's
rank aggregations). As in the reference code, a network with a constant (e.g. all-zero) block
output scores ``-inf`` for expressivity and progressivity: it expresses nothing. Covariances
and eigenvalues are float64, eigenvalues clipped at 0 against round-off.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from tgsage.proxies.base import register_proxy
from tgsage.proxies.onepass import (
    block_trainability,
    declare_needs,
    shared_train_pass,
    spectral_entropy,
)

__all__ = [
    "az_expressivity",
    "az_progressivity",
    "az_trainability",
    "block_trainability",
    "spectral_entropy",
]

declare_needs("az_expressivity", {"blocks"})
declare_needs("az_progressivity", {"blocks"})
declare_needs("az_trainability", {"trainability"})


def _entropies(model: nn.Module, images: torch.Tensor) -> list[float] | None:
    result = shared_train_pass(model, images, None, {"blocks"})
    if not bool(torch.isfinite(result.logits).all()):
        return None
    return result.expressivity or []


@register_proxy("az_expressivity", False, "AZ-NAS: sum over blocks of feature spectral entropy")
def az_expressivity(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None
) -> float:
    """NaN when outputs are not finite or there is no block; -inf for a constant block."""
    values = _entropies(model, images)
    if not values:
        return math.nan
    return -math.inf if any(math.isnan(v) for v in values) else float(sum(values))


@register_proxy("az_progressivity", False, "AZ-NAS: min increase of spectral entropy per block")
def az_progressivity(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None
) -> float:
    """NaN with fewer than 2 blocks or non-finite outputs; -inf for a constant block."""
    values = _entropies(model, images)
    if values is None or len(values) < 2:
        return math.nan
    if any(math.isnan(v) for v in values):
        return -math.inf
    return float(min(b - a for a, b in itertools.pairwise(values)))


@register_proxy("az_trainability", False, "AZ-NAS: mean over blocks of -s - 1/s + 2, s = ||J||")
def az_trainability(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None
) -> float:
    """NaN with fewer than 2 blocks or non-finite outputs; -inf if a block is the identity."""
    result = shared_train_pass(model, images, None, {"trainability"})
    values = result.trainability or []
    if not values or not bool(torch.isfinite(result.logits).all()):
        return math.nan
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return math.nan
    return float(sum(finite) / len(finite))
