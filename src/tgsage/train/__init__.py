"""Premature and mature training with the paper's presets and cost accounting.

``train_model(model, splits, "2ep", "cifar_layer_space")`` trains for a budget and returns a
:class:`TrainResult` (steps, examples = the paper's cost unit, seconds, losses, status);
:class:`Trainer` continues a run to longer budgets; ``evaluate_accuracy`` scores a model;
``train_final(spec, splits, "cifar_final", out_dir)`` trains a found architecture with the paper's
final recipe (checkpointed, resumable) and saves it (:mod:`tgsage.export`).
"""

from tgsage.train.budget import Budget, examples_for_steps, steps_per_epoch
from tgsage.train.evaluation import evaluate_accuracy
from tgsage.train.final import (
    FINAL_PRESETS,
    FinalPreset,
    FinalResult,
    get_final_preset,
    list_final_presets,
    train_final,
)
from tgsage.train.loop import EvalPoint, Progress, Trainer, TrainResult, resolve_amp, train_model
from tgsage.train.presets import (
    OPTIMIZERS,
    PRESETS,
    SCHEDULES,
    TrainConfig,
    get_preset,
    list_presets,
    make_optimizer,
    parse_train_options,
)

__all__ = [
    "FINAL_PRESETS",
    "OPTIMIZERS",
    "PRESETS",
    "SCHEDULES",
    "Budget",
    "EvalPoint",
    "FinalPreset",
    "FinalResult",
    "Progress",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "evaluate_accuracy",
    "examples_for_steps",
    "get_final_preset",
    "get_preset",
    "list_final_presets",
    "list_presets",
    "make_optimizer",
    "parse_train_options",
    "resolve_amp",
    "steps_per_epoch",
    "train_final",
    "train_model",
]
