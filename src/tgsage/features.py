"""The one way every network in tgsage exposes intermediate representations.

Candidates built from specs, the teacher ResNet and wrapped user models all implement
:class:`FeatureNet`: a forward pass that returns the logits *and* an ordered mapping from stable
layer names to activations, so RDMs of every layer come from the same single pass (like timm's
``forward_intermediates``).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class FeatureNet(Protocol):
    """A network that returns its logits and its named intermediate outputs in one pass."""

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Stable names of the exposed layers, in forward order."""
        ...

    def forward_with_features(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Return ``(logits, {name: activation})`` with keys in ``feature_names`` order."""
        ...


class FeatureModule(torch.nn.Module):
    """Base of tgsage's own networks: subclasses set ``_names`` (their exposed layers, in order)
    and implement ``forward_with_features``; ``forward`` returns the logits of that same pass."""

    _names: tuple[str, ...] = ()

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self._names

    def forward_with_features(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_features(x)[0]


class HookedFeatures(torch.nn.Module):
    """Any ``nn.Module`` plus named submodules, exposed as a :class:`FeatureNet` via hooks.

    Lets a torchvision/timm/user model serve as a teacher or candidate: the outputs of the named
    layers (``dict(model.named_modules())`` names) are captured during the ordinary forward
    pass. Tuple outputs keep their first element.
    """

    def __init__(self, model: torch.nn.Module, layers: list[str] | tuple[str, ...]) -> None:
        super().__init__()
        from tgsage.errors import InputError

        modules = dict(model.named_modules())
        missing = [name for name in layers if name not in modules]
        if missing:
            sample = [n for n in modules if n][:12]
            raise InputError(
                f"layers {missing} are not submodules of {type(model).__name__}; "
                f"available names include {sample}"
            )
        if not layers:
            raise InputError("name at least one layer to expose")
        self.model = model
        self._names = tuple(layers)
        self._captured: dict[str, torch.Tensor] = {}
        for name in self._names:
            modules[name].register_forward_hook(self._hook(name))

    def _hook(self, name: str):  # a torch forward hook closure
        def hook(_module: torch.nn.Module, _inputs: object, output: object) -> None:
            if isinstance(output, (tuple, list)):
                output = output[0]
            self._captured[name] = output  # type: ignore[assignment]

        return hook

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self._names

    def forward_with_features(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        self._captured = {}
        logits = self.model(x)
        feats = {name: self._captured[name] for name in self._names if name in self._captured}
        if len(feats) != len(self._names):
            from tgsage.errors import InputError

            silent = [n for n in self._names if n not in feats]
            raise InputError(f"layers {silent} did not run in the forward pass")
        self._captured = {}
        return logits, feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def as_feature_net(
    model: torch.nn.Module, layers: list[str] | tuple[str, ...] | None = None
) -> torch.nn.Module:
    """``model`` itself when it is a FeatureNet (and no layers are named), else hooked."""
    if layers is None:
        if isinstance(model, FeatureNet):
            return model
        from tgsage.errors import InputError

        raise InputError(
            f"{type(model).__name__} does not expose features; name the layers to use, "
            "e.g. layers=['layer1', 'layer2', 'layer3']"
        )
    return HookedFeatures(model, layers)
