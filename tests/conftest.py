"""Shared fixtures: tiny generated datasets and teachers (seconds on a CPU, no downloads)."""

from __future__ import annotations

import pytest
import torch

from tgsage.data.base import DataSplits
from tgsage.data.probe import ProbeSet


@pytest.fixture(scope="session")
def tiny_objects() -> DataSplits:
    """256 train / 64 validation synthetic-object images at 16x16 (8 categories, 64 objects)."""
    from tgsage.data.synthetic import make_synthetic_objects

    return make_synthetic_objects(256, 64, resolution=16, seed=0)


@pytest.fixture(scope="session")
def tiny_probe(tiny_objects: DataSplits) -> ProbeSet:
    return ProbeSet.from_images(tiny_objects.val)


@pytest.fixture(scope="session")
def tiny_teacher_net(tiny_objects: DataSplits) -> torch.nn.Module:
    """A ResNet-8 at quarter width trained for one epoch (a teacher in shape, not in skill)."""
    from tgsage.models import get_model
    from tgsage.train import train_model

    net = get_model("resnet_cifar", n=1, num_classes=tiny_objects.num_classes, width_mult=0.25)
    train_model(net, tiny_objects, "1ep", "cpu_demo", device="cpu", seed=0, raise_on_failure=True)
    return net.eval()
