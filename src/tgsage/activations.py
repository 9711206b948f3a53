"""Probe-set activations of every exposed layer: one no-grad pass, bounded memory.

With a grouping (category, object) only per-group sums are kept, so memory is
``groups x features`` per layer whatever the probe size. Without one, full (n x d) activations
are kept for the requested layers on the CPU (float32); :func:`layer_chunks` splits the layers
into passes that fit a memory budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from tgsage.data.pipeline import prepare_images, resolve_device
from tgsage.errors import InputError
from tgsage.features import FeatureNet


@torch.inference_mode()
def feature_widths(
    model: FeatureNet, image_shape: Sequence[int], device: torch.device | str = "cpu"
) -> dict[str, int]:
    """Features per image of each exposed layer (one forward pass of two blank images)."""
    was_training = model.training  # type: ignore[attr-defined]
    model.eval()  # type: ignore[attr-defined]
    try:
        x = torch.zeros(2, *image_shape, device=device)
        _, feats = model.forward_with_features(x)
    finally:
        model.train(was_training)  # type: ignore[attr-defined]
    return {k: int(v[0].numel()) for k, v in feats.items()}


def layer_chunks(widths: dict[str, int], n_images: int, budget_bytes: int) -> list[list[str]]:
    """Groups of layers whose float32 (n x d) activations fit ``budget_bytes`` per pass."""
    chunks: list[list[str]] = [[]]
    used = 0
    for name, d in widths.items():
        need = 4 * n_images * d
        if chunks[-1] and used + need > budget_bytes:
            chunks.append([])
            used = 0
        chunks[-1].append(name)
        used += need
    return chunks


@torch.inference_mode()
def collect_activations(
    model: FeatureNet,
    images: torch.Tensor,
    *,
    layers: Sequence[str] | None = None,
    groups: torch.Tensor | np.ndarray | None = None,
    group_order: Sequence[Any] | None = None,
    batch_size: int = 250,
    device: str | torch.device | None = "auto",
    normalize: str = "per_image",
) -> dict[str, torch.Tensor]:
    """Activations of ``layers`` (default: all) for uint8 ``images`` (N, C, H, W), in order.

    Returns float32 CPU tensors (N, d), or (G, d) group means when ``groups`` is given (group
    order: ``group_order`` or sorted labels). The model runs in eval mode without gradients;
    its previous mode is restored. NaN/inf activations raise :class:`InputError`.
    """
    dev = resolve_device(device)
    n = images.shape[0]
    was_training = model.training  # type: ignore[attr-defined]
    model.eval()  # type: ignore[attr-defined]
    inv: torch.Tensor | None = None
    counts: torch.Tensor | None = None
    if groups is not None:
        lab = np.asarray(groups.cpu() if isinstance(groups, torch.Tensor) else groups)
        if lab.shape != (n,):
            raise InputError(f"{lab.shape[0] if lab.ndim else 0} group labels for {n} images")
        order = np.unique(lab) if group_order is None else np.asarray(list(group_order))
        pos = {v: i for i, v in enumerate(order.tolist())}
        missing = sorted({v for v in lab.tolist() if v not in pos}, key=str)
        if missing:
            raise InputError(f"labels {missing[:10]} are not in the group order")
        inv = torch.as_tensor([pos[v] for v in lab.tolist()], dtype=torch.long)
        counts = torch.bincount(inv, minlength=len(order))
        if bool((counts == 0).any()):
            empty = [order[i] for i in torch.nonzero(counts == 0).flatten().tolist()]
            raise InputError(f"groups {empty[:10]} have no probe images")
    out: dict[str, torch.Tensor] = {}
    try:
        for start in range(0, n, batch_size):
            x = prepare_images(images[start : start + batch_size], dev, normalize)  # type: ignore[arg-type]
            _, feats = model.forward_with_features(x)
            wanted = layers if layers is not None else list(feats)
            for name in wanted:
                if name not in feats:
                    raise InputError(f"layer {name!r} is not exposed; exposed: {list(feats)}")
                f = feats[name].reshape(x.shape[0], -1).float()
                if not bool(torch.isfinite(f).all()):
                    raise InputError(
                        f"layer {name!r} produced NaN/inf activations on probe images "
                        f"{start}..{start + x.shape[0] - 1}; the network has diverged"
                    )
                if inv is not None:
                    if name not in out:
                        out[name] = torch.zeros(len(counts), f.shape[1], dtype=torch.float64)  # type: ignore[arg-type]
                    idx = inv[start : start + x.shape[0]]
                    out[name].index_add_(0, idx, f.double().cpu())
                else:
                    if name not in out:
                        out[name] = torch.empty(n, f.shape[1], dtype=torch.float32)
                    out[name][start : start + x.shape[0]] = f.cpu()
    finally:
        model.train(was_training)  # type: ignore[attr-defined]
    if inv is not None:
        assert counts is not None
        out = {k: (v / counts[:, None]).float() for k, v in out.items()}
    return out


def memory_budget(fraction: float = 0.25) -> int:
    """A share of free host memory for held activations (at least 256 MiB)."""
    from tgsage.rsa.streaming import available_memory

    return max(256 * 2**20, int(available_memory() * fraction))
