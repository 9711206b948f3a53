"""Cascade search: the plan (against Hyperband's published table), config errors, and the rung
bookkeeping of real workers on a real storage, checked against values recomputed here from
the simulated objective's documented formula (not read back from the search)."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from tgsage.errors import ConfigError
from tgsage.experiments import best_candidate
from tgsage.search import create_or_load_study, load_config
from tgsage.search.cascade import CascadeConfig, cascade_state, make_plan
from tgsage.search.cascade_eval import SimulatedCascade
from tgsage.search.cascade_worker import CascadeWorker
from tgsage.search.runner import preflight
from tgsage.search.worker import open_study

Factory = Callable[..., dict[str, Any]]
BUDGETS = ["1000ex", "3000ex", "9000ex"]


# ---------------------------------------------------------------------------- oracle
def _u(text: str, salt: str) -> float:
    d = hashlib.sha256(f"{salt}:{text}".encode()).digest()
    return int.from_bytes(d[:8], "big") / 2.0**64


def screen_value(h: str) -> float:
    return _u(h, "Q") + 0.5 * (_u(h, "Z") - 0.5)


def prescreen_value(h: str, name: str) -> float:
    return _u(h, "Q") + 1.0 * (_u(h, f"Z{name}") - 0.5)


def rung_value(h: str, budget: str, level: int, alpha: float = 1.0) -> float:
    p = _u(h, "Q") + 0.3 * (_u(h, f"P{budget}") - 0.5) / level
    tg = _u(h, "Q") + 0.3 * (_u(h, f"T{budget}") - 0.5) / level
    return p + alpha * tg


def top(hashes: set[str], key: Callable[[str], float], k: int) -> list[str]:
    return sorted(hashes, key=lambda h: (-key(h), h))[:k]


# ---------------------------------------------------------------------------- plan
def test_hyperband_plan_matches_li_et_al_table_1() -> None:
    # Li et al. (JMLR 2018), Table 1: R = 81, eta = 3 -> brackets s = 4..0 with (n_i, r_i)
    cfg = CascadeConfig(budgets=["1ex", "3ex", "9ex", "27ex", "81ex"], eta=3, hyperband=True)
    plan = make_plan(cfg, n_candidates=100)
    got = [[(r.size, int(r.budget.removesuffix("ex"))) for r in b[1:]] for b in plan.rungs]
    assert got == [
        [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
        [(34, 3), (11, 9), (3, 27), (1, 81)],
        [(15, 9), (5, 27), (1, 81)],
        [(8, 27), (2, 81)],
        [(5, 81)],
    ]
    assert all(b[0].size == 100 and b[0].budget is None for b in plan.rungs)


def test_successive_halving_sizes() -> None:
    plan = make_plan(CascadeConfig(budgets=BUDGETS, eta=3, keep=27), 200)
    assert [r.size for r in plan.rungs[0]] == [200, 27, 9, 3]
    plan = make_plan(CascadeConfig(budgets=BUDGETS, eta=2), 40)  # default keep: n / eta
    assert [r.size for r in plan.rungs[0]] == [40, 20, 10, 5]
    plan = make_plan(CascadeConfig(budgets=BUDGETS, keep=[10, 4, 2], rounds=2), 50)
    assert [[r.size for r in b] for b in plan.rungs] == [[50, 10, 4, 2]] * 2
    # cost: 27 x 1000 + 9 x (3000 - 1000) + 3 x (9000 - 3000), or every budget from scratch
    plan = make_plan(CascadeConfig(budgets=BUDGETS, eta=3, keep=27), 200)
    ex = {"1000ex": 1000, "3000ex": 3000, "9000ex": 9000}
    assert plan.nominal_examples(ex) == 27 * 1000 + 9 * 2000 + 3 * 6000
    assert plan.nominal_examples(ex, continued=False) == 27 * 1000 + 9 * 3000 + 3 * 9000


def test_prescreen_plan() -> None:
    cfg = CascadeConfig(budgets=BUDGETS, prescreen="synflow", prescreen_keep=30, keep=9)
    plan = make_plan(cfg, 200)
    assert [r.size for r in plan.rungs[0]] == [200, 30, 9, 3, 1]
    assert [r.stage for r in plan.rungs[0]] == ["prescreen", "screen", *BUDGETS]
    assert [r.budget for r in plan.rungs[0][:2]] == [None, None]
    assert [r.score for r in plan.rungs[0][:2]] == ["synflow", "synflow"]
    assert [r.index for r in plan.rungs[0]] == [0, 1, 2, 3, 4]
    ex = {"1000ex": 1000, "3000ex": 3000, "9000ex": 9000}
    assert plan.nominal_examples(ex) == 9 * 1000 + 3 * 2000 + 1 * 6000  # untrained rungs: free
    default = make_plan(CascadeConfig(budgets=BUDGETS, prescreen="params", eta=4, keep=9), 200)
    assert [r.size for r in default.rungs[0]][:3] == [200, 50, 9]  # default: n / eta
    hb = make_plan(CascadeConfig(budgets=BUDGETS, hyperband=True, prescreen="params"), 90)
    assert all([r.stage for r in b[:2]] == ["prescreen", "screen"] for b in hb.rungs)
    assert all(b[1].size == 30 and b[0].size == 90 for b in hb.rungs)
    assert [[r.size for r in b[2:]] for b in hb.rungs] == [[9, 3, 1], [5, 1], [3]]
    with pytest.raises(ConfigError, match="the prescreen keeps 300 of only 200"):
        make_plan(CascadeConfig(budgets=BUDGETS, prescreen="params", prescreen_keep=300), 200)
    with pytest.raises(ConfigError, match="keeps 40 of only 30 prescreen survivors"):
        make_plan(
            CascadeConfig(budgets=BUDGETS, prescreen="params", prescreen_keep=30, keep=40), 200
        )


@pytest.mark.parametrize(
    ("cascade", "message"),
    [
        ({"budgets": ["1ex", "2ex"], "prescreen_keep": 5}, "needs a prescreen"),
        ({"budgets": ["1ex", "2ex"], "prescreen": "synfloww"}, "cascade.prescreen"),
        ({"budgets": ["1ex", "2ex"], "prescreen": "logrank(params, P)"}, "not zero-cost"),
        ({"budgets": ["1ex", "2ex"], "prescreen": "params", "prescreen_keep": 0}, "prescreen_keep"),
        ({"budgets": ["2000ex", "1000ex"]}, "increase"),
        ({"budgets": ["1ep", "2000ex"]}, "one unit"),
        ({"budgets": ["0ex", "10ex"]}, "positive"),
        ({"budgets": ["1ex", "2ex"], "keep": [5, 6]}, "non-increasing"),
        ({"budgets": ["1ex", "2ex"], "keep": [5]}, "one size per budget"),
        ({"budgets": ["1ex", "2ex"], "keep": 5, "hyperband": True}, "leave keep out"),
        ({"budgets": ["1ex", "2ex"], "rung_scores": ["p"]}, "one score per budget"),
        ({"budgets": ["1ex", "2ex"], "rung_scores": ["p", "sotl_x"]}, "neither a score"),
        ({"budgets": ["1ex", "2ex"], "rung_scores": ["P", "P + rank(synflow)"]}, "own"),
        ({"budgets": ["1ex", "2ex"], "rung_scores": ["P", "P-slope"]}, "from the start"),
        ({"budgets": ["1ex", "2ex"], "screen": "synfloww"}, "registered zero-cost"),
        ({"budgets": ["1ex", "2ex"], "screen": "logrank(synflow, P)"}, "not zero-cost proxies"),
        ({"budgets": ["1ex", "2ex"], "screen": "forest(synflow, naswot, ops)"}, "ground_truth"),
        ({"budgets": ["1ex", "2ex"], "eta": 1}, "greater than 1"),
        ({"budgets": ["1ex", "2ex"], "speed": 1}, "unknown field"),
    ],
)
def test_invalid_cascade_config(sim_config: Factory, cascade: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(sim_config(cascade=cascade))


def test_cascade_config_rules(sim_config: Factory) -> None:
    with pytest.raises(ConfigError, match="leave budget out"):
        load_config(sim_config(budget="2ep", cascade={"budgets": ["1ex", "2ex"]}))
    with pytest.raises(ConfigError, match="cascade.screen"):
        load_config(sim_config(score="proxy", proxy="synflow", cascade={"budgets": ["1ex"]}))
    with pytest.raises(ConfigError, match="keeps 30 of only 20"):
        make_plan(CascadeConfig(budgets=["1ex"], keep=30), 20)
    screen = "1*logrank(meco) + 0.2*logrank(synflow)"  # an expression over proxies
    assert load_config(sim_config(cascade={"budgets": ["1ex"], "screen": screen})).cascade
    cfg = load_config(sim_config(cascade={"budgets": ["1ex", "2ex"]}))
    assert cfg.budget == "2ex"  # the answer's budget
    assert load_config(cfg).cascade == cfg.cascade  # stored in the study and read back


# ---------------------------------------------------------------------------- bookkeeping
def _study(cfg_dict: dict[str, Any]) -> tuple[optuna.Study, Any]:
    cfg = load_config(cfg_dict)
    study, _ = create_or_load_study(cfg, preflight(cfg))
    return study, cfg


def _run(cfg_dict: dict[str, Any], workers: int = 1) -> tuple[list[Any], Any]:
    study, cfg = _study(cfg_dict)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:  # each worker its own storage connection and sampler, as in separate processes
            own, _ = open_study(cfg.storage_url, cfg.name)
            CascadeWorker(own, cfg, f"test-{i}", poll=0.01).run()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    return study.get_trials(deepcopy=False), cfg


def _by_rung(trials: list[Any]) -> dict[tuple[int, int], list[Any]]:
    out: dict[tuple[int, int], list[Any]] = {}
    for t in trials:
        if t.state == TrialState.COMPLETE:
            out.setdefault((t.user_attrs["bracket"], t.user_attrs["rung"]), []).append(t)
    return out


def _check_no_double_training(trials: list[Any]) -> None:
    """Each (architecture, budget) was evaluated by one trial; the others reused it."""
    evaluated = [
        t
        for t in trials
        if "reused_from" not in t.user_attrs
        and (
            t.state == TrialState.COMPLETE
            or (t.state == TrialState.FAIL and "failure_reason" in t.user_attrs)
        )
    ]
    trained = Counter(
        (t.user_attrs["spec_hash"], t.user_attrs.get("budget"), t.user_attrs.get("screen"))
        for t in evaluated
    )
    assert max(trained.values()) == 1, [k for k, v in trained.items() if v > 1]


@pytest.mark.parametrize("workers", [1, 4])
def test_rungs_promote_exactly_the_top_and_cost_adds_up(sim_config: Factory, workers: int) -> None:
    n, keep = 60, 9
    trials, cfg = _run(
        sim_config(
            space="nb201",
            n_candidates=n,
            workers=workers,
            cascade={"budgets": BUDGETS, "eta": 3, "keep": keep},
        ),
        workers,
    )
    rungs = _by_rung(trials)
    assert {k: len(v) for k, v in rungs.items()} == {(0, 0): n, (0, 1): 9, (0, 2): 3, (0, 3): 1}
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    screened = {t.user_attrs["spec_hash"] for t in rungs[(0, 0)]}
    # screen values recomputed from the formula, not read from the trials
    expect1 = top(screened, screen_value, keep)
    assert sorted(t.user_attrs["spec_hash"] for t in rungs[(0, 1)]) == sorted(expect1)
    expect2 = top(set(expect1), lambda h: rung_value(h, "1000ex", 1), 3)
    assert sorted(t.user_attrs["spec_hash"] for t in rungs[(0, 2)]) == sorted(expect2)
    expect3 = top(set(expect2), lambda h: rung_value(h, "3000ex", 2), 1)
    assert [t.user_attrs["spec_hash"] for t in rungs[(0, 3)]] == expect3
    for t in rungs[(0, 3)]:
        assert t.value == pytest.approx(rung_value(expect3[0], "9000ex", 3))
    _check_no_double_training(trials)
    # cost: every survivor continues its previous run (rung 0 is free)
    spent = sum(int(t.user_attrs.get("examples", 0)) for t in trials)
    assert spent == 9 * 1000 + 3 * 2000 + 1 * 6000
    state = cascade_state(trials, make_plan(cfg.cascade, n, cfg.score))
    assert state.finished and state.answer[0] == expect3[0]
    assert [state.rung(0, i).examples for i in range(4)] == [0, 9000, 6000, 6000]
    # the whole ranking (what `tgsage rerank` trains on a cascade): deepest rung first, by
    # the formula's value of that rung; each architecture once
    expect = (
        expect3
        + sorted(set(expect2) - set(expect3), key=lambda h: -rung_value(h, "3000ex", 2))
        + sorted(set(expect1) - set(expect2), key=lambda h: -rung_value(h, "1000ex", 1))
        + sorted(screened - set(expect1), key=lambda h: -screen_value(h))
    )
    assert [h for h, _, _ in state.ranked] == expect


@pytest.mark.parametrize("workers", [1, 3])
def test_a_prescreen_passes_its_best_to_the_screen(sim_config: Factory, workers: int) -> None:
    n, pre, keep = 60, 20, 6
    trials, cfg = _run(
        sim_config(
            space="nb201",
            n_candidates=n,
            workers=workers,
            cascade={
                "prescreen": "params",
                "prescreen_keep": pre,
                "budgets": BUDGETS[:2],
                "keep": keep,
            },
        ),
        workers,
    )
    rungs = _by_rung(trials)
    assert {k: len(v) for k, v in rungs.items()} == {(0, 0): n, (0, 1): pre, (0, 2): 6, (0, 3): 2}
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    # values recomputed from the simulated objective's formulas: the prescreen's own noise
    proposed = {t.user_attrs["spec_hash"] for t in rungs[(0, 0)]}
    for t in rungs[(0, 0)]:
        assert t.value == pytest.approx(prescreen_value(t.user_attrs["spec_hash"], "params"))
    expect1 = top(proposed, lambda h: prescreen_value(h, "params"), pre)
    assert sorted(t.user_attrs["spec_hash"] for t in rungs[(0, 1)]) == sorted(expect1)
    for t in rungs[(0, 1)]:  # the screen's own value, not the prescreen's reused
        assert t.value == pytest.approx(screen_value(t.user_attrs["spec_hash"]))
        assert "reused_from" not in t.user_attrs and t.user_attrs["screen"] == "synflow"
    expect2 = top(set(expect1), screen_value, keep)
    assert sorted(t.user_attrs["spec_hash"] for t in rungs[(0, 2)]) == sorted(expect2)
    expect3 = top(set(expect2), lambda h: rung_value(h, "1000ex", 1), 2)
    assert sorted(t.user_attrs["spec_hash"] for t in rungs[(0, 3)]) == sorted(expect3)
    _check_no_double_training(trials)
    assert sum(int(t.user_attrs.get("examples", 0)) for t in trials) == 6 * 1000 + 2 * 2000
    state = cascade_state(trials, make_plan(cfg.cascade, n, cfg.score))
    assert state.finished
    assert state.answer[0] == top(set(expect3), lambda h: rung_value(h, "3000ex", 2), 1)[0]
    assert [state.rung(0, i).as_dict()["stage"] for i in range(4)] == [
        "prescreen",
        "screen",
        *BUDGETS[:2],
    ]


def test_without_continuation_every_rung_pays_its_whole_budget(sim_config: Factory) -> None:
    trials, _ = _run(
        sim_config(
            space="nb201",
            n_candidates=30,
            cascade={"budgets": BUDGETS, "keep": [6, 3, 1], "continue_training": False},
        )
    )
    spent = sum(int(t.user_attrs.get("examples", 0)) for t in trials)
    assert spent == 6 * 1000 + 3 * 3000 + 1 * 9000


def test_failed_survivors_are_replaced_by_the_next_best(sim_config: Factory) -> None:
    trials, cfg = _run(
        sim_config(
            space="nb201",
            n_candidates=80,
            max_failures=200,
            simulate={"fail_fraction": 0.3},
            cascade={"budgets": BUDGETS, "keep": [12, 4, 2]},
        )
    )
    rungs = _by_rung(trials)
    assert [len(rungs[(0, i)]) for i in range(4)] == [80, 12, 4, 2]
    sim = SimulatedCascade(cfg)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert failed and all(t.user_attrs["failure_reason"] == "simulated_failure" for t in failed)
    # rung 1 = the best 12 of the screen among those that did not fail at rung 1
    screened = {t.user_attrs["spec_hash"] for t in rungs[(0, 0)]}
    order = top(screened, screen_value, len(screened))
    ok1 = [h for h in order if not sim._failed(h, "1000ex")][:12]
    assert sorted(t.user_attrs["spec_hash"] for t in rungs[(0, 1)]) == sorted(ok1)
    _check_no_double_training(trials)


def test_hyperband_and_rounds_on_many_workers(sim_config: Factory) -> None:
    trials, cfg = _run(
        sim_config(
            space="nb201",
            strategy="evolution",
            n_candidates=30,
            cascade={"budgets": BUDGETS, "eta": 3, "hyperband": True, "rounds": 2},
        ),
        workers=3,
    )
    plan = make_plan(cfg.cascade, 30, cfg.score)
    counts = {k: len(v) for k, v in _by_rung(trials).items()}
    assert counts == {r.role: r.size for r in plan.all_rungs()}
    assert [[r.size for r in b[1:]] for b in plan.rungs] == [[9, 3, 1], [5, 1], [3]] * 2
    _check_no_double_training(trials)
    state = cascade_state(trials, plan)
    assert state.finished and not state.missing


def test_resume_mid_cascade(sim_config: Factory, tmp_path: Path) -> None:
    cfg_dict = sim_config(space="nb201", n_candidates=40, cascade={"budgets": BUDGETS, "keep": 9})
    study, cfg = _study(cfg_dict)
    CascadeWorker(study, cfg, "first", poll=0.01, max_candidates=45).run()
    mid = cascade_state(study.get_trials(), make_plan(cfg.cascade, 40, cfg.score))
    assert mid.rung(0, 0).settled and not mid.finished  # stopped inside the trained rungs
    with pytest.raises(ConfigError, match="not settled its last rung"):
        best_candidate(cfg.resolved_run_dir)  # what `tgsage train` would train: not yet
    study2, cfg2 = _study(cfg_dict)  # the same command again
    CascadeWorker(study2, cfg2, "second", poll=0.01).run()
    trials = study2.get_trials()
    assert {k: len(v) for k, v in _by_rung(trials).items()} == {
        (0, 0): 40,
        (0, 1): 9,
        (0, 2): 3,
        (0, 3): 1,
    }
    _check_no_double_training(trials)
    assert sum(int(t.user_attrs.get("examples", 0)) for t in trials) == 9000 + 6000 + 6000
    # the answer is the last rung's candidate, not the highest value of any rung
    (last,) = _by_rung(trials)[(0, 3)]
    best = best_candidate(cfg.resolved_run_dir)
    assert (best.source, best.number, best.spec.spec_hash) == (
        "cascade",
        last.number,
        last.user_attrs["spec_hash"],
    )
    assert max(t.value for t in trials if t.value is not None) > last.value
