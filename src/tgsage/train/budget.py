"""Training budgets in steps, epochs or examples, and the paper's cost unit.

The paper counts search cost as *examples processed by SGD* (``M1*E1 + M2*E2``), and states
premature budgets in epochs (2, 20, "1/5 epoch"). A :class:`Budget` holds any of the three and
converts to optimizer steps for a given dataset size and batch size.

String forms accepted by :meth:`Budget.parse` (case-insensitive, ``_`` ignored in numbers)::

    "2ep"  "0.2ep"  "1/5ep"  "300 epochs"     -> epochs (fractions allowed)
    "500steps"  "500 step"  "2k it"            -> optimizer steps
    "20000ex"  "2e4 examples"  "20_000ex"      -> examples
    "mature"                                   -> the training preset's full length
                                                  (``mature_epochs``; see TrainConfig.steps_for)

Conversion rules (one epoch = one pass over the ``n`` training images in batches of ``b``;
the last batch of an epoch holds the remaining ``n % b`` images unless ``drop_last``):

* steps per epoch = ``ceil(n / b)`` (``n // b`` with ``drop_last``, where an epoch then means
  ``(n // b) * b`` images);
* ``e`` epochs = ``floor(e)`` full epochs, then the fewest steps of the next epoch that cover
  ``frac(e) * n`` images (so 1/5 epoch of 45 000 images at b = 128 is ``ceil(9000 / 128) = 71``
  steps);
* ``k`` examples = as many whole epochs as fit, then the fewest steps covering the rest;
* examples processed by ``s`` steps = sum of the true batch sizes (:func:`examples_for_steps`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from tgsage.errors import ConfigError

Unit = Literal["steps", "epochs", "examples"]

_UNITS: dict[str, Unit] = {
    "ep": "epochs",
    "epoch": "epochs",
    "epochs": "epochs",
    "step": "steps",
    "steps": "steps",
    "it": "steps",
    "iter": "steps",
    "iters": "steps",
    "iterations": "steps",
    "ex": "examples",
    "example": "examples",
    "examples": "examples",
    "img": "examples",
    "images": "examples",
}
_SUFFIX = {"k": 1_000, "m": 1_000_000}
#: The budget that means "the training preset's full length and schedule".
MATURE = "mature"
_PATTERN = re.compile(
    r"^\s*(?P<num>[0-9.]+(?:e[+-]?[0-9]+)?(?:/[0-9.]+)?)\s*(?P<mult>[km]?)\s*(?P<unit>[a-z]+)\s*$"
)


def steps_per_epoch(n: int, batch_size: int, drop_last: bool = False) -> int:
    """Optimizer steps in one pass over ``n`` images."""
    if n < 1 or batch_size < 1:
        raise ConfigError(f"need n >= 1 images and batch_size >= 1, got n={n}, b={batch_size}")
    return n // batch_size if drop_last else math.ceil(n / batch_size)


def examples_for_steps(steps: int, n: int, batch_size: int, drop_last: bool = False) -> int:
    """Images processed by ``steps`` steps, counting each partial last batch by its true size."""
    spe = steps_per_epoch(n, batch_size, drop_last)
    if spe == 0:
        raise ConfigError(f"batch_size {batch_size} > {n} images with drop_last: no steps")
    per_epoch = spe * batch_size if drop_last else n
    full, rem = divmod(int(steps), spe)
    return full * per_epoch + min(rem * batch_size, per_epoch)


@dataclass(frozen=True)
class Budget:
    """An amount of training in ``unit`` ("steps", "epochs" or "examples")."""

    amount: Fraction
    unit: Unit

    def __post_init__(self) -> None:
        if self.unit not in ("steps", "epochs", "examples"):
            raise ConfigError(f"budget unit must be steps, epochs or examples, not {self.unit!r}")
        if self.amount < 0:
            raise ConfigError(f"a budget cannot be negative: {self}")
        if self.unit != "epochs" and self.amount.denominator != 1:
            raise ConfigError(f"{self.unit} budgets must be whole numbers, got {self.amount}")

    @classmethod
    def steps(cls, n: int) -> Budget:
        return cls(Fraction(int(n)), "steps")

    @classmethod
    def epochs(cls, e: float | Fraction | str) -> Budget:
        return cls(_fraction(e), "epochs")

    @classmethod
    def examples(cls, n: int) -> Budget:
        return cls(Fraction(int(n)), "examples")

    @classmethod
    def parse(
        cls, value: str | Budget | None, mature_epochs: float | Fraction | None = None
    ) -> Budget:
        """Parse ``"2ep"``, ``"1/5ep"``, ``"500steps"``, ``"20000ex"`` (see module doc).

        ``"mature"`` (or None) is ``mature_epochs`` epochs: the preset's full length, which only
        a training config knows (:meth:`TrainConfig.steps_for` passes it)."""
        if isinstance(value, Budget):
            return value
        if value is None or (isinstance(value, str) and value.strip().lower() == MATURE):
            if mature_epochs is None:
                raise ConfigError(
                    "budget 'mature' means a training preset's full length; give the preset "
                    "(or a budget such as '30ep')"
                )
            return cls.epochs(mature_epochs)
        if not isinstance(value, str):
            raise ConfigError(
                f"a budget must be a string like '2ep', '500steps' or '20000ex', got {value!r}"
            )
        m = _PATTERN.match(value.lower().replace("_", ""))
        unit = _UNITS.get(m.group("unit")) if m else None
        if m is None or unit is None:
            raise ConfigError(
                f"cannot read budget {value!r}; write e.g. '2ep', '0.2ep', '1/5ep', "
                "'500steps', '20000ex' or 'mature'"
            )
        amount = _fraction(m.group("num")) * _SUFFIX.get(m.group("mult"), 1)
        if unit != "epochs":
            if amount.denominator != 1:
                raise ConfigError(f"budget {value!r}: {unit} must be a whole number")
            return cls(amount, unit)
        return cls(amount, "epochs")

    @classmethod
    def check(cls, value: str) -> str:
        """``value`` itself if it is a budget (``"mature"`` included); a ConfigError if not.
        For configs that are read before their training preset is known."""
        cls.parse(value, mature_epochs=1)
        return value

    def to_steps(self, n: int, batch_size: int, drop_last: bool = False) -> int:
        """Optimizer steps this budget means for ``n`` training images in batches of size b."""
        spe = steps_per_epoch(n, batch_size, drop_last)
        if self.unit == "steps":
            return int(self.amount)
        per_epoch = spe * batch_size if drop_last else n
        target = self.amount * per_epoch if self.unit == "epochs" else self.amount  # images
        full = math.floor(target / per_epoch)
        rest = target - full * per_epoch
        return full * spe + min(spe, math.ceil(rest / batch_size))

    def to_examples(self, n: int, batch_size: int, drop_last: bool = False) -> int:
        """Examples actually processed when training for this budget (the cost)."""
        return examples_for_steps(self.to_steps(n, batch_size, drop_last), n, batch_size, drop_last)

    def __str__(self) -> str:
        short = {"steps": "steps", "epochs": "ep", "examples": "ex"}[self.unit]
        return f"{self.amount}{short}"


def _fraction(x: float | Fraction | str) -> Fraction:
    try:
        if isinstance(x, str) and "/" in x:
            num, den = x.split("/")
            return Fraction(num) / Fraction(den)
        return Fraction(str(x)) if isinstance(x, float) else Fraction(x)
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"cannot read {x!r} as a number") from None
