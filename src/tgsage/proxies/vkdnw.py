"""VKDNW (Tybl, Neumann, "Training-free Neural Architecture Search through Variance of
Knowledge of Deep Network Weights", CVPR 2025).

How hard the network's weights are to estimate is read from the spectrum of the Fisher
information matrix ``F = mean_n J_n^T (diag(p_n) - p_n p_n^T) J_n`` of the network's class
distribution, with ``J_n`` the Jacobian of image ``n``'s logits with respect to a sample of
weights and ``p_n`` its softmax, smoothed as in the authors' code (``0.95 p + 0.05 / K``).
Eval mode (BN on running statistics, images independent). As the authors' code, the weights
are the first element of each of the first 128 parameter tensors (in ``named_parameters``
order, i.e. from the input side). A uniform spectrum means every direction is estimated with
similar certainty: ``vkdnw`` is the entropy of the nine deciles of F's eigenvalues, normalised
to sum 1 (at most ``log 9``).

``vkdnw_single`` is the paper's single-network ranking: by the number of layers with weights
first (``trainable_layers``), then by ``vkdnw``, written as one number
``trainable_layers + vkdnw / (2 log 9)``.

Cost: one eval forward and K - 1 backward passes (each image's class covariance has rank
K - 1), each stopping at the first sampled layer and computing no weight gradient: a zero
per-image "probe" is added to each sampled layer's output along the layer's forward-mode
derivative with respect to its sampled weight, so the gradient of the logits with respect
to the probes is exactly the per-image Jacobian, and no per-image or per-weight backward is
run. (Batching the K - 1 backward passes with ``vmap``/``is_grads_batched`` measured slower
on the CPU than running them in turn.)
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, jvp

from tgsage.proxies.base import finite_or_nan, logits_of, preserved, register_proxy
from tgsage.proxies.depth import trainable_layers
from tgsage.proxies.onepass import declare_needs, is_plain_layer, shared_value

__all__ = ["VKDNW_TENSORS", "fisher_information", "vkdnw", "vkdnw_entropy", "vkdnw_single"]

VKDNW_TENSORS = 128
VKDNW_SMOOTHING = 0.05
_DECILES = tuple(i / 10 for i in range(1, 10))


def _owners(model: nn.Module) -> dict[int, tuple[nn.Module, str]]:
    owners: dict[int, tuple[nn.Module, str]] = {}
    for module in model.modules():
        for local, p in module._parameters.items():
            if p is not None:
                owners.setdefault(id(p), (module, local))
    return owners


def _first_element_tangent(
    module: nn.Module, local: str, p: torch.Tensor, args: tuple, kwargs: dict
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """``(channels, d output / d p.flatten()[0])`` of one call of ``module``, restricted to the
    output channels it touches (dim 1; None: all). Closed forms for plain conv / linear layers
    and BatchNorm on running statistics (element 0 touches output channel 0 only), forward-mode
    autodiff of the module otherwise."""
    x = args[0] if args and isinstance(args[0], torch.Tensor) else None
    zero = torch.zeros(1, dtype=torch.long, device=p.device)
    if x is not None and not kwargs and len(args) == 1:
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not module.training:
            if module.running_mean is not None and module.running_var is not None:
                x0 = x[:, :1]
                if local == "bias":
                    return zero, torch.ones_like(x0)
                shape = (1, 1) + (1,) * (x.ndim - 2)
                mean = module.running_mean[:1].reshape(shape)
                var = module.running_var[:1].reshape(shape)
                return zero, (x0 - mean) / torch.sqrt(var + module.eps)
        if is_plain_layer(module) and isinstance(module, nn.Linear):
            if local == "bias":
                return None, _one_hot_last(x.shape[:-1], module.out_features, x)
            return None, _one_hot_last(x.shape[:-1], module.out_features, x, x[..., 0])
        if (
            is_plain_layer(module)
            and type(module) in (nn.Conv1d, nn.Conv2d, nn.Conv3d)
            and module.padding_mode == "zeros"
            and module.padding != "same"
        ):
            if local == "bias":
                y = module._conv_forward(x[:1], module.weight, None)  # output shape only
                return zero, torch.ones(
                    (x.shape[0], 1, *y.shape[2:]), dtype=x.dtype, device=x.device
                )
            delta = torch.zeros((1, 1, *module.kernel_size), dtype=x.dtype, device=x.device)
            delta.view(-1)[0] = 1.0
            conv = getattr(F, f"conv{x.ndim - 2}d")
            t = conv(x[:, :1], delta, None, module.stride, module.padding, module.dilation)
            return zero, t
    direction = torch.zeros_like(p)
    direction.view(-1)[0] = 1.0

    def f(q: torch.Tensor) -> torch.Tensor:
        return functional_call(module, {local: q}, args, kwargs)

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch's jvp decompositions load
        _, t = jvp(f, (p.detach(),), (direction,))
    if t.ndim < 2:
        return None, t
    touched = t.abs().reshape(t.shape[0], t.shape[1], -1).amax(dim=(0, 2)) > 0
    idx = touched.nonzero().flatten()
    return idx, t.index_select(1, idx)


def _one_hot_last(
    lead: torch.Size, width: int, like: torch.Tensor, value: torch.Tensor | None = None
) -> torch.Tensor:
    """A (*lead, width) tensor, zero except the last dim's first entry (``value`` or 1)."""
    t = torch.zeros((*lead, width), dtype=like.dtype, device=like.device)
    t[..., 0] = 1.0 if value is None else value
    return t


class _Probes:
    """Forward hooks on the sampled weights' layers: each call's output gets
    ``probe[:, j] * d output / d p_j.flatten()[0]`` added for every sampled weight ``j`` it owns
    (a zero probe, so the values are unchanged). The logits' derivative with respect to
    ``probe[n, j]`` is then exactly image ``n``'s derivative with respect to weight ``j``
    (summed over the layer's calls), and the backward that yields it needs no hook."""

    def __init__(self, entries: dict[int, list[tuple[int, str, torch.Tensor]]], probe) -> None:
        self.entries = entries
        self.probe = probe
        self.off = False

    def __call__(self, module: nn.Module, args: tuple, kwargs: dict, output: object) -> object:
        if self.off or not isinstance(output, torch.Tensor):
            return None
        if output.ndim < 2 or output.shape[0] != self.probe.shape[0]:
            return None  # not a per-image output: the weight's derivative stays 0
        args = tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in args)
        self.off = True
        try:
            for j, local, p in self.entries[id(module)]:
                idx, t = _first_element_tangent(module, local, p, args, kwargs)
                if t.shape[0] != output.shape[0]:
                    continue
                scale = self.probe[:, j].to(t.dtype).reshape((-1,) + (1,) * (t.ndim - 1))
                if idx is None:
                    output = output + scale * t
                else:
                    output = output.index_add(1, idx, scale * t)
        finally:
            self.off = False
        return output


def _fisher_directions(logits: torch.Tensor) -> torch.Tensor:
    """(K - 1, N, K) vectors ``sqrt(lambda_i) v_i`` of each image's smoothed class covariance
    ``diag(p) - p p^T = sum_i lambda_i v_i v_i^T`` (float64 ``eigh``; the dropped direction is
    the all-ones vector, whose eigenvalue is exactly 0 since the probabilities sum to 1)."""
    k = logits.shape[1]
    probs = torch.softmax(logits.detach().to(torch.float64), dim=1)
    probs = probs * (1 - VKDNW_SMOOTHING) + VKDNW_SMOOTHING / k
    cov = torch.diag_embed(probs) - probs[:, :, None] * probs[:, None, :]
    lam, vec = torch.linalg.eigh(cov)  # ascending: lam[:, 0] is the zero one
    scaled = vec[:, :, 1:] * lam[:, None, 1:].clamp(min=0.0).sqrt()
    return scaled.permute(2, 0, 1)


def fisher_information(
    model: nn.Module, images: torch.Tensor, tensors: int = VKDNW_TENSORS
) -> torch.Tensor:
    """VKDNW's (P, P) float64 Fisher matrix for the first element of each of the first
    ``tensors`` parameter tensors (see the module docstring).

    ``F = mean_n J_n^T C_n J_n`` with ``C_n = sum_i u_ni u_ni^T`` (:func:`_fisher_directions`)
    is ``G^T G / N`` for the rows ``G[i, n] = J_n^T u_ni``: K - 1 vector-Jacobian products,
    taken with respect to a zero per-image probe on each sampled weight (:class:`_Probes`),
    so each backward stops at the first sampled layer and computes no weight gradient."""
    named = [p for _, p in model.named_parameters()][:tensors]
    owners = _owners(model)
    entries: dict[int, list[tuple[int, str, torch.Tensor]]] = {}
    modules: dict[int, nn.Module] = {}
    for j, p in enumerate(named):
        module, local = owners[id(p)]
        entries.setdefault(id(module), []).append((j, local, p))
        modules[id(module)] = module
    n = images.shape[0]
    probe = torch.zeros((n, len(named)), dtype=images.dtype, device=images.device)
    probe.requires_grad_(True)
    hooks = _Probes(entries, probe)
    handles = [m.register_forward_hook(hooks, with_kwargs=True) for m in modules.values()]
    grad = None
    try:
        with preserved(model, train=False), torch.enable_grad():
            logits = logits_of(model(images.detach()))
            for h in handles:
                h.remove()
            handles = []
            if not bool(torch.isfinite(logits).all()):  # F is undefined
                p = len(named)
                return torch.full((p, p), math.nan, dtype=torch.float64, device=images.device)
            directions = _fisher_directions(logits)
            if logits.requires_grad and directions.shape[0] > 0:
                cot = directions.to(logits.dtype)
                rows = [
                    torch.autograd.grad(
                        logits, probe, u, retain_graph=i < len(cot) - 1, allow_unused=True
                    )[0]
                    for i, u in enumerate(cot)
                ]
                grad = None if rows[0] is None else torch.stack(rows)
    finally:
        for h in handles:
            h.remove()
    if grad is None:  # no sampled weight reaches the logits
        return torch.zeros((len(named), len(named)), dtype=torch.float64, device=images.device)
    g = grad.to(torch.float64).reshape(-1, len(named))
    return g.T @ g / n


def vkdnw_entropy(fisher: torch.Tensor) -> float:
    """Entropy of the normalised deciles of the eigenvalues (as the authors' code: singular
    values, linear-interpolation quantiles, ``1e-10`` guards)."""
    if not bool(torch.isfinite(fisher).all()):
        return math.nan
    lam = torch.linalg.eigvalsh(fisher).abs()
    q = torch.quantile(lam, torch.tensor(_DECILES, dtype=lam.dtype, device=lam.device))
    q = q / (q.abs().sum() + 1e-10)
    return float(-(q * torch.log(q + 1e-10)).sum())


def _shared_fisher(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    return shared_value("fisher", model, images, lambda: fisher_information(model, images))


declare_needs("vkdnw", {"fisher"})
declare_needs("vkdnw_single", {"fisher"})


@register_proxy("vkdnw", False, "entropy of the deciles of the Fisher information spectrum")
def vkdnw(model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None) -> float:
    """NaN when the network's outputs (hence F) are not finite."""
    return finite_or_nan(vkdnw_entropy(_shared_fisher(model, images)))


@register_proxy("vkdnw_single", False, "trainable_layers first, then vkdnw (VKDNW_single)")
def vkdnw_single(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None
) -> float:
    """The lexicographic (layers, vkdnw) order as one number; NaN when vkdnw is."""
    entropy = vkdnw_entropy(_shared_fisher(model, images))
    return finite_or_nan(trainable_layers(model, images) + entropy / (2 * math.log(9)))
