"""Zero-cost proxies: score an untrained network on one minibatch, in a fraction of one
training step, as a cheap predictor of its trained accuracy.

Proxies (registry :data:`PROXIES`, all "higher is better"):

- ``grad_norm``, ``snip``, ``synflow`` and the ``params`` / ``flops`` baselines: Abdelfattah,
  Mehrotra, Dudziak, Lane, "Zero-Cost Proxies for Lightweight NAS", ICLR 2021. ``snip`` is the
  saliency of Lee, Ajanthan, Torr, "SNIP: Single-shot Network Pruning based on Connection
  Sensitivity", ICLR 2019; ``synflow`` that of Tanaka, Kunin, Yamins, Ganguli, "Pruning neural
  networks without any data by iteratively conserving synaptic flow", NeurIPS 2020.
- ``naswot``: Mellor, Turner, Storkey, Crowley, "Neural Architecture Search without Training",
  ICML 2021 (the log-determinant of the ReLU-code kernel).
- ``jacob_cov``: the score of that paper's first version (arXiv:2006.04647v1), as evaluated by
  Abdelfattah et al.
- ``trainable_layers``: the number of layers with weights (the VKDNW paper ranks by it first).
- ``zico``: Li et al., "ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on
  Gradients", ICLR 2023.
- ``meco``, ``meco_opt``: Jiang, Wang, Bie, "MeCo: Zero-Shot NAS with One Data and Single
  Forward Pass via Minimum Eigenvalue of Correlation", NeurIPS 2023.
- ``az_expressivity``, ``az_progressivity``, ``az_trainability``: Lee, Ham, "AZ-NAS:
  Assembling Zero-Cost Proxies for Network Architecture Search", CVPR 2024 (its fourth
  component, complexity, is ``flops``; its log-rank aggregation ranks a population: the
  expression ``AGGREGATIONS["az_nas"]`` of the score vocabulary, ``tgsage.scores``).
- ``vkdnw``, ``vkdnw_single``: Tybl, Neumann, "Training-free Neural Architecture Search
  through Variance of Knowledge of Deep Network Weights", CVPR 2025 (its aggregation with
  other scores: ``AGGREGATIONS["vkdnw_agg"]``).

``compute_proxies(model_or_spec, images, labels)`` scores a network or spec with any subset;
``get_proxy(name)(model, images, labels)`` runs one proxy on prepared float images. Every
proxy leaves the model exactly as it found it (parameters, ``.grad``, train/eval modes,
BatchNorm statistics). The data-based proxies of one ``compute_proxies`` call share one
train-mode forward and its backward passes (``tgsage.proxies.onepass``); VKDNW runs its own
eval-mode pass with K - 1 backward passes (K classes).
"""

from __future__ import annotations

# Registration order is the order of compute_proxies' output.
# isort: off
from tgsage.proxies import cost, gradient, jacob_cov, naswot, synflow  # noqa: F401
from tgsage.proxies import depth, zico, meco, aznas, vkdnw  # noqa: F401

# isort: on
from tgsage.proxies.aggregations import AGGREGATIONS
from tgsage.proxies.base import (
    PROXIES,
    Proxy,
    get_proxy,
    list_proxies,
    preserved,
    register_proxy,
    scored_layers,
)
from tgsage.proxies.compute import compute_proxies
from tgsage.proxies.jacob_cov import input_jacobian, jacob_cov_score
from tgsage.proxies.naswot import RELU_TYPES, logdet_or_neg_inf, naswot_kernel
from tgsage.proxies.synflow import linearized_copy

__all__ = [
    "AGGREGATIONS",
    "PROXIES",
    "RELU_TYPES",
    "Proxy",
    "compute_proxies",
    "get_proxy",
    "input_jacobian",
    "jacob_cov_score",
    "linearized_copy",
    "list_proxies",
    "logdet_or_neg_inf",
    "naswot_kernel",
    "preserved",
    "register_proxy",
    "scored_layers",
]
