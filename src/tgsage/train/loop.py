"""Premature and mature training with cost accounting, failure capture and exact resume.

One :class:`Trainer` owns a model, its optimizer, the data stream and the counters. Calling
:meth:`Trainer.train_until` with growing budgets continues the *same* run (optimizer state,
data order, augmentation draws, RNG state and schedule position are kept), so premature
snapshots at 0.5, 1, 2 ... epochs lie on one trajectory; on CPU, training to 100 and then to 200
examples gives bit-identical weights to training straight to 200.

Failures never propagate: divergence (non-finite loss), out-of-memory, and invalid architectures
(errors in the first forward pass, or logits of the wrong shape) come back as a failed
:class:`TrainResult` with ``failure_reason`` and a message (``raise_on_failure=True`` raises
:class:`~tgsage.errors.TrainingError` instead). The loss is checked every ``check_every`` steps
and at the end, so there is no host-device sync per step.

Steps run on the fast path the config's ``amp``, ``channels_last`` and ``compile`` fields
choose (:mod:`tgsage.train.execution`: by default bf16 autocast and channels-last where they
help); the result records what was used.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from tgsage.data.base import DataSplits, ImageSet
from tgsage.data.pipeline import BatchIterator, resolve_device
from tgsage.errors import ConfigError, InputError, TrainingError
from tgsage.spaces.pruning import skip_dead_work
from tgsage.train.budget import Budget, examples_for_steps, steps_per_epoch
from tgsage.train.evaluation import evaluate_accuracy
from tgsage.train.execution import AmpMode, Execution, resolve_amp
from tgsage.train.presets import TrainConfig, get_preset, make_optimizer

FailureReason = Literal["diverged", "out_of_memory", "invalid_architecture", "error"]
logger = logging.getLogger("tgsage.train")


@dataclass(frozen=True)
class Progress:
    """Handed to the ``progress`` callback at every loss check."""

    steps: int
    examples: int
    epochs: float
    loss: float  # mean loss over the steps since the previous check
    lr: float
    seconds: float


@dataclass(frozen=True)
class EvalPoint:
    """Validation accuracy at one point of training (``eval_every``)."""

    steps: int
    examples: int
    epochs: float
    val_accuracy: float


@dataclass
class TrainResult:
    """Outcome and cost of a (possibly resumed) run; counters are totals since the start.

    ``examples`` is the paper's cost unit (images processed by SGD). ``seconds`` is training
    wall time, excluding evaluation (``eval_seconds``). ``losses`` holds every step's loss: the
    mean over the step's minibatch of the per-example loss being minimised (cross-entropy, with
    the config's label smoothing, plus ``aux_weight`` x that of any auxiliary logits; see
    :func:`training_loss`), computed in float32. ``final_loss`` is the last step's loss;
    ``average_loss`` the mean over all steps.

    The sum-of-training-losses estimators of Ru et al. (NeurIPS 2021) come with every run, summed
    in float64 from the per-step losses above:

    * ``loss_sum`` (SoTL): the sum of the step losses over all ``loss_steps`` steps so far
      (None before the first step);
    * ``epoch_loss_sums[k]``: the sum over the steps of epoch ``k`` (steps ``k * spe + 1`` to
      ``(k + 1) * spe``, ``spe`` = steps per epoch), and ``epoch_loss_steps[k]`` how many steps
      it covers; the last entry is partial when the run stopped mid-epoch. SoTL-E (E = 1) is
      ``epoch_loss_sums[-1]``.

    A diverged run's sums include its non-finite loss.

    ``amp`` ("bf16", "fp16" or None = float32), ``channels_last`` and ``compile`` say how the
    training steps ran (resolved from the config's settings on ``device``).
    """

    status: Literal["ok", "failed"]
    steps: int
    examples: int
    epochs: float
    seconds: float
    final_loss: float | None
    average_loss: float | None
    losses: list[float]
    failure_reason: FailureReason | None = None
    message: str | None = None
    val_accuracy: float | None = None
    eval_seconds: float = 0.0
    history: list[EvalPoint] = field(default_factory=list)
    loss_sum: float | None = None
    loss_steps: int = 0
    epoch_loss_sums: list[float] = field(default_factory=list)
    epoch_loss_steps: list[int] = field(default_factory=list)
    device: str = "cpu"
    amp: str | None = None
    channels_last: bool = False
    compile: bool = False
    config: TrainConfig | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def examples_per_second(self) -> float:
        return self.examples / self.seconds if self.seconds > 0 else float("nan")

    def raise_if_failed(self) -> TrainResult:
        if not self.ok:
            raise TrainingError(self.failure_reason or "error", self.message or "training failed")
        return self


def split_logits(output: Any) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """A model's training-mode output as ``(logits, auxiliary logits)``: a tensor is the
    logits alone; a tuple is ``(logits, *aux)`` (NASNet's or Inception's auxiliary heads)."""
    if isinstance(output, tuple | list):
        return output[0], tuple(output[1:])
    return output, ()


def training_loss(
    logits: torch.Tensor, aux: tuple[torch.Tensor, ...], y: torch.Tensor, cfg: TrainConfig
) -> torch.Tensor:
    """Cross-entropy of the logits plus ``cfg.aux_weight`` x that of each auxiliary output."""
    loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
    for a in aux:
        loss = loss + cfg.aux_weight * F.cross_entropy(
            a.float(), y, label_smoothing=cfg.label_smoothing
        )
    return loss


class _Failure(Exception):
    def __init__(self, reason: FailureReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _is_oom(e: BaseException) -> bool:
    if isinstance(e, torch.cuda.OutOfMemoryError | MemoryError):
        return True
    text = str(e).lower()
    return "out of memory" in text or "can't allocate memory" in text


class Trainer:
    """A resumable training run of ``model`` on ``data`` with one :class:`TrainConfig`.

    ``data`` is a :class:`DataSplits` (trains on ``train``; ``val`` gives ``val_accuracy``
    and ``eval_every`` points) or a bare training :class:`ImageSet`. ``config`` is a preset
    name, a :class:`TrainConfig` or None (``cifar_layer_space``); keyword ``overrides`` change
    single fields (``lr=0.05``), as do ``amp``, ``channels_last`` and ``compile`` when given
    (None: the config's setting). ``seed`` fixes data order, augmentation and any randomness
    inside the model (dropout) without touching the caller's global RNG state.
    """

    def __init__(
        self,
        model: nn.Module,
        data: DataSplits | ImageSet,
        config: str | TrainConfig | None = None,
        *,
        device: str | torch.device | None = "auto",
        seed: int = 0,
        grad_clip: float | None = None,
        amp: AmpMode | bool | None = None,
        channels_last: bool | str | None = None,
        compile: bool | None = None,
        progress: Callable[[Progress], None] | None = None,
        eval_every: str | Budget | None = None,
        eval_at_end: bool = True,
        eval_batch_size: int = 500,
        check_every: int = 20,
        **overrides: Any,
    ) -> None:
        switches = {"grad_clip": grad_clip, "amp": amp, "channels_last": channels_last}
        switches["compile"] = compile
        overrides.update({k: v for k, v in switches.items() if v is not None})
        self.config = get_preset(config, **overrides)
        if isinstance(data, DataSplits):
            self.train_set, self.val_set = data.train, data.val
        elif isinstance(data, ImageSet):
            self.train_set, self.val_set = data, None
        else:
            raise InputError(f"data must be DataSplits or ImageSet, got {type(data).__name__}")
        if len(self.train_set) == 0:
            raise InputError(f"{self.train_set.name}: cannot train on an empty image set")
        self.model = model
        self.device = resolve_device(device)
        self.seed = int(seed)
        cfg = self.config
        self.execution = Execution.resolve(self.device, cfg.amp, cfg.channels_last, cfg.compile)
        self.progress = progress
        self.eval_every = Budget.parse(eval_every) if eval_every is not None else None
        self.eval_at_end = eval_at_end
        self.eval_batch_size = eval_batch_size
        self.check_every = max(1, int(check_every))
        n, b = len(self.train_set), self.config.batch_size
        self.drop_last = self.config.drop_last_for(n)
        if self.drop_last and n < b:
            raise ConfigError(f"batch_size {b} exceeds the {n} training images with drop_last")
        self.steps = 0
        self.examples = 0
        self.seconds = 0.0
        self.eval_seconds = 0.0
        self.losses: list[float] = []
        self.history: list[EvalPoint] = []
        self.val_accuracy: float | None = None
        self._failure: _Failure | None = None
        self._optimizer: torch.optim.Optimizer | None = None
        self._scaler: torch.amp.GradScaler | None = None
        self._stream: Iterator[tuple[torch.Tensor, torch.Tensor]] | None = None
        self._forward: Callable[[torch.Tensor], Any] = model
        self._rng_state: tuple[torch.Tensor, torch.Tensor | None] | None = None
        self._pending: list[torch.Tensor] = []

    # ------------------------------------------------------------------ public API
    @property
    def amp(self) -> str | None:
        """The autocast dtype of training steps ("bf16", "fp16"), None for float32."""
        return self.execution.amp

    @property
    def channels_last(self) -> bool:
        return self.execution.channels_last

    @property
    def epochs(self) -> float:
        """Epoch position: examples processed / training-set size."""
        return self.examples / len(self.train_set)

    def budget_steps(self, budget: str | Budget | None) -> int:
        """Total steps a budget means for this run ("mature"/None = the preset's length)."""
        return self.config.steps_for(budget, len(self.train_set))

    def expected_examples(self, budget: str | Budget | None) -> int:
        """Examples this run will have processed once it reaches ``budget`` (progress totals)."""
        return self.config.examples_for(budget, len(self.train_set))

    def check_budget(self, budget: str | Budget | None) -> int:
        """Total steps of ``budget``, refusing one past the end of a cosine schedule (its
        learning rate is 0 there, so the examples would be spent without learning)."""
        target = self.budget_steps(budget)
        cfg = self.config
        if cfg.schedule == "cosine" and target > self.budget_steps(Budget.epochs(cfg.epochs)):
            raise ConfigError(
                f"budget {budget!s} is longer than the {cfg.epochs:g}-epoch cosine schedule "
                "(its learning rate is 0 from there on); use a budget up to 'mature' or a "
                "config with more epochs (e.g. get_preset(..., epochs=...))"
            )
        return target

    def train_until(
        self, budget: str | Budget | None, raise_on_failure: bool = False
    ) -> TrainResult:
        """Train until the run's *total* reaches ``budget``; a no-op if it already has."""
        target = self.check_budget(budget)
        if self._failure is None and self.steps < target:
            self._run(target)
            if self._failure is None and self.eval_at_end and self.val_set is not None:
                self.val_accuracy = self._timed_eval()
        result = self.result()
        return result.raise_if_failed() if raise_on_failure else result

    def train_for(self, budget: str | Budget, raise_on_failure: bool = False) -> TrainResult:
        """Train for ``budget`` more (steps are added to the current total)."""
        return self.train_until(
            Budget.steps(self.steps + self.budget_steps(budget)), raise_on_failure
        )

    def evaluate(self, imageset: ImageSet | None = None) -> float:
        """Accuracy of the current model on ``imageset`` (default: the validation set)."""
        target = imageset if imageset is not None else self.val_set
        if target is None:
            raise InputError("no validation set: pass DataSplits or an ImageSet to evaluate")
        return evaluate_accuracy(
            self.model,
            target,
            self.device,
            self.eval_batch_size,
            channels_last=self.channels_last,
        )

    def result(self) -> TrainResult:
        """The current totals as a :class:`TrainResult`."""
        f = self._failure
        spe = steps_per_epoch(len(self.train_set), self.config.batch_size, self.drop_last)
        epochs = [self.losses[i : i + spe] for i in range(0, len(self.losses), spe)]
        return TrainResult(
            status="ok" if f is None else "failed",
            steps=self.steps,
            examples=self.examples,
            epochs=self.epochs,
            seconds=self.seconds,
            final_loss=self.losses[-1] if self.losses else None,
            average_loss=math.fsum(self.losses) / len(self.losses) if self.losses else None,
            losses=list(self.losses),
            failure_reason=None if f is None else f.reason,
            message=None if f is None else str(f),
            val_accuracy=self.val_accuracy,
            eval_seconds=self.eval_seconds,
            history=list(self.history),
            loss_sum=math.fsum(self.losses) if self.losses else None,
            loss_steps=len(self.losses),
            epoch_loss_sums=[math.fsum(e) for e in epochs],
            epoch_loss_steps=[len(e) for e in epochs],
            device=str(self.device),
            amp=self.amp,
            channels_last=self.channels_last,
            compile=self.execution.compile,
            config=self.config,
        )

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this run elsewhere (``torch.save``-able, no pickle of
        custom classes: loads with ``torch.load(..., weights_only=True)``)."""
        if self._failure is not None:
            raise TrainingError(
                self._failure.reason, f"cannot checkpoint a failed run: {self._failure}"
            )
        cpu_state, cuda_state = self._rng_state or (None, None)
        return {
            "model": self.model.state_dict(),
            "optimizer": self._optimizer.state_dict() if self._optimizer else None,
            "scaler": self._scaler.state_dict() if self._scaler else None,
            "config": self.config.model_dump(mode="json"),
            "seed": self.seed,
            "steps": self.steps,
            "examples": self.examples,
            "seconds": self.seconds,
            "eval_seconds": self.eval_seconds,
            "losses": list(self.losses),
            "history": [list(vars(h).values()) for h in self.history],
            "val_accuracy": self.val_accuracy,
            "rng_cpu": cpu_state,
            "rng_cuda": cuda_state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` into this trainer (same model architecture and data)."""
        if TrainConfig(**state["config"]) != self.config or state["seed"] != self.seed:
            raise ConfigError(
                "checkpoint was made with another training config or seed; build the Trainer "
                "with the same config and seed to resume it"
            )
        self.model.load_state_dict(state["model"])
        self.steps, self.examples = int(state["steps"]), int(state["examples"])
        self.seconds, self.eval_seconds = float(state["seconds"]), float(state["eval_seconds"])
        self.losses = list(state["losses"])
        self.history = [
            EvalPoint(int(a), int(b), float(c), float(d)) for a, b, c, d in state["history"]
        ]
        self.val_accuracy = state["val_accuracy"]
        self._rng_state = (
            (state["rng_cpu"], state["rng_cuda"]) if state["rng_cpu"] is not None else None
        )
        self._setup()
        assert self._optimizer is not None
        if state["optimizer"] is not None:
            self._optimizer.load_state_dict(state["optimizer"])
        if self._scaler is not None and state["scaler"] is not None:
            self._scaler.load_state_dict(state["scaler"])

    # ------------------------------------------------------------------ internals
    def _setup(self) -> None:
        self.model.to(device=self.device, memory_format=self.execution.memory_format)
        self._forward = self.execution.training_forward(self.model)
        self._optimizer = make_optimizer(self.model, self.config)
        if self.amp == "fp16":
            self._scaler = torch.amp.GradScaler(self.device.type)
        base = BatchIterator(
            self.train_set,
            self.config.batch_size,
            device=self.device,
            augment=self.config.augment,
            shuffle=True,
            seed=self.seed,
            drop_last=self.drop_last,
            channels_last=self.channels_last,
        )
        # The stream restarts at the batch position the step counter implies, so a run restored
        # from a checkpoint sees exactly the batches an uninterrupted run would have seen.
        spe = len(base)
        first_epoch, first_batch = divmod(self.steps, spe)
        self._stream = (
            batch
            for epoch in itertools.count(first_epoch)
            for batch in base.with_epoch(epoch, first_batch if epoch == first_epoch else 0)
        )

    def _rng_devices(self) -> list[int]:
        if self.device.type == "cuda":
            return [self.device.index if self.device.index is not None else 0]
        return []

    def _run(self, target: int) -> None:
        with torch.random.fork_rng(devices=self._rng_devices()):
            if self._rng_state is None:
                torch.manual_seed(self.seed)
            else:
                cpu_state, cuda_state = self._rng_state
                torch.set_rng_state(cpu_state)
                if cuda_state is not None:
                    torch.cuda.set_rng_state(cuda_state, self._rng_devices()[0])
            try:
                self._loop(target)
            except _Failure as f:
                self._failure = f
            finally:
                cuda_state = (
                    torch.cuda.get_rng_state(self._rng_devices()[0])
                    if self.device.type == "cuda"
                    else None
                )
                self._rng_state = (torch.get_rng_state(), cuda_state)
        if self._failure is not None:
            self._release()

    def _loop(self, target: int) -> None:
        was_training = self.model.training
        self.model.train()
        start = time.perf_counter()
        phase = "setup"
        try:
            if self._optimizer is None:
                self._setup()
            assert self._optimizer is not None and self._stream is not None
            eval_steps = self.budget_steps(self.eval_every) if self.eval_every else 0
            n = len(self.train_set)
            while self.steps < target:
                lr = self.config.lr_at(self.examples / n)
                for group in self._optimizer.param_groups:
                    group["lr"] = lr
                phase = "data"
                x, y = next(self._stream)
                phase = "forward"
                loss = self._first_loss(x, y) if self.steps == 0 else self._forward_loss(x, y)
                phase = "backward"
                self._optimizer.zero_grad(set_to_none=True)
                self._backward_and_step(loss)
                self._pending.append(loss.detach())
                self.steps += 1
                self.examples += int(x.shape[0])
                phase = "check"
                if self.steps % self.check_every == 0 or self.steps == target:
                    self._flush(lr, start)
                if eval_steps and self.steps % eval_steps == 0 and self.val_set is not None:
                    self.seconds += time.perf_counter() - start
                    acc = self._timed_eval()
                    self.history.append(EvalPoint(self.steps, self.examples, self.epochs, acc))
                    self.model.train()
                    start = time.perf_counter()
        except _Failure:
            raise
        except Exception as e:  # classify; never let a candidate crash the search
            if _is_oom(e):
                raise _Failure(
                    "out_of_memory", f"out of memory at step {self.steps} ({phase}): {e}"
                ) from e
            if self.steps == 0 and phase in ("setup", "forward"):
                raise _Failure(
                    "invalid_architecture",
                    f"the model failed its first forward pass: {type(e).__name__}: {e}",
                ) from e
            raise _Failure(
                "error", f"training failed at step {self.steps} ({phase}): {type(e).__name__}: {e}"
            ) from e
        finally:
            self._pending_check_on_exit()
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self.seconds += time.perf_counter() - start
            self.model.train(was_training)

    def _forward_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The training loss of one batch (:func:`training_loss`: mean over its examples), the
        forward under the run's autocast, the loss itself in float32, skipping work that cannot
        reach the loss (:func:`~tgsage.spaces.pruning.skip_dead_work`: same values)."""
        with self.execution.autocast(), skip_dead_work():
            logits, aux = split_logits(self._forward(x))
            if self.steps == 0:
                for out in (logits, *aux):
                    self._check_logits(out, x.shape[0])
            return training_loss(logits, aux, y, self.config)

    def _first_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The first step's loss; a compiled forward that fails falls back to eager (recorded:
        the result then says ``compile=False``), so a compiler problem is not an invalid
        architecture."""
        try:
            return self._forward_loss(x, y)
        except _Failure:
            raise
        except Exception as e:
            if not self.execution.compile or _is_oom(e):
                raise
            logger.warning("torch.compile failed (%s: %s); training eagerly", type(e).__name__, e)
            self.execution = dataclasses.replace(self.execution, compile=False)
            self._forward = self.model
            return self._forward_loss(x, y)

    def _check_logits(self, logits: torch.Tensor, batch: int) -> None:
        k = self.train_set.num_classes
        if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (batch, k):
            shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits)
            raise _Failure(
                "invalid_architecture",
                f"the model returned logits of shape {shape}; expected ({batch}, {k}) for "
                f"{k} classes",
            )

    def _backward_and_step(self, loss: torch.Tensor) -> None:
        opt = self._optimizer
        assert opt is not None
        clip = self.config.grad_clip
        if self._scaler is not None:
            self._scaler.scale(loss).backward()
            if clip is not None:
                self._scaler.unscale_(opt)
                nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            self._scaler.step(opt)
            self._scaler.update()
        else:
            loss.backward()
            if clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            opt.step()

    def _flush(self, lr: float, start: float) -> None:
        """Move pending losses to the host (one sync) and stop on a non-finite one."""
        if not self._pending:
            return
        values = torch.stack(self._pending).float().cpu().tolist()
        first = self.steps - len(values)
        self._pending.clear()
        self.losses.extend(values)
        for i, v in enumerate(values):
            if not math.isfinite(v):
                raise _Failure(
                    "diverged",
                    f"loss became {v} at step {first + i + 1} (lr {lr:g}); lower the learning "
                    "rate or enable grad_clip",
                )
        if self.progress is not None:
            self.progress(
                Progress(
                    self.steps,
                    self.examples,
                    self.epochs,
                    math.fsum(values) / len(values),
                    lr,
                    self.seconds + time.perf_counter() - start,
                )
            )

    def _pending_check_on_exit(self) -> None:
        # Losses of steps done before an exception still count and are still checked.
        if self._pending and self._failure is None:
            try:
                self._flush(float("nan"), time.perf_counter())
            except _Failure as f:
                self._failure = f
            except Exception:
                self._pending.clear()

    def _timed_eval(self) -> float:
        t0 = time.perf_counter()
        acc = self.evaluate()
        self.eval_seconds += time.perf_counter() - t0
        return acc

    def _release(self) -> None:
        """Free what a failed run holds (gradients, optimizer state, CUDA cache)."""
        if self._optimizer is not None:
            self._optimizer.zero_grad(set_to_none=True)
        self._optimizer = None
        self._stream = None
        self._pending.clear()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


def train_model(
    model: nn.Module,
    data: DataSplits | ImageSet,
    budget: str | Budget | None = "mature",
    config: str | TrainConfig | None = None,
    *,
    device: str | torch.device | None = "auto",
    seed: int = 0,
    grad_clip: float | None = None,
    amp: AmpMode | bool | None = None,
    channels_last: bool | str | None = None,
    compile: bool | None = None,
    progress: Callable[[Progress], None] | None = None,
    eval_every: str | Budget | None = None,
    eval_at_end: bool = True,
    raise_on_failure: bool = False,
    check_every: int = 20,
    **overrides: Any,
) -> TrainResult:
    """Train ``model`` for ``budget`` ("2ep", "0.2ep", "500steps", "20000ex", "mature").

    A one-shot :class:`Trainer`; see it for the arguments. Mature training is the same call
    with ``budget="mature"`` (the preset's full length and schedule).
    """
    trainer = Trainer(
        model,
        data,
        config,
        device=device,
        seed=seed,
        grad_clip=grad_clip,
        amp=amp,
        channels_last=channels_last,
        compile=compile,
        progress=progress,
        eval_every=eval_every,
        eval_at_end=eval_at_end,
        check_every=check_every,
        **overrides,
    )
    return trainer.train_until(budget, raise_on_failure=raise_on_failure)


__all__ = [
    "EvalPoint",
    "Progress",
    "TrainResult",
    "Trainer",
    "examples_for_steps",
    "resolve_amp",
    "split_logits",
    "train_model",
    "training_loss",
]
