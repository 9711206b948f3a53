"""ZiCo, MeCo, AZ-NAS, VKDNW and trainable_layers against independent oracles on tiny nets:
hand-written forwards with duplicated weights, numpy eigen-decompositions, brute-force
per-image Jacobians (torch.func), exhaustive channel subsets."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.func import functional_call, jacrev, vmap

from tgsage.proxies import compute_proxies, get_proxy
from tgsage.proxies.onepass import block_trainability, train_pass
from tgsage.proxies.vkdnw import VKDNW_SMOOTHING, fisher_information, vkdnw_entropy
from tgsage.spaces import build_model, get_space
from tgsage.spaces.nb201 import NB201Spec


def _batch(n: int = 8, c: int = 3, size: int = 6, classes: int = 4, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, size, size, generator=gen), torch.randint(
        0, classes, (n,), generator=gen
    )


class TinyNet(nn.Module):
    """conv -> BN -> ReLU -> strided conv -> BN -> ReLU -> pool -> linear."""

    def __init__(self, classes: int = 4, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv1 = nn.Conv2d(3, 5, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(5)
        self.conv2 = nn.Conv2d(5, 6, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(6)
        self.fc = nn.Linear(6, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        h = F.relu(self.bn2(self.conv2(h)))
        return self.fc(h.mean(dim=(2, 3)))


# ---- ZiCo ----------------------------------------------------------------------------------


def _halves_by_duplicated_weights(net: TinyNet, x: torch.Tensor, y: torch.Tensor):
    """The same train-mode forward written out by hand, each conv/linear applied to the two
    halves with separate copies of its weight: autograd's gradients of the copies are the
    half-batch gradients."""
    h = x.shape[0] // 2
    copies = {
        name: (w.detach().clone().requires_grad_(True), w.detach().clone().requires_grad_(True))
        for name, w in [
            ("conv1", net.conv1.weight),
            ("conv2", net.conv2.weight),
            ("fc", net.fc.weight),
        ]
    }

    def split(fn, name, inp):
        a, b = copies[name]
        return torch.cat([fn(inp[:h], a), fn(inp[h:], b)])

    z = split(lambda t, w: F.conv2d(t, w, net.conv1.bias, padding=1), "conv1", x)
    z = F.relu(F.batch_norm(z, None, None, net.bn1.weight, net.bn1.bias, training=True))
    z = split(lambda t, w: F.conv2d(t, w, None, stride=2, padding=1), "conv2", z)
    z = F.relu(F.batch_norm(z, None, None, net.bn2.weight, net.bn2.bias, training=True))
    logits = split(lambda t, w: F.linear(t, w, net.fc.bias), "fc", z.mean(dim=(2, 3)))
    loss = F.cross_entropy(logits, y)
    flat = [w for pair in copies.values() for w in pair]
    grads = torch.autograd.grad(loss, flat)
    return [(grads[2 * i].numpy(), grads[2 * i + 1].numpy()) for i in range(3)]


def _zico_reference(halves) -> float:
    """The authors' formula (numpy std / mean over the stacked gradients)."""
    total = 0.0
    for g1, g2 in halves:
        stack = np.stack([g1.ravel(), g2.ravel()]).astype(np.float64)
        std = np.std(stack, axis=0)
        nz = np.nonzero(std)[0]
        s = np.sum(np.mean(np.abs(stack), axis=0)[nz] / std[nz])
        if s != 0:
            total += np.log(s)
    return float(total)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_zico_equals_the_formula_on_gradients_of_duplicated_weights(seed: int):
    net = TinyNet(seed=seed)
    x, y = _batch(n=10, seed=seed)
    halves = _halves_by_duplicated_weights(net, x, y)
    assert get_proxy("zico")(net, x, y) == pytest.approx(_zico_reference(halves), rel=1e-5)
    grads = train_pass(net, x, y, {"ce"}).layer_grads
    for lg, (a, b) in zip(grads, halves, strict=True):
        assert lg.halves is not None
        np.testing.assert_allclose(lg.halves[0].numpy(), a, rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(lg.halves[1].numpy(), b, rtol=1e-4, atol=1e-7)


def test_zico_of_two_identical_halves_leaves_every_weight_out():
    """Equal halves: every std is 0, every layer's sum is 0, the score is 0 (as the reference)."""
    net = TinyNet()
    x, y = _batch(n=4)
    x2, y2 = torch.cat([x[:2], x[:2]]), torch.cat([y[:2], y[:2]])
    assert get_proxy("zico")(net, x2, y2) == 0.0


# ---- MeCo ----------------------------------------------------------------------------------


def _min_eig_of_corrcoef(fmap: np.ndarray) -> float:
    """numpy corrcoef of the channels of one (C, H, W) map, NaN -> 0, smallest real eig."""
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(fmap.reshape(fmap.shape[0], -1).astype(np.float64))
    corr = np.nan_to_num(np.atleast_2d(corr), nan=0.0, posinf=0.0, neginf=0.0)
    return float(np.min(np.real(np.linalg.eigvals(corr))))


def test_meco_sums_the_min_eigenvalue_over_every_distinct_map_of_the_first_image():
    torch.manual_seed(0)
    relu = nn.ReLU(inplace=True)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        relu,
        nn.Sequential(nn.Conv2d(4, 5, 3, padding=1), nn.Identity()),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(20, 3),
    )
    x, _ = _batch(n=6, size=5)
    with torch.no_grad():  # the maps by hand, train mode (BN on batch statistics)
        a = model[0](x)
        b = F.batch_norm(a, None, None, model[1].weight, model[1].bias, training=True)
        c = F.relu(b)
        d = model[3][0](c)
        e = F.adaptive_avg_pool2d(d, 2)
    # a, b, the in-place ReLU's output c, d (the inner Sequential and Identity return d), e
    expected = sum(_min_eig_of_corrcoef(m[0].numpy()) for m in (a, b, c, d, e))
    assert get_proxy("meco")(model, x) == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_meco_counts_a_constant_channel_as_uncorrelated():
    model = nn.Sequential(nn.Conv2d(2, 3, 1, bias=True), nn.Flatten(), nn.Linear(3 * 16, 2))
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].weight[0, 0] = 1.0
        model[0].weight[1, 1] = 1.0  # channel 2 = its bias: constant
    x, _ = _batch(n=3, c=2, size=4)
    with torch.no_grad():
        fmap = model[0](x)[0].numpy()
    expected = _min_eig_of_corrcoef(fmap)
    assert expected == pytest.approx(0.0, abs=1e-12)  # the zeroed row gives eigenvalue 0
    assert get_proxy("meco")(model, x) == pytest.approx(expected, abs=1e-9)


def test_meco_opt_is_c_over_8_times_an_8_channel_minor():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(3, 10, 3, padding=1), nn.Flatten(), nn.Linear(10 * 36, 2))
    x, _ = _batch(n=4, size=6)
    with torch.no_grad():
        fmap = model[0](x)[0].numpy().reshape(10, -1).astype(np.float64)
    corr = np.corrcoef(fmap)
    candidates = [
        10 / 8 * np.linalg.eigvalsh(corr[np.ix_(sub, sub)])[0]
        for sub in itertools.combinations(range(10), 8)
    ]
    value = get_proxy("meco_opt")(model, x)
    assert min(abs(value - c) for c in candidates) < 1e-6
    small = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.Flatten(), nn.Linear(6 * 36, 2))
    assert get_proxy("meco_opt")(small, x) == pytest.approx(get_proxy("meco")(small, x))


# ---- AZ-NAS --------------------------------------------------------------------------------


def _entropy_oracle(fmap: torch.Tensor) -> float:
    f = fmap.detach().numpy().astype(np.float64)
    f = f.transpose(0, 2, 3, 1).reshape(-1, f.shape[1])
    f = f - f.mean(axis=0)
    s = np.clip(np.linalg.eigvalsh(f.T @ f / f.shape[0]), 0, None)
    p = s / s.sum()
    return float(-(p * np.log(p + 1e-8)).sum())


def test_expressivity_and_progressivity_over_the_childrens_maps():
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()),
        nn.Sequential(nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.BatchNorm2d(6), nn.ReLU()),
        nn.Sequential(nn.Conv2d(6, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU()),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 3),
    )
    x, _ = _batch(n=5, size=8)
    feats, h = [], x
    with torch.no_grad():
        for child in list(model)[:4]:
            h = child(h)
            feats.append(h)
    values = [_entropy_oracle(f) for f in feats]
    assert get_proxy("az_expressivity")(model, x) == pytest.approx(sum(values), rel=1e-5)
    assert get_proxy("az_progressivity")(model, x) == pytest.approx(
        min(b - a for a, b in itertools.pairwise(values)), rel=1e-4, abs=1e-6
    )


@pytest.mark.parametrize(
    "arch",
    [
        None,  # a random cell (seed 4)
        # a skip_connect from node 0: every later cell's nn.Identity returns the previous
        # block's output object, which once made that block its own input
        "|nor_conv_1x1~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
        "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|nor_conv_3x3~0|avg_pool_3x3~1|nor_conv_3x3~2|",
    ],
)
def test_a_feature_net_adds_the_stem_output_before_its_first_block(arch):
    space = get_space("nb201")
    spec = space.random_spec(4) if arch is None else NB201Spec.from_arch_string(arch)
    torch.manual_seed(0)
    model = build_model(spec, 3, (3, 8, 8), width_mult=0.25)
    x, _ = _batch(n=6, size=8)
    model.train()
    with torch.no_grad():
        _, feats = model.forward_with_features(x)
        stem = model.stem(x)
    model.eval()
    values = [_entropy_oracle(stem)] + [
        _entropy_oracle(f) if float(f.abs().max()) > 0 else math.nan for f in feats.values()
    ]
    got = get_proxy("az_expressivity")(model.train(), x)
    if any(math.isnan(v) for v in values):
        assert got == -math.inf
    else:
        assert got == pytest.approx(sum(values), rel=1e-5)


@settings(max_examples=15, deadline=None)
@given(
    cin=st.integers(1, 4),
    cout=st.integers(1, 4),
    stride=st.sampled_from([1, 2]),
    seed=st.integers(0, 10**6),
)
def test_block_trainability_matches_the_explicit_backward_map(cin, cout, stride, seed):
    """A 1x1 conv block (stride 1 or 2): g_in is W^T g_out placed on the strided grid."""
    torch.manual_seed(seed)
    conv = nn.Conv2d(cin, cout, 1, stride=stride, bias=False)
    f_in = torch.randn(3, cin, 4, 4, requires_grad=True)
    f_out = conv(f_in)
    gen, twin = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
    value = block_trainability(f_in, f_out, gen)
    raw = torch.randint(0, 256, ((f_out.numel() + 7) // 8,), generator=twin, dtype=torch.uint8)
    bits = np.unpackbits(raw.numpy(), bitorder="little")[: f_out.numel()]
    g_out = bits.reshape(f_out.shape).astype(np.float64) * 2 - 1  # (N, Co, Ho, Wo)
    w = conv.weight.detach().double().numpy()[:, :, 0, 0]  # (Co, Ci)
    g_in = np.zeros((3, cin, 4, 4))
    g_in[:, :, ::stride, ::stride] = np.einsum("oi,nohw->nihw", w, g_out)
    if stride == 2:  # space-to-depth: channel ci*4 + dy*2 + dx holds pixel (2h+dy, 2w+dx)
        g_in = g_in.reshape(3, cin, 2, 2, 2, 2).transpose(0, 1, 3, 5, 2, 4).reshape(3, -1, 2, 2)
    a = g_in.transpose(0, 2, 3, 1).reshape(-1, g_in.shape[1])
    b = g_out.transpose(0, 2, 3, 1).reshape(-1, cout)
    s = np.linalg.svd(a.T @ b / a.shape[0], compute_uv=False).max()
    assert value == pytest.approx(-s - 1 / (s + 1e-6) + 2, rel=1e-5, abs=1e-5)


def test_random_signs_are_balanced_and_seeded():
    from tgsage.proxies.onepass import random_signs

    like = torch.zeros(4, 8, 16, 16)
    a = random_signs(like, torch.Generator().manual_seed(3))
    assert a.shape == like.shape and set(a.unique().tolist()) == {-1.0, 1.0}
    assert abs(float(a.mean())) < 0.05  # 8192 fair signs: sd of the mean ~0.011
    assert torch.equal(a, random_signs(like, torch.Generator().manual_seed(3)))


def test_trainability_pairs_each_block_with_its_real_input():
    """Cells with skip_connect edges are not identities: every block pair scores finitely, and
    the first pair is (stem output, first cell) - not (first cell, first cell)."""
    from tgsage.proxies.onepass import shared_train_pass

    arch = "|nor_conv_1x1~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
    torch.manual_seed(0)
    model = build_model(NB201Spec.from_arch_string(arch), 3, (3, 8, 8), width_mult=0.25)
    x, _ = _batch(n=6, size=8)
    result = shared_train_pass(model, x, None, {"trainability", "blocks"})
    assert result.trainability is not None and result.expressivity is not None
    assert len(result.trainability) == len(model.feature_names)  # stem output + every block
    assert all(math.isfinite(v) for v in result.trainability), result.trainability
    assert math.isfinite(get_proxy("az_trainability")(model, x))
    with torch.no_grad():
        stem = model.train().stem(x)
    assert result.expressivity[0] == pytest.approx(_entropy_oracle(stem), rel=1e-5)


def test_identity_and_zero_blocks():
    f = torch.randn(2, 3, 4, 4, requires_grad=True)
    assert block_trainability(f, f, torch.Generator().manual_seed(0)) == -math.inf
    assert block_trainability(f, f * 0.0, torch.Generator().manual_seed(0)) == pytest.approx(
        -1e6 + 2
    )


# ---- VKDNW ---------------------------------------------------------------------------------


class FisherNet(nn.Module):
    """Conv (bias), eval BN, a dilated strided conv, GroupNorm (no closed form: forward-mode
    path), linear."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(5)
        self.conv1 = nn.Conv2d(2, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.conv2 = nn.Conv2d(3, 4, 3, stride=2, padding=2, dilation=2, bias=False)
        self.gn = nn.GroupNorm(2, 4)
        self.fc = nn.Linear(4, 3)
        with torch.no_grad():
            self.bn.running_mean.uniform_(-0.5, 0.5)
            self.bn.running_var.uniform_(0.5, 2.0)
            self.bn.weight.uniform_(0.5, 1.5)
            self.gn.weight.uniform_(0.5, 1.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn(self.conv1(x)))
        h = torch.tanh(self.gn(self.conv2(h)))
        return self.fc(h.mean(dim=(2, 3)))


def _fisher_oracle(model: nn.Module, x: torch.Tensor, tensors: int) -> np.ndarray:
    """Per-image Jacobians with respect to the first element of each tensor, by substituting
    a scalar into the flattened parameter (the authors' approach), vmap over images."""
    model.eval()
    names = [n for n, _ in model.named_parameters()][:tensors]
    params = {n: p.detach() for n, p in model.named_parameters()}
    buffers = {n: b.detach() for n, b in model.named_buffers()}
    scalars = {n: params[n].flatten()[0] for n in names}

    def logits(sub: dict, sample: torch.Tensor) -> torch.Tensor:
        full = dict(params)
        for n, v in sub.items():
            flat = full[n].flatten().clone()
            flat[0] = v
            full[n] = flat.reshape(params[n].shape)
        return functional_call(model, (full, buffers), (sample[None],))[0]

    jac = vmap(lambda s: jacrev(logits)(scalars, s))(x)
    j = torch.stack([jac[n] for n in names], dim=-1).double().numpy()  # (N, K, P)
    with torch.no_grad():
        p = torch.softmax(model(x).double(), dim=1).numpy()
    model.train()
    k = p.shape[1]
    p = p * (1 - VKDNW_SMOOTHING) + VKDNW_SMOOTHING / k
    fisher = np.zeros((j.shape[2], j.shape[2]))
    for n in range(j.shape[0]):
        sigma = np.diag(p[n]) - np.outer(p[n], p[n])
        fisher += j[n].T @ sigma @ j[n]
    return fisher / j.shape[0]


@pytest.mark.parametrize("tensors", [3, 128])
def test_fisher_matches_per_image_jacobians(tensors: int):
    model = FisherNet()
    x, _ = _batch(n=5, c=2, size=6)
    oracle = _fisher_oracle(model, x, tensors)
    got = fisher_information(model, x, tensors=tensors).numpy()
    assert got.shape == oracle.shape == (min(tensors, 9),) * 2
    np.testing.assert_allclose(got, oracle, rtol=1e-4, atol=1e-9 * np.abs(oracle).max())
    assert model.training  # mode restored


def _fisher_per_sample_backward(model: nn.Module, x: torch.Tensor, tensors: int) -> np.ndarray:
    """The slow definition: one backward per (image, class) logit with respect to every
    parameter, the first element of the first ``tensors`` gradients, then
    ``mean_n J_n^T (diag p_n - p_n p_n^T) J_n`` in float64."""
    model.eval()
    params = [p for _, p in model.named_parameters()][:tensors]
    logits = model(x)
    n, k = logits.shape
    j = np.zeros((n, k, len(params)))
    for i in range(n):
        for c in range(k):
            grads = torch.autograd.grad(logits[i, c], params, retain_graph=True, allow_unused=True)
            j[i, c] = [0.0 if g is None else float(g.flatten()[0]) for g in grads]
    p = torch.softmax(logits.detach().double(), dim=1).numpy()
    model.train()
    p = p * (1 - VKDNW_SMOOTHING) + VKDNW_SMOOTHING / k
    sigma = np.einsum("nk,kl->nkl", p, np.eye(k)) - p[:, :, None] * p[:, None, :]
    return np.einsum("nkp,nkl,nlq->pq", j, sigma, j) / n


@pytest.mark.parametrize("net", ["fisher_net", "nb201"])
def test_fast_fisher_equals_the_per_sample_backward_definition(net: str):
    if net == "nb201":
        torch.manual_seed(0)
        spec = get_space("nb201").random_spec(np.random.default_rng(3))
        model = build_model(spec, 4, (3, 8, 8), width_mult=0.25)
        with torch.no_grad():  # running statistics away from (0, 1): eval BN is not a no-op
            for m in model.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.3, 0.3)
                    m.running_var.uniform_(0.5, 2.0)
        x, _ = _batch(n=6, size=8)
        tensors = 40
    else:
        model = FisherNet()
        x, _ = _batch(n=5, c=2, size=6)
        tensors = 128
    slow = _fisher_per_sample_backward(model, x, tensors)
    fast = fisher_information(model, x, tensors=tensors).numpy()
    assert fast.shape == slow.shape and np.abs(slow).max() > 0
    np.testing.assert_allclose(fast, slow, rtol=1e-4, atol=1e-6 * np.abs(slow).max())
    assert model.training  # mode restored


def test_vkdnw_is_the_entropy_of_normalised_eigenvalue_deciles():
    model = FisherNet()
    x, _ = _batch(n=5, c=2, size=6)
    lam = np.abs(np.linalg.eigvalsh(_fisher_oracle(model, x, 128)))
    q = np.quantile(lam, np.arange(1, 10) / 10)
    q = q / (np.abs(q).sum() + 1e-10)
    entropy = float(-(q * np.log(q + 1e-10)).sum())
    assert get_proxy("vkdnw")(model, x) == pytest.approx(entropy, rel=1e-4)
    assert 0 < entropy <= math.log(9)
    layers = 5  # conv1, bn, conv2, gn, fc own parameters
    assert get_proxy("trainable_layers")(model, x) == layers
    assert get_proxy("vkdnw_single")(model, x) == pytest.approx(
        layers + entropy / (2 * math.log(9)), rel=1e-6
    )


def test_vkdnw_entropy_of_a_flat_spectrum_is_log_9():
    assert vkdnw_entropy(torch.eye(20, dtype=torch.float64)) == pytest.approx(math.log(9))


def test_trainable_layers_counts_modules_that_own_parameters():
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3),
        nn.BatchNorm2d(2, affine=False),  # no parameters
        nn.ReLU(),
        nn.Sequential(nn.Conv2d(2, 2, 1), nn.BatchNorm2d(2)),
        nn.Flatten(),
        nn.Linear(2, 3),
    )
    assert get_proxy("trainable_layers")(model, torch.zeros(2, 1, 3, 3)) == 4


# ---- one pass ------------------------------------------------------------------------------

PASS = ["naswot", "jacob_cov", "grad_norm", "snip", "zico", "meco", "meco_opt"]
PASS += ["az_expressivity", "az_progressivity", "az_trainability"]


def test_every_pass_proxy_shares_one_forward_and_gives_its_value_alone():
    spec = get_space("nb201").random_spec(2)
    torch.manual_seed(0)
    model = build_model(spec, 4, (3, 8, 8), width_mult=0.25)
    x, y = _batch(n=8, size=8)
    calls = []
    model.stem.register_forward_hook(lambda *_: calls.append(1))
    together = compute_proxies(model, x, y, PASS, device="cpu")
    assert len(calls) == 1
    for name in PASS:
        alone = compute_proxies(model, x, y, [name], device="cpu")[name]
        assert alone == together[name] or (math.isnan(alone) and math.isnan(together[name])), name
    calls.clear()
    compute_proxies(model, x, y, ["vkdnw", "vkdnw_single"], device="cpu")
    assert len(calls) == 1  # one eval forward for the Fisher


def test_timings_are_reported_per_proxy():
    model = TinyNet()
    x, y = _batch()
    timings: dict[str, float] = {}
    scores = compute_proxies(model, x, y, ["zico", "params", "vkdnw"], timings=timings)
    assert list(timings) == list(scores) and all(t >= 0 for t in timings.values())


# ---- initialisation schemes ----------------------------------------------------------------


def test_kaiming_normal_reinitialises_a_copy_under_the_seed():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 64, 3, bias=True), nn.BatchNorm2d(64), nn.Flatten(), nn.Linear(576, 2)
    )
    x, y = _batch(n=4, c=3, size=5, classes=2)
    with torch.no_grad():
        model[1].weight.fill_(3.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    a = compute_proxies(model, x, y, ["vkdnw", "grad_norm"], init="kaiming_normal", seed=1)
    b = compute_proxies(model, x, y, ["vkdnw", "grad_norm"], init="kaiming_normal", seed=1)
    plain = compute_proxies(model, x, y, ["vkdnw", "grad_norm"], seed=1)
    assert a == b and a != plain
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    from tgsage.proxies.init import reinitialize

    net = reinitialize(nn.Sequential(nn.Conv2d(64, 64, 3), nn.BatchNorm2d(64)), "kaiming_normal")
    w = net[0].weight.detach()
    assert float(w.std()) == pytest.approx(math.sqrt(2 / (64 * 9)), rel=0.02)
    assert float(net[0].bias.detach().abs().max()) == 0.0
    assert bool((net[1].weight == 1).all()) and bool((net[1].bias == 0).all())
    from tgsage.errors import InputError

    with pytest.raises(InputError, match="unknown init 'xavier'"):
        compute_proxies(model, x, y, ["params"], init="xavier")


# ---- published aggregations ----------------------------------------------------------------


def test_published_aggregations_are_sums_of_log_mid_rank_percentiles():
    from scipy.stats import rankdata

    from tgsage.proxies import AGGREGATIONS
    from tgsage.scores import Population, evaluate, parse_score

    rng = np.random.default_rng(0)
    names = {n for text in AGGREGATIONS.values() for n in parse_score(text).names}
    rows = [{n: float(rng.normal()) for n in sorted(names)} for _ in range(30)]
    rows[3]["az_trainability"] = -math.inf  # an identity block: ranks last
    pop = Population.from_rows(rows)
    for text in AGGREGATIONS.values():
        members = parse_score(text).names
        oracle = sum(np.log((rankdata([r[m] for r in rows]) - 0.5) / len(rows)) for m in members)
        np.testing.assert_allclose(evaluate(text, pop), oracle, rtol=1e-12)
    assert set(parse_score(AGGREGATIONS["az_nas"]).names) == {
        "az_expressivity",
        "az_progressivity",
        "az_trainability",
        "flops",
    }
