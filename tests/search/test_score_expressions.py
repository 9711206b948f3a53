"""Search scores written in the score vocabulary: any expression, ranks against the seeded
reference population, and a combiner fitted on labelled architectures of a table."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from optuna.trial import TrialState
from scipy import stats as sps

from tgsage.errors import ConfigError
from tgsage.search import Worker, create_or_load_study, load_config
from tgsage.search.runner import preflight
from tgsage.spaces.nb201 import NB201Spec

Factory = Callable[..., dict[str, Any]]
TINY_DATA = {"name": "synthetic", "n_train": 128, "n_val": 32, "resolution": 16}


def _run(cfg_dict: dict[str, Any]) -> tuple[list[Any], Any]:
    import torch

    torch.set_num_threads(1)
    cfg = load_config(cfg_dict)
    study, _ = create_or_load_study(cfg, preflight(cfg))
    Worker(cfg.storage_url, cfg.name).run()
    return [t for t in study.get_trials() if t.state == TrialState.COMPLETE], cfg


def test_config_reads_expressions_and_old_fields(sim_config: Factory) -> None:
    cfg = load_config(sim_config(score="p+tg", alpha=0.5, proxy="synflow", beta=2.0))
    assert cfg.score_expression == "P + 0.5*TG + 2.0*rank(synflow)"
    assert load_config(sim_config(score="proxy", proxy="naswot")).score_expression == "naswot"
    assert load_config(sim_config(score="P + 0.5*TG-cka")).needs_teacher
    assert not load_config(sim_config(score="SoTL-E + rank(synflow)")).needs_teacher
    with pytest.raises(ConfigError, match="neither a score"):
        load_config(sim_config(score="P-TG"))
    with pytest.raises(ConfigError, match="ground_truth"):
        load_config(sim_config(score="ridge(synflow, ops)"))
    with pytest.raises(ConfigError, match="weighted sums"):
        load_config(sim_config(score="P*TG"))


def test_simulated_search_scores_any_expression(sim_config: Factory) -> None:
    trials, _ = _run(sim_config(score="SoTL + 0.5*rank(synflow)", n_candidates=4))
    assert len(trials) == 4
    for t in trials:
        s = t.user_attrs["scores"]
        assert set(s) == {"SoTL", "synflow"} and s["SoTL"] <= 0
        assert t.value == pytest.approx(t.user_attrs["score"])


def _table(path, specs: list[NB201Spec], acc: list[float]) -> None:
    lines = ["Index,CIFAR10TestAccuracy200Epochs,ArchitectureString"]
    lines += [
        f"{i},{a:.2f},{s.to_arch_string()}" for i, (s, a) in enumerate(zip(specs, acc, strict=True))
    ]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.slow
def test_fitted_search_score_learns_from_the_table(sim_config: Factory, tmp_path) -> None:
    """ridge(params): the labelled reference's accuracy is a function of the parameter
    count, so the fitted score must order candidates by their parameter count."""
    from tgsage.spaces.nb201 import NB201Space

    specs = NB201Space.all_specs()[::391][:40]
    from tgsage.data.registry import get_dataset
    from tgsage.evaluate import build_candidate, measure_proxies

    data = get_dataset("synthetic", n_train=128, n_val=32, resolution=16)
    params = [
        measure_proxies(build_candidate(s, data, 0.25, seed=0)[0], data, ["params"], device="cpu")[
            "params"
        ]
        for s in specs
    ]
    acc = list(50 + 40 * sps.rankdata(params) / len(params))  # percent, monotone in params
    _table(tmp_path / "table.csv", specs, acc)
    trials, cfg = _run(
        sim_config(
            objective="train",
            space="nb201",
            score="ridge(params)",
            ground_truth=str(tmp_path / "table.csv"),
            proxy_reference=30,
            n_candidates=4,
            width_mult=0.25,
            device="cpu",
            train="cpu_demo",
            data=TINY_DATA,
        )
    )
    assert len(trials) == 4
    cache = list(cfg.resolved_run_dir.glob("reference_labelled_params_n30_seed0.jsonl"))
    assert len(cache) == 1 and len(cache[0].read_text().splitlines()) == 30
    p = [t.user_attrs["scores"]["params"] for t in trials]
    v = [t.value for t in trials]
    assert all(t.user_attrs["examples"] == 0 for t in trials)  # proxies only: no training
    assert sps.spearmanr(p, v).statistic == pytest.approx(1.0) or len(set(p)) < 4
    assert json.loads(cache[0].read_text().splitlines()[0])["values"]["params"] > 0
    assert np.isfinite(v).all()
