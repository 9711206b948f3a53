"""run_predictivity end to end on a tiny generated dataset, including crash safety."""

from __future__ import annotations

import json

import pytest
import torch

import tgsage.experiments.predictivity as predictivity_mod
from tgsage.experiments import (
    pool_from_records,
    pool_from_specs,
    predictivity_table,
    random_pool,
    read_pool_records,
    run_predictivity,
)
from tgsage.spaces import ConvLayer, LayerSpec
from tgsage.teacher import teacher_from_network

BUDGETS = ["10steps", "5steps"]  # given out of order on purpose: measured 5 then 10
KW = dict(
    budgets=BUDGETS, mature="20steps", config="cpu_demo", width_mult=0.25, device="cpu", seed=0
)


@pytest.fixture(scope="module")
def teacher(tiny_teacher_net, tiny_probe):
    return teacher_from_network(tiny_teacher_net, tiny_probe, subsamples=None, device="cpu")


@pytest.fixture(scope="module")
def pool():
    return random_pool("layer", 3, seed=0, max_layers=3)


def test_random_pool_is_distinct_and_seeded(pool):
    assert len({s.spec_hash for s in pool}) == 3
    assert [s.spec_hash for s in random_pool("layer", 3, seed=0, max_layers=3)] == [
        s.spec_hash for s in pool
    ]
    assert pool_from_specs([pool[0].to_json(), pool[0], json.loads(pool[1].to_json())]) == [
        pool[0],
        pool[1],
    ]
    with pytest.raises(ValueError, match="distinct"):
        random_pool("layer", 400, seed=0, max_layers=1)  # 384 exist


def test_pool_from_records_takes_the_top_by_score(pool):
    rows = [
        {"number": i, "score": s, "spec": spec.to_json()}
        for i, (s, spec) in enumerate(zip([0.1, 0.9, 0.5], pool, strict=True))
    ]
    rows.append({"number": 3, "status": "failed", "spec": pool[0].to_json()})
    assert pool_from_records(rows, top=2) == [pool[1], pool[2]]
    assert pool_from_records(rows) == list(pool)


def test_run_predictivity_end_to_end_and_resume(tiny_objects, teacher, pool, tmp_path, monkeypatch):
    torch.set_num_threads(1)
    store = tmp_path / "pool.jsonl"
    calls: list[str] = []
    real = predictivity_mod.measure_architecture

    def crashing(spec, *args, **kwargs):
        calls.append(spec.spec_hash)
        if len(calls) == 3:
            raise KeyboardInterrupt("simulated crash on the third architecture")
        return real(spec, *args, **kwargs)

    monkeypatch.setattr(predictivity_mod, "measure_architecture", crashing)
    with pytest.raises(KeyboardInterrupt):
        run_predictivity(pool, tiny_objects, teacher, store=store, **KW)
    # the two finished architectures are on disk; add a torn line as a crash mid-write would
    assert len(read_pool_records(store)) == 2
    with open(store, "a") as fh:
        fh.write('{"spec_hash": "torn')

    calls.clear()
    with pytest.warns(UserWarning, match="unreadable"):
        recs = run_predictivity(pool, tiny_objects, teacher, store=store, **KW)
    assert calls == [pool[2].spec_hash]  # only the unfinished one was trained
    assert [r.spec_hash for r in recs] == [s.spec_hash for s in pool]
    with pytest.warns(UserWarning):
        stored = read_pool_records(store)
    assert {r.spec_hash for r in stored} == {s.spec_hash for s in pool}

    for rec in recs:
        assert rec.ok, rec.message
        assert rec.budgets == ["5steps", "10steps"]
        assert [p.steps for p in rec.points] == [5, 10]
        assert [p.examples for p in rec.points] == [5 * 64, 10 * 64]  # cpu_demo: batch 64
        assert rec.mature_steps == 20 and rec.mature_examples == 20 * 64
        assert 0.0 <= rec.mature_accuracy <= 1.0
        for p in rec.points:
            assert 0.0 <= p.accuracy <= 1.0
            assert set(p.per_layer) == set(teacher.layers)
            assert p.tg == pytest.approx(sum(p.per_layer.values()) / len(p.per_layer))
            assert rec.value(p.budget, "P+TG", 2.0) == pytest.approx(p.accuracy + 2 * p.tg)

    # the stored trajectory is the one a fresh single run gives (same seed, one trainer)
    fresh = run_predictivity([pool[0]], tiny_objects, teacher, **KW)[0]
    assert fresh.mature_accuracy == recs[0].mature_accuracy
    assert [p.accuracy for p in fresh.points] == [p.accuracy for p in recs[0].points]

    rows = predictivity_table(recs, n_boot=20, k=2)
    assert {r.n for r in rows} == {3}
    assert {r.score for r in rows} >= {"P", "TG", "P+TG"} | {f"S_{n}" for n in teacher.layers}


def test_failures_are_recorded_and_excluded(tiny_objects, tmp_path):
    # a plain linear conv with an absurd learning rate diverges in the first steps
    spec = LayerSpec((ConvLayer(filters=32, norm="none", activation="identity"),))
    store = tmp_path / "p.jsonl"
    recs = run_predictivity([spec], tiny_objects, None, store=store, lr=1e12, **KW)
    (rec,) = recs
    assert rec.status == "failed" and rec.failure_reason == "diverged"
    assert read_pool_records(store)[0].failure_reason == "diverged"
    assert predictivity_table(recs, n_boot=5) == []  # no ok records: no budgets, no rows
    # a re-run skips it unless asked to retry
    again = run_predictivity([spec], tiny_objects, None, store=store, lr=1e12, **KW)
    assert again[0].seconds == rec.seconds
    assert len(store.read_text().splitlines()) == 1


def test_mature_must_be_longer(tiny_objects, pool):
    with pytest.raises(ValueError, match="mature budget"):
        run_predictivity(
            pool[:1],
            tiny_objects,
            None,
            budgets=["20steps"],
            mature="10steps",
            config="cpu_demo",
            width_mult=0.25,
            device="cpu",
        )


class _Table:
    """A ground-truth table stand-in: ``lookup(spec)`` -> accuracy (None = not in it)."""

    source = "fake.csv"

    def __init__(self, acc: dict[str, float]) -> None:
        self.acc = acc

    def lookup(self, spec):
        return self.acc.get(spec.spec_hash)


def test_proxies_at_init_and_table_truth(tiny_objects, teacher, pool, tmp_path):
    """Proxies measured before training; mature accuracy read from the table, not trained;
    a zero budget gives P of the untrained network; architectures not in the table fail."""
    from tgsage.spaces import build_model, count_params

    torch.set_num_threads(1)
    truth = _Table({pool[0].spec_hash: 0.9, pool[1].spec_hash: 0.4})
    recs = run_predictivity(
        pool,
        tiny_objects,
        teacher,
        budgets=["0ep", "5steps"],
        config="cpu_demo",
        width_mult=0.25,
        device="cpu",
        seed=0,
        proxies=["params", "synflow"],
        ground_truth=truth,
        store=tmp_path / "pool.jsonl",
    )
    ok = [r for r in recs if r.ok]
    assert [r.mature_accuracy for r in ok] == [0.9, 0.4]
    assert all(r.mature_source == "table" and r.mature_steps is None for r in ok)
    assert recs[2].status == "failed" and recs[2].failure_reason == "not_in_table"
    for spec, r in zip(pool, ok, strict=False):
        model = build_model(
            spec,
            num_classes=tiny_objects.num_classes,
            input_shape=tiny_objects.train.image_shape,
            width_mult=0.25,
        )
        assert r.proxies["params"] == count_params(model)
        assert r.proxies["synflow"] > 0
        assert [p.steps for p in r.points] == [0, 5]  # trained no further than 5 steps
        assert r.points[0].accuracy is not None  # P at initialisation
    rows = predictivity_table(recs, n_boot=10)
    assert ("init", "params") in {(r.budget, r.score) for r in rows}
    # stored with the proxies: a re-run measures nothing again
    again = read_pool_records(tmp_path / "pool.jsonl")
    assert {r.spec_hash: r.proxies for r in again if r.ok} == {r.spec_hash: r.proxies for r in ok}


def test_several_teachers_comparisons_losses_and_checkpoints(
    tiny_objects, tiny_teacher_net, tiny_probe, tmp_path
) -> None:
    """Two teachers, three comparisons, one training run: every value read back by name, the
    default teacher survives the JSON round trip, and a saved checkpoint re-scores exactly."""
    from tgsage.evaluate import build_candidate, measure_guidance
    from tgsage.features import as_feature_net
    from tgsage.models import get_model

    torch.set_num_threads(1)
    torch.manual_seed(1)
    other = get_model("resnet_cifar", n=1, num_classes=8, width_mult=0.25)  # untrained
    teachers = {
        "trained": teacher_from_network(tiny_teacher_net, tiny_probe, device="cpu"),
        "untrained": teacher_from_network(other, tiny_probe, device="cpu"),
    }
    store = tmp_path / "pool.jsonl"
    spec = random_pool("layer", 1, seed=3, max_layers=3)[0]
    kw = dict(KW, budgets=["0ex", "4steps"], mature="8steps")
    run_predictivity(
        [spec],
        tiny_objects,
        teachers,
        store=store,
        comparisons=["pearson", "cka", "relation"],
        checkpoint_dir=tmp_path / "ckpt",
        **kw,
    )
    (rec,) = read_pool_records(store)
    assert rec.ok and rec.teachers == ["trained", "untrained"]
    p = rec.point("4steps")
    assert set(p.guidance) == {"trained", "untrained"}
    assert set(p.guidance["untrained"]) == {"pearson", "cka", "relation"}
    s = rec.scores_at("4steps")
    assert s["TG"] == pytest.approx(p.tg)  # the default teacher is the first given
    u = rec.scores_at("4steps", teacher="untrained")
    assert u["TG-cka"] == pytest.approx(
        sum(p.guidance["untrained"]["cka"].values()) / len(p.guidance["untrained"]["cka"])
    )
    assert u["TG-rel-deep"] == p.guidance["untrained"]["relation"]["stack3"]
    # SoTL: minus the loss sum of the 4 steps, which is also one epoch here (256 / 64)
    assert p.loss_steps == 4 and s["SoTL"] == pytest.approx(-p.loss_sum)
    assert s["SoTL-E"] == pytest.approx(s["SoTL"])
    assert s["P-slope"] == pytest.approx(
        (p.accuracy - rec.point("0ex").accuracy) / (p.examples / 1e4)
    )
    with pytest.raises(ValueError, match="not measured"):
        rec.scores_at("4steps", teacher="nobody")
    # re-score the saved weights: the same guidance
    net = as_feature_net(build_candidate(spec, tiny_objects, 0.25, seed=0)[0])
    net.load_state_dict(torch.load(tmp_path / "ckpt" / f"{spec.spec_hash}_s0_4steps.pt"))
    g = measure_guidance(net, tiny_probe, teachers, ["cka"], device="cpu")
    assert g["untrained"]["cka"].tg == pytest.approx(u["TG-cka"], abs=1e-6)
