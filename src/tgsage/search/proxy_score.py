"""Zero-cost proxies in a search's score: ``P + alpha*TG + beta*rank(proxy)``, or a proxy alone.

A raw proxy (synflow spans dozens of orders of magnitude, NASWOT is a log-determinant) cannot
be added to an accuracy. ``rank(proxy)`` is therefore the proxy's percentile among a fixed
*reference sample* of random architectures of the space: a number in [0, 1] that means the
same for every candidate of the search, whenever and on whichever worker it is scored (a rank
among the candidates seen so far would drift as the search goes on, and each worker would see
a different history). The reference is drawn from the search seed, measured once, and cached
in the run folder (written atomically), so every worker of a search shares the same one.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tgsage.data.base import DataSplits
from tgsage.errors import InputError


@dataclass(frozen=True)
class ProxyReference:
    """Sorted proxy values of random architectures; ``percentile(v)`` is rank(proxy)."""

    proxy: str
    values: np.ndarray  # sorted, finite

    def percentile(self, value: float) -> float:
        """Fraction of the reference below ``value`` (ties count half); NaN stays NaN and
        -inf (a singular NASWOT kernel) is 0."""
        if value != value:  # NaN
            return float("nan")
        lo = np.searchsorted(self.values, value, side="left")
        hi = np.searchsorted(self.values, value, side="right")
        return float((lo + hi) / 2 / self.values.size)


def reference_path(run_dir: Path, proxy: str, n: int, seed: int) -> Path:
    return Path(run_dir) / f"proxy_reference_{proxy}_n{n}_seed{seed}.json"


def build_reference(
    space: Any,
    proxy: str,
    data: DataSplits,
    *,
    n: int,
    seed: int,
    width_mult: float = 1.0,
    device: str | torch.device = "cpu",
    normalize: str = "per_image",
    cache: Path | None = None,
) -> ProxyReference:
    """Measure ``proxy`` on ``n`` random architectures of ``space`` (seeded), or read the cache."""
    if cache is not None and cache.is_file():
        try:
            data_json = json.loads(cache.read_text())
            values = np.sort(np.asarray(data_json["values"], dtype=np.float64))
            if data_json.get("proxy") == proxy and values.size:
                return ProxyReference(proxy, values)
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a torn or foreign file: measure again and overwrite it
    from tgsage.evaluate import build_candidate, measure_proxies

    rng = np.random.default_rng([seed, 0x5EED])
    values = []
    for i in range(n):
        spec = space.random_spec(rng)
        net, _ = build_candidate(spec, data, width_mult, seed=seed + i)
        v = measure_proxies(
            net.to(device), data, [proxy], device=device, normalize=normalize, seed=seed
        )[proxy]
        if np.isfinite(v):
            values.append(v)
    if not values:
        raise InputError(
            f"proxy {proxy!r} was undefined (NaN) for all {n} reference "
            "architectures; choose another proxy"
        )
    ref = ProxyReference(proxy, np.sort(np.asarray(values, dtype=np.float64)))
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump({"proxy": proxy, "n": n, "seed": seed, "values": ref.values.tolist()}, fh)
        os.replace(tmp, cache)
    return ref


__all__ = ["ProxyReference", "build_reference", "reference_path"]
