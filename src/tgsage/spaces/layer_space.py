"""The layer space (paper 4.2, after Zoph & Le 2017): a searched stack of conv layers.

Each layer chooses filters {32, 64, 128}, kernel height and width {1, 3, 5, 7} independently,
stride {1, 2}, activation {identity, relu} and normalisation {none, batchnorm}; the number of
layers (1..max_layers, 10 or 20 in the paper) is searched too. A layer is
``conv -> [batch norm] -> [ReLU]`` with "same" padding (``k // 2``), so a stride-2 layer maps
``H`` to ``ceil(H / 2)``.

Connections. Layer 0 reads the image. Layer ``i > 0`` reads any set of {image, layer 0, ...,
layer i-1}, decided by one bool choice per source ("layer3/in/image", "layer3/in/layer1"), and
concatenates them along channels. If no source is chosen the layer reads the image (Zoph & Le's
rule); since that equals choosing only the image, a mutation that merely switches the image's
single connection off is skipped as a no-op.

Spatial mismatch rule. Inputs of one layer can have different resolutions (strides). Every
input larger than the smallest one (per axis) is average-pooled down to it with
``adaptive_avg_pool2d``; for the usual power-of-two ratios that is exactly ``avg_pool2d`` with
kernel = stride = ratio. Pooling is parameter-free and cheap, and it never upsamples.

Head. Every layer whose output no later layer consumes (always including the last) is
global-average-pooled; the pooled vectors are concatenated and fed to one linear layer. Pooling
before concatenating means the head needs no spatial rule.

Exposed features: "layer0" .. "layer{n-1}", each layer's output (after its activation).

Spec JSON: ``{"kind": "layer", "layers": [{"filters", "kernel_h", "kernel_w", "stride",
"activation", "norm", "inputs"}, ...]}`` with ``inputs`` a sorted list where -1 is the image
and ``j >= 0`` is layer ``j``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from tgsage.errors import SpecError
from tgsage.features import FeatureModule
from tgsage.spaces.choices import (
    ControllerStep,
    Head,
    Link,
    SearchSpace,
    StepToken,
    Suggester,
)
from tgsage.spaces.specs import (
    ArchSpec,
    check_choice,
    check_int,
    check_keys,
    check_list,
    register_spec,
)

FILTERS = (32, 64, 128)
KERNELS = (1, 3, 5, 7)
STRIDES = (1, 2)
ACTIVATIONS = ("identity", "relu")
NORMS = ("none", "batchnorm")
IMAGE = -1

LAYER_HEADS: tuple[tuple[str, tuple[Any, ...]], ...] = (
    ("filters", FILTERS),
    ("kernel_h", KERNELS),
    ("kernel_w", KERNELS),
    ("stride", STRIDES),
    ("activation", ACTIVATIONS),
    ("norm", NORMS),
)
_LAYER_FIELDS = {name for name, _ in LAYER_HEADS} | {"inputs"}


def source_name(src: int) -> str:
    return "image" if src == IMAGE else f"layer{src}"


@dataclass(frozen=True)
class ConvLayer:
    """One searched conv layer; ``inputs`` is normalised to a sorted, duplicate-free tuple."""

    filters: int = 32
    kernel_h: int = 3
    kernel_w: int = 3
    stride: int = 1
    activation: str = "relu"
    norm: str = "batchnorm"
    inputs: tuple[int, ...] = (IMAGE,)

    def __post_init__(self) -> None:
        srcs = self.inputs
        if isinstance(srcs, list | tuple | set | frozenset) and all(type(s) is int for s in srcs):
            object.__setattr__(self, "inputs", tuple(sorted(set(srcs))))

    def to_dict(self) -> dict[str, Any]:
        return {
            "filters": self.filters,
            "kernel_h": self.kernel_h,
            "kernel_w": self.kernel_w,
            "stride": self.stride,
            "activation": self.activation,
            "norm": self.norm,
            "inputs": list(self.inputs),
        }

    def check(self, where: str, index: int) -> None:
        for name, options in LAYER_HEADS:
            check_choice(f"{where}.{name}", getattr(self, name), options)
        srcs = check_list(f"{where}.inputs", self.inputs)
        if not srcs:
            raise SpecError(f"{where}.inputs: empty (a layer needs the image or an earlier layer)")
        for s in srcs:
            if type(s) is not int or not IMAGE <= s < index:
                raise SpecError(
                    f"{where}.inputs: {s!r} is not -1 (the image) or an earlier layer "
                    f"index in [0, {index})"
                )


@register_spec
@dataclass(frozen=True)
class LayerSpec(ArchSpec):
    """A layer-space architecture: its layers in forward order."""

    kind: ClassVar[str] = "layer"
    layers: tuple[ConvLayer, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        layers = check_list("layers", self.layers)
        if not layers:
            raise SpecError("layers: empty (a network needs at least one layer)")
        for i, layer in enumerate(layers):
            if not isinstance(layer, ConvLayer):
                raise SpecError(f"layers[{i}]: expected a ConvLayer, got {type(layer).__name__}")
            layer.check(f"layers[{i}]", i)
        object.__setattr__(self, "layers", tuple(layers))

    def to_dict(self) -> dict[str, Any]:
        return {"layers": [layer.to_dict() for layer in self.layers]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LayerSpec:
        check_keys("spec", data, {"layers"})
        layers = []
        for i, item in enumerate(check_list("layers", data["layers"])):
            check_keys(f"layers[{i}]", item, _LAYER_FIELDS)
            inputs = check_list(f"layers[{i}].inputs", item["inputs"])
            layers.append(ConvLayer(**{**item, "inputs": tuple(inputs)}))
        return cls(tuple(layers))

    @property
    def consumed(self) -> frozenset[int]:
        """Layers whose output some later layer reads."""
        return frozenset(s for layer in self.layers for s in layer.inputs if s != IMAGE)

    @property
    def head_inputs(self) -> tuple[int, ...]:
        """Layers that feed the classifier head: those no layer consumes."""
        used = self.consumed
        return tuple(i for i in range(len(self.layers)) if i not in used)


class LayerSpace(SearchSpace):
    """Up to ``max_layers`` conv layers with searched hyper-parameters and connections."""

    name: ClassVar[str] = "layer"
    spec_type: ClassVar[type[ArchSpec]] = LayerSpec

    def __init__(self, max_layers: int = 10) -> None:
        self.max_layers = check_int("max_layers", max_layers, 1)

    def config(self) -> dict[str, Any]:
        return {"space": self.name, "max_layers": self.max_layers}

    def __repr__(self) -> str:
        return f"LayerSpace(max_layers={self.max_layers})"

    def sample(self, suggest: Suggester) -> LayerSpec:
        n = suggest.suggest_categorical("num_layers", list(range(1, self.max_layers + 1)))
        layers = []
        for i in range(n):
            kw = {h: suggest.suggest_categorical(f"layer{i}/{h}", list(o)) for h, o in LAYER_HEADS}
            srcs = [IMAGE] if i == 0 else []
            for src in range(IMAGE, i) if i > 0 else ():
                if suggest.suggest_categorical(f"layer{i}/in/{source_name(src)}", [False, True]):
                    srcs.append(src)
            layers.append(ConvLayer(**kw, inputs=tuple(srcs or [IMAGE])))
        return LayerSpec(tuple(layers))

    def spec_to_params(self, spec: ArchSpec) -> dict[str, Any]:
        if not isinstance(spec, LayerSpec):
            raise SpecError(f"kind: {spec.kind!r} spec given to the 'layer' space")
        n = len(spec.layers)
        if n > self.max_layers:
            raise SpecError(f"layers: {n} layers exceed this space's max_layers={self.max_layers}")
        params: dict[str, Any] = {"num_layers": n}
        for i, layer in enumerate(spec.layers):
            for h, _ in LAYER_HEADS:
                params[f"layer{i}/{h}"] = getattr(layer, h)
            if i > 0:
                for src in range(IMAGE, i):
                    params[f"layer{i}/in/{source_name(src)}"] = src in layer.inputs
        return params

    def controller_step(self, tokens: Sequence[StepToken]) -> ControllerStep | None:
        """Step 0: number of layers; step ``i + 1``: layer ``i``'s heads and its links.

        Link sources are the image (represented by step 0's hidden state) and layers ``j < i``
        (step ``j + 1``). Layer 0 has no links: it always reads the image.
        """
        if not tokens:
            options = tuple(range(1, self.max_layers + 1))
            return ControllerStep("num_layers", (Head("num_layers", "num_layers", options),))
        n = self.max_layers if not tokens[0].choices else tokens[0].choices[0] + 1
        i = len(tokens) - 1
        if i >= n:
            return None
        heads = tuple(Head(f"layer{i}/{h}", h, o) for h, o in LAYER_HEADS)
        links = tuple(
            Link(f"layer{i}/in/{source_name(s)}", source_name(s), s + 1)
            for s in (range(IMAGE, i) if i > 0 else ())
        )
        return ControllerStep(f"layer{i}", heads, links)


def scaled(channels: int, width_mult: float) -> int:
    return max(1, round(channels * width_mult))


class LayerNet(FeatureModule):
    """The network of a :class:`LayerSpec`; implements ``tgsage.features.FeatureNet``."""

    def __init__(
        self, spec: LayerSpec, num_classes: int, in_channels: int = 3, width_mult: float = 1.0
    ) -> None:
        super().__init__()
        self.spec = spec
        self.sources = [layer.inputs for layer in spec.layers]
        channels: list[int] = []
        self.layers = nn.ModuleList()
        for layer in spec.layers:
            cin = sum(in_channels if s == IMAGE else channels[s] for s in layer.inputs)
            cout = scaled(layer.filters, width_mult)
            bn = layer.norm == "batchnorm"
            conv = nn.Conv2d(
                cin,
                cout,
                (layer.kernel_h, layer.kernel_w),
                stride=layer.stride,
                padding=(layer.kernel_h // 2, layer.kernel_w // 2),
                bias=not bn,
            )
            mods: list[nn.Module] = [conv]
            if bn:
                mods.append(nn.BatchNorm2d(cout))
            if layer.activation == "relu":
                mods.append(nn.ReLU(inplace=False))
            self.layers.append(nn.Sequential(*mods))
            channels.append(cout)
        self.head_inputs = spec.head_inputs
        self.classifier = nn.Linear(sum(channels[i] for i in self.head_inputs), num_classes)
        self._names = tuple(f"layer{i}" for i in range(len(spec.layers)))

    @staticmethod
    def gather(tensors: list[torch.Tensor]) -> torch.Tensor:
        """Concatenate along channels after pooling each input down to the smallest size."""
        if len(tensors) == 1:
            return tensors[0]
        h = min(t.shape[-2] for t in tensors)
        w = min(t.shape[-1] for t in tensors)
        same = [t if t.shape[-2:] == (h, w) else F.adaptive_avg_pool2d(t, (h, w)) for t in tensors]
        return torch.cat(same, dim=1)

    def forward_with_features(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        outs: list[torch.Tensor] = []
        for layer, srcs in zip(self.layers, self.sources, strict=True):
            outs.append(layer(self.gather([x if s == IMAGE else outs[s] for s in srcs])))
        pooled = torch.cat([outs[i].mean(dim=(2, 3)) for i in self.head_inputs], dim=1)
        return self.classifier(pooled), dict(zip(self._names, outs, strict=True))
