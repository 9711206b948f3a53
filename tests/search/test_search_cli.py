"""The search / worker / status commands on a local Typer app (the lead registers them)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from tgsage.cli.search import register

Factory = Callable[..., dict[str, Any]]


@pytest.fixture
def app() -> typer.Typer:
    a = typer.Typer()
    register(a)
    return a


def _write(tmp_path: Path, cfg: dict[str, Any]) -> Path:
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_invalid_config_is_one_line_and_exit_2(app: typer.Typer, tmp_path: Path) -> None:
    path = _write(tmp_path, {"n_candidates": 3, "score": "p", "wrokers": 2})
    res = CliRunner().invoke(app, ["search", str(path)])
    assert res.exit_code == 2
    assert "wrokers" in res.output and "unknown field" in res.output
    assert "Traceback" not in res.output


def test_unreachable_database_before_any_work(
    app: typer.Typer, tmp_path: Path, sim_config: Factory
) -> None:
    path = _write(tmp_path, sim_config())
    res = CliRunner().invoke(
        app, ["search", str(path), "--storage", "postgresql://u:pw@127.0.0.1:1/db"]
    )
    assert res.exit_code == 2 and "cannot reach the database" in res.output
    assert not Path(sim_config()["run_dir"]).exists()


def test_search_status_and_worker_commands(
    app: typer.Typer, tmp_path: Path, sim_config: Factory
) -> None:
    cfg = sim_config(n_candidates=3, simulate={"examples": 50})
    path = _write(tmp_path, cfg)
    runner = CliRunner()
    res = runner.invoke(app, ["search", str(path), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert (summary["complete"], summary["cost_examples"], summary["finished"]) == (3, 150, True)
    res = runner.invoke(app, ["status", cfg["run_dir"], "--json"])
    assert res.exit_code == 0, res.output
    status = json.loads(res.output)
    assert status["counts"]["complete"] == 3 and status["study"] == cfg["name"]
    assert len(status["leaderboard"]) == 3
    scores = [r["score"] for r in status["leaderboard"]]
    assert scores == sorted(scores, reverse=True)
    res = runner.invoke(app, ["status", str(path)])
    assert res.exit_code == 0 and "3/3 completed" in res.output and "cost 150" in res.output
    # extend the search to 5 candidates (stored config only), then a worker joins and runs 2
    from tgsage.search import create_or_load_study, load_config, open_storage

    bigger = load_config(path, n_candidates=5)
    create_or_load_study(bigger, open_storage(bigger.storage_url))
    storage = f"journal:{cfg['run_dir']}/search.journal"
    res = runner.invoke(app, ["worker", "--storage", storage, "--study", cfg["name"]])
    assert res.exit_code == 0, res.output
    assert "2 evaluated" in res.output
    res = runner.invoke(app, ["status", "--storage", storage, "--json"])
    assert json.loads(res.output)["counts"]["complete"] == 5


def test_status_errors(app: typer.Typer, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["status", str(tmp_path)])
    assert res.exit_code == 2 and "search.journal" in res.output
    res = runner.invoke(
        app, ["worker", "--storage", f"journal:{tmp_path}/x.journal", "--study", "nope"]
    )
    assert res.exit_code == 2 and "no journal file" in res.output


def test_cascade_search_line_counts_rungs_against_their_sizes(
    app: typer.Typer, tmp_path: Path, sim_config: Factory
) -> None:
    """A cascade's summary counts rung trials against the planned rung sizes (eta 3: 12
    screened, 4 trained, 1 continued = 17), not against n_candidates ("17/12 completed")."""
    cfg = sim_config(space="nb201", n_candidates=12, cascade={"budgets": ["100ex", "300ex"]})
    res = CliRunner().invoke(app, ["search", str(_write(tmp_path, cfg)), "-q"])
    assert res.exit_code == 0, res.output
    assert "17/17 completed over 3 rungs" in res.output, res.output
    assert "cost 600" in res.output  # 4 x 100 + 1 x (300 - 100) examples
    assert "/12 completed" not in res.output


def test_prescreen_cascade_status_names_its_stages(
    app: typer.Typer, tmp_path: Path, sim_config: Factory
) -> None:
    """A prescreen adds an untrained rung: 12 prescreened, 6 screened, 2 trained, 1 continued."""
    cascade = {"prescreen": "params", "prescreen_keep": 6, "budgets": ["100ex", "300ex"]}
    cfg = sim_config(space="nb201", n_candidates=12, cascade=cascade | {"keep": 2})
    path = _write(tmp_path, cfg)
    runner = CliRunner()
    res = runner.invoke(app, ["search", str(path), "-q"])
    assert res.exit_code == 0, res.output
    assert "21/21 completed over 4 rungs" in res.output, res.output
    assert "cost 400" in res.output  # 2 x 100 + 1 x (300 - 100) examples
    res = runner.invoke(app, ["status", str(path), "--json"])
    rungs = json.loads(res.output)["rungs"]
    assert [(r["stage"], r["size"], r["score"]) for r in rungs] == [
        ("prescreen", 12, "params"),
        ("screen", 6, "synflow"),
        ("100ex", 2, cfg.get("score", "p+tg")),
        ("300ex", 1, cfg.get("score", "p+tg")),
    ]
    res = runner.invoke(app, ["status", str(path)])
    assert res.exit_code == 0 and "prescreen" in res.output, res.output
