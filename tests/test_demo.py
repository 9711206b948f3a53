"""The demo end to end with a tiny config, and its caching on a second run."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tgsage.cli import app
from tgsage.demo import DemoConfig, run_demo
from tgsage.errors import ConfigError
from tgsage.observer import Observer


class Recorder(Observer):
    """Keeps the demo's news and the searches and trainings it announced."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.searches: list[tuple[str, int]] = []

    def message(self, text: str) -> None:
        self.lines.append(text)

    def search(self, name, n_candidates):
        self.searches.append((name, n_candidates))
        return super().search(name, n_candidates)


@pytest.mark.slow
def test_tiny_demo_end_to_end_then_cached(tmp_path) -> None:
    run_dir = tmp_path / "demo"
    res = CliRunner().invoke(app, ["demo", "--tiny", "--run-dir", str(run_dir), "-q"])
    assert res.exit_code == 0, res.output
    report = run_dir / "report" / "report.html"
    assert report.exists() and report.stat().st_size > 10_000
    assert "data:image/png;base64" in report.read_text()
    assert (run_dir / "teacher.npz").exists()
    rerank = json.loads((run_dir / "rerank.json").read_text())
    assert rerank["cost"]["M2"] == 2 and rerank["chosen"] is not None
    assert "[4/4] report" in res.output and "chose trial" in res.output

    seen = Recorder()
    out = run_demo(DemoConfig.tiny(run_dir), seen)
    assert "reusing" in seen.lines[0]  # the teacher was not trained again
    assert seen.searches == [("demo", 4)]
    assert not any("chose trial" in line for line in seen.lines)  # rerank.json reused
    assert out["search"].resumed and out["search"].complete == 4
    assert out["search"].cost_examples == rerank["cost"]["E1_total"]  # no new search cost


def test_bad_demo_config_is_one_clear_error(tmp_path) -> None:
    bad = tmp_path / "demo.yaml"
    bad.write_text("teacher_n: 0\nsurprise: 1\n")
    with pytest.raises(ConfigError, match="teacher_n"):
        DemoConfig.load(bad)
    res = CliRunner().invoke(app, ["demo", "--config", str(bad)])
    assert res.exit_code == 2 and "surprise" in res.output
