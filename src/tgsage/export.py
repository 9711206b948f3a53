"""Trained networks as files other tools load: safetensors weights with the spec, and ONNX.

A model folder holds ``model.safetensors`` (the state dict; no pickle, memory-mappable) whose
metadata carries the *model card* — the spec and every argument :func:`tgsage.spaces.build_model`
needs — so :func:`load_model` rebuilds the network in one call; ``model.json`` is the same card
for people and other tools to read; ``model.onnx`` (optional, ``tgsage[onnx]``) is the network
in evaluation mode with a dynamic batch dimension: input ``images`` (float32, N x C x H x W,
preprocessed as the card's ``normalize`` says, by default per-image standardisation), output
``logits``.

The card also records the network's *teacher layers*: the last exposed layer at each spatial
resolution (for a cell network the end of each stage, as the paper's ResNet teacher exposes the
end of each stack), which is what ``tgsage teacher build --source export`` uses by default, so a
network found and trained by one search can guide the next (iterative bootstrapping).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tgsage import __version__
from tgsage.errors import ConfigError, DataError
from tgsage.spaces import build_model
from tgsage.spaces.specs import ArchSpec, spec_from_dict, spec_from_json

FORMAT = "tgsage-model/1"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "model.json"
ONNX_FILE = "model.onnx"
#: Tolerance the ONNX parity check uses: ``|onnx - torch| <= ATOL + RTOL * |torch|``.
ONNX_RTOL, ONNX_ATOL = 1e-4, 1e-4


@dataclass(frozen=True)
class ModelCard:
    """What a saved network is: its spec and build arguments, preprocessing, results, origin."""

    spec: dict[str, Any]
    num_classes: int
    input_shape: tuple[int, int, int]
    width_mult: float = 1.0
    auxiliary: bool = False
    normalize: str = "per_image"
    teacher_layers: tuple[str, ...] = ()
    metrics: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    format: str = FORMAT
    tgsage_version: str = __version__

    @property
    def arch(self) -> ArchSpec:
        return spec_from_dict(self.spec)

    def build(self) -> nn.Module:
        """A freshly initialised network of this card's architecture (weights not loaded)."""
        return build_model(
            self.arch,
            num_classes=self.num_classes,
            input_shape=self.input_shape,
            width_mult=self.width_mult,
            auxiliary=self.auxiliary,
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, allow_nan=False)

    @classmethod
    def from_json(cls, text: str, source: str = "model card") -> ModelCard:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{source}: not a tgsage model card ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            got = data.get("format") if isinstance(data, dict) else None
            raise DataError(
                f"{source}: unknown model format {got!r}, expected {FORMAT!r} "
                "(export the network with 'tgsage export' or tgsage.export.save_model)"
            )
        known = set(cls.__dataclass_fields__)
        kw = {k: v for k, v in data.items() if k in known}
        kw["input_shape"] = tuple(kw["input_shape"])
        kw["teacher_layers"] = tuple(kw.get("teacher_layers", ()))
        return cls(**kw)


def teacher_layers(model: nn.Module, input_shape: Sequence[int]) -> tuple[str, ...]:
    """The last exposed layer at each spatial resolution, in forward order (one dry forward
    pass of a zero image in eval mode; the model is left as it was)."""
    names = getattr(model, "feature_names", None)
    if not names:
        return ()
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            _, feats = model.forward_with_features(torch.zeros(1, *input_shape, device=device))
    finally:
        model.train(was_training)
    ends: list[str] = []
    sizes = [tuple(f.shape[2:]) for f in feats.values()]
    keys = list(feats)
    for i, (name, size) in enumerate(zip(keys, sizes, strict=True)):
        if i + 1 == len(keys) or sizes[i + 1] != size:
            ends.append(name)
    return tuple(ends)


def _spec_dict(spec: ArchSpec | Mapping[str, Any] | str) -> dict[str, Any]:
    if isinstance(spec, str):
        spec = spec_from_json(spec)
    elif isinstance(spec, Mapping):
        spec = spec_from_dict(spec)
    return json.loads(spec.to_json())


def save_model(
    model: nn.Module,
    out_dir: str | Path,
    spec: ArchSpec | Mapping[str, Any] | str | None = None,
    *,
    num_classes: int | None = None,
    input_shape: Sequence[int] | None = None,
    width_mult: float = 1.0,
    normalize: str = "per_image",
    metrics: Mapping[str, Any] | None = None,
    provenance: Mapping[str, Any] | None = None,
    onnx: bool = False,
) -> Path:
    """Write ``model.safetensors`` + ``model.json`` (and ``model.onnx`` if asked) into
    ``out_dir``; returns the folder. ``spec`` defaults to ``model.spec`` (networks built from
    specs carry it); ``num_classes`` and ``input_shape`` default to the model's own."""
    from safetensors.torch import save_file

    spec = spec if spec is not None else getattr(model, "spec", None)
    if spec is None:
        raise ConfigError(
            f"cannot export a {type(model).__name__} without its spec: only networks built from "
            "a tgsage spec can be rebuilt from a file; pass spec="
        )
    shape = tuple(input_shape or getattr(model, "input_shape", ()) or ())
    if len(shape) != 3:
        raise ConfigError("input_shape: give the (C, H, W) the network was trained on")
    classifier = getattr(model, "classifier", None)
    classes = num_classes if num_classes is not None else getattr(classifier, "out_features", None)
    if classes is None:
        raise ConfigError("num_classes: give the number of classes the network predicts")
    card = ModelCard(
        spec=_spec_dict(spec),
        num_classes=int(classes),
        input_shape=(int(shape[0]), int(shape[1]), int(shape[2])),
        width_mult=float(width_mult),
        auxiliary=getattr(model, "auxiliary_head", None) is not None,
        normalize=normalize,
        teacher_layers=teacher_layers(model, shape),
        metrics=dict(metrics or {}),
        provenance=dict(provenance or {}),
    )
    rebuilt = card.build()  # refuse a card that does not describe these weights
    want, got = rebuilt.state_dict(), model.state_dict()
    if want.keys() != got.keys() or any(want[k].shape != got[k].shape for k in want):
        raise ConfigError(
            "the model's weights do not match its spec and build arguments (width_mult, "
            "input_shape, num_classes); pass the values the network was built with"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in got.items()}
    tmp = out / (WEIGHTS_FILE + ".tmp")
    save_file(tensors, str(tmp), metadata={"format": FORMAT, "card": card.to_json()})
    os.replace(tmp, out / WEIGHTS_FILE)
    (out / CARD_FILE).write_text(card.to_json() + "\n")
    if onnx:
        export_onnx(model, out / ONNX_FILE, card.input_shape)
    return out


def _weights_path(path: str | Path) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / WEIGHTS_FILE
    if not p.exists():
        raise DataError(
            f"{p} not found: give a model folder written by 'tgsage export' / 'tgsage train' "
            f"(it holds {WEIGHTS_FILE}) or the .safetensors file itself"
        )
    return p


def load_card(path: str | Path) -> ModelCard:
    """The model card stored in a model folder's (or .safetensors file's) metadata."""
    from safetensors import safe_open

    p = _weights_path(path)
    try:
        with safe_open(str(p), framework="pt") as fh:
            meta = fh.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise DataError(f"{p} is not a safetensors file ({exc})") from None
    if "card" not in meta:
        raise DataError(f"{p} carries no tgsage model card; export it with 'tgsage export'")
    return ModelCard.from_json(meta["card"], str(p))


def load_model(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a saved network with its trained weights, in eval mode, in one call."""
    from safetensors.torch import load_file

    p = _weights_path(path)
    card = load_card(p)
    model = card.build()
    state = load_file(str(p), device="cpu")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise DataError(f"{p}: weights do not fit the card's architecture ({exc})") from None
    model.card = card  # type: ignore[assignment]
    return model.to(device).eval()


def export_onnx(
    model: nn.Module,
    path: str | Path,
    input_shape: Sequence[int],
    *,
    opset: int | None = None,
) -> Path:
    """Write ``model`` (in eval mode) as ONNX with a dynamic batch dimension.

    Uses torch's ``torch.export``-based exporter (needs the ``onnx`` and ``onnxscript``
    packages: ``pip install 'tgsage[onnx]'``). The cell and NAS-Bench-201 spaces' fast average
    pool is exported as the standard ONNX ``AveragePool`` (``count_include_pad=0``)."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise ConfigError(
            "ONNX export needs the onnx and onnxscript packages: pip install 'tgsage[onnx]'"
        ) from None
    import warnings

    from tgsage.spaces.pooling import native_pooling

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    x = torch.zeros(2, *input_shape, device=device)
    kwargs: dict[str, Any] = {} if opset is None else {"opset_version": opset}
    # the exporter prints its stages and warns (or logs) about its own internals: keep it quiet
    quiet_log = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = quiet_log.level
    quiet_log.setLevel(logging.ERROR)
    try:
        with native_pooling(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model,
                (x,),
                dynamo=True,
                input_names=["images"],
                output_names=["logits"],
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                verbose=False,
                **kwargs,
            )
    finally:
        quiet_log.setLevel(level)
        model.train(was_training)
    assert program is not None
    tmp = path.with_name(path.name + ".tmp")
    program.save(str(tmp))
    os.replace(tmp, path)
    return path


def check_onnx(path: str | Path, model: nn.Module, images: torch.Tensor) -> tuple[float, bool]:
    """Run the ONNX file with onnxruntime and the model in eval mode on ``images``; returns the
    largest absolute difference of the logits and whether all of them lie within
    ``ONNX_ATOL + ONNX_RTOL * |torch|``."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ConfigError(
            "checking an ONNX file needs onnxruntime: pip install 'tgsage[onnx]'"
        ) from None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = images.detach().to("cpu", torch.float32)
    got = torch.from_numpy(session.run(["logits"], {"images": x.numpy()})[0])
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            want = model(x.to(device)).float().cpu()
    finally:
        model.train(was_training)
    diff = (got - want).abs()
    ok = bool((diff <= ONNX_ATOL + ONNX_RTOL * want.abs()).all())
    return float(diff.max()) if diff.numel() else 0.0, ok


__all__ = [
    "CARD_FILE",
    "FORMAT",
    "ONNX_ATOL",
    "ONNX_FILE",
    "ONNX_RTOL",
    "WEIGHTS_FILE",
    "ModelCard",
    "check_onnx",
    "export_onnx",
    "load_card",
    "load_model",
    "save_model",
    "teacher_layers",
]
