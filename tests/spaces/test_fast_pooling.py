"""AvgPool3x3 equals torch's AvgPool2d(3, s, 1, count_include_pad=False), values and grads."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from tgsage.spaces.pooling import AvgPool3x3


@settings(max_examples=25, deadline=None)
@given(
    st.integers(1, 3),
    st.integers(1, 4),
    st.integers(1, 9),
    st.integers(1, 9),
    st.sampled_from([1, 2]),
    st.integers(0, 10_000),
    st.booleans(),
)
def test_matches_torch_exclude_pad_pool(n, c, h, w, stride, seed, channels_last) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=g, dtype=torch.float64)
    if channels_last:  # the training fast path's layout: a full-shape count map is used
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    ours = AvgPool3x3(stride)(x)
    ref = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)(x2)
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref)
    w_out = torch.randn(ref.shape, generator=g, dtype=torch.float64)
    (ours * w_out).sum().backward()
    (ref * w_out).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad)


def test_float32_and_repeated_sizes_use_the_cache() -> None:
    pool = AvgPool3x3(1)
    for size in (8, 5, 8):
        x = torch.randn(2, 3, size, size)
        ref = nn.AvgPool2d(3, 1, 1, count_include_pad=False)(x)
        torch.testing.assert_close(pool(x), ref, rtol=1e-5, atol=1e-6)
    assert len(pool._inverse_counts) == 2
    assert "count_include_pad=False" in repr(pool)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches() -> None:
    x = torch.randn(4, 5, 7, 7, device="cuda")
    torch.testing.assert_close(AvgPool3x3(2)(x), nn.AvgPool2d(3, 2, 1, count_include_pad=False)(x))


def test_flop_counts_leave_pooling_out() -> None:
    """count_flops runs torch's pooling (no multiply-adds), as the papers count."""
    from tgsage.spaces import count_flops
    from tgsage.spaces.pooling import native_pooling

    net = nn.Sequential(nn.Conv2d(3, 4, 1, bias=False), AvgPool3x3(1))
    assert count_flops(net, (3, 8, 8)) == 3 * 4 * 64
    x = torch.randn(1, 3, 8, 8)
    fast = net(x)
    with native_pooling():
        torch.testing.assert_close(net(x), fast, rtol=1e-5, atol=1e-6)


def test_first_call_in_inference_mode_does_not_break_training() -> None:
    """An evaluation pass (inference_mode) before training must not cache an inference
    tensor that a later backward pass would refuse."""
    pool = AvgPool3x3(1)
    with torch.inference_mode():
        pool(torch.randn(2, 3, 6, 6))
    x = torch.randn(2, 3, 6, 6, requires_grad=True)
    pool(x).sum().backward()
    ref = nn.AvgPool2d(3, 1, 1, count_include_pad=False)
    x2 = x.detach().clone().requires_grad_()
    ref(x2).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad)
