"""A small plain CNN: the CPU-friendly stand-in for demos, tests and benchmarks."""

from __future__ import annotations

import torch
from torch import nn

from tgsage.features import FeatureModule


class SmallCNN(FeatureModule):
    """``depth`` blocks of conv3x3-BN-ReLU (stride 2 after the first), global pool, linear.

    Features are the block outputs, named "conv1", "conv2", ... .
    """

    def __init__(
        self, num_classes: int = 10, width: int = 32, depth: int = 3, in_channels: int = 3
    ) -> None:
        super().__init__()
        layers = []
        c_in = in_channels
        for i in range(depth):
            c_out = width * 2 ** min(i, 2)
            layers.append(
                nn.Sequential(
                    nn.Conv2d(c_in, c_out, 3, stride=1 if i == 0 else 2, padding=1, bias=False),
                    nn.BatchNorm2d(c_out),
                    nn.ReLU(inplace=True),
                )
            )
            c_in = c_out
        self.blocks = nn.ModuleList(layers)
        self.fc = nn.Linear(c_in, num_classes)
        self._names = tuple(f"conv{i + 1}" for i in range(depth))

    def forward_with_features(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        feats = {}
        for name, block in zip(self._names, self.blocks, strict=True):
            x = block(x)
            feats[name] = x
        return self.fc(x.mean(dim=(2, 3))), feats
