"""Accuracy of a network on an in-memory image set: batched, no grad, eval mode."""

from __future__ import annotations

import torch
from torch import nn

from tgsage.data.base import ImageSet
from tgsage.data.pipeline import Augmentation, BatchIterator, Normalize, resolve_device
from tgsage.errors import InputError


def evaluate_accuracy(
    model: nn.Module,
    imageset: ImageSet,
    device: str | torch.device | None = "auto",
    batch_size: int = 500,
    *,
    normalize: Normalize = "per_image",
    channels_last: bool = False,
) -> float:
    """Fraction of ``imageset`` the model classifies correctly (top-1).

    Images get the deterministic evaluation preprocessing (no crop or flip; ``normalize`` must
    match training). The model is moved to ``device`` and put in eval mode for the pass; its
    previous train/eval mode is restored. Correct counts accumulate on the device: one sync.
    """
    if len(imageset) == 0:
        raise InputError(f"{imageset.name}: cannot evaluate accuracy on an empty image set")
    dev = resolve_device(device)
    was_training = model.training
    model.to(dev)
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=dev)
    try:
        with torch.inference_mode():
            batches = BatchIterator(
                imageset,
                batch_size,
                device=dev,
                augment=Augmentation(normalize=normalize),
                channels_last=channels_last,
            )
            for x, y in batches:
                correct += (model(x).argmax(dim=1) == y).sum()
    finally:
        model.train(was_training)
    return int(correct.item()) / len(imageset)
