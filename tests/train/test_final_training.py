"""Final training: cutout, auxiliary loss, scheduled drop-path, held-out split, checkpoints.

Oracles: a brute-force cutout, the loss written out by hand from the same batch, the drop-path
schedule ``rate * e / E`` observed inside real forward passes, and an uninterrupted run for a
run killed (SIGKILL, a real process) and resumed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file
from torch import nn

from tgsage.data import make_synthetic_objects
from tgsage.data.base import DataSplits
from tgsage.data.pipeline import AUGMENTATIONS, BatchIterator, augment_batch, cutout
from tgsage.errors import ConfigError, SpecError
from tgsage.export import load_model
from tgsage.spaces import build_model, get_space
from tgsage.train import Trainer, evaluate_accuracy
from tgsage.train.final import (
    FINAL_PRESETS,
    final_spec,
    get_final_preset,
    resolve_spec,
    train_final,
)
from tgsage.train.loop import split_logits


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def data() -> DataSplits:
    return make_synthetic_objects(96, 32, 32, resolution=16, seed=0)


SMALL = {"num_cells": 1, "filters": 8, "width_mult": 0.5, "train_options": {"batch_size": 32}}


# ----------------------------------------------------------------------------- cutout
@settings(max_examples=40, deadline=None)
@given(
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    size=st.integers(1, 9),
    data=st.data(),
)
def test_cutout_matches_brute_force(h: int, w: int, size: int, data) -> None:
    n = 3
    cy = data.draw(st.lists(st.integers(0, h - 1), min_size=n, max_size=n))
    cx = data.draw(st.lists(st.integers(0, w - 1), min_size=n, max_size=n))
    x = torch.rand(n, 2, h, w) + 0.5
    want = x.clone()
    for i in range(n):
        for r in range(h):
            for c in range(w):
                if cy[i] - size // 2 <= r < cy[i] - size // 2 + size and (
                    cx[i] - size // 2 <= c < cx[i] - size // 2 + size
                ):
                    want[i, :, r, c] = 0.0
    got = cutout(x.clone(), size, torch.tensor(list(zip(cy, cx, strict=True))))
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_cutout_augmentation_adds_a_square_to_the_cifar_stream() -> None:
    """Same crop and flip draws as "cifar" (cutout's come after them), then one zeroed square
    of at most 16x16 per image."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(1, 255, (6, 3, 32, 32), dtype=torch.uint8, generator=gen)
    plain = augment_batch(x, AUGMENTATIONS["cifar"], torch.Generator().manual_seed(5))
    cut = augment_batch(x, AUGMENTATIONS["cifar_cutout"], torch.Generator().manual_seed(5))
    zero = (cut == 0).all(1)
    assert torch.equal(cut[~zero[:, None].expand_as(cut)], plain[~zero[:, None].expand_as(cut)])
    per_image = zero.flatten(1).sum(1)
    assert (per_image > 0).all() and (per_image <= 16 * 16).all()
    assert AUGMENTATIONS["cifar"].cutout == 0


# ----------------------------------------------------------------------------- auxiliary loss
class _TwoHeads(nn.Module):
    """A linear model with an auxiliary head; like CellNet, the tuple only in training."""

    def __init__(self) -> None:
        super().__init__()
        self.main = nn.Linear(3 * 16 * 16, 8)
        self.aux = nn.Linear(3 * 16 * 16, 8)

    def forward(self, x: torch.Tensor):
        f = x.flatten(1)
        return (self.main(f), self.aux(f)) if self.training else self.main(f)


def _first_batch(data: DataSplits, seed: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    it = BatchIterator(data.train, batch, device="cpu", augment="cifar", shuffle=True, seed=seed)
    return next(iter(it))


@pytest.mark.parametrize("weight", [0.0, 0.4, 1.5])
def test_auxiliary_loss_is_weighted_into_the_training_loss(data: DataSplits, weight) -> None:
    torch.manual_seed(0)
    model = _TwoHeads()
    init = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = Trainer(
        model,
        data,
        "cpu_demo",
        device="cpu",
        seed=3,
        eval_at_end=False,
        aux_weight=weight,
        weight_decay=0.0,
        amp="off",  # the float32 reference below
    )
    trainer.train_until("1steps")
    x, y = _first_batch(data, 3, 64)
    ref = _TwoHeads()
    ref.load_state_dict(init)
    with torch.no_grad():
        logits, aux = ref(x)
    want = F.cross_entropy(logits, y) + weight * F.cross_entropy(aux, y)
    assert trainer.losses[0] == pytest.approx(float(want), rel=1e-5)
    # the auxiliary head learns only through its loss term (no weight decay here)
    moved = not torch.equal(model.aux.weight, init["aux.weight"])
    assert moved == (weight > 0)
    # evaluation sees the main logits only
    assert 0.0 <= trainer.evaluate(data.val) <= 1.0


def test_cell_net_auxiliary_head_trains_only_in_training_mode(data: DataSplits) -> None:
    spec = get_space("cell", num_cells=1).random_spec(2)
    torch.manual_seed(0)
    model = build_model(spec, 8, (3, 16, 16), width_mult=0.25, auxiliary=True)
    logits, aux = split_logits(model.train()(torch.zeros(2, 3, 16, 16)))
    assert len(aux) == 1 and aux[0].shape == logits.shape
    head = {k: v.clone() for k, v in model.auxiliary_head.state_dict().items()}
    acc = evaluate_accuracy(model, data.val, "cpu")
    assert 0.0 <= acc <= 1.0
    for k, v in model.auxiliary_head.state_dict().items():  # eval pass: head untouched
        assert torch.equal(v, head[k])
    Trainer(model, data, "cpu_demo", device="cpu", eval_at_end=False).train_until("1steps")
    assert not torch.equal(model.auxiliary_head.classifier.weight, head["classifier.weight"])


# ----------------------------------------------------------------------------- presets
def test_final_presets_follow_the_supplementary() -> None:
    cifar = get_final_preset("cifar_final").config()
    assert (cifar.optimizer, cifar.lr, cifar.schedule, cifar.epochs) == (
        "sgd",
        0.025,
        "cosine",
        600,
    )
    assert (cifar.nesterov, cifar.weight_decay, cifar.grad_clip) == (True, 5e-4, 5.0)
    assert cifar.augment == "cifar_cutout" and cifar.aux_weight == 0.4
    mobile = get_final_preset("imagenet_mobile")
    cfg = mobile.config()
    assert (cfg.optimizer, cfg.lr, cfg.step_epochs, cfg.epochs, cfg.grad_clip) == (
        "rmsprop",
        0.1,
        15,
        40,
        10.0,
    )
    assert mobile.drop_path == 0.0  # "No dropout or drop-path was used"
    assert FINAL_PRESETS["imagenet64"].network["stem"] == "imagenet64"
    with pytest.raises(ConfigError, match="final preset"):
        get_final_preset("cifar")


def test_final_spec_sizes() -> None:
    found = get_space("cell").random_spec(0)  # search size N=2, F=32
    cifar = final_spec(found, get_final_preset("cifar_final"))
    assert (cifar.num_cells, cifar.filters, cifar.stem) == (6, 32, "cifar")
    assert cifar.normal == found.normal
    mobile = final_spec(found, get_final_preset("imagenet_mobile"), filters=48)
    assert (mobile.num_cells, mobile.filters, mobile.stem, mobile.stem_multiplier) == (
        4,
        48,
        "imagenet",
        1,
    )
    pnas, _ = resolve_spec("preset:pnasnet_5", "imagenet_mobile")
    kept = final_spec(pnas, get_final_preset("imagenet_mobile"), published=True)
    assert (kept.num_cells, kept.filters) == (3, 54)
    layer = get_space("layer").random_spec(0)
    assert final_spec(layer, get_final_preset("cifar_final")) is layer
    with pytest.raises(ConfigError, match="cell-space"):
        final_spec(layer, get_final_preset("cifar_final"), num_cells=3)


# ----------------------------------------------------------------------------- train_final
def test_drop_path_is_scheduled_during_training_and_off_in_eval(data, tmp_path) -> None:
    seen: list[tuple[bool, float]] = []
    original = build_model

    def spy(*args, **kwargs):
        model = original(*args, **kwargs)
        model.register_forward_pre_hook(
            lambda m, _: seen.append((m.training, round(m.drop_path_rate, 9)))
        )
        return model

    import tgsage.spaces as spaces

    spaces.build_model, saved = spy, spaces.build_model
    try:
        res = train_final(
            "random:cell:1", data, "cifar_final", tmp_path, epochs=3, drop_path=0.3, **SMALL
        )
    finally:
        spaces.build_model = saved
    steps_per_epoch = 4  # 128 train+val images, batch 32
    train_rates = [r for training, r in seen if training]
    want = [round(0.3 * e / 3, 9) for e in range(3) for _ in range(steps_per_epoch)]
    assert train_rates == want
    assert [h.drop_path for h in res.history] == pytest.approx([0.0, 0.1, 0.2])
    assert all(r == 0.0 for training, r in seen if not training)  # reset before evaluation


def test_train_final_trains_on_train_plus_val_and_reports_test(data, tmp_path) -> None:
    res = train_final("random:cell:4", data, "cifar_final", tmp_path, epochs=2, **SMALL)
    assert res.ok and res.held_out == "test"
    assert res.examples == 2 * (len(data.train) + len(data.val))
    model = load_model(tmp_path)
    assert evaluate_accuracy(model, data.test, "cpu") == res.accuracy
    assert model.card.metrics["test_accuracy"] == res.accuracy
    summary = json.loads((tmp_path / "final.json").read_text())
    assert summary["accuracy"] == res.accuracy and len(summary["history"]) == 2
    # a finished run started again trains nothing and gives the same network
    again = train_final("random:cell:4", data, "cifar_final", tmp_path, epochs=2, **SMALL)
    assert again.resumed_from == 2 and again.accuracy == res.accuracy
    assert again.history == res.history


def test_without_test_split_the_validation_split_is_held_out(tmp_path) -> None:
    small = make_synthetic_objects(64, 32, 0, resolution=16, seed=1)
    res = train_final(
        "random:layer:2", small, "cifar_final", None, epochs=1, train_options={"batch_size": 32}
    )
    assert res.held_out == "val" and res.examples == 64
    assert any("auxiliary" in n for n in res.notes) and any("drop-path" in n for n in res.notes)
    with pytest.raises(ConfigError, match="test split"):
        train_final("random:layer:2", small, "cifar_final", None, epochs=1, train_on="train+val")


def test_checkpoint_of_another_run_is_refused(data, tmp_path) -> None:
    train_final("random:cell:4", data, "cifar_final", tmp_path, epochs=1, **SMALL)
    with pytest.raises(ConfigError, match="another run.*spec"):
        train_final("random:cell:5", data, "cifar_final", tmp_path, epochs=1, **SMALL)
    with pytest.raises(ConfigError, match="seed"):
        train_final("random:cell:4", data, "cifar_final", tmp_path, epochs=1, seed=1, **SMALL)
    other = make_synthetic_objects(96, 32, 32, resolution=16, seed=5)
    with pytest.raises(ConfigError, match="data"):
        train_final("random:cell:4", other, "cifar_final", tmp_path, epochs=1, **SMALL)


_RUN = """
import sys, time, torch
torch.set_num_threads(1)
from tgsage.data import make_synthetic_objects
from tgsage.train.final import train_final
out = sys.argv[1]
data = make_synthetic_objects(96, 32, 32, resolution=16, seed=0)
def stall(p):
    if p.steps == 9:  # mid third epoch (4 steps per epoch), after two checkpoints
        open(out + "/stalled", "w").close()
        time.sleep(120)
train_final("random:cell:6", data, "cifar_final", out, epochs=4, progress=stall, check_every=1,
            device="cpu", num_cells=1, filters=8, width_mult=0.5, train_options={"batch_size": 32})
"""


@pytest.mark.slow
def test_killed_run_resumes_to_the_weights_of_an_uninterrupted_run(data, tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    killed.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", _RUN, str(killed)], env=env)
    deadline = time.monotonic() + 300
    while not (killed / "stalled").exists():
        assert proc.poll() is None, "the training process ended before it was killed"
        assert time.monotonic() < deadline, "timed out waiting for the third epoch"
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    state = torch.load(killed / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert state["epoch"] == 2 and not (killed / "model.safetensors").exists()
    kw = {"epochs": 4, "device": "cpu", **SMALL}
    resumed = train_final("random:cell:6", data, "cifar_final", killed, **kw)
    plain = train_final("random:cell:6", data, "cifar_final", whole, **kw)
    assert resumed.resumed_from == 2 and plain.resumed_from is None
    a = load_file(str(killed / "model.safetensors"))
    b = load_file(str(whole / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert [(h.loss, h.lr) for h in resumed.history] == [(h.loss, h.lr) for h in plain.history]
    assert resumed.accuracy == plain.accuracy


# ----------------------------------------------------------------------------- run folders
def test_best_candidate_of_a_search_and_of_its_rerank(tmp_path) -> None:
    from tgsage.experiments import (
        CandidateRecord,
        RerankResult,
        best_candidate,
        rerank_payload,
    )
    from tgsage.experiments.jsonio import write_json
    from tgsage.search import run_search

    cfg = {
        "name": "final-best",
        "objective": "simulate",
        "space": "cell",
        "space_options": {"num_cells": 1},
        "strategy": "random",
        "n_candidates": 4,
        "workers": 1,
        "run_dir": str(tmp_path / "run"),
    }
    run_search(cfg)
    best = best_candidate(tmp_path / "run")
    assert best.source == "search"
    from tgsage.search.config import load_config
    from tgsage.search.storage import load_study

    c = load_config(cfg)
    trials = load_study(c.storage_url, c.name)[0].get_trials()
    top = max((t for t in trials if t.value is not None), key=lambda t: (t.value, -t.number))
    assert best.number == top.number and best.spec.to_json() == top.user_attrs["spec"]
    # a rerank.json in the format `tgsage rerank` writes: its choice wins
    other = get_space("cell", num_cells=1).random_spec(99)
    chosen = CandidateRecord(number=7, spec=other.to_json(), score=0.5)
    payload = rerank_payload(
        RerankResult(best=chosen, best_accuracy=0.6), budget="1ep", k=1, study="x", settings={}
    )
    write_json(tmp_path / "run" / "rerank.json", payload)
    best = best_candidate(tmp_path / "run")
    assert (best.source, best.number, best.score) == ("rerank", 7, 0.5)
    spec, origin = resolve_spec(best)
    assert spec == other and origin.startswith("rerank of")
    with pytest.raises(SpecError, match="best_candidate"):
        resolve_spec(tmp_path / "run")
