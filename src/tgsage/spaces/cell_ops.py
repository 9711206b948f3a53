"""The 8 operations of the cell space (PNAS / TG-SAGE supplementary), as NASNet builds them.

Every op maps ``C`` channels to ``C`` channels; with ``stride=2`` (ops on a reduction cell's
inputs) it maps ``H`` to ``ceil(H / 2)``. Conventions follow the NASNet reference
implementation: convolutions are ``ReLU -> conv -> BN``; a separable conv is that pattern
applied twice (depthwise ``k x k`` then pointwise ``1 x 1``), stride on the first; identity
with stride 2 is a factorized reduction (two offset strided 1x1 convs, concatenated); pools
are 3x3 with padding 1 (average pooling ignores the padding).

Also here: :func:`drop_path` (NASNet's scheduled drop-path regulariser) and
:class:`AuxiliaryHead` (the classifier NASNet/PNAS attach two thirds into the network during
final training).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from tgsage.spaces.pooling import AvgPool3x3

OPS: tuple[str, ...] = (
    "identity",
    "avg_pool_3x3",
    "max_pool_3x3",
    "dil_conv_3x3",
    "conv_1x7_7x1",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "sep_conv_7x7",
)


class ReLUConvBN(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(cout),
        )


class FactorizedReduce(nn.Module):
    """Halve the resolution without dropping 3/4 of the pixels: two 1x1 stride-2 convs, the
    second on the input shifted by one pixel, concatenated (NASNet's ``factorized_reduction``).
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        c1 = max(1, cout // 2)
        self.relu = nn.ReLU(inplace=False)
        self.path1 = nn.Conv2d(cin, c1, 1, stride=2, bias=False)
        self.path2 = nn.Conv2d(cin, cout - c1, 1, stride=2, bias=False) if cout > c1 else None
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        a = self.path1(x)
        if self.path2 is None:
            return self.bn(a)
        b = self.path2(F.pad(x[:, :, 1:, 1:], (0, 1, 0, 1)))
        return self.bn(torch.cat([a, b], dim=1))


def sep_conv(c: int, k: int, stride: int) -> nn.Module:
    layers: list[nn.Module] = []
    for rep in range(2):
        s = stride if rep == 0 else 1
        layers += [
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, k, stride=s, padding=k // 2, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c),
        ]
    return nn.Sequential(*layers)


def dil_conv(c: int, stride: int) -> nn.Module:
    return nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(c, c, 3, stride=stride, padding=2, dilation=2, bias=False),
        nn.BatchNorm2d(c),
    )


def conv_1x7_7x1(c: int, stride: int) -> nn.Module:
    return nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(c, c, (1, 7), stride=(1, stride), padding=(0, 3), bias=False),
        nn.Conv2d(c, c, (7, 1), stride=(stride, 1), padding=(3, 0), bias=False),
        nn.BatchNorm2d(c),
    )


def identity(c: int, stride: int) -> nn.Module:
    return nn.Identity() if stride == 1 else FactorizedReduce(c, c)


OP_FACTORIES: dict[str, Callable[[int, int], nn.Module]] = {
    "identity": identity,
    "avg_pool_3x3": lambda c, s: AvgPool3x3(s),
    "max_pool_3x3": lambda c, s: nn.MaxPool2d(3, stride=s, padding=1),
    "dil_conv_3x3": dil_conv,
    "conv_1x7_7x1": conv_1x7_7x1,
    "sep_conv_3x3": lambda c, s: sep_conv(c, 3, s),
    "sep_conv_5x5": lambda c, s: sep_conv(c, 5, s),
    "sep_conv_7x7": lambda c, s: sep_conv(c, 7, s),
}
assert tuple(OP_FACTORIES) == OPS


def make_op(name: str, channels: int, stride: int = 1) -> nn.Module:
    """Build op ``name`` for ``channels`` channels (names are checked by the spec)."""
    return OP_FACTORIES[name](channels, stride)


def drop_path(x: torch.Tensor, p: float) -> torch.Tensor:
    """Zero whole samples of ``x`` with probability ``p`` and scale the rest by ``1 / (1 - p)``
    (NASNet's drop-path: one Bernoulli draw per sample, so a path is dropped for that image).

    The caller applies it only in training; the expectation is unchanged, so evaluation needs
    no rescaling."""
    if p <= 0.0:
        return x
    keep = 1.0 - p
    mask = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), device=x.device, dtype=x.dtype)
    return x * mask.bernoulli_(keep).div_(keep)


class AuxiliaryHead(nn.Module):
    """NASNet's auxiliary classifier (TF-slim ``_build_aux_head``): ``ReLU -> 5x5 average pool,
    stride 3 -> 1x1 conv (128) -> BN -> ReLU -> conv (768) over the whole remaining map -> BN
    -> ReLU -> linear``. ``size`` is the input's spatial size (fixed by the image size), so the
    second conv's kernel is known when the network is built (2x2 on CIFAR, 4x4 on 224 and 64
    pixel ImageNet); maps smaller than 5 pixels skip the pool. ``width_mult`` scales 128 and
    768 with the rest of the network."""

    def __init__(
        self, cin: int, num_classes: int, size: tuple[int, int], width_mult: float = 1.0
    ) -> None:
        super().__init__()
        c1, c2 = max(1, round(128 * width_mult)), max(1, round(768 * width_mult))
        pool = min(size) >= 5
        h, w = ((s - 5) // 3 + 1 if pool else s for s in size)
        self.features = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.AvgPool2d(5, stride=3) if pool else nn.Identity(),
            nn.Conv2d(cin, c1, 1, bias=False),
            nn.BatchNorm2d(c1),
            nn.ReLU(inplace=False),
            nn.Conv2d(c1, c2, (h, w), bias=False),
            nn.BatchNorm2d(c2),
            nn.ReLU(inplace=False),
        )
        self.classifier = nn.Linear(c2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))
