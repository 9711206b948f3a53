"""Simulated neural recordings from a network's activations (tests and the demo).

Each simulated "region" reads one chosen layer: its sites are noisy random projections of the
layer's (standardised) features through a rectifying nonlinearity, shown ``n_repetitions``
times with Gaussian trial noise. ``noise`` is the trial-noise s.d. relative to each site's
across-stimulus s.d. of its noiseless rate, so a single-trial site reliability is about
1 / (1 + noise**2) and the R-repetition mean's about 1 / (1 + noise**2 / R).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tgsage.data.neural import Recording
from tgsage.errors import DataError


def _as_matrix(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().float().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 2:
        raise DataError(f"activations {name!r} must be (stimuli, features...), got {x.shape}")
    return x.reshape(len(x), -1)


def default_regions(layer_names: Sequence[str]) -> dict[str, str]:
    """V4 <- the middle layer, IT <- the last layer (one region if there is one layer)."""
    names = list(layer_names)
    if not names:
        raise DataError("no activations given to simulate a recording from")
    if len(names) == 1:
        return {"IT": names[0]}
    return {"V4": names[(len(names) - 1) // 2], "IT": names[-1]}


def simulate_recording(
    activations: Mapping[str, Any],
    regions: Mapping[str, str] | None = None,
    sites_per_region: int = 100,
    n_repetitions: int = 10,
    noise: float = 1.0,
    seed: int = 0,
    stimulus_ids: Sequence[str] | None = None,
    stimulus_meta: Mapping[str, Sequence[Any]] | None = None,
) -> Recording:
    """A Recording (R, S, N) whose regions are noisy rectified projections of chosen layers.

    ``activations`` maps layer name -> array or tensor (stimuli x features...); ``regions``
    maps region name -> layer name (default :func:`default_regions`). Deterministic from seed.
    """
    if not activations:
        raise DataError("no activations given to simulate a recording from")
    regions = dict(regions) if regions is not None else default_regions(list(activations))
    if n_repetitions < 1 or sites_per_region < 1 or noise < 0:
        raise DataError("need n_repetitions >= 1, sites_per_region >= 1 and noise >= 0")
    rng = np.random.default_rng(seed)
    n_stim = None
    rates, region_labels, site_ids = [], [], []
    for region, layer in regions.items():
        if layer not in activations:
            raise DataError(
                f"region {region!r} maps to layer {layer!r}, which is not among the "
                f"activations {list(activations)}"
            )
        x = _as_matrix(activations[layer], layer)
        if n_stim is None:
            n_stim = len(x)
        elif len(x) != n_stim:
            raise DataError(f"layer {layer!r} has {len(x)} stimuli, others have {n_stim}")
        std = x.std(axis=0)
        x = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
        w = rng.standard_normal((x.shape[1], sites_per_region)) / np.sqrt(x.shape[1])
        drive = x @ w
        drive = (drive - drive.mean(axis=0)) / np.maximum(drive.std(axis=0), 1e-12)
        threshold = rng.uniform(-1.0, 0.5, sites_per_region)
        gain = rng.uniform(5.0, 30.0, sites_per_region)  # spikes/s scale
        rate = gain * _softplus(4.0 * (drive - threshold)) / 4.0  # ReLU-ish, smooth at 0
        rates.append(rate)
        region_labels += [region] * sites_per_region
        site_ids += [f"{region}_{i:03d}" for i in range(sites_per_region)]
    rate = np.concatenate(rates, axis=1)
    sd = rate.std(axis=0)
    trial = noise * np.where(sd > 0, sd, 1.0) * rng.standard_normal((n_repetitions, *rate.shape))
    responses = (rate[None] + trial).astype(np.float32)
    ids = (
        np.array(list(stimulus_ids), dtype=str)
        if stimulus_ids is not None
        else np.array([str(i) for i in range(rate.shape[0])])
    )
    meta = {k: np.asarray(v) for k, v in (stimulus_meta or {}).items()}
    return Recording(responses, ids, np.array(region_labels), np.array(site_ids), meta)


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)
