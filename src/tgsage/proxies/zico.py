"""ZiCo (Li, Xiao, Gao, Zhang, Ji, Marculescu, "ZiCo: Zero-shot NAS via Inverse Coefficient
of Variation on Gradients", ICLR 2023).

Networks whose weight gradients are large *and* consistent across training samples train
faster and generalise better. Per conv/linear layer, over the gradients of two minibatches,
``sum over the layer's weights of mean|g| / std(g)`` (weights whose gradient does not vary are
left out); the score is the sum over layers of the log of that sum (layers whose sum is 0 add
nothing), as the authors' code.

Here the two minibatches are the two halves of the one minibatch given: the shared pass's
cross-entropy backward splits every weight gradient by which half used the weight, so ZiCo
costs nothing beyond grad_norm's backward (the reference runs two forward/backward passes of
separate batches; BN statistics here are those of the whole minibatch). With two gradients,
``mean|g| / std(g) = (|g1| + |g2|) / |g1 - g2|``. Layers that are not a plain ``nn.Conv*`` /
``nn.Linear`` call on the batch have no split and are left out.
"""

from __future__ import annotations

import torch
from torch import nn

from tgsage.proxies.base import finite_or_nan, register_proxy
from tgsage.proxies.onepass import declare_needs, shared_train_pass

__all__ = ["zico", "zico_from_halves"]


def zico_from_halves(halves: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """ZiCo from each layer's two gradients (float64)."""
    total = 0.0
    for g1, g2 in halves:
        a = g1.detach().to(torch.float64).flatten()
        b = g2.detach().to(torch.float64).flatten()
        std = (a - b).abs() / 2
        mean_abs = (a.abs() + b.abs()) / 2
        keep = std != 0
        s = float((mean_abs[keep] / std[keep]).sum())
        if s > 0:
            total += float(torch.log(torch.tensor(s, dtype=torch.float64)))
    return finite_or_nan(total)


declare_needs("zico", {"ce"})


@register_proxy("zico", True, "sum over layers of log sum mean|g|/std(g), two half-batch grads")
def zico(model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None) -> float:
    """Needs at least 2 images; NaN when the network's outputs are not finite."""
    result = shared_train_pass(model, images, labels, {"ce"})
    if not bool(torch.isfinite(result.logits).all()):
        return float("nan")
    assert result.layer_grads is not None
    return zico_from_halves([lg.halves for lg in result.layer_grads if lg.halves is not None])
