"""Optional interop with rsatoolbox (``pip install tgsage[rsa]``): RDMs in and out.

rsatoolbox stores RDMs as upper-triangle vectors in the same row-major order as tgsage, so the
conversion copies no more than a dtype change.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from tgsage.errors import InputError
from tgsage.rsa.rdm import RDMs, n_conditions_from_pairs

#: rsatoolbox's names for the distances tgsage computes.
_TO_RSATOOLBOX = {"correlation": "correlation", "euclidean": "euclidean", "cosine": "cosine"}


def _rsatoolbox() -> Any:
    try:
        import rsatoolbox
    except ImportError:
        raise InputError(
            "rsatoolbox is not installed; install it with: pip install 'tgsage[rsa]'"
        ) from None
    return rsatoolbox


def to_rsatoolbox(rdms: RDMs) -> Any:
    """An ``rsatoolbox.rdm.RDMs`` holding the same dissimilarities, names and conditions."""
    rsa = _rsatoolbox()
    pattern = (
        {"index": list(range(rdms.n_conditions))}
        if rdms.conditions is None
        else {"index": list(range(rdms.n_conditions)), "group": list(rdms.conditions)}
    )
    return rsa.rdm.RDMs(
        dissimilarities=rdms.numpy(),
        dissimilarity_measure=_TO_RSATOOLBOX.get(rdms.method, rdms.method),
        rdm_descriptors={"name": list(rdms.names)},
        pattern_descriptors=pattern,
        descriptors={k: v for k, v in rdms.metadata.items() if isinstance(v, (int, float, str))},
    )


def from_rsatoolbox(obj: Any, names: list[str] | None = None) -> RDMs:
    """Convert an ``rsatoolbox.rdm.RDMs`` (vectors in rsatoolbox's order) to tgsage RDMs."""
    _rsatoolbox()
    vectors = np.asarray(obj.get_vectors(), dtype=np.float64)
    n = n_conditions_from_pairs(vectors.shape[1])
    if names is None:
        desc = obj.rdm_descriptors.get("name")
        names = (
            [str(x) for x in desc] if desc is not None else [f"rdm{i}" for i in range(obj.n_rdm)]
        )
    groups = obj.pattern_descriptors.get("group")
    measure = obj.dissimilarity_measure or "unknown"
    return RDMs(
        torch.from_numpy(vectors),
        tuple(names),
        n,
        str(measure),
        tuple(groups) if groups is not None else None,
        {"source": "rsatoolbox"},
    )
