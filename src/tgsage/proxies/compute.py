"""``compute_proxies``: score one network (or spec) with any set of registered proxies."""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from tgsage.data.pipeline import (
    Augmentation,
    Normalize,
    get_augmentation,
    normalize_images,
    resolve_device,
)
from tgsage.errors import InputError
from tgsage.proxies.base import PROXIES, Proxy, get_proxy
from tgsage.proxies.init import reinitialize
from tgsage.proxies.onepass import PROXY_NEEDS, sharing_passes
from tgsage.spaces import ArchSpec, build_model


def resolve_proxies(names: str | Sequence[str] | None) -> list[Proxy]:
    """``None``: every registered proxy; a name or a list of names otherwise."""
    if names is None:
        return list(PROXIES.values())
    if isinstance(names, str):
        names = [names]
    if len(set(names)) != len(names):
        raise InputError(f"proxy names {list(names)} repeat a name; list each proxy once")
    return [get_proxy(n) for n in names]


def normalize_mode(normalize: str | Augmentation | None) -> Normalize:
    """'per_image' / 'unit', or the normalisation of an augmentation preset or object (the
    training config's ``augment``), so proxies see images as training does."""
    if isinstance(normalize, str) and normalize in ("per_image", "unit"):
        return normalize  # type: ignore[return-value]
    return get_augmentation(normalize).normalize


def prepare_batch(
    images: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray | Sequence[int] | None,
    batch_size: int | None,
    seed: int,
    normalize: Normalize,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Check shapes, take a seeded random subset of ``batch_size`` images (a class-sorted probe
    set's first images would be one class), normalise uint8 images as training does."""
    images = torch.as_tensor(images)
    if images.ndim != 4:
        raise InputError(f"images have shape {tuple(images.shape)}; pass an (N, C, H, W) batch")
    n = images.shape[0]
    if n < 2:
        raise InputError(f"{n} image(s) given; the proxies need a minibatch of at least 2")
    if labels is not None:
        labels = torch.as_tensor(labels)
        if labels.shape != (n,):
            raise InputError(
                f"labels have shape {tuple(labels.shape)}, expected ({n},): one per image"
            )
    if batch_size is not None:
        if type(batch_size) is not int or not 2 <= batch_size <= n:
            raise InputError(f"batch_size={batch_size!r}; choose an int in [2, {n}] (or None)")
        if batch_size < n:
            gen = torch.Generator().manual_seed(seed)
            idx = torch.randperm(n, generator=gen)[:batch_size].sort().values
            images = images[idx]
            labels = labels[idx] if labels is not None else None
    if images.dtype == torch.uint8:
        images = normalize_images(images, normalize)
    elif images.dtype.is_floating_point:
        images = images.to(torch.float32)
    else:
        raise InputError(f"images are {images.dtype}; pass uint8 (0-255) or float images")
    if not bool(torch.isfinite(images).all()):
        raise InputError("images contain NaN or inf; clean the input batch")
    return images, labels


def _on_device(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` itself when it already lives on ``device``, else a copy moved there (moving
    the caller's model would change where its parameters and gradients live)."""
    tensors = [*model.parameters(), *model.buffers()]
    if all(t.device == device for t in tensors):
        return model
    return copy.deepcopy(model).to(device)


def _rng_devices(device: torch.device) -> list[int]:
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


def compute_proxies(
    model_or_spec: nn.Module | ArchSpec | dict | str,
    images: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray | Sequence[int] | None = None,
    names: str | Sequence[str] | None = None,
    *,
    num_classes: int = 10,
    width_mult: float = 1.0,
    device: str | torch.device | None = "auto",
    seed: int = 0,
    batch_size: int | None = None,
    normalize: str | Augmentation | None = "per_image",
    timings: dict[str, float] | None = None,
    init: str | None = None,
) -> dict[str, float]:
    """``{proxy name: score}`` for one network on one minibatch; higher predicts better.

    ``model_or_spec``: an ``nn.Module`` (left exactly as it was: parameters, ``.grad``, modes,
    buffers; scored on a copy if it lives on another device) or a spec / dict / JSON, built
    for ``images``' shape with ``num_classes`` and ``width_mult`` under ``seed``. ``images``:
    (N, C, H, W) uint8 (normalised by ``normalize``: 'per_image', 'unit' or an augmentation
    preset, as in training) or float (used as given). ``labels`` (N,) int: needed by
    grad_norm and snip. ``batch_size``: score on a seeded random subset of that many images.
    ``device="auto"``: CUDA when available. Each proxy runs with the torch RNG seeded by
    ``seed`` (and the caller's RNG state restored), so results repeat. The proxies share
    one train-mode forward and its backward passes (``tgsage.proxies.onepass``; VKDNW's eval
    pass is its own): a proxy's value is the same alone or with others. ``timings``: a dict
    that receives each proxy's wall seconds (a shared pass is charged to the first proxy that
    runs it). ``init``: score a copy re-initialised with that scheme (``"kaiming_normal"``,
    as AZ-NAS's and VKDNW's code; see ``tgsage.proxies.init``) under ``seed``.

    Undefined scores are NaN (non-finite outputs, a constant Jacobian row); naswot is -inf
    when its kernel is singular (e.g. no nn.ReLU modules).
    """
    proxies = resolve_proxies(names)
    missing = [p.name for p in proxies if p.needs_labels]
    if labels is None and missing:
        raise InputError(f"proxies {missing} need labels; pass labels=<int (N,)> or drop them")
    x, y = prepare_batch(images, labels, batch_size, seed, normalize_mode(normalize))
    dev = resolve_device(device)
    if dev.type == "cuda" and dev.index is None:  # "cuda" must equal the params' "cuda:0"
        dev = torch.device("cuda", torch.cuda.current_device())
    rng_devices = _rng_devices(dev)
    if isinstance(model_or_spec, nn.Module):
        model = _on_device(model_or_spec, dev)
    elif isinstance(model_or_spec, ArchSpec | dict | str | bytes):
        with torch.random.fork_rng(devices=rng_devices):
            torch.manual_seed(seed)
            model = build_model(
                model_or_spec, num_classes, tuple(x.shape[1:]), width_mult, device=dev
            )
    else:
        raise InputError(
            f"cannot score a {type(model_or_spec).__name__}; pass an nn.Module or a spec "
            "(ArchSpec, its dict or its JSON)"
        )
    if init is not None:
        if model is model_or_spec:
            model = copy.deepcopy(model)
        with torch.random.fork_rng(devices=rng_devices):
            torch.manual_seed(seed)
            reinitialize(model, init)
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    x = x.to(dev, dtype)
    y = y.to(dev) if y is not None else None
    needs = frozenset().union(*(PROXY_NEEDS.get(p.name, frozenset()) for p in proxies))
    scores: dict[str, float] = {}
    with sharing_passes(needs, y):
        for proxy in proxies:
            t0 = time.perf_counter()
            with torch.random.fork_rng(devices=rng_devices):
                torch.manual_seed(seed)
                scores[proxy.name] = proxy(model, x, y)
            if timings is not None:
                timings[proxy.name] = time.perf_counter() - t0
    return scores
