"""compute_proxies and the registry: specs, guarantees (model untouched, determinism), errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from tgsage.data.pipeline import normalize_images
from tgsage.errors import InputError, SpecError
from tgsage.proxies import PROXIES, Proxy, compute_proxies, get_proxy, list_proxies
from tgsage.spaces import build_model, canonical_json, get_space

ALL = {
    "grad_norm",
    "snip",
    "synflow",
    "naswot",
    "jacob_cov",
    "params",
    "flops",
    "trainable_layers",
    "zico",
    "meco",
    "meco_opt",
    "az_expressivity",
    "az_progressivity",
    "az_trainability",
    "vkdnw",
    "vkdnw_single",
}


def _batch(n: int = 8, size: int = 8, classes: int = 10, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=gen)
    return images, torch.randint(0, classes, (n,), generator=gen)


@pytest.fixture(scope="module")
def layer_spec():
    return get_space("layer", max_layers=4).random_spec(1)


def test_registry_lists_every_proxy_with_metadata():
    assert set(list_proxies()) == ALL
    assert {n for n, p in PROXIES.items() if p.needs_labels} == {"grad_norm", "snip", "zico"}
    for name in ALL:
        proxy = get_proxy(name)
        assert isinstance(proxy, Proxy) and proxy.name == name and proxy.description
    with pytest.raises(InputError, match="unknown proxy 'zen'"):
        get_proxy("zen")


def test_layer_space_spec_scores_are_finite_repeatable_and_seed_dependent(layer_spec):
    images, labels = _batch()
    a = compute_proxies(layer_spec, images, labels, width_mult=0.25, device="cpu")
    assert set(a) == ALL and all(isinstance(v, float) for v in a.values())
    assert all(math.isfinite(v) for k, v in a.items() if k != "naswot")
    assert (
        compute_proxies(
            canonical_json(layer_spec.to_dict() | {"kind": "layer"}),
            images,
            labels,
            width_mult=0.25,
            device="cpu",
        )
        == a
    )
    other = compute_proxies(layer_spec, images, labels, width_mult=0.25, seed=1, device="cpu")
    assert other["synflow"] != a["synflow"]  # a different initialisation
    assert other["params"] == a["params"]


def test_cell_space_spec_scores(layer_spec):
    spec = get_space("cell", blocks=2, num_cells=1).random_spec(0)
    images, labels = _batch(n=6)
    scores = compute_proxies(spec, images, labels, width_mult=0.125, device="cpu")
    assert scores["naswot"] > 0 and scores["synflow"] > 0 and scores["params"] > 0


def test_the_model_is_left_exactly_as_it_was(layer_spec):
    torch.manual_seed(0)
    model = build_model(layer_spec, 10, (3, 8, 8), width_mult=0.25)
    params = list(model.parameters())
    params[0].grad = torch.full_like(params[0], 7.0)
    grad_obj = params[0].grad
    params[-1].requires_grad_(False)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns, "the fixture spec should have a BN layer"
    with torch.no_grad():
        for bn in bns:
            bn.running_mean.uniform_(-1, 1)
    bns[0].eval()  # a mixed train/eval state must survive
    state = {k: v.clone() for k, v in model.state_dict().items()}
    modes = {name: m.training for name, m in model.named_modules()}
    flags = [p.requires_grad for p in params]
    rng = torch.get_rng_state()
    images, labels = _batch()
    compute_proxies(model, images, labels, device="cpu")
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert {name: m.training for name, m in model.named_modules()} == modes
    assert [p.requires_grad for p in params] == flags
    assert params[0].grad is grad_obj and bool((grad_obj == 7.0).all())
    assert all(p.grad is None for p in params[1:])
    assert torch.equal(torch.get_rng_state(), rng)


def test_uint8_images_are_normalised_like_training_and_floats_pass_through(layer_spec):
    torch.manual_seed(0)
    model = build_model(layer_spec, 10, (3, 8, 8), width_mult=0.25)
    images, labels = _batch()
    names = ["naswot", "grad_norm"]
    from_uint8 = compute_proxies(model, images, labels, names, device="cpu")
    assert compute_proxies(model, normalize_images(images), labels, names) == from_uint8
    unit = compute_proxies(model, images, labels, names, normalize="unit", device="cpu")
    assert unit == compute_proxies(model, images.float() / 255, labels, names, device="cpu")
    assert unit != from_uint8
    assert compute_proxies(model, images, labels, names, normalize="cifar") == from_uint8


def test_batch_size_takes_a_seeded_subset(layer_spec):
    torch.manual_seed(0)
    model = build_model(layer_spec, 10, (3, 8, 8), width_mult=0.25)
    images, labels = _batch(n=12)
    a = compute_proxies(model, images, labels, ["grad_norm"], batch_size=5, seed=3)
    assert a == compute_proxies(model, images, labels, ["grad_norm"], batch_size=5, seed=3)
    idx = torch.randperm(12, generator=torch.Generator().manual_seed(3))[:5].sort().values
    assert a == compute_proxies(model, images[idx], labels[idx], ["grad_norm"], seed=3)


def test_names_select_and_order_the_result():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    scores = compute_proxies(model, torch.randn(4, 3, 2, 2), None, ["synflow", "params"])
    assert list(scores) == ["synflow", "params"] and scores["params"] == 39.0
    assert list(compute_proxies(model, torch.randn(4, 3, 2, 2), None, "flops")) == ["flops"]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"names": ["grad_norm"], "labels": None}, InputError, "need labels"),
        ({"names": ["nope"]}, InputError, "unknown proxy"),
        ({"names": ["snip", "snip"]}, InputError, "repeat"),
        ({"images": torch.zeros(4, 3, 4)}, InputError, r"\(N, C, H, W\)"),
        ({"images": torch.zeros(1, 3, 4, 4)}, InputError, "at least 2"),
        ({"images": torch.zeros(4, 3, 4, 4, dtype=torch.int32)}, InputError, "uint8"),
        ({"images": torch.full((4, 3, 4, 4), math.nan)}, InputError, "NaN"),
        ({"labels": torch.tensor([0, 1, 2])}, InputError, "one per image"),
        ({"labels": torch.tensor([0, 1, 2, 3])}, InputError, "num_classes"),
        ({"labels": torch.tensor([0.0, 1.0, 0.0, 1.0])}, InputError, "integer"),
        ({"batch_size": 9}, InputError, "batch_size"),
        ({"model_or_spec": 3}, InputError, "cannot score"),
        ({"model_or_spec": {"kind": "layer", "layers": []}}, SpecError, "layers"),
    ],
)
def test_bad_input_raises_one_clear_error(kwargs, error, match):
    call = {
        "model_or_spec": nn.Sequential(nn.Flatten(), nn.Linear(48, 3)),
        "images": torch.randn(4, 3, 4, 4),
        "labels": torch.tensor([0, 1, 2, 0]),
        "names": ["grad_norm", "snip"],
    } | kwargs
    with pytest.raises(error, match=match):
        compute_proxies(**call, device="cpu")


def test_non_finite_outputs_give_nan_not_an_exception():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    with torch.no_grad():
        model[1].weight.fill_(math.inf)
    scores = compute_proxies(
        model,
        torch.randn(4, 3, 2, 2),
        torch.tensor([0, 1, 2, 0]),
        sorted(ALL - {"params", "flops", "trainable_layers"}),
    )
    assert all(math.isnan(v) for v in scores.values()), scores


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_and_leaves_a_cpu_model_on_the_cpu(layer_spec):
    torch.manual_seed(0)
    model = build_model(layer_spec, 10, (3, 8, 8), width_mult=0.25)
    images, labels = _batch()
    cpu = compute_proxies(model, images, labels, device="cpu")
    gpu = compute_proxies(model, images, labels, device="cuda")
    assert next(model.parameters()).device.type == "cpu"
    for name in ("params", "flops"):
        assert gpu[name] == cpu[name]
    for name in ("grad_norm", "snip", "synflow", "jacob_cov", "naswot"):
        assert gpu[name] == pytest.approx(cpu[name], rel=1e-3), name


def test_grad_norm_and_snip_share_one_pass_with_the_same_values():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    x, y = torch.randn(4, 3, 2, 2), torch.tensor([0, 1, 2, 0])
    both = compute_proxies(model, x, y, ["grad_norm", "snip"], device="cpu")
    assert len(calls) == 1
    assert both["grad_norm"] == compute_proxies(model, x, y, "grad_norm")["grad_norm"]
    assert both["snip"] == compute_proxies(model, x, y, "snip")["snip"]
    assert len(calls) == 3
