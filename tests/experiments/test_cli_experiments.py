"""``tgsage report`` / ``rerank`` / ``predictivity`` on a local Typer app (the lead registers
them in tgsage.cli.main): a tiny simulated search, tiny synthetic data and a tiny teacher."""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import torch
import typer
import yaml
from scipy import stats
from typer.testing import CliRunner

import tgsage.experiments.predictivity as predictivity_mod
from tgsage.cli.experiments import register as register_experiments
from tgsage.cli.search import register as register_search
from tgsage.experiments import pool_from_string
from tgsage.spaces import get_space
from tgsage.teacher import teacher_from_network

N_CANDIDATES, SIM_EXAMPLES = 6, 100
TINY_DATA = ["--train-size", "128", "--val-size", "64", "--resolution", "16"]


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    a = typer.Typer()
    register_search(a)
    register_experiments(a)
    return a


@pytest.fixture(scope="module")
def teacher_file(tiny_teacher_net, tiny_probe, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("teacher") / "teacher.npz"
    teacher_from_network(tiny_teacher_net, tiny_probe, subsamples=None, device="cpu").save(path)
    return path


@pytest.fixture(scope="module")
def search_run(app, teacher_file, tmp_path_factory) -> Path:
    """A finished 6-candidate simulated search whose config names tiny synthetic data."""
    root = tmp_path_factory.mktemp("search")
    cfg = {
        "name": f"cli-{uuid.uuid4().hex[:8]}",
        "objective": "simulate",
        "space": "layer",
        "n_candidates": N_CANDIDATES,
        "workers": 1,
        "run_dir": str(root / "run"),
        "simulate": {"sleep": 0.0, "examples": SIM_EXAMPLES},
        "heartbeat_interval": 1,
        "grace_period": 3,
        "teacher": str(teacher_file),
        "width_mult": 0.25,
        "device": "cpu",
        "data": {"name": "synthetic", "n_train": 128, "n_val": 64, "resolution": 16},
    }
    path = root / "search.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = CliRunner().invoke(app, ["search", str(path), "--quiet"])
    assert res.exit_code == 0, res.output
    return root / "run"


def _text(res) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(res.output.split())


def _copy_run(run: Path, dest: Path) -> Path:
    """A private copy of the run folder (its journal included): tests don't see each other."""
    return Path(shutil.copytree(run, dest / "run"))


def _trials(run: Path) -> list[optuna.trial.FrozenTrial]:
    """The study's trials read with plain Optuna (an oracle independent of tgsage's readers)."""
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(run / "search.journal"))
    )
    (name,) = optuna.get_all_study_names(storage)
    return optuna.load_study(study_name=name, storage=storage).get_trials()


def _top(run: Path, k: int) -> list[optuna.trial.FrozenTrial]:
    done = [t for t in _trials(run) if t.state == optuna.trial.TrialState.COMPLETE]
    return sorted(done, key=lambda t: (-t.value, t.number))[:k]


def test_report_html_figures_summary_and_missing_teacher(
    app, search_run, teacher_file, tmp_path
) -> None:
    run = _copy_run(search_run, tmp_path)
    res = CliRunner().invoke(app, ["report", str(run)])
    assert res.exit_code == 0, res.output
    out = run / "report"
    html = (out / "report.html").read_text()
    assert "Leaderboard" in html
    # self-contained: every image inline, no reference to a file next to it
    assert html.count("data:image/png;base64,") >= 4
    assert not re.search(r'src="(?!data:)', html) and "<link" not in html
    pngs = {p.name for p in out.glob("*.png")}
    assert {"best_so_far.png", "teacher_rdms.png", "architecture_1.png"} <= pngs
    best = _top(run, 1)[0]
    assert best.user_attrs["spec_hash"] in html
    text = _text(res)
    assert f"{N_CANDIDATES} candidates" in text
    assert f"best score {best.value:.4f} (trial {best.number})" in text
    assert f"total cost {N_CANDIDATES * SIM_EXAMPLES:,} examples" in text
    assert (
        f"optuna-dashboard {search_run.parent.resolve() / 'run' / 'search.journal'}" not in text
    )  # the copy is reported, not the original
    assert f"optuna-dashboard {(run / 'search.journal').resolve()}" in text
    assert "report.html" in text

    # the teacher file has gone: the report is still written, without teacher heatmaps
    moved = teacher_file.with_suffix(".moved")
    teacher_file.rename(moved)
    try:
        res = CliRunner().invoke(app, ["report", str(run), "--out", str(tmp_path / "r2")])
    finally:
        moved.rename(teacher_file)
    assert res.exit_code == 0, res.output
    assert "not found" in _text(res) and "heatmaps skipped" in _text(res)
    assert (tmp_path / "r2" / "report.html").exists()
    assert not (tmp_path / "r2" / "teacher_rdms.png").exists()


def test_rerank_cost_arithmetic_and_report_includes_it(app, search_run, tmp_path) -> None:
    run = _copy_run(search_run, tmp_path)
    res = CliRunner().invoke(app, ["rerank", str(run), "--k", "2", "--budget", "5steps"])
    assert res.exit_code == 0, res.output
    data = json.loads((run / "rerank.json").read_text())
    cands, cost = data["candidates"], data["cost"]
    # the top 2 by score, from the study itself
    assert [c["number"] for c in cands] == [t.number for t in _top(run, 2)]
    # 5 steps of the default layer-space preset (batch 128) on 128 images = 640 examples each
    assert [c["examples"] for c in cands] == [640, 640]
    assert cost["M2"] == 2 and cost["E2_total"] == sum(c["examples"] for c in cands) == 1280
    assert cost["M1"] == N_CANDIDATES and cost["E1_total"] == N_CANDIDATES * SIM_EXAMPLES
    assert cost["total"] == cost["E1_total"] + cost["E2_total"] == 600 + 1280
    assert cost["M1"] * cost["E1"] + cost["M2"] * cost["E2"] == pytest.approx(cost["total"])
    best = max(cands, key=lambda c: c["accuracy"])
    assert data["chosen"]["accuracy"] == best["accuracy"]
    assert data["chosen"]["trial"] in {c["number"] for c in cands}
    chosen_trial = next(t for t in _trials(run) if t.number == data["chosen"]["trial"])
    assert json.loads(chosen_trial.user_attrs["spec"]) == data["chosen"]["spec"]
    assert data["settings"]["width_mult"] == 0.25 and data["settings"]["device"] == "cpu"
    assert "1,880" in res.output  # the printed total
    # the report picks the re-ranking up: its cost and its table
    res = CliRunner().invoke(app, ["report", str(run)])
    assert res.exit_code == 0, res.output
    assert "total cost 1,880 examples" in _text(res)
    html = (run / "report" / "report.html").read_text()
    assert "Re-ranking" in html and "1880" in html.replace(",", "")


def test_pool_forms(search_run, tmp_path) -> None:
    space = get_space("layer")
    specs = [space.random_spec(s) for s in (1, 2)]
    path = tmp_path / "specs.jsonl"
    path.write_text("\n".join([specs[0].to_json(), "", specs[1].to_json(), specs[0].to_json()]))
    assert [s.spec_hash for s in pool_from_string(str(path), 0)] == [s.spec_hash for s in specs]
    top = pool_from_string(f"{search_run}:2", 0)
    assert [s.spec_hash for s in top] == [t.user_attrs["spec_hash"] for t in _top(search_run, 2)]
    assert len(pool_from_string(str(search_run), 0)) == N_CANDIDATES
    a, b = pool_from_string("random:layer:4:7", 0), pool_from_string("random:layer:4", 7)
    assert len({s.spec_hash for s in a}) == 4 and a == b


def test_predictivity_writes_pool_table_report_and_resumes(
    app, teacher_file, tmp_path, monkeypatch
) -> None:
    out = tmp_path / "pred"
    args = [
        "predictivity",
        "--pool",
        "random:layer:3",
        "--teacher",
        str(teacher_file),
        *TINY_DATA,
        "--budgets",
        "5steps,10steps",
        "--mature",
        "20steps",
        "--preset",
        "cpu_demo",
        "--width-mult",
        "0.25",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--quiet",
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    lines = (out / "pool.jsonl").read_text().splitlines()
    assert len(lines) == 3
    pool = [json.loads(ln) for ln in lines]
    assert all(r["status"] == "ok" for r in pool)
    assert [[p["budget"] for p in r["points"]] for r in pool] == [["5steps", "10steps"]] * 3
    table = json.loads((out / "predictivity.json").read_text())
    rows = {(r["budget"], r["score"]): r for r in table["rows"]}
    assert {("5steps", "P"), ("10steps", "TG"), ("10steps", "P+TG")} <= set(rows)
    # Spearman of P at 10 steps against scipy on the stored values
    p10 = [r["points"][1]["accuracy"] for r in pool]
    mature = [r["mature_accuracy"] for r in pool]
    rho = stats.spearmanr(p10, mature).statistic
    got = rows[("10steps", "P")]["spearman"]
    assert (got is None and rho != rho) or got == pytest.approx(rho)
    assert (out / "report.html").exists() and "10steps" in res.output

    # a re-run trains nothing: every architecture is already stored
    def boom(*a, **k):
        raise AssertionError("re-run trained an architecture that was already stored")

    monkeypatch.setattr(predictivity_mod, "measure_architecture", boom)
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "3 of 3" in res.output
    assert len((out / "pool.jsonl").read_text().splitlines()) == 3


@pytest.mark.parametrize("command", [["report"], ["rerank", "--k", "2"]])
def test_missing_run_dir_is_one_clear_error(app, tmp_path, command) -> None:
    missing = tmp_path / "no-such-run"
    res = CliRunner().invoke(app, [command[0], str(missing), *command[1:]])
    assert res.exit_code == 2
    assert "not found" in _text(res) and "Traceback" not in res.output
    res = CliRunner().invoke(app, [command[0], str(tmp_path), *command[1:]])  # a plain folder
    assert res.exit_code == 2 and "search.journal" in _text(res)


def test_missing_teacher_is_one_clear_error(app, tmp_path) -> None:
    res = CliRunner().invoke(
        app,
        [
            "predictivity",
            "--pool",
            "random:layer:3",
            "--teacher",
            str(tmp_path / "nope.npz"),
            *TINY_DATA,
            "--out",
            str(tmp_path / "p"),
        ],
    )
    assert res.exit_code == 2
    assert "teacher file" in _text(res) and "not found" in _text(res)
    assert "Traceback" not in res.output and not (tmp_path / "p").exists()


def test_bad_pool_and_budgets_are_clear_errors(app, teacher_file, tmp_path) -> None:
    base = ["predictivity", "--teacher", str(teacher_file), *TINY_DATA, "--out", str(tmp_path)]
    for pool, needle in [
        ("random:layer:x", "random:SPACE:N"),
        ("nope.jsonl", "not found"),
        (str(tmp_path / "none") + ":3", "run folder"),
    ]:
        res = CliRunner().invoke(app, [*base, "--pool", pool])
        assert res.exit_code == 2 and needle in _text(res), (pool, res.output)
    res = CliRunner().invoke(
        app,
        [
            *base,
            "--pool",
            "random:layer:1",
            "--budgets",
            "5steps",
            "--mature",
            "3steps",
            "--device",
            "cpu",
            "--quiet",
        ],
    )
    assert res.exit_code == 2 and "must be longer" in _text(res)


def test_predictivity_with_a_ground_truth_table_and_proxies(app, tmp_path) -> None:
    """NAS-Bench-201 style: pool sampled from a generated table, mature accuracy read from
    it (no mature training), zero-cost proxies side by side with P; no teacher needed."""
    space = get_space("nb201")
    specs = [space.random_spec(s) for s in range(6)]
    csv = tmp_path / "nb201.csv"
    rows = ["Index,CIFAR10TestAccuracy200Epochs,ArchitectureString"]
    rows += [f"{i},{50 + 7 * i % 40}.5,{s.to_arch_string()}" for i, s in enumerate(specs)]
    csv.write_text("\n".join(rows) + "\n")
    out = tmp_path / "pred"
    res = CliRunner().invoke(
        app,
        [
            "predictivity",
            "--pool",
            "table:5",
            "--ground-truth",
            str(csv),
            "--proxies",
            "params,synflow",
            "--combine",
            "P+rank(synflow)",
            *TINY_DATA,
            "--budgets",
            "0ep,32ex",
            "--preset",
            "cpu_demo",
            "--width-mult",
            "0.25",
            "--device",
            "cpu",
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    pool = [json.loads(ln) for ln in (out / "pool.jsonl").read_text().splitlines()]
    assert len(pool) == 5 and all(r["mature_source"] == "table" for r in pool)
    truth = {s.spec_hash: (50 + 7 * i % 40 + 0.5) / 100 for i, s in enumerate(specs)}
    assert all(r["mature_accuracy"] == pytest.approx(truth[r["spec_hash"]]) for r in pool)
    assert all(max(p["examples"] for p in r["points"]) <= 64 for r in pool)  # no mature run
    table = json.loads((out / "predictivity.json").read_text())
    got = {(r["budget"], r["score"]): r for r in table["rows"]}
    rho = stats.spearmanr(
        [r["proxies"]["synflow"] for r in pool], [r["mature_accuracy"] for r in pool]
    ).statistic
    assert got[("init", "synflow")]["spearman"] == pytest.approx(rho)
    assert ("32ex", "P+rank(synflow)") in got and table["ground_truth"]["rows"] == 6
    assert "synflow" in res.output and "from the table" in res.output
    # a pool drawn from a table needs the table
    res = CliRunner().invoke(
        app, ["predictivity", "--pool", "table:5", *TINY_DATA, "--out", str(out)]
    )
    assert res.exit_code != 0 and "--ground-truth" in res.output


def test_predictivity_train_options_reach_the_trainer(app, tmp_path) -> None:
    """--train-option overrides a preset field; the trainer then refuses a mature budget past
    the shortened cosine schedule, before any architecture is trained."""
    base = [
        "predictivity",
        "--pool",
        "random:layer:2",
        *TINY_DATA,
        "--budgets",
        "1ep",
        "--preset",
        "cpu_demo",
        "--width-mult",
        "0.25",
        "--device",
        "cpu",
        "--quiet",
        "--out",
        str(tmp_path / "p"),
    ]
    res = CliRunner().invoke(app, [*base, "--train-option", "epochs=1", "--mature", "2ep"])
    assert res.exit_code != 0
    assert "longer than the 1-epoch cosine schedule" in " ".join(res.output.split())
    res = CliRunner().invoke(app, [*base, "--train-option", "lrr=0.1"])
    assert res.exit_code != 0 and "lrr" in res.output
    res = CliRunner().invoke(app, [*base, "--train-option", "epochs"])
    assert res.exit_code != 0 and "KEY=VALUE" in res.output
