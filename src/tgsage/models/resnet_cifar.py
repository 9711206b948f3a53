"""The paper's teacher: the CIFAR ResNet of He et al. (2016), 6n + 2 layers.

Three stacks of ``n`` basic blocks (two 3x3 convs each) with 16, 32, 64 filters (times
``width_mult``) at 32x32, 16x16, 8x8, then global average pooling and a linear classifier.
n = 9 gives ResNet-56, the paper's teacher (sections 4.1-4.3); n = 3 gives ResNet-20.

Shortcuts: option "A" (default, as He et al. used on CIFAR) is parameter-free: the identity,
subsampled by 2 and zero-padded in channels where a block changes shape. Option "B" uses a
1x1 strided convolution + batch norm there (and the identity elsewhere).

Features (the paper's L1-L3): the outputs of the three stacks, named "stack1", "stack2",
"stack3".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tgsage.errors import ConfigError
from tgsage.features import FeatureModule


class _ShortcutA(nn.Module):
    """Parameter-free projection: stride-2 subsampling and zero channels (He et al. option A)."""

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.extra = planes - in_planes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.extra > 0:
            lo = self.extra // 2
            x = F.pad(x, (0, 0, 0, 0, lo, self.extra - lo))
        return x


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus shortcut, then ReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int, shortcut: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        # ReLU modules rather than F.relu: hooks (NASWOT's activation codes) can see them
        self.relu1, self.relu2 = nn.ReLU(inplace=True), nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            if shortcut == "A":
                self.shortcut = _ShortcutA(in_planes, planes, stride)
            else:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                    nn.BatchNorm2d(planes),
                )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class ResNetCifar(FeatureModule):
    """CIFAR ResNet (6n + 2 layers) implementing :class:`tgsage.features.FeatureNet`."""

    _names = ("stack1", "stack2", "stack3")

    def __init__(
        self,
        n: int = 9,
        num_classes: int = 10,
        width_mult: float = 1.0,
        shortcut: str = "A",
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if n < 1:
            raise ConfigError(f"ResNet-CIFAR needs n >= 1 blocks per stack, got n={n}")
        if width_mult <= 0:
            raise ConfigError(f"width_mult must be positive, got {width_mult}")
        shortcut = shortcut.upper()
        if shortcut not in ("A", "B"):
            raise ConfigError(f"shortcut must be 'A' or 'B', got {shortcut!r}")
        widths = [max(1, round(w * width_mult)) for w in (16, 32, 64)]
        self.n, self.shortcut_option, self.widths = n, shortcut, tuple(widths)
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        stacks = []
        in_planes = widths[0]
        for i, planes in enumerate(widths):
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(BasicBlock(in_planes, planes, stride, shortcut))
                in_planes = planes
            stacks.append(nn.Sequential(*blocks))
        self.stack1, self.stack2, self.stack3 = stacks
        self.fc = nn.Linear(widths[2], num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def depth(self) -> int:
        return 6 * self.n + 2

    def forward_with_features(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x = self.relu(self.bn1(self.conv1(x)))
        f1 = self.stack1(x)
        f2 = self.stack2(f1)
        f3 = self.stack3(f2)
        logits = self.fc(torch.flatten(F.adaptive_avg_pool2d(f3, 1), 1))
        return logits, {"stack1": f1, "stack2": f2, "stack3": f3}
