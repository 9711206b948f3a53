"""The training fast path: switch resolution, recording, and fp32 equivalence within noise."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from tgsage.data.base import ImageSet
from tgsage.errors import ConfigError
from tgsage.train import Trainer, get_preset, parse_train_options, train_model
from tgsage.train import execution as ex
from tgsage.train.execution import Execution, resolve_amp, resolve_channels_last

torch.set_num_threads(1)
CPU, CUDA, MPS = torch.device("cpu"), torch.device("cuda"), torch.device("mps")


def _data(n: int = 96, seed: int = 0) -> ImageSet:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    images = torch.randint(0, 60, (n, 3, 8, 8), generator=g, dtype=torch.uint8)
    images[labels == 1, 0] += 150
    return ImageSet(images=images, labels=labels, num_classes=2, name="separable")


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 2),
    )


CFG = {"config": "cpu_demo", "batch_size": 16, "device": "cpu", "eval_at_end": False}


@pytest.mark.parametrize("native", [True, False])
def test_auto_amp_is_bf16_only_on_cpus_with_native_bf16(monkeypatch, native):
    monkeypatch.setattr(ex, "cpu_has_native_bf16", lambda: native)
    assert resolve_amp("auto", CPU) == ("bf16" if native else None)
    assert resolve_amp(True, CPU) == ("bf16" if native else None)
    assert resolve_amp("auto", MPS) is None
    for off in ("off", False, None):
        assert resolve_amp(off, CPU) is None
    assert resolve_amp("fp16", CPU) == "fp16"
    with pytest.raises(ConfigError, match="amp must be"):
        resolve_amp("fp8", CPU)


def test_channels_last_resolution():
    assert resolve_channels_last("auto", CPU) and resolve_channels_last("auto", CUDA)
    assert not resolve_channels_last("auto", MPS)
    assert resolve_channels_last(False, CUDA) is False
    with pytest.raises(ConfigError, match="channels_last"):
        resolve_channels_last("yes", CPU)


def test_switches_are_config_fields_with_yaml_spellings():
    cfg = get_preset("cpu_demo")
    assert (cfg.amp, cfg.channels_last, cfg.compile) == ("auto", "auto", False)
    # `--train-option amp=off` arrives as YAML false, `amp=on` as true
    opts = parse_train_options(["amp=off", "channels_last=false", "compile=false"])
    cfg = get_preset("cpu_demo", **opts)
    assert (cfg.amp, cfg.channels_last, cfg.compile) == ("off", False, False)
    assert get_preset("cpu_demo", amp=False).amp == "off"
    assert get_preset("cpu_demo", amp=True).amp == "auto"
    assert get_preset("cpu_demo", channels_last=False).channels_last is False
    with pytest.raises(ConfigError, match="amp"):
        get_preset("cpu_demo", amp="int8")


def test_result_records_what_ran_and_trainer_arguments_override_the_config(monkeypatch):
    monkeypatch.setattr(ex, "cpu_has_native_bf16", lambda: True)
    res = train_model(_net(), _data(), "2steps", **CFG)
    assert (res.amp, res.channels_last, res.compile) == ("bf16", True, False)
    assert res.config is not None and res.config.amp == "auto"
    off = train_model(_net(), _data(), "2steps", amp="off", channels_last=False, **CFG)
    assert (off.amp, off.channels_last) == (None, False)
    assert (off.config.amp, off.config.channels_last) == ("off", False)
    t = Trainer(_net(), _data(), get_preset("cpu_demo", amp="off"), batch_size=16, device="cpu")
    assert t.amp is None and t.channels_last  # config's amp, auto layout


def test_channels_last_fp32_equals_nchw_fp32():
    a = train_model(_net(), _data(), "1ep", amp="off", channels_last=False, **CFG)
    b = train_model(_net(), _data(), "1ep", amp="off", channels_last=True, **CFG)
    assert a.ok and b.ok and len(a.losses) == len(b.losses) == 6
    assert b.losses == pytest.approx(a.losses, rel=1e-4)


def test_bf16_losses_track_fp32_within_bf16_rounding():
    """bf16 autocast with float32 master weights: the trajectory stays close to float32's
    (bf16 has an 8-bit mantissa, relative rounding 2^-8 per operation)."""
    a = train_model(_net(), _data(), "2ep", amp="off", **CFG)
    net = _net()
    b = train_model(net, _data(), "2ep", amp="bf16", **CFG)
    assert b.amp == "bf16" and all(p.dtype == torch.float32 for p in net.parameters())
    assert b.losses[0] == pytest.approx(a.losses[0], rel=2e-2)
    assert b.loss_sum == pytest.approx(a.loss_sum, rel=5e-2)
    assert b.losses[-1] < b.losses[0]  # it learns


def test_failed_compile_falls_back_to_eager_and_says_so(monkeypatch):
    def broken(self, model):
        def fail(x):
            raise RuntimeError("no C++ compiler")

        return fail

    monkeypatch.setattr(Execution, "training_forward", broken)
    res = train_model(_net(), _data(), "3steps", compile=True, **CFG)
    assert res.ok and res.steps == 3 and res.compile is False
    assert res.config.compile is True  # what was asked stays on record


def test_invalid_architecture_is_still_reported_with_compile_on(monkeypatch):
    monkeypatch.setattr(Execution, "training_forward", lambda self, model: model)
    net = nn.Sequential(nn.Flatten(), nn.Linear(5, 2))  # wrong input size
    res = train_model(net, _data(), "3steps", compile=True, **CFG)
    assert res.failure_reason == "invalid_architecture"


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # inside torch.compile
def test_torch_compile_trains_like_eager():
    eager = train_model(_net(), _data(), "4steps", amp="off", check_every=2, **CFG)
    comp = train_model(_net(), _data(), "4steps", amp="off", compile=True, check_every=2, **CFG)
    assert comp.ok, comp.message
    if comp.compile:  # False only where this machine cannot compile (fallback, tested above)
        assert comp.losses == pytest.approx(eager.losses, rel=1e-3)


@pytest.mark.parametrize("amp", ["off", "bf16"])
def test_training_steps_skip_dead_nodes_and_train_bit_identically(amp):
    """A NAS-Bench-201 cell's dead nodes (here node 1 and 2: node 3 = pool(node 0)) do not run
    in training steps, and the run ends with exactly the weights of the whole graph's run
    (``dead_nodes`` emptied); only the dead batch norms' running statistics differ."""
    from tgsage.spaces import NB201Net, NB201Spec

    spec = NB201Spec.from_arch_string(
        "|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|avg_pool_3x3~0|none~1|none~2|"
    )
    torch.manual_seed(0)
    lean = NB201Net(spec, num_classes=2, channels=4, num_cells=1)
    full = NB201Net(spec, num_classes=2, channels=4, num_cells=1)
    full.load_state_dict(lean.state_dict())
    for block in full.blocks:
        if hasattr(block, "dead_nodes"):
            block.dead_nodes = frozenset()
    ran = []
    cell = lean.blocks[0]
    assert cell.dead_nodes == {1, 2}
    cell.edges[0].register_forward_hook(lambda *_: ran.append(1))
    a = train_model(lean, _data(), "1ep", amp=amp, **CFG)
    b = train_model(full, _data(), "1ep", amp=amp, **CFG)
    assert a.ok and b.ok and ran == []
    assert a.losses == b.losses
    sa, sb = lean.state_dict(), full.state_dict()
    dead = re.compile(r"blocks\.[024]\.edges\.[012]\.2\.(running_|num_batches)")  # dead BNs
    assert sum(bool(dead.match(n)) for n in sa) == 3 * 3 * 3
    for name in sa:
        assert dead.match(name) or torch.equal(sa[name], sb[name]), name
    name = "blocks.0.edges.0.2.running_mean"
    assert not torch.equal(sa[name], sb[name])  # the full graph updated it
