"""The proxy registry and the guards that keep a scored model exactly as it was.

A :class:`Proxy` is a name, whether it needs labels, one line of description and a function
``(model, images, labels) -> float`` (images already normalised float on the model's device).
Proxies are registered by name (timm / Optuna style) so callers pick them with strings.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd

from tgsage.errors import InputError
from tgsage.registry import Registry

ProxyFn = Callable[[nn.Module, torch.Tensor, "torch.Tensor | None"], float]


@dataclass(frozen=True)
class Proxy:
    """A zero-cost score of an untrained network; higher is meant to predict higher accuracy."""

    name: str
    needs_labels: bool
    description: str
    fn: ProxyFn

    def __call__(
        self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None
    ) -> float:
        if self.needs_labels and labels is None:
            raise InputError(f"proxy {self.name!r} needs labels; pass labels=<int64 (N,)>")
        return self.fn(model, images, labels)


#: Proxies by name, in registration order; add your own with :func:`register_proxy`.
PROXIES: Registry[Proxy] = Registry("proxy", InputError)


def register_proxy(
    name: str, needs_labels: bool, description: str, *, replace: bool = False
) -> Callable[[ProxyFn], ProxyFn]:
    """Decorator: register ``fn`` as proxy ``name`` (the function itself is returned as is)."""

    def deco(fn: ProxyFn) -> ProxyFn:
        PROXIES.register(name, Proxy(name, needs_labels, description, fn), replace=replace)
        return fn

    return deco


def get_proxy(name: str) -> Proxy:
    """The proxy registered as ``name``."""
    return PROXIES.get(name)


def list_proxies() -> list[str]:
    """Names of all registered proxies, in registration order."""
    return PROXIES.names()


def scored_layers(model: nn.Module) -> list[nn.Module]:
    """Conv and linear layers: the weights every per-weight proxy sums over (as the papers)."""
    return [
        m
        for m in model.modules()
        if isinstance(m, _ConvNd | nn.Linear) and isinstance(m.weight, torch.Tensor)
    ]


def finite_or_nan(value: float) -> float:
    """Scores are finite or NaN ("undefined for this network"), never a silent +-inf."""
    return value if math.isfinite(value) else math.nan


def logits_of(output: object) -> torch.Tensor:
    """The logits of a forward pass (the first element when a model returns a tuple)."""
    if isinstance(output, tuple | list):
        output = output[0]
    if not isinstance(output, torch.Tensor):
        raise InputError(f"the model returned {type(output).__name__}, expected logits (a Tensor)")
    return output


@contextmanager
def preserved(model: nn.Module, train: bool = True) -> Iterator[nn.Module]:
    """Put ``model`` in train (or eval) mode for a proxy, then restore every module's mode and
    every buffer (BN running statistics move in train mode) exactly as they were.

    Parameters and their ``.grad`` are never written by the proxies (they take gradients with
    ``torch.autograd.grad``), so they need no snapshot.
    """
    modes = [(m, m.training) for m in model.modules()]
    buffers = [
        (m, key, b, b.detach().clone())
        for m in model.modules()
        for key, b in m._buffers.items()
        if b is not None
    ]
    model.train(train)
    try:
        yield model
    finally:
        with torch.no_grad():
            for m, key, b, saved in buffers:
                b.copy_(saved)
                m._buffers[key] = b
        for m, flag in modes:
            m.training = flag


@contextmanager
def requiring_grad(tensors: list[torch.Tensor]) -> Iterator[list[torch.Tensor]]:
    """Temporarily let frozen weights take gradients (a proxy scores the architecture, not
    the caller's choice of what to fine-tune); restores each ``requires_grad`` flag."""
    flags = [t.requires_grad for t in tensors]
    for t in tensors:
        t.requires_grad_(True)
    try:
        yield tensors
    finally:
        for t, flag in zip(tensors, flags, strict=True):
            t.requires_grad_(flag)
