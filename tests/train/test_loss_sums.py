"""Sum of training losses (SoTL / SoTL-E, Ru et al. 2021) against hand-computed values."""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch import nn

from tgsage.data.base import DataSplits, ImageSet
from tgsage.data.pipeline import standardize
from tgsage.train import Trainer, train_model

torch.set_num_threads(1)


def _data(n: int, seed: int = 0) -> ImageSet:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 8, 8), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 3, (n,), generator=g)
    return ImageSet(images=images, labels=labels, num_classes=3, name="random")


class _FixedLogits(nn.Module):
    """Logits are a frozen linear map of the image: every step's loss is known in advance.

    The trainable parameter gets a zero gradient (and no weight decay moves it from 0), so
    training never changes the outputs."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.register_buffer("weight", torch.randn(3 * 8 * 8, 3, generator=g) * scale / 8)
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.weight + 0.0 * self.dummy


CFG = {
    "config": "cpu_demo",
    "device": "cpu",
    "augment": "none",
    "amp": "off",
    "eval_at_end": False,
    "check_every": 4,
}


def test_epoch_sums_equal_brute_force_per_example_losses():
    """n divisible by b: whatever the order, an epoch's sum of batch means is the sum of all
    per-example losses / b."""
    data = _data(96)
    model = _FixedLogits()
    with torch.no_grad():
        logits = standardize(data.images).flatten(1).double() @ model.weight.double()
        per_example = torch.nn.functional.cross_entropy(logits, data.labels, reduction="none")
    expected_epoch = float(per_example.sum()) / 16
    res = train_model(model, data, "2ep", batch_size=16, seed=3, **CFG)
    assert res.ok and res.steps == 12 and res.loss_steps == 12
    assert res.epoch_loss_steps == [6, 6]
    assert res.epoch_loss_sums == pytest.approx([expected_epoch] * 2, rel=1e-6)
    assert res.loss_sum == pytest.approx(2 * expected_epoch, rel=1e-6)
    assert res.average_loss == pytest.approx(res.loss_sum / 12, rel=1e-12)


@pytest.mark.parametrize(
    ("n", "budget", "extra", "steps", "per_epoch"),
    [
        (90, "1.5ep", {}, 9, [6, 3]),  # ceil(90 / 16) = 6 steps per epoch; stops mid-epoch
        (90, "2ep", {"drop_last": True}, 10, [5, 5]),  # 90 // 16 = 5 steps per epoch
        (90, "7steps", {"label_smoothing": 0.2}, 7, [6, 1]),
    ],
)
def test_partial_epochs_and_step_counts(n, budget, extra, steps, per_epoch):
    """Zero logits: each step's loss is exactly log(3) (also with label smoothing)."""
    res = train_model(_FixedLogits(scale=0.0), _data(n), budget, batch_size=16, **CFG, **extra)
    assert res.ok and res.loss_steps == res.steps == steps
    assert res.epoch_loss_steps == per_epoch
    assert res.epoch_loss_sums == pytest.approx([k * math.log(3) for k in per_epoch], rel=1e-6)
    assert res.loss_sum == pytest.approx(steps * math.log(3), rel=1e-6)


def test_sums_survive_resume_and_checkpoint():
    data = _data(72)
    splits = DataSplits(data, _data(16, seed=1))

    def tiny() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 3))

    full = Trainer(tiny(), splits, batch_size=16, seed=2, **CFG).train_until("2.5ep")
    t = Trainer(tiny(), splits, batch_size=16, seed=2, **CFG)
    t.train_until("1.3ep")
    buf = io.BytesIO()
    torch.save(t.state_dict(), buf)
    buf.seek(0)
    t2 = Trainer(tiny(), splits, batch_size=16, seed=2, **CFG)
    t2.load_state_dict(torch.load(buf, weights_only=True))
    res = t2.train_until("2.5ep")
    assert res.epoch_loss_steps == full.epoch_loss_steps == [5, 5, 3]
    assert res.epoch_loss_sums == full.epoch_loss_sums
    assert res.loss_sum == full.loss_sum == pytest.approx(sum(full.losses), rel=1e-12)
    # a learning network: the first epoch's losses are not the last's
    assert full.epoch_loss_sums[0] / 5 != pytest.approx(full.epoch_loss_sums[1] / 5)


def test_no_steps_no_sum():
    res = Trainer(_FixedLogits(), _data(32), batch_size=16, **CFG).result()
    assert res.loss_sum is None and res.loss_steps == 0 and res.epoch_loss_sums == []
