"""SynFlow (Tanaka et al. 2020), the data-free proxy of Abdelfattah et al. 2021.

Score ``sum over conv/linear weights of W * dR/dW`` with ``R = sum(f(1))``, the network's
outputs on one all-ones image after every parameter is replaced by its absolute value. With
positive weights and inputs every ReLU is open, so ``R`` is the sum over all input-output
paths of the product of weights: "synaptic flow".

BatchNorm is neutralised, matching the reference's ``bn=False`` variant (a network built
without BN): in the copy every BN layer is put in eval mode with running mean 0, running
variance ``1 - eps``, weight 1 and bias 0, i.e. exactly the identity. The whole copy runs in
eval mode (no dropout). Everything is float64 because ``R`` grows like the product of the
layers' weight sums and overflows float32 in deep networks. The work happens on a deep copy,
so the caller's model (parameters, gradients, modes, buffers) is never touched.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from tgsage.proxies.base import finite_or_nan, logits_of, register_proxy, scored_layers


def linearized_copy(model: nn.Module) -> nn.Module:
    """A float64 eval-mode deep copy with ``|parameters|`` and identity BatchNorm layers."""
    net = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.grad = None
            p.abs_()
        for m in net.modules():
            if not isinstance(m, _BatchNorm):
                continue
            device = next(m.parameters(), torch.zeros(())).device
            if m.running_mean is None or m.running_var is None:
                m.track_running_stats = True
                m.running_mean = torch.zeros(m.num_features, dtype=torch.float64, device=device)
                m.running_var = torch.ones(m.num_features, dtype=torch.float64, device=device)
            m.running_mean.zero_()
            m.running_var.fill_(1.0 - m.eps)
            if m.affine:
                m.weight.fill_(1.0)
                m.bias.zero_()
    return net


@register_proxy("synflow", False, "sum of W * dR/dW, R = outputs of |W| net on all-ones input")
def synflow(model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None) -> float:
    """Data-free: only the input shape of ``images`` is used; NaN if R overflows float64."""
    net = linearized_copy(model)
    weights = [m.weight for m in scored_layers(net)]
    if not weights:
        return 0.0
    ones = torch.ones((1, *images.shape[1:]), dtype=torch.float64, device=weights[0].device)
    with torch.enable_grad():
        for w in weights:
            w.requires_grad_(True)
        total = logits_of(net(ones)).sum()
        grads = torch.autograd.grad(total, weights, allow_unused=True)
    terms = [(w.detach() * g).sum() for w, g in zip(weights, grads, strict=True) if g is not None]
    return finite_or_nan(float(torch.stack(terms).sum())) if terms else 0.0
