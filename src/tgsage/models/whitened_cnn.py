"""A fast CIFAR teacher: a frozen patch-whitening first layer, then three conv groups.

CPU time is what limits a teacher here, and the ResNet schedule of the paper gets little
accuracy per example. Fast CIFAR-10 recipes (Page 2018's "How to train your ResNet",
hlb-CIFAR10, Jordan 2024's airbench) get far more, with a few ideas this model follows:

* the first layer is a 2x2 convolution initialised as a *patch-whitening* transform from the
  training images (the eigenvectors of the 2x2x3 patch covariance, scaled by
  ``1/sqrt(eigenvalue + eps)``, with both signs so that a following non-linearity keeps all
  information), and frozen;
* three groups of ``conv3x3 -> max-pool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU`` with widths
  ``(w, 4w, 4w)`` (``base_width`` w = 64 in airbench; less on a CPU);
* convolutions start close to the identity (Dirac init of the first ``in_channels`` filters), so
  the untrained network passes its input through;
* global max pooling and a bias-free linear head whose logits are scaled by 1/9.

Train it with label smoothing (0.2) and a short schedule; see ``benchmarks/studies/
trained_teachers.py``. Exposed features (teacher layers): ``block1``, ``block2``, ``block3``
(the outputs of the three groups, at 15x15, 7x7 and 3x3 for 32x32 inputs).
"""

from __future__ import annotations

import torch
from torch import nn

from tgsage.errors import ConfigError, InputError
from tgsage.features import FeatureModule


def _dirac_conv(cin: int, cout: int) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
    with torch.no_grad():
        nn.init.dirac_(conv.weight[: min(cin, cout)])
    return conv


class _ConvGroup(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = _dirac_conv(cin, cout)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = nn.BatchNorm2d(cout)
        self.conv2 = _dirac_conv(cout, cout)
        self.norm2 = nn.BatchNorm2d(cout)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.norm1(self.pool(self.conv1(x))))
        return self.act(self.norm2(self.conv2(x)))


class WhitenedCNN(FeatureModule):
    """Whitening layer + three conv groups (airbench-style), a :class:`FeatureNet`."""

    _names = ("block1", "block2", "block3")

    def __init__(
        self,
        num_classes: int = 10,
        base_width: int = 64,
        in_channels: int = 3,
        patch: int = 2,
        logit_scale: float = 1 / 9,
    ) -> None:
        super().__init__()
        if base_width < 1 or patch < 1:
            raise ConfigError(f"base_width and patch must be >= 1, got {base_width}, {patch}")
        self.patch = patch
        white = 2 * in_channels * patch * patch
        self.whiten = nn.Conv2d(in_channels, white, patch, bias=True)
        self.whiten.weight.requires_grad_(False)
        nn.init.zeros_(self.whiten.bias)
        self.act = nn.GELU()
        widths = (base_width, 4 * base_width, 4 * base_width)
        self.block1 = _ConvGroup(white, widths[0])
        self.block2 = _ConvGroup(widths[0], widths[1])
        self.block3 = _ConvGroup(widths[1], widths[2])
        self.head = nn.Linear(widths[2], num_classes, bias=False)
        self.logit_scale = float(logit_scale)
        self.whitened = False

    @torch.no_grad()
    def init_whitening(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        """Set the first layer to whiten the ``patch x patch`` patches of ``images``
        (N x C x H x W, already normalised as in training)."""
        if images.ndim != 4 or images.shape[1] * self.patch**2 * 2 != self.whiten.out_channels:
            raise InputError(
                f"init_whitening needs N x {self.whiten.in_channels} x H x W images, "
                f"got {tuple(images.shape)}"
            )
        p = self.patch
        x = images.to(torch.float64)
        patches = x.unfold(2, p, 1).unfold(3, p, 1)  # N, C, H', W', p, p
        flat = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, x.shape[1] * p * p)
        cov = flat.T @ flat / flat.shape[0]
        evals, evecs = torch.linalg.eigh(cov)
        filters = (evecs.T / torch.sqrt(evals.clamp_min(0) + eps)[:, None]).flip(0)
        filters = filters.reshape(-1, x.shape[1], p, p)
        w = torch.cat([filters, -filters]).to(self.whiten.weight.dtype)
        self.whiten.weight.copy_(w)
        self.whitened = True

    def forward_with_features(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x = self.act(self.whiten(x))
        f1 = self.block1(x)
        f2 = self.block2(f1)
        f3 = self.block3(f2)
        pooled = torch.amax(f3, dim=(2, 3))
        return self.head(pooled) * self.logit_scale, {"block1": f1, "block2": f2, "block3": f3}


__all__ = ["WhitenedCNN"]
