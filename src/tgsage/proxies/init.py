"""Re-initialisation schemes some proxies' authors score networks under.

AZ-NAS's and VKDNW's code re-initialises every candidate before scoring it: conv and linear
weights from ``N(0, 2 / fan_in)`` (He et al. 2015, ``kaiming_normal_(mode="fan_in",
nonlinearity="relu")``), biases 0, BatchNorm / GroupNorm weights 1 and biases 0. VKDNW's
Fisher is taken in eval mode, where BN at initialisation is the identity, so the scale of the
weights decides how much signal reaches the logits; under PyTorch's default initialisation
(``std = 1 / sqrt(3 fan_in)``) it shrinks with depth. ``compute_proxies(..., init=...)`` scores
a re-initialised copy.
"""

from __future__ import annotations

from torch import nn

from tgsage.errors import InputError

INIT_SCHEMES = ("kaiming_normal",)


def reinitialize(model: nn.Module, scheme: str) -> nn.Module:
    """Re-initialise ``model`` in place with ``scheme`` (uses the torch RNG) and return it."""
    if scheme not in INIT_SCHEMES:
        raise InputError(f"unknown init {scheme!r}; choose from {list(INIT_SCHEMES)} or None")
    for m in model.modules():
        if isinstance(m, nn.modules.conv._ConvNd | nn.Linear):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm | nn.GroupNorm):
            if m.weight is not None:
                nn.init.ones_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model
