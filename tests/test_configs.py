"""The ready configs under configs/ parse and carry the paper's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from tgsage.demo import DemoConfig
from tgsage.search import load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SEARCH_CONFIGS = sorted(p for p in CONFIGS.glob("*.yaml") if p.name != "demo.yaml")


@pytest.mark.parametrize("path", SEARCH_CONFIGS, ids=lambda p: p.stem)
def test_search_configs_parse(path: Path) -> None:
    cfg = load_config(path)
    assert cfg.score == "p+tg" and cfg.alpha == 1.0
    assert cfg.teacher is not None
    assert "Expected cost" in path.read_text()


def test_paper_sample_counts_and_budgets() -> None:
    by_name = {p.stem: load_config(p) for p in SEARCH_CONFIGS}
    assert by_name["cifar100_layer10"].n_candidates == 1000
    assert by_name["cifar100_layer10"].space_options == {"max_layers": 10}
    assert by_name["cifar100_layer20"].n_candidates == 2000
    assert by_name["cifar100_layer20"].space_options == {"max_layers": 20}
    assert by_name["cifar100_cell"].space == "cell" and by_name["cifar100_cell"].budget == "2ep"
    assert by_name["neural_imagenet64"].budget == "1/5ep"
    nb201 = by_name["nb201_cifar10"]
    assert (nb201.space, nb201.proxy, nb201.train) == ("nb201", "synflow", "nas_bench_201")


def test_demo_yaml_equals_builtin_defaults() -> None:
    assert DemoConfig.load(CONFIGS / "demo.yaml") == DemoConfig()


def test_bootstrap_demo_searches_the_demos_data() -> None:
    """Round 1 of the CPU bootstrapping loop must draw the demo's images: its teacher's probe
    is the demo's probe.npz, which a search on other images would refuse."""
    from tgsage.demo import search_config

    round1 = load_config(CONFIGS / "bootstrap_demo.yaml")
    demo = load_config(search_config(DemoConfig(), Path("teacher.npz")))
    assert round1.data == demo.data and round1.seed == demo.seed
    assert round1.cascade == demo.cascade and round1.train_config == demo.train_config
