"""train_model / Trainer on tiny generated data: learning, failures, determinism, resume."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tgsage.data.base import DataSplits, ImageSet
from tgsage.data.pipeline import standardize
from tgsage.errors import TrainingError
from tgsage.models import get_model
from tgsage.train import Budget, Trainer, evaluate_accuracy, examples_for_steps, train_model
from tgsage.train.loop import resolve_amp

torch.set_num_threads(1)


def _separable(n: int = 96, hw: int = 8, seed: int = 0) -> ImageSet:
    """Class 1 = bright red channel, class 0 = bright blue channel: trivially separable."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    images = torch.randint(0, 60, (n, 3, hw, hw), generator=g, dtype=torch.uint8)
    images[labels == 1, 0] += 150
    images[labels == 0, 2] += 150
    return ImageSet(images=images, labels=labels, num_classes=2, name="separable")


def _splits(n_train: int = 96, n_val: int = 64) -> DataSplits:
    ds = _separable(n_train + n_val)
    return DataSplits(ds.subset(slice(0, n_train)), ds.subset(slice(n_train, n_train + n_val)))


def _tiny(seed: int = 0, dropout: float = 0.0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 2),
    )


CFG = {"config": "cpu_demo", "batch_size": 16, "device": "cpu", "check_every": 3}


def test_learns_separable_task_above_chance():
    splits = _splits()
    model = _tiny()
    res = train_model(model, splits, "6ep", **CFG)
    assert res.ok and res.failure_reason is None
    assert res.val_accuracy is not None and res.val_accuracy >= 0.9  # chance is ~0.5
    assert res.losses[-1] < res.losses[0]
    assert res.steps == Budget.parse("6ep").to_steps(96, 16) == 36
    assert res.examples == 6 * 96 and res.epochs == pytest.approx(6.0)
    assert res.seconds > 0 and len(res.losses) == res.steps
    assert res.average_loss == pytest.approx(sum(res.losses) / len(res.losses))


def test_fractional_epoch_cost_counts_true_batch_sizes():
    splits = _splits(n_train=90)  # batches of 16: 5 full + one of 10
    res = train_model(_tiny(), splits, "1/3ep", eval_at_end=False, **CFG)
    assert res.steps == 2 and res.examples == 32  # ceil(30 / 16) steps
    res = train_model(_tiny(), splits, "1.5ep", eval_at_end=False, **CFG)
    assert res.steps == 6 + 3 and res.examples == 90 + 48
    assert res.examples == examples_for_steps(res.steps, 90, 16)


def test_diverging_lr_returns_failed_result():
    res = train_model(_tiny(), _splits(), "4ep", lr=1e12, **CFG)
    assert res.status == "failed" and res.failure_reason == "diverged"
    assert "loss became" in res.message and res.steps < 24
    with pytest.raises(TrainingError) as err:
        train_model(_tiny(), _splits(), "4ep", lr=1e12, raise_on_failure=True, **CFG)
    assert err.value.reason == "diverged"


class _NaNNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean(dim=(2, 3))) * float("nan")


def test_nan_output_is_diverged_after_first_check():
    res = train_model(_NaNNet(), _splits(), "2ep", **CFG)
    assert res.failure_reason == "diverged" and res.steps == 3  # caught at the first check


class _WrongShapes(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(999, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).flatten(1))


def test_invalid_architecture_shape_error():
    res = train_model(_WrongShapes(), _splits(), "1ep", **CFG)
    assert res.failure_reason == "invalid_architecture" and res.steps == 0
    assert "first forward" in res.message


def test_wrong_number_of_logits_is_invalid_architecture():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 5))
    res = train_model(model, _splits(), "1ep", **CFG)
    assert res.failure_reason == "invalid_architecture" and "(16, 2)" in res.message


class _OOMAtStep(nn.Module):
    def __init__(self, at: int) -> None:
        super().__init__()
        self.fc, self.calls, self.at = nn.Linear(3, 2), 0, at

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.at:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        return self.fc(x.mean(dim=(2, 3)))


def test_out_of_memory_is_reported_with_counters():
    res = train_model(_OOMAtStep(at=5), _splits(), "2ep", **CFG)
    assert res.failure_reason == "out_of_memory" and res.steps == 4 and len(res.losses) == 4


def test_same_seed_same_losses_and_global_rng_untouched():
    splits = _splits()
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = train_model(_tiny(dropout=0.3), splits, "2ep", seed=7, **CFG)
    torch.set_rng_state(state)
    b = train_model(_tiny(dropout=0.3), splits, "2ep", seed=7, **CFG)
    c = train_model(_tiny(dropout=0.3), splits, "2ep", seed=8, **CFG)
    assert a.losses == b.losses and a.losses != c.losses
    model = _tiny(dropout=0.3)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    Trainer(model, splits, **CFG).train_until("1ep")  # must not consume the caller's RNG
    assert torch.equal(torch.rand(3), expected)


def test_resume_equals_straight_run():
    splits = _splits(n_train=64)
    straight_model = _tiny(dropout=0.2)
    straight = Trainer(straight_model, splits, seed=3, **CFG)
    full = straight.train_until("200ex")
    resumed_model = _tiny(dropout=0.2)
    t = Trainer(resumed_model, splits, seed=3, **CFG)
    first = t.train_until("100ex")
    assert (first.steps, first.examples) == (7, 64 + 48)
    second = t.train_until("200ex")
    assert t.train_until("100ex").steps == second.steps  # smaller budget: no-op
    assert (
        (second.steps, second.examples) == (full.steps, full.examples) == (13, 208)
    )  # 3 epochs + one full batch
    assert second.losses == full.losses
    for p, q in zip(
        straight_model.state_dict().values(), resumed_model.state_dict().values(), strict=True
    ):
        assert torch.equal(p, q)
    more = t.train_for("2steps")
    assert more.steps == 15 and more.examples == 208 + 16 + 16


def test_grad_clip_bounds_the_update():
    model = _tiny()
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    clip, lr, steps = 1e-6, 0.5, 6
    res = train_model(
        model,
        _splits(),
        f"{steps}steps",
        config="cpu_demo",
        batch_size=16,
        device="cpu",
        lr=lr,
        momentum=0.0,
        weight_decay=0.0,
        schedule="constant",
        grad_clip=clip,
    )
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert res.ok and 0 < float((after - before).norm()) <= lr * clip * steps * 1.001


def test_progress_eval_every_and_mature():
    seen = []
    splits = _splits()
    res = train_model(
        _tiny(), splits, "mature", progress=seen.append, eval_every="1ep", epochs=3, **CFG
    )
    assert res.steps == 18 and res.epochs == pytest.approx(3.0)
    assert [p.steps for p in seen] == list(range(3, 19, 3))
    assert [h.steps for h in res.history] == [6, 12, 18]
    assert res.history[-1].val_accuracy == res.val_accuracy
    assert res.eval_seconds > 0


def test_single_image_last_batch_is_dropped():
    splits = _splits(n_train=33)  # 33 = 2 * 16 + 1
    res = train_model(_tiny(), splits, "2ep", eval_at_end=False, **CFG)
    assert res.ok and res.steps == 4 and res.examples == 64


def test_amp_resolution_and_cpu_bf16_runs():
    assert resolve_amp("off", torch.device("cpu")) is None
    assert resolve_amp("bf16", torch.device("cpu")) == "bf16"
    res = train_model(_tiny(), _splits(), "3steps", amp="bf16", eval_at_end=False, **CFG)
    assert res.ok and res.amp == "bf16"


def test_evaluate_accuracy_matches_brute_force():
    ds = _separable(n=53, seed=4)
    torch.manual_seed(0)
    model = get_model("small_cnn", num_classes=2, width=4, depth=2)
    model.train()
    got = evaluate_accuracy(model, ds, "cpu", batch_size=10)
    assert model.training  # mode restored
    model.eval()
    with torch.no_grad():
        correct = sum(
            int(model(standardize(ds.images[i : i + 1])).argmax(1).item() == ds.labels[i].item())
            for i in range(len(ds))
        )
    assert got == correct / 53


def test_checkpoint_resume_in_a_new_trainer_equals_straight_run():
    import io

    splits = _splits(n_train=72)  # 4 full batches + one of 8 per epoch
    straight_model = _tiny(dropout=0.2)
    full = Trainer(straight_model, splits, seed=5, **CFG).train_until("2.5ep")
    t = Trainer(_tiny(dropout=0.2), splits, seed=5, **CFG)
    t.train_until("1.3ep")  # stops mid-epoch
    buf = io.BytesIO()
    torch.save(t.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    fresh_model = _tiny(seed=99, dropout=0.2)  # different init: must be overwritten
    t2 = Trainer(fresh_model, splits, seed=5, **CFG)
    t2.load_state_dict(state)
    res = t2.train_until("2.5ep")
    assert (res.steps, res.examples) == (full.steps, full.examples)
    assert res.losses == full.losses
    for p, q in zip(
        straight_model.state_dict().values(), fresh_model.state_dict().values(), strict=True
    ):
        assert torch.equal(p, q)
    with pytest.raises(Exception, match="seed"):
        Trainer(_tiny(), splits, seed=6, **CFG).load_state_dict(state)


def test_budget_past_a_cosine_schedule_is_refused():
    """cpu_demo's cosine reaches lr 0 at 15 epochs: training past it would waste examples."""
    from tgsage.errors import ConfigError
    from tgsage.train import get_preset

    assert get_preset("cpu_demo").lr_at(15.0) == pytest.approx(0.0)
    trainer = Trainer(_tiny(), _splits(), **CFG)
    with pytest.raises(ConfigError, match="longer than the 15-epoch cosine schedule"):
        trainer.train_until("16ep")
    assert trainer.steps == 0  # refused before any work
    # a step schedule keeps its last learning rate: going past its length is allowed
    step_cfg = get_preset("cpu_demo", schedule="step", step_epochs=1.0, epochs=1.0)
    res = Trainer(_tiny(), _splits(), step_cfg, batch_size=16, device="cpu").train_until("2ep")
    assert res.ok and res.epochs == pytest.approx(2.0)
