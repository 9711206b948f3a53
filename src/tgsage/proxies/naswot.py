"""NASWOT (Mellor et al., "Neural Architecture Search without Training", ICML 2021).

Each image's binary code is the on/off pattern of every ReLU unit on one minibatch. Networks
that give different images very different codes separate them better at initialisation and
tend to train to higher accuracy. The kernel ``K = C C^T + (1 - C)(1 - C)^T`` counts, for
every pair of images, the units on which they agree (``K_ij = units - Hamming(c_i, c_j)``),
and the score is ``log |det K|`` (the v2 score, ``hooklogdet`` in the reference code).

Only ReLU-family modules are seen (``nn.ReLU``, ``nn.ReLU6``, ``nn.LeakyReLU``); a network
that calls ``torch.nn.functional.relu`` instead hides those units from the score. The network
runs in train mode (BN on batch statistics), as in the reference code; BN statistics are
restored afterwards.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from tgsage.proxies.base import register_proxy
from tgsage.proxies.onepass import RELU_TYPES, declare_needs, shared_train_pass

__all__ = ["RELU_TYPES", "logdet_or_neg_inf", "naswot", "naswot_kernel"]


def naswot_kernel(model: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(K, logits)``: the float64 (N, N) agreement kernel summed over every ReLU module.

    One matrix product per ReLU: with ``s = 2c - 1`` (+-1 codes), ``s_i . s_j = U - 2 Ham``,
    so that layer's ``C C^T + (1-C)(1-C)^T = (U + s s^T) / 2``, computed as soon as the
    module runs (inplace ReLUs are safe; no activation is kept).
    """
    result = shared_train_pass(model, images, None, {"kernel"})
    assert result.kernel is not None
    return result.kernel, result.logits


def logdet_or_neg_inf(kernel: torch.Tensor) -> float:
    """``slogdet(K)``'s log-determinant; ``-inf`` when K is numerically singular (rank < N by
    ``numpy.linalg.matrix_rank``'s tolerance), e.g. two images with identical codes or a
    network without ReLU modules. A rank test first, because LU on an exactly singular
    integer matrix can leave a round-off pivot and return a large, meaningless finite value."""
    eig = torch.linalg.eigvalsh(kernel)
    top = float(eig.abs().max()) if eig.numel() else 0.0
    if top == 0.0 or float(eig.min()) <= top * kernel.shape[0] * torch.finfo(kernel.dtype).eps:
        return -math.inf
    return float(torch.linalg.slogdet(kernel).logabsdet)


declare_needs("naswot", {"kernel"})


@register_proxy("naswot", False, "log det of the ReLU-code agreement kernel (Mellor et al.)")
def naswot(model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None) -> float:
    """NaN when the network's outputs are not finite; ``-inf`` when K is singular."""
    kernel, logits = naswot_kernel(model, images)
    if not bool(torch.isfinite(logits).all()):
        return math.nan
    return logdet_or_neg_inf(kernel)
