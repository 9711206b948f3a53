"""Loss-gradient proxies on one labelled minibatch (Abdelfattah et al. 2021; Lee et al. 2019).

Both run the network in train mode (BN on batch statistics), as the reference implementations
do, and take gradients with ``torch.autograd.grad`` so no ``.grad`` of the model is touched.
"""

from __future__ import annotations

import torch
from torch import nn

from tgsage.proxies.base import finite_or_nan, register_proxy
from tgsage.proxies.onepass import check_labels, declare_needs, shared_train_pass

__all__ = ["check_labels", "grad_norm", "snip", "weight_grads"]


WeightGrads = list[tuple[torch.Tensor, torch.Tensor | None]]


def weight_grads(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> WeightGrads:
    """``(W, dCE/dW)`` for every conv/linear weight, on one train-mode pass (None: unused);
    shared with every other proxy of a ``compute_proxies`` call (see ``proxies.onepass``)."""
    result = shared_train_pass(model, images, labels, {"ce"})
    assert result.layer_grads is not None
    return [(lg.weight, lg.grad) for lg in result.layer_grads]


def _total(values: list[torch.Tensor]) -> float:
    return finite_or_nan(float(torch.stack(values).sum())) if values else 0.0


declare_needs("grad_norm", {"ce"})
declare_needs("snip", {"ce"})


@register_proxy("grad_norm", True, "sum over conv/linear weights of ||dCE/dW||_2")
def grad_norm(model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None) -> float:
    """Large gradients at initialisation suggest a trainable network (Abdelfattah et al.)."""
    assert labels is not None
    pairs = weight_grads(model, images, labels)
    return _total([torch.linalg.vector_norm(g) for _, g in pairs if g is not None])


@register_proxy("snip", True, "sum over conv/linear weights of |W * dCE/dW| (SNIP saliency)")
def snip(model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None) -> float:
    """Connection sensitivity: how much the loss would move if each weight were pruned
    (Lee et al. 2019), summed over the network as in Abdelfattah et al."""
    assert labels is not None
    pairs = weight_grads(model, images, labels)
    return _total([(w * g).abs().sum() for w, g in pairs if g is not None])
