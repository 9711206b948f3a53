"""A search's configuration is checked in the search process before any study exists: a budget
past the preset's schedule, a data folder without images, a teacher whose probe images have
another resolution than the data. One error, nothing stored, and the corrected config then
runs under the same name. A worker that cannot open the data gives its candidate back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from optuna.trial import TrialState

from tgsage.errors import ConfigError, DataError, ProbeMismatchError
from tgsage.search import Worker, count_trials, create_or_load_study, load_config, run_search
from tgsage.search.runner import preflight
from tgsage.search.storage import open_storage

Factory = Callable[..., dict[str, Any]]
TINY = {"name": "synthetic", "n_train": 256, "n_val": 64, "resolution": 16}


def _train(sim_config: Factory, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict(
        objective="train", score="p", train="cpu_demo", n_candidates=2, data=TINY, device="cpu"
    )
    return sim_config(**(base | kw))


def _nothing_stored(cfg: dict[str, Any]) -> None:
    assert not Path(cfg["run_dir"]).exists()  # no journal, no log, no study


def test_budget_past_the_schedule_is_refused_before_the_study(sim_config: Factory) -> None:
    # cpu_demo: a 15-epoch cosine schedule; 256 images x 15 = 3,840 examples
    cfg = _train(sim_config, budget="4000ex")
    with pytest.raises(ConfigError, match=r"4000ex is longer than the 15-epoch cosine schedule"):
        run_search(cfg)
    _nothing_stored(cfg)
    fixed = load_config(cfg | {"budget": "3840ex"})
    _, resumed = create_or_load_study(fixed, preflight(fixed))  # same name: a new study
    assert not resumed


def test_empty_data_folder_is_refused_before_the_study(sim_config: Factory, tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    for name in ("folder", "cifar10"):
        cfg = _train(sim_config, data={"name": name, "root": str(tmp_path / "images")})
        with pytest.raises(DataError, match=r"^data: .*images"):
            run_search(cfg)
        _nothing_stored(cfg)


def test_teacher_probe_at_another_resolution_is_refused(
    sim_config: Factory, tmp_path: Path, tiny_teacher_net: Any, tiny_objects: Any
) -> None:
    from tgsage.data import ProbeSet, make_synthetic_objects
    from tgsage.evaluate import evaluate_candidate
    from tgsage.spaces import get_space
    from tgsage.teacher import teacher_from_network

    probe32 = ProbeSet.from_images(make_synthetic_objects(8, 16, resolution=32, seed=1).val)
    teacher = teacher_from_network(tiny_teacher_net, probe32, subsamples=None, device="cpu")
    teacher.save(tmp_path / "t32.npz")
    cfg = _train(sim_config, score="p+tg", teacher=str(tmp_path / "t32.npz"), budget="64ex")
    with pytest.raises(ProbeMismatchError, match=r"3x32x32 but data 'synthetic' has 3x16x16"):
        run_search(cfg)
    _nothing_stored(cfg)
    spec = get_space("layer", max_layers=2).random_spec(seed=0)
    with pytest.raises(ProbeMismatchError, match="3x32x32"):
        evaluate_candidate(spec, tiny_objects, teacher, budget="64ex", config="cpu_demo")


def test_worker_that_cannot_open_the_data_gives_its_candidate_back(
    sim_config: Factory, tmp_path: Path
) -> None:
    """A worker joining from a machine without the data stops with the error; its claimed
    candidate goes back to the queue (same choices), not counted as a failure."""
    cfg = load_config(_train(sim_config, data={"name": "cifar10", "root": str(tmp_path)}))
    study, _ = create_or_load_study(cfg, open_storage(cfg.storage_url))  # no preflight here
    with pytest.raises(DataError, match="CIFAR-10"):
        Worker(cfg.storage_url, cfg.name).run()
    trials = study.get_trials()
    first, retry = trials
    assert first.state == TrialState.FAIL and first.user_attrs["interrupted"] == "error"
    assert retry.state == TrialState.WAITING and retry.params == first.params
    counts = count_trials(trials)
    assert counts.failed == 0 and counts.waiting == 1


def test_an_objective_that_raises_fails_its_candidate_and_the_search_goes_on(
    sim_config: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in the objective fails that one candidate with its message (not a hang, not a
    dead worker): the worker records it and evaluates the rest."""
    import tgsage.search.worker as worker_module

    calls: list[str] = []

    def objective(spec: Any) -> Any:
        calls.append(spec.spec_hash)
        if len(calls) == 2:
            raise ZeroDivisionError("division by zero")
        return worker_module.Outcome(True, 0.5, {})

    monkeypatch.setattr(worker_module, "make_objective", lambda config: objective)
    cfg = load_config(sim_config(n_candidates=4, max_failures=3))
    study, _ = create_or_load_study(cfg, open_storage(cfg.storage_url))
    Worker(cfg.storage_url, cfg.name).run()
    trials = study.get_trials()
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(failed) == 1 and failed[0].user_attrs["failure_reason"] == "error"
    assert failed[0].user_attrs["message"] == "ZeroDivisionError: division by zero"
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 4
