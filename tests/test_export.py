"""Export: safetensors + model card reload to identical outputs; ONNX equals PyTorch.

Oracles: the original model's own outputs (bit-identical after a reload), onnxruntime running
the exported graph, and hand-derived stage ends for the teacher layers.
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from tgsage.errors import ConfigError, DataError
from tgsage.export import (
    CARD_FILE,
    ONNX_ATOL,
    ONNX_RTOL,
    WEIGHTS_FILE,
    ModelCard,
    check_onnx,
    export_onnx,
    load_card,
    load_model,
    save_model,
    teacher_layers,
)
from tgsage.models import get_model
from tgsage.spaces import NB201Spec, build_model, get_cell_preset, get_space

SPECS = {  # small graphs (ONNX export time grows with the op count), every kind of op
    "layer": lambda: get_space("layer", max_layers=6).random_spec(4),
    "cell": lambda: get_cell_preset("nasnet_a", num_cells=1, filters=8),
    "nb201": lambda: NB201Spec.from_arch_string(
        "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|none~1|avg_pool_3x3~2|"
    ),
}


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _trained_like(space: str, auxiliary: bool = False) -> torch.nn.Module:
    """A network with non-trivial weights and batch-norm statistics (a few training-mode
    passes), as after training."""
    torch.manual_seed(0)
    model = build_model(
        SPECS[space](), 10, (3, 16, 16), width_mult=0.25, auxiliary=auxiliary
    ).train()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
        for _ in range(3):
            model(torch.randn(8, 3, 16, 16) * 2 + 0.5)
    return model.eval()


@pytest.mark.parametrize("space", list(SPECS))
def test_saved_weights_reload_to_identical_outputs(space: str, tmp_path) -> None:
    model = _trained_like(space, auxiliary=space == "cell")
    save_model(model, tmp_path, width_mult=0.25, metrics={"test_accuracy": 0.5})
    again = load_model(tmp_path)
    x = torch.randn(5, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(again(x), model(x))
        la, fa = again.forward_with_features(x)
        lb, fb = model.forward_with_features(x)
    assert torch.equal(la, lb) and fa.keys() == fb.keys()
    assert not again.training
    card = load_card(tmp_path / WEIGHTS_FILE)
    assert card == ModelCard.from_json((tmp_path / CARD_FILE).read_text())
    assert card.spec == json.loads(model.spec.to_json())
    assert card.metrics == {"test_accuracy": 0.5}
    assert card.auxiliary == (space == "cell")


def test_weights_file_is_plain_safetensors(tmp_path) -> None:
    model = _trained_like("nb201")
    save_model(model, tmp_path, width_mult=0.25)
    with safe_open(str(tmp_path / WEIGHTS_FILE), framework="pt") as fh:
        keys = set(fh.keys())
        assert fh.metadata()["format"] == "tgsage-model/1"
        weight = fh.get_tensor("classifier.weight")
    assert keys == set(model.state_dict())
    assert torch.equal(weight, model.classifier.weight)


def test_bad_exports_and_files_are_refused(tmp_path) -> None:
    model = _trained_like("layer")
    with pytest.raises(ConfigError, match="do not match"):
        save_model(model, tmp_path, width_mult=1.0)  # built at 0.25
    with pytest.raises(ConfigError, match="spec"):
        save_model(get_model("small_cnn"), tmp_path, input_shape=(3, 16, 16))
    with pytest.raises(DataError, match="not found"):
        load_model(tmp_path / "nothing")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(DataError, match="safetensors"):
        load_model(tmp_path / "junk.safetensors")
    with pytest.raises(DataError, match="model format"):
        ModelCard.from_json('{"format": "other"}')


def test_teacher_layers_are_the_ends_of_the_stages() -> None:
    # nasnet layout, N=1: cell0 (16 px), cell1 = reduction, cell2 (8 px), cell3 = reduction,
    # cell4 (4 px): the last cell at each resolution is 0, 2, 4
    model = build_model(get_cell_preset("nasnet_a", num_cells=1, filters=8), 10, (3, 16, 16))
    assert teacher_layers(model, (3, 16, 16)) == ("cell0", "cell2", "cell4")
    # NB201 (N=5): cells 0-4, reduce1, cells 5-9, reduce2, cells 10-14
    nb = build_model(SPECS["nb201"](), 10, (3, 16, 16), width_mult=0.25)
    assert teacher_layers(nb, (3, 16, 16)) == ("cell4", "cell9", "cell14")
    resnet = get_model("resnet_cifar", n=1, width_mult=0.25)
    assert teacher_layers(resnet, (3, 16, 16)) == ("stack1", "stack2", "stack3")


@pytest.mark.slow
@pytest.mark.parametrize("space", list(SPECS))
def test_onnx_outputs_equal_pytorch(space: str, tmp_path) -> None:
    """Tolerance: |onnx - torch| <= 1e-4 + 1e-4 |torch| per logit (float32, different kernels)."""
    ort = pytest.importorskip("onnxruntime")
    model = _trained_like(space, auxiliary=space == "cell")
    path = export_onnx(model, tmp_path / "model.onnx", (3, 16, 16))
    x = torch.randn(7, 3, 16, 16)  # another batch size than the export's example
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(["logits"], {"images": x.numpy()})
    with torch.no_grad():
        want = model(x)
    torch.testing.assert_close(torch.from_numpy(got), want, rtol=ONNX_RTOL, atol=ONNX_ATOL)
    diff, ok = check_onnx(path, model, x)
    assert ok and diff == pytest.approx(float((torch.from_numpy(got) - want).abs().max()))
    assert not model.training  # left as it was
