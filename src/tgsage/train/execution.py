"""How a training step runs: arithmetic precision, memory layout and compilation.

Three switches, each a :class:`~tgsage.train.presets.TrainConfig` field (so a preset, a search
config's ``train_options`` or ``--train-option`` can turn it off) and each recorded, resolved,
in every :class:`~tgsage.train.loop.TrainResult`:

``amp``            mixed precision by autocast with float32 master weights: ``"auto"`` is bf16
                   on a GPU that supports it (else fp16 with a gradient scaler) and bf16 on a
                   CPU with native bf16 arithmetic (AVX512-BF16 or AMX), off elsewhere;
                   ``"bf16"``, ``"fp16"`` or ``"off"`` force it.
``channels_last``  NHWC memory layout for the network and its batches; ``"auto"`` = on for CUDA
                   and CPU (both run convolutions faster in it), off elsewhere.
``compile``        ``torch.compile`` of the training forward; off by default: on this
                   project's CPU it made a NAS-Bench-201 cell's step only a few percent faster
                   on top of bf16 and channels-last (issue 15: 301 -> 312 examples/s) for a
                   compile of every new architecture, which a premature budget does not repay
                   (``benchmarks/bench_train.py --compile`` measures both). It suits long runs
                   of one network (final training); in a process that trains
                   many architectures, torch's recompile limit leaves later ones eager.

Only training runs in reduced precision: validation accuracy and probe-set activations are
computed in float32 from the float32 weights, so P and TG read the network the same way
whichever path trained it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from tgsage.errors import ConfigError

AmpMode = Literal["auto", "bf16", "fp16", "off"]
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes in bf16 natively (AVX512-BF16 or AMX tiles). Elsewhere torch
    emulates bf16, which is slower than float32, so ``amp="auto"`` leaves it off."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    for name in checks:
        probe = getattr(torch.cpu, name, None)
        try:
            if probe is not None and probe():
                return True
        except RuntimeError:  # pragma: no cover - a build without the probe
            continue
    return False


def resolve_amp(amp: AmpMode | bool | None, device: torch.device) -> str | None:
    """The autocast dtype name ("bf16", "fp16") an ``amp`` setting means on ``device``, or None.

    ``"auto"`` (or True): bf16 on GPUs that support it, else fp16 on GPU; bf16 on a CPU with
    native bf16 (:func:`cpu_has_native_bf16`); off on anything else. None/False/"off": off.
    """
    if amp in (None, False, "off"):
        return None
    if amp in ("auto", True):
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        if device.type == "cpu" and cpu_has_native_bf16():
            return "bf16"
        return None
    if amp in ("bf16", "fp16"):
        return str(amp)
    raise ConfigError(f"amp must be 'auto', 'bf16', 'fp16' or 'off', got {amp!r}")


def resolve_channels_last(channels_last: bool | str, device: torch.device) -> bool:
    """``"auto"``: channels-last on CUDA and CPU, off on other devices."""
    if channels_last == "auto":
        return device.type in ("cuda", "cpu")
    if isinstance(channels_last, bool):
        return channels_last
    raise ConfigError(f"channels_last must be True, False or 'auto', got {channels_last!r}")


@dataclass(frozen=True)
class Execution:
    """The resolved switches of one run on one device."""

    device: torch.device
    amp: str | None
    channels_last: bool
    compile: bool

    @classmethod
    def resolve(
        cls, device: torch.device, amp: Any, channels_last: Any, compile: bool
    ) -> Execution:
        return cls(
            device,
            resolve_amp(amp, device),
            resolve_channels_last(channels_last, device),
            bool(compile),
        )

    @property
    def dtype(self) -> torch.dtype | None:
        """The autocast dtype, or None for float32."""
        return _DTYPES.get(self.amp or "")

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.preserve_format

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The autocast context of a training forward (a no-op in float32)."""
        dtype = self.dtype
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None)

    def training_forward(self, model: nn.Module) -> Callable[..., Any]:
        """What a training step calls: the model, or its ``torch.compile`` d form (compiled
        lazily at the first call; the model itself stays eager for evaluation)."""
        return torch.compile(model) if self.compile else model

    def describe(self) -> str:
        """One line for logs: "bf16 autocast, channels-last" or "float32, NCHW"."""
        parts = [f"{self.amp} autocast" if self.amp else "float32"]
        parts.append("channels-last" if self.channels_last else "NCHW")
        if self.compile:
            parts.append("torch.compile")
        return ", ".join(parts)


__all__ = [
    "AmpMode",
    "Execution",
    "cpu_has_native_bf16",
    "resolve_amp",
    "resolve_channels_last",
]
