"""One factory from any spec to a network, plus parameter and FLOP counts."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from tgsage.errors import SpecError
from tgsage.spaces.cell_space import CellNet, CellSpec
from tgsage.spaces.layer_space import LayerNet, LayerSpec
from tgsage.spaces.nb201 import NB201Net, NB201Spec
from tgsage.spaces.pooling import native_pooling
from tgsage.spaces.specs import ArchSpec, spec_from_dict, spec_from_json

BUILDERS: dict[type[ArchSpec], Callable[..., nn.Module]] = {
    LayerSpec: LayerNet,
    CellSpec: CellNet,
    NB201Spec: NB201Net,
}


def build_model(
    spec: ArchSpec | dict | str,
    num_classes: int = 10,
    input_shape: Sequence[int] = (3, 32, 32),
    width_mult: float = 1.0,
    device: torch.device | str | None = None,
    *,
    auxiliary: bool = False,
) -> nn.Module:
    """Build ``spec`` (a spec, its dict or its JSON) as a ``FeatureNet`` returning logits.

    ``width_mult`` scales every channel count (``round(c * width_mult)``, at least 1; the cell
    space's first-stage ``F`` at least 2), so the same spec runs small on a CPU and at paper
    size on a GPU. ``input_shape`` is ``(C, H, W)``; the networks accept any ``H, W >= 1``, the
    shape fixes the input channels (and is what FLOPs are counted for).
    ``auxiliary=True`` adds the auxiliary head of final training (cell space only; its kernel
    is sized for ``input_shape``).
    """
    if isinstance(spec, str | bytes):
        spec = spec_from_json(spec)
    elif isinstance(spec, dict):
        spec = spec_from_dict(spec)
    if type(spec) not in BUILDERS:
        raise SpecError(f"spec: cannot build a {type(spec).__name__}")
    if len(input_shape) != 3 or any(type(s) is not int or s < 1 for s in input_shape):
        raise SpecError(f"input_shape: {tuple(input_shape)!r} is not (C, H, W) of positive ints")
    if type(num_classes) is not int or num_classes < 1:
        raise SpecError(f"num_classes: {num_classes!r} is not a positive integer")
    if not width_mult > 0:
        raise SpecError(f"width_mult: {width_mult!r} must be > 0")
    if auxiliary and not isinstance(spec, CellSpec):
        raise SpecError(
            f"auxiliary: only cell-space networks have an auxiliary head, not {spec.kind!r} "
            "specs; train without it"
        )
    extra = {"auxiliary": True, "image_size": tuple(input_shape[1:])} if auxiliary else {}
    model = BUILDERS[type(spec)](spec, num_classes, input_shape[0], width_mult, **extra)
    model.input_shape = tuple(input_shape)
    if device is not None:
        dev = (
            torch.device("cuda" if torch.cuda.is_available() else "cpu")
            if device == "auto"
            else device
        )
        model = model.to(dev)
    return model


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (BN running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_flops(model: nn.Module, input_shape: Sequence[int] | None = None) -> int:
    """Multiply-adds of convolutions and matrix products for one image of ``input_shape``.

    Counted with ``torch.utils.flop_counter.FlopCounterMode`` on a real forward pass (batch 1,
    eval mode, no grad) and halved (it counts a multiply-add as 2 FLOPs). Batch norm, pooling,
    activations and additions are not counted, as in the NAS papers' "mult-adds".
    """
    shape = tuple(input_shape or getattr(model, "input_shape", (3, 32, 32)))
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), native_pooling(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, *shape, device=device))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops()) // 2
