"""Loss-gradient proxies on one labelled minibatch (Abdelfattah et al. 2021; Lee et al. 2019).

Both run the network in train mode (BN on batch statistics), as the reference implementations
do, and take gradients with ``torch.autograd.grad`` so no ``.grad`` of the model is touched.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch
import torch.nn.functional as F
from torch import nn

from tgsage.errors import InputError
from tgsage.proxies.base import (
    finite_or_nan,
    logits_of,
    preserved,
    register_proxy,
    requiring_grad,
    scored_layers,
)


def check_labels(labels: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Labels as int64 on the logits' device, checked against the number of outputs (an
    out-of-range label is an obscure error on CPU and a device assert on CUDA)."""
    if labels.shape != logits.shape[:1]:
        raise InputError(
            f"labels have shape {tuple(labels.shape)}, expected ({logits.shape[0]},): one label "
            "per image"
        )
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise InputError(f"labels are {labels.dtype}; pass integer class indices")
    labels = labels.to(logits.device, torch.int64)
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= logits.shape[1]):
        raise InputError(
            f"labels span [{int(labels.min())}, {int(labels.max())}] but the model has "
            f"{logits.shape[1]} outputs; build it with num_classes > the largest label"
        )
    return labels


WeightGrads = list[tuple[torch.Tensor, torch.Tensor | None]]
_SHARED: ContextVar[dict[tuple[int, int, int], WeightGrads] | None] = ContextVar(
    "tgsage_proxy_weight_grads", default=None
)


@contextmanager
def sharing_weight_grads() -> Iterator[None]:
    """Inside, grad_norm and snip on the same (model, images, labels) objects reuse one
    forward/backward pass (both run under the same seed, so the values are identical)."""
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def weight_grads(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> WeightGrads:
    """``(W, dCE/dW)`` for every conv/linear weight, on one train-mode pass (None: unused)."""
    cache = _SHARED.get()
    key = (id(model), id(images), id(labels))
    if cache is not None and key in cache:
        return cache[key]
    weights = [m.weight for m in scored_layers(model)]
    with preserved(model, train=True), torch.enable_grad(), requiring_grad(weights):
        logits = logits_of(model(images))
        loss = F.cross_entropy(logits, check_labels(labels, logits))
        grads = torch.autograd.grad(loss, weights, allow_unused=True) if weights else ()
    pairs = [(w.detach(), g) for w, g in zip(weights, grads, strict=True)]
    if cache is not None:
        cache[key] = pairs
    return pairs


def _total(values: list[torch.Tensor]) -> float:
    return finite_or_nan(float(torch.stack(values).sum())) if values else 0.0


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
