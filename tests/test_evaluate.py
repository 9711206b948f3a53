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
