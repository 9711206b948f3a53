"""The command line: --version, --help, compare on files, one clean error line on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import scipy.stats as st
from scipy.spatial.distance import pdist
from typer.testing import CliRunner

from tgsage import __version__
from tgsage.cli import app

runner = CliRunner()


def test_version_and_help_in_a_real_process() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tgsage", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"tgsage {__version__}"
    helped = subprocess.run(
        [sys.executable, "-m", "tgsage", "--help"], capture_output=True, text=True, check=True
    )
    assert "compare" in helped.stdout


def test_version_and_help_import_no_heavy_library() -> None:
    """`tgsage --version` and `--help` answer without loading torch, numpy or optuna."""
    code = (
        "import sys\n"
        "from tgsage.cli import app\n"
        "for args in (['--version'], ['--help'], ['search', '--help']):\n"
        "    try:\n"
        "        app(args, prog_name='tgsage')\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted(m for m in ('torch', 'numpy', 'optuna') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_compare_files_json_matches_scipy(tmp_path) -> None:
    rng = np.random.default_rng(0)
    t = {"L1": rng.standard_normal((20, 8)), "L2": rng.standard_normal((20, 5))}
    c = {"conv": t["L1"] + rng.standard_normal((20, 8))}
    np.savez(tmp_path / "t.npz", **t)
    np.savez(tmp_path / "c.npz", **c)
    res = runner.invoke(
        app,
        [
            "compare",
            str(tmp_path / "t.npz"),
            str(tmp_path / "c.npz"),
            "--json",
            "--accuracy",
            "0.5",
            "--alpha",
            "2",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    s = [
        st.pearsonr(pdist(v, "correlation"), pdist(c["conv"], "correlation"))[0] for v in t.values()
    ]
    assert abs(out["per_layer"]["L1"] - s[0]) < 1e-10
    assert abs(out["tg"] - np.mean(s)) < 1e-10
    assert abs(out["score"] - (0.5 + 2 * np.mean(s))) < 1e-10


def test_compare_example_prints_tg() -> None:
    res = runner.invoke(app, ["compare", "--example"])
    assert res.exit_code == 0
    assert "TG = mean S_i" in res.output


def test_bad_file_is_one_clear_error_and_exit_2(tmp_path) -> None:
    (tmp_path / "bad.npz").write_text("not an array")
    res = runner.invoke(app, ["compare", str(tmp_path / "bad.npz"), str(tmp_path / "bad.npz")])
    assert res.exit_code == 2
    assert "is not an activation file" in res.output and "Traceback" not in res.output


def test_mismatched_image_counts_exit_2(tmp_path) -> None:
    np.savez(tmp_path / "t.npz", L1=np.random.randn(10, 3))
    np.savez(tmp_path / "c.npz", conv=np.random.randn(12, 3))
    res = runner.invoke(app, ["compare", str(tmp_path / "t.npz"), str(tmp_path / "c.npz")])
    assert res.exit_code == 2
    assert "10 vs 12" in res.output


def _command_params(path: list[str]) -> set[str]:
    import typer.main

    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]  # type: ignore[attr-defined]
    return {p.name for p in cmd.params}


def test_every_command_that_runs_networks_takes_threads() -> None:
    for path in (["train"], ["evaluate"], ["predictivity"], ["rerank"], ["teacher", "build"]):
        assert "threads" in _command_params(path), path


def test_threads_option_and_env_set_torch_threads(monkeypatch) -> None:
    import torch

    before = torch.get_num_threads()
    args = ["evaluate", "random:layer:1", "--score", "p", "--budget", "2steps"]
    args += ["--preset", "cpu_demo", "--width-mult", "0.25", "--device", "cpu", "--json"]
    args += ["--train-size", "64", "--val-size", "32", "--resolution", "16"]
    try:
        n = before + 1  # differs from torch's current number on any machine
        res = runner.invoke(app, [*args, "--threads", str(n)])
        assert res.exit_code == 0, res.output
        assert torch.get_num_threads() == n
        monkeypatch.setenv("TGSAGE_THREADS", "1")
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output
        assert torch.get_num_threads() == 1
        res = runner.invoke(app, [*args, "--threads", "0"])
        assert res.exit_code == 2 and "--threads" in res.output
    finally:
        torch.set_num_threads(before)
