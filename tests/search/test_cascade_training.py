"""The cascade's real evaluator on tiny generated data: continued training equals training
from the start, costs the difference, and cached evaluations are charged as if run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from tgsage.data.probe import ProbeSet
from tgsage.data.registry import get_dataset
from tgsage.evaluate import build_candidate
from tgsage.proxies import compute_proxies
from tgsage.search import load_config
from tgsage.search.cascade_train import TrainingCascade
from tgsage.search.evaluation_cache import EvaluationCache
from tgsage.spaces import get_space
from tgsage.teacher import teacher_from_network

DATA = {"name": "synthetic", "n_train": 256, "n_val": 64, "resolution": 16, "seed": 0}
BUDGETS = ["128ex", "384ex"]


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory: pytest.TempPathFactory, tiny_teacher_net: Any) -> Path:
    data = get_dataset(**{k: v for k, v in DATA.items()})
    teacher = teacher_from_network(
        tiny_teacher_net,
        ProbeSet.from_images(data.val),
        grouping="object",
        subsamples=None,
        device="cpu",
    )
    path = tmp_path_factory.mktemp("teacher") / "teacher.npz"
    teacher.save(path)
    return path


def _evaluator(tmp: Path, teacher: Path, **cascade: Any) -> TrainingCascade:
    cfg = load_config(
        {
            "name": "t",
            "space": "nb201",
            "strategy": "random",
            "n_candidates": 4,
            "data": DATA,
            "teacher": str(teacher),
            "train": "cpu_demo",
            "width_mult": 0.25,
            "device": "cpu",
            "run_dir": str(tmp),
            "cascade": {"budgets": BUDGETS, "keep": 2, **cascade},
        }
    )
    return TrainingCascade(cfg)


SPEC = get_space("nb201").random_spec(3)


def test_continued_rung_equals_training_from_the_start(tmp_path: Path, teacher_file: Path) -> None:
    rungs = _evaluator(tmp_path / "a", teacher_file)
    first = rungs.train(SPEC, "128ex", "p+tg")
    second = rungs.train(SPEC, "384ex", "p+tg", previous="128ex")
    assert first.ok and second.ok, (first.attrs, second.attrs)
    assert first.attrs["examples"] == 128 and "resumed_from" not in first.attrs
    assert second.attrs["resumed_from"] == 128 and second.attrs["examples"] == 384 - 128
    direct = _evaluator(tmp_path / "b", teacher_file).train(SPEC, "384ex", "p+tg")
    assert direct.attrs["examples"] == 384
    assert second.attrs["P"] == direct.attrs["P"]
    assert second.attrs["TG"] == pytest.approx(direct.attrs["TG"], abs=1e-6)
    assert second.score == pytest.approx(direct.attrs["P"] + direct.attrs["TG"], abs=1e-6)
    assert list((tmp_path / "a" / "checkpoints" / SPEC.spec_hash).glob("*.pt"))
    model, _ = build_candidate(SPEC, rungs.data, 0.25, seed=0)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert first.attrs["params"] == second.attrs["params"] == trainable  # the record's name


def test_screen_is_the_proxy_of_the_seeded_untrained_network(
    tmp_path: Path, teacher_file: Path
) -> None:
    rungs = _evaluator(tmp_path, teacher_file, screen="synflow")
    out = rungs.screen(SPEC)
    data = rungs.data
    model, _ = build_candidate(SPEC, data, 0.25, seed=0)
    idx = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(0))[:64]
    expect = compute_proxies(
        model,
        data.train.images[idx],
        data.train.labels[idx],
        ["synflow"],
        num_classes=data.num_classes,
        device="cpu",
        seed=0,
        normalize="cifar",
    )["synflow"]
    assert out.ok and out.attrs["examples"] == 0
    assert out.score == pytest.approx(expect, rel=1e-6)
    # a prescreen passes its own score: the trainable parameter count, counted here
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    pre = rungs.screen(SPEC, "params")
    assert pre.ok and pre.score == trainable and pre.attrs["proxies"] == {"params": trainable}


def test_cached_evaluations_are_charged_as_if_run(tmp_path: Path, teacher_file: Path) -> None:
    cache = tmp_path / "cache.jsonl"
    first = _evaluator(tmp_path / "a", teacher_file, cache=str(cache))
    a1 = first.train(SPEC, "128ex", "p")
    a2 = first.train(SPEC, "384ex", "p", previous="128ex")
    assert "cached" not in a2.attrs and a2.attrs["examples"] == 256
    lines = cache.read_text().splitlines()
    assert len(lines) == 2
    again = _evaluator(tmp_path / "b", teacher_file, cache=str(cache))
    b1 = again.train(SPEC, "128ex", "p+tg")
    b2 = again.train(SPEC, "384ex", "p+tg", previous="128ex")
    assert b1.attrs["cached"] and b2.attrs["cached"]
    assert len(cache.read_text().splitlines()) == 2  # nothing was trained again
    assert (b1.attrs["examples"], b2.attrs["examples"]) == (128, 256)
    assert b2.attrs["train_seconds"] == pytest.approx(a2.attrs["train_seconds"])
    assert b2.attrs["P"] == a2.attrs["P"] and b1.attrs["P"] == a1.attrs["P"]
    assert b2.score == pytest.approx(a2.attrs["P"] + a2.attrs["TG"])
    # a search that did not evaluate the smaller budget pays the whole run
    alone = _evaluator(tmp_path / "c", teacher_file, cache=str(cache)).train(SPEC, "384ex", "p")
    assert alone.attrs["cached"] and alone.attrs["examples"] == 384


def test_cache_skips_torn_lines_and_other_settings(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    a = EvaluationCache(path, "setting-a")
    a.put("h1", "10ex", {"status": "ok", "P": 0.5})
    EvaluationCache(path, "setting-b").put("h1", "10ex", {"status": "ok", "P": 0.9})
    with open(path, "a") as fh:
        fh.write('{"setting": "setting-a", "spec_hash": "h2", "bud')  # a killed writer
    fresh = EvaluationCache(path, "setting-a")
    assert fresh.get("h1", "10ex")["P"] == 0.5
    assert fresh.get("h2", "10ex") is None
    assert len(fresh) == 1


def test_an_expression_screen_ranks_against_the_reference_architectures(
    tmp_path: Path, teacher_file: Path
) -> None:
    """logrank of two proxies: each proxy's mid-rank percentile of the candidate among the
    search's seeded reference architectures (scipy ranks of the pooled values), logs summed;
    both proxies from one call; the reference is cached in the run folder and shared."""
    import json

    import numpy as np
    from scipy.stats import rankdata

    screen = "logrank(synflow, naswot)"
    rungs = _evaluator(tmp_path, teacher_file, screen=screen)
    rungs.config.proxy_reference = 8  # a small reference keeps the test fast
    out = rungs.screen(SPEC)
    assert out.ok, out.attrs
    files = list(tmp_path.glob("reference_*screen*.jsonl"))
    assert len(files) == 1
    ref = [json.loads(line)["values"] for line in files[0].read_text().splitlines()]
    assert len(ref) == 8
    mine = out.attrs["proxies"]
    expect = 0.0
    for name in ("synflow", "naswot"):
        pooled = np.array([r[name] for r in ref] + [mine[name]])
        expect += math.log((rankdata(pooled)[-1] - 0.5) / pooled.size)
    assert out.score == pytest.approx(expect, rel=1e-9)
    single = _evaluator(tmp_path / "single", teacher_file, screen="naswot").screen(SPEC)
    assert mine["naswot"] == pytest.approx(single.score, rel=1e-6)  # same seeded network
    again = _evaluator(tmp_path, teacher_file, screen=screen)
    again.config.proxy_reference = 8
    assert again.screen(SPEC).score == out.score  # the cached reference, the same ranks
    assert out.attrs["cpu_seconds"] > again.screen(SPEC).attrs["cpu_seconds"]  # built once
