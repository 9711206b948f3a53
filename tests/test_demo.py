"""The demo end to end with a tiny config, and its caching on a second run."""

from __future__ import annotations

import json
import statistics

import pytest
import torch
from optuna.trial import TrialState
from typer.testing import CliRunner

from tgsage.cli import app
from tgsage.data.probe import ProbeSet
from tgsage.data.registry import get_dataset
from tgsage.data.synthetic import RenderConfig
from tgsage.demo import EASY_RENDER, DemoConfig, demo_threads, run_demo
from tgsage.errors import ConfigError, DataError
from tgsage.observer import Observer
from tgsage.search.locate import resolve_run
from tgsage.teacher import Teacher
from tgsage.train import get_preset


class Recorder(Observer):
    """Keeps the demo's news and the searches and trainings it announced."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.searches: list[tuple[str, int]] = []
        self.trainings: list[str] = []

    def message(self, text: str) -> None:
        self.lines.append(text)

    def search(self, name, n_candidates):
        self.searches.append((name, n_candidates))
        return super().search(name, n_candidates)

    def training(self, description, total_examples):
        self.trainings.append(description)
        return super().training(description, total_examples)


@pytest.mark.slow
def test_tiny_demo_end_to_end_then_cached(tmp_path) -> None:
    run_dir = tmp_path / "demo"
    threads = torch.get_num_threads()
    res = CliRunner().invoke(app, ["demo", "--tiny", "--run-dir", str(run_dir), "-q"])
    assert res.exit_code == 0, res.output
    assert torch.get_num_threads() == threads  # the demo's own thread count was undone
    # the probe set saved beside the teacher is the one its RDMs were measured on
    probe = ProbeSet.load(run_dir / "probe.npz")
    assert probe.fingerprint == Teacher.load(run_dir / "teacher.npz").probe_fingerprint
    assert len(probe) == 64 and "object" in probe.labelings
    report = run_dir / "report" / "report.html"
    assert report.exists() and report.stat().st_size > 10_000
    assert "data:image/png;base64" in report.read_text()
    assert (run_dir / "teacher.npz").exists()
    assert "[4/4] report" in res.output and "median of 2 random architectures" in res.output

    # the chosen network is the cascade's answer: the one candidate of its last rung
    run = resolve_run(str(run_dir))
    (last,) = [
        t
        for t in run.study.get_trials()
        if t.state == TrialState.COMPLETE and t.user_attrs.get("rung") == 2
    ]
    comparison = json.loads((run_dir / "comparison.json").read_text())
    assert comparison["chosen"]["spec_hash"] == last.user_attrs["spec_hash"]
    assert comparison["trial"] == last.number
    randoms = comparison["random"]
    assert len({r["spec_hash"] for r in randoms} | {last.user_attrs["spec_hash"]}) == 3
    accs = [r["test_accuracy"] for r in randoms]
    assert comparison["median_random"] == pytest.approx(statistics.median(accs))
    assert all(0.0 <= a <= 1.0 for a in [*accs, comparison["chosen"]["test_accuracy"]])
    # trained the same way: the cascade's last budget (10 steps of 64 on 192 images)
    assert all(r["examples"] == 640 for r in [*randoms, comparison["chosen"]])

    seen = Recorder()
    out = run_demo(DemoConfig.tiny(run_dir), seen)
    assert "reusing" in seen.lines[0]  # the teacher was not trained again
    assert seen.searches == [("demo", 6)]
    assert seen.trainings == []  # nothing trained again: search finished, comparison reused
    assert out["search"].resumed and out["comparison"] == comparison


def test_render_options_of_synthetic_objects() -> None:
    easy = get_dataset("synthetic", n_train=8, n_val=4, resolution=16, render=EASY_RENDER)
    again = get_dataset("synthetic", n_train=8, n_val=4, resolution=16, render=EASY_RENDER)
    default = get_dataset("synthetic", n_train=8, n_val=4, resolution=16)
    assert torch.equal(easy.train.images, again.train.images)
    assert not torch.equal(easy.train.images, default.train.images)
    assert RenderConfig.from_options({"scale": [0.5, 0.9]}).scale == (0.5, 0.9)
    with pytest.raises(DataError, match="unknown wobble"):
        get_dataset("synthetic", n_train=8, n_val=4, render={"wobble": 1})


def test_bad_demo_config_is_one_clear_error(tmp_path) -> None:
    bad = tmp_path / "demo.yaml"
    bad.write_text("teacher_n: 0\nsurprise: 1\n")
    with pytest.raises(ConfigError, match="teacher_n"):
        DemoConfig.load(bad)
    res = CliRunner().invoke(app, ["demo", "--config", str(bad)])
    assert res.exit_code == 2 and "surprise" in res.output


def test_demo_trains_in_process_with_one_search_workers_threads(monkeypatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert demo_threads(DemoConfig()) == 1  # 2 cores, 2 workers
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert demo_threads(DemoConfig()) == 4
    one = DemoConfig(search={**DemoConfig().search, "workers": 1})
    assert demo_threads(one) == 8
    monkeypatch.setattr("os.cpu_count", lambda: None)
    assert demo_threads(DemoConfig()) == 1


def test_default_demo_plan() -> None:
    """The training the default demo plans, in examples (BENCHMARKS section 8 cites these):
    a 15-epoch teacher, a cascade whose survivors continue from their previous rung, and the
    chosen network plus the baselines trained for the last rung's budget."""
    cfg = DemoConfig()
    n = cfg.data["n_train"]
    assert n == 6000
    teacher = get_preset(cfg.teacher_preset).examples_for(cfg.teacher_budget, n)
    train = get_preset(cfg.search["train"], **cfg.search["train_options"])
    cascade = cfg.search["cascade"]
    (first, last), (k1, k2) = cascade["budgets"], cascade["keep"]
    # the last rung ends the cosine schedule (its learning rate reaches 0 there)
    assert train.steps_for(last, n) == train.steps_for("mature", n)
    search = k1 * train.examples_for(first, n) + k2 * (
        train.examples_for(last, n) - train.examples_for(first, n)
    )
    compare = (1 + cfg.baselines) * train.examples_for(last, n)
    assert (teacher, search, compare) == (90_000, 8 * 6000 + 3 * 24_000, 5 * 30_000)
    assert cfg.search["n_candidates"] == 32 and k1 < 32 and k2 < k1
