"""Each proxy against an independent oracle: hand-derived values, brute force, numpy."""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from tgsage.proxies import get_proxy, logdet_or_neg_inf, naswot_kernel


def _tiny_bn_net(seed: int = 0, classes: int = 5) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(6),
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, classes),
    )


def _tiny_plain_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1),
        nn.Tanh(),
        nn.Conv2d(3, 4, 3, stride=2, padding=1),
        nn.Flatten(),
        nn.Linear(4 * 3 * 3, 3),
    )


# ---- synflow -------------------------------------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(d=st.integers(1, 6), h=st.integers(1, 6), o=st.integers(1, 6), seed=st.integers(0, 10**6))
def test_synflow_two_layer_linear_is_twice_the_path_sum(d: int, h: int, o: int, seed: int):
    """f(x) = W2 W1 x with |W|, x = 1: R = 1^T |W2| |W1| 1 and sum W * dR/dW = 2R."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(d, h, bias=False), nn.Linear(h, o, bias=False))
    w1 = model[0].weight.detach().numpy().astype(np.float64)
    w2 = model[1].weight.detach().numpy().astype(np.float64)
    r = np.ones(o) @ np.abs(w2) @ np.abs(w1) @ np.ones(d)
    score = get_proxy("synflow")(model, torch.randn(3, d))
    assert score == pytest.approx(2 * r, rel=1e-12)


def test_synflow_neutralises_batchnorm_and_relu_and_leaves_the_model_alone():
    """BN (with odd statistics and affine values) becomes the identity, so a Linear-BN-ReLU-
    Linear net scores like the two-layer product; the caller's BN and weights are intact."""
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Linear(4, 5, bias=False), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3, bias=False)
    )
    with torch.no_grad():
        model[1].running_mean.fill_(3.0)
        model[1].running_var.fill_(0.1)
        model[1].weight.fill_(-2.0)
        model[1].bias.fill_(5.0)
    before = copy.deepcopy(model.state_dict())
    w1 = model[0].weight.detach().double().abs().numpy()
    w2 = model[3].weight.detach().double().abs().numpy()
    expected = 2 * (np.ones(3) @ w2 @ w1 @ np.ones(4))
    assert get_proxy("synflow")(model, torch.randn(2, 4)) == pytest.approx(expected, rel=1e-12)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert model.training and model[0].weight.dtype == torch.float32


@pytest.mark.parametrize("layers", [1, 3, 4])
def test_synflow_of_a_deep_linear_chain_is_depth_times_r(layers: int):
    """Homogeneity: R is linear in each layer's |W|, so sum W dR/dW = L * R."""
    torch.manual_seed(layers)
    widths = [3, 4, 2, 5, 3][: layers + 1]
    mods = [nn.Linear(a, b, bias=False) for a, b in itertools.pairwise(widths)]
    model = nn.Sequential(*mods)
    prod = np.ones(widths[0])
    for m in mods:
        prod = np.abs(m.weight.detach().double().numpy()) @ prod
    assert get_proxy("synflow")(model, torch.zeros(2, widths[0])) == pytest.approx(
        layers * prod.sum(), rel=1e-12
    )


# ---- naswot --------------------------------------------------------------------------------


class Controlled(nn.Module):
    """ReLU inputs are slices of the input, so the binary codes are exactly ``x > 0``."""

    def __init__(self, split: int) -> None:
        super().__init__()
        self.split = split
        self.a = nn.ReLU()
        self.b = nn.ReLU(inplace=True)
        self.head = nn.Linear(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        s = self.a(flat[:, : self.split]).sum(1) + self.b(flat[:, self.split :].clone()).sum(1)
        return self.head(s[:, None])


def _brute_kernel(codes_per_layer: list[np.ndarray]) -> np.ndarray:
    n = codes_per_layer[0].shape[0]
    k = np.zeros((n, n))
    for codes in codes_per_layer:
        for i in range(n):
            for j in range(n):
                k[i, j] += codes.shape[1] - np.count_nonzero(codes[i] != codes[j])
    return k


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(2, 7),
    units=st.integers(2, 12),
    data=st.data(),
)
def test_naswot_kernel_equals_the_brute_force_hamming_kernel(n: int, units: int, data):
    split = data.draw(st.integers(1, units - 1))
    bits = np.array(data.draw(st.lists(st.booleans(), min_size=n * units, max_size=n * units)))
    bits = bits.reshape(n, units)
    x = torch.tensor(np.where(bits, 1.0, -1.0), dtype=torch.float32).reshape(n, 1, 1, units)
    model = Controlled(split)
    kernel, _ = naswot_kernel(model, x)
    oracle = _brute_kernel([bits[:, :split], bits[:, split:]])
    np.testing.assert_array_equal(kernel.numpy(), oracle)
    score = get_proxy("naswot")(model, x)
    if np.linalg.matrix_rank(oracle) == n:
        assert score == pytest.approx(np.linalg.slogdet(oracle)[1], rel=1e-9, abs=1e-9)
    else:
        assert score == -math.inf


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10**6), data=st.data())
def test_naswot_is_invariant_to_permuting_the_batch(seed: int, data):
    rng = np.random.default_rng(seed)
    x = torch.tensor(rng.choice([-1.0, 1.0], size=(6, 1, 1, 10)), dtype=torch.float32)
    perm = torch.tensor(data.draw(st.permutations(range(6))))
    model = Controlled(4)
    a, b = get_proxy("naswot")(model, x), get_proxy("naswot")(model, x[perm])
    assert a == b or a == pytest.approx(b, rel=1e-12)


def test_naswot_singular_cases_are_minus_inf_not_errors():
    x = torch.tensor([[1.0, -1.0, 1.0], [1.0, -1.0, 1.0], [-1.0, 1.0, 1.0]]).reshape(3, 1, 1, 3)
    assert get_proxy("naswot")(Controlled(1), x) == -math.inf  # two identical codes
    no_relu = nn.Sequential(nn.Flatten(), nn.Linear(3, 2))
    assert get_proxy("naswot")(no_relu, torch.randn(4, 1, 1, 3)) == -math.inf


def test_logdet_matches_numpy_on_a_full_rank_kernel():
    k = np.array([[4.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 5.0]])
    assert logdet_or_neg_inf(torch.tensor(k)) == pytest.approx(np.log(np.linalg.det(k)))


# ---- grad_norm and snip --------------------------------------------------------------------


def _brute_weight_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    """Per-tensor gradients the plain way: a train-mode copy, .backward(), read .grad."""
    net = copy.deepcopy(model).train()
    net.zero_grad()
    F.cross_entropy(net(x), y).backward()
    return [
        (m.weight.detach(), m.weight.grad)
        for m in net.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]


def test_grad_norm_and_snip_match_brute_force_autograd():
    model = _tiny_bn_net()
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(8, 3, 8, 8, generator=gen)
    y = torch.randint(0, 5, (8,), generator=gen)
    pairs = _brute_weight_grads(model, x, y)
    assert len(pairs) == 3
    norm = sum(float(np.linalg.norm(g.numpy().ravel())) for _, g in pairs)
    saliency = sum(float(np.abs(w.numpy() * g.numpy()).sum()) for w, g in pairs)
    assert get_proxy("grad_norm")(model, x, y) == pytest.approx(norm, rel=1e-5)
    assert get_proxy("snip")(model, x, y) == pytest.approx(saliency, rel=1e-5)


def test_unused_layers_count_zero():
    class Partial(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used = nn.Linear(4, 3)
            self.unused = nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.used(x.flatten(1))

    torch.manual_seed(0)
    model = Partial()
    x, y = torch.randn(5, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1])
    loss = F.cross_entropy(model(x), y)
    (g,) = torch.autograd.grad(loss, [model.used.weight])
    assert get_proxy("grad_norm")(model, x, y) == pytest.approx(float(g.norm()), rel=1e-5)


# ---- jacob_cov -----------------------------------------------------------------------------


def _jacob_cov_oracle(model: nn.Module, x: torch.Tensor) -> float:
    rows = []
    for xi in x:
        jac = torch.autograd.functional.jacobian(lambda v: model(v[None]).sum(), xi)
        rows.append(jac.reshape(-1).double().numpy())
    corr = np.corrcoef(np.stack(rows))
    v = np.linalg.eigvalsh(corr)
    k = 1e-5
    return float(-np.sum(np.log(v + k) + 1.0 / (v + k)))


def test_jacob_cov_matches_per_image_jacobians_numpy_corrcoef_and_eigvalsh():
    model = _tiny_plain_net()
    x = torch.randn(6, 2, 5, 5, generator=torch.Generator().manual_seed(4))
    assert get_proxy("jacob_cov")(model, x) == pytest.approx(_jacob_cov_oracle(model, x), rel=1e-6)


def test_jacob_cov_is_nan_when_the_output_ignores_the_input():
    class Constant(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bias = nn.Parameter(torch.ones(3))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.bias.expand(x.shape[0], 3)

    assert math.isnan(get_proxy("jacob_cov")(Constant(), torch.randn(4, 1, 2, 2)))


# ---- params and flops ----------------------------------------------------------------------


def test_params_and_flops_match_hand_counts():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),  # 3*4*9 + 4 params; 8*8 * 4 * 3*9 multiply-adds
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 5),  # 4*5 + 5 params; 4*5 multiply-adds
    )
    x = torch.randn(2, 3, 8, 8)
    assert get_proxy("params")(model, x) == 3 * 4 * 9 + 4 + 4 * 5 + 5
    assert get_proxy("flops")(model, x) == 8 * 8 * 4 * 3 * 9 + 4 * 5
