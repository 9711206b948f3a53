"""Candidate evaluation end to end on generated data: specs, plain modules, failures."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as st
import torch
from scipy.spatial.distance import pdist

from tgsage.activations import collect_activations
from tgsage.data.probe import ProbeSet
from tgsage.errors import InputError, ProbeMismatchError
from tgsage.evaluate import evaluate_candidate
from tgsage.spaces import get_space
from tgsage.teacher import teacher_from_network


@pytest.fixture(scope="module")
def teacher(tiny_teacher_net, tiny_probe):
    return teacher_from_network(
        tiny_teacher_net, tiny_probe, grouping="object", subsamples=None, device="cpu"
    )


def test_spec_candidate_gets_p_tg_score_and_cost(tiny_objects, teacher) -> None:
    spec = get_space("layer", max_layers=4).random_spec(0)
    res = evaluate_candidate(
        spec,
        tiny_objects,
        teacher,
        budget="1ep",
        config="cpu_demo",
        width_mult=0.25,
        device="cpu",
        alpha=2.0,
    )
    assert res.ok, res.message
    assert res.spec_hash == spec.spec_hash
    assert 0.0 <= res.accuracy <= 1.0
    assert res.examples == len(tiny_objects.train)  # one epoch of SGD examples
    assert res.score == pytest.approx(res.accuracy + 2.0 * res.tg)
    assert res.tg == pytest.approx(np.mean(list(res.per_layer.values())))
    sim = np.array(res.similarity)
    assert sim.shape == (3, len(res.candidate_layers))
    np.testing.assert_allclose(sim.max(axis=1), list(res.per_layer.values()))
    assert res.train_seconds > 0 and res.score_seconds > 0
    # sum of training losses (SoTL): one epoch, every step's loss near or below log(8) at init
    assert res.loss_steps == res.steps and res.epoch_loss_steps == [res.steps]
    assert res.epoch_loss_sums == [pytest.approx(res.loss_sum)]
    assert 0 < res.loss_sum / res.steps < 1.5 * np.log(8)


def test_plain_module_candidate_scored_against_scipy(tiny_objects, teacher, tiny_probe) -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(4),
        torch.nn.Flatten(),
        torch.nn.Linear(128, 8),
    )
    res = evaluate_candidate(
        net,
        tiny_objects,
        teacher,
        budget="20steps",
        config="cpu_demo",
        layers=["1", "3"],
        device="cpu",
        score="tg",
    )
    assert res.ok, res.message
    assert res.candidate_layers == ["1", "3"]
    # oracle: scipy on the object-averaged activations of the trained module
    from tgsage.features import HookedFeatures

    feats = collect_activations(
        HookedFeatures(net, ["1", "3"]),
        tiny_probe.images,
        groups=tiny_probe.labelings["object"],
        device="cpu",
    )
    for i, t_name in enumerate(teacher.layers):
        best = max(
            st.pearsonr(teacher.rdms.numpy()[i], pdist(f.double().numpy(), "correlation"))[0]
            for f in feats.values()
        )
        assert res.per_layer[t_name] == pytest.approx(best, abs=1e-5)
    assert res.score == pytest.approx(res.tg)


def test_accuracy_only_without_teacher(tiny_objects) -> None:
    spec = get_space("layer", max_layers=3).random_spec(1)
    res = evaluate_candidate(
        spec,
        tiny_objects,
        None,
        budget="10steps",
        config="cpu_demo",
        score="p",
        width_mult=0.25,
        device="cpu",
    )
    assert res.ok and res.tg is None and res.score == res.accuracy
    with pytest.raises(InputError, match="needs a teacher"):
        evaluate_candidate(spec, tiny_objects, None, score="p+tg")


def test_diverging_candidate_is_recorded_as_failed(tiny_objects, teacher) -> None:
    spec = get_space("layer", max_layers=3).random_spec(2)
    res = evaluate_candidate(
        spec,
        tiny_objects,
        teacher,
        budget="1ep",
        config="cpu_demo",
        lr=1e12,
        width_mult=0.25,
        device="cpu",
    )
    assert not res.ok
    assert res.failure_reason == "diverged"
    assert res.score is None and res.examples > 0  # the spent cost is still recorded


def test_invalid_spec_is_a_failed_result(tiny_objects, teacher) -> None:
    res = evaluate_candidate({"space": "layer", "layers": "nonsense"}, tiny_objects, teacher)
    assert not res.ok and res.failure_reason == "invalid_architecture"
    assert res.examples == 0


def test_candidate_on_other_probe_images_is_refused(tiny_objects, teacher, tiny_probe) -> None:
    other = ProbeSet(
        images=tiny_probe.images[:-1].contiguous(),
        labelings={k: v[:-1] for k, v in tiny_probe.labelings.items()},
    )
    with pytest.raises(ProbeMismatchError, match=teacher.probe_fingerprint):
        evaluate_candidate(get_space("layer").random_spec(0), tiny_objects, teacher, probe=other)


# ---------------------------------------------------------------------- the score vocabulary
def _cka(x: np.ndarray, y: np.ndarray) -> float:
    xc, yc = x - x.mean(axis=0), y - y.mean(axis=0)
    num = np.linalg.norm(xc.T @ yc) ** 2
    return float(num / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc)))


def test_any_score_expression_with_cka_guidance_and_losses(
    tiny_objects, teacher, tiny_probe, tiny_teacher_net
) -> None:
    spec = get_space("layer", max_layers=3).random_spec(1)
    res = evaluate_candidate(
        spec,
        tiny_objects,
        teacher,
        budget="4steps",  # one epoch of the 256 images at batch 64
        config="cpu_demo",
        width_mult=0.25,
        device="cpu",
        score="P + 0.5*TG-cka + 0.01*SoTL",
        comparisons=["relation"],
    )
    assert res.ok, res.message
    s = res.scores
    assert res.score == pytest.approx(s["P"] + 0.5 * s["TG-cka"] + 0.01 * s["SoTL"])
    assert s["SoTL"] == pytest.approx(-res.loss_sum) and s["SoTL-E"] == pytest.approx(s["SoTL"])
    assert s["TG"] == pytest.approx(res.tg) and s["TG-deep"] == res.per_layer["stack3"]
    assert {"TG-rel", "S-rel_stack1", "TG-cka-deep"} <= set(s)
    # CKA oracle: numpy on the object-averaged activations of both networks (a module
    # candidate, untrained, so its activations can be read here too)
    groups = tiny_probe.labelings["object"]
    from tgsage.evaluate import build_candidate
    from tgsage.features import as_feature_net

    cand = as_feature_net(build_candidate(spec, tiny_objects, 0.25, seed=0)[0])
    res2 = evaluate_candidate(
        cand, tiny_objects, teacher, budget="0ex", config="cpu_demo", device="cpu", score="TG-cka"
    )
    t_feats = collect_activations(tiny_teacher_net, tiny_probe.images, groups=groups, device="cpu")
    c_feats = collect_activations(cand, tiny_probe.images, groups=groups, device="cpu")
    for layer, tf in t_feats.items():
        want = max(_cka(tf.double().numpy(), cf.double().numpy()) for cf in c_feats.values())
        assert res2.scores[f"S-cka_{layer}"] == pytest.approx(want, abs=1e-6)
    assert res2.examples == 0 and res2.score == pytest.approx(res2.scores["TG-cka"])


def test_p_slope_equals_two_runs_on_one_trajectory(tiny_objects) -> None:
    spec = get_space("layer", max_layers=3).random_spec(2)
    kw = dict(config="cpu_demo", width_mult=0.25, device="cpu", seed=3)
    full = evaluate_candidate(spec, tiny_objects, budget="8steps", score="P-slope", **kw)
    half = evaluate_candidate(spec, tiny_objects, budget="4steps", score="P", **kw)
    assert full.ok and half.ok
    want = (full.accuracy - half.accuracy) / (full.examples - half.examples) * 1e4
    assert full.score == pytest.approx(want)


def test_proxy_scores_rank_against_a_reference_without_training(tiny_objects) -> None:
    from tgsage.scores import Population

    spec = get_space("layer", max_layers=3).random_spec(4)
    ref = Population.from_rows([{"params": v} for v in (1.0, 10.0, 1e9)])
    res = evaluate_candidate(
        spec, tiny_objects, score="rank(params)", reference=ref, width_mult=0.25, device="cpu"
    )
    assert res.ok and res.examples == 0 and res.accuracy is None
    n = res.scores["params"]
    assert 10 < n < 1e9
    assert res.score == pytest.approx((2 + 2 + 1) / (2 * 4))  # 2 below, none equal, itself
    with pytest.raises(InputError, match="reference"):
        evaluate_candidate(spec, tiny_objects, score="rank(params)", device="cpu")
    with pytest.raises(InputError, match="needs a teacher"):
        evaluate_candidate(spec, tiny_objects, score="P + TG-rel", device="cpu")


@pytest.mark.filterwarnings("ignore:RDMs of .* are constant")
def test_a_cell_without_a_path_is_marked(tiny_objects, teacher) -> None:
    """A NAS-Bench-201 cell of ``none`` edges scored TG = 0 as a plain "ok"."""
    from tgsage.spaces import NB201Spec

    kw = dict(budget="32ex", config="cpu_demo", device="cpu", width_mult=0.25)
    dead = evaluate_candidate(NB201Spec(("none",) * 6), tiny_objects, teacher, **kw)
    assert dead.ok and dead.no_path and dead.tg == 0.0
    live = evaluate_candidate(
        NB201Spec(("nor_conv_3x3",) + ("none",) * 2 + ("skip_connect",) * 3),
        tiny_objects,
        teacher,
        **kw,
    )
    assert live.ok and not live.no_path
