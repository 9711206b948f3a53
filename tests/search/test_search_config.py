"""SearchConfig: defaults, YAML, one clear ConfigError naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from tgsage.errors import ConfigError
from tgsage.search import load_config
from tgsage.search.config import journal_path


def test_defaults_and_journal_in_run_dir(tmp_path: Path) -> None:
    cfg = load_config(
        {"name": "s1", "n_candidates": 5, "score": "p", "run_dir": str(tmp_path / "r")}
    )
    assert cfg.storage_url == f"journal:{tmp_path / 'r' / 'search.journal'}"
    assert cfg.workers == 1 and cfg.objective == "train" and cfg.failure_limit == 10
    assert cfg.run_dir == (tmp_path / "r").resolve()


def test_yaml_file_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "name: y\nn_candidates: 4\nscore: p\ndata:\n  name: synthetic\n"
        "  n_train: 64\n  resolution: 16\nworkers: 2\n"
    )
    cfg = load_config(path, workers=3, seed=None)
    assert (cfg.name, cfg.n_candidates, cfg.workers, cfg.seed) == ("y", 4, 3, 0)
    assert cfg.data.options == {"n_train": 64, "resolution": 16}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"score": "p"}, "n_candidates"),
        ({"n_candidates": 2, "score": "p", "strategyy": "tpe"}, "strategyy"),
        ({"n_candidates": 2, "score": "acc"}, "score"),
        ({"n_candidates": 0, "score": "p"}, "n_candidates"),
        ({"n_candidates": 2, "score": "p", "budget": "2 bananas"}, "budget"),
        ({"n_candidates": 2}, "teacher"),
        ({"n_candidates": 2, "score": "p", "workers": 2, "storage": "sqlite:///x.db"}, "SQLite"),
        (
            {"n_candidates": 2, "score": "p", "heartbeat_interval": 10, "grace_period": 5},
            "grace_period",
        ),
    ],
)
def test_invalid_fields_are_named(data: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        load_config(data)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(bad)


def test_differences_ignore_mutable_fields() -> None:
    a = load_config({"name": "d", "n_candidates": 5, "score": "p", "run_dir": "/tmp/x"})
    b = load_config(
        {"name": "d", "n_candidates": 9, "workers": 4, "score": "p", "run_dir": "/tmp/x"}
    )
    c = load_config(
        {"name": "d", "n_candidates": 5, "score": "p", "strategy": "tpe", "run_dir": "/tmp/x"}
    )
    assert a.differences(b) == []
    assert a.differences(c) == ["strategy"]


def test_journal_urls(tmp_path: Path) -> None:
    assert journal_path(f"journal:{tmp_path}/a.journal") == tmp_path / "a.journal"
    assert journal_path(f"journal://{tmp_path}/a.journal") == tmp_path / "a.journal"
    assert journal_path(f"{tmp_path}/a.journal") == tmp_path / "a.journal"


def test_train_options_override_the_preset(tmp_path) -> None:
    from tgsage.errors import ConfigError
    from tgsage.search import load_config
    from tgsage.search.objective import check_objective

    base = {
        "name": "t",
        "n_candidates": 2,
        "objective": "train",
        "score": "p",
        "train": "cpu_demo",
        "run_dir": str(tmp_path),
        "data": {"name": "synthetic"},
    }
    cfg = load_config({**base, "train_options": {"epochs": 30, "lr": 0.01}})
    assert (cfg.train_config.epochs, cfg.train_config.lr, cfg.train_config.batch_size) == (
        30,
        0.01,
        64,
    )
    with pytest.raises(ConfigError, match="train_options"):
        check_objective(load_config({**base, "train_options": {"epochz": 30}}))


def test_default_training_preset_is_the_spaces(tmp_path) -> None:
    from tgsage.search import load_config
    from tgsage.train import get_preset

    base = {"name": "t", "n_candidates": 2, "objective": "simulate", "run_dir": str(tmp_path)}
    for space, preset in (
        ("layer", "cifar_layer_space"),
        ("cell", "cifar_cell_search"),
        ("nb201", "nas_bench_201"),
    ):
        assert load_config({**base, "space": space}).train_config == get_preset(preset)
    assert load_config({**base, "space": "nb201", "train": "cpu_demo"}).train_config == get_preset(
        "cpu_demo"
    )
