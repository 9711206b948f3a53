"""A fast 3x3 average pool that does not count padding (NASNet / NAS-Bench-201's avg_pool_3x3).

``nn.AvgPool2d(3, s, 1, count_include_pad=False)`` is slow on the CPU in torch 2.x: measured
35 ms forward+backward for a (64, 8, 32, 32) batch on one thread, against 5 ms for a depthwise
3x3 convolution of the same tensor (BENCHMARKS.md, section 11). In NAS-Bench-201 cells it took
most of the training time of pooling-heavy architectures. The same result comes from the
depthwise convolution with a kernel of ones (the window sums, padding contributing zeros),
divided by the number of real pixels in each window, a small map cached per size and device.
Inside :func:`native_pooling` (used by ``count_flops``) torch's pooling runs instead, so FLOP
counts stay those of the papers, where pooling is not a multiply-add.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

_NATIVE = contextvars.ContextVar("tgsage_native_pooling", default=False)


@contextlib.contextmanager
def native_pooling() -> Iterator[None]:
    """Run :class:`AvgPool3x3` as torch's ``avg_pool2d`` (same values) within the block."""
    token = _NATIVE.set(True)
    try:
        yield
    finally:
        _NATIVE.reset(token)


class AvgPool3x3(nn.Module):
    """``AvgPool2d(3, stride, padding=1, count_include_pad=False)``, computed as a depthwise
    convolution of ones divided by the count of non-padding pixels per window."""

    def __init__(self, stride: int = 1) -> None:
        super().__init__()
        self.stride = stride
        self._inverse_counts: dict[tuple, torch.Tensor] = {}

    def _inverse_count(self, sums: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """1 / (real pixels per window), shaped to multiply ``sums`` fast: (1, 1, H', W') for
        NCHW; for channels-last a full (1, C, H', W') channels-last copy, because broadcasting
        over the innermost (channel) dimension is several times slower on the CPU."""
        nhwc = sums.dim() == 4 and sums.is_contiguous(memory_format=torch.channels_last)
        c = sums.shape[1] if nhwc else 1
        key = (x.shape[-2], x.shape[-1], x.device, sums.dtype, c)
        inv = self._inverse_counts.get(key)
        if inv is None:
            # a plain tensor even when first called under inference_mode (an evaluation pass):
            # an inference tensor could not be used by a later training step
            with torch.inference_mode(False), torch.no_grad():
                ones = torch.ones(1, 1, *x.shape[-2:], device=x.device, dtype=torch.float32)
                counts = F.conv2d(
                    ones, torch.ones(1, 1, 3, 3, device=x.device), stride=self.stride, padding=1
                )
                inv = (1.0 / counts).to(sums.dtype)
                if nhwc:
                    shape = (1, c, *inv.shape[-2:])
                    inv = inv.expand(shape).contiguous(memory_format=torch.channels_last)
            self._inverse_counts[key] = inv
        return inv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _NATIVE.get():
            return F.avg_pool2d(x, 3, self.stride, 1, count_include_pad=False)
        c = x.shape[1]
        kernel = torch.ones(c, 1, 3, 3, device=x.device, dtype=x.dtype)
        sums = F.conv2d(x, kernel, stride=self.stride, padding=1, groups=c)
        return sums * self._inverse_count(sums, x)

    def extra_repr(self) -> str:
        return f"stride={self.stride}, padding=1, count_include_pad=False"


__all__ = ["AvgPool3x3", "native_pooling"]
