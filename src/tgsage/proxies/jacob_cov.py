"""jacob_cov (Mellor et al. 2020, arXiv:2006.04647v1; Abdelfattah et al. 2021).

``J`` is the gradient of the summed outputs with respect to the input batch, one flattened
row per image. Networks whose input-output Jacobians are less correlated across images tell
the images apart better. Score ``-sum(log(v + k) + 1 / (v + k))`` over the eigenvalues ``v``
of ``corrcoef(J)``, ``k = 1e-5``; higher is better (largest when the images' Jacobians are
uncorrelated). Train mode (BN on batch statistics) as in the reference code; float64 for the
correlation and eigenvalues.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from tgsage.proxies.base import finite_or_nan, register_proxy
from tgsage.proxies.onepass import declare_needs, shared_train_pass

JACOB_COV_K = 1e-5


def input_jacobian(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``d sum(outputs) / d images``, flattened to one row per image (float64)."""
    result = shared_train_pass(model, images, None, {"jacobian"})
    assert result.jacobian is not None
    return result.jacobian


def jacob_cov_score(jacobian: torch.Tensor, k: float = JACOB_COV_K) -> float:
    """The eigenvalue score of ``corrcoef(jacobian)``; NaN when a row is constant (its
    correlation is undefined) or anything is non-finite."""
    if not bool(torch.isfinite(jacobian).all()):
        return math.nan
    corr = torch.corrcoef(jacobian)
    if not bool(torch.isfinite(corr).all()):
        return math.nan
    v = torch.linalg.eigvalsh(corr)
    return finite_or_nan(float(-(torch.log(v + k) + 1.0 / (v + k)).sum()))


declare_needs("jacob_cov", {"jacobian"})


@register_proxy("jacob_cov", False, "-sum(log(v+k) + 1/(v+k)), v = eig corrcoef(input Jacobian)")
def jacob_cov(model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None) -> float:
    """Needs at least 2 images; NaN when the correlation is undefined (see jacob_cov_score)."""
    return jacob_cov_score(input_jacobian(model, images))
