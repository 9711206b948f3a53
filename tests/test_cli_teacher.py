"""CLI: tgsage teacher build (every source), teacher show, evaluate."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from tgsage.cli import app
from tgsage.teacher import Teacher

runner = CliRunner()
TINY = ["--train-size", "128", "--val-size", "64", "--resolution", "16"]


@pytest.fixture(scope="module")
def resnet_teacher(tmp_path_factory):
    out = tmp_path_factory.mktemp("t") / "teacher.npz"
    res = runner.invoke(
        app,
        [
            "teacher",
            "build",
            "--source",
            "resnet",
            "--n",
            "1",
            "--width-mult",
            "0.25",
            "--budget",
            "20steps",
            "--preset",
            "cpu_demo",
            "--grouping",
            "category",
            "--device",
            "cpu",
            "-q",
            "--out",
            str(out),
            *TINY,
        ],
    )
    assert res.exit_code == 0, res.output
    return out


def test_resnet_teacher_file_and_show(resnet_teacher) -> None:
    t = Teacher.load(resnet_teacher)
    assert t.layers == ("stack1", "stack2", "stack3")
    assert t.rdms.n_conditions == 8 and t.grouping == "category"
    assert t.rdms.metadata["subsamples"] == 10
    shown = runner.invoke(app, ["teacher", "show", str(resnet_teacher)])
    assert shown.exit_code == 0 and "stack1" in shown.output and t.probe_fingerprint in shown.output


def test_evaluate_random_spec_json(resnet_teacher) -> None:
    res = runner.invoke(
        app,
        [
            "evaluate",
            "random:layer:3",
            "--teacher",
            str(resnet_teacher),
            "--budget",
            "10steps",
            "--preset",
            "cpu_demo",
            "--width-mult",
            "0.25",
            "--device",
            "cpu",
            "--json",
            *TINY,
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["status"] == "ok" and set(out["per_layer"]) == {"stack1", "stack2", "stack3"}
    assert out["score"] == pytest.approx(out["accuracy"] + out["tg"])


def test_evaluate_any_score_expression(resnet_teacher) -> None:
    args = ["evaluate", "random:layer:3", "--teacher", str(resnet_teacher), "--budget", "4steps"]
    args += ["--preset", "cpu_demo", "--width-mult", "0.25", "--device", "cpu", *TINY]
    res = runner.invoke(app, [*args, "--score", "P + 0.5*TG-cka + 0.01*SoTL", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    s = out["scores"]
    assert out["score"] == pytest.approx(s["P"] + 0.5 * s["TG-cka"] + 0.01 * s["SoTL"])
    assert out["score_kind"] == "P + 0.5*TG-cka + 0.01*SoTL"
    res = runner.invoke(app, [*args, "--score", "TG-rel", "--comparisons", "cka"])
    assert res.exit_code == 0, res.output
    assert "TG-cka" in res.output and "SoTL-E" in res.output and "score (TG-rel)" in res.output
    res = runner.invoke(app, [*args, "--score", "P*TG"])
    assert res.exit_code == 2 and "weighted sums" in res.output


def test_evaluate_bad_spec_exits_2_with_one_line() -> None:
    res = runner.invoke(app, ["evaluate", "{not json", *TINY])
    assert res.exit_code == 2
    assert "neither a spec file" in res.output


def test_recording_and_rdms_and_module_sources(tmp_path, monkeypatch) -> None:
    from tgsage.data.probe import ProbeSet
    from tgsage.data.simulate import simulate_recording
    from tgsage.data.synthetic import make_synthetic_objects

    probe = ProbeSet.from_images(make_synthetic_objects(8, 48, resolution=16, seed=3).val)
    probe.save(tmp_path / "probe.npz")
    rng = np.random.default_rng(0)
    rec = simulate_recording(
        {"a": rng.standard_normal((48, 20)), "b": rng.standard_normal((48, 30))},
        {"V4": "a", "IT": "b"},
        sites_per_region=20,
        n_repetitions=4,
        seed=0,
        stimulus_ids=probe.stimulus_ids,
    )
    rec.to_netcdf(tmp_path / "rec.nc")
    res = runner.invoke(
        app,
        [
            "teacher",
            "build",
            "--source",
            "recording",
            "--recording",
            str(tmp_path / "rec.nc"),
            "--probe",
            str(tmp_path / "probe.npz"),
            "--out",
            str(tmp_path / "neural.npz"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "noise ceiling" in res.output
    assert Teacher.load(tmp_path / "neural.npz").layers == ("V4", "IT")

    from scipy.spatial.distance import pdist

    np.savez(tmp_path / "rdms.npz", IT=pdist(rng.standard_normal((48, 5)), "correlation"))
    res = runner.invoke(
        app,
        [
            "teacher",
            "build",
            "--source",
            "rdms",
            "--rdms",
            str(tmp_path / "rdms.npz"),
            "--probe",
            str(tmp_path / "probe.npz"),
            "--out",
            str(tmp_path / "saved.npz"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert Teacher.load(tmp_path / "saved.npz").probe_fingerprint == probe.fingerprint

    (tmp_path / "my_nets.py").write_text(
        "import torch\n"
        "def make():\n"
        "    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(),\n"
        "                               torch.nn.Flatten())\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    res = runner.invoke(
        app,
        [
            "teacher",
            "build",
            "--source",
            "module",
            "--module",
            "my_nets:make",
            "--layers",
            "0,1",
            "--probe",
            str(tmp_path / "probe.npz"),
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "mod.npz"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert Teacher.load(tmp_path / "mod.npz").layers == ("0", "1")


def test_teacher_build_errors_are_one_line(tmp_path) -> None:
    res = runner.invoke(app, ["teacher", "build", "--source", "recording", *TINY])
    assert res.exit_code == 2 and "--recording" in res.output
    res = runner.invoke(
        app, ["teacher", "build", "--source", "module", "--module", "nope:x", *TINY]
    )
    assert res.exit_code == 2 and "cannot import" in res.output
