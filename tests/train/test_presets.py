"""Training presets: the paper's numbers, schedules by hand, overrides and validation."""

from __future__ import annotations

import math

import pytest
import torch

from tgsage.errors import ConfigError
from tgsage.train import PRESETS, TrainConfig, get_preset, list_presets, make_optimizer


def test_paper_values():
    layer = get_preset("cifar_layer_space")
    assert (layer.optimizer, layer.lr, layer.momentum, layer.nesterov) == ("sgd", 0.1, 0.9, True)
    assert layer.epochs == 300 and layer.step_epochs == 100 and layer.gamma == 0.1
    final = get_preset("cifar_cell_final")
    assert (final.lr, final.weight_decay, final.grad_clip, final.epochs) == (0.025, 5e-4, 5, 600)
    assert final.schedule == "cosine"
    neural = get_preset("imagenet_neural")
    assert (neural.optimizer, neural.rmsprop_alpha, neural.momentum) == ("rmsprop", 0.9, 0.9)
    assert (neural.lr, neural.step_epochs, neural.epochs, neural.batch_size) == (0.1, 15, 40, 128)
    assert (neural.grad_clip, neural.weight_decay) == (10, 4e-5)
    nb201 = get_preset("nas_bench_201")  # Dong & Yang 2020, Table 2
    assert (
        nb201.optimizer,
        nb201.lr,
        nb201.momentum,
        nb201.nesterov,
        nb201.weight_decay,
        nb201.batch_size,
        nb201.schedule,
        nb201.epochs,
    ) == ("sgd", 0.1, 0.9, True, 5e-4, 256, "cosine", 200)
    assert nb201.lr_at(100) == pytest.approx(0.05) and nb201.lr_at(200) == pytest.approx(0.0)
    teacher = get_preset("resnet_cifar_teacher")
    # He et al.: decay at 32k and 48k iterations, stop at 64k, batch 128, 45k images.
    for it, ep in zip((32_000, 48_000, 64_000), (*teacher.milestones, teacher.epochs), strict=True):
        assert abs(it * 128 / 45_000 - ep) < 0.6


def test_schedules_by_hand():
    layer = get_preset("cifar_layer_space")
    assert [layer.lr_at(e) for e in (0, 99.9, 100, 250)] == pytest.approx([0.1, 0.1, 0.01, 1e-3])
    final = get_preset("cifar_cell_final")
    assert final.lr_at(300) == pytest.approx(0.0125)
    assert final.lr_at(150) == pytest.approx(0.025 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert final.lr_at(600) == pytest.approx(0.0) and final.lr_at(900) == pytest.approx(0.0)
    warm = get_preset("cpu_demo", warmup_epochs=2.0, schedule="constant")
    assert warm.lr_at(0.5) == pytest.approx(0.05 / 4) and warm.lr_at(3) == pytest.approx(0.05)
    teacher = get_preset("resnet_cifar_teacher")
    assert teacher.lr_at(137) == pytest.approx(1e-3)


def test_overrides_and_validation():
    c = get_preset("cifar_layer_space", lr=0.05, batch_size=64)
    assert (c.lr, c.batch_size) == (0.05, 64)
    assert PRESETS["cifar_layer_space"].lr == 0.1  # registry untouched
    with pytest.raises(ConfigError, match="lrr"):
        get_preset("cifar_layer_space", lrr=0.1)
    with pytest.raises(ConfigError, match="lr"):
        get_preset("cifar_layer_space", lr=-1)
    with pytest.raises(ConfigError, match="cpu_demo"):
        get_preset("nope")
    with pytest.raises(ConfigError, match="step_epochs"):
        get_preset("cpu_demo", schedule="step")
    assert TrainConfig.model_validate_json(c.model_dump_json()) == c
    assert "cifar_layer_space" in list_presets()


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds_its_optimizer(name):
    cfg = get_preset(name)
    opt = make_optimizer(torch.nn.Linear(2, 2), cfg)
    group = opt.param_groups[0]
    assert group["lr"] == cfg.lr and group["weight_decay"] == cfg.weight_decay
    assert cfg.lr_at(0) == pytest.approx(cfg.lr)
    if cfg.optimizer == "rmsprop":
        assert isinstance(opt, torch.optim.RMSprop) and group["alpha"] == cfg.rmsprop_alpha
