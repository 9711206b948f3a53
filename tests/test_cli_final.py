"""CLI: tgsage train (spec or search run folder, resume), tgsage export, teacher build from an
exported network (the bootstrapping step), and their one-line errors."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from tgsage.cli import app
from tgsage.export import load_card
from tgsage.teacher import Teacher

runner = CliRunner()
DATA = ["--data", "synthetic", "--train-size", "64", "--val-size", "32", "--resolution", "16"]
SMALL = ["--num-cells", "1", "--filters", "8", "--width-mult", "0.5"]
FAST = ["--train-option", "batch_size=32", "--device", "cpu", "--quiet"]


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)  # module fixtures run before the function-scoped one
    out = tmp_path_factory.mktemp("final") / "net"
    args = ["train", "random:cell:3", "--epochs", "2", "--out", str(out), *DATA, *SMALL, *FAST]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return out


def test_train_writes_a_model_and_resumes_without_retraining(trained) -> None:
    for name in ("model.safetensors", "model.json", "final.json", "checkpoint.pt"):
        assert (trained / name).exists(), name
    first = json.loads((trained / "final.json").read_text())
    assert first["held_out"] == "val" and len(first["history"]) == 2
    assert first["spec"]["num_cells"] == 1 and first["config"]["augment"] == "cifar_cutout"
    args = ["train", "random:cell:3", "--epochs", "2", "--out", str(trained), *DATA, *SMALL]
    res = runner.invoke(app, [*args, *FAST, "--json"])
    assert res.exit_code == 0, res.output
    again = json.loads(res.output)
    assert again["resumed_from"] == 2 and again["accuracy"] == first["accuracy"]


def test_export_of_an_unfinished_training_uses_its_last_checkpoint(trained, tmp_path) -> None:
    only_ckpt = tmp_path / "run"
    only_ckpt.mkdir()
    (only_ckpt / "checkpoint.pt").write_bytes((trained / "checkpoint.pt").read_bytes())
    res = runner.invoke(app, ["export", str(only_ckpt), "--no-onnx", "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["from_checkpoint_epoch"] == 2
    ckpt = torch.load(only_ckpt / "checkpoint.pt", map_location="cpu", weights_only=True)
    weights = load_file(str(only_ckpt / "model.safetensors"))
    for k, v in ckpt["trainer"]["model"].items():
        assert torch.equal(weights[k], v), k


@pytest.mark.slow
def test_export_writes_onnx_and_checks_it(tmp_path) -> None:
    from tgsage.data import make_synthetic_objects
    from tgsage.train.final import train_final

    data = make_synthetic_objects(32, 16, 0, resolution=16, seed=0)
    src = tmp_path / "layer"  # a layer-space network: the quickest graph to export
    train_final("random:layer:3", data, "cifar_final", src, epochs=1, width_mult=0.25)
    res = runner.invoke(app, ["export", str(src), "--out", str(tmp_path / "out"), "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["onnx_within_tolerance"] is True and report["onnx_max_abs_diff"] < 1e-3
    assert (tmp_path / "out" / "model.onnx").stat().st_size > 0
    assert load_card(tmp_path / "out") == load_card(src)


def test_teacher_from_an_exported_network(trained, tmp_path) -> None:
    out = tmp_path / "next_teacher.npz"
    args = ["teacher", "build", "--source", "export", "--model-dir", str(trained)]
    res = runner.invoke(app, [*args, *DATA, "--subsamples", "2", "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    teacher = Teacher.load(out)
    card = load_card(trained)
    assert teacher.layers == card.teacher_layers == ("cell0", "cell2", "cell4")
    assert teacher.provenance["spec"] == card.spec
    assert teacher.rdms.n_conditions == 32  # the validation images are the probe


def test_train_the_best_candidate_of_a_search(tmp_path) -> None:
    from tgsage.search import run_search

    run = tmp_path / "run"
    cfg = {
        "name": "cli-final",
        "objective": "simulate",
        "space": "cell",
        "space_options": {"num_cells": 1},
        "strategy": "random",
        "n_candidates": 3,
        "run_dir": str(run),
    }
    run_search(cfg)
    args = ["train", str(run), "--epochs", "1", *DATA, *SMALL, *FAST, "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    result = json.loads(res.output[res.output.index("{") :])
    assert result["out_dir"] == str(run / "final")
    assert (run / "final" / "model.safetensors").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "no/such/spec.json"], "not found|neither"),
        (["train", "random:cell:1", "--preset", "cifar"], "final preset"),
        (["train", "random:cell:1", "--train-option", "epochs"], "KEY=VALUE"),
        (["train", "random:layer:1", "--num-cells", "2", *DATA], "cell-space"),
        (["export", "no/such/folder"], "not found"),
        (["teacher", "build", "--source", "export", *DATA], "--model-dir"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(args, message, tmp_path) -> None:
    res = runner.invoke(
        app, [*args, "--out", str(tmp_path / "x")] if args[0] != "teacher" else args
    )
    assert res.exit_code == 2, res.output
    import re

    assert re.search(message, res.output), res.output
    assert "Traceback" not in res.output
