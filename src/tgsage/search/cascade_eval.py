"""What a cascade worker does with one (candidate, rung): screen it, or train it further.

``screen(spec, score)`` scores an untrained network with a training-free score (the
prescreen's or the screen's; default ``cascade.screen``);
``train(spec, budget, score)`` trains it to ``budget`` examples in total and scores it. With
``continue_training`` the run resumes the candidate's checkpoint at the largest smaller budget
(``<run_dir>/checkpoints/<spec hash>/<examples>.pt``), so its cost is the difference; a worker
that cannot see the run folder (another machine) trains from the start and says so
(``resumed_from`` is absent, ``examples`` is the whole budget).

Checkpoints are written atomically (temporary file + rename), so a worker killed while
writing one leaves either the old state or none, never a torn file; an unreadable checkpoint
is ignored (the candidate is trained from the start).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol

from tgsage.search.config import SearchConfig
from tgsage.search.objective import Outcome

log = logging.getLogger("tgsage.search")


class CascadeEvaluator(Protocol):
    def screen(self, spec: Any, score: str | None = None) -> Outcome: ...

    def train(self, spec: Any, budget: str, score: str, previous: str | None = None) -> Outcome: ...


# ---------------------------------------------------------------------------- checkpoints
class Checkpoints:
    """A candidate's training states by examples processed, in one folder per spec hash."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    def _dir(self, spec_hash: str) -> Path | None:
        return None if self.root is None else self.root / spec_hash

    def best_below(self, spec_hash: str, examples: int) -> tuple[int, Path] | None:
        """The checkpoint with the most examples, fewer than ``examples``."""
        d = self._dir(spec_hash)
        if d is None or not d.is_dir():
            return None
        found = []
        for p in d.glob("*.pt"):
            if p.stem.isdigit() and int(p.stem) < examples:
                found.append((int(p.stem), p))
        return max(found) if found else None

    def save(self, spec_hash: str, examples: int, write: Any) -> None:
        """``write(path)`` writes the state; it lands atomically under its final name."""
        d = self._dir(spec_hash)
        if d is None:
            return
        try:
            d.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=d, suffix=".tmp")
            os.close(fd)
            write(Path(tmp))
            os.replace(tmp, d / f"{examples}.pt")
        except OSError as exc:  # a full or read-only disk costs a retrain later, not the search
            log.warning("checkpoint of %s at %d examples not saved: %s", spec_hash, examples, exc)


def checkpoint_root(config: SearchConfig) -> Path | None:
    """Where rungs keep the checkpoints they continue from (None: continuation off, or the
    folder cannot be made, e.g. a worker on another machine)."""
    cascade = config.cascade
    if cascade is None or not cascade.continue_training:
        return None
    if cascade.checkpoints is not None:
        root = cascade.checkpoints
    elif cascade.cache is not None:
        root = Path(str(cascade.cache) + ".checkpoints")
    else:
        root = config.resolved_run_dir / "checkpoints"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return root


# ---------------------------------------------------------------------------- simulate
def _unit(text: str, salt: str) -> float:
    digest = hashlib.sha256(f"{salt}:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def budget_examples(budget: str, examples_per_epoch: int, batch_size: int = 1) -> int:
    """Examples a budget means for ``examples_per_epoch`` training images."""
    from tgsage.train import Budget

    return Budget.parse(budget).to_examples(examples_per_epoch, batch_size)


class SimulatedCascade:
    """The cheap stand-in of ``objective: simulate`` for cascades (tests, benchmarks).

    Every architecture has a hidden quality q (from its spec hash); the screen sees
    ``q + noise`` with a wide noise, rung i sees ``q + noise / (i + 1)`` (more training, a
    clearer signal), all deterministic per (hash, budget). Training writes a small JSON
    "checkpoint" so continuation and its cost accounting behave as with real training;
    one epoch is ``simulate.examples`` examples.
    """

    def __init__(self, config: SearchConfig) -> None:
        self.config = config
        self.checkpoints = Checkpoints(checkpoint_root(config))
        assert config.cascade is not None
        self.budgets = list(config.cascade.budgets)

    def _sleep(self) -> float:
        t0 = time.perf_counter()
        if self.config.simulate.sleep:
            time.sleep(self.config.simulate.sleep)
        return time.perf_counter() - t0

    def _failed(self, h: str, where: str) -> bool:
        return _unit(h + where, "fail") < self.config.simulate.fail_fraction

    def screen(self, spec: Any, score: str | None = None) -> Outcome:
        """The screen sees ``q + noise``; a prescreen (a score other than ``cascade.screen``)
        a noisier view with noise of its own."""
        h = spec.spec_hash
        seconds = self._sleep()
        base = {"examples": 0, "train_seconds": 0.0, "score_seconds": seconds}
        if self._failed(h, "screen"):
            return Outcome(
                False, None, base | {"failure_reason": "simulated_failure", "message": "simulated"}
            )
        main = self.config.cascade.screen  # type: ignore[union-attr]
        name = main if score is None else score
        if name == main:
            z = _unit(h, "Q") + 0.5 * (_unit(h, "Z") - 0.5)
        else:
            z = _unit(h, "Q") + 1.0 * (_unit(h, f"Z{name}") - 0.5)
        return Outcome(True, z, base | {"proxies": {name: z}, "score": z})

    def train(self, spec: Any, budget: str, score: str, previous: str | None = None) -> Outcome:
        h = spec.spec_hash
        total = budget_examples(budget, self.config.simulate.examples)
        start = 0
        resumed = self.checkpoints.best_below(h, total) if previous is not None else None
        if resumed is not None and resumed[0] != budget_examples(
            previous,
            self.config.simulate.examples,  # type: ignore[arg-type]
        ):
            resumed = None
        attrs: dict[str, Any] = {}
        if resumed is not None:
            try:
                start = int(json.loads(resumed[1].read_text())["examples"])
                attrs["resumed_from"] = start
            except (OSError, ValueError, KeyError):
                start = 0
        seconds = self._sleep()
        attrs |= {"examples": total - start, "train_seconds": seconds, "score_seconds": 0.0}
        if self._failed(h, budget):
            return Outcome(
                False,
                None,
                attrs | {"failure_reason": "simulated_failure", "message": "simulated failure"},
            )
        level = 1 + self.budgets.index(budget) if budget in self.budgets else 1
        p = _unit(h, "Q") + 0.3 * (_unit(h, f"P{budget}") - 0.5) / level
        tg = _unit(h, "Q") + 0.3 * (_unit(h, f"T{budget}") - 0.5) / level
        from tgsage.search.cascade_train import rung_value

        value = rung_value(score, {"P": p, "TG": tg}, self.config.alpha)
        self.checkpoints.save(
            h, total, lambda path: path.write_text(json.dumps({"examples": total}))
        )
        return Outcome(True, value, attrs | {"P": p, "TG": tg, "score": value})


def make_cascade_evaluator(config: SearchConfig) -> CascadeEvaluator:
    if config.objective == "simulate":
        return SimulatedCascade(config)
    from tgsage.search.cascade_train import TrainingCascade

    return TrainingCascade(config)


__all__ = [
    "CascadeEvaluator",
    "Checkpoints",
    "SimulatedCascade",
    "budget_examples",
    "checkpoint_root",
    "make_cascade_evaluator",
]
