"""Representational dissimilarity matrices (RDMs) from layer activations.

An RDM stack is stored the rsatoolbox way: one row per layer holding the strict upper triangle
of the n x n matrix in row-major order (the order of ``scipy.spatial.distance.squareform`` and
``numpy.triu_indices(n, k=1)``). Square matrices are made only on request.

Methods (``method=``):

* ``"correlation"`` (default, the paper's): ``1 - pearson(F[i], F[j])``.
* ``"cosine"``: ``1 - cos(F[i], F[j])``.
* ``"euclidean"``: ``||F[i] - F[j]||`` (scipy's ``pdist(..., "euclidean")``).

Correlation and cosine RDMs are ``1 - Z Z^T`` for a row embedding ``Z`` (rows centred and/or
scaled to unit norm), so a whole RDM costs one matrix product; only the upper-triangle panels of
``Z Z^T`` are computed, halving the work.

Documented edge rules (never a NaN):

* **Constant rows** (a dead ReLU layer, a one-feature layer, a blank image): a row whose variation
  is below the float resolution of its values has no defined correlation; its embedding is the
  zero vector, so its dissimilarity to every other image is exactly 1 (correlation 0). Two
  constant rows are also at distance 1. The same holds for all-zero rows under ``"cosine"``.
  A layer with one feature is therefore all-constant under correlation; its RDM is all ones and
  compares as 0 to anything (see :mod:`tgsage.rsa.compare`).
* **Groups**: rows are averaged within each label first. The group order is ``numpy.unique``
  order of the labels (sorted), or the ``group_order`` you pass; a group in ``group_order`` with
  no images, or an image whose label is not in ``group_order``, is an error naming them.
* **Too few conditions**: an RDM needs at least 2 images or groups (one group is an error).
* **NaN / inf** in activations: :class:`~tgsage.errors.InputError` naming the layer and image.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from tgsage.errors import InputError
from tgsage.rsa._tensor import (
    ACC_DTYPE,
    ArrayLike,
    as_layers,
    as_matrix,
    compute_dtype,
    row_sq_norms,
    row_sums,
)

RDM_METHODS = ("correlation", "cosine", "euclidean")
#: Methods whose RDM is ``1 - Z Z^T`` for a row embedding Z (the fast and streamable ones).
EMBEDDABLE_METHODS = ("correlation", "cosine")


def n_pairs(n: int) -> int:
    """Number of entries in the strict upper triangle of an n x n matrix."""
    return n * (n - 1) // 2


def n_conditions_from_pairs(n_entries: int) -> int:
    """Inverse of :func:`n_pairs`; raises when ``n_entries`` is not triangular."""
    n = round((1 + math.sqrt(1 + 8 * n_entries)) / 2)
    if n_pairs(n) != n_entries:
        raise InputError(f"{n_entries} is not the length of an RDM upper triangle")
    return n


@dataclass(frozen=True, eq=False)
class RDMs:
    """A stack of RDMs over the same conditions (images or groups), one per layer.

    ``dissimilarities`` is (n_rdms, n*(n-1)/2): upper triangles, row-major. ``conditions`` holds
    the group labels in RDM order for grouped RDMs (None for per-image RDMs). ``metadata``
    carries free-form provenance (probe fingerprint, subsampling settings, ...).
    """

    dissimilarities: torch.Tensor
    names: tuple[str, ...]
    n_conditions: int
    method: str = "correlation"
    conditions: tuple[Any, ...] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        d = self.dissimilarities
        if d.ndim != 2 or d.shape[0] != len(self.names):
            raise InputError(
                f"RDMs: dissimilarities of shape {tuple(d.shape)} do not match "
                f"{len(self.names)} names"
            )
        if d.shape[1] != n_pairs(self.n_conditions):
            raise InputError(
                f"RDMs: {d.shape[1]} entries per RDM, expected {n_pairs(self.n_conditions)} "
                f"for {self.n_conditions} conditions"
            )
        if len(set(self.names)) != len(self.names):
            raise InputError(f"RDMs: duplicate layer names in {self.names}")

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return (
            f"RDMs(n_rdms={len(self)}, n_conditions={self.n_conditions}, "
            f"method={self.method!r}, names={list(self.names)})"
        )

    def __getitem__(self, key: int | str | Sequence[int | str]) -> RDMs:
        """Select RDMs by index or layer name (a list selects several, in that order)."""
        keys = [key] if isinstance(key, (int, str)) else list(key)
        idx = [self._index(k) for k in keys]
        return RDMs(
            self.dissimilarities[idx],
            tuple(self.names[i] for i in idx),
            self.n_conditions,
            self.method,
            self.conditions,
            dict(self.metadata),
        )

    def _index(self, key: int | str) -> int:
        if isinstance(key, str):
            try:
                return self.names.index(key)
            except ValueError:
                raise InputError(f"no RDM named {key!r}; available: {list(self.names)}") from None
        if not -len(self) <= key < len(self):
            raise InputError(f"RDM index {key} out of range for {len(self)} RDMs")
        return key % len(self)

    def matrices(self) -> torch.Tensor:
        """Square form, (n_rdms, n, n), zero diagonal."""
        n = self.n_conditions
        k = len(self)
        out = torch.zeros(
            k, n, n, dtype=self.dissimilarities.dtype, device=self.dissimilarities.device
        )
        iu = torch.triu_indices(n, n, offset=1, device=out.device)
        out[:, iu[0], iu[1]] = self.dissimilarities
        out[:, iu[1], iu[0]] = self.dissimilarities
        return out

    def numpy(self) -> np.ndarray:
        """Upper-triangle vectors as a float64 numpy array (n_rdms, n*(n-1)/2)."""
        return self.dissimilarities.detach().cpu().to(torch.float64).numpy()

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> RDMs:
        return RDMs(
            self.dissimilarities.to(device=device, dtype=dtype),
            self.names,
            self.n_conditions,
            self.method,
            self.conditions,
            dict(self.metadata),
        )

    def with_metadata(self, **items: Any) -> RDMs:
        """A copy with ``items`` added to the metadata (the data is shared, not copied)."""
        return RDMs(
            self.dissimilarities,
            self.names,
            self.n_conditions,
            self.method,
            self.conditions,
            {**self.metadata, **items},
        )

    def concat(self, other: RDMs) -> RDMs:
        """Stack two RDM sets measured on the same conditions."""
        if other.n_conditions != self.n_conditions:
            raise InputError(
                f"cannot stack RDMs over {self.n_conditions} and {other.n_conditions} conditions"
            )
        return RDMs(
            torch.cat([self.dissimilarities, other.dissimilarities.to(self.dissimilarities)]),
            self.names + other.names,
            self.n_conditions,
            self.method,
            self.conditions,
            {**other.metadata, **self.metadata},
        )

    @classmethod
    def from_matrices(
        cls,
        matrices: ArrayLike,
        names: Sequence[str] | None = None,
        method: str = "unknown",
        **kwargs: Any,
    ) -> RDMs:
        """Build from square matrices (n, n) or (k, n, n); checks symmetry and zero diagonal."""
        m = torch.as_tensor(
            np.asarray(matrices) if not isinstance(matrices, torch.Tensor) else matrices
        )
        if m.ndim == 2:
            m = m[None]
        if m.ndim != 3 or m.shape[1] != m.shape[2]:
            raise InputError(f"RDM matrices must be (n, n) or (k, n, n), got {tuple(m.shape)}")
        m = m.to(compute_dtype(m))
        if not bool(torch.isfinite(m).all()):
            raise InputError("RDM matrices contain NaN or inf values")
        tol = 1e-6 * float(m.abs().max().clamp_min(1))
        if float((m - m.transpose(1, 2)).abs().max()) > tol:
            raise InputError("RDM matrices are not symmetric")
        if float(torch.diagonal(m, dim1=1, dim2=2).abs().max()) > tol:
            raise InputError("RDM matrices must have a zero diagonal")
        n = m.shape[1]
        iu = torch.triu_indices(n, n, offset=1)
        names = tuple(names) if names is not None else tuple(f"rdm{i}" for i in range(len(m)))
        return cls(m[:, iu[0], iu[1]].contiguous(), names, n, method, **kwargs)


# --------------------------------------------------------------------------- grouping


def group_means(
    features: torch.Tensor,
    labels: ArrayLike,
    group_order: Sequence[Any] | None = None,
    chunk_rows: int = 4096,
) -> tuple[torch.Tensor, tuple[Any, ...]]:
    """Average rows of ``features`` within each label; returns (means, group order).

    Sums are accumulated in float64 over row chunks, so memory stays bounded.
    """
    lab = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    n = features.shape[0]
    if lab.shape != (n,):
        raise InputError(f"group labels have shape {lab.shape}, expected ({n},) to match images")
    if group_order is None:
        order, inverse = np.unique(lab, return_inverse=True)
        order_t = tuple(order.tolist())
    else:
        order_t = tuple(group_order)
        position = {g: i for i, g in enumerate(order_t)}
        if len(position) != len(order_t):
            raise InputError("group_order contains duplicates")
        unknown = sorted({x for x in lab.tolist() if x not in position}, key=str)
        if unknown:
            raise InputError(
                f"labels {unknown[:10]} are not in group_order; add them or drop those images"
            )
        inverse = np.fromiter((position[x] for x in lab.tolist()), dtype=np.int64, count=n)
    g = len(order_t)
    inv = torch.as_tensor(inverse.reshape(-1), dtype=torch.long, device=features.device)
    counts = torch.bincount(inv, minlength=g)
    empty = [order_t[i] for i in torch.nonzero(counts == 0).flatten().tolist()]
    if empty:
        raise InputError(f"groups {empty[:10]} have no images; remove them from group_order")
    sums = torch.zeros(g, features.shape[1], dtype=ACC_DTYPE, device=features.device)
    for start in range(0, n, chunk_rows):
        stop = min(n, start + chunk_rows)
        sums.index_add_(0, inv[start:stop], features[start:stop].to(ACC_DTYPE))
    means = (sums / counts[:, None].to(ACC_DTYPE)).to(features.dtype)
    return means, order_t


# --------------------------------------------------------------------------- embeddings


def _unit_rows(
    x: torch.Tensor, center: bool, scale: float = 1.0, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Centre (optionally) and scale each row to norm ``scale`` along the last dim; constant -> 0.

    Means and norms are accumulated in float64 (blocked); the result keeps the compute dtype.
    ``out`` (same shape, may be ``x`` itself) receives the result, so repeated calls reuse one
    buffer instead of touching fresh memory for every layer.
    """
    if center:
        mean = (row_sums(x) / x.shape[-1]).unsqueeze(-1)
        x = torch.sub(x, mean.to(x.dtype), out=out) if out is not None else x - mean.to(x.dtype)
        # A row whose variation is below the float resolution of its values counts as constant
        # (its centred residual is at most eps * |mean| per element).
        floor = 4 * torch.finfo(x.dtype).eps * mean.abs() * math.sqrt(x.shape[-1])
    else:
        floor = torch.zeros((), dtype=ACC_DTYPE, device=x.device)
    norm = row_sq_norms(x).sqrt().unsqueeze(-1)
    degenerate = (norm <= floor) | (norm == 0)
    inv = torch.where(degenerate, torch.zeros_like(norm), scale / norm.clamp_min(1e-300))
    if center or out is x:
        return x.mul_(inv.to(x.dtype))
    if out is not None:
        return torch.mul(x, inv.to(x.dtype), out=out)
    return x * inv.to(x.dtype)


def subsample_indices(
    n_features: int, k: int, m: int, seed: int, device: torch.device | str | None = None
) -> torch.Tensor:
    """(k, m) feature indices: k independent draws of m features without replacement."""
    if k < 1 or m < 1:
        raise InputError(f"subsampling needs k >= 1 and m >= 1, got k={k}, m={m}")
    m = min(m, n_features)
    gen = torch.Generator().manual_seed(int(seed))
    idx = torch.argsort(torch.rand(k, n_features, generator=gen), dim=1)[:, :m]
    return idx.to(device) if device is not None else idx


def default_subsample_size(n_features: int, k: int) -> int:
    """The paper does not state m; ``ceil(d / k)`` makes k subsamples cost one full RDM."""
    return max(1, math.ceil(n_features / k))


def rdm_embedding(
    features: torch.Tensor,
    method: str = "correlation",
    subsample: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Row embedding Z with ``RDM = 1 - Z Z^T`` (correlation and cosine RDMs).

    With ``subsample`` (a (k, m) index tensor) Z concatenates the k subsample embeddings scaled
    by ``1/sqrt(k)``, so ``1 - Z Z^T`` is exactly the mean of the k subsample RDMs. ``out`` is
    an optional buffer of the features' shape (used without subsampling).
    """
    if method not in EMBEDDABLE_METHODS:
        raise InputError(f"method {method!r} has no row embedding; use one of {EMBEDDABLE_METHODS}")
    center = method == "correlation"
    if subsample is None:
        return _unit_rows(features, center, out=out)
    k, m = subsample.shape
    sub = features[:, subsample.reshape(-1).to(features.device)].reshape(-1, k, m)
    z = _unit_rows(sub, center, scale=1.0 / math.sqrt(k), out=sub)  # the gather is ours
    return z.reshape(features.shape[0], k * m)


# --------------------------------------------------------------------------- kernels


def _panel_rows(n: int, d: int, itemsize: int, max_panel_bytes: int) -> int:
    """Rows per panel: about 16 panels (halves the GEMM work) within a memory cap."""
    rows = max(128, math.ceil(n / 16))
    cap = max(1, max_panel_bytes // max(1, n * itemsize))
    return max(1, min(rows, cap, n))


def upper_gram(
    z: torch.Tensor, out: torch.Tensor | None = None, max_panel_bytes: int = 256 * 2**20
) -> torch.Tensor:
    """Strict upper triangle of ``z @ z.T`` (row-major), computed panel by panel.

    Only the blocks on or above the diagonal are multiplied, so the cost is about half a full
    product and the n x n matrix is never held at once.
    """
    n = z.shape[0]
    if out is None:
        out = torch.empty(n_pairs(n), dtype=z.dtype, device=z.device)
    rows = _panel_rows(n, z.shape[1], z.element_size(), max_panel_bytes)
    zt = z.T
    gather = _panel_indices(n, rows, z.device) if n_pairs(n) <= _INDEX_CACHE_LIMIT else None
    # Otherwise every panel's strict-upper mask is a slice of the first one's (column > row).
    mask = (
        None
        if gather is not None
        else torch.ones(min(rows, n), n, dtype=torch.bool, device=z.device).triu_(1)
    )
    panel_buf = torch.empty(min(rows, n) * n, dtype=z.dtype, device=z.device)
    offset = 0
    for k, i0 in enumerate(range(0, n - 1, rows)):
        i1 = min(n, i0 + rows)
        flat = panel_buf[: (i1 - i0) * (n - i0)]
        torch.mm(z[i0:i1], zt[:, i0:], out=flat.view(i1 - i0, n - i0))
        count = n_pairs(n - i0) - n_pairs(n - i1)
        target = out[offset : offset + count]
        if gather is not None:
            torch.index_select(flat, 0, gather[k], out=target)
        else:
            assert mask is not None
            torch.masked_select(flat.view(i1 - i0, n - i0), mask[: i1 - i0, : n - i0], out=target)
        offset += count
    return out


#: Largest triangle (entries) whose panel gather indices are cached (int64: 8 bytes each).
_INDEX_CACHE_LIMIT = 16 * 2**20


@functools.lru_cache(maxsize=2)
def _panel_indices(n: int, rows: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Flat positions of each panel's strict upper triangle (a gather is ~3x faster than a
    masked select); cached because every layer of a probe set has the same n."""
    out = []
    for i0 in range(0, n - 1, rows):
        b, w = min(n, i0 + rows) - i0, n - i0
        r = torch.arange(b, device=device)[:, None]
        c = torch.arange(w, device=device)[None, :]
        out.append((r * w + c)[c > r])
    return tuple(out)


def upper_euclidean(
    x: torch.Tensor, out: torch.Tensor | None = None, max_panel_bytes: int = 256 * 2**20
) -> torch.Tensor:
    """Strict upper triangle of the Euclidean distance matrix via one Gram product per panel."""
    n = x.shape[0]
    if out is None:
        out = torch.empty(n_pairs(n), dtype=x.dtype, device=x.device)
    sq = torch.linalg.vector_norm(x, dim=1, dtype=ACC_DTYPE).square()
    rows = _panel_rows(n, x.shape[1], x.element_size(), max_panel_bytes)
    offset = 0
    for i0 in range(0, n - 1, rows):
        i1 = min(n, i0 + rows)
        panel = (x[i0:i1] @ x[i0:].T).to(ACC_DTYPE).mul_(-2)
        panel += sq[i0:i1, None]
        panel += sq[None, i0:]
        mask = torch.ones(panel.shape, dtype=torch.bool, device=x.device).triu_(1)
        count = n_pairs(n - i0) - n_pairs(n - i1)
        out[offset : offset + count] = panel[mask].clamp_min_(0).sqrt_().to(out.dtype)
        offset += count
    return out


# --------------------------------------------------------------------------- public API


def compute_rdms(
    features: ArrayLike | Mapping[str, ArrayLike],
    method: str = "correlation",
    *,
    groups: ArrayLike | None = None,
    group_order: Sequence[Any] | None = None,
    subsamples: int | None = None,
    subsample_size: int | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> RDMs:
    """RDMs of one or many layers at once.

    Args:
        features: an (n_images, ...) array/tensor, or a mapping ``{layer name: array}``; numpy or
            torch, any device. Trailing dims are flattened.
        method: ``"correlation"`` (default), ``"cosine"`` or ``"euclidean"``.
        groups: optional label per image; rows are averaged within each label first.
        group_order: the order of groups in the RDM (default: sorted unique labels).
        subsamples: if given, average the RDMs of this many random feature subsamples (the
            paper's teacher RDMs use 10), computed as one matrix product.
        subsample_size: features per subsample (default ``ceil(d / subsamples)``).
        seed: seeds the subsample draws (per layer: ``seed + layer position``).
        device: move inputs there first (default: where they are).

    Returns:
        An :class:`RDMs` stack in the order of the layers given.
    """
    if method not in RDM_METHODS:
        raise InputError(f"unknown RDM method {method!r}; choose one of {RDM_METHODS}")
    if subsamples is not None and method not in EMBEDDABLE_METHODS:
        raise InputError(
            f"feature subsampling is supported for {EMBEDDABLE_METHODS}, not {method!r}"
        )
    if subsamples is not None and subsamples < 1:
        raise InputError(
            f"subsamples must be at least 1 (or None for no subsampling), got {subsamples}"
        )
    if subsample_size is not None and subsample_size < 1:
        raise InputError(
            f"subsample_size must be at least 1 (or None for the default), got {subsample_size}"
        )
    layers = as_layers(features)
    mats: list[torch.Tensor] = []
    n_images: int | None = None
    for name, value in layers.items():
        mat = as_matrix(value, name=f"layer {name!r}", device=device)
        if n_images is not None and mat.shape[0] != n_images:
            raise InputError(
                f"layer {name!r} has {mat.shape[0]} images but earlier layers have {n_images}; "
                "all layers must be measured on the same probe images"
            )
        n_images = mat.shape[0]
        mats.append(mat)
    conditions: tuple[Any, ...] | None = None
    if groups is not None:
        grouped = []
        for mat in mats:
            gm, conditions = group_means(mat, groups, group_order)
            grouped.append(gm)
        mats = grouped
    n = mats[0].shape[0]
    if n < 2:
        what = "group" if groups is not None else "image"
        raise InputError(f"an RDM needs at least 2 conditions, got 1 {what}; use more")
    dtype = functools.reduce(torch.promote_types, [m.dtype for m in mats])
    out = torch.empty(len(mats), n_pairs(n), dtype=dtype, device=mats[0].device)
    sub_meta: dict[str, Any] = {}
    workspace: torch.Tensor | None = None  # one centring buffer reused by every layer
    for i, mat in enumerate(mats):
        mat = mat.to(dtype)
        if method == "euclidean":
            upper_euclidean(mat, out=out[i])
            continue
        sub = None
        if subsamples is not None:
            m = subsample_size or default_subsample_size(mat.shape[1], subsamples)
            sub = subsample_indices(mat.shape[1], subsamples, m, seed + i, device=mat.device)
            sub_meta = {"subsamples": subsamples, "subsample_size": int(sub.shape[1]), "seed": seed}
        buffer = None
        if sub is None:
            if workspace is None or workspace.numel() < mat.numel():
                workspace = torch.empty(
                    max(m.numel() for m in mats), dtype=dtype, device=mat.device
                )
            buffer = workspace[: mat.numel()].view(mat.shape)
        z = rdm_embedding(mat, method, sub, out=buffer)
        upper_gram(z, out=out[i])
        out[i].neg_().add_(1.0)
    meta: dict[str, Any] = {"n_images": n_images}
    meta.update(sub_meta)
    return RDMs(out, tuple(layers), n, method, conditions, meta)
