"""Budgets: parsing, conversion to steps (incl. fractional epochs) and cost arithmetic."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tgsage.errors import ConfigError
from tgsage.train import Budget, examples_for_steps, steps_per_epoch


@pytest.mark.parametrize(
    ("text", "amount", "unit"),
    [
        ("2ep", Fraction(2), "epochs"),
        ("0.2ep", Fraction(1, 5), "epochs"),
        ("1/5ep", Fraction(1, 5), "epochs"),
        ("300 epochs", Fraction(300), "epochs"),
        ("2.5 epoch", Fraction(5, 2), "epochs"),
        ("500steps", Fraction(500), "steps"),
        ("2k it", Fraction(2000), "steps"),
        ("20000ex", Fraction(20000), "examples"),
        ("20_000ex", Fraction(20000), "examples"),
        ("2e4 examples", Fraction(20000), "examples"),
        ("1M ex", Fraction(1_000_000), "examples"),
    ],
)
def test_parse(text, amount, unit):
    b = Budget.parse(text)
    assert (b.amount, b.unit) == (amount, unit)
    assert Budget.parse(str(b)) == b  # round trip


@pytest.mark.parametrize("bad", ["", "2", "ep", "2 parsecs", "1.5steps", "-1ep", "1/0ep", "0.5ex"])
def test_parse_rejects_with_help(bad):
    with pytest.raises(ConfigError):
        Budget.parse(bad)


def test_hand_computed_conversions():
    n, b = 45_000, 128
    assert steps_per_epoch(n, b) == 352  # 351 full batches + one of 72
    assert Budget.parse("1ep").to_steps(n, b) == 352
    assert Budget.parse("2ep").to_steps(n, b) == 704
    assert Budget.parse("1/5ep").to_steps(n, b) == math.ceil(9000 / 128) == 71
    assert Budget.parse("2.5ep").to_steps(n, b) == 704 + math.ceil(22_500 / 128)
    assert Budget.parse("500steps").to_steps(n, b) == 500
    assert Budget.parse("20000ex").to_steps(n, b) == math.ceil(20_000 / 128)
    assert Budget.parse("45072ex").to_steps(n, b) == 352 + 1
    # Cost: the last batch of each epoch counts its true size (72 images).
    assert examples_for_steps(352, n, b) == 45_000
    assert examples_for_steps(353, n, b) == 45_128
    assert examples_for_steps(71, n, b) == 71 * 128
    assert Budget.parse("2ep").to_examples(n, b) == 90_000
    # The paper's ImageNet search: 1/5 epoch of ~1.23M images at b=128 is ~2000 steps (the paper rounds 1924).
    assert abs(Budget.parse("1/5ep").to_steps(1_231_167, 128) - 2000) < 100


def test_drop_last_arithmetic():
    assert steps_per_epoch(10, 4, drop_last=True) == 2
    assert examples_for_steps(5, 10, 4, drop_last=True) == 20
    assert Budget.parse("1ep").to_steps(10, 4, drop_last=True) == 2
    assert Budget.parse("0.5ep").to_steps(10, 4, drop_last=True) == 1


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 500),
    b=st.integers(1, 64),
    num=st.integers(0, 40),
    den=st.integers(1, 8),
)
def test_epoch_budget_is_fewest_steps_covering_the_images(n, b, num, den):
    """Brute force: walk batches one by one until frac epochs worth of images are covered."""
    e = Fraction(num, den)
    steps = Budget.epochs(e).to_steps(n, b)
    sizes = [min(b, n - i) for i in range(0, n, b)]  # one epoch's batch sizes
    target, seen, want = e * n, 0, 0
    while seen < target:
        seen += sizes[want % len(sizes)]
        want += 1
    assert steps == want
    assert examples_for_steps(steps, n, b) == seen
    assert Budget.examples(math.ceil(target)).to_steps(n, b) == want


def test_one_budget_rule_mature_and_progress_totals() -> None:
    """'mature' is the preset's length; totals follow the trainer's drop-last rule (hand-derived)."""
    from tgsage.train import get_preset

    cfg = get_preset("cpu_demo")  # batch 64, 15 epochs
    # 200 images: 4 steps an epoch (64+64+64+8), 15 epochs = 60 steps and 3000 examples
    assert cfg.steps_for("mature", 200) == cfg.steps_for(None, 200) == 60
    assert cfg.examples_for("mature", 200) == 3000
    # half an epoch = the fewest steps covering 100 images = 2 steps of 64
    assert (cfg.steps_for("0.5ep", 200), cfg.examples_for("0.5ep", 200)) == (2, 128)
    # 193 images leave a last batch of one image: dropped, so 3 steps of 64 an epoch
    assert cfg.drop_last_for(193) and not cfg.drop_last_for(200)
    assert (cfg.steps_for("mature", 193), cfg.examples_for("mature", 193)) == (45, 45 * 64)
    assert Budget.parse("Mature", mature_epochs=3) == Budget.epochs(3)
    with pytest.raises(ConfigError, match="preset"):
        Budget.parse("mature")
    assert Budget.check("mature") == "mature" and Budget.check("2ep") == "2ep"
    with pytest.raises(ConfigError, match="cannot read budget"):
        Budget.check("2 fortnights")


def test_trainer_progress_total_is_what_it_trains() -> None:
    import torch
    from torch import nn

    from tgsage.data.base import ImageSet
    from tgsage.train import Trainer

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 255, (33, 3, 4, 4), generator=g, dtype=torch.uint8)
    data = ImageSet(images=images, labels=torch.arange(33) % 2, num_classes=2, name="t")
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, 2))
    trainer = Trainer(model, data, "cpu_demo", batch_size=16, device="cpu")
    # 33 images in batches of 16 leave one image: dropped, so 2 steps (32 images) an epoch
    assert trainer.expected_examples("2ep") == 64
    assert trainer.train_until("2ep").examples == 64
