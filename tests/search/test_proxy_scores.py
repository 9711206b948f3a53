"""Zero-cost proxies in a search's score: config checks, rank(proxy) and real evaluations."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from tgsage.errors import ConfigError
from tgsage.search import Worker, create_or_load_study, load_config
from tgsage.search.objective import check_objective
from tgsage.search.runner import preflight
from tgsage.spaces import build_model, count_params, spec_from_json

Factory = Callable[..., dict[str, Any]]
TINY_DATA = {"name": "synthetic", "n_train": 128, "n_val": 32, "resolution": 16}


def test_config_needs_a_proxy_for_proxy_scores(sim_config: Factory) -> None:
    with pytest.raises(ConfigError, match="score 'proxy' needs 'proxy"):
        load_config(sim_config(score="proxy"))
    with pytest.raises(ConfigError, match="beta weighs rank"):
        load_config(sim_config(score="p", beta=0.5))
    with pytest.raises(ConfigError, match="proxy alone"):
        load_config(sim_config(score="proxy", proxy="synflow", beta=1.0))
    cfg = load_config(sim_config(objective="train", score="proxy", proxy="nope", data=TINY_DATA))
    with pytest.raises(ConfigError, match="proxy"):
        check_objective(cfg)


def _run(cfg_dict: dict[str, Any]) -> tuple[list[optuna.trial.FrozenTrial], Any]:
    import torch

    torch.set_num_threads(1)
    cfg = load_config(cfg_dict)
    study, _ = create_or_load_study(cfg, preflight(cfg))
    Worker(cfg.storage_url, cfg.name).run()
    return [t for t in study.get_trials() if t.state == TrialState.COMPLETE], cfg


def test_proxy_alone_scores_untrained_networks(sim_config: Factory) -> None:
    """score: proxy with the params proxy: the value is the parameter count, no training."""
    trials, _ = _run(
        sim_config(
            objective="train",
            score="proxy",
            proxy="params",
            n_candidates=3,
            space_options={"max_layers": 2},
            width_mult=0.25,
            device="cpu",
            train="cpu_demo",
            data=TINY_DATA,
        )
    )
    assert len(trials) == 3
    for t in trials:
        model = build_model(
            spec_from_json(t.user_attrs["spec"]),
            num_classes=8,
            input_shape=(3, 16, 16),
            width_mult=0.25,
        )
        assert t.value == count_params(model)
        assert t.user_attrs["examples"] == 0 and "P" not in t.user_attrs


@pytest.mark.slow
def test_p_plus_beta_rank_of_proxy(sim_config: Factory) -> None:
    """P + beta * rank(params): rank = percentile among the cached reference sample."""
    beta = 0.3
    trials, cfg = _run(
        sim_config(
            objective="train",
            score="p",
            proxy="params",
            beta=beta,
            proxy_reference=5,
            n_candidates=2,
            budget="32ex",
            space_options={"max_layers": 2},
            width_mult=0.25,
            device="cpu",
            train="cpu_demo",
            data=TINY_DATA,
        )
    )
    cache = list(cfg.resolved_run_dir.glob("reference_params_n5_seed0.jsonl"))
    assert len(cache) == 1
    rows = [json.loads(line) for line in cache[0].read_text().splitlines()]
    ref = np.asarray([r["values"]["params"] for r in rows])
    assert ref.size == 5
    for t in trials:
        a = t.user_attrs
        n = a["proxies"]["params"]
        assert n == a["params"]
        # mid-rank of n among the reference plus itself, minus a half, over 6
        q = (np.sum(ref < n) + 0.5 * (np.sum(ref == n) + 1)) / (ref.size + 1)
        assert a["proxy_rank"] == pytest.approx(q)
        assert t.value == pytest.approx(a["P"] + beta * q)
